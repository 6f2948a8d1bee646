// Command createaccount is the Lambda function for POST /accounts.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/connectexpress/onboarding/shared/app"
	"github.com/connectexpress/onboarding/shared/httpapi"
)

func main() {
	lambda.Start(app.Lambda(httpapi.CreateAccount))
}
