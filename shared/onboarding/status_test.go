package onboarding_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/connectexpress/onboarding/shared/onboarding"
)

// now is the moment the statuses below are derived for.
var now = time.Unix(1800000000, 0)

func TestDeriveStatus(t *testing.T) {
	soon := now.Add(7 * 24 * time.Hour)
	passed := now.Add(-time.Hour)
	active := map[string]string{"card_payments": "active", "transfers": "active"}
	// submitted is a full account with charges and payouts enabled, to
	// which each case adds what makes it different.
	submitted := func(edit func(*onboarding.AccountState)) onboarding.AccountState {
		s := onboarding.AccountState{DetailsSubmitted: true, ChargesEnabled: true, PayoutsEnabled: true, Capabilities: map[string]string{}}
		for k, v := range active {
			s.Capabilities[k] = v
		}
		edit(&s)
		return s
	}
	full, recipient := onboarding.AgreementFull, onboarding.AgreementRecipient
	tests := []struct {
		name      string
		state     onboarding.AccountState
		agreement string
		want      onboarding.Status
	}{
		{"fresh account is onboarding", onboarding.AccountState{}, full, onboarding.StatusOnboarding},
		{"details not submitted stays onboarding even with items past due",
			onboarding.AccountState{Requirements: onboarding.Requirements{CurrentlyDue: []string{"external_account"}, PastDue: []string{"external_account"}, DisabledReason: ptr("requirements.past_due")}}, full, onboarding.StatusOnboarding},

		{"submitted with items currently due and no deadline is restricted",
			submitted(func(s *onboarding.AccountState) { s.Requirements.CurrentlyDue = []string{"individual.id_number"} }), full, onboarding.StatusRestricted},
		{"submitted with items past due is restricted",
			submitted(func(s *onboarding.AccountState) { s.Requirements.PastDue = []string{"tos_acceptance.date"} }), full, onboarding.StatusRestricted},
		{"currently due with a future deadline and still enabled is restricted_soon",
			submitted(func(s *onboarding.AccountState) {
				s.Requirements.CurrentlyDue, s.Requirements.EventuallyDue = []string{"company.tax_id"}, []string{"company.tax_id"}
				s.Requirements.CurrentDeadline = &soon
			}), full, onboarding.StatusRestrictedSoon},
		{"currently due whose deadline has passed is restricted",
			submitted(func(s *onboarding.AccountState) {
				s.Requirements.CurrentlyDue, s.Requirements.CurrentDeadline = []string{"company.tax_id"}, &passed
			}), full, onboarding.StatusRestricted},
		{"items due and items under verification at once: what is due wins",
			submitted(func(s *onboarding.AccountState) {
				s.Requirements.CurrentlyDue = []string{"external_account"}
				s.Requirements.PendingVerification = []string{"individual.verification.document"}
			}), full, onboarding.StatusRestricted},
		{"due soon and items under verification at once: due soon wins",
			submitted(func(s *onboarding.AccountState) {
				s.Requirements.CurrentlyDue, s.Requirements.CurrentDeadline = []string{"external_account"}, &soon
				s.Requirements.PendingVerification = []string{"individual.verification.document"}
			}), full, onboarding.StatusRestrictedSoon},
		{"past due while Stripe verifies other items is restricted",
			submitted(func(s *onboarding.AccountState) {
				s.Requirements.PastDue = []string{"external_account"}
				s.Requirements.DisabledReason = ptr("requirements.pending_verification")
			}), full, onboarding.StatusRestricted},
		{"future requirements with a deadline are restricted_soon",
			submitted(func(s *onboarding.AccountState) {
				s.FutureRequirements = &onboarding.Requirements{CurrentlyDue: []string{"company.tax_id"}, CurrentDeadline: &soon}
			}), full, onboarding.StatusRestrictedSoon},
		{"future requirements past due by a deadline are restricted_soon",
			submitted(func(s *onboarding.AccountState) {
				s.FutureRequirements = &onboarding.Requirements{PastDue: []string{"company.tax_id"}, CurrentDeadline: &soon}
			}), full, onboarding.StatusRestrictedSoon},
		{"future requirements with a deadline but only due eventually leave it active",
			submitted(func(s *onboarding.AccountState) {
				s.FutureRequirements = &onboarding.Requirements{EventuallyDue: []string{"company.tax_id"}, CurrentDeadline: &soon}
			}), full, onboarding.StatusActive},
		{"future requirements only due eventually, without a deadline, leave it active",
			submitted(func(s *onboarding.AccountState) {
				s.FutureRequirements = &onboarding.Requirements{EventuallyDue: []string{"company.tax_id"}}
			}), full, onboarding.StatusActive},
		{"future requirements currently due before Stripe set their deadline are restricted_soon",
			submitted(func(s *onboarding.AccountState) {
				s.FutureRequirements = &onboarding.Requirements{CurrentlyDue: []string{"company.tax_id"}, EventuallyDue: []string{"company.tax_id"}}
			}), full, onboarding.StatusRestrictedSoon},
		{"future requirements past due without a deadline are restricted_soon",
			submitted(func(s *onboarding.AccountState) {
				s.FutureRequirements = &onboarding.Requirements{PastDue: []string{"company.tax_id"}}
			}), full, onboarding.StatusRestrictedSoon},
		{"future requirements only under verification leave it active",
			submitted(func(s *onboarding.AccountState) {
				s.FutureRequirements = &onboarding.Requirements{PendingVerification: []string{"individual.verification.document"}}
			}), full, onboarding.StatusActive},
		{"an empty future requirements hash leaves it active",
			submitted(func(s *onboarding.AccountState) {
				s.FutureRequirements = &onboarding.Requirements{CurrentlyDue: []string{}, PastDue: []string{}}
			}), full, onboarding.StatusActive},
		{"future requirements do not hide what is due now",
			submitted(func(s *onboarding.AccountState) {
				s.Requirements.PastDue = []string{"external_account"}
				s.FutureRequirements = &onboarding.Requirements{CurrentlyDue: []string{"company.tax_id"}}
			}), full, onboarding.StatusRestricted},
		{"due eventually without a deadline is still active",
			submitted(func(s *onboarding.AccountState) { s.Requirements.EventuallyDue = []string{"company.tax_id"} }), full, onboarding.StatusActive},

		{"submitted and items under verification is pending_verification",
			submitted(func(s *onboarding.AccountState) {
				s.Requirements.PendingVerification = []string{"individual.verification.document"}
			}), full, onboarding.StatusPendingVerification},
		{"a requested capability still pending is pending_verification",
			submitted(func(s *onboarding.AccountState) { s.Capabilities["card_payments"] = "pending" }), full, onboarding.StatusPendingVerification},
		{"submitted, nothing due, not yet enabled is pending_verification",
			onboarding.AccountState{DetailsSubmitted: true}, full, onboarding.StatusPendingVerification},

		{"charges and payouts enabled, every capability active, nothing due is active",
			submitted(func(*onboarding.AccountState) {}), full, onboarding.StatusActive},
		{"charges and payouts enabled with no capability listed is active",
			onboarding.AccountState{DetailsSubmitted: true, ChargesEnabled: true, PayoutsEnabled: true}, full, onboarding.StatusActive},
		{"a full account without charges is not active",
			submitted(func(s *onboarding.AccountState) { s.ChargesEnabled = false }), full, onboarding.StatusPendingVerification},
		{"charges without payouts is not active",
			submitted(func(s *onboarding.AccountState) { s.PayoutsEnabled = false }), full, onboarding.StatusPendingVerification},
		{"a requested capability inactive is not active",
			submitted(func(s *onboarding.AccountState) { s.Capabilities["card_payments"] = "inactive" }), full, onboarding.StatusPendingVerification},
		{"a capability that was never requested does not keep it from active",
			submitted(func(s *onboarding.AccountState) { s.Capabilities["us_bank_account_ach_payments"] = "unrequested" }), full, onboarding.StatusActive},
		{"a recipient account with transfers active and payouts enabled is active without charges",
			onboarding.AccountState{DetailsSubmitted: true, PayoutsEnabled: true, Capabilities: map[string]string{"transfers": "active"}}, recipient, onboarding.StatusActive},
		{"a recipient account without payouts is not active",
			onboarding.AccountState{DetailsSubmitted: true, Capabilities: map[string]string{"transfers": "active"}}, recipient, onboarding.StatusPendingVerification},

		{"deauthorized is terminal",
			onboarding.AccountState{Deauthorized: true, DetailsSubmitted: true, ChargesEnabled: true, PayoutsEnabled: true, Requirements: onboarding.Requirements{DisabledReason: ptr("rejected.fraud")}}, full, onboarding.StatusDeauthorized},
		{"rejected before details were submitted is rejected",
			onboarding.AccountState{Requirements: onboarding.Requirements{DisabledReason: ptr("rejected.terms_of_service")}}, full, onboarding.StatusRejected},
		{"paused by the platform before details were submitted is platform_paused, not onboarding",
			onboarding.AccountState{Requirements: onboarding.Requirements{DisabledReason: ptr("platform_paused"), CurrentlyDue: []string{"external_account"}}}, full, onboarding.StatusPlatformPaused},
		{"a disabled_reason Stripe adds later is restricted",
			submitted(func(s *onboarding.AccountState) { s.Requirements.DisabledReason = ptr("something_new") }), full, onboarding.StatusRestricted},
		{"a rejected.* reason Stripe adds later is rejected",
			submitted(func(s *onboarding.AccountState) { s.Requirements.DisabledReason = ptr("rejected.something_new") }), full, onboarding.StatusRejected},
	}
	// Every disabled_reason of API 2023-10-16, on an account that is
	// otherwise active: the reason alone decides.
	for reason, want := range map[string]onboarding.Status{
		"action_required.requested_capabilities": onboarding.StatusRestricted,
		"requirements.past_due":                  onboarding.StatusRestricted,
		"requirements.pending_verification":      onboarding.StatusPendingVerification,
		"under_review":                           onboarding.StatusPendingVerification,
		"listed":                                 onboarding.StatusRestricted,
		"platform_paused":                        onboarding.StatusPlatformPaused,
		"other":                                  onboarding.StatusRestricted,
		"rejected.fraud":                         onboarding.StatusRejected,
		"rejected.incomplete_verification":       onboarding.StatusRejected,
		"rejected.listed":                        onboarding.StatusRejected,
		"rejected.other":                         onboarding.StatusRejected,
		"rejected.terms_of_service":              onboarding.StatusRejected,
	} {
		tests = append(tests, struct {
			name      string
			state     onboarding.AccountState
			agreement string
			want      onboarding.Status
		}{"disabled_reason " + reason, submitted(func(s *onboarding.AccountState) { s.Requirements.DisabledReason = ptr(reason) }), full, want})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := onboarding.DeriveStatus(tt.state, tt.agreement, now); got != tt.want {
				t.Errorf("DeriveStatus = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestAccountJSONShowsEmptyListsAndObjectsNotNull(t *testing.T) {
	acct := onboarding.AccountRecord{AccountID: "acct_1", Country: "US", ServiceAgreement: "full"}.Account(now)
	body, err := json.Marshal(acct)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Requirements       map[string]any `json:"requirements"`
		FutureRequirements map[string]any `json:"future_requirements"`
		Capabilities       map[string]any `json:"capabilities"`
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if got.Capabilities == nil {
		t.Errorf("capabilities must render as {}, got %s", body)
	}
	for name, r := range map[string]map[string]any{"requirements": got.Requirements, "future_requirements": got.FutureRequirements} {
		for _, list := range []string{"currently_due", "eventually_due", "past_due", "pending_verification", "errors"} {
			if _, ok := r[list].([]any); !ok {
				t.Errorf("%s.%s must render as [], got %s", name, list, body)
			}
		}
	}
}

func TestAccountShowsCapabilitiesAndFutureRequirements(t *testing.T) {
	deadline := now.Add(30 * 24 * time.Hour)
	rec := onboarding.AccountRecord{AccountID: "acct_1", Country: "US", ServiceAgreement: "full", State: onboarding.AccountState{
		Capabilities:       map[string]string{"card_payments": "pending", "transfers": "active"},
		FutureRequirements: &onboarding.Requirements{CurrentlyDue: []string{"company.tax_id"}, CurrentDeadline: &deadline},
	}}
	acct := rec.Account(now)
	if acct.Capabilities["card_payments"] != "pending" || acct.Capabilities["transfers"] != "active" || len(acct.Capabilities) != 2 {
		t.Errorf("capabilities = %v", acct.Capabilities)
	}
	if f := acct.FutureRequirements; len(f.CurrentlyDue) != 1 || f.CurrentDeadline == nil || !f.CurrentDeadline.Equal(deadline) {
		t.Errorf("future_requirements = %+v", f)
	}
	// The rendered map is a copy: a caller editing it cannot change the record.
	acct.Capabilities["transfers"] = "inactive"
	if rec.State.Capabilities["transfers"] != "active" {
		t.Error("Account shares its capabilities map with the record")
	}
}

// Why a requirement is due again reaches the Account JSON as Stripe names
// it: each error's code, reason and requirement.
func TestAccountJSONShowsWhyARequirementIsDueAgain(t *testing.T) {
	expired := onboarding.RequirementError{
		Code:        "verification_document_expired",
		Reason:      "The document has expired.",
		Requirement: "individual.verification.document",
	}
	rec := onboarding.AccountRecord{AccountID: "acct_1", Country: "US", ServiceAgreement: "full", State: onboarding.AccountState{
		DetailsSubmitted: true,
		Requirements: onboarding.Requirements{
			CurrentlyDue: []string{expired.Requirement}, PastDue: []string{expired.Requirement},
			Errors: []onboarding.RequirementError{expired},
		},
		FutureRequirements: &onboarding.Requirements{Errors: []onboarding.RequirementError{{Code: "invalid_tax_id", Reason: "Invalid tax ID.", Requirement: "company.tax_id"}}},
	}}
	body, err := json.Marshal(rec.Account(now))
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Requirements       struct{ Errors []map[string]string } `json:"requirements"`
		FutureRequirements struct{ Errors []map[string]string } `json:"future_requirements"`
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"code": expired.Code, "reason": expired.Reason, "requirement": expired.Requirement}
	if len(got.Requirements.Errors) != 1 || !reflect.DeepEqual(got.Requirements.Errors[0], want) {
		t.Errorf("requirements.errors = %v, want [%v] in %s", got.Requirements.Errors, want, body)
	}
	if len(got.FutureRequirements.Errors) != 1 || got.FutureRequirements.Errors[0]["code"] != "invalid_tax_id" {
		t.Errorf("future_requirements.errors = %v, want the invalid_tax_id error", got.FutureRequirements.Errors)
	}
}

// active follows the capabilities this service requested, not every one
// Stripe lists: a platform's Connect settings add payment-method
// capabilities (us_bank_account_ach_payments) that may stay inactive or
// pending, and a transfers-only account never has charges enabled.
func TestDeriveStatusFollowsTheRequestedCapabilities(t *testing.T) {
	cardAndTransfers := []string{"card_payments", "transfers"}
	state := func(requested []string, charges bool, caps map[string]string) onboarding.AccountState {
		return onboarding.AccountState{DetailsSubmitted: true, ChargesEnabled: charges, PayoutsEnabled: true, Capabilities: caps, RequestedCapabilities: requested}
	}
	tests := []struct {
		name      string
		state     onboarding.AccountState
		agreement string
		want      onboarding.Status
	}{
		{"a capability the platform's settings added stays inactive: active",
			state(cardAndTransfers, true, map[string]string{"card_payments": "active", "transfers": "active", "us_bank_account_ach_payments": "inactive"}),
			onboarding.AgreementFull, onboarding.StatusActive},
		{"a capability the platform's settings added is pending: active",
			state(cardAndTransfers, true, map[string]string{"card_payments": "active", "transfers": "active", "us_bank_account_ach_payments": "pending"}),
			onboarding.AgreementFull, onboarding.StatusActive},
		{"none requested (DEFAULT_CAPABILITIES=none): card_payments and transfers judged, the added one not",
			state(nil, true, map[string]string{"card_payments": "active", "transfers": "active", "us_bank_account_ach_payments": "inactive"}),
			onboarding.AgreementFull, onboarding.StatusActive},
		{"a requested payment-method capability still inactive: not active",
			state([]string{"card_payments", "transfers", "us_bank_account_ach_payments"}, true, map[string]string{"card_payments": "active", "transfers": "active", "us_bank_account_ach_payments": "inactive"}),
			onboarding.AgreementFull, onboarding.StatusPendingVerification},
		{"a requested capability pending: pending_verification",
			state(cardAndTransfers, true, map[string]string{"card_payments": "active", "transfers": "pending"}),
			onboarding.AgreementFull, onboarding.StatusPendingVerification},
		{"a requested capability Stripe has not listed yet: not active",
			state(cardAndTransfers, true, map[string]string{"card_payments": "active"}),
			onboarding.AgreementFull, onboarding.StatusPendingVerification},
		{"transfers only under the full agreement, transfers active and payouts enabled: active without charges",
			state([]string{"transfers"}, false, map[string]string{"transfers": "active"}),
			onboarding.AgreementFull, onboarding.StatusActive},
		{"transfers only, transfers inactive: not active",
			state([]string{"transfers"}, false, map[string]string{"transfers": "inactive"}),
			onboarding.AgreementFull, onboarding.StatusPendingVerification},
		{"none requested and Stripe lists transfers only: active without charges",
			state(nil, false, map[string]string{"transfers": "active"}),
			onboarding.AgreementFull, onboarding.StatusActive},
		{"none requested, card_payments listed: charges must be enabled",
			state(nil, false, map[string]string{"card_payments": "active", "transfers": "active"}),
			onboarding.AgreementFull, onboarding.StatusPendingVerification},
		{"card_payments requested: charges must be enabled",
			state(cardAndTransfers, false, map[string]string{"card_payments": "active", "transfers": "active"}),
			onboarding.AgreementFull, onboarding.StatusPendingVerification},
		{"nothing requested nor listed under the full agreement: charges must be enabled",
			state(nil, false, map[string]string{}),
			onboarding.AgreementFull, onboarding.StatusPendingVerification},
		{"card_payments no longer requested (unrequested): active without charges",
			state(cardAndTransfers, false, map[string]string{"card_payments": "unrequested", "transfers": "active"}),
			onboarding.AgreementFull, onboarding.StatusActive},
		{"a recipient with transfers requested and active: active without charges",
			state([]string{"transfers"}, false, map[string]string{"transfers": "active"}),
			onboarding.AgreementRecipient, onboarding.StatusActive},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			paused := tt.state
			paused.PayoutsEnabled = false
			if got := onboarding.DeriveStatus(tt.state, tt.agreement, now); got != tt.want {
				t.Errorf("DeriveStatus = %q, want %q", got, tt.want)
			}
			if got := onboarding.DeriveStatus(paused, tt.agreement, now); got == onboarding.StatusActive {
				t.Errorf("without payouts DeriveStatus = %q: payouts are always required", got)
			}
		})
	}
}
