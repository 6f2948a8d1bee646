package stripesim

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// sessionClock is a settable time, so expiry needs no sleeping.
type sessionClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *sessionClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *sessionClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func postForm(t *testing.T, s *Sim, path string, kv ...string) (int, map[string]any) {
	t.Helper()
	f := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		f.Add(kv[i], kv[i+1])
	}
	req := httptest.NewRequest("POST", path, strings.NewReader(f.Encode()))
	req.Header.Set("Authorization", "Bearer sk_test_simulator")
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	var body map[string]any
	_ = json.Unmarshal(w.Body.Bytes(), &body)
	return w.Code, body
}

func errOf(body map[string]any) (code, param string) {
	e, _ := body["error"].(map[string]any)
	code, _ = e["code"].(string)
	param, _ = e["param"].(string)
	return code, param
}

func TestAccountSessionsValidateLikeStripe(t *testing.T) {
	s := New(Options{})
	t.Cleanup(s.Close)
	_, acct := postForm(t, s, "/v1/accounts", "type", "express", "country", "US")
	id, _ := acct["id"].(string)
	for _, tt := range []struct {
		name      string
		form      []string
		wantCode  string
		wantParam string
	}{
		{"no components", []string{"account", id}, "parameter_missing", "components"},
		{"no account", []string{"components[account_onboarding][enabled]", "true"}, "parameter_missing", "account"},
		{"a component without enabled", []string{"account", id, "components[account_onboarding][features][x]", "1"}, "parameter_unknown", "components[account_onboarding][features][x]"},
		{"enabled missing", []string{"account", id, "components[payouts][features][instant_payouts]", "true"}, "parameter_missing", "components[payouts][enabled]"},
		{"a component 2023-10-16 lacks", []string{"account", id, "components[account_management][enabled]", "true"}, "parameter_unknown", "components[account_management]"},
		{"enabled not a boolean", []string{"account", id, "components[account_onboarding][enabled]", "yes"}, "", "components[account_onboarding][enabled]"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, body := postForm(t, s, "/v1/account_sessions", tt.form...)
			code, param := errOf(body)
			if status != http.StatusBadRequest || param != tt.wantParam || (tt.wantCode != "" && code != tt.wantCode) {
				t.Fatalf("answered %d %s %s, want 400 %s on %s", status, code, param, tt.wantCode, tt.wantParam)
			}
		})
	}
	if len(s.accountSessions) != 0 {
		t.Fatalf("refused requests made %d sessions", len(s.accountSessions))
	}
}

func TestAnAccountSessionIsValidThirtyMinutesForItsAccountOnly(t *testing.T) {
	clk := &sessionClock{now: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	s := New(Options{Now: clk.Now})
	t.Cleanup(s.Close)
	_, acct := postForm(t, s, "/v1/accounts", "type", "express", "country", "US")
	id, _ := acct["id"].(string)
	_, other := postForm(t, s, "/v1/accounts", "type", "express", "country", "US")
	otherID, _ := other["id"].(string)

	status, body := postForm(t, s, "/v1/account_sessions", "account", id, "components[account_onboarding][enabled]", "true")
	if status != http.StatusOK {
		t.Fatalf("create: %d %v", status, body)
	}
	secret, _ := body["client_secret"].(string)
	if body["object"] != "account_session" || body["account"] != id || !strings.HasPrefix(secret, "accs_secret__") ||
		body["expires_at"] != float64(clk.Now().Add(30*time.Minute).Unix()) || body["livemode"] != false {
		t.Fatalf("session %v", body)
	}
	comps, _ := body["components"].(map[string]any)
	onb, _ := comps["account_onboarding"].(map[string]any)
	payouts, _ := comps["payouts"].(map[string]any)
	if onb["enabled"] != true || payouts["enabled"] != false || len(comps) != 5 {
		t.Fatalf("components %v, want all five, account_onboarding alone enabled", comps)
	}

	s.mu.Lock()
	sess, a, ok := s.accountSessionFor(secret)
	_, _, unknown := s.accountSessionFor("accs_secret__nope")
	locked := s.accounts[id].linked
	s.mu.Unlock()
	if !ok || a.id != id || sess.accountID != id || a.id == otherID || unknown {
		t.Fatalf("accountSessionFor: %v %v, unknown secret found %v", ok, a, unknown)
	}
	if !locked {
		t.Fatal("an onboarding session leaves KYC prefill unlocked; Stripe locks it as for a link")
	}
	clk.advance(30 * time.Minute)
	s.mu.Lock()
	_, _, ok = s.accountSessionFor(secret)
	s.mu.Unlock()
	if ok {
		t.Fatal("the session outlived its 30 minutes")
	}
}

func TestADeauthorizedAccountGetsNoSessionAndLosesItsSessions(t *testing.T) {
	s := New(Options{})
	t.Cleanup(s.Close)
	_, acct := postForm(t, s, "/v1/accounts", "type", "express", "country", "US")
	id, _ := acct["id"].(string)
	_, body := postForm(t, s, "/v1/account_sessions", "account", id, "components[account_onboarding][enabled]", "true")
	secret, _ := body["client_secret"].(string)
	s.mu.Lock()
	s.accounts[id].deauthorized = true
	_, _, ok := s.accountSessionFor(secret)
	s.mu.Unlock()
	if ok {
		t.Fatal("a deauthorized account's session still works")
	}
	status, body := postForm(t, s, "/v1/account_sessions", "account", id, "components[account_onboarding][enabled]", "true")
	if code, _ := errOf(body); status != http.StatusForbidden || code != "account_invalid" {
		t.Fatalf("session of a deauthorized account: %d %v, want 403 account_invalid", status, body)
	}
}
