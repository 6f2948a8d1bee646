package devserver

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// The HTTP API's CORS settings in template.yaml (HttpApi CorsConfiguration);
// TestCORSMatchesTheTemplate holds them together.
var (
	corsAllowMethods = []string{"GET", "POST", "PATCH"}
	corsAllowHeaders = []string{"authorization", "content-type"}
	corsMaxAge       = 600
)

// cors answers browsers as API Gateway does for an HTTP API with a CORS
// configuration: preflights are answered before any route or authorizer
// runs, and responses to an allowed origin carry Access-Control-Allow-Origin.
// A request from any other origin gets no CORS headers, so the browser
// refuses to show it to the page.
type cors struct {
	origins []string
}

// handle writes the CORS headers for r and reports whether it answered r
// itself (a preflight).
func (c cors) handle(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
	allowed := origin != "" && slices.Contains(c.origins, origin)
	if allowed {
		w.Header().Set("Access-Control-Allow-Origin", origin)
		w.Header().Add("Vary", "Origin")
	}
	if !preflight {
		return false
	}
	if allowed && slices.Contains(corsAllowMethods, r.Header.Get("Access-Control-Request-Method")) && c.headersAllowed(r) {
		w.Header().Set("Access-Control-Allow-Methods", strings.Join(corsAllowMethods, ","))
		w.Header().Set("Access-Control-Allow-Headers", strings.Join(corsAllowHeaders, ","))
		w.Header().Set("Access-Control-Max-Age", strconv.Itoa(corsMaxAge))
	} else {
		w.Header().Del("Access-Control-Allow-Origin")
	}
	w.WriteHeader(http.StatusNoContent)
	return true
}

func (c cors) headersAllowed(r *http.Request) bool {
	for _, h := range strings.Split(r.Header.Get("Access-Control-Request-Headers"), ",") {
		if h = strings.ToLower(strings.TrimSpace(h)); h != "" && !slices.Contains(corsAllowHeaders, h) {
			return false
		}
	}
	return true
}
