package onboarding

import (
	"errors"
	"fmt"
	"time"
)

// Kind classifies an Error so that one function at the edge can map it to a
// transport status without looking at messages.
type Kind int

const (
	KindInvalid             Kind = iota + 1 // the caller's input is wrong
	KindUnauthorized                        // no or bad identity
	KindNotFound                            // nothing stored for the caller
	KindConflict                            // the request clashes with current state
	KindTooLarge                            // the request body is over the limit
	KindProviderUnavailable                 // Stripe failed or timed out
	KindStorageUnavailable                  // our storage failed; safe to retry
	KindRateLimited                         // the caller used up a per-user limit
	KindForbidden                           // a valid identity without the right to the route
	// KindAccountGone: Stripe answered 403 account_invalid on the account's
	// own call. The core stores the account as deauthorized; unhandled, it
	// answers like ErrDeauthorized.
	KindAccountGone
)

// Error is the only error type the core hands to adapters. Code, Message and
// Param are safe to show to a client: they never carry internal text.
type Error struct {
	Kind    Kind
	Code    string
	Message string
	Param   string
	// RetryAfter, when set, says when the request may succeed (a header).
	RetryAfter time.Duration
	cause      error // kept for logs and errors.Is, never rendered
	keySpent   bool

	// ProviderCode is Stripe's own error code of a ProviderRejected error,
	// when Stripe gave one (for the staff audit; never a status).
	ProviderCode string
	keyRefused   bool
}

func (e *Error) Error() string {
	if e.cause != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.cause)
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.cause }

// Is lets errors.Is match by Code, so sentinels below work even when a copy
// carries a cause.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code && t.Kind == e.Kind
}

// WithCause returns a copy of e that remembers cause for logging.
func (e *Error) WithCause(cause error) *Error {
	c := *e
	c.cause = cause
	return &c
}

var (
	ErrNotFound           = &Error{Kind: KindNotFound, Code: "not_found", Message: "no connected account exists for this user"}
	ErrCreationInProgress = &Error{Kind: KindConflict, Code: "creation_in_progress", Message: "the account is being created; retry shortly"}
	// ErrUpdateInProgress answers a prefill update that finds another one's
	// lease held: at once, with RetryAfter set to when the lease ends,
	// rather than holding a function (and polling the table) until then.
	ErrUpdateInProgress     = &Error{Kind: KindConflict, Code: "update_in_progress", Message: "another update of the account is in progress; retry after Retry-After seconds"}
	ErrKYCLocked            = &Error{Kind: KindConflict, Code: "kyc_locked", Message: "prefilled details can no longer change: Stripe collects them since the first onboarding link"}
	ErrOnboardingIncomplete = &Error{Kind: KindConflict, Code: "onboarding_incomplete", Message: "the Express Dashboard opens once onboarding details are submitted"}
	ErrDeauthorized         = &Error{Kind: KindConflict, Code: "account_deauthorized", Message: "the account disconnected from the platform"}
	ErrRejected             = &Error{Kind: KindConflict, Code: "account_rejected", Message: "Stripe rejected the account: it cannot be onboarded"}
	// ErrAccountGone is what the Stripe adapter returns when Stripe answers
	// an account's own call with 403 account_invalid: the account was
	// deleted, or the platform's access to it revoked (a missed
	// account.application.deauthorized). Never "retry shortly": the core
	// stores the account as deauthorized. Same code and message as
	// ErrDeauthorized, another kind, so errors.Is tells them apart.
	ErrAccountGone = &Error{Kind: KindAccountGone, Code: "account_deauthorized", Message: "the account disconnected from the platform"}
	// ErrAccountUnavailable tells a browser with a refresh token that its
	// account can no longer onboard (rejected, or disconnected).
	ErrAccountUnavailable = &Error{Kind: KindConflict, Code: "account_unavailable", Message: "the account was rejected or disconnected from the platform"}
	ErrRateLimited        = &Error{Kind: KindRateLimited, Code: "rate_limited", Message: "too many requests to Stripe for this user; retry after Retry-After seconds"}
	ErrUnauthorized       = &Error{Kind: KindUnauthorized, Code: "unauthorized", Message: "a valid bearer token is required"}
	// ErrForbidden answers a caller without the staff group on every staff route.
	ErrForbidden = &Error{Kind: KindForbidden, Code: "forbidden", Message: "this route is for platform staff only"}
	// ErrEmbeddedUnconfigured: the session route without
	// STRIPE_PUBLISHABLE_KEY, which Connect.js needs to start.
	ErrEmbeddedUnconfigured = &Error{Kind: KindProviderUnavailable, Code: "embedded_onboarding_unconfigured", Message: "embedded onboarding is not configured: STRIPE_PUBLISHABLE_KEY is unset; use the onboarding link"}
	ErrStripeUnavailable    = &Error{Kind: KindProviderUnavailable, Code: "stripe_unavailable", Message: "Stripe could not complete the request; retry shortly"}
	ErrStorageUnavailable   = &Error{Kind: KindStorageUnavailable, Code: "storage_unavailable", Message: "storage is temporarily unavailable; retry shortly"}
	ErrBodyTooLarge         = &Error{Kind: KindTooLarge, Code: "body_too_large", Message: "the request body is too large"}
	// ErrTokenInvalid covers unknown, used and expired refresh tokens alike:
	// the browser is told the same thing whichever it was.
	ErrTokenInvalid = &Error{Kind: KindInvalid, Code: "link_expired", Message: "the onboarding link expired or was already used"}
	// ErrConflict is what a store returns when a conditional write lost.
	ErrConflict = errors.New("onboarding: conditional write lost")
)

// Invalid reports bad input on one parameter.
func Invalid(param, message string) *Error {
	return &Error{Kind: KindInvalid, Code: "validation_error", Message: message, Param: param}
}

// InvalidCode is Invalid with a more specific code than validation_error.
func InvalidCode(code, param, message string) *Error {
	return &Error{Kind: KindInvalid, Code: code, Message: message, Param: param}
}

// ProviderRejected reports that Stripe refused parameters we sent; its message
// and param are Stripe's own and safe to show.
func ProviderRejected(param, message string, cause error) *Error {
	return &Error{Kind: KindInvalid, Code: "stripe_invalid_request", Message: message, Param: param, cause: cause}
}

// RateLimited is ErrRateLimited with when to retry.
func RateLimited(retryAfter time.Duration) *Error {
	e := *ErrRateLimited
	e.RetryAfter = retryAfter
	return &e
}

// UpdateInProgress is ErrUpdateInProgress with when to retry.
func UpdateInProgress(retryAfter time.Duration) *Error {
	e := *ErrUpdateInProgress
	e.RetryAfter = retryAfter
	return &e
}

// StripeKeySpent reports a Stripe failure that replaying the request's
// Idempotency-Key cannot mend: Stripe saved it (a 5xx, once execution
// began), or refused the key (idempotency_error). It renders as
// ErrStripeUnavailable.
func StripeKeySpent(cause error) *Error {
	e := ErrStripeUnavailable.WithCause(cause)
	e.keySpent = true
	return e
}

// KeySpent says whether e is a StripeKeySpent failure.
func (e *Error) KeySpent() bool { return e.keySpent }

// StripeKeyRefused reports that Stripe refused the platform's API key
// itself (401, or a 403 permission error that is not account_invalid): a
// misconfiguration, never a sign about the account, which stays as it is.
// It renders as ErrStripeUnavailable; cause names the setting to check.
func StripeKeyRefused(cause error) *Error {
	e := ErrStripeUnavailable.WithCause(cause)
	e.keyRefused = true
	return e
}

// KeyRefused says whether e is a StripeKeyRefused failure: an operator must
// act, so its log line is an ERROR whatever the route answers.
func (e *Error) KeyRefused() bool { return e.keyRefused }

// StorageFailed wraps a storage error so that it maps to a retryable 503.
func StorageFailed(cause error) *Error { return ErrStorageUnavailable.WithCause(cause) }

// AsError returns err as *Error when it is one.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}
