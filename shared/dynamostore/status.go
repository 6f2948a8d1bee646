package dynamostore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
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
//	STATUS#<user id>#<seq>            one status change (statusChangeItem)
//	REVIEW#<user id>#<at>#<random>    one staff decision (reviewItem, admin.go)

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
	// IndexReviewQueue holds every connected account record by review and
	// queued_at: a record whose details were submitted carries the time it
	// entered the review queue there, any other a placeholder that sorts
	// after every time (queue.go). Its pending partition up to the
	// placeholders is the review queue, oldest first; read whole, it is
	// what the reconciliation sweep compares with Stripe's list (sweep.go).
	// One index for both: a stack update adds at most one (template.yaml).
	IndexReviewQueue = "review-queue"
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
// record's status changed between reading it and writing. (Transaction
// conflicts are the client's retryer's: RetryTransactionConflicts.)
const statusAttempts = 8

// errStatusRace: other writers changed the record on every attempt. The
// caller retries (a webhook answers 503, so Stripe redelivers).
var errStatusRace = errors.New("dynamostore: the account's status changed under each attempt to write it")

// raceLost is called when attempt lost to another writer: it fails the
// write after the last attempt, and otherwise waits a little (none before
// the first retry, which usually wins), jittered so that writers spread.
func (st *Store) raceLost(ctx context.Context, attempt int) error {
	if attempt >= statusAttempts {
		return onboarding.StorageFailed(errStatusRace)
	}
	if attempt == 1 {
		return nil
	}
	if err := st.wait(ctx, time.Duration(attempt)*time.Duration(1+mathrand.IntN(10))*time.Millisecond); err != nil {
		return onboarding.StorageFailed(err)
	}
	return nil
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
	pinned    bool // updatedAt (and state) are the record's
	updatedAt time.Time
	state     onboarding.AccountState
	// rejectingUntil is the record's staff rejection mark (Unix ms, 0 for none).
	rejectingUntil int64
	// requested are the capabilities the record requested, which the status
	// is judged on. Read from the record they need no condition: they never
	// change once the account is stored. An event's snapshot assumes them
	// (requestedAssumed) without a read; the write checks the assumption.
	requested        []string
	requestedAssumed bool
}

// basisOf is what a user item holds; pin also pins its state.
func basisOf(userID string, it userItem, pin bool) statusBasis {
	b := statusBasis{status: it.DerivedStatus, agreement: it.ServiceAgreement, read: true, seq: it.StatusSeq, rejectingUntil: it.RejectingUntil,
		requested: requestedList(it.Requested)}
	if it.AccountID == "" && it.Params != nil {
		// A creation claim: the account it makes will have requested these.
		b.requested = it.Params.V.Capabilities
	}
	if pin {
		b.pinned, b.updatedAt = true, it.UpdatedAt
		if it.AccountID != "" {
			b.state = it.account(userID).State
		}
	}
	return b
}

// matches says whether it is what the basis assumed: if not, a refused
// write was refused for that, and is tried again on it.
func (b statusBasis) matches(it userItem) bool {
	return it.DerivedStatus == b.status && (!b.read || it.StatusSeq == b.seq) &&
		(b.agreement == "" || it.ServiceAgreement == b.agreement) &&
		(!b.requestedAssumed || it.Requested == "" || it.Requested == requestedKey(b.requested)) &&
		(!b.pinned || it.UpdatedAt.Equal(b.updatedAt))
}

// condition is the basis as a condition.
func (b statusBasis) condition() expression.ConditionBuilder {
	cond := missing(attrDerivedStatus)
	if b.status != "" {
		cond = name(attrDerivedStatus).Equal(value(b.status))
	}
	if b.agreement != "" {
		cond = cond.And(name(attrAgreement).Equal(value(b.agreement)))
	}
	if b.requestedAssumed {
		// Judged on the assumed set, or, with none stored, on card_payments
		// and transfers where listed: the assumption is made so that both
		// judge alike (snapshotBasis).
		assumed := missing(attrRequested)
		if key := requestedKey(b.requested); key != "" {
			assumed = assumed.Or(name(attrRequested).Equal(value(key)))
		}
		cond = cond.And(assumed)
	}
	switch {
	case b.read && b.seq == 0:
		cond = cond.And(missing(attrStatusSeq))
	case b.read:
		cond = cond.And(name(attrStatusSeq).Equal(value(b.seq)))
	}
	if b.pinned {
		if b.updatedAt.IsZero() {
			cond = cond.And(missing(attrUpdatedAt))
		} else {
			cond = cond.And(name(attrUpdatedAt).Equal(value(b.updatedAt)))
		}
	}
	return cond
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

// recordWrite is an update of a user's record with the items that go in
// its transaction.
type recordWrite struct {
	update expression.UpdateBuilder
	cond   expression.ConditionBuilder
	extra  []*types.Put
}

// withStatus makes w store s.to as the derived status, conditioned on b,
// and adds the status change item when the status changes (none when it
// stays, or when the record had none).
func (st *Store) withStatus(w *recordWrite, b statusBasis, s statusWrite) error {
	w.update = w.update.Set(name(attrDerivedStatus), value(string(s.to)))
	w.cond = w.cond.And(b.condition())
	if b.status == "" || b.status == string(s.to) {
		return nil
	}
	if !b.read {
		// Only an assumed basis is unread, and it assumes no change.
		return errors.New("dynamostore: a status change on a basis not read from the record")
	}
	if s.to == onboarding.StatusRejected && b.rejectingUntil > s.at.UnixMilli() {
		// Staff asked Stripe to reject the account, and Stripe's own news of
		// it came first: the rejection is still the staff's.
		s.cause = onboarding.CauseStaff
	}
	seq := b.seq + 1
	w.update = w.update.Set(name(attrStatusSeq), value(seq))
	key := fmt.Sprintf("%012d", seq)
	put, err := st.put(statusChangeItem{
		PK: "STATUS#" + s.userID + "#" + key, UserID: s.userID, AccountID: s.accountID,
		From: b.status, To: string(s.to), Cause: string(s.cause), At: s.at, StateVersion: s.version, Seq: seq,
		HistoryUser: s.userID, HistoryKey: historyStatus + key,
	}, missing(attrPK))
	if err != nil {
		return err
	}
	w.extra = append(w.extra, put)
	return nil
}

func randomSuffix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// enterQueue adds what a new account record starts with besides its state:
// its place in the review queue, as pending. A record already in it stays.
func enterQueue(u expression.UpdateBuilder, userID string, created time.Time) expression.UpdateBuilder {
	return u.Set(name(attrReview), expression.IfNotExists(name(attrReview), value(string(onboarding.ReviewPending)))).
		Set(name(attrListedAt), expression.IfNotExists(name(attrListedAt), value(listedAt(created, userID))))
}

// eventBasis is what an event's write first assumes the record holds.
func (st *Store) eventBasis(ctx context.Context, c onboarding.StateChange, create bool) (statusBasis, error) {
	switch {
	case create:
		return statusBasis{}, nil // an unfinished claim: no status yet
	case c.Kind == onboarding.ChangeSnapshot:
		// Most events leave the status as it is: assume so, without a read,
		// and learn otherwise from the refusal.
		b := statusBasis{agreement: c.ServiceAgreement, requested: assumedRequested(c.State), requestedAssumed: true}
		b.status = string(eventStatus(c, b))
		return b, nil
	}
	// A capability change builds on the stored state; deauthorization
	// changes the status nearly always: read what is there.
	it, err := st.readUser(ctx, c.UserID)
	if err != nil {
		return statusBasis{}, err
	}
	return basisOf(c.UserID, it, c.Kind == onboarding.ChangeCapability), nil
}

// eventStatus is the status a change leaves, on basis.
func eventStatus(c onboarding.StateChange, b statusBasis) onboarding.Status {
	agreement := b.agreement
	if agreement == "" {
		agreement = c.ServiceAgreement
	}
	switch c.Kind {
	case onboarding.ChangeCapability:
		return onboarding.DeriveStatus(capabilityState(c, b), agreement, c.Now)
	case onboarding.ChangeDeauthorize:
		return onboarding.StatusDeauthorized
	default:
		state := c.State
		state.RequestedCapabilities = b.requested
		return onboarding.DeriveStatus(state, agreement, c.Now)
	}
}

// assumedRequested is what a snapshot assumes the record requested, without
// reading it: card_payments and transfers, those the snapshot lists. That is
// what most records requested (DEFAULT_CAPABILITIES, or transfers for a
// recipient), and it judges exactly as a record that requested nothing
// does, so the write's condition (this set, or none stored) holds for both.
// A record that requested anything else refuses the write, which is then
// made again on the record as read.
func assumedRequested(s onboarding.AccountState) []string {
	var caps []string
	for _, name := range []string{"card_payments", "transfers"} {
		if _, ok := s.Capabilities[name]; ok {
			caps = append(caps, name)
		}
	}
	return caps
}

// capabilityState is the state a capability change leaves on basis b,
// whose state is pinned.
func capabilityState(c onboarding.StateChange, b statusBasis) onboarding.AccountState {
	state := b.state
	caps := make(map[string]string, len(state.Capabilities)+1)
	for k, v := range state.Capabilities {
		caps[k] = v
	}
	caps[c.Capability] = c.CapabilityStatus
	state.Capabilities = caps
	return state
}

// eventStatusWrite adds to an event's write, for basis b, the derived
// status it leaves and its status change.
func (st *Store) eventStatusWrite(w *recordWrite, c onboarding.StateChange, b statusBasis, create bool) error {
	if create {
		w.update = enterQueue(w.update, c.UserID, c.Now)
	}
	if c.Kind == onboarding.ChangeCapability {
		// The digest of the whole state it leaves, which the basis pins,
		// and the record's place in the review-queue index, which the sweep
		// reads the digest from.
		state := capabilityState(c, b)
		w.update = w.update.Set(name(attrStateDigest), value(onboarding.StateDigest(state)))
		w.update = queueOnSubmission(w.update, c.UserID, state, c.Now)
	}
	return st.withStatus(w, b, statusWrite{
		userID: c.UserID, accountID: c.AccountID, to: eventStatus(c, b), cause: c.Cause, at: c.Now, version: c.Version,
	})
}

// readUser reads a user's record as stored (empty when none).
func (st *Store) readUser(ctx context.Context, userID string) (userItem, error) {
	item, err := st.getItem(ctx, userPK(userID))
	if err != nil {
		return userItem{}, err
	}
	return unmarshalUser(item)
}

func unmarshalUser(item map[string]types.AttributeValue) (userItem, error) {
	var it userItem
	if err := attributevalue.UnmarshalMap(item, &it); err != nil {
		return userItem{}, onboarding.StorageFailed(err)
	}
	return it, nil
}

// stateWrite is the versioned write of a state read from Stripe: it
// refuses a deauthorized account and older state than what is stored.
func stateWrite(state onboarding.AccountState, version int64, now time.Time) recordWrite {
	return recordWrite{
		update: setState(expression.UpdateBuilder{}, state, version, now),
		// A webhook may have stored something newer while we read Stripe.
		cond: exists(attrAccountID).And(missing(attrDeauthorized), notNewer(version)),
	}
}

// saveState is SaveState: it reads the record first (for its status and
// agreement), so the status change it records is exact. A record written
// before derived statuses existed joins the indexes here.
func (st *Store) saveState(ctx context.Context, userID string, state onboarding.AccountState, version int64, now time.Time, cause onboarding.Cause) (onboarding.AccountRecord, error) {
	it, err := st.readUser(ctx, userID)
	if err != nil {
		return onboarding.AccountRecord{}, err
	}
	for attempt := 1; ; attempt++ {
		if it.AccountID == "" {
			return onboarding.AccountRecord{}, onboarding.ErrNotFound
		}
		rec := it.account(userID)
		basis := basisOf(userID, it, false)
		// A state read from Stripe does not say what was requested: the
		// record does.
		state.RequestedCapabilities = rec.State.RequestedCapabilities
		w := stateWrite(state, version, now)
		w.update = enterQueue(w.update, userID, rec.CreatedAt)
		w.update = queueOnSubmission(w.update, userID, state, now)
		if err := st.withStatus(&w, basis, statusWrite{
			userID: userID, accountID: rec.AccountID, to: onboarding.DeriveStatus(state, rec.ServiceAgreement, now),
			cause: cause, at: now, version: version,
		}); err != nil {
			return onboarding.AccountRecord{}, err
		}
		old, refused, err := st.write(ctx, userID, w)
		switch {
		case err != nil:
			return onboarding.AccountRecord{}, err
		case !refused:
			rec.State, rec.StateVersion, rec.UpdatedAt = state, version, now
			return rec, nil
		case old.AccountID == "":
			return onboarding.AccountRecord{}, onboarding.ErrNotFound
		case basis.matches(old):
			// Newer state is stored, or the account is deauthorized: it
			// stands as it is.
			return old.account(userID), nil
		}
		if err := st.raceLost(ctx, attempt); err != nil {
			return onboarding.AccountRecord{}, err
		}
		it = old
	}
}

// write runs w on a user's record: alone (UpdateItem, half the write units
// of a transaction) or with its items in one transaction. When the
// record's condition failed, it returns the record as it was then.
func (st *Store) write(ctx context.Context, userID string, w recordWrite) (old userItem, refused bool, err error) {
	if len(w.extra) == 0 {
		in, err := st.updateInput(userPK(userID), w.update, w.cond)
		if err != nil {
			return userItem{}, false, err
		}
		in.ReturnValuesOnConditionCheckFailure = types.ReturnValuesOnConditionCheckFailureAllOld
		_, err = st.db.UpdateItem(ctx, in)
		var ccf *types.ConditionalCheckFailedException
		if errors.As(err, &ccf) {
			old, err := unmarshalUser(ccf.Item)
			return old, err == nil, err
		}
		return userItem{}, false, conditional(err)
	}
	u, err := st.transactUpdate(userPK(userID), w.update, w.cond)
	if err != nil {
		return userItem{}, false, err
	}
	items := []types.TransactWriteItem{{Update: u}}
	for _, p := range w.extra {
		items = append(items, types.TransactWriteItem{Put: p})
	}
	_, err = st.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	var tce *types.TransactionCanceledException
	if errors.As(err, &tce) && onlyConditionFailures(tce) && len(tce.CancellationReasons) > 0 &&
		aws.ToString(tce.CancellationReasons[0].Code) == "ConditionalCheckFailed" {
		old, err := unmarshalUser(tce.CancellationReasons[0].Item)
		return old, err == nil, err
	}
	return userItem{}, false, conditional(err)
}
