package devserver_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connectexpress/onboarding/internal/devserver"
	"github.com/connectexpress/onboarding/internal/testenv"
)

type accountJSON struct {
	AccountID        string `json:"account_id"`
	Status           string `json:"status"`
	Country          string `json:"country"`
	ServiceAgreement string `json:"service_agreement"`
	DetailsSubmitted bool   `json:"details_submitted"`
	ChargesEnabled   bool   `json:"charges_enabled"`
	PayoutsEnabled   bool   `json:"payouts_enabled"`
	Requirements     struct {
		CurrentlyDue []string `json:"currently_due"`
	} `json:"requirements"`
}

type errorJSON struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Param   string `json:"param"`
	} `json:"error"`
}

func decode[T any](t *testing.T, body string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("decode %q: %v", body, err)
	}
	return v
}

func expectStatus(t *testing.T, resp *http.Response, body string, want int) {
	t.Helper()
	if resp.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d; body %s", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, want, body)
	}
}

func TestOnboardingJourneyEndToEnd(t *testing.T) {
	// The journey redeems its refresh URL the instant the link is minted,
	// which a browser does only when Stripe bounces the link: with the
	// default REFRESH_BOUNCE_WINDOW that reads the account first (tested in
	// gone_sim_test.go). Here the refresh is an ordinary one.
	s := testenv.NewStack(t, testenv.StackOptions{Env: map[string]string{"REFRESH_BOUNCE_WINDOW": "1ns"}})
	tok := s.Token("alice", "alice@example.com")

	resp, body := s.Do(t, "POST", "/accounts", tok, `{"business_type":"individual","business_profile":{"url":"https://alice.example"}}`)
	expectStatus(t, resp, body, http.StatusCreated)
	created := decode[accountJSON](t, body)
	if !strings.HasPrefix(created.AccountID, "acct_") || created.Status != "onboarding" || created.Country != "US" || created.ServiceAgreement != "full" {
		t.Fatalf("created %+v", created)
	}
	if resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("headers %v", resp.Header)
	}
	creates := s.Stripe.Requests("POST /v1/accounts")
	if len(creates) != 1 {
		t.Fatalf("%d Stripe creates, want 1", len(creates))
	}
	f := creates[0].Form
	for field, want := range map[string]string{
		"type": "express", "country": "US", "email": "alice@example.com", "business_type": "individual",
		"business_profile[url]": "https://alice.example", "metadata[platform_user_id]": "alice",
		"capabilities[card_payments][requested]": "true", "capabilities[transfers][requested]": "true",
		"tos_acceptance[service_agreement]": "full",
	} {
		if got := f.Get(field); got != want {
			t.Errorf("Stripe create %s = %q, want %q", field, got, want)
		}
	}
	if creates[0].IdempotencyKey == "" || strings.Contains(creates[0].IdempotencyKey, "alice") {
		t.Errorf("idempotency key %q must be set and not reveal the user", creates[0].IdempotencyKey)
	}

	resp, body = s.Do(t, "POST", "/accounts", tok, `{}`)
	expectStatus(t, resp, body, http.StatusOK)
	if again := decode[accountJSON](t, body); again.AccountID != created.AccountID {
		t.Fatalf("second create returned %s, want %s", again.AccountID, created.AccountID)
	}
	if n := len(s.Stripe.Requests("POST /v1/accounts")); n != 1 {
		t.Fatalf("second create called Stripe: %d creates", n)
	}

	resp, body = s.Do(t, "POST", "/accounts/me/onboarding-link", tok, "")
	expectStatus(t, resp, body, http.StatusOK)
	link := decode[struct {
		URL       string `json:"url"`
		ExpiresAt string `json:"expires_at"`
	}](t, body)
	if !strings.HasPrefix(link.URL, "https://") || link.ExpiresAt == "" {
		t.Fatalf("link %+v", link)
	}
	linkReq := s.Stripe.Requests("POST /v1/account_links")[0].Form
	if linkReq.Get("type") != "account_onboarding" || linkReq.Get("account") != created.AccountID ||
		linkReq.Get("return_url") != "https://frontend.example/onboarding/return" {
		t.Fatalf("account link request %v", linkReq)
	}
	refreshURL, err := url.Parse(linkReq.Get("refresh_url"))
	if err != nil || refreshURL.Host != "api.example" || refreshURL.Path != "/onboarding/refresh" || len(refreshURL.Query().Get("token")) != 43 {
		t.Fatalf("refresh_url %q", linkReq.Get("refresh_url"))
	}

	// Prefill is locked once a link exists; Stripe is not asked.
	resp, body = s.Do(t, "PATCH", "/accounts/me", tok, `{"email":"new@example.com"}`)
	expectStatus(t, resp, body, http.StatusConflict)
	if e := decode[errorJSON](t, body); e.Error.Code != "kyc_locked" {
		t.Fatalf("PATCH after link: %s", body)
	}

	refreshPath := refreshURL.Path + "?" + refreshURL.RawQuery
	resp, body = s.Do(t, "GET", refreshPath, "", "")
	expectStatus(t, resp, body, http.StatusFound)
	if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, "https://") || strings.Contains(loc, "frontend.example") {
		t.Fatalf("refresh redirected to %q, want a Stripe link", loc)
	}
	if resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("Referrer-Policy") != "no-referrer" {
		t.Fatalf("refresh headers %v", resp.Header)
	}
	links := s.Stripe.Requests("POST /v1/account_links")
	if len(links) != 2 || links[1].Form.Get("refresh_url") == linkReq.Get("refresh_url") {
		t.Fatalf("the refreshed link must carry a new token")
	}

	resp, body = s.Do(t, "GET", refreshPath, "", "")
	expectStatus(t, resp, body, http.StatusFound)
	if loc := resp.Header.Get("Location"); loc != "https://frontend.example/onboarding?error=link_expired" {
		t.Fatalf("reused token redirected to %q", loc)
	}
	if n := len(s.Stripe.Requests("POST /v1/account_links")); n != 2 {
		t.Fatalf("a used token called Stripe (%d link requests)", n)
	}

	resp, body = s.Do(t, "GET", "/accounts/me", tok, "")
	expectStatus(t, resp, body, http.StatusOK)
	if got := decode[accountJSON](t, body); got.AccountID != created.AccountID {
		t.Fatalf("GET /accounts/me = %+v", got)
	}
	resp, body = s.Do(t, "GET", "/accounts/me?refresh=true", tok, "")
	expectStatus(t, resp, body, http.StatusOK)
	if n := len(s.Stripe.Requests("GET /v1/accounts/" + created.AccountID)); n != 1 {
		t.Fatalf("refresh=true made %d Stripe reads, want 1", n)
	}

	resp, body = s.Do(t, "POST", "/accounts/me/dashboard-link", tok, "")
	expectStatus(t, resp, body, http.StatusConflict)
	if e := decode[errorJSON](t, body); e.Error.Code != "onboarding_incomplete" {
		t.Fatalf("dashboard link: %s", body)
	}
	assertNoSecretsLogged(t, s, tok, link.URL, refreshURL.Query().Get("token"))
}

func TestRoutesForAUserWithoutAccountAnswerNotFound(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{})
	tok := s.Token("nobody", "")
	for _, r := range []struct{ method, path, body string }{
		{"GET", "/accounts/me", ""}, {"GET", "/accounts/me?refresh=true", ""},
		{"POST", "/accounts/me/onboarding-link", ""}, {"POST", "/accounts/me/dashboard-link", ""},
		{"PATCH", "/accounts/me", `{"email":"a@example.com"}`},
	} {
		resp, body := s.Do(t, r.method, r.path, tok, r.body)
		expectStatus(t, resp, body, http.StatusNotFound)
		if e := decode[errorJSON](t, body); e.Error.Code != "not_found" {
			t.Errorf("%s %s: %s", r.method, r.path, body)
		}
	}
}

func TestPatchBeforeTheFirstLinkUpdatesStripe(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{})
	tok := s.Token("bob", "")
	resp, body := s.Do(t, "POST", "/accounts", tok, `{}`)
	expectStatus(t, resp, body, http.StatusCreated)
	acct := decode[accountJSON](t, body)
	resp, body = s.Do(t, "PATCH", "/accounts/me", tok, `{"business_profile":{"product_description":"Handmade mugs"}}`)
	expectStatus(t, resp, body, http.StatusOK)
	updates := s.Stripe.Requests("POST /v1/accounts/" + acct.AccountID)
	if len(updates) != 1 || updates[0].Form.Get("business_profile[product_description]") != "Handmade mugs" {
		t.Fatalf("updates %+v", updates)
	}
	resp, body = s.Do(t, "PATCH", "/accounts/me", tok, `{"country":"CA"}`)
	expectStatus(t, resp, body, http.StatusBadRequest)
	if e := decode[errorJSON](t, body); e.Error.Param != "country" {
		t.Fatalf("PATCH country: %s", body)
	}
}

func TestConcurrentCreatesForOneUserMakeOneAccount(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{})
	tok := s.Token("carol", "")
	const n = 20
	var wg sync.WaitGroup
	statuses := make([]int, n)
	ids := make([]string, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			resp, body := s.Do(t, "POST", "/accounts", tok, `{}`)
			statuses[i] = resp.StatusCode
			if resp.StatusCode < 300 {
				ids[i] = decode[accountJSON](t, body).AccountID
			} else if e := decode[errorJSON](t, body); e.Error.Code != "creation_in_progress" {
				t.Errorf("status %d: %s", resp.StatusCode, body)
			}
		}()
	}
	close(start)
	wg.Wait()
	createdCount := 0
	var id string
	for i, st := range statuses {
		switch st {
		case http.StatusCreated:
			createdCount++
			fallthrough
		case http.StatusOK:
			if id == "" {
				id = ids[i]
			}
			if ids[i] != id {
				t.Fatalf("two account ids: %s and %s", id, ids[i])
			}
		case http.StatusConflict:
		default:
			t.Fatalf("unexpected status %d", st)
		}
	}
	if createdCount != 1 {
		t.Fatalf("%d answers said created, want exactly 1 (statuses %v)", createdCount, statuses)
	}
	if got := s.Stripe.Succeeded("POST /v1/accounts"); got != 1 {
		t.Fatalf("%d successful Stripe creates, want 1", got)
	}
	resp, body := s.Do(t, "GET", "/accounts/me", tok, "")
	expectStatus(t, resp, body, http.StatusOK)
	if decode[accountJSON](t, body).AccountID != id {
		t.Fatalf("stored account differs from the created one")
	}
}

func TestBadInputGetsA4xxEnvelopeNever5xx(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{Env: map[string]string{"ALLOWED_COUNTRIES": "US,CA,GB"}})
	tok := s.Token("dave", "")
	big := `{"business_profile":{"product_description":"` + strings.Repeat("x", 20000) + `"}}`
	tests := []struct {
		name, method, path, body string
		wantStatus               int
		wantCode, wantParam      string
	}{
		{"malformed JSON", "POST", "/accounts", `{"country":`, 400, "validation_error", ""},
		{"not an object", "POST", "/accounts", `["US"]`, 400, "validation_error", ""},
		{"two objects", "POST", "/accounts", `{}{}`, 400, "validation_error", ""},
		{"unknown field", "POST", "/accounts", `{"type":"standard"}`, 400, "validation_error", "type"},
		{"unknown nested field names its full path", "POST", "/accounts", `{"business_profile":{"support_phone":"1"}}`, 400, "validation_error", "business_profile.support_phone"},
		{"duplicate key", "POST", "/accounts", `{"country":"US","country":"GB"}`, 400, "validation_error", "country"},
		{"duplicate nested key", "POST", "/accounts", `{"business_profile":{"name":"A","name":"B"}}`, 400, "validation_error", "business_profile.name"},
		{"duplicate key in a PATCH", "PATCH", "/accounts/me", `{"email":"a@x.example","email":"b@x.example"}`, 400, "validation_error", "email"},
		{"invalid UTF-8", "POST", "/accounts", "{\"business_profile\":{\"name\":\"caf\xe9\"}}", 400, "validation_error", ""},
		{"profile URL on an IP literal", "POST", "/accounts", `{"business_profile":{"url":"https://10.0.0.7/shop"}}`, 400, "validation_error", "business_profile.url"},
		{"profile URL on localhost", "POST", "/accounts", `{"business_profile":{"url":"https://localhost./shop"}}`, 400, "validation_error", "business_profile.url"},
		{"card payments without transfers", "POST", "/accounts", `{"capabilities":["card_payments"]}`, 400, "validation_error", "capabilities"},
		{"wrong type", "POST", "/accounts", `{"country":1}`, 400, "validation_error", "country"},
		{"bad country", "POST", "/accounts", `{"country":"ZZ"}`, 400, "validation_error", "country"},
		{"country not enabled", "POST", "/accounts", `{"country":"FR"}`, 400, "country_not_enabled", "country"},
		{"bad business type", "POST", "/accounts", `{"business_type":"llc"}`, 400, "validation_error", "business_type"},
		{"http url", "POST", "/accounts", `{"business_profile":{"url":"http://x.example"}}`, 400, "validation_error", "business_profile.url"},
		{"bad capability", "POST", "/accounts", `{"capabilities":["treasury"]}`, 400, "validation_error", "capabilities"},
		{"oversized body", "POST", "/accounts", big, 413, "body_too_large", ""},
		{"bad refresh flag", "GET", "/accounts/me?refresh=yes", "", 400, "validation_error", "refresh"},
		{"unknown route", "GET", "/accounts/someone-else", "", 404, "route_not_found", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := s.Do(t, tt.method, tt.path, tok, tt.body)
			expectStatus(t, resp, body, tt.wantStatus)
			e := decode[errorJSON](t, body)
			if e.Error.Code != tt.wantCode || e.Error.Param != tt.wantParam || e.Error.Message == "" {
				t.Fatalf("envelope %s, want code %s param %q", body, tt.wantCode, tt.wantParam)
			}
		})
	}
	if n := len(s.Stripe.Requests("")); n != 0 {
		t.Fatalf("bad input reached Stripe %d times", n)
	}
}

func TestAuthorizerEmulationRefusesBadTokens(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{})
	good := s.Token("erin", "")
	parts := strings.Split(good, ".")
	for name, token := range map[string]string{
		"missing":         "",
		"malformed":       "not-a-jwt",
		"wrong signature": parts[0] + "." + parts[1] + ".AAAA",
		"alg none":        "eyJhbGciOiJub25lIn0." + parts[1] + ".",
		"expired":         expiredToken(),
	} {
		resp, body := s.Do(t, "GET", "/accounts/me", token, "")
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s token: status %d %s", name, resp.StatusCode, body)
		}
	}
}

// TestAuthorizerEmulationChecksClaimsAsAPIGatewayDoes: iss must match, aud
// (or client_id when there is no aud) must be accepted, nbf and iat must
// not lie in the future, exp must.
func TestAuthorizerEmulationChecksClaimsAsAPIGatewayDoes(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{})
	now := time.Now().Unix()
	valid := func(edit func(map[string]any)) map[string]any {
		c := map[string]any{"sub": "erin", "iss": devserver.DefaultIssuer, "aud": devserver.DefaultAudience, "iat": now, "nbf": now, "exp": now + 600}
		edit(c)
		return c
	}
	tests := []struct {
		name   string
		claims map[string]any
		want   int
	}{
		{"as minted", valid(func(map[string]any) {}), http.StatusNotFound},
		{"audience in a list", valid(func(c map[string]any) { c["aud"] = []string{"other", devserver.DefaultAudience} }), http.StatusNotFound},
		{"client_id when there is no aud", valid(func(c map[string]any) { delete(c, "aud"); c["client_id"] = devserver.DefaultAudience }), http.StatusNotFound},
		{"no nbf or iat", valid(func(c map[string]any) { delete(c, "nbf"); delete(c, "iat") }), http.StatusNotFound},
		{"another issuer", valid(func(c map[string]any) { c["iss"] = "https://evil.example" }), http.StatusUnauthorized},
		{"no issuer", valid(func(c map[string]any) { delete(c, "iss") }), http.StatusUnauthorized},
		{"another audience", valid(func(c map[string]any) { c["aud"] = "someone-else" }), http.StatusUnauthorized},
		{"no audience at all", valid(func(c map[string]any) { delete(c, "aud") }), http.StatusUnauthorized},
		{"a wrong aud is not saved by a right client_id", valid(func(c map[string]any) { c["aud"] = "someone-else"; c["client_id"] = devserver.DefaultAudience }), http.StatusUnauthorized},
		{"not valid before a minute from now", valid(func(c map[string]any) { c["nbf"] = now + 60 }), http.StatusUnauthorized},
		{"issued a minute from now", valid(func(c map[string]any) { c["iat"] = now + 60 }), http.StatusUnauthorized},
		{"no expiry", valid(func(c map[string]any) { delete(c, "exp") }), http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// 404 not_found: authorized, and erin has no account.
			resp, body := s.Do(t, "GET", "/accounts/me", testenv.Authorizer.Sign(tt.claims), "")
			expectStatus(t, resp, body, tt.want)
		})
	}
}

// TestTokenEmailPrefillsOnlyWhenVerified: the token's email reaches Stripe
// only when email_verified is true (a JSON boolean, or the string some
// issuers send), unless EMAIL_REQUIRES_VERIFIED=false says the issuer
// never sends the claim.
func TestTokenEmailPrefillsOnlyWhenVerified(t *testing.T) {
	mint := func(sub string, claims map[string]any) string {
		return testenv.Authorizer.MintClaims(sub, "", claims, time.Now(), time.Hour)
	}
	const email = "seller@example.com"
	for _, tc := range []struct {
		name, requiresVerified string
		token                  func(sub string) string
		want                   string
	}{
		{"verified", "", func(sub string) string { return mint(sub, map[string]any{"email": email, "email_verified": true}) }, email},
		{"verified, as a string", "", func(sub string) string { return mint(sub, map[string]any{"email": email, "email_verified": "true"}) }, email},
		{"not verified", "", func(sub string) string { return mint(sub, map[string]any{"email": email, "email_verified": false}) }, ""},
		{"not verified, as a string", "", func(sub string) string { return mint(sub, map[string]any{"email": email, "email_verified": "false"}) }, ""},
		{"no email_verified claim", "", func(sub string) string { return mint(sub, map[string]any{"email": email}) }, ""},
		{"no email_verified claim from an issuer that never sends it", "false", func(sub string) string { return mint(sub, map[string]any{"email": email}) }, email},
		{"not verified, from an issuer that never sends it", "false", func(sub string) string { return mint(sub, map[string]any{"email": email, "email_verified": false}) }, email},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{}
			if tc.requiresVerified != "" {
				env["EMAIL_REQUIRES_VERIFIED"] = tc.requiresVerified
			}
			s := testenv.NewStack(t, testenv.StackOptions{Env: env})
			resp, body := s.Do(t, "POST", "/accounts", tc.token("erin"), `{}`)
			expectStatus(t, resp, body, http.StatusCreated)
			creates := s.Stripe.Requests("POST /v1/accounts")
			if len(creates) != 1 {
				t.Fatalf("%d Stripe creates, want 1", len(creates))
			}
			if got := creates[0].Form.Get("email"); got != tc.want {
				t.Errorf("Stripe create email = %q, want %q", got, tc.want)
			}
		})
	}
}
