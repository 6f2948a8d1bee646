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

	"github.com/connectexpress/onboarding/internal/devserver/memdynamo"
	"github.com/connectexpress/onboarding/internal/stripesim"
	"github.com/connectexpress/onboarding/shared/app"
	"github.com/connectexpress/onboarding/shared/config"
	"github.com/connectexpress/onboarding/shared/dynamostore"
	"github.com/connectexpress/onboarding/shared/statusevents"
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

	// StaffConsoleURL is where the staff console (examples/staff) is
	// served; "" when STAFF_CONSOLE_URL is not served here.
	StaffConsoleURL string

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
	env := &settings{lookup: o.LookupEnv, set: map[string]string{}}
	r := &Running{errc: make(chan error, 3)}
	defer func() {
		if err != nil {
			_ = r.Close()
		}
	}()

	if config.KeyMode(env.get("STRIPE_SECRET_KEY")) == config.ModeLive {
		return nil, errLiveKey("STRIPE_SECRET_KEY")
	}
	jwtSecret := env.orGenerate("DEV_JWT_SECRET", randomHex(32), "")
	apiLn, err := r.listenAPI(env)
	if err != nil {
		return nil, err
	}
	frontendLn, frontendNote := openFrontend(env)
	consoleLn, consoleURL, consoleNote := openStaffConsole(env)
	stripeMode, err := r.chooseStripe(ctx, env, o.Logger)
	if err != nil {
		return nil, err
	}
	cfg, dbMode, err := r.newApp(ctx, env, o.Logger)
	if err != nil {
		return nil, err
	}
	if r.App.Config.Livemode() {
		// A live key read from Secrets Manager, or STRIPE_MODE=live.
		return nil, errLiveKey("STRIPE_SECRET_ARN or STRIPE_MODE")
	}
	auth := authorizer(env, jwtSecret)
	// Each server answers only its own loopback names (DNS rebinding), and
	// the /dev routes only the developer's pages: the API's own origins and
	// the frontend's (localhost:5173 calling 127.0.0.1:3000 is cross-site).
	apiHosts := loopbackHosts(apiLn.Addr().String())
	if public, given := env.lookup("PUBLIC_API_URL"); given && strings.TrimSpace(public) != "" {
		// A tunnel the developer named (to receive Stripe's webhooks).
		if u, err := url.Parse(strings.TrimSpace(public)); err == nil && u.Host != "" {
			apiHosts = append(apiHosts, strings.ToLower(u.Host))
		}
	}
	// The staff console is the developer's page too: it calls the API
	// (CORS, as template.yaml's StaffConsoleUrl allows it) and /dev/token.
	consoleOrigin := strings.ToLower(origin(consoleURL))
	devPages := sameSite{origins: append(loopbackOrigins(apiLn.Addr().String()), strings.ToLower(origin(cfg.FrontendURL)))}
	api := New(r.App, auth)
	if consoleOrigin != "" {
		devPages.origins = append(devPages.origins, consoleOrigin)
		api.cors.origins = append(api.cors.origins, consoleOrigin)
	}
	r.serve(apiLn, onlyHosts(apiHosts, devPages.refuse(devRoute, api)))
	if frontendLn != nil {
		r.FrontendURL = cfg.FrontendURL
		r.serve(frontendLn, onlyHosts(loopbackHosts(frontendLn.Addr().String()), newFrontend(cfg, r.connectJSURL())))
	}
	if consoleLn != nil {
		r.StaffConsoleURL = consoleURL
		r.serve(consoleLn, onlyHosts(loopbackHosts(consoleLn.Addr().String()), newStaffConsole(cfg.PublicAPIURL)))
	}
	r.printBanner(o.Out, cfg, auth, env.generated, notes{frontend: frontendNote, console: consoleURL + "  " + consoleNote, stripe: stripeMode, dynamodb: dbMode})
	return r, nil
}

// errLiveKey refuses live mode, whatever the URLs: the dev server mints
// any user's token (/dev/token) and serves plain http, so with a live key
// anyone who reaches it could onboard real people onto real accounts.
func errLiveKey(setting string) error {
	return fmt.Errorf("%s gives a live Stripe key (sk_live_ or rk_live_): make dev runs in test mode only; use a test key (sk_test_, rk_test_) or none for the local simulator", setting)
}

// settings is the environment as the dev server hands it to the App: what
// the process was given, overlaid by what Start fills in (the ports it
// opened, the secrets it made up).
type settings struct {
	lookup    func(string) (string, bool)
	set       map[string]string
	generated []string // printed at start: only secrets we made up
}

// get is a setting, trimmed; "" when unset or empty.
func (s *settings) get(name string) string {
	if v, ok := s.set[name]; ok {
		return v
	}
	v, _ := s.lookup(name)
	return strings.TrimSpace(v)
}

// lookupEnv is what the App reads: the overlay, then the process.
func (s *settings) lookupEnv(name string) (string, bool) {
	if v, ok := s.set[name]; ok {
		return v, true
	}
	return s.lookup(name)
}

// orGenerate returns the setting, or sets it to value and says so in the
// banner (with note, when given).
func (s *settings) orGenerate(name, value, note string) string {
	if v := s.get(name); v != "" {
		return v
	}
	s.set[name] = value
	s.generated = append(s.generated, strings.TrimSpace(name+"="+value+" "+note))
	return value
}

// listenAPI opens PORT (default 3000) and makes it the public API URL
// unless PUBLIC_API_URL is set.
func (r *Running) listenAPI(env *settings) (net.Listener, error) {
	ln, err := listen("PORT", "127.0.0.1:"+or(env.get("PORT"), "3000"))
	if err != nil {
		return nil, err
	}
	r.APIURL = "http://" + ln.Addr().String()
	if env.get("PUBLIC_API_URL") == "" {
		env.set["PUBLIC_API_URL"] = r.APIURL
	}
	return ln, nil
}

// openFrontend opens FRONTEND_URL's port when it is a loopback http URL,
// for the example frontend, and says in a note what serves it. It runs
// before the configuration is read, so that a test can ask for port 0 and
// the return URL still names the real port.
func openFrontend(env *settings) (net.Listener, string) {
	frontendURL := strings.TrimRight(or(env.get("FRONTEND_URL"), config.DefaultFrontendURL), "/")
	addr, ok := frontendAddr(frontendURL)
	if !ok {
		return nil, "not served here (FRONTEND_URL is not a loopback http URL): your own frontend"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		// Likely the platform's own frontend already runs there.
		return nil, fmt.Sprintf("not served: %s is taken (%v); set FRONTEND_URL to a free loopback URL to serve the example", addr, err)
	}
	if u, _ := url.Parse(frontendURL); u.Port() == "0" {
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		frontendURL = "http://" + net.JoinHostPort(u.Hostname(), port)
	}
	env.set["FRONTEND_URL"] = frontendURL
	return ln, "examples/frontend (sign in as anyone)"
}

// SimulatorPublishableKey is the publishable key make dev gives the service
// on the simulator: a test key, as its secret key is.
const SimulatorPublishableKey = "pk_test_simulator"

// chooseStripe points the service at STRIPE_API_BASE, real Stripe or the
// simulator (see Start), makes sure there is a webhook signing secret, and
// returns what it chose, for the banner.
func (r *Running) chooseStripe(ctx context.Context, env *settings, logger *slog.Logger) (string, error) {
	mode := "real Stripe (STRIPE_SECRET_KEY)"
	switch {
	case env.get("STRIPE_API_BASE") != "":
		mode = "STRIPE_API_BASE " + env.get("STRIPE_API_BASE")
		if env.get("STRIPE_SECRET_KEY") == "" {
			env.set["STRIPE_SECRET_KEY"] = "sk_test_devserver"
			// No real Stripe behind it (stripe-mock, a proxy): a test
			// publishable key lets the session route answer.
			if env.get("STRIPE_PUBLISHABLE_KEY") == "" {
				env.set["STRIPE_PUBLISHABLE_KEY"] = "pk_test_devserver"
			}
		}
	case env.get("STRIPE_SECRET_KEY") == "":
		secret, err := r.startSimulator(ctx, env, logger)
		if err != nil {
			return "", err
		}
		if given := env.get("STRIPE_WEBHOOK_SECRET"); given != "" {
			env.set["STRIPE_WEBHOOK_SECRET"] = secret + "," + given
		} else {
			env.orGenerate("STRIPE_WEBHOOK_SECRET", secret, "(the simulator's endpoint secret, for cmd/devevent)")
		}
		mode = "local Connect simulator (not Stripe) at " + r.SimURL + ": hosted onboarding and dashboard pages, signed webhooks"
		// Embedded onboarding: Connect.js (the simulator's stand-in here)
		// is given a test publishable key beside the test secret key.
		env.orGenerate("STRIPE_PUBLISHABLE_KEY", SimulatorPublishableKey, "(for the simulator's Connect.js stand-in)")
	}
	env.orGenerate("STRIPE_WEBHOOK_SECRET", "whsec_"+randomHex(24), "")
	return mode, nil
}

// newApp wires the App the way a Lambda does, with every secret, on
// DYNAMODB_ENDPOINT or else an in-process engine, and creates the table.
// It returns the configuration and what DynamoDB is, for the banner.
func (r *Running) newApp(ctx context.Context, env *settings, logger *slog.Logger) (config.Config, string, error) {
	cfg, err := config.Load(env.lookupEnv)
	if err != nil {
		return cfg, "", err
	}
	// No stream runs here: the store's writes go through streamClient,
	// which hands each user's record before and after to the stream's
	// consumer, printing status events as log lines.
	var stream *streamClient
	opts := app.Options{LookupEnv: env.lookupEnv, Logger: logger, Needs: config.Needs{StripeKey: true, WebhookSecrets: true},
		WrapDynamoDB: func(db dynamostore.Client) dynamostore.Client {
			wrapped := newStreamClient(db, cfg.TableName)
			stream, _ = wrapped.(*streamClient)
			return wrapped
		}}
	dbMode := "DynamoDB at " + cfg.DynamoDBEndpoint
	if cfg.DynamoDBEndpoint == "" {
		// The same store code on an in-process engine: no server to run.
		mem := memdynamo.New()
		if err := dynamostore.CreateTable(ctx, mem, cfg.TableName); err != nil {
			return cfg, "", err
		}
		opts.DynamoDB, dbMode = mem, "in-process DynamoDB engine (minidyn; data lives until exit)"
	}
	a, err := app.New(ctx, opts)
	if err != nil {
		return cfg, "", err
	}
	r.App = a
	if stream != nil {
		stream.consumer = statusevents.NewConsumer(&statusevents.LogPublisher{Log: a.Logger, Bus: cfg.Ops.EventBusName}, a.Logger)
	}
	if cfg.DynamoDBEndpoint != "" {
		if admin, ok := a.StoreClient().(dynamostore.TableAdmin); ok {
			if err := dynamostore.CreateTable(ctx, admin, cfg.TableName); err != nil {
				return cfg, "", fmt.Errorf("create table %s: %w", cfg.TableName, err)
			}
		}
	}
	return cfg, dbMode, nil
}

// authorizer is the emulated JWT authorizer: DEV_JWT_ISSUER and
// DEV_JWT_AUDIENCE, or the defaults /dev/token mints for.
func authorizer(env *settings, secret string) Authorizer {
	auth := Authorizer{Secret: []byte(secret), Issuer: DefaultIssuer, Audiences: []string{DefaultAudience}}
	if v := env.get("DEV_JWT_ISSUER"); v != "" {
		auth.Issuer = v
	}
	if v := config.SplitList(env.get("DEV_JWT_AUDIENCE")); len(v) > 0 {
		auth.Audiences = v
	}
	return auth
}

// notes say what serves the frontend, Stripe and DynamoDB.
type notes struct{ frontend, console, stripe, dynamodb string }

// printBanner says where everything runs and which secrets were made up.
func (r *Running) printBanner(out io.Writer, cfg config.Config, auth Authorizer, generated []string, n notes) {
	fmt.Fprintf(out, "dev server listening on %s\n", r.APIURL)
	fmt.Fprintf(out, "  api:      %s\n", r.APIURL)
	fmt.Fprintf(out, "  frontend: %s  %s\n", cfg.FrontendURL, n.frontend)
	fmt.Fprintf(out, "  staff console: %s\n", n.console)
	fmt.Fprintf(out, "  stripe:   %s\n", n.stripe)
	if r.SimURL != "" {
		fmt.Fprintf(out, "  simulator: %s/  (its accounts, webhook endpoints and deliveries)\n", r.SimURL)
	}
	fmt.Fprintf(out, "  dynamodb: %s\n", n.dynamodb)
	fmt.Fprintf(out, "  jwt authorizer: HS256, iss %q, aud %q (DEV_JWT_ISSUER, DEV_JWT_AUDIENCE)\n", auth.Issuer, strings.Join(auth.Audiences, ","))
	for _, g := range generated {
		fmt.Fprintf(out, "  generated %s\n", g)
	}
	if r.FrontendURL != "" {
		fmt.Fprintf(out, "  try: open %s and sign in as anyone\n", r.FrontendURL)
	} else {
		fmt.Fprintf(out, "  try: curl -s '%s/dev/token?sub=alice&email=alice@example.com'\n", r.APIURL)
	}
}

// stripeConnectJS is Stripe's Connect.js, which Stripe requires pages to
// load from Stripe: https://docs.stripe.com/connect/get-started-connect-embedded-components?platform=web
const stripeConnectJS = "https://connect-js.stripe.com/v1.0/connect.js"

// connectJSURL is the Connect.js the frontend loads: the simulator's
// stand-in when the simulator is Stripe, else Stripe's own.
func (r *Running) connectJSURL() string {
	if r.Sim != nil {
		return r.SimURL + "/connect-js/v1.0/connect.js"
	}
	return stripeConnectJS
}

// startSimulator runs the local Connect simulator on SIM_PORT (default
// 3001), points the service's Stripe settings at it, and registers the dev
// server's webhook endpoint there through the same code as
// cmd/registerwebhook. It returns the endpoint's signing secret.
func (r *Running) startSimulator(ctx context.Context, env *settings, logger *slog.Logger) (string, error) {
	simOpts, err := stripesim.OptionsFromEnv(func(name string) (string, bool) { v := env.get(name); return v, v != "" })
	if err != nil {
		return "", err
	}
	ln, err := listen("SIM_PORT", "127.0.0.1:"+or(env.get("SIM_PORT"), "3001"))
	if err != nil {
		return "", err
	}
	r.SimURL = "http://" + ln.Addr().String()
	simOpts.PublicURL = r.SimURL
	simOpts.Logger = logger
	if logger == nil {
		var level slog.Level
		_ = level.UnmarshalText([]byte(or(env.get("LOG_LEVEL"), "INFO")))
		simOpts.Logger = slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	}
	// The frontend's page runs the Connect.js stand-in, which calls back.
	frontendOrigin := strings.ToLower(origin(or(env.get("FRONTEND_URL"), config.DefaultFrontendURL)))
	simOpts.EmbedOrigins = append(simOpts.EmbedOrigins, frontendOrigin) // and SIM_EMBED_ORIGINS'
	r.Sim = stripesim.New(simOpts)
	// Only its own pages may submit its forms or work its /_sim controls;
	// the frontend's page may call the stand-in's endpoints, nothing else.
	simPages := sameSite{origins: loopbackOrigins(ln.Addr().String())}
	embedPages := sameSite{origins: append(loopbackOrigins(ln.Addr().String()), simOpts.EmbedOrigins...)}
	r.serve(ln, onlyHosts(loopbackHosts(ln.Addr().String()), embedPages.refuse(changesState,
		simPages.refuse(func(r *http.Request) bool { return changesState(r) && !connectJSRoute(r) }, r.Sim))))

	const key = "sk_test_devserver"
	env.set["STRIPE_API_BASE"], env.set["STRIPE_SECRET_KEY"] = r.SimURL, key
	publicAPI := strings.TrimRight(env.get("PUBLIC_API_URL"), "/")
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
