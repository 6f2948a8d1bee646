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

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/connectexpress/onboarding/internal/testenv"
	"github.com/connectexpress/onboarding/shared/onboarding"
)

var secretValue = regexp.MustCompile(`\b(sk|rk)_(test|live)_[A-Za-z0-9]{6,}|\bwhsec_[A-Za-z0-9]{6,}`)

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
	p := &stripeProxy{secret: "whsec_new" + testenv.RandomID(8)}
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
	keyARN, arn := splitSecrets(t, moto, "sk_test_register", map[string]any{"stripe_webhook_secrets": "whsec_previous", "note": "kept"})

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
	want := map[string]any{"stripe_webhook_secrets": stripe.secret + ",whsec_previous", "note": "kept"}
	if !maps.Equal(doc, want) {
		t.Errorf("webhook secret now %v, want %v", redact(doc), redact(want))
	}
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
	keyARN, arn := splitSecrets(t, moto, "sk_test_replace", map[string]any{"stripe_webhook_secrets": "whsec_a,whsec_b,whsec_c"})

	_, err := runTool(t, "-url", webhookURL, "-secret-arn", arn, "-key-secret-arn", keyARN)
	if err == nil || !strings.Contains(err.Error(), "we_existing") || !strings.Contains(err.Error(), "-replace") {
		t.Fatalf("err %v, want a refusal naming we_existing and -replace", err)
	}
	if len(stripe.created) != 0 || readSecretDoc(t, moto, arn)["stripe_webhook_secrets"] != "whsec_a,whsec_b,whsec_c" {
		t.Fatal("a refused run changed something")
	}

	out, err := runTool(t, "-url", webhookURL, "-secret-arn", arn, "-key-secret-arn", keyARN, "-replace")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(stripe.created) != 1 || !slices.Equal(stripe.deleted, []string{"we_existing"}) {
		t.Errorf("created %d, deleted %v; want one new endpoint and we_existing deleted", len(stripe.created), stripe.deleted)
	}
	// Newest first, at most three kept.
	if got := readSecretDoc(t, moto, arn)["stripe_webhook_secrets"]; got != stripe.secret+",whsec_a,whsec_b" {
		t.Errorf("webhook secrets %q", got)
	}
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

func TestMergeSecretsKeepsTheNewestThree(t *testing.T) {
	for _, c := range []struct {
		stored any
		want   []string
	}{
		{nil, []string{"whsec_n"}},
		{"", []string{"whsec_n"}},
		{"whsec_a", []string{"whsec_n", "whsec_a"}},
		{"whsec_a, whsec_n ,whsec_b,whsec_c", []string{"whsec_n", "whsec_a", "whsec_b"}},
	} {
		if got := mergeSecrets("whsec_n", c.stored); !slices.Equal(got, c.want) {
			t.Errorf("mergeSecrets(%v) = %v, want %v", c.stored, got, c.want)
		}
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
