package devserver

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"path"
	"strings"

	frontend "github.com/connectexpress/onboarding/examples/frontend"
	"github.com/connectexpress/onboarding/shared/config"
)

// frontendAddr returns the address to serve the example frontend on when
// FRONTEND_URL is a loopback http URL (localhost or 127.0.0.1, any port),
// and false otherwise: then the platform's own frontend lives there.
func frontendAddr(frontendURL string) (string, bool) {
	u, err := url.Parse(frontendURL)
	if err != nil || u.Scheme != "http" || (u.Path != "" && u.Path != "/") {
		return "", false
	}
	host, port := u.Hostname(), u.Port()
	if host != "localhost" && host != "127.0.0.1" {
		return "", false
	}
	if port == "" {
		port = "80"
	}
	return net.JoinHostPort("127.0.0.1", port), true
}

// newFrontend serves examples/frontend as its own origin: the sign-in page
// at /, the onboarding home at FRONTEND_ONBOARDING_PATH, the return page at
// FRONTEND_RETURN_PATH, and a config.js that points at this API and at the
// Connect.js to load (connectJSURL).
func newFrontend(cfg config.Config, connectJSURL string) http.Handler {
	files, _ := fs.Sub(frontend.Files, ".")
	pages := map[string]string{
		"/":                        "index.html",
		cfg.FrontendOnboardingPath: "onboarding/index.html",
		cfg.FrontendReturnPath:     "onboarding/return/index.html",
	}
	settings, _ := json.Marshal(map[string]string{
		"apiBase":        cfg.PublicAPIURL,
		"signInPath":     "/",
		"onboardingPath": cfg.FrontendOnboardingPath,
		"returnPath":     cfg.FrontendReturnPath,
		"connectJsUrl":   connectJSURL,
	})
	// Connect.js's origin may run its script and be called; Stripe's own
	// also frames its components and loads Stripe.js (check the guide's CSP
	// list when deploying a frontend of your own):
	// https://docs.stripe.com/connect/get-started-connect-embedded-components?platform=web
	connect := origin(connectJSURL)
	frames := "'none'"
	if connect == origin(stripeConnectJS) {
		connect += " https://js.stripe.com"
		frames = "https://connect-js.stripe.com https://js.stripe.com"
	}
	csp := fmt.Sprintf("default-src 'self'; script-src 'self' %s; connect-src 'self' %s %s; frame-src %s; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
		connect, origin(cfg.PublicAPIURL), connect, frames)
	return staticSite(files, pages, settings, csp)
}

// staticSite serves one example page set as its own origin, as a static
// host would: the named pages, a config.js holding settings (where the API
// is), files but no directory listings, and on every answer the site's CSP
// and headers that keep it from being framed, sniffed or cached stale.
func staticSite(files fs.FS, pages map[string]string, settings []byte, csp string) http.Handler {
	static := http.FileServerFS(files)
	pageFiles := map[string]bool{}
	for _, file := range pages {
		pageFiles[file] = true
	}
	configJS := []byte("// Served by the dev server from its configuration.\nexport default " + string(settings) + ";\n")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Security-Policy", csp)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "no-referrer")
		// Always fresh while someone edits the example.
		w.Header().Set("Cache-Control", "no-cache")
		key := r.URL.Path
		if key != "/" {
			key = strings.TrimSuffix(key, "/")
		}
		if page, ok := pages[key]; ok {
			http.ServeFileFS(w, r, files, page)
			return
		}
		if r.URL.Path == "/js/config.js" {
			w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
			_, _ = w.Write(configJS)
			return
		}
		// No directory listings: only files, and each page at its path only.
		if name := strings.TrimPrefix(path.Clean(r.URL.Path), "/"); name != "" && !pageFiles[name] {
			if st, err := fs.Stat(files, name); err == nil && !st.IsDir() {
				static.ServeHTTP(w, r)
				return
			}
		}
		http.NotFound(w, r)
	})
}

// origin is scheme://host[:port] of a URL, as browsers send it in Origin.
func origin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}
