package config_test

import (
	"strings"
	"testing"

	"github.com/connectexpress/onboarding/shared/config"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func base() map[string]string {
	return map[string]string{"STRIPE_SECRET_KEY": "sk_test_x", "STRIPE_WEBHOOK_SECRET": "whsec_a"}
}

func load(t *testing.T, m map[string]string) (config.Config, []string, error) {
	t.Helper()
	c, err := config.Load(env(m))
	if err != nil {
		return c, nil, err
	}
	w, err := c.Validate(config.Needs{StripeKey: true, WebhookSecrets: true})
	return c, w, err
}

func TestDefaultsMakeARunnableLocalService(t *testing.T) {
	c, warnings, err := load(t, base())
	if err != nil || len(warnings) != 0 {
		t.Fatalf("err %v warnings %v", err, warnings)
	}
	p := c.Policy
	if p.PlatformCountry != "US" || !p.AllowedCountries["FR"] || strings.Join(p.DefaultCapabilities, ",") != "card_payments,transfers" {
		t.Fatalf("policy %+v", p)
	}
	if p.ReturnURL != "http://localhost:5173/onboarding/return" || p.RefreshURL != "http://127.0.0.1:3000/onboarding/refresh" ||
		p.LinkExpiredURL != "http://localhost:5173/onboarding?error=link_expired" {
		t.Fatalf("urls %q %q %q", p.ReturnURL, p.RefreshURL, p.LinkExpiredURL)
	}
	if p.EventRetention.Hours() <= 72 {
		t.Fatalf("event markers must outlive Stripe's 3-day retries, got %v", p.EventRetention)
	}
}

func TestEmptyDefaultCapabilitiesLetStripeChoose(t *testing.T) {
	for _, v := range []string{"", "none"} {
		m := base()
		m["DEFAULT_CAPABILITIES"] = v
		c, _, err := load(t, m)
		if err != nil || len(c.Policy.DefaultCapabilities) != 0 {
			t.Fatalf("DEFAULT_CAPABILITIES=%q: %v %v", v, c.Policy.DefaultCapabilities, err)
		}
	}
}

func TestWebhookSecretsSplitForRotation(t *testing.T) {
	m := base()
	m["STRIPE_WEBHOOK_SECRET"] = " whsec_new , whsec_old ,"
	c, _, err := load(t, m)
	if err != nil || strings.Join(c.WebhookSecrets, "|") != "whsec_new|whsec_old" {
		t.Fatalf("%v %v", c.WebhookSecrets, err)
	}
}

func TestRefusals(t *testing.T) {
	tests := []struct {
		name string
		set  map[string]string
		want string
	}{
		{"missing key", map[string]string{"STRIPE_SECRET_KEY": ""}, "STRIPE_SECRET_KEY"},
		{"publishable key", map[string]string{"STRIPE_SECRET_KEY": "pk_test_x"}, "STRIPE_SECRET_KEY"},
		{"missing webhook secret", map[string]string{"STRIPE_WEBHOOK_SECRET": ""}, "STRIPE_WEBHOOK_SECRET"},
		{"webhook secret of the wrong kind", map[string]string{"STRIPE_WEBHOOK_SECRET": "sk_test_x"}, "whsec_"},
		{"live key with http frontend", map[string]string{"STRIPE_SECRET_KEY": "sk_live_x", "PUBLIC_API_URL": "https://api.example"}, "https"},
		{"live restricted key with http api", map[string]string{"STRIPE_SECRET_KEY": "rk_live_x", "FRONTEND_URL": "https://app.example"}, "https"},
		{"live key sent to a mock", map[string]string{"STRIPE_SECRET_KEY": "sk_live_x", "FRONTEND_URL": "https://a.example", "PUBLIC_API_URL": "https://b.example", "STRIPE_API_BASE": "http://127.0.0.1:1"}, "STRIPE_API_BASE"},
		{"unsupported allowed country", map[string]string{"ALLOWED_COUNTRIES": "US,XX"}, `"XX"`},
		{"UAE platform with foreign accounts", map[string]string{"PLATFORM_COUNTRY": "AE", "ALLOWED_COUNTRIES": "AE,US"}, "UAE"},
		{"bad duration", map[string]string{"REFRESH_TOKEN_TTL": "forever"}, "REFRESH_TOKEN_TTL"},
		{"bad retries", map[string]string{"STRIPE_MAX_RETRIES": "9"}, "STRIPE_MAX_RETRIES"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := base()
			for k, v := range tt.set {
				m[k] = v
			}
			_, _, err := load(t, m)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "sk_live_x") || strings.Contains(err.Error(), "sk_test_x") {
				t.Fatalf("the refusal prints a secret: %v", err)
			}
		})
	}
}

func TestLiveKeyWithHTTPSStarts(t *testing.T) {
	m := base()
	m["STRIPE_SECRET_KEY"], m["FRONTEND_URL"], m["PUBLIC_API_URL"] = "sk_live_x", "https://app.example", "https://api.example"
	c, _, err := load(t, m)
	if err != nil || !c.Policy.Livemode {
		t.Fatalf("err %v livemode %v", err, c.Policy.Livemode)
	}
}

func TestPlatformsThatCannotSelfServeAreWarned(t *testing.T) {
	for _, country := range []string{"AE", "TH"} {
		m := base()
		m["PLATFORM_COUNTRY"], m["ALLOWED_COUNTRIES"] = country, country
		_, warnings, err := load(t, m)
		if err != nil || len(warnings) != 1 || !strings.Contains(warnings[0], "cannot self-serve") {
			t.Fatalf("%s: warnings %v err %v", country, warnings, err)
		}
	}
}
