package testenv

import (
	"encoding/json"
	"github.com/aws/aws-lambda-go/events"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"
)

// AccountSnapshot is what a test says about an account in account.updated.
type AccountSnapshot struct {
	DetailsSubmitted, ChargesEnabled, PayoutsEnabled bool
	CurrentlyDue                                     []string
	DisabledReason                                   string
}

// AccountUpdated renders a Connect account.updated event as Stripe sends it
// in API version 2023-10-16. userID "" leaves metadata empty.
func AccountUpdated(eventID, accountID, userID string, created int64, s AccountSnapshot) []byte {
	due := s.CurrentlyDue
	if due == nil {
		due = []string{}
	}
	var reason any
	if s.DisabledReason != "" {
		reason = s.DisabledReason
	}
	metadata := map[string]string{}
	if userID != "" {
		metadata["platform_user_id"] = userID
	}
	return event(eventID, "account.updated", accountID, created, map[string]any{
		"id": accountID, "object": "account", "type": "express", "country": "US",
		"details_submitted": s.DetailsSubmitted, "charges_enabled": s.ChargesEnabled, "payouts_enabled": s.PayoutsEnabled,
		"metadata": metadata,
		"requirements": map[string]any{
			"currently_due": due, "eventually_due": due, "past_due": []string{}, "pending_verification": []string{},
			"disabled_reason": reason, "current_deadline": nil,
		},
		"capabilities":   map[string]string{"card_payments": "inactive", "transfers": "inactive"},
		"tos_acceptance": map[string]any{"service_agreement": "full"},
	})
}

// CapabilityUpdated renders a capability.updated event.
func CapabilityUpdated(eventID, accountID, capability, status string, created int64) []byte {
	return event(eventID, "capability.updated", accountID, created, map[string]any{
		"id": capability, "object": "capability", "account": accountID, "status": status, "requested": true,
	})
}

// Deauthorized renders an account.application.deauthorized event.
func Deauthorized(eventID, accountID string, created int64) []byte {
	return event(eventID, "account.application.deauthorized", accountID, created, map[string]any{
		"id": "ca_platform", "object": "application", "name": "Platform",
	})
}

// Event renders any other event type.
func Event(eventID, typ, accountID string, created int64) []byte {
	return event(eventID, typ, accountID, created, map[string]any{"id": "po_1", "object": "payout"})
}

func event(id, typ, account string, created int64, object map[string]any) []byte {
	b, _ := json.Marshal(map[string]any{
		"id": id, "object": "event", "type": typ, "api_version": "2023-10-16", "created": created,
		"account": account, "livemode": false, "pending_webhooks": 1,
		"request": map[string]any{"id": nil, "idempotency_key": nil},
		"data":    map[string]any{"object": object},
	})
	return b
}

// Sign returns a Stripe-Signature header for payload.
func Sign(payload []byte, secret string, at time.Time) string {
	return webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: secret, Timestamp: at}).Header
}

// PostEvent delivers payload signed with the stack's webhook secret.
func (s *Stack) PostEvent(t testing.TB, payload []byte) (int, string) {
	t.Helper()
	return s.PostSigned(t, payload, Sign(payload, WebhookSecret, time.Now()))
}

// PostSigned delivers payload with the given Stripe-Signature header.
func (s *Stack) PostSigned(t testing.TB, payload []byte, signature string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.Server.URL+"/webhooks/stripe", strings.NewReader(string(payload)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if signature != "" {
		req.Header.Set("Stripe-Signature", signature)
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp.StatusCode, b.String()
}

// HTTPEvent builds an HTTP API payload 2.0 event as API Gateway sends it.
func HTTPEvent(method, path, body string, base64Body bool, headers map[string]string) events.APIGatewayV2HTTPRequest {
	return events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: method + " " + path, RawPath: path, Headers: headers,
		Body: body, IsBase64Encoded: base64Body,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey: method + " " + path, RequestID: "test-request",
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: method, Path: path},
		},
	}
}
