// Command stripesim runs the local Stripe Connect simulator on its own:
//
//	go run ./cmd/stripesim                    # http://127.0.0.1:3001
//	go run ./cmd/stripesim -addr 127.0.0.1:4000
//
// Point a Stripe client at it with STRIPE_API_BASE=http://127.0.0.1:3001 and
// any test key (sk_test_...); register a Connect webhook endpoint through its
// API (POST /v1/webhook_endpoints, connect=true) to receive signed events.
// SIM_LINK_TTL, SIM_VERIFY_DELAY, SIM_CHAOS, SIM_RETRY_SCALE and
// SIM_REJECT_BALANCE_RULE tune it (see package internal/stripesim). `make dev`
// runs the same simulator inside the dev
// server; this command is for using it with anything else.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/connectexpress/onboarding/internal/stripesim"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:3001", "listen address (keep it on loopback)")
	flag.Parse()
	if err := run(*addr); err != nil {
		fmt.Fprintln(os.Stderr, "stripesim:", err)
		os.Exit(1)
	}
}

func run(addr string) error {
	opts, err := stripesim.OptionsFromEnv(os.LookupEnv)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	base := "http://" + ln.Addr().String()
	opts.PublicURL = base
	opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	sim := stripesim.New(opts)
	defer sim.Close()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	fmt.Printf("local Stripe simulator (not Stripe) listening on %s\n", base)
	fmt.Printf("  use it with: STRIPE_API_BASE=%s STRIPE_SECRET_KEY=sk_test_anything\n", base)
	fmt.Printf("  state, endpoints and deliveries: %s/\n", base)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}
