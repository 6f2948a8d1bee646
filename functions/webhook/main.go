// Command webhook is the Lambda function for POST /webhooks/stripe.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/connectexpress/onboarding/shared/app"
	"github.com/connectexpress/onboarding/shared/httpapi"
)

func main() {
	lambda.Start(app.Lambda(httpapi.Webhook))
}
