package dynamostore

import (
	"context"
	"errors"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// TableInput is the CreateTable request of the table: its key schema and
// indexes, without TTL (a separate call) or stream (tests of the stream
// add it).
func TableInput(table string) *dynamodb.CreateTableInput {
	return &dynamodb.CreateTableInput{
		TableName:              &table,
		AttributeDefinitions:   append([]types.AttributeDefinition{{AttributeName: aws.String(attrPK), AttributeType: types.ScalarAttributeTypeS}}, indexAttributes()...),
		KeySchema:              []types.KeySchemaElement{{AttributeName: aws.String(attrPK), KeyType: types.KeyTypeHash}},
		GlobalSecondaryIndexes: indexes(), // admin.go
		BillingMode:            types.BillingModePayPerRequest,
	}
}

// TableAdmin is what CreateTable needs; template.yaml creates the table in
// AWS, this is for local engines and tests.
type TableAdmin interface {
	CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, opts ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	UpdateTimeToLive(ctx context.Context, in *dynamodb.UpdateTimeToLiveInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateTimeToLiveOutput, error)
}

// CreateTable creates the table with the same key schema, indexes and TTL
// attribute as template.yaml. An existing table is left as it is.
func CreateTable(ctx context.Context, db TableAdmin, table string) error {
	_, err := db.CreateTable(ctx, TableInput(table))
	var inUse *types.ResourceInUseException
	switch {
	case errors.As(err, &inUse):
		return nil // it exists already
	case err != nil:
		return err
	}
	_, err = db.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName: &table,
		TimeToLiveSpecification: &types.TimeToLiveSpecification{
			AttributeName: aws.String(attrExpiresAt), Enabled: aws.Bool(true),
		},
	})
	return err
}
