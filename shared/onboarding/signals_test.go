package onboarding_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/connectexpress/onboarding/shared/onboarding"
)

func reasonState(reason string) onboarding.AccountState {
	return onboarding.AccountState{DetailsSubmitted: true, Requirements: onboarding.Requirements{DisabledReason: &reason}}
}

func TestEachSignalIsRaisedByItsEvidenceOnly(t *testing.T) {
	docErr := onboarding.RequirementError{Code: "verification_document_failed_copy", Reason: "a copy", Requirement: "individual.verification.document"}
	withFutureErr := onboarding.AccountState{FutureRequirements: &onboarding.Requirements{Errors: []onboarding.RequirementError{docErr}}}
	tests := []struct {
		name       string
		state      onboarding.AccountState
		sharedWith []string
		names      bool
		want       []onboarding.Signal
	}{
		{"nothing to see: an empty list, not null", onboarding.AccountState{DetailsSubmitted: true}, nil, false, []onboarding.Signal{}},
		{"one other user with the email", onboarding.AccountState{}, []string{"bob"}, false,
			[]onboarding.Signal{{Code: "duplicate_email", Detail: "the same email is on 1 other user's account"}}},
		{"the list counts the others and never names them", onboarding.AccountState{}, []string{"zed", "bob"}, false,
			[]onboarding.Signal{{Code: "duplicate_email", Detail: "the same email is on 2 other users' accounts"}}},
		{"the detail names them, sorted", onboarding.AccountState{}, []string{"zed", "bob"}, true,
			[]onboarding.Signal{{Code: "duplicate_email", Detail: "the same email is on 2 other users' accounts: bob, zed"}}},
		{"a requirement error", onboarding.AccountState{Requirements: onboarding.Requirements{Errors: []onboarding.RequirementError{docErr}}}, nil, false,
			[]onboarding.Signal{{Code: "verification_errors", Detail: "Stripe reports individual.verification.document: verification_document_failed_copy"}}},
		{"a future requirement's error", withFutureErr, nil, false,
			[]onboarding.Signal{{Code: "verification_errors", Detail: "Stripe reports individual.verification.document: verification_document_failed_copy (future requirement)"}}},
		{"under_review", reasonState("under_review"), nil, false, []onboarding.Signal{{Code: "stripe_review", Detail: "Stripe's disabled_reason is under_review"}}},
		{"listed", reasonState("listed"), nil, false, []onboarding.Signal{{Code: "stripe_review", Detail: "Stripe's disabled_reason is listed"}}},
		{"rejected.listed", reasonState("rejected.listed"), nil, false, []onboarding.Signal{{Code: "stripe_review", Detail: "Stripe's disabled_reason is rejected.listed"}}},
		{"a missing document is no Stripe review", reasonState("requirements.past_due"), nil, false, []onboarding.Signal{}},
		{"nor is another rejection", reasonState("rejected.fraud"), nil, false, []onboarding.Signal{}},
		{"nor a pending verification", reasonState("requirements.pending_verification"), nil, false, []onboarding.Signal{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := onboarding.Signals(tt.state, tt.sharedWith, tt.names); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Signals = %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestEmailsCompareWithoutCaseOrSurroundingSpace(t *testing.T) {
	for _, pair := range [][2]string{{"Seller@Example.COM", "seller@example.com"}, {" a@b.c ", "a@b.c"}} {
		if onboarding.EmailKey(pair[0]) != onboarding.EmailKey(pair[1]) {
			t.Errorf("EmailKey(%q) != EmailKey(%q)", pair[0], pair[1])
		}
	}
	if onboarding.EmailKey("a+1@b.c") == onboarding.EmailKey("a@b.c") {
		t.Error("a +tag was folded: that is a provider's rule, not every one's")
	}
}

func TestStaffAccountShowsItsEmailAndSignalsNamingTheOtherUsers(t *testing.T) {
	svc, staff := staffService(t, nil)
	got, err := svc.StaffAccount(context.Background(), staffCaller, "sid")
	if err != nil || got.Email != nil || got.BusinessName != nil || got.BusinessURL != nil || got.Signals == nil || len(got.Signals) != 0 {
		t.Fatalf("no email, no signal: email %v, signals %#v, %v", got.Email, got.Signals, err)
	}
	staff.rec.Record.Email = "Sid@Example.com"
	staff.rec.Record.BusinessName, staff.rec.Record.BusinessURL = "Sid's Bikes", "https://sid.example"
	staff.rec.Record.State.Requirements.DisabledReason = ptr("under_review")
	staff.sharedWith = []string{"bob"}
	got, err = svc.StaffAccount(context.Background(), staffCaller, "sid")
	want := []onboarding.Signal{
		{Code: "duplicate_email", Detail: "the same email is on 1 other user's account: bob"},
		{Code: "stripe_review", Detail: "Stripe's disabled_reason is under_review"},
	}
	if err != nil || got.Email == nil || *got.Email != "Sid@Example.com" || !reflect.DeepEqual(got.Signals, want) {
		t.Errorf("email %v, signals %#v, %v; want the email and %#v", got.Email, got.Signals, err, want)
	}
	if got.BusinessName == nil || *got.BusinessName != "Sid's Bikes" || got.BusinessURL == nil || *got.BusinessURL != "https://sid.example" {
		t.Errorf("business name %v, url %v", got.BusinessName, got.BusinessURL)
	}
}
