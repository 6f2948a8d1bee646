package stripeconnect_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/connectexpress/onboarding/internal/stripesim"
	"github.com/connectexpress/onboarding/shared/onboarding"
)

// What only the simulator can show: the adapter decodes an account as its
// onboarding moves on, and maps Stripe's behavioural refusals.

func TestGetAccountFollowsTheSimulatedOnboarding(t *testing.T) {
	b := newBackend(t, "simulator")
	id := b.account(t, false)
	c := newClient(t, b.rec.URL, 5*time.Second)
	deadline := time.Now().Add(7 * 24 * time.Hour)
	tests := []struct {
		outcome, due string
		check        func(t *testing.T, st onboarding.AccountState)
	}{
		{stripesim.OutcomeRestricted, "soon", func(t *testing.T, st onboarding.AccountState) {
			r := st.Requirements
			if !st.DetailsSubmitted || !st.PayoutsEnabled || r.DisabledReason != nil || len(r.CurrentlyDue) != 1 || len(r.PastDue) != 0 {
				t.Errorf("due soon: %+v", st)
			}
			if r.CurrentDeadline == nil || r.CurrentDeadline.Sub(deadline).Abs() > time.Minute {
				t.Errorf("CurrentDeadline = %v, want about %v", r.CurrentDeadline, deadline)
			}
		}},
		{stripesim.OutcomeRestricted, "past", func(t *testing.T, st onboarding.AccountState) {
			r := st.Requirements
			if st.PayoutsEnabled || r.DisabledReason == nil || *r.DisabledReason != "requirements.past_due" || len(r.PastDue) != 1 || r.CurrentDeadline != nil {
				t.Errorf("past due: %+v", st)
			}
		}},
		{stripesim.OutcomePending, "", func(t *testing.T, st onboarding.AccountState) {
			r := st.Requirements
			if st.ChargesEnabled || len(r.PendingVerification) != 1 || st.Capabilities["transfers"] != "pending" {
				t.Errorf("pending: %+v", st)
			}
		}},
		{stripesim.OutcomeComplete, "", func(t *testing.T, st onboarding.AccountState) {
			r := st.Requirements
			want := map[string]string{"card_payments": "active", "transfers": "active"}
			if !st.ChargesEnabled || !st.PayoutsEnabled || r.DisabledReason != nil || len(r.CurrentlyDue)+len(r.EventuallyDue) != 0 ||
				!reflect.DeepEqual(st.Capabilities, want) {
				t.Errorf("complete: %+v", st)
			}
		}},
		{stripesim.OutcomeReject, "", func(t *testing.T, st onboarding.AccountState) {
			r := st.Requirements
			if st.ChargesEnabled || st.PayoutsEnabled || r.DisabledReason == nil || *r.DisabledReason != "rejected.other" {
				t.Errorf("rejected: %+v", st)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.outcome+" "+tt.due, func(t *testing.T) {
			if err := b.sim.Outcome(id, tt.outcome, tt.due); err != nil {
				t.Fatal(err)
			}
			st, err := c.GetAccount(context.Background(), id)
			if err != nil {
				t.Fatalf("GetAccount: %v", err)
			}
			tt.check(t, st)
		})
	}
}

// The simulator refuses what Stripe refuses on behaviour, which stripe-mock
// cannot know: the adapter maps each refusal to a clean ProviderRejected.
func TestSimulatorRefusalsReachTheCoreAsRejections(t *testing.T) {
	b := newBackend(t, "simulator")
	c := newClient(t, b.rec.URL, 5*time.Second)
	ctx := context.Background()

	fresh := b.account(t, false)
	_, err := c.CreateDashboardLink(ctx, fresh)
	if e, ok := onboarding.AsError(err); !ok || e.Kind != onboarding.KindInvalid ||
		e.Message != "Cannot create a login link for an account that has not completed onboarding." {
		t.Errorf("a login link before onboarding: %v, want Stripe's refusal", err)
	}

	if _, err := c.CreateOnboardingLink(ctx, onboarding.LinkRequest{AccountID: fresh, RefreshURL: testRefreshURL, ReturnURL: testReturnURL}); err != nil {
		t.Fatalf("CreateOnboardingLink: %v", err)
	}
	err = c.UpdateAccount(ctx, fresh, onboarding.Prefill{Email: testEmail})
	if e, ok := onboarding.AsError(err); !ok || e.Kind != onboarding.KindInvalid || e.Param != "email" {
		t.Errorf("a prefill update after the first link: %v, want a refusal naming email (Stripe locks KYC prefill)", err)
	}

	_, err = c.GetAccount(ctx, "acct_1NoSuchAccount00")
	if e, ok := onboarding.AsError(err); !ok || e.Kind != onboarding.KindInvalid || e.Param != "account" {
		t.Errorf("an unknown account: %v, want Stripe's resource_missing refusal", err)
	}

	_, err = c.CreateAccount(ctx, onboarding.CreateAccountParams{
		Country: "DE", Capabilities: []string{"card_payments", "transfers"}, ServiceAgreement: "recipient", PlatformUserID: "u",
	}, "recipient-with-card-payments")
	if e, ok := onboarding.AsError(err); !ok || e.Kind != onboarding.KindInvalid {
		t.Errorf("card_payments under the recipient agreement: %v, want a refusal", err)
	}
}
