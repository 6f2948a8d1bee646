// Command dynamodbfloor is `make bench`'s second baseline: hello-world plus
// what every function of the design must have, a DynamoDB client of
// aws-sdk-go-v2 made at init as shared/storeapp makes it, and nothing of
// ours. Its size and cold start are the floor the SDK sets: the share of a
// function's figures that no change to this project's code can remove.
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

func main() {
	db := dynamodb.NewFromConfig(aws.Config{
		Region:      os.Getenv("AWS_REGION"),
		Credentials: credentials.NewStaticCredentialsProvider(os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY"), os.Getenv("AWS_SESSION_TOKEN")),
	})
	lambda.Start(func(ctx context.Context, _ events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		// Linked, not called on the bench's request: a real GetItem's code
		// is in the binary, as it is in every function's.
		if os.Getenv("DYNAMODB_FLOOR_CALL") != "" {
			_, _ = db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("floor")})
		}
		return events.APIGatewayV2HTTPResponse{StatusCode: 200, Body: "floor"}, nil
	})
}
