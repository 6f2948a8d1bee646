package stripesim_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/connectexpress/onboarding/internal/stripesim"
	"github.com/connectexpress/onboarding/internal/testenv"
)

const testKey = "sk_test_simulator"

// clock is a settable time for link expiry without sleeping.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.now = c.now.Add(d) }

type simEnv struct {
	sim *stripesim.Sim
	url string
}

func newSim(t *testing.T, opts stripesim.Options) *simEnv {
	t.Helper()
	sim := stripesim.New(opts)
	srv := httptest.NewServer(sim)
	sim.SetPublicURL(srv.URL)
	t.Cleanup(func() { srv.Close(); sim.Close() })
	return &simEnv{sim: sim, url: srv.URL}
}

type answer struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

var noRedirects = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Timeout:       10 * time.Second,
}

// call sends a Stripe API request with form parameters.
func call(t *testing.T, base, method, path string, form url.Values, headers ...string) answer {
	t.Helper()
	var body io.Reader
	target := base + path
	if method == http.MethodGet {
		if len(form) > 0 {
			target += "?" + form.Encode()
		}
	} else {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testKey)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, raw: string(b)}
	_ = json.Unmarshal(b, &a.body)
	return a
}

func (a answer) errField(name string) string {
	e, _ := a.body["error"].(map[string]any)
	v, _ := e[name].(string)
	return v
}

func (a answer) str(path ...string) string {
	var cur any = a.body
	for _, p := range path {
		m, _ := cur.(map[string]any)
		cur = m[p]
	}
	s, _ := cur.(string)
	return s
}

func form(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v
}

func createForm(user string) url.Values {
	return form("type", "express", "country", "US", "email", user+"@example.com", "business_type", "individual",
		"capabilities[card_payments][requested]", "true", "capabilities[transfers][requested]", "true",
		"metadata[platform_user_id]", user, "tos_acceptance[service_agreement]", "full")
}

func createAccount(t *testing.T, s *simEnv, user string) string {
	t.Helper()
	a := call(t, s.url, "POST", "/v1/accounts", createForm(user))
	if a.status != 200 {
		t.Fatalf("create: %d %s", a.status, a.raw)
	}
	return a.str("id")
}

// Requests Stripe refuses for their parameters. The simulator refuses each
// with a 400 naming the parameter; stripe-mock (Stripe's OpenAPI spec)
// refuses each too, except where its check is looser than Stripe (looser).
var refused = []struct {
	name, method, path string
	form               url.Values
	param              string // the simulator's error param
	looser             bool   // stripe-mock accepts it (no additionalProperties check on nested hashes, no enum)
}{
	{"unknown parameter", "POST", "/v1/accounts", form("type", "express", "nickname", "x"), "nickname", false},
	{"unknown nested parameter", "POST", "/v1/accounts", form("type", "express", "business_profile[color]", "red"), "business_profile[color]", true},
	{"unknown capability", "POST", "/v1/accounts", form("type", "express", "capabilities[teleport_payments][requested]", "true"), "capabilities[teleport_payments]", true},
	{"a boolean that is not one", "POST", "/v1/accounts", form("type", "express", "capabilities[transfers][requested]", "maybe"), "capabilities[transfers][requested]", false},
	{"an account type Stripe does not have", "POST", "/v1/accounts", form("type", "premium"), "type", false},
	{"a business type Stripe does not have", "POST", "/v1/accounts", form("type", "express", "business_type", "robot"), "business_type", false},
	{"a hash given as a string", "POST", "/v1/accounts", form("type", "express", "business_profile", "flat"), "business_profile", false},
	{"a service agreement Stripe does not have", "POST", "/v1/accounts", form("type", "express", "tos_acceptance[service_agreement]", "partial"), "tos_acceptance[service_agreement]", true},
	{"an update of the country", "POST", "/v1/accounts/acct_1Conformance000", form("country", "DE"), "country", false},
	{"a list limit that is not a number", "GET", "/v1/accounts", form("limit", "many"), "limit", false},
	{"an unknown created filter", "GET", "/v1/accounts", form("created[after]", "1"), "created[after]", true},
	{"a link without its type", "POST", "/v1/account_links", form("account", "acct_1Conformance000", "refresh_url", "https://a.example/r", "return_url", "https://a.example/b"), "type", false},
	{"a link type Stripe does not have", "POST", "/v1/account_links", form("account", "acct_1Conformance000", "type", "onboarding", "refresh_url", "https://a.example/r", "return_url", "https://a.example/b"), "type", false},
	{"collection_options fields Stripe does not have", "POST", "/v1/account_links", form("account", "acct_1Conformance000", "type", "account_onboarding", "refresh_url", "https://a.example/r", "return_url", "https://a.example/b",
		"collection_options[fields]", "everything"), "collection_options[fields]", false},
	{"collection_options future_requirements Stripe does not have", "POST", "/v1/account_links", form("account", "acct_1Conformance000", "type", "account_onboarding", "refresh_url", "https://a.example/r", "return_url", "https://a.example/b",
		"collection_options[fields]", "currently_due", "collection_options[future_requirements]", "always"), "collection_options[future_requirements]", false},
	{"collection_options without its required fields", "POST", "/v1/account_links", form("account", "acct_1Conformance000", "type", "account_onboarding", "refresh_url", "https://a.example/r", "return_url", "https://a.example/b",
		"collection_options[future_requirements]", "include"), "collection_options[fields]", false},
	{"a link with an unknown parameter", "POST", "/v1/account_links", form("account", "acct_1Conformance000", "type", "account_onboarding", "refresh_url", "https://a.example/r", "return_url", "https://a.example/b", "theme", "dark"), "theme", false},
	{"a reject without a reason", "POST", "/v1/accounts/acct_1Conformance000/reject", form(), "reason", false},
	{"a webhook endpoint without events", "POST", "/v1/webhook_endpoints", form("url", "https://a.example/hook"), "enabled_events", false},
	{"a webhook endpoint with a non-boolean connect", "POST", "/v1/webhook_endpoints", form("url", "https://a.example/hook", "enabled_events[0]", "account.updated", "connect", "sometimes"), "connect", false},
	{"a login link with a parameter 2023-10-16 does not take", "POST", "/v1/accounts/acct_1Conformance000/login_links", form("redirect_url", "https://a.example"), "redirect_url", false},
}

func TestRefusesWhatStripesSpecRefuses(t *testing.T) {
	s := newSim(t, stripesim.Options{})
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			got := call(t, s.url, tt.method, tt.path, tt.form)
			if got.status != http.StatusBadRequest || got.errField("type") != "invalid_request_error" {
				t.Fatalf("simulator: %d %s, want 400 invalid_request_error", got.status, got.raw)
			}
			if p := got.errField("param"); p != tt.param {
				t.Errorf("simulator param = %q, want %q (%s)", p, tt.param, got.errField("message"))
			}
			if got.header.Get("Request-Id") == "" {
				t.Error("no Request-Id header")
			}
		})
	}
	t.Run("stripe-mock agrees", func(t *testing.T) {
		base := testenv.StripeAPIBase(t)
		for _, tt := range refused {
			got := call(t, base, tt.method, tt.path, tt.form)
			switch {
			case !tt.looser && got.status != http.StatusBadRequest:
				t.Errorf("%s: stripe-mock answered %d, yet the simulator refuses it", tt.name, got.status)
			case tt.looser && got.status == http.StatusBadRequest:
				t.Errorf("%s: stripe-mock refuses it now: drop looser", tt.name)
			}
		}
	})
}

// Requests both must accept (shapes the project's later work sends).
func TestAcceptsWhatStripesSpecAccepts(t *testing.T) {
	s := newSim(t, stripesim.Options{})
	accepted := []struct {
		name, method, path string
		form               url.Values
	}{
		{"list accounts by creation time", "GET", "/v1/accounts", form("limit", "3", "created[gte]", "1700000000", "created[lt]", "4000000000")},
		{"list accounts created at a second", "GET", "/v1/accounts", form("created", "1700000000")},
		{"a Connect webhook endpoint", "POST", "/v1/webhook_endpoints", form("url", "https://a.example/hook", "enabled_events[0]", "account.updated",
			"enabled_events[1]", "capability.updated", "connect", "true", "api_version", "2023-10-16", "description", "test")},
		{"list webhook endpoints", "GET", "/v1/webhook_endpoints", form("limit", "100")},
	}
	for _, tt := range accepted {
		t.Run(tt.name, func(t *testing.T) {
			if got := call(t, s.url, tt.method, tt.path, tt.form); got.status != http.StatusOK {
				t.Errorf("simulator: %d %s", got.status, got.raw)
			}
		})
	}
	t.Run("stripe-mock agrees", func(t *testing.T) {
		base := testenv.StripeAPIBase(t)
		for _, tt := range accepted {
			if got := call(t, base, tt.method, tt.path, tt.form); got.status != http.StatusOK {
				t.Errorf("%s: stripe-mock answered %d: %s", tt.name, got.status, got.raw)
			}
		}
	})
}

func TestAuthenticationAndUnknownRoutes(t *testing.T) {
	s := newSim(t, stripesim.Options{})
	req, _ := http.NewRequest("GET", s.url+"/v1/accounts", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("no key: %d, want 401", resp.StatusCode)
	}
	if got := call(t, s.url, "GET", "/v1/accounts", nil, "Authorization", "Bearer pk_test_publishable"); got.status != http.StatusUnauthorized ||
		strings.Contains(got.raw, "pk_test_publishable") {
		t.Errorf("a publishable key: %d %s, want 401 without the key echoed", got.status, got.raw)
	}
	if got := call(t, s.url, "GET", "/v1/charges", nil); got.status != http.StatusNotFound || got.errField("type") != "invalid_request_error" {
		t.Errorf("unknown route: %d %s, want Stripe's 404 envelope", got.status, got.raw)
	}
	// Stripe answers an account the key cannot reach with 403
	// account_invalid, not 404, whether it never existed or was
	// disconnected: TestUnreachableAccountsAnswer403AccountInvalid.
	if got := call(t, s.url, "GET", "/v1/accounts/acct_1Missing", nil); got.status != http.StatusForbidden || got.errField("code") != "account_invalid" {
		t.Errorf("unknown account: %d %s", got.status, got.raw)
	}
}

func TestAccountObjectIsStripesShape(t *testing.T) {
	s := newSim(t, stripesim.Options{})
	got := call(t, s.url, "POST", "/v1/accounts", form("type", "express", "country", "DE", "tos_acceptance[service_agreement]", "recipient",
		"capabilities[transfers][requested]", "true", "business_profile[product_description]", "Design work"))
	if got.status != 200 {
		t.Fatalf("%d %s", got.status, got.raw)
	}
	b := got.body
	if b["object"] != "account" || b["type"] != "express" || b["country"] != "DE" || b["default_currency"] != "eur" {
		t.Errorf("account %s", got.raw)
	}
	caps, _ := b["capabilities"].(map[string]any)
	if len(caps) != 1 || caps["transfers"] != "inactive" {
		t.Errorf("capabilities = %v, want only the requested transfers, inactive", caps)
	}
	req, _ := b["requirements"].(map[string]any)
	if req["current_deadline"] != nil || req["disabled_reason"] != "requirements.past_due" {
		t.Errorf("requirements = %v", req)
	}
	for _, due := range req["currently_due"].([]any) {
		if due == "business_profile.mcc" || due == "business_profile.url" {
			t.Errorf("%s is due for a recipient with a product description", due)
		}
	}
	if bp, _ := b["business_profile"].(map[string]any); bp["url"] != nil || bp["product_description"] != "Design work" {
		t.Errorf("business_profile = %v, want url null (Stripe's null, not \"\")", bp)
	}
	if _, ok := b["future_requirements"].(map[string]any); !ok {
		t.Error("no future_requirements")
	}
	if tos, _ := b["tos_acceptance"].(map[string]any); tos["service_agreement"] != "recipient" {
		t.Errorf("tos_acceptance = %v", tos)
	}

	// A recipient gets transfers only: once onboarded it can be paid out
	// to, but never take charges.
	if err := s.sim.Outcome(got.str("id"), stripesim.OutcomeComplete, ""); err != nil {
		t.Fatal(err)
	}
	done := call(t, s.url, "GET", "/v1/accounts/"+got.str("id"), nil)
	caps, _ = done.body["capabilities"].(map[string]any)
	if done.body["charges_enabled"] != false || done.body["payouts_enabled"] != true || len(caps) != 1 || caps["transfers"] != "active" {
		t.Errorf("an onboarded recipient: %s", done.raw)
	}
}

func TestBehaviourRefusals(t *testing.T) {
	s := newSim(t, stripesim.Options{})
	id := createAccount(t, s, "refusals")
	cases := []struct {
		name  string
		do    func() answer
		param string
	}{
		{"card_payments without transfers", func() answer {
			return call(t, s.url, "POST", "/v1/accounts", form("type", "express", "capabilities[card_payments][requested]", "true"))
		}, "capabilities"},
		{"a recipient asking for card_payments", func() answer {
			return call(t, s.url, "POST", "/v1/accounts", form("type", "express", "country", "FR", "tos_acceptance[service_agreement]", "recipient",
				"capabilities[card_payments][requested]", "true", "capabilities[transfers][requested]", "true"))
		}, "tos_acceptance[service_agreement]"},
		{"a country Stripe does not know", func() answer {
			return call(t, s.url, "POST", "/v1/accounts", form("type", "express", "country", "ZZ"))
		}, "country"},
		{"account_update links for Express", func() answer {
			return call(t, s.url, "POST", "/v1/account_links", form("account", id, "type", "account_update",
				"refresh_url", "https://a.example/r", "return_url", "https://a.example/b"))
		}, "type"},
		{"a link without refresh_url", func() answer {
			return call(t, s.url, "POST", "/v1/account_links", form("account", id, "type", "account_onboarding", "return_url", "https://a.example/b"))
		}, "refresh_url"},
		{"a login link before onboarding", func() answer {
			return call(t, s.url, "POST", "/v1/accounts/"+id+"/login_links", nil)
		}, "account"},
		{"a reject reason Stripe does not have", func() answer {
			return call(t, s.url, "POST", "/v1/accounts/"+id+"/reject", form("reason", "boredom"))
		}, "reason"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := c.do()
			if got.status != 400 {
				t.Fatalf("%d %s, want a refusal", got.status, got.raw)
			}
			if p := got.errField("param"); p != c.param {
				t.Errorf("param = %q, want %q: %s", p, c.param, got.raw)
			}
		})
	}
	if got := call(t, s.url, "POST", "/v1/accounts/"+id+"/login_links", nil); got.errField("message") !=
		"Cannot create a login link for an account that has not completed onboarding." {
		t.Errorf("login link message = %q", got.errField("message"))
	}

	t.Run("live keys need https links", func(t *testing.T) {
		live := call(t, s.url, "POST", "/v1/accounts", form("type", "express"), "Authorization", "Bearer "+liveModeKey)
		if live.status != 200 || live.body["id"] == nil {
			t.Fatalf("live create: %d %s", live.status, live.raw)
		}
		got := call(t, s.url, "POST", "/v1/account_links", form("account", live.str("id"), "type", "account_onboarding",
			"refresh_url", "http://a.example/r", "return_url", "https://a.example/b"), "Authorization", "Bearer "+liveModeKey)
		if got.status != 400 || got.errField("param") != "refresh_url" || !strings.Contains(got.errField("message"), "HTTPS") {
			t.Errorf("%d %s", got.status, got.raw)
		}
	})

	t.Run("KYC prefill is locked after the first link, metadata is not", func(t *testing.T) {
		acct := createAccount(t, s, "kyc")
		if got := call(t, s.url, "POST", "/v1/accounts/"+acct, form("business_profile[url]", "https://before.example")); got.status != 200 {
			t.Fatalf("update before a link: %d %s", got.status, got.raw)
		}
		if got := call(t, s.url, "POST", "/v1/account_links", form("account", acct, "type", "account_onboarding",
			"refresh_url", "https://a.example/r", "return_url", "https://a.example/b")); got.status != 200 {
			t.Fatalf("link: %d %s", got.status, got.raw)
		}
		got := call(t, s.url, "POST", "/v1/accounts/"+acct, form("business_profile[url]", "https://after.example"))
		if got.status != 400 || got.errField("param") != "business_profile" {
			t.Errorf("update after a link: %d %s", got.status, got.raw)
		}
		if after := call(t, s.url, "GET", "/v1/accounts/"+acct, nil); after.str("business_profile", "url") != "https://before.example" {
			t.Errorf("a refused update changed the account: %s", after.raw)
		}
		if got := call(t, s.url, "POST", "/v1/accounts/"+acct, form("metadata[note]", "ok")); got.status != 200 || got.str("metadata", "note") != "ok" {
			t.Errorf("metadata after a link: %d %s", got.status, got.raw)
		}
	})
}

func TestIdempotency(t *testing.T) {
	s := newSim(t, stripesim.Options{})
	first := call(t, s.url, "POST", "/v1/accounts", createForm("idem"), "Idempotency-Key", "key-1")
	again := call(t, s.url, "POST", "/v1/accounts", createForm("idem"), "Idempotency-Key", "key-1")
	if again.status != 200 || again.str("id") != first.str("id") || again.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("replay: %d %s (replayed %q), want the first account", again.status, again.str("id"), again.header.Get("Idempotent-Replayed"))
	}
	other := call(t, s.url, "POST", "/v1/accounts", createForm("someone-else"), "Idempotency-Key", "key-1")
	if other.status != 400 || other.errField("type") != "idempotency_error" {
		t.Errorf("other params, same key: %d %s, want 400 idempotency_error", other.status, other.raw)
	}
	// A request refused for its parameters saves nothing under its key.
	bad := call(t, s.url, "POST", "/v1/accounts", form("type", "express", "colour", "red"), "Idempotency-Key", "key-2")
	good := call(t, s.url, "POST", "/v1/accounts", createForm("idem2"), "Idempotency-Key", "key-2")
	if bad.status != 400 || good.status != 200 {
		t.Errorf("validation failure then a good request with its key: %d, %d", bad.status, good.status)
	}
	if n := countAccounts(t, s); n != 2 {
		t.Errorf("%d accounts, want 2", n)
	}
}

func countAccounts(t *testing.T, s *simEnv) int {
	t.Helper()
	got := call(t, s.url, "GET", "/v1/accounts", form("limit", "100"))
	data, _ := got.body["data"].([]any)
	return len(data)
}

func TestFaults(t *testing.T) {
	t.Run("a 500 saves nothing: the retry with the same key creates the account", func(t *testing.T) {
		s := newSim(t, stripesim.Options{})
		s.sim.InjectFault(stripesim.Fault{Op: stripesim.OpCreateAccount, Kind: stripesim.FaultServerError})
		if got := call(t, s.url, "POST", "/v1/accounts", createForm("f"), "Idempotency-Key", "k"); got.status != 500 || got.errField("type") != "api_error" {
			t.Fatalf("%d %s", got.status, got.raw)
		}
		if got := call(t, s.url, "POST", "/v1/accounts", createForm("f"), "Idempotency-Key", "k"); got.status != 200 || got.header.Get("Idempotent-Replayed") != "" {
			t.Fatalf("retry: %d %s", got.status, got.raw)
		}
		if n := countAccounts(t, s); n != 1 {
			t.Errorf("%d accounts, want 1", n)
		}
	})
	t.Run("a 429 for the next two creates, then success", func(t *testing.T) {
		s := newSim(t, stripesim.Options{})
		s.sim.InjectFault(stripesim.Fault{Op: stripesim.OpCreateAccount, Kind: stripesim.FaultRateLimit, Count: 2})
		for i := range 2 {
			if got := call(t, s.url, "POST", "/v1/accounts", createForm("r")); got.status != 429 || got.errField("code") != "rate_limit" {
				t.Fatalf("attempt %d: %d %s", i, got.status, got.raw)
			}
		}
		if got := call(t, s.url, "GET", "/v1/accounts", nil); got.status != 200 {
			t.Errorf("a fault for creates hit a list: %d", got.status)
		}
		if got := call(t, s.url, "POST", "/v1/accounts", createForm("r")); got.status != 200 {
			t.Errorf("third: %d", got.status)
		}
	})
	t.Run("a refused key: 403 without account_invalid, and nothing runs", func(t *testing.T) {
		s := newSim(t, stripesim.Options{})
		id := createAccount(t, s, "k")
		s.sim.InjectFault(stripesim.Fault{Op: stripesim.OpUpdateAccount, Kind: stripesim.FaultKeyRefused})
		got := call(t, s.url, "POST", "/v1/accounts/"+id, form("email", "changed@example.com"))
		if got.status != http.StatusForbidden || got.errField("type") != "invalid_request_error" || got.errField("code") != "" {
			t.Fatalf("%d %s, want 403 invalid_request_error without a code", got.status, got.raw)
		}
		if again := call(t, s.url, "GET", "/v1/accounts/"+id, nil); again.str("email") != "k@example.com" {
			t.Errorf("the refused update ran: %s", again.raw)
		}
		if got := call(t, s.url, "POST", "/_sim/faults", form("op", "retrieve_account", "kind", "403")); got.status != 200 {
			t.Errorf("the control refused kind=403: %d %s", got.status, got.raw)
		}
	})
	t.Run("a saved 500 is replayed for its key; with Created the account exists", func(t *testing.T) {
		s := newSim(t, stripesim.Options{})
		s.sim.InjectFault(stripesim.Fault{Op: stripesim.OpCreateAccount, Kind: stripesim.FaultSavedServerError, Created: true})
		first := call(t, s.url, "POST", "/v1/accounts", createForm("s"), "Idempotency-Key", "k")
		replay := call(t, s.url, "POST", "/v1/accounts", createForm("s"), "Idempotency-Key", "k")
		if first.status != 500 || replay.status != 500 || replay.header.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("first %d, replay %d (replayed %q)", first.status, replay.status, replay.header.Get("Idempotent-Replayed"))
		}
		list := call(t, s.url, "GET", "/v1/accounts", nil)
		data, _ := list.body["data"].([]any)
		if len(data) != 1 {
			t.Fatalf("%d accounts, want the one the failed attempt made", len(data))
		}
		if md := data[0].(map[string]any)["metadata"].(map[string]any); md["platform_user_id"] != "s" {
			t.Errorf("metadata = %v", md)
		}
	})
	t.Run("a timeout: the account is made and saved, the answer comes too late", func(t *testing.T) {
		s := newSim(t, stripesim.Options{})
		s.sim.InjectFault(stripesim.Fault{Op: stripesim.OpCreateAccount, Kind: stripesim.FaultTimeout, Delay: 5 * time.Second})
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "POST", s.url+"/v1/accounts", strings.NewReader(createForm("t").Encode()))
		req.Header.Set("Authorization", "Bearer "+testKey)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Idempotency-Key", "k")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			t.Fatalf("answered %d in time", resp.StatusCode)
		}
		retry := call(t, s.url, "POST", "/v1/accounts", createForm("t"), "Idempotency-Key", "k")
		if retry.status != 200 || retry.header.Get("Idempotent-Replayed") != "true" || countAccounts(t, s) != 1 {
			t.Errorf("retry: %d replayed %q, %d accounts", retry.status, retry.header.Get("Idempotent-Replayed"), countAccounts(t, s))
		}
	})
	t.Run("faults over HTTP", func(t *testing.T) {
		s := newSim(t, stripesim.Options{})
		resp, err := http.PostForm(s.url+"/_sim/faults", form("op", "create_account_link", "kind", "500"))
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("inject: %v %v", err, resp)
		}
		resp.Body.Close()
		id := createAccount(t, s, "h")
		link := form("account", id, "type", "account_onboarding", "refresh_url", "https://a.example/r", "return_url", "https://a.example/b")
		if got := call(t, s.url, "POST", "/v1/account_links", link); got.status != 500 {
			t.Errorf("link: %d", got.status)
		}
		if got := call(t, s.url, "POST", "/v1/account_links", link); got.status != 200 {
			t.Errorf("link after the fault: %d", got.status)
		}
		bad, _ := http.PostForm(s.url+"/_sim/faults", form("kind", "explode"))
		if bad.StatusCode != 400 {
			t.Errorf("unknown kind: %d", bad.StatusCode)
		}
		bad.Body.Close()
	})
}

func TestListAccounts(t *testing.T) {
	c := &clock{now: time.Unix(1_800_000_000, 0)}
	s := newSim(t, stripesim.Options{Now: c.Now})
	var ids []string
	for i := range 5 {
		ids = append(ids, createAccount(t, s, "list"+string(rune('a'+i))))
		c.Advance(10 * time.Second)
	}
	list := func(f url.Values) ([]string, bool) {
		t.Helper()
		got := call(t, s.url, "GET", "/v1/accounts", f)
		if got.status != 200 || got.body["object"] != "list" || got.body["url"] != "/v1/accounts" {
			t.Fatalf("list %v: %d %s", f, got.status, got.raw)
		}
		var out []string
		for _, d := range got.body["data"].([]any) {
			out = append(out, d.(map[string]any)["id"].(string))
		}
		return out, got.body["has_more"].(bool)
	}
	equal := func(what string, got []string, more bool, want []string, wantMore bool) {
		t.Helper()
		if strings.Join(got, ",") != strings.Join(want, ",") || more != wantMore {
			t.Errorf("%s: %v has_more=%v, want %v has_more=%v", what, got, more, want, wantMore)
		}
	}
	got, more := list(nil)
	equal("all, newest first", got, more, []string{ids[4], ids[3], ids[2], ids[1], ids[0]}, false)
	got, more = list(form("limit", "2"))
	equal("limit 2", got, more, []string{ids[4], ids[3]}, true)
	got, more = list(form("limit", "2", "starting_after", ids[3]))
	equal("the next page", got, more, []string{ids[2], ids[1]}, true)
	got, more = list(form("limit", "2", "starting_after", ids[1]))
	equal("the last page", got, more, []string{ids[0]}, false)
	got, more = list(form("ending_before", ids[2]))
	equal("ending_before", got, more, []string{ids[4], ids[3]}, false)
	got, more = list(form("created[gte]", "1800000010", "created[lt]", "1800000040"))
	equal("created range", got, more, []string{ids[3], ids[2], ids[1]}, false)
	got, more = list(form("created", "1800000020"))
	equal("created exactly", got, more, []string{ids[2]}, false)
	if bad := call(t, s.url, "GET", "/v1/accounts", form("limit", "101")); bad.status != 400 || bad.errField("param") != "limit" {
		t.Errorf("limit 101: %d %s", bad.status, bad.raw)
	}
	if bad := call(t, s.url, "GET", "/v1/accounts", form("starting_after", "acct_1Gone")); bad.status != 400 || bad.errField("code") != "resource_missing" {
		t.Errorf("unknown cursor: %d %s", bad.status, bad.raw)
	}
}

// sink is a webhook endpoint that records what it is sent.
type sink struct {
	mu       sync.Mutex
	events   []map[string]any
	times    []time.Time
	failures int // answer 500 this many times first
	srv      *httptest.Server
	secret   func() string
	badSig   int
}

func newSink(t *testing.T, failures int) *sink {
	k := &sink{failures: failures}
	k.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		k.mu.Lock()
		defer k.mu.Unlock()
		k.times = append(k.times, time.Now())
		if k.failures > 0 {
			k.failures--
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		if k.secret != nil {
			if _, err := webhook.ConstructEvent(body, r.Header.Get("Stripe-Signature"), k.secret()); err != nil {
				k.badSig++
				w.WriteHeader(http.StatusBadRequest)
				return
			}
		}
		var ev map[string]any
		_ = json.Unmarshal(body, &ev)
		k.events = append(k.events, ev)
	}))
	t.Cleanup(k.srv.Close)
	return k
}

func (k *sink) snapshot() ([]map[string]any, []time.Time) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]map[string]any(nil), k.events...), append([]time.Time(nil), k.times...)
}

// register creates a webhook endpoint for the sink and verifies with its secret.
func register(t *testing.T, s *simEnv, k *sink, connect bool) string {
	t.Helper()
	got := call(t, s.url, "POST", "/v1/webhook_endpoints", form("url", k.srv.URL, "connect", map[bool]string{true: "true", false: "false"}[connect],
		"enabled_events[0]", "account.updated", "enabled_events[1]", "capability.updated", "enabled_events[2]", "account.application.deauthorized"))
	secret := got.str("secret")
	if got.status != 200 || !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("endpoint: %d %s", got.status, got.raw)
	}
	k.secret = func() string { return secret }
	return got.str("id")
}

func waitFor(t *testing.T, what string, within time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestWebhookEndpoints(t *testing.T) {
	s := newSim(t, stripesim.Options{})
	k := newSink(t, 0)
	id := register(t, s, k, true)
	got := call(t, s.url, "GET", "/v1/webhook_endpoints/"+id, nil)
	if got.status != 200 || got.body["secret"] != nil || got.str("url") != k.srv.URL || got.body["api_version"] != "2023-10-16" {
		t.Errorf("retrieve: %d %s (Stripe shows the secret only at creation)", got.status, got.raw)
	}
	list := call(t, s.url, "GET", "/v1/webhook_endpoints", nil)
	if data, _ := list.body["data"].([]any); len(data) != 1 {
		t.Errorf("list: %s", list.raw)
	}
	del := call(t, s.url, "DELETE", "/v1/webhook_endpoints/"+id, nil)
	if del.status != 200 || del.body["deleted"] != true {
		t.Errorf("delete: %d %s", del.status, del.raw)
	}
	if again := call(t, s.url, "DELETE", "/v1/webhook_endpoints/"+id, nil); again.status != 404 {
		t.Errorf("delete twice: %d", again.status)
	}
}

func TestOutcomesSendSignedConnectEvents(t *testing.T) {
	s := newSim(t, stripesim.Options{})
	k := newSink(t, 0)
	platformOnly := newSink(t, 0)
	register(t, s, k, true)
	register(t, s, platformOnly, false)
	id := createAccount(t, s, "events")
	if err := s.sim.Outcome(id, stripesim.OutcomeComplete, ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "four events", 10*time.Second, func() bool { ev, _ := k.snapshot(); return len(ev) >= 4 })
	events, _ := k.snapshot()
	if events[0]["type"] != "account.updated" || events[1]["type"] != "capability.updated" || events[2]["type"] != "capability.updated" || events[3]["type"] != "account.updated" {
		t.Fatalf("event order: %v, %v, %v, %v", events[0]["type"], events[1]["type"], events[2]["type"], events[3]["type"])
	}
	for _, ev := range events {
		if ev["account"] != id || ev["api_version"] != "2023-10-16" || ev["object"] != "event" || !strings.HasPrefix(ev["id"].(string), "evt_") {
			t.Errorf("event %v", ev)
		}
	}
	acct := events[3]["data"].(map[string]any)["object"].(map[string]any)
	if acct["id"] != id || acct["charges_enabled"] != true || acct["details_submitted"] != true {
		t.Errorf("account.updated carries %v", acct)
	}
	if md := acct["metadata"].(map[string]any); md["platform_user_id"] != "events" {
		t.Errorf("metadata = %v", md)
	}
	capObj := events[1]["data"].(map[string]any)["object"].(map[string]any)
	if capObj["account"] != id || capObj["status"] != "active" || capObj["object"] != "capability" {
		t.Errorf("capability.updated carries %v", capObj)
	}
	if k.badSig != 0 {
		t.Errorf("%d deliveries failed signature verification", k.badSig)
	}
	if ev, _ := platformOnly.snapshot(); len(ev) != 0 {
		t.Errorf("a non-Connect endpoint got %d Connect events", len(ev))
	}

	if err := s.sim.Outcome(id, stripesim.OutcomeLeave, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.sim.Deauthorize(id); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the deauthorization", 10*time.Second, func() bool { ev, _ := k.snapshot(); return len(ev) >= 5 })
	events, _ = k.snapshot()
	if len(events) != 5 || events[4]["type"] != "account.application.deauthorized" {
		t.Errorf("after leave (no events) and deauthorize: %d events, last %v", len(events), events[len(events)-1]["type"])
	}
	if got := call(t, s.url, "GET", "/v1/accounts/"+id, nil); got.status != 403 {
		t.Errorf("a disconnected account: %d %s", got.status, got.raw)
	}
	if countAccounts(t, s) != 0 {
		t.Error("a disconnected account is still listed")
	}
}

func TestDeliveriesRetryWithBoundedBackoff(t *testing.T) {
	retry := stripesim.RetryPolicy{MaxAttempts: 4, FirstBackoff: 20 * time.Millisecond, MaxBackoff: 40 * time.Millisecond}
	t.Run("non-2xx answers are retried until one succeeds", func(t *testing.T) {
		s := newSim(t, stripesim.Options{Retry: retry})
		k := newSink(t, 2)
		register(t, s, k, true)
		id := createAccount(t, s, "retry")
		// An update sends account.updated only.
		call(t, s.url, "POST", "/v1/accounts/"+id, form("metadata[x]", "1"))
		waitFor(t, "delivery", 10*time.Second, func() bool { d := s.sim.Deliveries(); return len(d) == 1 && d[0].Delivered })
		_, times := k.snapshot()
		if len(times) != 3 {
			t.Fatalf("%d attempts, want 3", len(times))
		}
		for i, want := range []time.Duration{20 * time.Millisecond, 40 * time.Millisecond} {
			if gap := times[i+1].Sub(times[i]); gap < want {
				t.Errorf("attempt %d came %v after the one before, want at least %v", i+2, gap, want)
			}
		}
		d := s.sim.Deliveries()
		if len(d) != 1 || !d[0].Delivered || d[0].Attempts != 3 || d[0].LastStatus != 200 {
			t.Errorf("deliveries %+v", d)
		}
	})
	t.Run("the simulator gives up after MaxAttempts", func(t *testing.T) {
		s := newSim(t, stripesim.Options{Retry: retry})
		k := newSink(t, 1000)
		register(t, s, k, true)
		id := createAccount(t, s, "giveup")
		call(t, s.url, "POST", "/v1/accounts/"+id, form("metadata[x]", "1"))
		waitFor(t, "giving up", 10*time.Second, func() bool { d := s.sim.Deliveries(); return len(d) == 1 && d[0].GaveUp })
		_, times := k.snapshot()
		if len(times) != 4 {
			t.Errorf("%d attempts, want MaxAttempts (4)", len(times))
		}
		for i := 2; i < len(times); i++ {
			if gap := times[i].Sub(times[i-1]); gap < 40*time.Millisecond {
				t.Errorf("gap %d = %v, want the 40 ms cap or more", i, gap)
			}
		}
	})
}

func TestChaosDuplicatesAndShuffles(t *testing.T) {
	s := newSim(t, stripesim.Options{Chaos: stripesim.Chaos{Duplicate: true, Shuffle: true, MaxDelay: 30 * time.Millisecond}})
	k := newSink(t, 0)
	register(t, s, k, true)
	id := createAccount(t, s, "chaos")
	if err := s.sim.Outcome(id, stripesim.OutcomeComplete, ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "eight deliveries", 10*time.Second, func() bool { ev, _ := k.snapshot(); return len(ev) == 8 })
	events, _ := k.snapshot()
	seen := map[string]int{}
	for _, ev := range events {
		seen[ev["id"].(string)]++
	}
	if len(seen) != 4 {
		t.Errorf("%d distinct events, want the submission's 4", len(seen))
	}
	for id, n := range seen {
		if n != 2 {
			t.Errorf("event %s delivered %d times, want 2", id, n)
		}
	}
}

// When the holder submits onboarding, Stripe takes the details (the account verifying,
// its capabilities pending) and decides within the same second: account.updated and
// capability.updated come as one burst of one created second, showing both states, in no
// guaranteed order (https://docs.stripe.com/webhooks#event-ordering). The simulator sends
// it in Stripe's order, newest first with SIM_CHAOS=reverse, shuffled with shuffle.
func TestSubmittingOnboardingSendsABurstOfOneSecond(t *testing.T) {
	tests := []struct {
		name     string
		chaos    stripesim.Chaos
		outcome  string
		due      string
		wantLast map[string]any // of the newest account.updated
		wantCaps string
	}{
		{"complete", stripesim.Chaos{}, stripesim.OutcomeComplete, "", map[string]any{"charges_enabled": true, "payouts_enabled": true}, "active"},
		{"complete, newest first", stripesim.Chaos{Reverse: true}, stripesim.OutcomeComplete, "", map[string]any{"charges_enabled": true}, "active"},
		{"restricted past due", stripesim.Chaos{}, stripesim.OutcomeRestricted, "past", map[string]any{"charges_enabled": false}, "inactive"},
		{"complete, shuffled", stripesim.Chaos{Shuffle: true}, stripesim.OutcomeComplete, "", map[string]any{"charges_enabled": true}, "active"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSim(t, stripesim.Options{Chaos: tt.chaos})
			k := newSink(t, 0)
			register(t, s, k, true)
			id := createAccount(t, s, "burst")
			if err := s.sim.Outcome(id, tt.outcome, tt.due); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the burst", 10*time.Second, func() bool { ev, _ := k.snapshot(); return len(ev) == 4 })
			delivered, _ := k.snapshot()
			// Stripe's order: the simulator's dispatch order, which reverse reverses.
			stripeOrder := dispatchOrder(s)
			if tt.chaos.Reverse {
				slices.Reverse(stripeOrder)
			}
			events := slices.SortedFunc(slices.Values(delivered), func(a, b map[string]any) int {
				return slices.Index(stripeOrder, a["id"].(string)) - slices.Index(stripeOrder, b["id"].(string))
			})
			var types []string
			for _, ev := range events {
				types = append(types, ev["type"].(string))
				if ev["created"] != events[0]["created"] {
					t.Errorf("created %v and %v: one burst is one second", ev["created"], events[0]["created"])
				}
			}
			if want := []string{"account.updated", "capability.updated", "capability.updated", "account.updated"}; !slices.Equal(types, want) {
				t.Fatalf("the burst is %v, want %v", types, want)
			}
			object := func(i int) map[string]any { return events[i]["data"].(map[string]any)["object"].(map[string]any) }
			verifying, now := object(0), object(3)
			reqs := verifying["requirements"].(map[string]any)
			if verifying["details_submitted"] != true || verifying["charges_enabled"] != false || reqs["disabled_reason"] != "requirements.pending_verification" ||
				verifying["capabilities"].(map[string]any)["transfers"] != "pending" {
				t.Errorf("the first account.updated shows %v, want the account verifying what was submitted", verifying)
			}
			for key, want := range tt.wantLast {
				if now[key] != want {
					t.Errorf("the last account.updated has %s %v, want %v", key, now[key], want)
				}
			}
			if object(1)["status"] != tt.wantCaps || now["capabilities"].(map[string]any)["card_payments"] != tt.wantCaps {
				t.Errorf("capabilities %v and %v, want %s", object(1)["status"], now["capabilities"], tt.wantCaps)
			}
			arrival := make([]string, len(delivered))
			for i, ev := range delivered {
				arrival[i] = ev["id"].(string)
			}
			if !tt.chaos.Shuffle && !slices.Equal(arrival, dispatchOrder(s)) {
				t.Errorf("arrived %v, want the order sent, %v", arrival, dispatchOrder(s))
			}
			if tt.chaos.Reverse && (arrival[0] != events[3]["id"] || arrival[3] != events[0]["id"]) {
				t.Errorf("with reverse, arrived %v: want the newest account.updated first and the verifying one last", arrival)
			}

			// A later change is one step: no burst of two states.
			if err := s.sim.Outcome(id, stripesim.OutcomeComplete, ""); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the change", 10*time.Second, func() bool { ev, _ := k.snapshot(); return len(ev) == 7 })
			if ev, _ := k.snapshot(); len(ev) != 7 {
				t.Errorf("%d events after the second change, want 3 more", len(ev))
			}
		})
	}
}

// dispatchOrder is the ids of the simulator's deliveries in the order it sent them.
func dispatchOrder(s *simEnv) []string {
	var ids []string
	for _, d := range s.sim.Deliveries() {
		ids = append(ids, d.EventID)
	}
	return ids
}

func TestPendingVerificationBecomesActive(t *testing.T) {
	s := newSim(t, stripesim.Options{VerifyDelay: 50 * time.Millisecond})
	k := newSink(t, 0)
	register(t, s, k, true)
	id := createAccount(t, s, "pending")
	if err := s.sim.Outcome(id, stripesim.OutcomePending, ""); err != nil {
		t.Fatal(err)
	}
	if got := call(t, s.url, "GET", "/v1/accounts/"+id, nil); got.str("requirements", "disabled_reason") != "requirements.pending_verification" {
		t.Errorf("right after submission: %s", got.raw)
	}
	waitFor(t, "active", 10*time.Second, func() bool {
		got := call(t, s.url, "GET", "/v1/accounts/"+id, nil)
		return got.body["charges_enabled"] == true && got.body["payouts_enabled"] == true
	})
	waitFor(t, "its events", 10*time.Second, func() bool { ev, _ := k.snapshot(); return len(ev) == 6 })
	events, _ := k.snapshot()
	last := events[3]["data"].(map[string]any)["object"].(map[string]any)
	if events[3]["type"] != "account.updated" || last["charges_enabled"] != true {
		t.Errorf("the second account.updated is %v with %v", events[3]["type"], last["charges_enabled"])
	}
}

func TestRejectAccount(t *testing.T) {
	s := newSim(t, stripesim.Options{})
	k := newSink(t, 0)
	register(t, s, k, true)
	id := createAccount(t, s, "reject")
	got := call(t, s.url, "POST", "/v1/accounts/"+id+"/reject", form("reason", "fraud"))
	if got.status != 200 || got.str("requirements", "disabled_reason") != "rejected.fraud" || got.body["payouts_enabled"] != false {
		t.Fatalf("%d %s", got.status, got.raw)
	}
	waitFor(t, "events", 10*time.Second, func() bool { ev, _ := k.snapshot(); return len(ev) == 3 })
	events, _ := k.snapshot()
	capObj := events[1]["data"].(map[string]any)["object"].(map[string]any)
	if capObj["status"] != "inactive" || capObj["requirements"].(map[string]any)["disabled_reason"] != "rejected.fraud" {
		t.Errorf("capability after reject: %v", capObj)
	}
}

// Stripe rejects a live-mode account only once all its balances are zero;
// test-mode accounts at any time (https://docs.stripe.com/api/account/reject).
// The refusal is a request that began executing: its answer is saved under
// the Idempotency-Key, so the same key replays it after the balance was
// cleared, and only a new key rejects. An account already rejected is
// refused a second rejection.
func TestRejectAccountNeedsZeroBalancesInLiveMode(t *testing.T) {
	liveKey := liveModeKey
	reject := func(s *simEnv, id, key, idem string) answer {
		return call(t, s.url, "POST", "/v1/accounts/"+id+"/reject", form("reason", "fraud"), "Authorization", "Bearer "+key, "Idempotency-Key", idem)
	}
	create := func(s *simEnv, key string) string {
		a := call(t, s.url, "POST", "/v1/accounts", createForm("bal"), "Authorization", "Bearer "+key)
		if a.status != 200 {
			t.Fatalf("create: %d %s", a.status, a.raw)
		}
		return a.str("id")
	}
	const refusal = "For an account created with your live-mode key, you cannot reject the account when the balance in any currency is non-zero. Currencies with non-zero balances: eur, usd."
	for _, tc := range []struct {
		name    string
		key     string
		rule    stripesim.RejectBalanceRule
		refused bool
	}{
		{"live mode", liveKey, "", true},
		{"test mode", testKey, "", false},
		{"test mode with SIM_REJECT_BALANCE_RULE=always", testKey, stripesim.RejectBalanceAlways, true},
		{"live mode with SIM_REJECT_BALANCE_RULE=live", liveKey, stripesim.RejectBalanceLive, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSim(t, stripesim.Options{RejectBalanceRule: tc.rule})
			id := create(s, tc.key)
			if err := s.sim.SetBalance(id, "USD", 1500); err != nil {
				t.Fatal(err)
			}
			if got := call(t, s.url, "POST", "/_sim/accounts/"+id+"/balance", form("amount", "-200", "currency", "eur")); got.status != 200 {
				t.Fatalf("balance control: %d %s", got.status, got.raw)
			}
			first := reject(s, id, tc.key, "attempt-1")
			if !tc.refused {
				if first.status != 200 || first.str("requirements", "disabled_reason") != "rejected.fraud" {
					t.Fatalf("a test-mode reject with a balance: %d %s, want it rejected", first.status, first.raw)
				}
				return
			}
			if first.status != 400 || first.errField("type") != "invalid_request_error" || first.errField("message") != refusal {
				t.Fatalf("a reject with balances: %d %s", first.status, first.raw)
			}
			for _, clear := range []string{"usd", "eur"} {
				if got := call(t, s.url, "POST", "/_sim/accounts/"+id+"/balance", form("amount", "0", "currency", clear)); got.status != 200 {
					t.Fatalf("clear %s: %d %s", clear, got.status, got.raw)
				}
			}
			if again := reject(s, id, tc.key, "attempt-1"); again.status != 400 || again.header.Get("Idempotent-Replayed") != "true" || again.raw != first.raw {
				t.Errorf("the same key after the balance was cleared: %d %s, want the saved refusal replayed", again.status, again.raw)
			}
			if fresh := reject(s, id, tc.key, "attempt-2"); fresh.status != 200 || fresh.str("requirements", "disabled_reason") != "rejected.fraud" {
				t.Fatalf("a new key with zero balances: %d %s", fresh.status, fresh.raw)
			}
			if second := reject(s, id, tc.key, "attempt-3"); second.status != 400 || second.errField("type") != "invalid_request_error" ||
				!strings.Contains(second.errField("message"), "already been rejected") {
				t.Errorf("a second rejection: %d %s, want it refused", second.status, second.raw)
			}
		})
	}
	s := newSim(t, stripesim.Options{})
	id := createAccount(t, s, "control")
	for _, bad := range []url.Values{form("amount", "ten"), form("amount", "5", "currency", "dollars"), form()} {
		if got := call(t, s.url, "POST", "/_sim/accounts/"+id+"/balance", bad); got.status != 400 {
			t.Errorf("balance control %v: %d %s, want 400", bad, got.status, got.raw)
		}
	}
	if got := call(t, s.url, "POST", "/_sim/accounts/acct_nobody/balance", form("amount", "5")); got.status != 404 {
		t.Errorf("balance of an unknown account: %d", got.status)
	}
	if err := s.sim.SetBalance("acct_nobody", "usd", 5); err == nil {
		t.Error("SetBalance of an unknown account: no error")
	}
}

// openLink creates an account link for id and returns its URL.
func openLink(t *testing.T, s *simEnv, id, returnURL string) (string, answer) {
	t.Helper()
	got := call(t, s.url, "POST", "/v1/account_links", form("account", id, "type", "account_onboarding",
		"refresh_url", "https://platform.example/refresh?token=abc", "return_url", returnURL))
	if got.status != 200 || got.body["object"] != "account_link" {
		t.Fatalf("link: %d %s", got.status, got.raw)
	}
	return got.str("url"), got
}

func get(t *testing.T, u string) (*http.Response, string) {
	t.Helper()
	resp, err := noRedirects.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestAccountLinksAreSingleUseAndExpire(t *testing.T) {
	c := &clock{now: time.Unix(1_800_000_000, 0)}
	s := newSim(t, stripesim.Options{Now: c.Now, LinkTTL: 10 * time.Second})
	id := createAccount(t, s, "links")
	link, created := openLink(t, s, id, "https://platform.example/return")
	if exp, _ := created.body["expires_at"].(float64); int64(exp) != 1_800_000_010 {
		t.Errorf("expires_at = %v, want created + SIM_LINK_TTL", created.body["expires_at"])
	}
	resp, page := get(t, link)
	if resp.StatusCode != 200 || !strings.Contains(page, "Local Stripe simulator — not Stripe") || !strings.Contains(page, id) ||
		!strings.Contains(page, `data-testid="sim-complete"`) || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("first visit: %d", resp.StatusCode)
	}
	for _, hook := range []string{"sim-complete", "sim-restricted", "sim-pending", "sim-reject", "sim-leave"} {
		if !strings.Contains(page, `data-testid="`+hook+`"`) {
			t.Errorf("the onboarding page has no %s", hook)
		}
	}
	if resp, _ := get(t, link); resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "https://platform.example/refresh?token=abc" {
		t.Errorf("second visit: %d to %q, want 302 to refresh_url", resp.StatusCode, resp.Header.Get("Location"))
	}

	expiring, _ := openLink(t, s, id, "https://platform.example/return")
	c.Advance(10 * time.Second)
	if resp, _ := get(t, expiring); resp.StatusCode != http.StatusFound {
		t.Errorf("an expired link: %d, want 302 to refresh_url", resp.StatusCode)
	}
	if resp, _ := get(t, s.url+"/setup/e/"+id+"/nosuchtoken"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("an unknown link: %d", resp.StatusCode)
	}

	rejected, _ := openLink(t, s, id, "https://platform.example/return")
	call(t, s.url, "POST", "/v1/accounts/"+id+"/reject", form("reason", "other"))
	if resp, _ := get(t, rejected); resp.StatusCode != http.StatusFound {
		t.Errorf("a rejected account's link: %d, want 302 to refresh_url", resp.StatusCode)
	}

	other := createAccount(t, s, "gone")
	gone, _ := openLink(t, s, other, "https://platform.example/return")
	if err := s.sim.Deauthorize(other); err != nil {
		t.Fatal(err)
	}
	if resp, _ := get(t, gone); resp.StatusCode != http.StatusFound {
		t.Errorf("a disconnected account's link: %d, want 302 to refresh_url", resp.StatusCode)
	}
}

func TestOnboardingPageSubmitsOnceAndReturns(t *testing.T) {
	s := newSim(t, stripesim.Options{})
	id := createAccount(t, s, "page")
	link, _ := openLink(t, s, id, "https://platform.example/return")
	_, page := get(t, link)
	i := strings.Index(page, `action="/setup/s/`)
	if i < 0 {
		t.Fatal("no form on the page")
	}
	action := page[i+len(`action="`):]
	action = action[:strings.IndexByte(action, '"')]
	submit := func(v url.Values) *http.Response {
		resp, err := noRedirects.PostForm(s.url+action, v)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := submit(form("outcome", "sideways")); resp.StatusCode != 400 {
		t.Errorf("an unknown outcome: %d", resp.StatusCode)
	}
	resp := submit(form("outcome", "restricted", "due", "soon"))
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "https://platform.example/return" {
		t.Fatalf("submit: %d to %q, want 303 to return_url", resp.StatusCode, resp.Header.Get("Location"))
	}
	got := call(t, s.url, "GET", "/v1/accounts/"+id, nil)
	req := got.body["requirements"].(map[string]any)
	if got.body["details_submitted"] != true || req["disabled_reason"] != nil || req["current_deadline"] == nil || len(req["currently_due"].([]any)) != 1 {
		t.Errorf("after due soon: %s", got.raw)
	}
	if resp := submit(form("outcome", "complete")); resp.StatusCode != http.StatusGone {
		t.Errorf("a second submission: %d, want 410", resp.StatusCode)
	}
}

func TestDashboardLoginLinks(t *testing.T) {
	s := newSim(t, stripesim.Options{})
	id := createAccount(t, s, "dash")
	if err := s.sim.Outcome(id, stripesim.OutcomeComplete, ""); err != nil {
		t.Fatal(err)
	}
	got := call(t, s.url, "POST", "/v1/accounts/"+id+"/login_links", nil)
	if got.status != 200 || got.body["object"] != "login_link" {
		t.Fatalf("%d %s", got.status, got.raw)
	}
	resp, page := get(t, got.str("url"))
	if resp.StatusCode != 200 || !strings.Contains(page, `data-testid="sim-dashboard"`) || !strings.Contains(page, id) ||
		!strings.Contains(page, "Local Stripe simulator — not Stripe") {
		t.Errorf("dashboard: %d", resp.StatusCode)
	}
	if resp, _ := get(t, got.str("url")); resp.StatusCode != http.StatusGone {
		t.Errorf("a used login link: %d, want 410", resp.StatusCode)
	}
}

func TestOptionsFromEnv(t *testing.T) {
	env := func(kv map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) { v, ok := kv[k]; return v, ok }
	}
	o, err := stripesim.OptionsFromEnv(env(map[string]string{"SIM_LINK_TTL": "10s", "SIM_VERIFY_DELAY": "500ms", "SIM_CHAOS": "dup, shuffle,reverse,delay=250ms"}))
	if err != nil || o.LinkTTL != 10*time.Second || o.VerifyDelay != 500*time.Millisecond ||
		o.Chaos != (stripesim.Chaos{Duplicate: true, Shuffle: true, Reverse: true, MaxDelay: 250 * time.Millisecond}) || o.Chaos.String() != "dup,shuffle,reverse,delay=250ms" {
		t.Errorf("%+v, %v", o, err)
	}
	if o, err := stripesim.OptionsFromEnv(env(map[string]string{"SIM_REJECT_BALANCE_RULE": "always"})); err != nil || o.RejectBalanceRule != stripesim.RejectBalanceAlways {
		t.Errorf("SIM_REJECT_BALANCE_RULE=always: %+v, %v", o, err)
	}
	if o, err := stripesim.OptionsFromEnv(env(map[string]string{"SIM_LINK_TTL": "", "SIM_CHAOS": ""})); err != nil || o.LinkTTL != 0 || o.Chaos.String() != "off" {
		t.Errorf("empty counts as unset: %+v, %v", o, err)
	}
	for _, bad := range []map[string]string{
		{"SIM_LINK_TTL": "10"}, {"SIM_VERIFY_DELAY": "-1s"}, {"SIM_CHAOS": "dup,explode"}, {"SIM_CHAOS": "delay=forever"},
		{"SIM_REJECT_BALANCE_RULE": "sometimes"},
	} {
		if _, err := stripesim.OptionsFromEnv(env(bad)); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

// A muted account changes as before, but no endpoint hears of it: what the
// reconciliation sweep's tests use to lose deliveries.
func TestMutedAccountsChangeWithoutEvents(t *testing.T) {
	s := newSim(t, stripesim.Options{})
	k := newSink(t, 0)
	register(t, s, k, true)
	muted, heard := createAccount(t, s, "muted"), createAccount(t, s, "heard")

	if got := call(t, s.url, "POST", "/_sim/accounts/"+muted+"/webhooks", form("muted", "true")); got.status != 200 {
		t.Fatalf("mute: %d %s", got.status, got.raw)
	}
	if got := call(t, s.url, "POST", "/_sim/accounts/"+muted+"/outcome", form("outcome", "restricted", "due", "past")); got.status != 200 {
		t.Fatalf("outcome: %d %s", got.status, got.raw)
	}
	if err := s.sim.Outcome(heard, stripesim.OutcomeComplete, ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the unmuted account's events", 10*time.Second, func() bool { ev, _ := k.snapshot(); return len(ev) >= 3 })
	time.Sleep(100 * time.Millisecond) // a muted event would have been queued before the others
	events, _ := k.snapshot()
	for _, ev := range events {
		if ev["account"] == muted {
			t.Errorf("the muted account's %v reached the endpoint", ev["type"])
		}
	}
	got := call(t, s.url, "GET", "/v1/accounts/"+muted, nil)
	if reason, _ := got.body["requirements"].(map[string]any)["disabled_reason"].(string); reason != "requirements.past_due" {
		t.Errorf("the muted account did not change: %s", got.raw)
	}

	if err := s.sim.MuteWebhooks(muted, false); err != nil {
		t.Fatal(err)
	}
	if err := s.sim.Outcome(muted, stripesim.OutcomeComplete, ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "events once unmuted", 10*time.Second, func() bool {
		ev, _ := k.snapshot()
		return len(ev) > 0 && ev[len(ev)-1]["account"] == muted
	})

	for _, c := range []struct {
		path string
		form url.Values
		want int
	}{
		{"/_sim/accounts/" + muted + "/webhooks", form("muted", "maybe"), 400},
		{"/_sim/accounts/acct_1NoSuch/webhooks", form("muted", "true"), 404},
		{"/_sim/accounts/" + muted + "/outcome", form("outcome", "explode"), 400},
		{"/_sim/accounts/acct_1NoSuch/outcome", form("outcome", "complete"), 404},
	} {
		if got := call(t, s.url, "POST", c.path, c.form); got.status != c.want {
			t.Errorf("POST %s %v: %d %s, want %d", c.path, c.form, got.status, got.raw, c.want)
		}
	}
}

// liveModeKey is shaped like a live-mode secret key, which the simulator
// must refuse; built in two parts so no live-key pattern sits in the source.
var liveModeKey = "sk_" + "live_simulator"

// Stripe does not tell the platform why its key cannot reach an account:
// never existed, deleted, disconnected (with or without the event reaching
// the platform), or of the other mode. Every call about it answers 403
// invalid_request_error with code account_invalid
// (https://docs.stripe.com/error-codes#account-invalid), never 404.
func TestUnreachableAccountsAnswer403AccountInvalid(t *testing.T) {
	s := newSim(t, stripesim.Options{})
	k := newSink(t, 0)
	register(t, s, k, true)
	deauthorized, revoked, revokedByControl, testMode := createAccount(t, s, "deauthorized"), createAccount(t, s, "revoked"),
		createAccount(t, s, "revoked-by-control"), createAccount(t, s, "test-mode")
	revokedLink, _ := openLink(t, s, revoked, "https://platform.example/return")
	if err := s.sim.Deauthorize(deauthorized); err != nil {
		t.Fatal(err)
	}
	if err := s.sim.RevokeAccess(revoked); err != nil {
		t.Fatal(err)
	}
	if got := call(t, s.url, "POST", "/_sim/accounts/"+revokedByControl+"/deauthorize", form("webhook", "false")); got.status != 200 {
		t.Fatalf("revoke through the control: %d %s", got.status, got.raw)
	}
	for _, acct := range []struct{ name, id, key string }{
		{"never existed", "acct_1NeverExisted00", testKey},
		{"disconnected, event sent", deauthorized, testKey},
		{"access revoked, no event", revoked, testKey},
		{"access revoked through the control, no event", revokedByControl, testKey},
		{"a test-mode account seen with a live key", testMode, liveModeKey},
	} {
		for _, op := range []struct {
			name, method, path string
			form               url.Values
		}{
			{"retrieve", "GET", "/v1/accounts/" + acct.id, nil},
			{"update", "POST", "/v1/accounts/" + acct.id, form("email", "x@example.com")},
			{"login link", "POST", "/v1/accounts/" + acct.id + "/login_links", nil},
			{"account link", "POST", "/v1/account_links", form("account", acct.id, "type", "account_onboarding",
				"refresh_url", "https://a.example/r", "return_url", "https://a.example/b")},
			{"reject", "POST", "/v1/accounts/" + acct.id + "/reject", form("reason", "fraud")},
		} {
			t.Run(acct.name+"/"+op.name, func(t *testing.T) {
				got := call(t, s.url, op.method, op.path, op.form, "Authorization", "Bearer "+acct.key)
				if got.status != http.StatusForbidden || got.errField("type") != "invalid_request_error" || got.errField("code") != "account_invalid" {
					t.Fatalf("%d %s, want 403 invalid_request_error account_invalid", got.status, got.raw)
				}
				if msg := got.errField("message"); !strings.Contains(msg, "does not have access to account '"+acct.id+"' (or that account does not exist)") {
					t.Errorf("message %q, want Stripe's", msg)
				}
			})
		}
	}
	if resp, _ := get(t, revokedLink); resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "https://platform.example/refresh?token=abc" {
		t.Errorf("a revoked account's link: %d to %q, want 302 to refresh_url", resp.StatusCode, resp.Header.Get("Location"))
	}
	waitFor(t, "the deauthorization event", 10*time.Second, func() bool { ev, _ := k.snapshot(); return len(ev) >= 1 })
	time.Sleep(100 * time.Millisecond) // an event for a revoked account would be queued beside it
	events, _ := k.snapshot()
	for _, ev := range events {
		if ev["account"] == revoked || ev["account"] == revokedByControl {
			t.Errorf("a revocation without an event sent %v", ev["type"])
		}
	}
	if len(events) != 1 || events[0]["account"] != deauthorized || events[0]["type"] != "account.application.deauthorized" {
		t.Errorf("events: %v, want the one deauthorization", events)
	}
	if got := call(t, s.url, "POST", "/_sim/accounts/"+testMode+"/deauthorize", form("webhook", "perhaps")); got.status != 400 {
		t.Errorf("webhook=perhaps: %d, want 400", got.status)
	}
	if err := s.sim.RevokeAccess("acct_1NeverExisted00"); err == nil {
		t.Error("revoking an account the simulator never made succeeded")
	}
}

// submitPage opens an account link in a browser-like client and submits
// the hosted page's form with v; it returns the page's HTML.
func submitPage(t *testing.T, s *simEnv, link string, v url.Values) string {
	t.Helper()
	resp, page := get(t, link)
	i := strings.Index(page, `action="/setup/s/`)
	if resp.StatusCode != http.StatusOK || i < 0 {
		t.Fatalf("the hosted page: %d, no form", resp.StatusCode)
	}
	action := page[i+len(`action="`):]
	action = action[:strings.IndexByte(action, '"')]
	sub, err := noRedirects.PostForm(s.url+action, v)
	if err != nil {
		t.Fatal(err)
	}
	sub.Body.Close()
	if sub.StatusCode != http.StatusSeeOther {
		t.Fatalf("submit %v: %d, want 303 to return_url", v, sub.StatusCode)
	}
	return page
}

// A rule change leaves a future requirement due in 30 days. Stripe's
// hosted onboarding collects it only through a link with
// collection_options[future_requirements]=include: without it, finishing
// the page leaves it in place.
func TestFutureRequirementsAreCollectedOnlyByLinksThatIncludeThem(t *testing.T) {
	c := &clock{now: time.Unix(1_800_000_000, 0)}
	s := newSim(t, stripesim.Options{Now: c.Now})
	id := createAccount(t, s, "future")
	linkWith := func(extra ...string) string {
		f := form(append([]string{"account", id, "type", "account_onboarding", "refresh_url", "https://platform.example/refresh",
			"return_url", "https://platform.example/return"}, extra...)...)
		got := call(t, s.url, "POST", "/v1/account_links", f)
		if got.status != http.StatusOK {
			t.Fatalf("link %v: %d %s", extra, got.status, got.raw)
		}
		return got.str("url")
	}
	future := func() map[string]any {
		t.Helper()
		got := call(t, s.url, "GET", "/v1/accounts/"+id, nil)
		if got.body["payouts_enabled"] != true || got.body["charges_enabled"] != true {
			t.Errorf("the account is not enabled: %s", got.raw)
		}
		return got.body["future_requirements"].(map[string]any)
	}
	const wantField = "individual.verification.additional_document"

	submitPage(t, s, linkWith(), form("outcome", "restricted", "due", "future"))
	f := future()
	if due := f["currently_due"].([]any); len(due) != 1 || due[0] != wantField || len(f["eventually_due"].([]any)) != 1 {
		t.Fatalf("future_requirements = %v, want %s currently and eventually due", f, wantField)
	}
	if d, _ := f["current_deadline"].(float64); int64(d) != c.Now().Add(30*24*time.Hour).Unix() {
		t.Errorf("future_requirements.current_deadline = %v, want in 30 days", f["current_deadline"])
	}

	for _, omitted := range [][]string{nil, {"collection_options[fields]", "currently_due"},
		{"collection_options[fields]", "eventually_due", "collection_options[future_requirements]", "omit"}} {
		page := submitPage(t, s, linkWith(omitted...), form("outcome", "complete"))
		if !strings.Contains(page, `data-testid="sim-future-omitted"`) {
			t.Errorf("link %v: the page does not say it omits the future requirement", omitted)
		}
		if due := future()["currently_due"].([]any); len(due) != 1 {
			t.Errorf("link %v omits future requirements, yet finishing cleared them: %v", omitted, due)
		}
	}

	page := submitPage(t, s, linkWith("collection_options[fields]", "currently_due", "collection_options[future_requirements]", "include"),
		form("outcome", "complete"))
	if !strings.Contains(page, `data-testid="sim-future-included"`) || !strings.Contains(page, wantField) {
		t.Error("the page does not show the future requirement it collects")
	}
	if f := future(); len(f["currently_due"].([]any)) != 0 || len(f["eventually_due"].([]any)) != 0 || f["current_deadline"] != nil {
		t.Errorf("a link that includes future requirements was finished, yet future_requirements = %v", f)
	}
}

// Why the document is due again: both restricted outcomes carry Stripe's
// requirements.errors item for it.
func TestRestrictedOutcomesSayWhyTheDocumentIsDueAgain(t *testing.T) {
	s := newSim(t, stripesim.Options{})
	for _, due := range []string{"soon", "past"} {
		t.Run(due, func(t *testing.T) {
			id := createAccount(t, s, "errors-"+due)
			if err := s.sim.Outcome(id, stripesim.OutcomeRestricted, due); err != nil {
				t.Fatal(err)
			}
			got := call(t, s.url, "GET", "/v1/accounts/"+id, nil)
			req := got.body["requirements"].(map[string]any)
			errs, _ := req["errors"].([]any)
			if len(errs) != 1 {
				t.Fatalf("requirements.errors = %v, want one", req["errors"])
			}
			e := errs[0].(map[string]any)
			if e["code"] != "verification_document_expired" || e["requirement"] != req["currently_due"].([]any)[0] || e["reason"] == "" {
				t.Errorf("requirements.errors[0] = %v, want verification_document_expired on the due document with a reason", e)
			}
			if err := s.sim.Outcome(id, stripesim.OutcomeComplete, ""); err != nil {
				t.Fatal(err)
			}
			if errs := call(t, s.url, "GET", "/v1/accounts/"+id, nil).body["requirements"].(map[string]any)["errors"].([]any); len(errs) != 0 {
				t.Errorf("after completing, requirements.errors = %v, want none", errs)
			}
		})
	}
}

// Hold gives what Stripe's risk checks give a submitted account: disabled,
// with disabled_reason under_review or listed on the account and its
// capabilities; it refuses other reasons and accounts with nothing
// submitted.
func TestHoldDisablesASubmittedAccountWithStripesReason(t *testing.T) {
	s := newSim(t, stripesim.Options{})
	id := createAccount(t, s, "held")
	if err := s.sim.Hold(id, "under_review"); err == nil {
		t.Error("an account with nothing submitted was held")
	}
	if err := s.sim.Outcome(id, stripesim.OutcomeComplete, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.sim.Hold(id, "rejected.fraud"); err == nil {
		t.Error("a hold with a rejection's reason was accepted")
	}
	for _, reason := range []string{"under_review", "listed"} {
		if err := s.sim.Hold(id, reason); err != nil {
			t.Fatalf("hold %s: %v", reason, err)
		}
		a := call(t, s.url, "GET", "/v1/accounts/"+id, nil)
		if got := a.str("requirements", "disabled_reason"); got != reason || a.body["charges_enabled"] != false || a.body["payouts_enabled"] != false {
			t.Errorf("held %s: disabled_reason %q, charges %v, payouts %v", reason, got, a.body["charges_enabled"], a.body["payouts_enabled"])
		}
		caps, _ := a.body["capabilities"].(map[string]any)
		for name, status := range caps {
			if status != "inactive" {
				t.Errorf("held %s: capability %s is %v, want inactive", reason, name, status)
			}
		}
	}
}
