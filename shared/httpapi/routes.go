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
	build    func(*onboarding.Service, EventVerifier) Handler
}

// Routes is the whole HTTP contract of ../shared/DESIGN.md.
var Routes = []Route{
	{Method: "POST", Path: "/accounts", Function: "createaccount", build: noVerifier(CreateAccount)},
	{Method: "GET", Path: "/accounts/me", Function: "accountstatus", build: noVerifier(GetAccount)},
	{Method: "PATCH", Path: "/accounts/me", Function: "updateaccount", build: noVerifier(UpdateAccount)},
	{Method: "POST", Path: "/accounts/me/onboarding-link", Function: "accountlink", build: noVerifier(CreateOnboardingLink)},
	{Method: "POST", Path: "/accounts/me/dashboard-link", Function: "dashboardlink", build: noVerifier(CreateDashboardLink)},
	{Method: "GET", Path: "/onboarding/refresh", Function: "refresh", Public: true, build: noVerifier(RefreshLink)},
	{Method: "POST", Path: "/webhooks/stripe", Function: "webhook", Public: true, build: Webhook},
}

func noVerifier(f func(*onboarding.Service) Handler) func(*onboarding.Service, EventVerifier) Handler {
	return func(s *onboarding.Service, _ EventVerifier) Handler { return f(s) }
}

// Key names the route as API Gateway does: "POST /accounts".
func (r Route) Key() string { return r.Method + " " + r.Path }

// Handler builds the route's handler, wrapped with the request log line.
func (r Route) Handler(svc *onboarding.Service, verifier EventVerifier, logger *slog.Logger) Handler {
	return WithLogging(logger, r.Key(), r.build(svc, verifier))
}

// FunctionRoute returns the route a Lambda function serves.
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
