package stripesim_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/connectexpress/onboarding/internal/stripesim"
)

const platformPage = "http://localhost:5173"

// standIn posts to one of the Connect.js stand-in's endpoints as the
// script does from the platform's page: form-encoded, no API key.
func standIn(t *testing.T, s *simEnv, action string, form url.Values) answer {
	t.Helper()
	req, err := http.NewRequest("POST", s.url+"/connect-js/v1.0/account_sessions/"+action, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", platformPage)
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, header: resp.Header, raw: string(b)}
}

func accountSession(t *testing.T, s *simEnv, id string) string {
	t.Helper()
	a := call(t, s.url, "POST", "/v1/account_sessions", form("account", id, "components[account_onboarding][enabled]", "true"))
	if a.status != 200 || a.str("client_secret") == "" {
		t.Fatalf("account session: %d %s", a.status, a.raw)
	}
	return a.str("client_secret")
}

func TestTheConnectJSStandInTakesOnlyAWorkingClientSecret(t *testing.T) {
	tests := []struct {
		name   string
		secret func(t *testing.T, s *simEnv, id string) string
		want   int
	}{
		{"a fresh secret", accountSession, http.StatusOK},
		{"no secret", func(*testing.T, *simEnv, string) string { return "" }, http.StatusUnauthorized},
		{"an unknown secret", func(*testing.T, *simEnv, string) string { return "accs_secret__nobody" }, http.StatusUnauthorized},
		{"an expired secret", func(t *testing.T, s *simEnv, id string) string {
			secret := accountSession(t, s, id)
			if n := s.sim.ExpireAccountSessions(id); n != 1 {
				t.Fatalf("ExpireAccountSessions ended %d sessions, want 1", n)
			}
			return secret
		}, http.StatusUnauthorized},
		{"a disconnected account's secret", func(t *testing.T, s *simEnv, id string) string {
			secret := accountSession(t, s, id)
			if err := s.sim.RevokeAccess(id); err != nil {
				t.Fatal(err)
			}
			return secret
		}, http.StatusUnauthorized},
		{"a rejected account's secret", func(t *testing.T, s *simEnv, id string) string {
			secret := accountSession(t, s, id)
			if err := s.sim.Outcome(id, stripesim.OutcomeReject, ""); err != nil {
				t.Fatal(err)
			}
			return secret
		}, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSim(t, stripesim.Options{EmbedOrigins: []string{platformPage}})
			id := createAccount(t, s, "embed")
			secret := tt.secret(t, s, id)
			for _, action := range []string{"claim", "outcome"} {
				got := standIn(t, s, action, form("client_secret", secret, "outcome", stripesim.OutcomeLeave))
				if got.status != tt.want {
					t.Errorf("%s: %d %s, want %d", action, got.status, got.raw, tt.want)
				}
				if strings.Contains(got.raw, secret) && secret != "" {
					t.Errorf("%s echoes the client secret", action)
				}
				if got.header.Get("Access-Control-Allow-Origin") != platformPage {
					t.Errorf("%s: Access-Control-Allow-Origin %q, want the platform's page", action, got.header.Get("Access-Control-Allow-Origin"))
				}
			}
		})
	}
}

func TestTheConnectJSStandInAnswersCORSOnlyToEmbedOrigins(t *testing.T) {
	s := newSim(t, stripesim.Options{EmbedOrigins: []string{"http://elsewhere.example"}})
	got := standIn(t, s, "claim", form("client_secret", "x"))
	if v := got.header.Get("Access-Control-Allow-Origin"); v != "" {
		t.Errorf("a page not in EmbedOrigins got Access-Control-Allow-Origin %q", v)
	}
}

// An outcome chosen in the embedded component changes the account as the
// hosted page's does, and sends the same Connect events.
func TestAnEmbeddedOutcomeSendsTheHostedPagesEvents(t *testing.T) {
	s := newSim(t, stripesim.Options{EmbedOrigins: []string{platformPage}})
	k := newSink(t, 0)
	register(t, s, k, true)
	id := createAccount(t, s, "embedded-events")
	secret := accountSession(t, s, id)

	if got := standIn(t, s, "outcome", form("client_secret", secret, "outcome", "finish")); got.status != http.StatusBadRequest {
		t.Errorf("an unknown outcome: %d %s, want 400", got.status, got.raw)
	}
	if got := standIn(t, s, "outcome", form("client_secret", secret, "outcome", stripesim.OutcomeComplete)); got.status != http.StatusOK {
		t.Fatalf("complete: %d %s", got.status, got.raw)
	}
	// The hosted page's complete: account.updated (verifying), two
	// capability.updated, account.updated (active); see TestOutcomesSendSignedConnectEvents.
	waitFor(t, "four events", 10*time.Second, func() bool { ev, _ := k.snapshot(); return len(ev) >= 4 })
	events, _ := k.snapshot()
	var types []string
	for _, ev := range events {
		types = append(types, ev["type"].(string))
	}
	if strings.Join(types, " ") != "account.updated capability.updated capability.updated account.updated" {
		t.Errorf("events: %v", types)
	}
	if a := call(t, s.url, "GET", "/v1/accounts/"+id, nil); a.body["details_submitted"] != true || a.body["charges_enabled"] != true {
		t.Errorf("after complete: details_submitted %v, charges_enabled %v", a.body["details_submitted"], a.body["charges_enabled"])
	}
}

func TestTheConnectJSStandInIsServedAsAScript(t *testing.T) {
	s := newSim(t, stripesim.Options{})
	resp, err := http.Get(s.url + "/connect-js/v1.0/connect.js")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") {
		t.Errorf("connect.js: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

func TestEmbedOriginsFromEnv(t *testing.T) {
	env := func(kv map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) { v, ok := kv[k]; return v, ok }
	}
	o, err := stripesim.OptionsFromEnv(env(map[string]string{"SIM_EMBED_ORIGINS": "http://localhost:5173, https://app.example"}))
	if err != nil || strings.Join(o.EmbedOrigins, " ") != "http://localhost:5173 https://app.example" {
		t.Errorf("%v, %v", o.EmbedOrigins, err)
	}
	for _, bad := range []string{"localhost:5173", "http://localhost:5173/", "http://localhost:5173/app", "ftp://x.example", "*"} {
		if _, err := stripesim.OptionsFromEnv(env(map[string]string{"SIM_EMBED_ORIGINS": bad})); err == nil {
			t.Errorf("SIM_EMBED_ORIGINS=%q accepted", bad)
		}
	}
}
