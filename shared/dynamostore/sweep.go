package dynamostore

import (
	"cmp"
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

// SweepClient is the part of *dynamodb.Client the sweep uses: batched reads
// of the records a page names, and a scan for the records phase.
type SweepClient interface {
	Client
	BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
	Scan(ctx context.Context, in *dynamodb.ScanInput, opts ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
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
	// ScanPageItems bounds the items one Scan call of the records phase
	// evaluates (default 1000): a call reads at most 1 MB either way, and
	// a short call leaves room before the run's deadline.
	ScanPageItems int32
}

// NewSweepStore returns the sweep's storage on table through db.
func NewSweepStore(db SweepClient, table string) *SweepStore {
	return &SweepStore{db: db, table: table, store: New(db, table)}
}

const sweepStateKey = "SWEEP#state"

// sweepItem is the checkpoint item. Times are Unix ms; zero is none.
type sweepItem struct {
	PK            string      `dynamodbav:"pk"`
	LeaseID       string      `dynamodbav:"lease_id"`
	LeaseUntil    int64       `dynamodbav:"lease_until"`
	PassID        string      `dynamodbav:"pass_id,omitempty"`
	PassStarted   int64       `dynamodbav:"pass_started,omitempty"`
	Phase         string      `dynamodbav:"phase,omitempty"`
	StartingAfter string      `dynamodbav:"starting_after,omitempty"`
	CursorCreated int64       `dynamodbav:"cursor_created,omitempty"`
	Pages         int         `dynamodbav:"pages,omitempty"`
	ScanCursor    string      `dynamodbav:"scan_cursor,omitempty"`
	Counts        sweepCounts `dynamodbav:"counts"`
	LastCompleted int64       `dynamodbav:"last_completed,omitempty"`
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
		StartingAfter: it.StartingAfter, CursorCreated: it.CursorCreated, Pages: it.Pages, ScanCursor: it.ScanCursor,
		Counts: onboarding.SweepCounts{
			Listed: c.Listed, Foreign: c.Foreign, Applied: c.Applied, Unchanged: c.Unchanged,
			Superseded: c.Superseded, Orphans: c.Orphans, Records: c.Records, Missing: c.Missing,
		},
		LastCompleted: timeOfMillis(it.LastCompleted),
	}
}

func sweepItemOf(cp onboarding.SweepCheckpoint, lease onboarding.Lease) sweepItem {
	c := cp.Counts
	return sweepItem{
		PK: sweepStateKey, LeaseID: lease.ID, LeaseUntil: lease.Until.UnixMilli(),
		PassID: cp.PassID, PassStarted: millis(cp.PassStarted), Phase: string(cp.Phase),
		StartingAfter: cp.StartingAfter, CursorCreated: cp.CursorCreated, Pages: cp.Pages, ScanCursor: cp.ScanCursor,
		Counts: sweepCounts{
			Listed: c.Listed, Foreign: c.Foreign, Applied: c.Applied, Unchanged: c.Unchanged,
			Superseded: c.Superseded, Orphans: c.Orphans, Records: c.Records, Missing: c.Missing,
		},
		LastCompleted: millis(cp.LastCompleted),
	}
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

func (st *SweepStore) ListedAccounts(ctx context.Context, passID string, pages int) (map[string]bool, error) {
	pks := make([]string, pages)
	for i := range pks {
		pks[i] = listedPageKey(passID, i+1)
	}
	items, err := st.batchGet(ctx, pks)
	if err != nil {
		return nil, err
	}
	if len(items) != pages {
		// A page expired or was never kept: the records phase would report
		// its accounts' records as missing.
		return nil, onboarding.StorageFailed(errors.New("dynamostore: a listed page of the sweep's pass is missing"))
	}
	listed := map[string]bool{}
	for _, item := range items {
		var p listedPageItem
		if err := attributevalue.UnmarshalMap(item, &p); err != nil {
			return nil, onboarding.StorageFailed(err)
		}
		for _, id := range p.AccountIDs {
			listed[id] = true
		}
	}
	return listed, nil
}

const defaultScanPageItems = 1000

// recordItem is what the records phase reads of a user's record.
type recordItem struct {
	PK             string    `dynamodbav:"pk"`
	AccountID      string    `dynamodbav:"account_id"`
	CreatedAt      time.Time `dynamodbav:"created_at"`
	DeauthorizedAt time.Time `dynamodbav:"deauthorized_at"`
}

// ScanRecords pages through the table for users' records that hold an
// account. The cursor is the last key read (the table's key is pk alone).
func (st *SweepStore) ScanRecords(ctx context.Context, cursor string) ([]onboarding.SweepRecord, string, error) {
	e, err := expression.NewBuilder().
		WithFilter(name(attrPK).BeginsWith(UserKeyPrefix).And(exists(attrAccountID))).
		WithProjection(expression.NamesList(name(attrPK), name(attrAccountID), name(attrCreatedAt), name(attrDeauthorized))).
		Build()
	if err != nil {
		return nil, "", err
	}
	in := &dynamodb.ScanInput{
		TableName: &st.table, Limit: aws.Int32(cmp.Or(st.ScanPageItems, defaultScanPageItems)),
		FilterExpression: e.Filter(), ProjectionExpression: e.Projection(),
		ExpressionAttributeNames: e.Names(), ExpressionAttributeValues: e.Values(),
	}
	if cursor != "" {
		in.ExclusiveStartKey = keyOf(cursor)
	}
	out, err := st.db.Scan(ctx, in)
	if err != nil {
		return nil, "", onboarding.StorageFailed(err)
	}
	records := make([]onboarding.SweepRecord, 0, len(out.Items))
	for _, item := range out.Items {
		var r recordItem
		if err := attributevalue.UnmarshalMap(item, &r); err != nil {
			return nil, "", onboarding.StorageFailed(err)
		}
		records = append(records, onboarding.SweepRecord{
			UserID: strings.TrimPrefix(r.PK, UserKeyPrefix), AccountID: r.AccountID, CreatedAt: r.CreatedAt, Deauthorized: !r.DeauthorizedAt.IsZero(),
		})
	}
	var last struct {
		PK string `dynamodbav:"pk"`
	}
	if err := attributevalue.UnmarshalMap(out.LastEvaluatedKey, &last); err != nil {
		return nil, "", onboarding.StorageFailed(err)
	}
	return records, last.PK, nil
}
