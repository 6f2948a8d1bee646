package onboarding

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
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
	// only if no newer state is stored. A tie (the stored version is this
	// second) applies, unless SettleTies says otherwise.
	Version int64
	// SettleTies: at a tie, apply the change only if it agrees with the
	// stored state (a snapshot: the same state, StateDigest; a capability:
	// the same status); otherwise store nothing and answer OutcomeTied, so
	// that Stripe settles it. Stripe sends account.updated and
	// capability.updated in bursts within one second and guarantees no
	// order, so two events of one second cannot be ordered by themselves.
	// account.updated and capability.updated set it (deauthorization has
	// no version guard); states read from Stripe do not (a read made after
	// the stored second's events knows them all).
	SettleTies bool

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
	// OutcomeTied is the store's answer to a change with SettleTies that
	// has the stored version and disagrees with the stored state: nothing
	// was stored, not even the event's marker. HandleEvent never returns it.
	OutcomeTied EventOutcome = "tied"
	// OutcomeSettled: the event tied with stored state that disagreed, and
	// the account as Stripe answered a read was stored instead.
	OutcomeSettled EventOutcome = "settled"
)

// HandleEvent applies a verified event. Only storage failures are returned
// as errors (so Stripe retries); everything else is an outcome and is
// acknowledged.
//
// Ordering strategy: guard on the event's created time rather than re-read
// the account from Stripe. account.updated carries the whole account, so the
// newest snapshot is complete on its own, and the hot path needs no Stripe
// call (no rate limit, no latency, no outage coupling). Only when created
// cannot order two events (the same second) and they disagree is Stripe
// asked (settleTie): "ask Stripe when unsure", never delivery order.
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
		change.Kind, change.State, change.SettleTies = ChangeSnapshot, *ev.State, true
		change.Country, change.ServiceAgreement = ev.Country, ev.ServiceAgreement
		if change.ServiceAgreement == "" {
			// Stripe omits tos_acceptance.service_agreement for its default.
			change.ServiceAgreement = AgreementFull
		}
	case ev.Type == EventCapabilityUpdated && ev.Capability != "":
		change.Kind, change.Capability, change.CapabilityStatus = ChangeCapability, ev.Capability, ev.CapabilityStatus
		change.SettleTies = true
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
		outcome, err := s.applyEvent(ctx, change)
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
	return s.applyEvent(ctx, change)
}

// applyEvent is Store.ApplyEvent, with a tie settled by Stripe.
func (s *Service) applyEvent(ctx context.Context, change StateChange) (EventOutcome, error) {
	outcome, err := s.store.ApplyEvent(ctx, change)
	if err != nil || outcome != OutcomeTied {
		return outcome, err
	}
	return s.settleTie(ctx, change)
}

// settleTie stores, under change's event id and marker, the account as
// Stripe answers a read now, in place of change: an event of the stored
// second that disagrees with what is stored. Only our storage's failures are
// returned: when Stripe cannot be read, the event's state is kept (ties
// apply, as they did before ties were settled) and the next event or the
// reconciliation sweep brings Stripe's.
func (s *Service) settleTie(ctx context.Context, change StateChange) (EventOutcome, error) {
	// The version is taken before the read, as a refresh does: an event
	// Stripe creates while we read is then no older, and wins or ties. Not
	// below the event's second, though: the read began after the event was
	// created whatever our clock says, so it knows the event's change.
	version := max(s.now().Unix(), change.Version)
	state, err := s.readForTie(ctx, change.AccountID)
	if errors.Is(err, ErrAccountGone) {
		// Stripe's 403 account_invalid: whatever the event said, the
		// account is gone or our access revoked, as on every other path.
		s.log.WarnContext(ctx, "Stripe answered 403 account_invalid while settling same-second events: stored as deauthorized",
			"event_id", change.EventID, "account_id", change.AccountID)
		return s.store.ApplyEvent(ctx, StateChange{
			EventID: change.EventID, UserID: change.UserID, AccountID: change.AccountID,
			Kind: ChangeDeauthorize, Version: version, Now: s.now(), RetainUntil: change.RetainUntil,
			Cause: CauseAccountInvalid,
		})
	}
	if err != nil {
		s.log.WarnContext(ctx, "same-second events disagree and Stripe could not be read: the event's state is kept until the next event or the sweep",
			"event_id", change.EventID, "account_id", change.AccountID, "error", err)
		change.SettleTies = false
		return s.store.ApplyEvent(ctx, change)
	}
	settled := StateChange{
		EventID: change.EventID, UserID: change.UserID, AccountID: change.AccountID,
		Kind: ChangeSnapshot, Version: version, State: state,
		Country: change.Country, ServiceAgreement: change.ServiceAgreement,
		Now: s.now(), RetainUntil: change.RetainUntil, Cause: change.Cause,
	}
	if settled.ServiceAgreement == "" {
		// A capability event does not say the account's agreement, which
		// its status depends on; it never changes, so the record's holds.
		u, err := s.store.GetUser(ctx, change.UserID)
		switch {
		case errors.Is(err, ErrNotFound):
			return OutcomeUnknown, nil
		case err != nil:
			return "", err
		}
		if u.Account != nil {
			settled.Country, settled.ServiceAgreement = u.Account.Country, u.Account.ServiceAgreement
		}
	}
	outcome, err := s.store.ApplyEvent(ctx, settled)
	if err != nil {
		return "", err
	}
	if outcome == OutcomeApplied {
		outcome = OutcomeSettled
	}
	return outcome, nil
}

// tieStoreTime is kept, of the time a request has left, for the write after
// a tie's Stripe read: a read cut short keeps the event's state, while a
// function that runs out of time answers 5xx, and Stripe must be asked to
// deliver again only when our storage failed.
const tieStoreTime = 3 * time.Second

// readForTie reads an account from Stripe within the time the request
// leaves, less tieStoreTime.
func (s *Service) readForTie(ctx context.Context, accountID string) (AccountState, error) {
	if deadline, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline.Add(-tieStoreTime))
		defer cancel()
	}
	return s.connect.GetAccount(ctx, accountID)
}

// StateDigest is a short digest of what a state says, the same for two
// states exactly when they say the same however their empty lists and maps
// were decoded (deauthorization aside: it is terminal, never compared). The
// store keeps it with the state, to tell in one conditional write whether
// a same-second snapshot agrees with it.
func StateDigest(s AccountState) string {
	s.Deauthorized = false
	b, err := json.Marshal(canonical(s))
	if err != nil {
		return "" // cannot happen for these types; "" never equals a stored digest
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}
