// Package dynamostore keeps the onboarding core's state in one DynamoDB
// table. It implements onboarding.Store with conditional writes and
// transactions, so every correctness rule holds across processes.
//
// One table, one string partition key "pk", TTL on "expires_at"; one item
// struct per kind (items.go):
//
//	USER#<user id>      the user's creation claim, then their account
//	ACCOUNT#<acct id>   which user owns a Stripe account (webhook lookups)
//	TOKEN#<sha256>      a refresh token, by hash; single use via used_at
//	EVENT#<evt id>      a processed webhook event, kept past Stripe's retries
//	LIMIT#<key>         the recent uses of a per-user or per-account limit
//	STATUS#<user>#<seq> one change of an account's derived status (status.go)
//	REVIEW#<user>#...   one staff decision, append-only (admin.go)
//
// Three sparse global secondary indexes serve the staff routes (admin.go).
//
// Conditions and updates are built with the SDK's expression package: the
// attribute names come from the constants the item structs also spell, and
// values are marshalled as the items are.
package dynamostore

import (
	"context"
	"errors"
	"reflect"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/connectexpress/onboarding/shared/onboarding"
)

// Client is the part of *dynamodb.Client the store uses. The dev server's
// in-process engine and fault-injecting test wrappers satisfy it too.
type Client interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
	// The staff routes' index queries and the records they list (admin.go).
	Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
}

var (
	_ Client                = (*dynamodb.Client)(nil)
	_ onboarding.Store      = (*Store)(nil)
	_ onboarding.StaffStore = (*Store)(nil)
)

// Store is the DynamoDB implementation of onboarding.Store.
type Store struct {
	db    Client
	table string
	// wait pauses between retries: sleep, which tests replace to see how
	// long without taking that long.
	wait func(ctx context.Context, d time.Duration) error
}

// New returns a Store on table through db.
func New(db Client, table string) *Store { return &Store{db: db, table: table, wait: onboarding.Sleep} }

// updateInput is a conditional update of the item at pk.
func (st *Store) updateInput(pk string, update expression.UpdateBuilder, cond expression.ConditionBuilder) (*dynamodb.UpdateItemInput, error) {
	e, err := expression.NewBuilder().WithUpdate(update).WithCondition(cond).Build()
	if err != nil {
		return nil, err
	}
	return &dynamodb.UpdateItemInput{
		TableName: &st.table, Key: keyOf(pk),
		UpdateExpression: e.Update(), ConditionExpression: e.Condition(),
		ExpressionAttributeNames: e.Names(), ExpressionAttributeValues: e.Values(),
	}, nil
}

// transactUpdate is updateInput as a transaction's item.
func (st *Store) transactUpdate(pk string, update expression.UpdateBuilder, cond expression.ConditionBuilder) (*types.Update, error) {
	in, err := st.updateInput(pk, update, cond)
	if err != nil {
		return nil, err
	}
	return &types.Update{
		TableName: in.TableName, Key: in.Key,
		UpdateExpression: in.UpdateExpression, ConditionExpression: in.ConditionExpression,
		ExpressionAttributeNames: in.ExpressionAttributeNames, ExpressionAttributeValues: in.ExpressionAttributeValues,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}, nil
}

// put is a conditional put of item, as a transaction's item.
func (st *Store) put(item any, cond expression.ConditionBuilder) (*types.Put, error) {
	av, err := marshalItem(item)
	if err != nil {
		return nil, err
	}
	e, err := expression.NewBuilder().WithCondition(cond).Build()
	if err != nil {
		return nil, err
	}
	return &types.Put{
		TableName: &st.table, Item: av, ConditionExpression: e.Condition(),
		ExpressionAttributeNames: e.Names(), ExpressionAttributeValues: e.Values(),
	}, nil
}

func (st *Store) putItem(ctx context.Context, item any, cond expression.ConditionBuilder) error {
	p, err := st.put(item, cond)
	if err != nil {
		return err
	}
	_, err = st.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: p.TableName, Item: p.Item, ConditionExpression: p.ConditionExpression,
		ExpressionAttributeNames: p.ExpressionAttributeNames, ExpressionAttributeValues: p.ExpressionAttributeValues,
	})
	return conditional(err)
}

func (st *Store) getItem(ctx context.Context, pk string) (map[string]types.AttributeValue, error) {
	out, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &st.table, Key: keyOf(pk), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, onboarding.StorageFailed(err)
	}
	return out.Item, nil
}

func (st *Store) GetUser(ctx context.Context, userID string) (onboarding.UserRecord, error) {
	item, err := st.getItem(ctx, userPK(userID))
	if err != nil {
		return onboarding.UserRecord{}, err
	}
	return decodeUser(userID, item)
}

func (st *Store) ClaimCreation(ctx context.Context, userID string, c onboarding.CreationClaim, now time.Time) error {
	// Only a fresh user, or one whose previous claim's lease ran out and
	// who still has no account, can be claimed.
	return st.putItem(ctx, claimItem(userID, c),
		missing(attrPK).Or(missing(attrAccountID).And(name(attrLeaseUntil).LessThan(value(now.UnixMilli())))))
}

func (st *Store) CompleteCreation(ctx context.Context, rec onboarding.AccountRecord, claimID string) error {
	update := expression.Set(name(attrAccountID), value(rec.AccountID)).
		Set(name(attrCountry), value(rec.Country)).
		Set(name(attrAgreement), value(rec.ServiceAgreement)).
		Set(name(attrCreatedAt), value(rec.CreatedAt)).
		Set(name(attrCompletedBy), value(claimID)).
		// The derived status, and the account's place in the review queue.
		Set(name(attrDerivedStatus), value(string(onboarding.DeriveStatus(rec.State, rec.ServiceAgreement, rec.UpdatedAt))))
	update = enterQueue(update, rec.UserID, rec.CreatedAt)
	update = queueOnSubmission(update, rec.UserID, rec.State, rec.UpdatedAt)
	update = withRequested(update, rec.State.RequestedCapabilities)
	for attr, v := range map[string]string{attrEmail: rec.Email, attrBusinessName: rec.BusinessName, attrBusinessURL: rec.BusinessURL} {
		if v != "" {
			update = update.Set(name(attr), value(v))
		}
	}
	// The claim must still be ours: a caller that took over an expired
	// lease, or a webhook that healed the record, wins.
	u, err := st.transactUpdate(userPK(rec.UserID), removeClaim(setState(update, rec.State, rec.StateVersion, rec.UpdatedAt)),
		name(attrClaimID).Equal(value(claimID)).And(missing(attrAccountID)))
	if err != nil {
		return err
	}
	index, err := st.accountIndexPut(rec.AccountID, rec.UserID)
	if err != nil {
		return err
	}
	items := []types.TransactWriteItem{{Update: u}, {Put: index}}
	if rec.Email != "" {
		items = append(items, types.TransactWriteItem{Update: st.emailSetUpdate(rec.Email, "ADD", rec.UserID)})
	}
	_, err = st.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	var tce *types.TransactionCanceledException
	if errors.As(err, &tce) && len(tce.CancellationReasons) > 0 {
		var old userItem
		_ = attributevalue.UnmarshalMap(tce.CancellationReasons[0].Item, &old)
		if old.AccountID == rec.AccountID && old.CompletedBy == claimID {
			return nil // this very write, retried by the SDK after its answer was lost
		}
	}
	return conditional(err)
}

// setState adds what every state write replaces: the state document, the
// capabilities, the version and the time.
func setState(u expression.UpdateBuilder, state onboarding.AccountState, version int64, at time.Time) expression.UpdateBuilder {
	caps := state.Capabilities
	if caps == nil {
		caps = map[string]string{} // a map to set keys in, even when empty
	}
	return u.Set(name(attrState), value(stateDoc(state))).
		Set(name(attrCapabilities), value(caps)).
		Set(name(attrStateDigest), value(onboarding.StateDigest(state))).
		Set(name(attrStateVersion), value(version)).
		Set(name(attrUpdatedAt), value(at))
}

func removeClaim(u expression.UpdateBuilder) expression.UpdateBuilder {
	for _, attr := range claimAttributes {
		u = u.Remove(name(attr))
	}
	return u
}

// accountIndexPut records which user owns an account; it never moves an
// account to another user.
func (st *Store) accountIndexPut(accountID, userID string) (*types.Put, error) {
	return st.put(accountIndexItem{PK: "ACCOUNT#" + accountID, UserID: userID, AccountID: accountID},
		missing(attrPK).Or(name(attrUserID).Equal(value(userID))))
}

func (st *Store) ReleaseClaim(ctx context.Context, userID string, next onboarding.CreationClaim) error {
	// The lease ends now; the next attempt starts from what next says,
	// and what it leaves empty (no params to replay) is removed.
	update := expression.Set(name(attrLeaseUntil), value(0)).Set(name(attrAttempt), value(next.Attempt))
	update = setOrRemove(update, attrAttemptSince, millis(next.AttemptSince))
	update = setOrRemove(update, attrSearch, next.Search)
	update = setOrRemove(update, attrCreateParams, docOf(next.Params))
	in, err := st.updateInput(userPK(userID), update, name(attrClaimID).Equal(value(next.ClaimID)).And(missing(attrAccountID)))
	if err != nil {
		return err
	}
	_, err = st.db.UpdateItem(ctx, in)
	return conditional(err)
}

// setOrRemove sets attr to v, or removes it when v is its type's zero.
func setOrRemove(u expression.UpdateBuilder, attr string, v any) expression.UpdateBuilder {
	if reflect.ValueOf(v).IsZero() {
		return u.Remove(name(attr))
	}
	return u.Set(name(attr), value(v))
}

// SaveState is in status.go: it records the status change it makes.
func (st *Store) SaveState(ctx context.Context, userID string, state onboarding.AccountState, version int64, now time.Time, cause onboarding.Cause) (onboarding.AccountRecord, error) {
	return st.saveState(ctx, userID, state, version, now, cause)
}

// notNewer holds when no state newer than version is stored.
func notNewer(version int64) expression.ConditionBuilder {
	return missing(attrStateVersion).Or(name(attrStateVersion).LessThanEqual(value(version)))
}

func (st *Store) LockPrefill(ctx context.Context, userID, accountID string, now time.Time) (onboarding.AccountRecord, bool, error) {
	// The first request's time stays: it is when Stripe's lock began. No
	// prefill update may be on its way to Stripe when the lock is taken: it
	// would arrive after the link.
	return st.userUpdate(ctx, userID,
		expression.Set(name(attrFirstLinkAt), expression.IfNotExists(name(attrFirstLinkAt), value(now))),
		name(attrAccountID).Equal(value(accountID)).And(missing(attrDeauthorized), leaseFree(attrPrefillUntil, now)))
}

func (st *Store) BeginPrefill(ctx context.Context, userID string, now time.Time, lease onboarding.Lease) (onboarding.AccountRecord, bool, error) {
	rec, taken, err := st.userUpdate(ctx, userID,
		expression.Set(name(attrPrefillUntil), value(lease.Until.UnixMilli())).Set(name(attrPrefillID), value(lease.ID)),
		exists(attrAccountID).And(missing(attrFirstLinkAt), missing(attrDeauthorized), leaseFree(attrPrefillUntil, now)))
	// A refusal that shows this lease is this very write, retried by the
	// SDK after its answer was lost.
	return rec, taken || (err == nil && rec.PrefillLease.ID == lease.ID), err
}

func (st *Store) EndPrefill(ctx context.Context, userID string, lease onboarding.Lease) error {
	in, err := st.updateInput(userPK(userID), expression.Set(name(attrPrefillUntil), value(0)), name(attrPrefillID).Equal(value(lease.ID)))
	if err != nil {
		return err
	}
	_, err = st.db.UpdateItem(ctx, in)
	if err := conditional(err); !errors.Is(err, onboarding.ErrConflict) {
		return err
	}
	return nil // another update took over an expired lease: it is theirs to end
}

// userUpdate runs a conditional update of a user's record and returns the
// record after it, or as it was when the condition failed (ErrNotFound when
// there is none).
func (st *Store) userUpdate(ctx context.Context, userID string, update expression.UpdateBuilder, cond expression.ConditionBuilder) (onboarding.AccountRecord, bool, error) {
	in, err := st.updateInput(userPK(userID), update, cond)
	if err != nil {
		return onboarding.AccountRecord{}, false, err
	}
	in.ReturnValues = types.ReturnValueAllNew
	in.ReturnValuesOnConditionCheckFailure = types.ReturnValuesOnConditionCheckFailureAllOld
	out, err := st.db.UpdateItem(ctx, in)
	var item map[string]types.AttributeValue
	var ccf *types.ConditionalCheckFailedException
	switch {
	case err == nil:
		item = out.Attributes
	case errors.As(err, &ccf):
		item = ccf.Item
	default:
		return onboarding.AccountRecord{}, false, onboarding.StorageFailed(err)
	}
	rec, derr := decodeAccount(userID, item)
	if derr != nil {
		return onboarding.AccountRecord{}, false, derr
	}
	return rec, err == nil, nil
}

func (st *Store) PutRefreshToken(ctx context.Context, t onboarding.RefreshToken) error {
	return st.putItem(ctx, tokenItem{PK: "TOKEN#" + t.Hash, UserID: t.UserID, AccountID: t.AccountID, ExpiresAt: t.ExpiresAt, IssuedAt: t.IssuedAt},
		missing(attrPK))
}

func (st *Store) ClaimRefreshToken(ctx context.Context, hash string, now time.Time, lease onboarding.Lease) (onboarding.RefreshToken, error) {
	// One conditional write reserves the token: of concurrent redeemers one
	// wins. TTL deletion lags by up to days, so expiry is checked here,
	// never left to TTL.
	in, err := st.updateInput("TOKEN#"+hash,
		expression.Set(name(attrLeaseUntil), value(lease.Until.UnixMilli())).Set(name(attrLeaseID), value(lease.ID)),
		exists(attrPK).And(missing(attrUsedAt), name(attrExpiresAt).GreaterThan(value(attributevalue.UnixTime(now))),
			leaseFree(attrLeaseUntil, now)))
	if err != nil {
		return onboarding.RefreshToken{}, err
	}
	in.ReturnValues = types.ReturnValueAllNew
	in.ReturnValuesOnConditionCheckFailure = types.ReturnValuesOnConditionCheckFailureAllOld
	out, err := st.db.UpdateItem(ctx, in)
	var ccf *types.ConditionalCheckFailedException
	var tok tokenItem
	switch {
	case err == nil:
		err = attributevalue.UnmarshalMap(out.Attributes, &tok)
	case errors.As(err, &ccf):
		err = attributevalue.UnmarshalMap(ccf.Item, &tok)
		if err == nil && (tok.LeaseID != lease.ID || !tok.UsedAt.IsZero()) {
			return onboarding.RefreshToken{}, onboarding.ErrTokenInvalid
		} // else this very write, retried by the SDK after its answer was lost
	}
	if err != nil {
		return onboarding.RefreshToken{}, onboarding.StorageFailed(err)
	}
	return onboarding.RefreshToken{Hash: hash, UserID: tok.UserID, AccountID: tok.AccountID, ExpiresAt: tok.ExpiresAt, IssuedAt: tok.IssuedAt}, nil
}

func (st *Store) ReleaseRefreshToken(ctx context.Context, hash string, lease onboarding.Lease) error {
	in, err := st.updateInput("TOKEN#"+hash, expression.Set(name(attrLeaseUntil), value(0)),
		name(attrLeaseID).Equal(value(lease.ID)).And(missing(attrUsedAt)))
	if err != nil {
		return err
	}
	_, err = st.db.UpdateItem(ctx, in)
	if err := conditional(err); !errors.Is(err, onboarding.ErrConflict) {
		return err
	}
	return nil // the reservation ran out and another redeemer holds the token
}

func (st *Store) SpendRefreshToken(ctx context.Context, hash string, now time.Time) error {
	// Marking rather than deleting: the used token stays visible until TTL
	// removes it.
	in, err := st.updateInput("TOKEN#"+hash, expression.Set(name(attrUsedAt), value(now)), exists(attrPK).And(missing(attrUsedAt)))
	if err != nil {
		return err
	}
	_, err = st.db.UpdateItem(ctx, in)
	if err := conditional(err); !errors.Is(err, onboarding.ErrConflict) {
		return err
	}
	return nil
}

func (st *Store) FindUserByAccount(ctx context.Context, accountID string) (string, error) {
	item, err := st.getItem(ctx, "ACCOUNT#"+accountID)
	if err != nil {
		return "", err
	}
	var index accountIndexItem
	if err := attributevalue.UnmarshalMap(item, &index); err != nil {
		return "", onboarding.StorageFailed(err)
	}
	if index.UserID == "" {
		return "", onboarding.ErrNotFound
	}
	return index.UserID, nil
}

// conditional maps a lost conditional write to onboarding.ErrConflict and
// any other failure to a retryable storage error.
func conditional(err error) error {
	var ccf *types.ConditionalCheckFailedException
	var tce *types.TransactionCanceledException
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ccf):
		return onboarding.ErrConflict
	case errors.As(err, &tce) && onlyConditionFailures(tce):
		return onboarding.ErrConflict
	default:
		return onboarding.StorageFailed(err)
	}
}

func onlyConditionFailures(tce *types.TransactionCanceledException) bool {
	failed := false
	for _, r := range tce.CancellationReasons {
		switch aws.ToString(r.Code) {
		case "ConditionalCheckFailed":
			failed = true
		case "None", "":
		default:
			return false
		}
	}
	return failed
}
