package devserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/truora/minidyn/aws-v2/client"

	"github.com/connectexpress/onboarding/internal/stripesim"
	"github.com/connectexpress/onboarding/shared/app"
	"github.com/connectexpress/onboarding/shared/config"
	"github.com/connectexpress/onboarding/shared/dynamostore"
	"github.com/connectexpress/onboarding/shared/stripeconnect"
)

// Options start the dev server.
type Options struct {
	LookupEnv func(string) (string, bool) // os.LookupEnv in the command
	Out       io.Writer                   // the start-up banner (default: discarded)
	Logger    *slog.Logger                // default: JSON to stderr at LOG_LEVEL
}

// Running is a started dev server: the API, and, when they run, the local
// Stripe simulator and the example frontend, each on its own origin.
type Running struct {
	APIURL      string
	FrontendURL string // "" when FRONTEND_URL is not served here
	SimURL      string // "" unless the simulator is the dev server's Stripe
	Sim         *stripesim.Sim
	App         *app.App

	servers []*http.Server
	errc    chan error
}

// Run starts the dev server and blocks until ctx ends. lookupEnv is
// os.LookupEnv in the command; out receives the start-up banner.
func Run(ctx context.Context, lookupEnv func(string) (string, bool), out io.Writer) error {
	r, err := Start(ctx, Options{LookupEnv: lookupEnv, Out: out})
	if err != nil {
		return err
	}
	select {
	case err := <-r.errc:
		_ = r.Close()
		return err
	case <-ctx.Done():
	}
	slog.Info("dev server stopping")
	return r.Close()
}

// Start brings the dev server up and returns once every listener is open.
// Stripe is STRIPE_API_BASE when set (with STRIPE_SECRET_KEY, or a test key),
// else real Stripe when STRIPE_SECRET_KEY is set, else the local Connect
// simulator, in process, with the dev server's webhook endpoint registered
// on it. An empty variable counts as unset.
func Start(ctx context.Context, o Options) (_ *Running, err error) {
	if o.Out == nil {
		o.Out = io.Discard
	}
	env := map[string]string{}
	get := func(name string) string {
		if v, ok := env[name]; ok {
			return v
		}
		v, _ := o.LookupEnv(name)
		return strings.TrimSpace(v)
	}
	var generated []string // printed at start: only secrets we made up
	r := &Running{errc: make(chan error, 3)}
	defer func() {
		if err != nil {
			_ = r.Close()
		}
	}()

	jwtSecret := get("DEV_JWT_SECRET")
	if jwtSecret == "" {
		jwtSecret = randomHex(32)
		generated = append(generated, "DEV_JWT_SECRET="+jwtSecret)
	}

	apiLn, err := listen("PORT", "127.0.0.1:"+or(get("PORT"), "3000"))
	if err != nil {
		return nil, err
	}
	r.APIURL = "http://" + apiLn.Addr().String()
	if get("PUBLIC_API_URL") == "" {
		env["PUBLIC_API_URL"] = r.APIURL
	}
	// The example frontend is opened before the configuration is read, so a
	// test can ask for port 0 and the return URL still names the real port.
	frontendURL := strings.TrimRight(or(get("FRONTEND_URL"), config.DefaultFrontendURL), "/")
	var frontendLn net.Listener
	frontendNote := "not served here (FRONTEND_URL is not a loopback http URL): your own frontend"
	if addr, ok := frontendAddr(frontendURL); ok {
		frontendLn, err = net.Listen("tcp", addr)
		if err != nil {
			// Likely the platform's own frontend already runs there.
			frontendNote = fmt.Sprintf("not served: %s is taken (%v); set FRONTEND_URL to a free loopback URL to serve the example", addr, err)
		} else {
			if u, _ := url.Parse(frontendURL); u.Port() == "0" {
				_, port, _ := net.SplitHostPort(frontendLn.Addr().String())
				frontendURL = "http://" + net.JoinHostPort(u.Hostname(), port)
			}
			env["FRONTEND_URL"] = frontendURL
			frontendNote = "examples/frontend (sign in as anyone)"
		}
	}

	logger := o.Logger
	stripeMode := "real Stripe (STRIPE_SECRET_KEY)"
	switch {
	case get("STRIPE_API_BASE") != "":
		stripeMode = "STRIPE_API_BASE " + get("STRIPE_API_BASE")
		if get("STRIPE_SECRET_KEY") == "" {
			env["STRIPE_SECRET_KEY"] = "sk_test_devserver"
		}
	case get("STRIPE_SECRET_KEY") == "":
		secret, err := r.startSimulator(ctx, get, env, logger)
		if err != nil {
			return nil, err
		}
		if given := get("STRIPE_WEBHOOK_SECRET"); given != "" {
			env["STRIPE_WEBHOOK_SECRET"] = secret + "," + given
		} else {
			env["STRIPE_WEBHOOK_SECRET"] = secret
			generated = append(generated, "STRIPE_WEBHOOK_SECRET="+secret+" (the simulator's endpoint secret, for cmd/devevent)")
		}
		stripeMode = "local Connect simulator (not Stripe) at " + r.SimURL + ": hosted onboarding and dashboard pages, signed webhooks"
	}
	if get("STRIPE_WEBHOOK_SECRET") == "" {
		env["STRIPE_WEBHOOK_SECRET"] = "whsec_" + randomHex(24)
		generated = append(generated, "STRIPE_WEBHOOK_SECRET="+env["STRIPE_WEBHOOK_SECRET"])
	}

	overlay := func(name string) (string, bool) {
		if v, ok := env[name]; ok {
			return v, true
		}
		return o.LookupEnv(name)
	}
	cfg, err := config.Load(overlay)
	if err != nil {
		return nil, err
	}
	opts := app.Options{LookupEnv: overlay, Logger: logger, Needs: config.Needs{StripeKey: true, WebhookSecrets: true}}
	dbMode := "DynamoDB at " + cfg.DynamoDBEndpoint
	if cfg.DynamoDBEndpoint == "" {
		// The same store code on an in-process engine: no server to run.
		mem := client.NewClient()
		if err := dynamostore.CreateTable(ctx, mem, cfg.TableName); err != nil {
			return nil, err
		}
		opts.DynamoDB, dbMode = mem, "in-process DynamoDB engine (minidyn; data lives until exit)"
	}
	a, err := app.New(ctx, opts)
	if err != nil {
		return nil, err
	}
	r.App = a
	if cfg.DynamoDBEndpoint != "" {
		if admin, ok := a.StoreClient().(dynamostore.TableAdmin); ok {
			if err := dynamostore.CreateTable(ctx, admin, cfg.TableName); err != nil {
				return nil, fmt.Errorf("create table %s: %w", cfg.TableName, err)
			}
		}
	}

	auth := Authorizer{Secret: []byte(jwtSecret), Issuer: DefaultIssuer, Audiences: []string{DefaultAudience}}
	if v := get("DEV_JWT_ISSUER"); v != "" {
		auth.Issuer = v
	}
	if v := config.SplitList(get("DEV_JWT_AUDIENCE")); len(v) > 0 {
		auth.Audiences = v
	}
	r.serve(apiLn, New(a, auth))
	if frontendLn != nil {
		r.FrontendURL = cfg.FrontendURL
		r.serve(frontendLn, newFrontend(cfg))
	}

	fmt.Fprintf(o.Out, "dev server listening on %s\n", r.APIURL)
	fmt.Fprintf(o.Out, "  api:      %s\n", r.APIURL)
	fmt.Fprintf(o.Out, "  frontend: %s  %s\n", cfg.FrontendURL, frontendNote)
	fmt.Fprintf(o.Out, "  stripe:   %s\n", stripeMode)
	if r.SimURL != "" {
		fmt.Fprintf(o.Out, "  simulator: %s/  (its accounts, webhook endpoints and deliveries)\n", r.SimURL)
	}
	fmt.Fprintf(o.Out, "  dynamodb: %s\n", dbMode)
	fmt.Fprintf(o.Out, "  jwt authorizer: HS256, iss %q, aud %q (DEV_JWT_ISSUER, DEV_JWT_AUDIENCE)\n", auth.Issuer, strings.Join(auth.Audiences, ","))
	for _, g := range generated {
		fmt.Fprintf(o.Out, "  generated %s\n", g)
	}
	if r.FrontendURL != "" {
		fmt.Fprintf(o.Out, "  try: open %s and sign in as anyone\n", r.FrontendURL)
	} else {
		fmt.Fprintf(o.Out, "  try: curl -s '%s/dev/token?sub=alice&email=alice@example.com'\n", r.APIURL)
	}
	return r, nil
}

// startSimulator runs the local Connect simulator on SIM_PORT (default
// 3001), points the service's Stripe settings at it, and registers the dev
// server's webhook endpoint there through the same code as
// cmd/registerwebhook. It returns the endpoint's signing secret.
func (r *Running) startSimulator(ctx context.Context, get func(string) string, env map[string]string, logger *slog.Logger) (string, error) {
	simOpts, err := stripesim.OptionsFromEnv(func(name string) (string, bool) { v := get(name); return v, v != "" })
	if err != nil {
		return "", err
	}
	ln, err := listen("SIM_PORT", "127.0.0.1:"+or(get("SIM_PORT"), "3001"))
	if err != nil {
		return "", err
	}
	r.SimURL = "http://" + ln.Addr().String()
	simOpts.PublicURL = r.SimURL
	simOpts.Logger = logger
	if logger == nil {
		var level slog.Level
		_ = level.UnmarshalText([]byte(or(get("LOG_LEVEL"), "INFO")))
		simOpts.Logger = slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	}
	r.Sim = stripesim.New(simOpts)
	r.serve(ln, r.Sim)

	const key = "sk_test_devserver"
	env["STRIPE_API_BASE"], env["STRIPE_SECRET_KEY"] = r.SimURL, key
	publicAPI := strings.TrimRight(get("PUBLIC_API_URL"), "/")
	regCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ep, err := stripeconnect.NewWebhookEndpoints(stripeconnect.Config{SecretKey: key, APIBase: r.SimURL, Timeout: 5 * time.Second}).
		Register(regCtx, publicAPI+"/webhooks/stripe", "make dev")
	if err != nil {
		return "", fmt.Errorf("register the webhook endpoint on the simulator: %w", err)
	}
	if ep.Secret == "" {
		return "", errors.New("the simulator returned no signing secret for the webhook endpoint")
	}
	return ep.Secret, nil
}

func (r *Running) serve(ln net.Listener, h http.Handler) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	r.servers = append(r.servers, srv)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			r.errc <- err
		}
	}()
}

// Close stops the servers and the simulator's deliveries.
func (r *Running) Close() error {
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var errs []error
	for _, srv := range r.servers {
		errs = append(errs, srv.Shutdown(shutdownCtx))
	}
	r.servers = nil
	if r.Sim != nil {
		r.Sim.Close()
	}
	return errors.Join(errs...)
}

// listen opens addr, saying which setting to change when it is taken.
func listen(setting, addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s (set %s to another port): %w", addr, setting, err)
	}
	return ln, nil
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
