package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/connectexpress/onboarding/shared/onboarding"
)

// stubConnect answers every Stripe call at once with a canned object.
type stubConnect struct {
	mu    sync.Mutex
	n     int
	links *linkSpy
}

var _ onboarding.Connect = (*stubConnect)(nil)

func (s *stubConnect) CreateAccount(_ context.Context, p onboarding.CreateAccountParams, _ string) (onboarding.CreatedAccount, error) {
	s.mu.Lock()
	s.n++
	id := fmt.Sprintf("acct_stub%d", s.n)
	s.mu.Unlock()
	return onboarding.CreatedAccount{ID: id, Country: p.Country, State: onboarding.AccountState{
		Requirements: onboarding.Requirements{CurrentlyDue: []string{"external_account", "tos_acceptance.date"}},
	}}, nil
}

func (s *stubConnect) FindCreatedAccount(context.Context, onboarding.CreatedAccountQuery) (onboarding.CreatedAccount, bool, error) {
	return onboarding.CreatedAccount{}, false, nil
}

func (s *stubConnect) GetAccount(context.Context, string) (onboarding.AccountState, error) {
	return onboarding.AccountState{DetailsSubmitted: true, ChargesEnabled: true, PayoutsEnabled: true}, nil
}

func (s *stubConnect) UpdateAccount(context.Context, string, onboarding.Prefill) error { return nil }

func (s *stubConnect) CreateOnboardingLink(_ context.Context, r onboarding.LinkRequest) (onboarding.OnboardingLink, error) {
	s.links.record(r.RefreshURL)
	return onboarding.OnboardingLink{URL: "https://connect.stripe.com/setup/e/" + r.AccountID + "/stub", ExpiresAt: time.Now().Add(5 * time.Minute)}, nil
}

func (s *stubConnect) CreateDashboardLink(_ context.Context, id string) (string, error) {
	return "https://connect.stripe.com/express/" + id + "/stub", nil
}

func (s *stubConnect) CreateAccountSession(_ context.Context, id string, _ []string) (onboarding.AccountSession, error) {
	return onboarding.AccountSession{ClientSecret: "accs_secret__stub_" + id, ExpiresAt: time.Now().Add(30 * time.Minute)}, nil
}

func (s *stubConnect) RejectAccount(context.Context, string, string, string) (onboarding.AccountState, error) {
	reason := "rejected.fraud"
	return onboarding.AccountState{DetailsSubmitted: true, Requirements: onboarding.Requirements{DisabledReason: &reason}}, nil
}
