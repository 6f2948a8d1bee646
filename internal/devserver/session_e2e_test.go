package devserver

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connectexpress/onboarding/internal/stripesim"
)

// rawLogs keeps every byte the dev server logs, at every level.
type rawLogs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *rawLogs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *rawLogs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

type sessionAnswer struct {
	ClientSecret   string `json:"client_secret"`
	ExpiresAt      string `json:"expires_at"`
	PublishableKey string `json:"publishable_key"`
}

// `make dev` on the simulator: an onboarding session hands out a client
// secret the simulator made for 30 minutes, the make-dev publishable key,
// no-store; it takes the KYC lock as a first link does; and no log line,
// at any level, carries the secret.
func TestEmbeddedOnboardingSessionOnTheSimulator(t *testing.T) {
	logs := &rawLogs{}
	r, err := Start(context.Background(), Options{
		LookupEnv: envOf(map[string]string{"PORT": "0", "SIM_PORT": "0", "FRONTEND_URL": "http://localhost:0", "STAFF_CONSOLE_URL": "http://localhost:0", "LOG_LEVEL": "DEBUG"}),
		Logger:    slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = r.Close() })
	seller := devAccount(t, r, "emma")

	resp, body := httpDo(t, "POST", r.APIURL+"/accounts/me/onboarding-session", seller.token, "")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("session: %d %q %s, want 200 no-store", resp.StatusCode, resp.Header.Get("Cache-Control"), body)
	}
	var s sessionAnswer
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		t.Fatal(err)
	}
	expires, err := time.Parse(time.RFC3339, s.ExpiresAt)
	if !strings.HasPrefix(s.ClientSecret, "accs_secret__") || s.PublishableKey != SimulatorPublishableKey || err != nil ||
		expires.Sub(time.Now().Add(30*time.Minute)).Abs() > time.Minute {
		t.Fatalf("session %+v: want the simulator's secret, %s and an expiry 30 minutes out", s, SimulatorPublishableKey)
	}

	resp, body = httpDo(t, "PATCH", r.APIURL+"/accounts/me", seller.token, `{"business_profile":{"name":"Emma's"}}`)
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, `"kyc_locked"`) {
		t.Fatalf("PATCH after a session: %d %s, want 409 kyc_locked", resp.StatusCode, body)
	}

	// Stripe failing is 502, as for a link.
	r.Sim.InjectFault(stripesim.Fault{Op: stripesim.OpCreateAccountSession, Kind: stripesim.FaultServerError, Count: 5})
	resp, body = httpDo(t, "POST", r.APIURL+"/accounts/me/onboarding-session", seller.token, "")
	r.Sim.ClearFaults()
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, `"stripe_unavailable"`) {
		t.Fatalf("session while Stripe fails: %d %s, want 502 stripe_unavailable", resp.StatusCode, body)
	}

	// An account the platform lost at Stripe (403 account_invalid) is
	// deauthorized, as a link finds it.
	if err := r.Sim.RevokeAccess(seller.account); err != nil {
		t.Fatal(err)
	}
	resp, body = httpDo(t, "POST", r.APIURL+"/accounts/me/onboarding-session", seller.token, "")
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, `"account_deauthorized"`) {
		t.Fatalf("session of a revoked account: %d %s, want 409 account_deauthorized", resp.StatusCode, body)
	}
	if got := seller.status(t, r); got != "deauthorized" {
		t.Fatalf("stored status %q, want deauthorized", got)
	}

	if out := logs.String(); strings.Contains(out, s.ClientSecret) || strings.Contains(out, "accs_secret") {
		t.Fatalf("the client secret reached the dev server's log:\n%s", out)
	}
	if !strings.Contains(logs.String(), "/accounts/me/onboarding-session") {
		t.Fatal("no request line was logged: the capture saw nothing")
	}
}

// Links and sessions spend one LINKS_PER_HOUR budget, and an account
// without one is answered as the link route answers it.
func TestSessionsAndLinksShareLinksPerHourOverHTTP(t *testing.T) {
	r, _ := start(t, map[string]string{"LINKS_PER_HOUR": "2"})
	seller := devAccount(t, r, "lina")
	for i, path := range []string{"/accounts/me/onboarding-link", "/accounts/me/onboarding-session"} {
		if resp, body := httpDo(t, "POST", r.APIURL+path, seller.token, ""); resp.StatusCode != http.StatusOK {
			t.Fatalf("%d: %s: %d %s", i, path, resp.StatusCode, body)
		}
	}
	for _, path := range []string{"/accounts/me/onboarding-session", "/accounts/me/onboarding-link"} {
		resp, body := httpDo(t, "POST", r.APIURL+path, seller.token, "")
		if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(body, `"rate_limited"`) || resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s past the budget: %d %s, want 429 rate_limited with Retry-After", path, resp.StatusCode, body)
		}
	}
	_, tokBody := httpDo(t, "GET", r.APIURL+"/dev/token?sub=nobody", "", "")
	var minted struct{ Token string }
	_ = json.Unmarshal([]byte(tokBody), &minted)
	linkResp, linkBody := httpDo(t, "POST", r.APIURL+"/accounts/me/onboarding-link", minted.Token, "")
	sessResp, sessBody := httpDo(t, "POST", r.APIURL+"/accounts/me/onboarding-session", minted.Token, "")
	if linkResp.StatusCode != sessResp.StatusCode || !strings.Contains(sessBody, `"not_found"`) || !strings.Contains(linkBody, `"not_found"`) {
		t.Errorf("no account: link %d %s, session %d %s: want the same", linkResp.StatusCode, linkBody, sessResp.StatusCode, sessBody)
	}
}
