package dynamostore

import (
	"context"
	"errors"

	"github.com/aws/aws-sdk-go-v2/aws"
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
	case str(old, attrAccountID) == c.AccountID:
		return onboarding.OutcomeSuperseded, nil // older news, or deauthorized
	case str(old, attrAccountID) == "" && c.HealCreationID != "" && str(old, attrCreationID) == c.HealCreationID:
		// An unfinished claim, and the account carries its creation id:
		// the event completes the record, with the account index.
		outcome, old, err = st.applyEvent(ctx, c, true)
		if err == nil && outcome == onboarding.OutcomeSuperseded && str(old, attrAccountID) == c.AccountID {
			// The creator stored the account meanwhile: apply to it.
			outcome, _, err = st.applyEvent(ctx, c, false)
		}
		return outcome, err
	default:
		// No record, another account's, or a claim this account did not
		// come from: the event is not this user's.
		return onboarding.OutcomeUnknown, nil
	}
}

// applyEvent runs one event transaction. When the record update's condition
// failed it also returns the record as it was, so the caller can tell stale
// news from a record that does not exist yet. The transaction also stores
// the derived status the event leaves, and records its change (status.go):
// when the record's status was not what the write assumed, it is tried
// again on the record as it was.
func (st *Store) applyEvent(ctx context.Context, c onboarding.StateChange, create bool) (onboarding.EventOutcome, map[string]types.AttributeValue, error) {
	basis, err := st.eventBasis(ctx, c, create)
	if err != nil {
		return "", nil, err
	}
	for attempt := 1; ; attempt++ {
		outcome, old, err := st.applyEventOn(ctx, c, create, basis)
		if err != nil || outcome != onboarding.OutcomeSuperseded || basis.matches(old) {
			return outcome, old, err
		}
		if err := raceLost(ctx, attempt); err != nil {
			return "", nil, err
		}
		if basis, err = basisOf(c.UserID, old, c.Kind == onboarding.ChangeCapability); err != nil {
			return "", nil, err
		}
	}
}

func (st *Store) applyEventOn(ctx context.Context, c onboarding.StateChange, create bool, basis statusBasis) (onboarding.EventOutcome, map[string]types.AttributeValue, error) {
	update, err := st.eventUpdate(c, create)
	if err != nil {
		return "", nil, err
	}
	change, err := st.eventStatusWrite(update, c, basis, create)
	if err != nil {
		return "", nil, err
	}
	update.ReturnValuesOnConditionCheckFailure = types.ReturnValuesOnConditionCheckFailureAllOld
	items := []types.TransactWriteItem{
		{Put: &types.Put{
			TableName: &st.table,
			Item: map[string]types.AttributeValue{
				attrPK: s("EVENT#" + c.EventID), attrAccountID: s(c.AccountID),
				attrExpiresAt: n(c.RetainUntil.Unix()), attrUpdatedAt: timeAttr(c.Now),
			},
			ConditionExpression: aws.String("attribute_not_exists(pk)"),
		}},
		{Update: update},
	}
	if create {
		items = append(items, accountIndexPut(st.table, c.AccountID, c.UserID))
	}
	if change != nil {
		items = append(items, *change)
	}
	err = st.transact(ctx, items)
	var tce *types.TransactionCanceledException
	switch {
	case err == nil:
		return onboarding.OutcomeApplied, nil, nil
	case errors.As(err, &tce) && onlyConditionFailures(tce):
		reasons := tce.CancellationReasons
		if len(reasons) > 0 && aws.ToString(reasons[0].Code) == "ConditionalCheckFailed" {
			return onboarding.OutcomeDuplicate, nil, nil
		}
		if create && len(reasons) > 2 && aws.ToString(reasons[1].Code) != "ConditionalCheckFailed" {
			// Only the account index refused: another user owns the account.
			return onboarding.OutcomeUnknown, nil, nil
		}
		var old map[string]types.AttributeValue
		if len(reasons) > 1 {
			old = reasons[1].Item
		}
		return onboarding.OutcomeSuperseded, old, nil
	default:
		return "", nil, onboarding.StorageFailed(err)
	}
}

// eventUpdate builds the user-record update for one change. Every variant
// refuses to touch a deauthorized account (terminal) or another account's
// record, and the state-changing ones refuse older news than what is stored.
func (st *Store) eventUpdate(c onboarding.StateChange, create bool) (*types.Update, error) {
	const notOlder = "(attribute_not_exists(state_version) OR state_version <= :version)"
	u := &types.Update{
		TableName: &st.table,
		Key:       userKey(c.UserID),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":acct": s(c.AccountID), ":now": timeAttr(c.Now),
		},
	}
	switch c.Kind {
	case onboarding.ChangeSnapshot:
		stateJSON, caps, err := encodeState(c.State)
		if err != nil {
			return nil, err
		}
		u.UpdateExpression = aws.String("SET account_id = :acct, user_id = :user, #state = :state, capabilities = :caps, " +
			"state_version = :version, updated_at = :now, created_at = if_not_exists(created_at, :now), " +
			"country = if_not_exists(country, :country), service_agreement = if_not_exists(service_agreement, :agreement) " +
			"REMOVE claim_id, lease_until, creation_id, attempt, attempt_since, search_first, create_params")
		owner := "account_id = :acct"
		if create {
			// No account stored yet (a crash after Stripe created it, or a
			// claim still in progress), and the claim is the one that made
			// this account: the event completes the record.
			owner = "attribute_not_exists(account_id) AND creation_id = :creation"
			u.ExpressionAttributeValues[":creation"] = s(c.HealCreationID)
		}
		u.ConditionExpression = aws.String(owner + " AND attribute_not_exists(deauthorized_at) AND " + notOlder)
		u.ExpressionAttributeNames = map[string]string{"#state": attrState}
		for k, v := range map[string]types.AttributeValue{
			":user": s(c.UserID), ":state": s(stateJSON), ":caps": caps, ":version": n(c.Version),
			":country": s(c.Country), ":agreement": s(c.ServiceAgreement),
		} {
			u.ExpressionAttributeValues[k] = v
		}
	case onboarding.ChangeCapability:
		// Capability events move the version too: account.updated snapshots
		// carry capabilities, and an older one must not undo this change.
		u.UpdateExpression = aws.String("SET capabilities.#cap = :status, state_version = :version, updated_at = :now")
		u.ConditionExpression = aws.String("account_id = :acct AND attribute_exists(capabilities) AND attribute_not_exists(deauthorized_at) AND " + notOlder)
		u.ExpressionAttributeNames = map[string]string{"#cap": c.Capability}
		u.ExpressionAttributeValues[":status"] = s(c.CapabilityStatus)
		u.ExpressionAttributeValues[":version"] = n(c.Version)
	case onboarding.ChangeDeauthorize:
		// Terminal whatever the order: no version guard.
		u.UpdateExpression = aws.String("SET deauthorized_at = :now, updated_at = :now")
		u.ConditionExpression = aws.String("account_id = :acct AND attribute_not_exists(deauthorized_at)")
	default:
		return nil, errors.New("dynamostore: unknown change kind")
	}
	return u, nil
}
