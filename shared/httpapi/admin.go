package httpapi

import (
	"context"
	"encoding/base64"
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
// Policy.StaffGroup), read from the verified token itself (tokenGroups).
// The group is checked before anything else is read,
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
		groups, err := tokenGroups(req, claim, c.UserID)
		if err != nil {
			return c, err
		}
		c.Groups = groups
		if err := svc.CheckStaff(c); err != nil {
			return c, err
		}
		annotate(ctx, slog.String("staff", c.UserID))
		return c, nil
	}
	return serveAs(staff, input, useCase)
}

// maxTokenLength bounds the Authorization header read here; API Gateway
// refuses longer headers before the function runs.
const maxTokenLength = 16 << 10

// tokenGroups reads the caller's groups from the JWT in the Authorization
// header, the token API Gateway's JWT authorizer verified (signature,
// issuer, audience, expiry) before the function runs: its payload is
// decoded here without verifying the signature again. The authorizer's
// context claims are not used for groups: API Gateway renders a list claim
// there as one string, "[a b]", so the groups "onboarding-staff applicants"
// and "onboarding-staff" read the same. The token must be the one the
// context came from (the same sub), or ErrForbidden.
//
// The claim is a JSON array of strings (Cognito, Okta, Azure AD, Keycloak),
// each an exact group name; other elements are ignored. A JSON string claim
// is the groups separated by spaces, for issuers that send them so. Anything
// else, or no claim, is no group.
func tokenGroups(req Request, claim, sub string) ([]string, error) {
	payload, ok := bearerPayload(header(req, "authorization"))
	if !ok {
		return nil, onboarding.ErrForbidden
	}
	var claims map[string]json.RawMessage
	if json.Unmarshal(payload, &claims) != nil {
		return nil, onboarding.ErrForbidden
	}
	var tokenSub string
	if json.Unmarshal(claims["sub"], &tokenSub) != nil || tokenSub != sub {
		return nil, onboarding.ErrForbidden
	}
	return claimGroups(claims[claim]), nil
}

// bearerPayload decodes the payload of the JWT in an Authorization header
// ("Bearer <header>.<payload>.<signature>", base64url without padding).
func bearerPayload(authorization string) ([]byte, bool) {
	scheme, token, ok := strings.Cut(authorization, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || len(token) > maxTokenLength {
		return nil, false
	}
	parts := strings.Split(strings.TrimSpace(token), ".")
	if len(parts) != 3 {
		return nil, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	return payload, err == nil
}

// claimGroups reads a groups claim's JSON value: an array's strings, each
// compared exactly later; a string's space-separated names. Never split on
// commas: Cognito allows them in group names, so "x,onboarding-staff" is
// one group, not staff.
func claimGroups(raw json.RawMessage) []string {
	var list []any
	if json.Unmarshal(raw, &list) == nil {
		groups := make([]string, 0, len(list))
		for _, item := range list {
			if name, ok := item.(string); ok {
				groups = append(groups, name)
			}
		}
		return groups
	}
	var spaced string
	if json.Unmarshal(raw, &spaced) == nil {
		var groups []string
		for _, name := range strings.Split(spaced, " ") {
			if name != "" {
				groups = append(groups, name)
			}
		}
		return groups
	}
	return nil
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
