package stripeconnect_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76"

	"github.com/connectexpress/onboarding/internal/testenv"
	"github.com/connectexpress/onboarding/shared/onboarding"
	"github.com/connectexpress/onboarding/shared/stripeconnect"
)

// What make register-webhook and the dev server ask of Stripe: a Connect endpoint in stripe-go's
// API version for exactly the handled events, the endpoints already there for a URL, a removal.
func TestWebhookEndpointsRegisterListAndDelete(t *testing.T) {
	const url = "https://api.example/webhooks/stripe"
	rec := testenv.NewRecorder(t)
	eps := stripeconnect.NewWebhookEndpoints(stripeconnect.Config{SecretKey: testSecretKey, APIBase: rec.URL, Timeout: 5 * time.Second})
	ctx := context.Background()

	ep, err := eps.Register(ctx, url, "connect onboarding")
	if err != nil {
		t.Fatalf("Register: %v", err)
	}
	if ep.ID == "" || ep.URL != url {
		t.Errorf("registered %+v, want Stripe's id and the URL", ep)
	}
	reqs := rec.Requests("POST /v1/webhook_endpoints")
	if len(reqs) != 1 {
		t.Fatalf("%d endpoint creations, want 1", len(reqs))
	}
	form := reqs[0].Form
	if form.Get("url") != url || form.Get("connect") != "true" || form.Get("api_version") != stripe.APIVersion || form.Get("description") != "connect onboarding" {
		t.Errorf("created with %v: want the URL, connect=true, API version %s and the description", form, stripe.APIVersion)
	}
	var got []string // stripe-go sends enabled_events[0], enabled_events[1], ...
	for i := 0; form.Has(fmt.Sprintf("enabled_events[%d]", i)); i++ {
		got = append(got, form.Get(fmt.Sprintf("enabled_events[%d]", i)))
	}
	if !slices.Equal(got, onboarding.HandledEventTypes) {
		t.Errorf("enabled events %v, want exactly %v", got, onboarding.HandledEventTypes)
	}

	rec.SetIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodGet || r.URL.Path != "/v1/webhook_endpoints" {
			return false
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"object":"list","url":"/v1/webhook_endpoints","has_more":false,"data":[
			{"id":"we_ours1","object":"webhook_endpoint","url":"` + url + `"},
			{"id":"we_other","object":"webhook_endpoint","url":"https://elsewhere.example/hook"},
			{"id":"we_ours2","object":"webhook_endpoint","url":"` + url + `"}]}`))
		return true
	})
	ids, err := eps.ListFor(ctx, url)
	if err != nil || !slices.Equal(ids, []string{"we_ours1", "we_ours2"}) {
		t.Fatalf("ListFor = %v, %v; want the two endpoints of %s", ids, err, url)
	}
	rec.SetIntercept(nil)

	if err := eps.Delete(ctx, ep.ID); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if n := len(rec.Requests("DELETE /v1/webhook_endpoints/" + ep.ID)); n != 1 {
		t.Errorf("%d deletions of %s, want 1", n, ep.ID)
	}
}

// Stripe's refusal reaches the operator tool as Stripe's own error.
func TestARefusedRegistrationIsStripesError(t *testing.T) {
	rec := testenv.NewRecorder(t)
	rec.SetIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":{"type":"invalid_request_error","param":"url","message":"Invalid URL"}}`))
		return true
	})
	eps := stripeconnect.NewWebhookEndpoints(stripeconnect.Config{SecretKey: testSecretKey, APIBase: rec.URL, Timeout: 5 * time.Second})
	ep, err := eps.Register(context.Background(), "not a url", "x")
	se, ok := err.(*stripe.Error)
	if !ok || se.Param != "url" || ep != (stripeconnect.Endpoint{}) {
		t.Fatalf("Register = %+v, %v; want Stripe's error naming url and no endpoint", ep, err)
	}
}
