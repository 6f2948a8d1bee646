package dynamostore_test

import (
	"testing"

	"github.com/connectexpress/onboarding/shared/onboarding"
)

// settling is an event change as HandleEvent sends it: a tie that disagrees with the
// stored state is refused, for Stripe to settle.
func settling(c onboarding.StateChange) onboarding.StateChange {
	c.SettleTies, c.Cause = true, onboarding.CauseWebhook
	return c
}

// Stripe sends account.updated and capability.updated in bursts within one second, in no
// guaranteed order: an event of the stored second is applied only when it agrees with
// what is stored, judged in the write's own condition; one that disagrees stores nothing,
// not even its marker, and answers tied, so that the service asks Stripe.
func TestSameSecondEventsThatDisagreeAreTiedNotApplied(t *testing.T) {
	verifying := stateActive()
	verifying.ChargesEnabled, verifying.PayoutsEnabled = false, false
	verifying.Requirements.PendingVerification = []string{"individual.verification.document"}
	verifying.Capabilities = map[string]string{"card_payments": "pending", "transfers": "pending"}
	// recordAt is alice's record holding st at vBase+10, written by an event of that second.
	recordAt := func(st onboarding.AccountState) onboarding.AccountRecord {
		r := baseRecord()
		r.State, r.StateVersion, r.UpdatedAt = st, vBase+10, eventNow(10)
		return r
	}
	// sameSaidOtherwise is stateActive decoded with nil lists where it has empty ones.
	sameSaidOtherwise := stateActive()
	sameSaidOtherwise.Requirements.CurrentlyDue, sameSaidOtherwise.Requirements.PastDue = nil, nil
	afterCapability := stateOnboarding()
	afterCapability.Capabilities = map[string]string{"card_payments": "inactive", "transfers": "active"}
	cases := []struct {
		name  string
		steps []eventStep
		want  onboarding.AccountRecord
	}{
		{"a snapshot of the same second that says otherwise is tied, every time it comes", []eventStep{
			{settling(snapshotEvent("evt_new", 10, stateActive())), onboarding.OutcomeApplied},
			{settling(snapshotEvent("evt_old", 10, verifying)), onboarding.OutcomeTied},
			{settling(snapshotEvent("evt_old", 10, verifying)), onboarding.OutcomeTied},
		}, recordAt(stateActive())},
		{"a snapshot of the same second that says the same applies", []eventStep{
			{settling(snapshotEvent("evt_1", 10, stateActive())), onboarding.OutcomeApplied},
			{settling(snapshotEvent("evt_2", 10, sameSaidOtherwise)), onboarding.OutcomeApplied},
		}, recordAt(sameSaidOtherwise)},
		{"an older snapshot after a capability event of its second is tied", []eventStep{
			{settling(capabilityEvent("evt_cap", 10, "transfers", "active")), onboarding.OutcomeApplied},
			{settling(snapshotEvent("evt_old", 10, stateOnboarding())), onboarding.OutcomeTied},
		}, recordAt(afterCapability)},
		{"a snapshot that says what a capability event of its second left applies", []eventStep{
			{settling(capabilityEvent("evt_cap", 10, "transfers", "active")), onboarding.OutcomeApplied},
			{settling(snapshotEvent("evt_snap", 10, afterCapability)), onboarding.OutcomeApplied},
		}, recordAt(afterCapability)},
		{"a capability event that says otherwise than a snapshot of its second is tied", []eventStep{
			{settling(snapshotEvent("evt_new", 10, stateActive())), onboarding.OutcomeApplied},
			{settling(capabilityEvent("evt_cap", 10, "transfers", "pending")), onboarding.OutcomeTied},
		}, recordAt(stateActive())},
		{"a capability event that agrees with a snapshot of its second applies", []eventStep{
			{settling(snapshotEvent("evt_new", 10, stateActive())), onboarding.OutcomeApplied},
			{settling(capabilityEvent("evt_cap", 10, "transfers", "active")), onboarding.OutcomeApplied},
		}, recordAt(stateActive())},
		{"a state read from Stripe wins the tie (the settled write)", []eventStep{
			{settling(snapshotEvent("evt_1", 10, verifying)), onboarding.OutcomeApplied},
			{settling(snapshotEvent("evt_2", 10, stateActive())), onboarding.OutcomeTied},
			{webhook(snapshotEvent("evt_2", 10, stateActive())), onboarding.OutcomeApplied},
			{settling(snapshotEvent("evt_2", 10, stateActive())), onboarding.OutcomeDuplicate},
		}, recordAt(stateActive())},
		{"newer news still applies and older is still superseded", []eventStep{
			{settling(snapshotEvent("evt_1", 10, verifying)), onboarding.OutcomeApplied},
			{settling(snapshotEvent("evt_0", 9, stateRejected())), onboarding.OutcomeSuperseded},
			{settling(capabilityEvent("evt_cap", 9, "transfers", "inactive")), onboarding.OutcomeSuperseded},
			{settling(snapshotEvent("evt_2", 11, stateActive())), onboarding.OutcomeApplied},
		}, func() onboarding.AccountRecord {
			r := recordAt(stateActive())
			r.StateVersion, r.UpdatedAt = vBase+11, eventNow(11)
			return r
		}()},
	}
	runCases(t, func() []storeCase {
		var out []storeCase
		for _, tc := range cases {
			out = append(out, storeCase{tc.name, func(t *testing.T, h *harness) {
				h.withAccount(t)
				for _, s := range tc.steps {
					h.apply(t, s.change, s.want)
					if s.want == onboarding.OutcomeTied && len(h.raw(t, "EVENT#"+s.change.EventID)) > 0 {
						t.Fatalf("%s: tied, yet its processed marker is stored", s.change.EventID)
					}
				}
				h.wantAccount(t, tc.want)
			}})
		}
		return out
	}())
}

// A tie on a record of a deauthorized account is no tie: the account is gone, whatever
// Stripe would say. And a record stored before state digests existed asks Stripe at a
// tie rather than trust an order it cannot know.
func TestTiesOnDeauthorizedAndOlderRecords(t *testing.T) {
	runCases(t, []storeCase{
		{"deauthorized: superseded", func(t *testing.T, h *harness) {
			h.withAccount(t)
			h.apply(t, settling(snapshotEvent("evt_1", 10, stateActive())), onboarding.OutcomeApplied)
			h.apply(t, deauthEvent("evt_deauth", 10), onboarding.OutcomeApplied)
			h.apply(t, settling(snapshotEvent("evt_2", 10, stateRejected())), onboarding.OutcomeSuperseded)
			h.apply(t, settling(capabilityEvent("evt_cap", 10, "transfers", "inactive")), onboarding.OutcomeSuperseded)
		}},
		{"no digest stored: tied", func(t *testing.T, h *harness) {
			h.withAccount(t)
			h.apply(t, settling(snapshotEvent("evt_1", 10, stateActive())), onboarding.OutcomeApplied)
			h.strip(t, alice, "state_digest")
			h.apply(t, settling(snapshotEvent("evt_2", 10, stateActive())), onboarding.OutcomeTied)
		}},
	})
}
