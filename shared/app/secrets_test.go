package app_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/connectexpress/onboarding/internal/testenv"
	"github.com/connectexpress/onboarding/shared/app"
	"github.com/connectexpress/onboarding/shared/config"
	"github.com/connectexpress/onboarding/shared/httpapi"
	"github.com/connectexpress/onboarding/shared/onboarding"
)

// TestRotatedSecretsTakeEffectWithinTheTTL: a key and signing secrets
// rotated in Secrets Manager are used once SECRETS_TTL has passed, without a
// new process; values the service cannot use, or a Secrets Manager it cannot
// reach, leave the last good values in place.
func TestRotatedSecretsTakeEffectWithinTheTTL(t *testing.T) {
	moto := testenv.NewCuttableMoto(t)
	endpoint := testenv.MotoEndpoint(t)
	keyARN := testenv.CreateSecret(t, endpoint, `{"stripe_secret_key":"sk_test_first"}`)
	webhookARN := testenv.CreateSecret(t, endpoint, `{"stripe_webhook_secrets":"whsec_first0123456789abcdefghijklmnopqrstuv"}`)
	rotate := func(arn, doc string) {
		t.Helper()
		_, err := testenv.SecretsManagerAt(endpoint).PutSecretValue(context.Background(), &secretsmanager.PutSecretValueInput{
			SecretId: aws.String(arn), SecretString: aws.String(doc),
		})
		if err != nil {
			t.Fatal(err)
		}
	}

	stripe := testenv.NewRecorder(t)
	db := testenv.MotoClient(t)
	var mu sync.Mutex
	clock := time.Now()
	advance := func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	logs := &testenv.LogBuffer{}
	env := awsEnv(moto.URL, map[string]string{
		"STRIPE_SECRET_ARN": keyARN, "STRIPE_WEBHOOK_SECRET_ARN": webhookARN, "SECRETS_TTL": "5m",
		"STRIPE_API_BASE": stripe.URL, "STRIPE_MAX_RETRIES": "0", "TABLE_NAME": testenv.NewTable(t, db),
	})
	a, err := app.New(context.Background(), app.Options{
		LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		DynamoDB:  db, Needs: config.Needs{StripeKey: true, WebhookSecrets: true}, Now: now,
		Logger: slog.New(slog.NewJSONHandler(logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}

	users := 0
	keyUsed := func() string {
		t.Helper()
		users++
		user := "rotation-" + string(rune('a'+users))
		if _, _, err := a.Service.CreateAccount(context.Background(), onboarding.Caller{UserID: user}, onboarding.CreateAccountRequest{}); err != nil {
			t.Fatalf("create: %v", err)
		}
		creates := stripe.Requests("POST /v1/accounts")
		return creates[len(creates)-1].APIKey
	}
	verifies := func(secret string) bool {
		payload := testenv.AccountUpdated("evt_rot", "acct_1", "", now().Unix(), testenv.AccountSnapshot{})
		_, err := a.Verifier.Verify(payload, testenv.Sign(payload, secret, now()))
		return err == nil
	}
	expect := func(step, key, signing, notSigning string) {
		t.Helper()
		if got := keyUsed(); got != key {
			t.Errorf("%s: Stripe got key %q, want %q", step, got, key)
		}
		if !verifies(signing) || verifies(notSigning) {
			t.Errorf("%s: want events signed with %s accepted and with %s refused", step, signing, notSigning)
		}
	}

	expect("at start", "sk_test_first", "whsec_first0123456789abcdefghijklmnopqrstuv", "whsec_second0123456789abcdefghijklmnopqrstuv")
	rotate(keyARN, `{"stripe_secret_key":"sk_test_second"}`)
	rotate(webhookARN, `{"stripe_webhook_secrets":"whsec_second0123456789abcdefghijklmnopqrstuv"}`)
	advance(4 * time.Minute)
	expect("inside the TTL", "sk_test_first", "whsec_first0123456789abcdefghijklmnopqrstuv", "whsec_second0123456789abcdefghijklmnopqrstuv")
	advance(2 * time.Minute)
	expect("past the TTL", "sk_test_second", "whsec_second0123456789abcdefghijklmnopqrstuv", "whsec_first0123456789abcdefghijklmnopqrstuv")

	rotate(keyARN, `{"stripe_secret_key":"sk_live_other_mode"}`)
	rotate(webhookARN, `{"stripe_webhook_secrets":"not_a_signing_secret"}`)
	advance(6 * time.Minute)
	expect("after unusable values", "sk_test_second", "whsec_second0123456789abcdefghijklmnopqrstuv", "not_a_signing_secret")

	rotate(keyARN, `{"stripe_secret_key":"sk_test_third"}`)
	rotate(webhookARN, `{"stripe_webhook_secrets":"whsec_third0123456789abcdefghijklmnopqrstuv"}`)
	moto.Cut()
	advance(6 * time.Minute)
	expect("while Secrets Manager is unreachable", "sk_test_second", "whsec_second0123456789abcdefghijklmnopqrstuv", "whsec_third0123456789abcdefghijklmnopqrstuv")
	moto.Restore()
	advance(time.Minute)
	expect("a failed read waits a whole TTL", "sk_test_second", "whsec_second0123456789abcdefghijklmnopqrstuv", "whsec_third0123456789abcdefghijklmnopqrstuv")
	advance(5 * time.Minute)
	expect("once it answers again", "sk_test_third", "whsec_third0123456789abcdefghijklmnopqrstuv", "whsec_second0123456789abcdefghijklmnopqrstuv")

	warned := false
	for _, line := range logs.Lines() {
		for _, secret := range []string{"sk_test_", "sk_live_", "whsec_", "not_a_signing_secret"} {
			if strings.Contains(line, secret) {
				t.Errorf("a log line holds a secret: %s", line)
			}
		}
		warned = warned || strings.Contains(line, "keeping the last good values")
	}
	if !warned {
		t.Error("no warning was logged when the re-read failed")
	}
}

// TestSecretReadsRetryTransientFailuresOnly: a 5xx or throttling answer is
// tried again (three tries at most), an answer that will not change (no
// such secret) is not.
func TestSecretReadsRetryTransientFailuresOnly(t *testing.T) {
	tests := []struct {
		name     string
		failures []int // statuses answered before the secret
		started  bool
		requests int
	}{
		{"one 500 then the secret", []int{500}, true, 2},
		{"throttled twice then the secret", []int{400, 400}, true, 3},
		{"three 503s give up", []int{503, 503, 503, 503}, false, 3},
		{"no such secret is final", []int{404}, false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			requests := 0
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				n := requests
				requests++
				mu.Unlock()
				w.Header().Set("Content-Type", "application/x-amz-json-1.1")
				if n < len(tt.failures) {
					code, typ := tt.failures[n], "InternalServiceError"
					switch code {
					case 400:
						typ = "ThrottlingException"
					case 404:
						code, typ = 400, "ResourceNotFoundException"
					}
					w.WriteHeader(code)
					fmt.Fprintf(w, `{"__type":%q,"message":"injected"}`, typ)
					return
				}
				fmt.Fprint(w, `{"Name":"k","SecretString":"{\"stripe_secret_key\":\"sk_test_after_retry\"}"}`)
			}))
			defer srv.Close()
			_, err := newFunctionApp(t, httpapi.GetAccount, awsEnv(srv.URL, map[string]string{"STRIPE_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:1:secret:k"}))
			if (err == nil) != tt.started {
				t.Fatalf("started = %v (%v), want %v", err == nil, err, tt.started)
			}
			if requests != tt.requests {
				t.Errorf("%d requests, want %d", requests, tt.requests)
			}
		})
	}
}
