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

// cleanupStore is the in-memory store whose best-effort cleanups fail when failing is set.
type cleanupStore struct {
	*memstore.Store
	failing bool
}

var errCleanup = errors.New("ConditionalCheckFailed: lost")

func (s *cleanupStore) fail() error {
	if s.failing {
		return errCleanup
	}
	return nil
}

func (s *cleanupStore) ReleaseClaim(ctx context.Context, userID string, next onboarding.CreationClaim) error {
	if err := s.fail(); err != nil {
		return err
	}
	return s.Store.ReleaseClaim(ctx, userID, next)
}

func (s *cleanupStore) EndPrefill(ctx context.Context, userID string, lease onboarding.Lease) error {
	if err := s.fail(); err != nil {
		return err
	}
	return s.Store.EndPrefill(ctx, userID, lease)
}

func (s *cleanupStore) ReleaseRefreshToken(ctx context.Context, hash string, lease onboarding.Lease) error {
	if err := s.fail(); err != nil {
		return err
	}
	return s.Store.ReleaseRefreshToken(ctx, hash, lease)
}

func (s *cleanupStore) SpendRefreshToken(ctx context.Context, hash string, now time.Time) error {
	if err := s.fail(); err != nil {
		return err
	}
	return s.Store.SpendRefreshToken(ctx, hash, now)
}

// A cleanup that fails after the answer is decided (a claim released, a lease ended, a token
// released or spent, an account re-read) does not change the answer: it is a warning in the
// log for the operator, and there is none when the cleanup worked.
func TestAFailedCleanupIsAWarningAndASuccessfulOneIsSilent(t *testing.T) {
	tests := []struct {
		name    string
		warning string
		run     func(t *testing.T, svc *onboarding.Service, c *connectFake)
	}{
		{
			name: "a creation claim released after Stripe failed", warning: "could not release creation claim",
			run: func(t *testing.T, svc *onboarding.Service, c *connectFake) {
				if _, _, err := svc.CreateAccount(context.Background(), onboarding.Caller{UserID: "u2"}, onboarding.CreateAccountRequest{}); !errors.Is(err, onboarding.ErrStripeUnavailable) {
					t.Fatalf("err %v, want stripe_unavailable", err)
				}
			},
		},
		{
			name: "a prefill lease ended after the update", warning: "could not end the prefill lease",
			run: func(t *testing.T, svc *onboarding.Service, c *connectFake) {
				if _, err := svc.UpdateAccount(context.Background(), u1, onboarding.UpdateAccountRequest{Email: ptr("new@example.com")}); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			name: "a refresh token released after Stripe failed", warning: "could not release a refresh token",
			run: func(t *testing.T, svc *onboarding.Service, c *connectFake) {
				token := firstLinkToken(t, svc, c)
				c.LinkFn = func(context.Context, onboarding.LinkRequest) (onboarding.OnboardingLink, error) {
					return onboarding.OnboardingLink{}, onboarding.ErrStripeUnavailable
				}
				if loc, _ := svc.RefreshOnboardingLink(context.Background(), token); loc != page("stripe_unavailable") {
					t.Fatalf("redirect to %s, want %s", loc, page("stripe_unavailable"))
				}
			},
		},
		{
			name: "a refresh token spent after its link was made", warning: "could not mark a refresh token used",
			run: func(t *testing.T, svc *onboarding.Service, c *connectFake) {
				token := firstLinkToken(t, svc, c)
				if loc, err := svc.RefreshOnboardingLink(context.Background(), token); err != nil || !strings.HasPrefix(loc, "https://connect.stripe.com/") {
					t.Fatalf("redirect to %s (%v), want a Stripe link", loc, err)
				}
			},
		},
		{
			name: "an account re-read after Stripe refused a login link", warning: "could not re-read the account",
			run: func(t *testing.T, svc *onboarding.Service, c *connectFake) {
				if _, err := svc.CreateDashboardLink(context.Background(), u1); !errors.Is(err, onboarding.ErrOnboardingIncomplete) {
					t.Fatalf("err %v, want onboarding_incomplete", err)
				}
			},
		},
	}
	for _, tt := range tests {
		for _, failing := range []bool{false, true} {
			name := tt.name + ": works"
			if failing {
				name = tt.name + ": fails"
			}
			t.Run(name, func(t *testing.T) {
				store := &cleanupStore{Store: memstore.New()}
				ctx := context.Background()
				if err := store.ClaimCreation(ctx, "u1", onboarding.CreationClaim{ClaimID: "c1", LeaseUntil: testNow.Add(time.Minute)}, testNow); err != nil {
					t.Fatal(err)
				}
				rec := onboarding.AccountRecord{UserID: "u1", AccountID: "acct_1", StateVersion: testNow.Unix() - 60, State: onboarding.AccountState{DetailsSubmitted: true}}
				if err := store.CompleteCreation(ctx, rec, "c1"); err != nil {
					t.Fatal(err)
				}
				store.failing = failing
				connect := &connectFake{
					CreateAccountFn: func(context.Context, onboarding.CreateAccountParams, string) (onboarding.CreatedAccount, error) {
						return onboarding.CreatedAccount{}, onboarding.ErrStripeUnavailable
					},
					UpdateAccountFn: func(context.Context, string, onboarding.Prefill) error { return nil },
					LinkFn: func(_ context.Context, r onboarding.LinkRequest) (onboarding.OnboardingLink, error) {
						return onboarding.OnboardingLink{URL: "https://connect.stripe.com/setup/e/acct_1/x", ExpiresAt: testNow.Add(5 * time.Minute)}, nil
					},
					DashboardFn: func(context.Context, string) (string, error) {
						return "", onboarding.ProviderRejected("", "not onboarded", errors.New("stripe: status 400"))
					},
					GetAccountFn: func(context.Context, string) (onboarding.AccountState, error) {
						if failing {
							return onboarding.AccountState{}, onboarding.ErrStripeUnavailable
						}
						return onboarding.AccountState{DetailsSubmitted: false}, nil
					},
				}
				var logs bytes.Buffer
				svc := onboarding.NewService(store, connect, testPolicy(), onboarding.WithClock(func() time.Time { return testNow }),
					onboarding.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
				tt.run(t, svc, connect)
				warned := strings.Contains(logs.String(), "level=WARN") && strings.Contains(logs.String(), tt.warning)
				if warned != failing {
					t.Errorf("warned %v, want %v; log:\n%s", warned, failing, logs.String())
				}
			})
		}
	}
}

// firstLinkToken requests u1's first onboarding link and returns its refresh token.
func firstLinkToken(t *testing.T, svc *onboarding.Service, c *connectFake) string {
	t.Helper()
	var refreshURL string
	link := c.LinkFn
	c.LinkFn = func(ctx context.Context, r onboarding.LinkRequest) (onboarding.OnboardingLink, error) {
		refreshURL = r.RefreshURL
		return link(ctx, r)
	}
	if _, err := svc.CreateOnboardingLink(context.Background(), u1); err != nil {
		t.Fatal(err)
	}
	c.LinkFn = link
	return tokenOf(t, refreshURL)
}
