// Package statusevents tells the platform's other services that an
// account's status changed: it reads the table's DynamoDB stream (new and
// old images of each write), judges each write with the store's own
// decoding and the core's status rule, and publishes one EventBridge event
// per change. Publishing from the stream, not beside the write, means a
// crash between the write and the publish loses nothing: the stream keeps
// the record until it is handled (24 hours).
//
// Events are delivered at least once, in each account's order as far as
// this package goes: a consumer deduplicates by (account_id, occurred_at,
// status).
package statusevents

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/connectexpress/onboarding/shared/dynamostore"
	"github.com/connectexpress/onboarding/shared/onboarding"
)

// The event's envelope, as EventBridge rules match it.
const (
	Source     = "connect-onboarding"
	DetailType = "Connect account status changed"
)

// Publisher sends status changes in the order given. It returns how many,
// from the first, are published; with an error, the rest are not (or not
// surely).
type Publisher interface {
	Publish(ctx context.Context, changes []onboarding.StatusChange) (int, error)
}

// Record is one write to the table, as a stream shows it: the item before
// and after (nil where there was none) and when the stream saw it.
type Record struct {
	Seq      string
	Old, New map[string]types.AttributeValue
	At       time.Time
	// Err says the record could not be read (an image of unknown shape).
	Err error
}

// Change returns the status change one write made, if any. It judges both
// images at the write's time: the record's updated_at, which every write
// that changes state sets, else the stream's time.
func Change(r Record) (onboarding.StatusChange, bool, error) {
	if r.Err != nil {
		return onboarding.StatusChange{}, false, r.Err
	}
	before, err := account(r.Old)
	if err != nil {
		return onboarding.StatusChange{}, false, err
	}
	after, err := account(r.New)
	if err != nil || after == nil {
		return onboarding.StatusChange{}, false, err
	}
	at := after.UpdatedAt
	if at.IsZero() {
		at = r.At
	}
	change, ok := onboarding.StatusChangeBetween(before, after, at)
	return change, ok, nil
}

// account decodes an image's account; nil when it holds none (a claim, or
// no item).
func account(image map[string]types.AttributeValue) (*onboarding.AccountRecord, error) {
	if len(image) == 0 {
		return nil, nil
	}
	u, err := dynamostore.DecodeUserItem(image)
	if errors.Is(err, onboarding.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return u.Account, nil
}

// Consumer hands status changes from stream records to a Publisher.
type Consumer struct {
	pub Publisher
	log *slog.Logger
}

// NewConsumer builds the stream consumer.
func NewConsumer(pub Publisher, log *slog.Logger) *Consumer {
	return &Consumer{pub: pub, log: log}
}

// Forward publishes the changes of records, in order. It returns the Seq
// of the first record not done ("" when all are): nothing after it was
// published for sure, so a retry from there keeps each account's order.
func (c *Consumer) Forward(ctx context.Context, records []Record) string {
	var changes []onboarding.StatusChange
	var seqs []string
	publish := func() (string, bool) {
		if len(changes) == 0 {
			return "", true
		}
		n, err := c.pub.Publish(ctx, changes)
		if err == nil {
			c.log.DebugContext(ctx, "status events published", "count", n)
			changes, seqs = changes[:0], seqs[:0]
			return "", true
		}
		c.log.ErrorContext(ctx, "status events not published; the stream hands them back", "published", n, "failed", len(changes)-n,
			"account_id", changes[n].AccountID, "error", err)
		return seqs[n], false
	}
	for _, r := range records {
		change, ok, err := Change(r)
		if err != nil {
			// Unreadable: published before it, it is handed back alone;
			// after its retries the stream's on-failure destination keeps
			// where it was.
			if failed, done := publish(); !done {
				return failed
			}
			c.log.ErrorContext(ctx, "stream record could not be decoded", "sequence_number", r.Seq, "error", err)
			return r.Seq
		}
		if ok {
			changes, seqs = append(changes, change), append(seqs, r.Seq)
		}
	}
	failed, _ := publish()
	return failed
}

// Handle is the Lambda handler of the table's stream: a partial batch
// response names the first record not done, and Lambda retries the batch
// from there (FunctionResponseTypes ReportBatchItemFailures).
func (c *Consumer) Handle(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
	records := make([]Record, 0, len(ev.Records))
	for _, r := range ev.Records {
		rec := Record{Seq: r.Change.SequenceNumber, At: r.Change.ApproximateCreationDateTime.Time}
		if rec.Old, rec.Err = Image(r.Change.OldImage); rec.Err == nil {
			rec.New, rec.Err = Image(r.Change.NewImage)
		}
		records = append(records, rec)
	}
	resp := events.DynamoDBEventResponse{BatchItemFailures: []events.DynamoDBBatchItemFailure{}}
	if failed := c.Forward(ctx, records); failed != "" {
		resp.BatchItemFailures = append(resp.BatchItemFailures, events.DynamoDBBatchItemFailure{ItemIdentifier: failed})
	}
	return resp, nil
}

// Image converts a stream image, as Lambda delivers it, to the SDK's
// attribute values the store decodes.
func Image(image map[string]events.DynamoDBAttributeValue) (map[string]types.AttributeValue, error) {
	if image == nil {
		return nil, nil
	}
	out := make(map[string]types.AttributeValue, len(image))
	for name, v := range image {
		av, err := attribute(v)
		if err != nil {
			return nil, fmt.Errorf("attribute %s: %w", name, err)
		}
		out[name] = av
	}
	return out, nil
}

func attribute(v events.DynamoDBAttributeValue) (types.AttributeValue, error) {
	switch v.DataType() {
	case events.DataTypeString:
		return &types.AttributeValueMemberS{Value: v.String()}, nil
	case events.DataTypeNumber:
		return &types.AttributeValueMemberN{Value: v.Number()}, nil
	case events.DataTypeBoolean:
		return &types.AttributeValueMemberBOOL{Value: v.Boolean()}, nil
	case events.DataTypeNull:
		return &types.AttributeValueMemberNULL{Value: true}, nil
	case events.DataTypeBinary:
		return &types.AttributeValueMemberB{Value: v.Binary()}, nil
	case events.DataTypeStringSet:
		return &types.AttributeValueMemberSS{Value: v.StringSet()}, nil
	case events.DataTypeNumberSet:
		return &types.AttributeValueMemberNS{Value: v.NumberSet()}, nil
	case events.DataTypeBinarySet:
		return &types.AttributeValueMemberBS{Value: v.BinarySet()}, nil
	case events.DataTypeMap:
		m, err := Image(v.Map())
		return &types.AttributeValueMemberM{Value: m}, err
	case events.DataTypeList:
		list := make([]types.AttributeValue, 0, len(v.List()))
		for _, item := range v.List() {
			av, err := attribute(item)
			if err != nil {
				return nil, err
			}
			list = append(list, av)
		}
		return &types.AttributeValueMemberL{Value: list}, nil
	}
	return nil, fmt.Errorf("unknown DynamoDB type %d", v.DataType())
}
