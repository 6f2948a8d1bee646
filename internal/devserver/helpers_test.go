package devserver_test

import (
	"strings"
	"testing"
	"time"

	"github.com/connectexpress/onboarding/internal/testenv"
	"github.com/connectexpress/onboarding/shared/httpapi"
)

func expiredToken() string {
	return testenv.Authorizer.Mint("erin", "", time.Now().Add(-2*time.Hour), time.Hour)
}

func routeFor(t interface{ Fatalf(string, ...any) }, function string) httpapi.Route {
	r, ok := httpapi.FunctionRoute(function)
	if !ok {
		t.Fatalf("no route for %s", function)
	}
	return r
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
