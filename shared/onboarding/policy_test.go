package onboarding_test

import (
	"strings"
	"testing"

	"github.com/connectexpress/onboarding/shared/onboarding"
)

func TestPolicyCheckRefusesWhatCannotBeServed(t *testing.T) {
	tests := []struct {
		name        string
		change      func(*onboarding.Policy)
		wantProblem string // substring of a problem's setting+message; "" = none
		wantWarning string
	}{
		{"default US platform is fine", func(*onboarding.Policy) {}, "", ""},
		{"allowed country Stripe does not support", func(p *onboarding.Policy) { p.AllowedCountries["KP"] = true }, `ALLOWED_COUNTRIES: "KP"`, ""},
		{"UAE platform: not a platform country of the Express guide",
			func(p *onboarding.Policy) { p.PlatformCountry = "AE"; p.AllowedCountries = map[string]bool{"AE": true} }, `PLATFORM_COUNTRY: "AE"`, ""},
		{"Gibraltar platform", func(p *onboarding.Policy) { p.PlatformCountry = "GI" }, `PLATFORM_COUNTRY: "GI"`, ""},
		{"Liechtenstein platform", func(p *onboarding.Policy) { p.PlatformCountry = "LI" }, `PLATFORM_COUNTRY: "LI"`, ""},
		{"Malaysian platform", func(p *onboarding.Policy) { p.PlatformCountry = "MY" }, `PLATFORM_COUNTRY: "MY"`, ""},
		{"UK platform allowing a recipient-only country",
			func(p *onboarding.Policy) {
				p.PlatformCountry = "GB"
				p.AllowedCountries = map[string]bool{"GB": true, "BR": true, "TR": true}
			},
			"ALLOWED_COUNTRIES: TR: accounts there receive cross-border payouts only", ""},
		{"UK platform allowing Express countries abroad", func(p *onboarding.Policy) {
			p.PlatformCountry = "GB"
			p.AllowedCountries = map[string]bool{"GB": true, "US": true, "FR": true, "MY": true}
		}, "", ""},
		{"Thai platform starts with a warning", func(p *onboarding.Policy) { p.PlatformCountry = "TH"; p.AllowedCountries = map[string]bool{"TH": true} }, "", "TH cannot self-serve"},
		{"platform country without Connect", func(p *onboarding.Policy) { p.PlatformCountry = "IL" }, "PLATFORM_COUNTRY", ""},
		{"test publishable key beside a test secret key", func(p *onboarding.Policy) { p.PublishableKey = "pk_test_x" }, "", ""},
		{"test publishable key beside a live secret key", func(p *onboarding.Policy) {
			p.PublishableKey, p.Livemode = "pk_test_x", true
			p.ReturnURL, p.RefreshURL, p.OnboardingURL = "https://f.example/r", "https://a.example/r", "https://f.example/o"
		}, "STRIPE_PUBLISHABLE_KEY: is a test key but the Stripe secret key is a live key", ""},
		{"live publishable key beside a test secret key", func(p *onboarding.Policy) { p.PublishableKey = "pk_live_x" }, "STRIPE_PUBLISHABLE_KEY: is a live key", ""},
		{"a secret key as the publishable key", func(p *onboarding.Policy) { p.PublishableKey = "sk_test_x" }, "STRIPE_PUBLISHABLE_KEY: must be a publishable key", ""},
		{"every embedded component of 2023-10-16", func(p *onboarding.Policy) {
			p.EmbeddedComponents = []string{"account_onboarding", "payouts", "payments", "payment_details", "documents"}
		}, "", ""},
		{"an embedded component 2023-10-16 lacks", func(p *onboarding.Policy) { p.EmbeddedComponents = []string{"account_management"} }, `EMBEDDED_COMPONENTS: "account_management"`, ""},
		{"bad cross-border agreement", func(p *onboarding.Policy) { p.CrossBorderServiceAgreement = "maybe" }, "CROSS_BORDER_SERVICE_AGREEMENT", ""},
		{"default card payments without transfers", func(p *onboarding.Policy) { p.DefaultCapabilities = []string{"card_payments"} }, "DEFAULT_CAPABILITIES", ""},
		{"default transfers without card payments", func(p *onboarding.Policy) { p.DefaultCapabilities = []string{"transfers"} }, "DEFAULT_CAPABILITIES: transfers without card_payments", ""},
		{"default transfers only once Stripe approved the platform",
			func(p *onboarding.Policy) { p.DefaultCapabilities, p.AllowTransfersOnly = []string{"transfers"}, true }, "", ""},
		{"no default capabilities leave the choice to Stripe", func(p *onboarding.Policy) { p.DefaultCapabilities = nil }, "", ""},
		{"default capability not allowed", func(p *onboarding.Policy) { p.DefaultCapabilities = []string{"card_issuing"} }, "DEFAULT_CAPABILITIES", ""},
		{"http profile template", func(p *onboarding.Policy) { p.ProfileURLTemplate = "http://x.example/{user_id}" }, "PROFILE_URL_TEMPLATE", ""},
		{"https profile template", func(p *onboarding.Policy) { p.ProfileURLTemplate = "https://x.example/sellers/{user_id}" }, "", ""},
		{"profile template without a host", func(p *onboarding.Policy) { p.ProfileURLTemplate = "https:///sellers/{user_id}" }, "PROFILE_URL_TEMPLATE", ""},
		{"one link per hour", func(p *onboarding.Policy) { p.LinksPerHour = 1 }, "", ""},
		{"no links at all", func(p *onboarding.Policy) { p.LinksPerHour = 0 }, "LINKS_PER_HOUR", ""},
		{"the most links per hour", func(p *onboarding.Policy) { p.LinksPerHour = onboarding.MaxLinksPerHour }, "", ""},
		{"more links per hour than a limit item counts", func(p *onboarding.Policy) { p.LinksPerHour = onboarding.MaxLinksPerHour + 1 }, "LINKS_PER_HOUR", ""},
		{"one update per hour", func(p *onboarding.Policy) { p.UpdatesPerHour = 1 }, "", ""},
		{"no updates at all", func(p *onboarding.Policy) { p.UpdatesPerHour = 0 }, "UPDATES_PER_HOUR", ""},
		{"the most updates per hour", func(p *onboarding.Policy) { p.UpdatesPerHour = onboarding.MaxUpdatesPerHour }, "", ""},
		{"more updates per hour than a limit item counts", func(p *onboarding.Policy) { p.UpdatesPerHour = onboarding.MaxUpdatesPerHour + 1 }, "UPDATES_PER_HOUR", ""},
		{"live mode with http frontend", func(p *onboarding.Policy) { p.Livemode = true; p.ReturnURL = "http://localhost:5173/return" }, "live Stripe key needs https", ""},
		{"live mode with https everywhere", func(p *onboarding.Policy) { p.Livemode = true }, "", ""},
		{"test mode may use http", func(p *onboarding.Policy) { p.ReturnURL = "http://localhost:5173/return" }, "", ""},
		{"unknown collect fields", func(p *onboarding.Policy) { p.CollectFields = "all" }, "ONBOARDING_COLLECT", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := testPolicy()
			tt.change(&p)
			problems, warnings := p.Check()
			var all []string
			for _, pr := range problems {
				all = append(all, pr.Setting+": "+pr.Message)
			}
			joined := strings.Join(all, "\n")
			if tt.wantProblem == "" && len(problems) > 0 {
				t.Fatalf("unexpected problems:\n%s", joined)
			}
			if tt.wantProblem != "" && !strings.Contains(joined, tt.wantProblem) {
				t.Fatalf("problems %q do not mention %q", joined, tt.wantProblem)
			}
			w := strings.Join(warnings, "\n")
			if (tt.wantWarning == "") != (w == "") || !strings.Contains(w, tt.wantWarning) {
				t.Fatalf("warnings %q, want %q", w, tt.wantWarning)
			}
		})
	}
}

// Several problems come out in one order, by setting, so the start-up error reads the same
// each time.
func TestPolicyProblemsComeSortedBySetting(t *testing.T) {
	p := testPolicy()
	p.PlatformCountry, p.CollectFields, p.LinksPerHour = "IL", "all", 0
	problems, _ := p.Check()
	var settings []string
	for _, pr := range problems {
		settings = append(settings, pr.Setting)
	}
	if got, want := strings.Join(settings, ","), "LINKS_PER_HOUR,ONBOARDING_COLLECT,PLATFORM_COUNTRY"; got != want {
		t.Fatalf("problems by setting %s, want %s", got, want)
	}
}

// An empty ALLOWED_COUNTRIES means what Stripe lets a platform of that
// country onboard: every Express country under the full agreement, and the
// recipient-only countries of cross-border payouts only for a US platform
// (the guide of the 2023-10-16 era is "US only"). One platform per region.
func TestDefaultAllowedCountriesFollowThePlatformsCountry(t *testing.T) {
	tests := []struct {
		platform   string
		allowed    []string // must be in the default
		notAllowed []string // must not be
	}{
		{"US", []string{"US", "GB", "FR", "JP", "MY", "GI", "LI", "TR", "ZA", "AR", "ID"}, nil},
		{"GB", []string{"GB", "US", "DE", "CH", "AU", "JP", "MY"}, []string{"TR", "ZA", "AR", "IL"}},
		{"DE", []string{"DE", "FR", "GB", "US"}, []string{"TR", "KR"}},
		{"AU", []string{"AU", "NZ", "US"}, []string{"TR", "PH"}},
		{"JP", []string{"JP", "US"}, []string{"KR", "TW"}},
		{"SG", []string{"SG", "HK", "MY"}, []string{"ID", "VN"}},
		{"BR", []string{"BR", "MX", "US"}, []string{"AR", "CL", "CO"}},
		{"MX", []string{"MX", "BR"}, []string{"AR", "PE"}},
		{"TH", []string{"TH", "SG"}, []string{"VN", "KH"}},
		// Not platform countries: nothing, and Check says why.
		{"AE", nil, []string{"AE", "US"}},
		{"GI", nil, []string{"GI", "GB"}},
		{"MY", nil, []string{"MY"}},
	}
	for _, tt := range tests {
		t.Run(tt.platform, func(t *testing.T) {
			got := map[string]bool{}
			for _, c := range onboarding.DefaultAllowedCountries(tt.platform) {
				got[c] = true
			}
			for _, c := range tt.allowed {
				if !got[c] {
					t.Errorf("a %s platform may onboard %s by default, but it is not in %v", tt.platform, c, onboarding.DefaultAllowedCountries(tt.platform))
				}
			}
			for _, c := range tt.notAllowed {
				if got[c] {
					t.Errorf("a %s platform may not onboard %s, but the default allows it", tt.platform, c)
				}
			}
			if p := testPolicyFor(tt.platform, got); onboarding.StripeSupportsPlatform(tt.platform) {
				if problems, _ := p.Check(); len(problems) > 0 {
					t.Errorf("the default of a %s platform does not pass Check: %v", tt.platform, problems)
				}
			}
		})
	}
}

func testPolicyFor(platform string, allowed map[string]bool) onboarding.Policy {
	p := testPolicy()
	p.PlatformCountry, p.AllowedCountries = platform, allowed
	return p
}
