package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/connectexpress/onboarding/shared/config"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func base() map[string]string {
	return map[string]string{"STRIPE_SECRET_KEY": "sk_test_x", "STRIPE_WEBHOOK_SECRET": testWebhookSecret}
}

// testWebhookSecret has the length of the secrets Stripe issues.
const testWebhookSecret = "whsec_0123456789abcdefghijklmnopqrstuv"

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
		p.ErrorPage("link_expired") != "http://localhost:5173/onboarding?error=link_expired" {
		t.Fatalf("urls %q %q %q", p.ReturnURL, p.RefreshURL, p.ErrorPage("link_expired"))
	}
	if p.EventRetention.Hours() <= 72 {
		t.Fatalf("event markers must outlive Stripe's 3-day retries, got %v", p.EventRetention)
	}
	if p.LinksPerHour != 20 || p.StatusRefreshInterval != 5*time.Second {
		t.Fatalf("limits %d links per hour, refresh every %v; want 20 and 5s", p.LinksPerHour, p.StatusRefreshInterval)
	}
	if p.UpdatesPerHour != 10 {
		t.Fatalf("%d Stripe account writes per user per hour, want 10", p.UpdatesPerHour)
	}
	if p.RefreshBounceWindow != 30*time.Second {
		t.Fatalf("refresh bounce window %v, want 30s", p.RefreshBounceWindow)
	}
}

func TestLimitsAreConfigurable(t *testing.T) {
	m := base()
	m["LINKS_PER_HOUR"], m["STATUS_REFRESH_INTERVAL"], m["REFRESH_BOUNCE_WINDOW"] = "7", "30s", "2m"
	c, _, err := load(t, m)
	if err != nil || c.Policy.LinksPerHour != 7 || c.Policy.StatusRefreshInterval != 30*time.Second || c.Policy.RefreshBounceWindow != 2*time.Minute {
		t.Fatalf("policy %d %v %v, err %v", c.Policy.LinksPerHour, c.Policy.StatusRefreshInterval, c.Policy.RefreshBounceWindow, err)
	}
	m["UPDATES_PER_HOUR"] = "3"
	if c, _, err := load(t, m); err != nil || c.Policy.UpdatesPerHour != 3 {
		t.Fatalf("UPDATES_PER_HOUR=3: %d, err %v", c.Policy.UpdatesPerHour, err)
	}
}

func TestEmbeddedOnboardingSettings(t *testing.T) {
	c, _, err := load(t, base())
	if err != nil || c.Policy.PublishableKey != "" || strings.Join(c.Policy.EmbeddedComponents, ",") != "account_onboarding" {
		t.Fatalf("defaults: key %q components %v, err %v; want none and account_onboarding", c.Policy.PublishableKey, c.Policy.EmbeddedComponents, err)
	}
	m := base()
	m["STRIPE_PUBLISHABLE_KEY"], m["EMBEDDED_COMPONENTS"] = "pk_test_abc", "account_onboarding, payouts"
	c, _, err = load(t, m)
	if err != nil || c.Policy.PublishableKey != "pk_test_abc" || strings.Join(c.Policy.EmbeddedComponents, ",") != "account_onboarding,payouts" {
		t.Fatalf("set: key %q components %v, err %v", c.Policy.PublishableKey, c.Policy.EmbeddedComponents, err)
	}
}

// A lease taken around a Stripe call must outlast the call, or another
// caller could act while it is still on its way.
func TestStripeCallLeaseOutlastsEveryAttempt(t *testing.T) {
	for _, tc := range []struct{ timeout, retries string }{{"5s", "2"}, {"300ms", "0"}, {"10s", "5"}} {
		m := base()
		m["STRIPE_TIMEOUT"], m["STRIPE_MAX_RETRIES"] = tc.timeout, tc.retries
		c, _, err := load(t, m)
		if err != nil {
			t.Fatal(err)
		}
		retries := int64(tc.retries[0] - '0')
		if attempts := c.StripeTimeout * time.Duration(retries+1); c.Policy.StripeCallLease <= attempts {
			t.Errorf("timeout %s, %s retries: lease %v, not longer than the attempts (%v)", tc.timeout, tc.retries, c.Policy.StripeCallLease, attempts)
		}
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
	m["STRIPE_WEBHOOK_SECRET"] = " whsec_new0123456789abcdefghijklmnopqrstuv , whsec_old0123456789abcdefghijklmnopqrstuv ,"
	c, _, err := load(t, m)
	if err != nil || strings.Join(c.WebhookSecrets, "|") != "whsec_new0123456789abcdefghijklmnopqrstuv|whsec_old0123456789abcdefghijklmnopqrstuv" {
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
		{"webhook secret that is only the prefix", map[string]string{"STRIPE_WEBHOOK_SECRET": "whsec_"}, "STRIPE_WEBHOOK_SECRET entries must be whsec_ followed by at least 32"},
		{"webhook secret shorter than Stripe's", map[string]string{"STRIPE_WEBHOOK_SECRET": "whsec_0123456789abcdefghijklmnopqrstu"}, "STRIPE_WEBHOOK_SECRET entries must be whsec_ followed by at least 32"},
		{"a short retired webhook secret after a good one", map[string]string{"STRIPE_WEBHOOK_SECRET": testWebhookSecret + ",whsec_old"}, "STRIPE_WEBHOOK_SECRET"},
		{"live key with http frontend", map[string]string{"STRIPE_SECRET_KEY": "sk_live_x", "PUBLIC_API_URL": "https://api.example"}, "https"},
		{"live restricted key with http api", map[string]string{"STRIPE_SECRET_KEY": "rk_live_x", "FRONTEND_URL": "https://app.example"}, "https"},
		{"live key sent to a mock", map[string]string{"STRIPE_SECRET_KEY": "sk_live_x", "FRONTEND_URL": "https://a.example", "PUBLIC_API_URL": "https://b.example", "STRIPE_API_BASE": "http://127.0.0.1:1"}, "STRIPE_API_BASE"},
		{"unsupported allowed country", map[string]string{"ALLOWED_COUNTRIES": "US,XX"}, `"XX"`},
		{"UAE platform", map[string]string{"PLATFORM_COUNTRY": "AE", "ALLOWED_COUNTRIES": "AE"}, "PLATFORM_COUNTRY"},
		{"Gibraltar platform", map[string]string{"PLATFORM_COUNTRY": "GI"}, "PLATFORM_COUNTRY"},
		{"Liechtenstein platform", map[string]string{"PLATFORM_COUNTRY": "LI"}, "PLATFORM_COUNTRY"},
		{"Malaysian platform", map[string]string{"PLATFORM_COUNTRY": "MY"}, "PLATFORM_COUNTRY"},
		{"UK platform allowing a recipient-only country", map[string]string{"PLATFORM_COUNTRY": "GB", "ALLOWED_COUNTRIES": "GB,TR"}, "ALLOWED_COUNTRIES"},
		{"transfers-only defaults without Stripe's approval", map[string]string{"DEFAULT_CAPABILITIES": "transfers"}, "DEFAULT_CAPABILITIES"},
		{"ALLOW_TRANSFERS_ONLY not a boolean", map[string]string{"ALLOW_TRANSFERS_ONLY": "yes"}, "ALLOW_TRANSFERS_ONLY"},
		{"EMAIL_REQUIRES_VERIFIED not a boolean", map[string]string{"EMAIL_REQUIRES_VERIFIED": "no"}, "EMAIL_REQUIRES_VERIFIED"},
		{"bad duration", map[string]string{"REFRESH_TOKEN_TTL": "forever"}, "REFRESH_TOKEN_TTL"},
		{"bad retries", map[string]string{"STRIPE_MAX_RETRIES": "9"}, "STRIPE_MAX_RETRIES"},
		{"links per hour not a number", map[string]string{"LINKS_PER_HOUR": "many"}, "LINKS_PER_HOUR"},
		{"no links per hour", map[string]string{"LINKS_PER_HOUR": "0"}, "LINKS_PER_HOUR"},
		{"more links per hour than a limit item holds", map[string]string{"LINKS_PER_HOUR": "101"}, "LINKS_PER_HOUR"},
		{"updates per hour not a number", map[string]string{"UPDATES_PER_HOUR": "ten"}, "UPDATES_PER_HOUR"},
		{"no updates per hour", map[string]string{"UPDATES_PER_HOUR": "0"}, "UPDATES_PER_HOUR"},
		{"more updates per hour than a limit item holds", map[string]string{"UPDATES_PER_HOUR": "101"}, "UPDATES_PER_HOUR"},
		{"bad status refresh interval", map[string]string{"STATUS_REFRESH_INTERVAL": "-5s"}, "STATUS_REFRESH_INTERVAL"},
		{"bad refresh bounce window", map[string]string{"REFRESH_BOUNCE_WINDOW": "0s"}, "REFRESH_BOUNCE_WINDOW"},
		{"unknown mode", map[string]string{"STRIPE_MODE": "prod"}, "STRIPE_MODE"},
		{"live mode with a test key", map[string]string{"STRIPE_MODE": "live", "FRONTEND_URL": "https://a.example", "PUBLIC_API_URL": "https://b.example"}, "STRIPE_MODE"},
		{"test mode with a live key", map[string]string{"STRIPE_MODE": "test", "STRIPE_SECRET_KEY": "sk_live_x", "FRONTEND_URL": "https://a.example", "PUBLIC_API_URL": "https://b.example"}, "STRIPE_MODE"},
		{"test mode with a live restricted key", map[string]string{"STRIPE_MODE": "test", "STRIPE_SECRET_KEY": "rk_live_x", "FRONTEND_URL": "https://a.example", "PUBLIC_API_URL": "https://b.example"}, "STRIPE_MODE"},
		{"test publishable key with a live secret key", map[string]string{"STRIPE_PUBLISHABLE_KEY": "pk_test_x", "STRIPE_SECRET_KEY": "sk_live_x", "FRONTEND_URL": "https://a.example", "PUBLIC_API_URL": "https://b.example"}, "STRIPE_PUBLISHABLE_KEY"},
		{"live publishable key with a test secret key", map[string]string{"STRIPE_PUBLISHABLE_KEY": "pk_live_x"}, "STRIPE_PUBLISHABLE_KEY"},
		{"a secret key as the publishable key", map[string]string{"STRIPE_PUBLISHABLE_KEY": "sk_test_x"}, "STRIPE_PUBLISHABLE_KEY"},
		{"an embedded component 2023-10-16 lacks", map[string]string{"EMBEDDED_COMPONENTS": "account_onboarding,account_management"}, "EMBEDDED_COMPONENTS"},
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
	for _, country := range []string{"TH"} {
		m := base()
		m["PLATFORM_COUNTRY"], m["ALLOWED_COUNTRIES"] = country, country
		_, warnings, err := load(t, m)
		if err != nil || len(warnings) != 1 || !strings.Contains(warnings[0], "cannot self-serve") {
			t.Fatalf("%s: warnings %v err %v", country, warnings, err)
		}
	}
}

func TestModeAgreeingWithTheKeyStarts(t *testing.T) {
	for key, mode := range map[string]string{"sk_test_x": "test", "rk_test_x": "TEST", "sk_live_x": "live", "rk_live_x": "live"} {
		m := base()
		m["STRIPE_SECRET_KEY"], m["STRIPE_MODE"] = key, mode
		m["FRONTEND_URL"], m["PUBLIC_API_URL"] = "https://app.example", "https://api.example"
		c, _, err := load(t, m)
		if want := strings.Contains(key, "_live_"); err != nil || c.Policy.Livemode != want {
			t.Errorf("%s with STRIPE_MODE=%s: err %v livemode %v, want %v", key[:7], mode, err, c.Policy.Livemode, want)
		}
	}
}

// The webhook function holds no API key: STRIPE_MODE alone sets its mode,
// and live mode keeps every refusal a live key brings.
func TestWithoutAKeyStripeModeSetsTheMode(t *testing.T) {
	webhookOnly := config.Needs{WebhookSecrets: true}
	validate := func(m map[string]string) (config.Config, error) {
		c, err := config.Load(env(m))
		if err != nil {
			return c, err
		}
		_, err = c.Validate(webhookOnly)
		return c, err
	}
	for _, tt := range []struct {
		mode     string
		livemode bool
	}{{"", false}, {"test", false}, {"live", true}} {
		c, err := validate(map[string]string{"STRIPE_WEBHOOK_SECRET": testWebhookSecret, "STRIPE_MODE": tt.mode,
			"FRONTEND_URL": "https://app.example", "PUBLIC_API_URL": "https://api.example"})
		if err != nil || c.Livemode() != tt.livemode || c.Policy.Livemode != tt.livemode {
			t.Errorf("STRIPE_MODE=%q: err %v livemode %v policy %v, want %v", tt.mode, err, c.Livemode(), c.Policy.Livemode, tt.livemode)
		}
	}
	if _, err := validate(map[string]string{"STRIPE_WEBHOOK_SECRET": testWebhookSecret, "STRIPE_MODE": "live"}); err == nil || !strings.Contains(err.Error(), "https") {
		t.Errorf("live mode with http URLs: err %v, want the https refusal", err)
	}
	if _, err := validate(map[string]string{"STRIPE_MODE": "live", "FRONTEND_URL": "https://app.example", "PUBLIC_API_URL": "https://api.example", "STRIPE_API_BASE": "http://127.0.0.1:1", "STRIPE_WEBHOOK_SECRET": testWebhookSecret}); err == nil || !strings.Contains(err.Error(), "STRIPE_API_BASE") {
		t.Errorf("live mode with STRIPE_API_BASE: err %v", err)
	}
}

// PLATFORM_COUNTRY chooses what an empty ALLOWED_COUNTRIES means.
func TestEmptyAllowedCountriesAreThePlatformsDefault(t *testing.T) {
	for _, tc := range []struct {
		platform string
		allows   string
		refuses  string
	}{{"US", "TR", ""}, {"GB", "US", "TR"}, {"JP", "FR", "KR"}, {"BR", "MX", "AR"}} {
		m := base()
		m["PLATFORM_COUNTRY"] = tc.platform
		c, _, err := load(t, m)
		if err != nil {
			t.Fatalf("%s: %v", tc.platform, err)
		}
		if !c.Policy.AllowedCountries[tc.allows] || (tc.refuses != "" && c.Policy.AllowedCountries[tc.refuses]) {
			t.Errorf("a %s platform: allows %s %v, %s %v", tc.platform, tc.allows, c.Policy.AllowedCountries[tc.allows], tc.refuses, c.Policy.AllowedCountries[tc.refuses])
		}
	}
}

// The token's email prefills an account only when verified, unless the
// platform says its issuer never sends email_verified.
func TestEmailRequiresVerifiedByDefault(t *testing.T) {
	if c, _, err := load(t, base()); err != nil || c.Policy.PrefillUnverifiedEmail {
		t.Fatalf("err %v: EMAIL_REQUIRES_VERIFIED must default to true (PrefillUnverifiedEmail %v)", err, c.Policy.PrefillUnverifiedEmail)
	}
	for raw, want := range map[string]bool{"true": false, "TRUE": false, "false": true, "False": true} {
		m := base()
		m["EMAIL_REQUIRES_VERIFIED"] = raw
		if c, _, err := load(t, m); err != nil || c.Policy.PrefillUnverifiedEmail != want {
			t.Errorf("EMAIL_REQUIRES_VERIFIED=%s: err %v, PrefillUnverifiedEmail %v, want %v", raw, err, c.Policy.PrefillUnverifiedEmail, want)
		}
	}
}

// A platform Stripe approved for transfers-only accounts says so.
func TestTransfersOnlyDefaultsStartOnceAllowed(t *testing.T) {
	m := base()
	m["DEFAULT_CAPABILITIES"], m["ALLOW_TRANSFERS_ONLY"] = "transfers", "true"
	c, _, err := load(t, m)
	if err != nil || !c.Policy.AllowTransfersOnly || strings.Join(c.Policy.DefaultCapabilities, ",") != "transfers" {
		t.Fatalf("err %v, policy %v %v", err, c.Policy.AllowTransfersOnly, c.Policy.DefaultCapabilities)
	}
	if c, _, _ := load(t, base()); c.Policy.AllowTransfersOnly {
		t.Error("ALLOW_TRANSFERS_ONLY must default to false: Stripe refuses transfers-only accounts until it approves the platform")
	}
}
