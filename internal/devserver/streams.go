package devserver

import (
	"context"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/connectexpress/onboarding/shared/dynamostore"
	"github.com/connectexpress/onboarding/shared/statusevents"
)

// streamClient gives the dev server's DynamoDB what its engines lack here:
// a stream. Around each write that touches a user's record it reads the
// record before and after, and hands both images to the same consumer the
// stream's Lambda runs (statusevents), as a stream with NEW_AND_OLD_IMAGES
// would, only at once and in-process. Writes to users' records take turns,
// so the images of one write are never another's.
type streamClient struct {
	dynamostore.SweepClient
	table string

	mu       sync.Mutex
	seq      int
	consumer *statusevents.Consumer // set once the App is wired; nil: no stream
}

func newStreamClient(db dynamostore.Client, table string) dynamostore.Client {
	full, ok := db.(dynamostore.SweepClient)
	if !ok {
		return db // a test's wrapper: no stream emulation
	}
	return &streamClient{SweepClient: full, table: table}
}

func (c *streamClient) PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	var out *dynamodb.PutItemOutput
	err := c.around(ctx, []map[string]types.AttributeValue{in.Item}, func() (err error) {
		out, err = c.SweepClient.PutItem(ctx, in, opts...)
		return err
	})
	return out, err
}

func (c *streamClient) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	var out *dynamodb.UpdateItemOutput
	err := c.around(ctx, []map[string]types.AttributeValue{in.Key}, func() (err error) {
		out, err = c.SweepClient.UpdateItem(ctx, in, opts...)
		return err
	})
	return out, err
}

func (c *streamClient) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	var keys []map[string]types.AttributeValue
	for _, it := range in.TransactItems {
		switch {
		case it.Put != nil:
			keys = append(keys, it.Put.Item)
		case it.Update != nil:
			keys = append(keys, it.Update.Key)
		case it.Delete != nil:
			keys = append(keys, it.Delete.Key)
		}
	}
	var out *dynamodb.TransactWriteItemsOutput
	err := c.around(ctx, keys, func() (err error) {
		out, err = c.SweepClient.TransactWriteItems(ctx, in, opts...)
		return err
	})
	return out, err
}

// around runs write and, when it succeeded, hands the changed users'
// records to the consumer.
func (c *streamClient) around(ctx context.Context, items []map[string]types.AttributeValue, write func() error) error {
	var pks []string
	for _, item := range items {
		if pk, ok := item["pk"].(*types.AttributeValueMemberS); ok && strings.HasPrefix(pk.Value, dynamostore.UserKeyPrefix) {
			pks = append(pks, pk.Value)
		}
	}
	if len(pks) == 0 || c.consumer == nil {
		return write()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	before := make([]map[string]types.AttributeValue, len(pks))
	for i, pk := range pks {
		before[i] = c.get(ctx, pk)
	}
	if err := write(); err != nil {
		return err
	}
	var records []statusevents.Record
	for i, pk := range pks {
		after := c.get(ctx, pk)
		if reflect.DeepEqual(before[i], after) {
			continue // a stream has no record of a write that changed nothing
		}
		c.seq++
		records = append(records, statusevents.Record{Seq: strconv.Itoa(c.seq), Old: before[i], New: after, At: time.Now()})
	}
	// The write is done whatever the consumer says: like the stream's
	// Lambda, it logs a failure, and the dev server has no retry to offer.
	c.consumer.Forward(context.WithoutCancel(ctx), records)
	return nil
}

func (c *streamClient) get(ctx context.Context, pk string) map[string]types.AttributeValue {
	out, err := c.SweepClient.GetItem(ctx, &dynamodb.GetItemInput{TableName: &c.table, ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}}})
	if err != nil || len(out.Item) == 0 {
		return nil
	}
	return out.Item
}

// CreateTable and UpdateTimeToLive reach the engine: the dev server creates
// its table through the store's client.
func (c *streamClient) CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, opts ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error) {
	admin, ok := c.SweepClient.(dynamostore.TableAdmin)
	if !ok {
		return nil, errors.New("devserver: the DynamoDB client cannot create tables")
	}
	return admin.CreateTable(ctx, in, opts...)
}

func (c *streamClient) UpdateTimeToLive(ctx context.Context, in *dynamodb.UpdateTimeToLiveInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateTimeToLiveOutput, error) {
	admin, ok := c.SweepClient.(dynamostore.TableAdmin)
	if !ok {
		return nil, errors.New("devserver: the DynamoDB client cannot set a table's TTL")
	}
	return admin.UpdateTimeToLive(ctx, in, opts...)
}
