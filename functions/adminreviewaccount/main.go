// Command adminreviewaccount is the Lambda function for POST /admin/accounts/{user_id}/review (staff).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/connectexpress/onboarding/shared/app"
	"github.com/connectexpress/onboarding/shared/httpapi"
)

func main() {
	lambda.Start(app.Lambda(httpapi.AdminReviewAccount))
}
