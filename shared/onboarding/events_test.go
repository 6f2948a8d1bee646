package onboarding_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/connectexpress/onboarding/internal/memstore"
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
			&onboarding.StateChange{EventID: "evt_1", UserID: "u1", AccountID: "acct_1", Kind: onboarding.ChangeSnapshot, SettleTies: true, Version: created.Unix(), HealCreationID: "cr1"}, 0, nil},
		{"metadata naming a user whose record does not hold the account goes to the indexed owner",
			onboarding.AccountEvent{ID: "evt_8", Type: "account.updated", Created: created, AccountID: "acct_1", State: snapshot, PlatformUserID: "u9", CreationID: "cr1"},
			"u1", onboarding.OutcomeApplied,
			&onboarding.StateChange{EventID: "evt_8", UserID: "u1", AccountID: "acct_1", Kind: onboarding.ChangeSnapshot, SettleTies: true, Version: created.Unix()}, 1,
			[]onboarding.EventOutcome{onboarding.OutcomeUnknown}},
		{"metadata naming a user for an account nobody owns binds nothing",
			onboarding.AccountEvent{ID: "evt_9", Type: "account.updated", Created: created, AccountID: "acct_x", State: snapshot, PlatformUserID: "u9"},
			"", onboarding.OutcomeUnknown,
			&onboarding.StateChange{EventID: "evt_9", UserID: "u9", AccountID: "acct_x", Kind: onboarding.ChangeSnapshot, SettleTies: true, Version: created.Unix()}, 1,
			[]onboarding.EventOutcome{onboarding.OutcomeUnknown}},
		{"account.updated without metadata is looked up",
			onboarding.AccountEvent{ID: "evt_2", Type: "account.updated", Created: created, AccountID: "acct_1", State: snapshot},
			"u1", onboarding.OutcomeApplied,
			&onboarding.StateChange{EventID: "evt_2", UserID: "u1", AccountID: "acct_1", Kind: onboarding.ChangeSnapshot, SettleTies: true, Version: created.Unix()}, 1, nil},
		{"unknown account without metadata is acknowledged",
			onboarding.AccountEvent{ID: "evt_3", Type: "account.updated", Created: created, AccountID: "acct_x", State: snapshot},
			"", onboarding.OutcomeUnknown, nil, 1, nil},
		{"capability.updated is looked up",
			onboarding.AccountEvent{ID: "evt_4", Type: "capability.updated", Created: created, AccountID: "acct_1", Capability: "transfers", CapabilityStatus: "active"},
			"u1", onboarding.OutcomeApplied,
			&onboarding.StateChange{EventID: "evt_4", UserID: "u1", AccountID: "acct_1", Kind: onboarding.ChangeCapability, SettleTies: true, Version: created.Unix(), Capability: "transfers", CapabilityStatus: "active"}, 1, nil},
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
					a.Version != w.Version || a.HealCreationID != w.HealCreationID || a.Capability != w.Capability || a.CapabilityStatus != w.CapabilityStatus ||
					a.SettleTies != w.SettleTies {
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

// Stripe sends account.updated and capability.updated in bursts within one second and
// guarantees no order (https://docs.stripe.com/webhooks#event-ordering), so two events of
// one created second cannot be ordered by themselves: when they disagree, the account ends
// as Stripe answers a read, whichever came last. Here on the in-memory store, which keeps
// the DynamoDB store's tie rule (the real one is tested on moto and minidyn).
func TestSameSecondEventsEndAtStripesStateInEitherOrder(t *testing.T) {
	created := testNow.Add(-time.Second) // Stripe's second; we read it a second later
	verifying := onboarding.AccountState{DetailsSubmitted: true,
		Requirements: onboarding.Requirements{PendingVerification: []string{"individual.verification.document"}},
		Capabilities: map[string]string{"card_payments": "pending", "transfers": "pending"}}
	enabled := onboarding.AccountState{DetailsSubmitted: true, ChargesEnabled: true, PayoutsEnabled: true,
		Capabilities: map[string]string{"card_payments": "active", "transfers": "active"}}
	stale := onboarding.AccountEvent{ID: "evt_stale", Type: "account.updated", Created: created, AccountID: "acct_1", State: &verifying, PlatformUserID: "u1"}
	fresh := onboarding.AccountEvent{ID: "evt_fresh", Type: "account.updated", Created: created, AccountID: "acct_1", State: &enabled, PlatformUserID: "u1"}
	capability := onboarding.AccountEvent{ID: "evt_cap", Type: "capability.updated", Created: created, AccountID: "acct_1", Capability: "card_payments", CapabilityStatus: "active"}
	tests := []struct {
		name   string
		events []onboarding.AccountEvent
	}{
		{"two snapshots, the newer delivered first", []onboarding.AccountEvent{fresh, stale}},
		{"two snapshots, the newer delivered last", []onboarding.AccountEvent{stale, fresh}},
		{"a capability then an older snapshot", []onboarding.AccountEvent{capability, stale}},
		{"an older snapshot then a capability", []onboarding.AccountEvent{stale, capability}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := storedAccount(t, "u1", "acct_1", onboarding.AccountState{}, created.Unix()-60)
			reads := 0
			connect := &connectFake{GetAccountFn: func(context.Context, string) (onboarding.AccountState, error) {
				reads++
				return enabled, nil
			}}
			svc := newService(store, connect, testPolicy())
			for _, ev := range tt.events {
				if _, err := svc.HandleEvent(context.Background(), ev); err != nil {
					t.Fatal(err)
				}
			}
			u, _ := store.GetUser(context.Background(), "u1")
			if got := u.Account.Account(testNow).Status; got != onboarding.StatusActive || onboarding.StateDigest(u.Account.State) != onboarding.StateDigest(enabled) {
				t.Fatalf("ends %s with %+v, want active with Stripe's state %+v", got, u.Account.State, enabled)
			}
			if reads > 1 {
				t.Errorf("Stripe read %d times for one disagreement", reads)
			}
			for _, ev := range tt.events {
				if o, _ := svc.HandleEvent(context.Background(), ev); o != onboarding.OutcomeDuplicate {
					t.Errorf("%s delivered again: %q, want duplicate (its marker was stored)", ev.ID, o)
				}
			}
		})
	}
}

// storedAccount is a memstore holding userID's account at version.
func storedAccount(t *testing.T, userID, accountID string, state onboarding.AccountState, version int64) *memstore.Store {
	t.Helper()
	store := memstore.New()
	ctx := context.Background()
	if err := store.ClaimCreation(ctx, userID, onboarding.CreationClaim{ClaimID: "c1", CreationID: "cr1", LeaseUntil: testNow.Add(time.Minute)}, testNow); err != nil {
		t.Fatal(err)
	}
	rec := onboarding.AccountRecord{UserID: userID, AccountID: accountID, Country: "US", ServiceAgreement: onboarding.AgreementFull,
		State: state, StateVersion: version, CreatedAt: testNow, UpdatedAt: testNow}
	if err := store.CompleteCreation(ctx, rec, "c1"); err != nil {
		t.Fatal(err)
	}
	return store
}

// What the service writes when the store answers that an event ties with stored state
// that says otherwise: Stripe's state under the event's marker, at the read's second (or
// the event's, when our clock is behind Stripe's), through the same versioned write and
// with the webhook as the cause; and when Stripe cannot be read, the event's own state,
// acknowledged (a Stripe outage is no reason for Stripe to redeliver), and a warning.
func TestATieThatDisagreesIsSettledByReadingStripe(t *testing.T) {
	stripeState := onboarding.AccountState{DetailsSubmitted: true, PayoutsEnabled: true, Capabilities: map[string]string{"transfers": "active"}}
	snapshot := onboarding.AccountEvent{ID: "evt_1", Type: "account.updated", Created: testNow.Add(-2 * time.Second), AccountID: "acct_1",
		State: &onboarding.AccountState{DetailsSubmitted: true}, PlatformUserID: "u1", ServiceAgreement: onboarding.AgreementRecipient}
	capability := onboarding.AccountEvent{ID: "evt_2", Type: "capability.updated", Created: testNow.Add(-2 * time.Second), AccountID: "acct_1",
		Capability: "transfers", CapabilityStatus: "pending"}
	ahead := snapshot
	ahead.Created = testNow.Add(3 * time.Second) // Stripe's clock ahead of ours
	tests := []struct {
		name        string
		ev          onboarding.AccountEvent
		readErr     error
		want        onboarding.EventOutcome
		wantSecond  onboarding.StateChange // the write after the tie
		wantWarning bool
	}{
		{"a snapshot: Stripe's state at the read's second", snapshot, nil, onboarding.OutcomeSettled,
			onboarding.StateChange{EventID: "evt_1", Kind: onboarding.ChangeSnapshot, State: stripeState, Version: testNow.Unix(), ServiceAgreement: onboarding.AgreementRecipient}, false},
		{"a capability: Stripe's state, with the stored agreement", capability, nil, onboarding.OutcomeSettled,
			onboarding.StateChange{EventID: "evt_2", Kind: onboarding.ChangeSnapshot, State: stripeState, Version: testNow.Unix(), ServiceAgreement: onboarding.AgreementRecipient}, false},
		{"our clock behind the event's: the event's second", ahead, nil, onboarding.OutcomeSettled,
			onboarding.StateChange{EventID: "evt_1", Kind: onboarding.ChangeSnapshot, State: stripeState, Version: ahead.Created.Unix(), ServiceAgreement: onboarding.AgreementRecipient}, false},
		{"Stripe unreadable: the event's own state, ties applying", snapshot, onboarding.ErrStripeUnavailable, onboarding.OutcomeApplied,
			onboarding.StateChange{EventID: "evt_1", Kind: onboarding.ChangeSnapshot, State: *snapshot.State, Version: snapshot.Created.Unix(), ServiceAgreement: onboarding.AgreementRecipient}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var writes []onboarding.StateChange
			store := &storeFake{
				FindUserByAccountFn: func(context.Context, string) (string, error) { return "u1", nil },
				GetUserFn: func(context.Context, string) (onboarding.UserRecord, error) {
					return onboarding.UserRecord{UserID: "u1", Account: &onboarding.AccountRecord{UserID: "u1", AccountID: "acct_1", Country: "FR", ServiceAgreement: onboarding.AgreementRecipient}}, nil
				},
				ApplyEventFn: func(_ context.Context, c onboarding.StateChange) (onboarding.EventOutcome, error) {
					writes = append(writes, c)
					if c.SettleTies {
						return onboarding.OutcomeTied, nil
					}
					return onboarding.OutcomeApplied, nil
				},
			}
			reads := 0
			connect := &connectFake{GetAccountFn: func(_ context.Context, id string) (onboarding.AccountState, error) {
				reads++
				if id != "acct_1" {
					t.Errorf("read %s", id)
				}
				return stripeState, tt.readErr
			}}
			var logs bytes.Buffer
			svc := onboarding.NewService(store, connect, testPolicy(), onboarding.WithClock(func() time.Time { return testNow }),
				onboarding.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
			got, err := svc.HandleEvent(context.Background(), tt.ev)
			if err != nil || got != tt.want {
				t.Fatalf("outcome %q err %v, want %q", got, err, tt.want)
			}
			if len(writes) != 2 || !writes[0].SettleTies || reads != 1 {
				t.Fatalf("%d writes (%+v), %d reads: want the event's with SettleTies, one read, then one write", len(writes), writes, reads)
			}
			w, want := writes[1], tt.wantSecond
			if w.SettleTies || w.EventID != want.EventID || w.UserID != "u1" || w.AccountID != "acct_1" || w.Kind != want.Kind ||
				w.Version != want.Version || w.ServiceAgreement != want.ServiceAgreement || w.Cause != onboarding.CauseWebhook ||
				onboarding.StateDigest(w.State) != onboarding.StateDigest(want.State) || !w.RetainUntil.After(testNow.Add(3*24*time.Hour)) {
				t.Fatalf("second write %+v, want %+v applied at ties, cause webhook, marker kept past Stripe's retries", w, want)
			}
			if tt.ev.Type == "capability.updated" && w.Country != "FR" {
				t.Errorf("country %q, want the record's", w.Country)
			}
			if warned := strings.Contains(logs.String(), "level=WARN"); warned != tt.wantWarning {
				t.Errorf("warned %v, want %v; log:\n%s", warned, tt.wantWarning, logs.String())
			}
		})
	}
}

// Only our storage's failures make Stripe redeliver: a failure to write the settled state
// is returned, and a capability event whose record went away is acknowledged.
func TestSettlingATieReturnsOnlyStorageFailures(t *testing.T) {
	capability := onboarding.AccountEvent{ID: "evt_2", Type: "capability.updated", Created: testNow, AccountID: "acct_1", Capability: "transfers", CapabilityStatus: "pending"}
	tests := []struct {
		name       string
		getUserErr error
		settleErr  error
		want       onboarding.EventOutcome
		wantErr    error
	}{
		{"the settled write fails", nil, onboarding.StorageFailed(errors.New("throttled")), "", onboarding.ErrStorageUnavailable},
		{"reading the agreement fails", onboarding.StorageFailed(errors.New("throttled")), nil, "", onboarding.ErrStorageUnavailable},
		{"the record went away", onboarding.ErrNotFound, nil, onboarding.OutcomeUnknown, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := &storeFake{
				FindUserByAccountFn: func(context.Context, string) (string, error) { return "u1", nil },
				GetUserFn: func(context.Context, string) (onboarding.UserRecord, error) {
					return onboarding.UserRecord{UserID: "u1", Account: &onboarding.AccountRecord{ServiceAgreement: onboarding.AgreementFull}}, tt.getUserErr
				},
				ApplyEventFn: func(_ context.Context, c onboarding.StateChange) (onboarding.EventOutcome, error) {
					if c.SettleTies {
						return onboarding.OutcomeTied, nil
					}
					return onboarding.OutcomeApplied, tt.settleErr
				},
			}
			connect := &connectFake{GetAccountFn: func(context.Context, string) (onboarding.AccountState, error) { return onboarding.AccountState{}, nil }}
			got, err := newService(store, connect, testPolicy()).HandleEvent(context.Background(), capability)
			if got != tt.want || !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("outcome %q err %v, want %q %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// A tie's Stripe read that answers 403 account_invalid (the account
// deleted, or our access revoked) stores the account as deauthorized under
// the event's id, as every other path that meets it does.
func TestATieWhoseAccountIsGoneAtStripeStoresItDeauthorized(t *testing.T) {
	var changes []onboarding.StateChange
	store := &storeFake{
		FindUserByAccountFn: func(context.Context, string) (string, error) { return "u1", nil },
		ApplyEventFn: func(_ context.Context, c onboarding.StateChange) (onboarding.EventOutcome, error) {
			changes = append(changes, c)
			if c.SettleTies {
				return onboarding.OutcomeTied, nil
			}
			return onboarding.OutcomeApplied, nil
		},
	}
	connect := &connectFake{GetAccountFn: func(context.Context, string) (onboarding.AccountState, error) {
		return onboarding.AccountState{}, onboarding.ErrAccountGone.WithCause(errors.New("stripe: status 403, code account_invalid"))
	}}
	ev := onboarding.AccountEvent{ID: "evt_2", Type: "capability.updated", Created: testNow, AccountID: "acct_1", Capability: "transfers", CapabilityStatus: "pending"}
	if _, err := newService(store, connect, testPolicy()).HandleEvent(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	if len(changes) != 2 {
		t.Fatalf("writes %+v, want the tied event and then the deauthorization", changes)
	}
	if c := changes[1]; c.Kind != onboarding.ChangeDeauthorize || c.Cause != onboarding.CauseAccountInvalid || c.EventID != "evt_2" || c.AccountID != "acct_1" {
		t.Errorf("second write %+v, want the account deauthorized (cause account_invalid) under the event's id", c)
	}
}

// The digest the store compares ties with says whether two states say the same, however
// their empty lists and maps were decoded.
func TestStateDigestTellsStatesApartAndNotTheirEncodings(t *testing.T) {
	deadline := testNow.Add(time.Hour)
	base := onboarding.AccountState{DetailsSubmitted: true, Requirements: onboarding.Requirements{CurrentlyDue: []string{"x"}, CurrentDeadline: &deadline},
		Capabilities: map[string]string{"transfers": "active"}}
	same := base
	same.Requirements.PastDue, same.FutureRequirements = []string{}, &onboarding.Requirements{}
	for name, other := range map[string]onboarding.AccountState{
		"a capability's status": {DetailsSubmitted: true, Requirements: base.Requirements, Capabilities: map[string]string{"transfers": "pending"}},
		"another capability":    {DetailsSubmitted: true, Requirements: base.Requirements, Capabilities: map[string]string{"transfers": "active", "card_payments": "active"}},
		"a flag":                {DetailsSubmitted: true, PayoutsEnabled: true, Requirements: base.Requirements, Capabilities: base.Capabilities},
		"a requirement":         {DetailsSubmitted: true, Capabilities: base.Capabilities},
	} {
		if onboarding.StateDigest(other) == onboarding.StateDigest(base) {
			t.Errorf("states differing in %s have one digest", name)
		}
	}
	if onboarding.StateDigest(same) != onboarding.StateDigest(base) {
		t.Error("empty and missing lists give different digests")
	}
}

// The read that settles a tie ends early enough for the write after it: a function that
// runs out of time answers 5xx, and Stripe must deliver again only when our storage failed.
func TestATiesStripeReadLeavesTimeToStore(t *testing.T) {
	var readDeadline time.Time
	var writes []onboarding.StateChange
	store := &storeFake{ApplyEventFn: func(_ context.Context, c onboarding.StateChange) (onboarding.EventOutcome, error) {
		writes = append(writes, c)
		if c.SettleTies {
			return onboarding.OutcomeTied, nil
		}
		return onboarding.OutcomeApplied, nil
	}}
	connect := &connectFake{GetAccountFn: func(ctx context.Context, _ string) (onboarding.AccountState, error) {
		readDeadline, _ = ctx.Deadline()
		return onboarding.AccountState{}, ctx.Err()
	}}
	ev := onboarding.AccountEvent{ID: "evt_1", Type: "account.updated", Created: testNow, AccountID: "acct_1", State: &onboarding.AccountState{DetailsSubmitted: true}, PlatformUserID: "u1"}
	for _, left := range []time.Duration{10 * time.Second, time.Second} {
		writes = nil
		deadline := time.Now().Add(left)
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		got, err := newService(store, connect, testPolicy()).HandleEvent(ctx, ev)
		cancel()
		if err != nil || !readDeadline.Equal(deadline.Add(-3*time.Second)) || len(writes) != 2 {
			t.Fatalf("%v left: outcome %q err %v, read until %v, want %v, then a write", left, got, err, readDeadline, deadline.Add(-3*time.Second))
		}
		if left == time.Second && (got != onboarding.OutcomeApplied || !writes[1].State.DetailsSubmitted) {
			t.Errorf("no time left to read: %q with %+v, want the event's own state kept", got, writes[1])
		}
	}
}
