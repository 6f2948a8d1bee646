package onboarding_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/connectexpress/onboarding/shared/onboarding"
)

// newSessionWorld is linkWorld's account on a platform with a publishable
// key, whose Stripe fake also makes Account Sessions.
func newSessionWorld(t *testing.T) *linkWorld {
	w := newLinkWorld(t)
	w.policy.PublishableKey = "pk_test_platform"
	return w
}

func TestASessionCarriesTheSecretItsExpiryAndThePublishableKey(t *testing.T) {
	w := newSessionWorld(t)
	w.policy.EmbeddedComponents = []string{"payouts", "account_onboarding"}
	got, err := w.service().CreateOnboardingSession(context.Background(), u1)
	if err != nil {
		t.Fatal(err)
	}
	want := onboarding.OnboardingSession{ClientSecret: "accs_secret__x", ExpiresAt: testNow.Add(30 * time.Minute), PublishableKey: "pk_test_platform"}
	if got != want {
		t.Fatalf("session %+v, want %+v", got, want)
	}
	if len(w.sessions) != 1 || !slices.Equal(w.sessions[0], []string{"account_onboarding", "payouts"}) {
		t.Fatalf("components %v, want account_onboarding always, then EMBEDDED_COMPONENTS once each", w.sessions)
	}
}

func TestAFirstSessionLocksPrefillBeforeStripeIsAsked(t *testing.T) {
	w := newSessionWorld(t)
	w.sessionErr = onboarding.ErrStripeUnavailable
	if _, err := w.service().CreateOnboardingSession(context.Background(), u1); !errors.Is(err, onboarding.ErrStripeUnavailable) {
		t.Fatalf("session when Stripe fails: %v, want stripe_unavailable (502)", err)
	}
	// Stripe may have made the session before failing: prefill stays locked.
	if rec := w.record(t); !rec.FirstLinkAt.Equal(testNow) {
		t.Fatalf("KYC locked at %v, want %v", rec.FirstLinkAt, testNow)
	}
	_, err := w.service().UpdateAccount(context.Background(), u1, onboarding.UpdateAccountRequest{Email: ptr("late@example.com")})
	if !errors.Is(err, onboarding.ErrKYCLocked) {
		t.Fatalf("PATCH after a requested session: %v, want kyc_locked", err)
	}
}

func TestASessionWaitsForAPrefillUpdateOnItsWay(t *testing.T) {
	w := newSessionWorld(t)
	ctx := context.Background()
	lease := onboarding.Lease{ID: "patch", Until: testNow.Add(3 * time.Second)}
	if _, taken, err := w.store.BeginPrefill(ctx, "u1", testNow, lease); err != nil || !taken {
		t.Fatalf("BeginPrefill: %v %v", taken, err)
	}
	if _, err := w.service().CreateOnboardingSession(ctx, u1); err != nil {
		t.Fatal(err)
	}
	if rec := w.record(t); rec.FirstLinkAt.Before(lease.Until) {
		t.Fatalf("locked at %v, while the prefill update held its lease until %v", rec.FirstLinkAt, lease.Until)
	}
}

func TestSessionsAndLinksShareTheHourlyLimit(t *testing.T) {
	w := newSessionWorld(t)
	w.policy.LinksPerHour = 2
	svc := w.service()
	ctx := context.Background()
	if _, err := svc.CreateOnboardingLink(ctx, u1); err != nil {
		t.Fatal(err)
	}
	w.advance(10 * time.Minute)
	if _, err := svc.CreateOnboardingSession(ctx, u1); err != nil {
		t.Fatal(err)
	}
	_, err := svc.CreateOnboardingSession(ctx, u1)
	e, ok := onboarding.AsError(err)
	if !ok || e.Code != "rate_limited" || e.RetryAfter != 50*time.Minute {
		t.Fatalf("third session or link in an hour: %v, want rate_limited after 50m, when the link leaves the hour", err)
	}
	if _, err := svc.CreateOnboardingLink(ctx, u1); !errors.Is(err, onboarding.ErrRateLimited) {
		t.Fatalf("link after a link and a session in the hour: %v, want rate_limited", err)
	}
	if len(w.sessions) != 1 {
		t.Fatalf("%d sessions asked of Stripe, want 1: refused ones never reach it", len(w.sessions))
	}
}

func TestAccountsThatCannotOnboardGetNoSession(t *testing.T) {
	rejected := "rejected.fraud"
	for _, tc := range []struct {
		name    string
		state   *onboarding.AccountState
		deauth  bool
		wantErr error
	}{
		{"rejected", &onboarding.AccountState{DetailsSubmitted: true, Requirements: onboarding.Requirements{DisabledReason: &rejected}}, false, onboarding.ErrRejected},
		{"deauthorized", nil, true, onboarding.ErrDeauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newSessionWorld(t)
			ctx := context.Background()
			if tc.deauth {
				if _, err := w.store.ApplyEvent(ctx, onboarding.StateChange{EventID: "evt_d", UserID: "u1", AccountID: "acct_1", Kind: onboarding.ChangeDeauthorize, Version: testNow.Unix() + 1, Now: testNow}); err != nil {
					t.Fatal(err)
				}
			} else if _, err := w.store.SaveState(ctx, "u1", *tc.state, testNow.Unix()+1, testNow, onboarding.CauseRefresh); err != nil {
				t.Fatal(err)
			}
			if _, err := w.service().CreateOnboardingSession(ctx, u1); !errors.Is(err, tc.wantErr) {
				t.Fatalf("POST onboarding-session: %v, want %v", err, tc.wantErr)
			}
			if len(w.sessions) != 0 {
				t.Fatal("Stripe was asked for a session of an account that cannot onboard")
			}
		})
	}
}

func TestASessionWithoutAnAccountIsNotFoundLikeALink(t *testing.T) {
	w := newSessionWorld(t)
	svc := w.service()
	stranger := onboarding.Caller{UserID: "u2"}
	_, linkErr := svc.CreateOnboardingLink(context.Background(), stranger)
	_, sessErr := svc.CreateOnboardingSession(context.Background(), stranger)
	if !errors.Is(sessErr, onboarding.ErrNotFound) || !errors.Is(linkErr, onboarding.ErrNotFound) {
		t.Fatalf("session %v, link %v: want not_found for both", sessErr, linkErr)
	}
}

func TestStripesAccountInvalidOnASessionStoresTheAccountAsDeauthorized(t *testing.T) {
	w := newSessionWorld(t)
	w.sessionErr = onboarding.ErrAccountGone.WithCause(errors.New("stripe: status 403, code account_invalid"))
	_, err := w.service().CreateOnboardingSession(context.Background(), u1)
	if !errors.Is(err, onboarding.ErrDeauthorized) {
		t.Fatalf("session of an account Stripe calls invalid: %v, want account_deauthorized", err)
	}
	if !w.record(t).State.Deauthorized {
		t.Fatal("the account is not stored as deauthorized")
	}
}

func TestASessionWithoutAPublishableKeyIsRefusedBeforeAnyWork(t *testing.T) {
	w := newSessionWorld(t)
	w.policy.PublishableKey = ""
	if _, err := w.service().CreateOnboardingSession(context.Background(), u1); !errors.Is(err, onboarding.ErrEmbeddedUnconfigured) {
		t.Fatalf("session without STRIPE_PUBLISHABLE_KEY: %v", err)
	}
	if !w.record(t).FirstLinkAt.IsZero() || len(w.sessions) != 0 {
		t.Fatal("a refused session locked prefill or called Stripe")
	}
}
