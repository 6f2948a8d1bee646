// Package bench measures the service for `make bench`: per-route DynamoDB
// and Stripe requests (counted by instrumented clients), warm handler
// latency in process, and cold starts of the built functions under the
// Lambda Runtime Interface Emulator beside a hello-world baseline.
package bench

import (
	"context"
	"math"
	"net/http"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/connectexpress/onboarding/shared/dynamostore"
)

// Usage is what one or more route calls cost in requests and capacity.
type Usage struct {
	DynamoRequests int
	ReadUnits      float64
	WriteUnits     float64
	StripeRequests int
}

// CountingDB counts DynamoDB requests and the on-demand request units they
// consume, from the sizes of the items they read and write (DynamoDB's
// rules: strongly consistent reads 1 unit per 4 KB, writes 1 unit per 1 KB
// of the larger of the old and new item, doubled in transactions; a write
// that fails its condition still consumes its write units).
type CountingDB struct {
	dynamostore.Client
	table string
	mu    sync.Mutex
	usage Usage
}

// NewCountingDB wraps db, which holds table.
func NewCountingDB(db dynamostore.Client, table string) *CountingDB {
	return &CountingDB{Client: db, table: table}
}

// Take returns the usage since the last Take and resets it.
func (c *CountingDB) Take() Usage {
	c.mu.Lock()
	defer c.mu.Unlock()
	u := c.usage
	c.usage = Usage{}
	return u
}

func (c *CountingDB) add(requests int, read, write float64) {
	c.mu.Lock()
	c.usage.DynamoRequests += requests
	c.usage.ReadUnits += read
	c.usage.WriteUnits += write
	c.mu.Unlock()
}

// sizeOf reads an item's size without counting it.
func (c *CountingDB) sizeOf(ctx context.Context, key map[string]types.AttributeValue) int {
	out, err := c.Client.GetItem(ctx, &dynamodb.GetItemInput{TableName: &c.table, Key: key, ConsistentRead: aws.Bool(true)})
	if err != nil {
		return 0
	}
	return itemSize(out.Item)
}

func (c *CountingDB) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	out, err := c.Client.GetItem(ctx, in, o...)
	size := 0
	if out != nil {
		size = itemSize(out.Item)
	}
	units := readUnits(size)
	if !aws.ToBool(in.ConsistentRead) {
		units /= 2
	}
	c.add(1, units, 0)
	return out, err
}

func (c *CountingDB) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	old := c.sizeOf(ctx, keyOf(in.Item))
	out, err := c.Client.PutItem(ctx, in, o...)
	c.add(1, 0, writeUnits(max(old, itemSize(in.Item))))
	return out, err
}

func (c *CountingDB) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	old := c.sizeOf(ctx, in.Key)
	out, err := c.Client.UpdateItem(ctx, in, o...)
	c.add(1, 0, writeUnits(max(old, c.sizeOf(ctx, in.Key))))
	return out, err
}

func (c *CountingDB) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, o ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	keys := make([]map[string]types.AttributeValue, len(in.TransactItems))
	olds := make([]int, len(in.TransactItems))
	for i, it := range in.TransactItems {
		switch {
		case it.Put != nil:
			keys[i] = keyOf(it.Put.Item)
		case it.Update != nil:
			keys[i] = it.Update.Key
		case it.Delete != nil:
			keys[i] = it.Delete.Key
		case it.ConditionCheck != nil:
			keys[i] = it.ConditionCheck.Key
		}
		olds[i] = c.sizeOf(ctx, keys[i])
	}
	out, err := c.Client.TransactWriteItems(ctx, in, o...)
	var units float64
	for i, it := range in.TransactItems {
		size := max(olds[i], c.sizeOf(ctx, keys[i]))
		if it.Put != nil {
			size = max(size, itemSize(it.Put.Item))
		}
		units += 2 * writeUnits(size)
	}
	c.add(1, 0, units)
	return out, err
}

func (c *CountingDB) CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, o ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error) {
	return c.Client.(dynamostore.TableAdmin).CreateTable(ctx, in, o...)
}

func (c *CountingDB) UpdateTimeToLive(ctx context.Context, in *dynamodb.UpdateTimeToLiveInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateTimeToLiveOutput, error) {
	return c.Client.(dynamostore.TableAdmin).UpdateTimeToLive(ctx, in, o...)
}

func keyOf(item map[string]types.AttributeValue) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"pk": item["pk"]}
}

func readUnits(size int) float64  { return math.Max(1, math.Ceil(float64(size)/4096)) }
func writeUnits(size int) float64 { return math.Max(1, math.Ceil(float64(size)/1024)) }

// itemSize follows DynamoDB's item size rules closely enough for units:
// attribute names plus values (strings and numbers by length, maps and lists
// with 3 bytes of overhead plus 1 per element).
func itemSize(item map[string]types.AttributeValue) int {
	n := 0
	for name, v := range item {
		n += len(name) + valueSize(v)
	}
	return n
}

func valueSize(v types.AttributeValue) int {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return len(v.Value)
	case *types.AttributeValueMemberN:
		return (len(v.Value)+1)/2 + 1
	case *types.AttributeValueMemberBOOL, *types.AttributeValueMemberNULL:
		return 1
	case *types.AttributeValueMemberM:
		n := 3
		for k, e := range v.Value {
			n += len(k) + valueSize(e) + 1
		}
		return n
	case *types.AttributeValueMemberL:
		n := 3
		for _, e := range v.Value {
			n += valueSize(e) + 1
		}
		return n
	default:
		return 0
	}
}

// CountingTransport counts HTTP requests to Stripe.
type CountingTransport struct {
	Next  http.RoundTripper
	mu    sync.Mutex
	count int
}

func (t *CountingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.mu.Lock()
	t.count++
	t.mu.Unlock()
	next := t.Next
	if next == nil {
		next = http.DefaultTransport
	}
	return next.RoundTrip(r)
}

// Take returns the count since the last Take and resets it.
func (t *CountingTransport) Take() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := t.count
	t.count = 0
	return n
}
