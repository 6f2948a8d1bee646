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
// entered it. Every connected record is in the review-queue index, in its
// review's partition (a decision moves it out of "pending"), by queued_at:
// the time a state write first stored details_submitted true (kept in
// submitted_key too, and never moved after), or, while its holder is still
// filling in Stripe's form, notQueued, which sorts after every time. The
// queue is the pending partition up to notQueued: it never shows an
// account with nothing to vet. The sweep reads the whole index (sweep.go):
// one index for both, since a stack update may add only one.

// notQueued is the queued_at of a record whose details are not submitted:
// '~' sorts after the digits every time starts with, and queueEnd, the
// queue's bound, is below it.
const (
	notQueued = "~not-submitted"
	queueEnd  = "~"
)

// queueOnSubmission adds to a state write the record's queued_at: when the
// state says the details are submitted, the time the account entered the
// review queue, unless it entered before (submitted_key holds that time,
// so a later write never moves it); otherwise the entry time if there is
// one, else notQueued. Records stored before the index existed get it at
// their next state write (a webhook, a refresh, a sweep that finds
// Stripe's state changed).
func queueOnSubmission(u expression.UpdateBuilder, userID string, state onboarding.AccountState, at time.Time) expression.UpdateBuilder {
	if !state.DetailsSubmitted {
		return u.Set(name(attrQueuedAt), expression.IfNotExists(name(attrSubmittedKey), value(notQueued)))
	}
	// Both read submitted_key as it was before this write.
	entered := value(listedAt(at, userID))
	return u.Set(name(attrSubmittedKey), expression.IfNotExists(name(attrSubmittedKey), entered)).
		Set(name(attrQueuedAt), expression.IfNotExists(name(attrSubmittedKey), entered))
}

// listQueue is ListAccounts for review=pending: one partition of the
// review-queue index up to queueEnd, read oldest first from the cursor's
// queued_at; the status and created_after filters are judged on the
// index's projection.
func (st *Store) listQueue(ctx context.Context, f onboarding.AccountFilter) (onboarding.StaffPage, error) {
	from, err := decodeCursor(f, f.Cursor)
	if err != nil {
		return onboarding.StaffPage{}, err
	}
	names := map[string]string{"#r": attrReview, "#q": attrQueuedAt}
	values := map[string]types.AttributeValue{":pending": s(string(onboarding.ReviewPending)), ":end": s(queueEnd)}
	cond := "#r = :pending AND #q < :end"
	extra := 1 // whether one more follows says whether the page is the last
	if from != "" {
		// A key condition takes one range: from the cursor's own entry,
		// which queryQueue passes over (decodeCursor admits only a time,
		// which sorts below queueEnd).
		cond = "#r = :pending AND #q BETWEEN :from AND :end"
		values[":from"] = s(from)
		extra = 2
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
	in := &dynamodb.QueryInput{
		TableName: &st.table, IndexName: aws.String(IndexReviewQueue),
		KeyConditionExpression: aws.String(cond), ExpressionAttributeNames: names, ExpressionAttributeValues: values,
		ScanIndexForward: aws.Bool(true), Limit: aws.Int32(int32(f.Limit + extra)),
	}
	if len(filters) > 0 {
		in.FilterExpression = aws.String(strings.Join(filters, " AND "))
		in.Limit = aws.Int32(onboarding.MaxPageSize) // a filter skips items: read more per call
	}
	found, next, err := st.queryQueue(ctx, in, from, f.Limit)
	if err != nil {
		return onboarding.StaffPage{}, err
	}
	// The index is eventually consistent: a record decided on since (or
	// whose status moved, under a status filter) is left out.
	return st.pageOf(ctx, f, found, next, func(sum onboarding.AccountSummary) bool {
		return sum.Review == onboarding.ReviewPending && (f.Status == "" || sum.Status == f.Status)
	})
}

// queryQueue runs in until it has want items after the one at from, at
// most queriesPerPartition calls, and returns them with the position the
// next page starts after ("" when the queue was read to its end).
func (st *Store) queryQueue(ctx context.Context, in *dynamodb.QueryInput, from string, want int) ([]map[string]types.AttributeValue, string, error) {
	var found []map[string]types.AttributeValue
	next := ""
	for calls := 0; calls < queriesPerPartition; calls++ {
		out, err := st.db.Query(ctx, in)
		if err != nil {
			return nil, "", onboarding.StorageFailed(err)
		}
		for _, it := range out.Items {
			if from != "" && str(it, attrQueuedAt) == from {
				continue // the previous page's last
			}
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
