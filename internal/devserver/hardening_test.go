package devserver_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connectexpress/onboarding/internal/testenv"
	"github.com/connectexpress/onboarding/shared/onboarding"
)

// The tests of issue 10 ("Hardening"), items 3 to 8: provenance of healed
// accounts, per-user limits, links only for accounts that can onboard,
// refresh tokens that survive Stripe failures, the KYC lock under races,
// and creation after a saved Stripe 5xx.

const onboardingPage = "https://frontend.example/onboarding"

// refreshPathOf returns the path and query of the refresh_url that the
// n-th account link request (0-based) carried.
func refreshPathOf(t *testing.T, s *testenv.Stack, n int) string {
	t.Helper()
	links := s.Stripe.Requests("POST /v1/account_links")
	if len(links) <= n {
		t.Fatalf("%d account link requests, want more than %d", len(links), n)
	}
	u, err := url.Parse(links[n].Form.Get("refresh_url"))
	if err != nil {
		t.Fatal(err)
	}
	return u.Path + "?" + u.RawQuery
}

// redirectOf follows nothing: it returns where GET path sends the browser.
func redirectOf(t *testing.T, s *testenv.Stack, path string) string {
	t.Helper()
	resp, body := s.Do(t, "GET", path, "", "")
	expectStatus(t, resp, body, http.StatusFound)
	return resp.Header.Get("Location")
}

func isStripeLink(loc string) bool {
	return strings.HasPrefix(loc, "https://") && !strings.HasPrefix(loc, "https://frontend.example")
}

func stripeError(status int, typ, message string) (int, string) {
	return status, fmt.Sprintf(`{"error":{"type":%q,"message":%q}}`, typ, message)
}

// ---- item 3: a signed event never binds an account this service did not create

func TestEventNamingAUserWithoutARecordBindsNothing(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{})
	foreign := testenv.AccountUpdated("evt_foreign", "acct_foreign1", "nina", time.Now().Unix(), snapActive)
	if code, body := s.PostEvent(t, foreign); code != 200 {
		t.Fatalf("foreign event: %d %s", code, body)
	}
	tok := s.Token("nina", "")
	resp, body := s.Do(t, "GET", "/accounts/me", tok, "")
	expectStatus(t, resp, body, http.StatusNotFound)
	// Her own account is still made, and it is not the foreign one.
	resp, body = s.Do(t, "POST", "/accounts", tok, `{}`)
	expectStatus(t, resp, body, http.StatusCreated)
	if id := decode[accountJSON](t, body).AccountID; id == "acct_foreign1" {
		t.Fatal("the foreign account was bound")
	}
}

func TestEventForAFinishedRecordOfAnotherAccountChangesNothing(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{})
	own, tok := onboarded(t, s, "oscar")
	foreign := testenv.AccountUpdated("evt_foreign", "acct_foreign2", "oscar", time.Now().Unix(), snapActive)
	if code, body := s.PostEvent(t, foreign); code != 200 {
		t.Fatalf("foreign event: %d %s", code, body)
	}
	if got := status(t, s, tok); got.AccountID != own || got.Status != "onboarding" {
		t.Fatalf("oscar's record changed: %+v", got)
	}
}

func TestLostCreateAnswerIsHealedByTheAccountsEvent(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{})
	s.Stripe.EmulateIdempotency()
	tok := s.Token("pia", "")
	s.Stripe.SetIntercept(truncatedCreate(s.Stripe))
	resp, body := s.Do(t, "POST", "/accounts", tok, `{}`)
	expectStatus(t, resp, body, http.StatusBadGateway)
	s.Stripe.SetIntercept(nil)
	made := s.Stripe.CreatedAccounts()
	if len(made) != 1 || made[0].Metadata["platform_creation_id"] == "" {
		t.Fatalf("Stripe made %+v, want one account carrying our creation id", made)
	}

	ev := testenv.AccountUpdated("evt_heal", made[0].ID, "pia", time.Now().Unix(),
		testenv.AccountSnapshot{DetailsSubmitted: true, CreationID: made[0].Metadata["platform_creation_id"]})
	if code, body := s.PostEvent(t, ev); code != 200 {
		t.Fatalf("event: %d %s", code, body)
	}
	if got := status(t, s, tok); got.AccountID != made[0].ID {
		t.Fatalf("after the event: %+v, want %s", got, made[0].ID)
	}
	creates := len(s.Stripe.Requests("POST /v1/accounts"))
	resp, body = s.Do(t, "POST", "/accounts", tok, `{}`)
	expectStatus(t, resp, body, http.StatusOK)
	if got := decode[accountJSON](t, body).AccountID; got != made[0].ID {
		t.Fatalf("POST /accounts answered %s, want %s", got, made[0].ID)
	}
	if n := len(s.Stripe.Requests("POST /v1/accounts")); n != creates {
		t.Fatalf("POST /accounts after healing called Stripe create again (%d -> %d)", creates, n)
	}
}

// truncatedCreate lets Stripe create the account and cuts its answer off.
func truncatedCreate(rec *testenv.Recorder) func(http.ResponseWriter, *http.Request) bool {
	for _, f := range stripeFaults {
		if f.name == "200 with its body cut off" {
			inject := f.inject(rec)
			return func(w http.ResponseWriter, r *http.Request) bool {
				return r.Method == "POST" && r.URL.Path == "/v1/accounts" && inject(w, r)
			}
		}
	}
	panic("no truncating fault")
}

func TestEventFromAnotherCreationAttemptDoesNotCompleteAClaim(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{})
	s.Stripe.EmulateIdempotency()
	tok := s.Token("quinn", "")
	s.Stripe.SetIntercept(truncatedCreate(s.Stripe))
	resp, body := s.Do(t, "POST", "/accounts", tok, `{}`)
	expectStatus(t, resp, body, http.StatusBadGateway)
	s.Stripe.SetIntercept(nil)
	// The metadata names quinn, whose creation is unfinished, but the account
	// was not made by her claim: someone else's integration, or a Dashboard edit.
	ev := testenv.AccountUpdated("evt_other", "acct_lookalike", "quinn", time.Now().Unix(),
		testenv.AccountSnapshot{DetailsSubmitted: true, CreationID: "not-her-claim"})
	if code, body := s.PostEvent(t, ev); code != 200 {
		t.Fatalf("event: %d %s", code, body)
	}
	resp, body = s.Do(t, "GET", "/accounts/me", tok, "")
	expectStatus(t, resp, body, http.StatusNotFound)
	resp, body = s.Do(t, "POST", "/accounts", tok, `{}`)
	expectStatus(t, resp, body, http.StatusCreated)
	if got := decode[accountJSON](t, body).AccountID; got != s.Stripe.CreatedAccounts()[0].ID {
		t.Fatalf("POST /accounts answered %s, want the account her claim made", got)
	}
}

func TestEventWhoseMetadataNamesAnotherUserAppliesToTheOwner(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{})
	acct, tok := onboarded(t, s, "rosa")
	ev := testenv.AccountUpdated("evt_renamed", acct, "someone-else", afterCreation(), snapActive)
	if code, body := s.PostEvent(t, ev); code != 200 {
		t.Fatalf("event: %d %s", code, body)
	}
	if got := status(t, s, tok).Status; got != "active" {
		t.Fatalf("the owner's account is %s, want the event applied to it (active)", got)
	}
	resp, body := s.Do(t, "GET", "/accounts/me", s.Token("someone-else", ""), "")
	expectStatus(t, resp, body, http.StatusNotFound)
	warned := false
	for _, l := range s.Logs.Lines() {
		warned = warned || (strings.Contains(l, `"level":"WARN"`) && strings.Contains(l, acct))
	}
	if !warned {
		t.Fatal("no warning names the account whose metadata disagrees with its owner")
	}
}

// ---- item 4: per-user limits on everything that calls Stripe

func TestLinksPerHourAreLimitedPerUser(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{Env: map[string]string{"LINKS_PER_HOUR": "3"}})
	acct, tok := onboarded(t, s, "sara")
	submitted := testenv.AccountUpdated("evt_sara", acct, "sara", afterCreation(), snapActive)
	if code, _ := s.PostEvent(t, submitted); code != 200 {
		t.Fatal(code)
	}
	for _, path := range []string{"/accounts/me/onboarding-link", "/accounts/me/dashboard-link", "/accounts/me/onboarding-link"} {
		resp, body := s.Do(t, "POST", path, tok, "")
		expectStatus(t, resp, body, http.StatusOK)
	}
	stripeCalls := len(s.Stripe.Requests(""))
	for _, path := range []string{"/accounts/me/onboarding-link", "/accounts/me/dashboard-link"} {
		resp, body := s.Do(t, "POST", path, tok, "")
		expectStatus(t, resp, body, http.StatusTooManyRequests)
		if e := decode[errorJSON](t, body); e.Error.Code != "rate_limited" {
			t.Fatalf("%s: %s", path, body)
		}
		if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || secs < 1 || secs > 3600 {
			t.Fatalf("%s: Retry-After %q, want 1 to 3600 seconds", path, resp.Header.Get("Retry-After"))
		}
	}
	// The refresh route counts too, and keeps the token for later.
	refresh := refreshPathOf(t, s, 1)
	if loc := redirectOf(t, s, refresh); loc != onboardingPage+"?error=rate_limited" {
		t.Fatalf("refresh over the limit redirected to %q", loc)
	}
	if n := len(s.Stripe.Requests("")); n != stripeCalls {
		t.Fatalf("%d Stripe calls over the limit", n-stripeCalls)
	}
	// Another user is not limited by sara.
	_, other := onboarded(t, s, "sven")
	resp, body := s.Do(t, "POST", "/accounts/me/onboarding-link", other, "")
	expectStatus(t, resp, body, http.StatusOK)
	// The same token works where the limit has room (a service over the
	// same table with a higher limit stands in for an hour later).
	later := testenv.NewStack(t, testenv.StackOptions{DynamoDB: s.DB, Table: s.Table, Env: map[string]string{"LINKS_PER_HOUR": "10"}})
	if loc := redirectOf(t, later, refresh); !isStripeLink(loc) {
		t.Fatalf("the rate-limited token no longer works: %q", loc)
	}
}

func TestStatusRefreshCallsStripeOncePerInterval(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{Env: map[string]string{"STATUS_REFRESH_INTERVAL": "1s"}})
	acct, tok := onboarded(t, s, "tara")
	reads := func() int { return len(s.Stripe.Requests("GET /v1/accounts/" + acct)) }
	for range 3 {
		resp, body := s.Do(t, "GET", "/accounts/me?refresh=true", tok, "")
		expectStatus(t, resp, body, http.StatusOK)
		if got := decode[accountJSON](t, body).AccountID; got != acct {
			t.Fatalf("answered %s", got)
		}
	}
	if n := reads(); n != 1 {
		t.Fatalf("%d Stripe reads within the interval, want 1", n)
	}
	time.Sleep(1100 * time.Millisecond)
	resp, body := s.Do(t, "GET", "/accounts/me?refresh=true", tok, "")
	expectStatus(t, resp, body, http.StatusOK)
	if n := reads(); n != 2 {
		t.Fatalf("%d Stripe reads after the interval, want 2", n)
	}
}

// ---- item 5: links only for accounts that can still onboard

func TestRefreshForAnAccountThatCannotOnboardCallsNoStripe(t *testing.T) {
	for _, tc := range []struct {
		name  string
		event func(acct, user string) []byte
	}{
		{"rejected", func(acct, user string) []byte {
			return testenv.AccountUpdated("evt_rejected_"+user, acct, user, afterCreation(),
				testenv.AccountSnapshot{DetailsSubmitted: true, DisabledReason: "rejected.fraud"})
		}},
		{"deauthorized", func(acct, user string) []byte {
			return testenv.Deauthorized("evt_deauth_"+user, acct, time.Now().Unix())
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := testenv.NewStack(t, testenv.StackOptions{})
			user := "uma-" + tc.name
			acct, tok := onboarded(t, s, user)
			resp, body := s.Do(t, "POST", "/accounts/me/onboarding-link", tok, "")
			expectStatus(t, resp, body, http.StatusOK)
			if code, _ := s.PostEvent(t, tc.event(acct, user)); code != 200 {
				t.Fatal(code)
			}
			if loc := redirectOf(t, s, refreshPathOf(t, s, 0)); loc != onboardingPage+"?error=account_unavailable" {
				t.Fatalf("refresh redirected to %q", loc)
			}
			if n := len(s.Stripe.Requests("POST /v1/account_links")); n != 1 {
				t.Fatalf("%d account link requests, want only the first", n)
			}
		})
	}
}

func TestOnboardingLinkForARejectedAccountIsRefused(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{})
	acct, tok := onboarded(t, s, "vera")
	ev := testenv.AccountUpdated("evt_vera", acct, "vera", afterCreation(),
		testenv.AccountSnapshot{DetailsSubmitted: true, DisabledReason: "rejected.terms_of_service"})
	if code, _ := s.PostEvent(t, ev); code != 200 {
		t.Fatal(code)
	}
	resp, body := s.Do(t, "POST", "/accounts/me/onboarding-link", tok, "")
	expectStatus(t, resp, body, http.StatusConflict)
	if e := decode[errorJSON](t, body); e.Error.Code != "account_rejected" {
		t.Fatalf("%s", body)
	}
	if n := len(s.Stripe.Requests("POST /v1/account_links")); n != 0 {
		t.Fatalf("%d account link requests for a rejected account", n)
	}
}

// ---- item 6: a Stripe failure does not burn a refresh token

func TestStripeFailureWhileRedeemingKeepsTheToken(t *testing.T) {
	faults := map[string]func(w http.ResponseWriter){
		"500": func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte(`{"error":{"type":"api_error","message":"An unknown error occurred"}}`))
		},
		"429": func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = w.Write([]byte(`{"error":{"type":"invalid_request_error","code":"rate_limit","message":"Too many requests"}}`))
		},
		// STRIPE_TIMEOUT is 1s: short enough to time out here, long enough
		// that stripe-mock's answers to the calls around the fault arrive
		// in time on a loaded machine.
		"timeout": func(http.ResponseWriter) { time.Sleep(2500 * time.Millisecond) },
	}
	for name, fault := range faults {
		t.Run(name, func(t *testing.T) {
			s := testenv.NewStack(t, testenv.StackOptions{Env: map[string]string{"STRIPE_TIMEOUT": "1s"}})
			_, tok := onboarded(t, s, "wade")
			resp, body := s.Do(t, "POST", "/accounts/me/onboarding-link", tok, "")
			expectStatus(t, resp, body, http.StatusOK)
			refresh := refreshPathOf(t, s, 0)
			s.Stripe.SetIntercept(func(w http.ResponseWriter, r *http.Request) bool {
				if r.URL.Path != "/v1/account_links" {
					return false
				}
				fault(w)
				return true
			})
			if loc := redirectOf(t, s, refresh); loc != onboardingPage+"?error=stripe_unavailable" {
				t.Fatalf("during the fault: %q", loc)
			}
			s.Stripe.SetIntercept(nil)
			if loc := redirectOf(t, s, refresh); !isStripeLink(loc) {
				t.Fatalf("after Stripe recovered the same refresh URL went to %q", loc)
			}
			if loc := redirectOf(t, s, refresh); loc != onboardingPage+"?error=link_expired" {
				t.Fatalf("a token that made its link is spent; got %q", loc)
			}
		})
	}
}

// ---- item 7: the KYC lock without races

// firstLinkThenUpdates fails when a prefill update of acct arrived at Stripe
// after its first account link request did.
func firstLinkThenUpdates(t *testing.T, s *testenv.Stack, acct string) (linked, updated bool) {
	t.Helper()
	return firstOnboardingThenUpdates(t, s, acct, "POST /v1/account_links")
}

// firstOnboardingThenUpdates is firstLinkThenUpdates for any way into
// onboarding: the Stripe requests named by onboarding (account links, or
// the embedded path's account sessions) lock prefill alike.
func firstOnboardingThenUpdates(t *testing.T, s *testenv.Stack, acct, onboarding string) (linked, updated bool) {
	t.Helper()
	first := 0
	for _, r := range s.Stripe.Requests(onboarding) {
		if r.Form.Get("account") == acct && (first == 0 || r.Seq < first) {
			first = r.Seq
		}
	}
	for _, r := range s.Stripe.Requests("POST /v1/accounts/" + acct) {
		updated = true
		if first != 0 && r.Seq > first {
			t.Errorf("%s: a prefill update (request %d) reached Stripe after the first %s (request %d)", acct, r.Seq, onboarding, first)
		}
	}
	return first != 0, updated
}

func TestPrefillNeverReachesStripeAfterTheFirstLink(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{})
	raceFirstOnboarding(t, s, "xena", "/accounts/me/onboarding-link", "POST /v1/account_links")
}

// raceFirstOnboarding sends, 20 times for a new user each, a PATCH and the
// first onboarding call of route together, and checks in Stripe's arrival
// order that no prefill update of the account came after stripeCall, the
// request that starts onboarding at Stripe (the KYC lock).
func raceFirstOnboarding(t *testing.T, s *testenv.Stack, userPrefix, route, stripeCall string) {
	t.Helper()
	const runs = 20
	var onboardingFirst, updatedFirst int
	for run := range runs {
		acct, tok := onboarded(t, s, fmt.Sprintf("%s-%d", userPrefix, run))
		var wg sync.WaitGroup
		start := make(chan struct{})
		var patch, started int
		wg.Add(2)
		go func() {
			defer wg.Done()
			<-start
			resp, body := s.Do(t, "PATCH", "/accounts/me", tok, `{"business_profile":{"name":"Rides"}}`)
			patch = resp.StatusCode
			if patch == http.StatusConflict && decode[errorJSON](t, body).Error.Code != "kyc_locked" {
				t.Errorf("PATCH: %s", body)
			}
		}()
		go func() {
			defer wg.Done()
			<-start
			resp, _ := s.Do(t, "POST", route, tok, "")
			started = resp.StatusCode
		}()
		close(start)
		wg.Wait()
		if (patch != http.StatusOK && patch != http.StatusConflict) || started != http.StatusOK {
			t.Fatalf("run %d: PATCH %d, %s %d", run, patch, route, started)
		}
		if atStripe, updated := firstOnboardingThenUpdates(t, s, acct, stripeCall); !atStripe || updated != (patch == http.StatusOK) {
			t.Errorf("run %d: %s at Stripe %v, updated at Stripe %v, PATCH %d", run, stripeCall, atStripe, updated, patch)
		}
		if patch == http.StatusOK {
			updatedFirst++
		} else {
			onboardingFirst++
		}
	}
	t.Logf("%d races of PATCH and %s: the update went first %d times (200), onboarding %d times (409 kyc_locked); no update reached Stripe after it",
		runs, route, updatedFirst, onboardingFirst)
}

func TestALinkThroughTheRefreshRouteLocksPrefill(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{})
	acct, tok := onboarded(t, s, "yara")
	// A token whose link never recorded the lock: the refresh route must
	// take it itself before it asks Stripe for a link.
	token := "y" + strings.Repeat("A", 42)
	if err := s.App.Store.PutRefreshToken(t.Context(), refreshTokenFor(token, "yara", acct)); err != nil {
		t.Fatal(err)
	}
	if loc := redirectOf(t, s, "/onboarding/refresh?token="+token); !isStripeLink(loc) {
		t.Fatalf("refresh: %q", loc)
	}
	resp, body := s.Do(t, "PATCH", "/accounts/me", tok, `{"business_profile":{"name":"Yara"}}`)
	expectStatus(t, resp, body, http.StatusConflict)
	if e := decode[errorJSON](t, body); e.Error.Code != "kyc_locked" {
		t.Fatalf("PATCH after a refresh-route link: %s", body)
	}
	firstLinkThenUpdates(t, s, acct)
}

// refreshTokenFor is a refresh token as the store keeps it: by its hash.
func refreshTokenFor(token, user, acct string) onboarding.RefreshToken {
	sum := sha256.Sum256([]byte(token))
	return onboarding.RefreshToken{Hash: hex.EncodeToString(sum[:]), UserID: user, AccountID: acct, ExpiresAt: time.Now().Add(time.Hour)}
}

// ---- item 8: creation after a saved Stripe 5xx

// failCreatesSaved answers account creations with a failure that the
// Recorder saves under the request's key, as Stripe does.
func failCreatesSaved(s *testenv.Stack, status int, body string, processed bool) {
	s.Stripe.SetIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != "POST" || r.URL.Path != "/v1/accounts" {
			return false
		}
		s.Stripe.FailSaved(w, r, status, body, processed)
		return true
	})
}

func TestCreationAfterASavedStripeFailure(t *testing.T) {
	status500, body500 := stripeError(500, "api_error", "An unknown error occurred")
	statusIdem, bodyIdem := stripeError(400, "idempotency_error", "Keys for idempotent requests can only be used with the same parameters they were first used with.")
	for _, tc := range []struct {
		name      string
		status    int
		body      string
		processed bool // Stripe made the account behind the failure
	}{
		{"saved 500, nothing made", status500, body500, false},
		{"saved 500 hiding a made account", status500, body500, true},
		{"idempotency_error", statusIdem, bodyIdem, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := testenv.NewStack(t, testenv.StackOptions{Env: map[string]string{"CREATION_LEASE": "2s"}})
			s.Stripe.EmulateIdempotency()
			s.Stripe.EmulateAccountList()
			tok := s.Token("zoe", "")
			failCreatesSaved(s, tc.status, tc.body, tc.processed)
			resp, body := s.Do(t, "POST", "/accounts", tok, `{}`)
			expectStatus(t, resp, body, http.StatusBadGateway)
			s.Stripe.SetIntercept(nil)

			began := time.Now()
			var acct accountJSON
			for {
				resp, body = s.Do(t, "POST", "/accounts", tok, `{}`)
				if resp.StatusCode == http.StatusCreated {
					acct = decode[accountJSON](t, body)
					break
				}
				if time.Since(began) > 3*time.Second {
					t.Fatalf("still %d %s %v after the failure: blocked longer than CREATION_LEASE", resp.StatusCode, body, time.Since(began).Round(time.Millisecond))
				}
				time.Sleep(100 * time.Millisecond)
			}
			made := s.Stripe.CreatedAccounts()
			if len(made) != 1 || made[0].ID != acct.AccountID {
				t.Fatalf("Stripe made %+v; the user got %s: want exactly one account, the one answered", made, acct.AccountID)
			}
			var lists []testenv.StripeRequest
			for _, r := range s.Stripe.Requests("GET /v1/accounts") {
				if r.Path == "/v1/accounts" {
					lists = append(lists, r)
				}
			}
			if len(lists) == 0 || lists[0].Form.Get("created[gte]") == "" {
				t.Fatalf("no account list since the claim before a new key: %+v", lists)
			}
			keys := map[string]bool{}
			for _, r := range s.Stripe.Requests("POST /v1/accounts") {
				if r.Path == "/v1/accounts" {
					keys[r.IdempotencyKey] = true
				}
			}
			if wantKeys := map[bool]int{true: 1, false: 2}[tc.processed]; len(keys) != wantKeys {
				t.Fatalf("%d idempotency keys used, want %d", len(keys), wantKeys)
			}
			t.Logf("%s: 201 %v after the failure, %d key(s), %d list request(s)", tc.name, time.Since(began).Round(time.Millisecond), len(keys), len(lists))
		})
	}
}
