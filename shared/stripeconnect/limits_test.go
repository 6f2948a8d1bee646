package stripeconnect_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connectexpress/onboarding/internal/testenv"
	"github.com/connectexpress/onboarding/shared/onboarding"
	"github.com/connectexpress/onboarding/shared/stripeconnect"
)

// deadlineTransport records the deadline each request carries, then sends it.
type deadlineTransport struct{ left atomic.Int64 } // nanoseconds; -1: no deadline

func (d *deadlineTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if at, ok := r.Context().Deadline(); ok {
		d.left.Store(int64(time.Until(at)))
	} else {
		d.left.Store(-1)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// A client configured without a timeout (the zero Config) still bounds each Stripe call by
// the default 8 s, well inside API Gateway's 30 s, so a hung Stripe cannot hold a request.
func TestAClientWithoutATimeoutGivesEachCallEightSeconds(t *testing.T) {
	rec := testenv.NewRecorder(t)
	tr := &deadlineTransport{}
	c := stripeconnect.New(stripeconnect.Config{SecretKey: testSecretKey, APIBase: rec.URL, Transport: tr})
	if _, err := c.GetAccount(context.Background(), testAccountID); err != nil {
		t.Fatal(err)
	}
	if left := time.Duration(tr.left.Load()); left < 7*time.Second || left > 8*time.Second {
		t.Fatalf("the call had %v to answer (negative: no bound), want the default 8 s", left)
	}
}

// The search for an account an earlier attempt made reads at most 1,000 accounts: on a
// platform creating more than that within the window it says Stripe is unavailable (the user
// retries later) instead of paging without end.
func TestTheSearchForAnEarlierAttemptsAccountStopsAfterAThousandAccounts(t *testing.T) {
	rec := testenv.NewRecorder(t)
	const pages, perPage = 15, 100 // 1,500 accounts, none of them the one sought
	var served atomic.Int32
	rec.SetIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodGet || r.URL.Path != "/v1/accounts" {
			return false
		}
		page := int(served.Add(1))
		data := make([]map[string]any, perPage)
		for i := range data {
			data[i] = map[string]any{
				"id": fmt.Sprintf("acct_p%02di%03d", page, i), "object": "account", "country": "US",
				"metadata": map[string]string{"platform_user_id": "someone_else", "platform_creation_id": "theirs"},
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"object": "list", "url": "/v1/accounts", "has_more": page < pages, "data": data})
		return true
	})
	c := newClient(t, rec.URL, 5*time.Second)
	_, found, err := c.FindCreatedAccount(context.Background(), onboarding.CreatedAccountQuery{UserID: "u1", CreationID: "cr1", Since: time.Now().Add(-time.Hour)})
	if found || !errors.Is(err, onboarding.ErrStripeUnavailable) {
		t.Fatalf("found %v, error %v; want ErrStripeUnavailable past 1,000 accounts", found, err)
	}
	if n := served.Load(); n != 11 {
		t.Fatalf("%d pages of %d read, want the 11th to be the last: 1,000 accounts and one over", n, perPage)
	}
}
