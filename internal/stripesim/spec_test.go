package stripesim_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connectexpress/onboarding/internal/stripesim"
)

// specRoutes are the simulator's API routes, each named by the path Stripe's
// spec gives it. A route the simulator gains (account sessions, say) is one
// line here; TestEveryAnswerMatchesStripesSpec then fails until its walk
// reaches the new route and the answers validate.
var specRoutes = []string{
	"POST /v1/accounts",
	"GET /v1/accounts",
	"GET /v1/accounts/{account}",
	"POST /v1/accounts/{account}",
	"POST /v1/accounts/{account}/reject",
	"POST /v1/accounts/{account}/login_links",
	"POST /v1/account_links",
	"POST /v1/account_sessions",
	"POST /v1/webhook_endpoints",
	"GET /v1/webhook_endpoints",
	"GET /v1/webhook_endpoints/{webhook_endpoint}",
	"DELETE /v1/webhook_endpoints/{webhook_endpoint}",
}

// recorded is one API answer the simulator sent.
type recorded struct {
	method, path string // as requested
	route        string // the matched specRoutes entry, "" for none
	status       int
	body         []byte
}

// recorder sits between the test's HTTP calls and the simulator and keeps
// every /v1 answer, so nothing the walk triggers escapes the check.
type recorder struct {
	next   http.Handler
	routes *http.ServeMux

	mu      sync.Mutex
	answers []recorded
}

func newRecorder(next http.Handler) *recorder {
	r := &recorder{next: next, routes: http.NewServeMux()}
	for _, route := range specRoutes {
		r.routes.HandleFunc(route, func(http.ResponseWriter, *http.Request) {})
	}
	return r
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.URL.Path, "/v1/") {
		rec.next.ServeHTTP(w, r) // hosted pages and the simulator's controls
		return
	}
	cw := &capturingWriter{ResponseWriter: w, status: http.StatusOK}
	rec.next.ServeHTTP(cw, r)
	_, pattern := rec.routes.Handler(r)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.answers = append(rec.answers, recorded{method: r.Method, path: r.URL.Path, route: pattern, status: cw.status, body: cw.body.Bytes()})
}

func (rec *recorder) snapshot() []recorded {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]recorded(nil), rec.answers...)
}

type capturingWriter struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (c *capturingWriter) WriteHeader(status int) {
	c.status = status
	c.ResponseWriter.WriteHeader(status)
}
func (c *capturingWriter) Write(b []byte) (int, error) {
	c.body.Write(b)
	return c.ResponseWriter.Write(b)
}

// webhookBodies is a Connect endpoint that keeps every body delivered to it.
type webhookBodies struct {
	mu     sync.Mutex
	bodies [][]byte
	srv    *httptest.Server
}

func newWebhookBodies(t *testing.T) *webhookBodies {
	k := &webhookBodies{}
	k.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		k.mu.Lock()
		k.bodies = append(k.bodies, b)
		k.mu.Unlock()
	}))
	t.Cleanup(k.srv.Close)
	return k
}

func (k *webhookBodies) snapshot() [][]byte {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([][]byte(nil), k.bodies...)
}

// TestEveryAnswerMatchesStripesSpec walks what a platform does with Connect
// Express accounts, through every hosted-page outcome and the errors Stripe
// answers, and checks every answer and every webhook body the simulator sent
// against Stripe's OpenAPI spec for 2023-10-16.
func TestEveryAnswerMatchesStripesSpec(t *testing.T) {
	spec := loadStripeSpec(t)
	// A platform whose Connect settings add a payment-method capability,
	// and whose test-mode rejects meet the live-mode balance rule, so the
	// walk reaches those answers too.
	sim := stripesim.New(stripesim.Options{VerifyDelay: 50 * time.Millisecond,
		PlatformCapabilities: []string{"us_bank_account_ach_payments"}, RejectBalanceRule: stripesim.RejectBalanceAlways})
	rec := newRecorder(sim)
	srv := httptest.NewServer(rec)
	sim.SetPublicURL(srv.URL)
	t.Cleanup(func() { srv.Close(); sim.Close() })
	base := srv.URL
	hooks := newWebhookBodies(t)

	must := func(a answer, what string) answer {
		t.Helper()
		if a.status != http.StatusOK {
			t.Fatalf("%s: %d %s", what, a.status, a.raw)
		}
		return a
	}
	control := func(path string, kv ...string) {
		t.Helper()
		resp, err := http.PostForm(base+path, form(kv...))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST %s: %d", path, resp.StatusCode)
		}
	}

	// The platform's Connect endpoint, and one it will delete.
	endpoint := must(call(t, base, "POST", "/v1/webhook_endpoints", form("url", hooks.srv.URL, "connect", "true",
		"enabled_events[0]", "*", "description", "connect events", "metadata[env]", "test")), "connect endpoint").str("id")
	spare := must(call(t, base, "POST", "/v1/webhook_endpoints", form("url", "https://platform.example/hooks",
		"enabled_events[0]", "account.updated")), "platform endpoint").str("id")

	// Accounts created as this service creates them, and as others might.
	created := map[string]string{}
	for _, tt := range []struct {
		name string
		form url.Values
	}{
		{"full, individual, prefilled", form("type", "express", "country", "US", "email", "full@example.com",
			"business_type", "individual", "capabilities[card_payments][requested]", "true",
			"capabilities[transfers][requested]", "true", "tos_acceptance[service_agreement]", "full",
			"business_profile[url]", "https://seller.example", "business_profile[mcc]", "5734",
			"metadata[platform_user_id]", "u_full")},
		{"recipient, company, cross-border", form("type", "express", "country", "FR", "business_type", "company",
			"capabilities[transfers][requested]", "true", "tos_acceptance[service_agreement]", "recipient",
			"metadata[platform_user_id]", "u_recipient")},
		{"nothing but the type", form("type", "express")},
		{"non-profit with a product description", form("type", "express", "country", "GB", "business_type", "non_profit",
			"business_profile[product_description]", "Lessons", "default_currency", "gbp")},
		{"accepted terms", form("type", "express", "country", "DE", "business_type", "individual",
			"tos_acceptance[date]", "1700000000", "tos_acceptance[ip]", "192.0.2.1", "tos_acceptance[user_agent]", "test")},
		{"future requirement", form("type", "express", "country", "US", "business_type", "individual",
			"capabilities[card_payments][requested]", "true", "capabilities[transfers][requested]", "true")},
		{"balance held", form("type", "express", "country", "US", "capabilities[card_payments][requested]", "true",
			"capabilities[transfers][requested]", "true")},
		{"revoked", form("type", "express", "country", "US")},
	} {
		created[tt.name] = must(call(t, base, "POST", "/v1/accounts", tt.form), "create "+tt.name).str("id")
	}
	full, recipient, bare := created["full, individual, prefilled"], created["recipient, company, cross-border"], created["nothing but the type"]
	nonProfit, accepted := created["non-profit with a product description"], created["accepted terms"]

	// An idempotent create, replayed.
	idem := form("type", "express", "metadata[platform_user_id]", "u_idem")
	first := must(call(t, base, "POST", "/v1/accounts", idem, "Idempotency-Key", "create-u_idem"), "idempotent create")
	if replay := call(t, base, "POST", "/v1/accounts", idem, "Idempotency-Key", "create-u_idem"); replay.str("id") != first.str("id") {
		t.Errorf("the replay made another account: %s", replay.raw)
	}

	// Updates before onboarding, then links.
	must(call(t, base, "POST", "/v1/accounts/"+bare, form("email", "bare@example.com", "metadata[platform_user_id]", "u_bare",
		"business_profile[name]", "Bare")), "update")
	must(call(t, base, "GET", "/v1/accounts/"+full, nil), "retrieve")
	links := []url.Values{
		form("type", "account_onboarding", "collect", "eventually_due"),
		form("type", "account_onboarding", "collection_options[fields]", "eventually_due", "collection_options[future_requirements]", "include"),
		form("type", "account_onboarding"),
		form("type", "account_onboarding", "collection_options[fields]", "currently_due"),
		form("type", "account_onboarding"),
	}
	for i, id := range []string{full, recipient, bare, nonProfit, accepted} {
		f := links[i]
		f.Set("account", id)
		f.Set("refresh_url", "https://platform.example/refresh")
		f.Set("return_url", "https://platform.example/return")
		must(call(t, base, "POST", "/v1/account_links", f), "link for "+id)
	}

	// Account Sessions: onboarding alone, and every component with features.
	must(call(t, base, "POST", "/v1/account_sessions", form("account", full, "components[account_onboarding][enabled]", "true")), "session")
	must(call(t, base, "POST", "/v1/account_sessions", form("account", recipient, "components[account_onboarding][enabled]", "true",
		"components[payouts][enabled]", "true", "components[payouts][features][instant_payouts]", "true",
		"components[payments][enabled]", "false", "components[payment_details][enabled]", "true",
		"components[documents][enabled]", "true")), "session with every component")

	// Every hosted-page outcome, through the simulator's controls.
	control("/_sim/accounts/"+full+"/outcome", "outcome", stripesim.OutcomeComplete)
	control("/_sim/accounts/"+recipient+"/outcome", "outcome", stripesim.OutcomeRestricted, "due", "soon")
	control("/_sim/accounts/"+bare+"/outcome", "outcome", stripesim.OutcomeRestricted, "due", "past")
	control("/_sim/accounts/"+nonProfit+"/outcome", "outcome", stripesim.OutcomePending)
	control("/_sim/accounts/"+accepted+"/outcome", "outcome", stripesim.OutcomeLeave)
	// A rule change's future requirement (issue 21, item 2), and access
	// revoked without account.application.deauthorized (item 5).
	futureReq, balanceHeld, revoked := created["future requirement"], created["balance held"], created["revoked"]
	control("/_sim/accounts/"+futureReq+"/outcome", "outcome", stripesim.OutcomeRestricted, "due", "future")
	must(call(t, base, "GET", "/v1/accounts/"+futureReq, nil), "retrieve with a future requirement")
	control("/_sim/accounts/"+revoked+"/deauthorize", "webhook", "false")
	control("/_sim/accounts/"+balanceHeld+"/balance", "amount", "1500", "currency", "usd")
	for _, id := range []string{full, recipient, bare, accepted} {
		must(call(t, base, "GET", "/v1/accounts/"+id, nil), "retrieve after the outcome")
	}
	time.Sleep(100 * time.Millisecond) // pending becomes active
	must(call(t, base, "GET", "/v1/accounts/"+nonProfit, nil), "retrieve after verification")
	// Stripe's own risk checks hold a submitted account (the staff's
	// stripe_review signal): both reasons, on the account and its
	// capabilities, and their events.
	control("/_sim/accounts/"+nonProfit+"/hold", "reason", "listed")
	control("/_sim/accounts/"+futureReq+"/hold", "reason", "under_review")
	for _, id := range []string{nonProfit, futureReq} {
		must(call(t, base, "GET", "/v1/accounts/"+id, nil), "retrieve while Stripe holds it")
	}
	must(call(t, base, "POST", "/v1/accounts/"+full+"/login_links", nil), "login link")
	must(call(t, base, "POST", "/v1/accounts/"+recipient+"/login_links", nil), "login link, restricted")

	// Lists, paged both ways and filtered.
	page1 := must(call(t, base, "GET", "/v1/accounts", form("limit", "2")), "list")
	data, _ := page1.body["data"].([]any)
	if len(data) != 2 || page1.body["has_more"] != true {
		t.Fatalf("first page: %s", page1.raw)
	}
	last, _ := data[1].(map[string]any)
	page2 := must(call(t, base, "GET", "/v1/accounts", form("limit", "2", "starting_after", last["id"].(string))), "next page")
	if d, _ := page2.body["data"].([]any); len(d) > 0 {
		head, _ := d[0].(map[string]any)
		must(call(t, base, "GET", "/v1/accounts", form("limit", "1", "ending_before", head["id"].(string))), "previous page")
	}
	must(call(t, base, "GET", "/v1/accounts", form("created[lte]", fmt.Sprint(time.Now().Unix()+1), "limit", "100")), "list by creation")

	// Staff reject; the holder rejects through the page; one disconnects.
	must(call(t, base, "POST", "/v1/accounts/"+bare+"/reject", form("reason", "fraud")), "reject")
	control("/_sim/accounts/"+accepted+"/outcome", "outcome", stripesim.OutcomeReject)
	control("/_sim/accounts/" + recipient + "/deauthorize")

	// Endpoints: read, list, delete.
	must(call(t, base, "GET", "/v1/webhook_endpoints/"+endpoint, nil), "retrieve endpoint")
	must(call(t, base, "GET", "/v1/webhook_endpoints", form("limit", "1")), "list endpoints")
	must(call(t, base, "DELETE", "/v1/webhook_endpoints/"+spare, nil), "delete endpoint")

	// What Stripe refuses, in its error envelope.
	for _, tt := range []struct {
		method, path string
		form         url.Values
		headers      []string
	}{
		{"POST", "/v1/accounts", form("type", "express", "nickname", "x"), nil},
		{"POST", "/v1/accounts", form("type", "express", "business_type", "robot"), nil},
		{"POST", "/v1/accounts", form("country", "US"), nil},
		{"POST", "/v1/accounts", form("type", "express", "email", ""), nil},
		{"POST", "/v1/accounts", form("type", "express", "capabilities[card_payments][requested]", "true"), nil},
		{"POST", "/v1/accounts", form("type", "express", "metadata[platform_user_id]", "u_other"), []string{"Idempotency-Key", "create-u_idem"}},
		{"GET", "/v1/accounts", form("limit", "0"), nil},
		{"GET", "/v1/accounts", form("starting_after", "acct_1NoSuchAccount00"), nil},
		{"GET", "/v1/accounts/acct_1NoSuchAccount00", nil, nil},
		{"GET", "/v1/accounts/" + recipient, nil, nil},
		{"POST", "/v1/accounts/" + full, form("email", "later@example.com"), nil},
		{"POST", "/v1/accounts/" + full + "/reject", form("reason", "boredom"), nil},
		{"POST", "/v1/accounts/" + created["accepted terms"] + "/login_links", form("redirect_url", "https://x.example"), nil},
		{"POST", "/v1/accounts/" + first.str("id") + "/login_links", nil, nil},
		{"POST", "/v1/account_links", form("account", full, "type", "account_update", "refresh_url", "https://p.example/r", "return_url", "https://p.example/b"), nil},
		{"POST", "/v1/account_links", form("account", full, "type", "account_onboarding", "refresh_url", "not a url", "return_url", "https://p.example/b"), nil},
		{"POST", "/v1/account_links", form("account", "acct_1NoSuchAccount00", "type", "account_onboarding", "refresh_url", "https://p.example/r", "return_url", "https://p.example/b"), nil},
		{"POST", "/v1/account_sessions", form("account", full, "components[account_management][enabled]", "true"), nil},
		{"POST", "/v1/account_sessions", form("account", full, "components[account_onboarding][features][x]", "true"), nil},
		{"POST", "/v1/account_sessions", form("account", full), nil},
		{"POST", "/v1/account_sessions", form("account", "acct_1NoSuchAccount00", "components[account_onboarding][enabled]", "true"), nil},
		{"POST", "/v1/webhook_endpoints", form("url", "https://p.example/h"), nil},
		{"GET", "/v1/webhook_endpoints/we_1NoSuchEndpoint", nil, nil},
		{"GET", "/v1/balance_transactions", nil, nil},
		{"GET", "/v1/accounts", nil, []string{"Authorization", "Bearer pk_test_notasecretkey"}},
		// Refusals issue 21 taught the simulator: transfers without
		// card_payments under the full agreement, an account whose access
		// was revoked (403 account_invalid), a reject while a balance is
		// held, and a second reject.
		{"POST", "/v1/accounts", form("type", "express", "capabilities[transfers][requested]", "true"), nil},
		{"GET", "/v1/accounts/" + revoked, nil, nil},
		{"POST", "/v1/account_links", form("account", revoked, "type", "account_onboarding", "refresh_url", "https://p.example/r", "return_url", "https://p.example/b"), nil},
		{"POST", "/v1/accounts/" + balanceHeld + "/reject", form("reason", "fraud"), nil},
		{"POST", "/v1/accounts/" + bare + "/reject", form("reason", "fraud"), nil},
	} {
		if got := call(t, base, tt.method, tt.path, tt.form, tt.headers...); got.status < 400 {
			t.Errorf("%s %s %v: %d, want an error", tt.method, tt.path, tt.form, got.status)
		}
	}
	sim.InjectFault(stripesim.Fault{Op: stripesim.OpRetrieveAccount, Kind: stripesim.FaultServerError})
	sim.InjectFault(stripesim.Fault{Op: stripesim.OpRetrieveAccount, Kind: stripesim.FaultRateLimit})
	for range 2 {
		if got := call(t, base, "GET", "/v1/accounts/"+full, nil); got.status < 400 {
			t.Errorf("an injected fault answered %d", got.status)
		}
	}

	// Every API answer against the spec.
	answers := rec.snapshot()
	reached := map[string]bool{}
	for _, a := range answers {
		if a.route == "" {
			// A URL Stripe does not have: its answer is Stripe's error.
			if err := spec.validateObject("error", a.body); a.status < 400 || err != nil {
				t.Errorf("%s %s answered %d on a route specRoutes does not list:\n%.400s\n%v", a.method, a.path, a.status, a.body, err)
			}
			continue
		}
		method, specPath, _ := strings.Cut(a.route, " ")
		if a.status == http.StatusOK {
			reached[a.route] = true
		}
		if err := spec.validateResponse(method, specPath, a.status, a.body); err != nil {
			t.Errorf("%s %s answered %d, not as Stripe's spec (%s %s) says:\n%.400s\n%v", a.method, a.path, a.status, method, specPath, a.body, err)
		}
	}
	for _, route := range specRoutes {
		if !reached[route] {
			t.Errorf("the walk never got a 200 from %s", route)
		}
	}

	// Every webhook body against the spec: the event and its data.object.
	waitFor(t, "the deliveries", 10*time.Second, func() bool {
		for _, d := range sim.Deliveries() {
			if d.EndpointID == endpoint && !d.Delivered && !d.GaveUp {
				return false
			}
		}
		return true
	})
	bodies := hooks.snapshot()
	kinds := map[string]int{}
	for _, b := range bodies {
		if err := spec.validateEvent(b); err != nil {
			t.Errorf("a webhook body is not as Stripe's spec says:\n%.400s\n%v", b, err)
		}
		var ev struct{ Type string }
		_ = json.Unmarshal(b, &ev)
		kinds[ev.Type]++
	}
	for _, typ := range []string{"account.updated", "capability.updated", "account.application.deauthorized"} {
		if kinds[typ] == 0 {
			t.Errorf("no %s event reached the endpoint (got %v)", typ, kinds)
		}
	}
	t.Logf("%d API answers and %d webhook bodies checked against Stripe's spec (events: %v)", len(answers), len(bodies), kinds)
}
