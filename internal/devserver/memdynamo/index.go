package memdynamo

import (
	"cmp"
	"context"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/truora/minidyn/aws-v2/client"
)

// minidyn v0.8.2 loses an index entry when an update adds an item to a
// sparse index (its index.updateData overwrites the first sorted key
// instead of inserting), and a query of that index then stops short. Every
// account enters the staff indexes that way (its claim is put without
// their keys, its completion adds them), so Client answers queries of an
// index from a scan of the table, which is exact, ordered and paged as
// DynamoDB pages a query. Tables are small in development.

// Query answers table queries as minidyn does and index queries from a scan.
func (c *Client) Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if in.IndexName == nil {
		return c.Client.Query(ctx, in, opts...)
	}
	keys, err := c.indexKeys(ctx, aws.ToString(in.TableName), aws.ToString(in.IndexName))
	if err != nil {
		return nil, err
	}
	// The index's items are those with both its keys; a key condition is a
	// valid filter too. minidyn's scan evaluates every term of a filter on
	// every item (begins_with on a missing attribute is an error there), so
	// the index's items are filtered in a scratch table that holds only them.
	names := map[string]string{"#mdh": keys[0], "#mdr": keys[1]}
	members, err := scanAll(ctx, c.Client, &dynamodb.ScanInput{
		TableName: in.TableName, FilterExpression: aws.String("attribute_exists(#mdh) AND attribute_exists(#mdr)"), ExpressionAttributeNames: names,
	})
	if err != nil {
		return nil, err
	}
	scratch := client.NewClient()
	const scratchTable = "index"
	if _, err := scratch.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(scratchTable),
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash}},
		BillingMode:          types.BillingModePayPerRequest,
	}); err != nil {
		return nil, err
	}
	for _, it := range members {
		if _, err := scratch.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(scratchTable), Item: it}); err != nil {
			return nil, err
		}
	}
	filter := aws.ToString(in.KeyConditionExpression)
	if in.FilterExpression != nil {
		filter = "(" + filter + ") AND (" + *in.FilterExpression + ")"
	}
	items, err := scanAll(ctx, scratch, &dynamodb.ScanInput{
		TableName: aws.String(scratchTable), FilterExpression: &filter,
		ExpressionAttributeNames: in.ExpressionAttributeNames, ExpressionAttributeValues: in.ExpressionAttributeValues,
	})
	if err != nil {
		return nil, err
	}
	order := func(a, b map[string]types.AttributeValue) int {
		return cmp.Or(cmp.Compare(stringAttr(a, keys[1]), stringAttr(b, keys[1])), cmp.Compare(stringAttr(a, "pk"), stringAttr(b, "pk")))
	}
	slices.SortFunc(items, order)
	if in.ScanIndexForward != nil && !*in.ScanIndexForward {
		slices.Reverse(items)
	}
	if start := in.ExclusiveStartKey; len(start) > 0 {
		i := slices.IndexFunc(items, func(it map[string]types.AttributeValue) bool {
			return stringAttr(it, "pk") == stringAttr(start, "pk") && stringAttr(it, keys[1]) == stringAttr(start, keys[1])
		})
		items = items[i+1:] // -1 + 1: from the start when the key is gone
	}
	out := &dynamodb.QueryOutput{}
	if limit := int(aws.ToInt32(in.Limit)); limit > 0 && len(items) > limit {
		items = items[:limit]
		last := items[limit-1]
		out.LastEvaluatedKey = map[string]types.AttributeValue{"pk": last["pk"], keys[0]: last[keys[0]], keys[1]: last[keys[1]]}
	}
	out.Items, out.Count, out.ScannedCount = items, int32(len(items)), int32(len(items))
	return out, nil
}

// scanAll scans a table of db to its end.
func scanAll(ctx context.Context, db *client.Client, in *dynamodb.ScanInput) ([]map[string]types.AttributeValue, error) {
	var items []map[string]types.AttributeValue
	for {
		out, err := db.Scan(ctx, in)
		if err != nil {
			return nil, err
		}
		items = append(items, out.Items...)
		if len(out.LastEvaluatedKey) == 0 {
			return items, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// indexKeys returns an index's hash and range key names.
func (c *Client) indexKeys(ctx context.Context, table, index string) ([2]string, error) {
	c.schemaMu.Lock()
	defer c.schemaMu.Unlock()
	if keys, ok := c.schemas[table][index]; ok {
		return keys, nil
	}
	desc, err := c.Client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &table})
	if err != nil {
		return [2]string{}, err
	}
	c.schemas[table] = map[string][2]string{}
	for _, gsi := range desc.Table.GlobalSecondaryIndexes {
		var keys [2]string
		for _, k := range gsi.KeySchema {
			if k.KeyType == types.KeyTypeHash {
				keys[0] = aws.ToString(k.AttributeName)
			} else {
				keys[1] = aws.ToString(k.AttributeName)
			}
		}
		c.schemas[table][aws.ToString(gsi.IndexName)] = keys
	}
	keys, ok := c.schemas[table][index]
	if !ok || keys[1] == "" {
		return keys, &types.ResourceNotFoundException{Message: aws.String("minidyn: no index " + index + " with a range key on " + table)}
	}
	return keys, nil
}

func stringAttr(item map[string]types.AttributeValue, name string) string {
	if v, ok := item[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}
