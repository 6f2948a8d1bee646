package onboarding

import (
	"slices"
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
	StatusPlatformPaused      Status = "platform_paused"
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
	// Errors say why a requirement is due again: a document or value that
	// failed validation or verification. A record stored before they were
	// kept reads as none.
	Errors []RequirementError `json:"errors"`
}

// RequirementError is one of Stripe's requirements.errors: which
// requirement failed, Stripe's code for why, and its reason in words for
// the account holder. Its shape is the spec's account_requirements_error
// (stripe-mock v0.183.0 embedded/openapi/spec3.json,
// components.schemas.account_requirements_error).
type RequirementError struct {
	Code        string `json:"code"`
	Reason      string `json:"reason"`
	Requirement string `json:"requirement"`
}

// normalized returns r with nil lists replaced by empty ones, so the JSON
// contract always shows arrays and never null.
func (r Requirements) normalized() Requirements {
	for _, l := range []*[]string{&r.CurrentlyDue, &r.EventuallyDue, &r.PastDue, &r.PendingVerification} {
		if *l == nil {
			*l = []string{}
		}
	}
	if r.Errors == nil {
		r.Errors = []RequirementError{}
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
	// RequestedCapabilities are the capabilities this service asked Stripe
	// for when it created the account (the caller's, or
	// DEFAULT_CAPABILITIES): the ones its status is judged on. Stripe never
	// says which they were, since the platform's Connect settings add
	// payment-method capabilities of their own, so the store keeps them
	// beside the state, and a state read from Stripe has none. None (a
	// record from before they were kept, or DEFAULT_CAPABILITIES=none):
	// card_payments and transfers are judged where present.
	RequestedCapabilities []string `json:"-"`
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
	// FutureRequirements are what Stripe will need after a rule change: the
	// frontend can warn before they become due.
	FutureRequirements Requirements `json:"future_requirements"`
	// Capabilities maps each capability to its Stripe status (active,
	// inactive, pending).
	Capabilities map[string]string `json:"capabilities"`
	CreatedAt    time.Time         `json:"created_at"`
	UpdatedAt    time.Time         `json:"updated_at"`
}

// disabledReasonStatus maps every requirements.disabled_reason of Stripe's
// API 2023-10-16 to what it means for the user, on purpose and in one place.
// A reason Stripe adds later is treated as restricted: the account is
// disabled and somebody has to look.
var disabledReasonStatus = map[string]Status{
	// Somebody must act: the user (requirements, capabilities) or the
	// platform's staff with Stripe (listed, other).
	"requirements.past_due":                  StatusRestricted,
	"action_required.requested_capabilities": StatusRestricted,
	"listed":                                 StatusRestricted,
	"other":                                  StatusRestricted,
	// Stripe is verifying what it has: nothing to do but wait.
	"requirements.pending_verification": StatusPendingVerification,
	"under_review":                      StatusPendingVerification,
	// The platform paused the account from its Dashboard.
	"platform_paused": StatusPlatformPaused,
	// Terminal for onboarding: no more links.
	"rejected.fraud":                   StatusRejected,
	"rejected.incomplete_verification": StatusRejected,
	"rejected.listed":                  StatusRejected,
	"rejected.other":                   StatusRejected,
	"rejected.terms_of_service":        StatusRejected,
}

// reasonStatus returns what a disabled_reason means; "" for none.
func reasonStatus(reason string) Status {
	switch {
	case reason == "":
		return ""
	case strings.HasPrefix(reason, "rejected."):
		return StatusRejected // a rejected.* reason Stripe adds later is still a rejection
	}
	if st, ok := disabledReasonStatus[reason]; ok {
		return st
	}
	return StatusRestricted
}

// DeriveStatus is the one place that turns Stripe's account state into a
// Status, for an account under the given service agreement at time now (a
// current_deadline before now has passed). Order matters: terminal states
// first, then what the user must do now, then what Stripe is doing, then
// what is due soon, then success.
func DeriveStatus(s AccountState, agreement string, now time.Time) Status {
	req := s.Requirements
	reason := ""
	if req.DisabledReason != nil {
		reason = *req.DisabledReason
	}
	byReason := reasonStatus(reason)
	dueNow := len(req.CurrentlyDue) > 0 && (req.CurrentDeadline == nil || !req.CurrentDeadline.After(now))
	switch {
	case s.Deauthorized:
		return StatusDeauthorized
	case byReason == StatusRejected:
		return StatusRejected
	case byReason == StatusPlatformPaused:
		// Before "onboarding": the user cannot go on until the platform
		// lifts the pause, whatever they submitted.
		return StatusPlatformPaused
	case !s.DetailsSubmitted:
		return StatusOnboarding
	case len(req.PastDue) > 0, byReason == StatusRestricted, dueNow:
		return StatusRestricted
	case byReason == StatusPendingVerification:
		return StatusPendingVerification
	case len(req.CurrentlyDue) > 0, futureDue(s.FutureRequirements):
		// Still enabled, but due by a deadline: Stripe's "Restricted soon".
		return StatusRestrictedSoon
	case len(req.PendingVerification) > 0 || anyCapability(s.Capabilities, judgedCapabilities(s), "pending"):
		return StatusPendingVerification
	case enabled(s, agreement):
		return StatusActive
	default:
		// Details are in, nothing is due and Stripe has not enabled the
		// account yet: it is verifying what it has.
		return StatusPendingVerification
	}
}

// enabled: payouts work, every judged capability is active, and charges
// work when card_payments is among them. A capability.updated event may
// list one as unrequested (no longer asked for): it is not held against the
// account. Capabilities Stripe added from the platform's Connect settings
// are not judged: an us_bank_account_ach_payments that stays inactive must
// not keep a seller whose cards and payouts work from being active. A
// recipient, or an approved transfers-only account, never has
// charges_enabled: transfers and payouts make it active.
func enabled(s AccountState, agreement string) bool {
	if !s.PayoutsEnabled {
		return false
	}
	judged := judgedCapabilities(s)
	for _, name := range judged {
		switch status, listed := s.Capabilities[name]; {
		case !listed:
			return false // requested, and Stripe has not listed it yet
		case status != "active" && status != "unrequested":
			return false
		}
	}
	// Charges are the sign of a working card_payments; with nothing to
	// judge (a record from before requested capabilities were kept, and no
	// capability listed) they stay required under the full agreement.
	needCharges := slices.Contains(judged, "card_payments") && s.Capabilities["card_payments"] != "unrequested" || len(judged) == 0
	return agreement == AgreementRecipient || !needCharges || s.ChargesEnabled
}

// judgedCapabilities are the capabilities an account's status follows: the
// ones this service requested, or, when it requested none, card_payments
// and transfers where Stripe lists them.
func judgedCapabilities(s AccountState) []string {
	if len(s.RequestedCapabilities) > 0 {
		return s.RequestedCapabilities
	}
	var judged []string
	for _, name := range defaultJudged {
		if _, ok := s.Capabilities[name]; ok {
			judged = append(judged, name)
		}
	}
	return judged
}

// defaultJudged are judged where present when no requested capabilities
// are known: what a platform's Connect settings request for an Express
// account that takes payments and receives transfers.
var defaultJudged = []string{"card_payments", "transfers"}

// anyCapability: one of names has status.
func anyCapability(caps map[string]string, names []string, status string) bool {
	for _, name := range names {
		if caps[name] == status {
			return true
		}
	}
	return false
}

// futureDue: Stripe announced requirements that become currently (or past)
// due when future_requirements merges into requirements, at its
// current_deadline, which Stripe may leave null until it sets the date
// ("Date on which future_requirements merges with the main requirements
// hash", spec3.json components.schemas.account_future_requirements). With a
// date or not, the account will be restricted unless its holder acts.
func futureDue(f *Requirements) bool {
	return f != nil && (len(f.CurrentlyDue) > 0 || len(f.PastDue) > 0)
}

// HasFutureRequirements says whether Stripe lists anything it will need
// after a rule change that its holder could provide now: an onboarding link
// must then ask for it (collection_options[future_requirements]=include),
// or the holder finds nothing to do at Stripe.
func (s AccountState) HasFutureRequirements() bool {
	f := s.FutureRequirements
	return f != nil && len(f.CurrentlyDue)+len(f.EventuallyDue)+len(f.PastDue) > 0
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
	// Email is the email this service last gave Stripe for the account
	// (a creation's or an update's prefill); "" when none, or for a record
	// stored before emails were kept.
	Email string
	// BusinessName and BusinessURL are the business_profile name and url
	// this service last gave Stripe; "" when none.
	BusinessName, BusinessURL string
	CreatedAt                 time.Time
	UpdatedAt                 time.Time
}

// Account renders the record as the API contract shows it at time now.
func (r AccountRecord) Account(now time.Time) Account {
	future := Requirements{}
	if r.State.FutureRequirements != nil {
		future = *r.State.FutureRequirements
	}
	caps := make(map[string]string, len(r.State.Capabilities))
	for name, status := range r.State.Capabilities {
		caps[name] = status
	}
	return Account{
		ID:                 r.AccountID,
		Status:             DeriveStatus(r.State, r.ServiceAgreement, now),
		DetailsSubmitted:   r.State.DetailsSubmitted,
		ChargesEnabled:     r.State.ChargesEnabled,
		PayoutsEnabled:     r.State.PayoutsEnabled,
		Country:            r.Country,
		ServiceAgreement:   r.ServiceAgreement,
		Requirements:       r.State.Requirements.normalized(),
		FutureRequirements: future.normalized(),
		Capabilities:       caps,
		CreatedAt:          r.CreatedAt.UTC(),
		UpdatedAt:          r.UpdatedAt.UTC(),
	}
}
