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

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

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

	var awsCfg *aws.Config
	loadAWS := func() (aws.Config, error) {
		if awsCfg != nil {
			return *awsCfg, nil
		}
		c, err := awsConfig(ctx, cfg, opts.LookupEnv)
		awsCfg = &c
		return c, err
	}
	if cfg.SecretARN != "" {
		c, err := loadAWS()
		if err != nil {
			return nil, fmt.Errorf("aws config: %w", err)
		}
		if err := loadSecrets(ctx, secretsmanager.NewFromConfig(c), &cfg); err != nil {
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
		c, err := loadAWS()
		if err != nil {
			return nil, fmt.Errorf("aws config: %w", err)
		}
		db = dynamodb.NewFromConfig(c, func(o *dynamodb.Options) {
			if cfg.DynamoDBEndpoint != "" {
				o.BaseEndpoint = aws.String(cfg.DynamoDBEndpoint)
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

// awsConfig loads the SDK configuration. Against a local endpoint without
// credentials in the environment it uses static dummy ones, so the SDK never
// probes the instance metadata service on a laptop or in CI.
func awsConfig(ctx context.Context, cfg config.Config, lookupEnv func(string) (string, bool)) (aws.Config, error) {
	opts := []func(*awsconfig.LoadOptions) error{awsconfig.WithRegion(cfg.Region)}
	if _, hasKey := lookupEnv("AWS_ACCESS_KEY_ID"); cfg.DynamoDBEndpoint != "" && !hasKey {
		opts = append(opts, awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("local", "local", "")))
	}
	return awsconfig.LoadDefaultConfig(ctx, opts...)
}

// secretDocument is the JSON stored in the stack's Secrets Manager secret.
type secretDocument struct {
	StripeSecretKey      string `json:"stripe_secret_key"`
	StripeWebhookSecrets string `json:"stripe_webhook_secrets"` // comma-separated, newest first
}

type secretsReader interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// loadSecrets reads the Stripe secrets once per cold start. Errors never
// include the secret's value.
func loadSecrets(ctx context.Context, sm secretsReader, cfg *config.Config) error {
	out, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(cfg.SecretARN)})
	if err != nil {
		return fmt.Errorf("read secret %s: %w", cfg.SecretARN, err)
	}
	var doc secretDocument
	if out.SecretString == nil || json.Unmarshal([]byte(*out.SecretString), &doc) != nil {
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
