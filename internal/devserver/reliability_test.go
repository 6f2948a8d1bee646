package devserver_test

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connectexpress/onboarding/internal/testenv"
)

// stripeFaults answer POST /v1/accounts in Stripe's place (or in front of
// it). "processed" faults reach Stripe, which creates the account, but the
// answer never reaches us.
var stripeFaults = []struct {
	name      string
	processed bool
	inject    func(rec *testenv.Recorder) func(w http.ResponseWriter, r *http.Request) bool
}{
	{"500", false, func(*testenv.Recorder) func(http.ResponseWriter, *http.Request) bool {
		return func(w http.ResponseWriter, _ *http.Request) bool {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte(`{"error":{"type":"api_error","message":"An unknown error occurred"}}`))
			return true
		}
	}},
	{"429 with Retry-After", false, func(*testenv.Recorder) func(http.ResponseWriter, *http.Request) bool {
		return func(w http.ResponseWriter, _ *http.Request) bool {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = w.Write([]byte(`{"error":{"type":"invalid_request_error","code":"rate_limit","message":"Too many requests"}}`))
			return true
		}
	}},
	{"connection reset", false, func(*testenv.Recorder) func(http.ResponseWriter, *http.Request) bool {
		return func(w http.ResponseWriter, _ *http.Request) bool {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				if tc, ok := conn.(*net.TCPConn); ok {
					_ = tc.SetLinger(0)
				}
				conn.Close()
			}
			return true
		}
	}},
	{"slower than our timeout", true, func(rec *testenv.Recorder) func(http.ResponseWriter, *http.Request) bool {
		return func(w http.ResponseWriter, r *http.Request) bool {
			time.Sleep(700 * time.Millisecond) // STRIPE_TIMEOUT is 300ms
			rec.Forward(w, r)
			return true
		}
	}},
	{"200 with its body cut off", true, func(rec *testenv.Recorder) func(http.ResponseWriter, *http.Request) bool {
		return func(w http.ResponseWriter, r *http.Request) bool {
			full := httptest.NewRecorder()
			rec.Forward(full, r)
			body := full.Body.Bytes()
			w.Header().Set("Idempotent-Replayed", full.Header().Get("Idempotent-Replayed"))
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write(body[:len(body)/2])
			return true // the server closes the short response
		}
	}},
}

func TestStripeFaultsNeverMakeASecondAccount(t *testing.T) {
	for _, fault := range stripeFaults {
		t.Run(fault.name, func(t *testing.T) {
			s := testenv.NewStack(t, testenv.StackOptions{Env: map[string]string{"STRIPE_TIMEOUT": "300ms"}})
			s.Stripe.EmulateIdempotency()
			tok := s.Token("faulty", "")
			inject := fault.inject(s.Stripe)
			s.Stripe.SetIntercept(func(w http.ResponseWriter, r *http.Request) bool {
				return r.Method == "POST" && r.URL.Path == "/v1/accounts" && inject(w, r)
			})
			for attempt := range 2 { // retrying during the fault must not wedge the user
				resp, body := s.Do(t, "POST", "/accounts", tok, `{}`)
				if resp.StatusCode != http.StatusBadGateway && resp.StatusCode != http.StatusConflict {
					t.Fatalf("attempt %d during the fault: %d %s", attempt, resp.StatusCode, body)
				}
				if resp.StatusCode == http.StatusBadGateway && decode[errorJSON](t, body).Error.Code != "stripe_unavailable" {
					t.Fatalf("502 envelope %s", body)
				}
			}
			s.Stripe.SetIntercept(nil)
			waitForStripe(t, s.Stripe, fault.processed)

			resp, body := s.Do(t, "POST", "/accounts", tok, `{}`)
			expectStatus(t, resp, body, http.StatusCreated)
			acct := decode[accountJSON](t, body)
			if got := s.Stripe.AccountsCreatedPerUser()["faulty"]; got != 1 {
				t.Fatalf("Stripe created %d accounts for the user, want 1", got)
			}
			if fault.processed {
				// The account Stripe made during the fault is the one returned.
				replays := 0
				for _, r := range s.Stripe.Requests("POST /v1/accounts") {
					if r.Replayed {
						replays++
					}
				}
				if replays == 0 {
					t.Fatalf("the retry did not replay the first attempt's idempotency key")
				}
			}
			if got := status(t, s, tok); got.AccountID != acct.AccountID {
				t.Fatalf("stored %s, returned %s", got.AccountID, acct.AccountID)
			}
		})
	}
}

// waitForStripe waits until no faulted request is still running at Stripe.
func waitForStripe(t *testing.T, rec *testenv.Recorder, processed bool) {
	t.Helper()
	if !processed {
		return
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, r := range rec.Requests("POST /v1/accounts") {
			if r.Status == http.StatusOK && !r.Replayed {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("the faulted request never completed at Stripe")
}

func TestStripeGoRetriesATransientFailureWithTheSameKey(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{Env: map[string]string{"STRIPE_MAX_RETRIES": "2"}})
	s.Stripe.EmulateIdempotency()
	var failures atomic.Int32
	s.Stripe.SetIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != "/v1/accounts" || failures.Add(1) > 1 {
			return false
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"error":{"type":"api_error","message":"try again"}}`))
		return true
	})
	resp, body := s.Do(t, "POST", "/accounts", s.Token("retry", ""), `{}`)
	expectStatus(t, resp, body, http.StatusCreated)
	creates := s.Stripe.Requests("POST /v1/accounts")
	if len(creates) != 2 || creates[0].IdempotencyKey != creates[1].IdempotencyKey {
		t.Fatalf("want one failed and one retried request with the same key, got %+v", creates)
	}
}

func TestStorageThrottlingAnswers503AndNothingIsLost(t *testing.T) {
	db := &testenv.FlakyDB{Client: testenv.MotoClient(t)}
	s := testenv.NewStack(t, testenv.StackOptions{DynamoDB: db})
	acct, tok := onboarded(t, s, "mia")
	ev := testenv.AccountUpdated("evt_throttled", acct, "mia", afterCreation(), snapActive)

	db.Down.Store(true)
	for _, r := range []struct{ method, path, body string }{
		{"POST", "/accounts", `{}`}, {"GET", "/accounts/me", ""}, {"POST", "/accounts/me/onboarding-link", ""},
		{"POST", "/accounts/me/dashboard-link", ""}, {"PATCH", "/accounts/me", `{"email":"m@example.com"}`},
	} {
		resp, body := s.Do(t, r.method, r.path, tok, r.body)
		expectStatus(t, resp, body, http.StatusServiceUnavailable)
		if resp.Header.Get("Retry-After") == "" || decode[errorJSON](t, body).Error.Code != "storage_unavailable" {
			t.Fatalf("%s %s: %v %s", r.method, r.path, resp.Header, body)
		}
	}
	if code, _ := s.PostEvent(t, ev); code != http.StatusServiceUnavailable {
		t.Fatalf("webhook during throttling: %d, want 503 so Stripe retries", code)
	}
	db.Down.Store(false)
	if code, _ := s.PostEvent(t, ev); code != 200 {
		t.Fatalf("redelivery: %d", code)
	}
	if got := status(t, s, tok).Status; got != "active" {
		t.Fatalf("after recovery: %s", got)
	}
	t.Logf("storage throttling: %d injected failures, every API answer 503 with Retry-After, webhook 503 then applied on redelivery", db.Failures.Load())
}

func TestDynamoDBUnreachableMidRunRecovers(t *testing.T) {
	moto := testenv.NewCuttableMoto(t)
	s := testenv.NewStack(t, testenv.StackOptions{DynamoDB: moto.Client})
	down := outageThenRecovery(t, s, "noah", moto.Cut, moto.Restore)
	t.Logf("DynamoDB unreachable: API 503 and webhook 5xx within %v (SDK retries included); converged after recovery", down.Round(time.Millisecond))
}

// outageThenRecovery onboards user, stores an older snapshot, takes
// DynamoDB down with stop, checks that the API answers 503 and the webhook
// 5xx (so Stripe retries), brings it back with start, and checks that the
// redelivered newer event applies and a late older one changes nothing.
// It returns how long the two requests during the outage took.
func outageThenRecovery(t *testing.T, s *testenv.Stack, user string, stop, start func()) time.Duration {
	t.Helper()
	acct, tok := onboarded(t, s, user)
	older := testenv.AccountUpdated("evt_"+user+"_1", acct, user, afterCreation(), snapReview)
	newer := testenv.AccountUpdated("evt_"+user+"_2", acct, user, time.Now().Unix()+5, snapActive)
	if code, _ := s.PostEvent(t, older); code != 200 {
		t.Fatal(code)
	}

	stop()
	began := time.Now()
	resp, body := s.Do(t, "GET", "/accounts/me", tok, "")
	expectStatus(t, resp, body, http.StatusServiceUnavailable)
	if code, _ := s.PostEvent(t, newer); code < 500 {
		t.Fatalf("webhook while DynamoDB is down: %d", code)
	}
	down := time.Since(began)
	start()

	if code, _ := s.PostEvent(t, newer); code != 200 {
		t.Fatalf("redelivery: %d", code)
	}
	if code, _ := s.PostEvent(t, older); code != 200 {
		t.Fatalf("late older event: %d", code)
	}
	if got := status(t, s, tok).Status; got != "active" {
		t.Fatalf("after recovery: %s", got)
	}
	return down
}

func TestTenUsersTwentyConcurrentCreatesEach(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{})
	const users, perUser = 10, 20
	var wg sync.WaitGroup
	var fivexx atomic.Int32
	start := make(chan struct{})
	ids := make([]sync.Map, users)
	for u := range users {
		tok := s.Token(fmt.Sprintf("crowd-%d", u), "")
		for range perUser {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				resp, body := s.Do(t, "POST", "/accounts", tok, `{}`)
				switch {
				case resp.StatusCode >= 500:
					fivexx.Add(1)
				case resp.StatusCode < 300:
					ids[u].Store(decode[accountJSON](t, body).AccountID, true)
				}
			}()
		}
	}
	close(start)
	wg.Wait()
	created := s.Stripe.AccountsCreatedPerUser()
	for u := range users {
		n := 0
		ids[u].Range(func(any, any) bool { n++; return true })
		if n != 1 || created[fmt.Sprintf("crowd-%d", u)] != 1 {
			t.Fatalf("user %d: %d distinct ids answered, %d Stripe creates", u, n, created[fmt.Sprintf("crowd-%d", u)])
		}
	}
	if fivexx.Load() != 0 {
		t.Fatalf("%d answers were 5xx", fivexx.Load())
	}
	t.Logf("%d users x %d concurrent creates: %d accounts, 0 5xx", users, perUser, len(created))
}

func TestFiftyConcurrentUsesOfOneRefreshTokenRedirectOnce(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{})
	_, tok := onboarded(t, s, "olga")
	resp, body := s.Do(t, "POST", "/accounts/me/onboarding-link", tok, "")
	expectStatus(t, resp, body, http.StatusOK)
	refresh, _ := url.Parse(s.Stripe.Requests("POST /v1/account_links")[0].Form.Get("refresh_url"))
	path := refresh.Path + "?" + refresh.RawQuery

	const n = 50
	var toStripe, toFrontend, other atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			resp, _ := s.Do(t, "GET", path, "", "")
			loc := resp.Header.Get("Location")
			switch {
			case resp.StatusCode != http.StatusFound:
				other.Add(1)
			case loc == "https://frontend.example/onboarding?error=link_expired":
				toFrontend.Add(1)
			case strings.HasPrefix(loc, "https://") && !strings.Contains(loc, "frontend.example"):
				toStripe.Add(1)
			default:
				other.Add(1)
			}
		}()
	}
	close(start)
	wg.Wait()
	if toStripe.Load() != 1 || toFrontend.Load() != n-1 || other.Load() != 0 {
		t.Fatalf("to Stripe %d, to link_expired %d, other %d", toStripe.Load(), toFrontend.Load(), other.Load())
	}
	t.Logf("%d concurrent uses of one refresh token: 1 redirect to Stripe, %d to link_expired", n, toFrontend.Load())
}

func TestWebhookStormConverges(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{})
	const accounts, perAccount, copies, workers = 50, 20, 3, 16
	base := time.Now().Unix() - 7200
	var deliveries [][]byte
	for a := range accounts {
		user, acct := fmt.Sprintf("storm-%d", a), fmt.Sprintf("acct_storm%d", a)
		seeded(t, s, user, acct, base-1)
		for i := range perAccount {
			snap := testenv.AccountSnapshot{CurrentlyDue: []string{fmt.Sprintf("item_%d", i)}}
			if i == perAccount-1 { // only the newest is active
				snap = snapActive
			}
			ev := testenv.AccountUpdated(fmt.Sprintf("evt_storm_%d_%d", a, i), acct, user, base+int64(i), snap)
			for range copies {
				deliveries = append(deliveries, ev)
			}
		}
	}
	rand.New(rand.NewPCG(7, 11)).Shuffle(len(deliveries), func(i, j int) { deliveries[i], deliveries[j] = deliveries[j], deliveries[i] })

	start := time.Now()
	work := make(chan []byte)
	var fivexx, failed atomic.Int32
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for d := range work {
				code, _ := s.PostEvent(t, d)
				if code >= 500 {
					fivexx.Add(1)
				} else if code != 200 {
					failed.Add(1)
				}
			}
		}()
	}
	for _, d := range deliveries {
		work <- d
	}
	close(work)
	wg.Wait()
	elapsed := time.Since(start)

	regressions := 0
	for a := range accounts {
		got := status(t, s, s.Token(fmt.Sprintf("storm-%d", a), ""))
		if got.Status != "active" || len(got.Requirements.CurrentlyDue) != 0 {
			regressions++
		}
	}
	if fivexx.Load() != 0 {
		n := 0
		for _, l := range s.Logs.Lines() {
			if strings.Contains(l, `"status":503`) && n < 3 {
				t.Log(l)
				n++
			}
		}
	}
	if fivexx.Load() != 0 || failed.Load() != 0 || regressions != 0 {
		t.Fatalf("%d 5xx, %d other failures, %d accounts not in their newest snapshot", fivexx.Load(), failed.Load(), regressions)
	}
	t.Logf("webhook storm: %d events for %d accounts, x%d, shuffled, %d at a time: %d deliveries in %v, 0 lost, 0 regressions, 0 5xx",
		accounts*perAccount, accounts, copies, workers, len(deliveries), elapsed.Round(time.Millisecond))
}

// TestDynamoDBStoppedMidRunRecovers freezes the moto_server process itself
// (SIGSTOP) under the service's own DynamoDB client, as a Lambda builds it:
// requests must fail fast instead of hanging until the function's timeout.
func TestDynamoDBStoppedMidRunRecovers(t *testing.T) {
	moto := testenv.StartPrivateMoto(t)
	s := testenv.NewStack(t, testenv.StackOptions{DynamoDBEndpoint: moto.Endpoint})
	down := outageThenRecovery(t, s, "ruth", moto.Stop, moto.Continue)
	if down > 20*time.Second {
		t.Fatalf("two requests took %v against a stopped DynamoDB: must fail well within the Lambda timeout", down)
	}
	t.Logf("moto_server stopped (SIGSTOP): API 503 and webhook 5xx after %v for both; converged after SIGCONT", down.Round(time.Millisecond))
}
