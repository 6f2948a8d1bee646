package devserver

import (
	"testing"
	"time"

	"github.com/connectexpress/onboarding/internal/stripesim"
)

// When a holder submits onboarding, Stripe sends account.updated (verifying) and
// capability.updated and account.updated (decided) in a burst of one created second, in
// no guaranteed order. Whichever order they arrive in, the account ends as Stripe has it:
// an older snapshot of the same second that arrives last is settled by reading Stripe,
// not applied. SIM_CHAOS=reverse delivers every burst newest first, every time. Run on the
// in-process engine and on moto.
func TestSameSecondBurstEndsAtStripesStateInEitherOrder(t *testing.T) {
	tests := []struct {
		name, chaos, outcome, due, want string
		// In Stripe's order, a capability event that disagrees with the snapshot
		// before it of its second is settled too: nothing tells which is newer.
		wantSettled bool
	}{
		{"complete, in Stripe's order", "", stripesim.OutcomeComplete, "", "active", false},
		{"complete, newest first", "reverse", stripesim.OutcomeComplete, "", "active", true},
		{"restricted, newest first", "reverse", stripesim.OutcomeRestricted, "past", "restricted", true},
	}
	for name, vars := range devEngines(t) {
		for _, tt := range tests {
			t.Run(name+"/"+tt.name, func(t *testing.T) {
				all := map[string]string{"LOG_LEVEL": "INFO", "SIM_CHAOS": tt.chaos}
				for k, v := range vars {
					all[k] = v
				}
				r, logs := startLogged(t, all)
				u := devAccount(t, r, "burst-"+randomHex(4))
				if err := r.Sim.Outcome(u.account, tt.outcome, tt.due); err != nil {
					t.Fatal(err)
				}
				waitAllDelivered(t, r, u.account, 4)
				if got := u.status(t, r); got != tt.want {
					t.Fatalf("after the burst: status %q, want Stripe's %q (deliveries %+v)", got, tt.want, r.Sim.Deliveries())
				}
				settled := 0
				for _, line := range logs.withMsg("request") {
					if line["route"] == "POST /webhooks/stripe" && line["outcome"] == "settled" {
						settled++
					}
				}
				if tt.wantSettled && settled == 0 {
					t.Error("no event was settled by reading Stripe, yet an older snapshot came last")
				}
			})
		}
	}
}

// waitAllDelivered waits until n deliveries for account reached the API with a 2xx.
func waitAllDelivered(t *testing.T, r *Running, account string, n int) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		delivered := 0
		for _, d := range r.Sim.Deliveries() {
			if d.AccountID == account && d.Delivered {
				delivered++
			}
		}
		if delivered >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d deliveries for %s arrived: %+v", delivered, n, account, r.Sim.Deliveries())
		}
	}
}
