package dynamostore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/connectexpress/onboarding/shared/onboarding"
)

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
	assignments = append(assignments, "s1 = :now", "expires_at = :expires")
	oldest := fmt.Sprintf("s%d", limit)
	values := map[string]types.AttributeValue{
		":now": n(now.UnixMilli()), ":cutoff": n(now.Add(-window).UnixMilli()),
		":expires": n(now.Add(window).Add(time.Second).Unix()),
	}
	if limit > 1 {
		values[":zero"] = n(0) // DynamoDB refuses values an expression does not use
	}
	_, err := st.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &st.table, Key: key("LIMIT#" + name),
		UpdateExpression:                    aws.String("SET " + strings.Join(assignments, ", ")),
		ConditionExpression:                 aws.String("attribute_not_exists(" + oldest + ") OR " + oldest + " <= :cutoff"),
		ExpressionAttributeValues:           values,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var ccf *types.ConditionalCheckFailedException
	switch {
	case err == nil:
		return true, now, nil
	case errors.As(err, &ccf):
		used, _ := number(ccf.Item, oldest)
		return false, time.UnixMilli(used).Add(window), nil
	default:
		return false, time.Time{}, onboarding.StorageFailed(err)
	}
}
