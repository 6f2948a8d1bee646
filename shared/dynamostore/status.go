package dynamostore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/connectexpress/onboarding/shared/onboarding"
)

// The derived status of an account is computed (onboarding.DeriveStatus),
// but staff list accounts by it: so every write of an account's state also
// stores the status it derives to, as a key of the by-status index, and,
// when it differs from the stored one, writes a STATUS# history item in the
// same transaction. The write is conditioned on the status it read (or
// assumed), so the history's "from" is exact even under concurrent writers.
//
//	USER#<user id>                    + derived_status, status_seq, review, listed_at, reviewed_by, reviewed_at
//	STATUS#<user id>#<seq>            one status change: from_status, to_status, cause, at, seq
//	REVIEW#<user id>#<at>#<random>    one staff decision (admin.go)
const (
	// attrDerivedStatus is the account's onboarding.Status as of its last
	// state write (deadlines are judged at that write's time).
	attrDerivedStatus = "derived_status"
	// attrStatusSeq counts the record's status changes: each change item
	// carries its number, so the history's order never depends on clocks.
	attrStatusSeq = "status_seq"
	attrReview    = "review" // onboarding.Review: pending, approved, rejected
	// attrListedAt orders the staff list: created_at at fixed width (so
	// strings sort as times), "#", the user id (so keys are unique).
	attrListedAt   = "listed_at"
	attrReviewedBy = "reviewed_by"
	attrReviewedAt = "reviewed_at"
	// The history index's keys, on STATUS# and REVIEW# items only.
	attrHistoryUser = "history_user"
	attrHistoryKey  = "history_key" // "status#<seq>" or "review#<at>#<random>"
)

// The table's global secondary indexes, all sparse: only the items that
// carry their keys are in them. template.yaml declares the same.
const (
	// IndexByReview holds account records by review, newest first, with
	// their derived status (to filter on).
	IndexByReview = "by-review"
	// IndexByStatus holds account records by derived status, newest first.
	IndexByStatus = "by-status"
	// IndexHistory holds each account's status changes and decisions.
	IndexHistory = "history"
)

// History kinds: the prefix of history_key.
const (
	historyStatus = "status#"
	historyReview = "review#"
)

// fixedTime formats t so that the strings of two times sort as the times do.
const fixedTime = "2006-01-02T15:04:05.000000000Z"

func listedAt(created time.Time, userID string) string {
	return created.UTC().Format(fixedTime) + "#" + userID
}

// statusAttempts bounds how often a state write is tried again because the
// record changed between reading it and writing.
const statusAttempts = 8

// errStatusRace: other writers changed the record on every attempt. The
// caller retries (a webhook answers 503, so Stripe redelivers).
var errStatusRace = errors.New("dynamostore: the account's status changed under each attempt to write it")

// raceLost is called when attempt lost to another writer: it fails the
// write after the last attempt, and otherwise waits a little (none before
// the first retry, which usually wins), jittered so that writers spread.
func raceLost(ctx context.Context, attempt int) error {
	if attempt >= statusAttempts {
		return onboarding.StorageFailed(errStatusRace)
	}
	if attempt == 1 {
		return nil
	}
	select {
	case <-ctx.Done():
		return onboarding.StorageFailed(ctx.Err())
	case <-time.After(time.Duration(attempt) * time.Duration(1+mathrand.IntN(10)) * time.Millisecond):
		return nil
	}
}

// statusBasis is what a state write assumes the record holds: its derived
// status ("" for none: a claim, or a record from before derived statuses)
// and service agreement; when read from the record, its count of status
// changes; and, for a write that builds on the stored state (a capability
// change), that state, pinned by its updated_at. The write is conditioned
// on all of it.
type statusBasis struct {
	status    string
	agreement string // "": not assumed
	read      bool   // from the record: seq is known
	seq       int64
	updatedAt string // "": not pinned
	state     onboarding.AccountState
}

// basisOf is what item holds; pin also pins its state.
func basisOf(userID string, item map[string]types.AttributeValue, pin bool) (statusBasis, error) {
	b := statusBasis{status: str(item, attrDerivedStatus), agreement: str(item, attrAgreement), read: true}
	b.seq, _ = number(item, attrStatusSeq)
	if !pin {
		return b, nil
	}
	b.updatedAt = str(item, attrUpdatedAt)
	if u, err := decodeUser(userID, item); err == nil && u.Account != nil {
		b.state = u.Account.State
	} else if err != nil && !errors.Is(err, onboarding.ErrNotFound) {
		return b, err
	}
	return b, nil
}

// matches says whether item is what the basis assumed: if not, a refused
// write was refused for that, and is tried again on item.
func (b statusBasis) matches(item map[string]types.AttributeValue) bool {
	seq, _ := number(item, attrStatusSeq)
	return str(item, attrDerivedStatus) == b.status && (!b.read || seq == b.seq) &&
		(b.agreement == "" || str(item, attrAgreement) == b.agreement) &&
		(b.updatedAt == "" || str(item, attrUpdatedAt) == b.updatedAt)
}

// condition is the basis as a condition expression, its values added to values.
func (b statusBasis) condition(values map[string]types.AttributeValue) string {
	cond := "attribute_not_exists(derived_status)"
	if b.status != "" {
		cond, values[":basis_status"] = "derived_status = :basis_status", s(b.status)
	}
	if b.agreement != "" {
		cond, values[":basis_agreement"] = cond+" AND service_agreement = :basis_agreement", s(b.agreement)
	}
	switch {
	case b.read && b.seq == 0:
		cond += " AND attribute_not_exists(status_seq)"
	case b.read:
		cond, values[":basis_seq"] = cond+" AND status_seq = :basis_seq", n(b.seq)
	}
	if b.updatedAt != "" {
		cond, values[":basis_updated"] = cond+" AND updated_at = :basis_updated", s(b.updatedAt)
	}
	return cond
}

// statusChangeItem is one change of an account's derived status.
type statusChangeItem struct {
	PK           string    `dynamodbav:"pk"`
	UserID       string    `dynamodbav:"user_id"`
	AccountID    string    `dynamodbav:"account_id"`
	From         string    `dynamodbav:"from_status"`
	To           string    `dynamodbav:"to_status"`
	Cause        string    `dynamodbav:"cause"` // onboarding.Cause: webhook, refresh, sweep, staff
	At           time.Time `dynamodbav:"at"`
	StateVersion int64     `dynamodbav:"state_version"`
	Seq          int64     `dynamodbav:"seq"` // the record's status_seq after this change
	HistoryUser  string    `dynamodbav:"history_user"`
	HistoryKey   string    `dynamodbav:"history_key"`
}

// statusWrite is what a state write is about: whose status moves to what,
// at which version, and why.
type statusWrite struct {
	userID, accountID string
	to                onboarding.Status
	cause             onboarding.Cause
	at                time.Time
	version           int64
}

// withStatus makes u store w.to as the derived status, conditioned on b,
// and returns the status change item to write in the same transaction when
// the status changes (nil when it stays, or when the record had none).
func withStatus(table string, u *types.Update, b statusBasis, w statusWrite) (*types.TransactWriteItem, error) {
	if u.ExpressionAttributeValues == nil {
		u.ExpressionAttributeValues = map[string]types.AttributeValue{}
	}
	addSet(u, "derived_status = :derived_status")
	u.ExpressionAttributeValues[":derived_status"] = s(string(w.to))
	u.ConditionExpression = aws.String("(" + aws.ToString(u.ConditionExpression) + ") AND " + b.condition(u.ExpressionAttributeValues))
	if b.status == "" || b.status == string(w.to) {
		return nil, nil
	}
	if !b.read {
		// Only an assumed basis is unread, and it assumes no change.
		return nil, errors.New("dynamostore: a status change on a basis not read from the record")
	}
	seq := b.seq + 1
	addSet(u, "status_seq = :status_seq")
	u.ExpressionAttributeValues[":status_seq"] = n(seq)
	key := fmt.Sprintf("%012d", seq)
	item, err := attributevalue.MarshalMap(statusChangeItem{
		PK: "STATUS#" + w.userID + "#" + key, UserID: w.userID, AccountID: w.accountID,
		From: b.status, To: string(w.to), Cause: string(w.cause), At: w.at.UTC(), StateVersion: w.version, Seq: seq,
		HistoryUser: w.userID, HistoryKey: historyStatus + key,
	})
	if err != nil {
		return nil, err
	}
	return &types.TransactWriteItem{Put: &types.Put{
		TableName: &table, Item: item, ConditionExpression: aws.String("attribute_not_exists(pk)"),
	}}, nil
}

// addSet puts clause first in u's SET.
func addSet(u *types.Update, clause string) {
	expr := aws.ToString(u.UpdateExpression)
	if rest, ok := strings.CutPrefix(expr, "SET "); ok {
		expr = "SET " + clause + ", " + rest
	} else {
		expr = strings.TrimSpace("SET " + clause + " " + expr)
	}
	u.UpdateExpression = &expr
}

func randomSuffix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newAccountSets is what a new account record starts with besides its
// state: its place in the review queue, as pending.
const newAccountSets = "review = if_not_exists(review, :review_pending), listed_at = if_not_exists(listed_at, :listed_at)"

func newAccountValues(values map[string]types.AttributeValue, userID string, created time.Time) {
	values[":review_pending"] = s(string(onboarding.ReviewPending))
	values[":listed_at"] = s(listedAt(created, userID))
}

// completeStatus adds to CompleteCreation's update what a new record holds:
// its derived status and its place in the review queue.
func completeStatus(u *types.Update, rec onboarding.AccountRecord) {
	addSet(u, newAccountSets+", derived_status = :derived_status")
	newAccountValues(u.ExpressionAttributeValues, rec.UserID, rec.CreatedAt)
	u.ExpressionAttributeValues[":derived_status"] = s(string(onboarding.DeriveStatus(rec.State, rec.ServiceAgreement, rec.UpdatedAt)))
}

// eventBasis is what an event's write first assumes the record holds.
func (st *Store) eventBasis(ctx context.Context, c onboarding.StateChange, create bool) (statusBasis, error) {
	switch {
	case create:
		return statusBasis{}, nil // an unfinished claim: no status yet
	case c.Kind == onboarding.ChangeSnapshot:
		// Most events leave the status as it is: assume so, without a read,
		// and learn otherwise from the refusal.
		b := statusBasis{agreement: c.ServiceAgreement}
		b.status = string(eventStatus(c, b))
		return b, nil
	}
	// A capability change builds on the stored state; deauthorization
	// changes the status nearly always: read what is there.
	item, err := st.userItem(ctx, c.UserID)
	if err != nil {
		return statusBasis{}, err
	}
	return basisOf(c.UserID, item, c.Kind == onboarding.ChangeCapability)
}

// eventStatus is the status a change leaves, on basis.
func eventStatus(c onboarding.StateChange, b statusBasis) onboarding.Status {
	agreement := b.agreement
	if agreement == "" {
		agreement = c.ServiceAgreement
	}
	switch c.Kind {
	case onboarding.ChangeCapability:
		state := b.state
		caps := make(map[string]string, len(state.Capabilities)+1)
		for k, v := range state.Capabilities {
			caps[k] = v
		}
		caps[c.Capability] = c.CapabilityStatus
		state.Capabilities = caps
		return onboarding.DeriveStatus(state, agreement, c.Now)
	case onboarding.ChangeDeauthorize:
		return onboarding.StatusDeauthorized
	default:
		return onboarding.DeriveStatus(c.State, agreement, c.Now)
	}
}

// eventStatusWrite prepares an event's update for basis b: the derived
// status it leaves, and the status change item (nil if none).
func (st *Store) eventStatusWrite(u *types.Update, c onboarding.StateChange, b statusBasis, create bool) (*types.TransactWriteItem, error) {
	if create {
		addSet(u, newAccountSets)
		newAccountValues(u.ExpressionAttributeValues, c.UserID, c.Now)
	}
	return withStatus(st.table, u, b, statusWrite{
		userID: c.UserID, accountID: c.AccountID, to: eventStatus(c, b), cause: c.Cause, at: c.Now, version: c.Version,
	})
}

// userItem reads a user's record as DynamoDB holds it (empty when none).
func (st *Store) userItem(ctx context.Context, userID string) (map[string]types.AttributeValue, error) {
	out, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &st.table, Key: userKey(userID), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, onboarding.StorageFailed(err)
	}
	return out.Item, nil
}

// accountOf decodes the account of a user's record; ErrNotFound without one.
func accountOf(userID string, item map[string]types.AttributeValue) (onboarding.AccountRecord, error) {
	if len(item) == 0 {
		return onboarding.AccountRecord{}, onboarding.ErrNotFound
	}
	u, err := decodeUser(userID, item)
	if err != nil {
		return onboarding.AccountRecord{}, err
	}
	if u.Account == nil {
		return onboarding.AccountRecord{}, onboarding.ErrNotFound
	}
	return *u.Account, nil
}

// stateUpdate is the versioned write of a state read from Stripe: it
// refuses a deauthorized account and older state than what is stored.
func (st *Store) stateUpdate(userID string, state onboarding.AccountState, version int64, now time.Time) (*types.Update, error) {
	stateJSON, caps, err := encodeState(state)
	if err != nil {
		return nil, err
	}
	return &types.Update{
		TableName: &st.table, Key: userKey(userID),
		UpdateExpression: aws.String("SET #state = :state, capabilities = :caps, state_version = :version, updated_at = :now"),
		// A webhook may have stored something newer while we read Stripe.
		ConditionExpression:      aws.String("attribute_exists(account_id) AND attribute_not_exists(deauthorized_at) AND (attribute_not_exists(state_version) OR state_version <= :version)"),
		ExpressionAttributeNames: map[string]string{"#state": attrState},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":state": s(stateJSON), ":caps": caps, ":version": n(version), ":now": timeAttr(now),
		},
	}, nil
}

// saveState is SaveState: it reads the record first (for its status and
// agreement), so the status change it records is exact. A record written
// before derived statuses existed joins the indexes here.
func (st *Store) saveState(ctx context.Context, userID string, state onboarding.AccountState, version int64, now time.Time, cause onboarding.Cause) (onboarding.AccountRecord, error) {
	item, err := st.userItem(ctx, userID)
	if err != nil {
		return onboarding.AccountRecord{}, err
	}
	for attempt := 1; ; attempt++ {
		rec, err := accountOf(userID, item)
		if err != nil {
			return onboarding.AccountRecord{}, err
		}
		basis, _ := basisOf(userID, item, false)
		u, err := st.stateUpdate(userID, state, version, now)
		if err != nil {
			return onboarding.AccountRecord{}, err
		}
		addSet(u, newAccountSets)
		newAccountValues(u.ExpressionAttributeValues, userID, rec.CreatedAt)
		change, err := withStatus(st.table, u, basis, statusWrite{
			userID: userID, accountID: rec.AccountID, to: onboarding.DeriveStatus(state, rec.ServiceAgreement, now),
			cause: cause, at: now, version: version,
		})
		if err != nil {
			return onboarding.AccountRecord{}, err
		}
		old, refused, err := st.write(ctx, u, change)
		switch {
		case err != nil:
			return onboarding.AccountRecord{}, err
		case !refused:
			rec.State, rec.StateVersion, rec.UpdatedAt = state, version, now
			return rec, nil
		case basis.matches(old):
			// Newer state is stored, or the account is deauthorized: it
			// stands as it is.
			return accountOf(userID, old)
		}
		if err := raceLost(ctx, attempt); err != nil {
			return onboarding.AccountRecord{}, err
		}
		item = old
	}
}

// write runs u, alone (UpdateItem, half the write units of a transaction)
// or with extra items in one transaction. When u's condition failed, it
// returns the record as it was then.
func (st *Store) write(ctx context.Context, u *types.Update, extra ...*types.TransactWriteItem) (old map[string]types.AttributeValue, refused bool, err error) {
	items := []types.TransactWriteItem{}
	for _, x := range extra {
		if x != nil {
			items = append(items, *x)
		}
	}
	u.ReturnValuesOnConditionCheckFailure = types.ReturnValuesOnConditionCheckFailureAllOld
	if len(items) == 0 {
		_, err := st.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: u.TableName, Key: u.Key, UpdateExpression: u.UpdateExpression, ConditionExpression: u.ConditionExpression,
			ExpressionAttributeNames: u.ExpressionAttributeNames, ExpressionAttributeValues: u.ExpressionAttributeValues,
			ReturnValuesOnConditionCheckFailure: u.ReturnValuesOnConditionCheckFailure,
		})
		var ccf *types.ConditionalCheckFailedException
		if errors.As(err, &ccf) {
			return ccf.Item, true, nil
		}
		return nil, false, conditional(err)
	}
	err = st.transact(ctx, append([]types.TransactWriteItem{{Update: u}}, items...))
	var tce *types.TransactionCanceledException
	if errors.As(err, &tce) && onlyConditionFailures(tce) && len(tce.CancellationReasons) > 0 &&
		aws.ToString(tce.CancellationReasons[0].Code) == "ConditionalCheckFailed" {
		return tce.CancellationReasons[0].Item, true, nil
	}
	return nil, false, conditional(err)
}
