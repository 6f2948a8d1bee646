package stripeconnect_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/connectexpress/onboarding/internal/stripesim"
	"github.com/connectexpress/onboarding/internal/testenv"
	"github.com/connectexpress/onboarding/shared/onboarding"
	"github.com/connectexpress/onboarding/shared/stripeconnect"
)

// Values the adapter sends that Stripe may echo back in a message or body,
// and that must never reach the text of an error (it is logged).
const (
	testSecretKey  = "sk_test_x"
	testEmail      = "seller.leak@example.com"
	testSiteURL    = "https://seller-leak.example/shop"
	testRefreshURL = "https://api.platform.example/onboarding/refresh?token=tok_leak_refresh_secret"
	testReturnURL  = "https://app.platform.example/onboarding/return?leak=1"
	testAccountID  = "acct_1OexpressDE"
)

var sentValues = []string{testSecretKey, testEmail, testSiteURL, testRefreshURL, testReturnURL}

func newClient(t *testing.T, base string, timeout time.Duration) *stripeconnect.Client {
	t.Helper()
	return stripeconnect.New(stripeconnect.Config{
		SecretKey:         testSecretKey,
		APIBase:           base,
		Timeout:           timeout,
		MaxNetworkRetries: 0,
	})
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func strp(s string) *string { return &s }

// stripeMockAccountState is stripe-mock v0.183.0's fixed account fixture,
// which it returns for every account read and creation.
func stripeMockAccountState() onboarding.AccountState {
	due := []string{
		"business_profile.product_description",
		"business_profile.support_phone",
		"business_profile.url",
		"external_account",
		"tos_acceptance.date",
		"tos_acceptance.ip",
	}
	return onboarding.AccountState{
		DetailsSubmitted: false,
		ChargesEnabled:   false,
		PayoutsEnabled:   false,
		Requirements: onboarding.Requirements{
			CurrentlyDue:        due,
			EventuallyDue:       due,
			PastDue:             []string{},
			PendingVerification: []string{},
			DisabledReason:      strp("requirements.past_due"),
		},
		FutureRequirements: &onboarding.Requirements{
			CurrentlyDue:        []string{},
			EventuallyDue:       []string{},
			PastDue:             []string{},
			PendingVerification: []string{},
		},
		Capabilities: map[string]string{"card_payments": "active", "transfers": "active"},
	}
}

// onlyRequest returns the single recorded request matching prefix.
func onlyRequest(t *testing.T, rec *testenv.Recorder, prefix string) testenv.StripeRequest {
	t.Helper()
	reqs := rec.Requests(prefix)
	if len(reqs) != 1 {
		t.Fatalf("requests matching %q: got %d, want 1: %+v", prefix, len(reqs), reqs)
	}
	return reqs[0]
}

func assertForm(t *testing.T, got, want url.Values) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("form sent to Stripe:\n got  %v\n want %v", got, want)
		for k := range got {
			if _, ok := want[k]; !ok {
				t.Errorf("  unexpected param %s=%q", k, got[k])
			}
		}
		for k := range want {
			if _, ok := got[k]; !ok {
				t.Errorf("  missing param %s", k)
			}
		}
	}
}

func TestCreateAccount(t *testing.T) {
	tests := []struct {
		name     string
		params   onboarding.CreateAccountParams
		key      string
		wantForm url.Values
	}{
		{
			name: "full service agreement with every prefill field and two capabilities",
			params: onboarding.CreateAccountParams{
				Prefill: onboarding.Prefill{
					Email:        testEmail,
					BusinessType: "company",
					BusinessProfile: onboarding.BusinessProfile{
						URL:                testSiteURL,
						ProductDescription: "Handmade furniture",
						Name:               "Leak Furniture GmbH",
						MCC:                "5712",
					},
				},
				Country:          "US",
				Capabilities:     []string{"card_payments", "transfers"},
				ServiceAgreement: "full",
				PlatformUserID:   "user_full",
			},
			key: "create-account-user_full-1",
			wantForm: url.Values{
				"type":                                   {"express"},
				"country":                                {"US"},
				"email":                                  {testEmail},
				"business_type":                          {"company"},
				"business_profile[url]":                  {testSiteURL},
				"business_profile[product_description]":  {"Handmade furniture"},
				"business_profile[name]":                 {"Leak Furniture GmbH"},
				"business_profile[mcc]":                  {"5712"},
				"capabilities[card_payments][requested]": {"true"},
				"capabilities[transfers][requested]":     {"true"},
				"metadata[platform_user_id]":             {"user_full"},
				"tos_acceptance[service_agreement]":      {"full"},
			},
		},
		{
			name: "recipient service agreement, transfers only, partial business profile",
			params: onboarding.CreateAccountParams{
				Prefill: onboarding.Prefill{
					BusinessType:    "individual",
					BusinessProfile: onboarding.BusinessProfile{ProductDescription: "Freelance design"},
				},
				Country:          "DE",
				Capabilities:     []string{"transfers"},
				ServiceAgreement: "recipient",
				PlatformUserID:   "user_recipient",
			},
			key: "create-account-user_recipient-1",
			wantForm: url.Values{
				"type":                                  {"express"},
				"country":                               {"DE"},
				"business_type":                         {"individual"},
				"business_profile[product_description]": {"Freelance design"},
				"capabilities[transfers][requested]":    {"true"},
				"metadata[platform_user_id]":            {"user_recipient"},
				"tos_acceptance[service_agreement]":     {"recipient"},
			},
		},
		{
			name: "no capabilities and no prefill leaves them to Stripe",
			params: onboarding.CreateAccountParams{
				Country:          "US",
				Capabilities:     []string{},
				ServiceAgreement: "full",
				PlatformUserID:   "user_minimal",
			},
			key: "create-account-user_minimal-3",
			wantForm: url.Values{
				"type":                              {"express"},
				"country":                           {"US"},
				"metadata[platform_user_id]":        {"user_minimal"},
				"tos_acceptance[service_agreement]": {"full"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, b *stripeBackend) {
				c := newClient(t, b.rec.URL, 5*time.Second)

				got, err := c.CreateAccount(context.Background(), tt.params, tt.key)
				if err != nil {
					t.Fatalf("CreateAccount: %v", err)
				}

				req := onlyRequest(t, b.rec, "POST /v1/accounts")
				if req.Path != "/v1/accounts" {
					t.Errorf("path = %q, want /v1/accounts", req.Path)
				}
				if req.Status != http.StatusOK {
					t.Errorf("%s answered %d: the request does not match Stripe", b.name, req.Status)
				}
				if req.IdempotencyKey != tt.key {
					t.Errorf("Idempotency-Key = %q, want %q", req.IdempotencyKey, tt.key)
				}
				assertForm(t, req.Form, tt.wantForm)

				if !strings.HasPrefix(got.ID, "acct_") {
					t.Errorf("ID = %q, want an acct_ id", got.ID)
				}
				if got.Country != tt.params.Country {
					t.Errorf("Country = %q, want %q (Stripe echoes it)", got.Country, tt.params.Country)
				}
				if b.sim == nil {
					if want := stripeMockAccountState(); !reflect.DeepEqual(got.State, want) {
						t.Errorf("State:\n got  %+v\n want %+v", got.State, want)
					}
					return
				}
				assertNewSimulatedAccount(t, got.State, tt.params)
			})
		})
	}
}

// TestCreateAccountSendsTheSameBytesEveryTime: a replay under the same
// Idempotency-Key must send byte-identical parameters, or Stripe answers
// idempotency_error. Capabilities from a Go map would change order.
func TestCreateAccountSendsTheSameBytesEveryTime(t *testing.T) {
	rec := testenv.NewRecorder(t)
	c := newClient(t, rec.URL, 5*time.Second)
	p := onboarding.CreateAccountParams{
		Prefill: onboarding.Prefill{Email: testEmail, BusinessType: "company", BusinessProfile: onboarding.BusinessProfile{URL: testSiteURL, MCC: "5712"}},
		Country: "US", ServiceAgreement: "full", PlatformUserID: "user_same", CreationID: "creation_same",
		Capabilities: []string{"card_payments", "transfers", "us_bank_account_ach_payments", "link_payments", "affirm_payments"},
	}
	for range 8 {
		if _, err := c.CreateAccount(context.Background(), p, "create-account-same-0"); err != nil {
			t.Fatal(err)
		}
	}
	reqs := rec.Requests("POST /v1/accounts")
	for i, r := range reqs {
		if r.Status != http.StatusOK {
			t.Fatalf("request %d: stripe-mock answered %d: %s", i, r.Status, r.Response)
		}
		if r.Body != reqs[0].Body {
			t.Fatalf("request %d sent other bytes than request 0:\n%s\n%s", i, r.Body, reqs[0].Body)
		}
	}
	if got := reqs[0].Form.Get("metadata[platform_creation_id]"); got != "creation_same" {
		t.Fatalf("metadata[platform_creation_id] = %q", got)
	}
}

func TestFindCreatedAccountPagesThroughAccountsSinceTheAttempt(t *testing.T) {
	rec := testenv.NewRecorder(t)
	rec.EmulateAccountList()
	c := newClient(t, rec.URL, 5*time.Second)
	ctx := context.Background()
	create := func(user, creation string) string {
		t.Helper()
		got, err := c.CreateAccount(ctx, onboarding.CreateAccountParams{Country: "US", ServiceAgreement: "full", PlatformUserID: user, CreationID: creation}, "")
		if err != nil {
			t.Fatal(err)
		}
		return got.ID
	}
	since := time.Now().Add(-time.Minute)
	// The one sought is the oldest: on the second page, newest first.
	want := create("user_find", "creation_find")
	create("user_find", "another_creation_of_hers")
	create("someone_else", "creation_find")
	for i := range 100 {
		create(fmt.Sprintf("filler_%d", i), "filler")
	}
	got, ok, err := c.FindCreatedAccount(ctx, onboarding.CreatedAccountQuery{UserID: "user_find", CreationID: "creation_find", Since: since})
	if err != nil || !ok || got.ID != want {
		t.Fatalf("FindCreatedAccount = %+v, %v, %v; want %s", got, ok, err, want)
	}
	if want := stripeMockAccountState(); !reflect.DeepEqual(got.State, want) {
		t.Errorf("State of the found account: got %+v, want the account as read", got.State)
	}
	lists := rec.Requests("GET /v1/accounts")
	if len(lists) != 3 || lists[0].Form.Get("created[gte]") != strconv.FormatInt(since.Unix(), 10) || lists[0].Form.Get("limit") != "100" || lists[1].Form.Get("starting_after") == "" {
		t.Fatalf("list requests %+v: want pages of 100 from created[gte]=%d, then the account read", lists, since.Unix())
	}
	if _, ok, err := c.FindCreatedAccount(ctx, onboarding.CreatedAccountQuery{UserID: "user_find", CreationID: "never_made", Since: since}); err != nil || ok {
		t.Fatalf("an account nobody made: %v, %v", ok, err)
	}
}

func TestGetAccountDecodesStripeMockFixture(t *testing.T) {
	rec := testenv.NewRecorder(t)
	c := newClient(t, rec.URL, 5*time.Second)

	got, err := c.GetAccount(context.Background(), testAccountID)
	if err != nil {
		t.Fatalf("GetAccount: %v", err)
	}
	req := onlyRequest(t, rec, "GET /v1/accounts/"+testAccountID)
	if req.Status != http.StatusOK {
		t.Errorf("stripe-mock answered %d", req.Status)
	}
	if len(req.Form) != 0 {
		t.Errorf("query = %v, want none", req.Form)
	}
	want := stripeMockAccountState()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("State:\n got  %+v\n want %+v", got, want)
	}
	if got.Requirements.DisabledReason == nil || *got.Requirements.DisabledReason != "requirements.past_due" {
		t.Errorf("DisabledReason = %v, want requirements.past_due", got.Requirements.DisabledReason)
	}
	if got.Requirements.CurrentDeadline != nil {
		t.Errorf("CurrentDeadline = %v, want nil for a null deadline", got.Requirements.CurrentDeadline)
	}
}

// Every link says what to collect (collection_options[fields], from
// ONBOARDING_COLLECT, Stripe's default when empty) and, when the account has
// future requirements, asks for them too; both Stripes take the request:
// stripe-mock checks it against the 2023-10-16 spec.
func TestCreateOnboardingLink(t *testing.T) {
	tests := []struct {
		name         string
		collect      string
		future       bool
		wantFields   string
		wantIncluded bool
	}{
		{"no setting collects currently_due", "", false, "currently_due", false},
		{"currently_due", "currently_due", false, "currently_due", false},
		{"eventually_due", "eventually_due", false, "eventually_due", false},
		{"future requirements are included when the account has some", "currently_due", true, "currently_due", true},
		{"eventually_due with future requirements", "eventually_due", true, "eventually_due", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, b *stripeBackend) {
				id := b.account(t, false)
				c := newClient(t, b.rec.URL, 5*time.Second)

				start := time.Now()
				link, err := c.CreateOnboardingLink(context.Background(), onboarding.LinkRequest{
					AccountID: id, RefreshURL: testRefreshURL, ReturnURL: testReturnURL,
					CollectFields: tt.collect, IncludeFutureRequirements: tt.future,
				})
				if err != nil {
					t.Fatalf("CreateOnboardingLink: %v", err)
				}
				req := onlyRequest(t, b.rec, "POST /v1/account_links")
				if req.Status != http.StatusOK {
					t.Errorf("%s answered %d: the request does not match Stripe", b.name, req.Status)
				}
				assertForm(t, req.Form, linkForm(id, tt.wantFields, tt.wantIncluded))
				if b.sim == nil {
					if !strings.HasPrefix(link.URL, "https://") {
						t.Errorf("URL = %q, want stripe-mock's https link", link.URL)
					}
					if want := time.Unix(1234567890, 0).UTC(); !link.ExpiresAt.Equal(want) || link.ExpiresAt.Location() != time.UTC {
						t.Errorf("ExpiresAt = %v, want %v in UTC", link.ExpiresAt, want)
					}
					return
				}
				if !strings.HasPrefix(link.URL, b.rec.URL+"/setup/e/"+id+"/") {
					t.Errorf("URL = %q, want the simulator's hosted page for %s", link.URL, id)
				}
				if want := start.Add(stripesim.DefaultLinkTTL); link.ExpiresAt.Sub(want).Abs() > 5*time.Second || link.ExpiresAt.Location() != time.UTC {
					t.Errorf("ExpiresAt = %v, want about %v (the default TTL) in UTC", link.ExpiresAt, want)
				}
				if info, ok := b.sim.Link(link.URL); !ok || info.Collect != tt.wantFields || info.IncludesFutureRequirements != tt.wantIncluded {
					t.Errorf("the simulator's link %+v, want collect %s, future requirements included %v", info, tt.wantFields, tt.wantIncluded)
				}
			})
		})
	}
}

// TestLinkOnAnotherHostIsNeverHandedOn: a link URL that does not point at
// Stripe's connect host (or, in development, the API base) is refused as
// stripe_unavailable, and the error names the host but not the URL.
func TestLinkOnAnotherHostIsNeverHandedOn(t *testing.T) {
	const evil = "https://evil.example/phish/acct_1OexpressDE/secretpart"
	for _, path := range []string{"/v1/account_links", "/v1/accounts/" + testAccountID + "/login_links"} {
		t.Run(path, func(t *testing.T) {
			rec := testenv.NewRecorder(t)
			rec.SetIntercept(func(w http.ResponseWriter, r *http.Request) bool {
				if r.URL.Path != path {
					return false
				}
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(`{"object":"account_link","url":"` + evil + `","created":1,"expires_at":1700000300}`))
				return true
			})
			c := newClient(t, rec.URL, 5*time.Second)
			var err error
			if strings.HasSuffix(path, "login_links") {
				_, err = c.CreateDashboardLink(context.Background(), testAccountID)
			} else {
				_, err = c.CreateOnboardingLink(context.Background(), onboarding.LinkRequest{AccountID: testAccountID, RefreshURL: testRefreshURL, ReturnURL: testReturnURL})
			}
			if !errors.Is(err, onboarding.ErrStripeUnavailable) {
				t.Fatalf("err = %v, want stripe_unavailable", err)
			}
			if strings.Contains(err.Error(), "secretpart") || !strings.Contains(err.Error(), "evil.example") {
				t.Errorf("error %q must name the host, never the URL", err)
			}
		})
	}
}

func TestCreateDashboardLink(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *stripeBackend) {
		id := b.account(t, true)
		c := newClient(t, b.rec.URL, 5*time.Second)

		got, err := c.CreateDashboardLink(context.Background(), id)
		if err != nil {
			t.Fatalf("CreateDashboardLink: %v", err)
		}
		req := onlyRequest(t, b.rec, "POST /v1/accounts/"+id+"/login_links")
		if req.Status != http.StatusOK {
			t.Errorf("%s answered %d: the request does not match Stripe", b.name, req.Status)
		}
		if len(req.Form) != 0 {
			t.Errorf("form = %v, want empty", req.Form)
		}
		want := "https://"
		if b.sim != nil {
			want = b.rec.URL + "/express/" + id + "/"
		}
		if !strings.HasPrefix(got, want) {
			t.Errorf("URL = %q, want a login link starting %s", got, want)
		}
	})
}

func TestUpdateAccountSendsOnlyGivenPrefill(t *testing.T) {
	tests := []struct {
		name     string
		prefill  onboarding.Prefill
		wantForm url.Values
	}{
		{
			name:     "email only",
			prefill:  onboarding.Prefill{Email: testEmail},
			wantForm: url.Values{"email": {testEmail}},
		},
		{
			name:     "business type only",
			prefill:  onboarding.Prefill{BusinessType: "non_profit"},
			wantForm: url.Values{"business_type": {"non_profit"}},
		},
		{
			name:    "some business profile fields",
			prefill: onboarding.Prefill{BusinessProfile: onboarding.BusinessProfile{URL: testSiteURL, MCC: "5734"}},
			wantForm: url.Values{
				"business_profile[url]": {testSiteURL},
				"business_profile[mcc]": {"5734"},
			},
		},
		{
			name: "everything",
			prefill: onboarding.Prefill{
				Email:        testEmail,
				BusinessType: "company",
				BusinessProfile: onboarding.BusinessProfile{
					URL: testSiteURL, ProductDescription: "Software", Name: "Leak Ltd", MCC: "5734",
				},
			},
			wantForm: url.Values{
				"email":                                 {testEmail},
				"business_type":                         {"company"},
				"business_profile[url]":                 {testSiteURL},
				"business_profile[product_description]": {"Software"},
				"business_profile[name]":                {"Leak Ltd"},
				"business_profile[mcc]":                 {"5734"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, b *stripeBackend) {
				id := b.account(t, false)
				c := newClient(t, b.rec.URL, 5*time.Second)
				if err := c.UpdateAccount(context.Background(), id, tt.prefill); err != nil {
					t.Fatalf("UpdateAccount: %v", err)
				}
				req := onlyRequest(t, b.rec, "POST /v1/accounts/"+id)
				if req.Path != "/v1/accounts/"+id {
					t.Errorf("path = %q", req.Path)
				}
				if req.Status != http.StatusOK {
					t.Errorf("%s answered %d: the request does not match Stripe", b.name, req.Status)
				}
				assertForm(t, req.Form, tt.wantForm)
				if b.sim == nil {
					return
				}
				st, err := c.GetAccount(context.Background(), id)
				if err != nil {
					t.Fatal(err)
				}
				if tt.prefill.BusinessType != "" && slices.Contains(st.Requirements.CurrentlyDue, "business_type") {
					t.Errorf("business_type still due after it was prefilled: %v", st.Requirements.CurrentlyDue)
				}
			})
		})
	}
}

// call is one adapter method, called with every value that Stripe may echo.
type call struct {
	name string
	do   func(ctx context.Context, c *stripeconnect.Client) error
}

var calls = []call{
	{"CreateAccount", func(ctx context.Context, c *stripeconnect.Client) error {
		_, err := c.CreateAccount(ctx, onboarding.CreateAccountParams{
			Prefill: onboarding.Prefill{
				Email:           testEmail,
				BusinessType:    "individual",
				BusinessProfile: onboarding.BusinessProfile{URL: testSiteURL},
			},
			Country: "US", Capabilities: []string{"transfers"}, ServiceAgreement: "full", PlatformUserID: "user_err",
		}, "create-account-user_err-1")
		return err
	}},
	{"GetAccount", func(ctx context.Context, c *stripeconnect.Client) error {
		_, err := c.GetAccount(ctx, testAccountID)
		return err
	}},
	{"FindCreatedAccount", func(ctx context.Context, c *stripeconnect.Client) error {
		_, _, err := c.FindCreatedAccount(ctx, onboarding.CreatedAccountQuery{UserID: "user_err", CreationID: "cr", Since: time.Unix(1_700_000_000, 0)})
		return err
	}},
	{"UpdateAccount", func(ctx context.Context, c *stripeconnect.Client) error {
		return c.UpdateAccount(ctx, testAccountID, onboarding.Prefill{
			Email: testEmail, BusinessProfile: onboarding.BusinessProfile{URL: testSiteURL},
		})
	}},
	{"CreateOnboardingLink", func(ctx context.Context, c *stripeconnect.Client) error {
		_, err := c.CreateOnboardingLink(ctx, onboarding.LinkRequest{
			AccountID: testAccountID, RefreshURL: testRefreshURL, ReturnURL: testReturnURL, CollectFields: "currently_due",
		})
		return err
	}},
	{"CreateDashboardLink", func(ctx context.Context, c *stripeconnect.Client) error {
		_, err := c.CreateDashboardLink(ctx, testAccountID)
		return err
	}},
}

// echo is what a Stripe message, or a body, that repeats our input contains.
var echo = testEmail + " " + testSiteURL + " " + testRefreshURL + " " + testReturnURL + " " + testSecretKey

func answer(status int, contentType, body string) func(http.ResponseWriter, *http.Request) bool {
	return func(w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("Request-Id", "req_fault_injected")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
		return true
	}
}

func stripeError(typ, code, param, message string) string {
	b := `{"error":{"type":` + strconv.Quote(typ) + `,"message":` + strconv.Quote(message)
	if code != "" {
		b += `,"code":` + strconv.Quote(code)
	}
	if param != "" {
		b += `,"param":` + strconv.Quote(param)
	}
	return b + "}}"
}

// accountEchoJSON is an account body as Stripe would send it, echoing input.
var accountEchoJSON = `{"id":"acct_1OexpressDE","object":"account","country":"US","email":` + strconv.Quote(testEmail) +
	`,"business_profile":{"url":` + strconv.Quote(testSiteURL) + `},"url":` + strconv.Quote(testRefreshURL) +
	`,"return_url":` + strconv.Quote(testReturnURL) + `,"details_submitted":false,"requirements":{"currently_due":["external_account"]}}`

func TestErrorMapping(t *testing.T) {
	invalidMsg := "Invalid email address: " + echo
	faults := []struct {
		name    string
		timeout time.Duration
		fault   func(http.ResponseWriter, *http.Request) bool
		// wantRejected: Stripe refused our parameters (KindInvalid, 400);
		// otherwise the outcome is unknown (ErrStripeUnavailable, 502).
		wantRejected bool
		// wantKeySpent: Stripe saved this failure under the Idempotency-Key
		// (its own 5xx) or refused the key: replaying it cannot help.
		wantKeySpent bool
		// wantKeyRefused: Stripe refused the platform's key, not anything
		// about an account (502, logged as an operator's ERROR).
		wantKeyRefused bool
		// wantGone: the account is gone (ErrAccountGone, never 502).
		wantGone   bool
		maxElapsed time.Duration
	}{
		{
			name:         "400 invalid_request_error with param",
			fault:        answer(400, "application/json", stripeError("invalid_request_error", "email_invalid", "email", invalidMsg)),
			wantRejected: true,
		},
		{
			name: "400 idempotency_error",
			fault: answer(400, "application/json", stripeError("idempotency_error", "", "",
				"Keys for idempotent requests can only be used with the same parameters they were first used with: "+echo)),
			wantKeySpent: true,
		},
		{
			name:           "401 invalid api key",
			fault:          answer(401, "application/json", stripeError("invalid_request_error", "", "", "Invalid API Key provided: "+echo)),
			wantKeyRefused: true,
		},
		{
			// A restricted key without the permission: the key's fault.
			name: "403 permission error without account_invalid",
			fault: answer(403, "application/json", stripeError("invalid_request_error", "", "",
				"The provided key 'rk_test_***' does not have the required permissions for this endpoint: "+echo)),
			wantKeyRefused: true,
		},
		{
			name: "403 account_invalid",
			fault: answer(403, "application/json", stripeError("invalid_request_error", "account_invalid", "",
				"The provided key does not have access to account 'acct_1' (or that account does not exist). Application access may have been revoked. "+echo)),
			wantGone: true,
		},
		{
			name:  "404 from a proxy without a Stripe error body",
			fault: answer(404, "text/html", "<html>not found: "+echo+"</html>"),
		},
		{
			name: "429 rate limited",
			fault: answer(429, "application/json", stripeError("invalid_request_error", "rate_limit", "",
				"Too many requests hit the API too quickly: "+echo)),
		},
		{
			name:         "500 api_error",
			fault:        answer(500, "application/json", stripeError("api_error", "", "", "An unknown error occurred: "+echo)),
			wantKeySpent: true,
		},
		{
			name:  "502 JSON without an error object",
			fault: answer(502, "application/json", `{"message":`+strconv.Quote(echo)+`}`),
		},
		{
			name:         "503 api_error",
			fault:        answer(503, "application/json", stripeError("api_error", "", "", "Stripe is temporarily unavailable: "+echo)),
			wantKeySpent: true,
		},
		{
			name:  "503 HTML from a load balancer",
			fault: answer(503, "text/html", "<html><body>Service Unavailable "+echo+"</body></html>"),
		},
		{
			name: "connection hijacked and closed before any response",
			fault: func(http.ResponseWriter, *http.Request) bool {
				// net/http closes the connection without writing anything.
				panic(http.ErrAbortHandler)
			},
		},
		{
			name:    "response slower than Config.Timeout",
			timeout: 200 * time.Millisecond,
			fault: func(w http.ResponseWriter, r *http.Request) bool {
				select {
				case <-time.After(time.Second):
				case <-r.Context().Done():
				}
				return answer(200, "application/json", accountEchoJSON)(w, r)
			},
			maxElapsed: 900 * time.Millisecond,
		},
		{
			name:  "200 whose JSON body is cut off",
			fault: answer(200, "application/json", accountEchoJSON[:len(accountEchoJSON)-40]),
		},
		{
			name: "200 whose body is cut off mid-transfer",
			fault: func(w http.ResponseWriter, r *http.Request) bool {
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("Content-Length", "100000")
				w.WriteHeader(http.StatusOK)
				// More than the server's write buffer, so it reaches the client.
				_, _ = io.WriteString(w, accountEchoJSON[:len(accountEchoJSON)-40]+strings.Repeat(" ", 16<<10))
				panic(http.ErrAbortHandler)
			},
		},
	}
	for _, f := range faults {
		for _, cl := range calls {
			t.Run(f.name+"/"+cl.name, func(t *testing.T) {
				rec := testenv.NewRecorder(t)
				rec.SetIntercept(f.fault)
				timeout := f.timeout
				if timeout == 0 {
					timeout = 5 * time.Second
				}
				c := newClient(t, rec.URL, timeout)

				start := time.Now()
				err := cl.do(context.Background(), c)
				elapsed := time.Since(start)
				if f.maxElapsed > 0 && elapsed > f.maxElapsed {
					t.Errorf("returned after %v, want within %v", elapsed, f.maxElapsed)
				}
				switch {
				case f.wantRejected:
					assertRejected(t, err, "email", invalidMsg)
				case f.wantGone:
					assertGone(t, err)
				default:
					assertUnavailable(t, err)
				}
				if e, _ := onboarding.AsError(err); e != nil && e.KeyRefused() != f.wantKeyRefused {
					t.Errorf("KeyRefused() = %v, want %v", e.KeyRefused(), f.wantKeyRefused)
				}
				if f.wantKeyRefused && !strings.Contains(err.Error(), "STRIPE_SECRET_KEY") {
					t.Errorf("a refused key's cause %q does not name the setting to check", err)
				}
				if e, _ := onboarding.AsError(err); e != nil && e.KeySpent() != f.wantKeySpent {
					t.Errorf("KeySpent() = %v, want %v", e.KeySpent(), f.wantKeySpent)
				}
			})
		}
	}
}

// TestConnectionResetIsUnavailable talks to a server that resets every
// connection (RST, not a clean close) once the request arrived.
func TestConnectionResetIsUnavailable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 1024)
			_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
			_, _ = conn.Read(buf)
			_ = conn.(*net.TCPConn).SetLinger(0)
			_ = conn.Close()
		}
	}()
	for _, cl := range calls {
		t.Run(cl.name, func(t *testing.T) {
			c := newClient(t, "http://"+ln.Addr().String(), 5*time.Second)
			assertUnavailable(t, cl.do(context.Background(), c))
		})
	}
}

func assertUnavailable(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		t.Fatal("got nil error, want ErrStripeUnavailable")
	}
	if !errors.Is(err, onboarding.ErrStripeUnavailable) {
		t.Fatalf("error %q is not ErrStripeUnavailable", err)
	}
	e, ok := onboarding.AsError(err)
	if !ok {
		t.Fatalf("error %T is not *onboarding.Error", err)
	}
	if e.Kind != onboarding.KindProviderUnavailable || e.Message != onboarding.ErrStripeUnavailable.Message || e.Param != "" {
		t.Errorf("error = %+v, want the ErrStripeUnavailable sentinel's kind, message and no param", e)
	}
	assertNoEcho(t, "Error()", err.Error())
	t.Logf("logged as: %v", err)
}

// assertGone: Stripe's 403 account_invalid is the account gone, never a
// Stripe outage, and its cause carries codes only.
func assertGone(t *testing.T, err error) {
	t.Helper()
	e, ok := onboarding.AsError(err)
	if !ok || !errors.Is(err, onboarding.ErrAccountGone) || e.Kind != onboarding.KindAccountGone {
		t.Fatalf("error %v, want ErrAccountGone", err)
	}
	if errors.Is(err, onboarding.ErrStripeUnavailable) {
		t.Error("a gone account must not count as ErrStripeUnavailable")
	}
	assertNoEcho(t, "Error()", err.Error())
	if !strings.Contains(err.Error(), "account_invalid") {
		t.Errorf("cause %q lacks Stripe's code", err)
	}
}

func assertRejected(t *testing.T, err error, param, message string) {
	t.Helper()
	e, ok := onboarding.AsError(err)
	if !ok {
		t.Fatalf("error %v (%T) is not *onboarding.Error", err, err)
	}
	if e.Kind != onboarding.KindInvalid || e.Code != "stripe_invalid_request" {
		t.Errorf("Kind, Code = %v, %q; want KindInvalid, stripe_invalid_request", e.Kind, e.Code)
	}
	if errors.Is(err, onboarding.ErrStripeUnavailable) {
		t.Error("a refusal must not count as ErrStripeUnavailable")
	}
	if e.Param != param {
		t.Errorf("Param = %q, want Stripe's %q", e.Param, param)
	}
	// The client sees Stripe's own message, echo included: that is intended.
	if e.Message != message {
		t.Errorf("Message = %q, want Stripe's %q", e.Message, message)
	}
	// What is logged beyond the message, the cause, carries none of it.
	cause := errors.Unwrap(err)
	if cause == nil {
		t.Fatal("no cause kept for the logs")
	}
	assertNoEcho(t, "cause", cause.Error())
	assertNoEcho(t, "Error() without the client message", strings.Replace(err.Error(), e.Message, "", 1))
	for _, want := range []string{"status 400", "invalid_request_error", "req_fault_injected"} {
		if !strings.Contains(cause.Error(), want) {
			t.Errorf("cause %q lacks %q", cause, want)
		}
	}
}

func assertNoEcho(t *testing.T, what, text string) {
	t.Helper()
	for _, v := range sentValues {
		if strings.Contains(text, v) {
			t.Errorf("%s contains %q, which was sent to Stripe: %s", what, v, text)
		}
	}
}

// TestRejectAccount: a staff rejection reaches Stripe as its account
// reject with the reason, and the answer is the account's new state; on
// the simulator, rejected for that reason, nothing enabled.
func TestRejectAccount(t *testing.T) {
	for _, reason := range onboarding.RejectReasons {
		t.Run(reason, func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, b *stripeBackend) {
				id := b.account(t, true)
				c := newClient(t, b.rec.URL, 5*time.Second)
				st, err := c.RejectAccount(context.Background(), id, reason, "reject-"+id+"-attempt1")
				if err != nil {
					t.Fatalf("RejectAccount: %v", err)
				}
				req := onlyRequest(t, b.rec, "POST /v1/accounts/"+id+"/reject")
				if req.Status != http.StatusOK || !reflect.DeepEqual(req.Form, url.Values{"reason": {reason}}) {
					t.Errorf("%s answered %d to %v", b.name, req.Status, req.Form)
				}
				if req.IdempotencyKey != "reject-"+id+"-attempt1" {
					t.Errorf("Idempotency-Key %q, want the attempt's", req.IdempotencyKey)
				}
				if b.sim == nil {
					return
				}
				if r := st.Requirements.DisabledReason; r == nil || *r != "rejected."+reason || st.ChargesEnabled || st.PayoutsEnabled {
					t.Errorf("state after the rejection: %+v", st)
				}
				if got := onboarding.DeriveStatus(st, "full", time.Now()); got != onboarding.StatusRejected {
					t.Errorf("derived status %s, want rejected", got)
				}
			})
		})
	}
}
