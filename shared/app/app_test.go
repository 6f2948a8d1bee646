package app_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/truora/minidyn/aws-v2/client"

	"github.com/connectexpress/onboarding/internal/testenv"
	"github.com/connectexpress/onboarding/shared/app"
	"github.com/connectexpress/onboarding/shared/config"
)

// motoSecret stores value as a new secret on moto and returns its ARN.
func motoSecret(t *testing.T, endpoint, value string) string {
	t.Helper()
	sm := secretsmanager.New(secretsmanager.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(endpoint),
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
	})
	out, err := sm.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{
		Name: aws.String("stripe-" + testenv.RandomID(4)), SecretString: aws.String(value),
	})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.ARN)
}

func newApp(t *testing.T, env map[string]string) (*app.App, error) {
	t.Helper()
	return app.New(context.Background(), app.Options{
		LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		DynamoDB:  client.NewClient(),
		Needs:     config.Needs{StripeKey: true, WebhookSecrets: true},
	})
}

func TestSecretsComeFromSecretsManagerOncePerColdStart(t *testing.T) {
	endpoint := testenv.MotoEndpoint(t)
	arn := motoSecret(t, endpoint, `{"stripe_secret_key":"sk_test_from_sm","stripe_webhook_secrets":"whsec_new,whsec_old"}`)
	a, err := newApp(t, map[string]string{
		"STRIPE_SECRET_ARN": arn, "AWS_ENDPOINT_URL_SECRETS_MANAGER": endpoint,
		"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1",
	})
	if err != nil {
		t.Fatal(err)
	}
	if a.Config.StripeSecretKey != "sk_test_from_sm" || strings.Join(a.Config.WebhookSecrets, ",") != "whsec_new,whsec_old" {
		t.Fatalf("secrets not loaded: key set=%v webhook secrets=%d", a.Config.StripeSecretKey != "", len(a.Config.WebhookSecrets))
	}
}

func TestSecretProblemsStopTheColdStartWithoutPrintingValues(t *testing.T) {
	endpoint := testenv.MotoEndpoint(t)
	base := map[string]string{
		"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1",
	}
	tests := map[string]string{
		"missing secret": "arn:aws:secretsmanager:us-east-1:123456789012:secret:nope",
		"not JSON":       motoSecret(t, endpoint, "sk_test_plaintext_value"),
		"wrong key kind": motoSecret(t, endpoint, `{"stripe_secret_key":"pk_test_publishable","stripe_webhook_secrets":"whsec_x"}`),
	}
	for name, arn := range tests {
		t.Run(name, func(t *testing.T) {
			env := map[string]string{"STRIPE_SECRET_ARN": arn}
			for k, v := range base {
				env[k] = v
			}
			_, err := newApp(t, env)
			if err == nil {
				t.Fatal("want a refusal")
			}
			for _, secret := range []string{"sk_test_plaintext_value", "pk_test_publishable", "whsec_x"} {
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
			v, ok := map[string]string{"STRIPE_SECRET_KEY": "sk_test_x", "STRIPE_WEBHOOK_SECRET": "whsec_x"}[k]
			return v, ok
		},
		Needs: config.Needs{StripeKey: true},
	})
	if err == nil || !strings.Contains(err.Error(), "AWS_ACCESS_KEY_ID") {
		t.Fatalf("err = %v", err)
	}
}
