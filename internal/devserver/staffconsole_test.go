package devserver

import (
	"net/http"
	"strings"
	"testing"
)

func TestTheStaffConsoleIsServedOnItsOwnOriginWithACSPThatForbidsInlineScript(t *testing.T) {
	r, banner := start(t, nil)
	if r.StaffConsoleURL == "" || r.StaffConsoleURL == r.FrontendURL || !strings.Contains(banner, "staff console: "+r.StaffConsoleURL) {
		t.Fatalf("staff console at %q (frontend %q); banner:\n%s", r.StaffConsoleURL, r.FrontendURL, banner)
	}
	resp, body := httpDo(t, "GET", r.StaffConsoleURL+"/", "", "")
	if resp.StatusCode != 200 || !strings.Contains(body, `data-testid="staff-signin"`) || !strings.Contains(body, `src="/js/console.js"`) {
		t.Fatalf("GET /: %d %.200s", resp.StatusCode, body)
	}
	csp := resp.Header.Get("Content-Security-Policy")
	for _, want := range []string{"script-src 'self';", "connect-src 'self' " + r.APIURL + ";", "object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
		t.Errorf("CSP %q allows inline script", csp)
	}
	if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("headers %v", resp.Header)
	}
	if _, body := httpDo(t, "GET", r.StaffConsoleURL+"/js/config.js", "", ""); !strings.Contains(body, `"apiBase":"`+r.APIURL+`"`) {
		t.Errorf("config.js does not point at the API: %s", body)
	}
	if resp, _ := httpDo(t, "GET", r.StaffConsoleURL+"/js/api.js", "", ""); resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") {
		t.Errorf("api.js: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, path := range []string{"/js/", "/js", "/index.html", "/embed.go", "/../go.mod"} {
		if resp, _ := httpDo(t, "GET", r.StaffConsoleURL+path, "", ""); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404 (files only, no listing)", path, resp.StatusCode)
		}
	}
	if resp, _ := httpDo(t, "POST", r.StaffConsoleURL+"/", "", ""); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /: %d", resp.StatusCode)
	}
}

func TestTheAPIAnswersTheStaffConsolesOrigin(t *testing.T) {
	r, _ := start(t, nil)
	console := r.StaffConsoleURL
	resp, _ := httpDo(t, "OPTIONS", r.APIURL+"/admin/accounts", "", "",
		"Origin", console, "Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "authorization, content-type")
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != console {
		t.Errorf("preflight from the staff console: %d %v", resp.StatusCode, resp.Header)
	}
	// Its sign-in in make dev: /dev/token, which refuses other sites' pages.
	resp, body := httpDo(t, "GET", r.APIURL+"/dev/token?sub=stella&groups=onboarding-staff", "", "",
		"Origin", console, "Sec-Fetch-Site", "same-site")
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != console || !strings.Contains(body, `"token"`) {
		t.Errorf("/dev/token from the staff console: %d %v", resp.StatusCode, resp.Header)
	}
	if resp, _ := httpDo(t, "GET", r.APIURL+"/dev/token?sub=stella&groups=onboarding-staff", "", "",
		"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("/dev/token from another site: %d, want 403", resp.StatusCode)
	}
}

func TestANonLoopbackStaffConsoleIsNotServedButIsAllowed(t *testing.T) {
	r, banner := start(t, map[string]string{"STAFF_CONSOLE_URL": "https://staff.platform.example/"})
	if r.StaffConsoleURL != "" || !strings.Contains(banner, "not served here (STAFF_CONSOLE_URL") {
		t.Errorf("a non-loopback STAFF_CONSOLE_URL was served: %q\n%s", r.StaffConsoleURL, banner)
	}
	resp, _ := httpDo(t, "OPTIONS", r.APIURL+"/admin/accounts", "", "",
		"Origin", "https://staff.platform.example", "Access-Control-Request-Method", "GET", "Access-Control-Request-Headers", "authorization")
	if resp.Header.Get("Access-Control-Allow-Origin") != "https://staff.platform.example" {
		t.Errorf("the platform's own console is refused: %v", resp.Header)
	}
}
