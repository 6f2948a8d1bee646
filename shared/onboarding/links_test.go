package onboarding_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

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

// linkWorld is a fake store and Stripe that issue and consume tokens.
type linkWorld struct {
	tokens    map[string]onboarding.RefreshToken
	links     []onboarding.LinkRequest
	marked    int
	firstLink time.Time
	linkErr   error
}

func (w *linkWorld) service() *onboarding.Service {
	store := &storeFake{
		GetUserFn: func(context.Context, string) (onboarding.UserRecord, error) {
			return onboarding.UserRecord{UserID: "u1", Account: &onboarding.AccountRecord{UserID: "u1", AccountID: "acct_1", FirstLinkAt: w.firstLink}}, nil
		},
		PutRefreshTokenFn: func(_ context.Context, tok onboarding.RefreshToken) error {
			w.tokens[tok.Hash] = tok
			return nil
		},
		ConsumeRefreshTokenFn: func(_ context.Context, hash string, now time.Time) (onboarding.RefreshToken, error) {
			tok, ok := w.tokens[hash]
			if !ok || !now.Before(tok.ExpiresAt) {
				return onboarding.RefreshToken{}, onboarding.ErrTokenInvalid
			}
			delete(w.tokens, hash)
			return tok, nil
		},
		MarkFirstLinkFn: func(context.Context, string, time.Time) error { w.marked++; return nil },
	}
	connect := &connectFake{LinkFn: func(_ context.Context, r onboarding.LinkRequest) (onboarding.OnboardingLink, error) {
		if w.linkErr != nil {
			return onboarding.OnboardingLink{}, w.linkErr
		}
		w.links = append(w.links, r)
		return onboarding.OnboardingLink{URL: "https://connect.stripe.com/setup/e/acct_1/x", ExpiresAt: testNow.Add(5 * time.Minute)}, nil
	}}
	return newService(store, connect, testPolicy())
}

func tokenOf(t *testing.T, refreshURL string) string {
	t.Helper()
	u, err := url.Parse(refreshURL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get("token")
}

func TestOnboardingLinkCarriesAFreshSingleUseToken(t *testing.T) {
	w := &linkWorld{tokens: map[string]onboarding.RefreshToken{}}
	svc := w.service()
	if _, err := svc.CreateOnboardingLink(context.Background(), onboarding.Caller{UserID: "u1"}); err != nil {
		t.Fatal(err)
	}
	req := w.links[0]
	if req.ReturnURL != "https://frontend.example/onboarding/return" || !strings.HasPrefix(req.RefreshURL, "https://api.example/onboarding/refresh?token=") {
		t.Fatalf("link urls %+v do not come from the policy", req)
	}
	token := tokenOf(t, req.RefreshURL)
	if len(w.tokens) != 1 {
		t.Fatalf("stored %d tokens, want 1", len(w.tokens))
	}
	for hash, stored := range w.tokens {
		if hash == token || strings.Contains(hash, token) {
			t.Fatal("the token must be stored hashed")
		}
		if stored.AccountID != "acct_1" || !stored.ExpiresAt.Equal(testNow.Add(24*time.Hour)) {
			t.Fatalf("stored token %+v", stored)
		}
	}
	if w.marked != 1 {
		t.Fatalf("first link marked %d times, want 1", w.marked)
	}

	location, err := svc.RefreshOnboardingLink(context.Background(), token)
	if err != nil || location != "https://connect.stripe.com/setup/e/acct_1/x" {
		t.Fatalf("refresh = %q, %v", location, err)
	}
	next := tokenOf(t, w.links[1].RefreshURL)
	if next == token || w.links[1].AccountID != "acct_1" {
		t.Fatalf("the new link must carry a new token for the same account")
	}
	location, err = svc.RefreshOnboardingLink(context.Background(), token)
	if !errors.Is(err, onboarding.ErrTokenInvalid) || location != "https://frontend.example/onboarding?error=link_expired" {
		t.Fatalf("reused token: %q, %v", location, err)
	}
	if w.marked != 1 {
		t.Fatal("refreshes must not mark the first link again")
	}
}

func TestRefreshWithBadTokenNeverCallsStoreOrStripe(t *testing.T) {
	svc := newService(&storeFake{}, &connectFake{}, testPolicy()) // nil fields panic if called
	for _, raw := range []string{"", "short", strings.Repeat("!", 43), "https://evil.example"} {
		location, err := svc.RefreshOnboardingLink(context.Background(), raw)
		if !errors.Is(err, onboarding.ErrTokenInvalid) || location != testPolicy().LinkExpiredURL {
			t.Errorf("%q: %q, %v", raw, location, err)
		}
	}
}

func TestRefreshWhenStripeFailsGoesToTheFrontend(t *testing.T) {
	w := &linkWorld{tokens: map[string]onboarding.RefreshToken{}}
	svc := w.service()
	if _, err := svc.CreateOnboardingLink(context.Background(), onboarding.Caller{UserID: "u1"}); err != nil {
		t.Fatal(err)
	}
	w.linkErr = onboarding.ErrStripeUnavailable
	location, err := svc.RefreshOnboardingLink(context.Background(), tokenOf(t, w.links[0].RefreshURL))
	if err == nil || location != testPolicy().LinkExpiredURL {
		t.Fatalf("got %q, %v", location, err)
	}
}

func TestFailedFirstLinkDoesNotLockPrefill(t *testing.T) {
	w := &linkWorld{tokens: map[string]onboarding.RefreshToken{}, linkErr: onboarding.ErrStripeUnavailable}
	if _, err := w.service().CreateOnboardingLink(context.Background(), onboarding.Caller{UserID: "u1"}); err == nil {
		t.Fatal("want the Stripe error")
	}
	if w.marked != 0 {
		t.Fatal("a link Stripe never issued must not lock KYC prefill")
	}
}

func TestLaterLinksDoNotMarkAgain(t *testing.T) {
	w := &linkWorld{tokens: map[string]onboarding.RefreshToken{}, firstLink: testNow.Add(-time.Hour)}
	if _, err := w.service().CreateOnboardingLink(context.Background(), onboarding.Caller{UserID: "u1"}); err != nil {
		t.Fatal(err)
	}
	if w.marked != 0 {
		t.Fatal("first_link_at is written once")
	}
}
