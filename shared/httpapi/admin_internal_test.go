package httpapi

import (
	"encoding/json"
	"slices"
	"testing"
)

// TestClaimGroupsReadsTheTokensJSON: the groups claim as the token holds
// it. A JSON array's strings are the groups, each whole; a JSON string is
// groups separated by spaces (and only spaces); anything else is none.
// Commas never split: Cognito allows them in group names, so
// "x,onboarding-staff" is one group and not staff.
func TestClaimGroupsReadsTheTokensJSON(t *testing.T) {
	tests := map[string][]string{
		`["onboarding-staff"]`:                  {"onboarding-staff"},
		`["support","onboarding-staff"]`:        {"support", "onboarding-staff"},
		`["onboarding-staff applicants"]`:       {"onboarding-staff applicants"},
		`["\"onboarding-staff\""]`:              {`"onboarding-staff"`},
		`["support,onboarding-staff"]`:          {"support,onboarding-staff"},
		`["onboarding-staff",7,null,{"a":"b"}]`: {"onboarding-staff"},
		`"onboarding-staff"`:                    {"onboarding-staff"},
		`"support  onboarding-staff "`:          {"support", "onboarding-staff"},
		`"support\tonboarding-staff"`:           {"support\tonboarding-staff"},
		`"support,onboarding-staff"`:            {"support,onboarding-staff"},
		`"[onboarding-staff]"`:                  {"[onboarding-staff]"},
		`[]`:                                    {},
		`""`:                                    nil,
		`null`:                                  {},
		`7`:                                     nil,
		`{"onboarding-staff":true}`:             nil,
		``:                                      nil,
	}
	for raw, want := range tests {
		if got := claimGroups(json.RawMessage(raw)); !slices.Equal(got, want) {
			t.Errorf("claimGroups(%s) = %q, want %q", raw, got, want)
		}
	}
}
