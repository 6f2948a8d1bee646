package devserver

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// The tests of issue 22, item 2: the dev server stays the developer's.

// hostOfURL is host:port of a server's URL.
func hostOfURL(t *testing.T, raw string) (host, port string) {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host, u.Port()
}

// doWithHost sends method url with the given Host header.
func doWithHost(t *testing.T, method, rawURL, host string, headers ...string) int {
	t.Helper()
	req, err := http.NewRequest(method, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestEveryServerAnswersOnlyItsLoopbackNamesWithItsPort(t *testing.T) {
	r, _ := start(t, nil)
	servers := map[string]string{
		"api":           r.APIURL + "/dev/token?sub=alice",
		"simulator":     r.SimURL + "/",
		"frontend":      r.FrontendURL + "/",
		"staff console": r.StaffConsoleURL + "/",
	}
	for name, target := range servers {
		_, port := hostOfURL(t, target)
		other := "1"
		if port == other {
			other = "2"
		}
		for _, host := range []string{"127.0.0.1:" + port, "localhost:" + port, "[::1]:" + port, "LOCALHOST:" + port} {
			if got := doWithHost(t, "GET", target, host); got != http.StatusOK {
				t.Errorf("%s with Host %s: %d, want 200", name, host, got)
			}
		}
		// evil.example is a DNS rebinding page; the rest name another server.
		for _, host := range []string{"evil.example", "evil.example:" + port, "127.0.0.1:" + other, "localhost",
			"127.0.0.1", "localhost.:" + port, "127.0.0.1.nip.io:" + port, "[::1]:" + other} {
			if got := doWithHost(t, "GET", target, host); got != http.StatusMisdirectedRequest {
				t.Errorf("%s with Host %s: %d, want 421", name, host, got)
			}
		}
	}
}

func TestLoopbackHostsOnPort80IncludeTheBareNames(t *testing.T) {
	got := strings.Join(loopbackHosts("127.0.0.1:80"), " ")
	if got != "127.0.0.1:80 127.0.0.1 localhost:80 localhost [::1]:80 [::1]" {
		t.Errorf("loopbackHosts on :80 = %s", got)
	}
	if got := strings.Join(loopbackHosts("127.0.0.1:3000"), " "); got != "127.0.0.1:3000 localhost:3000 [::1]:3000" {
		t.Errorf("loopbackHosts on :3000 = %s", got)
	}
}

func TestAPublicAPIURLTheDeveloperSetIsAlsoAnswered(t *testing.T) {
	r, _ := start(t, map[string]string{"PUBLIC_API_URL": "https://tunnel.example"})
	if got := doWithHost(t, "GET", r.APIURL+"/dev/token?sub=alice", "tunnel.example"); got != http.StatusOK {
		t.Errorf("Host tunnel.example (PUBLIC_API_URL): %d, want 200", got)
	}
	if got := doWithHost(t, "GET", r.APIURL+"/dev/token?sub=alice", "evil.example"); got != http.StatusMisdirectedRequest {
		t.Errorf("Host evil.example: %d, want 421", got)
	}
}

func TestDevRoutesAndSimulatorWritesRefuseCrossSiteRequests(t *testing.T) {
	r, _ := start(t, nil)
	apiHost, _ := hostOfURL(t, r.APIURL)
	simHost, simPort := hostOfURL(t, r.SimURL)
	_, frontPort := hostOfURL(t, r.FrontendURL)
	front := r.FrontendURL
	type target struct{ method, url, host string }
	api := []target{
		{"GET", r.APIURL + "/dev/token?sub=alice&groups=onboarding-staff", apiHost},
		{"POST", r.APIURL + "/dev/reconcile", apiHost},
	}
	sim := []target{
		{"DELETE", r.SimURL + "/_sim/faults", simHost},
		{"POST", r.SimURL + "/_sim/accounts/acct_nobody/outcome", simHost},
		{"POST", r.SimURL + "/setup/s/sess_nobody", simHost},
		{"POST", r.SimURL + "/v1/accounts", simHost},
	}
	tests := []struct {
		name     string
		headers  []string
		apiAllow bool // the /dev routes
		simAllow bool // the simulator's writes
	}{
		{"no browser headers (curl, Go clients)", nil, true, true},
		{"same-origin fetch", []string{"Sec-Fetch-Site", "same-origin"}, true, true},
		{"typed in the address bar", []string{"Sec-Fetch-Site", "none"}, true, true},
		{"its own origin", []string{"Origin", "http://localhost:" + simPort, "Sec-Fetch-Site", "same-origin"}, false, true},
		{"the example frontend", []string{"Origin", front, "Sec-Fetch-Site", "cross-site"}, true, false},
		{"a cross-site page", []string{"Sec-Fetch-Site", "cross-site"}, false, false},
		{"another port of localhost", []string{"Sec-Fetch-Site", "same-site"}, false, false},
		{"another origin", []string{"Origin", "https://evil.example"}, false, false},
		{"another origin, same-origin claimed", []string{"Origin", "https://evil.example", "Sec-Fetch-Site", "same-origin"}, false, false},
		{"an opaque origin", []string{"Origin", "null"}, false, false},
		{"an opaque origin, cross-site", []string{"Origin", "null", "Sec-Fetch-Site", "cross-site"}, false, false},
		// A form submitted to its own origin by a page with Referrer-Policy:
		// no-referrer, as the simulator's hosted onboarding page is.
		{"its own page without a referrer", []string{"Origin", "null", "Sec-Fetch-Site", "same-origin"}, true, true},
		{"another loopback port", []string{"Origin", "http://localhost:" + frontPort + "0"}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check := func(targets []target, allow bool) {
				for _, tg := range targets {
					got := doWithHost(t, tg.method, tg.url, tg.host, tt.headers...)
					if allow && got == http.StatusForbidden {
						t.Errorf("%s %s: 403, want it served", tg.method, tg.url)
					}
					if !allow && got != http.StatusForbidden {
						t.Errorf("%s %s: %d, want 403", tg.method, tg.url, got)
					}
				}
			}
			check(api, tt.apiAllow)
			check(sim, tt.simAllow)
		})
	}
	// The API's own origins pass too (a page the API served).
	if got := doWithHost(t, "GET", r.APIURL+"/dev/token?sub=alice", apiHost, "Origin", "http://"+apiHost); got != http.StatusOK {
		t.Errorf("/dev/token from the API's own origin: %d", got)
	}
	// Only the guarded routes: a page may still read the simulator's pages
	// and call the API's routes (CORS decides what it may read).
	if got := doWithHost(t, "GET", r.SimURL+"/", simHost, "Sec-Fetch-Site", "cross-site"); got != http.StatusOK {
		t.Errorf("the simulator's index to a cross-site navigation: %d", got)
	}
	if got := doWithHost(t, "GET", r.APIURL+"/accounts/me", apiHost, "Origin", "https://evil.example"); got != http.StatusUnauthorized {
		t.Errorf("GET /accounts/me from another origin: %d, want the API's own 401", got)
	}
}

func TestALiveKeyIsRefusedWhateverTheURLs(t *testing.T) {
	// Shaped like live keys, built in two parts so no live-key pattern sits
	// in the source.
	for _, key := range []string{"sk_" + "live_abc123", "rk_" + "live_abc123"} {
		for name, vars := range map[string]map[string]string{
			"real Stripe":     {"STRIPE_SECRET_KEY": key, "PUBLIC_API_URL": "https://api.platform.example", "FRONTEND_URL": "https://app.platform.example"},
			"STRIPE_API_BASE": {"STRIPE_SECRET_KEY": key, "STRIPE_API_BASE": "https://stripe.internal.example"},
		} {
			all := map[string]string{"PORT": "0", "SIM_PORT": "0", "LOG_LEVEL": "ERROR", "STRIPE_WEBHOOK_SECRET": "whsec_" + strings.Repeat("a", 32)}
			for k, v := range vars {
				all[k] = v
			}
			r, err := Start(context.Background(), Options{LookupEnv: envOf(all)})
			if err == nil {
				_ = r.Close()
				t.Errorf("%s with %s…: started", name, key[:8])
				continue
			}
			if !strings.Contains(err.Error(), "STRIPE_SECRET_KEY") || strings.Contains(err.Error(), key) {
				t.Errorf("%s: the error does not name STRIPE_SECRET_KEY, or prints the key: %v", name, err)
			}
		}
	}
}

// The frontend's page runs the simulator's Connect.js stand-in (embedded
// onboarding), which calls the simulator back: those endpoints, and only
// they, take the frontend's cross-site POSTs.
func TestOnlyTheConnectJSStandInTakesTheFrontendsPosts(t *testing.T) {
	r, _ := start(t, nil)
	simHost, _ := hostOfURL(t, r.SimURL)
	front := []string{"Origin", r.FrontendURL, "Sec-Fetch-Site", "cross-site"}
	evil := []string{"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"}
	tests := []struct {
		name    string
		path    string
		headers []string
		want    int
	}{
		// 401: past the guard, the stand-in refuses a missing client secret.
		{"the frontend to the stand-in's claim", "/connect-js/v1.0/account_sessions/claim", front, http.StatusUnauthorized},
		{"the frontend to the stand-in's outcome", "/connect-js/v1.0/account_sessions/outcome", front, http.StatusUnauthorized},
		{"another origin to the stand-in", "/connect-js/v1.0/account_sessions/outcome", evil, http.StatusForbidden},
		{"the frontend to the simulator's controls", "/_sim/accounts/acct_nobody/outcome", front, http.StatusForbidden},
		{"the frontend to the simulator's API", "/v1/account_sessions", front, http.StatusForbidden},
		{"the frontend to the hosted page's submit", "/setup/s/sess_nobody", front, http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := doWithHost(t, "POST", r.SimURL+tt.path, simHost, tt.headers...); got != tt.want {
				t.Errorf("POST %s: %d, want %d", tt.path, got, tt.want)
			}
		})
	}
}

// The frontend loads the simulator's Connect.js when the simulator is
// Stripe, and its CSP lets that script run and call back.
func TestTheFrontendLoadsTheSimulatorsConnectJS(t *testing.T) {
	r, _ := start(t, nil)
	want := r.SimURL + "/connect-js/v1.0/connect.js"
	resp, err := http.Get(r.FrontendURL + "/js/config.js")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), `"connectJsUrl":"`+want+`"`) {
		t.Errorf("config.js does not name %s: %s", want, body)
	}
	csp := resp.Header.Get("Content-Security-Policy")
	for _, directive := range []string{"script-src 'self' " + r.SimURL, "connect-src 'self' " + r.APIURL + " " + r.SimURL} {
		if !strings.Contains(csp, directive) {
			t.Errorf("CSP %q lacks %q", csp, directive)
		}
	}
	script, err := http.Get(want)
	if err != nil {
		t.Fatal(err)
	}
	defer script.Body.Close()
	js, _ := io.ReadAll(script.Body)
	if script.StatusCode != http.StatusOK || !strings.HasPrefix(script.Header.Get("Content-Type"), "text/javascript") ||
		!strings.Contains(string(js), "StripeConnect") {
		t.Errorf("GET %s: %d %s", want, script.StatusCode, script.Header.Get("Content-Type"))
	}
}
