package dynamostore

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/connectexpress/onboarding/shared/onboarding"
)

// useID names one use of a limit: random, so no two uses share one.
func useID() string {
	b := make([]byte, 9)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// TakeSlot keeps a limit's most recent uses in one item, newest first: s1
// is the latest use's time (Unix ms), s<limit> the limit-th latest. A use
// is allowed when s<limit> left the window, which is exactly "at most limit
// uses in any window-long span"; taking it shifts every slot down by one in
// the same conditional write, so concurrent callers on any Lambda instance
// cannot both take the last one. The TTL lets DynamoDB delete the item once
// every slot left the window.
func (st *Store) TakeSlot(ctx context.Context, name string, limit int, window time.Duration, now time.Time) (bool, time.Time, error) {
	if limit < 1 {
		return false, time.Time{}, errors.New("dynamostore: a limit needs at least one slot")
	}
	assignments := make([]string, 0, limit+1)
	for i := limit; i > 1; i-- {
		assignments = append(assignments, fmt.Sprintf("s%d = if_not_exists(s%d, :zero)", i, i-1))
	}
	assignments = append(assignments, "s1 = :now", "last_use = :use", "expires_at = :expires")
	oldest := fmt.Sprintf("s%d", limit)
	use := useID()
	values := map[string]types.AttributeValue{
		":now": n(now.UnixMilli()), ":cutoff": n(now.Add(-window).UnixMilli()), ":use": s(use),
		":expires": n(now.Add(window).Add(time.Second).Unix()),
	}
	if limit > 1 {
		values[":zero"] = n(0) // DynamoDB refuses values an expression does not use
	}
	_, err := st.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &st.table, Key: key("LIMIT#" + name),
		UpdateExpression: aws.String("SET " + strings.Join(assignments, ", ")),
		// The use's id keeps a retry of this very write (the SDK retries
		// when an answer is lost after the write was applied) from counting
		// the use twice.
		ConditionExpression: aws.String("(attribute_not_exists(" + oldest + ") OR " + oldest + " <= :cutoff) AND " +
			"(attribute_not_exists(last_use) OR last_use <> :use)"),
		ExpressionAttributeValues:           values,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var ccf *types.ConditionalCheckFailedException
	switch {
	case err == nil:
		return true, now, nil
	case errors.As(err, &ccf) && str(ccf.Item, "last_use") == use:
		return true, now, nil // the first attempt of this very write counted it
	case errors.As(err, &ccf):
		used, _ := number(ccf.Item, oldest)
		return false, time.UnixMilli(used).Add(window), nil
	default:
		return false, time.Time{}, onboarding.StorageFailed(err)
	}
}
