package dynamostore

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/connectexpress/onboarding/shared/onboarding"
)

// The staff routes' storage: the account list from the sparse indexes
// (never a Scan), an account's history, and the append-only decisions.

// indexAttributes and indexes are the table's index keys and indexes, as
// CreateTable makes them and template.yaml declares them. The two list
// indexes project only keys (and the other filter): an account's record is
// written on every webhook, and a projected updated_at would cost an index
// write each time; the list reads the records of its one page instead.
func indexAttributes() []types.AttributeDefinition {
	var defs []types.AttributeDefinition
	for _, name := range []string{attrReview, attrDerivedStatus, attrListedAt, attrHistoryUser, attrHistoryKey, attrQueuedAt} {
		defs = append(defs, types.AttributeDefinition{AttributeName: aws.String(name), AttributeType: types.ScalarAttributeTypeS})
	}
	return defs
}

func indexes() []types.GlobalSecondaryIndex {
	index := func(name, hash, rangeKey string, p types.Projection) types.GlobalSecondaryIndex {
		return types.GlobalSecondaryIndex{
			IndexName: aws.String(name),
			KeySchema: []types.KeySchemaElement{
				{AttributeName: aws.String(hash), KeyType: types.KeyTypeHash},
				{AttributeName: aws.String(rangeKey), KeyType: types.KeyTypeRange},
			},
			Projection: &p,
		}
	}
	return []types.GlobalSecondaryIndex{
		index(IndexByReview, attrReview, attrListedAt, types.Projection{ProjectionType: types.ProjectionTypeInclude, NonKeyAttributes: []string{attrDerivedStatus}}),
		index(IndexByStatus, attrDerivedStatus, attrListedAt, types.Projection{ProjectionType: types.ProjectionTypeKeysOnly}),
		// History items never change: projecting them whole costs storage only.
		index(IndexHistory, attrHistoryUser, attrHistoryKey, types.Projection{ProjectionType: types.ProjectionTypeAll}),
		// The review queue's and the sweep's. The queue's filters (status,
		// created_after) are judged on the index; the sweep reads the
		// account and its state digest of every entry, a million at a time
		// (sweep.go). None of these change on most webhooks.
		index(IndexReviewQueue, attrReview, attrQueuedAt, types.Projection{ProjectionType: types.ProjectionTypeInclude,
			NonKeyAttributes: []string{attrDerivedStatus, attrListedAt, attrAccountID, attrStateDigest}}),
	}
}

// ---- the account list ----

// str reads a string attribute of an index entry or key (the list merges
// entries by their raw keys).
func str(item map[string]types.AttributeValue, attr string) string {
	if v, ok := item[attr].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

func s(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }

// listPlan is how one filter is served: which index, which of its
// partitions (merged newest first), and an optional filter on a projected
// attribute.
type listPlan struct {
	index, keyAttr string
	partitions     []string
	filterStatus   string // on by-review: derived_status = this
}

func planList(f onboarding.AccountFilter) listPlan {
	switch {
	case f.Review != "":
		return listPlan{index: IndexByReview, keyAttr: attrReview, partitions: []string{string(f.Review)}, filterStatus: string(f.Status)}
	case f.Status != "":
		return listPlan{index: IndexByStatus, keyAttr: attrDerivedStatus, partitions: []string{string(f.Status)}}
	}
	// Every account has a review: the three review partitions are all of them.
	all := make([]string, len(onboarding.Reviews))
	for i, r := range onboarding.Reviews {
		all[i] = string(r)
	}
	return listPlan{index: IndexByReview, keyAttr: attrReview, partitions: all}
}

// queriesPerPartition bounds the index reads of one page in one partition
// when a filter skips items: past it the page ends early, with a cursor.
const queriesPerPartition = 4

// partitionScan is what one partition gave: its matching index items,
// newest first, and how far it was read ("through": every item at or
// after this listed_at was seen; "" when the partition is exhausted).
type partitionScan struct {
	items   []map[string]types.AttributeValue
	through string
}

// ListAccounts pages through the accounts newest first. The cursor is the
// listed_at of the page's last position, so pages merged from several
// partitions need no per-partition state: each next page reads every
// partition from below it.
func (st *Store) ListAccounts(ctx context.Context, f onboarding.AccountFilter) (onboarding.StaffPage, error) {
	if f.Review == onboarding.ReviewPending {
		return st.listQueue(ctx, f) // queue.go
	}
	before, err := decodeCursor(f, f.Cursor)
	if err != nil {
		return onboarding.StaffPage{}, err
	}
	after := ""
	if !f.CreatedAfter.IsZero() {
		// '$' sorts after '#': every listed_at of that exact instant is below it.
		after = f.CreatedAfter.UTC().Format(fixedTime) + "$"
	}
	if before != "" && after != "" && after >= before {
		return onboarding.StaffPage{Accounts: []onboarding.AccountSummary{}}, nil
	}
	plan := planList(f)
	var scans []partitionScan
	for _, p := range plan.partitions {
		sc, err := st.scanPartition(ctx, plan, p, after, before, f.Limit)
		if err != nil {
			return onboarding.StaffPage{}, err
		}
		scans = append(scans, sc)
	}
	// Everything at or after cut is known in every partition.
	cut := ""
	var found []map[string]types.AttributeValue
	for _, sc := range scans {
		cut = max(cut, sc.through)
		found = append(found, sc.items...)
	}
	found = slices.DeleteFunc(found, func(it map[string]types.AttributeValue) bool { return str(it, attrListedAt) < cut })
	slices.SortFunc(found, func(a, b map[string]types.AttributeValue) int {
		return cmp.Compare(str(b, attrListedAt), str(a, attrListedAt))
	})
	// Past the limit, the next page starts below the page's last account;
	// at or under it, below the cut ("" when every partition was read to
	// its end: this is the last page, with no cursor to an empty one).
	next := cut
	if len(found) > f.Limit {
		found = found[:f.Limit]
		next = str(found[len(found)-1], attrListedAt)
	}
	// The indexes are eventually consistent: a record that moved on since
	// is left out rather than shown under the wrong filter.
	return st.pageOf(ctx, f, found, next, func(sum onboarding.AccountSummary) bool {
		return (f.Status == "" || sum.Status == f.Status) && (f.Review == "" || sum.Review == f.Review)
	})
}

// pageOf is one page of the staff list: the records of the index entries
// found, in their order, those keep accepts, with their signals, and a
// cursor to next ("" at the end).
func (st *Store) pageOf(ctx context.Context, f onboarding.AccountFilter, found []map[string]types.AttributeValue, next string, keep func(onboarding.AccountSummary) bool) (onboarding.StaffPage, error) {
	page := onboarding.StaffPage{Accounts: []onboarding.AccountSummary{}}
	if next != "" {
		c := encodeCursor(f, next)
		page.NextCursor = &c
	}
	records, err := st.recordsOf(ctx, found)
	if err != nil {
		return onboarding.StaffPage{}, err
	}
	for _, it := range found {
		if sum, ok := summary(records[str(it, attrPK)]); ok && keep(sum) {
			page.Accounts = append(page.Accounts, sum)
		}
	}
	return page, st.withSignals(ctx, page.Accounts)
}

// scanPartition reads one partition of the plan's index from below before
// (exclusive) down to after (exclusive), until it has want matches.
func (st *Store) scanPartition(ctx context.Context, plan listPlan, partition, after, before string, want int) (partitionScan, error) {
	names := map[string]string{"#k": plan.keyAttr}
	values := map[string]types.AttributeValue{":k": s(partition)}
	cond := "#k = :k"
	switch {
	case after != "" && before != "":
		// BETWEEN is inclusive: the cursor's own item is skipped below.
		cond += " AND listed_at BETWEEN :after AND :before"
		values[":after"], values[":before"] = s(after), s(before)
	case before != "":
		cond += " AND listed_at < :before"
		values[":before"] = s(before)
	case after != "":
		cond += " AND listed_at > :after"
		values[":after"] = s(after)
	}
	// One item more than wanted (two with the cursor's own): whether one
	// follows says whether the page is the last.
	limit := want + 1
	if after != "" && before != "" {
		limit++
	}
	in := &dynamodb.QueryInput{
		TableName: &st.table, IndexName: aws.String(plan.index),
		KeyConditionExpression: aws.String(cond), ExpressionAttributeNames: names, ExpressionAttributeValues: values,
		ScanIndexForward: aws.Bool(false), Limit: aws.Int32(int32(limit)),
	}
	if plan.filterStatus != "" {
		in.FilterExpression = aws.String("derived_status = :status")
		values[":status"] = s(plan.filterStatus)
		in.Limit = aws.Int32(onboarding.MaxPageSize) // a filter skips items: read more per call
	}
	var sc partitionScan
	for calls := 0; calls < queriesPerPartition; calls++ {
		out, err := st.db.Query(ctx, in)
		if err != nil {
			return partitionScan{}, onboarding.StorageFailed(err)
		}
		for _, it := range out.Items {
			if str(it, attrListedAt) == before {
				continue
			}
			if len(sc.items) == want { // and this one follows
				sc.through = str(sc.items[want-1], attrListedAt)
				return sc, nil
			}
			sc.items = append(sc.items, it)
		}
		if len(out.LastEvaluatedKey) == 0 {
			sc.through = ""
			return sc, nil
		}
		if len(sc.items) == want { // whether more follow is not known
			sc.through = str(sc.items[want-1], attrListedAt)
			return sc, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
		sc.through = str(out.LastEvaluatedKey, attrListedAt)
	}
	return sc, nil
}

// recordsOf reads the records of index items, by pk. The reads are
// eventually consistent, as the index that named them.
func (st *Store) recordsOf(ctx context.Context, items []map[string]types.AttributeValue) (map[string]map[string]types.AttributeValue, error) {
	pks := make([]string, len(items))
	for i, it := range items {
		pks[i] = str(it, attrPK)
	}
	records, err := st.batchRead(ctx, pks, false)
	if err != nil {
		return nil, err
	}
	out := make(map[string]map[string]types.AttributeValue, len(records))
	for _, item := range records {
		out[str(item, attrPK)] = item
	}
	return out, nil
}

// summary is an account record as the staff list shows it.
func summary(item map[string]types.AttributeValue) (onboarding.AccountSummary, bool) {
	it, err := unmarshalUser(item)
	if err != nil || it.AccountID == "" {
		return onboarding.AccountSummary{}, false
	}
	userID := it.UserID
	if userID == "" {
		userID, _ = strings.CutPrefix(it.PK, "USER#")
	}
	rec := it.account(userID)
	return onboarding.AccountSummary{
		UserID: userID, AccountID: rec.AccountID,
		Status: onboarding.Status(it.DerivedStatus), Review: onboarding.Review(it.Review),
		Country: rec.Country, ServiceAgreement: rec.ServiceAgreement,
		CreatedAt: rec.CreatedAt.UTC(), UpdatedAt: rec.UpdatedAt.UTC(),
		RequirementsDueCount: rec.State.RequirementsDueCount(),
		Email:                orNil(rec.Email), BusinessName: orNil(rec.BusinessName), BusinessURL: orNil(rec.BusinessURL),
		Signals: onboarding.Signals(rec.State, nil, false), // withSignals adds duplicate_email
	}, true
}

func orNil(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

var errBadCursor = onboarding.Invalid("cursor", "cursor is not one this API returned for this query")

// A cursor is the listed_at of a page's last position and a tag over it
// and the query's filters, so that a changed cursor, or one from a query
// with other filters, is refused rather than answered with a wrong page.
// The tag needs no secret: a cursor only names a position in a list its
// holder may read in full.
const cursorTagSize = 12

func cursorTag(f onboarding.AccountFilter, position string) []byte {
	after := ""
	if !f.CreatedAfter.IsZero() {
		after = f.CreatedAfter.UTC().Format(fixedTime)
	}
	kind := "list-cursor/v1"
	if f.Review == onboarding.ReviewPending {
		// The queue's positions are queued_at, oldest first: a cursor of
		// review=pending from before the queue (a listed_at) is refused.
		kind = "queue-cursor/v1"
	}
	sum := sha256.Sum256([]byte(strings.Join([]string{kind, string(f.Status), string(f.Review), after, position}, "\x00")))
	return sum[:cursorTagSize]
}

func encodeCursor(f onboarding.AccountFilter, position string) string {
	return base64.RawURLEncoding.EncodeToString(append([]byte(position), cursorTag(f, position)...))
}

// decodeCursor returns the listed_at a cursor of query f holds ("" for none).
func decodeCursor(f onboarding.AccountFilter, c string) (string, error) {
	if c == "" {
		return "", nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(raw) <= cursorTagSize {
		return "", errBadCursor
	}
	position, tag := string(raw[:len(raw)-cursorTagSize]), raw[len(raw)-cursorTagSize:]
	if !hmac.Equal(tag, cursorTag(f, position)) {
		return "", errBadCursor
	}
	at, user, ok := strings.Cut(position, "#")
	if _, perr := time.Parse(fixedTime, at); !ok || perr != nil || len(at) != len(fixedTime) || user == "" {
		return "", errBadCursor
	}
	return position, nil
}

// ---- one account's history ----

func reviewStateOf(it userItem) onboarding.ReviewState {
	return onboarding.ReviewState{Review: onboarding.Review(it.Review), ReviewedBy: it.ReviewedBy, ReviewedAt: it.ReviewedAt}
}

// StaffHistory reads the record (consistently) and, from the history index,
// its latest status changes and decisions.
func (st *Store) StaffHistory(ctx context.Context, userID string, limit int) (onboarding.StaffHistory, error) {
	it, err := st.readUser(ctx, userID)
	if err != nil {
		return onboarding.StaffHistory{}, err
	}
	if it.AccountID == "" {
		return onboarding.StaffHistory{}, onboarding.ErrNotFound
	}
	h := onboarding.StaffHistory{StaffRecord: onboarding.StaffRecord{Record: it.account(userID), ReviewState: reviewStateOf(it)}}
	if limit <= 0 {
		return h, nil
	}
	if h.EmailSharedWith, err = st.emailSharedWith(ctx, h.Record); err != nil {
		return onboarding.StaffHistory{}, err
	}
	var changes []statusChangeItem
	if err := st.history(ctx, userID, historyStatus, limit, &changes); err != nil {
		return onboarding.StaffHistory{}, err
	}
	for _, c := range changes {
		h.StatusChanges = append(h.StatusChanges, onboarding.StatusHistoryEntry{
			From: onboarding.Status(c.From), To: onboarding.Status(c.To), At: c.At.UTC(), Cause: onboarding.Cause(c.Cause),
		})
	}
	var reviews []reviewItem
	if err := st.history(ctx, userID, historyReview, limit, &reviews); err != nil {
		return onboarding.StaffHistory{}, err
	}
	for _, r := range reviews {
		outcome := onboarding.AuditOutcome(r.Outcome)
		if outcome == "" {
			outcome = onboarding.AuditRecorded // written before attempts had outcomes: a decision
		}
		h.Reviews = append(h.Reviews, onboarding.ReviewDecision{
			Decision: onboarding.Decision(r.Decision), Reason: r.Reason, Note: r.Note, Reviewer: r.Reviewer, At: r.At.UTC(),
			Outcome: outcome, Attempt: r.Attempt, StripeCode: r.StripeCode, StripeMessage: r.StripeMessage,
		})
	}
	return h, nil
}

// history reads a user's latest history items of one kind, newest first.
func (st *Store) history(ctx context.Context, userID, kind string, limit int, into any) error {
	e, err := expression.NewBuilder().WithKeyCondition(
		expression.Key(attrHistoryUser).Equal(expression.Value(userID)).And(expression.Key(attrHistoryKey).BeginsWith(kind)),
	).Build()
	if err != nil {
		return err
	}
	out, err := st.db.Query(ctx, &dynamodb.QueryInput{
		TableName: &st.table, IndexName: aws.String(IndexHistory),
		KeyConditionExpression: e.KeyCondition(), ExpressionAttributeNames: e.Names(), ExpressionAttributeValues: e.Values(),
		ScanIndexForward: aws.Bool(false), Limit: aws.Int32(int32(limit)),
	})
	if err != nil {
		return onboarding.StorageFailed(err)
	}
	if err := attributevalue.UnmarshalListOfMaps(out.Items, into); err != nil {
		return onboarding.StorageFailed(err)
	}
	return nil
}

// ---- decisions ----

// BeginRejection writes a rejection's intent item and marks the record, in
// one transaction, before the rejection goes to Stripe (status.go:
// withStatus reads the mark). RecordReview, or a refusal's outcome, removes
// the mark.
func (st *Store) BeginRejection(ctx context.Context, userID string, intent onboarding.ReviewDecision, until time.Time) error {
	return st.appendAudit(ctx, userID, intent, expression.Set(name(attrRejectingUntil), value(until.UnixMilli())))
}

// RecordRejectionOutcome appends a rejection attempt's refused or unknown
// outcome. A refusal removes the mark in the same transaction: Stripe
// rejected nothing, and a rejection Stripe makes later on its own is not
// the staff's. An unknown outcome leaves it: Stripe may have rejected.
func (st *Store) RecordRejectionOutcome(ctx context.Context, userID string, d onboarding.ReviewDecision) error {
	if d.Outcome == onboarding.AuditRefused {
		return st.appendAudit(ctx, userID, d, expression.Remove(name(attrRejectingUntil)))
	}
	accountID, err := st.accountOf(ctx, userID)
	if err != nil {
		return err
	}
	return st.putItem(ctx, auditItem(userID, accountID, d), missing(attrPK))
}

// accountOf returns the account of a user's record; ErrNotFound without one.
func (st *Store) accountOf(ctx context.Context, userID string) (string, error) {
	it, err := st.readUser(ctx, userID)
	switch {
	case err != nil:
		return "", err
	case it.AccountID == "":
		return "", onboarding.ErrNotFound
	}
	return it.AccountID, nil
}

// appendAudit writes an audit item and update on the user's account record
// in one transaction; ErrNotFound without an account.
func (st *Store) appendAudit(ctx context.Context, userID string, d onboarding.ReviewDecision, update expression.UpdateBuilder) error {
	accountID, err := st.accountOf(ctx, userID)
	if err != nil {
		return err
	}
	item, err := st.put(auditItem(userID, accountID, d), missing(attrPK))
	if err != nil {
		return err
	}
	_, refused, err := st.write(ctx, userID, recordWrite{update: update, cond: exists(attrAccountID), extra: []*types.Put{item}})
	switch {
	case err != nil:
		return err
	case refused:
		return onboarding.ErrNotFound
	}
	return nil
}

// auditItem is the REVIEW# item of one decision or rejection step.
func auditItem(userID, accountID string, d onboarding.ReviewDecision) reviewItem {
	suffix := d.At.UTC().Format(fixedTime) + "#" + randomSuffix()
	return reviewItem{
		PK: "REVIEW#" + userID + "#" + suffix, UserID: userID, AccountID: accountID,
		Decision: string(d.Decision), Reason: d.Reason, Note: d.Note, Reviewer: d.Reviewer, At: d.At,
		Outcome: string(d.Outcome), Attempt: d.Attempt, StripeCode: d.StripeCode, StripeMessage: d.StripeMessage,
		HistoryUser: userID, HistoryKey: historyReview + suffix,
	}
}

// RecordReview writes the decision item and the record's new review in
// one transaction, conditioned on the review it read; after a rejection
// Stripe's state goes into the same write, versioned as SaveState's.
func (st *Store) RecordReview(ctx context.Context, userID string, d onboarding.ReviewDecision, write *onboarding.StateWrite) (onboarding.StaffRecord, bool, error) {
	it, err := st.readUser(ctx, userID)
	if err != nil {
		return onboarding.StaffRecord{}, false, err
	}
	outcome := d.Decision.Outcome()
	for attempt := 1; ; attempt++ {
		if it.AccountID == "" {
			return onboarding.StaffRecord{}, false, onboarding.ErrNotFound
		}
		current := onboarding.StaffRecord{Record: it.account(userID), ReviewState: reviewStateOf(it)}
		if current.Review == outcome || (d.Decision == onboarding.DecisionApprove && current.Review == onboarding.ReviewRejected) {
			return current, false, nil
		}
		w, err := st.reviewWrite(userID, it, d, write)
		if err != nil {
			return onboarding.StaffRecord{}, false, err
		}
		decision, err := st.put(auditItem(userID, it.AccountID, d), missing(attrPK))
		if err != nil {
			return onboarding.StaffRecord{}, false, err
		}
		w.extra = append([]*types.Put{decision}, w.extra...)
		old, refused, err := st.write(ctx, userID, w)
		switch {
		case err != nil:
			return onboarding.StaffRecord{}, false, err
		case !refused:
			current.ReviewState = onboarding.ReviewState{Review: outcome, ReviewedBy: d.Reviewer, ReviewedAt: d.At}
			if stateApplies(it, write) {
				current.Record.State, current.Record.StateVersion, current.Record.UpdatedAt = write.State, write.Version, d.At
			}
			return current, true, nil
		}
		if err := st.raceLost(ctx, attempt); err != nil {
			return onboarding.StaffRecord{}, false, err
		}
		// The record changed since it was read (another decision, or
		// state): decide again on what it holds now.
		it = old
	}
}

// stateApplies says whether a rejection's state may replace it's: the
// versioned write's rule, judged on the record as read (and held by the
// write's condition).
func stateApplies(it userItem, write *onboarding.StateWrite) bool {
	return write != nil && it.DeauthorizedAt.IsZero() && it.StateVersion <= write.Version
}

// reviewWrite is the record's write for a decision on it as read: the new
// review, conditioned on the one read, and, when the rejection's state
// applies, that state with its derived status and status change.
func (st *Store) reviewWrite(userID string, it userItem, d onboarding.ReviewDecision, write *onboarding.StateWrite) (recordWrite, error) {
	w := recordWrite{cond: exists(attrAccountID)}
	if stateApplies(it, write) {
		w = stateWrite(write.State, write.Version, d.At)
		w.update = queueOnSubmission(w.update, userID, write.State, d.At)
	}
	if d.Decision == onboarding.DecisionReject {
		w.update = w.update.Remove(name(attrRejectingUntil))
	}
	w.update = w.update.Set(name(attrReview), value(string(d.Decision.Outcome()))).
		Set(name(attrReviewedBy), value(d.Reviewer)).Set(name(attrReviewedAt), value(d.At)).
		Set(name(attrListedAt), expression.IfNotExists(name(attrListedAt), value(listedAt(it.CreatedAt, userID))))
	// Pinned to the review read: a concurrent decision makes this one try again.
	if it.Review == "" {
		w.cond = w.cond.And(missing(attrReview))
	} else {
		w.cond = w.cond.And(name(attrReview).Equal(value(it.Review)))
	}
	if !stateApplies(it, write) {
		// Newer state is stored (or the account is deauthorized): it stands.
		return w, nil
	}
	rec := it.account(userID)
	state := write.State
	state.RequestedCapabilities = rec.State.RequestedCapabilities // Stripe's answer does not say
	err := st.withStatus(&w, basisOf(userID, it, false), statusWrite{
		userID: userID, accountID: rec.AccountID, to: onboarding.DeriveStatus(state, rec.ServiceAgreement, d.At),
		cause: onboarding.CauseStaff, at: d.At, version: write.Version,
	})
	return w, err
}
