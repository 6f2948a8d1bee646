// Package app wires configuration, AWS and Stripe clients and the onboarding
// core together, once per process: the Lambda functions and the dev server
// both start here, so only the wiring differs between them.
package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
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
	connect  *stripeconnect.Client
	// aws reaches the AWS services besides DynamoDB (EventBridge), or
	// awsErr says why it cannot.
	aws    awsEnv
	awsErr error
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
	if opts.LookupEnv == nil {
		opts.LookupEnv = os.LookupEnv
	}
	now := opts.Now
	if now == nil {
		now = time.Now
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
	var secrets *secretSource
	if cfg.SecretARN != "" || cfg.WebhookSecretARN != "" {
		if awsErr != nil {
			return nil, awsErr
		}
		if secrets, err = newSecretSource(ctx, awsEnvironment, cfg, now, logger); err != nil {
			return nil, err
		}
		if cfg.SecretARN != "" {
			cfg.StripeSecretKey = secrets.key
		}
		if cfg.WebhookSecretARN != "" {
			cfg.WebhookSecrets = secrets.webhooks
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
			// tries four times) makes that a 503 in seconds instead of a hang
			// until the function times out (TestDynamoDBStoppedMidRunRecovers).
			o.HTTPClient = awshttp.NewBuildableClient().WithTimeout(dynamoAttemptTimeout)
			o.Retryer = dynamoRetryer()
		})
	}
	if opts.WrapDynamoDB != nil {
		db = opts.WrapDynamoDB(db)
	}
	store := dynamostore.New(db, cfg.TableName)
	stripeCfg := stripeconnect.Config{
		SecretKey: cfg.StripeSecretKey, APIBase: cfg.StripeAPIBase,
		Timeout: cfg.StripeTimeout, MaxNetworkRetries: cfg.StripeMaxRetries,
		Transport: opts.StripeTransport,
	}
	verifier := stripeconnect.NewVerifier(cfg.WebhookSecrets, now)
	if secrets != nil {
		// Rotated values take effect within SECRETS_TTL, without a redeploy.
		secrets.livemode = cfg.Livemode()
		if cfg.SecretARN != "" {
			stripeCfg.SecretKeyFunc = secrets.StripeKey
		}
		if cfg.WebhookSecretARN != "" {
			verifier = stripeconnect.NewRotatingVerifier(secrets.WebhookSecrets, now)
		}
	}
	connect := stripeconnect.New(stripeCfg)
	return &App{
		Config:   cfg,
		Logger:   logger,
		Service:  onboarding.NewService(store, connect, cfg.Policy, onboarding.WithStaffStore(store), onboarding.WithLogger(logger), onboarding.WithClock(now)),
		Verifier: verifier,
		Store:    store,
		db:       db,
		connect:  connect,
		aws:      awsEnvironment,
		awsErr:   awsErr,
	}, nil
}

// dynamoAttemptTimeout bounds one DynamoDB HTTP attempt.
const dynamoAttemptTimeout = time.Second

// dynamoRetryer is the SDK's standard retryer as the DynamoDB client builds
// it when given none (4 attempts, 25 ms base backoff), which also retries
// transactions cancelled by a conflict with another one
// (dynamostore.RetryTransactionConflicts): DynamoDB cancels both of two
// transactions that race on one item, and neither was applied.
func dynamoRetryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts, o.BaseDelay = 4, 25*time.Millisecond
	}, dynamostore.RetryTransactionConflicts)
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
func NeedsFor(r httpapi.Route) config.Needs {
	switch r.Function {
	case httpapi.Webhook.Function:
		return config.Needs{WebhookSecrets: true, StripeKey: true}
	case httpapi.AdminListAccounts.Function, httpapi.AdminGetAccount.Function:
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

func fail(err error) {
	slog.New(slog.NewJSONHandler(os.Stderr, nil)).Error("cannot start", "error", err.Error())
	os.Exit(1)
}

// StoreClient returns the DynamoDB client the store uses (the dev server
// creates its table through it).
func (a *App) StoreClient() dynamostore.Client { return a.db }
