package dynamostore

import (
	"context"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/connectexpress/onboarding/shared/onboarding"
)

// The review queue: accounts whose details Stripe has (details_submitted)
// and that no staff member decided on yet, oldest first by when they
// entered it. A record enters the review-queue index when a state write
// first stores details_submitted true (queued_at, never moved after), and
// stays in its review's partition: a decision moves it out of "pending".
// A record has no queued_at while its holder is still filling in Stripe's
// form, so it is in no partition of the index: the queue never shows an
// account with nothing to vet.

// queueOnSubmission adds to a state write, when the state says the details
// are submitted, the time the account entered the review queue, unless it
// entered before. Records stored before the queue existed get it at their
// next state write with details submitted (a webhook, a refresh, a sweep
// that finds Stripe's state changed).
func queueOnSubmission(u expression.UpdateBuilder, userID string, state onboarding.AccountState, at time.Time) expression.UpdateBuilder {
	if !state.DetailsSubmitted {
		return u
	}
	return u.Set(name(attrQueuedAt), expression.IfNotExists(name(attrQueuedAt), value(listedAt(at, userID))))
}

// listQueue is ListAccounts for review=pending: one partition of the
// review-queue index, read oldest first from the cursor's queued_at; the
// status and created_after filters are judged on the index's projection.
func (st *Store) listQueue(ctx context.Context, f onboarding.AccountFilter) (onboarding.StaffPage, error) {
	from, err := decodeCursor(f, f.Cursor)
	if err != nil {
		return onboarding.StaffPage{}, err
	}
	names := map[string]string{"#r": attrReview}
	values := map[string]types.AttributeValue{":pending": s(string(onboarding.ReviewPending))}
	cond := "#r = :pending"
	if from != "" {
		names["#q"] = attrQueuedAt
		cond += " AND #q > :from"
		values[":from"] = s(from)
	}
	var filters []string
	if f.Status != "" {
		names["#st"] = attrDerivedStatus
		values[":status"] = s(string(f.Status))
		filters = append(filters, "#st = :status")
	}
	if !f.CreatedAfter.IsZero() {
		// listed_at starts with created_at at fixed width; '$' sorts after
		// '#', so an account created at that exact instant is not after it.
		names["#l"] = attrListedAt
		values[":after"] = s(f.CreatedAfter.UTC().Format(fixedTime) + "$")
		filters = append(filters, "#l > :after")
	}
	// One item more than a page: whether one follows says whether the page
	// is the last.
	in := &dynamodb.QueryInput{
		TableName: &st.table, IndexName: aws.String(IndexReviewQueue),
		KeyConditionExpression: aws.String(cond), ExpressionAttributeNames: names, ExpressionAttributeValues: values,
		ScanIndexForward: aws.Bool(true), Limit: aws.Int32(int32(f.Limit + 1)),
	}
	if len(filters) > 0 {
		in.FilterExpression = aws.String(strings.Join(filters, " AND "))
		in.Limit = aws.Int32(onboarding.MaxPageSize) // a filter skips items: read more per call
	}
	found, next, err := st.queryQueue(ctx, in, f.Limit)
	if err != nil {
		return onboarding.StaffPage{}, err
	}
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
		item := records[str(it, attrPK)]
		sum, ok := summary(item)
		// The index is eventually consistent: a record decided on since
		// (or whose status moved, under a status filter) is left out.
		if !ok || sum.Review != onboarding.ReviewPending || (f.Status != "" && sum.Status != f.Status) {
			continue
		}
		page.Accounts = append(page.Accounts, sum)
	}
	return page, st.withSignals(ctx, page.Accounts)
}

// queryQueue runs in until it has want items, at most queriesPerPartition
// calls, and returns them with the position the next page starts after
// ("" when the queue was read to its end).
func (st *Store) queryQueue(ctx context.Context, in *dynamodb.QueryInput, want int) ([]map[string]types.AttributeValue, string, error) {
	var found []map[string]types.AttributeValue
	next := ""
	for calls := 0; calls < queriesPerPartition; calls++ {
		out, err := st.db.Query(ctx, in)
		if err != nil {
			return nil, "", onboarding.StorageFailed(err)
		}
		for _, it := range out.Items {
			if len(found) == want { // and this one follows
				return found, str(found[want-1], attrQueuedAt), nil
			}
			found = append(found, it)
		}
		switch {
		case len(out.LastEvaluatedKey) == 0:
			return found, "", nil
		case len(found) == want: // whether more follow is not known
			return found, str(found[want-1], attrQueuedAt), nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
		next = str(out.LastEvaluatedKey, attrQueuedAt)
	}
	// The filter skipped most of what was read: the page ends early, and
	// the next one starts past everything read.
	return found, next, nil
}
