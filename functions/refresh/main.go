// Command refresh is the Lambda function for GET /onboarding/refresh.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/connectexpress/onboarding/shared/app"
)

func main() {
	lambda.Start(app.Lambda("refresh"))
}
