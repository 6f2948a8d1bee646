package onboarding_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/connectexpress/onboarding/shared/onboarding"
)

func TestDashboardLinkRefusedByStripeIsOnboardingIncompleteAndReReadsTheAccount(t *testing.T) {
	stored := onboarding.AccountRecord{UserID: "u1", AccountID: "acct_1", State: onboarding.AccountState{DetailsSubmitted: true}}
	var saved []onboarding.AccountState
	store := &storeFake{
		GetUserFn: func(context.Context, string) (onboarding.UserRecord, error) {
			return onboarding.UserRecord{UserID: "u1", Account: &stored}, nil
		},
		TakeSlotFn: allowSlot,
		SaveStateFn: func(_ context.Context, userID string, st onboarding.AccountState, _ int64, _ time.Time, _ onboarding.Cause) (onboarding.AccountRecord, error) {
			if userID != "u1" {
				t.Errorf("saved for %q", userID)
			}
			saved = append(saved, st)
			return stored, nil
		},
	}
	connect := &connectFake{
		DashboardFn: func(context.Context, string) (string, error) {
			return "", onboarding.ProviderRejected("", "Cannot create a login link for an account that has not completed onboarding.", errors.New("stripe: status 400"))
		},
		GetAccountFn: func(_ context.Context, id string) (onboarding.AccountState, error) {
			if id != "acct_1" {
				t.Errorf("re-read %q", id)
			}
			return onboarding.AccountState{DetailsSubmitted: false}, nil
		},
	}
	_, err := newService(store, connect, testPolicy()).CreateDashboardLink(context.Background(), onboarding.Caller{UserID: "u1"})
	if !errors.Is(err, onboarding.ErrOnboardingIncomplete) {
		t.Fatalf("err = %v, want onboarding_incomplete", err)
	}
	if len(saved) != 1 || saved[0].DetailsSubmitted {
		t.Fatalf("the account was not re-read and stored: %+v", saved)
	}
}

func TestDashboardLinkWhenStripeFailsIsStripeUnavailable(t *testing.T) {
	stored := onboarding.AccountRecord{UserID: "u1", AccountID: "acct_1", State: onboarding.AccountState{DetailsSubmitted: true}}
	store := &storeFake{TakeSlotFn: allowSlot, GetUserFn: func(context.Context, string) (onboarding.UserRecord, error) {
		return onboarding.UserRecord{UserID: "u1", Account: &stored}, nil
	}}
	connect := &connectFake{DashboardFn: func(context.Context, string) (string, error) { return "", onboarding.ErrStripeUnavailable }}
	_, err := newService(store, connect, testPolicy()).CreateDashboardLink(context.Background(), onboarding.Caller{UserID: "u1"})
	if !errors.Is(err, onboarding.ErrStripeUnavailable) {
		t.Fatalf("err = %v, want stripe_unavailable (a Stripe outage is not the user's unfinished onboarding)", err)
	}
}

// allowSlot lets every use of a per-user or per-account limit through.
func allowSlot(context.Context, string, int, time.Duration, time.Time) (bool, time.Time, error) {
	return true, time.Time{}, nil
}
