package onboarding

import (
	"context"
	"log/slog"
	"time"
)

// Store keeps users' account records, refresh tokens and processed events.
// Every method that guards money-adjacent state does so with a conditional
// write in the store itself, never with a read-then-write in the core.
type Store interface {
	// GetUser returns what is stored for a platform user, or ErrNotFound.
	GetUser(ctx context.Context, userID string) (UserRecord, error)
	// ClaimCreation records claim for userID when nothing is stored yet or a
	// previous claim's lease ran out; ErrConflict when someone else holds it
	// or the account already exists.
	ClaimCreation(ctx context.Context, userID string, claim CreationClaim, now time.Time) error
	// CompleteCreation stores rec (and the account-to-user index) if claimID
	// still owns the user's claim; ErrConflict otherwise. The state's
	// RequestedCapabilities are kept for the record's life: every record the
	// store returns carries them, whatever states it stored later.
	CompleteCreation(ctx context.Context, rec AccountRecord, claimID string) error
	// ReleaseClaim ends next.ClaimID's lease now and stores how the next
	// attempt starts: next's attempt, search flag and parameters (nil when
	// Stripe refused them and nothing was created).
	ReleaseClaim(ctx context.Context, userID string, next CreationClaim) error
	// SaveState stores a state read from Stripe at version unless newer state
	// is already stored, and returns the record as it now stands. When the
	// account's derived status changes, the same write records the change
	// with cause (refresh, sweep or staff).
	SaveState(ctx context.Context, userID string, state AccountState, version int64, now time.Time, cause Cause) (AccountRecord, error)
	// LockPrefill records, once, that the first onboarding link of the
	// user's account accountID is being requested, unless a prefill update
	// holds its lease or the account is deauthorized. It returns the record
	// (as it stands after the lock, or as it stood when refused) and whether
	// the lock holds; ErrNotFound when the user has no record.
	LockPrefill(ctx context.Context, userID, accountID string, now time.Time) (AccountRecord, bool, error)
	// BeginPrefill takes the prefill lease, unless the account is locked or
	// deauthorized or another update holds the lease. It returns the record
	// and whether the lease is taken; ErrNotFound without one.
	BeginPrefill(ctx context.Context, userID string, now time.Time, lease Lease) (AccountRecord, bool, error)
	// EndPrefill ends the prefill lease, if it is still this one.
	EndPrefill(ctx context.Context, userID string, lease Lease) error
	// RecordPrefill stores what staff see of a prefill Stripe accepted for
	// the user's account: its email (AccountRecord.Email, with the index of
	// accounts by EmailKey that the duplicate_email signal reads, in one
	// write) and its business name and URL. Empty fields leave what is
	// stored. ErrNotFound without an account.
	RecordPrefill(ctx context.Context, userID string, p Prefill) error
	// PutRefreshToken stores a refresh token by its hash.
	PutRefreshToken(ctx context.Context, t RefreshToken) error
	// ClaimRefreshToken reserves the token with this hash for one redemption
	// under lease, if it exists, is unused, unexpired and not being
	// redeemed; ErrTokenInvalid otherwise. Atomic: of concurrent redeemers
	// exactly one wins.
	ClaimRefreshToken(ctx context.Context, tokenHash string, now time.Time, lease Lease) (RefreshToken, error)
	// ReleaseRefreshToken ends a redemption that made no link, so the token
	// can be used again.
	ReleaseRefreshToken(ctx context.Context, tokenHash string, lease Lease) error
	// SpendRefreshToken marks a token used: its link was made.
	SpendRefreshToken(ctx context.Context, tokenHash string, now time.Time) error
	// TakeSlot counts one use of key, in one conditional write that carries
	// a TTL, if fewer than limit uses of key fell in the window before now.
	// Otherwise it counts nothing and returns when a use becomes possible.
	TakeSlot(ctx context.Context, key string, limit int, window time.Duration, now time.Time) (bool, time.Time, error)
	// FindUserByAccount returns the platform user owning a Stripe account, or
	// ErrNotFound.
	FindUserByAccount(ctx context.Context, accountID string) (string, error)
	// ApplyEvent applies change and records its event id in one atomic step,
	// so a processed marker never exists without its effect.
	ApplyEvent(ctx context.Context, change StateChange) (EventOutcome, error)
}

// Connect is what the core needs from Stripe Connect. Implementations return
// *Error values (ProviderRejected, ErrStripeUnavailable) so the core can tell
// "Stripe said no" from "we do not know what happened".
type Connect interface {
	CreateAccount(ctx context.Context, p CreateAccountParams, idempotencyKey string) (CreatedAccount, error)
	// FindCreatedAccount looks through the connected accounts created since
	// q.Since for the one whose metadata names q's user and creation.
	FindCreatedAccount(ctx context.Context, q CreatedAccountQuery) (CreatedAccount, bool, error)
	GetAccount(ctx context.Context, accountID string) (AccountState, error)
	UpdateAccount(ctx context.Context, accountID string, p Prefill) error
	CreateOnboardingLink(ctx context.Context, r LinkRequest) (OnboardingLink, error)
	CreateDashboardLink(ctx context.Context, accountID string) (string, error)
	// CreateAccountSession authorises Connect.js's embedded components
	// (EmbeddedComponentNames) for one account.
	CreateAccountSession(ctx context.Context, accountID string, components []string) (AccountSession, error)
	// RejectAccount rejects an account for reason (one of RejectReasons)
	// and returns its state as Stripe answered; idempotencyKey names the
	// attempt (rejectionKey).
	RejectAccount(ctx context.Context, accountID, reason, idempotencyKey string) (AccountState, error)
}

// Lease is a reservation that a conditional write takes until Until. Its
// ID tells the holder's own write, which the SDK retries when an answer is
// lost after the write was applied, from anybody else's.
type Lease struct {
	ID    string
	Until time.Time
}

// UserRecord is what the store holds for one platform user: a creation claim
// while the account is being created, the account afterwards.
type UserRecord struct {
	UserID  string
	Claim   *CreationClaim
	Account *AccountRecord
}

// CreationClaim reserves account creation for one caller at a time.
type CreationClaim struct {
	ClaimID    string
	LeaseUntil time.Time
	// CreationID names the user's creation, from the first claim until the
	// account is stored, whatever the attempts. It goes into the account's
	// metadata: an account carrying it provably came from this claim.
	CreationID string
	// Attempt numbers the idempotency key. It moves on when Stripe said for
	// certain that the attempt created nothing, or when its key can only
	// replay a failure and no account it made was found.
	Attempt int
	// AttemptSince is when the attempt's key was first sent: an account the
	// attempt made was created after it.
	AttemptSince time.Time
	// Search says that the attempt's key holds a failure Stripe saved (a
	// 5xx) or refused to replay (idempotency_error): before the next key,
	// look for an account the attempt made.
	Search bool
	// Params are replayed unchanged after an unknown outcome, because Stripe
	// refuses an idempotency key reused with other parameters.
	Params *CreateAccountParams
}

// Prefill is what the platform may tell Stripe about an account before the
// user sees onboarding.
type Prefill struct {
	Email           string          `json:"email,omitempty"`
	BusinessType    string          `json:"business_type,omitempty"`
	BusinessProfile BusinessProfile `json:"business_profile,omitzero"`
}

// BusinessProfile is the prefillable part of Stripe's business_profile.
type BusinessProfile struct {
	URL                string `json:"url,omitempty"`
	ProductDescription string `json:"product_description,omitempty"`
	Name               string `json:"name,omitempty"`
	MCC                string `json:"mcc,omitempty"`
}

// CreateAccountParams is exactly what is sent to Stripe to create an account.
type CreateAccountParams struct {
	Prefill
	Country          string   `json:"country"`
	Capabilities     []string `json:"capabilities,omitempty"`
	ServiceAgreement string   `json:"service_agreement"`
	PlatformUserID   string   `json:"platform_user_id"`
	CreationID       string   `json:"creation_id"` // the claim's, in the account's metadata
}

// CreatedAccountQuery asks which account, created since Since, carries a
// user's creation id in its metadata.
type CreatedAccountQuery struct {
	UserID, CreationID string
	Since              time.Time
}

// CreatedAccount is Stripe's answer to an account creation.
type CreatedAccount struct {
	ID      string
	Country string
	State   AccountState
}

// LinkRequest asks Stripe for an onboarding Account Link.
type LinkRequest struct {
	AccountID     string
	RefreshURL    string
	ReturnURL     string
	CollectFields string
	// IncludeFutureRequirements asks Stripe to collect the account's
	// future_requirements too (Stripe's default omits them).
	IncludeFutureRequirements bool
}

// OnboardingLink is a single-use Stripe-hosted onboarding URL.
type OnboardingLink struct {
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expires_at"`
}

// AccountSession is Stripe's answer to an Account Session: its client
// secret is a credential for the account, passed to the browser only.
type AccountSession struct {
	ClientSecret string
	ExpiresAt    time.Time
}

// OnboardingSession is the answer of POST /accounts/me/onboarding-session:
// what Connect.js needs to mount the embedded onboarding component.
type OnboardingSession struct {
	ClientSecret   string    `json:"client_secret"`
	ExpiresAt      time.Time `json:"expires_at"`
	PublishableKey string    `json:"publishable_key"`
}

// LogValue keeps the client secret out of any log line the session reaches.
func (s OnboardingSession) LogValue() slog.Value {
	return slog.GroupValue(slog.Time("expires_at", s.ExpiresAt))
}

// ComponentAccountOnboarding is the embedded onboarding component, always
// enabled in a session.
const ComponentAccountOnboarding = "account_onboarding"

// EmbeddedComponentNames are the components POST /v1/account_sessions
// takes in API version 2023-10-16 (stripe-mock v0.183.0
// embedded/openapi/spec3.json, paths./v1/account_sessions.post,
// components' properties).
var EmbeddedComponentNames = []string{"account_onboarding", "documents", "payment_details", "payments", "payouts"}

// RefreshToken lets a browser coming back from Stripe's refresh_url get a new
// link for one account, once. Only its hash is stored.
type RefreshToken struct {
	Hash      string
	UserID    string
	AccountID string
	ExpiresAt time.Time
	// IssuedAt is when the token's link was minted: a refresh soon after it
	// is Stripe bouncing the link straight back (Policy.RefreshBounceWindow).
	IssuedAt time.Time
}
