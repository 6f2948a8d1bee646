// Package testenv gives tests the real servers that `make test` starts
// (moto_server for DynamoDB, stripe-mock for Stripe), a recording proxy in
// front of stripe-mock, and fresh tables. Outside CI a test whose server is
// missing skips with the command that provides it; in CI (CI=true) it fails,
// so an integration test can never pass by not running.
package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/truora/minidyn/aws-v2/client"

	"github.com/connectexpress/onboarding/shared/dynamostore"
)

// require returns the value of env var name or stops the test.
func require(t testing.TB, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v != "" {
		return v
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is not set: in CI every integration test must run (make test starts the servers)", name)
	}
	t.Skipf("%s is not set: run `make test` to start moto_server and stripe-mock", name)
	return ""
}

// MotoClient returns a DynamoDB client for the moto_server of `make test`.
func MotoClient(t testing.TB) *dynamodb.Client {
	return DynamoDBAt(require(t, "TEST_DYNAMODB_ENDPOINT"))
}

// motoCredentials are what moto accepts: any.
var motoCredentials = credentials.NewStaticCredentialsProvider("test", "test", "")

// DynamoDBAt returns a DynamoDB client for a local endpoint.
func DynamoDBAt(endpoint string) *dynamodb.Client {
	return dynamodb.New(dynamodb.Options{Region: "us-east-1", BaseEndpoint: aws.String(endpoint), Credentials: motoCredentials})
}

// SecretsManagerAt returns a Secrets Manager client for a local endpoint.
func SecretsManagerAt(endpoint string) *secretsmanager.Client {
	return secretsmanager.New(secretsmanager.Options{Region: "us-east-1", BaseEndpoint: aws.String(endpoint), Credentials: motoCredentials})
}

// CreateSecret stores doc in a new, uniquely named secret at endpoint and
// returns its ARN.
func CreateSecret(t testing.TB, endpoint, doc string) string {
	t.Helper()
	out, err := SecretsManagerAt(endpoint).CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{
		Name: aws.String("test-" + RandomID(6)), SecretString: aws.String(doc),
	})
	if err != nil {
		t.Fatalf("create secret: %v", err)
	}
	return aws.ToString(out.ARN)
}

// Engine is a DynamoDB implementation to run the store's behaviour on.
type Engine struct {
	Name   string
	Client func(t testing.TB) dynamostore.Client
}

// Engines are the engines the store must behave the same on: moto, the
// real-protocol server, and minidyn, the dev server's in-process default.
var Engines = []Engine{
	{Name: "moto", Client: func(t testing.TB) dynamostore.Client { return MotoClient(t) }},
	{Name: "minidyn", Client: func(testing.TB) dynamostore.Client { return client.NewClient() }},
}

// NewTable creates a uniquely named table on db and returns its name.
func NewTable(t testing.TB, db dynamostore.Client) string {
	t.Helper()
	name := "test-" + RandomID(6)
	admin, ok := db.(dynamostore.TableAdmin)
	if !ok {
		t.Fatalf("%T cannot create tables", db)
	}
	if err := dynamostore.CreateTable(context.Background(), admin, name); err != nil {
		t.Fatalf("create table: %v", err)
	}
	return name
}

// StripeAPIBase returns stripe-mock's base URL.
func StripeAPIBase(t testing.TB) string { return require(t, "TEST_STRIPE_API_BASE") }

// RandomID returns n random bytes as hex.
func RandomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// StripeRequest is one request that went through the Recorder.
type StripeRequest struct {
	Method, Path   string
	Form           url.Values
	IdempotencyKey string
	APIKey         string // the bearer key the request carried
	Status         int
	Replayed       bool // answered from the idempotency emulation, not Stripe
}

// Recorder is a reverse proxy in front of stripe-mock that records every
// request (stripe-mock validates them; the recorder lets tests assert them)
// and can answer in stripe-mock's place to inject faults.
type Recorder struct {
	URL string
	mu  sync.Mutex
	log []StripeRequest
	// Intercept, when set, may answer a request itself (return true).
	intercept func(w http.ResponseWriter, r *http.Request) bool
	// idempotency, when on, replays responses by Idempotency-Key as Stripe
	// does, since stripe-mock does not.
	proxy       *httputil.ReverseProxy
	idempotency bool
	saved       map[string]savedResponse
	inFlight    map[string]bool
}

type savedResponse struct {
	status int
	header http.Header
	body   []byte
}

// NewRecorder starts a Recorder in front of stripe-mock.
func NewRecorder(t testing.TB) *Recorder { return NewRecorderAt(t, StripeAPIBase(t)) }

// NewRecorderAt starts a Recorder in front of the Stripe API at base (the
// local simulator, say).
func NewRecorderAt(t testing.TB, base string) *Recorder {
	target, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	rec := &Recorder{}
	proxy := httputil.NewSingleHostReverseProxy(target)
	rec.proxy = proxy
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		form, _ := url.ParseQuery(string(body))
		if r.Method == http.MethodGet {
			form = r.URL.Query()
		}
		sw := &statusWriter{ResponseWriter: w}
		rec.mu.Lock()
		intercept := rec.intercept
		rec.mu.Unlock()
		if intercept == nil || !intercept(sw, r) {
			rec.forward(proxy, sw, r)
		}
		rec.mu.Lock()
		rec.log = append(rec.log, StripeRequest{
			Method: r.Method, Path: r.URL.Path, Form: form,
			IdempotencyKey: r.Header.Get("Idempotency-Key"), Status: sw.status,
			APIKey:   strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "),
			Replayed: sw.Header().Get("Idempotent-Replayed") == "true",
		})
		rec.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	rec.URL = srv.URL
	return rec
}

// EmulateIdempotency makes the Recorder replay POST responses by
// Idempotency-Key like Stripe: the first response that came from Stripe is
// saved and returned again; a key whose request is still running gets 409.
func (r *Recorder) EmulateIdempotency() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.idempotency, r.saved, r.inFlight = true, map[string]savedResponse{}, map[string]bool{}
}

// forward sends req to stripe-mock, through the idempotency emulation when
// it is on. The upstream call is detached from the client: like Stripe, it
// completes even when our client gave up waiting.
func (r *Recorder) forward(proxy *httputil.ReverseProxy, w http.ResponseWriter, req *http.Request) {
	key := req.Header.Get("Idempotency-Key")
	r.mu.Lock()
	on := r.idempotency && key != "" && req.Method == http.MethodPost
	if on {
		if saved, ok := r.saved[key]; ok {
			r.mu.Unlock()
			for k, v := range saved.header {
				w.Header()[k] = v
			}
			w.Header().Set("Idempotent-Replayed", "true")
			w.WriteHeader(saved.status)
			_, _ = w.Write(saved.body)
			return
		}
		if r.inFlight[key] {
			r.mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusConflict)
			_, _ = w.Write([]byte(`{"error":{"type":"invalid_request_error","code":"idempotency_key_in_use","message":"There is currently another in-progress request using this Idempotent Key."}}`))
			return
		}
		r.inFlight[key] = true
	}
	r.mu.Unlock()
	capture := httptest.NewRecorder()
	proxy.ServeHTTP(capture, req.WithContext(context.WithoutCancel(req.Context())))
	if on {
		r.mu.Lock()
		delete(r.inFlight, key)
		r.saved[key] = savedResponse{status: capture.Code, header: capture.Header().Clone(), body: capture.Body.Bytes()}
		r.mu.Unlock()
	}
	for k, v := range capture.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(capture.Code)
	_, _ = w.Write(capture.Body.Bytes())
}

// Forward lets an intercept pass a request on to Stripe (through the
// idempotency emulation) and then do something with the answer.
func (r *Recorder) Forward(w http.ResponseWriter, req *http.Request) {
	r.forward(r.proxy, w, req)
}

// SetIntercept installs (or with nil removes) a fault injector.
func (r *Recorder) SetIntercept(f func(w http.ResponseWriter, r *http.Request) bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.intercept = f
}

// Requests returns the recorded requests whose "METHOD /path" starts with prefix.
func (r *Recorder) Requests(prefix string) []StripeRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []StripeRequest
	for _, req := range r.log {
		if strings.HasPrefix(req.Method+" "+req.Path, prefix) {
			out = append(out, req)
		}
	}
	return out
}

// Succeeded counts recorded requests matching prefix that got a 2xx.
func (r *Recorder) Succeeded(prefix string) int {
	n := 0
	for _, req := range r.Requests(prefix) {
		if req.Status >= 200 && req.Status < 300 {
			n++
		}
	}
	return n
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

// Unwrap lets http.ResponseController reach Hijack and Flush.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write records an implicit 200. A hijacked connection records status 0.
func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// AccountsCreatedPerUser counts, per metadata[platform_user_id], the account
// creations Stripe really performed: 2xx answers that were not replays.
func (r *Recorder) AccountsCreatedPerUser() map[string]int {
	out := map[string]int{}
	for _, req := range r.Requests("POST /v1/accounts") {
		if req.Path == "/v1/accounts" && req.Status >= 200 && req.Status < 300 && !req.Replayed {
			out[req.Form.Get("metadata[platform_user_id]")]++
		}
	}
	return out
}

// MotoEndpoint returns moto_server's URL (DynamoDB, Secrets Manager, ...).
func MotoEndpoint(t testing.TB) string { return require(t, "TEST_DYNAMODB_ENDPOINT") }
