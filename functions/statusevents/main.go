// Command statusevents is the Lambda function on the table's DynamoDB
// stream: it publishes each account status change to EventBridge.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/connectexpress/onboarding/shared/eventsapp"
)

func main() {
	lambda.Start(eventsapp.Lambda())
}
