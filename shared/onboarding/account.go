package onboarding

import (
	"strings"
	"time"
)

// Status is where a connected account stands, as the frontend shows it.
type Status string

const (
	StatusOnboarding          Status = "onboarding"
	StatusPendingVerification Status = "pending_verification"
	StatusRestricted          Status = "restricted"
	StatusRestrictedSoon      Status = "restricted_soon"
	StatusActive              Status = "active"
	StatusRejected            Status = "rejected"
	StatusDeauthorized        Status = "deauthorized"
)

// Requirements mirrors Stripe's account.requirements: what Stripe still needs.
type Requirements struct {
	CurrentlyDue        []string   `json:"currently_due"`
	EventuallyDue       []string   `json:"eventually_due"`
	PastDue             []string   `json:"past_due"`
	PendingVerification []string   `json:"pending_verification"`
	DisabledReason      *string    `json:"disabled_reason"`
	CurrentDeadline     *time.Time `json:"current_deadline"`
}

// normalized returns r with nil lists replaced by empty ones, so the JSON
// contract always shows arrays and never null.
func (r Requirements) normalized() Requirements {
	for _, l := range []*[]string{&r.CurrentlyDue, &r.EventuallyDue, &r.PastDue, &r.PendingVerification} {
		if *l == nil {
			*l = []string{}
		}
	}
	return r
}

// AccountState is what Stripe tells us about an account: the part of the
// Account that webhooks and re-reads keep current.
type AccountState struct {
	DetailsSubmitted   bool              `json:"details_submitted"`
	ChargesEnabled     bool              `json:"charges_enabled"`
	PayoutsEnabled     bool              `json:"payouts_enabled"`
	Requirements       Requirements      `json:"requirements"`
	FutureRequirements *Requirements     `json:"future_requirements,omitempty"`
	Capabilities       map[string]string `json:"capabilities,omitempty"`
	Deauthorized       bool              `json:"deauthorized,omitempty"`
}

// Account is a platform user's Express account as the API shows it.
type Account struct {
	ID               string       `json:"account_id"`
	Status           Status       `json:"status"`
	DetailsSubmitted bool         `json:"details_submitted"`
	ChargesEnabled   bool         `json:"charges_enabled"`
	PayoutsEnabled   bool         `json:"payouts_enabled"`
	Country          string       `json:"country"`
	ServiceAgreement string       `json:"service_agreement"`
	Requirements     Requirements `json:"requirements"`
	CreatedAt        time.Time    `json:"created_at"`
	UpdatedAt        time.Time    `json:"updated_at"`
}

// DeriveStatus is the one place that turns Stripe's account state into a
// Status. Order matters: terminal states first, then what the user must do,
// then what Stripe is doing, then success.
func DeriveStatus(s AccountState) Status {
	reason := ""
	if s.Requirements.DisabledReason != nil {
		reason = *s.Requirements.DisabledReason
	}
	switch {
	case s.Deauthorized:
		return StatusDeauthorized
	case strings.HasPrefix(reason, "rejected."):
		return StatusRejected
	case !s.DetailsSubmitted:
		return StatusOnboarding
	case len(s.Requirements.PastDue) > 0 || len(s.Requirements.CurrentlyDue) > 0:
		return StatusRestricted
	case reason == "requirements.pending_verification" || len(s.Requirements.PendingVerification) > 0:
		return StatusPendingVerification
	case reason != "":
		return StatusRestricted
	case dueLaterWithDeadline(s):
		return StatusRestrictedSoon
	case s.ChargesEnabled && s.PayoutsEnabled:
		return StatusActive
	default:
		// Details are in, nothing is due and Stripe has not enabled the
		// account yet: it is verifying what it has.
		return StatusPendingVerification
	}
}

func dueLaterWithDeadline(s AccountState) bool {
	if len(s.Requirements.EventuallyDue) > 0 && s.Requirements.CurrentDeadline != nil {
		return true
	}
	f := s.FutureRequirements
	return f != nil && f.CurrentDeadline != nil && (len(f.CurrentlyDue) > 0 || len(f.PastDue) > 0)
}

// AccountRecord is everything stored for one platform user's account.
type AccountRecord struct {
	UserID           string
	AccountID        string
	Country          string
	ServiceAgreement string
	State            AccountState
	// StateVersion is the Unix second the State describes: an event's
	// created time or the time we re-read Stripe. Older news never replaces it.
	StateVersion int64
	FirstLinkAt  time.Time // zero until the first onboarding link was requested: KYC prefill is locked from then
	PrefillLease Lease     // a prefill update holds it (is on its way to Stripe) until its Until
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Account renders the record as the API contract shows it.
func (r AccountRecord) Account() Account {
	return Account{
		ID:               r.AccountID,
		Status:           DeriveStatus(r.State),
		DetailsSubmitted: r.State.DetailsSubmitted,
		ChargesEnabled:   r.State.ChargesEnabled,
		PayoutsEnabled:   r.State.PayoutsEnabled,
		Country:          r.Country,
		ServiceAgreement: r.ServiceAgreement,
		Requirements:     r.State.Requirements.normalized(),
		CreatedAt:        r.CreatedAt.UTC(),
		UpdatedAt:        r.UpdatedAt.UTC(),
	}
}
