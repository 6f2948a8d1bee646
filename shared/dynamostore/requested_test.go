package dynamostore_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/connectexpress/onboarding/shared/onboarding"
)

// Requested capabilities: an account's status follows the capabilities this
// service requested, which Stripe's answers and events never say, so the
// record keeps them from its creation on, through every write.

var (
	cardAndTransfers = []string{"card_payments", "transfers"}
	withACH          = []string{"card_payments", "transfers", "us_bank_account_ach_payments"}
)

// withRequested stores alice's account as requesting caps (nil: none).
func (h *harness) withRequested(t *testing.T, caps []string) {
	t.Helper()
	c := newClaim(claim1, t0.Add(lease), 0)
	c.Params.Capabilities = caps
	h.claim(t, alice, c, t0)
	rec := baseRecord()
	rec.State.RequestedCapabilities = caps
	h.complete(t, rec, claim1)
}

// wantRequested asserts the record as read carries caps, and that its API
// status is status (the derived_status the write stored says the same).
func (h *harness) wantRequested(t *testing.T, caps []string, status onboarding.Status) {
	t.Helper()
	u := h.user(t, alice)
	if u.Account == nil {
		t.Fatal("no account stored")
	}
	if got := u.Account.State.RequestedCapabilities; strings.Join(got, ",") != strings.Join(sorted(caps), ",") {
		t.Errorf("requested capabilities as read %v, want %v", got, caps)
	}
	if got := u.Account.Account(u.Account.UpdatedAt).Status; got != status {
		t.Errorf("the account's status %q, want %q", got, status)
	}
	h.wantDerived(t, alice, status)
}

func sorted(caps []string) []string {
	out := slices.Clone(caps)
	slices.Sort(out)
	return out
}

// active is an enabled account whose capabilities are caps.
func active(caps map[string]string, charges bool) onboarding.AccountState {
	st := stateActive()
	st.ChargesEnabled, st.Capabilities = charges, caps
	return st
}

func TestStatusFollowsTheCapabilitiesTheRecordRequested(t *testing.T) {
	ctx := context.Background()
	addedInactive := map[string]string{"card_payments": "active", "transfers": "active", "us_bank_account_ach_payments": "inactive"}
	runCases(t, []storeCase{
		{"a capability the platform's settings added stays inactive: an event leaves the account active", func(t *testing.T, h *harness) {
			h.withRequested(t, cardAndTransfers)
			h.apply(t, snapshotEvent("evt_1", 10, active(addedInactive, true)), onboarding.OutcomeApplied)
			h.wantRequested(t, cardAndTransfers, onboarding.StatusActive)
			if got := h.user(t, alice).Account.State.Capabilities["us_bank_account_ach_payments"]; got != "inactive" {
				t.Errorf("the added capability is %q in the record, want it kept visible as inactive", got)
			}
		}},
		{"a record that requested the payment-method capability waits for it", func(t *testing.T, h *harness) {
			// The event's write assumes card_payments and transfers without a
			// read; the stored set differs, so it is judged on the record.
			h.withRequested(t, withACH)
			h.apply(t, snapshotEvent("evt_1", 10, active(addedInactive, true)), onboarding.OutcomeApplied)
			h.wantRequested(t, withACH, onboarding.StatusPendingVerification)
			h.apply(t, capabilityEvent("evt_2", 11, "us_bank_account_ach_payments", "active"), onboarding.OutcomeApplied)
			h.wantRequested(t, withACH, onboarding.StatusActive)
		}},
		{"transfers only: active with transfers and payouts, without charges", func(t *testing.T, h *harness) {
			h.withRequested(t, []string{"transfers"})
			h.apply(t, snapshotEvent("evt_1", 10, active(map[string]string{"transfers": "active"}, false)), onboarding.OutcomeApplied)
			h.wantRequested(t, []string{"transfers"}, onboarding.StatusActive)
		}},
		{"none requested (a record from before, or DEFAULT_CAPABILITIES=none): card_payments and transfers judged", func(t *testing.T, h *harness) {
			h.withRequested(t, nil)
			h.apply(t, snapshotEvent("evt_1", 10, active(addedInactive, true)), onboarding.OutcomeApplied)
			h.wantRequested(t, nil, onboarding.StatusActive)
			h.wantWithout(t, "USER#"+alice, "requested_capabilities")
		}},
		{"a state read from Stripe is judged on the record's requested capabilities", func(t *testing.T, h *harness) {
			h.withRequested(t, withACH)
			rec, err := h.store.SaveState(ctx, alice, active(addedInactive, true), vBase+10, eventNow(10), onboarding.CauseRefresh)
			if err != nil {
				t.Fatal(err)
			}
			if got := rec.Account(eventNow(10)).Status; got != onboarding.StatusPendingVerification {
				t.Errorf("SaveState's record is %q, want pending_verification: it requested the ACH capability", got)
			}
			h.wantRequested(t, withACH, onboarding.StatusPendingVerification)
		}},
		{"an event that completes a lost creation keeps what the claim requested", func(t *testing.T, h *harness) {
			c := newClaim(claim1, t0.Add(lease), 0)
			c.Params.Capabilities = []string{"transfers"}
			h.claim(t, alice, c, t0)
			h.apply(t, healingEvent("evt_1", 10, active(map[string]string{"transfers": "active"}, false)), onboarding.OutcomeApplied)
			h.wantRequested(t, []string{"transfers"}, onboarding.StatusActive)
		}},
	})
}
