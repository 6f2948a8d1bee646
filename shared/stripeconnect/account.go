package stripeconnect

import (
	"encoding/json"
	"time"

	"github.com/connectexpress/onboarding/shared/onboarding"
)

// accountObject is the part of Stripe's account object the core uses. It is
// decoded from raw JSON rather than stripe.Account so that webhook events in
// another API version decode too: these fields have kept their shape across
// versions, and unknown fields are ignored.
type accountObject struct {
	ID                 string              `json:"id"`
	Object             string              `json:"object"`
	Country            string              `json:"country"`
	DetailsSubmitted   bool                `json:"details_submitted"`
	ChargesEnabled     bool                `json:"charges_enabled"`
	PayoutsEnabled     bool                `json:"payouts_enabled"`
	Requirements       *requirementsObject `json:"requirements"`
	FutureRequirements *requirementsObject `json:"future_requirements"`
	Capabilities       map[string]string   `json:"capabilities"`
	Metadata           map[string]string   `json:"metadata"`
	TOSAcceptance      *struct {
		Agreement string `json:"service_agreement"`
	} `json:"tos_acceptance"`
}

type requirementsObject struct {
	CurrentlyDue        []string `json:"currently_due"`
	EventuallyDue       []string `json:"eventually_due"`
	PastDue             []string `json:"past_due"`
	PendingVerification []string `json:"pending_verification"`
	DisabledReason      *string  `json:"disabled_reason"`
	CurrentDeadline     *int64   `json:"current_deadline"`
	// Errors is null or absent in some answers (the spec makes it nullable).
	Errors []requirementErrorObject `json:"errors"`
}

// requirementErrorObject is the spec's account_requirements_error: why a
// requirement is due again.
type requirementErrorObject struct {
	Code        string `json:"code"`
	Reason      string `json:"reason"`
	Requirement string `json:"requirement"`
}

func decodeAccount(raw []byte) (accountObject, error) {
	var a accountObject
	err := json.Unmarshal(raw, &a)
	return a, err
}

func (a accountObject) state() onboarding.AccountState {
	st := onboarding.AccountState{
		DetailsSubmitted: a.DetailsSubmitted,
		ChargesEnabled:   a.ChargesEnabled,
		PayoutsEnabled:   a.PayoutsEnabled,
		Capabilities:     a.Capabilities,
	}
	if a.Requirements != nil {
		st.Requirements = a.Requirements.domain()
	}
	if a.FutureRequirements != nil {
		f := a.FutureRequirements.domain()
		st.FutureRequirements = &f
	}
	return st
}

// serviceAgreement is full unless Stripe says recipient: Stripe shows the
// agreement only for recipient accounts and leaves it out (or null) for full,
// its default (API reference, Account object, tos_acceptance, 2023-10-16).
func (a accountObject) serviceAgreement() string {
	if a.TOSAcceptance != nil && a.TOSAcceptance.Agreement != "" {
		return a.TOSAcceptance.Agreement
	}
	return onboarding.AgreementFull
}

func (r requirementsObject) domain() onboarding.Requirements {
	out := onboarding.Requirements{
		CurrentlyDue:        r.CurrentlyDue,
		EventuallyDue:       r.EventuallyDue,
		PastDue:             r.PastDue,
		PendingVerification: r.PendingVerification,
	}
	for _, e := range r.Errors {
		out.Errors = append(out.Errors, onboarding.RequirementError{Code: e.Code, Reason: e.Reason, Requirement: e.Requirement})
	}
	if r.DisabledReason != nil && *r.DisabledReason != "" {
		reason := *r.DisabledReason
		out.DisabledReason = &reason
	}
	if r.CurrentDeadline != nil && *r.CurrentDeadline > 0 {
		t := time.Unix(*r.CurrentDeadline, 0).UTC()
		out.CurrentDeadline = &t
	}
	return out
}
