package httpapi

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/connectexpress/onboarding/shared/onboarding"
)

// The staff routes, under /admin/: behind the same JWT authorizer, for
// callers whose token lists the staff group (Policy.StaffGroupsClaim,
// Policy.StaffGroup). The group is checked before anything else is read,
// so a non-staff caller gets 403 forbidden whatever it sends.

// adminListAccounts serves GET /admin/accounts.
func adminListAccounts(svc *onboarding.Service) Handler {
	return serveStaff(svc, listQuery, func(ctx context.Context, c onboarding.Caller, f onboarding.AccountFilter) (int, onboarding.StaffPage, error) {
		page, err := svc.ListAccounts(ctx, c, f)
		annotate(ctx, slog.Int("accounts", len(page.Accounts)))
		return http.StatusOK, page, err
	})
}

// adminGetAccount serves GET /admin/accounts/{user_id}.
func adminGetAccount(svc *onboarding.Service) Handler {
	return serveStaff(svc, pathUser, func(ctx context.Context, c onboarding.Caller, userID string) (int, onboarding.StaffAccount, error) {
		acct, err := svc.StaffAccount(ctx, c, userID)
		annotate(ctx, slog.String("account_id", acct.Account.ID))
		return http.StatusOK, acct, err
	})
}

// reviewInput is a review's target and decision.
type reviewInput struct {
	userID string
	body   onboarding.ReviewRequest
}

// adminReviewAccount serves POST /admin/accounts/{user_id}/review. The
// answer is the account's review, 200 whether this call recorded the
// decision or the review already was its outcome: a retried or repeated
// decision gets the same answer, and records nothing.
func adminReviewAccount(svc *onboarding.Service) Handler {
	input := func(req Request) (reviewInput, error) {
		userID, err := pathUser(req)
		if err != nil {
			return reviewInput{}, err
		}
		body, err := jsonBody[onboarding.ReviewRequest](req)
		return reviewInput{userID: userID, body: body}, err
	}
	return serveStaff(svc, input, func(ctx context.Context, c onboarding.Caller, in reviewInput) (int, onboarding.ReviewAnswer, error) {
		answer, recorded, err := svc.ReviewAccount(ctx, c, in.userID, in.body)
		if err != nil {
			return 0, answer, err
		}
		annotate(ctx, slog.String("account_id", answer.AccountID), slog.String("decision", string(in.body.Decision)), slog.Bool("recorded", recorded))
		return http.StatusOK, answer, nil
	})
}

// serveStaff is serve for the staff routes: the caller, with its groups,
// must be staff before its input is read.
func serveStaff[In, Out any](svc *onboarding.Service, input func(Request) (In, error), useCase func(context.Context, onboarding.Caller, In) (int, Out, error)) Handler {
	claim := svc.Policy().StaffGroupsClaim
	staff := func(ctx context.Context, req Request) (onboarding.Caller, error) {
		c, err := caller(req)
		if err != nil {
			return c, err
		}
		c.Groups = claimGroups(req.RequestContext.Authorizer.JWT.Claims[claim])
		if err := svc.CheckStaff(c); err != nil {
			return c, err
		}
		annotate(ctx, slog.String("staff", c.UserID))
		return c, nil
	}
	return serveAs(staff, input, useCase)
}

// claimGroups reads a groups claim as API Gateway's JWT authorizer hands it
// to the function: a list claim arrives as one string, "[a b]"; a JSON array
// text is read as one; a string claim is one group, or several separated by
// white space. Never split on commas: Cognito allows them in group names,
// so "x,onboarding-staff" is one group, not staff. Group names hold no
// white space.
func claimGroups(raw string) []string {
	raw = strings.TrimSpace(raw)
	if strings.HasPrefix(raw, "[") && strings.HasSuffix(raw, "]") {
		var list []string
		if json.Unmarshal([]byte(raw), &list) == nil {
			return list
		}
		raw = raw[1 : len(raw)-1]
	}
	return strings.Fields(raw)
}

// pathUser reads the {user_id} of a staff route's path.
func pathUser(req Request) (string, error) {
	userID := req.PathParameters["user_id"]
	return userID, onboarding.CheckUserID(userID)
}

// listParams are the query parameters GET /admin/accounts reads.
var listParams = []string{"status", "review", "created_after", "limit", "cursor"}

// listQuery reads GET /admin/accounts' query: each value once, none unknown.
func listQuery(req Request) (onboarding.AccountFilter, error) {
	q := req.QueryStringParameters
	for name := range q {
		if !slices.Contains(listParams, name) {
			return onboarding.AccountFilter{}, onboarding.Invalid(truncate(name), "unknown query parameter; the list takes "+strings.Join(listParams, ", "))
		}
	}
	f := onboarding.AccountFilter{Status: onboarding.Status(q["status"]), Review: onboarding.Review(q["review"]), Cursor: q["cursor"]}
	if raw := q["created_after"]; raw != "" {
		t, err := time.Parse(time.RFC3339Nano, raw)
		if err != nil {
			return f, onboarding.Invalid("created_after", "created_after must be an RFC 3339 time, such as 2026-11-25T00:00:00Z")
		}
		f.CreatedAfter = t
	}
	if raw := q["limit"]; raw != "" { // empty, as every parameter here, is the same as none
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > onboarding.MaxPageSize {
			return f, onboarding.Invalid("limit", "limit must be a whole number from 1 to 100")
		}
		f.Limit = n
	}
	if len(f.Cursor) > 1024 {
		return f, onboarding.Invalid("cursor", "cursor is not one this API returned")
	}
	return f, nil
}
