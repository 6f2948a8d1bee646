// Package storeapp is the part of the wiring every function shares:
// configuration, secrets from Secrets Manager, the AWS environment, the
// DynamoDB client and the store. It holds no Stripe client, so a function
// that only reads storage (the staff reads, the stream consumer) links no
// Stripe code: shared/app builds the Stripe side on top of it.
package storeapp

import (
	"context"
	"fmt"
	"log/slog"
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
)

// Base is the wired storage side of a process.
type Base struct {
	Config config.Config
	Logger *slog.Logger
	Store  *dynamostore.Store
	DB     dynamostore.Client
	Now    func() time.Time
	// secrets reads the Stripe key and signing secrets again every
	// SECRETS_TTL; nil when no ARN is set.
	secrets *secretSource
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
	// Now is the clock (default time.Now); tests move it past SECRETS_TTL.
	Now func() time.Time
	// WrapDynamoDB, when set, wraps the DynamoDB client the store uses
	// (the dev server adds what its engine lacks: streams).
	WrapDynamoDB func(dynamostore.Client) dynamostore.Client
}

// New loads configuration (and secrets, from Secrets Manager when
// STRIPE_SECRET_ARN or STRIPE_WEBHOOK_SECRET_ARN is set, read again every
// SECRETS_TTL), refuses what cannot run, and builds the DynamoDB client and
// the store.
func New(ctx context.Context, opts Options) (*Base, error) {
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
	if secrets != nil {
		// A key of the other mode arriving by rotation is refused.
		secrets.livemode = cfg.Livemode()
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
	return &Base{
		Config: cfg, Logger: logger, Store: dynamostore.New(db, cfg.TableName), DB: db, Now: now,
		secrets: secrets, aws: awsEnvironment, awsErr: awsErr,
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

// StripeKeyFunc returns the Stripe key as Secrets Manager holds it now
// (rotations take effect within SECRETS_TTL), or nil when the key comes
// from the environment.
func (b *Base) StripeKeyFunc() func() string {
	if b.secrets == nil || b.Config.SecretARN == "" {
		return nil
	}
	return b.secrets.StripeKey
}

// WebhookSecretsFunc is StripeKeyFunc for the signing secrets.
func (b *Base) WebhookSecretsFunc() func() []string {
	if b.secrets == nil || b.Config.WebhookSecretARN == "" {
		return nil
	}
	return b.secrets.WebhookSecrets
}

// AWS returns the SDK settings the clients are built with and the endpoint
// override of one service (AWS_ENDPOINT_URL_<SERVICE>, "" for AWS's own),
// for clients of services only one function uses (shared/eventsapp).
func (b *Base) AWS(service string) (aws.Config, string, error) {
	if b.awsErr != nil {
		return aws.Config{}, "", b.awsErr
	}
	return b.aws.config(), b.aws.endpoint(service), nil
}

// StoreOnlyService is the core for a function that never calls Stripe: its
// Connect is absent, so a use case that reached Stripe would be a wiring
// mistake, which Lambda refuses at start (Route.StoreOnly).
func (b *Base) StoreOnlyService() *onboarding.Service {
	return onboarding.NewService(b.Store, nil, b.Config.Policy, onboarding.WithStaffStore(b.Store), onboarding.WithLogger(b.Logger), onboarding.WithClock(b.Now))
}

// Lambda builds the function serving a store-only route (the staff reads)
// and returns its handler for lambda.Start. It holds no secret and links no
// Stripe client. A route that calls Stripe, or a configuration it cannot
// serve, stops the cold start with the reason in the function's log.
func Lambda(route httpapi.Route) func(context.Context, httpapi.Request) (httpapi.Response, error) {
	if !route.StoreOnly {
		Fail(fmt.Errorf("route %s calls Stripe: its function starts with app.Lambda", route.Key()))
	}
	b, err := New(context.Background(), Options{})
	if err != nil {
		Fail(err)
	}
	return httpapi.LambdaHandler(route.Handler(b.StoreOnlyService(), nil, b.Logger))
}

// Fail ends a cold start that cannot serve, with one log line saying why.
func Fail(err error) {
	slog.New(slog.NewJSONHandler(os.Stderr, nil)).Error("cannot start", "error", err.Error())
	os.Exit(1)
}
