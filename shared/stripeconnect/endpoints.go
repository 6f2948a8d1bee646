package stripeconnect

import (
	"context"
	"net/http"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhookendpoint"

	"github.com/connectexpress/onboarding/shared/onboarding"
)

// WebhookEndpoints registers the platform's Connect webhook endpoint: what
// cmd/registerwebhook does for a deployed stack, and the dev server does on
// the local simulator at start. No Lambda uses it.
//
// Its errors are stripe-go's own: the callers are operator tools that show
// Stripe's message (it names parameters, never the key).
type WebhookEndpoints struct {
	c webhookendpoint.Client
}

// NewWebhookEndpoints builds the client from the same Config as New.
func NewWebhookEndpoints(cfg Config) *WebhookEndpoints {
	backendCfg := &stripe.BackendConfig{
		HTTPClient:    &http.Client{Timeout: cfg.Timeout, Transport: cfg.Transport},
		LeveledLogger: &stripe.LeveledLogger{Level: stripe.LevelNull},
	}
	if cfg.APIBase != "" {
		backendCfg.URL = stripe.String(cfg.APIBase)
	}
	return &WebhookEndpoints{c: webhookendpoint.Client{B: stripe.GetBackendWithConfig(stripe.APIBackend, backendCfg), Key: cfg.SecretKey}}
}

// Endpoint is a registered webhook endpoint. Secret is set only by
// Register: Stripe shows a signing secret once, at creation.
type Endpoint struct {
	ID, URL, Secret string
}

// Register creates a Connect endpoint for url (connect=true: events of the
// connected accounts, not the platform's own), rendered in the API version
// stripe-go v76 decodes, for exactly the event types the service handles.
func (w *WebhookEndpoints) Register(ctx context.Context, url, description string) (Endpoint, error) {
	params := &stripe.WebhookEndpointParams{
		URL:           stripe.String(url),
		Connect:       stripe.Bool(true),
		APIVersion:    stripe.String(stripe.APIVersion),
		EnabledEvents: stripe.StringSlice(onboarding.HandledEventTypes),
		Description:   stripe.String(description),
	}
	params.Context = ctx
	ep, err := w.c.New(params)
	if err != nil {
		return Endpoint{}, err
	}
	return Endpoint{ID: ep.ID, URL: ep.URL, Secret: ep.Secret}, nil
}

// ListFor returns the ids of the endpoints already registered for url.
func (w *WebhookEndpoints) ListFor(ctx context.Context, url string) ([]string, error) {
	params := &stripe.WebhookEndpointListParams{}
	params.Context = ctx
	var ids []string
	it := w.c.List(params)
	for it.Next() {
		if ep := it.WebhookEndpoint(); ep.URL == url {
			ids = append(ids, ep.ID)
		}
	}
	return ids, it.Err()
}

// Delete removes an endpoint.
func (w *WebhookEndpoints) Delete(ctx context.Context, id string) error {
	params := &stripe.WebhookEndpointParams{}
	params.Context = ctx
	_, err := w.c.Del(id, params)
	return err
}
