package testenv

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/connectexpress/onboarding/internal/stripeevents"
)

// The event builders live in internal/stripeevents; these names keep tests short.
type AccountSnapshot = stripeevents.AccountSnapshot

var (
	AccountUpdated    = stripeevents.AccountUpdated
	CapabilityUpdated = stripeevents.CapabilityUpdated
	Deauthorized      = stripeevents.Deauthorized
	Event             = stripeevents.Event
	Sign              = stripeevents.Sign
)

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
