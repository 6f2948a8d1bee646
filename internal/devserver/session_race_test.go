package devserver_test

import (
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/connectexpress/onboarding/internal/testenv"
)

// The KYC lock without races, on moto and stripe-mock: a PATCH and the
// first onboarding session sent together. In Stripe's arrival order, no
// prefill update of the account comes after its first Account Session.
func TestPrefillNeverReachesStripeAfterTheFirstSession(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{Env: map[string]string{"STRIPE_PUBLISHABLE_KEY": "pk_test_race"}})
	const runs = 20
	var sessionFirst, updatedFirst int
	for run := range runs {
		acct, tok := onboarded(t, s, fmt.Sprintf("sana-%d", run))
		var wg sync.WaitGroup
		start := make(chan struct{})
		var patch, session int
		wg.Add(2)
		go func() {
			defer wg.Done()
			<-start
			resp, body := s.Do(t, "PATCH", "/accounts/me", tok, `{"business_profile":{"name":"Sana's rides"}}`)
			patch = resp.StatusCode
			if patch == http.StatusConflict && decode[errorJSON](t, body).Error.Code != "kyc_locked" {
				t.Errorf("PATCH: %s", body)
			}
		}()
		go func() {
			defer wg.Done()
			<-start
			resp, _ := s.Do(t, "POST", "/accounts/me/onboarding-session", tok, "")
			session = resp.StatusCode
		}()
		close(start)
		wg.Wait()
		if (patch != http.StatusOK && patch != http.StatusConflict) || session != http.StatusOK {
			t.Fatalf("run %d: PATCH %d, session %d", run, patch, session)
		}
		if started, updated := firstOnboardingThenUpdates(t, s, acct, "POST /v1/account_sessions"); !started || updated != (patch == http.StatusOK) {
			t.Errorf("run %d: session at Stripe %v, updated at Stripe %v, PATCH %d", run, started, updated, patch)
		}
		if patch == http.StatusOK {
			updatedFirst++
		} else {
			sessionFirst++
		}
	}
	t.Logf("%d races of PATCH and the first session: the update went first %d times, the session %d times (409 kyc_locked)", runs, updatedFirst, sessionFirst)
}
