package onboarding

import (
	"context"
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
	// still owns the user's claim; ErrConflict otherwise.
	CompleteCreation(ctx context.Context, rec AccountRecord, claimID string) error
	// ReleaseClaim ends claimID's lease now. With forget, the attempt counter
	// moves on and the stored parameters are dropped, because Stripe answered
	// for certain that nothing was created.
	ReleaseClaim(ctx context.Context, userID, claimID string, forget bool) error
	// SaveState stores a state read from Stripe at version unless newer state
	// is already stored, and returns the record as it now stands.
	SaveState(ctx context.Context, userID string, state AccountState, version int64, now time.Time) (AccountRecord, error)
	// MarkFirstLink records when the first onboarding link was issued, once.
	MarkFirstLink(ctx context.Context, userID string, at time.Time) error
	// PutRefreshToken stores a refresh token by its hash.
	PutRefreshToken(ctx context.Context, t RefreshToken) error
	// ConsumeRefreshToken deletes the token with this hash and returns it, if
	// it exists and has not expired; ErrTokenInvalid otherwise. Atomic: of
	// concurrent consumers exactly one wins.
	ConsumeRefreshToken(ctx context.Context, tokenHash string, now time.Time) (RefreshToken, error)
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
	GetAccount(ctx context.Context, accountID string) (AccountState, error)
	UpdateAccount(ctx context.Context, accountID string, p Prefill) error
	CreateOnboardingLink(ctx context.Context, r LinkRequest) (OnboardingLink, error)
	CreateDashboardLink(ctx context.Context, accountID string) (string, error)
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
	// Attempt numbers the idempotency key. It only moves on when Stripe said
	// for certain that the previous attempt created nothing.
	Attempt int
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
}

// OnboardingLink is a single-use Stripe-hosted onboarding URL.
type OnboardingLink struct {
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expires_at"`
}

// RefreshToken lets a browser coming back from Stripe's refresh_url get a new
// link for one account, once. Only its hash is stored.
type RefreshToken struct {
	Hash      string
	UserID    string
	AccountID string
	ExpiresAt time.Time
}
