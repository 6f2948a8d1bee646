package onboarding

import (
	"regexp"
	"testing"
)

// TestShapeChecksAcceptWhatTheirPatternsAccept: isCountryCode and isMCC
// replaced regexps compiled at package init (a cold-start cost); they must
// accept exactly what those patterns, which openapi.yaml publishes, accept.
func TestShapeChecksAcceptWhatTheirPatternsAccept(t *testing.T) {
	inputs := []string{"", "U", "US", "us", "uS", "U1", "USA", "U ", " US", "US\n", "É", "ÉÉ", "\x00\x00", "[[", "@Z", "`{",
		"0", "123", "1234", "12345", "0000", "9999", "12a4", "١٢٣٤", "1234\n", " 123", "12/4", "12:4"}
	for _, c := range []struct {
		name    string
		pattern *regexp.Regexp
		check   func(string) bool
	}{
		{"country code", regexp.MustCompile(`^[A-Za-z]{2}$`), isCountryCode},
		{"MCC", regexp.MustCompile(`^[0-9]{4}$`), isMCC},
	} {
		for _, in := range inputs {
			if got, want := c.check(in), c.pattern.MatchString(in); got != want {
				t.Errorf("%s %q: %v, the pattern says %v", c.name, in, got, want)
			}
		}
	}
}

func FuzzShapeChecksAcceptWhatTheirPatternsAccept(f *testing.F) {
	country, mcc := regexp.MustCompile(`^[A-Za-z]{2}$`), regexp.MustCompile(`^[0-9]{4}$`)
	for _, s := range []string{"US", "1234", "É", "12a4"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if isCountryCode(s) != country.MatchString(s) || isMCC(s) != mcc.MatchString(s) {
			t.Errorf("%q: country %v/%v, MCC %v/%v", s, isCountryCode(s), country.MatchString(s), isMCC(s), mcc.MatchString(s))
		}
	})
}

// TestCountryListsAreSortedWithoutRepeats: countryList.has searches by
// halves, so a code written out of order would be missed.
func TestCountryListsAreSortedWithoutRepeats(t *testing.T) {
	for name, l := range map[string]countryList{
		"fullServiceCountries": fullServiceCountries, "recipientOnlyCountries": recipientOnlyCountries,
		"selfServeRestricted": selfServeRestricted, "expressPlatformCountries": expressPlatformCountries,
		"crossBorderRecipientPlatforms": crossBorderRecipientPlatforms,
	} {
		for i := 1; i < len(l); i++ {
			if l[i-1] >= l[i] {
				t.Errorf("%s: %q before %q", name, l[i-1], l[i])
			}
		}
		for _, c := range l {
			if !l.has(c) {
				t.Errorf("%s.has(%q) = false", name, c)
			}
		}
		if l.has("ZZ") || l.has("") {
			t.Errorf("%s has a code it does not list", name)
		}
	}
}

// TestCountryCodesTakeTheLettersAtEachEndOfTheAlphabet: the letters at the
// edges of each case's run (a, z, A, Z) are letters, the bytes beside them
// ('`', '{', '@', '[') are not.
func TestCountryCodesTakeTheLettersAtEachEndOfTheAlphabet(t *testing.T) {
	for _, c := range []struct {
		code string
		want bool
	}{
		{"az", true}, {"za", true}, {"AZ", true}, {"ZA", true}, {"aZ", true}, {"Za", true},
		{"a`", false}, {"z{", false}, {"A@", false}, {"Z[", false},
	} {
		if got := isCountryCode(c.code); got != c.want {
			t.Errorf("isCountryCode(%q) = %v, want %v", c.code, got, c.want)
		}
	}
}
