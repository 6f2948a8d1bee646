package devserver

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"strings"

	staff "github.com/connectexpress/onboarding/examples/staff"
)

// DefaultStaffConsoleURL is where make dev serves the staff console
// (examples/staff/): an origin of its own, beside the example frontend's.
const DefaultStaffConsoleURL = "http://localhost:5174"

// openStaffConsole opens STAFF_CONSOLE_URL's port when it is a loopback
// http URL, as openFrontend does for FRONTEND_URL, and returns the URL it
// serves (the real port when the port asked for was 0) and a note for the
// banner. A URL that is not loopback is the platform's own console: its
// origin is still allowed by CORS, but nothing is served here.
func openStaffConsole(env *settings) (net.Listener, string, string) {
	consoleURL := strings.TrimRight(or(env.get("STAFF_CONSOLE_URL"), DefaultStaffConsoleURL), "/")
	addr, ok := frontendAddr(consoleURL)
	if !ok {
		return nil, consoleURL, "not served here (STAFF_CONSOLE_URL is not a loopback http URL): your own console"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, consoleURL, fmt.Sprintf("not served: %s is taken (%v); set STAFF_CONSOLE_URL to a free loopback URL to serve it", addr, err)
	}
	if u, _ := url.Parse(consoleURL); u.Port() == "0" {
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		consoleURL = "http://" + net.JoinHostPort(u.Hostname(), port)
	}
	return ln, consoleURL, "examples/staff (sign in as any staff member)"
}

// newStaffConsole serves examples/staff as its own origin: the console at
// /, its modules and stylesheet, and a config.js that points at this API.
// Its CSP allows scripts from its own origin only, so no inline script
// (and no injected markup's handler) ever runs, and lets the page call the
// API and nothing else.
func newStaffConsole(apiURL string) http.Handler {
	files, _ := fs.Sub(staff.Files, ".")
	settings, _ := json.Marshal(map[string]string{"apiBase": apiURL})
	csp := fmt.Sprintf("default-src 'self'; script-src 'self'; connect-src 'self' %s; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
		origin(apiURL))
	return staticSite(files, map[string]string{"/": "index.html"}, settings, csp)
}
