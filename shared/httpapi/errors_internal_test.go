package httpapi

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

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

// Retry-After tells a client when to come back: a limit's own time, rounded
// up to whole seconds as the header needs; a second for any 503 without
// one (storage was unavailable); nothing on other errors.
func TestRetryAfterFollowsTheErrorsOwnTime(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		want string
	}{
		{"a limit with its time, rounded up", onboarding.RateLimited(1500 * time.Millisecond), "2"},
		{"a limit of whole seconds", onboarding.RateLimited(3 * time.Second), "3"},
		{"storage unavailable: 503", onboarding.StorageFailed(errors.New("throttled")), "1"},
		{"not found: none", onboarding.ErrNotFound, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := errorResponse(c.err).Headers["Retry-After"]; got != c.want {
				t.Errorf("Retry-After %q, want %q", got, c.want)
			}
		})
	}
}

// The Authorization header is read up to maxTokenLength bytes of token and
// no further: a token of exactly the limit is decoded, one byte more is not.
func TestBearerPayloadReadsATokenUpToItsLimit(t *testing.T) {
	payload := base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"stella"}`))
	token := func(length int) string {
		head := "eyJhbGciOiJIUzI1NiJ9." + payload + "."
		return head + strings.Repeat("s", length-len(head))
	}
	if got, ok := bearerPayload("Bearer " + token(maxTokenLength)); !ok || string(got) != `{"sub":"stella"}` {
		t.Errorf("a token of %d bytes: %q, %v; want its payload", maxTokenLength, got, ok)
	}
	if _, ok := bearerPayload("Bearer " + token(maxTokenLength+1)); ok {
		t.Errorf("a token of %d bytes was read", maxTokenLength+1)
	}
}

// Only the webhook checks Stripe's signatures, so only its function is
// given the signing secrets (shared/app's NeedsFor reads this).
func TestOnlyTheWebhookVerifiesSignatures(t *testing.T) {
	for _, r := range Routes {
		if got, want := r.VerifiesSignatures(), r.Key() == Webhook.Key(); got != want {
			t.Errorf("%s: VerifiesSignatures %v, want %v", r.Key(), got, want)
		}
	}
}
