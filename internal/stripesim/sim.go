// Package stripesim is a stateful, in-memory simulator of the part of Stripe
// Connect that this project uses: Express accounts with Stripe's
// requirements and capability model, single-use expiring Account Links that
// lead to hosted onboarding pages, login links to a simulated Express
// Dashboard, and Connect webhook endpoints that receive signed events,
// delivered asynchronously with retries.
//
// It speaks Stripe's wire format (form-encoded parameters, JSON rendered from
// stripe-go v76 types, Stripe's error envelope and status codes) and refuses
// parameters Stripe does not know, so the project's Stripe adapter runs
// against it unchanged. stripe-mock checks requests against Stripe's OpenAPI
// spec but keeps no state; this simulator keeps state, so the whole
// onboarding journey can be walked offline, in a browser or in tests.
//
// It is a development and test tool: never a stand-in for Stripe in
// production code paths, and every page it serves says so.
package stripesim

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/stripe/stripe-go/v76"
)

// Options configure a Sim. The zero value works: defaults are Stripe's.
type Options struct {
	// PublicURL is where browsers reach this simulator (its hosted pages):
	// the base of every account link and login link it hands out.
	PublicURL string
	// LinkTTL is how long an account link stays usable (SIM_LINK_TTL).
	// Default 300 s, Stripe's "a few minutes".
	LinkTTL time.Duration
	// VerifyDelay is how long "verification pending" lasts before the
	// account becomes active (SIM_VERIFY_DELAY). Default 2 s.
	VerifyDelay time.Duration
	// Chaos disturbs webhook deliveries (SIM_CHAOS).
	Chaos Chaos
	// TransfersOnlyApproved says Stripe approved the simulated platform for
	// accounts that request transfers without card_payments under the full
	// agreement (SIM_TRANSFERS_ONLY_APPROVED). Without it such a request is
	// refused, as Stripe refuses it.
	TransfersOnlyApproved bool
	// PlatformCapabilities are payment-method capabilities the simulated
	// platform's Connect settings add to every account under the full
	// agreement, beside those requested (SIM_PLATFORM_CAPABILITIES, e.g.
	// us_bank_account_ach_payments). They stay inactive: the seller never
	// provides what they need.
	PlatformCapabilities []string
	// Retry bounds webhook redelivery after a non-2xx answer. Unset fields
	// follow Stripe's test-mode schedule, run RetryScale times faster.
	Retry RetryPolicy
	// RetryScale is how many times faster than Stripe the default retry
	// schedule runs (SIM_RETRY_SCALE). Default 3600: each hour of Stripe's
	// schedule lasts a second; 1 is Stripe's own pace.
	RetryScale float64
	// RejectBalanceRule says whose reject a non-zero balance refuses
	// (SIM_REJECT_BALANCE_RULE; default RejectBalanceLive, Stripe's).
	RejectBalanceRule RejectBalanceRule
	// EmbedOrigins are the origins of platform pages that may call the
	// Connect.js stand-in's endpoints (CORS): the platform's frontend, where
	// embedded components run (the dev server's FRONTEND_URL).
	EmbedOrigins []string
	// HTTPClient delivers webhooks (default: 10 s timeout).
	HTTPClient *http.Client
	Logger     *slog.Logger
	Now        func() time.Time
}

// Chaos makes webhook deliveries behave as Stripe allows them to: more than
// once, out of order, late.
type Chaos struct {
	Duplicate bool          // every event is delivered twice
	Shuffle   bool          // the events of one change go out in random order
	MaxDelay  time.Duration // each delivery waits a random time up to this
	Reverse   bool          // the events of one change go out newest first, in order: the worst order Stripe allows, every time
}

func (c Chaos) enabled() bool { return c.Duplicate || c.Shuffle || c.MaxDelay > 0 }

// RetryPolicy is the bounded exponential backoff of webhook redelivery.
//
// Its defaults are Stripe's test mode, which Stripe's webhook guide says
// "retries three times over a few hours" (its newer pages say "a sandbox";
// live mode retries "for up to three days" with exponential backoff):
// https://docs.stripe.com/webhooks#automatic-retries.
// Stripe does not publish the intervals; the simulator waits 30 min, 1 h and
// 2 h (3.5 h in all), each divided by Options.RetryScale. Durations set here
// are taken as they are, unscaled.
type RetryPolicy struct {
	MaxAttempts  int           // default 4: the delivery and Stripe's three retries
	FirstBackoff time.Duration // default 30 min / RetryScale, doubled after each attempt
	MaxBackoff   time.Duration // default 2 h / RetryScale
}

// Stripe's test-mode retry schedule, before scaling.
const (
	stripeTestModeAttempts     = 4
	stripeTestModeFirstBackoff = 30 * time.Minute
	stripeTestModeMaxBackoff   = 2 * time.Hour
)

// Default values of Options.
const (
	DefaultLinkTTL     = 300 * time.Second
	DefaultVerifyDelay = 2 * time.Second
	DefaultRetryScale  = 3600.0
)

// Operations, as faults name them.
const (
	OpCreateAccount           = "create_account"
	OpRetrieveAccount         = "retrieve_account"
	OpUpdateAccount           = "update_account"
	OpListAccounts            = "list_accounts"
	OpRejectAccount           = "reject_account"
	OpCreateAccountLink       = "create_account_link"
	OpCreateLoginLink         = "create_login_link"
	OpCreateAccountSession    = "create_account_session"
	OpCreateWebhookEndpoint   = "create_webhook_endpoint"
	OpListWebhookEndpoints    = "list_webhook_endpoints"
	OpRetrieveWebhookEndpoint = "retrieve_webhook_endpoint"
	OpDeleteWebhookEndpoint   = "delete_webhook_endpoint"
)

// Sim is a running simulator. It is an http.Handler: serve it on a
// loopback listener and point STRIPE_API_BASE at it.
type Sim struct {
	opts Options
	mux  *http.ServeMux

	mu           sync.Mutex
	accounts     map[string]*account
	accountOrder []string // creation order
	links        map[string]*accountLink
	sessions     map[string]*session
	loginLinks   map[string]*loginLink
	// accountSessions are keyed by client secret (account_sessions.go).
	accountSessions map[string]*accountSession
	endpoints       map[string]*endpoint
	endpointList    []string
	idem            map[string]*idemEntry
	faults          []*Fault
	deliveries      []*Delivery

	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	queues  map[string]chan *Delivery
	timers  map[*time.Timer]struct{}
	stopped bool
}

// New builds a simulator. Call Close to stop its deliveries and timers.
func New(opts Options) *Sim {
	if opts.LinkTTL <= 0 {
		opts.LinkTTL = DefaultLinkTTL
	}
	if opts.VerifyDelay <= 0 {
		opts.VerifyDelay = DefaultVerifyDelay
	}
	if opts.RetryScale <= 0 {
		opts.RetryScale = DefaultRetryScale
	}
	if opts.Retry.MaxAttempts <= 0 {
		opts.Retry.MaxAttempts = stripeTestModeAttempts
	}
	if opts.Retry.FirstBackoff <= 0 {
		opts.Retry.FirstBackoff = scaled(stripeTestModeFirstBackoff, opts.RetryScale)
	}
	if opts.Retry.MaxBackoff <= 0 {
		opts.Retry.MaxBackoff = max(scaled(stripeTestModeMaxBackoff, opts.RetryScale), opts.Retry.FirstBackoff)
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	opts.PublicURL = strings.TrimRight(opts.PublicURL, "/")
	ctx, cancel := context.WithCancel(context.Background())
	s := &Sim{
		opts:            opts,
		accounts:        map[string]*account{},
		links:           map[string]*accountLink{},
		sessions:        map[string]*session{},
		loginLinks:      map[string]*loginLink{},
		accountSessions: map[string]*accountSession{},
		endpoints:       map[string]*endpoint{},
		idem:            map[string]*idemEntry{},
		queues:          map[string]chan *Delivery{},
		timers:          map[*time.Timer]struct{}{},
		ctx:             ctx,
		cancel:          cancel,
	}
	s.routes()
	return s
}

// scaled is d of Stripe's time run scale times faster, at least 1 ms.
func scaled(d time.Duration, scale float64) time.Duration {
	return max(time.Duration(float64(d)/scale), time.Millisecond)
}

// SetPublicURL sets the base of the links handed out, for a simulator whose
// listener was opened after New.
func (s *Sim) SetPublicURL(u string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opts.PublicURL = strings.TrimRight(u, "/")
}

// PublicURL returns the base of the hosted pages.
func (s *Sim) PublicURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opts.PublicURL
}

// Close stops pending deliveries and verification timers and waits for the
// delivery workers to finish.
func (s *Sim) Close() {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return
	}
	s.stopped = true
	for t := range s.timers {
		t.Stop()
	}
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
}

func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Request-Id", "req_"+randomID(14))
	s.mux.ServeHTTP(w, r)
}

func (s *Sim) routes() {
	m := http.NewServeMux()
	m.HandleFunc("POST /v1/accounts", s.api(OpCreateAccount, accountCreateSchema, s.createAccount))
	m.HandleFunc("GET /v1/accounts", s.api(OpListAccounts, accountListSchema, s.listAccounts))
	m.HandleFunc("GET /v1/accounts/{id}", s.api(OpRetrieveAccount, expandOnly, s.retrieveAccount))
	m.HandleFunc("POST /v1/accounts/{id}", s.api(OpUpdateAccount, accountUpdateSchema, s.updateAccount))
	m.HandleFunc("POST /v1/accounts/{id}/reject", s.api(OpRejectAccount, rejectSchema, s.rejectAccount))
	m.HandleFunc("POST /v1/accounts/{id}/login_links", s.api(OpCreateLoginLink, expandOnly, s.createLoginLink))
	m.HandleFunc("POST /v1/account_links", s.api(OpCreateAccountLink, accountLinkSchema, s.createAccountLink))
	m.HandleFunc("POST /v1/account_sessions", s.api(OpCreateAccountSession, accountSessionSchema, s.createAccountSession))
	m.HandleFunc("POST /v1/webhook_endpoints", s.api(OpCreateWebhookEndpoint, webhookCreateSchema, s.createWebhookEndpoint))
	m.HandleFunc("GET /v1/webhook_endpoints", s.api(OpListWebhookEndpoints, listSchema, s.listWebhookEndpoints))
	m.HandleFunc("GET /v1/webhook_endpoints/{id}", s.api(OpRetrieveWebhookEndpoint, expandOnly, s.retrieveWebhookEndpoint))
	m.HandleFunc("DELETE /v1/webhook_endpoints/{id}", s.api(OpDeleteWebhookEndpoint, noParams, s.deleteWebhookEndpoint))
	m.HandleFunc("/v1/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, (&apiError{status: 404, typ: typeInvalidRequest,
			message: fmt.Sprintf("Unrecognized request URL (%s: %s). Please see https://stripe.com/docs or we can help at https://support.stripe.com/.",
				r.Method, r.URL.Path)}).body())
	})

	// Hosted pages (what the browser sees) and the simulator's own controls.
	m.HandleFunc("GET /setup/e/{account}/{token}", s.onboardingPage)
	m.HandleFunc("POST /setup/s/{session}", s.submitOnboarding)
	m.HandleFunc("GET /express/{account}/{token}", s.dashboardPage)
	m.HandleFunc("GET /{$}", s.indexPage)
	s.connectJSRoutes(m)
	m.HandleFunc("POST /_sim/faults", s.faultsControl)
	m.HandleFunc("DELETE /_sim/faults", s.faultsControl)
	m.HandleFunc("POST /_sim/accounts/{id}/deauthorize", s.deauthorizeControl)
	m.HandleFunc("POST /_sim/accounts/{id}/webhooks", s.webhooksControl)
	m.HandleFunc("POST /_sim/accounts/{id}/outcome", s.outcomeControl)
	m.HandleFunc("POST /_sim/accounts/{id}/hold", s.holdControl)
	m.HandleFunc("POST /_sim/accounts/{id}/balance", s.balanceControl)
	s.mux = m
}

// request is one API call after authentication and parameter checks.
type request struct {
	r         *http.Request
	params    *param
	livemode  bool
	requestID string
	idemKey   string
}

// handler answers an API call with a Stripe object (marshalled to JSON) or
// an error. It runs with s.mu held.
type handler func(req *request) (any, *apiError)

// api wraps a handler with what every Stripe endpoint does: authenticate,
// decode and check parameters, injected faults, idempotency.
func (s *Sim) api(op string, schema map[string]*field, h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Stripe-Version", stripe.APIVersion)
		key, ok := apiKey(r)
		if !ok {
			// Stripe's words, verbatim as its API answers and as public test
			// suites and bug reports quote it.
			writeJSON(w, http.StatusUnauthorized, (&apiError{status: 401, typ: typeInvalidRequest,
				message: "You did not provide an API key. You need to provide your API key in the Authorization header, " +
					"using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication " +
					"for details, or we can help at https://support.stripe.com/."}).body())
			return
		}
		if !validKey(key) {
			writeJSON(w, http.StatusUnauthorized, (&apiError{status: 401, typ: typeInvalidRequest,
				message: "Invalid API Key provided: " + redactKey(key)}).body())
			return
		}
		form, err := readForm(r)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, invalidRequest("Invalid request body: expected application/x-www-form-urlencoded parameters.").body())
			return
		}
		tree, perr := parseParams(form)
		if perr == nil {
			perr = validate(tree, schema)
		}
		if perr != nil {
			// Stripe saves no idempotent result for a request that failed
			// validation.
			writeJSON(w, perr.status, perr.body())
			return
		}
		req := &request{r: r, params: tree, livemode: strings.Contains(key, "_live_"),
			requestID: w.Header().Get("Request-Id"), idemKey: r.Header.Get("Idempotency-Key")}

		fault := s.takeFault(op)
		if fault != nil && (fault.Kind == FaultServerError || fault.Kind == FaultRateLimit || fault.Kind == FaultKeyRefused) {
			e := fault.apiError()
			writeJSON(w, e.status, e.body())
			return
		}

		var entry *idemEntry
		if req.idemKey != "" && r.Method == http.MethodPost {
			fingerprint := r.Method + " " + r.URL.Path + "?" + form.Encode()
			var replay *idemEntry
			var conflict *apiError
			entry, replay, conflict = s.beginIdempotent(key, req.idemKey, fingerprint)
			switch {
			case conflict != nil:
				writeJSON(w, conflict.status, conflict.body())
				return
			case replay != nil:
				w.Header().Set("Idempotent-Replayed", "true")
				w.Header().Set("Original-Request", replay.requestID)
				writeJSON(w, replay.status, replay.body)
				return
			}
		}

		status, body := s.execute(req, h, fault)
		if entry != nil {
			s.finishIdempotent(entry, status, body, req.requestID)
		}
		if fault != nil && fault.Kind == FaultTimeout {
			// The work is done and saved, but the answer does not come in
			// time: the caller cannot know whether it succeeded.
			select {
			case <-time.After(fault.delay()):
			case <-r.Context().Done():
				return
			case <-s.ctx.Done():
				return
			}
		}
		writeJSON(w, status, body)
	}
}

// execute runs h under the lock, applying a saved-500 fault.
func (s *Sim) execute(req *request, h handler, fault *Fault) (int, []byte) {
	if fault != nil && fault.Kind == FaultSavedServerError && !fault.Created {
		e := fault.apiError()
		return e.status, e.body()
	}
	s.mu.Lock()
	obj, aerr := h(req)
	s.mu.Unlock()
	if fault != nil && fault.Kind == FaultSavedServerError {
		e := fault.apiError()
		return e.status, e.body()
	}
	if aerr != nil {
		return aerr.status, aerr.body()
	}
	b, err := json.Marshal(obj)
	if err != nil {
		e := &apiError{status: 500, typ: typeAPI, message: "An unknown error occurred"}
		return e.status, e.body()
	}
	return http.StatusOK, b
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache, no-store")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func readForm(r *http.Request) (url.Values, error) {
	if r.Method == http.MethodGet || r.Method == http.MethodDelete {
		q := r.URL.Query()
		if r.Method == http.MethodDelete && r.Body != nil {
			b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
			if err != nil {
				return nil, err
			}
			if len(b) > 0 {
				extra, err := url.ParseQuery(string(b))
				if err != nil {
					return nil, err
				}
				for k, v := range extra {
					q[k] = v
				}
			}
		}
		return q, nil
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	return url.ParseQuery(string(b))
}

// apiKey reads the secret key from Bearer or Basic authentication.
func apiKey(r *http.Request) (string, bool) {
	if user, _, ok := r.BasicAuth(); ok && user != "" {
		return user, true
	}
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return "", false
	}
	return strings.TrimSpace(token), true
}

func validKey(k string) bool {
	for _, p := range []string{"sk_test_", "sk_live_", "rk_test_", "rk_live_"} {
		if strings.HasPrefix(k, p) && len(k) > len(p) {
			return true
		}
	}
	return false
}

// redactKey shows a key as Stripe's errors do: prefix and last four.
func redactKey(k string) string {
	if len(k) <= 12 {
		return strings.Repeat("*", len(k))
	}
	return k[:8] + strings.Repeat("*", len(k)-12) + k[len(k)-4:]
}

const idAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// randomID returns n random characters of Stripe's id alphabet.
func randomID(n int) string {
	b := make([]byte, n)
	max := big.NewInt(int64(len(idAlphabet)))
	for i := range b {
		v, err := rand.Int(rand.Reader, max)
		if err != nil {
			panic("stripesim: crypto/rand failed: " + err.Error())
		}
		b[i] = idAlphabet[v.Int64()]
	}
	return string(b)
}

// afterFunc runs f after d unless the simulator closes first. Called with
// s.mu held, which the timer's callback takes before it reads t.
func (s *Sim) afterFunc(d time.Duration, f func()) {
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		s.mu.Lock()
		delete(s.timers, t)
		stopped := s.stopped
		s.mu.Unlock()
		if !stopped {
			f()
		}
	})
	s.timers[t] = struct{}{}
}
