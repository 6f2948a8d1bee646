package dynamostore_test

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/connectexpress/onboarding/internal/testenv"
	"github.com/connectexpress/onboarding/shared/dynamostore"
	"github.com/connectexpress/onboarding/shared/onboarding"
)

// A table the store creates (the dev server's, the tests') lets DynamoDB delete tokens, event
// markers and limit windows once their expires_at passes, as template.yaml's table does.
func TestACreatedTableExpiresItemsByExpiresAt(t *testing.T) {
	db := testenv.MotoClient(t)
	table := testenv.NewTable(t, db)
	out, err := db.DescribeTimeToLive(context.Background(), &dynamodb.DescribeTimeToLiveInput{TableName: &table})
	if err != nil {
		t.Fatal(err)
	}
	ttl := out.TimeToLiveDescription
	if ttl == nil || ttl.TimeToLiveStatus != types.TimeToLiveStatusEnabled || aws.ToString(ttl.AttributeName) != "expires_at" {
		t.Fatalf("time to live %+v, want enabled on expires_at", ttl)
	}
	// Creating it again leaves it as it is.
	if err := dynamostore.CreateTable(context.Background(), db, table); err != nil {
		t.Fatalf("CreateTable on an existing table: %v", err)
	}
}

// The client's retryer (shared/app builds it with RetryTransactionConflicts) tries again a
// transaction that lost a race, which was not applied, and never one whose condition failed,
// which is an answer.
func TestOnlyATransactionThatMetAConflictIsRetried(t *testing.T) {
	retryer := retry.NewStandard(dynamostore.RetryTransactionConflicts)
	cancelled := func(codes ...string) error {
		tce := &types.TransactionCanceledException{}
		for _, c := range codes {
			tce.CancellationReasons = append(tce.CancellationReasons, types.CancellationReason{Code: aws.String(c)})
		}
		return tce
	}
	for _, tt := range []struct {
		name  string
		err   error
		retry bool
	}{
		{"cancelled for a conflict", cancelled("None", "TransactionConflict"), true},
		{"cancelled for a conflict and a failed condition", cancelled("ConditionalCheckFailed", "TransactionConflict"), true},
		{"a single write that met a transaction", &types.TransactionConflictException{}, true},
		{"cancelled by a failed condition", cancelled("ConditionalCheckFailed", "None"), false},
		{"a failed condition of a single write", &types.ConditionalCheckFailedException{}, false},
	} {
		if got := retryer.IsErrorRetryable(tt.err); got != tt.retry {
			t.Errorf("%s: retried %v, want %v", tt.name, got, tt.retry)
		}
	}
}

// An engine or proxy that cancels a transaction without saying why must not crash the request:
// the creation answers a storage failure, which the caller may retry.
func TestACancelledTransactionWithoutReasonsIsAStorageFailure(t *testing.T) {
	eachEngine(t, func(t *testing.T, e testenv.Engine) {
		h := newHarness(t, e)
		h.claim(t, alice, newClaim(claim1, t0.Add(lease), 0), t0)
		bare := passthrough(h.db)
		bare.transactWriteItems = func(context.Context, *dynamodb.TransactWriteItemsInput, ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
			return nil, &types.TransactionCanceledException{Message: aws.String("Transaction cancelled")}
		}
		err := dynamostore.New(bare, h.table).CompleteCreation(context.Background(), baseRecord(), claim1)
		if !errors.Is(err, onboarding.ErrStorageUnavailable) {
			t.Fatalf("CompleteCreation = %v, want a storage failure", err)
		}
	})
}
