package httpapi

import (
	"slices"
	"testing"
)

// TestClaimGroupsReadsTheFormsAPIGatewaySends: an HTTP API JWT authorizer
// hands a list claim to the function as one string, "[a b]" (a one-group
// list is "[a]"); a provider whose claim is a string sends it as is. A JSON
// array text is read as one. Commas never split: Cognito allows them in
// group names, so "x,onboarding-staff" is one group and not staff.
func TestClaimGroupsReadsTheFormsAPIGatewaySends(t *testing.T) {
	tests := map[string][]string{
		"[onboarding-staff]":             {"onboarding-staff"},
		"[support onboarding-staff]":     {"support", "onboarding-staff"},
		" [support  onboarding-staff] ":  {"support", "onboarding-staff"},
		`["support","onboarding-staff"]`: {"support", "onboarding-staff"},
		"onboarding-staff":               {"onboarding-staff"},
		"support onboarding-staff":       {"support", "onboarding-staff"},
		"support,onboarding-staff":       {"support,onboarding-staff"},
		"[support,onboarding-staff]":     {"support,onboarding-staff"},
		"[onboarding-staff-readers]":     {"onboarding-staff-readers"},
		"[]":                             nil,
		"":                               nil,
		`["onboarding-staff"`:            {`["onboarding-staff"`},
	}
	for raw, want := range tests {
		if got := claimGroups(raw); !slices.Equal(got, want) {
			t.Errorf("claimGroups(%q) = %q, want %q", raw, got, want)
		}
	}
}
