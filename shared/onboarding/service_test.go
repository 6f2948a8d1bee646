package onboarding_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/connectexpress/onboarding/shared/onboarding"
)

// GET /accounts/me?refresh=true reads Stripe at most once per account per interval and stores
// what it read; otherwise, and for a disconnected account, the stored state answers.
func TestStatusRefreshReadsStripeOncePerIntervalAndStoresIt(t *testing.T) {
	stored := onboarding.AccountRecord{UserID: "u1", AccountID: "acct_1", ServiceAgreement: onboarding.AgreementFull}
	fresh := onboarding.AccountState{DetailsSubmitted: true, ChargesEnabled: true, PayoutsEnabled: true}
	storeDown := onboarding.StorageFailed(errors.New("throttled"))
	tests := []struct {
		name         string
		refresh      bool
		deauthorized bool
		slotFree     bool
		slotErr      error
		readErr      error
		saveErr      error
		wantRead     bool
		wantStatus   onboarding.Status
		wantErr      error
	}{
		{name: "without refresh: the stored state", refresh: false, slotFree: true, wantStatus: onboarding.StatusOnboarding},
		{name: "refresh: Stripe's state, stored", refresh: true, slotFree: true, wantRead: true, wantStatus: onboarding.StatusActive},
		{name: "refresh within the interval: the stored state", refresh: true, slotFree: false, wantStatus: onboarding.StatusOnboarding},
		{name: "refresh of a disconnected account: the stored state", refresh: true, deauthorized: true, slotFree: true, wantStatus: onboarding.StatusDeauthorized},
		{name: "the limit cannot be read: storage unavailable", refresh: true, slotErr: storeDown, wantErr: onboarding.ErrStorageUnavailable},
		{name: "Stripe fails: stripe unavailable", refresh: true, slotFree: true, readErr: onboarding.ErrStripeUnavailable, wantRead: true, wantErr: onboarding.ErrStripeUnavailable},
		{name: "the read cannot be stored: storage unavailable", refresh: true, slotFree: true, saveErr: storeDown, wantRead: true, wantErr: onboarding.ErrStorageUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := stored
			rec.State.Deauthorized = tt.deauthorized
			var saved []int64
			store := &storeFake{
				GetUserFn: func(context.Context, string) (onboarding.UserRecord, error) {
					return onboarding.UserRecord{UserID: "u1", Account: &rec}, nil
				},
				TakeSlotFn: func(_ context.Context, key string, limit int, window time.Duration, _ time.Time) (bool, time.Time, error) {
					if key != "status#acct_1" || limit != 1 || window != testPolicy().StatusRefreshInterval {
						t.Errorf("limit %s %d per %v, want status#acct_1 1 per the refresh interval", key, limit, window)
					}
					return tt.slotFree, testNow, tt.slotErr
				},
				SaveStateFn: func(_ context.Context, _ string, st onboarding.AccountState, version int64, _ time.Time, _ onboarding.Cause) (onboarding.AccountRecord, error) {
					saved = append(saved, version)
					r := rec
					r.State = st
					return r, tt.saveErr
				},
			}
			read := false
			connect := &connectFake{GetAccountFn: func(_ context.Context, id string) (onboarding.AccountState, error) {
				read = true
				return fresh, tt.readErr
			}}
			acct, err := newService(store, connect, testPolicy()).GetAccount(context.Background(), onboarding.Caller{UserID: "u1"}, tt.refresh)
			if read != tt.wantRead {
				t.Errorf("Stripe read %v, want %v", read, tt.wantRead)
			}
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil || acct.ID != "acct_1" || acct.Status != tt.wantStatus {
				t.Fatalf("account %q %q err %v, want acct_1 %q", acct.ID, acct.Status, err, tt.wantStatus)
			}
			if tt.wantRead && (len(saved) != 1 || saved[0] != testNow.Unix()) {
				t.Errorf("saved at versions %v, want once at %d", saved, testNow.Unix())
			}
		})
	}
}

// A prefill update answers the account it changed, and a Stripe failure answers the failure,
// with the lease ended either way.
func TestAPrefillUpdateAnswersTheAccountOrStripesFailure(t *testing.T) {
	for _, stripeErr := range []error{nil, onboarding.ErrStripeUnavailable} {
		rec := onboarding.AccountRecord{UserID: "u1", AccountID: "acct_1", Country: "US"}
		ended := false
		store := &storeFake{
			GetUserFn: func(context.Context, string) (onboarding.UserRecord, error) {
				return onboarding.UserRecord{UserID: "u1", Account: &rec}, nil
			},
			BeginPrefillFn: func(context.Context, string, time.Time, onboarding.Lease) (onboarding.AccountRecord, bool, error) {
				return rec, true, nil
			},
			EndPrefillFn:    func(context.Context, string, onboarding.Lease) error { ended = true; return nil },
			TakeSlotFn:      allowSlot,
			RecordPrefillFn: func(context.Context, string, onboarding.Prefill) error { return nil },
		}
		connect := &connectFake{UpdateAccountFn: func(context.Context, string, onboarding.Prefill) error { return stripeErr }}
		acct, err := newService(store, connect, testPolicy()).UpdateAccount(context.Background(), onboarding.Caller{UserID: "u1"}, onboarding.UpdateAccountRequest{Email: ptr("new@example.com")})
		switch {
		case stripeErr == nil && (err != nil || acct.ID != "acct_1" || acct.Country != "US"):
			t.Errorf("update: account %+v err %v, want acct_1", acct, err)
		case stripeErr != nil && (!errors.Is(err, stripeErr) || acct.ID != ""):
			t.Errorf("update while Stripe fails: account %q err %v, want no account and %v", acct.ID, err, stripeErr)
		}
		if !ended {
			t.Errorf("Stripe said %v: the prefill lease was not ended", stripeErr)
		}
	}
}

// A prefill update that finds another's lease held answers update_in_progress at once, with
// Retry-After until that lease ends: it neither waits nor reads the table again, nor reaches
// Stripe.
func TestAPrefillUpdateFindingAnothersLeaseAnswersUpdateInProgressAtOnce(t *testing.T) {
	rec := onboarding.AccountRecord{UserID: "u1", AccountID: "acct_1"}
	held := rec
	held.PrefillLease = onboarding.Lease{ID: "other", Until: testNow.Add(10*time.Second + 300*time.Millisecond)}
	attempts := 0
	store := &storeFake{
		GetUserFn: func(context.Context, string) (onboarding.UserRecord, error) {
			return onboarding.UserRecord{UserID: "u1", Account: &rec}, nil
		},
		BeginPrefillFn: func(context.Context, string, time.Time, onboarding.Lease) (onboarding.AccountRecord, bool, error) {
			attempts++
			return held, false, nil
		},
		TakeSlotFn: allowSlot,
	}
	connect := &connectFake{UpdateAccountFn: func(context.Context, string, onboarding.Prefill) error {
		t.Fatal("an update that never got the lease reached Stripe")
		return nil
	}}
	waits := 0
	svc := onboarding.NewService(store, connect, testPolicy(), onboarding.WithClock(func() time.Time { return testNow }),
		onboarding.WithSleep(func(ctx context.Context, d time.Duration) error {
			if waits++; waits > 3 {
				return context.DeadlineExceeded // the old wait loop polled until its request ended
			}
			return nil
		}))
	_, err := svc.UpdateAccount(context.Background(), onboarding.Caller{UserID: "u1"}, onboarding.UpdateAccountRequest{Email: ptr("new@example.com")})
	e, ok := onboarding.AsError(err)
	if !ok || !errors.Is(err, onboarding.ErrUpdateInProgress) || e.Kind != onboarding.KindConflict || e.RetryAfter != 10*time.Second+300*time.Millisecond {
		t.Fatalf("err %v, want update_in_progress (a conflict) retrying when the other lease ends, in 10.3s", err)
	}
	if waits != 0 || attempts != 1 {
		t.Fatalf("%d waits and %d tries for the lease, want one try and no wait", waits, attempts)
	}
}

// The account shows the country Stripe answered with, or the one asked for when Stripe's
// answer leaves it out.
func TestACreatedAccountShowsItsCountry(t *testing.T) {
	for _, tt := range []struct{ stripeSays, want string }{{"DE", "DE"}, {"", "GB"}} {
		connect := &connectFake{CreateAccountFn: func(context.Context, onboarding.CreateAccountParams, string) (onboarding.CreatedAccount, error) {
			return onboarding.CreatedAccount{ID: "acct_new", Country: tt.stripeSays}, nil
		}}
		acct, _, err := newService(emptyStore(), connect, testPolicy()).CreateAccount(context.Background(), onboarding.Caller{UserID: "u1"}, onboarding.CreateAccountRequest{Country: ptr("GB")})
		if err != nil || acct.Country != tt.want {
			t.Errorf("Stripe says %q: country %q (err %v), want %q", tt.stripeSays, acct.Country, err, tt.want)
		}
	}
}

// An error's text, which only logs see, names its code and message, and its cause if any.
func TestAnErrorsLogTextNamesCodeMessageAndCause(t *testing.T) {
	if got, want := onboarding.ErrNotFound.Error(), "not_found: no connected account exists for this user"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	got := onboarding.StorageFailed(errors.New("ThrottlingException")).Error()
	if !strings.HasPrefix(got, "storage_unavailable: ") || !strings.HasSuffix(got, ": ThrottlingException") {
		t.Errorf("Error() = %q, want the code, the message and the cause", got)
	}
}
