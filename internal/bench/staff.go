package bench

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/connectexpress/onboarding/shared/config"
	"github.com/connectexpress/onboarding/shared/onboarding"
)

// The staff review queue's cost: GET /admin/accounts?review=pending, one
// page of the default size, every account on it with an email.

// queuePage is the page the queue scenario reads: the default page size.
const queuePage = onboarding.DefaultPageSize

// Query makes CountingDB count the staff list's index reads: the size of
// the index entries the call read, per 4 KB, at least one unit, halved for
// an eventually consistent read (DynamoDB Developer Guide, "Read
// consumption for Query": the sum of the sizes of the items read, rounded
// up to 4 KB; a filter does not lower it). Here the read entries are those
// returned: the queue's scenario has no filter.
func (c *CountingDB) Query(ctx context.Context, in *dynamodb.QueryInput, o ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	out, err := c.Client.Query(ctx, in, o...)
	if err != nil {
		return out, err
	}
	size := 0
	for _, item := range out.Items {
		size += itemSize(item)
	}
	units := math.Max(1, math.Ceil(float64(size)/4096))
	if !aws.ToBool(in.ConsistentRead) {
		units /= 2
	}
	c.add(1, units, 0)
	return out, nil
}

// staffToken is an (unsigned) JWT of a staff member: API Gateway's
// authorizer verified it before the function runs, which reads the groups
// from it (httpapi tokenGroups).
func staffToken(sub string) string {
	payload := fmt.Sprintf(`{"sub":%q,%q:[%q]}`, sub, config.DefaultStaffGroupsClaim, config.DefaultStaffGroup)
	return "eyJhbGciOiJSUzI1NiJ9." + base64.RawURLEncoding.EncodeToString([]byte(payload)) + ".c2lnbmF0dXJl"
}

// StaffCall invokes a staff route as a member of the staff group.
func (h *Harness) StaffCall(method, path string, query map[string]string) events.APIGatewayV2HTTPResponse {
	return h.Call(method, path, "bench-staff", query, map[string]string{"authorization": "Bearer " + staffToken("bench-staff")}, "")
}

// fillQueue makes n accounts with an email whose details are submitted
// (signed account.updated): a full queue page.
func (s *state) fillQueue(h *Harness, n int) error {
	for range n {
		u := h.NewUser()
		r := h.Call("POST", "/accounts", u, nil, nil, fmt.Sprintf(`{"email":"%s@example.com"}`, u))
		if r.StatusCode != 201 {
			return fmt.Errorf("create: %d %s", r.StatusCode, r.Body)
		}
		var acct struct {
			ID string `json:"account_id"`
		}
		if err := json.Unmarshal([]byte(r.Body), &acct); err != nil {
			return err
		}
		h.accounts[u] = acct.ID
		if r := h.Webhook("evt_queue_"+u, u, s.nextCreated()+1_000_000, true); r.StatusCode != 200 {
			return fmt.Errorf("submit: %d %s", r.StatusCode, r.Body)
		}
	}
	return nil
}

// stubStaff answers the staff list at once with a full page, so the stub
// harness measures the route's own code.
type stubStaff struct{}

var _ onboarding.StaffStore = stubStaff{}

func (stubStaff) ListAccounts(_ context.Context, f onboarding.AccountFilter) (onboarding.StaffPage, error) {
	page := onboarding.StaffPage{Accounts: make([]onboarding.AccountSummary, f.Limit)}
	for i := range page.Accounts {
		email := fmt.Sprintf("seller-%d@example.com", i)
		page.Accounts[i] = onboarding.AccountSummary{
			UserID: fmt.Sprintf("bench-user-%d", i), AccountID: fmt.Sprintf("acct_stub%d", i), Status: onboarding.StatusActive,
			Review: onboarding.ReviewPending, Country: "US", ServiceAgreement: onboarding.AgreementFull,
			CreatedAt: time.Unix(1_700_000_000, 0).UTC(), UpdatedAt: time.Unix(1_700_000_000, 0).UTC(),
			Email: &email, Signals: []onboarding.Signal{},
		}
	}
	return page, nil
}

func (stubStaff) StaffHistory(context.Context, string, int) (onboarding.StaffHistory, error) {
	return onboarding.StaffHistory{}, onboarding.ErrNotFound
}

func (stubStaff) RecordReview(context.Context, string, onboarding.ReviewDecision, *onboarding.StateWrite) (onboarding.StaffRecord, bool, error) {
	return onboarding.StaffRecord{}, false, onboarding.ErrNotFound
}

func (stubStaff) BeginRejection(context.Context, string, onboarding.ReviewDecision, time.Time) error {
	return onboarding.ErrNotFound
}

func (stubStaff) RecordRejectionOutcome(context.Context, string, onboarding.ReviewDecision) error {
	return onboarding.ErrNotFound
}
