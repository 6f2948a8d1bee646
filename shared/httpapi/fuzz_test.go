package httpapi_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"github.com/connectexpress/onboarding/internal/memstore"
	"github.com/connectexpress/onboarding/shared/httpapi"
	"github.com/connectexpress/onboarding/shared/onboarding"
)

// The seeds in testdata/fuzz/<FuzzName>/ and the f.Add calls run in every
// plain `go test`; scripts/fuzz.sh runs each target for a bounded time.

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

var fuzzPolicy = testPolicy()

func newFuzzService(now time.Time) (*onboarding.Service, *fakeConnect) {
	connect := &fakeConnect{}
	svc := onboarding.NewService(memstore.New(), connect, fuzzPolicy,
		onboarding.WithLogger(quiet), onboarding.WithClock(func() time.Time { return now }))
	return svc, connect
}

// event builds a payload 2.0 event the way API Gateway (and the dev server's
// adapter) does: text bodies as they are, anything else base64-encoded.
func event(method, path string, body []byte, claims map[string]string) httpapi.Request {
	req := httpapi.Request{
		Version:        "2.0",
		RouteKey:       method + " " + path,
		RawPath:        path,
		Headers:        map[string]string{"content-type": "application/json"},
		RequestContext: events.APIGatewayV2HTTPRequestContext{RequestID: "fuzz", HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: method, Path: path}},
	}
	if utf8.Valid(body) {
		req.Body = string(body)
	} else {
		req.Body, req.IsBase64Encoded = base64.StdEncoding.EncodeToString(body), true
	}
	if claims != nil {
		req.RequestContext.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
			JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{Claims: claims},
		}
	}
	return req
}

// checkEnvelope fails unless body is exactly the error envelope.
func checkEnvelope(t *testing.T, status int, body string) {
	t.Helper()
	var env struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Param   string `json:"param"`
		} `json:"error"`
	}
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&env); err != nil || env.Error.Code == "" || env.Error.Message == "" {
		t.Fatalf("status %d: body %q is not the error envelope (%v)", status, body, err)
	}
}

func checkJSONHeaders(t *testing.T, resp httpapi.Response) {
	t.Helper()
	if resp.Headers["Content-Type"] != "application/json" || resp.Headers["Cache-Control"] != "no-store" {
		t.Fatalf("status %d: headers %v, want application/json and no-store", resp.StatusCode, resp.Headers)
	}
	if resp.StatusCode == http.StatusServiceUnavailable && resp.Headers["Retry-After"] == "" {
		t.Fatalf("503 without Retry-After")
	}
}

var (
	countryPattern = regexp.MustCompile(`^[A-Za-z]{2}$`)
	mccPattern     = regexp.MustCompile(`^[0-9]{4}$`)
	createFields   = []string{"country", "email", "business_type", "business_profile", "capabilities", "service_agreement"}
	profileFields  = []string{"url", "product_description", "name", "mcc"}
)

// acceptedBodyMatchesSchema holds an accepted POST /accounts body to what
// openapi.yaml's CreateAccountRequest allows; the fuzzer then finds any
// input the validator accepts although the published schema refuses it.
func acceptedBodyMatchesSchema(t *testing.T, body []byte) {
	t.Helper()
	if len(strings.Trim(string(body), " \t\r\n")) == 0 {
		return
	}
	var obj map[string]any
	if err := json.Unmarshal(body, &obj); err != nil || obj == nil {
		t.Fatalf("accepted body %q is not a JSON object", body)
	}
	str := func(v any, name string) (string, bool) {
		if v == nil {
			return "", false
		}
		s, ok := v.(string)
		if !ok {
			t.Fatalf("accepted body %q: %s is %T, not a string", body, name, v)
		}
		return s, true
	}
	for k, v := range obj {
		if !slices.Contains(createFields, k) {
			t.Fatalf("accepted body %q with unknown field %q", body, k)
		}
		switch k {
		case "country":
			if s, ok := str(v, k); ok && !countryPattern.MatchString(s) {
				t.Fatalf("accepted country %q outside ^[A-Za-z]{2}$", s)
			}
		case "business_type":
			if s, ok := str(v, k); ok && !slices.Contains([]string{"individual", "company", "non_profit", "government_entity"}, s) {
				t.Fatalf("accepted business_type %q", s)
			}
		case "service_agreement":
			if s, ok := str(v, k); ok && s != "full" && s != "recipient" {
				t.Fatalf("accepted service_agreement %q", s)
			}
		case "capabilities":
			if v == nil {
				continue
			}
			caps, ok := v.([]any)
			if !ok || len(caps) > 32 {
				t.Fatalf("accepted capabilities %v", v)
			}
			for _, c := range caps {
				if c != "card_payments" && c != "transfers" {
					t.Fatalf("accepted capability %v", c)
				}
			}
		case "business_profile":
			if v == nil {
				continue
			}
			bp, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("accepted business_profile %v", v)
			}
			for pk, pv := range bp {
				if !slices.Contains(profileFields, pk) {
					t.Fatalf("accepted body %q with unknown business_profile field %q", body, pk)
				}
				s, ok := str(pv, "business_profile."+pk)
				if !ok {
					continue
				}
				switch pk {
				case "url":
					if len(s) > 2048 || !strings.HasPrefix(strings.ToLower(s), "https://") {
						t.Fatalf("accepted business_profile.url %q", s)
					}
				case "mcc":
					if !mccPattern.MatchString(s) {
						t.Fatalf("accepted business_profile.mcc %q", s)
					}
				case "product_description", "name":
					limit := map[string]int{"product_description": 500, "name": 100}[pk]
					if n := utf8.RuneCountInString(s); n == 0 || n > limit {
						t.Fatalf("accepted business_profile.%s of %d characters, want 1 to %d", pk, n, limit)
					}
				}
			}
		}
	}
}

// FuzzCreateAccountBody feeds arbitrary bytes as the POST /accounts body
// through the real handler and core, on in-memory fakes of the store and
// Stripe: no panic, never 5xx, the envelope on every 4xx, and an accepted
// body is one the published schema allows.
func FuzzCreateAccountBody(f *testing.F) {
	for _, seed := range []string{
		``, `{}`, `null`, `[]`, `"x"`, `{"country":"US"}`, `{"country":"gb","service_agreement":"recipient","capabilities":["transfers"]}`,
		`{"Country":"FR"}`, `{"business_profile":{"url":"https://shop.example","mcc":"5734"}}`, `{"email":"a@b.example"}{}`,
	} {
		f.Add([]byte(seed))
	}
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		svc, connect := newFuzzService(now)
		h := httpapi.CreateAccount.Handler(svc, fakeVerifier{}, quiet)
		resp := h(context.Background(), event("POST", "/accounts", body, map[string]string{"sub": "fuzz-user", "email": "fuzz@example.com"}))
		checkJSONHeaders(t, resp)
		switch {
		case resp.StatusCode >= 500:
			t.Fatalf("status %d for body %q: %s", resp.StatusCode, body, resp.Body)
		case resp.StatusCode >= 400:
			if resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusRequestEntityTooLarge {
				t.Fatalf("status %d for body %q: %s", resp.StatusCode, body, resp.Body)
			}
			checkEnvelope(t, resp.StatusCode, resp.Body)
			if len(connect.created) != 0 {
				t.Fatalf("Stripe was called for a refused body %q", body)
			}
		case resp.StatusCode == http.StatusCreated:
			var acct onboarding.Account
			if err := json.Unmarshal([]byte(resp.Body), &acct); err != nil || !strings.HasPrefix(acct.ID, "acct_") {
				t.Fatalf("201 body %q: %v", resp.Body, err)
			}
			if len(connect.created) != 1 {
				t.Fatalf("%d Stripe creates, want 1", len(connect.created))
			}
			acceptedBodyMatchesSchema(t, body)
		default:
			t.Fatalf("status %d for body %q on a fresh store, want 201 or 4xx", resp.StatusCode, body)
		}
	})
}

// FuzzRouteHandlers feeds arbitrary HTTP API events (method, path, query,
// headers, body, base64 flag, authorizer claims) to the handler of every
// route in httpapi.Routes, as wrapped for Lambda and the dev server, on
// in-memory fakes: never a 5xx (a panic would surface as 500), JSON and the
// envelope where due, and redirects only to Stripe or the frontend.
func FuzzRouteHandlers(f *testing.F) {
	f.Add(uint8(0), "POST", "/accounts", "", "content-type: application/json", []byte(`{"country":"US"}`), uint8(0), "alice", "alice@example.com")
	f.Add(uint8(1), "GET", "/accounts/me", "refresh=true", "", []byte(nil), uint8(0), "alice", "")
	f.Add(uint8(2), "PATCH", "/accounts/me", "", "", []byte(`{"email":"new@example.com"}`), uint8(0), "fresh", "")
	f.Add(uint8(3), "POST", "/accounts/me/onboarding-link", "", "", []byte(nil), uint8(0), "alice", "")
	f.Add(uint8(4), "POST", "/accounts/me/dashboard-link", "", "", []byte(nil), uint8(0), "submitted", "")
	f.Add(uint8(5), "GET", "/onboarding/refresh", "token=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "", []byte(nil), uint8(0), "", "")
	f.Add(uint8(6), "POST", "/webhooks/stripe", "", "stripe-signature: "+fakeSignature,
		[]byte(`{"id":"evt_1","type":"account.updated","created":1900000000,"account":"acct_fake000001","data":{"object":{"details_submitted":true}}}`), uint8(0), "", "")
	f.Add(uint8(6), "POST", "/webhooks/stripe", "", "Stripe-Signature: t=1,v1=00", []byte("e30="), uint8(2), "", "")
	f.Add(uint8(0), "POST", "/accounts", "", "", []byte("not base64!"), uint8(2), "alice", "")

	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	policy := fuzzPolicy
	f.Fuzz(func(t *testing.T, routeIdx uint8, method, path, rawQuery, headerLines string, body []byte, encoding uint8, sub, email string) {
		route := httpapi.Routes[int(routeIdx)%len(httpapi.Routes)]
		svc, _ := newFuzzService(now)
		ctx := context.Background()
		// alice has an account and an onboarding link (KYC locked);
		// fresh has an account only; submitted has submitted its details.
		for _, u := range []string{"alice", "fresh", "submitted"} {
			if _, _, err := svc.CreateAccount(ctx, onboarding.Caller{UserID: u}, onboarding.CreateAccountRequest{}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := svc.CreateOnboardingLink(ctx, onboarding.Caller{UserID: "alice"}); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.GetAccount(ctx, onboarding.Caller{UserID: "submitted"}, true); err != nil {
			t.Fatal(err)
		}

		req := httpapi.Request{
			Version: "2.0", RouteKey: route.Key(), RawPath: path, RawQueryString: rawQuery,
			Headers:               map[string]string{},
			QueryStringParameters: map[string]string{},
			RequestContext: events.APIGatewayV2HTTPRequestContext{
				RouteKey: route.Key(), RequestID: "fuzz",
				HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: method, Path: path},
			},
		}
		for _, line := range strings.Split(headerLines, "\n") {
			if name, value, ok := strings.Cut(line, ":"); ok {
				req.Headers[name] = strings.TrimSpace(value)
			}
		}
		if q, err := url.ParseQuery(rawQuery); err == nil {
			for k, v := range q {
				req.QueryStringParameters[k] = strings.Join(v, ",")
			}
		}
		switch encoding % 3 {
		case 0: // as API Gateway sends it
			if utf8.Valid(body) {
				req.Body = string(body)
			} else {
				req.Body, req.IsBase64Encoded = base64.StdEncoding.EncodeToString(body), true
			}
		case 1: // base64 even for text
			req.Body, req.IsBase64Encoded = base64.StdEncoding.EncodeToString(body), true
		case 2: // flagged base64 but anything at all
			req.Body, req.IsBase64Encoded = string(body), true
		}
		if sub != "" || email != "" {
			req.RequestContext.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
				JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{Claims: map[string]string{"sub": sub, "email": email}},
			}
		}

		resp := route.Handler(svc, fakeVerifier{}, quiet)(ctx, req)
		if resp.StatusCode >= 500 || resp.StatusCode < 200 {
			t.Fatalf("%s: status %d: %s", route.Key(), resp.StatusCode, resp.Body)
		}
		if route.Function == httpapi.RefreshLink.Function {
			loc := resp.Headers["Location"]
			if resp.StatusCode != http.StatusFound || (!strings.HasPrefix(loc, policy.OnboardingURL+"?error=") && !strings.HasPrefix(loc, fakeStripeLink)) {
				t.Fatalf("refresh: status %d to %q, want 302 to Stripe or %s?error=", resp.StatusCode, loc, policy.OnboardingURL)
			}
			if resp.Headers["Cache-Control"] != "no-store" || resp.Body != "" {
				t.Fatalf("refresh: headers %v body %q", resp.Headers, resp.Body)
			}
			return
		}
		checkJSONHeaders(t, resp)
		if !json.Valid([]byte(resp.Body)) {
			t.Fatalf("%s: status %d: body %q is not JSON", route.Key(), resp.StatusCode, resp.Body)
		}
		if resp.StatusCode >= 400 {
			checkEnvelope(t, resp.StatusCode, resp.Body)
		}
		if !route.Public && sub == "" && resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("%s without a caller: status %d", route.Key(), resp.StatusCode)
		}
		if route.Function == httpapi.Webhook.Function && resp.StatusCode == http.StatusOK && resp.Body != `{"received":true}` {
			t.Fatalf("webhook: 200 with %q", resp.Body)
		}
	})
}
