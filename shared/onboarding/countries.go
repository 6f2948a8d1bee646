package onboarding

import "sort"

// Where Stripe supports Express connected accounts, from Stripe's
// "Global availability" page (stripe.com/global) and the cross-border payouts
// guide (docs.stripe.com/connect/cross-border-payouts), as of API version
// 2023-10-16. Review both pages when upgrading the API version.
var (
	// fullServiceCountries can hold accounts under the full service
	// agreement: they can take payments themselves.
	fullServiceCountries = setOf(
		"AE", "AT", "AU", "BE", "BG", "BR", "CA", "CH", "CY", "CZ", "DE", "DK",
		"EE", "ES", "FI", "FR", "GB", "GI", "GR", "HK", "HR", "HU", "IE", "IT",
		"JP", "LI", "LT", "LU", "LV", "MT", "MX", "MY", "NL", "NO", "NZ", "PL",
		"PT", "RO", "SE", "SG", "SI", "SK", "TH", "US",
	)
	// recipientOnlyCountries receive cross-border payouts only, so their
	// accounts must use the recipient service agreement.
	recipientOnlyCountries = setOf(
		"AG", "AL", "AM", "AO", "AR", "AZ", "BA", "BD", "BH", "BJ", "BN", "BO",
		"BS", "BT", "BW", "CI", "CL", "CO", "CR", "DO", "DZ", "EC", "EG", "ET",
		"GA", "GH", "GM", "GT", "GY", "ID", "IL", "IS", "JM", "JO", "KE", "KH",
		"KR", "KW", "KZ", "LA", "LC", "LK", "MA", "MC", "MD", "MG", "MK", "MN",
		"MO", "MU", "MZ", "NA", "NE", "NG", "OM", "PA", "PE", "PH", "PK", "PY",
		"QA", "RS", "RW", "SA", "SM", "SN", "SV", "TN", "TR", "TT", "TW", "TZ",
		"UY", "UZ", "VN", "ZA",
	)
	// selfServeRestricted platforms (UAE, Thailand) need Stripe to enable
	// Express for them before any account can be created.
	selfServeRestricted = setOf("AE", "TH")
)

// StripeSupportsCountry reports whether Stripe can hold an Express account in
// the ISO 3166-1 alpha-2 country code.
func StripeSupportsCountry(code string) bool {
	return fullServiceCountries[code] || recipientOnlyCountries[code]
}

// SupportedCountries lists every country StripeSupportsCountry accepts, sorted.
func SupportedCountries() []string {
	out := make([]string, 0, len(fullServiceCountries)+len(recipientOnlyCountries))
	for _, set := range []map[string]bool{fullServiceCountries, recipientOnlyCountries} {
		for c := range set {
			out = append(out, c)
		}
	}
	sort.Strings(out)
	return out
}

func setOf(items ...string) map[string]bool {
	m := make(map[string]bool, len(items))
	for _, s := range items {
		m[s] = true
	}
	return m
}
