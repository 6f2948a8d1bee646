package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/connectexpress/onboarding/shared/onboarding"
)

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

// memStore is an in-memory onboarding.Store with the same guards as the
// DynamoDB one, for measuring our own code without a storage engine.
type memStore struct {
	mu     sync.Mutex
	users  map[string]onboarding.UserRecord
	index  map[string]string
	tokens map[string]onboarding.RefreshToken
	events map[string]bool
}

var _ onboarding.Store = (*memStore)(nil)

func newMemStore() *memStore {
	return &memStore{users: map[string]onboarding.UserRecord{}, index: map[string]string{},
		tokens: map[string]onboarding.RefreshToken{}, events: map[string]bool{}}
}

func (m *memStore) GetUser(_ context.Context, id string) (onboarding.UserRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.users[id]
	if !ok {
		return u, onboarding.ErrNotFound
	}
	if u.Account != nil {
		a := *u.Account
		u.Account = &a
	}
	return u, nil
}

func (m *memStore) ClaimCreation(_ context.Context, id string, c onboarding.CreationClaim, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if u, ok := m.users[id]; ok && (u.Account != nil || u.Claim.LeaseUntil.After(now)) {
		return onboarding.ErrConflict
	}
	m.users[id] = onboarding.UserRecord{UserID: id, Claim: &c}
	return nil
}

func (m *memStore) CompleteCreation(_ context.Context, rec onboarding.AccountRecord, claimID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	u := m.users[rec.UserID]
	if u.Claim == nil || u.Claim.ClaimID != claimID {
		return onboarding.ErrConflict
	}
	m.users[rec.UserID] = onboarding.UserRecord{UserID: rec.UserID, Account: &rec}
	m.index[rec.AccountID] = rec.UserID
	return nil
}

func (m *memStore) ReleaseClaim(context.Context, string, string, bool) error { return nil }

func (m *memStore) SaveState(_ context.Context, id string, st onboarding.AccountState, v int64, now time.Time) (onboarding.AccountRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u := m.users[id]
	if u.Account == nil {
		return onboarding.AccountRecord{}, onboarding.ErrNotFound
	}
	if u.Account.StateVersion <= v {
		u.Account.State, u.Account.StateVersion, u.Account.UpdatedAt = st, v, now
	}
	return *u.Account, nil
}

func (m *memStore) MarkFirstLink(_ context.Context, id string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if u := m.users[id]; u.Account != nil && u.Account.FirstLinkAt.IsZero() {
		u.Account.FirstLinkAt = at
	}
	return nil
}

func (m *memStore) PutRefreshToken(_ context.Context, t onboarding.RefreshToken) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tokens[t.Hash] = t
	return nil
}

func (m *memStore) ConsumeRefreshToken(_ context.Context, hash string, now time.Time) (onboarding.RefreshToken, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.tokens[hash]
	if !ok || !now.Before(t.ExpiresAt) {
		return t, onboarding.ErrTokenInvalid
	}
	delete(m.tokens, hash)
	return t, nil
}

func (m *memStore) FindUserByAccount(_ context.Context, acct string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if u, ok := m.index[acct]; ok {
		return u, nil
	}
	return "", onboarding.ErrNotFound
}

func (m *memStore) ApplyEvent(_ context.Context, c onboarding.StateChange) (onboarding.EventOutcome, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.events[c.EventID] {
		return onboarding.OutcomeDuplicate, nil
	}
	u := m.users[c.UserID]
	if u.Account == nil || u.Account.AccountID != c.AccountID || u.Account.StateVersion > c.Version {
		return onboarding.OutcomeSuperseded, nil
	}
	if c.Kind == onboarding.ChangeSnapshot {
		u.Account.State = c.State
	}
	u.Account.StateVersion = c.Version
	m.events[c.EventID] = true
	return onboarding.OutcomeApplied, nil
}

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
