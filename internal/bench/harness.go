package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/connectexpress/onboarding/internal/devserver/memdynamo"
	"github.com/connectexpress/onboarding/internal/memstore"
	"github.com/connectexpress/onboarding/shared/app"
	"github.com/connectexpress/onboarding/shared/config"
	"github.com/connectexpress/onboarding/shared/dynamostore"
	"github.com/connectexpress/onboarding/shared/httpapi"
	"github.com/connectexpress/onboarding/shared/onboarding"
	"github.com/connectexpress/onboarding/shared/stripeconnect"
)

const (
	benchTable         = "bench"
	benchWebhookSecret = "whsec_bench0123456789abcdefghijklmnopqrstuv"
)

// Harness is the service wired as a Lambda runs it, on the in-process
// DynamoDB engine and Stripe at a base URL (stripe-mock), with counting
// clients; or, with stubs, on in-memory ports that answer at once.
type Harness struct {
	handlers map[string]httpapi.Handler
	DB       *CountingDB
	Stripe   *CountingTransport
	links    *linkSpy
	seq      int
	accounts map[string]string // user -> account id
}

// benchBounceWindow is REFRESH_BOUNCE_WINDOW here. The refresh scenario
// redeems a token the moment its link is minted, which a browser does only
// when Stripe bounces the link: it measures the ordinary refresh. (A bounce
// adds one Stripe read and its versioned write: 7 DynamoDB and 2 Stripe
// requests instead of 5 and 1.)
const benchBounceWindow = "1ns"

// benchPublishableKey lets the session route answer (STRIPE_PUBLISHABLE_KEY).
const benchPublishableKey = "pk_test_bench"

// NewHarness wires the real adapters against stripeBase.
func NewHarness(stripeBase string) (*Harness, error) {
	mem := memdynamo.New()
	if err := dynamostore.CreateTable(context.Background(), mem, benchTable); err != nil {
		return nil, err
	}
	spy := &linkSpy{}
	h := &Harness{DB: NewCountingDB(mem, benchTable), links: spy, accounts: map[string]string{}}
	h.Stripe = &CountingTransport{Next: spy}
	env := map[string]string{
		"STRIPE_SECRET_KEY": "sk_test_bench", "STRIPE_WEBHOOK_SECRET": benchWebhookSecret,
		"STRIPE_API_BASE": stripeBase, "STRIPE_MAX_RETRIES": "0", "TABLE_NAME": benchTable,
		"FRONTEND_URL": "https://frontend.example", "PUBLIC_API_URL": "https://api.example",
		"REFRESH_BOUNCE_WINDOW": benchBounceWindow, "STRIPE_PUBLISHABLE_KEY": benchPublishableKey,
	}
	a, err := app.New(context.Background(), app.Options{
		LookupEnv:       func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		Logger:          slog.New(slog.NewJSONHandler(io.Discard, nil)),
		DynamoDB:        h.DB,
		Needs:           config.Needs{StripeKey: true, WebhookSecrets: true},
		StripeTransport: h.Stripe,
	})
	if err != nil {
		return nil, err
	}
	h.handlers = map[string]httpapi.Handler{}
	for _, r := range httpapi.Routes {
		h.handlers[r.Key()] = a.Handler(r)
	}
	return h, nil
}

// NewStubHarness wires the same handlers to in-memory stubs of the store and
// Stripe: what remains is our own code's cost.
func NewStubHarness() *Harness {
	spy := &linkSpy{}
	store := memstore.New()
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
	svc := onboarding.NewService(store, &stubConnect{links: spy}, benchPolicy(), onboarding.WithLogger(logger), onboarding.WithStaffStore(stubStaff{}))
	verifier := stripeconnect.NewVerifier([]string{benchWebhookSecret}, nil)
	h := &Harness{links: spy, handlers: map[string]httpapi.Handler{}, accounts: map[string]string{}}
	for _, r := range httpapi.Routes {
		h.handlers[r.Key()] = r.Handler(svc, verifier, logger)
	}
	return h
}

func benchPolicy() onboarding.Policy {
	c, _ := config.Load(func(k string) (string, bool) {
		v, ok := map[string]string{"FRONTEND_URL": "https://frontend.example", "PUBLIC_API_URL": "https://api.example",
			"REFRESH_BOUNCE_WINDOW": benchBounceWindow, "STRIPE_PUBLISHABLE_KEY": benchPublishableKey}[k]
		return v, ok
	})
	return c.Policy
}

// Call invokes a route's handler with an HTTP API event.
func (h *Harness) Call(method, path, user string, query map[string]string, headers map[string]string, body string) events.APIGatewayV2HTTPResponse {
	ev := events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: method + " " + path, RawPath: path,
		QueryStringParameters: query, Headers: headers, Body: body,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RequestID: "bench", HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: method, Path: path},
		},
	}
	if user != "" {
		ev.RequestContext.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
			JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{Claims: map[string]string{"sub": user}},
		}
	}
	return h.handlers[method+" "+path](context.Background(), ev)
}

// NewUser returns a fresh user id.
func (h *Harness) NewUser() string {
	h.seq++
	return fmt.Sprintf("bench-user-%d", h.seq)
}

// Onboarded creates an account for a new user and returns the user.
func (h *Harness) Onboarded() (string, error) {
	u := h.NewUser()
	r := h.Call("POST", "/accounts", u, nil, nil, "{}")
	var acct struct {
		ID string `json:"account_id"`
	}
	if r.StatusCode != 201 || json.Unmarshal([]byte(r.Body), &acct) != nil {
		return "", fmt.Errorf("create: %d %s", r.StatusCode, r.Body)
	}
	h.accounts[u] = acct.ID
	return u, nil
}

// RefreshToken issues a link for user and returns the token it carries.
func (h *Harness) RefreshToken(user string) (string, error) {
	if r := h.Call("POST", "/accounts/me/onboarding-link", user, nil, nil, ""); r.StatusCode != 200 {
		return "", fmt.Errorf("link: %d %s", r.StatusCode, r.Body)
	}
	u, err := url.Parse(h.links.last())
	if err != nil {
		return "", err
	}
	return u.Query().Get("token"), nil
}

// Webhook delivers a signed account.updated for user's account.
func (h *Harness) Webhook(eventID, user string, created int64, active bool) events.APIGatewayV2HTTPResponse {
	acct := h.accounts[user]
	payload := fmt.Sprintf(`{"id":%q,"object":"event","type":"account.updated","api_version":"2023-10-16","created":%d,"account":%q,"livemode":false,`+
		`"data":{"object":{"id":%q,"object":"account","country":"US","details_submitted":%t,"charges_enabled":%t,"payouts_enabled":%t,`+
		`"metadata":{"platform_user_id":%q},"requirements":{"currently_due":[],"eventually_due":[],"past_due":[],"pending_verification":[],"disabled_reason":null,"current_deadline":null},`+
		`"capabilities":{"card_payments":"active","transfers":"active"},"tos_acceptance":{"service_agreement":"full"}}}}`,
		eventID, created, acct, acct, active, active, active, user)
	sig := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: []byte(payload), Secret: benchWebhookSecret, Timestamp: time.Now()})
	return h.Call("POST", "/webhooks/stripe", "", nil, map[string]string{"stripe-signature": sig.Header}, payload)
}

// linkSpy remembers the refresh_url of the last account link request, so a
// benchmark can follow it like Stripe would.
type linkSpy struct {
	mu      sync.Mutex
	refresh string
}

func (s *linkSpy) record(u string) {
	s.mu.Lock()
	s.refresh = u
	s.mu.Unlock()
}

func (s *linkSpy) last() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refresh
}

func (s *linkSpy) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPost && r.URL.Path == "/v1/account_links" && r.Body != nil {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		if form, err := url.ParseQuery(string(body)); err == nil {
			s.record(form.Get("refresh_url"))
		}
	}
	return http.DefaultTransport.RoundTrip(r)
}
