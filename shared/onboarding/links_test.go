package onboarding_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connectexpress/onboarding/internal/memstore"
	"github.com/connectexpress/onboarding/shared/onboarding"
)

func TestParseRefreshTokenAcceptsOnlyIssuedShapes(t *testing.T) {
	good := strings.Repeat("A", 43)
	for _, tt := range []struct {
		raw string
		ok  bool
	}{
		{good, true}, {"", false}, {good + "A", false}, {good[:42], false},
		{strings.Repeat("A", 42) + "=", false}, {strings.Repeat("A", 42) + "/", false}, {"../../etc/passwd", false},
	} {
		if _, ok := onboarding.ParseRefreshToken(tt.raw); ok != tt.ok {
			t.Errorf("ParseRefreshToken(%q) ok=%v, want %v", tt.raw, ok, tt.ok)
		}
	}
}

// linkWorld is the in-memory store with one user's account, a clock the
// test moves, and a Stripe fake that issues links (or fails).
type linkWorld struct {
	store   *memstore.Store
	mu      sync.Mutex
	now     time.Time
	links   []onboarding.LinkRequest
	linkErr error
	policy  onboarding.Policy
	// sessions are the components of each Account Session Stripe made;
	// sessionErr fails the next ones.
	sessions   [][]string
	sessionErr error
}

func newLinkWorld(t *testing.T) *linkWorld {
	t.Helper()
	w := &linkWorld{store: memstore.New(), now: testNow, policy: testPolicy()}
	ctx := context.Background()
	claim := onboarding.CreationClaim{ClaimID: "c1", LeaseUntil: testNow.Add(time.Minute)}
	if err := w.store.ClaimCreation(ctx, "u1", claim, testNow); err != nil {
		t.Fatal(err)
	}
	if err := w.store.CompleteCreation(ctx, onboarding.AccountRecord{UserID: "u1", AccountID: "acct_1", StateVersion: testNow.Unix()}, "c1"); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *linkWorld) clock() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.now
}

func (w *linkWorld) advance(d time.Duration) {
	w.mu.Lock()
	w.now = w.now.Add(d)
	w.mu.Unlock()
}

func (w *linkWorld) service() *onboarding.Service {
	connect := &connectFake{LinkFn: func(_ context.Context, r onboarding.LinkRequest) (onboarding.OnboardingLink, error) {
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.linkErr != nil {
			return onboarding.OnboardingLink{}, w.linkErr
		}
		w.links = append(w.links, r)
		return onboarding.OnboardingLink{URL: "https://connect.stripe.com/setup/e/acct_1/x", ExpiresAt: w.now.Add(5 * time.Minute)}, nil
	}, DashboardFn: func(context.Context, string) (string, error) { return "https://connect.stripe.com/express/acct_1", nil },
		SessionFn: func(_ context.Context, id string, components []string) (onboarding.AccountSession, error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			if w.sessionErr != nil {
				return onboarding.AccountSession{}, w.sessionErr
			}
			if id != "acct_1" {
				return onboarding.AccountSession{}, errors.New("session for the wrong account " + id)
			}
			w.sessions = append(w.sessions, components)
			return onboarding.AccountSession{ClientSecret: "accs_secret__x", ExpiresAt: w.now.Add(30 * time.Minute)}, nil
		}}
	return onboarding.NewService(w.store, connect, w.policy, onboarding.WithClock(w.clock),
		// Waiting for a lease moves the test's clock instead of sleeping.
		onboarding.WithSleep(func(_ context.Context, d time.Duration) error { w.advance(d); return nil }))
}

func (w *linkWorld) linkCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.links)
}

func (w *linkWorld) lastToken(t *testing.T) string {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	return tokenOf(t, w.links[len(w.links)-1].RefreshURL)
}

func (w *linkWorld) setLinkErr(err error) {
	w.mu.Lock()
	w.linkErr = err
	w.mu.Unlock()
}

func (w *linkWorld) record(t *testing.T) onboarding.AccountRecord {
	t.Helper()
	u, err := w.store.GetUser(context.Background(), "u1")
	if err != nil || u.Account == nil {
		t.Fatalf("GetUser: %+v %v", u, err)
	}
	return *u.Account
}

func tokenOf(t *testing.T, refreshURL string) string {
	t.Helper()
	u, err := url.Parse(refreshURL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get("token")
}

var u1 = onboarding.Caller{UserID: "u1"}

func page(code string) string { return "https://frontend.example/onboarding?error=" + code }

func TestOnboardingLinkCarriesAFreshSingleUseToken(t *testing.T) {
	w := newLinkWorld(t)
	svc := w.service()
	if _, err := svc.CreateOnboardingLink(context.Background(), u1); err != nil {
		t.Fatal(err)
	}
	req := w.links[0]
	if req.ReturnURL != "https://frontend.example/onboarding/return" || !strings.HasPrefix(req.RefreshURL, "https://api.example/onboarding/refresh?token=") {
		t.Fatalf("link urls %+v do not come from the policy", req)
	}
	token := tokenOf(t, req.RefreshURL)
	location, err := svc.RefreshOnboardingLink(context.Background(), token)
	if err != nil || location != "https://connect.stripe.com/setup/e/acct_1/x" {
		t.Fatalf("refresh = %q, %v", location, err)
	}
	if next := tokenOf(t, w.links[1].RefreshURL); next == token || w.links[1].AccountID != "acct_1" {
		t.Fatalf("the new link must carry a new token for the same account")
	}
	location, err = svc.RefreshOnboardingLink(context.Background(), token)
	if !errors.Is(err, onboarding.ErrTokenInvalid) || location != page("link_expired") {
		t.Fatalf("reused token: %q, %v", location, err)
	}
}

func TestRefreshWithBadTokenNeverCallsStoreOrStripe(t *testing.T) {
	svc := newService(&storeFake{}, &connectFake{}, testPolicy()) // nil fields panic if called
	for _, raw := range []string{"", "short", strings.Repeat("!", 43), "https://evil.example"} {
		location, err := svc.RefreshOnboardingLink(context.Background(), raw)
		if !errors.Is(err, onboarding.ErrTokenInvalid) || location != page("link_expired") {
			t.Errorf("%q: %q, %v", raw, location, err)
		}
	}
}

func TestStripeFailureWhileRedeemingKeepsTheToken(t *testing.T) {
	w := newLinkWorld(t)
	svc := w.service()
	if _, err := svc.CreateOnboardingLink(context.Background(), u1); err != nil {
		t.Fatal(err)
	}
	token := w.lastToken(t)
	w.setLinkErr(onboarding.ErrStripeUnavailable)
	location, err := svc.RefreshOnboardingLink(context.Background(), token)
	if !errors.Is(err, onboarding.ErrStripeUnavailable) || location != page("stripe_unavailable") {
		t.Fatalf("during the outage: %q, %v", location, err)
	}
	w.setLinkErr(nil)
	if location, err := svc.RefreshOnboardingLink(context.Background(), token); err != nil || !strings.HasPrefix(location, "https://connect.stripe.com/") {
		t.Fatalf("after Stripe recovered: %q, %v", location, err)
	}
}

func TestConcurrentRedemptionsOfOneTokenMakeOneLink(t *testing.T) {
	w := newLinkWorld(t)
	svc := w.service()
	if _, err := svc.CreateOnboardingLink(context.Background(), u1); err != nil {
		t.Fatal(err)
	}
	token := w.lastToken(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	toStripe := 0
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if loc, err := svc.RefreshOnboardingLink(context.Background(), token); err == nil {
				mu.Lock()
				toStripe++
				mu.Unlock()
			} else if loc != page("link_expired") {
				t.Errorf("loser redirected to %q", loc)
			}
		}()
	}
	wg.Wait()
	if toStripe != 1 || w.linkCount() != 2 {
		t.Fatalf("%d redemptions made links (%d link requests), want 1 (2)", toStripe, w.linkCount())
	}
}

func TestLinksAreLimitedPerUserPerRollingHour(t *testing.T) {
	w := newLinkWorld(t)
	w.policy.LinksPerHour = 2
	svc := w.service()
	ctx := context.Background()
	if _, err := svc.CreateOnboardingLink(ctx, u1); err != nil {
		t.Fatal(err)
	}
	w.advance(20 * time.Minute)
	if _, err := svc.CreateOnboardingLink(ctx, u1); err != nil {
		t.Fatal(err)
	}
	token := w.lastToken(t)
	w.advance(20 * time.Minute)
	_, err := svc.CreateOnboardingLink(ctx, u1)
	e, ok := onboarding.AsError(err)
	if !ok || e.Code != "rate_limited" || e.RetryAfter != 20*time.Minute {
		t.Fatalf("third link in an hour: %v (retry after %v), want rate_limited after 20m, when the first leaves the hour", err, e.RetryAfter)
	}
	if _, err := svc.CreateDashboardLink(ctx, u1); !errors.Is(err, onboarding.ErrOnboardingIncomplete) {
		t.Fatalf("dashboard before details: %v", err) // checked before the limit: no Stripe call either way
	}
	location, err := svc.RefreshOnboardingLink(ctx, token)
	if location != page("rate_limited") || err == nil {
		t.Fatalf("refresh over the limit: %q, %v", location, err)
	}
	if w.linkCount() != 2 {
		t.Fatalf("%d link requests reached Stripe, want 2", w.linkCount())
	}
	w.advance(20 * time.Minute) // the first link left the rolling hour
	if location, err := svc.RefreshOnboardingLink(ctx, token); err != nil || !strings.HasPrefix(location, "https://connect.stripe.com/") {
		t.Fatalf("the same token once the limit has room: %q, %v", location, err)
	}
}

func TestDashboardLinksCountAgainstTheSameLimit(t *testing.T) {
	w := newLinkWorld(t)
	w.policy.LinksPerHour = 1
	if _, err := w.store.SaveState(context.Background(), "u1", onboarding.AccountState{DetailsSubmitted: true}, testNow.Unix()+1, testNow, onboarding.CauseRefresh); err != nil {
		t.Fatal(err)
	}
	svc := w.service()
	if _, err := svc.CreateDashboardLink(context.Background(), u1); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateOnboardingLink(context.Background(), u1); !errors.Is(err, onboarding.ErrRateLimited) {
		t.Fatalf("onboarding link after the hour's login link: %v, want rate_limited", err)
	}
}

func TestAFirstLinkRequestLocksPrefillBeforeStripeIsAsked(t *testing.T) {
	w := newLinkWorld(t)
	w.setLinkErr(onboarding.ErrStripeUnavailable)
	if _, err := w.service().CreateOnboardingLink(context.Background(), u1); err == nil {
		t.Fatal("want the Stripe error")
	}
	// Stripe may have made the link before failing: prefill stays locked.
	if rec := w.record(t); !rec.FirstLinkAt.Equal(testNow) {
		t.Fatalf("first link at %v, want %v", rec.FirstLinkAt, testNow)
	}
	_, err := w.service().UpdateAccount(context.Background(), u1, onboarding.UpdateAccountRequest{Email: ptr("late@example.com")})
	if !errors.Is(err, onboarding.ErrKYCLocked) {
		t.Fatalf("PATCH after a requested link: %v", err)
	}
}

func TestALinkWaitsForAPrefillUpdateOnItsWay(t *testing.T) {
	w := newLinkWorld(t)
	ctx := context.Background()
	lease := onboarding.Lease{ID: "patch", Until: testNow.Add(3 * time.Second)}
	if _, taken, err := w.store.BeginPrefill(ctx, "u1", testNow, lease); err != nil || !taken {
		t.Fatalf("BeginPrefill: %v %v", taken, err)
	}
	if _, err := w.service().CreateOnboardingLink(ctx, u1); err != nil {
		t.Fatal(err)
	}
	if rec := w.record(t); rec.FirstLinkAt.Before(lease.Until) {
		t.Fatalf("locked at %v, while the prefill update held its lease until %v", rec.FirstLinkAt, lease.Until)
	}
}

func TestRefreshLinksLockPrefillToo(t *testing.T) {
	w := newLinkWorld(t)
	ctx := context.Background()
	token := strings.Repeat("T", 43)
	if err := w.store.PutRefreshToken(ctx, onboarding.RefreshToken{Hash: sha256Hex(token), UserID: "u1", AccountID: "acct_1", ExpiresAt: testNow.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.service().RefreshOnboardingLink(ctx, token); err != nil {
		t.Fatal(err)
	}
	if w.record(t).FirstLinkAt.IsZero() {
		t.Fatal("a link issued through the refresh route did not lock prefill")
	}
}

func TestAccountsThatCannotOnboardGetNoLink(t *testing.T) {
	rejected := "rejected.fraud"
	for _, tc := range []struct {
		name    string
		state   onboarding.AccountState
		wantErr error
	}{
		{"rejected", onboarding.AccountState{DetailsSubmitted: true, Requirements: onboarding.Requirements{DisabledReason: &rejected}}, onboarding.ErrRejected},
		{"deauthorized", onboarding.AccountState{Deauthorized: true}, onboarding.ErrDeauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newLinkWorld(t)
			svc := w.service()
			ctx := context.Background()
			if _, err := svc.CreateOnboardingLink(ctx, u1); err != nil {
				t.Fatal(err)
			}
			token := w.lastToken(t)
			if tc.state.Deauthorized {
				if _, err := w.store.ApplyEvent(ctx, onboarding.StateChange{EventID: "evt_d", UserID: "u1", AccountID: "acct_1", Kind: onboarding.ChangeDeauthorize, Version: testNow.Unix() + 1, Now: testNow}); err != nil {
					t.Fatal(err)
				}
			} else if _, err := w.store.SaveState(ctx, "u1", tc.state, testNow.Unix()+1, testNow, onboarding.CauseRefresh); err != nil {
				t.Fatal(err)
			}
			if _, err := svc.CreateOnboardingLink(ctx, u1); !errors.Is(err, tc.wantErr) {
				t.Fatalf("POST onboarding-link: %v, want %v", err, tc.wantErr)
			}
			location, err := svc.RefreshOnboardingLink(ctx, token)
			if !errors.Is(err, onboarding.ErrAccountUnavailable) || location != page("account_unavailable") {
				t.Fatalf("refresh: %q, %v", location, err)
			}
			if w.linkCount() != 1 {
				t.Fatalf("%d link requests, want only the first", w.linkCount())
			}
		})
	}
}

// A conditional put that the SDK retried after its answer was lost finds
// its own item: for a random 256-bit token that is success, not a 500.
func TestARetriedTokenWriteThatFindsItselfStillLinks(t *testing.T) {
	store := &storeFake{
		GetUserFn: func(context.Context, string) (onboarding.UserRecord, error) {
			return onboarding.UserRecord{UserID: "u1", Account: &onboarding.AccountRecord{UserID: "u1", AccountID: "acct_1", FirstLinkAt: testNow}}, nil
		},
		TakeSlotFn: func(context.Context, string, int, time.Duration, time.Time) (bool, time.Time, error) {
			return true, testNow, nil
		},
		PutRefreshTokenFn: func(context.Context, onboarding.RefreshToken) error { return onboarding.ErrConflict },
	}
	connect := &connectFake{LinkFn: func(context.Context, onboarding.LinkRequest) (onboarding.OnboardingLink, error) {
		return onboarding.OnboardingLink{URL: "https://connect.stripe.com/setup/e/acct_1/x"}, nil
	}}
	if _, err := newService(store, connect, testPolicy()).CreateOnboardingLink(context.Background(), u1); err != nil {
		t.Fatalf("err = %v, want the link", err)
	}
}

// Stripe's hosted onboarding omits future_requirements unless the link asks
// for them: both routes that mint links ask whenever the stored account has
// any, and only then; the fields to collect always come from the policy.
func TestLinksIncludeFutureRequirementsWhenTheAccountHasThem(t *testing.T) {
	deadline := testNow.Add(30 * 24 * time.Hour)
	tests := []struct {
		name   string
		future *onboarding.Requirements
		want   bool
	}{
		{"no future requirements hash", nil, false},
		{"an empty future requirements hash", &onboarding.Requirements{CurrentlyDue: []string{}, EventuallyDue: []string{}}, false},
		{"only under verification: nothing to provide", &onboarding.Requirements{PendingVerification: []string{"individual.verification.document"}}, false},
		{"currently due by a deadline", &onboarding.Requirements{CurrentlyDue: []string{"individual.verification.additional_document"}, CurrentDeadline: &deadline}, true},
		{"past due", &onboarding.Requirements{PastDue: []string{"company.tax_id"}}, true},
		{"eventually due", &onboarding.Requirements{EventuallyDue: []string{"individual.id_number"}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newLinkWorld(t)
			ctx := context.Background()
			st := onboarding.AccountState{DetailsSubmitted: true, PayoutsEnabled: true, FutureRequirements: tt.future}
			if _, err := w.store.SaveState(ctx, "u1", st, testNow.Unix()+1, testNow, onboarding.CauseRefresh); err != nil {
				t.Fatal(err)
			}
			svc := w.service()
			if _, err := svc.CreateOnboardingLink(ctx, u1); err != nil {
				t.Fatal(err)
			}
			if _, err := svc.RefreshOnboardingLink(ctx, w.lastToken(t)); err != nil {
				t.Fatal(err)
			}
			for i, req := range w.links {
				if req.IncludeFutureRequirements != tt.want || req.CollectFields != w.policy.CollectFields {
					t.Errorf("link %d: IncludeFutureRequirements %v, CollectFields %q; want %v, %q",
						i, req.IncludeFutureRequirements, req.CollectFields, tt.want, w.policy.CollectFields)
				}
			}
		})
	}
}

// TestAFirstLinkWhoseKYCLockFailsIsNotIssued: Stripe locks prefill once a
// link exists, so a link must not be asked for unless the lock is stored.
func TestAFirstLinkWhoseKYCLockFailsIsNotIssued(t *testing.T) {
	rec := onboarding.AccountRecord{UserID: "u1", AccountID: "acct_1", StateVersion: testNow.Unix()}
	storeDown := onboarding.StorageFailed(errors.New("throttled"))
	store := &storeFake{
		GetUserFn: func(context.Context, string) (onboarding.UserRecord, error) {
			return onboarding.UserRecord{UserID: "u1", Account: &rec}, nil
		},
		TakeSlotFn: allowSlot,
		LockPrefillFn: func(context.Context, string, string, time.Time) (onboarding.AccountRecord, bool, error) {
			return rec, false, storeDown
		},
		PutRefreshTokenFn: func(context.Context, onboarding.RefreshToken) error { return nil },
	}
	asked := 0
	connect := &connectFake{LinkFn: func(context.Context, onboarding.LinkRequest) (onboarding.OnboardingLink, error) {
		asked++
		return onboarding.OnboardingLink{URL: "https://connect.stripe.com/setup/e/acct_1/x"}, nil
	}}
	if _, err := newService(store, connect, testPolicy()).CreateOnboardingLink(context.Background(), u1); !errors.Is(err, storeDown) {
		t.Errorf("link with the KYC lock failing: %v, want the store's error", err)
	}
	if asked != 0 {
		t.Errorf("Stripe was asked for %d links without the KYC lock stored, want 0", asked)
	}
}
