package onboarding

import (
	"slices"
	"time"
)

// StatusChange tells the platform's other services (listings, payouts,
// email) that an account's status changed, by whatever path: a webhook, a
// refresh, the sweep or a staff decision. It is delivered at least once: a
// consumer deduplicates by (AccountID, OccurredAt, Status).
type StatusChange struct {
	UserID    string `json:"user_id"`
	AccountID string `json:"account_id"`
	// PreviousStatus is null when the account is new to the record.
	PreviousStatus *Status `json:"previous_status"`
	Status         Status  `json:"status"`
	ChargesEnabled bool    `json:"charges_enabled"`
	PayoutsEnabled bool    `json:"payouts_enabled"`
	// RequirementsDueCount is how many requirements are due now
	// (currently_due and past_due together).
	RequirementsDueCount int        `json:"requirements_due_count"`
	CurrentDeadline      *time.Time `json:"current_deadline"`
	// OccurredAt is when the change was stored.
	OccurredAt time.Time `json:"occurred_at"`
}

// StatusChangeBetween compares a user's record before and after one write
// (nil where there was no account) at the write's time, and returns the
// change of status it made, if any. Both sides are judged at the same time,
// so only a change of state makes a change of status.
func StatusChangeBetween(before, after *AccountRecord, at time.Time) (StatusChange, bool) {
	if after == nil {
		return StatusChange{}, false
	}
	status := DeriveStatus(after.State, after.ServiceAgreement, at)
	var previous *Status
	if before != nil && before.AccountID == after.AccountID {
		prev := DeriveStatus(before.State, before.ServiceAgreement, at)
		if prev == status {
			return StatusChange{}, false
		}
		previous = &prev
	}
	req := after.State.Requirements
	change := StatusChange{
		UserID:               after.UserID,
		AccountID:            after.AccountID,
		PreviousStatus:       previous,
		Status:               status,
		ChargesEnabled:       after.State.ChargesEnabled,
		PayoutsEnabled:       after.State.PayoutsEnabled,
		RequirementsDueCount: dueCount(req),
		OccurredAt:           at.UTC(),
	}
	if req.CurrentDeadline != nil {
		d := req.CurrentDeadline.UTC()
		change.CurrentDeadline = &d
	}
	return change, true
}

// dueCount counts the distinct requirements due now.
func dueCount(r Requirements) int {
	due := slices.Concat(r.CurrentlyDue, r.PastDue)
	slices.Sort(due)
	return len(slices.Compact(due))
}
