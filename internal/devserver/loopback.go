package devserver

import (
	"net"
	"net/http"
	"slices"
	"strings"
)

// loopbackNames are the names a browser on the developer's machine uses for
// a server that listens on 127.0.0.1.
var loopbackNames = []string{"127.0.0.1", "localhost", "[::1]"}

// loopbackHosts are the Host values that name the listener at addr: each
// loopback name with its port, and the bare names too on port 80, where
// browsers send no port.
func loopbackHosts(addr string) []string {
	_, port, _ := net.SplitHostPort(addr)
	var hosts []string
	for _, name := range loopbackNames {
		hosts = append(hosts, name+":"+port)
		if port == "80" {
			hosts = append(hosts, name)
		}
	}
	return hosts
}

// loopbackOrigins are the origins a page served by the listener at addr has.
func loopbackOrigins(addr string) []string {
	var origins []string
	for _, h := range loopbackHosts(addr) {
		origins = append(origins, "http://"+h)
	}
	return origins
}

// onlyHosts answers only requests whose Host is one of hosts. A server on
// 127.0.0.1 is still reachable from a web page the developer visits through
// DNS rebinding (evil.example resolving to 127.0.0.1): the browser then
// sends Host: evil.example, which is what this refuses. 421 Misdirected
// Request is RFC 9110's answer for a request this server is not configured
// to answer for that authority (https://www.rfc-editor.org/rfc/rfc9110#name-421-misdirected-request).
func onlyHosts(hosts []string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !slices.Contains(hosts, strings.ToLower(r.Host)) {
			http.Error(w, "misdirected request: this development server answers only its loopback names (127.0.0.1, localhost, [::1]) with its port", http.StatusMisdirectedRequest)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// sameSite tells a browser's cross-site request from the developer's own:
// a request whose Origin is not one of origins, or (without Origin) whose
// Sec-Fetch-Site says another site or origin sent it, is cross-site.
// Requests with neither header (curl, Go clients, the dev server's own
// calls) are not from a browser page and pass. Origin decides first because
// the example frontend (localhost:5173) calling the API (127.0.0.1:3000) is
// cross-site to the browser yet is the developer's own page. Origin "null"
// says nothing: browsers send it for a form a page submits to its own
// origin under Referrer-Policy: no-referrer (the simulator's hosted page),
// and for sandboxed pages; Sec-Fetch-Site then decides, and without it the
// request is refused.
// https://fetch.spec.whatwg.org/#serializing-a-request-origin
// https://developer.mozilla.org/en-US/docs/Web/HTTP/Headers/Sec-Fetch-Site
type sameSite struct{ origins []string }

func (g sameSite) allows(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin != "" && origin != "null" {
		return slices.Contains(g.origins, strings.ToLower(origin))
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "same-origin", "none": // "none": typed in the address bar
		return true
	case "":
		return origin == "" // no browser headers at all
	}
	return false
}

// refuse answers a cross-site request with 403 when guarded says its route
// changes state or hands out credentials.
func (g sameSite) refuse(guarded func(*http.Request) bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if guarded(r) && !g.allows(r) {
			http.Error(w, "forbidden: a cross-site request to a development server route that changes state or mints tokens", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// changesState is every method but the safe ones: for the simulator, that
// is its /_sim controls, the hosted page's submit, and its Stripe API's
// writes. Stripe's API is called by servers with a secret key, never by a
// page, so refusing pages there costs nothing.
func changesState(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

// devRoute is the dev server's own /dev routes: /dev/token mints tokens
// (staff ones with groups=), /dev/reconcile runs the sweep.
func devRoute(r *http.Request) bool {
	return r.URL.Path == "/dev" || strings.HasPrefix(r.URL.Path, "/dev/")
}

// connectJSRoute is the simulator's stand-in for Connect.js: its script and
// the endpoints it calls from the platform's page, on the frontend's origin
// (embedded onboarding runs there, not on the simulator's pages).
func connectJSRoute(r *http.Request) bool {
	return strings.HasPrefix(r.URL.Path, "/connect-js/")
}
