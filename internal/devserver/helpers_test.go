package devserver_test

import (
	"strings"
	"testing"
	"time"

	"github.com/connectexpress/onboarding/internal/testenv"
)

// afterCreation is a created second after the state an account's creation stored: an
// event of that very second that disagrees with the stored state is settled by reading
// Stripe, which on this stack is stripe-mock's fixed account, not what the event says.
func afterCreation() int64 { return time.Now().Unix() + 1 }

func expiredToken() string {
	return testenv.Authorizer.Mint("erin", "", time.Now().Add(-2*time.Hour), time.Hour)
}

// assertNoSecretsLogged fails if any log line of s holds a secret, a token,
// a link URL or an email: the service must never log them.
func assertNoSecretsLogged(t *testing.T, s *testenv.Stack, extra ...string) {
	t.Helper()
	forbidden := append([]string{"sk_test_stack", testenv.WebhookSecret, "@example.com", "stripe.me/setup", "token="}, extra...)
	for _, line := range s.Logs.Lines() {
		for _, f := range forbidden {
			if f != "" && strings.Contains(line, f) {
				t.Errorf("log line leaks %q: %s", f, line)
			}
		}
	}
}
