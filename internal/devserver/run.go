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
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/truora/minidyn/aws-v2/client"

	"github.com/connectexpress/onboarding/internal/localproc"
	"github.com/connectexpress/onboarding/shared/app"
	"github.com/connectexpress/onboarding/shared/config"
	"github.com/connectexpress/onboarding/shared/dynamostore"
)

// Run starts the dev server and blocks until ctx ends. lookupEnv is
// os.LookupEnv in the command; out receives the start-up banner.
func Run(ctx context.Context, lookupEnv func(string) (string, bool), out io.Writer) error {
	env := map[string]string{}
	get := func(name string) string {
		if v, ok := env[name]; ok {
			return v
		}
		v, _ := lookupEnv(name)
		return v
	}
	var generated []string // printed at start: only secrets we made up

	jwtSecret := get("DEV_JWT_SECRET")
	if jwtSecret == "" {
		jwtSecret = randomHex(32)
		generated = append(generated, "DEV_JWT_SECRET="+jwtSecret)
	}
	if get("STRIPE_WEBHOOK_SECRET") == "" {
		env["STRIPE_WEBHOOK_SECRET"] = "whsec_" + randomHex(24)
		generated = append(generated, "STRIPE_WEBHOOK_SECRET="+env["STRIPE_WEBHOOK_SECRET"])
	}

	stripeMode := "real Stripe (STRIPE_SECRET_KEY)"
	switch {
	case get("STRIPE_API_BASE") != "":
		stripeMode = "STRIPE_API_BASE " + get("STRIPE_API_BASE")
		if get("STRIPE_SECRET_KEY") == "" {
			env["STRIPE_SECRET_KEY"] = "sk_test_devserver"
		}
	case get("STRIPE_SECRET_KEY") == "":
		base, stop, err := startStripeMock(ctx, get("STRIPE_MOCK_BIN"))
		if err != nil {
			return fmt.Errorf("start stripe-mock (or set STRIPE_SECRET_KEY / STRIPE_API_BASE): %w", err)
		}
		defer stop()
		env["STRIPE_API_BASE"], env["STRIPE_SECRET_KEY"] = base, "sk_test_devserver"
		stripeMode = "stripe-mock at " + base + " (started by the dev server)"
	}

	port := get("PORT")
	if port == "" {
		port = "3000"
	}
	if get("PUBLIC_API_URL") == "" {
		env["PUBLIC_API_URL"] = "http://127.0.0.1:" + port
	}
	overlay := func(name string) (string, bool) {
		if v, ok := env[name]; ok {
			return v, true
		}
		return lookupEnv(name)
	}

	cfg, err := config.Load(overlay)
	if err != nil {
		return err
	}
	opts := app.Options{LookupEnv: overlay, Needs: config.Needs{StripeKey: true, WebhookSecrets: true}}
	dbMode := "DynamoDB at " + cfg.DynamoDBEndpoint
	if cfg.DynamoDBEndpoint == "" {
		// The same store code on an in-process engine: no server to run.
		mem := client.NewClient()
		if err := dynamostore.CreateTable(ctx, mem, cfg.TableName); err != nil {
			return err
		}
		opts.DynamoDB, dbMode = mem, "in-process DynamoDB engine (minidyn; data lives until exit)"
	}
	a, err := app.New(ctx, opts)
	if err != nil {
		return err
	}
	if cfg.DynamoDBEndpoint != "" {
		if admin, ok := a.StoreClient().(dynamostore.TableAdmin); ok {
			if err := dynamostore.CreateTable(ctx, admin, cfg.TableName); err != nil {
				return fmt.Errorf("create table %s: %w", cfg.TableName, err)
			}
		}
	}

	ln, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		return err
	}
	auth := Authorizer{Secret: []byte(jwtSecret), Issuer: DefaultIssuer, Audiences: []string{DefaultAudience}}
	if v := get("DEV_JWT_ISSUER"); v != "" {
		auth.Issuer = v
	}
	if v := config.SplitList(get("DEV_JWT_AUDIENCE")); len(v) > 0 {
		auth.Audiences = v
	}
	srv := &http.Server{Handler: New(a, auth), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(out, "dev server listening on http://%s\n  stripe: %s\n  dynamodb: %s\n", ln.Addr(), stripeMode, dbMode)
	fmt.Fprintf(out, "  jwt authorizer: HS256, iss %q, aud %q (DEV_JWT_ISSUER, DEV_JWT_AUDIENCE)\n", auth.Issuer, strings.Join(auth.Audiences, ","))
	for _, g := range generated {
		fmt.Fprintf(out, "  generated %s\n", g)
	}
	fmt.Fprintf(out, "  try: curl -s 'http://%s/dev/token?sub=alice&email=alice@example.com'\n", ln.Addr())

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	slog.Info("dev server stopping")
	return srv.Shutdown(shutdownCtx)
}

// startStripeMock runs the pinned stripe-mock on free loopback ports and
// returns its base URL and a function that stops it.
func startStripeMock(ctx context.Context, bin string) (string, func(), error) {
	ports, err := localproc.FreePorts(2)
	if err != nil {
		return "", nil, err
	}
	httpPort, httpsPort := ports[0], ports[1]
	args := []string{"-strict-version-check", "-http-addr", "127.0.0.1:" + httpPort, "-https-addr", "127.0.0.1:" + httpsPort}
	var cmd *exec.Cmd
	if bin == "" {
		bin = filepath.Join(".cache", "bin", "stripe-mock")
	}
	if _, err := os.Stat(bin); err == nil {
		cmd = exec.Command(bin, args...)
	} else {
		// Fall back to the tools module's pinned version.
		cmd = exec.Command("go", append([]string{"tool", "-modfile=tools/go.mod", "stripe-mock"}, args...)...)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		_ = cmd.Wait()
	}
	base := "http://127.0.0.1:" + httpPort
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(base + "/"); err == nil {
			resp.Body.Close()
			return base, stop, nil
		}
		select {
		case <-ctx.Done():
			stop()
			return "", nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	stop()
	return "", nil, errors.New("stripe-mock did not answer within 90 s")
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
