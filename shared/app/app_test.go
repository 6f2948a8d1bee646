package app_test

import (
	"context"
	"strings"
	"testing"

	"github.com/connectexpress/onboarding/internal/devserver/memdynamo"
	"github.com/connectexpress/onboarding/internal/testenv"
	"github.com/connectexpress/onboarding/shared/app"
	"github.com/connectexpress/onboarding/shared/config"
	"github.com/connectexpress/onboarding/shared/httpapi"
)

func newApp(t *testing.T, env map[string]string) (*app.App, error) {
	t.Helper()
	return app.New(context.Background(), app.Options{
		LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		DynamoDB:  memdynamo.New(),
		Needs:     config.Needs{StripeKey: true, WebhookSecrets: true},
	})
}

// awsEnv is what Lambda and the template give a function, pointed at moto.
func awsEnv(endpoint string, more map[string]string) map[string]string {
	env := map[string]string{
		"AWS_ENDPOINT_URL_SECRETS_MANAGER": endpoint,
		"AWS_ACCESS_KEY_ID":                "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1",
	}
	for k, v := range more {
		env[k] = v
	}
	return env
}

// newFunctionApp starts the App of one Lambda function, with the secrets
// app.NeedsFor gives it.
func newFunctionApp(t *testing.T, route httpapi.Route, env map[string]string) (*app.App, error) {
	t.Helper()
	return app.New(context.Background(), app.Options{
		LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		DynamoDB:  memdynamo.New(),
		Needs:     app.NeedsFor(route),
	})
}

func TestNeedsForGivesTheWebhookItsSigningSecretsAndTheKey(t *testing.T) {
	for _, r := range httpapi.Routes {
		want := config.Needs{StripeKey: true}
		switch r.Function {
		case "webhook":
			// The key settles same-second events that disagree, by reading Stripe.
			want = config.Needs{WebhookSecrets: true, StripeKey: true}
		case "adminlistaccounts", "admingetaccount":
			want = config.Needs{} // storage only: no secret at all
		}
		if got := app.NeedsFor(r); got != want {
			t.Errorf("%s: NeedsFor = %+v, want %+v", r.Function, got, want)
		}
	}
}

func TestSecretsComeFromSecretsManagerAtColdStart(t *testing.T) {
	endpoint := testenv.MotoEndpoint(t)
	keyARN := testenv.CreateSecret(t, endpoint, `{"stripe_secret_key":"sk_test_from_sm"}`)
	webhookARN := testenv.CreateSecret(t, endpoint, `{"stripe_webhook_secrets":"whsec_new0123456789abcdefghijklmnopqrstuv,whsec_old0123456789abcdefghijklmnopqrstuv"}`)
	a, err := newApp(t, awsEnv(endpoint, map[string]string{"STRIPE_SECRET_ARN": keyARN, "STRIPE_WEBHOOK_SECRET_ARN": webhookARN}))
	if err != nil {
		t.Fatal(err)
	}
	if a.Config.StripeSecretKey != "sk_test_from_sm" || strings.Join(a.Config.WebhookSecrets, ",") != "whsec_new0123456789abcdefghijklmnopqrstuv,whsec_old0123456789abcdefghijklmnopqrstuv" {
		t.Fatalf("secrets not loaded: key set=%v webhook secrets=%d", a.Config.StripeSecretKey != "", len(a.Config.WebhookSecrets))
	}
}

// The webhook function reads an account from Stripe when two events of one second
// disagree: it starts with its signing secrets and the key, in the key's mode, and refuses
// to start without the key, as every function that calls Stripe does.
func TestTheWebhookFunctionStartsWithItsSigningSecretsAndTheKey(t *testing.T) {
	endpoint := testenv.MotoEndpoint(t)
	webhookARN := testenv.CreateSecret(t, endpoint, `{"stripe_webhook_secrets":"whsec_new0123456789abcdefghijklmnopqrstuv,whsec_old0123456789abcdefghijklmnopqrstuv"}`)
	for _, tt := range []struct {
		mode, key string
		livemode  bool
	}{{"", "sk_test_abc", false}, {"test", "sk_test_abc", false}, {"live", "sk_live_abc", true}} {
		keyARN := testenv.CreateSecret(t, endpoint, `{"stripe_secret_key":"`+tt.key+`"}`)
		a, err := newFunctionApp(t, httpapi.Webhook, awsEnv(endpoint, map[string]string{
			"STRIPE_WEBHOOK_SECRET_ARN": webhookARN, "STRIPE_SECRET_ARN": keyARN, "STRIPE_MODE": tt.mode,
			"FRONTEND_URL": "https://app.example.com", "PUBLIC_API_URL": "https://api.example.com",
		}))
		if err != nil {
			t.Fatalf("STRIPE_MODE=%q: %v", tt.mode, err)
		}
		if a.Config.StripeSecretKey != tt.key || len(a.Config.WebhookSecrets) != 2 || a.Config.Policy.Livemode != tt.livemode {
			t.Errorf("STRIPE_MODE=%q: key set=%v webhook secrets=%d livemode=%v, want the key, 2, %v",
				tt.mode, a.Config.StripeSecretKey != "", len(a.Config.WebhookSecrets), a.Config.Policy.Livemode, tt.livemode)
		}
	}
	_, err := newFunctionApp(t, httpapi.Webhook, awsEnv(endpoint, map[string]string{"STRIPE_WEBHOOK_SECRET_ARN": webhookARN}))
	if err == nil || !strings.Contains(err.Error(), "STRIPE_SECRET_KEY") {
		t.Fatalf("webhook without a key: err %v", err)
	}
}

func TestAKeyThatDisagreesWithStripeModeIsRefused(t *testing.T) {
	endpoint := testenv.MotoEndpoint(t)
	for key, mode := range map[string]string{"sk_test_disagrees": "live", "sk_live_x": "test"} {
		keyARN := testenv.CreateSecret(t, endpoint, `{"stripe_secret_key":"`+key+`"}`)
		_, err := newFunctionApp(t, httpapi.CreateAccount, awsEnv(endpoint, map[string]string{
			"STRIPE_SECRET_ARN": keyARN, "STRIPE_MODE": mode,
			"FRONTEND_URL": "https://app.example.com", "PUBLIC_API_URL": "https://api.example.com",
		}))
		if err == nil || !strings.Contains(err.Error(), "STRIPE_MODE") {
			t.Fatalf("%s key with STRIPE_MODE=%s: err %v, want a refusal naming STRIPE_MODE", mode, mode, err)
		}
		if strings.Contains(err.Error(), key) {
			t.Fatalf("the refusal prints the key: %v", err)
		}
	}
}

func TestSecretProblemsStopTheColdStartWithoutPrintingValues(t *testing.T) {
	endpoint := testenv.MotoEndpoint(t)
	base := map[string]string{
		"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1",
	}
	type secretVar struct{ name, arn string }
	tests := map[string]secretVar{
		"missing secret":          {"STRIPE_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:123456789012:secret:nope"},
		"not JSON":                {"STRIPE_SECRET_ARN", testenv.CreateSecret(t, endpoint, "sk_test_plaintext_value")},
		"wrong key kind":          {"STRIPE_SECRET_ARN", testenv.CreateSecret(t, endpoint, `{"stripe_secret_key":"pk_test_publishable","stripe_webhook_secrets":"whsec_x0123456789abcdefghijklmnopqrstuv"}`)},
		"missing webhook secret":  {"STRIPE_WEBHOOK_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:123456789012:secret:nope"},
		"webhook secret not JSON": {"STRIPE_WEBHOOK_SECRET_ARN", testenv.CreateSecret(t, endpoint, "whsec_plaintextvalue")},
	}
	for name, v := range tests {
		t.Run(name, func(t *testing.T) {
			env := map[string]string{v.name: v.arn}
			for k, v := range base {
				env[k] = v
			}
			_, err := newApp(t, env)
			if err == nil {
				t.Fatal("want a refusal")
			}
			for _, secret := range []string{"sk_test_plaintext_value", "pk_test_publishable", "whsec_x0123456789abcdefghijklmnopqrstuv", "whsec_plaintextvalue"} {
				if strings.Contains(err.Error(), secret) {
					t.Fatalf("the error prints a secret: %v", err)
				}
			}
		})
	}
}

func TestLambdaWithoutCredentialsRefusesToStart(t *testing.T) {
	_, err := app.New(context.Background(), app.Options{
		LookupEnv: func(k string) (string, bool) {
			v, ok := map[string]string{"STRIPE_SECRET_KEY": "sk_test_x", "STRIPE_WEBHOOK_SECRET": "whsec_x0123456789abcdefghijklmnopqrstuv"}[k]
			return v, ok
		},
		Needs: config.Needs{StripeKey: true},
	})
	if err == nil || !strings.Contains(err.Error(), "AWS_ACCESS_KEY_ID") {
		t.Fatalf("err = %v", err)
	}
}
