package devserver_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/connectexpress/onboarding/internal/testenv"
)

// Issue 15: bugs that a single unit test caught, each given a second witness through the whole
// service (HTTP, the core, the Stripe adapter, the store on moto): refresh tokens kept only as
// hashes and only until they expire, an event applied once however often it arrives, and a
// creation that Stripe refused cleanly left open for the next try.

// tableStrings returns every string and number the table holds, keys and values, at any depth.
func tableStrings(t *testing.T, s *testenv.Stack) []string {
	t.Helper()
	db := testenv.MotoClient(t)
	var out []string
	var walk func(types.AttributeValue)
	walk = func(v types.AttributeValue) {
		switch v := v.(type) {
		case *types.AttributeValueMemberS:
			out = append(out, v.Value)
		case *types.AttributeValueMemberN:
			out = append(out, v.Value)
		case *types.AttributeValueMemberB:
			out = append(out, string(v.Value))
		case *types.AttributeValueMemberSS:
			out = append(out, v.Value...)
		case *types.AttributeValueMemberM:
			for k, e := range v.Value {
				out = append(out, k)
				walk(e)
			}
		case *types.AttributeValueMemberL:
			for _, e := range v.Value {
				walk(e)
			}
		}
	}
	p := dynamodb.NewScanPaginator(db, &dynamodb.ScanInput{TableName: &s.Table, ConsistentRead: aws.Bool(true)})
	for p.HasMorePages() {
		page, err := p.NextPage(t.Context())
		if err != nil {
			t.Fatalf("scan %s: %v", s.Table, err)
		}
		for _, item := range page.Items {
			walk(&types.AttributeValueMemberM{Value: item})
		}
	}
	return out
}

// linkToken asks for an onboarding link as tok's user and returns the refresh token that the
// link's refresh_url carries, and that URL's path.
func linkToken(t *testing.T, s *testenv.Stack, tok string) (token, path string) {
	t.Helper()
	n := len(s.Stripe.Requests("POST /v1/account_links"))
	resp, body := s.Do(t, "POST", "/accounts/me/onboarding-link", tok, "")
	expectStatus(t, resp, body, http.StatusOK)
	path = refreshPathOf(t, s, n)
	_, query, _ := strings.Cut(path, "?token=")
	if query == "" {
		t.Fatalf("refresh URL %q carries no token", path)
	}
	return query, path
}

// A leaked table (a backup, an export, an operator's scan) must not hand out working links:
// the table holds a refresh token's SHA-256, never the token.
func TestRefreshTokensAreStoredOnlyAsTheirHash(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{})
	_, tok := onboarded(t, s, "hana")
	token, path := linkToken(t, s, tok)
	sum := sha256.Sum256([]byte(token))
	hash := hex.EncodeToString(sum[:])

	hashed := false
	for _, v := range tableStrings(t, s) {
		if strings.Contains(v, token) {
			t.Fatalf("the table holds the raw refresh token in %q", v)
		}
		hashed = hashed || strings.Contains(v, hash)
	}
	if !hashed {
		t.Fatal("no item holds the token's hash: the scan did not see the token at all")
	}
	// And what is stored is enough: the token works.
	if loc := redirectOf(t, s, path); !isStripeLink(loc) {
		t.Fatalf("the stored token does not redeem: %q", loc)
	}
}

// DynamoDB's TTL deletes expired items days late, so an expired token is still in the table:
// the link it carries must read as expired anyway, and Stripe is not asked for a link.
func TestAnExpiredRefreshTokenRedirectsToLinkExpiredWithoutCallingStripe(t *testing.T) {
	const ttl = 3 * time.Second
	s := testenv.NewStack(t, testenv.StackOptions{Env: map[string]string{"REFRESH_TOKEN_TTL": ttl.String()}})
	_, tok := onboarded(t, s, "ines")
	_, expiring := linkToken(t, s, tok)
	_, fresh := linkToken(t, s, tok)
	issued := time.Now()
	// A token of the same age, used at once, works: what follows is the expiry, not the token.
	if loc := redirectOf(t, s, fresh); !isStripeLink(loc) {
		t.Fatalf("a token used within its %v: %q", ttl, loc)
	}
	time.Sleep(time.Until(issued.Add(ttl + time.Second)))

	before := len(s.Stripe.Requests(""))
	if loc := redirectOf(t, s, expiring); loc != onboardingPage+"?error=link_expired" {
		t.Fatalf("a token %v past its expiry redirects to %q, want link_expired", time.Since(issued)-ttl, loc)
	}
	if calls := s.Stripe.Requests("")[before:]; len(calls) != 0 {
		t.Fatalf("an expired token called Stripe: %s %s", calls[0].Method, calls[0].Path)
	}
}

// outcomes returns the outcome that each request log line for eventID reports.
func outcomes(t *testing.T, s *testenv.Stack, eventID string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, l := range s.Logs.Lines() {
		var line map[string]any
		if json.Unmarshal([]byte(l), &line) != nil || line["event_id"] != eventID {
			continue
		}
		out[line["outcome"].(string)]++
	}
	return out
}

// Stripe delivers an event at least once, and a retry can overlap the first delivery: it is
// applied once, and the operator's log says the others were duplicates.
func TestTheSameEventDeliveredAtOnceIsAppliedOnce(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{})
	acct, tok := onboarded(t, s, "jonas")
	ev := testenv.AccountUpdated("evt_twice_at_once", acct, "jonas", afterCreation(), snapActive)
	const copies = 6
	var wg sync.WaitGroup
	codes := make([]int, copies)
	start := make(chan struct{})
	for i := range copies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			codes[i], _ = s.PostEvent(t, ev)
		}()
	}
	close(start)
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusOK {
			t.Fatalf("delivery %d: %d", i, c)
		}
	}
	if got := outcomes(t, s, "evt_twice_at_once"); got["applied"] != 1 || got["duplicate"] != copies-1 {
		t.Fatalf("outcomes %v, want 1 applied and %d duplicate", got, copies-1)
	}
	if got := status(t, s, tok).Status; got != "active" {
		t.Fatalf("status %s, want active", got)
	}
}

// Stripe stamps events to the second, so a newer event often shares its second with an older
// one: the newer, delivered after the older, is settled by reading Stripe (here, an account
// all active), and a redelivery of the older, after that, must change nothing.
func TestARedeliveryAfterANewerEventOfTheSameSecondChangesNothing(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{})
	acct, tok := onboarded(t, s, "kira")
	sec := time.Now().Unix() + 10 // newer than the state the creation stored
	var stripeNow struct {
		Data struct{ Object json.RawMessage }
	}
	if err := json.Unmarshal(testenv.AccountUpdated("evt_unsent", acct, "kira", sec, snapActive), &stripeNow); err != nil {
		t.Fatal(err)
	}
	s.Stripe.SetIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodGet || r.URL.Path != "/v1/accounts/"+acct {
			return false
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(stripeNow.Data.Object)
		return true
	})
	deliver := func(ev []byte, want string) {
		t.Helper()
		if code, body := s.PostEvent(t, ev); code != http.StatusOK {
			t.Fatalf("deliver: %d %s", code, body)
		}
		if got := status(t, s, tok).Status; got != want {
			t.Fatalf("status %s, want %s", got, want)
		}
	}
	pending := testenv.CapabilityUpdated("evt_card_pending", acct, "card_payments", "pending", sec)
	deliver(testenv.AccountUpdated("evt_submitted", acct, "kira", sec-5, snapActive), "active")
	deliver(pending, "pending_verification")
	deliver(testenv.AccountUpdated("evt_all_active", acct, "kira", sec, snapActive), "active")
	deliver(pending, "active") // Stripe's retry of the capability event
	if got := outcomes(t, s, "evt_card_pending"); got["applied"] != 1 || got["duplicate"] != 1 {
		t.Fatalf("outcomes of the capability event %v, want 1 applied and 1 duplicate", got)
	}
	if got := outcomes(t, s, "evt_all_active"); got["settled"] != 1 {
		t.Fatalf("outcomes of the newer snapshot %v, want it settled by reading Stripe", got)
	}
}

// Stripe refusing the parameters of a creation (a 400: nothing was made there) must not leave
// the user waiting out a lease: they correct the input and create at once.
func TestAStripeRefusalAtCreationLetsTheUserTryAgainAtOnce(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{}) // CREATION_LEASE: the default minute
	tok := s.Token("lena", "")
	s.Stripe.SetIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/accounts" {
			return false
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":{"type":"invalid_request_error","param":"business_profile[url]","message":"Not a valid URL"}}`))
		return true
	})
	resp, body := s.Do(t, "POST", "/accounts", tok, `{"business_profile":{"url":"https://shop.example/lena"}}`)
	if resp.StatusCode < 400 || resp.StatusCode >= 500 {
		t.Fatalf("a creation Stripe refused: %d %s, want a 4xx", resp.StatusCode, body)
	}
	s.Stripe.SetIntercept(nil)

	resp, body = s.Do(t, "POST", "/accounts", tok, `{"business_profile":{"url":"https://lena.example"}}`)
	expectStatus(t, resp, body, http.StatusCreated)
	acct := decode[accountJSON](t, body).AccountID
	if made := s.Stripe.CreatedAccounts(); len(made) != 1 || made[0].ID != acct {
		t.Fatalf("Stripe made %+v, the user got %s: want exactly that one", made, acct)
	}
	tries := s.Stripe.Requests("POST /v1/accounts")
	if len(tries) != 2 || tries[0].IdempotencyKey == tries[1].IdempotencyKey {
		t.Fatalf("%d creation requests; a retry with new parameters needs a new idempotency key: %+v", len(tries), tries)
	}
}
