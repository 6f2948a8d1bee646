package devserver_test

import (
	"context"
	"strings"
	"testing"

	"github.com/connectexpress/onboarding/internal/devserver"
	"github.com/connectexpress/onboarding/internal/testenv"
)

// A live key from Secrets Manager (STRIPE_SECRET_ARN replaces the given
// key) is refused too, even with https URLs and real Stripe.
func TestALiveKeyFromSecretsManagerIsRefused(t *testing.T) {
	endpoint := testenv.MotoEndpoint(t)
	liveARN := testenv.CreateSecret(t, endpoint, `{"stripe_secret_key":"sk_live_from_sm"}`)
	env := map[string]string{
		"PORT": "0", "SIM_PORT": "0", "LOG_LEVEL": "ERROR",
		"STRIPE_SECRET_KEY": "sk_test_given", "STRIPE_SECRET_ARN": liveARN, "STRIPE_WEBHOOK_SECRET": "whsec_" + strings.Repeat("a", 32),
		"PUBLIC_API_URL": "https://api.platform.example", "FRONTEND_URL": "https://app.platform.example",
		"AWS_ENDPOINT_URL_SECRETS_MANAGER": endpoint, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1",
	}
	r, err := devserver.Start(context.Background(), devserver.Options{LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	if err == nil {
		_ = r.Close()
		t.Fatal("the dev server started with a live key from STRIPE_SECRET_ARN")
	}
	if !strings.Contains(err.Error(), "STRIPE_SECRET_ARN") || strings.Contains(err.Error(), "sk_live_from_sm") {
		t.Errorf("the error does not name STRIPE_SECRET_ARN, or prints the key: %v", err)
	}
}
