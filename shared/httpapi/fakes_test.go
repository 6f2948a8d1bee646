package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/connectexpress/onboarding/shared/config"
	"github.com/connectexpress/onboarding/shared/onboarding"
)

// memStore is an in-memory onboarding.Store with the same conditional
// semantics as the DynamoDB store, small enough to build per fuzz input.
type memStore struct {
	mu        sync.Mutex
	users     map[string]onboarding.UserRecord
	byAccount map[string]string
	tokens    map[string]onboarding.RefreshToken
	events    map[string]bool
}

var _ onboarding.Store = (*memStore)(nil)

func newMemStore() *memStore {
	return &memStore{
		users:     map[string]onboarding.UserRecord{},
		byAccount: map[string]string{},
		tokens:    map[string]onboarding.RefreshToken{},
		events:    map[string]bool{},
	}
}

func (m *memStore) GetUser(_ context.Context, userID string) (onboarding.UserRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.users[userID]
	if !ok {
		return onboarding.UserRecord{}, onboarding.ErrNotFound
	}
	return copyUser(u), nil
}

func copyUser(u onboarding.UserRecord) onboarding.UserRecord {
	if u.Claim != nil {
		c := *u.Claim
		u.Claim = &c
	}
	if u.Account != nil {
		a := *u.Account
		u.Account = &a
	}
	return u
}

func (m *memStore) ClaimCreation(_ context.Context, userID string, claim onboarding.CreationClaim, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	u := m.users[userID]
	if u.Account != nil || (u.Claim != nil && u.Claim.LeaseUntil.After(now)) {
		return onboarding.ErrConflict
	}
	u.UserID, u.Claim = userID, &claim
	m.users[userID] = u
	return nil
}

func (m *memStore) CompleteCreation(_ context.Context, rec onboarding.AccountRecord, claimID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	u := m.users[rec.UserID]
	if u.Account != nil || u.Claim == nil || u.Claim.ClaimID != claimID {
		return onboarding.ErrConflict
	}
	u.Claim, u.Account = nil, &rec
	m.users[rec.UserID] = u
	m.byAccount[rec.AccountID] = rec.UserID
	return nil
}

func (m *memStore) ReleaseClaim(_ context.Context, userID, claimID string, forget bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	u := m.users[userID]
	if u.Claim == nil || u.Claim.ClaimID != claimID {
		return onboarding.ErrConflict
	}
	u.Claim.LeaseUntil = time.Time{}
	if forget {
		u.Claim.Attempt++
		u.Claim.Params = nil
	}
	m.users[userID] = u
	return nil
}

func (m *memStore) SaveState(_ context.Context, userID string, st onboarding.AccountState, version int64, now time.Time) (onboarding.AccountRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u := m.users[userID]
	if u.Account == nil {
		return onboarding.AccountRecord{}, onboarding.ErrNotFound
	}
	if version >= u.Account.StateVersion && !u.Account.State.Deauthorized {
		u.Account.State, u.Account.StateVersion, u.Account.UpdatedAt = st, version, now
	}
	return *u.Account, nil
}

func (m *memStore) MarkFirstLink(_ context.Context, userID string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	u := m.users[userID]
	if u.Account == nil || !u.Account.FirstLinkAt.IsZero() {
		return onboarding.ErrConflict
	}
	u.Account.FirstLinkAt = at
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
	if !ok || !t.ExpiresAt.After(now) {
		return onboarding.RefreshToken{}, onboarding.ErrTokenInvalid
	}
	delete(m.tokens, hash)
	return t, nil
}

func (m *memStore) FindUserByAccount(_ context.Context, accountID string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.byAccount[accountID]
	if !ok {
		return "", onboarding.ErrNotFound
	}
	return u, nil
}

func (m *memStore) ApplyEvent(_ context.Context, c onboarding.StateChange) (onboarding.EventOutcome, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.events[c.EventID] {
		return onboarding.OutcomeDuplicate, nil
	}
	u, ok := m.users[c.UserID]
	switch {
	case (!ok || u.Account == nil) && c.CreateIfMissing:
		u = onboarding.UserRecord{UserID: c.UserID, Account: &onboarding.AccountRecord{
			UserID: c.UserID, AccountID: c.AccountID, Country: c.Country, ServiceAgreement: c.ServiceAgreement,
			State: c.State, StateVersion: c.Version, CreatedAt: c.Now, UpdatedAt: c.Now,
		}}
		m.byAccount[c.AccountID] = c.UserID
	case !ok || u.Account == nil:
		return onboarding.OutcomeUnknown, nil
	case u.Account.AccountID != c.AccountID || u.Account.State.Deauthorized || c.Version < u.Account.StateVersion:
		m.events[c.EventID] = true
		return onboarding.OutcomeSuperseded, nil
	default:
		a := u.Account
		switch c.Kind {
		case onboarding.ChangeSnapshot:
			a.State = c.State
		case onboarding.ChangeCapability:
			caps := map[string]string{}
			for k, v := range a.State.Capabilities {
				caps[k] = v
			}
			caps[c.Capability] = c.CapabilityStatus
			a.State.Capabilities = caps
		case onboarding.ChangeDeauthorize:
			a.State.Deauthorized = true
		}
		a.StateVersion, a.UpdatedAt = c.Version, c.Now
	}
	m.users[c.UserID] = u
	m.events[c.EventID] = true
	return onboarding.OutcomeApplied, nil
}

// fakeStripeLink is the prefix of every link fakeConnect issues.
const fakeStripeLink = "https://connect.stripe.test/"

// fakeConnect is an onboarding.Connect that never touches the network. It
// records the creation parameters so tests can hold them to the contract.
type fakeConnect struct {
	mu      sync.Mutex
	n       int
	created []onboarding.CreateAccountParams
}

var _ onboarding.Connect = (*fakeConnect)(nil)

func (f *fakeConnect) CreateAccount(_ context.Context, p onboarding.CreateAccountParams, _ string) (onboarding.CreatedAccount, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	f.created = append(f.created, p)
	return onboarding.CreatedAccount{ID: fmt.Sprintf("acct_fake%06d", f.n), Country: p.Country}, nil
}

func (f *fakeConnect) GetAccount(context.Context, string) (onboarding.AccountState, error) {
	return onboarding.AccountState{DetailsSubmitted: true, Requirements: onboarding.Requirements{EventuallyDue: []string{"external_account"}}}, nil
}

func (f *fakeConnect) UpdateAccount(context.Context, string, onboarding.Prefill) error { return nil }

func (f *fakeConnect) CreateOnboardingLink(_ context.Context, r onboarding.LinkRequest) (onboarding.OnboardingLink, error) {
	return onboarding.OnboardingLink{URL: fakeStripeLink + "setup/" + r.AccountID, ExpiresAt: time.Unix(1_900_000_000, 0).UTC()}, nil
}

func (f *fakeConnect) CreateDashboardLink(_ context.Context, accountID string) (string, error) {
	return fakeStripeLink + "express/" + accountID, nil
}

// fakeVerifier stands in for the Stripe signature check: the header
// "t=1,v1=fuzz" is a valid signature, and the body is then decoded as a
// minimal event; anything else fails the way the real verifier does.
type fakeVerifier struct{}

const fakeSignature = "t=1,v1=fuzz"

func (fakeVerifier) Verify(payload []byte, sig string) (onboarding.AccountEvent, error) {
	if sig != fakeSignature {
		return onboarding.AccountEvent{}, onboarding.InvalidCode("invalid_signature", "stripe-signature", "no signature matches the payload")
	}
	var ev struct {
		ID       string `json:"id"`
		Type     string `json:"type"`
		Created  int64  `json:"created"`
		Account  string `json:"account"`
		Livemode bool   `json:"livemode"`
		Data     struct {
			Object struct {
				DetailsSubmitted bool              `json:"details_submitted"`
				ChargesEnabled   bool              `json:"charges_enabled"`
				PayoutsEnabled   bool              `json:"payouts_enabled"`
				Country          string            `json:"country"`
				Metadata         map[string]string `json:"metadata"`
				ID               string            `json:"id"`
				Status           string            `json:"status"`
			} `json:"object"`
		} `json:"data"`
	}
	if err := json.Unmarshal(payload, &ev); err != nil || ev.ID == "" {
		return onboarding.AccountEvent{}, onboarding.InvalidCode("invalid_payload", "", "the event is not a valid Stripe event")
	}
	o := ev.Data.Object
	out := onboarding.AccountEvent{
		ID: ev.ID, Type: ev.Type, Created: time.Unix(ev.Created, 0), AccountID: ev.Account, Livemode: ev.Livemode,
		Country: o.Country, ServiceAgreement: onboarding.AgreementFull, PlatformUserID: o.Metadata["platform_user_id"],
		Capability: o.ID, CapabilityStatus: o.Status,
	}
	if ev.Type == onboarding.EventAccountUpdated {
		out.State = &onboarding.AccountState{DetailsSubmitted: o.DetailsSubmitted, ChargesEnabled: o.ChargesEnabled, PayoutsEnabled: o.PayoutsEnabled}
	}
	return out, nil
}

// testPolicy is the policy the service runs with on default configuration.
func testPolicy() onboarding.Policy {
	env := map[string]string{"FRONTEND_URL": "https://frontend.example", "PUBLIC_API_URL": "https://api.example"}
	cfg, err := config.Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		panic(err)
	}
	return cfg.Policy
}
