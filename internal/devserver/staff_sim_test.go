package devserver

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/connectexpress/onboarding/internal/stripesim"
)

// TestStaffRejectOnTheSimulator runs `make dev` as it starts (the
// simulator, the in-process engine) and vets an account through it: the
// staff token comes from /dev/token?groups=, the rejection reaches the
// simulator, which rejects the account for fraud, the account's status
// becomes rejected with cause staff, and a repeat calls Stripe no more.
func TestStaffRejectOnTheSimulator(t *testing.T) {
	r, _ := start(t, nil)
	token := func(query string) string {
		t.Helper()
		resp, body := httpDo(t, "GET", r.APIURL+"/dev/token?"+query, "", "")
		var minted struct{ Token string }
		if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &minted) != nil || minted.Token == "" {
			t.Fatalf("/dev/token?%s: %d %s", query, resp.StatusCode, body)
		}
		return minted.Token
	}
	seller := devAccount(t, r, "sid")
	if err := r.Sim.Outcome(seller.account, stripesim.OutcomeComplete, ""); err != nil {
		t.Fatal(err)
	}
	seller.waitStatus(t, r, "active")

	for _, query := range []string{"sub=sid", "sub=mal&groups=support", "sub=mal&groups=support,onboarding-staff-readers"} {
		if resp, body := httpDo(t, "GET", r.APIURL+"/admin/accounts", token(query), ""); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, `"forbidden"`) {
			t.Errorf("/dev/token?%s on the staff list: %d %s", query, resp.StatusCode, body)
		}
	}
	staff := token("sub=stella&groups=support,onboarding-staff")
	resp, body := httpDo(t, "GET", r.APIURL+"/admin/accounts?review=pending&status=active", staff, "")
	if resp.StatusCode != 200 || !strings.Contains(body, `"user_id":"sid"`) {
		t.Fatalf("the queue: %d %s", resp.StatusCode, body)
	}

	reject := `{"decision":"reject","reason":"fraud","note":"stolen card on the listing"}`
	resp, first := httpDo(t, "POST", r.APIURL+"/admin/accounts/sid/review", staff, reject)
	var answer struct {
		Review, Status string
		ReviewedBy     string `json:"reviewed_by"`
	}
	if _ = json.Unmarshal([]byte(first), &answer); resp.StatusCode != 200 || answer.Review != "rejected" || answer.Status != "rejected" || answer.ReviewedBy != "stella" {
		t.Fatalf("reject: %d %s", resp.StatusCode, first)
	}
	// At Stripe: rejected for fraud, nothing enabled.
	req, _ := http.NewRequest("GET", r.SimURL+"/v1/accounts/"+url.PathEscape(seller.account), nil)
	req.Header.Set("Authorization", "Bearer "+r.App.Config.StripeSecretKey)
	simResp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var atStripe struct {
		ChargesEnabled bool `json:"charges_enabled"`
		PayoutsEnabled bool `json:"payouts_enabled"`
		Requirements   struct {
			DisabledReason string `json:"disabled_reason"`
		} `json:"requirements"`
	}
	_ = json.NewDecoder(simResp.Body).Decode(&atStripe)
	simResp.Body.Close()
	if atStripe.Requirements.DisabledReason != "rejected.fraud" || atStripe.ChargesEnabled || atStripe.PayoutsEnabled {
		t.Errorf("the simulator holds %+v, want rejected.fraud and nothing enabled", atStripe)
	}
	// A repeat records nothing and calls Stripe no more: a reject would meet this fault.
	r.Sim.InjectFault(stripesim.Fault{Op: stripesim.OpRejectAccount, Kind: stripesim.FaultServerError, Count: 5})
	if resp, again := httpDo(t, "POST", r.APIURL+"/admin/accounts/sid/review", staff, reject); resp.StatusCode != 200 || again != first {
		t.Errorf("the repeat: %d %s, want the first answer %s", resp.StatusCode, again, first)
	}
	r.Sim.ClearFaults()

	seller.waitStatus(t, r, "rejected") // the seller sees it too, and the simulator's own webhook changes nothing
	_, body = httpDo(t, "GET", r.APIURL+"/admin/accounts/sid", staff, "")
	var h struct {
		Review        string
		StatusChanges []struct{ From, To, Cause string } `json:"status_changes"`
		Reviews       []struct{ Decision, Reason, Note, Reviewer, Outcome, Attempt string }
	}
	_ = json.Unmarshal([]byte(body), &h)
	if h.Review != "rejected" || len(h.StatusChanges) != 2 || h.StatusChanges[0].From != "active" || h.StatusChanges[0].To != "rejected" ||
		h.StatusChanges[0].Cause != "staff" || h.StatusChanges[1].Cause != "webhook" {
		t.Errorf("sid's history, newest first: %s", body)
	}
	// The rejection's intent, written before Stripe was called, then its decision.
	if len(h.Reviews) != 2 || h.Reviews[0].Reason != "fraud" || h.Reviews[0].Reviewer != "stella" || h.Reviews[0].Note != "stolen card on the listing" ||
		h.Reviews[0].Outcome != "recorded" || h.Reviews[1].Outcome != "intent" || h.Reviews[1].Attempt != h.Reviews[0].Attempt {
		t.Errorf("sid's decisions: %+v", h.Reviews)
	}
	if resp, body := httpDo(t, "GET", r.APIURL+"/admin/accounts?status=rejected&review=rejected", staff, ""); !strings.Contains(body, `"user_id":"sid"`) {
		t.Errorf("rejected list: %d %s", resp.StatusCode, body)
	}
}

// staffAudit is GET /admin/accounts/{user_id} as these tests read it.
type staffAudit struct {
	Review        string
	StatusChanges []struct{ From, To, Cause string } `json:"status_changes"`
	Reviews       []struct {
		Decision, Reason, Reviewer, Outcome, Attempt string
		StripeCode                                   string `json:"stripe_code"`
		StripeMessage                                string `json:"stripe_message"`
	}
}

func (a staffAudit) outcomes() string {
	var l []string
	for _, r := range a.Reviews {
		l = append(l, r.Outcome)
	}
	return strings.Join(l, ",")
}

// devStaff mints a staff token of the dev server and reads an account's audit.
type devStaff struct {
	r     *Running
	token string
}

func newDevStaff(t *testing.T, r *Running) devStaff {
	t.Helper()
	resp, body := httpDo(t, "GET", r.APIURL+"/dev/token?sub=stella&groups=onboarding-staff", "", "")
	var minted struct{ Token string }
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &minted) != nil || minted.Token == "" {
		t.Fatalf("/dev/token: %d %s", resp.StatusCode, body)
	}
	return devStaff{r: r, token: minted.Token}
}

func (s devStaff) reject(t *testing.T, user string) (*http.Response, string) {
	t.Helper()
	return httpDo(t, "POST", s.r.APIURL+"/admin/accounts/"+user+"/review", s.token, `{"decision":"reject","reason":"fraud","note":"stolen cards"}`)
}

func (s devStaff) audit(t *testing.T, user string) staffAudit {
	t.Helper()
	resp, body := httpDo(t, "GET", s.r.APIURL+"/admin/accounts/"+user, s.token, "")
	var a staffAudit
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &a) != nil {
		t.Fatalf("GET /admin/accounts/%s: %d %s", user, resp.StatusCode, body)
	}
	return a
}

// TestARejectionStripeRefusesForABalanceSucceedsOnceItIsCleared (issue 21,
// item 4): Stripe refuses to reject a live-mode account whose balance is
// not zero, and saves that refusal under the request's Idempotency-Key
// for 24 hours. Staff get Stripe's message as a 400 and the audit shows
// the attempt and its refusal; once the balance is cleared, the retry is a
// new attempt with a new key, and the account is rejected. (With one key
// per account and reason, the retry replayed the refusal for a day.) The
// simulator applies the live-mode rule on its test key with
// SIM_REJECT_BALANCE_RULE=always.
func TestARejectionStripeRefusesForABalanceSucceedsOnceItIsCleared(t *testing.T) {
	r, _ := start(t, map[string]string{"SIM_REJECT_BALANCE_RULE": "always"})
	seller := devAccount(t, r, "bal")
	if err := r.Sim.Outcome(seller.account, stripesim.OutcomeComplete, ""); err != nil {
		t.Fatal(err)
	}
	seller.waitStatus(t, r, "active")
	if err := r.Sim.SetBalance(seller.account, "usd", 4200); err != nil {
		t.Fatal(err)
	}
	staff := newDevStaff(t, r)

	resp, body := staff.reject(t, "bal")
	var refusal struct {
		Error struct{ Code, Message string }
	}
	_ = json.Unmarshal([]byte(body), &refusal)
	if resp.StatusCode != http.StatusBadRequest || refusal.Error.Code != "stripe_invalid_request" ||
		!strings.Contains(refusal.Error.Message, "cannot reject the account when the balance in any currency is non-zero") {
		t.Fatalf("a rejection of an account with a balance: %d %s, want 400 with Stripe's message", resp.StatusCode, body)
	}
	a := staff.audit(t, "bal")
	if a.Review != "pending" || a.outcomes() != "refused,intent" || a.Reviews[0].Attempt != a.Reviews[1].Attempt ||
		a.Reviews[0].StripeMessage != refusal.Error.Message || a.Reviews[0].Reviewer != "stella" || a.Reviews[1].Reason != "fraud" {
		t.Fatalf("after the refusal: %+v", a)
	}
	seller.waitStatus(t, r, "active")

	if err := r.Sim.SetBalance(seller.account, "usd", 0); err != nil { // staff settle the balance
		t.Fatal(err)
	}
	resp, body = staff.reject(t, "bal")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"review":"rejected"`) || !strings.Contains(body, `"status":"rejected"`) {
		t.Fatalf("the retry once the balance is zero: %d %s, want the account rejected", resp.StatusCode, body)
	}
	a = staff.audit(t, "bal")
	if a.outcomes() != "recorded,intent,refused,intent" || a.Reviews[0].Attempt != a.Reviews[1].Attempt || a.Reviews[1].Attempt == a.Reviews[2].Attempt {
		t.Errorf("the audit, newest first: %+v", a.Reviews)
	}
	if len(a.StatusChanges) == 0 || a.StatusChanges[0].To != "rejected" || a.StatusChanges[0].Cause != "staff" {
		t.Errorf("status changes: %+v", a.StatusChanges)
	}
	seller.waitStatus(t, r, "rejected")
}

// TestARejectionWhoseAnswerWasLostIsFoundOnTheRetry: Stripe rejects the
// account but its answer is lost (a 500 saved under the key, which every
// retry of that key replays). Staff get 502, and the audit holds the
// intent and an unknown outcome, never nothing. The account's webhooks are
// lost too, so the stored state still says active: staff try again, as a
// new attempt; Stripe refuses to reject a rejected account, the account is
// read, and the rejection is recorded.
func TestARejectionWhoseAnswerWasLostIsFoundOnTheRetry(t *testing.T) {
	r, _ := start(t, nil)
	seller := devAccount(t, r, "lost")
	if err := r.Sim.Outcome(seller.account, stripesim.OutcomeComplete, ""); err != nil {
		t.Fatal(err)
	}
	seller.waitStatus(t, r, "active")
	if err := r.Sim.MuteWebhooks(seller.account, true); err != nil {
		t.Fatal(err)
	}
	staff := newDevStaff(t, r)
	r.Sim.InjectFault(stripesim.Fault{Op: stripesim.OpRejectAccount, Kind: stripesim.FaultSavedServerError, Created: true})
	if resp, body := staff.reject(t, "lost"); resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "stripe_unavailable") {
		t.Fatalf("a rejection whose answer was lost: %d %s, want 502", resp.StatusCode, body)
	}
	r.Sim.ClearFaults()
	if a := staff.audit(t, "lost"); a.Review != "pending" || a.outcomes() != "unknown,intent" || a.Reviews[0].Attempt != a.Reviews[1].Attempt {
		t.Fatalf("after the lost answer: %+v", a)
	}
	resp, body := staff.reject(t, "lost")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"status":"rejected"`) {
		t.Fatalf("the retry: %d %s, want the rejection recorded", resp.StatusCode, body)
	}
	a := staff.audit(t, "lost")
	if a.Review != "rejected" || a.outcomes() != "recorded,intent,unknown,intent" || a.Reviews[0].Attempt == a.Reviews[2].Attempt {
		t.Errorf("the audit, newest first: %+v", a.Reviews)
	}
	if len(a.StatusChanges) == 0 || a.StatusChanges[0].To != "rejected" || a.StatusChanges[0].Cause != "staff" {
		t.Errorf("status changes: %+v", a.StatusChanges)
	}
}
