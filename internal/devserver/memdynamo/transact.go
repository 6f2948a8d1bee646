package memdynamo

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
)

// minidyn v0.8.2 runs a transaction on a deep copy of every table it
// touches (Table.Snapshot), to restore on failure: each transaction costs
// O(table), and a webhook, which writes in one, slows down as events pile
// up. Client runs transactions itself instead, under mu held for writing,
// so no other call through Client sees one half done: it applies the items
// one by one with minidyn's single-item calls and keeps, for each touched
// item only, what it held before (an undo log), which it writes back when
// any condition fails.
//
// DynamoDB's contract (API reference, TransactWriteItems and
// TransactionCanceledException:
// https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html):
// all items or none; a failed condition cancels the transaction with one
// CancellationReason per item, in the order of TransactItems, Code "None"
// for an item that passed and "ConditionalCheckFailed" (message "The
// conditional request failed") for one that did not, with the item as it
// was when ReturnValuesOnConditionCheckFailure is ALL_OLD; two actions on
// one item are a ValidationException.

const (
	maxTransactItems   = 100 // DynamoDB's limit per TransactWriteItems
	conditionFailed    = "ConditionalCheckFailed"
	conditionFailedMsg = "The conditional request failed"
)

// TransactWriteItems applies every item or none (see above).
func (c *Client) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, _ ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	n := len(in.TransactItems)
	if n == 0 || n > maxTransactItems {
		return nil, validation(fmt.Sprintf("transactItems must hold 1 to %d items, not %d", maxTransactItems, n))
	}
	actions := make([]action, n)
	for i, it := range in.TransactItems {
		a, err := toAction(it)
		if err != nil {
			return nil, err
		}
		actions[i] = a
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	seen := map[string]bool{}
	for i := range actions {
		a := &actions[i]
		names, err := c.primaryKey(ctx, a.table)
		if err != nil {
			return nil, err
		}
		a.key = map[string]types.AttributeValue{}
		for _, name := range names {
			v, ok := a.keySource[name]
			if !ok {
				return nil, validation("the provided key element does not match the schema")
			}
			a.key[name] = v
		}
		id := a.table + "\x00" + keyString(names, a.key)
		if seen[id] {
			return nil, validation("Transaction request cannot include multiple operations on one item")
		}
		seen[id] = true
	}

	var undo []before
	rollback := func() error {
		for i := len(undo) - 1; i >= 0; i-- {
			if err := c.restore(ctx, undo[i]); err != nil {
				return fmt.Errorf("memdynamo: restoring %s after a cancelled transaction: %w", undo[i].table, err)
			}
		}
		return nil
	}
	reasons := make([]types.CancellationReason, n)
	cancelled := false
	for i, a := range actions {
		old, err := c.exactItem(ctx, &a.table, a.key)
		if err != nil {
			return nil, errors.Join(err, rollback())
		}
		undo = append(undo, before{table: a.table, key: a.key, item: old})
		err = a.apply(ctx, c)
		var ccf *types.ConditionalCheckFailedException
		switch {
		case err == nil:
			reasons[i] = types.CancellationReason{Code: aws.String("None")}
		case errors.As(err, &ccf):
			cancelled = true
			reasons[i] = types.CancellationReason{Code: aws.String(conditionFailed), Message: aws.String(conditionFailedMsg)}
			if a.returnOld == types.ReturnValuesOnConditionCheckFailureAllOld && old != nil {
				reasons[i].Item = old
			}
		default:
			return nil, errors.Join(err, rollback())
		}
	}
	if cancelled {
		if err := rollback(); err != nil {
			return nil, err
		}
		codes := make([]string, n)
		for i, r := range reasons {
			codes[i] = aws.ToString(r.Code)
		}
		return nil, &types.TransactionCanceledException{
			Message:             aws.String("Transaction cancelled, please refer cancellation reasons for specific reasons [" + strings.Join(codes, ", ") + "]"),
			CancellationReasons: reasons,
		}
	}
	// A ConditionCheck wrote its probe (see toAction): put its item back.
	for i, a := range actions {
		if a.checkOnly {
			if err := c.restore(ctx, undo[i]); err != nil {
				return nil, err
			}
		}
	}
	return &dynamodb.TransactWriteItemsOutput{}, nil
}

// action is one transaction item as a single-item call.
type action struct {
	table     string
	keySource map[string]types.AttributeValue // the key, or the Put's item
	key       map[string]types.AttributeValue // filled in under mu
	returnOld types.ReturnValuesOnConditionCheckFailure
	checkOnly bool
	apply     func(context.Context, *Client) error
}

// before is an undo log entry: an item as it was (nil: absent).
type before struct {
	table string
	key   map[string]types.AttributeValue
	item  map[string]types.AttributeValue
}

// checkProbe is the attribute a ConditionCheck's probe sets. minidyn
// evaluates conditions only in its writes, so a check is a conditional
// update of this attribute, undone whatever the outcome.
const checkProbe = "memdynamo_condition_check"

func toAction(it types.TransactWriteItem) (action, error) {
	switch {
	case it.Put != nil:
		p := it.Put
		return action{table: aws.ToString(p.TableName), keySource: p.Item, returnOld: p.ReturnValuesOnConditionCheckFailure,
			apply: func(ctx context.Context, c *Client) error {
				_, err := c.Client.PutItem(ctx, &dynamodb.PutItemInput{TableName: p.TableName, Item: p.Item,
					ConditionExpression: p.ConditionExpression, ExpressionAttributeNames: p.ExpressionAttributeNames, ExpressionAttributeValues: p.ExpressionAttributeValues})
				return err
			}}, nil
	case it.Update != nil:
		u := it.Update
		removed, err := removedAttributes(aws.ToString(u.UpdateExpression), u.ExpressionAttributeNames)
		if err != nil {
			return action{}, err
		}
		return action{table: aws.ToString(u.TableName), keySource: u.Key, returnOld: u.ReturnValuesOnConditionCheckFailure,
			apply: func(ctx context.Context, c *Client) error {
				if _, err := c.Client.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: u.TableName, Key: u.Key, UpdateExpression: u.UpdateExpression,
					ConditionExpression: u.ConditionExpression, ExpressionAttributeNames: u.ExpressionAttributeNames, ExpressionAttributeValues: u.ExpressionAttributeValues}); err != nil {
					return err
				}
				if len(removed) == 0 {
					return nil
				}
				_, err := c.remove(ctx, u.TableName, u.Key, removed)
				return err
			}}, nil
	case it.Delete != nil:
		d := it.Delete
		return action{table: aws.ToString(d.TableName), keySource: d.Key, returnOld: d.ReturnValuesOnConditionCheckFailure,
			apply: func(ctx context.Context, c *Client) error {
				_, err := c.Client.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: d.TableName, Key: d.Key,
					ConditionExpression: d.ConditionExpression, ExpressionAttributeNames: d.ExpressionAttributeNames, ExpressionAttributeValues: d.ExpressionAttributeValues})
				return err
			}}, nil
	case it.ConditionCheck != nil:
		k := it.ConditionCheck
		if k.ConditionExpression == nil {
			return action{}, validation("ConditionCheck needs a ConditionExpression")
		}
		return action{table: aws.ToString(k.TableName), keySource: k.Key, returnOld: k.ReturnValuesOnConditionCheckFailure, checkOnly: true,
			apply: func(ctx context.Context, c *Client) error {
				names := map[string]string{"#memdynamoProbe": checkProbe}
				for p, n := range k.ExpressionAttributeNames {
					names[p] = n
				}
				values := map[string]types.AttributeValue{":memdynamoProbe": &types.AttributeValueMemberBOOL{Value: true}}
				for p, v := range k.ExpressionAttributeValues {
					values[p] = v
				}
				_, err := c.Client.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: k.TableName, Key: k.Key,
					UpdateExpression: aws.String("SET #memdynamoProbe = :memdynamoProbe"), ConditionExpression: k.ConditionExpression,
					ExpressionAttributeNames: names, ExpressionAttributeValues: values})
				return err
			}}, nil
	}
	return action{}, validation("a transaction item must hold one of Put, Update, Delete or ConditionCheck")
}

// restore writes an undo log entry back. The caller holds mu.
func (c *Client) restore(ctx context.Context, b before) error {
	if b.item == nil {
		_, err := c.Client.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &b.table, Key: b.key})
		return err
	}
	_, err := c.Client.PutItem(ctx, &dynamodb.PutItemInput{TableName: &b.table, Item: b.item})
	return err
}

// primaryKey returns a table's key attribute names, hash first.
func (c *Client) primaryKey(ctx context.Context, table string) ([]string, error) {
	c.schemaMu.Lock()
	defer c.schemaMu.Unlock()
	if names, ok := c.keys[table]; ok {
		return names, nil
	}
	desc, err := c.Client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &table})
	if err != nil {
		return nil, err
	}
	var names []string
	for _, k := range desc.Table.KeySchema {
		if k.KeyType == types.KeyTypeHash {
			names = append([]string{aws.ToString(k.AttributeName)}, names...)
		} else {
			names = append(names, aws.ToString(k.AttributeName))
		}
	}
	c.keys[table] = names
	return names, nil
}

// keyString identifies an item by its key attributes (S, N or B).
func keyString(names []string, key map[string]types.AttributeValue) string {
	var b strings.Builder
	for _, name := range names {
		switch v := key[name].(type) {
		case *types.AttributeValueMemberS:
			fmt.Fprintf(&b, "S%q", v.Value)
		case *types.AttributeValueMemberN:
			fmt.Fprintf(&b, "N%q", v.Value)
		case *types.AttributeValueMemberB:
			fmt.Fprintf(&b, "B%q", v.Value)
		}
	}
	return b.String()
}

func validation(msg string) error {
	return &smithy.GenericAPIError{Code: "ValidationException", Message: msg}
}
