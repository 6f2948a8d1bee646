package onboarding

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"log/slog"
	"time"
)

// Caller is the authenticated platform user a request acts for.
type Caller struct {
	UserID string
	Email  string // from the identity token, may be empty
	// EmailVerified: the identity token says Email is the user's
	// (email_verified true). Only then does Email prefill an account,
	// unless Policy.PrefillUnverifiedEmail.
	EmailVerified bool
	// Groups are the identity provider's groups of the caller (the claim
	// Policy.StaffGroupsClaim names); the staff routes need Policy.StaffGroup.
	Groups []string
}

// Service runs the onboarding use cases. Build it once per process.
type Service struct {
	store   Store
	staff   StaffStore // nil: the staff routes answer storage_unavailable
	connect Connect
	policy  Policy
	log     *slog.Logger
	now     func() time.Time
	sleep   func(context.Context, time.Duration) error
	random  func([]byte) (int, error)
}

// Option adjusts a Service for tests.
type Option func(*Service)

// WithClock replaces the wall clock.
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// WithSleep replaces how the service waits for a lease to end.
func WithSleep(sleep func(context.Context, time.Duration) error) Option {
	return func(s *Service) { s.sleep = sleep }
}

// WithStaffStore gives the staff routes their store (the DynamoDB store
// implements both ports).
func WithStaffStore(st StaffStore) Option { return func(s *Service) { s.staff = st } }

// WithLogger sets the logger (default: slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(s *Service) { s.log = l } }

// NewService wires the core to its ports.
func NewService(store Store, connect Connect, policy Policy, opts ...Option) *Service {
	s := &Service{store: store, connect: connect, policy: policy, log: slog.Default(), now: time.Now, sleep: Sleep, random: rand.Read}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Policy returns the rules the service runs with.
func (s *Service) Policy() Policy { return s.policy }

// accountFor returns the caller's stored account or ErrNotFound.
func (s *Service) accountFor(ctx context.Context, c Caller) (AccountRecord, error) {
	if c.UserID == "" {
		return AccountRecord{}, ErrUnauthorized
	}
	u, err := s.store.GetUser(ctx, c.UserID)
	if err != nil {
		return AccountRecord{}, err
	}
	if u.Account == nil {
		return AccountRecord{}, ErrNotFound
	}
	return *u.Account, nil
}

// GetAccount returns the caller's account; with refresh it re-reads Stripe
// first, which is what the frontend does when a user comes back from
// onboarding and webhooks may not have arrived yet. Stripe is read at most
// once per account per StatusRefreshInterval; within it the stored state
// answers (webhooks keep it current).
func (s *Service) GetAccount(ctx context.Context, c Caller, refresh bool) (Account, error) {
	rec, err := s.accountFor(ctx, c)
	if err != nil || !refresh || rec.State.Deauthorized {
		return rec.Account(s.now()), err
	}
	ok, _, err := s.store.TakeSlot(ctx, "status#"+rec.AccountID, 1, s.policy.StatusRefreshInterval, s.now())
	if err != nil || !ok {
		return rec.Account(s.now()), err
	}
	if rec, err = s.refreshState(ctx, rec); err != nil {
		return Account{}, err
	}
	return rec.Account(s.now()), nil
}

// CreateDashboardLink returns a login link to the Express Dashboard.
func (s *Service) CreateDashboardLink(ctx context.Context, c Caller) (string, error) {
	rec, err := s.accountFor(ctx, c)
	if err != nil {
		return "", err
	}
	switch {
	case rec.State.Deauthorized:
		return "", ErrDeauthorized
	case !rec.State.DetailsSubmitted:
		return "", ErrOnboardingIncomplete
	}
	if err := s.takeLinkSlot(ctx, rec.UserID); err != nil {
		return "", err
	}
	url, err := s.connect.CreateDashboardLink(ctx, rec.AccountID)
	if errors.Is(err, ErrAccountGone) {
		return "", s.goneError(ctx, rec, err, ErrDeauthorized)
	}
	if e, ok := AsError(err); ok && e.Kind == KindInvalid {
		// Stripe refuses login links until onboarding is complete: our
		// stored details_submitted was stale. Re-read it so the next
		// answer is right, and say what Stripe meant.
		// Best effort: the answer does not depend on it.
		if _, rerr := s.refreshState(ctx, rec); rerr != nil {
			s.log.WarnContext(ctx, "could not re-read the account after Stripe refused a login link", "account_id", rec.AccountID, "error", rerr)
		}
		return "", ErrOnboardingIncomplete.WithCause(err)
	}
	return url, err
}

// refreshState re-reads an account from Stripe and stores what it says
// (cause refresh), returning the record as it now stands. Stripe's 403
// account_invalid stores the account as gone (deauthorized); a failed read
// or write is returned.
func (s *Service) refreshState(ctx context.Context, rec AccountRecord) (AccountRecord, error) {
	// The version is taken before the read: a webhook for a change Stripe
	// made while we were reading is then newer and still wins.
	version := s.now().Unix()
	state, err := s.connect.GetAccount(ctx, rec.AccountID)
	switch {
	case errors.Is(err, ErrAccountGone):
		return s.accountGone(ctx, rec, err)
	case err != nil:
		return rec, err
	}
	return s.store.SaveState(ctx, rec.UserID, state, version, s.now(), CauseRefresh)
}

// accountGone stores that Stripe answered one of the account's own calls
// with 403 account_invalid (cause): the account was deleted or the
// platform's access revoked, and the account.application.deauthorized
// event, if any, was missed. It goes through the webhooks' versioned write
// as a deauthorization (terminal whatever the order), recorded in the
// status history with CauseAccountInvalid, and returns the record as it now
// stands.
func (s *Service) accountGone(ctx context.Context, rec AccountRecord, cause error) (AccountRecord, error) {
	now := s.now()
	s.log.WarnContext(ctx, "Stripe answered 403 account_invalid: the account was deleted or the platform's access revoked; stored as deauthorized",
		"account_id", rec.AccountID, "cause", cause)
	_, err := s.store.ApplyEvent(ctx, StateChange{
		// One marker per account: a deauthorization happens once.
		EventID:     "account_invalid_" + rec.AccountID,
		UserID:      rec.UserID,
		AccountID:   rec.AccountID,
		Kind:        ChangeDeauthorize,
		Version:     now.Unix(),
		Now:         now,
		RetainUntil: now.Add(s.policy.EventRetention),
		Cause:       CauseAccountInvalid,
	})
	if err != nil {
		return rec, err
	}
	rec.State.Deauthorized = true
	rec.UpdatedAt = now
	return rec, nil
}

// goneError stores the account as gone (accountGone) and returns answer,
// or the storage failure that kept it from being stored.
func (s *Service) goneError(ctx context.Context, rec AccountRecord, cause error, answer *Error) error {
	if _, err := s.accountGone(ctx, rec, cause); err != nil {
		return err
	}
	return answer.WithCause(cause)
}

// Sleep waits d, or until ctx ends (then it returns ctx's error): the
// default of WithSleep, and the wait of the adapters' retries.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// newLease is a reservation of d from now, with an id of its own.
func (s *Service) newLease(d time.Duration) Lease {
	return Lease{ID: s.newSecret(12), Until: s.now().Add(d)}
}

// newSecret returns n random bytes, base64url without padding.
func (s *Service) newSecret(n int) string {
	b := make([]byte, n)
	if _, err := s.random(b); err != nil {
		// crypto/rand does not fail on supported platforms; if it ever
		// does, continuing with a guessable token would be worse.
		panic("onboarding: crypto/rand failed: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// hashHex is how user ids and tokens are turned into keys that reveal nothing.
func hashHex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
