// Package memstore is an in-memory onboarding.Store for tests and
// benchmarks that measure or fuzz our own code without a storage engine.
// It keeps the DynamoDB store's guards (claims, single-use tokens, event
// ordering); the real store's behaviour is tested on moto and minidyn.
package memstore

import (
	"cmp"
	"context"
	"sync"
	"time"

	"github.com/connectexpress/onboarding/shared/onboarding"
)

// Store is an in-memory onboarding.Store with the same conditional
// semantics as the DynamoDB store, small enough to build per fuzz input.
type Store struct {
	mu        sync.Mutex
	users     map[string]onboarding.UserRecord
	byAccount map[string]string
	tokens    map[string]*token
	events    map[string]bool
	limits    map[string][]time.Time // newest first
}

type token struct {
	onboarding.RefreshToken
	lease onboarding.Lease
	used  bool
}

var _ onboarding.Store = (*Store)(nil)

// New returns an empty Store.
func New() *Store {
	return &Store{
		users:     map[string]onboarding.UserRecord{},
		byAccount: map[string]string{},
		tokens:    map[string]*token{},
		events:    map[string]bool{},
		limits:    map[string][]time.Time{},
	}
}

func (m *Store) GetUser(_ context.Context, userID string) (onboarding.UserRecord, error) {
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

func (m *Store) ClaimCreation(_ context.Context, userID string, claim onboarding.CreationClaim, now time.Time) error {
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

func (m *Store) CompleteCreation(_ context.Context, rec onboarding.AccountRecord, claimID string) error {
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

func (m *Store) ReleaseClaim(_ context.Context, userID string, next onboarding.CreationClaim) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	u := m.users[userID]
	if u.Claim == nil || u.Claim.ClaimID != next.ClaimID {
		return onboarding.ErrConflict
	}
	next.LeaseUntil = time.Time{}
	u.Claim = &next
	m.users[userID] = u
	return nil
}

func (m *Store) SaveState(_ context.Context, userID string, st onboarding.AccountState, version int64, now time.Time, _ onboarding.Cause) (onboarding.AccountRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u := m.users[userID]
	if u.Account == nil {
		return onboarding.AccountRecord{}, onboarding.ErrNotFound
	}
	if version >= u.Account.StateVersion && !u.Account.State.Deauthorized {
		st.RequestedCapabilities = u.Account.State.RequestedCapabilities // kept for the record's life
		u.Account.State, u.Account.StateVersion, u.Account.UpdatedAt = st, version, now
	}
	return *u.Account, nil
}

func (m *Store) LockPrefill(_ context.Context, userID, accountID string, now time.Time) (onboarding.AccountRecord, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a := m.users[userID].Account
	switch {
	case a == nil:
		return onboarding.AccountRecord{}, false, onboarding.ErrNotFound
	case a.AccountID != accountID || a.State.Deauthorized || a.PrefillLease.Until.After(now):
		return *a, false, nil
	}
	if a.FirstLinkAt.IsZero() {
		a.FirstLinkAt = now
	}
	return *a, true, nil
}

func (m *Store) BeginPrefill(_ context.Context, userID string, now time.Time, lease onboarding.Lease) (onboarding.AccountRecord, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a := m.users[userID].Account
	switch {
	case a == nil:
		return onboarding.AccountRecord{}, false, onboarding.ErrNotFound
	case !a.FirstLinkAt.IsZero() || a.State.Deauthorized || a.PrefillLease.Until.After(now):
		return *a, false, nil
	}
	a.PrefillLease = lease
	return *a, true, nil
}

func (m *Store) EndPrefill(_ context.Context, userID string, lease onboarding.Lease) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if a := m.users[userID].Account; a != nil && a.PrefillLease.ID == lease.ID {
		a.PrefillLease = onboarding.Lease{}
	}
	return nil
}

func (m *Store) RecordPrefill(_ context.Context, userID string, p onboarding.Prefill) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	a := m.users[userID].Account
	if a == nil {
		return onboarding.ErrNotFound
	}
	a.Email = cmp.Or(p.Email, a.Email)
	a.BusinessName = cmp.Or(p.BusinessProfile.Name, a.BusinessName)
	a.BusinessURL = cmp.Or(p.BusinessProfile.URL, a.BusinessURL)
	return nil
}

func (m *Store) PutRefreshToken(_ context.Context, t onboarding.RefreshToken) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.tokens[t.Hash]; ok {
		return onboarding.ErrConflict
	}
	m.tokens[t.Hash] = &token{RefreshToken: t}
	return nil
}

func (m *Store) ClaimRefreshToken(_ context.Context, hash string, now time.Time, lease onboarding.Lease) (onboarding.RefreshToken, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.tokens[hash]
	if !ok || t.used || !t.ExpiresAt.After(now) || t.lease.Until.After(now) {
		return onboarding.RefreshToken{}, onboarding.ErrTokenInvalid
	}
	t.lease = lease
	return t.RefreshToken, nil
}

func (m *Store) ReleaseRefreshToken(_ context.Context, hash string, lease onboarding.Lease) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if t, ok := m.tokens[hash]; ok && t.lease.ID == lease.ID {
		t.lease = onboarding.Lease{}
	}
	return nil
}

func (m *Store) SpendRefreshToken(_ context.Context, hash string, _ time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if t, ok := m.tokens[hash]; ok {
		t.used = true
	}
	return nil
}

func (m *Store) TakeSlot(_ context.Context, key string, limit int, window time.Duration, now time.Time) (bool, time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	used := m.limits[key]
	if len(used) >= limit && used[limit-1].After(now.Add(-window)) {
		return false, used[limit-1].Add(window), nil
	}
	used = append([]time.Time{now}, used...)
	m.limits[key] = used[:min(len(used), limit)]
	return true, now, nil
}

func (m *Store) FindUserByAccount(_ context.Context, accountID string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.byAccount[accountID]
	if !ok {
		return "", onboarding.ErrNotFound
	}
	return u, nil
}

// agrees says whether a change says what state says already.
func agrees(c onboarding.StateChange, state onboarding.AccountState) bool {
	switch c.Kind {
	case onboarding.ChangeSnapshot:
		return onboarding.StateDigest(c.State) == onboarding.StateDigest(state)
	case onboarding.ChangeCapability:
		return state.Capabilities[c.Capability] == c.CapabilityStatus
	}
	return true
}

func (m *Store) ApplyEvent(_ context.Context, c onboarding.StateChange) (onboarding.EventOutcome, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.events[c.EventID] {
		return onboarding.OutcomeDuplicate, nil
	}
	u, ok := m.users[c.UserID]
	switch {
	case ok && u.Account == nil && c.HealCreationID != "" && u.Claim != nil && u.Claim.CreationID == c.HealCreationID:
		if owner, taken := m.byAccount[c.AccountID]; taken && owner != c.UserID {
			return onboarding.OutcomeUnknown, nil
		}
		claim := u.Claim
		u = onboarding.UserRecord{UserID: c.UserID, Account: &onboarding.AccountRecord{
			UserID: c.UserID, AccountID: c.AccountID, Country: c.Country, ServiceAgreement: c.ServiceAgreement,
			State: c.State, StateVersion: c.Version, CreatedAt: c.Now, UpdatedAt: c.Now,
		}}
		if claim.Params != nil {
			u.Account.State.RequestedCapabilities = claim.Params.Capabilities
		}
		m.byAccount[c.AccountID] = c.UserID
	case !ok || u.Account == nil || u.Account.AccountID != c.AccountID:
		return onboarding.OutcomeUnknown, nil
	case u.Account.State.Deauthorized || c.Version < u.Account.StateVersion:
		return onboarding.OutcomeSuperseded, nil
	case c.SettleTies && c.Version == u.Account.StateVersion && !agrees(c, u.Account.State):
		return onboarding.OutcomeTied, nil
	default:
		a := u.Account
		switch c.Kind {
		case onboarding.ChangeSnapshot:
			requested := a.State.RequestedCapabilities
			a.State = c.State
			a.State.RequestedCapabilities = requested
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
