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

// CreateAccount serves POST /accounts.
func CreateAccount(svc *onboarding.Service) Handler {
	return func(ctx context.Context, req Request) Response {
		c, err := caller(req)
		if err != nil {
			return failed(ctx, err)
		}
		var body onboarding.CreateAccountRequest
		if err := decodeJSON(req, &body); err != nil {
			return failed(ctx, err)
		}
		acct, created, err := svc.CreateAccount(ctx, c, body)
		if err != nil {
			return failed(ctx, err)
		}
		annotate(ctx, slog.String("account_id", acct.ID), slog.Bool("created", created))
		if created {
			return jsonResponse(http.StatusCreated, acct)
		}
		return jsonResponse(http.StatusOK, acct)
	}
}

// GetAccount serves GET /accounts/me (?refresh=true re-reads Stripe).
func GetAccount(svc *onboarding.Service) Handler {
	return func(ctx context.Context, req Request) Response {
		c, err := caller(req)
		if err != nil {
			return failed(ctx, err)
		}
		refresh := false
		switch req.QueryStringParameters["refresh"] {
		case "", "false":
		case "true":
			refresh = true
		default:
			return failed(ctx, onboarding.Invalid("refresh", "refresh must be true or false"))
		}
		acct, err := svc.GetAccount(ctx, c, refresh)
		if err != nil {
			return failed(ctx, err)
		}
		annotate(ctx, slog.String("account_id", acct.ID))
		return jsonResponse(http.StatusOK, acct)
	}
}

// UpdateAccount serves PATCH /accounts/me.
func UpdateAccount(svc *onboarding.Service) Handler {
	return func(ctx context.Context, req Request) Response {
		c, err := caller(req)
		if err != nil {
			return failed(ctx, err)
		}
		var body onboarding.UpdateAccountRequest
		if err := decodeJSON(req, &body); err != nil {
			return failed(ctx, err)
		}
		acct, err := svc.UpdateAccount(ctx, c, body)
		if err != nil {
			return failed(ctx, err)
		}
		annotate(ctx, slog.String("account_id", acct.ID))
		return jsonResponse(http.StatusOK, acct)
	}
}

// CreateOnboardingLink serves POST /accounts/me/onboarding-link.
func CreateOnboardingLink(svc *onboarding.Service) Handler {
	return func(ctx context.Context, req Request) Response {
		c, err := caller(req)
		if err != nil {
			return failed(ctx, err)
		}
		link, err := svc.CreateOnboardingLink(ctx, c)
		if err != nil {
			return failed(ctx, err)
		}
		return jsonResponse(http.StatusOK, link)
	}
}

// CreateDashboardLink serves POST /accounts/me/dashboard-link.
func CreateDashboardLink(svc *onboarding.Service) Handler {
	return func(ctx context.Context, req Request) Response {
		c, err := caller(req)
		if err != nil {
			return failed(ctx, err)
		}
		url, err := svc.CreateDashboardLink(ctx, c)
		if err != nil {
			return failed(ctx, err)
		}
		return jsonResponse(http.StatusOK, map[string]string{"url": url})
	}
}

// RefreshLink serves GET /onboarding/refresh?token=: public, because the
// browser returns from Stripe without the frontend's bearer token. It
// always redirects: to a fresh Stripe link, or to the frontend's
// onboarding page saying why not (?error=).
func RefreshLink(svc *onboarding.Service) Handler {
	return func(ctx context.Context, req Request) Response {
		location, err := svc.RefreshOnboardingLink(ctx, req.QueryStringParameters["token"])
		if err != nil {
			e, ok := onboarding.AsError(err)
			if ok {
				annotate(ctx, slog.String("outcome", e.Code))
			}
			if !ok || (e.Kind != onboarding.KindInvalid && e.Kind != onboarding.KindRateLimited && e.Kind != onboarding.KindConflict) {
				annotate(ctx, slog.String("error", logSafe(err)))
			}
		}
		return redirect(location)
	}
}

// Webhook serves POST /webhooks/stripe: public, authenticated by Stripe's
// signature over the raw body.
func Webhook(svc *onboarding.Service, verifier EventVerifier) Handler {
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
