package stripeconnect

import (
	"context"
	"net/http"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/form"

	"github.com/connectexpress/onboarding/shared/onboarding"
)

var _ onboarding.AccountLister = (*Client)(nil)

// accountListObject is one page of GET /v1/accounts, decoded as the single
// account reads are (accountObject), so every path sees the same state.
type accountListObject struct {
	stripe.APIResource
	HasMore bool                `json:"has_more"`
	Data    []listedAccountJSON `json:"data"`
}

type listedAccountJSON struct {
	accountObject
	Created int64 `json:"created"`
}

// ListAccounts reads one page of the platform's connected accounts, newest
// first: the reconciliation sweep's only Stripe call.
func (c *Client) ListAccounts(ctx context.Context, q onboarding.AccountListQuery) (onboarding.AccountPage, error) {
	params := &stripe.AccountListParams{}
	params.Limit = stripe.Int64(int64(q.Limit))
	// created[gte], created[lt] and created[lte] keep the list to a range
	// of creation times, still newest first within it
	// (https://docs.stripe.com/api/accounts/list): one range of a pass.
	created := stripe.RangeQueryParams{GreaterThanOrEqual: q.CreatedFrom, LesserThan: q.CreatedBefore}
	switch {
	case q.StartingAfter != "":
		params.StartingAfter = stripe.String(q.StartingAfter)
	case q.CreatedAtMost > 0:
		created.LesserThanOrEqual = q.CreatedAtMost
		created.LesserThan = 0 // at most CreatedAtMost, which is below the range's end
	}
	if created != (stripe.RangeQueryParams{}) {
		params.CreatedRange = &created
	}
	params.Context = ctx
	body := &form.Values{}
	form.AppendTo(body, params)
	list := &accountListObject{}
	accounts := c.accounts()
	if err := accounts.B.CallRaw(http.MethodGet, "/v1/accounts", accounts.Key, body, params.ToParams(), list); err != nil {
		return onboarding.AccountPage{}, mapError(err)
	}
	page := onboarding.AccountPage{HasMore: list.HasMore, Accounts: make([]onboarding.ListedAccount, 0, len(list.Data))}
	for _, a := range list.Data {
		page.Accounts = append(page.Accounts, onboarding.ListedAccount{
			ID:               a.ID,
			Created:          time.Unix(a.Created, 0).UTC(),
			Country:          a.Country,
			ServiceAgreement: a.serviceAgreement(),
			PlatformUserID:   a.Metadata[MetadataUserID],
			CreationID:       a.Metadata[MetadataCreationID],
			State:            a.state(),
		})
	}
	return page, nil
}
