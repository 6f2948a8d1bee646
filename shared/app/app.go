// Package app wires configuration, AWS and Stripe clients and the onboarding
// core together, once per process: the Lambda functions and the dev server
// both start here, so only the wiring differs between them.
package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/connectexpress/onboarding/shared/config"
	"github.com/connectexpress/onboarding/shared/dynamostore"
	"github.com/connectexpress/onboarding/shared/httpapi"
	"github.com/connectexpress/onboarding/shared/onboarding"
	"github.com/connectexpress/onboarding/shared/stripeconnect"
)

// App is a wired process.
type App struct {
	Config   config.Config
	Logger   *slog.Logger
	Service  *onboarding.Service
	Verifier *stripeconnect.Verifier
	Store    *dynamostore.Store
	db       dynamostore.Client
}

// Options adjust New; the zero value is what a Lambda uses.
type Options struct {
	LookupEnv func(string) (string, bool) // default os.LookupEnv
	Logger    *slog.Logger                // default JSON to stderr at LOG_LEVEL
	DynamoDB  dynamostore.Client          // default: the AWS SDK client
	Needs     config.Needs
	// StripeTransport carries Stripe requests (default net/http's).
	StripeTransport http.RoundTripper
}

// New loads configuration (and secrets, from Secrets Manager when
// STRIPE_SECRET_ARN is set), refuses what cannot run, and builds clients.
func New(ctx context.Context, opts Options) (*App, error) {
	if opts.LookupEnv == nil {
		opts.LookupEnv = os.LookupEnv
	}
	cfg, err := config.Load(opts.LookupEnv)
	if err != nil {
		return nil, err
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	}

	awsEnvironment, awsErr := loadAWSEnv(opts.LookupEnv, cfg.DynamoDBEndpoint != "")
	if cfg.SecretARN != "" {
		if awsErr != nil {
			return nil, awsErr
		}
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if err := loadSecrets(ctx, awsEnvironment, &cfg); err != nil {
			return nil, err
		}
	}
	warnings, err := cfg.Validate(opts.Needs)
	if err != nil {
		return nil, fmt.Errorf("configuration refused:\n%w", err)
	}
	for _, w := range warnings {
		logger.Warn(w)
	}

	db := opts.DynamoDB
	if db == nil {
		if awsErr != nil {
			return nil, awsErr
		}
		endpoint := cfg.DynamoDBEndpoint
		if endpoint == "" {
			endpoint = awsEnvironment.endpoint("DYNAMODB")
		}
		db = dynamodb.NewFromConfig(awsEnvironment.config(), func(o *dynamodb.Options) {
			if endpoint != "" {
				o.BaseEndpoint = aws.String(endpoint)
			}
		})
	}
	store := dynamostore.New(db, cfg.TableName)
	connect := stripeconnect.New(stripeconnect.Config{
		SecretKey: cfg.StripeSecretKey, APIBase: cfg.StripeAPIBase,
		Timeout: cfg.StripeTimeout, MaxNetworkRetries: cfg.StripeMaxRetries, Logger: logger,
		Transport: opts.StripeTransport,
	})
	return &App{
		Config:   cfg,
		Logger:   logger,
		Service:  onboarding.NewService(store, connect, cfg.Policy, onboarding.WithLogger(logger)),
		Verifier: stripeconnect.NewVerifier(cfg.WebhookSecrets, nil),
		Store:    store,
		db:       db,
	}, nil
}

// Handler returns the logged handler of route.
func (a *App) Handler(r httpapi.Route) httpapi.Handler {
	return r.Handler(a.Service, a.Verifier, a.Logger)
}

// NeedsFor says which secrets the function serving route needs.
func NeedsFor(r httpapi.Route) config.Needs {
	return config.Needs{StripeKey: true, WebhookSecrets: r.Function == "webhook"}
}

// Lambda builds the App for one function and returns its handler for
// lambda.Start. A configuration it cannot serve stops the cold start, with
// the reason in the function's log.
func Lambda(function string) func(context.Context, httpapi.Request) (httpapi.Response, error) {
	route, ok := httpapi.FunctionRoute(function)
	if !ok {
		fail(fmt.Errorf("no route for function %q", function))
	}
	a, err := New(context.Background(), Options{Needs: NeedsFor(route)})
	if err != nil {
		fail(err)
	}
	return httpapi.LambdaHandler(a.Handler(route))
}

func fail(err error) {
	slog.New(slog.NewJSONHandler(os.Stderr, nil)).Error("cannot start", "error", err.Error())
	os.Exit(1)
}

// secretDocument is the JSON stored in the stack's Secrets Manager secret.
type secretDocument struct {
	StripeSecretKey      string `json:"stripe_secret_key"`
	StripeWebhookSecrets string `json:"stripe_webhook_secrets"` // comma-separated, newest first
}

// loadSecrets reads the Stripe secrets once per cold start. Errors never
// include the secret's value.
func loadSecrets(ctx context.Context, e awsEnv, cfg *config.Config) error {
	secret, err := e.getSecretString(ctx, &http.Client{Timeout: 5 * time.Second}, cfg.SecretARN)
	if err != nil {
		return fmt.Errorf("read secret %s: %w", cfg.SecretARN, err)
	}
	var doc secretDocument
	if json.Unmarshal([]byte(secret), &doc) != nil {
		return errors.New("secret " + cfg.SecretARN + ` must be JSON: {"stripe_secret_key":"sk_...","stripe_webhook_secrets":"whsec_..."}`)
	}
	if doc.StripeSecretKey != "" {
		cfg.StripeSecretKey = doc.StripeSecretKey
	}
	if doc.StripeWebhookSecrets != "" {
		cfg.WebhookSecrets = config.SplitList(doc.StripeWebhookSecrets)
	}
	return nil
}

// StoreClient returns the DynamoDB client the store uses (the dev server
// creates its table through it).
func (a *App) StoreClient() dynamostore.Client { return a.db }
