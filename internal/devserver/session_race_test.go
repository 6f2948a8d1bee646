package devserver_test

import (
	"testing"

	"github.com/connectexpress/onboarding/internal/testenv"
)

// The KYC lock without races, on moto and stripe-mock: a PATCH and the
// first onboarding session sent together. In Stripe's arrival order, no
// prefill update of the account comes after its first Account Session.
func TestPrefillNeverReachesStripeAfterTheFirstSession(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{Env: map[string]string{"STRIPE_PUBLISHABLE_KEY": "pk_test_race"}})
	raceFirstOnboarding(t, s, "sana", "/accounts/me/onboarding-session", "POST /v1/account_sessions")
}
