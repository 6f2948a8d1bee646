package devserver

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/connectexpress/onboarding/internal/stripesim"
)

// The staff history and the status events are told by every path that
// changes a status: a change the sweep heals is recorded with cause sweep,
// and a staff rejection is published like any other change, on `make dev`
// as it runs (its in-process engine, and moto).
func TestSweepAndStaffChangesAreRecordedWithTheirCauseAndPublished(t *testing.T) {
	for name, vars := range devEngines(t) {
		t.Run(name, func(t *testing.T) {
			r, logs := startLogged(t, vars)
			seller := devAccount(t, r, "sol")
			if err := r.Sim.MuteWebhooks(seller.account, true); err != nil {
				t.Fatal(err)
			}
			if err := r.Sim.Outcome(seller.account, stripesim.OutcomeComplete, ""); err != nil {
				t.Fatal(err)
			}
			// The sweep leaves alone a record written in the second of its read.
			time.Sleep(2100 * time.Millisecond)
			if got := seller.status(t, r); got != "onboarding" {
				t.Fatalf("status %q before the sweep, want the stale onboarding", got)
			}
			if rep := reconcile(t, r); rep.Run.Applied != 1 {
				t.Fatalf("sweep report %+v, want 1 applied", rep)
			}
			seller.waitStatus(t, r, "active")

			_, body := httpDo(t, "GET", r.APIURL+"/dev/token?sub=stella&groups=onboarding-staff", "", "")
			var minted struct{ Token string }
			_ = json.Unmarshal([]byte(body), &minted)
			staff := minted.Token
			if resp, body := httpDo(t, "POST", r.APIURL+"/admin/accounts/sol/review", staff,
				`{"decision":"reject","reason":"terms_of_service","note":"resale of tickets"}`); resp.StatusCode != http.StatusOK {
				t.Fatalf("reject: %d %s", resp.StatusCode, body)
			}
			seller.waitStatus(t, r, "rejected")

			_, body = httpDo(t, "GET", r.APIURL+"/admin/accounts/sol", staff, "")
			var h struct {
				StatusChanges []struct{ From, To, Cause string } `json:"status_changes"`
			}
			if err := json.Unmarshal([]byte(body), &h); err != nil {
				t.Fatalf("history: %v: %s", err, body)
			}
			// Newest first: the staff rejection, then the sweep's heal.
			if len(h.StatusChanges) < 2 ||
				h.StatusChanges[0].From != "active" || h.StatusChanges[0].To != "rejected" || h.StatusChanges[0].Cause != "staff" ||
				h.StatusChanges[1].From != "onboarding" || h.StatusChanges[1].To != "active" || h.StatusChanges[1].Cause != "sweep" {
				t.Errorf("sol's status changes, newest first: %+v; want active>rejected by staff after onboarding>active by sweep", h.StatusChanges)
			}

			var published []string
			for _, e := range logs.withMsg("status event") {
				d, _ := e["detail"].(map[string]any)
				if d["account_id"] != seller.account {
					continue
				}
				prev, _ := d["previous_status"].(string)
				status, _ := d["status"].(string)
				published = append(published, prev+">"+status)
			}
			// The first is the account's creation (no previous status).
			if len(published) != 3 || published[0] != ">onboarding" || published[1] != "onboarding>active" || published[2] != "active>rejected" {
				t.Errorf("status events of sol: %v, want [>onboarding onboarding>active active>rejected]", published)
			}
		})
	}
}
