// Package memdynamo is the dev server's in-process DynamoDB engine:
// minidyn's client (github.com/truora/minidyn), with the gaps the store
// would fall into filled in here, so that the store's production code runs
// on it as written. Tests and benchmarks that run the store in process use
// it too. It must never be imported by shared/ or functions/.
package memdynamo

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/truora/minidyn/aws-v2/client"
)

// Client is minidyn's client with four gaps filled:
//   - minidyn v0.8.2 parses REMOVE in UpdateItem (alone, after SET, and in
//     transactions) but never deletes the attributes: Client removes them
//     itself, in the same step as the update;
//   - minidyn has no UpdateTimeToLive: Client accepts the setting. Neither
//     minidyn nor moto deletes expired items, and the store never relies on
//     TTL deletion (it checks expiry in its conditions);
//   - minidyn's sparse indexes lose entries: Client answers index queries
//     from the table (index.go);
//   - minidyn copies every touched table for each transaction, and its
//     rollback loses empty lists and maps: Client runs transactions itself,
//     with an undo log of the touched items only (transact.go).
type Client struct {
	*client.Client
	// mu makes an update and its emulated REMOVE, and a transaction and its
	// undo, one step for every other call through Client (minidyn locks
	// each call on its own): writes hold it exclusively, reads shared.
	mu sync.RWMutex
	// schemas caches each table's index keys: table -> index -> hash, range key.
	schemaMu sync.Mutex
	schemas  map[string]map[string][2]string
	keys     map[string][]string // table -> key attribute names, hash first
}

// New returns an empty engine.
func New() *Client {
	return &Client{Client: client.NewClient(), schemas: map[string]map[string][2]string{}, keys: map[string][]string{}}
}

func (c *Client) GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.Client.GetItem(ctx, in, opts...)
}

func (c *Client) PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Client.PutItem(ctx, in, opts...)
}

func (c *Client) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	removed, err := removedAttributes(aws.ToString(in.UpdateExpression), in.ExpressionAttributeNames)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out, err := c.Client.UpdateItem(ctx, in, opts...)
	if err != nil || len(removed) == 0 {
		return out, err
	}
	item, err := c.remove(ctx, in.TableName, in.Key, removed)
	if err != nil {
		return nil, err
	}
	if in.ReturnValues == types.ReturnValueAllNew {
		out.Attributes = item
	}
	return out, nil
}

func (c *Client) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Client.DeleteItem(ctx, in, opts...)
}

func (c *Client) BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Client.BatchWriteItem(ctx, in, opts...)
}

func (c *Client) BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.Client.BatchGetItem(ctx, in, opts...)
}

func (c *Client) TransactGetItems(ctx context.Context, in *dynamodb.TransactGetItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactGetItemsOutput, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.Client.TransactGetItems(ctx, in, opts...)
}

func (c *Client) Scan(ctx context.Context, in *dynamodb.ScanInput, opts ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.Client.Scan(ctx, in, opts...)
}

// UpdateTimeToLive accepts the setting and keeps nothing (see Client).
func (c *Client) UpdateTimeToLive(_ context.Context, in *dynamodb.UpdateTimeToLiveInput, _ ...func(*dynamodb.Options)) (*dynamodb.UpdateTimeToLiveOutput, error) {
	return &dynamodb.UpdateTimeToLiveOutput{TimeToLiveSpecification: in.TimeToLiveSpecification}, nil
}

// remove deletes attributes from the item at key and returns what is left.
// The caller holds mu.
func (c *Client) remove(ctx context.Context, table *string, key map[string]types.AttributeValue, names []string) (map[string]types.AttributeValue, error) {
	item, err := c.exactItem(ctx, table, key)
	if err != nil || item == nil {
		return item, err
	}
	for _, name := range names {
		delete(item, name)
	}
	_, err = c.Client.PutItem(ctx, &dynamodb.PutItemInput{TableName: table, Item: item})
	return item, err
}

// exactItem reads the item at key (nil when there is none) so that writing
// it back stores what is stored: minidyn answers empty maps and lists as
// NULL, so each NULL it answers is probed for what it holds. The caller
// holds mu.
func (c *Client) exactItem(ctx context.Context, table *string, key map[string]types.AttributeValue) (map[string]types.AttributeValue, error) {
	got, err := c.Client.GetItem(ctx, &dynamodb.GetItemInput{TableName: table, Key: key, ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, err
	}
	if len(got.Item) == 0 {
		return nil, nil
	}
	item := got.Item
	for name, v := range item {
		if _, null := v.(*types.AttributeValueMemberNULL); null {
			if item[name], err = c.storedNull(ctx, table, key, name); err != nil {
				return nil, err
			}
		}
	}
	return item, nil
}

// storedNull returns what an attribute that minidyn reads back as NULL
// holds. A conditional update that sets the attribute to itself (minidyn
// copies its stored value, type and all) tells which type it is without
// changing it, in one item's time; the caller holds mu.
func (c *Client) storedNull(ctx context.Context, table *string, key map[string]types.AttributeValue, name string) (types.AttributeValue, error) {
	for _, t := range []struct {
		code  string
		empty types.AttributeValue
	}{
		{"M", &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{}}},
		{"L", &types.AttributeValueMemberL{Value: []types.AttributeValue{}}},
	} {
		_, err := c.Client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: table, Key: key,
			UpdateExpression:          aws.String("SET #a = #a"),
			ConditionExpression:       aws.String("attribute_type(#a, :type)"),
			ExpressionAttributeNames:  map[string]string{"#a": name},
			ExpressionAttributeValues: map[string]types.AttributeValue{":type": &types.AttributeValueMemberS{Value: t.code}},
		})
		var ccf *types.ConditionalCheckFailedException
		switch {
		case err == nil:
			return t.empty, nil
		case !errors.As(err, &ccf):
			return nil, err
		}
	}
	return &types.AttributeValueMemberNULL{Value: true}, nil
}

var (
	// An update expression's clauses start with these keywords, which
	// DynamoDB reserves: an attribute of that name must be a #placeholder.
	removeClause = regexp.MustCompile(`(?is)\bREMOVE\b(.*?)(\bSET\b|\bADD\b|\bDELETE\b|$)`)
	// A top-level attribute: a name or a #placeholder, with no path after it.
	topLevelName = regexp.MustCompile(`^#?[A-Za-z0-9_]+$`)
)

// removedAttributes returns the top-level attributes an update expression
// REMOVEs, placeholders resolved. A nested path is refused rather than
// silently left in place.
func removedAttributes(expr string, names map[string]string) ([]string, error) {
	var removed []string
	for _, clause := range removeClause.FindAllStringSubmatch(expr, -1) {
		for _, path := range strings.Split(clause[1], ",") {
			path = strings.TrimSpace(path)
			if !topLevelName.MatchString(path) {
				return nil, fmt.Errorf("memdynamo: REMOVE %q: only top-level attributes are emulated", path)
			}
			if strings.HasPrefix(path, "#") {
				name, ok := names[path]
				if !ok {
					return nil, fmt.Errorf("memdynamo: REMOVE %s: no such expression attribute name", path)
				}
				path = name
			}
			removed = append(removed, path)
		}
	}
	return removed, nil
}
