// Command registerwebhook registers the deployed stack's webhook URL at Stripe
// as a Connect webhook endpoint (connect=true, the API version stripe-go v76
// parses, exactly the event types the webhook handles) and stores the
// endpoint's signing secret in the stack's webhook secret (the
// StripeWebhookSecretArn output), the one only the webhook function reads.
// It never prints a secret.
//
//	make register-webhook                    # stack connect-onboarding
//	go run ./cmd/registerwebhook -stack my-stack
//	go run ./cmd/registerwebhook -url https://api.example.com/webhooks/stripe -secret-arn arn:aws:secretsmanager:... [-key-secret-arn arn:...]
//
// The Stripe key is STRIPE_SECRET_KEY if set, else the one stored in the API
// key's secret (-key-secret-arn, default the stack's StripeSecretArn output);
// this program only reads that secret. AWS access uses the SDK's usual chain
// (AWS_PROFILE, AWS_REGION, ...). Stripe shows an endpoint's signing secret
// only when it is created, so an endpoint already registered for the URL is
// left alone unless -replace is given: then a new endpoint is created, its
// secret stored as the current one, the secrets it replaces kept as retired
// ones that verify deliveries in flight only until -retire-after (default
// 24h, as Stripe's own roll allows) has passed, and the old endpoints are
// deleted.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/stripe/stripe-go/v76"

	"github.com/connectexpress/onboarding/shared/config"
	"github.com/connectexpress/onboarding/shared/onboarding"
	"github.com/connectexpress/onboarding/shared/stripeconnect"
)

// keepSecrets bounds the webhook secrets kept for rotation, newest first.
const keepSecrets = 3

// defaultRetireAfter is how long a replaced signing secret keeps verifying:
// Stripe's own "Roll secret" lets the old secret work for up to 24 hours
// (https://docs.stripe.com/webhooks#roll-endpoint-secrets).
const defaultRetireAfter = 24 * time.Hour

// retiredSecret is one entry of the document's stripe_webhook_secrets_retired
// (shared/app reads it: app.RetiredWebhookSecret).
type retiredSecret struct {
	Secret    string `json:"secret"`
	ExpiresAt string `json:"expires_at"` // RFC 3339
}

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "registerwebhook:", err)
		os.Exit(1)
	}
}

type options struct {
	stack, url, region string
	secretARN          string // where the signing secret goes
	keySecretARN       string // where the Stripe key is read from, without STRIPE_SECRET_KEY
	replace            bool
	// retireAfter is how long a replaced secret keeps verifying;
	// retireAfterSet says it came from -retire-after or RETIRED_SECRET_TTL,
	// which win over the stack's RetiredWebhookSecretTtl output.
	retireAfter    time.Duration
	retireAfterSet bool
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	o, err := parseFlags(args)
	if err != nil {
		return err
	}
	var loadOpts []func(*awsconfig.LoadOptions) error
	if o.region != "" {
		loadOpts = append(loadOpts, awsconfig.WithRegion(o.region))
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return fmt.Errorf("aws config: %w", err)
	}
	if err := o.fromStack(ctx, cloudformation.NewFromConfig(awsCfg)); err != nil {
		return err
	}
	if err := o.check(); err != nil {
		return err
	}
	sm := secretsmanager.NewFromConfig(awsCfg)
	doc, err := readSecret(ctx, sm, o.secretARN)
	if err != nil {
		return err
	}
	key, err := o.stripeKey(ctx, sm)
	if err != nil {
		return err
	}
	endpoints := stripeconnect.NewWebhookEndpoints(stripeconnect.Config{
		SecretKey: key, APIBase: os.Getenv("STRIPE_API_BASE"), Timeout: 30 * time.Second,
	})
	existing, err := endpoints.ListFor(ctx, o.url)
	if err != nil {
		return fmt.Errorf("list the webhook endpoints: %w", stripeError(err))
	}
	if len(existing) > 0 && !o.replace {
		return fmt.Errorf("%s is already registered at Stripe as %s; Stripe shows a signing secret only at creation: "+
			"rerun with -replace to create a new endpoint, store its secret and delete the old one", o.url, strings.Join(existing, ", "))
	}
	if err := registerAndStore(ctx, endpoints, sm, o, doc, stdout); err != nil {
		return err
	}
	return deleteOld(ctx, endpoints, existing, stdout)
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("registerwebhook", flag.ContinueOnError)
	fs.StringVar(&o.stack, "stack", "", "CloudFormation stack whose WebhookUrl, StripeWebhookSecretArn and StripeSecretArn outputs to use")
	fs.StringVar(&o.url, "url", "", "webhook URL to register (default: the stack's WebhookUrl output)")
	fs.StringVar(&o.secretARN, "secret-arn", "", "Secrets Manager secret to store the signing secret in (default: the stack's StripeWebhookSecretArn output)")
	fs.StringVar(&o.keySecretARN, "key-secret-arn", "", "Secrets Manager secret holding the Stripe key, when STRIPE_SECRET_KEY is not set (default: the stack's StripeSecretArn output)")
	fs.StringVar(&o.region, "region", "", "AWS region (default: the SDK's, e.g. AWS_REGION)")
	fs.BoolVar(&o.replace, "replace", false, "if the URL is already registered, create a new endpoint and delete the old ones")
	fs.DurationVar(&o.retireAfter, "retire-after", defaultRetireAfter,
		"how long the secrets a -replace retires keep verifying (default: RETIRED_SECRET_TTL, else the stack's RetiredWebhookSecretTtl output, else 24h; 0 stops them at once, e.g. after a leak)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	fs.Visit(func(f *flag.Flag) { o.retireAfterSet = o.retireAfterSet || f.Name == "retire-after" })
	if raw := strings.TrimSpace(os.Getenv("RETIRED_SECRET_TTL")); raw != "" && !o.retireAfterSet {
		d, err := time.ParseDuration(raw)
		if err != nil {
			return o, fmt.Errorf("RETIRED_SECRET_TTL: %q is not a duration such as 24h", raw)
		}
		o.retireAfter, o.retireAfterSet = d, true
	}
	if o.retireAfter < 0 {
		return o, errors.New("-retire-after must not be negative")
	}
	return o, nil
}

// check refuses options that cannot work, before anything is read.
func (o *options) check() error {
	if u, err := url.Parse(o.url); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("-url %q is not an absolute http(s) URL", o.url)
	}
	if o.secretARN == "" {
		return errors.New("no secret: give -stack or -secret-arn")
	}
	if o.keySecretARN == o.secretARN {
		// The webhook function reads the signing secret's document: it
		// must not hold the API key too.
		return errors.New("-secret-arn and -key-secret-arn name the same secret: the key and the signing secrets belong in the stack's two secrets")
	}
	return nil
}

// stripeKey is STRIPE_SECRET_KEY, or the key stored in -key-secret-arn.
func (o *options) stripeKey(ctx context.Context, sm *secretsmanager.Client) (string, error) {
	if key := strings.TrimSpace(os.Getenv("STRIPE_SECRET_KEY")); key != "" {
		return key, nil
	}
	if o.keySecretARN == "" {
		return "", errors.New("no Stripe key: set STRIPE_SECRET_KEY, or give -key-secret-arn (or -stack)")
	}
	doc, err := readSecret(ctx, sm, o.keySecretARN)
	if err != nil {
		return "", err
	}
	if key, _ := doc["stripe_secret_key"].(string); key != "" {
		return key, nil
	}
	return "", fmt.Errorf("no Stripe key: set STRIPE_SECRET_KEY, or store it in the secret first:\n"+
		`  aws secretsmanager put-secret-value --secret-id %s --secret-string '{"stripe_secret_key":"sk_test_..."}'`, o.keySecretARN)
}

// registerAndStore creates the endpoint and puts its signing secret first
// in the webhook secret's document; an endpoint whose secret cannot be
// stored is useless, so it is deleted again.
func registerAndStore(ctx context.Context, endpoints *stripeconnect.WebhookEndpoints, sm *secretsmanager.Client, o options, doc map[string]any, stdout io.Writer) error {
	// The same registration the dev server makes on the local simulator.
	ep, err := endpoints.Register(ctx, o.url, "Connect Express onboarding"+stackNote(o.stack))
	if err != nil {
		return fmt.Errorf("create the webhook endpoint: %w", stripeError(err))
	}
	if ep.Secret == "" {
		deleteEndpoint(ctx, endpoints, ep.ID)
		return fmt.Errorf("the new endpoint %s came back without its signing secret; deleted it again", ep.ID)
	}
	if err := config.CheckWebhookSecret(ep.Secret); err != nil {
		// The webhook function would refuse it: storing it would stop
		// every delivery instead of rotating.
		deleteEndpoint(ctx, endpoints, ep.ID)
		return fmt.Errorf("the new endpoint %s came back with a signing secret the webhook function refuses (%v); deleted it again", ep.ID, err)
	}
	now := time.Now()
	retired := retireSecrets(ep.Secret, doc, now, o.retireAfter)
	doc["stripe_webhook_secrets"] = ep.Secret
	if len(retired) > 0 {
		doc["stripe_webhook_secrets_retired"] = retired
	} else {
		delete(doc, "stripe_webhook_secrets_retired")
	}
	if err := writeSecret(ctx, sm, o.secretARN, doc); err != nil {
		deleteEndpoint(ctx, endpoints, ep.ID)
		return fmt.Errorf("%w (the new endpoint %s was deleted again)", err, ep.ID)
	}
	fmt.Fprintf(stdout, "registered %s for %s (connect, api_version %s, events %s)\n",
		ep.ID, o.url, stripe.APIVersion, strings.Join(onboarding.HandledEventTypes, ", "))
	fmt.Fprintf(stdout, "stored its signing secret in %s\n", o.secretARN)
	if len(retired) > 0 {
		fmt.Fprintf(stdout, "the %d secret(s) it replaces verify until %s at the latest\n", len(retired), now.Add(o.retireAfter).UTC().Format(time.RFC3339))
	}
	return nil
}

// deleteOld deletes the endpoints a -replace run replaced.
func deleteOld(ctx context.Context, endpoints *stripeconnect.WebhookEndpoints, ids []string, stdout io.Writer) error {
	for _, id := range ids {
		if err := endpoints.Delete(ctx, id); err != nil {
			return fmt.Errorf("delete the old endpoint %s: %w", id, stripeError(err))
		}
		fmt.Fprintf(stdout, "deleted the old endpoint %s\n", id)
	}
	if len(ids) > 0 {
		fmt.Fprintln(stdout, "running webhook functions read the new secret within SECRETS_TTL (default 5m): Stripe retries what they reject until then")
	}
	return nil
}

func stackNote(stack string) string {
	if stack == "" {
		return ""
	}
	return " (stack " + stack + ")"
}

// fromStack fills -url, -secret-arn and -key-secret-arn from the stack's
// outputs, leaving what was given alone.
func (o *options) fromStack(ctx context.Context, cf *cloudformation.Client) error {
	if o.stack == "" {
		if o.url == "" {
			return errors.New("give -stack, or -url and -secret-arn")
		}
		return nil
	}
	out, err := cf.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(o.stack)})
	if err != nil {
		return fmt.Errorf("read the outputs of stack %s: %w", o.stack, err)
	}
	if len(out.Stacks) != 1 {
		return fmt.Errorf("stack %s not found", o.stack)
	}
	outputs := map[string]string{}
	for _, op := range out.Stacks[0].Outputs {
		outputs[aws.ToString(op.OutputKey)] = aws.ToString(op.OutputValue)
	}
	if o.url == "" {
		o.url = outputs["WebhookUrl"]
	}
	if o.keySecretARN == "" {
		o.keySecretARN = outputs["StripeSecretArn"]
	}
	if o.secretARN == "" {
		o.secretARN = outputs["StripeWebhookSecretArn"]
	}
	if raw := outputs["RetiredWebhookSecretTtl"]; raw != "" && !o.retireAfterSet {
		d, err := time.ParseDuration(raw)
		if err != nil || d < 0 {
			return fmt.Errorf("stack %s: output RetiredWebhookSecretTtl %q is not a duration such as 24h", o.stack, raw)
		}
		o.retireAfter = d
	}
	if o.url == "" || o.secretARN == "" {
		return fmt.Errorf("stack %s has no WebhookUrl/StripeWebhookSecretArn outputs: is it this project's template.yaml?", o.stack)
	}
	return nil
}

// readSecret returns the secret's JSON document, keeping fields this tool
// does not know.
func readSecret(ctx context.Context, sm *secretsmanager.Client, arn string) (map[string]any, error) {
	out, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn)})
	if err != nil {
		return nil, fmt.Errorf("read secret %s: %w", arn, err)
	}
	doc := map[string]any{}
	if s := aws.ToString(out.SecretString); strings.TrimSpace(s) != "" {
		if err := json.Unmarshal([]byte(s), &doc); err != nil {
			// Never echo the value: it may be a key stored the wrong way.
			return nil, fmt.Errorf(`secret %s is not a JSON document such as {"stripe_webhook_secrets":...} or {"stripe_secret_key":...}`, arn)
		}
	}
	return doc, nil
}

func writeSecret(ctx context.Context, sm *secretsmanager.Client, arn string, doc map[string]any) error {
	raw, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	if _, err := sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(arn), SecretString: aws.String(string(raw))}); err != nil {
		return fmt.Errorf("store the signing secret in %s: %w", arn, err)
	}
	return nil
}

// retireSecrets gives the retired entries to store next to newest: the
// secrets the document held as current expire retireAfter from now, those
// already retired keep their expiry (never a later one), expired ones are
// dropped, newest first, keepSecrets in all with newest. A document written
// before expiries existed held its retired secrets in stripe_webhook_secrets:
// they are retired here like the current one. With retireAfter 0 nothing
// stays: every older secret stops verifying at once.
func retireSecrets(newest string, doc map[string]any, now time.Time, retireAfter time.Duration) []retiredSecret {
	if retireAfter <= 0 {
		return nil
	}
	expiry := now.Add(retireAfter).UTC().Truncate(time.Second)
	seen := []string{newest}
	var out []retiredSecret
	add := func(secret string, expiresAt time.Time) {
		// One the webhook function would refuse (a short secret stored
		// before it checked) would make it refuse the whole document.
		if slices.Contains(seen, secret) || len(out) >= keepSecrets-1 || !expiresAt.After(now) || config.CheckWebhookSecret(secret) != nil {
			return
		}
		seen = append(seen, secret)
		out = append(out, retiredSecret{Secret: secret, ExpiresAt: expiresAt.Format(time.RFC3339)})
	}
	current, _ := doc["stripe_webhook_secrets"].(string)
	for _, s := range config.SplitList(current) {
		add(s, expiry)
	}
	var stored []retiredSecret
	if raw, err := json.Marshal(doc["stripe_webhook_secrets_retired"]); err == nil {
		_ = json.Unmarshal(raw, &stored) // an unreadable list retires nothing more
	}
	for _, r := range stored {
		at, err := time.Parse(time.RFC3339, r.ExpiresAt)
		if err != nil {
			continue // no expiry it can keep: drop it rather than keep it for ever
		}
		if at.After(expiry) {
			at = expiry
		}
		add(r.Secret, at)
	}
	return out
}

func deleteEndpoint(ctx context.Context, endpoints *stripeconnect.WebhookEndpoints, id string) {
	if err := endpoints.Delete(ctx, id); err != nil {
		fmt.Fprintf(os.Stderr, "registerwebhook: could not delete %s: %v; delete it in the Stripe Dashboard\n", id, stripeError(err))
	}
}

// stripeError keeps Stripe's type, code and message (they name parameters,
// never our key) and drops the rest.
func stripeError(err error) error {
	var se *stripe.Error
	if errors.As(err, &se) {
		return fmt.Errorf("stripe %d %s %s: %s", se.HTTPStatusCode, se.Type, se.Code, se.Msg)
	}
	return err
}
