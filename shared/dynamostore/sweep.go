package dynamostore

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/connectexpress/onboarding/shared/onboarding"
)

// The reconciliation sweep's items:
//
//	SWEEP#state                 the checkpoint, and the lease of the run holding the sweep
//	SWEEP#<pass>#<page number>  the account ids one page of a pass listed (TTL)
//
// and the review-queue index (IndexReviewQueue), which holds every
// connected record with its account and state digest.

// SweepClient is the part of *dynamodb.Client the sweep uses: batched reads
// of the records a page names, and queries of the review-queue index.
type SweepClient interface {
	Client
}

var (
	_ SweepClient           = (*dynamodb.Client)(nil)
	_ onboarding.SweepStore = (*SweepStore)(nil)
)

// SweepStore implements onboarding.SweepStore on the store's table.
type SweepStore struct {
	db    SweepClient
	table string
	store *Store // its conditional writes
}

// NewSweepStore returns the sweep's storage on table through db.
func NewSweepStore(db SweepClient, table string) *SweepStore {
	return &SweepStore{db: db, table: table, store: New(db, table)}
}

const sweepStateKey = "SWEEP#state"

// sweepItem is the checkpoint item. Times are Unix ms; zero is none.
type sweepItem struct {
	PK            string `dynamodbav:"pk"`
	LeaseID       string `dynamodbav:"lease_id"`
	LeaseUntil    int64  `dynamodbav:"lease_until"`
	PassID        string `dynamodbav:"pass_id,omitempty"`
	PassStarted   int64  `dynamodbav:"pass_started,omitempty"`
	Phase         string `dynamodbav:"phase,omitempty"`
	StartingAfter string `dynamodbav:"starting_after,omitempty"`
	CursorCreated int64  `dynamodbav:"cursor_created,omitempty"`
	// Ranges are the pass's creation-time ranges, each with its cursor: a
	// few dozen at most, well within an item's 400 KB.
	Ranges        []sweepRange `dynamodbav:"ranges,omitempty"`
	Pages         int          `dynamodbav:"pages,omitempty"`
	Counts        sweepCounts  `dynamodbav:"counts"`
	LastCompleted int64        `dynamodbav:"last_completed,omitempty"`
}

// sweepRange is one range of the checkpoint. Short names: DynamoDB bills
// a write by the item's KB, names included, and the checkpoint is written
// after every page with a range each for up to 32.
type sweepRange struct {
	From          int64  `dynamodbav:"f,omitempty"`
	Before        int64  `dynamodbav:"b,omitempty"`
	StartingAfter string `dynamodbav:"a,omitempty"`
	CursorCreated int64  `dynamodbav:"c,omitempty"`
	Done          bool   `dynamodbav:"d,omitempty"`
}

type sweepCounts struct {
	Listed     int `dynamodbav:"listed"`
	Foreign    int `dynamodbav:"foreign"`
	Applied    int `dynamodbav:"applied"`
	Unchanged  int `dynamodbav:"unchanged"`
	Superseded int `dynamodbav:"superseded"`
	Orphans    int `dynamodbav:"orphans"`
	Records    int `dynamodbav:"records"`
	Missing    int `dynamodbav:"missing"`
	Read       int `dynamodbav:"read"`
}

// listedPageItem holds the ids one page of a pass listed.
type listedPageItem struct {
	PK         string    `dynamodbav:"pk"`
	AccountIDs []string  `dynamodbav:"account_ids"`
	ExpiresAt  time.Time `dynamodbav:"expires_at,unixtime"` // the table's TTL
}

func listedPageKey(passID string, page int) string {
	return "SWEEP#" + passID + "#" + strconv.Itoa(page)
}

func (it sweepItem) checkpoint() onboarding.SweepCheckpoint {
	c := it.Counts
	return onboarding.SweepCheckpoint{
		PassID: it.PassID, PassStarted: timeOfMillis(it.PassStarted), Phase: onboarding.SweepPhase(it.Phase),
		StartingAfter: it.StartingAfter, CursorCreated: it.CursorCreated, Pages: it.Pages,
		Ranges: rangesOf(it.Ranges),
		Counts: onboarding.SweepCounts{
			Listed: c.Listed, Foreign: c.Foreign, Applied: c.Applied, Unchanged: c.Unchanged,
			Superseded: c.Superseded, Orphans: c.Orphans, Records: c.Records, Missing: c.Missing, Read: c.Read,
		},
		LastCompleted: timeOfMillis(it.LastCompleted),
	}
}

func sweepItemOf(cp onboarding.SweepCheckpoint, lease onboarding.Lease) sweepItem {
	c := cp.Counts
	return sweepItem{
		PK: sweepStateKey, LeaseID: lease.ID, LeaseUntil: lease.Until.UnixMilli(),
		PassID: cp.PassID, PassStarted: millis(cp.PassStarted), Phase: string(cp.Phase),
		StartingAfter: cp.StartingAfter, CursorCreated: cp.CursorCreated, Pages: cp.Pages,
		Ranges: rangeItems(cp.Ranges),
		Counts: sweepCounts{
			Listed: c.Listed, Foreign: c.Foreign, Applied: c.Applied, Unchanged: c.Unchanged,
			Superseded: c.Superseded, Orphans: c.Orphans, Records: c.Records, Missing: c.Missing, Read: c.Read,
		},
		LastCompleted: millis(cp.LastCompleted),
	}
}

func rangesOf(items []sweepRange) []onboarding.SweepRange {
	if items == nil {
		return nil
	}
	ranges := make([]onboarding.SweepRange, len(items))
	for i, r := range items {
		ranges[i] = onboarding.SweepRange{From: r.From, Before: r.Before, StartingAfter: r.StartingAfter, CursorCreated: r.CursorCreated, Done: r.Done}
	}
	return ranges
}

func rangeItems(ranges []onboarding.SweepRange) []sweepRange {
	if ranges == nil {
		return nil
	}
	items := make([]sweepRange, len(ranges))
	for i, r := range ranges {
		items[i] = sweepRange{From: r.From, Before: r.Before, StartingAfter: r.StartingAfter, CursorCreated: r.CursorCreated, Done: r.Done}
	}
	return items
}

// TakeSweep takes the lease in one conditional write: of two runs started
// together (the schedule and `make reconcile`, or a retried invocation) one
// sweeps. Its own retried write, after a lost answer, wins again.
func (st *SweepStore) TakeSweep(ctx context.Context, lease onboarding.Lease, now time.Time) (onboarding.SweepCheckpoint, bool, error) {
	in, err := st.store.updateInput(sweepStateKey,
		expression.Set(name(attrLeaseID), value(lease.ID)).Set(name(attrLeaseUntil), value(lease.Until.UnixMilli())),
		leaseFree(attrLeaseUntil, now).Or(name(attrLeaseID).Equal(value(lease.ID))))
	if err != nil {
		return onboarding.SweepCheckpoint{}, false, err
	}
	in.ReturnValues = types.ReturnValueAllNew
	out, err := st.db.UpdateItem(ctx, in)
	switch err := conditional(err); {
	case errors.Is(err, onboarding.ErrConflict):
		return onboarding.SweepCheckpoint{}, false, nil // another run holds it
	case err != nil:
		return onboarding.SweepCheckpoint{}, false, err
	}
	var it sweepItem
	if err := attributevalue.UnmarshalMap(out.Attributes, &it); err != nil {
		return onboarding.SweepCheckpoint{}, false, onboarding.StorageFailed(err)
	}
	return it.checkpoint(), true, nil
}

// SaveSweep replaces the checkpoint while the lease holds: a run that
// outlived its lease cannot move the cursor of the run that took over.
func (st *SweepStore) SaveSweep(ctx context.Context, cp onboarding.SweepCheckpoint, lease onboarding.Lease) error {
	return st.store.putItem(ctx, sweepItemOf(cp, lease), name(attrLeaseID).Equal(value(lease.ID)))
}

// ReleaseSweep ends the lease now, if it is still this one.
func (st *SweepStore) ReleaseSweep(ctx context.Context, lease onboarding.Lease) error {
	in, err := st.store.updateInput(sweepStateKey, expression.Set(name(attrLeaseUntil), value(0)), name(attrLeaseID).Equal(value(lease.ID)))
	if err != nil {
		return err
	}
	_, err = st.db.UpdateItem(ctx, in)
	if err := conditional(err); !errors.Is(err, onboarding.ErrConflict) {
		return err
	}
	return nil // another run took over an expired lease: it is theirs
}

// batchGet reads the items of pks, strongly consistent: the sweep decides
// from them whether to write.
func (st *SweepStore) batchGet(ctx context.Context, pks []string, attrs ...string) ([]map[string]types.AttributeValue, error) {
	return st.store.batchRead(ctx, pks, true, attrs...)
}

func (st *SweepStore) GetUsers(ctx context.Context, userIDs []string) (map[string]onboarding.UserRecord, error) {
	pks := make([]string, len(userIDs))
	for i, id := range userIDs {
		pks[i] = UserKeyPrefix + id
	}
	items, err := st.batchGet(ctx, pks)
	if err != nil {
		return nil, err
	}
	users := make(map[string]onboarding.UserRecord, len(items))
	for _, item := range items {
		u, err := DecodeUserItem(item)
		if errors.Is(err, onboarding.ErrNotFound) {
			continue // neither a claim nor an account: nothing to compare
		}
		if err != nil {
			return nil, err
		}
		users[u.UserID] = u
	}
	return users, nil
}

func (st *SweepStore) FindUsersByAccounts(ctx context.Context, accountIDs []string) (map[string]string, error) {
	pks := make([]string, len(accountIDs))
	for i, id := range accountIDs {
		pks[i] = "ACCOUNT#" + id
	}
	items, err := st.batchGet(ctx, pks, attrAccountID, attrUserID)
	if err != nil {
		return nil, err
	}
	owners := make(map[string]string, len(items))
	for _, item := range items {
		var idx accountIndexItem
		if err := attributevalue.UnmarshalMap(item, &idx); err != nil {
			return nil, onboarding.StorageFailed(err)
		}
		if idx.AccountID != "" && idx.UserID != "" {
			owners[idx.AccountID] = idx.UserID
		}
	}
	return owners, nil
}

func (st *SweepStore) SaveListedPage(ctx context.Context, passID string, page int, accountIDs []string, expires time.Time) error {
	item, err := marshalItem(listedPageItem{PK: listedPageKey(passID, page), AccountIDs: accountIDs, ExpiresAt: expires})
	if err != nil {
		return err
	}
	_, err = st.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &st.table, Item: item})
	return conditional(err)
}

func (st *SweepStore) ListedAccounts(ctx context.Context, passID string, pages int, each func(string)) error {
	pks := make([]string, pages)
	for i := range pks {
		pks[i] = listedPageKey(passID, i+1)
	}
	items, err := st.batchGet(ctx, pks)
	if err != nil {
		return err
	}
	if len(items) != pages {
		// A page expired or was never kept: the records phase would report
		// its accounts' records as missing.
		return onboarding.StorageFailed(errors.New("dynamostore: a listed page of the sweep's pass is missing"))
	}
	for _, item := range items {
		var p listedPageItem
		if err := attributevalue.UnmarshalMap(item, &p); err != nil {
			return onboarding.StorageFailed(err)
		}
		for _, id := range p.AccountIDs {
			each(id)
		}
	}
	return nil
}

// indexEntry is a record as the review-queue index projects it.
type indexEntry struct {
	PK            string `dynamodbav:"pk"`
	AccountID     string `dynamodbav:"account_id"`
	DerivedStatus string `dynamodbav:"derived_status"`
	ListedAt      string `dynamodbav:"listed_at"`
	StateDigest   string `dynamodbav:"state_digest"`
}

// ReadSweepIndex reads the whole review-queue index, one review at a time
// (every connected record is in one review's partition), and answers all
// but the deauthorized records (terminal: the sweep neither writes nor
// reports those). An index query is eventually consistent, and billed by
// the bytes it reads, 4 KB per unit and half a unit for an eventually
// consistent read
// (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html,
// read 2026-12-06): tens of thousands of units for a million entries,
// against one unit a record for reading the records.
func (st *SweepStore) ReadSweepIndex(ctx context.Context, each func(onboarding.IndexedRecord)) error {
	// No projection expression: the index projects little more than
	// indexEntry reads, and a query answers what the index holds.
	for _, review := range onboarding.Reviews {
		in := &dynamodb.QueryInput{
			TableName: &st.table, IndexName: aws.String(IndexReviewQueue),
			KeyConditionExpression:    aws.String("#r = :r"),
			ExpressionAttributeNames:  map[string]string{"#r": attrReview},
			ExpressionAttributeValues: map[string]types.AttributeValue{":r": &types.AttributeValueMemberS{Value: string(review)}},
		}
		for {
			out, err := st.db.Query(ctx, in)
			if err != nil {
				return onboarding.StorageFailed(err)
			}
			for _, item := range out.Items {
				var it indexEntry
				if err := attributevalue.UnmarshalMap(item, &it); err != nil {
					return onboarding.StorageFailed(err)
				}
				if it.AccountID == "" || it.DerivedStatus == string(onboarding.StatusDeauthorized) {
					continue // not an account's record, or one the sweep leaves alone
				}
				// An unreadable time reads as the oldest: a record reported
				// missing is read first, and its own created_at decides.
				created, _, _ := strings.Cut(it.ListedAt, "#")
				at, _ := time.Parse(fixedTime, created)
				each(onboarding.IndexedRecord{UserID: strings.TrimPrefix(it.PK, UserKeyPrefix), AccountID: it.AccountID, CreatedAt: at, StateDigest: it.StateDigest})
			}
			if len(out.LastEvaluatedKey) == 0 {
				break
			}
			in.ExclusiveStartKey = out.LastEvaluatedKey
		}
	}
	return nil
}
