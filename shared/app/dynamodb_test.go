package app_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/connectexpress/onboarding/shared/app"
	"github.com/connectexpress/onboarding/shared/config"
)

// DynamoDB's answers, as its JSON protocol sends them.
const (
	answerOK               = `{}`
	answerTxConflict       = `{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException","Message":"Transaction cancelled [None, TransactionConflict]","CancellationReasons":[{"Code":"None"},{"Code":"TransactionConflict","Message":"Transaction is ongoing for the item"}]}`
	answerTxCondition      = `{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException","Message":"Transaction cancelled [ConditionalCheckFailed, None]","CancellationReasons":[{"Code":"ConditionalCheckFailed","Message":"The conditional request failed"},{"Code":"None"}]}`
	answerTxBoth           = `{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException","Message":"Transaction cancelled [ConditionalCheckFailed, TransactionConflict]","CancellationReasons":[{"Code":"ConditionalCheckFailed"},{"Code":"TransactionConflict"}]}`
	answerWriteConflict    = `{"__type":"com.amazonaws.dynamodb.v20120810#TransactionConflictException","message":"Transaction is ongoing for the item"}`
	answerConditionFailure = `{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException","message":"The conditional request failed"}`
	answerInternalError    = `{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"Internal server error"}`
)

// TestTheDynamoDBClientRetriesTransactionConflicts: DynamoDB cancels both
// of two transactions that race on one item, and rejects a write that meets
// a transaction on its item; neither was applied, so the client the App
// builds tries again, up to DynamoDB's 4 attempts. Any other cancellation
// is an answer and is not retried.
func TestTheDynamoDBClientRetriesTransactionConflicts(t *testing.T) {
	for _, tc := range []struct {
		name      string
		write     func(context.Context, *dynamodb.Client) error
		answers   []string
		wantCalls int32
		wantErr   bool
	}{
		{"a transaction cancelled by a conflict, then applied", transaction, []string{answerTxConflict, answerOK}, 2, false},
		{"a transaction that conflicts every time", transaction, []string{answerTxConflict, answerTxConflict, answerTxConflict, answerTxConflict}, 4, true},
		{"a conflict beside a failed condition", transaction, []string{answerTxBoth, answerTxCondition}, 2, true},
		{"a transaction whose condition failed", transaction, []string{answerTxCondition}, 1, true},
		{"a write that met a transaction, then applied", update, []string{answerWriteConflict, answerOK}, 2, false},
		{"a write whose condition failed", update, []string{answerConditionFailure}, 1, true},
		{"an internal error, as before", update, []string{answerInternalError, answerInternalError, answerInternalError, answerInternalError}, 4, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			dynamo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n := int(calls.Add(1)) - 1
				w.Header().Set("Content-Type", "application/x-amz-json-1.0")
				if n >= len(tc.answers) {
					t.Errorf("attempt %d, after the last answer", n+1)
					w.WriteHeader(http.StatusInternalServerError)
					return
				}
				switch tc.answers[n] {
				case answerOK:
				case answerInternalError:
					w.WriteHeader(http.StatusInternalServerError)
				default:
					w.WriteHeader(http.StatusBadRequest)
				}
				_, _ = w.Write([]byte(tc.answers[n]))
			}))
			defer dynamo.Close()
			env := map[string]string{
				"STRIPE_SECRET_KEY": "sk_test_x", "STRIPE_WEBHOOK_SECRET": "whsec_x0123456789abcdefghijklmnopqrstuv", "DYNAMODB_ENDPOINT": dynamo.URL, "TABLE_NAME": "t",
			}
			a, err := app.New(context.Background(), app.Options{
				LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
				Needs:     config.Needs{StripeKey: true, WebhookSecrets: true},
			})
			if err != nil {
				t.Fatal(err)
			}
			err = tc.write(context.Background(), a.StoreClient().(*dynamodb.Client))
			if (err != nil) != tc.wantErr {
				t.Errorf("write = %v, want an error: %v", err, tc.wantErr)
			}
			if got := calls.Load(); got != tc.wantCalls {
				t.Errorf("%d attempts, want %d", got, tc.wantCalls)
			}
		})
	}
}

func transaction(ctx context.Context, db *dynamodb.Client) error {
	_, err := db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Put: &types.Put{TableName: aws.String("t"), Item: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "a"}}}},
	}})
	return err
}

func update(ctx context.Context, db *dynamodb.Client) error {
	_, err := db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String("t"), Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "a"}},
		UpdateExpression: aws.String("SET x = :x"), ConditionExpression: aws.String("attribute_exists(pk)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":x": &types.AttributeValueMemberS{Value: "1"}},
	})
	return err
}
