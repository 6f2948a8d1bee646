package journey_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/connectexpress/onboarding/internal/stripesim"
)

// The staff console (examples/staff) in Chromium, on its own origin, over
// the API and the simulator as `make dev` runs them. Sellers reach the
// review queue the way real ones do: an account, an onboarding link, and
// the hosted page's outcome (details submitted).

// apiCall sends one API request and decodes the JSON answer into out.
func apiCall(t *testing.T, method, rawURL, token, body string, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, rawURL, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && json.Unmarshal(raw, out) != nil {
		t.Fatalf("%s %s: %d, not JSON", method, rawURL, resp.StatusCode)
	}
	return resp.StatusCode
}

// devToken mints a token for sub, in the given groups when any.
func devToken(t *testing.T, s *stack, sub, groups string) string {
	t.Helper()
	q := url.Values{"sub": {sub}}
	if groups != "" {
		q.Set("groups", groups)
	}
	var minted struct{ Token string }
	if code := apiCall(t, "GET", s.APIURL+"/dev/token?"+q.Encode(), "", "", &minted); code != 200 || minted.Token == "" {
		t.Fatalf("/dev/token for %q: %d", sub, code)
	}
	return minted.Token
}

// onboardSeller takes sub through onboarding on the simulator to outcome
// (details submitted) and waits until the API holds status; it returns
// the account id.
func onboardSeller(t *testing.T, s *stack, sub, outcome, due, status string) string {
	t.Helper()
	token := devToken(t, s, sub, "")
	var acct struct {
		AccountID string `json:"account_id"`
		Status    string
	}
	if code := apiCall(t, "POST", s.APIURL+"/accounts", token, `{"business_type":"individual"}`, &acct); code != http.StatusCreated {
		t.Fatalf("create the account of %q: %d", sub, code)
	}
	var link struct{ URL string }
	if code := apiCall(t, "POST", s.APIURL+"/accounts/me/onboarding-link", token, "", &link); code != 200 {
		t.Fatalf("onboarding link of %q: %d", sub, code)
	}
	if _, err := s.Sim.FinishLink(link.URL, outcome, due); err != nil {
		t.Fatalf("finish onboarding of %q: %v", sub, err)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		apiCall(t, "GET", s.APIURL+"/accounts/me", token, "", &acct)
		if acct.Status == status {
			return acct.AccountID
		}
		if time.Now().After(deadline) {
			t.Fatalf("%q: status %q after 20 s, want %q", sub, acct.Status, status)
		}
	}
}

// staffSignIn opens the console (with query, such as "?limit=2") and
// signs in as a staff member through the page's own sign-in.
func staffSignIn(b *browser, s *stack, query, user string) {
	b.t.Helper()
	b.do("open the staff console", chromedp.Navigate(s.StaffConsoleURL+"/"+query))
	b.do("sign in as staff",
		chromedp.WaitVisible(testid("staff-user")),
		chromedp.SendKeys(testid("staff-user"), user),
		chromedp.Click(testid("staff-signin")),
		chromedp.WaitVisible(testid("staff-filter-status")),
	)
}

// rowSel is the queue's row of a user.
func rowSel(userID string) chromedp.CSS {
	return chromedp.CSS(`[data-testid="staff-row"][data-user-id="` + cssString(userID) + `"]`)
}

// cssString escapes a value for a double-quoted CSS attribute selector.
func cssString(v string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v)
}

// choose picks value in the select id, as a user does: the page hears change.
func choose(b *browser, id, value string) {
	b.t.Helper()
	evalAsync[bool](b, `(() => {
		const sel = document.querySelector('[data-testid="`+id+`"]');
		sel.value = `+jsString(value)+`;
		sel.dispatchEvent(new Event("change"));
		return sel.value === `+jsString(value)+`;
	})()`)
}

// queueUsers lists the user ids of the rows the queue shows now.
func queueUsers(b *browser) []string {
	b.t.Helper()
	return evalAsync[[]string](b, `Promise.resolve([...document.querySelectorAll('[data-testid="staff-row"]')].map(r => r.getAttribute('data-user-id')))`)
}

// waitQueue waits until the queue shows exactly want (in any order).
func waitQueue(b *browser, want ...string) {
	b.t.Helper()
	slices.Sort(want)
	var got []string
	for deadline := time.Now().Add(stepTimeout); ; time.Sleep(100 * time.Millisecond) {
		got = queueUsers(b)
		slices.Sort(got)
		if slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			b.shot("failed-queue")
			b.t.Fatalf("the queue shows %q, want %q", got, want)
		}
	}
}

// waitText waits until sel's text contains want.
func waitText(b *browser, sel chromedp.CSS, want string) string {
	b.t.Helper()
	var got string
	for deadline := time.Now().Add(stepTimeout); ; time.Sleep(100 * time.Millisecond) {
		got = evalAsync[string](b, `Promise.resolve((document.querySelector('`+strings.ReplaceAll(string(sel), `'`, `\'`)+`') || {}).textContent || "")`)
		if strings.Contains(got, want) {
			return got
		}
		if time.Now().After(deadline) {
			b.shot("failed-text")
			b.t.Fatalf("%s reads %q, want it to contain %q", sel, got, want)
		}
	}
}

// docShot saves a screenshot for the operations documentation into
// test-artifacts/staff (never committed), to be copied into docs/staff/
// (docs/staff/queue.png and detail.png come from there).
func docShot(b *browser, name string) {
	b.t.Helper()
	b.shot(name)
	matches, _ := filepath.Glob(filepath.Join(b.dir, "*-"+name+".png"))
	if len(matches) == 0 {
		return
	}
	raw, err := os.ReadFile(matches[len(matches)-1])
	if err != nil {
		return
	}
	dir := filepath.Join(filepath.Dir(filepath.Dir(b.dir)), "staff")
	if os.MkdirAll(dir, 0o755) == nil {
		_ = os.WriteFile(filepath.Join(dir, name+".png"), raw, 0o644)
	}
}

func TestStaffConsoleListsFiltersOpensAndRejects(t *testing.T) {
	s := startStack(t, nil)
	samAcct := onboardSeller(t, s, "sam", stripesim.OutcomeComplete, "", "active")
	onboardSeller(t, s, "rita", stripesim.OutcomeRestricted, "past", "restricted")
	b := newBrowser(t)
	staffSignIn(b, s, "", "stella")

	waitQueue(b, "rita", "sam")
	if got := b.text(rowSel("sam") + ` [data-testid="staff-row-status"]`); got != "active" {
		t.Errorf("sam's row status %q, want active", got)
	}
	if row := b.text(rowSel("sam")); !strings.Contains(row, samAcct) || !strings.Contains(row, "US") {
		t.Errorf("sam's row %q lacks the account %s or the country", row, samAcct)
	}
	docShot(b, "queue")

	choose(b, "staff-filter-status", "active")
	waitQueue(b, "sam")
	choose(b, "staff-filter-status", "restricted")
	waitQueue(b, "rita")
	choose(b, "staff-filter-status", "")
	waitQueue(b, "rita", "sam")

	b.do("open sam", chromedp.Click(rowSel("sam")), chromedp.WaitVisible(testid("staff-detail")))
	waitText(b, `[data-testid="staff-detail-account"]`, samAcct)
	if h := b.text(testid("staff-history")); !strings.Contains(h, "active") {
		t.Errorf("staff-history %q does not show the change to active", h)
	}
	if caps := b.text(testid("staff-capabilities")); !strings.Contains(caps, "transfers") {
		t.Errorf("the capabilities %q", caps)
	}

	b.do("reject, asking first",
		chromedp.SetValue(testid("staff-reason"), "fraud"),
		chromedp.SendKeys(testid("staff-note"), "stolen card on the listing"),
		chromedp.Click(testid("staff-reject")),
		chromedp.WaitVisible(testid("staff-confirm")))
	if b.present("staff-decision") && evalAsync[bool](b, `Promise.resolve(!document.querySelector('[data-testid="staff-decision"]').hidden)`) {
		t.Error("a decision shows before the rejection was confirmed")
	}
	if got := b.text(rowSel("sam") + ` [data-testid="staff-row-status"]`); got != "active" {
		t.Errorf("before the confirmation the row reads %q", got)
	}
	b.do("confirm", chromedp.Click(testid("staff-confirm")))
	waitText(b, `[data-testid="staff-decision"]`, "rejected by stella")
	waitText(b, rowSel("sam")+` [data-testid="staff-row-status"]`, "rejected")
	audit := waitText(b, `[data-testid="staff-audit"]`, "stolen card on the listing")
	if !strings.Contains(audit, "stella") || !strings.Contains(audit, "fraud") || !strings.Contains(audit, "reject") {
		t.Errorf("staff-audit %q lacks the reviewer, the reason or the decision", audit)
	}
	if evalAsync[bool](b, `Promise.resolve(!document.querySelector('[data-testid="staff-approve"]').disabled)`) {
		t.Error("approve is still offered on a rejected account: a rejection is final")
	}
	docShot(b, "detail")
}

func TestStaffConsoleApproves(t *testing.T) {
	s := startStack(t, nil)
	onboardSeller(t, s, "amy", stripesim.OutcomeComplete, "", "active")
	b := newBrowser(t)
	staffSignIn(b, s, "", "stella")
	waitQueue(b, "amy")
	b.do("open amy", chromedp.Click(rowSel("amy")), chromedp.WaitVisible(testid("staff-approve")))
	b.do("approve", chromedp.SendKeys(testid("staff-note"), "ID and website match"), chromedp.Click(testid("staff-approve")))
	waitText(b, `[data-testid="staff-decision"]`, "approved by stella")
	audit := waitText(b, `[data-testid="staff-audit"]`, "ID and website match")
	if !strings.Contains(audit, "approve") {
		t.Errorf("staff-audit %q", audit)
	}
	if b.present("staff-confirm") {
		t.Error("an approval asked for the rejection's confirmation")
	}
	if got := b.text(rowSel("amy") + ` [data-testid="staff-row-status"]`); got != "active" {
		t.Errorf("an approval changed the row's status to %q", got)
	}
	choose(b, "staff-filter-review", "approved")
	waitQueue(b, "amy")
}

func TestStaffConsoleNextPage(t *testing.T) {
	s := startStack(t, nil)
	want := []string{"p1", "p2", "p3"}
	for _, sub := range want {
		onboardSeller(t, s, sub, stripesim.OutcomeComplete, "", "active")
	}
	b := newBrowser(t)
	staffSignIn(b, s, "?limit=2", "stella")
	for deadline := time.Now().Add(stepTimeout); len(queueUsers(b)) != 2; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the first page shows %q, want 2 rows", queueUsers(b))
		}
	}
	first := queueUsers(b)
	if !b.present("staff-next-page") {
		t.Fatal("no staff-next-page with a third account to come")
	}
	b.do("next page", chromedp.Click(testid("staff-next-page")))
	for deadline := time.Now().Add(stepTimeout); len(queueUsers(b)) != 1; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the second page shows %q, want 1 row", queueUsers(b))
		}
	}
	all := append(first, queueUsers(b)...)
	slices.Sort(all)
	if !slices.Equal(all, want) {
		t.Errorf("the two pages show %q, want each of %q once", all, want)
	}
	if b.present("staff-next-page") {
		t.Error("staff-next-page on the last page (no next_cursor)")
	}
}

func TestStaffConsoleShowsNotAuthorisedWithoutTheStaffGroup(t *testing.T) {
	s := startStack(t, nil)
	acct := onboardSeller(t, s, "nora", stripesim.OutcomeComplete, "", "active")
	b := newBrowser(t)
	// A token the platform's sign-in gave someone outside the staff group.
	token := devToken(t, s, "mallory", "support")
	b.do("open the console", chromedp.Navigate(s.StaffConsoleURL+"/"))
	b.do("signed in outside the staff group",
		chromedp.WaitVisible(testid("staff-user")))
	evalAsync[bool](b, `sessionStorage.setItem("staff.token", `+jsString(token)+`), true`)
	b.do("reload", chromedp.Reload(), chromedp.WaitVisible(testid("staff-forbidden")))
	if got := b.text(testid("staff-forbidden")); !strings.Contains(got, "Not authorised") {
		t.Errorf("staff-forbidden reads %q", got)
	}
	body := b.text(chromedp.CSS("body"))
	if b.present("staff-row") || strings.Contains(body, "nora") || strings.Contains(body, acct) {
		t.Errorf("a caller outside the staff group sees data: %q", body)
	}
	if evalAsync[bool](b, `Promise.resolve(!document.getElementById("queue-panel").hidden)`) {
		t.Error("the queue is shown to a caller outside the staff group")
	}
	b.shot("not-authorised")
}

// jsString quotes v as a JavaScript string literal.
func jsString(v string) string {
	raw, _ := json.Marshal(v)
	return string(raw)
}

func TestStaffConsoleShowsHTMLInAUserIDAndANoteAsText(t *testing.T) {
	s := startStack(t, nil)
	evilUser := `<img src=x onerror="window.__pwned=1">`
	evilNote := `<img src=x onerror="window.__pwned=2"><script>window.__pwned=3</script><b>bold</b>`
	onboardSeller(t, s, evilUser, stripesim.OutcomeComplete, "", "active")
	b := newBrowser(t)
	staffSignIn(b, s, "", "stella")
	waitQueue(b, evilUser)
	if got := b.text(rowSel(evilUser)); !strings.Contains(got, evilUser) {
		t.Errorf("the row shows %q, want the user id as text %q", got, evilUser)
	}
	b.do("open it", chromedp.Click(rowSel(evilUser)), chromedp.WaitVisible(testid("staff-approve")))
	b.do("approve with the note", chromedp.SendKeys(testid("staff-note"), evilNote), chromedp.Click(testid("staff-approve")))
	waitText(b, `[data-testid="staff-decision"]`, "approved by stella")
	time.Sleep(300 * time.Millisecond) // an injected img's onerror would have fired by now
	injected := evalAsync[map[string]any](b, `Promise.resolve({
		pwned: typeof window.__pwned,
		imgs: document.querySelectorAll("img").length,
		scripts: [...document.querySelectorAll("script")].filter(s => !s.src).length,
		bolds: document.querySelectorAll("main b").length,
	})`)
	if injected["pwned"] != "undefined" || injected["imgs"] != float64(0) || injected["scripts"] != float64(0) || injected["bolds"] != float64(0) {
		t.Errorf("markup from a user id or a note became part of the page: %v", injected)
	}
	if got := b.text(testid("staff-audit-note")); got != evilNote {
		t.Errorf("the note reads %q, want it as text %q", got, evilNote)
	}
	if got := b.text(testid("staff-detail-user")); got != evilUser {
		t.Errorf("the detail names %q, want %q", got, evilUser)
	}
	// And should markup ever get in, the console's CSP runs no inline script
	// nor inline handler: a second line of defence, checked here on purpose.
	csp := evalAsync[string](b, `new Promise(done => {
		const s = document.createElement("script");
		s.textContent = "window.__inline = 1";
		document.body.append(s);
		const img = document.createElement("img");
		img.setAttribute("onerror", "window.__inline = 2");
		img.src = "data:,x";
		document.body.append(img);
		setTimeout(() => { done(typeof window.__inline); img.remove(); s.remove(); }, 300);
	})`)
	if csp != "undefined" {
		t.Errorf("an inline script or handler ran (window.__inline is %s): the CSP must forbid inline script", csp)
	}
	b.shot("html-as-text")
}

func TestStaffConsoleShowsStripesRefusalInItsWords(t *testing.T) {
	// Stripe refuses to reject a live account whose balance is not zero;
	// the simulator applies that rule in test mode too when asked.
	s := startStack(t, map[string]string{"SIM_REJECT_BALANCE_RULE": "always"})
	acct := onboardSeller(t, s, "bal", stripesim.OutcomeComplete, "", "active")
	if err := s.Sim.SetBalance(acct, "usd", 4200); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t)
	staffSignIn(b, s, "", "stella")
	waitQueue(b, "bal")
	b.do("reject", chromedp.Click(rowSel("bal")), chromedp.WaitVisible(testid("staff-reject")),
		chromedp.Click(testid("staff-reject")), chromedp.WaitVisible(testid("staff-confirm")), chromedp.Click(testid("staff-confirm")))
	waitText(b, `[data-testid="staff-decision-error"]`, "cannot reject the account when the balance in any currency is non-zero")
	if got := b.text(rowSel("bal") + ` [data-testid="staff-row-status"]`); got != "active" {
		t.Errorf("after Stripe's refusal the row reads %q, want active", got)
	}
	if evalAsync[bool](b, `Promise.resolve(!document.querySelector('[data-testid="staff-decision"]').hidden)`) {
		t.Error("a refused rejection shows as a decision")
	}
	b.shot("stripe-refused")
}

// TestStaffConsoleRendersSignalsAndSellerFieldsAsText feeds the console's
// render module what the staff API sends for vetting (risk signals, the
// seller's email and business profile, Stripe's requirement errors), each
// holding markup, and checks it shows them all as text: the API fields
// the live tests cannot reach until the API sends them.
func TestStaffConsoleRendersSignalsAndSellerFieldsAsText(t *testing.T) {
	s := startStack(t, nil)
	b := newBrowser(t)
	b.do("open the console", chromedp.Navigate(s.StaffConsoleURL+"/"), chromedp.WaitVisible(testid("staff-user")))
	got := evalAsync[map[string]any](b, `(async () => {
		const r = await import("/js/render.js");
		const evil = '<img src=x onerror="window.__pwned=1">';
		const signals = [{code: "duplicate_email", detail: "also on " + evil}, {code: "stripe_review", detail: "disabled_reason under_review"}];
		const item = {user_id: "u1", account_id: "acct_1", status: "restricted", review: "pending", country: "US",
			created_at: "2026-12-01T10:00:00Z", email: evil + "@example.com",
			business_profile: {name: "<b>Shop</b>", url: "javascript:window.__pwned=2"}, signals};
		const table = document.createElement("table");
		const row = r.queueRow(item);
		table.append(row);
		const bare = r.queueRow({...item, user_id: "u2", signals: undefined});
		const detail = document.createElement("div");
		detail.append(...r.accountDetail({user_id: "u1", review: "pending", reviewed_by: null, reviewed_at: null, first_link_at: null,
			email: item.email, business_profile: item.business_profile, signals, status_changes: [], reviews: [],
			account: {account_id: "acct_1", status: "restricted", country: "US", service_agreement: "full", capabilities: {},
				requirements: {currently_due: ["individual.verification.document"], past_due: [], eventually_due: [], pending_verification: [],
					disabled_reason: null, current_deadline: null,
					errors: [{code: "verification_document_expired", reason: "<i>expired</i>", requirement: "individual.verification.document"}]}}}));
		document.querySelector("main").append(table, detail);
		await new Promise(done => setTimeout(done, 300));
		const out = {
			rowSignals: [...row.querySelectorAll(".signal")].map(s => s.getAttribute("data-signal")).join(","),
			rowText: row.textContent,
			bareSignals: bare.querySelector('[data-testid="staff-signals"]').textContent,
			detailText: detail.textContent,
			detailSignals: detail.querySelector('[data-testid="staff-detail-signals"]').textContent,
			website: detail.querySelector('[data-testid="staff-seller-website"]').textContent,
			markup: document.querySelectorAll("main img, main b, main i, main a").length,
			pwned: typeof window.__pwned,
		};
		table.remove();
		detail.remove();
		return out;
	})()`)
	if got["rowSignals"] != "duplicate_email,stripe_review" {
		t.Errorf("the row's signals %v, want duplicate_email,stripe_review", got["rowSignals"])
	}
	if got["bareSignals"] != "—" {
		t.Errorf("a row without signals (an API before them) shows %q, want a dash", got["bareSignals"])
	}
	for _, want := range []string{`<img src=x onerror="window.__pwned=1">@example.com`, "<b>Shop</b>"} {
		if !strings.Contains(got["rowText"].(string), want) {
			t.Errorf("the row %q does not show %q as text", got["rowText"], want)
		}
	}
	for _, want := range []string{"<i>expired</i>", "individual.verification.document", "<b>Shop</b>", "@example.com"} {
		if !strings.Contains(got["detailText"].(string), want) {
			t.Errorf("the detail %q does not show %q as text", got["detailText"], want)
		}
	}
	if ds := got["detailSignals"].(string); !strings.Contains(ds, "duplicate_email also on <img") || !strings.Contains(ds, "stripe_review disabled_reason under_review") {
		t.Errorf("the detail's signals read %q", ds)
	}
	if got["website"] != "javascript:window.__pwned=2" || got["markup"] != float64(0) || got["pwned"] != "undefined" {
		t.Errorf("markup or a link was made from the API's strings: %v", got)
	}
}
