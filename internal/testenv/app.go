package testenv

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connectexpress/onboarding/internal/devserver"
	"github.com/connectexpress/onboarding/shared/app"
	"github.com/connectexpress/onboarding/shared/config"
	"github.com/connectexpress/onboarding/shared/dynamostore"
)

// WebhookSecret and JWTSecret are the test stack's secrets.
const (
	WebhookSecret = "whsec_test_current_0123456789abcdefghijklmnopqrstuv"
	JWTSecret     = "test-jwt-secret"
)

// Authorizer is the test stack's emulated JWT authorizer, with the dev
// server's default issuer and audience.
var Authorizer = devserver.Authorizer{Secret: []byte(JWTSecret), Issuer: devserver.DefaultIssuer, Audiences: []string{devserver.DefaultAudience}}

// Stack is the whole service wired as the dev server runs it, on a fresh
// table, with Stripe behind a Recorder, and its logs captured.
type Stack struct {
	App    *app.App
	Stripe *Recorder
	DB     dynamostore.Client
	Table  string
	Server *httptest.Server
	Logs   *LogBuffer
}

// StackOptions adjust NewStack.
type StackOptions struct {
	Env      map[string]string  // settings over the test defaults
	DynamoDB dynamostore.Client // default: moto
	// DynamoDBEndpoint, instead of DynamoDB, lets the service build its own
	// client, as a Lambda does, against this endpoint.
	DynamoDBEndpoint string
	// Table, when set, is an existing table (another Stack's, on the same
	// DynamoDB) instead of a fresh one: a second service over the same state.
	Table string
}

// NewStack builds a Stack on moto and stripe-mock.
func NewStack(t testing.TB, opts StackOptions) *Stack {
	t.Helper()
	rec := NewRecorder(t)
	db := opts.DynamoDB
	switch {
	case opts.DynamoDBEndpoint != "":
		db = DynamoDBAt(opts.DynamoDBEndpoint)
	case db == nil:
		db = MotoClient(t)
	}
	table := opts.Table
	if table == "" {
		table = NewTable(t, db)
	}
	env := map[string]string{
		"STRIPE_SECRET_KEY":     "sk_test_stack",
		"STRIPE_WEBHOOK_SECRET": WebhookSecret,
		"STRIPE_API_BASE":       rec.URL,
		"STRIPE_MAX_RETRIES":    "0",
		"TABLE_NAME":            table,
		"FRONTEND_URL":          "https://frontend.example",
		"PUBLIC_API_URL":        "https://api.example",
	}
	if opts.DynamoDBEndpoint != "" {
		env["DYNAMODB_ENDPOINT"] = opts.DynamoDBEndpoint
	}
	for k, v := range opts.Env {
		env[k] = v
	}
	logs := &LogBuffer{}
	allLogsMu.Lock()
	allLogs = append(allLogs, logs)
	allLogsMu.Unlock()
	a, err := app.New(context.Background(), app.Options{
		LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		Logger:    slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		DynamoDB:  injected(opts, db),
		Needs:     config.Needs{StripeKey: true, WebhookSecrets: true},
	})
	if err != nil {
		t.Fatalf("app: %v", err)
	}
	srv := httptest.NewServer(devserver.New(a, Authorizer))
	t.Cleanup(srv.Close)
	return &Stack{App: a, Stripe: rec, DB: db, Table: table, Server: srv, Logs: logs}
}

// Token mints a bearer token for sub as the dev authorizer accepts it.
func (s *Stack) Token(sub, email string) string {
	return Authorizer.Mint(sub, email, time.Now(), time.Hour)
}

// Do sends a request to the stack; token may be empty.
func (s *Stack) Do(t testing.TB, method, path, token, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, s.Server.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

var noRedirect = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Timeout:       30 * time.Second,
}

// LogBuffer collects log lines, safe for concurrent writers.
type LogBuffer struct {
	mu    sync.Mutex
	lines []string
}

func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.lines = append(b.lines, strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// Lines returns what was logged so far.
func (b *LogBuffer) Lines() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.lines...)
}

var (
	allLogsMu sync.Mutex
	allLogs   []*LogBuffer
)

// AllLogLines returns every line every Stack of this test binary logged.
func AllLogLines() []string {
	allLogsMu.Lock()
	defer allLogsMu.Unlock()
	var out []string
	for _, b := range allLogs {
		out = append(out, b.Lines()...)
	}
	return out
}

// injected is the client the service gets: none when it should build its own.
func injected(opts StackOptions, db dynamostore.Client) dynamostore.Client {
	if opts.DynamoDBEndpoint != "" {
		return nil
	}
	return db
}
