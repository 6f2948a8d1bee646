package journey_test

// Embedded onboarding: the account-onboarding component mounted on the
// frontend's own page through an Account Session, with the simulator's
// stand-in for Connect.js. The tab never leaves the frontend's origin, and
// the account, its webhooks and its statuses are the hosted path's.

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// inEmbedded is an element of the component, inside the frontend's
// [data-testid=embedded-onboarding].
func inEmbedded(id string) chromedp.CSS {
	return chromedp.CSS(`[data-testid="embedded-onboarding"] [data-testid="` + id + `"]`)
}

// embed clicks start-embedded-onboarding and waits for the component's
// outcome buttons on the frontend's page; it returns the account's id.
func embed(b *browser, s *stack) string {
	b.t.Helper()
	b.do("click start-embedded-onboarding",
		chromedp.Click(testid("start-embedded-onboarding")),
		chromedp.WaitVisible(inEmbedded("sim-complete")))
	if loc := b.location(); !strings.HasPrefix(loc, s.FrontendURL+"/") {
		b.t.Fatalf("embedded onboarding left the frontend for %s", redact(loc))
	}
	if banner := b.text(chromedp.CSS(`[data-testid="embedded-onboarding"] [data-sim-banner]`)); !strings.Contains(banner, "Local Stripe simulator — not Stripe") {
		b.t.Errorf("the embedded component does not say it is the simulator: %q", banner)
	}
	if n := evalAsync[int](b, `Promise.resolve(document.querySelectorAll("iframe").length)`); n != 0 {
		b.t.Errorf("the component renders in %d iframes, want the page's own DOM", n)
	}
	b.shot("embedded-onboarding")
	return evalAsync[string](b, `import("/js/api.js").then(async (api) => (await api.getAccount()).account_id)`)
}

// embeddedOutcome clicks an outcome of the component and waits for the
// page to show status, in place.
func embeddedOutcome(b *browser, s *stack, outcome, status string) {
	b.t.Helper()
	page := b.location()
	b.do("choose embedded "+outcome, chromedp.Click(inEmbedded(outcome)))
	b.waitStatus(status, statusWithin)
	if loc := b.location(); loc != page {
		b.t.Errorf("the page moved to %s; embedded onboarding stays on %s", redact(loc), page)
	}
	if b.present("sim-complete") {
		b.t.Error("the component is still shown after it exited")
	}
	b.shot("embedded-" + status)
}

func TestEmbeddedOnboardingToActive(t *testing.T) {
	s := startStack(t, nil)
	b := newBrowser(t)
	signIn(b, s, "amir")
	acct := embed(b, s)

	embeddedOutcome(b, s, "sim-complete", "active")
	// The same Connect webhooks as the hosted page sends.
	s.waitDelivered(t, acct, "account.updated", 1)
	s.waitDelivered(t, acct, "capability.updated", 2)
	if b.present("start-embedded-onboarding") || b.present("continue-onboarding") {
		t.Error("an active account still offers onboarding")
	}
}

// One account, two ways: embedded leaves something due, the hosted page
// finishes it.
func TestEmbeddedRestrictedThenHostedToActive(t *testing.T) {
	s := startStack(t, nil)
	b := newBrowser(t)
	signIn(b, s, "bea")
	acct := embed(b, s)

	embeddedOutcome(b, s, "sim-restricted", "restricted_soon")
	if !b.present("start-embedded-onboarding") {
		t.Error("restricted_soon offers continue-onboarding but not start-embedded-onboarding")
	}
	link := toStripe(b, s, "continue-onboarding")
	if got := linkInfo(t, s, link).AccountID; got != acct {
		t.Fatalf("the hosted path onboards %s, want the embedded path's %s", got, acct)
	}
	finish(b, s, "sim-complete", "active")
	s.waitDelivered(t, acct, "account.updated", 2)
}

func TestEmbeddedRejectOffersNoOnboarding(t *testing.T) {
	s := startStack(t, nil)
	b := newBrowser(t)
	signIn(b, s, "cleo")
	acct := embed(b, s)

	embeddedOutcome(b, s, "sim-reject", "rejected")
	s.waitDelivered(t, acct, "account.updated", 1)
	rejectedHomeShowsNone(t, b, s, "start-embedded-onboarding", "continue-onboarding", "start-onboarding")
}

func TestAnExpiredEmbeddedSessionShowsALoadErrorAndATryAgain(t *testing.T) {
	s := startStack(t, nil)
	b := newBrowser(t)
	signIn(b, s, "dev")
	acct := embed(b, s)

	// The form was left open past its session's 30 minutes.
	if n := s.Sim.ExpireAccountSessions(acct); n == 0 {
		t.Fatal("the simulator holds no Account Session for the account")
	}
	b.do("choose complete with an expired secret",
		chromedp.Click(inEmbedded("sim-complete")),
		chromedp.WaitVisible(testid("embedded-load-error")))
	if typ := evalAsync[string](b, `Promise.resolve(document.querySelector('[data-testid="embedded-load-error"]').dataset.errorType)`); typ != "authentication_error" {
		t.Errorf("load error type = %q, want authentication_error", typ)
	}
	if st := evalAsync[string](b, `import("/js/api.js").then(async (api) => (await api.getAccount({refresh: true})).status)`); st != "onboarding" {
		t.Fatalf("an expired secret changed the account to %q", st)
	}
	b.shot("load-error")

	b.do("try again", chromedp.Click(testid("embedded-retry")), chromedp.WaitVisible(inEmbedded("sim-complete")))
	embeddedOutcome(b, s, "sim-complete", "active")
}
