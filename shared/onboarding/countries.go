package onboarding

import (
	"slices"
	"sort"
)

// Where Stripe supports Express connected accounts, from Stripe's
// "Global availability" page (stripe.com/global) and the cross-border payouts
// guide (docs.stripe.com/connect/cross-border-payouts), as of API version
// 2023-10-16. Review both pages when upgrading the API version.
var (
	// fullServiceCountries can hold accounts under the full service
	// agreement: they can take payments themselves.
	fullServiceCountries = countryList{
		"AE", "AT", "AU", "BE", "BG", "BR", "CA", "CH", "CY", "CZ", "DE", "DK",
		"EE", "ES", "FI", "FR", "GB", "GI", "GR", "HK", "HR", "HU", "IE", "IT",
		"JP", "LI", "LT", "LU", "LV", "MT", "MX", "MY", "NL", "NO", "NZ", "PL",
		"PT", "RO", "SE", "SG", "SI", "SK", "TH", "US",
	}
	// recipientOnlyCountries receive cross-border payouts only, so their
	// accounts must use the recipient service agreement.
	recipientOnlyCountries = countryList{
		"AG", "AL", "AM", "AO", "AR", "AZ", "BA", "BD", "BH", "BJ", "BN", "BO",
		"BS", "BT", "BW", "CI", "CL", "CO", "CR", "DO", "DZ", "EC", "EG", "ET",
		"GA", "GH", "GM", "GT", "GY", "ID", "IL", "IS", "JM", "JO", "KE", "KH",
		"KR", "KW", "KZ", "LA", "LC", "LK", "MA", "MC", "MD", "MG", "MK", "MN",
		"MO", "MU", "MZ", "NA", "NE", "NG", "OM", "PA", "PE", "PH", "PK", "PY",
		"QA", "RS", "RW", "SA", "SM", "SN", "SV", "TN", "TR", "TT", "TW", "TZ",
		"UY", "UZ", "VN", "ZA",
	}
	// selfServeRestricted platforms need Stripe to enable Express for them
	// before any account can be created: the Express guide names the UAE and
	// Thailand, and of those only Thailand is a platform country.
	selfServeRestricted = countryList{"TH"}

	// expressPlatformCountries are where a platform must be to create
	// Express accounts: the list under "Platform in a supported country" in
	// Stripe's Express guide (https://docs.stripe.com/connect/express-accounts,
	// "Before you begin"). An account may be in Gibraltar, Liechtenstein or
	// Malaysia, but a platform there cannot create Express accounts; nor can a
	// UAE platform, which the guide names only as one that cannot self-serve.
	expressPlatformCountries = countryList{
		"AT", "AU", "BE", "BG", "BR", "CA", "CH", "CY", "CZ", "DE", "DK", "EE",
		"ES", "FI", "FR", "GB", "GR", "HK", "HR", "HU", "IE", "IT", "JP", "LT",
		"LU", "LV", "MT", "MX", "NL", "NO", "NZ", "PL", "PT", "RO", "SE", "SG",
		"SI", "SK", "TH", "US",
	}
	// crossBorderRecipientPlatforms may pay out to accounts in
	// recipientOnlyCountries. Stripe's cross-border payouts guide of the
	// 2023-10-16 era is "US only": "Cross-border payouts enable US platforms
	// using separate charges and transfers, destination charges, or top-ups to
	// pay out to connected accounts in the following countries", under the
	// recipient service agreement only
	// (https://stripe.com/docs/connect/cross-border-payouts, as archived for
	// that API version). Later versions of the guide open other regions:
	// review this when upgrading the API version.
	crossBorderRecipientPlatforms = countryList{"US"}
)

// StripeSupportsPlatform reports whether a platform in the country can
// create Express accounts.
func StripeSupportsPlatform(country string) bool { return expressPlatformCountries.has(country) }

// DefaultAllowedCountries are the countries a platform in platformCountry
// may onboard when ALLOWED_COUNTRIES is empty: every country where Stripe
// supports Express accounts under the full agreement (the Express guide:
// such a platform "can create Express accounts for most countries Stripe
// supports"), and the recipient-only countries of cross-border payouts
// where the guide lets that platform pay them (US platforms only). Sorted;
// nil for a country that is no Express platform country.
func DefaultAllowedCountries(platformCountry string) []string {
	if !StripeSupportsPlatform(platformCountry) {
		return nil
	}
	out := make([]string, 0, len(fullServiceCountries)+len(recipientOnlyCountries))
	out = append(out, fullServiceCountries...)
	if crossBorderRecipientPlatforms.has(platformCountry) {
		out = append(out, recipientOnlyCountries...)
	}
	sort.Strings(out)
	return out
}

// StripeSupportsCountry reports whether Stripe can hold an Express account in
// the ISO 3166-1 alpha-2 country code.
func StripeSupportsCountry(code string) bool {
	return fullServiceCountries.has(code) || recipientOnlyCountries.has(code)
}

// SupportedCountries lists every country StripeSupportsCountry accepts, sorted.
func SupportedCountries() []string {
	out := slices.Concat(fullServiceCountries, recipientOnlyCountries)
	sort.Strings(out)
	return out
}

// countryList is a sorted list of country codes, written out sorted so that
// it is static data: as maps, the lists were built in this package's init,
// which every function's cold start ran (0.03 ms of inittrace). A test
// keeps each sorted and without repeats.
type countryList []string

func (l countryList) has(code string) bool {
	_, found := slices.BinarySearch(l, code)
	return found
}

func setOf(items ...string) map[string]bool {
	m := make(map[string]bool, len(items))
	for _, s := range items {
		m[s] = true
	}
	return m
}
