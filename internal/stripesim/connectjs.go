package stripesim

import (
	_ "embed"
	"encoding/json"
	"net/http"
	"slices"
	"time"
)

// The stand-in for Stripe's Connect.js (https://connect-js.stripe.com/v1.0/connect.js).
// It speaks the script's side of @stripe/connect-js's loader contract
// (window.StripeConnect.init, custom elements named stripe-connect-<component>
// with setConnector and the <setter>InternalOnly methods the loader calls),
// so a page written for Stripe's Connect.js runs unchanged against it. It
// renders the account-onboarding component in the page's own DOM, not in
// an iframe as Stripe does, so browser tests can drive it; its outcome
// buttons are the hosted page's, and they change the account through the
// same code (applyOutcome), so the same webhooks go out.
// https://docs.stripe.com/connect/get-started-connect-embedded-components?platform=web
// https://github.com/stripe/connect-js (the loader the contract comes from)

//go:embed connectjs/connect.js
var connectJS []byte

// connectJSPrefix is where the stand-in lives, after Stripe's path.
const connectJSPrefix = "/connect-js/v1.0/"

func (s *Sim) connectJSRoutes(m *http.ServeMux) {
	m.HandleFunc("GET "+connectJSPrefix+"connect.js", s.connectJSScript)
	m.HandleFunc("POST "+connectJSPrefix+"account_sessions/claim", s.embedded(s.claimAccountSession))
	m.HandleFunc("POST "+connectJSPrefix+"account_sessions/outcome", s.embedded(s.embeddedOutcome))
	m.HandleFunc("OPTIONS "+connectJSPrefix+"account_sessions/{action}", s.embedded(nil))
}

func (s *Sim) connectJSScript(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	// A platform page on another origin loads it, as it loads Stripe's.
	w.Header().Set("Cross-Origin-Resource-Policy", "cross-origin")
	_, _ = w.Write(connectJS)
}

// embeddedResult is what the stand-in's endpoints answer: the account's
// id, what it still needs, and whether it can onboard at all.
type embeddedResult struct {
	Account      string   `json:"account"`
	CurrentlyDue []string `json:"currently_due"`
	Outcome      string   `json:"outcome,omitempty"`
}

// embedded wraps a stand-in endpoint: CORS for the platform pages named in
// Options.EmbedOrigins only (the component runs in the platform's page, on
// its origin), the form's client_secret checked with accountSessionFor
// (unknown, expired, or an account gone: 401, which the script turns into
// the load-error callback), and the answer never cached. The secret comes
// in the body, never in the URL, so no access log holds it.
func (s *Sim) embedded(h func(r *http.Request, as *accountSession, a *account) (embeddedResult, *apiError)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if origin := r.Header.Get("Origin"); origin != "" && slices.Contains(s.opts.EmbedOrigins, origin) {
			w.Header().Set("Access-Control-Allow-Origin", origin)
			w.Header().Add("Vary", "Origin")
			if r.Method == http.MethodOptions {
				w.Header().Set("Access-Control-Allow-Methods", "POST")
				w.Header().Set("Access-Control-Allow-Headers", "content-type")
			}
		}
		if h == nil { // a preflight
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if err := r.ParseForm(); err != nil {
			writeJSON(w, http.StatusBadRequest, invalidRequest("expected form parameters").body())
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		as, a, ok := s.accountSessionFor(r.PostForm.Get("client_secret"))
		if !ok {
			writeJSON(w, http.StatusUnauthorized, (&apiError{status: 401, typ: "authentication_error",
				message: "The client secret is unknown or expired, or its account is no longer connected: fetch a new one."}).body())
			return
		}
		res, aerr := h(r, as, a)
		if aerr != nil {
			writeJSON(w, aerr.status, aerr.body())
			return
		}
		b, _ := json.Marshal(res)
		writeJSON(w, http.StatusOK, b)
	}
}

// claimAccountSession is the component loading: a secret that works
// shows the onboarding form; a rejected account has nothing to onboard.
func (s *Sim) claimAccountSession(_ *http.Request, _ *accountSession, a *account) (embeddedResult, *apiError) {
	if a.stage == stageRejected {
		return embeddedResult{}, invalidRequest("This account was rejected: it cannot be onboarded.")
	}
	return embeddedResult{Account: a.id, CurrentlyDue: a.requirements().CurrentlyDue}, nil
}

// embeddedOutcome applies the holder's choice as the hosted page's submit
// does, with Stripe's default of omitting future requirements.
func (s *Sim) embeddedOutcome(r *http.Request, _ *accountSession, a *account) (embeddedResult, *apiError) {
	if a.stage == stageRejected {
		return embeddedResult{}, invalidRequest("This account was rejected: it cannot be onboarded.")
	}
	outcome := r.PostForm.Get("outcome")
	if err := s.applyOutcome(a, outcome, r.PostForm.Get("due"), false); err != nil {
		return embeddedResult{}, invalidParam("outcome", err.Error())
	}
	return embeddedResult{Account: a.id, CurrentlyDue: a.requirements().CurrentlyDue, Outcome: outcome}, nil
}

// ExpireAccountSessions ends every Account Session of an account now, as
// if its 30 minutes had passed, and returns how many it ended: tests of a
// component whose client secret expired.
func (s *Sim) ExpireAccountSessions(accountID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	past := s.opts.Now().Add(-time.Second).Unix()
	n := 0
	for _, as := range s.accountSessions {
		if as.accountID == accountID && as.expires > past {
			as.expires = past
			n++
		}
	}
	return n
}
