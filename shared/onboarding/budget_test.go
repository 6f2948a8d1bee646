package onboarding_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/connectexpress/onboarding/internal/memstore"
	"github.com/connectexpress/onboarding/shared/onboarding"
)

// writeCounter is a Stripe fake that counts account writes: prefill
// updates, and creations it refuses every time (as Stripe does for
// parameters it will not take).
type writeCounter struct{ updates, creations int }

func (c *writeCounter) connect() *connectFake {
	return &connectFake{
		UpdateAccountFn: func(context.Context, string, onboarding.Prefill) error { c.updates++; return nil },
		CreateAccountFn: func(context.Context, onboarding.CreateAccountParams, string) (onboarding.CreatedAccount, error) {
			c.creations++
			return onboarding.CreatedAccount{}, onboarding.ProviderRejected("business_profile.url", "Not a valid URL", errors.New("400"))
		},
	}
}

func TestPrefillUpdatesAreLimitedPerUserPerRollingHour(t *testing.T) {
	w := newLinkWorld(t)
	stripe := &writeCounter{}
	svc := onboarding.NewService(w.store, stripe.connect(), w.policy, onboarding.WithClock(w.clock))
	ctx := context.Background()
	var limited []time.Duration
	for i := range 15 {
		_, err := svc.UpdateAccount(ctx, u1, onboarding.UpdateAccountRequest{Email: ptr("new@example.com")})
		switch e, ok := onboarding.AsError(err); {
		case err == nil:
		case ok && errors.Is(err, onboarding.ErrRateLimited):
			limited = append(limited, e.RetryAfter)
		default:
			t.Fatalf("update %d: %v", i+1, err)
		}
		w.advance(time.Minute)
	}
	if stripe.updates != 10 || len(limited) != 5 {
		t.Fatalf("15 updates made %d Stripe updates and %d answers rate_limited, want 10 and 5", stripe.updates, len(limited))
	}
	// The first update left the rolling hour 60 minutes after it was made.
	if limited[0] != 50*time.Minute {
		t.Fatalf("the 11th update may retry after %v, want 50m, when the first leaves the hour", limited[0])
	}
	// Another user's budget is their own.
	other := onboarding.Caller{UserID: "u2"}
	claim := onboarding.CreationClaim{ClaimID: "c2", LeaseUntil: w.clock().Add(time.Minute)}
	if err := w.store.ClaimCreation(ctx, "u2", claim, w.clock()); err != nil {
		t.Fatal(err)
	}
	if err := w.store.CompleteCreation(ctx, onboarding.AccountRecord{UserID: "u2", AccountID: "acct_2", StateVersion: w.clock().Unix()}, "c2"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.UpdateAccount(ctx, other, onboarding.UpdateAccountRequest{Email: ptr("b@example.com")}); err != nil || stripe.updates != 11 {
		t.Fatalf("another user's update: %v, %d Stripe updates, want it made", err, stripe.updates)
	}
	w.advance(50 * time.Minute)
	if _, err := svc.UpdateAccount(ctx, u1, onboarding.UpdateAccountRequest{Email: ptr("new@example.com")}); err != nil {
		t.Fatalf("once the first update left the hour: %v", err)
	}
}

func TestCreationAttemptsAfterARefusalAreLimitedPerUser(t *testing.T) {
	store := memstore.New()
	now := testNow
	stripe := &writeCounter{}
	policy := testPolicy()
	policy.UpdatesPerHour = 3
	svc := onboarding.NewService(store, stripe.connect(), policy, onboarding.WithClock(func() time.Time { return now }))
	var answers []string
	for range 8 {
		_, _, err := svc.CreateAccount(context.Background(), u1, onboarding.CreateAccountRequest{})
		e, _ := onboarding.AsError(err)
		answers = append(answers, e.Code)
		if e.Code == "rate_limited" && (e.RetryAfter <= 0 || e.RetryAfter > time.Hour) {
			t.Fatalf("rate_limited with Retry-After %v, want within the hour", e.RetryAfter)
		}
		now = now.Add(time.Second)
	}
	// The first attempt is not counted: only the new Stripe writes a
	// refusal lets a caller repeat are.
	if stripe.creations != 4 {
		t.Fatalf("8 creations Stripe refuses made %d Stripe attempts (answers %v), want 4: the first and 3 retries", stripe.creations, answers)
	}
	for i, code := range answers {
		want := "stripe_invalid_request"
		if i >= 4 {
			want = "rate_limited"
		}
		if code != want {
			t.Fatalf("answers %v, want 4 stripe_invalid_request then rate_limited", answers)
		}
	}
}

// A creation the store already holds answers the account, budget or not:
// only a new Stripe write is counted.
func TestTheFirstCreationAttemptIsNotCounted(t *testing.T) {
	policy := testPolicy()
	store := emptyStore()
	store.TakeSlotFn = func(context.Context, string, int, time.Duration, time.Time) (bool, time.Time, error) {
		t.Fatal("the first creation attempt took a slot of the update budget")
		return false, time.Time{}, nil
	}
	var got onboarding.CreateAccountParams
	var key string
	if _, created, err := newService(store, capturingConnect(&got, &key), policy).CreateAccount(context.Background(), u1, onboarding.CreateAccountRequest{}); err != nil || !created {
		t.Fatalf("first creation: %v created=%v", err, created)
	}
	// Nor is a retry after a failure that may have created the account:
	// it replays the same key, which cannot make a second account.
	store.GetUserFn = func(context.Context, string) (onboarding.UserRecord, error) {
		return onboarding.UserRecord{UserID: "u1", Claim: &onboarding.CreationClaim{ClaimID: "old", CreationID: "kept", Params: &onboarding.CreateAccountParams{Country: "US"}}}, nil
	}
	if _, _, err := newService(store, capturingConnect(&got, &key), policy).CreateAccount(context.Background(), u1, onboarding.CreateAccountRequest{}); err != nil {
		t.Fatalf("replay: %v", err)
	}
}
