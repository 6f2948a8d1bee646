package devserver_test

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/connectexpress/onboarding/internal/testenv"
	"github.com/connectexpress/onboarding/shared/httpapi"
)

// staffToken mints a token whose claim lists groups, as the identity
// provider would.
func staffToken(sub, claim string, groups ...string) string {
	list := make([]any, len(groups))
	for i, g := range groups {
		list[i] = g
	}
	return testenv.Authorizer.MintClaims(sub, "", map[string]any{claim: list}, time.Now(), time.Hour)
}

// staffPath is a staff route's path for user.
func staffPath(r httpapi.Route, user string) string {
	return strings.ReplaceAll(r.Path, "{user_id}", url.PathEscape(user))
}

type staffPage struct {
	Accounts []struct {
		UserID               string `json:"user_id"`
		AccountID            string `json:"account_id"`
		Status               string `json:"status"`
		Review               string `json:"review"`
		Country              string `json:"country"`
		ServiceAgreement     string `json:"service_agreement"`
		CreatedAt            string `json:"created_at"`
		UpdatedAt            string `json:"updated_at"`
		RequirementsDueCount *int   `json:"requirements_due_count"`
	} `json:"accounts"`
	NextCursor *string `json:"next_cursor"`
}

type staffAccount struct {
	UserID        string `json:"user_id"`
	Review        string `json:"review"`
	ReviewedBy    string `json:"reviewed_by"`
	Account       accountJSON
	StatusChanges []struct{ From, To, At, Cause string }                                    `json:"status_changes"`
	Reviews       []struct{ Decision, Reason, Note, Reviewer, At, Outcome, Attempt string } `json:"reviews"`
}

// TestEveryAdminRouteRefusesANonStaffToken: whatever it sends, a valid
// token without the staff group gets 403 forbidden on each /admin route,
// before any input is judged or anything is read; no token gets 401.
func TestEveryAdminRouteRefusesANonStaffToken(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{})
	acct, _ := onboarded(t, s, "vera")
	claim := "cognito:groups"
	tokens := map[string]string{
		"no groups claim":       s.Token("mallory", ""),
		"other groups":          staffToken("mallory", claim, "support", "sellers"),
		"a longer group name":   staffToken("mallory", claim, "onboarding-staff-readers"),
		"the group in a comma":  staffToken("mallory", claim, "support,onboarding-staff"),
		"an empty list":         staffToken("mallory", claim),
		"the group, other case": staffToken("mallory", claim, "Onboarding-Staff"),
		"the group in another claim": testenv.Authorizer.MintClaims("mallory", "", map[string]any{"groups": []any{"onboarding-staff"}},
			time.Now(), time.Hour),
		"the group as a string claim": testenv.Authorizer.MintClaims("mallory", "", map[string]any{claim: "support"}, time.Now(), time.Hour),
	}
	inputs := map[string]struct{ user, query, body string }{
		"good input":    {user: "vera", body: `{"decision":"reject","reason":"fraud","note":"x"}`},
		"bad input":     {user: strings.Repeat("u", 300), query: "?limit=1000&cursor=junk", body: `{"decision":`},
		"unknown input": {user: "nobody", query: "?colour=red", body: `{"decision":"approve","extra":1}`},
	}
	var staffRoutes int
	for _, r := range httpapi.Routes {
		if !strings.HasPrefix(r.Path, "/admin/") {
			continue
		}
		if !r.Staff {
			t.Errorf("%s is under /admin/ but not a staff route", r.Key())
		}
		staffRoutes++
		for what, tok := range tokens {
			for kind, in := range inputs {
				path := staffPath(r, in.user) + in.query
				resp, body := s.Do(t, r.Method, path, tok, in.body)
				if resp.StatusCode != http.StatusForbidden || decode[errorJSON](t, body).Error.Code != "forbidden" {
					t.Errorf("%s %s, %s, %s: %d %s, want 403 forbidden", r.Method, path, what, kind, resp.StatusCode, body)
				}
				if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
					t.Errorf("%s: the 403 is %q, not the JSON envelope", r.Key(), ct)
				}
			}
		}
		resp, body := s.Do(t, r.Method, staffPath(r, "vera"), "", `{}`)
		expectStatus(t, resp, body, http.StatusUnauthorized)
	}
	if staffRoutes != 3 {
		t.Errorf("%d staff routes, want list, account and review", staffRoutes)
	}
	if n := len(s.Stripe.Requests("POST /v1/accounts/" + acct + "/reject")); n != 0 {
		t.Errorf("a non-staff caller reached Stripe %d times", n)
	}
	// Nothing was written: the account is still pending, with no decision.
	resp, body := s.Do(t, "GET", "/admin/accounts/vera", staffToken("sam", claim, "onboarding-staff"), "")
	expectStatus(t, resp, body, http.StatusOK)
	if got := decode[staffAccount](t, body); got.Review != "pending" || len(got.Reviews) != 0 {
		t.Errorf("after the refused calls: %+v", got)
	}
}

// TestStaffGroupLookAlikesAreRefused: the dev server's authorizer renders
// a list claim into the context as API Gateway does, "[a b]", where a group
// named "onboarding-staff applicants" reads as two groups. The staff routes
// read the token's own JSON, so only the exact name gets in.
func TestStaffGroupLookAlikesAreRefused(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{})
	claim := "cognito:groups"
	lookAlike := staffToken("mallory", claim, "onboarding-staff applicants")
	claims, err := testenv.Authorizer.Verify(lookAlike, time.Now())
	if err != nil || claims[claim] != "[onboarding-staff applicants]" {
		t.Fatalf("the emulated authorizer renders the claim as %q (%v), want API Gateway's \"[onboarding-staff applicants]\"", claims[claim], err)
	}
	tokens := []struct {
		name  string
		token string
		want  int
	}{
		{"the staff group", staffToken("sam", claim, "onboarding-staff"), http.StatusOK},
		{"the staff group among others", staffToken("sam", claim, "support", "onboarding-staff"), http.StatusOK},
		{"a string claim of space-separated groups", testenv.Authorizer.MintClaims("sam", "", map[string]any{claim: "support onboarding-staff"}, time.Now(), time.Hour), http.StatusOK},
		{"a group named with a space after the staff group", lookAlike, http.StatusForbidden},
		{"a group named with a space before the staff group", staffToken("mallory", claim, "applicants onboarding-staff"), http.StatusForbidden},
		{"the staff group in quotes", staffToken("mallory", claim, `"onboarding-staff"`), http.StatusForbidden},
		{"the staff group in brackets", staffToken("mallory", claim, "[onboarding-staff]"), http.StatusForbidden},
		{"a prefix of another name", staffToken("mallory", claim, "onboarding-staff-readers"), http.StatusForbidden},
		{"a suffix of another name", staffToken("mallory", claim, "not-onboarding-staff"), http.StatusForbidden},
		{"a trailing space", staffToken("mallory", claim, "onboarding-staff "), http.StatusForbidden},
		{"another case", staffToken("mallory", claim, "ONBOARDING-STAFF"), http.StatusForbidden},
		{"a JSON array in a string claim", testenv.Authorizer.MintClaims("mallory", "", map[string]any{claim: `["onboarding-staff"]`}, time.Now(), time.Hour), http.StatusForbidden},
	}
	for _, tc := range tokens {
		for _, r := range httpapi.Routes {
			if !r.Staff || r.Method != "GET" {
				continue
			}
			// Staff is admitted: the list answers 200, the account of
			// "nobody" 404; anyone else gets 403 on both.
			resp, body := s.Do(t, r.Method, staffPath(r, "nobody"), tc.token, "")
			admitted := resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusNotFound && decode[errorJSON](t, body).Error.Code != "route_not_found"
			if admitted != (tc.want == http.StatusOK) || !admitted && resp.StatusCode != tc.want {
				t.Errorf("%s, %s: %d %s, want %d", tc.name, r.Key(), resp.StatusCode, body, tc.want)
			}
		}
	}
}

// TestStaffClaimAndGroupAreConfigurable: STAFF_GROUPS_CLAIM and STAFF_GROUP
// name the claim and the group; the defaults then admit nobody.
func TestStaffClaimAndGroupAreConfigurable(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{Env: map[string]string{"STAFF_GROUPS_CLAIM": "https://platform.example/roles", "STAFF_GROUP": "vetting"}})
	for tok, want := range map[string]int{
		staffToken("sam", "https://platform.example/roles", "sales", "vetting"): http.StatusOK,
		staffToken("sam", "cognito:groups", "onboarding-staff"):                 http.StatusForbidden,
		staffToken("sam", "https://platform.example/roles", "onboarding-staff"): http.StatusForbidden,
	} {
		resp, body := s.Do(t, "GET", "/admin/accounts", tok, "")
		expectStatus(t, resp, body, want)
	}
}

// TestStaffListAccountAndReview drives the staff routes on moto and
// stripe-mock: the queue, its filters and pages, one account's history, and
// decisions, each recorded once.
func TestStaffListAccountAndReview(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{})
	staff := staffToken("staff-sam", "cognito:groups", "support", "onboarding-staff")
	users := []string{"ada", "bea", "cyd"}
	accts := map[string]string{}
	for _, u := range users {
		accts[u], _ = onboarded(t, s, u)
		time.Sleep(2 * time.Millisecond) // distinct creation times: the list's order is theirs
	}
	if code, body := s.PostEvent(t, testenv.AccountUpdated("evt_bea", accts["bea"], "bea", time.Now().Unix()+1, snapActive)); code != 200 {
		t.Fatalf("event: %d %s", code, body)
	}
	list := func(query string) staffPage {
		t.Helper()
		resp, body := s.Do(t, "GET", "/admin/accounts"+query, staff, "")
		expectStatus(t, resp, body, http.StatusOK)
		return decode[staffPage](t, body)
	}
	userIDs := func(p staffPage) string {
		var ids []string
		for _, a := range p.Accounts {
			ids = append(ids, a.UserID)
		}
		return strings.Join(ids, " ")
	}

	t.Run("new accounts are pending; the queue holds those that submitted their details", func(t *testing.T) {
		if p := list(""); userIDs(p) != "cyd bea ada" || p.Accounts[0].Review != "pending" {
			t.Fatalf("every account: %q, want cyd bea ada, newest first, pending", userIDs(p))
		}
		p := list("?review=pending")
		if got := userIDs(p); got != "bea" || p.NextCursor != nil {
			t.Fatalf("the queue: %q (next %v), want bea alone on one page: ada and cyd have not submitted", got, p.NextCursor)
		}
		a := p.Accounts[0]
		if a.AccountID != accts["bea"] || a.Status != "active" || a.Review != "pending" || a.Country == "" || a.ServiceAgreement == "" ||
			a.CreatedAt == "" || a.UpdatedAt == "" || a.RequirementsDueCount == nil {
			t.Errorf("bea's summary: %+v", a)
		}
		if got := userIDs(list("?status=active")); got != "bea" {
			t.Errorf("active: %q, want bea", got)
		}
		if got := userIDs(list("?status=onboarding")); got != "cyd ada" {
			t.Errorf("onboarding: %q, want cyd ada", got)
		}
		if got := userIDs(list("?status=onboarding&review=pending")); got != "" {
			t.Errorf("onboarding in the queue: %q, want none: the queue is of submitted accounts", got)
		}
		if got := userIDs(list("?review=approved")); got != "" {
			t.Errorf("approved before any review: %q", got)
		}
		future := url.QueryEscape(time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
		if got := userIDs(list("?created_after=" + future)); got != "" {
			t.Errorf("created after an hour from now: %q", got)
		}
	})

	t.Run("pages follow the cursor; a changed cursor is refused", func(t *testing.T) {
		var seen []string
		query := "?limit=1"
		for range 5 {
			p := list(query)
			seen = append(seen, userIDs(p))
			if p.NextCursor == nil {
				break
			}
			query = "?limit=1&cursor=" + url.QueryEscape(*p.NextCursor)
		}
		if got := strings.Join(seen, " "); strings.TrimSpace(got) != "cyd bea ada" {
			t.Fatalf("pages of one: %q", got)
		}
		p := list("?limit=1")
		raw, err := base64.RawURLEncoding.DecodeString(*p.NextCursor)
		if err != nil {
			raw = []byte(*p.NextCursor)
		}
		raw[len(raw)/2] ^= 0x01
		for _, cursor := range []string{base64.RawURLEncoding.EncodeToString(raw), *p.NextCursor + "x", "bm90IGEgY3Vyc29y", strings.Repeat("A", 2000)} {
			resp, body := s.Do(t, "GET", "/admin/accounts?limit=1&cursor="+url.QueryEscape(cursor), staff, "")
			expectStatus(t, resp, body, http.StatusBadRequest)
			if e := decode[errorJSON](t, body).Error; e.Code != "validation_error" || e.Param != "cursor" {
				t.Errorf("cursor %q: %s", cursor, body)
			}
		}
	})

	t.Run("bad list parameters are 400 validation_error", func(t *testing.T) {
		for query, param := range map[string]string{
			"?status=bogus": "status", "?review=maybe": "review", "?created_after=yesterday": "created_after",
			"?limit=0": "limit", "?limit=101": "limit", "?limit=ten": "limit", "?limit=-1": "limit", "?colour=red": "colour",
		} {
			resp, body := s.Do(t, "GET", "/admin/accounts"+query, staff, "")
			expectStatus(t, resp, body, http.StatusBadRequest)
			if e := decode[errorJSON](t, body).Error; e.Code != "validation_error" || e.Param != param {
				t.Errorf("%s: %s, want validation_error on %s", query, body, param)
			}
		}
		if p := list("?limit=100"); len(p.Accounts) != 3 {
			t.Errorf("limit=100: %d accounts", len(p.Accounts))
		}
	})

	t.Run("one account: the record, its status changes and reviews", func(t *testing.T) {
		resp, body := s.Do(t, "GET", "/admin/accounts/bea", staff, "")
		expectStatus(t, resp, body, http.StatusOK)
		got := decode[staffAccount](t, body)
		if got.UserID != "bea" || got.Review != "pending" || got.Account.AccountID != accts["bea"] || got.Account.Status != "active" {
			t.Errorf("bea: %s", body)
		}
		if len(got.StatusChanges) != 1 || got.StatusChanges[0].From != "onboarding" || got.StatusChanges[0].To != "active" ||
			got.StatusChanges[0].Cause != "webhook" || got.StatusChanges[0].At == "" || len(got.Reviews) != 0 {
			t.Errorf("bea's history: %+v %+v", got.StatusChanges, got.Reviews)
		}
		for _, user := range []string{"nobody", "ADA"} {
			resp, body := s.Do(t, "GET", "/admin/accounts/"+user, staff, "")
			expectStatus(t, resp, body, http.StatusNotFound)
			if e := decode[errorJSON](t, body).Error; e.Code == "" {
				t.Errorf("%s: %s", user, body)
			}
		}
	})

	t.Run("an approval is recorded once, and a repeat answers the same", func(t *testing.T) {
		first, firstBody := s.Do(t, "POST", "/admin/accounts/ada/review", staff, `{"decision":"approve","note":"ID matches"}`)
		expectStatus(t, first, firstBody, http.StatusOK)
		_, againBody := s.Do(t, "POST", "/admin/accounts/ada/review", staff, `{"decision":"approve","note":"second look"}`)
		if againBody != firstBody {
			t.Errorf("the repeat answered %s, the first %s", againBody, firstBody)
		}
		_, body := s.Do(t, "GET", "/admin/accounts/ada", staff, "")
		got := decode[staffAccount](t, body)
		if got.Review != "approved" || got.ReviewedBy != "staff-sam" || len(got.Reviews) != 1 ||
			got.Reviews[0].Decision != "approve" || got.Reviews[0].Note != "ID matches" || got.Reviews[0].Reviewer != "staff-sam" || got.Reviews[0].At == "" ||
			got.Reviews[0].Outcome != "recorded" || got.Reviews[0].Attempt != "" {
			t.Errorf("ada after two approvals: %s", body)
		}
		if n := len(s.Stripe.Requests("POST /v1/accounts/" + accts["ada"] + "/reject")); n != 0 {
			t.Errorf("an approval called Stripe's reject %d times", n)
		}
		if got := userIDs(list("?review=approved")); got != "ada" {
			t.Errorf("approved: %q", got)
		}
	})

	t.Run("a rejection calls Stripe once with the reason; a repeat records nothing", func(t *testing.T) {
		for range 2 {
			resp, body := s.Do(t, "POST", "/admin/accounts/cyd/review", staff, `{"decision":"reject","reason":"terms_of_service","note":"sells what the terms forbid"}`)
			expectStatus(t, resp, body, http.StatusOK)
			if got := decode[struct{ Review, ReviewedBy string }](t, body); got.Review != "rejected" {
				t.Errorf("answer %s", body)
			}
		}
		sent := s.Stripe.Requests("POST /v1/accounts/" + accts["cyd"] + "/reject")
		if len(sent) != 1 || sent[0].Form.Get("reason") != "terms_of_service" {
			t.Fatalf("Stripe rejects: %+v, want one with reason terms_of_service", sent)
		}
		_, body := s.Do(t, "GET", "/admin/accounts/cyd", staff, "")
		got := decode[staffAccount](t, body)
		// The audit: the attempt's intent, written before Stripe was called, then its decision.
		if got.Review != "rejected" || len(got.Reviews) != 2 || got.Reviews[0].Reason != "terms_of_service" || got.Reviews[0].Reviewer != "staff-sam" ||
			got.Reviews[0].Outcome != "recorded" || got.Reviews[1].Outcome != "intent" || got.Reviews[0].Attempt == "" || got.Reviews[1].Attempt != got.Reviews[0].Attempt {
			t.Errorf("cyd after two rejections: %s", body)
		}
		// A rejection is final.
		resp, body := s.Do(t, "POST", "/admin/accounts/cyd/review", staff, `{"decision":"approve"}`)
		expectStatus(t, resp, body, http.StatusConflict)
		if got := userIDs(list("?review=rejected")); got != "cyd" {
			t.Errorf("rejected: %q", got)
		}
	})

	t.Run("bad review bodies are 400, unknown users 404", func(t *testing.T) {
		for body, param := range map[string]string{
			`{"decision":"ban"}`:                                                "decision",
			`{"decision":"reject"}`:                                             "reason",
			`{"decision":"reject","reason":"boredom"}`:                          "reason",
			`{"decision":"approve","reason":"fraud"}`:                           "reason",
			`{"decision":"approve","note":"` + strings.Repeat("n", 1001) + `"}`: "note",
			`{"decision":"approve","note":"bell\u0007"}`:                        "note",
			`{"decision":"approve","reviewer":"someone-else"}`:                  "",
			`{"decision":`: "",
			`[]`:           "",
		} {
			resp, got := s.Do(t, "POST", "/admin/accounts/bea/review", staff, body)
			expectStatus(t, resp, got, http.StatusBadRequest)
			if e := decode[errorJSON](t, got).Error; e.Code == "" || (param != "" && e.Param != param) {
				t.Errorf("%.60s: %s, want a 400 on %q", body, got, param)
			}
		}
		resp, body := s.Do(t, "POST", "/admin/accounts/nobody/review", staff, `{"decision":"reject","reason":"fraud"}`)
		expectStatus(t, resp, body, http.StatusNotFound)
		if n := len(s.Stripe.Requests("POST /v1/accounts/")); n != 1 {
			t.Errorf("%d Stripe rejects in all, want cyd's one", n)
		}
	})

	t.Run("no route edits or deletes a decision", func(t *testing.T) {
		for _, method := range []string{"PUT", "PATCH", "DELETE"} {
			for _, path := range []string{"/admin/accounts/ada/review", "/admin/accounts/ada"} {
				resp, body := s.Do(t, method, path, staff, `{"decision":"reject","reason":"fraud"}`)
				expectStatus(t, resp, body, http.StatusNotFound)
			}
		}
	})
	assertNoSecretsLogged(t, s, "sells what the terms forbid", "ID matches")
}
