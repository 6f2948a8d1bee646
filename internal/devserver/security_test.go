package devserver_test

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/connectexpress/onboarding/internal/testenv"
)

// TestMain runs the suite, then reads every log line every stack wrote and
// fails if one holds a secret, a token, a link URL or an email.
func TestMain(m *testing.M) {
	code := m.Run()
	if leaks := scanLogs(testenv.AllLogLines()); len(leaks) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: %d log lines leak secrets or identity data, first: %s\n", len(leaks), leaks[0])
		code = 1
	}
	os.Exit(code)
}

var leakPatterns = map[string]*regexp.Regexp{
	"Stripe secret key":      regexp.MustCompile(`\b[sr]k_(test|live)_[A-Za-z0-9]+`),
	"webhook secret":         regexp.MustCompile(`whsec_[A-Za-z0-9_]+`),
	"refresh token in a URL": regexp.MustCompile(`token=`),
	"refresh token":          regexp.MustCompile(`(^|[^A-Za-z0-9_-])[A-Za-z0-9_-]{43}([^A-Za-z0-9_-]|$)`),
	"account link URL":       regexp.MustCompile(`https://[^"\s]*(stripe\.com|stripe\.me)/`),
	"email":                  regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}`),
}

func scanLogs(lines []string) []string {
	var leaks []string
	for _, l := range lines {
		for what, re := range leakPatterns {
			if re.MatchString(l) {
				leaks = append(leaks, what+": "+l)
			}
		}
	}
	return leaks
}

func TestLogScanCatchesLeaks(t *testing.T) {
	for _, line := range []string{
		`{"msg":"x","key":"sk_test_abc123"}`, `{"s":"whsec_abc"}`, `{"u":"https://api.example/onboarding/refresh?token=x"}`,
		`{"t":"` + strings.Repeat("a", 43) + `"}`, `{"u":"https://connect.stripe.com/setup/e/acct_1/abc"}`, `{"e":"alice@example.com"}`,
	} {
		if len(scanLogs([]string{line})) == 0 {
			t.Errorf("scan missed %s", line)
		}
	}
	if leaks := scanLogs([]string{`{"msg":"request","route":"POST /accounts","status":201,"account_id":"acct_RlegQl6ywTQwTWP","request_id":"21a4e5ac2cacc0f1"}`}); len(leaks) != 0 {
		t.Errorf("false positive: %v", leaks)
	}
}

func TestNoRouteLetsOneUserReachAnothersAccount(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{})
	_, alice := onboarded(t, s, "alice")
	mallory := s.Token("mallory", "")
	for _, r := range []struct{ method, path, body string }{
		{"GET", "/accounts/me", ""}, {"GET", "/accounts/me?refresh=true", ""}, {"PATCH", "/accounts/me", `{"email":"m@example.com"}`},
		{"POST", "/accounts/me/onboarding-link", ""}, {"POST", "/accounts/me/dashboard-link", ""},
	} {
		resp, body := s.Do(t, r.method, r.path, mallory, r.body)
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s %s as another user: %d %s", r.method, r.path, resp.StatusCode, body)
		}
	}
	// Ids from the client are not part of any route.
	for _, path := range []string{"/accounts/alice", "/accounts/acct_x", "/accounts/me/../alice"} {
		resp, _ := s.Do(t, "GET", path, mallory, "")
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d", path, resp.StatusCode)
		}
	}
	if got := status(t, s, alice); got.AccountID == "" {
		t.Fatal("alice lost her account")
	}
}

func TestRequestHeadersNeverChangeRedirectURLs(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{})
	_, tok := onboarded(t, s, "pia")
	req, _ := http.NewRequest("POST", s.Server.URL+"/accounts/me/onboarding-link", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Host = "evil.example"
	req.Header.Set("X-Forwarded-Host", "evil.example")
	req.Header.Set("X-Forwarded-Proto", "http")
	req.Header.Set("Origin", "https://evil.example")
	req.Header.Set("Referer", "https://evil.example/")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("%v %v", resp, err)
	}
	resp.Body.Close()
	form := s.Stripe.Requests("POST /v1/account_links")[0].Form
	if !strings.HasPrefix(form.Get("refresh_url"), "https://api.example/onboarding/refresh?token=") ||
		form.Get("return_url") != "https://frontend.example/onboarding/return" {
		t.Fatalf("headers changed the URLs: %v", form)
	}
}

func TestRefreshRedirectsOnlyToStripeOrTheFrontend(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{})
	_, tok := onboarded(t, s, "quinn")
	resp, body := s.Do(t, "POST", "/accounts/me/onboarding-link", tok, "")
	expectStatus(t, resp, body, http.StatusOK)
	stripeHost := hostOf(t, decode[struct {
		URL string `json:"url"`
	}](t, body).URL)
	good, _ := url.Parse(s.Stripe.Requests("POST /v1/account_links")[0].Form.Get("refresh_url"))
	tokens := []string{
		good.Query().Get("token"), good.Query().Get("token"), "", "x", strings.Repeat("A", 43),
		"https://evil.example", "//evil.example", "%2F%2Fevil.example", "\r\nLocation: https://evil.example",
	}
	for _, tokenValue := range tokens {
		for _, extra := range []string{"", "&return_url=https://evil.example", "&next=//evil.example"} {
			req, _ := http.NewRequest("GET", s.Server.URL+"/onboarding/refresh?token="+url.QueryEscape(tokenValue)+extra, nil)
			req.Header.Set("X-Forwarded-Host", "evil.example")
			resp, err := noFollow.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			loc := resp.Header.Get("Location")
			if resp.StatusCode != http.StatusFound {
				t.Fatalf("token %q: status %d", tokenValue, resp.StatusCode)
			}
			if loc != "https://frontend.example/onboarding?error=link_expired" && hostOf(t, loc) != stripeHost {
				t.Fatalf("token %q redirected to %q", tokenValue, loc)
			}
		}
	}
}

var noFollow = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func hostOf(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" {
		t.Fatalf("not an https URL: %q", raw)
	}
	return u.Host
}

func TestOversizedWebhookBodyIs413(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{})
	payload := []byte(`{"id":"evt_big","pad":"` + strings.Repeat("x", 600<<10) + `"}`)
	code, body := s.PostEvent(t, payload)
	if code != http.StatusRequestEntityTooLarge || decode[errorJSON](t, body).Error.Code != "body_too_large" {
		t.Fatalf("%d %s", code, body)
	}
}
