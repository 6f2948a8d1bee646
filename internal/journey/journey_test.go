// Package journey_test walks the onboarding journey in headless Chromium:
// the example frontend, the API, and the local Stripe simulator's hosted
// pages, each on its own origin, wired as `make dev` wires them. It crosses
// the browser redirects of Stripe's Express guide: return_url, refresh_url,
// a link used twice, a link that expired, a user who left early.
package journey_test

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/connectexpress/onboarding/internal/stripesim"
)

// statusWithin bounds how long a page may take to show a status that
// arrives by polling (the return page polls for 10 s).
const statusWithin = 20 * time.Second

func signIn(b *browser, s *stack, user string) {
	b.t.Helper()
	b.do("open the frontend", chromedp.Navigate(s.FrontendURL))
	b.do("sign in",
		chromedp.WaitVisible(testid("dev-user")),
		chromedp.SendKeys(testid("dev-user"), user),
		chromedp.Click(testid("dev-signin")),
		chromedp.WaitVisible(testid("start-onboarding")),
	)
	b.shot("signed-in")
}

// toStripe clicks a frontend button that sends the browser to an account
// link, and returns the link it landed on.
func toStripe(b *browser, s *stack, button string) string {
	b.t.Helper()
	b.do("click "+button, chromedp.Click(testid(button)), chromedp.WaitVisible(testid("sim-complete")))
	loc := b.location()
	if !strings.HasPrefix(loc, s.SimURL+"/setup/e/acct_") {
		b.t.Fatalf("%s led to %s, want an account link of the simulator", button, redact(loc))
	}
	if banner := b.text(chromedp.CSS("[data-sim-banner]")); !strings.Contains(banner, "Local Stripe simulator — not Stripe") {
		b.t.Errorf("the hosted page does not say it is the simulator: %q", banner)
	}
	b.shot("stripe-onboarding")
	return loc
}

// finish clicks a simulator outcome and waits on the return page for status.
func finish(b *browser, s *stack, outcome, status string) {
	b.t.Helper()
	b.do("choose "+outcome, chromedp.Click(testid(outcome)), chromedp.WaitVisible(testid("account-status")))
	if loc := b.location(); !strings.HasPrefix(loc, s.FrontendURL+"/onboarding/return") {
		b.t.Fatalf("%s returned to %s, want the return page", outcome, redact(loc))
	}
	b.waitStatus(status, statusWithin)
	b.shot("returned-" + status)
}

func TestCompleteOnboardingThenOpenTheDashboard(t *testing.T) {
	s := startStack(t, nil)
	b := newBrowser(t)
	signIn(b, s, "alice")
	link := toStripe(b, s, "start-onboarding")
	acct := linkInfo(t, s, link).AccountID

	finish(b, s, "sim-complete", "active")
	if b.present("requirements-due") || b.present("continue-onboarding") {
		t.Error("an active account shows something due or a continue button")
	}
	s.waitDelivered(t, acct, "account.updated", 1)
	s.waitDelivered(t, acct, "capability.updated", 2)

	b.do("open the dashboard", chromedp.Click(testid("open-dashboard")), chromedp.WaitVisible(testid("sim-dashboard")))
	if got := b.text(testid("sim-dashboard")); !strings.Contains(got, acct) {
		t.Errorf("the dashboard does not show %s: %q", acct, got)
	}
	if loc := b.location(); !strings.HasPrefix(loc, s.SimURL+"/express/"+acct+"/") {
		t.Errorf("the dashboard opened at %s, want the simulator's login link in the same tab", redact(loc))
	}
	b.shot("dashboard")
}

func TestLeaveWithoutSubmittingThenContinue(t *testing.T) {
	s := startStack(t, nil)
	b := newBrowser(t)
	signIn(b, s, "bob")
	first := toStripe(b, s, "start-onboarding")

	finish(b, s, "sim-leave", "onboarding")
	if due := b.text(testid("requirements-due")); !strings.Contains(due, "a bank account for payouts") {
		t.Errorf("requirements-due does not say, in plain words, what is missing: %q", due)
	}
	second := toStripe(b, s, "continue-onboarding")
	if second == first {
		t.Fatal("continue reused the first link")
	}
	finish(b, s, "sim-complete", "active")
}

func TestSubmitWithSomethingPastDueThenComplete(t *testing.T) {
	s := startStack(t, nil)
	b := newBrowser(t)
	signIn(b, s, "carol")
	toStripe(b, s, "start-onboarding")

	b.do("choose past due", chromedp.Click(chromedp.CSS(`input[name="due"][value="past"]`)))
	finish(b, s, "sim-restricted", "restricted")
	if due := b.text(testid("requirements-due")); !strings.Contains(due, "an identity document") {
		t.Errorf("requirements-due = %q, want the identity document", due)
	}
	// Why it is due again: Stripe's requirements.errors reason, as text.
	if why := b.text(testid("requirement-reason")); !strings.Contains(why, "The document has expired.") {
		t.Errorf("requirement-reason = %q, want Stripe's reason next to the document", why)
	}
	toStripe(b, s, "continue-onboarding")
	finish(b, s, "sim-complete", "active")
}

// A future requirement shows as restricted_soon with what Stripe will
// need, and the next link collects it.
func TestAFutureRequirementIsCollectedThroughTheNextLink(t *testing.T) {
	s := startStack(t, nil)
	b := newBrowser(t)
	signIn(b, s, "fern")
	toStripe(b, s, "start-onboarding")

	b.do("choose a future requirement", chromedp.Click(testid("sim-due-future")))
	finish(b, s, "sim-restricted", "restricted_soon")
	if due := b.text(testid("future-requirements-due")); !strings.Contains(due, "an identity document") {
		t.Errorf("future-requirements-due = %q, want the additional document in words", due)
	}
	link := toStripe(b, s, "continue-onboarding")
	if !linkInfo(t, s, link).IncludesFutureRequirements || !b.present("sim-future-included") {
		t.Error("the next link does not collect the future requirement")
	}
	finish(b, s, "sim-complete", "active")
}

func TestBackButtonOntoAUsedLinkGetsANewOne(t *testing.T) {
	s := startStack(t, nil)
	b := newBrowser(t)
	signIn(b, s, "dave")
	used := toStripe(b, s, "start-onboarding")
	finish(b, s, "sim-leave", "onboarding")

	// Back onto the link the browser already spent: Stripe sends it to
	// refresh_url, and the API answers with a fresh link.
	b.do("go back", chromedp.NavigateBack(), chromedp.WaitVisible(testid("sim-complete")))
	fresh := b.location()
	if fresh == used || !strings.HasPrefix(fresh, s.SimURL+"/setup/e/") {
		t.Fatalf("back led to %s, want a new account link", redact(fresh))
	}
	if !linkInfo(t, s, used).Used {
		t.Error("the first link is not marked used")
	}
	b.shot("fresh-link")
	finish(b, s, "sim-complete", "active")
}

func TestAnExpiredLinkGoesThroughRefreshToANewOne(t *testing.T) {
	s := startStack(t, map[string]string{"SIM_LINK_TTL": "2s"})
	b := newBrowser(t)
	signIn(b, s, "erin")

	// The link the frontend would open, fetched through its own API module
	// and left lying until it expires.
	link := evalAsync[string](b, `import("/js/api.js").then(async (api) => {
		await api.createAccount({});
		return (await api.createOnboardingLink()).url;
	})`)
	info := linkInfo(t, s, link)
	for time.Now().Before(info.ExpiresAt.Add(100 * time.Millisecond)) {
		time.Sleep(50 * time.Millisecond)
	}
	b.do("open the expired link", chromedp.Navigate(link), chromedp.WaitVisible(testid("sim-complete")))
	if fresh := b.location(); fresh == link || !strings.HasPrefix(fresh, s.SimURL+"/setup/e/") {
		t.Fatalf("the expired link led to %s, want a new account link", redact(fresh))
	}
	b.shot("fresh-link")
	finish(b, s, "sim-complete", "active")
}

func TestAReusedRefreshURLShowsTheLinkExpiredPage(t *testing.T) {
	s := startStack(t, nil)
	b := newBrowser(t)
	signIn(b, s, "frank")
	link := toStripe(b, s, "start-onboarding")
	refresh := linkInfo(t, s, link).RefreshURL
	if u, err := url.Parse(refresh); err != nil || !strings.HasPrefix(refresh, s.APIURL+"/onboarding/refresh?") || u.Query().Get("token") == "" {
		t.Fatalf("refresh_url %s is not the API's refresh route", redact(refresh))
	}

	b.do("follow refresh_url", chromedp.Navigate(refresh), chromedp.WaitVisible(testid("sim-complete")))
	b.do("follow it again", chromedp.Navigate(refresh), chromedp.WaitVisible(testid("link-expired")))
	loc, _ := url.Parse(b.location())
	if loc.Path != "/onboarding" || loc.Query().Get("error") != "link_expired" {
		t.Fatalf("a reused refresh URL led to %s, want /onboarding?error=link_expired", loc)
	}
	b.waitStatus("onboarding", statusWithin)
	b.shot("link-expired")
	toStripe(b, s, "continue-onboarding")
	finish(b, s, "sim-complete", "active")
}

func TestRejectedShowsNoWayToContinue(t *testing.T) {
	s := startStack(t, nil)
	b := newBrowser(t)
	signIn(b, s, "grace")
	acct := linkInfo(t, s, toStripe(b, s, "start-onboarding")).AccountID

	finish(b, s, "sim-reject", "rejected")
	s.waitDelivered(t, acct, "account.updated", 1)
	// The home page, read fresh, shows the same: rejected, nothing to click.
	rejectedHomeShowsNone(t, b, s, "continue-onboarding", "start-onboarding", "requirements-due")
}

// rejectedHomeShowsNone opens the home page fresh, waits for it to read
// rejected, and fails for each of ids it still shows.
func rejectedHomeShowsNone(t *testing.T, b *browser, s *stack, ids ...string) {
	t.Helper()
	b.do("open the home page", chromedp.Navigate(s.FrontendURL+"/onboarding"), chromedp.WaitVisible(testid("account-status")))
	b.waitStatus("rejected", statusWithin)
	for _, id := range ids {
		if b.present(id) {
			t.Errorf("a rejected account shows %s", id)
		}
	}
	b.shot("rejected")
}

func TestPendingVerificationTurnsActiveWithoutAReload(t *testing.T) {
	// Long enough to see the pending state on a loaded machine, well inside
	// the return page's 10 s of polling.
	s := startStack(t, map[string]string{"SIM_VERIFY_DELAY": "4s"})
	b := newBrowser(t)
	signIn(b, s, "heidi")
	acct := linkInfo(t, s, toStripe(b, s, "start-onboarding")).AccountID

	finish(b, s, "sim-pending", "pending_verification")
	returnPage := b.location()
	b.waitStatus("active", statusWithin)
	if loc := b.location(); loc != returnPage {
		t.Errorf("the page moved to %s; it should update in place", redact(loc))
	}
	s.waitDelivered(t, acct, "account.updated", 2)
	b.shot("verified-active")
}

func TestBackFromStripeWhileStripeIsDownTheLateWebhookStillArrives(t *testing.T) {
	// Deliveries wait up to 2 s, and the return page's re-read fails: only
	// the page's polling can bring the news.
	s := startStack(t, map[string]string{"SIM_CHAOS": "delay=2s"})
	b := newBrowser(t)
	signIn(b, s, "ivan")
	toStripe(b, s, "start-onboarding")

	s.Sim.InjectFault(stripesim.Fault{Op: stripesim.OpRetrieveAccount, Kind: stripesim.FaultServerError, Count: 100})
	b.do("complete", chromedp.Click(testid("sim-complete")), chromedp.WaitVisible(testid("account-status")))
	if msg := b.text(chromedp.CSS("[role=alert]")); !strings.Contains(msg, "Stripe could not be reached") {
		t.Errorf("the return page does not say Stripe was unreachable: %q", msg)
	}
	// Stripe is back once the page has failed. Events of one second that
	// disagree are settled by reading Stripe; while it was down the event's
	// own state was kept, so a burst delivered out of order could leave
	// "pending" until the next event or the sweep. The page only polls.
	s.Sim.ClearFaults()
	b.waitStatus("active", statusWithin)
	b.shot("active-from-the-webhook")
}
