// Package dynamostore keeps the onboarding core's state in one DynamoDB
// table. It implements onboarding.Store with conditional writes and
// transactions, so every correctness rule holds across processes.
//
// One table, one string partition key "pk", TTL on "expires_at":
//
//	USER#<user id>      the user's creation claim, then their account
//	ACCOUNT#<acct id>   which user owns a Stripe account (webhook lookups)
//	TOKEN#<sha256>      a refresh token, by hash; single use via used_at
//	EVENT#<evt id>      a processed webhook event, kept past Stripe's retries
//	LIMIT#<key>         the recent uses of a per-user or per-account limit
package dynamostore

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/connectexpress/onboarding/shared/onboarding"
)

// Client is the part of *dynamodb.Client the store uses. The in-process
// engine of the dev server (minidyn) and fault-injecting test wrappers
// satisfy it too.
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

// Attribute names, in one place because conditions depend on them.
const (
	attrPK           = "pk"
	attrExpiresAt    = "expires_at" // the table's TTL attribute, Unix seconds
	attrUserID       = "user_id"
	attrAccountID    = "account_id"
	attrClaimID      = "claim_id"
	attrLeaseUntil   = "lease_until" // a claim's or a refresh token's lease, Unix ms
	attrCreationID   = "creation_id"
	attrAttempt      = "attempt"
	attrAttemptSince = "attempt_since"
	attrSearch       = "search_first"
	attrCreateParams = "create_params"
	attrCountry      = "country"
	attrAgreement    = "service_agreement"
	attrState        = "state"
	attrCapabilities = "capabilities"
	attrStateVersion = "state_version"
	attrDeauthorized = "deauthorized_at"
	attrFirstLinkAt  = "first_link_at"
	attrPrefillUntil = "prefill_until" // Unix ms
	attrPrefillID    = "prefill_id"    // the prefill lease's holder
	attrLeaseID      = "lease_id"      // a refresh token reservation's holder
	attrCompletedBy  = "completed_by"  // the claim that stored the account
	attrCreatedAt    = "created_at"
	attrUpdatedAt    = "updated_at"
	attrUsedAt       = "used_at"
)

// Store is the DynamoDB implementation of onboarding.Store.
type Store struct {
	db    Client
	table string
}

// New returns a Store on table through db.
func New(db Client, table string) *Store { return &Store{db: db, table: table} }

func userKey(id string) map[string]types.AttributeValue    { return key("USER#" + id) }
func accountKey(id string) map[string]types.AttributeValue { return key("ACCOUNT#" + id) }
func tokenKey(hash string) map[string]types.AttributeValue { return key("TOKEN#" + hash) }
func eventKey(id string) map[string]types.AttributeValue   { return key("EVENT#" + id) }

func key(pk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrPK: s(pk)}
}

func (st *Store) GetUser(ctx context.Context, userID string) (onboarding.UserRecord, error) {
	out, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: &st.table, Key: userKey(userID), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return onboarding.UserRecord{}, onboarding.StorageFailed(err)
	}
	if len(out.Item) == 0 {
		return onboarding.UserRecord{}, onboarding.ErrNotFound
	}
	return decodeUser(userID, out.Item)
}

func (st *Store) ClaimCreation(ctx context.Context, userID string, c onboarding.CreationClaim, now time.Time) error {
	params, err := json.Marshal(c.Params)
	if err != nil {
		return err
	}
	_, err = st.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: &st.table,
		Item: map[string]types.AttributeValue{
			attrPK:           s("USER#" + userID),
			attrUserID:       s(userID),
			attrClaimID:      s(c.ClaimID),
			attrLeaseUntil:   n(c.LeaseUntil.UnixMilli()),
			attrCreationID:   s(c.CreationID),
			attrAttempt:      n(int64(c.Attempt)),
			attrAttemptSince: n(c.AttemptSince.UnixMilli()),
			attrSearch:       &types.AttributeValueMemberBOOL{Value: c.Search},
			attrCreateParams: s(string(params)),
		},
		// Only a fresh user, or one whose previous claim's lease ran out and
		// who still has no account, can be claimed.
		ConditionExpression: aws.String("attribute_not_exists(pk) OR (attribute_not_exists(account_id) AND lease_until < :now)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":now": n(now.UnixMilli()),
		},
	})
	return conditional(err)
}

func (st *Store) CompleteCreation(ctx context.Context, rec onboarding.AccountRecord, claimID string) error {
	stateJSON, caps, err := encodeState(rec.State)
	if err != nil {
		return err
	}
	items := []types.TransactWriteItem{
		{Update: &types.Update{
			TableName: &st.table,
			Key:       userKey(rec.UserID),
			UpdateExpression: aws.String("SET account_id = :acct, country = :country, service_agreement = :agreement, " +
				"#state = :state, capabilities = :caps, state_version = :version, created_at = :created, updated_at = :updated, " +
				"completed_by = :claim " +
				"REMOVE claim_id, lease_until, creation_id, attempt, attempt_since, search_first, create_params"),
			// The claim must still be ours: a caller that took over an
			// expired lease, or a webhook that healed the record, wins.
			ConditionExpression:      aws.String("claim_id = :claim AND attribute_not_exists(account_id)"),
			ExpressionAttributeNames: map[string]string{"#state": attrState},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":acct": s(rec.AccountID), ":country": s(rec.Country), ":agreement": s(rec.ServiceAgreement),
				":state": s(stateJSON), ":caps": caps, ":version": n(rec.StateVersion),
				":created": timeAttr(rec.CreatedAt), ":updated": timeAttr(rec.UpdatedAt), ":claim": s(claimID),
			},
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		}},
		accountIndexPut(st.table, rec.AccountID, rec.UserID),
	}
	completeStatus(items[0].Update, rec) // status.go: the derived status, the review queue
	err = st.transact(ctx, items)
	var tce *types.TransactionCanceledException
	if errors.As(err, &tce) && len(tce.CancellationReasons) > 0 {
		if old := tce.CancellationReasons[0].Item; str(old, attrAccountID) == rec.AccountID && str(old, attrCompletedBy) == claimID {
			return nil // this very write, retried by the SDK after its answer was lost
		}
	}
	return conditional(err)
}

// accountIndexPut records which user owns an account; it never moves an
// account to another user.
func accountIndexPut(table, accountID, userID string) types.TransactWriteItem {
	return types.TransactWriteItem{Put: &types.Put{
		TableName: &table,
		Item: map[string]types.AttributeValue{
			attrPK: s("ACCOUNT#" + accountID), attrUserID: s(userID), attrAccountID: s(accountID),
		},
		ConditionExpression:       aws.String("attribute_not_exists(pk) OR user_id = :user"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":user": s(userID)},
	}}
}

func (st *Store) ReleaseClaim(ctx context.Context, userID string, next onboarding.CreationClaim) error {
	// Params the next attempt may not replay are JSON null (what
	// ClaimCreation stores for none) rather than REMOVEd: minidyn v0.8.2,
	// the dev server's engine, silently ignores REMOVE in UpdateItem, so the
	// refused params would be replayed forever.
	params, err := json.Marshal(next.Params)
	if err != nil {
		return err
	}
	_, err = st.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &st.table, Key: userKey(userID),
		UpdateExpression:    aws.String("SET lease_until = :zero, attempt = :attempt, attempt_since = :since, search_first = :search, create_params = :params"),
		ConditionExpression: aws.String("claim_id = :claim AND attribute_not_exists(account_id)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":zero": n(0), ":claim": s(next.ClaimID), ":attempt": n(int64(next.Attempt)),
			":since": n(next.AttemptSince.UnixMilli()), ":search": &types.AttributeValueMemberBOOL{Value: next.Search},
			":params": s(string(params)),
		},
	})
	return conditional(err)
}

// SaveState is in status.go: it records the status change it makes.
func (st *Store) SaveState(ctx context.Context, userID string, state onboarding.AccountState, version int64, now time.Time, cause onboarding.Cause) (onboarding.AccountRecord, error) {
	return st.saveState(ctx, userID, state, version, now, cause)
}

func (st *Store) LockPrefill(ctx context.Context, userID, accountID string, now time.Time) (onboarding.AccountRecord, bool, error) {
	return st.userUpdate(ctx, userID, &dynamodb.UpdateItemInput{
		// The first request's time stays: it is when Stripe's lock began.
		UpdateExpression: aws.String("SET first_link_at = if_not_exists(first_link_at, :at)"),
		// No prefill update may be on its way to Stripe when the lock is
		// taken: it would arrive after the link.
		ConditionExpression: aws.String("account_id = :acct AND attribute_not_exists(deauthorized_at) AND " +
			"(attribute_not_exists(prefill_until) OR prefill_until <= :now)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":at": timeAttr(now), ":acct": s(accountID), ":now": n(now.UnixMilli()),
		},
	})
}

func (st *Store) BeginPrefill(ctx context.Context, userID string, now time.Time, lease onboarding.Lease) (onboarding.AccountRecord, bool, error) {
	rec, taken, err := st.userUpdate(ctx, userID, &dynamodb.UpdateItemInput{
		UpdateExpression: aws.String("SET prefill_until = :until, prefill_id = :id"),
		ConditionExpression: aws.String("attribute_exists(account_id) AND attribute_not_exists(first_link_at) AND " +
			"attribute_not_exists(deauthorized_at) AND (attribute_not_exists(prefill_until) OR prefill_until <= :now)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":until": n(lease.Until.UnixMilli()), ":id": s(lease.ID), ":now": n(now.UnixMilli()),
		},
	})
	// A refusal that shows this lease is this very write, retried by the
	// SDK after its answer was lost.
	return rec, taken || (err == nil && rec.PrefillLease.ID == lease.ID), err
}

func (st *Store) EndPrefill(ctx context.Context, userID string, lease onboarding.Lease) error {
	_, err := st.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &st.table, Key: userKey(userID),
		UpdateExpression:          aws.String("SET prefill_until = :zero"),
		ConditionExpression:       aws.String("prefill_id = :id"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":zero": n(0), ":id": s(lease.ID)},
	})
	if err := conditional(err); !errors.Is(err, onboarding.ErrConflict) {
		return err
	}
	return nil // another update took over an expired lease: it is theirs to end
}

// userUpdate runs a conditional update of a user's record and returns the
// record after it, or as it was when the condition failed (ErrNotFound when
// there is none).
func (st *Store) userUpdate(ctx context.Context, userID string, in *dynamodb.UpdateItemInput) (onboarding.AccountRecord, bool, error) {
	in.TableName, in.Key = &st.table, userKey(userID)
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
	if len(item) == 0 {
		return onboarding.AccountRecord{}, false, onboarding.ErrNotFound
	}
	u, derr := decodeUser(userID, item)
	if derr != nil {
		return onboarding.AccountRecord{}, false, derr
	}
	if u.Account == nil {
		return onboarding.AccountRecord{}, false, onboarding.ErrNotFound
	}
	return *u.Account, err == nil, nil
}

func (st *Store) PutRefreshToken(ctx context.Context, t onboarding.RefreshToken) error {
	_, err := st.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: &st.table,
		Item: map[string]types.AttributeValue{
			attrPK: s("TOKEN#" + t.Hash), attrUserID: s(t.UserID), attrAccountID: s(t.AccountID),
			attrExpiresAt: n(t.ExpiresAt.Unix()),
		},
		ConditionExpression: aws.String("attribute_not_exists(pk)"),
	})
	return conditional(err)
}

func (st *Store) ClaimRefreshToken(ctx context.Context, hash string, now time.Time, lease onboarding.Lease) (onboarding.RefreshToken, error) {
	// One conditional write reserves the token: of concurrent redeemers one
	// wins. TTL deletion lags by up to days, so expiry is checked here,
	// never left to TTL.
	out, err := st.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &st.table, Key: tokenKey(hash),
		UpdateExpression: aws.String("SET lease_until = :until, lease_id = :id"),
		ConditionExpression: aws.String("attribute_exists(pk) AND attribute_not_exists(used_at) AND expires_at > :nowSec AND " +
			"(attribute_not_exists(lease_until) OR lease_until <= :now)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":until": n(lease.Until.UnixMilli()), ":id": s(lease.ID), ":now": n(now.UnixMilli()), ":nowSec": n(now.Unix()),
		},
		ReturnValues:                        types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var ccf *types.ConditionalCheckFailedException
	var item map[string]types.AttributeValue
	switch {
	case err == nil:
		item = out.Attributes
	case errors.As(err, &ccf) && str(ccf.Item, attrLeaseID) == lease.ID && ccf.Item[attrUsedAt] == nil:
		item = ccf.Item // this very write, retried by the SDK after its answer was lost
	case errors.As(err, &ccf):
		return onboarding.RefreshToken{}, onboarding.ErrTokenInvalid
	default:
		return onboarding.RefreshToken{}, onboarding.StorageFailed(err)
	}
	expires, _ := number(item, attrExpiresAt)
	return onboarding.RefreshToken{
		Hash: hash, UserID: str(item, attrUserID), AccountID: str(item, attrAccountID),
		ExpiresAt: time.Unix(expires, 0),
	}, nil
}

func (st *Store) ReleaseRefreshToken(ctx context.Context, hash string, lease onboarding.Lease) error {
	_, err := st.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &st.table, Key: tokenKey(hash),
		UpdateExpression:          aws.String("SET lease_until = :zero"),
		ConditionExpression:       aws.String("lease_id = :id AND attribute_not_exists(used_at)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":zero": n(0), ":id": s(lease.ID)},
	})
	if err := conditional(err); !errors.Is(err, onboarding.ErrConflict) {
		return err
	}
	return nil // the reservation ran out and another redeemer holds the token
}

func (st *Store) SpendRefreshToken(ctx context.Context, hash string, now time.Time) error {
	// Marking rather than deleting: the used token stays visible until TTL
	// removes it.
	_, err := st.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &st.table, Key: tokenKey(hash),
		UpdateExpression:          aws.String("SET used_at = :now"),
		ConditionExpression:       aws.String("attribute_exists(pk) AND attribute_not_exists(used_at)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":now": timeAttr(now)},
	})
	if err := conditional(err); !errors.Is(err, onboarding.ErrConflict) {
		return err
	}
	return nil
}

func (st *Store) FindUserByAccount(ctx context.Context, accountID string) (string, error) {
	out, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: &st.table, Key: accountKey(accountID), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return "", onboarding.StorageFailed(err)
	}
	if user := str(out.Item, attrUserID); user != "" {
		return user, nil
	}
	return "", onboarding.ErrNotFound
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

func s(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
func n(v int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}

func timeAttr(t time.Time) types.AttributeValue {
	return s(t.UTC().Format(time.RFC3339Nano))
}

func str(item map[string]types.AttributeValue, name string) string {
	if v, ok := item[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

func number(item map[string]types.AttributeValue, name string) (int64, bool) {
	v, ok := item[name].(*types.AttributeValueMemberN)
	if !ok {
		return 0, false
	}
	i, err := strconv.ParseInt(v.Value, 10, 64)
	return i, err == nil
}

func timeOf(item map[string]types.AttributeValue, name string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, str(item, name))
	return t
}

// transactConflictRetries bounds how often a transaction that collided with
// another one on the same item is tried again.
const transactConflictRetries = 3

// transact runs a write transaction. DynamoDB cancels a transaction that
// races another on the same item (TransactionConflict); retrying it here,
// briefly, saves the caller a 503 and Stripe a redelivery.
func (st *Store) transact(ctx context.Context, items []types.TransactWriteItem) error {
	for attempt := 0; ; attempt++ {
		_, err := st.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
		if err == nil || attempt == transactConflictRetries || !transactionConflict(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(attempt+1) * time.Duration(5+rand.IntN(20)) * time.Millisecond):
		}
	}
}

func transactionConflict(err error) bool {
	var tce *types.TransactionCanceledException
	if !errors.As(err, &tce) {
		return false
	}
	for _, r := range tce.CancellationReasons {
		if aws.ToString(r.Code) == "TransactionConflict" {
			return true
		}
	}
	return false
}
