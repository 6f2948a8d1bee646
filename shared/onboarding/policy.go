package onboarding

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Service agreements, as Stripe names them in tos_acceptance.
const (
	AgreementFull      = "full"
	AgreementRecipient = "recipient"
)

// Policy is how this platform onboards: every rule that differs between
// platforms comes from here, never from a request.
type Policy struct {
	PlatformCountry  string
	AllowedCountries map[string]bool
	// DefaultCapabilities are requested when the caller names none; empty
	// leaves the choice to the platform's Connect settings at Stripe.
	DefaultCapabilities []string
	AllowedCapabilities map[string]bool
	// AllowTransfersOnly lets an account under the full agreement request
	// transfers without card_payments (ALLOW_TRANSFERS_ONLY): Stripe refuses
	// that unless it approved the platform for it.
	AllowTransfersOnly bool
	// CrossBorderServiceAgreement applies to accounts outside the platform's
	// country when the caller names none.
	CrossBorderServiceAgreement string
	// ProfileURLTemplate prefills business_profile.url; {user_id} is replaced
	// by the escaped platform user id.
	ProfileURLTemplate        string
	ProductDescriptionDefault string

	ReturnURL     string // where Stripe sends the browser when it leaves onboarding
	RefreshURL    string // our public refresh route, without the token
	OnboardingURL string // the frontend page for a link that cannot be renewed (gets ?error=)
	CollectFields string // currently_due or eventually_due

	RefreshTokenTTL time.Duration
	ClaimLease      time.Duration
	EventRetention  time.Duration
	Livemode        bool

	// LinksPerHour bounds the account links and login links one user makes
	// in any rolling hour, so no user can spend the platform's Stripe rate
	// limit (which its payments share).
	LinksPerHour int
	// UpdatesPerHour bounds the Stripe account writes one user causes in
	// any rolling hour: prefill updates, and creation attempts after Stripe
	// refused the last one's parameters. Each is a Stripe write a caller
	// could otherwise repeat without end.
	UpdatesPerHour int
	// StatusRefreshInterval is how often GET /accounts/me?refresh=true may
	// re-read one account from Stripe; within it the stored state answers.
	StatusRefreshInterval time.Duration
	// RefreshBounceWindow: a refresh this soon after its link was minted is
	// a bounce (Stripe sent the browser straight back, as it does for a
	// rejected account), and the account is read from Stripe before
	// another link is made.
	RefreshBounceWindow time.Duration
	// StripeCallLease bounds one request's Stripe call, retries included:
	// leases taken around a Stripe call (a prefill update, a refresh token
	// being redeemed) last this long if their holder dies.
	StripeCallLease time.Duration

	// PrefillUnverifiedEmail lets the token's email prefill an account
	// without email_verified true (EMAIL_REQUIRES_VERIFIED=false), for
	// issuers that never send that claim. Otherwise an unverified address,
	// which anyone may type at sign-up, would be handed to Stripe as the
	// account's.
	PrefillUnverifiedEmail bool

	// StaffGroupsClaim names the token claim that lists the caller's groups
	// (Cognito's cognito:groups); a caller in StaffGroup may use the staff
	// routes.
	StaffGroupsClaim, StaffGroup string

	// PublishableKey (STRIPE_PUBLISHABLE_KEY, pk_test_ or pk_live_) goes to
	// the browser with every Account Session: Connect.js needs it. Not a
	// secret. Empty: the session route is refused.
	PublishableKey string
	// EmbeddedComponents (EMBEDDED_COMPONENTS) are the Connect.js
	// components a session enables besides account_onboarding, which it
	// always enables.
	EmbeddedComponents []string
}

// MaxLinksPerHour caps LinksPerHour: each counted use is an attribute of
// the user's limit item, written on every use.
const MaxLinksPerHour = 100

// MaxUpdatesPerHour caps UpdatesPerHour, for the same reason.
const MaxUpdatesPerHour = 100

// ErrorPage is the frontend's onboarding page telling the browser why it
// got no new link (the refresh route's ?error= codes).
func (p Policy) ErrorPage(code string) string { return withQuery(p.OnboardingURL, "error", code) }

// Problem is a configuration the service cannot serve.
type Problem struct{ Setting, Message string }

// Check returns what is wrong with p (refuse to start) and what deserves a
// warning at start-up.
func (p Policy) Check() (problems []Problem, warnings []string) {
	bad := func(setting, format string, args ...any) {
		problems = append(problems, Problem{setting, fmt.Sprintf(format, args...)})
	}
	platformOK := StripeSupportsPlatform(p.PlatformCountry)
	if !platformOK {
		bad("PLATFORM_COUNTRY", "%q is not one of the platform countries of Stripe's Express guide (%s): a platform there cannot create Express accounts",
			p.PlatformCountry, strings.Join(expressPlatformCountries, " "))
	}
	if len(p.AllowedCountries) == 0 && platformOK {
		bad("ALLOWED_COUNTRIES", "no country is allowed")
	}
	var recipientsRefused []string
	for _, c := range sortedKeys(p.AllowedCountries) {
		switch {
		case !StripeSupportsCountry(c):
			bad("ALLOWED_COUNTRIES", "%q is not a country where Stripe supports Express accounts", c)
		case platformOK && recipientOnlyCountries.has(c) && !crossBorderRecipientPlatforms.has(p.PlatformCountry):
			recipientsRefused = append(recipientsRefused, c)
		}
	}
	if len(recipientsRefused) > 0 {
		bad("ALLOWED_COUNTRIES", "%s: accounts there receive cross-border payouts only, which Stripe offers to platforms in %s, not in %s",
			strings.Join(recipientsRefused, ","), strings.Join(crossBorderRecipientPlatforms, ","), p.PlatformCountry)
	}
	if platformOK && selfServeRestricted.has(p.PlatformCountry) {
		warnings = append(warnings, fmt.Sprintf("platforms in %s cannot self-serve Express accounts: Stripe must enable Express for this platform before accounts can be created", p.PlatformCountry))
	}
	if p.CrossBorderServiceAgreement != AgreementFull && p.CrossBorderServiceAgreement != AgreementRecipient {
		bad("CROSS_BORDER_SERVICE_AGREEMENT", "must be full or recipient, got %q", p.CrossBorderServiceAgreement)
	}
	for _, c := range p.DefaultCapabilities {
		if !p.AllowedCapabilities[c] {
			bad("DEFAULT_CAPABILITIES", "%q is not in ALLOWED_CAPABILITIES", c)
		}
	}
	if slices.Contains(p.DefaultCapabilities, "card_payments") && !slices.Contains(p.DefaultCapabilities, "transfers") {
		bad("DEFAULT_CAPABILITIES", "card_payments needs transfers beside it: Stripe refuses it alone")
	}
	if transfersOnly(p.DefaultCapabilities) && !p.AllowTransfersOnly {
		// Defaults apply to accounts under the full agreement (a recipient
		// is given transfers alone, as it must).
		bad("DEFAULT_CAPABILITIES", "transfers without card_payments needs Stripe's approval of the platform: "+
			"add card_payments, or set ALLOW_TRANSFERS_ONLY=true once Stripe approved it")
	}
	if p.ProfileURLTemplate != "" {
		if u, err := url.Parse(strings.ReplaceAll(p.ProfileURLTemplate, "{user_id}", "x")); err != nil || u.Scheme != "https" || u.Host == "" {
			bad("PROFILE_URL_TEMPLATE", "must be an https URL, optionally with {user_id}")
		}
	}
	if p.CollectFields != "currently_due" && p.CollectFields != "eventually_due" {
		bad("ONBOARDING_COLLECT", "must be currently_due or eventually_due, got %q", p.CollectFields)
	}
	if p.LinksPerHour < 1 || p.LinksPerHour > MaxLinksPerHour {
		bad("LINKS_PER_HOUR", "must be 1 to %d, got %d", MaxLinksPerHour, p.LinksPerHour)
	}
	if p.UpdatesPerHour < 1 || p.UpdatesPerHour > MaxUpdatesPerHour {
		bad("UPDATES_PER_HOUR", "must be 1 to %d, got %d", MaxUpdatesPerHour, p.UpdatesPerHour)
	}
	for _, c := range p.EmbeddedComponents {
		if !slices.Contains(EmbeddedComponentNames, c) {
			bad("EMBEDDED_COMPONENTS", "%q is not one of %s", c, strings.Join(EmbeddedComponentNames, ","))
		}
	}
	if p.PublishableKey != "" {
		// A test key beside a live secret key (or the reverse) makes
		// Connect.js refuse every session.
		switch {
		case !strings.HasPrefix(p.PublishableKey, "pk_test_") && !strings.HasPrefix(p.PublishableKey, "pk_live_"):
			bad("STRIPE_PUBLISHABLE_KEY", "must be a publishable key (pk_test_ or pk_live_)")
		case p.Livemode != strings.HasPrefix(p.PublishableKey, "pk_live_"):
			bad("STRIPE_PUBLISHABLE_KEY", "is a %s key but the Stripe secret key is a %s key: make them agree", keyModeName(strings.HasPrefix(p.PublishableKey, "pk_live_")), keyModeName(p.Livemode))
		}
	}
	for setting, raw := range map[string]string{"return URL": p.ReturnURL, "refresh URL": p.RefreshURL, "onboarding page URL": p.OnboardingURL} {
		u, err := url.Parse(raw)
		switch {
		case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
			bad("FRONTEND_URL/PUBLIC_API_URL", "the %s %q is not an absolute http(s) URL", setting, raw)
		case p.Livemode && u.Scheme != "https":
			bad("FRONTEND_URL/PUBLIC_API_URL", "a live Stripe key needs https URLs: the %s is %q", setting, raw)
		}
	}
	slices.SortFunc(problems, func(a, b Problem) int { return strings.Compare(a.Setting+a.Message, b.Setting+b.Message) })
	return problems, warnings
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func keyModeName(live bool) string {
	if live {
		return "live"
	}
	return "test"
}
