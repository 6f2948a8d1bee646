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
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
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
// STRIPE_SECRET_ARN or STRIPE_WEBHOOK_SECRET_ARN is set), refuses what
// cannot run, and builds clients.
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
	if cfg.SecretARN != "" || cfg.WebhookSecretARN != "" {
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
			// DynamoDB answers in milliseconds: an attempt that takes a second
			// is a host that stopped answering. Bounding each attempt (the SDK
			// tries three times) makes that a 503 in seconds instead of a hang
			// until the function times out (TestDynamoDBStoppedMidRunRecovers).
			o.HTTPClient = awshttp.NewBuildableClient().WithTimeout(dynamoAttemptTimeout)
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

// dynamoAttemptTimeout bounds one DynamoDB HTTP attempt.
const dynamoAttemptTimeout = time.Second

// Handler returns the logged handler of route.
func (a *App) Handler(r httpapi.Route) httpapi.Handler {
	return r.Handler(a.Service, a.Verifier, a.Logger)
}

// NeedsFor says which secrets the function serving route needs: the webhook
// function verifies signatures and never calls Stripe, so it holds the
// signing secrets and no API key; every other function calls Stripe.
func NeedsFor(r httpapi.Route) config.Needs {
	if r.Function == "webhook" {
		return config.Needs{WebhookSecrets: true}
	}
	return config.Needs{StripeKey: true}
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

// keySecretDocument is the JSON in STRIPE_SECRET_ARN's secret. Older
// stacks kept the webhook signing secrets in it too; they are still read.
type keySecretDocument struct {
	StripeSecretKey      string `json:"stripe_secret_key"`
	StripeWebhookSecrets string `json:"stripe_webhook_secrets"` // comma-separated, newest first
}

// webhookSecretDocument is the JSON in STRIPE_WEBHOOK_SECRET_ARN's secret.
type webhookSecretDocument struct {
	StripeWebhookSecrets string `json:"stripe_webhook_secrets"` // comma-separated, newest first
}

// loadSecrets reads the Stripe secrets once per cold start: the API key's
// secret (STRIPE_SECRET_ARN) and the webhook signing secrets' secret
// (STRIPE_WEBHOOK_SECRET_ARN), whichever are set, one request each. Signing
// secrets from their own secret win over any in the key's. Errors never
// include a secret's value.
func loadSecrets(ctx context.Context, e awsEnv, cfg *config.Config) error {
	client := &http.Client{Timeout: 5 * time.Second}
	read := func(arn string, doc any, shape string) error {
		secret, err := e.getSecretString(ctx, client, arn)
		if err != nil {
			return fmt.Errorf("read secret %s: %w", arn, err)
		}
		if json.Unmarshal([]byte(secret), doc) != nil {
			return errors.New("secret " + arn + " must be JSON: " + shape)
		}
		return nil
	}
	if cfg.SecretARN != "" {
		var doc keySecretDocument
		if err := read(cfg.SecretARN, &doc, `{"stripe_secret_key":"sk_..."}`); err != nil {
			return err
		}
		if doc.StripeSecretKey != "" {
			cfg.StripeSecretKey = doc.StripeSecretKey
		}
		if doc.StripeWebhookSecrets != "" {
			cfg.WebhookSecrets = config.SplitList(doc.StripeWebhookSecrets)
		}
	}
	if cfg.WebhookSecretARN != "" && cfg.WebhookSecretARN != cfg.SecretARN {
		var doc webhookSecretDocument
		if err := read(cfg.WebhookSecretARN, &doc, `{"stripe_webhook_secrets":"whsec_new,whsec_old"}`); err != nil {
			return err
		}
		if doc.StripeWebhookSecrets != "" {
			cfg.WebhookSecrets = config.SplitList(doc.StripeWebhookSecrets)
		}
	}
	return nil
}

// StoreClient returns the DynamoDB client the store uses (the dev server
// creates its table through it).
func (a *App) StoreClient() dynamostore.Client { return a.db }
