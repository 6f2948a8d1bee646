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
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/connectexpress/onboarding/internal/devserver/memdynamo"
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
// real-protocol server, and minidyn as the dev server runs it (memdynamo).
var Engines = []Engine{
	{Name: "moto", Client: func(t testing.TB) dynamostore.Client { return MotoClient(t) }},
	{Name: "minidyn", Client: func(testing.TB) dynamostore.Client { return memdynamo.New() }},
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
	// Seq numbers requests in the order they arrived (the log itself is in
	// the order they were answered).
	Seq            int
	Method, Path   string
	Form           url.Values
	Body           string // the request body exactly as sent
	IdempotencyKey string
	APIKey         string // the bearer key the request carried
	Status         int
	Replayed       bool   // answered from the idempotency emulation, not Stripe
	Response       []byte // the answer's body as the client got it
}

// Recorder is a reverse proxy in front of stripe-mock that records every
// request (stripe-mock validates them; the recorder lets tests assert them)
// and can answer in stripe-mock's place to inject faults. stripe-mock keeps
// no state, so the Recorder can also play the parts of Stripe that do:
// idempotent replays and the list of accounts created.
type Recorder struct {
	URL string
	mu  sync.Mutex
	seq int
	log []StripeRequest
	// Intercept, when set, may answer a request itself (return true).
	intercept func(w http.ResponseWriter, r *http.Request) bool
	// idempotency, when on, replays responses by Idempotency-Key as Stripe
	// does, since stripe-mock does not.
	proxy       *httputil.ReverseProxy
	idempotency bool
	saved       map[string]savedResponse
	inFlight    map[string]bool
	// created are the accounts stripe-mock really created through us,
	// whatever answer the client got; listAccounts answers GET /v1/accounts
	// from them.
	created      []createdAccount
	listAccounts bool
}

type savedResponse struct {
	status  int
	header  http.Header
	body    []byte
	request []byte // the parameters the key was first used with
}

type createdAccount struct {
	id      string
	created int64
	object  map[string]any
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
		rec.mu.Lock()
		rec.seq++
		seq := rec.seq
		intercept, list := rec.intercept, rec.listAccounts
		rec.mu.Unlock()
		sw := &statusWriter{ResponseWriter: w}
		switch {
		case intercept != nil && intercept(sw, r):
		case list && r.Method == http.MethodGet && r.URL.Path == "/v1/accounts":
			rec.answerList(sw, r.URL.Query())
		default:
			rec.forward(proxy, sw, r)
		}
		rec.mu.Lock()
		rec.log = append(rec.log, StripeRequest{
			Seq: seq, Method: r.Method, Path: r.URL.Path, Form: form, Body: string(body),
			IdempotencyKey: r.Header.Get("Idempotency-Key"), Status: sw.status,
			APIKey:   strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "),
			Replayed: sw.Header().Get("Idempotent-Replayed") == "true", Response: sw.body.Bytes(),
		})
		rec.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	rec.URL = srv.URL
	return rec
}

// EmulateIdempotency makes the Recorder replay POST responses by
// Idempotency-Key like Stripe: the first response that came from Stripe is
// saved and returned again; a key whose request is still running gets 409;
// a key sent again with other parameters (other bytes) gets 400
// idempotency_error.
func (r *Recorder) EmulateIdempotency() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.idempotency, r.saved, r.inFlight = true, map[string]savedResponse{}, map[string]bool{}
}

// EmulateAccountList makes the Recorder answer GET /v1/accounts as Stripe
// would, from the accounts created through it (newest first, with
// created[gte], limit and starting_after), since stripe-mock lists a fixed
// fixture.
func (r *Recorder) EmulateAccountList() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.listAccounts = true
}

// forward sends req to stripe-mock, through the idempotency emulation when
// it is on. The upstream call is detached from the client: like Stripe, it
// completes even when our client gave up waiting.
func (r *Recorder) forward(proxy *httputil.ReverseProxy, w http.ResponseWriter, req *http.Request) {
	key := req.Header.Get("Idempotency-Key")
	body, _ := io.ReadAll(req.Body)
	req.Body = io.NopCloser(bytes.NewReader(body))
	r.mu.Lock()
	on := r.idempotency && key != "" && req.Method == http.MethodPost
	if on {
		if saved, ok := r.saved[key]; ok {
			r.mu.Unlock()
			if !bytes.Equal(saved.request, body) {
				writeJSON(w, http.StatusBadRequest, `{"error":{"type":"idempotency_error","message":"Keys for idempotent requests can only be used with the same parameters they were first used with."}}`)
				return
			}
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
			writeJSON(w, http.StatusConflict, `{"error":{"type":"invalid_request_error","code":"idempotency_key_in_use","message":"There is currently another in-progress request using this Idempotent Key."}}`)
			return
		}
		r.inFlight[key] = true
	}
	r.mu.Unlock()
	capture := r.upstream(proxy, req, body)
	if on {
		r.mu.Lock()
		delete(r.inFlight, key)
		r.saved[key] = savedResponse{status: capture.Code, header: capture.Header().Clone(), body: capture.Body.Bytes(), request: body}
		r.mu.Unlock()
	}
	for k, v := range capture.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(capture.Code)
	_, _ = w.Write(capture.Body.Bytes())
}

// upstream asks stripe-mock, and remembers the accounts it created with the
// metadata they were created with (stripe-mock echoes none).
func (r *Recorder) upstream(proxy *httputil.ReverseProxy, req *http.Request, body []byte) *httptest.ResponseRecorder {
	capture := httptest.NewRecorder()
	proxy.ServeHTTP(capture, req.WithContext(context.WithoutCancel(req.Context())))
	if req.Method != http.MethodPost || req.URL.Path != "/v1/accounts" || capture.Code != http.StatusOK {
		return capture
	}
	var obj map[string]any
	if json.Unmarshal(capture.Body.Bytes(), &obj) != nil {
		return capture
	}
	form, _ := url.ParseQuery(string(body))
	metadata := map[string]string{}
	for k, v := range form {
		if strings.HasPrefix(k, "metadata[") && strings.HasSuffix(k, "]") {
			metadata[strings.TrimSuffix(strings.TrimPrefix(k, "metadata["), "]")] = v[0]
		}
	}
	id, _ := obj["id"].(string)
	r.mu.Lock()
	created := time.Now().Unix()
	obj["metadata"], obj["created"] = metadata, created
	r.created = append(r.created, createdAccount{id: id, created: created, object: obj})
	r.mu.Unlock()
	return capture
}

// answerList answers GET /v1/accounts from the accounts created so far.
func (r *Recorder) answerList(w http.ResponseWriter, q url.Values) {
	gte, _ := strconv.ParseInt(q.Get("created[gte]"), 10, 64)
	limit, err := strconv.Atoi(q.Get("limit"))
	if err != nil || limit < 1 || limit > 100 {
		limit = 10
	}
	after := q.Get("starting_after")
	r.mu.Lock()
	var page []map[string]any
	more, skipping := false, after != ""
	for i := len(r.created) - 1; i >= 0; i-- { // newest first
		a := r.created[i]
		if skipping {
			skipping = a.id != after
			continue
		}
		if a.created < gte {
			continue
		}
		if len(page) == limit {
			more = true
			break
		}
		page = append(page, a.object)
	}
	r.mu.Unlock()
	if page == nil {
		page = []map[string]any{}
	}
	b, _ := json.Marshal(map[string]any{"object": "list", "url": "/v1/accounts", "has_more": more, "data": page})
	writeJSON(w, http.StatusOK, string(b))
}

// Forward lets an intercept pass a request on to Stripe (through the
// idempotency emulation) and then do something with the answer.
func (r *Recorder) Forward(w http.ResponseWriter, req *http.Request) {
	r.forward(r.proxy, w, req)
}

// FailSaved answers req with status and body and, as Stripe does for a
// failure once it began executing a request (a 500), saves that answer
// under the request's Idempotency-Key: the same key then replays it. With
// processed, stripe-mock creates what was asked first, so the failure hides
// a success (Stripe made the account, its answer was an error).
func (r *Recorder) FailSaved(w http.ResponseWriter, req *http.Request, status int, body string, processed bool) {
	reqBody, _ := io.ReadAll(req.Body)
	req.Body = io.NopCloser(bytes.NewReader(reqBody))
	if processed {
		r.upstream(r.proxy, req, reqBody)
	}
	if key := req.Header.Get("Idempotency-Key"); key != "" {
		r.mu.Lock()
		if r.saved != nil {
			if _, ok := r.saved[key]; !ok {
				r.saved[key] = savedResponse{status: status, header: http.Header{"Content-Type": {"application/json"}}, body: []byte(body), request: reqBody}
			}
		}
		r.mu.Unlock()
	}
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// SetIntercept installs (or with nil removes) a fault injector.
func (r *Recorder) SetIntercept(f func(w http.ResponseWriter, r *http.Request) bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.intercept = f
}

// Requests returns the recorded requests whose "METHOD /path" starts with
// prefix, in the order they were answered.
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
	body   bytes.Buffer
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
	w.body.Write(b)
	return w.ResponseWriter.Write(b)
}

// CreatedAccount is an account stripe-mock created through the Recorder.
type CreatedAccount struct {
	ID       string
	Metadata map[string]string
}

// CreatedAccounts returns the accounts created through the Recorder, oldest
// first, whatever answer the client got.
func (r *Recorder) CreatedAccounts() []CreatedAccount {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]CreatedAccount, 0, len(r.created))
	for _, a := range r.created {
		md, _ := a.object["metadata"].(map[string]string)
		out = append(out, CreatedAccount{ID: a.id, Metadata: md})
	}
	return out
}

// AccountsCreatedPerUser counts, per metadata[platform_user_id], the account
// creations Stripe really performed, whatever answer reached the client
// (replays create nothing).
func (r *Recorder) AccountsCreatedPerUser() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for _, a := range r.created {
		user, _ := a.object["metadata"].(map[string]string)
		out[user["platform_user_id"]]++
	}
	return out
}

// MotoEndpoint returns moto_server's URL (DynamoDB, Secrets Manager, ...).
func MotoEndpoint(t testing.TB) string { return require(t, "TEST_DYNAMODB_ENDPOINT") }
