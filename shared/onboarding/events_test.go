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
		// storeSays is what ApplyEvent answers, call by call (then applied).
		storeSays []onboarding.EventOutcome
	}{
		{"account.updated with our metadata needs no lookup",
			onboarding.AccountEvent{ID: "evt_1", Type: "account.updated", Created: created, AccountID: "acct_1", State: snapshot, PlatformUserID: "u1", CreationID: "cr1", Country: "US"},
			"", onboarding.OutcomeApplied,
			&onboarding.StateChange{EventID: "evt_1", UserID: "u1", AccountID: "acct_1", Kind: onboarding.ChangeSnapshot, Version: created.Unix(), HealCreationID: "cr1"}, 0, nil},
		{"metadata naming a user whose record does not hold the account goes to the indexed owner",
			onboarding.AccountEvent{ID: "evt_8", Type: "account.updated", Created: created, AccountID: "acct_1", State: snapshot, PlatformUserID: "u9", CreationID: "cr1"},
			"u1", onboarding.OutcomeApplied,
			&onboarding.StateChange{EventID: "evt_8", UserID: "u1", AccountID: "acct_1", Kind: onboarding.ChangeSnapshot, Version: created.Unix()}, 1,
			[]onboarding.EventOutcome{onboarding.OutcomeUnknown}},
		{"metadata naming a user for an account nobody owns binds nothing",
			onboarding.AccountEvent{ID: "evt_9", Type: "account.updated", Created: created, AccountID: "acct_x", State: snapshot, PlatformUserID: "u9"},
			"", onboarding.OutcomeUnknown,
			&onboarding.StateChange{EventID: "evt_9", UserID: "u9", AccountID: "acct_x", Kind: onboarding.ChangeSnapshot, Version: created.Unix()}, 1,
			[]onboarding.EventOutcome{onboarding.OutcomeUnknown}},
		{"account.updated without metadata is looked up",
			onboarding.AccountEvent{ID: "evt_2", Type: "account.updated", Created: created, AccountID: "acct_1", State: snapshot},
			"u1", onboarding.OutcomeApplied,
			&onboarding.StateChange{EventID: "evt_2", UserID: "u1", AccountID: "acct_1", Kind: onboarding.ChangeSnapshot, Version: created.Unix()}, 1, nil},
		{"unknown account without metadata is acknowledged",
			onboarding.AccountEvent{ID: "evt_3", Type: "account.updated", Created: created, AccountID: "acct_x", State: snapshot},
			"", onboarding.OutcomeUnknown, nil, 1, nil},
		{"capability.updated is looked up",
			onboarding.AccountEvent{ID: "evt_4", Type: "capability.updated", Created: created, AccountID: "acct_1", Capability: "transfers", CapabilityStatus: "active"},
			"u1", onboarding.OutcomeApplied,
			&onboarding.StateChange{EventID: "evt_4", UserID: "u1", AccountID: "acct_1", Kind: onboarding.ChangeCapability, Version: created.Unix(), Capability: "transfers", CapabilityStatus: "active"}, 1, nil},
		{"deauthorization is looked up",
			onboarding.AccountEvent{ID: "evt_5", Type: "account.application.deauthorized", Created: created, AccountID: "acct_1"},
			"u1", onboarding.OutcomeApplied,
			&onboarding.StateChange{EventID: "evt_5", UserID: "u1", AccountID: "acct_1", Kind: onboarding.ChangeDeauthorize, Version: created.Unix()}, 1, nil},
		{"other types are ignored",
			onboarding.AccountEvent{ID: "evt_6", Type: "payout.paid", Created: created, AccountID: "acct_1"},
			"u1", onboarding.OutcomeIgnoredType, nil, 0, nil},
		{"live events on a test key are ignored",
			onboarding.AccountEvent{ID: "evt_7", Type: "account.updated", Created: created, AccountID: "acct_1", State: snapshot, Livemode: true},
			"u1", onboarding.OutcomeModeMismatch, nil, 0, nil},
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
					if len(tt.storeSays) > 0 {
						o := tt.storeSays[0]
						tt.storeSays = tt.storeSays[1:]
						return o, nil
					}
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
					a.Version != w.Version || a.HealCreationID != w.HealCreationID || a.Capability != w.Capability || a.CapabilityStatus != w.CapabilityStatus {
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
