package httpapi

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/connectexpress/onboarding/shared/onboarding"
)

// EventVerifier checks a webhook's signature and decodes its event.
type EventVerifier interface {
	Verify(payload []byte, signatureHeader string) (onboarding.AccountEvent, error)
}

// The authenticated routes: each is a use case of the core, given the
// caller and its input, answered as JSON (see serve).

// createAccount serves POST /accounts.
func createAccount(svc *onboarding.Service) Handler {
	return serve(jsonBody[onboarding.CreateAccountRequest], func(ctx context.Context, c onboarding.Caller, body onboarding.CreateAccountRequest) (int, onboarding.Account, error) {
		acct, created, err := svc.CreateAccount(ctx, c, body)
		if err != nil {
			return 0, acct, err
		}
		annotate(ctx, slog.String("account_id", acct.ID), slog.Bool("created", created))
		if created {
			return http.StatusCreated, acct, nil
		}
		return http.StatusOK, acct, nil
	})
}

// getAccount serves GET /accounts/me (?refresh=true re-reads Stripe).
func getAccount(svc *onboarding.Service) Handler {
	return serve(refreshParam, func(ctx context.Context, c onboarding.Caller, refresh bool) (int, onboarding.Account, error) {
		acct, err := svc.GetAccount(ctx, c, refresh)
		return accountAnswer(ctx, acct, err)
	})
}

// updateAccount serves PATCH /accounts/me.
func updateAccount(svc *onboarding.Service) Handler {
	return serve(jsonBody[onboarding.UpdateAccountRequest], func(ctx context.Context, c onboarding.Caller, body onboarding.UpdateAccountRequest) (int, onboarding.Account, error) {
		acct, err := svc.UpdateAccount(ctx, c, body)
		return accountAnswer(ctx, acct, err)
	})
}

// createOnboardingLink serves POST /accounts/me/onboarding-link.
func createOnboardingLink(svc *onboarding.Service) Handler {
	return serve(noInput, func(ctx context.Context, c onboarding.Caller, _ struct{}) (int, onboarding.OnboardingLink, error) {
		link, err := svc.CreateOnboardingLink(ctx, c)
		return http.StatusOK, link, err
	})
}

// createOnboardingSession serves POST /accounts/me/onboarding-session: the
// Account Session behind Stripe's embedded onboarding. Its client secret
// goes out in the body only (no-store, like every answer) and never into
// the request's log line.
func createOnboardingSession(svc *onboarding.Service) Handler {
	return serve(noInput, func(ctx context.Context, c onboarding.Caller, _ struct{}) (int, onboarding.OnboardingSession, error) {
		sess, err := svc.CreateOnboardingSession(ctx, c)
		return http.StatusOK, sess, err
	})
}

// createDashboardLink serves POST /accounts/me/dashboard-link.
func createDashboardLink(svc *onboarding.Service) Handler {
	return serve(noInput, func(ctx context.Context, c onboarding.Caller, _ struct{}) (int, dashboardLink, error) {
		url, err := svc.CreateDashboardLink(ctx, c)
		return http.StatusOK, dashboardLink{URL: url}, err
	})
}

// refreshLink serves GET /onboarding/refresh?token=: public, because the
// browser returns from Stripe without the frontend's bearer token. It
// always redirects: to a fresh Stripe link, or to the frontend's
// onboarding page saying why not (?error=).
func refreshLink(svc *onboarding.Service) Handler {
	return func(ctx context.Context, req Request) Response {
		location, err := svc.RefreshOnboardingLink(ctx, req.QueryStringParameters["token"])
		if err != nil {
			e, ok := onboarding.AsError(err)
			if ok {
				annotate(ctx, slog.String("outcome", e.Code))
			}
			if !ok || (e.Kind != onboarding.KindInvalid && e.Kind != onboarding.KindRateLimited && e.Kind != onboarding.KindConflict) {
				keepError(ctx, err)
			}
		}
		return redirect(location)
	}
}

// webhook serves POST /webhooks/stripe: public, authenticated by Stripe's
// signature over the raw body.
func webhook(svc *onboarding.Service, verifier EventVerifier) Handler {
	return func(ctx context.Context, req Request) Response {
		body, err := rawBody(req, maxEventBody)
		if err != nil {
			return failed(ctx, err)
		}
		ev, err := verifier.Verify(body, header(req, "Stripe-Signature"))
		if err != nil {
			return failed(ctx, err)
		}
		annotate(ctx, slog.String("event_id", ev.ID), slog.String("event_type", ev.Type), slog.String("account_id", ev.AccountID))
		if ev.APIVersionMismatch {
			annotate(ctx, slog.String("api_version_mismatch", ev.APIVersion))
		}
		outcome, err := svc.HandleEvent(ctx, ev)
		if err != nil {
			return failed(ctx, err)
		}
		annotate(ctx, slog.String("outcome", string(outcome)))
		return jsonResponse(http.StatusOK, map[string]bool{"received": true})
	}
}

// serve is every authenticated JSON route: the caller the JWT authorizer
// verified, the input read from the request, the use case, and its answer
// as JSON with the status it chose. Any error is the envelope.
func serve[In, Out any](input func(Request) (In, error), useCase func(context.Context, onboarding.Caller, In) (int, Out, error)) Handler {
	return serveAs(func(_ context.Context, req Request) (onboarding.Caller, error) { return caller(req) }, input, useCase)
}

// serveAs is serve with the caller read by who: who refuses a caller the
// route is not for before any input is read.
func serveAs[In, Out any](who func(context.Context, Request) (onboarding.Caller, error), input func(Request) (In, error), useCase func(context.Context, onboarding.Caller, In) (int, Out, error)) Handler {
	return func(ctx context.Context, req Request) Response {
		c, err := who(ctx, req)
		if err != nil {
			return failed(ctx, err)
		}
		in, err := input(req)
		if err != nil {
			return failed(ctx, err)
		}
		status, out, err := useCase(ctx, c, in)
		if err != nil {
			return failed(ctx, err)
		}
		return jsonResponse(status, out)
	}
}

// The inputs serve reads.

// jsonBody decodes the body strictly into a T (decodeJSON).
func jsonBody[T any](req Request) (T, error) {
	var body T
	err := decodeJSON(req, &body)
	return body, err
}

// noInput is for routes that read nothing but the caller.
func noInput(Request) (struct{}, error) { return struct{}{}, nil }

// refreshParam reads ?refresh=: absent, true or false.
func refreshParam(req Request) (bool, error) {
	switch req.QueryStringParameters["refresh"] {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	default:
		return false, onboarding.Invalid("refresh", "refresh must be true or false")
	}
}

// accountAnswer is 200 with the account, named in the log line.
func accountAnswer(ctx context.Context, acct onboarding.Account, err error) (int, onboarding.Account, error) {
	if err != nil {
		return 0, acct, err
	}
	annotate(ctx, slog.String("account_id", acct.ID))
	return http.StatusOK, acct, nil
}

// dashboardLink is the answer of POST /accounts/me/dashboard-link.
type dashboardLink struct {
	URL string `json:"url"`
}
