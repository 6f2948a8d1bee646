package devserver

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connectexpress/onboarding/internal/stripesim"
)

// stripeUpdates counts the account.updated events the simulator sent for
// acct: it sends one for every account update Stripe took, as Stripe does.
func stripeUpdates(r *Running, acct string) int {
	n := 0
	for _, d := range r.Sim.Deliveries() {
		if d.AccountID == acct && d.EventType == "account.updated" {
			n++
		}
	}
	return n
}

// `make dev` with the default UPDATES_PER_HOUR (10): 15 prefill updates
// make 10 Stripe updates, and the other 5 answer 429 rate_limited with a
// Retry-After within the hour, without reaching Stripe. Before, 15 PATCHes
// made 15 Stripe updates.
func TestFifteenPrefillUpdatesMakeAtMostTenStripeUpdates(t *testing.T) {
	r, _ := start(t, nil)
	seller := devAccount(t, r, "patty")
	before := stripeUpdates(r, seller.account)
	var ok, limited int
	for i := 1; i <= 15; i++ {
		resp, body := httpDo(t, "PATCH", r.APIURL+"/accounts/me", seller.token, fmt.Sprintf(`{"business_profile":{"name":"Shop %d"}}`, i))
		switch resp.StatusCode {
		case http.StatusOK:
			ok++
		case http.StatusTooManyRequests:
			limited++
			retry, err := strconv.Atoi(resp.Header.Get("Retry-After"))
			if !strings.Contains(body, `"rate_limited"`) || err != nil || retry < 1 || retry > 3600 {
				t.Fatalf("PATCH %d: 429 %s, Retry-After %q: want rate_limited and 1 to 3600 s", i, body, resp.Header.Get("Retry-After"))
			}
		default:
			t.Fatalf("PATCH %d: %d %s", i, resp.StatusCode, body)
		}
	}
	if ok != 10 || limited != 5 {
		t.Fatalf("15 PATCHes: %d answered 200 and %d 429, want 10 and 5", ok, limited)
	}
	// Counted as dispatched (with the update, under the simulator's lock),
	// not as delivered: no wait for the webhook queue.
	if n := stripeUpdates(r, seller.account) - before; n != 10 {
		t.Fatalf("Stripe made %d account updates, want 10", n)
	}
}

// A PATCH that finds another update on its way to Stripe answers at once
// 409 update_in_progress with Retry-After. Before, it waited (polling the
// table every 50 ms) until the other was through, then made its own.
func TestAPatchDuringAnotherUpdateAnswersUpdateInProgressAtOnce(t *testing.T) {
	r, _ := start(t, nil)
	seller := devAccount(t, r, "quinn")
	// Stripe takes the first update, and answers it 1.5 s later.
	r.Sim.InjectFault(stripesim.Fault{Op: stripesim.OpUpdateAccount, Kind: stripesim.FaultTimeout, Delay: 1500 * time.Millisecond})
	var wg sync.WaitGroup
	var firstStatus int
	wg.Add(1)
	go func() {
		defer wg.Done()
		resp, _ := httpDo(t, "PATCH", r.APIURL+"/accounts/me", seller.token, `{"business_profile":{"name":"First"}}`)
		firstStatus = resp.StatusCode
	}()
	time.Sleep(500 * time.Millisecond) // the first holds the lease, waiting for Stripe
	began := time.Now()
	resp, body := httpDo(t, "PATCH", r.APIURL+"/accounts/me", seller.token, `{"business_profile":{"name":"Second"}}`)
	took := time.Since(began)
	wg.Wait()
	retry, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, `"update_in_progress"`) || err != nil || retry < 1 {
		t.Fatalf("second PATCH: %d %s Retry-After %q, want 409 update_in_progress with Retry-After", resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}
	if took > 500*time.Millisecond {
		t.Fatalf("the second PATCH answered after %v, want at once", took)
	}
	if firstStatus != http.StatusOK {
		t.Fatalf("first PATCH: %d, want 200", firstStatus)
	}
}

// Creation attempts after Stripe refused the parameters are bounded by
// UPDATES_PER_HOUR; the first attempt is not counted. The simulated
// platform is not approved for transfers-only accounts, so Stripe refuses
// each attempt that asks for one (as Stripe does) while the service,
// told it is approved, sends them.
func TestCreationRetriesAfterRefusalsAreBounded(t *testing.T) {
	r, _ := start(t, map[string]string{"ALLOW_TRANSFERS_ONLY": "true", "UPDATES_PER_HOUR": "2"})
	token := devToken(t, r, "sub=rita")
	var codes []string
	for range 5 {
		resp, body := httpDo(t, "POST", r.APIURL+"/accounts", token, `{"capabilities":["transfers"]}`)
		switch {
		case resp.StatusCode == http.StatusBadRequest && strings.Contains(body, `"stripe_invalid_request"`):
			codes = append(codes, "refused")
		case resp.StatusCode == http.StatusTooManyRequests && strings.Contains(body, `"rate_limited"`) && resp.Header.Get("Retry-After") != "":
			codes = append(codes, "limited")
		default:
			t.Fatalf("POST /accounts: %d %s", resp.StatusCode, body)
		}
	}
	if got := strings.Join(codes, ","); got != "refused,refused,refused,limited,limited" {
		t.Fatalf("answers %s, want Stripe's refusal for the first attempt and 2 retries, then rate_limited", got)
	}
	// A body Stripe takes is past the budget too: the next write waits.
	resp, body := httpDo(t, "POST", r.APIURL+"/accounts", token, `{}`)
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("a good body past the budget: %d %s, want 429", resp.StatusCode, body)
	}
}
