// Command reconcile is the Lambda function of the reconciliation sweep, run
// on an EventBridge schedule: it pages Stripe's account list and heals what
// webhooks missed.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/connectexpress/onboarding/shared/app"
)

func main() {
	lambda.Start(app.ReconcileLambda())
}
