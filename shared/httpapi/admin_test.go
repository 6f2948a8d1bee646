package httpapi_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/connectexpress/onboarding/internal/memstore"
	"github.com/connectexpress/onboarding/shared/httpapi"
	"github.com/connectexpress/onboarding/shared/onboarding"
)

// The staff routes as staff and everyone else see them: who may call them,
// how the list reads its query, and what a review answers, on an in-memory
// staff store that records what reached it.

// recordingStaff is an onboarding.StaffStore holding one account, of
// "seller", that records the filter and the decisions it is given.
type recordingStaff struct {
	filters   []onboarding.AccountFilter
	decisions []onboarding.ReviewDecision
	histories int
}

func (s *recordingStaff) ListAccounts(_ context.Context, f onboarding.AccountFilter) (onboarding.StaffPage, error) {
	s.filters = append(s.filters, f)
	return onboarding.StaffPage{Accounts: []onboarding.AccountSummary{{UserID: "seller", AccountID: "acct_seller"}}}, nil
}

func (s *recordingStaff) record() onboarding.StaffRecord {
	return onboarding.StaffRecord{
		Record:      onboarding.AccountRecord{UserID: "seller", AccountID: "acct_seller", Country: "US", ServiceAgreement: "full"},
		ReviewState: onboarding.ReviewState{Review: onboarding.ReviewPending},
	}
}

func (s *recordingStaff) StaffHistory(_ context.Context, userID string, _ int) (onboarding.StaffHistory, error) {
	s.histories++
	if userID != "seller" {
		return onboarding.StaffHistory{}, onboarding.ErrNotFound
	}
	return onboarding.StaffHistory{StaffRecord: s.record()}, nil
}

func (s *recordingStaff) RecordReview(_ context.Context, _ string, d onboarding.ReviewDecision, _ *onboarding.StateWrite) (onboarding.StaffRecord, bool, error) {
	s.decisions = append(s.decisions, d)
	rec := s.record()
	rec.Review, rec.ReviewedBy, rec.ReviewedAt = onboarding.ReviewApproved, d.Reviewer, d.At
	return rec, true, nil
}

func (s *recordingStaff) BeginRejection(context.Context, string, onboarding.ReviewDecision, time.Time) error {
	return nil
}

func (s *recordingStaff) RecordRejectionOutcome(context.Context, string, onboarding.ReviewDecision) error {
	return nil
}

func newStaffFixture() (*fixture, *recordingStaff) {
	staff := &recordingStaff{}
	f := &fixture{store: &steeredStore{Store: memstore.New()}, connect: &steeredConnect{fakeConnect: &fakeConnect{}}}
	f.svc = onboarding.NewService(f.store, f.connect, fuzzPolicy, onboarding.WithStaffStore(staff),
		onboarding.WithLogger(quiet), onboarding.WithClock(func() time.Time { return testNow }))
	return f, staff
}

// staffRequest is a request of sub whose token's cognito:groups claim is
// groups (nil: no claim), as API Gateway hands it to the function: the
// token itself in the Authorization header, and its claims, verified, in
// the authorizer context, where a list claim is one string ("[a b]").
func staffRequest(method, path, body, sub string, groups any) httpapi.Request {
	claims := map[string]any{"sub": sub}
	context := map[string]string{"sub": sub}
	if groups != nil {
		claims["cognito:groups"] = groups
		context["cognito:groups"] = apiGatewayClaim(groups)
	}
	req := event(method, path, []byte(body), context)
	req.Headers["authorization"] = "Bearer " + unsignedToken(claims)
	if strings.HasPrefix(path, "/admin/accounts/") {
		req.PathParameters = map[string]string{"user_id": strings.Split(strings.TrimPrefix(path, "/admin/accounts/"), "/")[0]}
	}
	return req
}

// unsignedToken is a JWT of claims whose signature nobody checks: the
// function trusts API Gateway's authorizer to have checked it.
func unsignedToken(claims map[string]any) string {
	payload, _ := json.Marshal(claims)
	return "eyJhbGciOiJSUzI1NiJ9." + base64.RawURLEncoding.EncodeToString(payload) + ".c2lnbmF0dXJl"
}

// apiGatewayClaim renders a claim as an HTTP API JWT authorizer puts it in
// the context: a list as "[a b]", a string as it is.
func apiGatewayClaim(v any) string {
	switch v := v.(type) {
	case []string:
		return "[" + strings.Join(v, " ") + "]"
	case string:
		return v
	default:
		b, _ := json.Marshal(v)
		return string(b)
	}
}

func withQuery(req httpapi.Request, q map[string]string) httpapi.Request {
	req.QueryStringParameters = q
	return req
}

func TestStaffRoutesRefuseEveryoneOutsideTheGroupBeforeReadingTheirInput(t *testing.T) {
	requests := map[string]struct {
		route httpapi.Route
		req   func(groups any) httpapi.Request
	}{
		"list with an unknown parameter": {httpapi.AdminListAccounts, func(g any) httpapi.Request {
			return withQuery(staffRequest("GET", "/admin/accounts", "", "mallory", g), map[string]string{"limit": "1000", "drop": "table"})
		}},
		"an account": {httpapi.AdminGetAccount, func(g any) httpapi.Request {
			return staffRequest("GET", "/admin/accounts/seller", "", "mallory", g)
		}},
		"a review with a bad body": {httpapi.AdminReviewAccount, func(g any) httpapi.Request {
			return staffRequest("POST", "/admin/accounts/seller/review", `{"decision":`, "mallory", g)
		}},
	}
	for name, r := range requests {
		for _, groups := range []any{nil, []string{"support"}, []string{"onboarding-staff-readers"}, "support,onboarding-staff", []string{"ONBOARDING-STAFF"}} {
			f, staff := newStaffFixture()
			resp := f.serve(r.route, r.req(groups))
			if env := decodeEnvelope(t, resp); resp.StatusCode != http.StatusForbidden || env.Error.Code != "forbidden" {
				t.Errorf("%s, groups %q: %d %s, want 403 forbidden", name, groups, resp.StatusCode, resp.Body)
			}
			if len(staff.filters)+len(staff.decisions)+staff.histories != 0 {
				t.Errorf("%s, groups %q: the staff store was reached", name, groups)
			}
		}
		// The same request from staff gets past the group: an answer other than 403.
		f, _ := newStaffFixture()
		if resp := f.serve(r.route, r.req([]string{"support", "onboarding-staff"})); resp.StatusCode == http.StatusForbidden {
			t.Errorf("%s from staff: 403 %s", name, resp.Body)
		}
	}
}

// TestStaffGroupIsAnExactNameInTheVerifiedToken: the group is read from the
// token in the Authorization header, never from API Gateway's rendering of
// it ("[a b]"), and compared exactly. A group whose name only looks like
// the staff group in that rendering is not staff; nor is a token other than
// the one the authorizer verified, or none.
func TestStaffGroupIsAnExactNameInTheVerifiedToken(t *testing.T) {
	staffGet := func(groups any) httpapi.Request {
		return staffRequest("GET", "/admin/accounts/seller", "", "mallory", groups)
	}
	withAuthorization := func(value string) httpapi.Request {
		req := staffGet([]string{"onboarding-staff"})
		req.Headers["authorization"] = value
		return req
	}
	otherToken := func(claims map[string]any) httpapi.Request {
		return withAuthorization("Bearer " + unsignedToken(claims))
	}
	tests := []struct {
		name string
		req  httpapi.Request
		want int
	}{
		{"the staff group", staffGet([]string{"onboarding-staff"}), http.StatusOK},
		{"the staff group among others", staffGet([]string{"support", "onboarding-staff"}), http.StatusOK},
		{"a string claim of space-separated groups", staffGet("support onboarding-staff"), http.StatusOK},
		{"a group whose name holds a space after the staff group", staffGet([]string{"onboarding-staff applicants"}), http.StatusForbidden},
		{"a group whose name holds a space before the staff group", staffGet([]string{"applicants onboarding-staff"}), http.StatusForbidden},
		{"the staff group in quotes", staffGet([]string{`"onboarding-staff"`}), http.StatusForbidden},
		{"the staff group in brackets", staffGet([]string{"[onboarding-staff]"}), http.StatusForbidden},
		{"a JSON array in a string claim", staffGet(`["onboarding-staff"]`), http.StatusForbidden},
		{"a prefix of another name", staffGet([]string{"onboarding-staff-readers"}), http.StatusForbidden},
		{"a suffix of another name", staffGet([]string{"not-onboarding-staff"}), http.StatusForbidden},
		{"a leading space", staffGet([]string{" onboarding-staff"}), http.StatusForbidden},
		{"a trailing tab", staffGet([]string{"onboarding-staff\t"}), http.StatusForbidden},
		{"another case", staffGet([]string{"Onboarding-Staff"}), http.StatusForbidden},
		{"comma-separated in a string claim", staffGet("support,onboarding-staff"), http.StatusForbidden},
		{"tab-separated in a string claim", staffGet("support\tonboarding-staff"), http.StatusForbidden},
		{"a claim that is neither list nor string", staffGet(map[string]any{"onboarding-staff": true}), http.StatusForbidden},
		{"no Authorization header", func() httpapi.Request {
			r := staffGet([]string{"onboarding-staff"})
			delete(r.Headers, "authorization")
			return r
		}(), http.StatusForbidden},
		{"a token of another sub", otherToken(map[string]any{"sub": "stella", "cognito:groups": []string{"onboarding-staff"}}), http.StatusForbidden},
		{"a token without sub", otherToken(map[string]any{"cognito:groups": []string{"onboarding-staff"}}), http.StatusForbidden},
		{"a token whose sub is not a string", otherToken(map[string]any{"sub": []string{"mallory"}, "cognito:groups": []string{"onboarding-staff"}}), http.StatusForbidden},
		{"a scheme other than Bearer", withAuthorization("Basic bWFsbG9yeTpwdw=="), http.StatusForbidden},
		{"a token of two parts", withAuthorization("Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJtYWxsb3J5In0"), http.StatusForbidden},
		{"a payload that is not base64url", withAuthorization("Bearer a.!!!.c"), http.StatusForbidden},
		{"a payload that is not JSON", withAuthorization("Bearer a." + base64.RawURLEncoding.EncodeToString([]byte("mallory")) + ".c"), http.StatusForbidden},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, staff := newStaffFixture()
			resp := f.serve(httpapi.AdminGetAccount, tc.req)
			if resp.StatusCode != tc.want {
				t.Fatalf("%d %s, want %d", resp.StatusCode, resp.Body, tc.want)
			}
			if tc.want == http.StatusForbidden {
				if env := decodeEnvelope(t, resp); env.Error.Code != "forbidden" {
					t.Errorf("code %q, want forbidden", env.Error.Code)
				}
				if staff.histories != 0 {
					t.Error("the staff store was reached")
				}
			}
		})
	}
}

func TestStaffListReadsItsQuery(t *testing.T) {
	after := "2026-11-20T08:30:00.5Z"
	afterTime, _ := time.Parse(time.RFC3339Nano, after)
	valid := []struct {
		query map[string]string
		want  onboarding.AccountFilter
	}{
		{nil, onboarding.AccountFilter{Limit: onboarding.DefaultPageSize}},
		{map[string]string{"status": "restricted", "review": "pending", "created_after": after, "limit": "1", "cursor": "abc"},
			onboarding.AccountFilter{Status: onboarding.StatusRestricted, Review: onboarding.ReviewPending, CreatedAfter: afterTime, Limit: 1, Cursor: "abc"}},
		{map[string]string{"limit": "100", "cursor": strings.Repeat("c", 1024)}, onboarding.AccountFilter{Limit: 100, Cursor: strings.Repeat("c", 1024)}},
		{map[string]string{"limit": "", "status": ""}, onboarding.AccountFilter{Limit: onboarding.DefaultPageSize}},
	}
	for _, tc := range valid {
		f, staff := newStaffFixture()
		resp := f.serve(httpapi.AdminListAccounts, withQuery(staffRequest("GET", "/admin/accounts", "", "stella", []string{"onboarding-staff"}), tc.query))
		if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Body, `"user_id":"seller"`) {
			t.Errorf("query %.120v: %d %s", tc.query, resp.StatusCode, resp.Body)
			continue
		}
		if len(staff.filters) != 1 || !staff.filters[0].CreatedAfter.Equal(tc.want.CreatedAfter) {
			t.Errorf("query %.120v: the store got %+v, want %+v", tc.query, staff.filters, tc.want)
			continue
		}
		got := staff.filters[0]
		got.CreatedAfter, tc.want.CreatedAfter = time.Time{}, time.Time{}
		if got != tc.want {
			t.Errorf("query %.120v: the store got %+v, want %+v", tc.query, got, tc.want)
		}
	}

	invalid := []struct {
		query map[string]string
		param string
	}{
		{map[string]string{"sort": "asc"}, "sort"},
		{map[string]string{"created_after": "yesterday"}, "created_after"},
		{map[string]string{"created_after": "2026-11-20"}, "created_after"},
		{map[string]string{"limit": "0"}, "limit"},
		{map[string]string{"limit": "101"}, "limit"},
		{map[string]string{"limit": "-1"}, "limit"},
		{map[string]string{"limit": "ten"}, "limit"},
		{map[string]string{"cursor": strings.Repeat("c", 1025)}, "cursor"},
		{map[string]string{"status": "happy"}, "status"},
		{map[string]string{"review": "maybe"}, "review"},
	}
	for _, tc := range invalid {
		f, staff := newStaffFixture()
		resp := f.serve(httpapi.AdminListAccounts, withQuery(staffRequest("GET", "/admin/accounts", "", "stella", []string{"onboarding-staff"}), tc.query))
		env := decodeEnvelope(t, resp)
		if resp.StatusCode != http.StatusBadRequest || env.Error.Code != "validation_error" || env.Error.Param != tc.param {
			t.Errorf("query %.120v: %d %s, want 400 validation_error on %s", tc.query, resp.StatusCode, resp.Body, tc.param)
		}
		if len(staff.filters) != 0 {
			t.Errorf("query %.120v reached the store", tc.query)
		}
	}
}

func TestStaffAccountAndReviewAnswers(t *testing.T) {
	f, staff := newStaffFixture()
	staffReq := func(method, path, body string) httpapi.Response {
		route := httpapi.AdminGetAccount
		if method == "POST" {
			route = httpapi.AdminReviewAccount
		}
		return f.serve(route, staffRequest(method, path, body, "stella", []string{"onboarding-staff"}))
	}

	resp := staffReq("GET", "/admin/accounts/seller", "")
	var acct struct {
		UserID        string `json:"user_id"`
		Review        string `json:"review"`
		StatusChanges []any  `json:"status_changes"`
		Reviews       []any  `json:"reviews"`
	}
	if err := json.Unmarshal([]byte(resp.Body), &acct); resp.StatusCode != http.StatusOK || err != nil ||
		acct.UserID != "seller" || acct.Review != "pending" || acct.StatusChanges == nil || acct.Reviews == nil {
		t.Errorf("the account: %d %s", resp.StatusCode, resp.Body)
	}
	if resp := staffReq("GET", "/admin/accounts/nobody", ""); resp.StatusCode != http.StatusNotFound || decodeEnvelope(t, resp).Error.Code == "" {
		t.Errorf("an unknown user: %d %s, want 404", resp.StatusCode, resp.Body)
	}

	for _, body := range []string{`{"decision":"maybe"}`, `{"decision":"reject","reason":"boredom"}`, `{"decision":"approve","extra":1}`,
		`{"decision":"approve","note":"` + strings.Repeat("n", onboarding.MaxNoteLength+1) + `"}`, `[]`, ``} {
		if resp := staffReq("POST", "/admin/accounts/seller/review", body); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("review body %.40q: %d %s, want 400", body, resp.StatusCode, resp.Body)
		} else {
			decodeEnvelope(t, resp)
		}
	}
	// A note that reads backwards from where it is, as JSON escapes a client may send.
	for _, hidden := range []string{`\u202e`, `\u2067`, `\u200b`, `\ufeff`} {
		resp := staffReq("POST", "/admin/accounts/seller/review", `{"decision":"approve","note":"ok `+hidden+`fraud"}`)
		if env := decodeEnvelope(t, resp); resp.StatusCode != http.StatusBadRequest || env.Error.Code != "validation_error" || env.Error.Param != "note" {
			t.Errorf("a note with %s: %d %s, want 400 validation_error on note", hidden, resp.StatusCode, resp.Body)
		}
	}
	if len(staff.decisions) != 0 {
		t.Fatalf("a refused review reached the store: %+v", staff.decisions)
	}

	resp = staffReq("POST", "/admin/accounts/seller/review", `{"decision":"approve","note":"known seller"}`)
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Body, `"review":"approved"`) {
		t.Errorf("approve: %d %s", resp.StatusCode, resp.Body)
	}
	if len(staff.decisions) != 1 || staff.decisions[0].Reviewer != "stella" || staff.decisions[0].Note != "known seller" ||
		staff.decisions[0].Decision != onboarding.DecisionApprove || !staff.decisions[0].At.Equal(testNow) {
		t.Errorf("the decision recorded: %+v, want stella's approval at %s", staff.decisions, testNow)
	}
	if line := f.logLine(t); line["staff"] != "stella" || line["decision"] != "approve" {
		t.Errorf("the review's log line %v names neither the staff member nor the decision", line)
	}
}
