package devserver

// STAND-IN of i23-back's POST /accounts/me/onboarding-session, only so the
// i23-front branch's browser tests run before that branch lands. Dropped at
// merge: the real route goes through httpapi.Routes like every other.

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/connectexpress/onboarding/shared/app"
	"github.com/connectexpress/onboarding/shared/onboarding"
)

func scaffoldOnboardingSession(a *app.App, s *Server) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		claims, ok := s.authorize(r)
		if !ok {
			writeError(w, http.StatusUnauthorized, "unauthorized", "a valid bearer token is required")
			return
		}
		acct, err := a.Service.GetAccount(r.Context(), onboarding.Caller{UserID: claims["sub"]}, false)
		if err != nil || acct.ID == "" {
			writeError(w, http.StatusNotFound, "account_not_found", "no account")
			return
		}
		form := url.Values{"account": {acct.ID}, "components[account_onboarding][enabled]": {"true"}}
		req, _ := http.NewRequestWithContext(r.Context(), http.MethodPost, a.Config.StripeAPIBase+"/v1/account_sessions", strings.NewReader(form.Encode()))
		req.Header.Set("Authorization", "Bearer "+a.Config.StripeSecretKey)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			writeError(w, http.StatusBadGateway, "stripe_unavailable", "stripe failed")
			return
		}
		defer resp.Body.Close()
		var got struct {
			ClientSecret string `json:"client_secret"`
			ExpiresAt    int64  `json:"expires_at"`
		}
		if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&got) != nil {
			writeError(w, http.StatusBadGateway, "stripe_unavailable", "stripe failed")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(map[string]string{"client_secret": got.ClientSecret,
			"expires_at": time.Unix(got.ExpiresAt, 0).UTC().Format(time.RFC3339), "publishable_key": "pk_test_devserver"})
	}
}
