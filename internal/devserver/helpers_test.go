package devserver_test

import (
	"time"

	"github.com/connectexpress/onboarding/internal/devserver"
	"github.com/connectexpress/onboarding/internal/testenv"
)

func expiredToken() string {
	return devserver.Mint([]byte(testenv.JWTSecret), "erin", "", time.Now().Add(-2*time.Hour), time.Hour)
}
