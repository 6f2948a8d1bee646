package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/connectexpress/onboarding/internal/testenv"
	"github.com/connectexpress/onboarding/shared/onboarding"
)

var secretValue = regexp.MustCompile(`\b(sk|rk)_(test|live)_[A-Za-z0-9]{6,}|\bwhsec_[A-Za-z0-9]{6,}`)

// Secrets of the length Stripe issues: previousSecret current before a run,
// legacySecrets the comma-separated form of documents written before retired
// secrets had expiries.
const (
	previousSecret = "whsec_previous0123456789abcdefghijklmnopqrstuv"
	legacySecrets  = "whsec_a0123456789abcdefghijklmnopqrstuv,whsec_b0123456789abcdefghijklmnopqrstuv,whsec_c0123456789abcdefghijklmnopqrstuv"
)

const webhookURL = "https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com/webhooks/stripe"

// stripeProxy sits in front of stripe-mock, which validates every request
// against Stripe's OpenAPI spec. stripe-mock leaves the signing secret out
// of created endpoints, so the proxy adds one, as Stripe does; it can also
// list an endpoint that is already registered.
type stripeProxy struct {
	URL          string
	secret       string // added to created endpoints; "" leaves stripe-mock's answer alone
	registered   string // an endpoint id the list answers with, for webhookURL
	mu           sync.Mutex
	created      []url.Values
	deleted      []string
	authorizedAs []string
}

func newStripeProxy(t *testing.T) *stripeProxy {
	target, err := url.Parse(testenv.StripeAPIBase(t))
	if err != nil {
		t.Fatal(err)
	}
	p := &stripeProxy{secret: "whsec_new" + testenv.RandomID(16)}
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ModifyResponse = func(resp *http.Response) error {
		if resp.Request.Method != http.MethodPost || resp.Request.URL.Path != "/v1/webhook_endpoints" || p.secret == "" || resp.StatusCode != 200 {
			return nil
		}
		var ep map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&ep); err != nil {
			return err
		}
		ep["secret"] = p.secret
		b, _ := json.Marshal(ep)
		resp.Body, resp.ContentLength = io.NopCloser(bytes.NewReader(b)), int64(len(b))
		resp.Header.Del("Content-Length")
		return nil
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		p.mu.Lock()
		p.authorizedAs = append(p.authorizedAs, r.Header.Get("Authorization"))
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/v1/webhook_endpoints":
			form, _ := url.ParseQuery(string(body))
			p.created = append(p.created, form)
		case r.Method == http.MethodDelete:
			p.deleted = append(p.deleted, strings.TrimPrefix(r.URL.Path, "/v1/webhook_endpoints/"))
		}
		registered := p.registered
		p.mu.Unlock()
		if registered != "" && r.Method == http.MethodGet && r.URL.Path == "/v1/webhook_endpoints" {
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]any{"object": "list", "url": "/v1/webhook_endpoints", "has_more": false,
				"data": []any{map[string]any{"id": registered, "object": "webhook_endpoint", "url": webhookURL, "enabled_events": []string{"*"}}}})
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// env points the program at moto (Secrets Manager, CloudFormation) and the
// proxy, through the same variables an operator would use.
func env(t *testing.T, stripeURL string) string {
	testenv.MotoClient(t) // skips locally, fails in CI, without moto
	moto := os.Getenv("TEST_DYNAMODB_ENDPOINT")
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL_SECRETS_MANAGER": moto, "AWS_ENDPOINT_URL_CLOUDFORMATION": moto,
		"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1",
		"AWS_CONFIG_FILE": os.DevNull, "AWS_SHARED_CREDENTIALS_FILE": os.DevNull, "AWS_PROFILE": "",
		"STRIPE_API_BASE": stripeURL, "STRIPE_SECRET_KEY": "",
	} {
		t.Setenv(k, v)
	}
	return moto
}

func createSecret(t *testing.T, moto string, doc map[string]any) string {
	raw, _ := json.Marshal(doc)
	return testenv.CreateSecret(t, moto, string(raw))
}

func readSecretDoc(t *testing.T, moto, arn string) map[string]any {
	out, err := testenv.SecretsManagerAt(moto).GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	doc := map[string]any{}
	if err := json.Unmarshal([]byte(aws.ToString(out.SecretString)), &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

func runTool(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := run(context.Background(), args, &out)
	printed := out.String()
	if err != nil {
		printed += err.Error()
	}
	if m := secretValue.FindString(printed); m != "" {
		t.Errorf("a secret was printed: %.12s...", m)
	}
	return out.String(), err
}

// splitSecrets creates the stack's two secrets as an operator has filled
// them: the key in one, the webhook signing secrets in the other.
func splitSecrets(t *testing.T, moto, key string, webhookDoc map[string]any) (keyARN, webhookARN string) {
	return createSecret(t, moto, map[string]any{"stripe_secret_key": key}), createSecret(t, moto, webhookDoc)
}

func TestRegistersAConnectEndpointForTheHandledEventsAndStoresItsSecret(t *testing.T) {
	stripe := newStripeProxy(t)
	moto := env(t, stripe.URL)
	keyARN, arn := splitSecrets(t, moto, "sk_test_register", map[string]any{"stripe_webhook_secrets": previousSecret, "note": "kept"})

	out, err := runTool(t, "-url", webhookURL, "-secret-arn", arn, "-key-secret-arn", keyARN)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(stripe.created) != 1 {
		t.Fatalf("%d endpoints created", len(stripe.created))
	}
	form := stripe.created[0]
	var events []string
	for i := 0; form.Has("enabled_events[" + strconv.Itoa(i) + "]"); i++ {
		events = append(events, form.Get("enabled_events["+strconv.Itoa(i)+"]"))
	}
	if form.Get("url") != webhookURL || form.Get("connect") != "true" || form.Get("api_version") != "2023-10-16" ||
		!slices.Equal(events, onboarding.HandledEventTypes) {
		t.Errorf("created with %v, want url %s, connect=true, api_version 2023-10-16, enabled_events %v", form, webhookURL, onboarding.HandledEventTypes)
	}
	// The key came from the key's secret: nothing else was given.
	if got := stripe.authorizedAs[0]; got != "Bearer sk_test_register" {
		t.Errorf("Stripe was called with %q", got)
	}
	doc := readSecretDoc(t, moto, arn)
	if doc["stripe_webhook_secrets"] != stripe.secret || doc["note"] != "kept" || len(doc) != 3 {
		t.Errorf("webhook secret now %v, want the new secret current, the older one retired, and the note kept", redact(doc))
	}
	wantRetired(t, doc, time.Now(), []string{previousSecret}, 24*time.Hour)
	// The key's secret is only read, and gets no signing secret.
	if doc := readSecretDoc(t, moto, keyARN); !maps.Equal(doc, map[string]any{"stripe_secret_key": "sk_test_register"}) {
		t.Errorf("key secret now %v, want it unchanged", redact(doc))
	}
	if !strings.Contains(out, "registered we_") || !strings.Contains(out, arn) {
		t.Errorf("output %q", out)
	}
}

func TestAKeyFromTheEnvironmentNeedsNoKeySecret(t *testing.T) {
	stripe := newStripeProxy(t)
	moto := env(t, stripe.URL)
	t.Setenv("STRIPE_SECRET_KEY", "sk_test_fromenv")
	arn := createSecret(t, moto, map[string]any{"stripe_webhook_secrets": ""})
	if out, err := runTool(t, "-url", webhookURL, "-secret-arn", arn); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if got := stripe.authorizedAs[0]; got != "Bearer sk_test_fromenv" {
		t.Errorf("Stripe was called with %q", got)
	}
	if got := readSecretDoc(t, moto, arn)["stripe_webhook_secrets"]; got != stripe.secret {
		t.Errorf("webhook secrets %v", redact(map[string]any{"s": got}))
	}
}

// createStack creates a stack on moto with outputs only.
func createStack(t *testing.T, moto string, outputs map[string]string) string {
	t.Helper()
	stack := "onboarding-" + testenv.RandomID(4)
	values := map[string]any{}
	for k, v := range outputs {
		values[k] = map[string]any{"Value": v}
	}
	body, _ := json.Marshal(map[string]any{
		"Resources": map[string]any{"Handle": map[string]any{"Type": "AWS::CloudFormation::WaitConditionHandle"}},
		"Outputs":   values,
	})
	cf := cloudformation.New(cloudformation.Options{Region: "us-east-1", BaseEndpoint: aws.String(moto),
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")})
	if _, err := cf.CreateStack(context.Background(), &cloudformation.CreateStackInput{
		StackName: aws.String(stack), TemplateBody: aws.String(string(body)),
	}); err != nil {
		t.Fatalf("create stack on moto: %v", err)
	}
	return stack
}

func TestReadsTheURLAndSecretsFromTheStackOutputs(t *testing.T) {
	stripe := newStripeProxy(t)
	moto := env(t, stripe.URL)
	// The stack's two secrets, after the operator stored the key.
	keyARN := createSecret(t, moto, map[string]any{"stripe_secret_key": "sk_test_stack"})
	arn := createSecret(t, moto, map[string]any{"stripe_webhook_secrets": ""})
	stack := createStack(t, moto, map[string]string{"WebhookUrl": webhookURL, "StripeSecretArn": keyARN, "StripeWebhookSecretArn": arn})

	if out, err := runTool(t, "-stack", stack); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(stripe.created) != 1 || stripe.created[0].Get("url") != webhookURL {
		t.Fatalf("created %v, want one endpoint for the stack's WebhookUrl", stripe.created)
	}
	if got := stripe.authorizedAs[0]; got != "Bearer sk_test_stack" {
		t.Errorf("Stripe was called with %q, want the key of StripeSecretArn", got)
	}
	if got := readSecretDoc(t, moto, arn)["stripe_webhook_secrets"]; got != stripe.secret {
		t.Errorf("webhook secrets %q, want the new one only", redact(map[string]any{"s": got}))
	}
	if doc := readSecretDoc(t, moto, keyARN); !maps.Equal(doc, map[string]any{"stripe_secret_key": "sk_test_stack"}) {
		t.Errorf("the key's secret now %v: only the webhook function may read the signing secrets", redact(doc))
	}
}

func TestTheKeyAndTheSigningSecretsStayInTheirOwnSecrets(t *testing.T) {
	stripe := newStripeProxy(t)
	moto := env(t, stripe.URL)
	keyARN, arn := splitSecrets(t, moto, "sk_test_apart", map[string]any{"stripe_webhook_secrets": ""})
	for name, args := range map[string][]string{
		"no key secret, no STRIPE_SECRET_KEY": {"-url", webhookURL, "-secret-arn", arn},
		"one secret for both":                 {"-url", webhookURL, "-secret-arn", keyARN, "-key-secret-arn", keyARN},
	} {
		if _, err := runTool(t, args...); err == nil {
			t.Errorf("%s: want a refusal", name)
		}
	}
	// A stack without StripeWebhookSecretArn is not this template's.
	stack := createStack(t, moto, map[string]string{"WebhookUrl": webhookURL, "StripeSecretArn": keyARN})
	if _, err := runTool(t, "-stack", stack); err == nil || !strings.Contains(err.Error(), "StripeWebhookSecretArn") {
		t.Errorf("stack without StripeWebhookSecretArn: err %v, want a refusal naming it", err)
	}
	if len(stripe.authorizedAs) != 0 {
		t.Errorf("%d Stripe calls from refused runs", len(stripe.authorizedAs))
	}
	if doc := readSecretDoc(t, moto, keyARN); !maps.Equal(doc, map[string]any{"stripe_secret_key": "sk_test_apart"}) {
		t.Errorf("key secret now %v, want it unchanged", redact(doc))
	}
}

func TestLeavesAnAlreadyRegisteredURLAloneUnlessReplace(t *testing.T) {
	stripe := newStripeProxy(t)
	stripe.registered = "we_existing"
	moto := env(t, stripe.URL)
	keyARN, arn := splitSecrets(t, moto, "sk_test_replace", map[string]any{"stripe_webhook_secrets": legacySecrets})

	_, err := runTool(t, "-url", webhookURL, "-secret-arn", arn, "-key-secret-arn", keyARN)
	if err == nil || !strings.Contains(err.Error(), "we_existing") || !strings.Contains(err.Error(), "-replace") {
		t.Fatalf("err %v, want a refusal naming we_existing and -replace", err)
	}
	if len(stripe.created) != 0 || readSecretDoc(t, moto, arn)["stripe_webhook_secrets"] != legacySecrets {
		t.Fatal("a refused run changed something")
	}

	out, err := runTool(t, "-url", webhookURL, "-secret-arn", arn, "-key-secret-arn", keyARN, "-replace")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(stripe.created) != 1 || !slices.Equal(stripe.deleted, []string{"we_existing"}) {
		t.Errorf("created %d, deleted %v; want one new endpoint and we_existing deleted", len(stripe.created), stripe.deleted)
	}
	// The new one current; of the older ones, the newest two retired,
	// verifying for 24 hours.
	doc := readSecretDoc(t, moto, arn)
	if got := doc["stripe_webhook_secrets"]; got != stripe.secret {
		t.Errorf("current webhook secrets %v, want the new one only", redact(map[string]any{"s": got}))
	}
	wantRetired(t, doc, time.Now(), strings.Split(legacySecrets, ",")[:2], 24*time.Hour)
}

func TestAnEndpointWithoutASecretIsDeletedAgain(t *testing.T) {
	stripe := newStripeProxy(t)
	stripe.secret = "" // stripe-mock's own answer has none
	moto := env(t, stripe.URL)
	keyARN, arn := splitSecrets(t, moto, "sk_test_nosecret", map[string]any{"stripe_webhook_secrets": ""})

	if _, err := runTool(t, "-url", webhookURL, "-secret-arn", arn, "-key-secret-arn", keyARN); err == nil {
		t.Fatal("want an error")
	}
	if len(stripe.created) != 1 || len(stripe.deleted) != 1 {
		t.Errorf("created %d, deleted %v: the useless endpoint must be deleted", len(stripe.created), stripe.deleted)
	}
	if got := readSecretDoc(t, moto, arn)["stripe_webhook_secrets"]; got != "" {
		t.Errorf("secret changed to %q", got)
	}
}

func TestAnEndpointWithATooShortSecretIsDeletedAgain(t *testing.T) {
	stripe := newStripeProxy(t)
	stripe.secret = "whsec_" // the webhook function would refuse it
	moto := env(t, stripe.URL)
	keyARN, arn := splitSecrets(t, moto, "sk_test_short", map[string]any{"stripe_webhook_secrets": ""})

	if _, err := runTool(t, "-url", webhookURL, "-secret-arn", arn, "-key-secret-arn", keyARN); err == nil || !strings.Contains(err.Error(), "at least 32") {
		t.Fatalf("err %v, want a refusal saying the secret is too short", err)
	}
	if len(stripe.created) != 1 || len(stripe.deleted) != 1 {
		t.Errorf("created %d, deleted %v: the endpoint must be deleted", len(stripe.created), stripe.deleted)
	}
	if got := readSecretDoc(t, moto, arn)["stripe_webhook_secrets"]; got != "" {
		t.Errorf("secret changed to %v", redact(map[string]any{"s": got}))
	}
}

func TestWithoutAStripeKeyNothingIsCalled(t *testing.T) {
	stripe := newStripeProxy(t)
	moto := env(t, stripe.URL)
	// What template.yaml creates before the operator fills them in.
	keyARN := createSecret(t, moto, map[string]any{"stripe_secret_key": "", "stripe_webhook_secrets": ""})
	arn := createSecret(t, moto, map[string]any{"stripe_webhook_secrets": ""})
	_, err := runTool(t, "-url", webhookURL, "-secret-arn", arn, "-key-secret-arn", keyARN)
	if err == nil || !strings.Contains(err.Error(), "put-secret-value") || !strings.Contains(err.Error(), keyARN) {
		t.Fatalf("err %v, want how to store the key in %s", err, keyARN)
	}
	if len(stripe.authorizedAs) != 0 {
		t.Errorf("%d Stripe calls without a key", len(stripe.authorizedAs))
	}
}

// wantRetired checks the document's retired secrets, in order, each
// expiring after (within a minute of the run at now).
func wantRetired(t *testing.T, doc map[string]any, now time.Time, secrets []string, after time.Duration) {
	t.Helper()
	raw, _ := json.Marshal(doc["stripe_webhook_secrets_retired"])
	var retired []retiredSecret
	if err := json.Unmarshal(raw, &retired); err != nil && len(secrets) > 0 {
		t.Fatalf("stripe_webhook_secrets_retired is not a list of {secret, expires_at}: %v", err)
	}
	var got []string
	for _, r := range retired {
		got = append(got, r.Secret)
		at, err := time.Parse(time.RFC3339, r.ExpiresAt)
		if want := now.Add(after); err != nil || at.Before(want.Add(-time.Minute)) || at.After(want.Add(time.Minute)) {
			t.Errorf("a retired secret expires at %q, want about %s (%v after the run)", r.ExpiresAt, want.UTC().Format(time.RFC3339), after)
		}
	}
	if !slices.Equal(got, secrets) {
		t.Errorf("%d retired secrets, want %d (%v)", len(got), len(secrets), redact(map[string]any{"retired": strings.Join(got, ",")}))
	}
}

// TestReplaceRetiresTheOldSecretsWithAnExpiry: -replace keeps the secrets
// it replaces only until -retire-after (or RETIRED_SECRET_TTL, or the
// stack's RetiredWebhookSecretTtl output, or 24 hours) has passed; 0 stops
// them at once.
func TestReplaceRetiresTheOldSecretsWithAnExpiry(t *testing.T) {
	old := "whsec_old0123456789abcdefghijklmnopqrstuv"
	tests := []struct {
		name   string
		args   []string
		env    string // RETIRED_SECRET_TTL
		output string // the stack's RetiredWebhookSecretTtl
		after  time.Duration
		kept   bool
	}{
		{"default: Stripe's 24 hours", nil, "", "", 24 * time.Hour, true},
		{"-retire-after", []string{"-retire-after", "2h"}, "", "", 2 * time.Hour, true},
		{"RETIRED_SECRET_TTL", nil, "90m", "", 90 * time.Minute, true},
		{"the flag wins over the variable", []string{"-retire-after", "3h"}, "90m", "6h", 3 * time.Hour, true},
		{"the stack's parameter", nil, "", "6h", 6 * time.Hour, true},
		{"the variable wins over the stack", nil, "90m", "6h", 90 * time.Minute, true},
		{"0 after a leak: nothing retired", []string{"-retire-after", "0s"}, "", "", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stripe := newStripeProxy(t)
			stripe.registered = "we_existing"
			moto := env(t, stripe.URL)
			t.Setenv("RETIRED_SECRET_TTL", tt.env)
			keyARN, arn := splitSecrets(t, moto, "sk_test_retire", map[string]any{"stripe_webhook_secrets": old})
			outputs := map[string]string{"WebhookUrl": webhookURL, "StripeSecretArn": keyARN, "StripeWebhookSecretArn": arn}
			if tt.output != "" {
				outputs["RetiredWebhookSecretTtl"] = tt.output
			}
			args := append([]string{"-stack", createStack(t, moto, outputs), "-replace"}, tt.args...)
			start := time.Now()
			if out, err := runTool(t, args...); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			doc := readSecretDoc(t, moto, arn)
			if doc["stripe_webhook_secrets"] != stripe.secret {
				t.Errorf("current secrets %v, want the new one only", redact(doc))
			}
			var want []string
			if tt.kept {
				want = []string{old}
			}
			wantRetired(t, doc, start, want, tt.after)
		})
	}
}

func TestRetireSecretsKeepsEachExpiryAndDropsTheExpired(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339) }
	long := func(name string) string { return "whsec_" + name + strings.Repeat("0", 32) }
	tests := []struct {
		name        string
		doc         map[string]any
		retireAfter time.Duration
		want        []retiredSecret
	}{
		{"nothing stored", map[string]any{}, 24 * time.Hour, nil},
		{"the current one retires for 24h", map[string]any{"stripe_webhook_secrets": long("a")}, 24 * time.Hour,
			[]retiredSecret{{long("a"), at(24 * time.Hour)}}},
		{"an older retired one keeps its own expiry", map[string]any{"stripe_webhook_secrets": long("a"),
			"stripe_webhook_secrets_retired": []any{map[string]any{"secret": long("b"), "expires_at": at(time.Hour)}}}, 24 * time.Hour,
			[]retiredSecret{{long("a"), at(24 * time.Hour)}, {long("b"), at(time.Hour)}}},
		{"a retired one never outlives the new retirement", map[string]any{"stripe_webhook_secrets": long("a"),
			"stripe_webhook_secrets_retired": []any{map[string]any{"secret": long("b"), "expires_at": at(48 * time.Hour)}}}, 2 * time.Hour,
			[]retiredSecret{{long("a"), at(2 * time.Hour)}, {long("b"), at(2 * time.Hour)}}},
		{"an expired one is dropped", map[string]any{"stripe_webhook_secrets": long("a"),
			"stripe_webhook_secrets_retired": []any{map[string]any{"secret": long("b"), "expires_at": at(-time.Second)}}}, 24 * time.Hour,
			[]retiredSecret{{long("a"), at(24 * time.Hour)}}},
		{"one without a readable expiry is dropped", map[string]any{"stripe_webhook_secrets": long("a"),
			"stripe_webhook_secrets_retired": []any{map[string]any{"secret": long("b")}}}, 24 * time.Hour,
			[]retiredSecret{{long("a"), at(24 * time.Hour)}}},
		{"the old comma-separated form: newest two kept, the new one not twice", map[string]any{"stripe_webhook_secrets": long("a") + ", " + long("n") + " ," + long("b") + "," + long("c")}, time.Hour,
			[]retiredSecret{{long("a"), at(time.Hour)}, {long("b"), at(time.Hour)}}},
		{"one the webhook function would refuse is dropped", map[string]any{"stripe_webhook_secrets": "whsec_short," + long("a")}, time.Hour,
			[]retiredSecret{{long("a"), at(time.Hour)}}},
		{"0 retires nothing", map[string]any{"stripe_webhook_secrets": long("a")}, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := retireSecrets(long("n"), tt.doc, now, tt.retireAfter); !slices.Equal(got, tt.want) {
				t.Errorf("retireSecrets = %v, want %v", got, tt.want)
			}
		})
	}
}

// redact keeps failure messages free of secret values.
func redact(doc map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range doc {
		s, _ := v.(string)
		out[k] = len(s)
	}
	return out
}
