// Command adminlistaccounts is the Lambda function for GET /admin/accounts (staff).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/connectexpress/onboarding/shared/httpapi"
	"github.com/connectexpress/onboarding/shared/storeapp"
)

func main() {
	lambda.Start(storeapp.Lambda(httpapi.AdminListAccounts))
}
