package httpapi

import (
	"context"
	"log/slog"

	"github.com/connectexpress/onboarding/shared/onboarding"
)

// Route is one entry of the HTTP contract: the dev server serves it, a
// Lambda function (functions/<Function>) runs it in AWS, and template.yaml
// must declare it the same way (a test holds them together).
type Route struct {
	Method   string
	Path     string
	Function string
	Public   bool // no JWT: the browser (refresh) or Stripe (webhook) calls it
	// Staff routes (under /admin/) need the JWT and the staff group; any
	// other caller gets 403 forbidden.
	Staff bool
	// StoreOnly routes read storage and never call Stripe: their function
	// holds no secret and links no Stripe client (storeapp.Lambda).
	StoreOnly bool
	// serve builds the handler; verified, the webhook's, which checks
	// signatures. Both hold a top-level function, never a call's result,
	// so the compiler lays the route values out as static data and a
	// function's binary links only the handler its main names: a call here
	// would run in this package's init and link every handler everywhere.
	serve    func(*onboarding.Service) Handler
	verified func(*onboarding.Service, EventVerifier) Handler
}

// The routes, one value each, so that a Lambda main names its route in Go
// (app.Lambda(httpapi.CreateAccount)) and a typo does not compile.
var (
	CreateAccount           = Route{Method: "POST", Path: "/accounts", Function: "createaccount", serve: createAccount}
	GetAccount              = Route{Method: "GET", Path: "/accounts/me", Function: "accountstatus", serve: getAccount}
	UpdateAccount           = Route{Method: "PATCH", Path: "/accounts/me", Function: "updateaccount", serve: updateAccount}
	CreateOnboardingLink    = Route{Method: "POST", Path: "/accounts/me/onboarding-link", Function: "accountlink", serve: createOnboardingLink}
	CreateOnboardingSession = Route{Method: "POST", Path: "/accounts/me/onboarding-session", Function: "onboardingsession", serve: createOnboardingSession}
	CreateDashboardLink     = Route{Method: "POST", Path: "/accounts/me/dashboard-link", Function: "dashboardlink", serve: createDashboardLink}
	RefreshLink             = Route{Method: "GET", Path: "/onboarding/refresh", Function: "refresh", Public: true, serve: refreshLink}
	Webhook                 = Route{Method: "POST", Path: "/webhooks/stripe", Function: "webhook", Public: true, verified: webhook}

	AdminListAccounts  = Route{Method: "GET", Path: "/admin/accounts", Function: "adminlistaccounts", Staff: true, StoreOnly: true, serve: adminListAccounts}
	AdminGetAccount    = Route{Method: "GET", Path: "/admin/accounts/{user_id}", Function: "admingetaccount", Staff: true, StoreOnly: true, serve: adminGetAccount}
	AdminReviewAccount = Route{Method: "POST", Path: "/admin/accounts/{user_id}/review", Function: "adminreviewaccount", Staff: true, serve: adminReviewAccount}
)

// Routes is the whole HTTP contract (README.md and docs/api.md, "HTTP contract"; openapi.yaml):
// the dev server, the template tests and the OpenAPI tests all read it.
var Routes = []Route{CreateAccount, GetAccount, UpdateAccount, CreateOnboardingLink, CreateOnboardingSession, CreateDashboardLink, RefreshLink, Webhook,
	AdminListAccounts, AdminGetAccount, AdminReviewAccount}

// VerifiesSignatures says whether the route checks Stripe's webhook
// signatures: its function needs the signing secrets.
func (r Route) VerifiesSignatures() bool { return r.verified != nil }

// Key names the route as API Gateway does: "POST /accounts".
func (r Route) Key() string { return r.Method + " " + r.Path }

// Handler builds the route's handler, wrapped with the request log line.
func (r Route) Handler(svc *onboarding.Service, verifier EventVerifier, logger *slog.Logger) Handler {
	if r.verified != nil {
		return WithLogging(logger, r.Key(), r.verified(svc, verifier))
	}
	return WithLogging(logger, r.Key(), r.serve(svc))
}

// FunctionRoute returns the route functions/<function> serves, for code
// that starts from a directory name (the template and RIE tests).
func FunctionRoute(function string) (Route, bool) {
	for _, r := range Routes {
		if r.Function == function {
			return r, true
		}
	}
	return Route{}, false
}

// LambdaHandler adapts h to lambda.Start's signature. The error is always
// nil: failures are answered with the envelope.
func LambdaHandler(h Handler) func(context.Context, Request) (Response, error) {
	return func(ctx context.Context, req Request) (Response, error) { return h(ctx, req), nil }
}
