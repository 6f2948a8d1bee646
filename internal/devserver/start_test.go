package devserver

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/connectexpress/onboarding/internal/repofile"
	"github.com/connectexpress/onboarding/internal/stripesim"
)

func envOf(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

// start runs the dev server on free ports with only vars as its environment.
func start(t *testing.T, vars map[string]string) (*Running, string) {
	t.Helper()
	all := map[string]string{"PORT": "0", "SIM_PORT": "0", "FRONTEND_URL": "http://localhost:0", "STAFF_CONSOLE_URL": "http://localhost:0", "LOG_LEVEL": "ERROR"}
	for k, v := range vars {
		all[k] = v
	}
	var banner bytes.Buffer
	r, err := Start(context.Background(), Options{LookupEnv: envOf(all), Out: &banner})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r, banner.String()
}

func httpDo(t *testing.T, method, url, token, body string, headers ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestWithoutStripeSettingsTheSimulatorIsStripeAndItsWebhooksArrive(t *testing.T) {
	// Empty variables count as unset.
	r, banner := start(t, map[string]string{"STRIPE_API_BASE": "", "STRIPE_SECRET_KEY": " "})
	if r.Sim == nil || r.SimURL == "" {
		t.Fatal("no simulator")
	}
	for _, want := range []string{r.APIURL, r.FrontendURL, r.SimURL, "not Stripe"} {
		if !strings.Contains(banner, want) {
			t.Errorf("the banner does not show %q:\n%s", want, banner)
		}
	}
	if r.App.Config.StripeAPIBase != r.SimURL {
		t.Errorf("the service calls %q, want the simulator", r.App.Config.StripeAPIBase)
	}

	_, body := httpDo(t, "GET", r.APIURL+"/dev/token?sub=alice&email=alice@example.com", "", "")
	var minted struct{ Token string }
	_ = json.Unmarshal([]byte(body), &minted)
	resp, body := httpDo(t, "POST", r.APIURL+"/accounts", minted.Token, `{"business_type":"individual"}`)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	var acct struct {
		AccountID string `json:"account_id"`
		Status    string `json:"status"`
	}
	_ = json.Unmarshal([]byte(body), &acct)
	if err := r.Sim.Outcome(acct.AccountID, stripesim.OutcomeComplete, ""); err != nil {
		t.Fatal(err)
	}
	// No refresh=true: only the signed webhook can bring the news.
	deadline := time.Now().Add(20 * time.Second)
	for acct.Status != "active" {
		if time.Now().After(deadline) {
			t.Fatalf("status %q 20 s after the simulator completed onboarding: the webhook did not arrive (deliveries %+v)", acct.Status, r.Sim.Deliveries())
		}
		time.Sleep(50 * time.Millisecond)
		_, body = httpDo(t, "GET", r.APIURL+"/accounts/me", minted.Token, "")
		_ = json.Unmarshal([]byte(body), &acct)
	}
	for _, d := range r.Sim.Deliveries() {
		if !strings.HasPrefix(d.EndpointID, "we_") || (d.Delivered && d.LastStatus != 200) {
			t.Errorf("delivery %+v", d)
		}
	}
}

func TestStripeSettingsTakePrecedenceOverTheSimulator(t *testing.T) {
	r, banner := start(t, map[string]string{"STRIPE_API_BASE": "http://127.0.0.1:9", "STRIPE_WEBHOOK_SECRET": "whsec_given0123456789abcdefghijklmnopqrstuv"})
	if r.Sim != nil || r.SimURL != "" || strings.Contains(banner, "simulator") {
		t.Errorf("STRIPE_API_BASE is set, yet the simulator runs:\n%s", banner)
	}
	if strings.Contains(banner, "whsec_given0123456789abcdefghijklmnopqrstuv") {
		t.Error("the banner prints a secret it was given")
	}
}

func TestTheExampleFrontendIsServedOnALoopbackFrontendURL(t *testing.T) {
	r, _ := start(t, nil)
	if !strings.HasPrefix(r.FrontendURL, "http://localhost:") || strings.HasSuffix(r.FrontendURL, ":0") {
		t.Fatalf("FrontendURL = %q", r.FrontendURL)
	}
	pages := map[string]string{
		"/":                   `data-testid="dev-signin"`,
		"/onboarding":         `src="/js/home.js"`,
		"/onboarding/":        `src="/js/home.js"`,
		"/onboarding/return":  `src="/js/return.js"`,
		"/js/api.js":          "export function createOnboardingLink",
		"/js/config.js":       `"apiBase":"` + r.APIURL + `"`,
		"/style.css":          "body",
		"/onboarding/nothing": "404",
		"/js/":                "404",
		"/embed.go":           "404",
	}
	for path, want := range pages {
		resp, body := httpDo(t, "GET", r.FrontendURL+path, "", "")
		if want == "404" {
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("%s: %d, want 404", path, resp.StatusCode)
			}
			continue
		}
		if resp.StatusCode != 200 || !strings.Contains(body, want) {
			t.Errorf("%s: %d, want a body with %q", path, resp.StatusCode, want)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "connect-src 'self' "+r.APIURL) {
			t.Errorf("%s: CSP %q does not let the page call the API only", path, csp)
		}
	}
	if resp, _ := httpDo(t, "GET", r.FrontendURL+"/js/home.js", "", ""); !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") {
		t.Errorf("modules are served as %q", resp.Header.Get("Content-Type"))
	}
}

func TestCustomFrontendPathsAndANonLoopbackFrontend(t *testing.T) {
	r, _ := start(t, map[string]string{"FRONTEND_RETURN_PATH": "/payouts/back", "FRONTEND_ONBOARDING_PATH": "/payouts"})
	if resp, body := httpDo(t, "GET", r.FrontendURL+"/payouts/back", "", ""); resp.StatusCode != 200 || !strings.Contains(body, "return.js") {
		t.Errorf("the return page is not at FRONTEND_RETURN_PATH: %d", resp.StatusCode)
	}
	if _, body := httpDo(t, "GET", r.FrontendURL+"/js/config.js", "", ""); !strings.Contains(body, `"returnPath":"/payouts/back"`) {
		t.Errorf("config.js = %s", body)
	}
	other, banner := start(t, map[string]string{"FRONTEND_URL": "https://app.platform.example"})
	if other.FrontendURL != "" || !strings.Contains(banner, "not served here") {
		t.Errorf("a non-loopback FRONTEND_URL was served: %q\n%s", other.FrontendURL, banner)
	}
}

func TestFrontendAddr(t *testing.T) {
	tests := map[string]string{
		"http://localhost:5173":   "127.0.0.1:5173",
		"http://127.0.0.1:8080/":  "127.0.0.1:8080",
		"http://localhost":        "127.0.0.1:80",
		"https://localhost:5173":  "",
		"http://example.com:5173": "",
		"http://localhost:5173/x": "",
		"http://[::1]:5173":       "",
	}
	for in, want := range tests {
		got, ok := frontendAddr(in)
		if got != want || ok != (want != "") {
			t.Errorf("frontendAddr(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

func TestCORSAnswersTheFrontendOriginOnly(t *testing.T) {
	r, _ := start(t, map[string]string{"STRIPE_API_BASE": "http://127.0.0.1:9"})
	front := r.FrontendURL
	preflight := func(origin, method, headers string) *http.Response {
		resp, _ := httpDo(t, "OPTIONS", r.APIURL+"/accounts/me", "", "",
			"Origin", origin, "Access-Control-Request-Method", method, "Access-Control-Request-Headers", headers)
		return resp
	}
	ok := preflight(front, "PATCH", "authorization, content-type")
	if ok.StatusCode != http.StatusNoContent || ok.Header.Get("Access-Control-Allow-Origin") != front ||
		ok.Header.Get("Access-Control-Allow-Methods") != "GET,POST,PATCH" || ok.Header.Get("Access-Control-Max-Age") != "600" {
		t.Errorf("preflight from the frontend: %d %v", ok.StatusCode, ok.Header)
	}
	for name, resp := range map[string]*http.Response{
		"another origin":    preflight("https://evil.example", "GET", "authorization"),
		"a DELETE":          preflight(front, "DELETE", ""),
		"an unknown header": preflight(front, "GET", "x-debug"),
	} {
		if resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("%s: allowed (%v)", name, resp.Header)
		}
	}
	resp, _ := httpDo(t, "GET", r.APIURL+"/accounts/me", "", "", "Origin", front)
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Access-Control-Allow-Origin") != front {
		t.Errorf("a 401 to the frontend must be readable by it: %d %v", resp.StatusCode, resp.Header)
	}
	resp, _ = httpDo(t, "GET", r.APIURL+"/accounts/me", "", "", "Origin", "https://evil.example")
	if resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("another origin got %q", resp.Header.Get("Access-Control-Allow-Origin"))
	}
}

// TestCORSMatchesTheTemplate holds the dev server's CORS settings to the
// HTTP API's CorsConfiguration in template.yaml.
func TestCORSMatchesTheTemplate(t *testing.T) {
	raw, err := os.ReadFile("../../template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	cors := repofile.YAMLPath(&doc, "Resources", "HttpApi", "Properties", "CorsConfiguration")
	if cors == nil {
		t.Fatal("template.yaml has no HttpApi CorsConfiguration")
	}
	seq := func(key string) []string {
		var out []string
		if n := repofile.YAMLPath(cors, key); n != nil {
			for _, item := range n.Content {
				out = append(out, strings.ToLower(item.Value))
			}
		}
		return out
	}
	lower := func(in []string) []string {
		out := slices.Clone(in)
		for i := range out {
			out[i] = strings.ToLower(out[i])
		}
		return out
	}
	if got := seq("AllowMethods"); !slices.Equal(got, lower(corsAllowMethods)) {
		t.Errorf("template AllowMethods %v, dev server %v", got, corsAllowMethods)
	}
	if got := seq("AllowHeaders"); !slices.Equal(got, corsAllowHeaders) {
		t.Errorf("template AllowHeaders %v, dev server %v", got, corsAllowHeaders)
	}
	if n := repofile.YAMLPath(cors, "MaxAge"); n == nil || n.Value != strconv.Itoa(corsMaxAge) {
		t.Errorf("template MaxAge %v, dev server %d", n, corsMaxAge)
	}
	if repofile.YAMLPath(cors, "AllowCredentials") != nil || repofile.YAMLPath(cors, "ExposeHeaders") != nil {
		t.Error("template.yaml sets AllowCredentials or ExposeHeaders: the dev server must too")
	}
}
