// Package config reads the service's settings from the environment and
// refuses, with a message that says what to change, any configuration the
// service cannot serve. Secrets are never printed.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/connectexpress/onboarding/shared/onboarding"
)

// Config is everything a function or the dev server needs to start.
type Config struct {
	Policy onboarding.Policy

	StripeSecretKey  string   // from STRIPE_SECRET_KEY, or Secrets Manager in AWS
	WebhookSecrets   []string // from STRIPE_WEBHOOK_SECRET, comma-separated
	StripeAPIBase    string
	StripeTimeout    time.Duration
	StripeMaxRetries int64
	SecretARN        string // STRIPE_SECRET_ARN: the API key's secret in AWS
	WebhookSecretARN string // STRIPE_WEBHOOK_SECRET_ARN: the signing secrets' secret in AWS
	// SecretsTTL is how long secrets read from Secrets Manager are used
	// before they are read again (SECRETS_TTL).
	SecretsTTL time.Duration
	// StripeMode is STRIPE_MODE: "test", "live", or "" (unset). It says the
	// mode of a process without a key (the webhook function) and must agree
	// with the key when there is one.
	StripeMode string

	TableName        string
	DynamoDBEndpoint string
	LogLevel         slog.Level

	FrontendURL  string
	PublicAPIURL string
	// Operations (the reconciliation sweep and the status-change events).
	Ops OpsConfig

	// The frontend's pages Stripe and the refresh route send users to
	// (FRONTEND_RETURN_PATH, FRONTEND_ONBOARDING_PATH): the dev server
	// serves the example frontend's pages there.
	FrontendReturnPath, FrontendOnboardingPath string
}

// The staff routes' defaults: Cognito puts a user's groups in cognito:groups.
const (
	DefaultStaffGroupsClaim = "cognito:groups"
	DefaultStaffGroup       = "onboarding-staff"
)

// Defaults for a local run; production sets each explicitly.
const (
	DefaultFrontendURL  = "http://localhost:5173"
	DefaultPublicAPIURL = "http://127.0.0.1:3000"
	DefaultTable        = "connect-onboarding"
)

// Stripe modes (STRIPE_MODE).
const (
	ModeTest = "test"
	ModeLive = "live"
)

// defaultCapabilities is what a platform usually wants from a seller.
const defaultCapabilities = "card_payments,transfers"

// Load reads settings through lookupEnv (os.LookupEnv in production). It
// checks their form; Validate checks that they make a service that can run.
func Load(lookupEnv func(string) (string, bool)) (Config, error) {
	var errs []error
	getenv := func(name string) string { v, _ := lookupEnv(name); return v }
	get := func(name, def string) string {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			return v
		}
		return def
	}
	duration := func(name string, def time.Duration) time.Duration {
		raw := get(name, "")
		if raw == "" {
			return def
		}
		d, err := time.ParseDuration(raw)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("%s: %q is not a positive duration such as 24h", name, raw))
			return def
		}
		return d
	}
	c := Config{
		StripeSecretKey:  get("STRIPE_SECRET_KEY", ""),
		WebhookSecrets:   SplitList(getenv("STRIPE_WEBHOOK_SECRET")),
		StripeAPIBase:    get("STRIPE_API_BASE", ""),
		StripeTimeout:    duration("STRIPE_TIMEOUT", 5*time.Second),
		SecretARN:        get("STRIPE_SECRET_ARN", ""),
		WebhookSecretARN: get("STRIPE_WEBHOOK_SECRET_ARN", ""),
		SecretsTTL:       duration("SECRETS_TTL", 5*time.Minute),
		StripeMode:       strings.ToLower(get("STRIPE_MODE", "")),
		TableName:        get("TABLE_NAME", DefaultTable),
		DynamoDBEndpoint: get("DYNAMODB_ENDPOINT", ""),
		FrontendURL:      strings.TrimRight(get("FRONTEND_URL", DefaultFrontendURL), "/"),
		PublicAPIURL:     strings.TrimRight(get("PUBLIC_API_URL", DefaultPublicAPIURL), "/"),
	}
	c.Ops, errs = loadOps(get, errs)
	c.FrontendReturnPath = path(get("FRONTEND_RETURN_PATH", "/onboarding/return"))
	c.FrontendOnboardingPath = path(get("FRONTEND_ONBOARDING_PATH", "/onboarding"))
	retries, err := strconv.ParseInt(get("STRIPE_MAX_RETRIES", "2"), 10, 64)
	if err != nil || retries < 0 || retries > 5 {
		errs = append(errs, errors.New("STRIPE_MAX_RETRIES: must be 0 to 5"))
	}
	c.StripeMaxRetries = retries
	if c.StripeMode != "" && c.StripeMode != ModeTest && c.StripeMode != ModeLive {
		errs = append(errs, errors.New("STRIPE_MODE: must be test or live"))
	}
	if err := c.LogLevel.UnmarshalText([]byte(get("LOG_LEVEL", "INFO"))); err != nil {
		errs = append(errs, errors.New("LOG_LEVEL: must be DEBUG, INFO, WARN or ERROR"))
	}

	platformCountry := strings.ToUpper(get("PLATFORM_COUNTRY", "US"))
	// Empty: what Stripe lets a platform of that country onboard (none for
	// a country that is no platform country: Validate says why).
	allowed := onboarding.DefaultAllowedCountries(platformCountry)
	if raw := get("ALLOWED_COUNTRIES", ""); raw != "" {
		allowed = upper(SplitList(raw))
	}
	defaults := defaultCapabilities
	if v, set := lookupEnv("DEFAULT_CAPABILITIES"); set {
		defaults = v // empty (or "none"): Stripe chooses from the platform's settings
	}
	allowedCaps := SplitList(get("ALLOWED_CAPABILITIES", defaultCapabilities))
	c.Policy = onboarding.Policy{
		PlatformCountry:             platformCountry,
		AllowedCountries:            set(allowed),
		DefaultCapabilities:         SplitList(defaults),
		AllowedCapabilities:         set(allowedCaps),
		CrossBorderServiceAgreement: get("CROSS_BORDER_SERVICE_AGREEMENT", onboarding.AgreementFull),
		ProfileURLTemplate:          get("PROFILE_URL_TEMPLATE", ""),
		ProductDescriptionDefault:   get("PRODUCT_DESCRIPTION_DEFAULT", ""),
		ReturnURL:                   c.FrontendURL + path(get("FRONTEND_RETURN_PATH", "/onboarding/return")),
		RefreshURL:                  c.PublicAPIURL + "/onboarding/refresh",
		OnboardingURL:               c.FrontendURL + path(get("FRONTEND_ONBOARDING_PATH", "/onboarding")),
		CollectFields:               get("ONBOARDING_COLLECT", "currently_due"),
		RefreshTokenTTL:             duration("REFRESH_TOKEN_TTL", 24*time.Hour),
		ClaimLease:                  duration("CREATION_LEASE", 60*time.Second),
		// Stripe retries for three days; keep markers well past that.
		EventRetention:        duration("EVENT_RETENTION", 30*24*time.Hour),
		LinksPerHour:          DefaultLinksPerHour,
		UpdatesPerHour:        DefaultUpdatesPerHour,
		StatusRefreshInterval: duration("STATUS_REFRESH_INTERVAL", 5*time.Second),
		RefreshBounceWindow:   duration("REFRESH_BOUNCE_WINDOW", DefaultRefreshBounceWindow),
		StripeCallLease:       stripeCallBound(c.StripeTimeout, retries),
		StaffGroupsClaim:      get("STAFF_GROUPS_CLAIM", DefaultStaffGroupsClaim),
		StaffGroup:            get("STAFF_GROUP", DefaultStaffGroup),
		PublishableKey:        get("STRIPE_PUBLISHABLE_KEY", ""),
		EmbeddedComponents:    SplitList(get("EMBEDDED_COMPONENTS", onboarding.ComponentAccountOnboarding)),
	}
	// Stripe refuses transfers without card_payments under the full
	// agreement unless it approved the platform: only the platform knows.
	switch raw := strings.ToLower(get("ALLOW_TRANSFERS_ONLY", "false")); raw {
	case "true", "false":
		c.Policy.AllowTransfersOnly = raw == "true"
	default:
		errs = append(errs, fmt.Errorf("ALLOW_TRANSFERS_ONLY: must be true or false, got %q", raw))
	}
	// The token's email prefills an account only when the issuer says it is
	// verified, unless the issuer never sends email_verified.
	switch raw := strings.ToLower(get("EMAIL_REQUIRES_VERIFIED", "true")); raw {
	case "true", "false":
		c.Policy.PrefillUnverifiedEmail = raw == "false"
	default:
		errs = append(errs, fmt.Errorf("EMAIL_REQUIRES_VERIFIED: must be true or false, got %q", raw))
	}
	if raw := get("LINKS_PER_HOUR", ""); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil {
			errs = append(errs, fmt.Errorf("LINKS_PER_HOUR: %q is not a number", raw))
		}
		c.Policy.LinksPerHour = n
	}
	if raw := get("UPDATES_PER_HOUR", ""); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil {
			errs = append(errs, fmt.Errorf("UPDATES_PER_HOUR: %q is not a number", raw))
		}
		c.Policy.UpdatesPerHour = n
	}
	return c, errors.Join(errs...)
}

// DefaultLinksPerHour is LINKS_PER_HOUR's default.
const DefaultLinksPerHour = 20

// DefaultUpdatesPerHour is UPDATES_PER_HOUR's default: a user fills the
// prefill form a few times at most, a loop calling PATCH far more.
const DefaultUpdatesPerHour = 10

// DefaultRefreshBounceWindow is REFRESH_BOUNCE_WINDOW's default. A bounce
// is two redirects (ours to Stripe, Stripe's straight back): seconds even
// on a slow mobile network. A genuine refresh comes after the link expired
// (minutes) or was used. Taking a refresh for a bounce costs one account
// read, never a wrong answer; 30 s covers slow networks and stays far
// below a link's lifetime.
const DefaultRefreshBounceWindow = 30 * time.Second

// stripeCallBound is the longest one request's Stripe call can take: every
// attempt at its timeout, plus stripe-go's backoff between retries (under a
// second each for the retries allowed here), plus a margin for the store
// calls around it, which slow storage stretches. With the defaults (24 s)
// it outlasts the functions' 20 s timeout: a reservation whose holder died
// with its function is free again within it.
func stripeCallBound(timeout time.Duration, retries int64) time.Duration {
	return timeout*time.Duration(retries+1) + time.Duration(retries)*2*time.Second + 5*time.Second
}

// Needs says which secrets a process must have.
type Needs struct {
	StripeKey      bool
	WebhookSecrets bool
}

// Validate refuses a configuration the service cannot serve and returns
// warnings to print at start-up. Call it after secrets are loaded.
func (c *Config) Validate(needs Needs) (warnings []string, err error) {
	var errs []error
	if needs.StripeKey {
		switch {
		case c.StripeSecretKey == "":
			errs = append(errs, errors.New("STRIPE_SECRET_KEY (or STRIPE_SECRET_ARN in AWS) is required"))
		case KeyMode(c.StripeSecretKey) == "":
			errs = append(errs, errors.New("STRIPE_SECRET_KEY must be a secret (sk_) or restricted (rk_) key"))
		}
	}
	if needs.WebhookSecrets {
		if err := CheckWebhookSecrets(c.WebhookSecrets); err != nil {
			errs = append(errs, err)
		}
	}
	if keyMode := c.keyMode(); keyMode != "" && c.StripeMode != "" && c.StripeMode != keyMode {
		errs = append(errs, fmt.Errorf("STRIPE_MODE is %s but the Stripe key is a %s key: make them agree", c.StripeMode, keyMode))
	}
	if c.StripeAPIBase != "" {
		if u, err := url.Parse(c.StripeAPIBase); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			errs = append(errs, errors.New("STRIPE_API_BASE must be an absolute http(s) URL"))
		}
	}
	if c.Livemode() && c.StripeAPIBase != "" {
		errs = append(errs, errors.New("a live Stripe key must not be sent to STRIPE_API_BASE: unset one of them"))
	}
	c.Policy.Livemode = c.Livemode()
	if err := c.Ops.checkRate(c.Policy.Livemode); err != nil {
		errs = append(errs, err)
	}
	problems, warnings := c.Policy.Check()
	for _, p := range problems {
		errs = append(errs, fmt.Errorf("%s: %s", p.Setting, p.Message))
	}
	return warnings, errors.Join(errs...)
}

// Livemode reports whether the service runs in live mode: the key's mode
// when there is a key, else STRIPE_MODE (test when unset).
func (c *Config) Livemode() bool {
	if m := c.keyMode(); m != "" {
		return m == ModeLive
	}
	return c.StripeMode == ModeLive
}

// keyMode is the mode of the Stripe key, or "" without a recognised key.
func (c *Config) keyMode() string { return KeyMode(c.StripeSecretKey) }

// KeyMode is the mode of a Stripe API key, ModeTest or ModeLive, or "" when
// key is not a secret (sk_) or restricted (rk_) key.
func KeyMode(key string) string {
	switch {
	case strings.HasPrefix(key, "sk_live_") || strings.HasPrefix(key, "rk_live_"):
		return ModeLive
	case strings.HasPrefix(key, "sk_test_") || strings.HasPrefix(key, "rk_test_"):
		return ModeTest
	}
	return ""
}

// MinWebhookSecretLength is the shortest signing secret accepted after its
// whsec_ prefix. Stripe documents no length: its API reference says only that
// an endpoint's secret is "used to generate webhook signatures" (stripe-mock
// v0.183.0 embedded/openapi/spec3.json,
// components.schemas.webhook_endpoint.properties.secret, maxLength 5000). The
// secrets it issues carry at least 32 random characters after whsec_
// (Dashboard and API endpoints: 32; `stripe listen`: 64), as does the
// project's simulator (internal/stripesim). A shorter one is a placeholder or
// a typo, and an HMAC key an attacker could guess.
const MinWebhookSecretLength = 32

// CheckWebhookSecrets refuses an empty list of signing secrets, or one
// with an entry that is not a whsec_ secret of Stripe's length.
func CheckWebhookSecrets(secrets []string) error {
	if len(secrets) == 0 {
		return errors.New("STRIPE_WEBHOOK_SECRET (or STRIPE_WEBHOOK_SECRET_ARN in AWS) is required: the endpoint's signing secret(s), comma-separated")
	}
	for _, s := range secrets {
		if err := CheckWebhookSecret(s); err != nil {
			return err
		}
	}
	return nil
}

// CheckWebhookSecret refuses one entry that is not a whsec_ secret with at
// least MinWebhookSecretLength characters after the prefix. The message
// never holds the value.
func CheckWebhookSecret(s string) error {
	if !strings.HasPrefix(s, "whsec_") {
		return errors.New("STRIPE_WEBHOOK_SECRET entries must start with whsec_")
	}
	if len(s)-len("whsec_") < MinWebhookSecretLength {
		return fmt.Errorf("STRIPE_WEBHOOK_SECRET entries must be whsec_ followed by at least %d characters, as Stripe issues them: one is %d", MinWebhookSecretLength, len(s)-len("whsec_"))
	}
	return nil
}

// SplitList splits a comma-separated setting, dropping blanks.
func SplitList(raw string) []string {
	var out []string
	for _, p := range strings.Split(raw, ",") {
		if p = strings.TrimSpace(p); p != "" && !strings.EqualFold(p, "none") {
			out = append(out, p)
		}
	}
	return out
}

func upper(in []string) []string {
	for i := range in {
		in[i] = strings.ToUpper(in[i])
	}
	return in
}

func set(items []string) map[string]bool {
	m := make(map[string]bool, len(items))
	for _, i := range items {
		m[i] = true
	}
	return m
}

func path(p string) string {
	if !strings.HasPrefix(p, "/") {
		return "/" + p
	}
	return p
}
