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
		Reviews       []struct{ Decision, Reason, Note, Reviewer string }
	}
	_ = json.Unmarshal([]byte(body), &h)
	if h.Review != "rejected" || len(h.StatusChanges) != 2 || h.StatusChanges[0].From != "active" || h.StatusChanges[0].To != "rejected" ||
		h.StatusChanges[0].Cause != "staff" || h.StatusChanges[1].Cause != "webhook" {
		t.Errorf("sid's history, newest first: %s", body)
	}
	if len(h.Reviews) != 1 || h.Reviews[0].Reason != "fraud" || h.Reviews[0].Reviewer != "stella" || h.Reviews[0].Note != "stolen card on the listing" {
		t.Errorf("sid's decisions: %+v", h.Reviews)
	}
	if resp, body := httpDo(t, "GET", r.APIURL+"/admin/accounts?status=rejected&review=rejected", staff, ""); !strings.Contains(body, `"user_id":"sid"`) {
		t.Errorf("rejected list: %d %s", resp.StatusCode, body)
	}
}
