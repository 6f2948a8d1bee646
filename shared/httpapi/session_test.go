package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/connectexpress/onboarding/shared/httpapi"
	"github.com/connectexpress/onboarding/shared/onboarding"
)

// sessionConnect is steeredConnect whose sessions can fail too.
type sessionConnect struct {
	*steeredConnect
	sessionErr error
}

func (c *sessionConnect) CreateAccountSession(ctx context.Context, id string, components []string) (onboarding.AccountSession, error) {
	if c.sessionErr != nil {
		return onboarding.AccountSession{}, c.sessionErr
	}
	return c.fakeConnect.CreateAccountSession(ctx, id, components)
}

func TestOnboardingSessionAnswersTheSecretOnceAndNeverLogsIt(t *testing.T) {
	f := newFixture()
	f.createAccount(t, "alice")
	resp := f.serve(httpapi.CreateOnboardingSession, authed("POST", "/accounts/me/onboarding-session", nil, "alice"))
	if resp.StatusCode != http.StatusOK || resp.Headers["Cache-Control"] != "no-store" {
		t.Fatalf("status %d headers %v, want 200 no-store", resp.StatusCode, resp.Headers)
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(resp.Body), &body); err != nil {
		t.Fatal(err)
	}
	secret, _ := body["client_secret"].(string)
	expires, _ := body["expires_at"].(string)
	if !strings.HasPrefix(secret, "accs_secret__") || body["publishable_key"] != "pk_test_platform" || len(body) != 3 {
		t.Fatalf("body %v, want client_secret, expires_at and publishable_key only", body)
	}
	if _, err := time.Parse(time.RFC3339, expires); err != nil {
		t.Fatalf("expires_at %q is not RFC 3339", expires)
	}
	if strings.Contains(f.logs.String(), secret) || strings.Contains(f.logs.String(), "accs_secret") {
		t.Fatalf("the client secret reached the log: %s", f.logs.String())
	}
	if line := f.logLine(t); line["status"] != float64(200) {
		t.Fatalf("log line %v, want the request's line with status 200", line)
	}
}

// The session route refuses exactly as the link route does, in the same
// cases: the same status and the same code.
func TestOnboardingSessionErrorsAreTheLinksErrors(t *testing.T) {
	rejected := "rejected.fraud"
	for _, tt := range []struct {
		name       string
		setup      func(t *testing.T, f *fixture, c *sessionConnect)
		wantStatus int
		wantCode   string
	}{
		{"no account", func(*testing.T, *fixture, *sessionConnect) {}, http.StatusNotFound, "not_found"},
		{"rejected", func(t *testing.T, f *fixture, _ *sessionConnect) {
			f.createAccount(t, "alice")
			st := onboarding.AccountState{DetailsSubmitted: true, Requirements: onboarding.Requirements{DisabledReason: &rejected}}
			if _, err := f.store.SaveState(context.Background(), "alice", st, testNow.Unix()+1, testNow, onboarding.CauseRefresh); err != nil {
				t.Fatal(err)
			}
		}, http.StatusConflict, "account_rejected"},
		{"deauthorized", func(t *testing.T, f *fixture, _ *sessionConnect) {
			f.createAccount(t, "alice")
			u, _ := f.store.GetUser(context.Background(), "alice")
			if _, err := f.store.ApplyEvent(context.Background(), onboarding.StateChange{EventID: "evt_d", UserID: "alice", AccountID: u.Account.AccountID,
				Kind: onboarding.ChangeDeauthorize, Version: testNow.Unix() + 1, Now: testNow}); err != nil {
				t.Fatal(err)
			}
		}, http.StatusConflict, "account_deauthorized"},
		{"over the hourly limit", func(t *testing.T, f *fixture, _ *sessionConnect) {
			f.createAccount(t, "alice")
			f.store.slotRetryAt = testNow.Add(time.Minute)
		}, http.StatusTooManyRequests, "rate_limited"},
		{"Stripe fails", func(t *testing.T, f *fixture, c *sessionConnect) {
			f.createAccount(t, "alice")
			c.linkErr, c.sessionErr = onboarding.ErrStripeUnavailable, onboarding.ErrStripeUnavailable
		}, http.StatusBadGateway, "stripe_unavailable"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, route := range []httpapi.Route{httpapi.CreateOnboardingLink, httpapi.CreateOnboardingSession} {
				f := newFixture()
				c := &sessionConnect{steeredConnect: f.connect}
				f.svc = onboarding.NewService(f.store, c, fuzzPolicy, onboarding.WithLogger(quiet), onboarding.WithClock(func() time.Time { return testNow }))
				tt.setup(t, f, c)
				resp := f.serve(route, authed(route.Method, route.Path, nil, "alice"))
				env := decodeEnvelope(t, resp)
				if resp.StatusCode != tt.wantStatus || env.Error.Code != tt.wantCode {
					t.Errorf("%s: %d %s, want %d %s", route.Key(), resp.StatusCode, env.Error.Code, tt.wantStatus, tt.wantCode)
				}
			}
		})
	}
}
