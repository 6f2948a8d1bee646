package dynamostore

import (
	"context"
	"errors"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/connectexpress/onboarding/shared/onboarding"
)

// batchGetLimit is BatchGetItem's most keys per request.
const batchGetLimit = 100

// batchRetries bounds the retries of keys BatchGetItem left unprocessed
// (it does so under throttling, with backoff expected).
const batchRetries = 5

// batchRead reads the items of pks, 100 keys a request, retrying what
// DynamoDB left unprocessed. consistent asks for strongly consistent reads
// (twice the read units); attrs, when given, is the projection.
func (st *Store) batchRead(ctx context.Context, pks []string, consistent bool, attrs ...string) ([]map[string]types.AttributeValue, error) {
	var projection *expression.Expression
	if len(attrs) > 0 {
		names := make([]expression.NameBuilder, len(attrs))
		for i, a := range attrs {
			names[i] = name(a)
		}
		e, err := expression.NewBuilder().WithProjection(expression.NamesList(names[0], names[1:]...)).Build()
		if err != nil {
			return nil, err
		}
		projection = &e
	}
	var items []map[string]types.AttributeValue
	for start := 0; start < len(pks); start += batchGetLimit {
		keys := make([]map[string]types.AttributeValue, 0, batchGetLimit)
		for _, pk := range pks[start:min(start+batchGetLimit, len(pks))] {
			keys = append(keys, keyOf(pk))
		}
		req := types.KeysAndAttributes{Keys: keys}
		if consistent {
			req.ConsistentRead = aws.Bool(true)
		}
		if projection != nil {
			req.ProjectionExpression, req.ExpressionAttributeNames = projection.Projection(), projection.Names()
		}
		pending := map[string]types.KeysAndAttributes{st.table: req}
		for attempt := 0; len(pending) > 0; attempt++ {
			if attempt > 0 {
				if attempt > batchRetries {
					return nil, onboarding.StorageFailed(errors.New("dynamostore: BatchGetItem left keys unprocessed after retries"))
				}
				if err := st.wait(ctx, time.Duration(attempt*attempt)*25*time.Millisecond); err != nil {
					return nil, onboarding.StorageFailed(err)
				}
			}
			out, err := st.db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: pending})
			if err != nil {
				return nil, onboarding.StorageFailed(err)
			}
			items = append(items, out.Responses[st.table]...)
			pending = out.UnprocessedKeys
		}
	}
	return items, nil
}
