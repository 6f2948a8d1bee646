package app_test

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/connectexpress/onboarding/internal/devserver/memdynamo"
	"github.com/connectexpress/onboarding/internal/testenv"
	"github.com/connectexpress/onboarding/shared/app"
	"github.com/connectexpress/onboarding/shared/config"
)

// Secrets of the length Stripe issues.
const (
	currentSecret = "whsec_current0123456789abcdefghijklmnopqrstuv"
	retiredSecret = "whsec_retired0123456789abcdefghijklmnopqrstuv"
)

// webhookApp starts the webhook function's App on moto's Secrets Manager
// with a clock the test moves.
func webhookApp(t *testing.T, doc string) (a *app.App, arn string, advance func(time.Duration), logs *testenv.LogBuffer, start time.Time, err error) {
	t.Helper()
	endpoint := testenv.MotoEndpoint(t)
	arn = testenv.CreateSecret(t, endpoint, doc)
	var mu sync.Mutex
	start = time.Now().UTC().Truncate(time.Second)
	clock := start
	advance = func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	logs = &testenv.LogBuffer{}
	env := awsEnv(endpoint, map[string]string{"STRIPE_WEBHOOK_SECRET_ARN": arn, "STRIPE_MODE": "test", "SECRETS_TTL": "5m"})
	a, err = app.New(context.Background(), app.Options{
		LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		DynamoDB:  memdynamo.New(), Needs: config.Needs{WebhookSecrets: true}, Now: now,
		Logger: slog.New(slog.NewJSONHandler(logs, nil)),
	})
	return a, arn, advance, logs, start, err
}

// secretInLog finds a signing secret's value, not the word whsec_ in a
// message that says what a secret must look like.
var secretInLog = regexp.MustCompile(`whsec_[A-Za-z0-9]{6,}`)

func retiredDoc(current, retired string, expiresAt time.Time) string {
	return fmt.Sprintf(`{"stripe_webhook_secrets":%q,"stripe_webhook_secrets_retired":[{"secret":%q,"expires_at":%q}]}`,
		current, retired, expiresAt.Format(time.RFC3339))
}

// TestARetiredWebhookSecretVerifiesUntilItsExpiryOnly: a retired secret
// signs events until its expires_at and not one second after, even before
// the next Secrets Manager read; the current secret keeps verifying; the
// next read drops the expired entry and says so without the value.
func TestARetiredWebhookSecretVerifiesUntilItsExpiryOnly(t *testing.T) {
	// The expiry falls inside one SECRETS_TTL (5m) after the start's read.
	expiresAt := time.Now().UTC().Truncate(time.Second).Add(3 * time.Minute)
	a, _, advance, logs, start, err := webhookApp(t, retiredDoc(currentSecret, retiredSecret, expiresAt))
	if err != nil {
		t.Fatal(err)
	}
	clock := start
	verifies := func(secret string) bool {
		payload := testenv.AccountUpdated("evt_retired", "acct_1", "", clock.Unix(), testenv.AccountSnapshot{})
		_, err := a.Verifier.Verify(payload, testenv.Sign(payload, secret, clock))
		return err == nil
	}
	step := func(d time.Duration) { advance(d); clock = clock.Add(d) }

	steps := []struct {
		name           string
		after          time.Duration // from the previous step
		current, older bool
	}{
		{"at start", 0, true, true},
		{"one second before the expiry", expiresAt.Sub(start) - time.Second, true, true},
		{"at the expiry, before the next read", time.Second, true, false},
		{"after the next read", 5 * time.Minute, true, false},
	}
	for _, s := range steps {
		step(s.after)
		if got := verifies(currentSecret); got != s.current {
			t.Errorf("%s: current secret verifies = %v, want %v", s.name, got, s.current)
		}
		if got := verifies(retiredSecret); got != s.older {
			t.Errorf("%s: retired secret verifies = %v, want %v", s.name, got, s.older)
		}
	}
	dropped := false
	for _, line := range logs.Lines() {
		if secretInLog.MatchString(line) {
			t.Errorf("a log line holds a secret: %s", line)
		}
		dropped = dropped || strings.Contains(line, "past their expiry dropped")
	}
	if !dropped {
		t.Error("the read after the expiry logged no dropped secret")
	}
}

// TestRetiredWebhookSecretsTheServiceCannotUseAreRefused: at start, a
// document whose retired entry is too short or has no expiry refuses to
// start, naming the field; one whose retired secret already expired starts
// with the current secret only.
func TestRetiredWebhookSecretsTheServiceCannotUseAreRefused(t *testing.T) {
	past, future := time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	tests := []struct {
		name, doc, wantErr string
	}{
		{"a retired secret that is only the prefix", retiredDoc(currentSecret, "whsec_", future), "stripe_webhook_secrets_retired"},
		{"a retired secret shorter than Stripe's", retiredDoc(currentSecret, "whsec_old", future), "at least 32"},
		{"a retired secret without expiry", fmt.Sprintf(`{"stripe_webhook_secrets":%q,"stripe_webhook_secrets_retired":[{"secret":%q}]}`, currentSecret, retiredSecret), "expires_at"},
		{"a current secret that is only the prefix", `{"stripe_webhook_secrets":"whsec_"}`, "STRIPE_WEBHOOK_SECRET"},
		{"a retired secret already expired", retiredDoc(currentSecret, retiredSecret, past), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, _, _, _, start, err := webhookApp(t, tt.doc)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want a refusal naming %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "whsec_old") || strings.Contains(err.Error(), retiredSecret) {
					t.Errorf("the refusal holds a secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			payload := testenv.AccountUpdated("evt_expired", "acct_1", "", start.Unix(), testenv.AccountSnapshot{})
			if _, err := a.Verifier.Verify(payload, testenv.Sign(payload, retiredSecret, start)); err == nil {
				t.Error("an expired retired secret verified")
			}
		})
	}
}

// TestAShortSigningSecretOnAReReadKeepsTheLastGoodValues: a rotation that
// brings a signing secret shorter than Stripe's, current or retired, is
// refused as other unusable values are: the last good values stay, with a
// warning.
func TestAShortSigningSecretOnAReReadKeepsTheLastGoodValues(t *testing.T) {
	tests := []struct{ name, rotated, refused string }{
		{"a retired secret that is only the prefix", retiredDoc(retiredSecret, "whsec_", time.Now().Add(time.Hour)), retiredSecret},
		{"a current secret shorter than Stripe's", `{"stripe_webhook_secrets":"whsec_0123456789abcdefghijklmnopqrstu"}`, "whsec_0123456789abcdefghijklmnopqrstu"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, arn, advance, logs, start, err := webhookApp(t, fmt.Sprintf(`{"stripe_webhook_secrets":%q}`, currentSecret))
			if err != nil {
				t.Fatal(err)
			}
			_, err = testenv.SecretsManagerAt(testenv.MotoEndpoint(t)).PutSecretValue(context.Background(), &secretsmanager.PutSecretValueInput{
				SecretId: aws.String(arn), SecretString: aws.String(tt.rotated),
			})
			if err != nil {
				t.Fatal(err)
			}
			advance(6 * time.Minute)
			now := start.Add(6 * time.Minute)
			payload := testenv.AccountUpdated("evt_reread", "acct_1", "", now.Unix(), testenv.AccountSnapshot{})
			if _, err := a.Verifier.Verify(payload, testenv.Sign(payload, currentSecret, now)); err != nil {
				t.Errorf("the last good secret no longer verifies: %v", err)
			}
			if _, err := a.Verifier.Verify(payload, testenv.Sign(payload, tt.refused, now)); err == nil {
				t.Error("the refused document's secret verifies")
			}
			warned := false
			for _, line := range logs.Lines() {
				warned = warned || strings.Contains(line, "keeping the last good values")
				if secretInLog.MatchString(line) {
					t.Errorf("a log line holds a secret: %s", line)
				}
			}
			if !warned {
				t.Error("no warning was logged")
			}
		})
	}
}
