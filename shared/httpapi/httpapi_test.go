package httpapi_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connectexpress/onboarding/internal/memstore"
	"github.com/connectexpress/onboarding/shared/httpapi"
	"github.com/connectexpress/onboarding/shared/onboarding"
)

// The handlers' behaviour as a client and an operator see it: statuses, bodies, headers and
// the request's log line, through the route table on in-memory fakes.

var testNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// steeredStore is the in-memory store with faults a test puts in: an error (or a panic) from
// GetUser, a wait before it answers, a refused TakeSlot, an error claiming a refresh token.
type steeredStore struct {
	*memstore.Store
	getUserErr   error
	getUserPanic any
	getUserDelay time.Duration
	slotRetryAt  time.Time // non-zero: TakeSlot refuses, a use is possible again then
	claimErr     error     // from ClaimRefreshToken
}

func (s *steeredStore) ClaimRefreshToken(ctx context.Context, hash string, now time.Time, lease onboarding.Lease) (onboarding.RefreshToken, error) {
	if s.claimErr != nil {
		return onboarding.RefreshToken{}, s.claimErr
	}
	return s.Store.ClaimRefreshToken(ctx, hash, now, lease)
}

func (s *steeredStore) GetUser(ctx context.Context, userID string) (onboarding.UserRecord, error) {
	time.Sleep(s.getUserDelay)
	if s.getUserPanic != nil {
		panic(s.getUserPanic)
	}
	if s.getUserErr != nil {
		return onboarding.UserRecord{}, s.getUserErr
	}
	return s.Store.GetUser(ctx, userID)
}

func (s *steeredStore) TakeSlot(ctx context.Context, key string, limit int, window time.Duration, now time.Time) (bool, time.Time, error) {
	if !s.slotRetryAt.IsZero() {
		return false, s.slotRetryAt, nil
	}
	return s.Store.TakeSlot(ctx, key, limit, window, now)
}

// steeredConnect is fakeConnect that remembers the refresh URL of the last link and can fail
// link requests.
type steeredConnect struct {
	*fakeConnect
	mu         sync.Mutex
	refreshURL string
	linkErr    error
}

func (c *steeredConnect) CreateOnboardingLink(ctx context.Context, r onboarding.LinkRequest) (onboarding.OnboardingLink, error) {
	c.mu.Lock()
	c.refreshURL = r.RefreshURL
	err := c.linkErr
	c.mu.Unlock()
	if err != nil {
		return onboarding.OnboardingLink{}, err
	}
	return c.fakeConnect.CreateOnboardingLink(ctx, r)
}

// refreshToken is the token of the last link's refresh URL.
func (c *steeredConnect) refreshToken(t *testing.T) string {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	u, err := url.Parse(c.refreshURL)
	if err != nil || u.Query().Get("token") == "" {
		t.Fatalf("no token in the refresh URL %q", c.refreshURL)
	}
	return u.Query().Get("token")
}

type fixture struct {
	store   *steeredStore
	connect *steeredConnect
	svc     *onboarding.Service
	logs    bytes.Buffer
}

func newFixture() *fixture {
	f := &fixture{store: &steeredStore{Store: memstore.New()}, connect: &steeredConnect{fakeConnect: &fakeConnect{}}}
	f.svc = onboarding.NewService(f.store, f.connect, fuzzPolicy,
		onboarding.WithLogger(quiet), onboarding.WithClock(func() time.Time { return testNow }))
	return f
}

// serve runs req through route as the Lambdas and the dev server do, logging into f.logs.
func (f *fixture) serve(route httpapi.Route, req httpapi.Request) httpapi.Response {
	logger := slog.New(slog.NewJSONHandler(&f.logs, nil))
	return route.Handler(f.svc, fakeVerifier{}, logger)(context.Background(), req)
}

// logLine returns the last request log line.
func (f *fixture) logLine(t *testing.T) map[string]any {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(f.logs.String()), "\n")
	var line map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &line); err != nil {
		t.Fatalf("log line %q: %v", lines[len(lines)-1], err)
	}
	return line
}

// createAccount gives user an account, as POST /accounts would.
func (f *fixture) createAccount(t *testing.T, user string) {
	t.Helper()
	if _, _, err := f.svc.CreateAccount(context.Background(), onboarding.Caller{UserID: user}, onboarding.CreateAccountRequest{}); err != nil {
		t.Fatal(err)
	}
}

func authed(method, path string, body []byte, sub string) httpapi.Request {
	return event(method, path, body, map[string]string{"sub": sub})
}

type envelope struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Param   string `json:"param"`
	} `json:"error"`
}

func decodeEnvelope(t *testing.T, resp httpapi.Response) envelope {
	t.Helper()
	checkEnvelope(t, resp.StatusCode, resp.Body)
	var env envelope
	_ = json.Unmarshal([]byte(resp.Body), &env)
	return env
}

// An error the core did not make (the SDK's, a decoder's, a panic) may name tables, keys or
// input: the client gets the same fixed 500 whatever it says, and the operator the error line.
func TestAnyErrorThatIsNotTheCoresOwnIsAFixed500(t *testing.T) {
	const secretish = "arn:aws:dynamodb:eu-west-1:123456789012:table/prod-accounts"
	tests := []struct {
		name  string
		err   error
		panic any
	}{
		{name: "a raw storage error", err: fmt.Errorf("operation error DynamoDB: GetItem, %s: AccessDeniedException", secretish)},
		{name: "a decode error", err: fmt.Errorf("decode %s item: %w", secretish, &json.UnmarshalTypeError{Value: "number", Field: "state"})},
		{name: "a panic", panic: "runtime error in " + secretish},
		{name: "a panic with an error", panic: fmt.Errorf("nil map in %s", secretish)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture()
			f.store.getUserErr, f.store.getUserPanic = tt.err, tt.panic
			resp := f.serve(httpapi.GetAccount, authed("GET", "/accounts/me", nil, "alice"))
			if resp.StatusCode != http.StatusInternalServerError {
				t.Fatalf("status %d, want 500", resp.StatusCode)
			}
			if want := `{"error":{"code":"internal_error","message":"internal error"}}`; resp.Body != want {
				t.Errorf("body %s, want exactly %s", resp.Body, want)
			}
			checkJSONHeaders(t, resp)
			line := f.logLine(t)
			if line["level"] != "ERROR" || line["status"] != float64(500) || !strings.Contains(fmt.Sprint(line["error"]), "prod-accounts") {
				t.Errorf("log line %v, want level ERROR, status 500 and the cause", line)
			}
		})
	}
}

// The core's own failures keep their status, code and safe message, and say when to retry.
func TestCoreFailuresAnswerTheirStatusAndWhenToRetry(t *testing.T) {
	t.Run("storage unavailable: 503, retry in a second", func(t *testing.T) {
		f := newFixture()
		f.store.getUserErr = onboarding.StorageFailed(errors.New("ProvisionedThroughputExceededException"))
		resp := f.serve(httpapi.GetAccount, authed("GET", "/accounts/me", nil, "alice"))
		env := decodeEnvelope(t, resp)
		if resp.StatusCode != http.StatusServiceUnavailable || env.Error.Code != "storage_unavailable" || resp.Headers["Retry-After"] != "1" {
			t.Fatalf("status %d %+v Retry-After %q, want 503 storage_unavailable 1", resp.StatusCode, env, resp.Headers["Retry-After"])
		}
		if strings.Contains(resp.Body, "Throughput") {
			t.Errorf("body %s shows the cause", resp.Body)
		}
	})
	t.Run("rate limited: 429, Retry-After rounded up to whole seconds", func(t *testing.T) {
		f := newFixture()
		f.createAccount(t, "alice")
		f.store.slotRetryAt = testNow.Add(90*time.Second + 200*time.Millisecond)
		resp := f.serve(httpapi.CreateOnboardingLink, authed("POST", "/accounts/me/onboarding-link", nil, "alice"))
		env := decodeEnvelope(t, resp)
		if resp.StatusCode != http.StatusTooManyRequests || env.Error.Code != "rate_limited" || resp.Headers["Retry-After"] != "91" {
			t.Fatalf("status %d %+v Retry-After %q, want 429 rate_limited 91", resp.StatusCode, env, resp.Headers["Retry-After"])
		}
	})
	t.Run("update in progress: 409, Retry-After until the other update's lease ends", func(t *testing.T) {
		f := newFixture()
		f.createAccount(t, "alice")
		held := onboarding.Lease{ID: "other", Until: testNow.Add(7*time.Second + 100*time.Millisecond)}
		if _, taken, err := f.store.BeginPrefill(context.Background(), "alice", testNow, held); err != nil || !taken {
			t.Fatalf("BeginPrefill: %v %v", taken, err)
		}
		resp := f.serve(httpapi.UpdateAccount, authed("PATCH", "/accounts/me", []byte(`{"email":"a@example.com"}`), "alice"))
		env := decodeEnvelope(t, resp)
		if resp.StatusCode != http.StatusConflict || env.Error.Code != "update_in_progress" || resp.Headers["Retry-After"] != "8" {
			t.Fatalf("status %d %+v Retry-After %q, want 409 update_in_progress 8", resp.StatusCode, env, resp.Headers["Retry-After"])
		}
	})
	t.Run("not found: 404 without Retry-After", func(t *testing.T) {
		f := newFixture()
		resp := f.serve(httpapi.GetAccount, authed("GET", "/accounts/me", nil, "nobody"))
		env := decodeEnvelope(t, resp)
		if resp.StatusCode != http.StatusNotFound || env.Error.Code != "not_found" || resp.Headers["Retry-After"] != "" {
			t.Fatalf("status %d %+v Retry-After %q, want 404 not_found and none", resp.StatusCode, env, resp.Headers["Retry-After"])
		}
	})
}

// A JSON body is read strictly, at the size limit exactly, plain or base64-encoded as API
// Gateway sends binary bodies.
func TestCreateAccountBodies(t *testing.T) {
	const limit = 16 << 10
	padded := func(n int) []byte { // {"country":"US"} and JSON white space up to n bytes
		b := []byte(`{"country":"US"}`)
		return append(b, bytes.Repeat([]byte(" "), n-len(b))...)
	}
	long := strings.Repeat("x", 100)
	tests := []struct {
		name       string
		body       []byte
		base64     bool   // send base64-encoded, flagged so
		raw        string // send this as the body instead, flagged base64
		status     int
		param      string
		message    string // a part of the error message
		wantStripe func(t *testing.T, p onboarding.CreateAccountParams)
	}{
		{name: "empty body creates with the defaults", body: nil, status: http.StatusCreated},
		{name: "a body of exactly the limit", body: padded(limit), status: http.StatusCreated},
		{name: "one byte over the limit", body: padded(limit + 1), status: http.StatusRequestEntityTooLarge},
		{name: "base64, decoding to exactly the limit", body: padded(limit), base64: true, status: http.StatusCreated},
		{name: "base64, decoding to one byte over the limit", body: padded(limit + 1), base64: true, status: http.StatusRequestEntityTooLarge},
		{name: "base64 of a small body", body: []byte(`{"country":"GB"}`), base64: true, status: http.StatusCreated,
			wantStripe: func(t *testing.T, p onboarding.CreateAccountParams) {
				if p.Country != "GB" {
					t.Errorf("country %q, want GB", p.Country)
				}
			}},
		{name: "flagged base64 but not base64", raw: "{not base64}", status: http.StatusBadRequest, message: "not valid base64"},
		{name: "not UTF-8", body: []byte("{\"email\":\"\xff@example.com\"}"), base64: true, status: http.StatusBadRequest, message: "not valid UTF-8"},
		{name: "nested object and array", body: []byte(`{"business_profile":{"url":"https://shop.example","mcc":"5734"},"capabilities":["card_payments","transfers"]}`), status: http.StatusCreated,
			wantStripe: func(t *testing.T, p onboarding.CreateAccountParams) {
				if p.BusinessProfile.URL != "https://shop.example" || p.BusinessProfile.MCC != "5734" || strings.Join(p.Capabilities, ",") != "card_payments,transfers" {
					t.Errorf("Stripe got %+v", p)
				}
			}},
		{name: "a wrong type names its field", body: []byte(`{"country":5}`), status: http.StatusBadRequest, param: "country", message: "country has the wrong type"},
		{name: "a wrong type deep down names its path", body: []byte(`{"business_profile":{"mcc":5734}}`), status: http.StatusBadRequest, param: "business_profile.mcc", message: "wrong type"},
		{name: "an array is not an object", body: []byte(`[]`), status: http.StatusBadRequest, message: "must be a JSON object"},
		{name: "null is not an object", body: []byte(`null`), status: http.StatusBadRequest, message: "must be a JSON object"},
		{name: "two objects", body: []byte(`{}{}`), status: http.StatusBadRequest, message: "single JSON object"},
		{name: "cut off", body: []byte(`{"country":"US"`), status: http.StatusBadRequest, message: "not valid JSON"},
		{name: "cut off in a nested object", body: []byte(`{"business_profile":{"url":`), status: http.StatusBadRequest, message: "not valid JSON"},
		{name: "cut off in an array", body: []byte(`{"capabilities":["transfers"`), status: http.StatusBadRequest, message: "not valid JSON"},
		{name: "a key that is not a string", body: []byte(`{1:2}`), status: http.StatusBadRequest, message: "not valid JSON"},
		{name: "a field given twice", body: []byte(`{"country":"US","country":"FR"}`), status: http.StatusBadRequest, param: "country", message: "given twice"},
		{name: "a field in another case", body: []byte(`{"Country":"FR"}`), status: http.StatusBadRequest, param: "Country", message: "unknown field"},
		{name: "an unknown nested field names its path", body: []byte(`{"business_profile":{"x":1}}`), status: http.StatusBadRequest, param: "business_profile.x"},
		{name: "a long unknown field is named in 64 bytes", body: []byte(`{"` + long + `":1}`), status: http.StatusBadRequest, param: long[:64]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture()
			req := authed("POST", "/accounts", tt.body, "alice")
			switch {
			case tt.raw != "":
				req.Body, req.IsBase64Encoded = tt.raw, true
			case tt.base64:
				req.Body, req.IsBase64Encoded = base64.StdEncoding.EncodeToString(tt.body), true
			}
			resp := f.serve(httpapi.CreateAccount, req)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, resp.Body, tt.status)
			}
			if tt.status >= 400 {
				env := decodeEnvelope(t, resp)
				if env.Error.Param != tt.param || !strings.Contains(env.Error.Message, tt.message) {
					t.Errorf("error %+v, want param %q and a message with %q", env.Error, tt.param, tt.message)
				}
				if len(f.connect.created) != 0 {
					t.Error("Stripe was called for a refused body")
				}
				return
			}
			if len(f.connect.created) != 1 {
				t.Fatalf("%d Stripe creates, want 1", len(f.connect.created))
			}
			if tt.wantStripe != nil {
				tt.wantStripe(t, f.connect.created[0])
			}
		})
	}
}

// The caller is the JWT's sub, up to 256 bytes; without one, nothing happens.
func TestTheCallerIsTheTokensSubject(t *testing.T) {
	tests := []struct {
		name   string
		req    httpapi.Request
		status int
	}{
		{name: "a subject of 256 bytes", req: authed("POST", "/accounts", nil, strings.Repeat("u", 256)), status: http.StatusCreated},
		{name: "a subject of 257 bytes", req: authed("POST", "/accounts", nil, strings.Repeat("u", 257)), status: http.StatusUnauthorized},
		{name: "an empty subject", req: authed("POST", "/accounts", nil, ""), status: http.StatusUnauthorized},
		{name: "no authorizer", req: event("POST", "/accounts", nil, nil), status: http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture()
			resp := f.serve(httpapi.CreateAccount, tt.req)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, resp.Body, tt.status)
			}
			if tt.status == http.StatusUnauthorized && decodeEnvelope(t, resp).Error.Code != "unauthorized" {
				t.Errorf("body %s, want unauthorized", resp.Body)
			}
		})
	}
}

// GET /accounts/me?refresh=true re-reads Stripe; false or nothing answers from the store.
func TestRefreshTrueRereadsTheAccountFromStripe(t *testing.T) {
	tests := []struct {
		query     string
		status    int
		submitted bool // fakeConnect's GetAccount says details are submitted
	}{
		{query: "", status: http.StatusOK, submitted: false},
		{query: "false", status: http.StatusOK, submitted: false},
		{query: "true", status: http.StatusOK, submitted: true},
		{query: "yes", status: http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run("refresh="+tt.query, func(t *testing.T) {
			f := newFixture()
			f.createAccount(t, "alice")
			req := authed("GET", "/accounts/me", nil, "alice")
			req.QueryStringParameters = map[string]string{}
			if tt.query != "" {
				req.QueryStringParameters["refresh"] = tt.query
			}
			resp := f.serve(httpapi.GetAccount, req)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, resp.Body, tt.status)
			}
			if tt.status != http.StatusOK {
				if env := decodeEnvelope(t, resp); env.Error.Param != "refresh" {
					t.Errorf("error %+v, want param refresh", env.Error)
				}
				return
			}
			var acct onboarding.Account
			if err := json.Unmarshal([]byte(resp.Body), &acct); err != nil {
				t.Fatal(err)
			}
			if acct.DetailsSubmitted != tt.submitted {
				t.Errorf("details_submitted %v, want %v", acct.DetailsSubmitted, tt.submitted)
			}
			if line := f.logLine(t); line["account_id"] != acct.ID {
				t.Errorf("log line %v does not name the account %s", line, acct.ID)
			}
		})
	}
}

// The refresh route always redirects; its log line says why a browser got no new link, and
// names an error only when something failed that a user could not have caused.
func TestRefreshLogsWhatWentWrongOnlyWhenItWasNotTheUser(t *testing.T) {
	tests := []struct {
		name      string
		token     func(t *testing.T, f *fixture) string
		linkErr   error // the Stripe link request's answer, when redeeming
		location  string
		outcome   string // the log line's outcome, "" for none
		wantError bool   // the log line has an error
		level     string // the log line's level, INFO unless set
	}{
		{
			name:     "a good token: a fresh Stripe link, nothing to say",
			token:    func(t *testing.T, f *fixture) string { return f.connect.refreshToken(t) },
			location: fakeStripeLink,
		},
		{
			name:     "a malformed token: link expired, the user's doing",
			token:    func(*testing.T, *fixture) string { return "not-a-token" },
			location: fuzzPolicy.OnboardingURL + "?error=link_expired", outcome: "link_expired",
		},
		{
			name:     "a used token: link expired",
			token:    func(t *testing.T, f *fixture) string { tok := f.connect.refreshToken(t); f.redeem(t, tok); return tok },
			location: fuzzPolicy.OnboardingURL + "?error=link_expired", outcome: "link_expired",
		},
		{
			name:     "Stripe fails: stripe_unavailable, and the cause is logged",
			token:    func(t *testing.T, f *fixture) string { return f.connect.refreshToken(t) },
			linkErr:  onboarding.ErrStripeUnavailable.WithCause(errors.New("stripe: status 500")),
			location: fuzzPolicy.OnboardingURL + "?error=stripe_unavailable", outcome: "stripe_unavailable", wantError: true,
		},
		{
			name:  "Stripe refuses the platform's key: stripe_unavailable, an ERROR for the operator",
			token: func(t *testing.T, f *fixture) string { return f.connect.refreshToken(t) },
			linkErr: onboarding.StripeKeyRefused(errors.New(
				"stripe refused the platform's API key: check STRIPE_SECRET_KEY: stripe: status 401")),
			location: fuzzPolicy.OnboardingURL + "?error=stripe_unavailable", outcome: "stripe_unavailable", wantError: true,
			level: "ERROR",
		},
		{
			name: "the user's link limit is spent: rate_limited, the user's doing",
			token: func(t *testing.T, f *fixture) string {
				f.store.slotRetryAt = testNow.Add(time.Minute)
				return f.connect.refreshToken(t)
			},
			location: fuzzPolicy.OnboardingURL + "?error=rate_limited", outcome: "rate_limited",
		},
		{
			name: "the account was disconnected: account_unavailable, nobody failed",
			token: func(t *testing.T, f *fixture) string {
				ev := onboarding.AccountEvent{ID: "evt_gone", Type: onboarding.EventAccountDeauthorized, AccountID: "acct_fake000001", Created: testNow}
				if _, err := f.svc.HandleEvent(context.Background(), ev); err != nil {
					t.Fatal(err)
				}
				return f.connect.refreshToken(t)
			},
			location: fuzzPolicy.OnboardingURL + "?error=account_unavailable", outcome: "account_unavailable",
		},
		{
			name: "the store fails with a raw error: logged",
			token: func(t *testing.T, f *fixture) string {
				f.store.claimErr = errors.New("GetItem: timeout")
				return f.connect.refreshToken(t)
			},
			location: fuzzPolicy.OnboardingURL + "?error=link_expired", wantError: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture()
			f.createAccount(t, "alice")
			if _, err := f.svc.CreateOnboardingLink(context.Background(), onboarding.Caller{UserID: "alice"}); err != nil {
				t.Fatal(err)
			}
			token := tt.token(t, f)
			f.connect.linkErr = tt.linkErr
			f.logs.Reset()
			resp := f.serve(httpapi.RefreshLink, refreshRequest(token))
			if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Headers["Location"], tt.location) {
				t.Fatalf("status %d to %q, want 302 to %s", resp.StatusCode, resp.Headers["Location"], tt.location)
			}
			line := f.logLine(t)
			if got, _ := line["outcome"].(string); got != tt.outcome {
				t.Errorf("outcome %q, want %q (log line %v)", got, tt.outcome, line)
			}
			if _, has := line["error"]; has != tt.wantError {
				t.Errorf("log line %v: has an error %v, want %v", line, has, tt.wantError)
			}
			if want := cmp.Or(tt.level, "INFO"); line["level"] != want {
				t.Errorf("log line %v: level %v, want %s", line, line["level"], want)
			}
			if strings.Contains(f.logs.String(), token) {
				t.Error("the log line shows the token")
			}
		})
	}
}

func refreshRequest(token string) httpapi.Request {
	req := event("GET", "/onboarding/refresh", nil, nil)
	req.QueryStringParameters = map[string]string{"token": token}
	return req
}

// redeem spends token as a browser would.
func (f *fixture) redeem(t *testing.T, token string) {
	t.Helper()
	if loc, err := f.svc.RefreshOnboardingLink(context.Background(), token); err != nil {
		t.Fatalf("redeem: %v (%s)", err, loc)
	}
}

// One log line per request: route, status, request id, latency in milliseconds, the account,
// and for a failure its code and param, at ERROR only for a 5xx.
func TestEachRequestHasOneLogLine(t *testing.T) {
	t.Run("a refused body: INFO, with code and param", func(t *testing.T) {
		f := newFixture()
		resp := f.serve(httpapi.CreateAccount, authed("POST", "/accounts", []byte(`{"country":"ZZ"}`), "alice"))
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("status %d", resp.StatusCode)
		}
		line := f.logLine(t)
		if line["level"] != "INFO" || line["route"] != "POST /accounts" || line["status"] != float64(400) ||
			line["request_id"] != "fuzz" || line["error"] != "validation_error param=country" {
			t.Errorf("log line %v", line)
		}
	})
	t.Run("not found: the code alone", func(t *testing.T) {
		f := newFixture()
		f.serve(httpapi.GetAccount, authed("GET", "/accounts/me", nil, "nobody"))
		if line := f.logLine(t); line["level"] != "INFO" || line["error"] != "not_found" {
			t.Errorf("log line %v, want INFO and error not_found", line)
		}
	})
	t.Run("a core error with a cause: the cause's codes follow", func(t *testing.T) {
		f := newFixture()
		f.store.getUserErr = onboarding.StorageFailed(errors.New("ThrottlingException"))
		f.serve(httpapi.GetAccount, authed("GET", "/accounts/me", nil, "alice"))
		if line := f.logLine(t); line["level"] != "ERROR" || line["error"] != "storage_unavailable: ThrottlingException" {
			t.Errorf("log line %v, want ERROR and storage_unavailable: ThrottlingException", line)
		}
	})
	t.Run("a long cause is cut at 500 bytes", func(t *testing.T) {
		f := newFixture()
		f.store.getUserErr = errors.New(strings.Repeat("e", 600))
		f.serve(httpapi.GetAccount, authed("GET", "/accounts/me", nil, "alice"))
		if got := fmt.Sprint(f.logLine(t)["error"]); got != strings.Repeat("e", 500) {
			t.Errorf("error of %d bytes, want the first 500", len(got))
		}
	})
	t.Run("success: the account and the latency in milliseconds", func(t *testing.T) {
		f := newFixture()
		f.createAccount(t, "alice")
		f.store.getUserDelay = 20 * time.Millisecond
		resp := f.serve(httpapi.GetAccount, authed("GET", "/accounts/me", nil, "alice"))
		line := f.logLine(t)
		if resp.StatusCode != http.StatusOK || line["level"] != "INFO" || line["account_id"] != "acct_fake000001" {
			t.Fatalf("status %d, log line %v", resp.StatusCode, line)
		}
		if _, has := line["error"]; has {
			t.Errorf("log line %v has an error", line)
		}
		// At least the store's 20 ms; far below a second even on a loaded machine, unless the
		// unit is wrong (20 ms in microseconds is 20,000).
		if ms, _ := line["latency_ms"].(float64); ms < 20 || ms >= 5000 {
			t.Errorf("latency_ms %v, want the 20 ms or so the request took", line["latency_ms"])
		}
		if n := strings.Count(strings.TrimSpace(f.logs.String()), "\n") + 1; n != 1 {
			t.Errorf("%d log lines, want 1", n)
		}
	})
}

// apiVersionVerifier verifies anything, as an event rendered in another API version.
type apiVersionVerifier struct{}

func (apiVersionVerifier) Verify([]byte, string) (onboarding.AccountEvent, error) {
	return onboarding.AccountEvent{ID: "evt_1", Type: "payout.paid", APIVersion: "2099-01-01", APIVersionMismatch: true}, nil
}

// A webhook in another API version than ours is acknowledged, and the log line says which.
func TestAWebhookInAnotherAPIVersionIsAcknowledgedAndLogged(t *testing.T) {
	f := newFixture()
	logger := slog.New(slog.NewJSONHandler(&f.logs, nil))
	resp := httpapi.Webhook.Handler(f.svc, apiVersionVerifier{}, logger)(context.Background(), event("POST", "/webhooks/stripe", []byte(`{}`), nil))
	if resp.StatusCode != http.StatusOK || resp.Body != `{"received":true}` {
		t.Fatalf("status %d %s, want 200 received", resp.StatusCode, resp.Body)
	}
	line := f.logLine(t)
	if line["api_version_mismatch"] != "2099-01-01" || line["event_id"] != "evt_1" || line["outcome"] != "ignored_type" {
		t.Errorf("log line %v", line)
	}
	resp = f.serve(httpapi.Webhook, event("POST", "/webhooks/stripe", []byte(`{"id":"evt_2","type":"payout.paid"}`), nil))
	if _, has := f.logLine(t)["api_version_mismatch"]; has || resp.StatusCode != http.StatusBadRequest {
		t.Errorf("an unsigned event: status %d, log line %v", resp.StatusCode, f.logLine(t))
	}
}

// The template and Lambda tests start from a function's folder: each names its one route.
func TestAFunctionFolderNamesItsRoute(t *testing.T) {
	for _, r := range httpapi.Routes {
		got, ok := httpapi.FunctionRoute(r.Function)
		if !ok || got.Key() != r.Key() {
			t.Errorf("FunctionRoute(%q) = %q, %v; want %q", r.Function, got.Key(), ok, r.Key())
		}
	}
	if got, ok := httpapi.FunctionRoute("nosuchfunction"); ok {
		t.Errorf("FunctionRoute(nosuchfunction) = %q, want none", got.Key())
	}
}

// TestTokenEmailPrefillsOnlyWhenVerified: API Gateway hands every claim over
// as a string, so email_verified true (a JSON boolean, or the string some
// issuers send) arrives as "true"; anything else leaves Stripe's email to
// the seller.
func TestTokenEmailPrefillsOnlyWhenVerified(t *testing.T) {
	for verified, want := range map[string]string{
		"true":  "seller@example.com",
		"false": "",
		"":      "",
		"1":     "",
		"yes":   "",
	} {
		f := newFixture()
		claims := map[string]string{"sub": "u1", "email": "seller@example.com"}
		if verified != "" {
			claims["email_verified"] = verified
		}
		resp := f.serve(httpapi.CreateAccount, event("POST", "/accounts", []byte(`{}`), claims))
		if resp.StatusCode != http.StatusCreated || len(f.connect.created) != 1 {
			t.Fatalf("email_verified %q: %d %s", verified, resp.StatusCode, resp.Body)
		}
		if got := f.connect.created[0].Email; got != want {
			t.Errorf("email_verified %q: Stripe was sent email %q, want %q", verified, got, want)
		}
	}
}
