package onboarding_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/connectexpress/onboarding/shared/onboarding"
)

func TestHandleEventRoutesEachEventToOneStoreChange(t *testing.T) {
	snapshot := &onboarding.AccountState{DetailsSubmitted: true}
	created := time.Unix(1_800_000_000, 0)
	tests := []struct {
		name        string
		ev          onboarding.AccountEvent
		owner       string // what FindUserByAccount knows; "" = unknown
		want        onboarding.EventOutcome
		wantChange  *onboarding.StateChange
		wantLookups int
	}{
		{"account.updated with our metadata needs no lookup",
			onboarding.AccountEvent{ID: "evt_1", Type: "account.updated", Created: created, AccountID: "acct_1", State: snapshot, PlatformUserID: "u1", Country: "US"},
			"", onboarding.OutcomeApplied,
			&onboarding.StateChange{EventID: "evt_1", UserID: "u1", AccountID: "acct_1", Kind: onboarding.ChangeSnapshot, Version: created.Unix(), CreateIfMissing: true}, 0},
		{"account.updated without metadata is looked up",
			onboarding.AccountEvent{ID: "evt_2", Type: "account.updated", Created: created, AccountID: "acct_1", State: snapshot},
			"u1", onboarding.OutcomeApplied,
			&onboarding.StateChange{EventID: "evt_2", UserID: "u1", AccountID: "acct_1", Kind: onboarding.ChangeSnapshot, Version: created.Unix()}, 1},
		{"unknown account without metadata is acknowledged",
			onboarding.AccountEvent{ID: "evt_3", Type: "account.updated", Created: created, AccountID: "acct_x", State: snapshot},
			"", onboarding.OutcomeUnknown, nil, 1},
		{"capability.updated is looked up",
			onboarding.AccountEvent{ID: "evt_4", Type: "capability.updated", Created: created, AccountID: "acct_1", Capability: "transfers", CapabilityStatus: "active"},
			"u1", onboarding.OutcomeApplied,
			&onboarding.StateChange{EventID: "evt_4", UserID: "u1", AccountID: "acct_1", Kind: onboarding.ChangeCapability, Version: created.Unix(), Capability: "transfers", CapabilityStatus: "active"}, 1},
		{"deauthorization is looked up",
			onboarding.AccountEvent{ID: "evt_5", Type: "account.application.deauthorized", Created: created, AccountID: "acct_1"},
			"u1", onboarding.OutcomeApplied,
			&onboarding.StateChange{EventID: "evt_5", UserID: "u1", AccountID: "acct_1", Kind: onboarding.ChangeDeauthorize, Version: created.Unix()}, 1},
		{"other types are ignored",
			onboarding.AccountEvent{ID: "evt_6", Type: "payout.paid", Created: created, AccountID: "acct_1"},
			"u1", onboarding.OutcomeIgnoredType, nil, 0},
		{"live events on a test key are ignored",
			onboarding.AccountEvent{ID: "evt_7", Type: "account.updated", Created: created, AccountID: "acct_1", State: snapshot, Livemode: true},
			"u1", onboarding.OutcomeModeMismatch, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lookups := 0
			var applied *onboarding.StateChange
			store := &storeFake{
				FindUserByAccountFn: func(_ context.Context, id string) (string, error) {
					lookups++
					if tt.owner == "" {
						return "", onboarding.ErrNotFound
					}
					return tt.owner, nil
				},
				ApplyEventFn: func(_ context.Context, c onboarding.StateChange) (onboarding.EventOutcome, error) {
					applied = &c
					return onboarding.OutcomeApplied, nil
				},
			}
			got, err := newService(store, &connectFake{}, testPolicy()).HandleEvent(context.Background(), tt.ev)
			if err != nil || got != tt.want || lookups != tt.wantLookups {
				t.Fatalf("outcome %q err %v lookups %d, want %q with %d lookups", got, err, lookups, tt.want, tt.wantLookups)
			}
			if (applied == nil) != (tt.wantChange == nil) {
				t.Fatalf("applied %+v, want %+v", applied, tt.wantChange)
			}
			if w := tt.wantChange; w != nil {
				a := applied
				if a.EventID != w.EventID || a.UserID != w.UserID || a.AccountID != w.AccountID || a.Kind != w.Kind ||
					a.Version != w.Version || a.CreateIfMissing != w.CreateIfMissing || a.Capability != w.Capability || a.CapabilityStatus != w.CapabilityStatus {
					t.Fatalf("change %+v, want %+v", a, w)
				}
				if !a.RetainUntil.After(testNow.Add(3 * 24 * time.Hour)) {
					t.Fatalf("processed marker kept until %v: must outlive Stripe's 3-day retries", a.RetainUntil)
				}
			}
		})
	}
}

func TestHandleEventReturnsStorageFailuresSoStripeRetries(t *testing.T) {
	store := &storeFake{ApplyEventFn: func(context.Context, onboarding.StateChange) (onboarding.EventOutcome, error) {
		return "", onboarding.StorageFailed(errors.New("throttled"))
	}}
	_, err := newService(store, &connectFake{}, testPolicy()).HandleEvent(context.Background(), onboarding.AccountEvent{
		ID: "evt_1", Type: "account.updated", Created: testNow, AccountID: "acct_1", State: &onboarding.AccountState{}, PlatformUserID: "u1",
	})
	if !errors.Is(err, onboarding.ErrStorageUnavailable) {
		t.Fatalf("err = %v, want storage_unavailable", err)
	}
}
