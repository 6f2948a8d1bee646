package onboarding

import (
	"fmt"
	"slices"
	"strings"
)

// Risk signals put the accounts staff should look at first in front of
// them. Each is computed from what the service already holds (the record,
// and the email index the store keeps beside it), never from a scan or a
// call to Stripe at request time. A signal is a reason to look, not a
// verdict: docs/operations.md says what each can and cannot mean.

// Signal is one risk signal on an account: a stable code and a sentence
// for the staff member reading it.
type Signal struct {
	Code   string `json:"code"`
	Detail string `json:"detail"`
}

// Signal codes.
const (
	// SignalDuplicateEmail: another user's account was given the same email
	// (compared case-insensitively, EmailKey).
	SignalDuplicateEmail = "duplicate_email"
	// SignalVerificationErrors: Stripe lists requirement errors
	// (requirements.errors or future_requirements.errors).
	SignalVerificationErrors = "verification_errors"
	// SignalStripeReview: Stripe's own risk review holds the account
	// (requirements.disabled_reason under_review, listed or rejected.listed).
	SignalStripeReview = "stripe_review"
)

// stripeReviewReasons are the disabled_reasons that say Stripe's risk
// team, not a missing document, holds the account: "under_review" (Stripe
// is reviewing the account), "listed" (it matched a prohibited list) and
// "rejected.listed" (rejected for that match). API reference, the account
// object, requirements.disabled_reason (API version 2023-10-16; the spec's
// components/schemas/account_requirements/properties/disabled_reason lists
// all three): https://docs.stripe.com/api/accounts/object#account_object-requirements-disabled_reason
var stripeReviewReasons = []string{"under_review", "listed", "rejected.listed"}

// EmailKey is how emails are compared: trimmed and lower-cased. Mail
// providers treat the local part case-insensitively in practice, though
// RFC 5321 section 2.4 allows otherwise; dots and +tags are not folded,
// since that is provider-specific.
func EmailKey(email string) string {
	return strings.ToLower(strings.TrimSpace(email))
}

// Signals lists the signals of an account whose state is s and whose email
// is also on the accounts of sharedWith (other users' ids). It is never
// nil. With names, the duplicate email's detail names those users (the
// staff detail); without, it only counts them (the list).
func Signals(s AccountState, sharedWith []string, names bool) []Signal {
	out := []Signal{}
	if len(sharedWith) > 0 {
		out = append(out, DuplicateEmail(sharedWith, names))
	}
	if errs := requirementErrors(s); len(errs) > 0 {
		out = append(out, Signal{Code: SignalVerificationErrors, Detail: "Stripe reports " + strings.Join(errs, "; ")})
	}
	if r := s.Requirements.DisabledReason; r != nil && slices.Contains(stripeReviewReasons, *r) {
		out = append(out, Signal{Code: SignalStripeReview, Detail: "Stripe's disabled_reason is " + *r})
	}
	return out
}

// DuplicateEmail is the duplicate_email signal of an account whose email
// the accounts of sharedWith (other users' ids) hold too.
func DuplicateEmail(sharedWith []string, names bool) Signal {
	detail := fmt.Sprintf("the same email is on %d other user's account", len(sharedWith))
	if len(sharedWith) > 1 {
		detail = fmt.Sprintf("the same email is on %d other users' accounts", len(sharedWith))
	}
	if names {
		detail += ": " + strings.Join(slices.Sorted(slices.Values(sharedWith)), ", ")
	}
	return Signal{Code: SignalDuplicateEmail, Detail: detail}
}

// requirementErrors describes each of Stripe's requirement errors, current
// ones first, as "requirement: code".
func requirementErrors(s AccountState) []string {
	var out []string
	lists := [][]RequirementError{s.Requirements.Errors}
	if s.FutureRequirements != nil {
		lists = append(lists, s.FutureRequirements.Errors)
	}
	for i, l := range lists {
		for _, e := range l {
			d := e.Requirement + ": " + e.Code
			if i == 1 {
				d += " (future requirement)"
			}
			out = append(out, d)
		}
	}
	return out
}
