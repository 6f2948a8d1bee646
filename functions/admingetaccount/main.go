// Command admingetaccount is the Lambda function for GET /admin/accounts/{user_id} (staff).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/connectexpress/onboarding/shared/app"
	"github.com/connectexpress/onboarding/shared/httpapi"
)

func main() {
	lambda.Start(app.Lambda(httpapi.AdminGetAccount))
}
