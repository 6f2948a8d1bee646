package onboarding_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connectexpress/onboarding/shared/onboarding"
)

// bounceWindow is the window the tests run with.
const bounceWindow = 30 * time.Second

// bounceWorld is linkWorld with a Stripe that can be read: what it says of
// the account (or the error it answers), and how often it was read.
type bounceWorld struct {
	*linkWorld
	mu     sync.Mutex
	state  onboarding.AccountState
	getErr error
	reads  int
}

func newBounceWorld(t *testing.T) (*bounceWorld, *onboarding.Service) {
	t.Helper()
	w := &bounceWorld{linkWorld: newLinkWorld(t)}
	w.policy.RefreshBounceWindow = bounceWindow
	connect := &connectFake{
		LinkFn: func(_ context.Context, r onboarding.LinkRequest) (onboarding.OnboardingLink, error) {
			w.linkWorld.mu.Lock()
			defer w.linkWorld.mu.Unlock()
			if w.linkErr != nil {
				return onboarding.OnboardingLink{}, w.linkErr
			}
			w.links = append(w.links, r)
			return onboarding.OnboardingLink{URL: "https://connect.stripe.com/setup/e/acct_1/x", ExpiresAt: w.now.Add(5 * time.Minute)}, nil
		},
		GetAccountFn: func(context.Context, string) (onboarding.AccountState, error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.reads++
			return w.state, w.getErr
		},
	}
	return w, onboarding.NewService(w.store, connect, w.policy, onboarding.WithClock(w.clock),
		onboarding.WithSleep(func(_ context.Context, d time.Duration) error { w.advance(d); return nil }))
}

func (w *bounceWorld) stripe(state onboarding.AccountState, err error) {
	w.mu.Lock()
	w.state, w.getErr = state, err
	w.mu.Unlock()
}

func (w *bounceWorld) readCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.reads
}

var rejectedAtStripe = onboarding.AccountState{DetailsSubmitted: true,
	Requirements: onboarding.Requirements{DisabledReason: ptr("rejected.fraud")}}

// A refresh moments after its link was minted is Stripe bouncing the link
// straight back. The account is read from Stripe before another link is
// made, and what Stripe says is stored: a rejected or gone account ends the
// chain on account_unavailable, a failed read leaves the token usable.
func TestABounceReadsTheAccountFromStripeBeforeMinting(t *testing.T) {
	tests := []struct {
		name        string
		after       time.Duration // from the link's minting to the refresh
		state       onboarding.AccountState
		getErr      error
		wantPage    string // the ?error= code, "" for a fresh Stripe link
		wantReads   int
		wantLinks   int // links made by the refresh
		wantStatus  onboarding.Status
		tokenUsable bool // the token redeems again once Stripe answers
	}{
		{name: "rejected at Stripe, its webhook not here yet: account_unavailable, no link",
			after: time.Second, state: rejectedAtStripe, wantPage: "account_unavailable", wantReads: 1, wantStatus: onboarding.StatusRejected},
		{name: "gone at Stripe (403 account_invalid): account_unavailable, stored deauthorized",
			after: time.Second, getErr: onboarding.ErrAccountGone, wantPage: "account_unavailable", wantReads: 1, wantStatus: onboarding.StatusDeauthorized},
		{name: "Stripe still onboards it: one read, then the link",
			after: time.Second, state: onboarding.AccountState{}, wantReads: 1, wantLinks: 1, wantStatus: onboarding.StatusOnboarding},
		{name: "Stripe cannot be read: stripe_unavailable, and the token stays usable",
			after: time.Second, getErr: onboarding.ErrStripeUnavailable, wantPage: "stripe_unavailable", wantReads: 1,
			wantStatus: onboarding.StatusOnboarding, tokenUsable: true},
		{name: "just inside the window: still a bounce",
			after: bounceWindow - time.Second, state: rejectedAtStripe, wantPage: "account_unavailable", wantReads: 1, wantStatus: onboarding.StatusRejected},
		{name: "past the window: an expired or used link, a link without reading Stripe",
			after: bounceWindow, state: rejectedAtStripe, wantReads: 0, wantLinks: 1, wantStatus: onboarding.StatusOnboarding},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, svc := newBounceWorld(t)
			ctx := context.Background()
			if _, err := svc.CreateOnboardingLink(ctx, u1); err != nil {
				t.Fatal(err)
			}
			token := w.lastToken(t)
			w.stripe(tt.state, tt.getErr)
			w.advance(tt.after)

			location, _ := svc.RefreshOnboardingLink(ctx, token)
			if tt.wantPage == "" {
				if !strings.HasPrefix(location, "https://connect.stripe.com/") {
					t.Errorf("redirected to %s, want a fresh Stripe link", location)
				}
			} else if want := w.policy.ErrorPage(tt.wantPage); location != want {
				t.Errorf("redirected to %s, want %s", location, want)
			}
			if got := w.readCount(); got != tt.wantReads {
				t.Errorf("%d Stripe reads, want %d", got, tt.wantReads)
			}
			if got := w.linkCount() - 1; got != tt.wantLinks {
				t.Errorf("%d links made by the refresh, want %d", got, tt.wantLinks)
			}
			if got := w.record(t).Account(w.clock()).Status; got != tt.wantStatus {
				t.Errorf("stored status %s, want %s", got, tt.wantStatus)
			}
			if tt.tokenUsable {
				w.stripe(onboarding.AccountState{}, nil)
				if again, err := svc.RefreshOnboardingLink(ctx, token); err != nil || !strings.HasPrefix(again, "https://connect.stripe.com/") {
					t.Errorf("the token again: %s %v, want a link", again, err)
				}
			}
		})
	}
}

// Stripe sends every link of an account it rejected straight back to
// refresh_url. Whenever the user opens the first link, the chain ends on
// account_unavailable within two hops, with at most one extra link: a
// refresh past the window mints one, and its bounce is caught.
func TestARejectedAccountsRefreshChainEndsWithinTwoHops(t *testing.T) {
	for _, opened := range []time.Duration{time.Second, time.Minute, 10 * time.Minute} {
		t.Run("first link opened after "+opened.String(), func(t *testing.T) {
			w, svc := newBounceWorld(t)
			ctx := context.Background()
			if _, err := svc.CreateOnboardingLink(ctx, u1); err != nil {
				t.Fatal(err)
			}
			w.stripe(rejectedAtStripe, nil) // the rejection's webhook never comes
			w.advance(opened)
			location := ""
			hops := 0
			for hops < 10 {
				hops++
				var err error
				location, err = svc.RefreshOnboardingLink(ctx, w.lastToken(t))
				if !strings.HasPrefix(location, "https://connect.stripe.com/") {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				w.advance(time.Second) // Stripe bounces the new link at once
			}
			if location != w.policy.ErrorPage("account_unavailable") || hops > 2 {
				t.Fatalf("after %d hops at %s, want account_unavailable within 2", hops, location)
			}
			if extra := w.linkCount() - 1; extra > 1 {
				t.Errorf("%d extra links, want at most 1", extra)
			}
		})
	}
}

// A refresh URL minted by a refresh keeps its chain's first expiry
// (DESIGN.md): refreshing never extends how long a chain of links lives.
func TestALinkMintedByARefreshKeepsItsChainsExpiry(t *testing.T) {
	w, svc := newBounceWorld(t)
	ctx := context.Background()
	if _, err := svc.CreateOnboardingLink(ctx, u1); err != nil {
		t.Fatal(err)
	}
	w.advance(w.policy.RefreshTokenTTL - time.Hour)
	if location, err := svc.RefreshOnboardingLink(ctx, w.lastToken(t)); err != nil || !strings.HasPrefix(location, "https://connect.stripe.com/") {
		t.Fatalf("refresh within the chain's life: %s %v", location, err)
	}
	w.advance(2 * time.Hour)
	location, err := svc.RefreshOnboardingLink(ctx, w.lastToken(t))
	if !errors.Is(err, onboarding.ErrTokenInvalid) || location != w.policy.ErrorPage("link_expired") {
		t.Errorf("refresh past the chain's first expiry: %s %v, want link_expired", location, err)
	}
}

// The bounce's read is a Stripe call like the link it precedes: past the
// user's LINKS_PER_HOUR the refresh is rate_limited before either, and the
// token stays usable.
func TestABounceOverTheLinkLimitCallsStripeNotAtAll(t *testing.T) {
	w, _ := newBounceWorld(t)
	w.policy.LinksPerHour = 1
	svc := onboarding.NewService(w.store, &connectFake{
		LinkFn: func(_ context.Context, r onboarding.LinkRequest) (onboarding.OnboardingLink, error) {
			w.linkWorld.mu.Lock()
			defer w.linkWorld.mu.Unlock()
			w.links = append(w.links, r)
			return onboarding.OnboardingLink{URL: "https://connect.stripe.com/setup/e/acct_1/x"}, nil
		},
		GetAccountFn: func(context.Context, string) (onboarding.AccountState, error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.reads++
			return rejectedAtStripe, nil
		},
	}, w.policy, onboarding.WithClock(w.clock))
	ctx := context.Background()
	if _, err := svc.CreateOnboardingLink(ctx, u1); err != nil {
		t.Fatal(err)
	}
	w.advance(time.Second)
	location, err := svc.RefreshOnboardingLink(ctx, w.lastToken(t))
	if !errors.Is(err, onboarding.ErrRateLimited) || location != w.policy.ErrorPage("rate_limited") {
		t.Errorf("redirected to %s (%v), want rate_limited", location, err)
	}
	if n := w.readCount(); n != 0 {
		t.Errorf("%d Stripe reads over the limit, want 0", n)
	}
}
