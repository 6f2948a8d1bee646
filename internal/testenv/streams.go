package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/connectexpress/onboarding/shared/dynamostore"
)

// The table's stream and a queue on moto_server, for the status-event
// tests: moto serves DynamoDB Streams and SQS, which the SDK modules in
// go.mod have no client for, so these speak their JSON protocols.

// MotoURL returns the moto_server of `make test` (stops the test unless it
// runs; fails in CI).
func MotoURL(t testing.TB) string { return require(t, "TEST_DYNAMODB_ENDPOINT") }

// NewStreamTable creates a table as dynamostore.CreateTable does (its
// indexes too: the sweep queries one), with the NEW_AND_OLD_IMAGES stream
// of template.yaml, and returns its name and stream ARN.
func NewStreamTable(t testing.TB, db *dynamodb.Client) (string, string) {
	t.Helper()
	table := "stream-" + RandomID(8)
	in := dynamostore.TableInput(table)
	in.StreamSpecification = &types.StreamSpecification{StreamEnabled: aws.Bool(true), StreamViewType: types.StreamViewTypeNewAndOldImages}
	out, err := db.CreateTable(context.Background(), in)
	if err != nil {
		t.Fatalf("create table with stream: %v", err)
	}
	t.Cleanup(func() { _, _ = db.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: &table}) })
	return table, aws.ToString(out.TableDescription.LatestStreamArn)
}

// motoCall posts one AWS JSON protocol request to moto.
func motoCall(t testing.TB, service, target string, in, out any) {
	t.Helper()
	body, _ := json.Marshal(in)
	req, _ := http.NewRequest(http.MethodPost, MotoURL(t)+"/", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	req.Header.Set("X-Amz-Target", target)
	// moto routes by the signature's service and checks nothing else.
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/"+service+"/aws4_request, SignedHeaders=host, Signature=0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", target, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %d %s", target, resp.StatusCode, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s: %v: %s", target, err, raw)
		}
	}
}

// StreamRecords reads every record of a stream from the oldest, as
// Lambda's event source mapping gets them: moto's GetRecords JSON is the
// shape of a DynamoDB event's records.
func StreamRecords(t testing.TB, streamARN string) []events.DynamoDBEventRecord {
	t.Helper()
	var desc struct {
		StreamDescription struct{ Shards []struct{ ShardId string } }
	}
	motoCall(t, "dynamodb", "DynamoDBStreams_20120810.DescribeStream", map[string]string{"StreamArn": streamARN}, &desc)
	var all []events.DynamoDBEventRecord
	for _, shard := range desc.StreamDescription.Shards {
		var it struct{ ShardIterator string }
		motoCall(t, "dynamodb", "DynamoDBStreams_20120810.GetShardIterator",
			map[string]string{"StreamArn": streamARN, "ShardId": shard.ShardId, "ShardIteratorType": "TRIM_HORIZON"}, &it)
		for it.ShardIterator != "" {
			var page struct {
				events.DynamoDBEvent
				NextShardIterator string
			}
			motoCall(t, "dynamodb", "DynamoDBStreams_20120810.GetRecords", map[string]string{"ShardIterator": it.ShardIterator}, &page)
			if len(page.Records) == 0 {
				break
			}
			all = append(all, page.Records...)
			it.ShardIterator = page.NextShardIterator
		}
	}
	return all
}

// NewQueue creates an SQS queue on moto and returns its URL and ARN.
func NewQueue(t testing.TB, name string) (string, string) {
	t.Helper()
	var q struct{ QueueUrl string }
	motoCall(t, "sqs", "AmazonSQS.CreateQueue", map[string]string{"QueueName": name}, &q)
	var attrs struct{ Attributes map[string]string }
	motoCall(t, "sqs", "AmazonSQS.GetQueueAttributes", map[string]any{"QueueUrl": q.QueueUrl, "AttributeNames": []string{"QueueArn"}}, &attrs)
	return q.QueueUrl, attrs.Attributes["QueueArn"]
}

// ReceiveMessages receives n message bodies from a queue, or fails after 10 s.
func ReceiveMessages(t testing.TB, queueURL string, n int) []string {
	t.Helper()
	var bodies []string
	for deadline := time.Now().Add(10 * time.Second); len(bodies) < n && time.Now().Before(deadline); {
		var got struct{ Messages []struct{ Body string } }
		motoCall(t, "sqs", "AmazonSQS.ReceiveMessage", map[string]any{"QueueUrl": queueURL, "MaxNumberOfMessages": 10, "WaitTimeSeconds": 1}, &got)
		for _, m := range got.Messages {
			bodies = append(bodies, m.Body)
		}
	}
	if len(bodies) != n {
		t.Fatalf("%d messages arrived, want %d", len(bodies), n)
	}
	return bodies
}
