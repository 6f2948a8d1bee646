package onboarding_test

import (
	"testing"
	"time"

	"github.com/connectexpress/onboarding/shared/onboarding"
)

func TestDeriveStatus(t *testing.T) {
	deadline := time.Unix(1900000000, 0)
	tests := []struct {
		name  string
		state onboarding.AccountState
		want  onboarding.Status
	}{
		{"fresh account is onboarding", onboarding.AccountState{}, onboarding.StatusOnboarding},
		{"details not submitted stays onboarding even with items due",
			onboarding.AccountState{Requirements: onboarding.Requirements{CurrentlyDue: []string{"external_account"}}}, onboarding.StatusOnboarding},
		{"submitted with items currently due is restricted",
			onboarding.AccountState{DetailsSubmitted: true, Requirements: onboarding.Requirements{CurrentlyDue: []string{"individual.id_number"}}}, onboarding.StatusRestricted},
		{"submitted with items past due is restricted",
			onboarding.AccountState{DetailsSubmitted: true, Requirements: onboarding.Requirements{PastDue: []string{"tos_acceptance.date"}}}, onboarding.StatusRestricted},
		{"submitted and under review is pending_verification",
			onboarding.AccountState{DetailsSubmitted: true, Requirements: onboarding.Requirements{PendingVerification: []string{"individual.verification.document"}}}, onboarding.StatusPendingVerification},
		{"disabled pending verification is pending_verification",
			onboarding.AccountState{DetailsSubmitted: true, Requirements: onboarding.Requirements{DisabledReason: ptr("requirements.pending_verification")}}, onboarding.StatusPendingVerification},
		{"submitted, nothing due, not yet enabled is pending_verification",
			onboarding.AccountState{DetailsSubmitted: true}, onboarding.StatusPendingVerification},
		{"disabled for another reason is restricted",
			onboarding.AccountState{DetailsSubmitted: true, ChargesEnabled: true, PayoutsEnabled: true, Requirements: onboarding.Requirements{DisabledReason: ptr("under_review")}}, onboarding.StatusRestricted},
		{"due later with a deadline is restricted_soon",
			onboarding.AccountState{DetailsSubmitted: true, ChargesEnabled: true, PayoutsEnabled: true, Requirements: onboarding.Requirements{EventuallyDue: []string{"company.tax_id"}, CurrentDeadline: &deadline}}, onboarding.StatusRestrictedSoon},
		{"future requirements with a deadline are restricted_soon",
			onboarding.AccountState{DetailsSubmitted: true, ChargesEnabled: true, PayoutsEnabled: true, FutureRequirements: &onboarding.Requirements{CurrentlyDue: []string{"company.tax_id"}, CurrentDeadline: &deadline}}, onboarding.StatusRestrictedSoon},
		{"due eventually without a deadline is still active",
			onboarding.AccountState{DetailsSubmitted: true, ChargesEnabled: true, PayoutsEnabled: true, Requirements: onboarding.Requirements{EventuallyDue: []string{"company.tax_id"}}}, onboarding.StatusActive},
		{"charges and payouts enabled with nothing due is active",
			onboarding.AccountState{DetailsSubmitted: true, ChargesEnabled: true, PayoutsEnabled: true}, onboarding.StatusActive},
		{"charges without payouts is not active",
			onboarding.AccountState{DetailsSubmitted: true, ChargesEnabled: true}, onboarding.StatusPendingVerification},
		{"rejected wins over everything but deauthorization",
			onboarding.AccountState{DetailsSubmitted: true, ChargesEnabled: true, PayoutsEnabled: true, Requirements: onboarding.Requirements{DisabledReason: ptr("rejected.fraud")}}, onboarding.StatusRejected},
		{"rejected before details were submitted is rejected",
			onboarding.AccountState{Requirements: onboarding.Requirements{DisabledReason: ptr("rejected.terms_of_service")}}, onboarding.StatusRejected},
		{"deauthorized is terminal",
			onboarding.AccountState{Deauthorized: true, DetailsSubmitted: true, ChargesEnabled: true, PayoutsEnabled: true}, onboarding.StatusDeauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := onboarding.DeriveStatus(tt.state); got != tt.want {
				t.Errorf("DeriveStatus = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestAccountJSONShowsEmptyListsNotNull(t *testing.T) {
	acct := onboarding.AccountRecord{AccountID: "acct_1", Country: "US", ServiceAgreement: "full"}.Account()
	r := acct.Requirements
	if r.CurrentlyDue == nil || r.EventuallyDue == nil || r.PastDue == nil || r.PendingVerification == nil {
		t.Fatalf("requirement lists must render as [], got %+v", r)
	}
}
