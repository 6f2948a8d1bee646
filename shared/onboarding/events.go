package onboarding

import (
	"context"
	"errors"
	"time"
)

// Connect event types the service acts on.
const (
	EventAccountUpdated      = "account.updated"
	EventCapabilityUpdated   = "capability.updated"
	EventAccountDeauthorized = "account.application.deauthorized"
)

// HandledEventTypes are the types to subscribe the webhook endpoint to.
var HandledEventTypes = []string{EventAccountUpdated, EventCapabilityUpdated, EventAccountDeauthorized}

// AccountEvent is a verified Stripe Connect event, decoded to what we use.
type AccountEvent struct {
	ID         string
	Type       string
	Created    time.Time
	AccountID  string
	Livemode   bool
	APIVersion string
	// APIVersionMismatch: the endpoint renders events in another version
	// than the one we decode; the fields we use are stable, so it is logged.
	APIVersionMismatch bool

	// For account.updated: the account as the event shows it.
	State            *AccountState
	Country          string
	ServiceAgreement string
	PlatformUserID   string // metadata.platform_user_id, set by us at creation
	CreationID       string // metadata.platform_creation_id: the claim that made it
	// For capability.updated.
	Capability, CapabilityStatus string
}

// ChangeKind says what a StateChange does to the stored account.
type ChangeKind int

const (
	ChangeSnapshot ChangeKind = iota + 1
	ChangeCapability
	ChangeDeauthorize
)

// StateChange is an event's effect on one user's record, applied by the store
// together with the event's processed marker.
type StateChange struct {
	EventID   string
	UserID    string
	AccountID string
	Kind      ChangeKind
	// Version is the event's created second. The store applies the change
	// only if no newer state is stored (ties apply: same-second events are
	// indistinguishable, and replays are caught by the event id first).
	Version int64

	State            AccountState // ChangeSnapshot
	Country          string       // ChangeSnapshot, for a record created from the event
	ServiceAgreement string       // ChangeSnapshot, likewise
	Capability       string       // ChangeCapability
	CapabilityStatus string       // ChangeCapability

	// HealCreationID, from the account's metadata, lets a snapshot complete
	// the user's record when it holds an unfinished creation claim with this
	// creation id: the account provably came from that claim, and a crash
	// between Stripe and our store lost it. Empty: never.
	HealCreationID string
	Now            time.Time
	RetainUntil    time.Time // when the processed marker may expire
	// Cause goes with the status change this change makes, if any:
	// CauseWebhook for events, CauseSweep for the reconciliation sweep.
	Cause Cause
}

// EventOutcome is what became of one event.
type EventOutcome string

const (
	OutcomeApplied   EventOutcome = "applied"
	OutcomeDuplicate EventOutcome = "duplicate"
	// OutcomeSuperseded: newer state is stored, or the account is
	// deauthorized.
	OutcomeSuperseded  EventOutcome = "superseded"
	OutcomeIgnoredType EventOutcome = "ignored_type"
	// OutcomeUnknown: no user's record holds the account (for the store:
	// the named user's record does not).
	OutcomeUnknown      EventOutcome = "unknown_account"
	OutcomeModeMismatch EventOutcome = "livemode_mismatch"
)

// HandleEvent applies a verified event. Only storage failures are returned
// as errors (so Stripe retries); everything else is an outcome and is
// acknowledged.
//
// Ordering strategy: guard on the event's created time rather than re-read
// the account from Stripe. account.updated carries the whole account, so the
// newest snapshot is complete on its own, and the hot path needs no Stripe
// call (no rate limit, no latency, no outage coupling).
func (s *Service) HandleEvent(ctx context.Context, ev AccountEvent) (EventOutcome, error) {
	if ev.Livemode != s.policy.Livemode {
		return OutcomeModeMismatch, nil
	}
	change := StateChange{
		EventID:     ev.ID,
		AccountID:   ev.AccountID,
		Version:     ev.Created.Unix(),
		Now:         s.now(),
		RetainUntil: s.now().Add(s.policy.EventRetention),
		Cause:       CauseWebhook,
	}
	switch {
	case ev.Type == EventAccountUpdated && ev.State != nil:
		change.Kind, change.State = ChangeSnapshot, *ev.State
		change.Country, change.ServiceAgreement = ev.Country, ev.ServiceAgreement
		if change.ServiceAgreement == "" {
			// Stripe omits tos_acceptance.service_agreement for its default.
			change.ServiceAgreement = AgreementFull
		}
	case ev.Type == EventCapabilityUpdated && ev.Capability != "":
		change.Kind, change.Capability, change.CapabilityStatus = ChangeCapability, ev.Capability, ev.CapabilityStatus
	case ev.Type == EventAccountDeauthorized:
		change.Kind = ChangeDeauthorize
	default:
		return OutcomeIgnoredType, nil
	}
	if ev.AccountID == "" {
		return OutcomeUnknown, nil
	}

	named := ""
	if change.Kind == ChangeSnapshot && ev.PlatformUserID != "" {
		// The metadata names the user: usually no lookup is needed. The
		// store still checks that the user's record holds this account, or
		// the unfinished claim that made it.
		named, change.UserID, change.HealCreationID = ev.PlatformUserID, ev.PlatformUserID, ev.CreationID
		outcome, err := s.store.ApplyEvent(ctx, change)
		if err != nil || outcome != OutcomeUnknown {
			return outcome, err
		}
		// Metadata anyone can edit does not say who owns the account: the
		// account index, written when we stored it, does.
		change.HealCreationID = ""
	}
	userID, err := s.store.FindUserByAccount(ctx, ev.AccountID)
	switch {
	case errors.Is(err, ErrNotFound):
		return OutcomeUnknown, nil
	case err != nil:
		return "", err
	case named != "" && userID == named:
		return OutcomeUnknown, nil // the index and the record disagree: nothing to apply
	case named != "":
		s.log.WarnContext(ctx, "the account's metadata names another user than the one it belongs to; applying the event to its owner",
			"event_id", ev.ID, "account_id", ev.AccountID)
	}
	change.UserID = userID
	return s.store.ApplyEvent(ctx, change)
}
