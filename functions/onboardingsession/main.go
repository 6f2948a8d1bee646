// Command onboardingsession is the Lambda function for POST /accounts/me/onboarding-session.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/connectexpress/onboarding/shared/app"
	"github.com/connectexpress/onboarding/shared/httpapi"
)

func main() {
	lambda.Start(app.Lambda(httpapi.CreateOnboardingSession))
}
