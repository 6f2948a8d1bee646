package dynamostore

import (
	"errors"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// RetryTransactionConflicts is an option for retry.NewStandard: the
// client's retryer then also retries a transaction DynamoDB cancelled
// because another one was changing one of its items (a TransactionConflict
// reason), and a single write that met a transaction on its item
// (TransactionConflictException). Neither was applied, so trying again is
// safe; it saves the caller a 503 and Stripe a redelivery. A cancellation
// for other reasons only (a condition that failed) is an answer, left to
// the store.
func RetryTransactionConflicts(o *retry.StandardOptions) {
	o.Retryables = append(o.Retryables, retry.IsErrorRetryableFunc(transactionConflict))
}

func transactionConflict(err error) aws.Ternary {
	var tce *types.TransactionCanceledException
	var conflict *types.TransactionConflictException
	switch {
	case errors.As(err, &conflict):
		return aws.TrueTernary
	case errors.As(err, &tce):
		for _, r := range tce.CancellationReasons {
			if aws.ToString(r.Code) == "TransactionConflict" {
				return aws.TrueTernary
			}
		}
	}
	return aws.UnknownTernary
}
