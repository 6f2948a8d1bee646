package dynamostore

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
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
func (st *Store) TakeSlot(ctx context.Context, key string, limit int, window time.Duration, now time.Time) (bool, time.Time, error) {
	if limit < 1 {
		return false, time.Time{}, errors.New("dynamostore: a limit needs at least one slot")
	}
	// Each slot takes the one before it, oldest first: an engine that
	// applies the assignments in order still reads every slot before it
	// is overwritten.
	var update expression.UpdateBuilder
	for i := limit; i > 1; i-- {
		update = update.Set(slotName(i), expression.IfNotExists(slotName(i-1), value(0)))
	}
	use := useID()
	update = update.Set(slotName(1), value(now.UnixMilli())).
		Set(name(attrLastUse), value(use)).
		Set(name(attrExpiresAt), value(attributevalue.UnixTime(now.Add(window).Add(time.Second))))
	oldest := slotName(limit)
	// The use's id keeps a retry of this very write (the SDK retries when
	// an answer is lost after the write was applied) from counting the use
	// twice.
	cond := expression.AttributeNotExists(oldest).Or(oldest.LessThanEqual(value(now.Add(-window).UnixMilli()))).
		And(missing(attrLastUse).Or(name(attrLastUse).NotEqual(value(use))))
	in, err := st.updateInput("LIMIT#"+key, update, cond)
	if err != nil {
		return false, time.Time{}, err
	}
	in.ReturnValuesOnConditionCheckFailure = types.ReturnValuesOnConditionCheckFailureAllOld
	_, err = st.db.UpdateItem(ctx, in)
	var ccf *types.ConditionalCheckFailedException
	if err == nil {
		return true, now, nil
	} else if !errors.As(err, &ccf) {
		return false, time.Time{}, onboarding.StorageFailed(err)
	}
	var held limitItem
	var used int64
	if err := attributevalue.UnmarshalMap(ccf.Item, &held); err != nil {
		return false, time.Time{}, onboarding.StorageFailed(err)
	}
	if held.LastUse == use {
		return true, now, nil // the first attempt of this very write counted it
	}
	if av, ok := ccf.Item[slot(limit)]; ok {
		if err := attributevalue.Unmarshal(av, &used); err != nil {
			return false, time.Time{}, onboarding.StorageFailed(err)
		}
	}
	return false, time.UnixMilli(used).Add(window), nil
}

func slotName(i int) expression.NameBuilder { return name(slot(i)) }
