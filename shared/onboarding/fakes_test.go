package onboarding_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/connectexpress/onboarding/shared/onboarding"
)

// storeFake steers the Store port; a nil function field fails loudly.
type storeFake struct {
	GetUserFn             func(ctx context.Context, userID string) (onboarding.UserRecord, error)
	ClaimCreationFn       func(ctx context.Context, userID string, c onboarding.CreationClaim, now time.Time) error
	CompleteCreationFn    func(ctx context.Context, rec onboarding.AccountRecord, claimID string) error
	ReleaseClaimFn        func(ctx context.Context, userID string, next onboarding.CreationClaim) error
	SaveStateFn           func(ctx context.Context, userID string, st onboarding.AccountState, version int64, now time.Time, cause onboarding.Cause) (onboarding.AccountRecord, error)
	LockPrefillFn         func(ctx context.Context, userID, accountID string, now time.Time) (onboarding.AccountRecord, bool, error)
	BeginPrefillFn        func(ctx context.Context, userID string, now time.Time, lease onboarding.Lease) (onboarding.AccountRecord, bool, error)
	EndPrefillFn          func(ctx context.Context, userID string, lease onboarding.Lease) error
	RecordPrefillFn       func(ctx context.Context, userID string, p onboarding.Prefill) error
	PutRefreshTokenFn     func(ctx context.Context, t onboarding.RefreshToken) error
	ClaimRefreshTokenFn   func(ctx context.Context, hash string, now time.Time, lease onboarding.Lease) (onboarding.RefreshToken, error)
	ReleaseRefreshTokenFn func(ctx context.Context, hash string, lease onboarding.Lease) error
	SpendRefreshTokenFn   func(ctx context.Context, hash string, now time.Time) error
	TakeSlotFn            func(ctx context.Context, key string, limit int, window time.Duration, now time.Time) (bool, time.Time, error)
	FindUserByAccountFn   func(ctx context.Context, accountID string) (string, error)
	ApplyEventFn          func(ctx context.Context, c onboarding.StateChange) (onboarding.EventOutcome, error)
}

var _ onboarding.Store = (*storeFake)(nil)

func (f *storeFake) GetUser(ctx context.Context, id string) (onboarding.UserRecord, error) {
	return f.GetUserFn(ctx, id)
}
func (f *storeFake) ClaimCreation(ctx context.Context, id string, c onboarding.CreationClaim, now time.Time) error {
	return f.ClaimCreationFn(ctx, id, c, now)
}
func (f *storeFake) CompleteCreation(ctx context.Context, rec onboarding.AccountRecord, claimID string) error {
	return f.CompleteCreationFn(ctx, rec, claimID)
}
func (f *storeFake) ReleaseClaim(ctx context.Context, id string, next onboarding.CreationClaim) error {
	return f.ReleaseClaimFn(ctx, id, next)
}
func (f *storeFake) SaveState(ctx context.Context, id string, st onboarding.AccountState, v int64, now time.Time, cause onboarding.Cause) (onboarding.AccountRecord, error) {
	return f.SaveStateFn(ctx, id, st, v, now, cause)
}
func (f *storeFake) LockPrefill(ctx context.Context, id, acct string, now time.Time) (onboarding.AccountRecord, bool, error) {
	return f.LockPrefillFn(ctx, id, acct, now)
}
func (f *storeFake) BeginPrefill(ctx context.Context, id string, now time.Time, lease onboarding.Lease) (onboarding.AccountRecord, bool, error) {
	return f.BeginPrefillFn(ctx, id, now, lease)
}
func (f *storeFake) EndPrefill(ctx context.Context, id string, lease onboarding.Lease) error {
	return f.EndPrefillFn(ctx, id, lease)
}
func (f *storeFake) RecordPrefill(ctx context.Context, id string, p onboarding.Prefill) error {
	return f.RecordPrefillFn(ctx, id, p)
}
func (f *storeFake) PutRefreshToken(ctx context.Context, t onboarding.RefreshToken) error {
	return f.PutRefreshTokenFn(ctx, t)
}
func (f *storeFake) ClaimRefreshToken(ctx context.Context, h string, now time.Time, lease onboarding.Lease) (onboarding.RefreshToken, error) {
	return f.ClaimRefreshTokenFn(ctx, h, now, lease)
}
func (f *storeFake) ReleaseRefreshToken(ctx context.Context, h string, lease onboarding.Lease) error {
	return f.ReleaseRefreshTokenFn(ctx, h, lease)
}
func (f *storeFake) SpendRefreshToken(ctx context.Context, h string, now time.Time) error {
	return f.SpendRefreshTokenFn(ctx, h, now)
}
func (f *storeFake) TakeSlot(ctx context.Context, key string, limit int, window time.Duration, now time.Time) (bool, time.Time, error) {
	return f.TakeSlotFn(ctx, key, limit, window, now)
}
func (f *storeFake) FindUserByAccount(ctx context.Context, id string) (string, error) {
	return f.FindUserByAccountFn(ctx, id)
}
func (f *storeFake) ApplyEvent(ctx context.Context, c onboarding.StateChange) (onboarding.EventOutcome, error) {
	return f.ApplyEventFn(ctx, c)
}

// connectFake steers the Connect port and records what it was asked.
type connectFake struct {
	CreateAccountFn func(ctx context.Context, p onboarding.CreateAccountParams, key string) (onboarding.CreatedAccount, error)
	FindCreatedFn   func(ctx context.Context, q onboarding.CreatedAccountQuery) (onboarding.CreatedAccount, bool, error)
	GetAccountFn    func(ctx context.Context, id string) (onboarding.AccountState, error)
	UpdateAccountFn func(ctx context.Context, id string, p onboarding.Prefill) error
	LinkFn          func(ctx context.Context, r onboarding.LinkRequest) (onboarding.OnboardingLink, error)
	DashboardFn     func(ctx context.Context, id string) (string, error)
	RejectFn        func(ctx context.Context, id, reason, key string) (onboarding.AccountState, error)
	SessionFn       func(ctx context.Context, id string, components []string) (onboarding.AccountSession, error)
}

var _ onboarding.Connect = (*connectFake)(nil)

func (f *connectFake) CreateAccount(ctx context.Context, p onboarding.CreateAccountParams, key string) (onboarding.CreatedAccount, error) {
	return f.CreateAccountFn(ctx, p, key)
}
func (f *connectFake) FindCreatedAccount(ctx context.Context, q onboarding.CreatedAccountQuery) (onboarding.CreatedAccount, bool, error) {
	return f.FindCreatedFn(ctx, q)
}
func (f *connectFake) GetAccount(ctx context.Context, id string) (onboarding.AccountState, error) {
	return f.GetAccountFn(ctx, id)
}
func (f *connectFake) UpdateAccount(ctx context.Context, id string, p onboarding.Prefill) error {
	return f.UpdateAccountFn(ctx, id, p)
}
func (f *connectFake) CreateOnboardingLink(ctx context.Context, r onboarding.LinkRequest) (onboarding.OnboardingLink, error) {
	return f.LinkFn(ctx, r)
}
func (f *connectFake) CreateDashboardLink(ctx context.Context, id string) (string, error) {
	return f.DashboardFn(ctx, id)
}
func (f *connectFake) CreateAccountSession(ctx context.Context, id string, components []string) (onboarding.AccountSession, error) {
	return f.SessionFn(ctx, id, components)
}
func (f *connectFake) RejectAccount(ctx context.Context, id, reason, key string) (onboarding.AccountState, error) {
	return f.RejectFn(ctx, id, reason, key)
}

var testNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// testPolicy is a US platform with the default settings.
func testPolicy() onboarding.Policy {
	allowed := map[string]bool{}
	for _, c := range onboarding.SupportedCountries() {
		allowed[c] = true
	}
	return onboarding.Policy{
		PlatformCountry:             "US",
		AllowedCountries:            allowed,
		DefaultCapabilities:         []string{"card_payments", "transfers"},
		AllowedCapabilities:         map[string]bool{"card_payments": true, "transfers": true},
		CrossBorderServiceAgreement: onboarding.AgreementFull,
		ReturnURL:                   "https://frontend.example/onboarding/return",
		RefreshURL:                  "https://api.example/onboarding/refresh",
		OnboardingURL:               "https://frontend.example/onboarding",
		CollectFields:               "currently_due",
		RefreshTokenTTL:             24 * time.Hour,
		ClaimLease:                  time.Minute,
		EventRetention:              30 * 24 * time.Hour,
		LinksPerHour:                20,
		UpdatesPerHour:              10,
		StatusRefreshInterval:       5 * time.Second,
		StripeCallLease:             20 * time.Second,
	}
}

func newService(store onboarding.Store, connect onboarding.Connect, p onboarding.Policy) *onboarding.Service {
	return onboarding.NewService(store, connect, p, onboarding.WithClock(func() time.Time { return testNow }))
}

func ptr[T any](v T) *T { return &v }

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
