// Package app wires configuration, AWS and Stripe clients and the onboarding
// core together, once per process: the Lambda functions and the dev server
// both start here, so only the wiring differs between them.
package app

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/connectexpress/onboarding/shared/config"
	"github.com/connectexpress/onboarding/shared/dynamostore"
	"github.com/connectexpress/onboarding/shared/httpapi"
	"github.com/connectexpress/onboarding/shared/onboarding"
	"github.com/connectexpress/onboarding/shared/storeapp"
	"github.com/connectexpress/onboarding/shared/stripeconnect"
)

// App is a wired process: the storage side (shared/storeapp) and the
// Stripe client and signature checks on top of it.
type App struct {
	Config   config.Config
	Logger   *slog.Logger
	Service  *onboarding.Service
	Verifier *stripeconnect.Verifier
	Store    *dynamostore.Store
	db       dynamostore.Client
	connect  *stripeconnect.Client
	base     *storeapp.Base
}

// Options adjust New; the zero value is what a Lambda uses.
type Options struct {
	LookupEnv func(string) (string, bool) // default os.LookupEnv
	Logger    *slog.Logger                // default JSON to stderr at LOG_LEVEL
	DynamoDB  dynamostore.Client          // default: the AWS SDK client
	Needs     config.Needs
	// StripeTransport carries Stripe requests (default net/http's).
	StripeTransport http.RoundTripper
	// Now is the clock (default time.Now); tests move it past SECRETS_TTL.
	Now func() time.Time
	// WrapDynamoDB, when set, wraps the DynamoDB client the store uses
	// (the dev server adds what its engine lacks: streams).
	WrapDynamoDB func(dynamostore.Client) dynamostore.Client
}

// New loads configuration (and secrets, from Secrets Manager when
// STRIPE_SECRET_ARN or STRIPE_WEBHOOK_SECRET_ARN is set, read again every
// SECRETS_TTL), refuses what cannot run, and builds clients.
func New(ctx context.Context, opts Options) (*App, error) {
	base, err := storeapp.New(ctx, storeapp.Options{
		LookupEnv: opts.LookupEnv, Logger: opts.Logger, DynamoDB: opts.DynamoDB, Needs: opts.Needs,
		Now: opts.Now, WrapDynamoDB: opts.WrapDynamoDB,
	})
	if err != nil {
		return nil, err
	}
	cfg, now := base.Config, base.Now
	stripeCfg := stripeconnect.Config{
		SecretKey: cfg.StripeSecretKey, APIBase: cfg.StripeAPIBase,
		Timeout: cfg.StripeTimeout, MaxNetworkRetries: cfg.StripeMaxRetries,
		Transport: opts.StripeTransport,
		// Rotated values take effect within SECRETS_TTL, without a redeploy.
		SecretKeyFunc: base.StripeKeyFunc(),
	}
	verifier := stripeconnect.NewVerifier(cfg.WebhookSecrets, now)
	if rotating := base.WebhookSecretsFunc(); rotating != nil {
		verifier = stripeconnect.NewRotatingVerifier(rotating, now)
	}
	connect := stripeconnect.New(stripeCfg)
	return &App{
		Config:   cfg,
		Logger:   base.Logger,
		Service:  onboarding.NewService(base.Store, connect, cfg.Policy, onboarding.WithStaffStore(base.Store), onboarding.WithLogger(base.Logger), onboarding.WithClock(now)),
		Verifier: verifier,
		Store:    base.Store,
		db:       base.DB,
		connect:  connect,
		base:     base,
	}, nil
}

// Handler returns the logged handler of route.
func (a *App) Handler(r httpapi.Route) httpapi.Handler {
	return r.Handler(a.Service, a.Verifier, a.Logger)
}

// NeedsFor says which secrets the function serving route needs: the webhook
// function verifies signatures with the signing secrets, and holds the API
// key too, to read an account from Stripe when two events of one second
// disagree (onboarding.Service.HandleEvent); the staff list and account
// read storage only and hold no secret; every other function calls Stripe.
//
// It reads the route's own fields, never another route's value: naming
// httpapi.Webhook here would link the webhook's handler into every function.
func NeedsFor(r httpapi.Route) config.Needs {
	switch {
	case r.VerifiesSignatures():
		return config.Needs{WebhookSecrets: true, StripeKey: true}
	case r.StoreOnly:
		return config.Needs{}
	}
	return config.Needs{StripeKey: true}
}

// Lambda builds the App for the function serving route and returns its
// handler for lambda.Start. A configuration it cannot serve stops the cold
// start, with the reason in the function's log.
func Lambda(route httpapi.Route) func(context.Context, httpapi.Request) (httpapi.Response, error) {
	a, err := New(context.Background(), Options{Needs: NeedsFor(route)})
	if err != nil {
		fail(err)
	}
	return httpapi.LambdaHandler(a.Handler(route))
}

func fail(err error) { storeapp.Fail(err) }

// StoreClient returns the DynamoDB client the store uses (the dev server
// creates its table through it).
func (a *App) StoreClient() dynamostore.Client { return a.db }
