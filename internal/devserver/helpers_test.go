package devserver_test

import (
	"time"

	"github.com/connectexpress/onboarding/internal/devserver"
	"github.com/connectexpress/onboarding/internal/testenv"
	"github.com/connectexpress/onboarding/shared/httpapi"
)

func expiredToken() string {
	return devserver.Mint([]byte(testenv.JWTSecret), "erin", "", time.Now().Add(-2*time.Hour), time.Hour)
}

func routeFor(t interface{ Fatalf(string, ...any) }, function string) httpapi.Route {
	r, ok := httpapi.FunctionRoute(function)
	if !ok {
		t.Fatalf("no route for %s", function)
	}
	return r
}
