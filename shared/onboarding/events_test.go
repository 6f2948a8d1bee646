package onboarding_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
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

// Stripe leaves tos_acceptance.service_agreement out for its default, the full agreement: an
// account stored from such an event shows full, and one that names recipient keeps it.
func TestAnEventWithoutAServiceAgreementMeansTheFullOne(t *testing.T) {
	for _, tt := range []struct{ sent, want string }{{"", onboarding.AgreementFull}, {onboarding.AgreementRecipient, onboarding.AgreementRecipient}} {
		var applied onboarding.StateChange
		store := &storeFake{ApplyEventFn: func(_ context.Context, c onboarding.StateChange) (onboarding.EventOutcome, error) {
			applied = c
			return onboarding.OutcomeApplied, nil
		}}
		ev := onboarding.AccountEvent{ID: "evt_1", Type: "account.updated", Created: testNow, AccountID: "acct_1", State: &onboarding.AccountState{}, PlatformUserID: "u1", ServiceAgreement: tt.sent}
		if _, err := newService(store, &connectFake{}, testPolicy()).HandleEvent(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
		if applied.ServiceAgreement != tt.want {
			t.Errorf("event with %q: stored %q, want %q", tt.sent, applied.ServiceAgreement, tt.want)
		}
	}
}

// When metadata names a user, and the account index names the same user although that
// user's record does not hold the account, the store is not asked twice, and nobody is
// warned of a mismatch that is not there; when the index names another user, the operator is.
func TestMetadataAndIndexThatDisagreeWithTheRecordApplyNothingTwice(t *testing.T) {
	tests := []struct {
		name         string
		named, owner string
		wantApplies  int
		wantOutcome  onboarding.EventOutcome
		wantWarning  bool
	}{
		{name: "the index names the same user", named: "u1", owner: "u1", wantApplies: 1, wantOutcome: onboarding.OutcomeUnknown},
		{name: "the index names another user", named: "u9", owner: "u1", wantApplies: 2, wantOutcome: onboarding.OutcomeApplied, wantWarning: true},
		{name: "no metadata: the index decides, silently", named: "", owner: "u1", wantApplies: 1, wantOutcome: onboarding.OutcomeApplied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			applies := 0
			store := &storeFake{
				FindUserByAccountFn: func(context.Context, string) (string, error) { return tt.owner, nil },
				ApplyEventFn: func(_ context.Context, c onboarding.StateChange) (onboarding.EventOutcome, error) {
					applies++
					if c.UserID == tt.owner && applies > 1 || tt.named == "" {
						return onboarding.OutcomeApplied, nil
					}
					return onboarding.OutcomeUnknown, nil // the named user's record does not hold it
				},
			}
			var logs bytes.Buffer
			svc := onboarding.NewService(store, &connectFake{}, testPolicy(), onboarding.WithClock(func() time.Time { return testNow }),
				onboarding.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
			ev := onboarding.AccountEvent{ID: "evt_1", Type: "account.updated", Created: testNow, AccountID: "acct_1", State: &onboarding.AccountState{}, PlatformUserID: tt.named}
			got, err := svc.HandleEvent(context.Background(), ev)
			if err != nil || got != tt.wantOutcome || applies != tt.wantApplies {
				t.Fatalf("outcome %q err %v after %d applies, want %q after %d", got, err, applies, tt.wantOutcome, tt.wantApplies)
			}
			if warned := strings.Contains(logs.String(), "level=WARN"); warned != tt.wantWarning {
				t.Errorf("warned %v, want %v; log:\n%s", warned, tt.wantWarning, logs.String())
			}
		})
	}
}
