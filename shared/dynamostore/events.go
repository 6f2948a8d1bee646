package dynamostore

import (
	"context"
	"errors"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/connectexpress/onboarding/shared/onboarding"
)

// ApplyEvent writes the event's processed marker and its effect in one
// transaction: either both exist or neither, so a crash can never leave an
// event marked as done while its update is lost. One request for a new or
// duplicate event; two when an event has to complete the record (healing a
// crash between Stripe and our store at account creation).
func (st *Store) ApplyEvent(ctx context.Context, c onboarding.StateChange) (onboarding.EventOutcome, error) {
	// The common case updates an existing record: marker and update only.
	// The account index is written when a record is created, so repeating it
	// here would cost every event two more write units.
	outcome, old, err := st.applyEvent(ctx, c, false)
	if err != nil || outcome != onboarding.OutcomeSuperseded {
		return outcome, err
	}
	switch {
	case old.AccountID == c.AccountID:
		return refusal(c, old), nil // older news, deauthorized, or a tie that disagrees
	case old.AccountID == "" && c.HealCreationID != "" && old.CreationID == c.HealCreationID:
		// An unfinished claim, and the account carries its creation id:
		// the event completes the record, with the account index.
		// The record keeps the capabilities the claim requested.
		outcome, old, err = st.applyEventOn(ctx, c, true, basisOf(c.UserID, old, false))
		if err == nil && outcome == onboarding.OutcomeSuperseded && old.AccountID == c.AccountID {
			// The creator stored the account meanwhile: apply to it.
			outcome, old, err = st.applyEvent(ctx, c, false)
			if err == nil && outcome == onboarding.OutcomeSuperseded && old.AccountID == c.AccountID {
				outcome = refusal(c, old)
			}
		}
		return outcome, err
	default:
		// No record, another account's, or a claim this account did not
		// come from: the event is not this user's.
		return onboarding.OutcomeUnknown, nil
	}
}

// refusal says why the record old, which holds c's account, refused c: a
// tie that disagrees with it, when c asked to settle ties (the condition
// let any other tie through), or else newer state or deauthorization.
func refusal(c onboarding.StateChange, old userItem) onboarding.EventOutcome {
	if c.SettleTies && old.DeauthorizedAt.IsZero() && old.StateVersion == c.Version {
		return onboarding.OutcomeTied
	}
	return onboarding.OutcomeSuperseded
}

// applyEvent runs one event transaction. When the record update's condition
// failed it also returns the record as it was, so the caller can tell stale
// news from a record that does not exist yet. The transaction also stores
// the derived status the event leaves, and records its change (status.go):
// when the record's status was not what the write assumed, it is tried
// again on the record as it was.
func (st *Store) applyEvent(ctx context.Context, c onboarding.StateChange, create bool) (onboarding.EventOutcome, userItem, error) {
	basis, err := st.eventBasis(ctx, c, create)
	if err != nil {
		return "", userItem{}, err
	}
	return st.applyEventOn(ctx, c, create, basis)
}

// applyEventOn is applyEvent on a first basis.
func (st *Store) applyEventOn(ctx context.Context, c onboarding.StateChange, create bool, basis statusBasis) (onboarding.EventOutcome, userItem, error) {
	for attempt := 1; ; attempt++ {
		outcome, old, err := st.applyEventOnce(ctx, c, create, basis)
		if err != nil || outcome != onboarding.OutcomeSuperseded || basis.matches(old) {
			return outcome, old, err
		}
		if err := st.raceLost(ctx, attempt); err != nil {
			return "", userItem{}, err
		}
		basis = basisOf(c.UserID, old, c.Kind == onboarding.ChangeCapability)
	}
}

func (st *Store) applyEventOnce(ctx context.Context, c onboarding.StateChange, create bool, basis statusBasis) (onboarding.EventOutcome, userItem, error) {
	var old userItem
	update, cond, err := eventUpdate(c, create)
	if err != nil {
		return "", old, err
	}
	if create {
		update = withRequested(update, basis.requested)
	}
	w := recordWrite{update: update, cond: cond}
	if err := st.eventStatusWrite(&w, c, basis, create); err != nil {
		return "", old, err
	}
	u, err := st.transactUpdate(userPK(c.UserID), w.update, w.cond)
	if err != nil {
		return "", old, err
	}
	marker, err := st.put(eventItem{PK: "EVENT#" + c.EventID, AccountID: c.AccountID, ExpiresAt: c.RetainUntil, UpdatedAt: c.Now}, missing(attrPK))
	if err != nil {
		return "", old, err
	}
	items := []types.TransactWriteItem{{Put: marker}, {Update: u}}
	if create {
		index, err := st.accountIndexPut(c.AccountID, c.UserID)
		if err != nil {
			return "", old, err
		}
		items = append(items, types.TransactWriteItem{Put: index})
	}
	for _, p := range w.extra {
		items = append(items, types.TransactWriteItem{Put: p})
	}
	_, err = st.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	var tce *types.TransactionCanceledException
	switch {
	case err == nil:
		return onboarding.OutcomeApplied, old, nil
	case errors.As(err, &tce) && onlyConditionFailures(tce):
		reasons := tce.CancellationReasons
		if len(reasons) > 0 && aws.ToString(reasons[0].Code) == "ConditionalCheckFailed" {
			return onboarding.OutcomeDuplicate, old, nil
		}
		if create && len(reasons) > 2 && aws.ToString(reasons[1].Code) != "ConditionalCheckFailed" {
			// Only the account index refused: another user owns the account.
			return onboarding.OutcomeUnknown, old, nil
		}
		if len(reasons) > 1 {
			if err := attributevalue.UnmarshalMap(reasons[1].Item, &old); err != nil {
				return "", old, onboarding.StorageFailed(err)
			}
		}
		return onboarding.OutcomeSuperseded, old, nil
	default:
		return "", old, onboarding.StorageFailed(err)
	}
}

// eventUpdate builds the user-record update for one change. Every variant
// refuses to touch a deauthorized account (terminal) or another account's
// record, and the state-changing ones refuse older news than what is stored.
func eventUpdate(c onboarding.StateChange, create bool) (expression.UpdateBuilder, expression.ConditionBuilder, error) {
	ours := name(attrAccountID).Equal(value(c.AccountID))
	live := missing(attrDeauthorized)
	switch c.Kind {
	case onboarding.ChangeSnapshot:
		update := expression.Set(name(attrAccountID), value(c.AccountID)).
			Set(name(attrUserID), value(c.UserID)).
			Set(name(attrCreatedAt), expression.IfNotExists(name(attrCreatedAt), value(c.Now))).
			Set(name(attrCountry), expression.IfNotExists(name(attrCountry), value(c.Country))).
			Set(name(attrAgreement), expression.IfNotExists(name(attrAgreement), value(c.ServiceAgreement)))
		update = removeClaim(setState(update, c.State, c.Version, c.Now))
		update = queueOnSubmission(update, c.UserID, c.State, c.Now)
		if create {
			// No account stored yet (a crash after Stripe created it, or a
			// claim still in progress), and the claim is the one that made
			// this account: the event completes the record.
			ours = missing(attrAccountID).And(name(attrCreationID).Equal(value(c.HealCreationID)))
		}
		return update, ours.And(live, eventVersion(c)), nil
	case onboarding.ChangeCapability:
		// Capability events move the version too: account.updated snapshots
		// carry capabilities, and an older one must not undo this change.
		update := expression.Set(name(attrCapabilities).AppendName(expression.NameNoDotSplit(c.Capability)), value(c.CapabilityStatus)).
			Set(name(attrStateVersion), value(c.Version)).
			Set(name(attrUpdatedAt), value(c.Now))
		return update, ours.And(exists(attrCapabilities), live, eventVersion(c)), nil
	case onboarding.ChangeDeauthorize:
		// Terminal whatever the order: no version guard.
		update := expression.Set(name(attrDeauthorized), value(c.Now)).Set(name(attrUpdatedAt), value(c.Now))
		return update, ours.And(live), nil
	default:
		return expression.UpdateBuilder{}, expression.ConditionBuilder{}, errors.New("dynamostore: unknown change kind")
	}
}

// eventVersion is the version guard of a state-changing event: no newer
// state stored, and with SettleTies, at the stored second only a change
// that agrees with what is stored (the same state digest for a snapshot,
// the same status for a capability). Judged in the write's own condition, so
// no write in between can make a disagreeing tie pass.
func eventVersion(c onboarding.StateChange) expression.ConditionBuilder {
	if !c.SettleTies {
		return notNewer(c.Version)
	}
	agrees := name(attrStateDigest).Equal(value(onboarding.StateDigest(c.State)))
	if c.Kind == onboarding.ChangeCapability {
		agrees = name(attrCapabilities).AppendName(expression.NameNoDotSplit(c.Capability)).Equal(value(c.CapabilityStatus))
	}
	older := missing(attrStateVersion).Or(name(attrStateVersion).LessThan(value(c.Version)))
	return older.Or(name(attrStateVersion).Equal(value(c.Version)).And(agrees))
}
