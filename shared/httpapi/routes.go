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
	build func(*onboarding.Service, EventVerifier) Handler
}

// The routes, one value each, so that a Lambda main names its route in Go
// (app.Lambda(httpapi.CreateAccount)) and a typo does not compile.
var (
	CreateAccount           = Route{Method: "POST", Path: "/accounts", Function: "createaccount", build: noVerifier(createAccount)}
	GetAccount              = Route{Method: "GET", Path: "/accounts/me", Function: "accountstatus", build: noVerifier(getAccount)}
	UpdateAccount           = Route{Method: "PATCH", Path: "/accounts/me", Function: "updateaccount", build: noVerifier(updateAccount)}
	CreateOnboardingLink    = Route{Method: "POST", Path: "/accounts/me/onboarding-link", Function: "accountlink", build: noVerifier(createOnboardingLink)}
	CreateOnboardingSession = Route{Method: "POST", Path: "/accounts/me/onboarding-session", Function: "onboardingsession", build: noVerifier(createOnboardingSession)}
	CreateDashboardLink     = Route{Method: "POST", Path: "/accounts/me/dashboard-link", Function: "dashboardlink", build: noVerifier(createDashboardLink)}
	RefreshLink             = Route{Method: "GET", Path: "/onboarding/refresh", Function: "refresh", Public: true, build: noVerifier(refreshLink)}
	Webhook                 = Route{Method: "POST", Path: "/webhooks/stripe", Function: "webhook", Public: true, build: webhook}

	AdminListAccounts  = Route{Method: "GET", Path: "/admin/accounts", Function: "adminlistaccounts", Staff: true, build: noVerifier(adminListAccounts)}
	AdminGetAccount    = Route{Method: "GET", Path: "/admin/accounts/{user_id}", Function: "admingetaccount", Staff: true, build: noVerifier(adminGetAccount)}
	AdminReviewAccount = Route{Method: "POST", Path: "/admin/accounts/{user_id}/review", Function: "adminreviewaccount", Staff: true, build: noVerifier(adminReviewAccount)}
)

// Routes is the whole HTTP contract (README.md and docs/api.md, "HTTP contract"; openapi.yaml):
// the dev server, the template tests and the OpenAPI tests all read it.
var Routes = []Route{CreateAccount, GetAccount, UpdateAccount, CreateOnboardingLink, CreateOnboardingSession, CreateDashboardLink, RefreshLink, Webhook,
	AdminListAccounts, AdminGetAccount, AdminReviewAccount}

func noVerifier(f func(*onboarding.Service) Handler) func(*onboarding.Service, EventVerifier) Handler {
	return func(s *onboarding.Service, _ EventVerifier) Handler { return f(s) }
}

// Key names the route as API Gateway does: "POST /accounts".
func (r Route) Key() string { return r.Method + " " + r.Path }

// Handler builds the route's handler, wrapped with the request log line.
func (r Route) Handler(svc *onboarding.Service, verifier EventVerifier, logger *slog.Logger) Handler {
	return WithLogging(logger, r.Key(), r.build(svc, verifier))
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
