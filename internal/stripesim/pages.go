package stripesim

import (
	"embed"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

//go:embed templates/*.html
var templateFS embed.FS

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"join": strings.Join,
}).ParseFS(templateFS, "templates/*.html"))

// pageAccount is what the hosted pages show of an account.
type pageAccount struct {
	ID               string
	Country          string
	Email            string
	BusinessType     string
	Profile          [][2]string
	Agreement        string
	Capabilities     [][2]string
	CurrentlyDue     []string
	PastDue          []string
	Pending          []string
	DisabledReason   string
	DetailsSubmitted bool
	ChargesEnabled   bool
	PayoutsEnabled   bool
	Deauthorized     bool
}

func (a *account) page() pageAccount {
	req := a.requirements()
	p := pageAccount{
		ID: a.id, Country: a.country, Email: a.email, BusinessType: a.businessType, Agreement: a.agreement,
		CurrentlyDue: req.CurrentlyDue, PastDue: req.PastDue, Pending: req.PendingVerification,
		DisabledReason: string(req.DisabledReason), DetailsSubmitted: a.submitted(),
		ChargesEnabled: (a.stage == stageComplete || a.stage == stageDueSoon) && a.hasCapability("card_payments"),
		PayoutsEnabled: a.stage == stageComplete || a.stage == stageDueSoon, Deauthorized: a.deauthorized,
	}
	keys := make([]string, 0, len(a.profile))
	for k := range a.profile {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p.Profile = append(p.Profile, [2]string{k, a.profile[k]})
	}
	for _, c := range a.requested {
		p.Capabilities = append(p.Capabilities, [2]string{c, a.capabilityStatus()})
	}
	return p
}

func renderPage(w http.ResponseWriter, status int, name string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	// Links are single use: a page shown from the cache or restored by the
	// back button must ask the simulator again.
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; form-action 'self' http: https:; base-uri 'none'")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	_ = pages.ExecuteTemplate(w, name, data)
}

// onboardingPage serves an account link: the hosted onboarding page, once.
// A used or expired link, or one for an account that was rejected or
// disconnected, sends the browser to the link's refresh_url, as Stripe does.
func (s *Sim) onboardingPage(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.links[r.PathValue("token")]
	if !ok || l.accountID != r.PathValue("account") {
		renderPage(w, http.StatusNotFound, "message.html", message{Title: "This link is not valid",
			Text: "The local Stripe simulator handed out no such link. It keeps its state in memory: was it restarted?"})
		return
	}
	a := s.accounts[l.accountID]
	now := s.opts.Now()
	if l.used || !now.Before(l.expires) || a.deauthorized || a.stage == stageRejected {
		s.opts.Logger.Info("stripesim: link no longer usable, redirecting to refresh_url", "account", a.id,
			"used", l.used, "expired", !now.Before(l.expires))
		l.used = true
		http.Redirect(w, r, l.refreshURL, http.StatusFound)
		return
	}
	l.used = true
	sess := &session{id: randomID(24), accountID: a.id, returnURL: l.returnURL, includeFuture: l.includeFuture, expires: now.Add(sessionTTL)}
	s.sessions[sess.id] = sess
	data := onboardingData{
		Account: a.page(), Session: sess.id, Collect: l.collect, VerifyDelay: s.opts.VerifyDelay.String(),
		ReturnURL: l.returnURL, LinkExpiresIn: s.opts.LinkTTL.String(), FutureDue: a.future,
	}
	if l.includeFuture {
		data.FutureCollected = a.future
	}
	renderPage(w, http.StatusOK, "onboarding.html", data)
}

type onboardingData struct {
	Account       pageAccount
	Session       string
	Collect       string
	VerifyDelay   string
	ReturnURL     string
	LinkExpiresIn string
	// FutureDue is the account's future requirements; FutureCollected the
	// ones this link collects (all with future_requirements=include, else none).
	FutureDue       []string
	FutureCollected []string
}

type message struct {
	Title, Text string
}

// Outcomes the onboarding page offers.
const (
	OutcomeComplete   = "complete"
	OutcomeRestricted = "restricted"
	OutcomePending    = "pending"
	OutcomeReject     = "reject"
	OutcomeLeave      = "leave"
)

// submitOnboarding applies the outcome chosen on the onboarding page, sends
// the Connect events, and sends the browser to return_url.
func (s *Sim) submitOnboarding(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		renderPage(w, http.StatusBadRequest, "message.html", message{Title: "Bad request", Text: "The form could not be read."})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.sessions[r.PathValue("session")]
	if !ok || sess.used || !s.opts.Now().Before(sess.expires) {
		renderPage(w, http.StatusGone, "message.html", message{Title: "This onboarding page has expired",
			Text: "It was already submitted, or left open too long. Go back to the platform and continue from there."})
		return
	}
	a := s.accounts[sess.accountID]
	outcome := r.PostForm.Get("outcome")
	if err := s.applyOutcome(a, outcome, r.PostForm.Get("due"), sess.includeFuture); err != nil {
		renderPage(w, http.StatusBadRequest, "message.html", message{Title: "Unknown choice", Text: err.Error()})
		return
	}
	sess.used = true
	http.Redirect(w, r, sess.returnURL, http.StatusSeeOther)
}

type outcomeError string

func (e outcomeError) Error() string { return string(e) }

// futureDelay is when the simulated rule change's requirement falls due.
const futureDelay = 30 * 24 * time.Hour

// applyOutcome changes the account as Stripe would after the holder's
// choice, on a link that collected the account's future requirements or
// not. Called with s.mu held.
func (s *Sim) applyOutcome(a *account, outcome, due string, collectFuture bool) error {
	switch outcome {
	case OutcomeComplete, OutcomeRestricted, OutcomePending:
		if collectFuture {
			// The holder gave what the link asked for, future requirements too.
			a.future, a.futureDeadline = nil, 0
		}
	}
	switch outcome {
	case OutcomeComplete:
		s.submit(a, stageComplete)
	case OutcomeRestricted:
		switch due {
		case "past":
			s.submit(a, stagePastDue)
		case "future":
			// Everything verified today, and a rule change announced: Stripe
			// lists what it will need under future_requirements with the
			// date they merge into requirements (current_deadline).
			a.future = []string{a.futureField()}
			a.futureDeadline = s.opts.Now().Add(futureDelay).Unix()
			s.submit(a, stageComplete)
		default:
			s.submit(a, stageDueSoon)
		}
	case OutcomePending:
		s.setStage(a, stagePending, "")
		gen := a.generation
		s.afterFunc(s.opts.VerifyDelay, func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			// Only if nothing else happened to the account meanwhile.
			if a.generation == gen && a.stage == stagePending && !a.deauthorized {
				s.setStage(a, stageComplete, "")
			}
		})
	case OutcomeReject:
		s.setStage(a, stageRejected, "rejected.other")
	case OutcomeLeave:
		// Nothing submitted, nothing changes, no events.
	default:
		return outcomeError("outcome must be complete, restricted, pending, reject or leave")
	}
	return nil
}

// submit moves an account to the stage its holder's submission leads to.
// When they submit onboarding, Stripe takes the details (the account is
// verifying, its capabilities pending) and decides within the same second:
// the account's events of that second are one burst (emitBurst) that shows
// both states. A later submission changes the account in one step.
func (s *Sim) submit(a *account, st stage) {
	if a.submitted() {
		s.setStage(a, st, "")
		return
	}
	verifying := a.clone()
	verifying.stage = stagePending
	if verifying.businessType == "" {
		verifying.businessType = "individual" // as setStage does: the holder answered it
	}
	s.changeStage(a, st, "")
	s.emitBurst(a, true, verifying)
}

// Outcome applies an onboarding outcome to an account without a browser,
// as the hosted page would on a link that omits future requirements
// (Stripe's default); due is "soon", "past" or "future" for restricted.
func (s *Sim) Outcome(accountID, outcome, due string) error {
	return s.withAccount(accountID, func(a *account) error { return s.applyOutcome(a, outcome, due, false) })
}

// FinishLink does what the account holder's browser does with an account
// link: opens it (spending it) and submits outcome on the hosted page, with
// what the link collects. It returns the link's return_url; an error for a
// link that is unknown, used or expired, or whose account cannot onboard.
func (s *Sim) FinishLink(linkURL, outcome, due string) (string, error) {
	u, err := url.Parse(linkURL)
	if err != nil {
		return "", outcomeError("not a link URL")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.links[lastSegment(u.Path)]
	if !ok {
		return "", outcomeError("no such account link")
	}
	a := s.accounts[l.accountID]
	if l.used || !s.opts.Now().Before(l.expires) || a.deauthorized || a.stage == stageRejected {
		return "", outcomeError("the link is used or expired, or its account cannot onboard: Stripe sends the browser to refresh_url")
	}
	l.used = true
	if err := s.applyOutcome(a, outcome, due, l.includeFuture); err != nil {
		return "", err
	}
	return l.returnURL, nil
}

// Hold does what Stripe's own risk checks do to a submitted account: it
// disables it with disabled_reason reason, under_review (Stripe's team is
// reviewing it) or listed (it matched a list of prohibited persons or
// businesses), and sends account.updated. A later outcome moves it on.
func (s *Sim) Hold(accountID, reason string) error {
	return s.withAccount(accountID, func(a *account) error {
		switch {
		case !slices.Contains(heldReasons, reason):
			return outcomeError("reason must be under_review or listed")
		case !a.submitted() || a.stage == stageRejected:
			return outcomeError("only an account that submitted its details, and is not rejected, can be held")
		}
		s.setStage(a, stageHeld, reason)
		return nil
	})
}

// Deauthorize disconnects an account from the platform, as when its holder
// removes the platform's access: account.application.deauthorized is sent
// and the platform's key can no longer reach the account.
func (s *Sim) Deauthorize(accountID string) error { return s.endAccess(accountID, true) }

// RevokeAccess ends the platform's access to an account without telling
// any endpoint: the account was deleted, or disconnected while its
// account.application.deauthorized event was missed. From then on every
// call about it answers 403 account_invalid, as for an unknown account, and
// its links send the browser to refresh_url.
func (s *Sim) RevokeAccess(accountID string) error { return s.endAccess(accountID, false) }

// endAccess ends the platform's access to an account, once, telling the
// endpoints (account.application.deauthorized) only when notify is set.
func (s *Sim) endAccess(accountID string, notify bool) error {
	return s.withAccount(accountID, func(a *account) error {
		if a.deauthorized {
			return nil
		}
		a.deauthorized = true
		a.generation++
		if notify {
			s.emitDeauthorized(a)
		} else {
			s.opts.Logger.Info("stripesim: access revoked without an event", "account", a.id)
		}
		return nil
	})
}

// deauthorizeControl serves POST /_sim/accounts/{id}/deauthorize; with
// webhook=false no event is sent (RevokeAccess):
//
//	curl -XPOST $SIM/_sim/accounts/acct_.../deauthorize -d webhook=false
func (s *Sim) deauthorizeControl(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, invalidRequest("expected form parameters").body())
		return
	}
	deauthorize := s.Deauthorize
	if raw := r.PostForm.Get("webhook"); raw != "" {
		webhook, err := strconv.ParseBool(raw)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, invalidParam("webhook", "webhook must be true or false").body())
			return
		}
		if !webhook {
			deauthorize = s.RevokeAccess
		}
	}
	if err := deauthorize(r.PathValue("id")); err != nil {
		writeJSON(w, http.StatusNotFound, noSuchAccount(r.PathValue("id")).body())
		return
	}
	writeJSON(w, http.StatusOK, []byte(`{"deauthorized":true}`))
}

// dashboardPage serves a login link: the simulated Express Dashboard, once.
func (s *Sim) dashboardPage(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.loginLinks[r.PathValue("token")]
	if !ok || l.accountID != r.PathValue("account") || l.used || !s.opts.Now().Before(l.expires) {
		renderPage(w, http.StatusGone, "message.html", message{Title: "This login link has expired",
			Text: "Express Dashboard login links work once and only for a few minutes. Ask the platform for a new one."})
		return
	}
	l.used = true
	a := s.accounts[l.accountID]
	if a.deauthorized {
		renderPage(w, http.StatusForbidden, "message.html", message{Title: "Disconnected",
			Text: "This account is no longer connected to the platform."})
		return
	}
	renderPage(w, http.StatusOK, "dashboard.html", a.page())
}

// indexPage lists the simulator's state, for a person watching the flow.
func (s *Sim) indexPage(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	data := indexData{LinkTTL: s.opts.LinkTTL.String(), VerifyDelay: s.opts.VerifyDelay.String(), Chaos: s.opts.Chaos.String()}
	for i := len(s.accountOrder) - 1; i >= 0; i-- {
		a := s.accounts[s.accountOrder[i]]
		data.Accounts = append(data.Accounts, a.page())
	}
	for _, id := range s.endpointList {
		ep := s.endpoints[id]
		data.Endpoints = append(data.Endpoints, [3]string{ep.id, ep.url, strings.Join(ep.events, ", ")})
	}
	start := max(0, len(s.deliveries)-50)
	for i := len(s.deliveries) - 1; i >= start; i-- {
		data.Deliveries = append(data.Deliveries, *s.deliveries[i])
	}
	renderPage(w, http.StatusOK, "index.html", data)
}

type indexData struct {
	LinkTTL, VerifyDelay, Chaos string
	Accounts                    []pageAccount
	Endpoints                   [][3]string
	Deliveries                  []Delivery
}

func (c Chaos) String() string {
	var parts []string
	if c.Duplicate {
		parts = append(parts, "dup")
	}
	if c.Shuffle {
		parts = append(parts, "shuffle")
	}
	if c.Reverse {
		parts = append(parts, "reverse")
	}
	if c.MaxDelay > 0 {
		parts = append(parts, "delay="+c.MaxDelay.String())
	}
	if len(parts) == 0 {
		return "off"
	}
	return strings.Join(parts, ",")
}
