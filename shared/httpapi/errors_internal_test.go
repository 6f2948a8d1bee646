package httpapi

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/connectexpress/onboarding/shared/onboarding"
)

// Every kind of core error answers a status of its own: a kind missing from
// statusOf would answer 500, which the contract never allows.
func TestEveryCoreErrorKindHasAStatus(t *testing.T) {
	for kind := onboarding.KindInvalid; kind <= onboarding.KindAccountGone; kind++ {
		if statusOf[kind] == 0 {
			t.Errorf("kind %d has no status", kind)
		}
	}
}

// Stripe's 403 account_invalid that no use case turned into ErrDeauthorized
// still answers the contract's 409 account_deauthorized, never 502.
func TestAGoneAccountThatReachesTheEdgeIsAConflict(t *testing.T) {
	resp := errorResponse(onboarding.ErrAccountGone)
	var env errorEnvelope
	if err := json.Unmarshal([]byte(resp.Body), &env); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusConflict || env.Error.Code != "account_deauthorized" {
		t.Errorf("%d %+v, want 409 account_deauthorized", resp.StatusCode, env)
	}
}
