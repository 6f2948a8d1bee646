package stripeconnect_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/connectexpress/onboarding/internal/stripesim"
	"github.com/connectexpress/onboarding/internal/testenv"
	"github.com/connectexpress/onboarding/shared/onboarding"
)

// What only the simulator can show: the adapter decodes an account as its
// onboarding moves on, and maps Stripe's behavioural refusals.

func TestGetAccountFollowsTheSimulatedOnboarding(t *testing.T) {
	b := newBackend(t, "simulator")
	id := b.account(t, false)
	c := newClient(t, b.rec.URL, 5*time.Second)
	deadline := time.Now().Add(7 * 24 * time.Hour)
	tests := []struct {
		outcome, due string
		check        func(t *testing.T, st onboarding.AccountState)
	}{
		{stripesim.OutcomeRestricted, "soon", func(t *testing.T, st onboarding.AccountState) {
			r := st.Requirements
			if !st.DetailsSubmitted || !st.PayoutsEnabled || r.DisabledReason != nil || len(r.CurrentlyDue) != 1 || len(r.PastDue) != 0 {
				t.Errorf("due soon: %+v", st)
			}
			if r.CurrentDeadline == nil || r.CurrentDeadline.Sub(deadline).Abs() > time.Minute {
				t.Errorf("CurrentDeadline = %v, want about %v", r.CurrentDeadline, deadline)
			}
			assertExpiredDocument(t, r)
		}},
		{stripesim.OutcomeRestricted, "past", func(t *testing.T, st onboarding.AccountState) {
			r := st.Requirements
			if st.PayoutsEnabled || r.DisabledReason == nil || *r.DisabledReason != "requirements.past_due" || len(r.PastDue) != 1 || r.CurrentDeadline != nil {
				t.Errorf("past due: %+v", st)
			}
			assertExpiredDocument(t, r)
		}},
		{stripesim.OutcomeRestricted, "future", func(t *testing.T, st onboarding.AccountState) {
			f := st.FutureRequirements
			if !st.PayoutsEnabled || !st.ChargesEnabled || len(st.Requirements.CurrentlyDue) != 0 || len(st.Requirements.Errors) != 0 || f == nil {
				t.Fatalf("a future requirement: %+v", st)
			}
			if !reflect.DeepEqual(f.CurrentlyDue, []string{"individual.verification.additional_document"}) || !reflect.DeepEqual(f.EventuallyDue, f.CurrentlyDue) {
				t.Errorf("future_requirements = %+v, want the additional document currently and eventually due", *f)
			}
			if want := time.Now().Add(30 * 24 * time.Hour); f.CurrentDeadline == nil || f.CurrentDeadline.Sub(want).Abs() > time.Minute {
				t.Errorf("future_requirements.current_deadline = %v, want about %v", f.CurrentDeadline, want)
			}
			if got := onboarding.DeriveStatus(st, "full", time.Now()); got != onboarding.StatusRestrictedSoon {
				t.Errorf("status %s, want restricted_soon", got)
			}
		}},
		{stripesim.OutcomePending, "", func(t *testing.T, st onboarding.AccountState) {
			r := st.Requirements
			if st.ChargesEnabled || len(r.PendingVerification) != 1 || st.Capabilities["transfers"] != "pending" {
				t.Errorf("pending: %+v", st)
			}
		}},
		{stripesim.OutcomeComplete, "", func(t *testing.T, st onboarding.AccountState) {
			r := st.Requirements
			want := map[string]string{"card_payments": "active", "transfers": "active"}
			if !st.ChargesEnabled || !st.PayoutsEnabled || r.DisabledReason != nil || len(r.CurrentlyDue)+len(r.EventuallyDue) != 0 ||
				!reflect.DeepEqual(st.Capabilities, want) {
				t.Errorf("complete: %+v", st)
			}
		}},
		{stripesim.OutcomeReject, "", func(t *testing.T, st onboarding.AccountState) {
			r := st.Requirements
			if st.ChargesEnabled || st.PayoutsEnabled || r.DisabledReason == nil || *r.DisabledReason != "rejected.other" {
				t.Errorf("rejected: %+v", st)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.outcome+" "+tt.due, func(t *testing.T) {
			if err := b.sim.Outcome(id, tt.outcome, tt.due); err != nil {
				t.Fatal(err)
			}
			st, err := c.GetAccount(context.Background(), id)
			if err != nil {
				t.Fatalf("GetAccount: %v", err)
			}
			tt.check(t, st)
		})
	}
}

// assertExpiredDocument: the requirement is due again because the document
// given has expired, as requirements.errors says.
func assertExpiredDocument(t *testing.T, r onboarding.Requirements) {
	t.Helper()
	want := []onboarding.RequirementError{{
		Code: "verification_document_expired", Requirement: "individual.verification.document",
		Reason: "The document has expired. Upload a document that is still valid.",
	}}
	if !reflect.DeepEqual(r.Errors, want) {
		t.Errorf("Errors = %+v, want %+v", r.Errors, want)
	}
}

// A future requirement reaches the adapter, and only a link that includes
// future requirements collects it: the request the adapter sends decides.
func TestFutureRequirementsAreCollectedOnlyWhenTheLinkIncludesThem(t *testing.T) {
	b := newBackend(t, "simulator")
	id := b.account(t, false)
	c := newClient(t, b.rec.URL, 5*time.Second)
	ctx := context.Background()
	if err := b.sim.Outcome(id, stripesim.OutcomeRestricted, "future"); err != nil {
		t.Fatal(err)
	}
	finish := func(include bool) onboarding.AccountState {
		t.Helper()
		link, err := c.CreateOnboardingLink(ctx, onboarding.LinkRequest{
			AccountID: id, RefreshURL: testRefreshURL, ReturnURL: testReturnURL, CollectFields: "currently_due", IncludeFutureRequirements: include,
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.sim.FinishLink(link.URL, stripesim.OutcomeComplete, ""); err != nil {
			t.Fatal(err)
		}
		st, err := c.GetAccount(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	if st := finish(false); !st.HasFutureRequirements() || onboarding.DeriveStatus(st, "full", time.Now()) != onboarding.StatusRestrictedSoon {
		t.Errorf("after a link without future requirements: %+v, want the future requirement still due (restricted_soon)", st.FutureRequirements)
	}
	if st := finish(true); st.HasFutureRequirements() || onboarding.DeriveStatus(st, "full", time.Now()) != onboarding.StatusActive {
		t.Errorf("after a link that includes them: %+v, want none left (active)", st.FutureRequirements)
	}
}

// The simulator refuses what Stripe refuses on behaviour, which stripe-mock
// cannot know: the adapter maps each refusal to a clean ProviderRejected.
func TestSimulatorRefusalsReachTheCoreAsRejections(t *testing.T) {
	b := newBackend(t, "simulator")
	c := newClient(t, b.rec.URL, 5*time.Second)
	ctx := context.Background()

	fresh := b.account(t, false)
	_, err := c.CreateDashboardLink(ctx, fresh)
	if e, ok := onboarding.AsError(err); !ok || e.Kind != onboarding.KindInvalid ||
		e.Message != "Cannot create a login link for an account that has not completed onboarding." {
		t.Errorf("a login link before onboarding: %v, want Stripe's refusal", err)
	}

	if _, err := c.CreateOnboardingLink(ctx, onboarding.LinkRequest{AccountID: fresh, RefreshURL: testRefreshURL, ReturnURL: testReturnURL}); err != nil {
		t.Fatalf("CreateOnboardingLink: %v", err)
	}
	err = c.UpdateAccount(ctx, fresh, onboarding.Prefill{Email: testEmail})
	if e, ok := onboarding.AsError(err); !ok || e.Kind != onboarding.KindInvalid || e.Param != "email" {
		t.Errorf("a prefill update after the first link: %v, want a refusal naming email (Stripe locks KYC prefill)", err)
	}

	// Stripe answers an account the key cannot reach, unknown or
	// disconnected alike, with 403 account_invalid: the account is gone.
	_, err = c.GetAccount(ctx, "acct_1NoSuchAccount00")
	if !errors.Is(err, onboarding.ErrAccountGone) {
		t.Errorf("an unknown account: %v, want ErrAccountGone (Stripe's 403 account_invalid)", err)
	}

	_, err = c.CreateAccount(ctx, onboarding.CreateAccountParams{
		Country: "DE", Capabilities: []string{"card_payments", "transfers"}, ServiceAgreement: "recipient", PlatformUserID: "u",
	}, "recipient-with-card-payments")
	if e, ok := onboarding.AsError(err); !ok || e.Kind != onboarding.KindInvalid {
		t.Errorf("card_payments under the recipient agreement: %v, want a refusal", err)
	}
}

// The sweep's list: newest first, in pages, with the metadata that names
// our user and creation; resumed after an account, or from a created
// second; and a cursor Stripe no longer knows is named as the bad param.
func TestListAccountsPagesNewestFirstWithOurMetadata(t *testing.T) {
	b := newBackend(t, "simulator")
	ctx := context.Background()
	var ids []string
	for i := range 3 {
		a, err := newClient(t, b.base, 5*time.Second).CreateAccount(ctx, onboarding.CreateAccountParams{
			Country: "US", Capabilities: []string{"card_payments", "transfers"}, ServiceAgreement: "full",
			PlatformUserID: fmt.Sprintf("user-%d", i), CreationID: fmt.Sprintf("cr-%d", i),
		}, fmt.Sprintf("list-%d-%s", i, testenv.RandomID(6)))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, a.ID)
	}
	c := newClient(t, b.rec.URL, 5*time.Second)
	first, err := c.ListAccounts(ctx, onboarding.AccountListQuery{Limit: 2})
	if err != nil || len(first.Accounts) != 2 || !first.HasMore || first.Accounts[0].ID != ids[2] || first.Accounts[1].ID != ids[1] {
		t.Fatalf("first page %+v, %v; want the two newest of %v and more to come", first, err, ids)
	}
	if a := first.Accounts[0]; a.PlatformUserID != "user-2" || a.CreationID != "cr-2" || a.Country != "US" || a.ServiceAgreement != "full" ||
		a.Created.IsZero() || a.State.DetailsSubmitted || a.State.Capabilities["transfers"] != "inactive" {
		t.Errorf("listed account %+v", a)
	}
	rest, err := c.ListAccounts(ctx, onboarding.AccountListQuery{Limit: 2, StartingAfter: ids[1]})
	if err != nil || len(rest.Accounts) != 1 || rest.HasMore || rest.Accounts[0].ID != ids[0] {
		t.Errorf("after %s: %+v, %v; want %s and no more", ids[1], rest, err, ids[0])
	}
	at := first.Accounts[0].Created.Unix()
	byTime, err := c.ListAccounts(ctx, onboarding.AccountListQuery{Limit: 10, CreatedAtMost: at})
	if err != nil || len(byTime.Accounts) != 3 {
		t.Errorf("created at most %d: %+v, %v; want all 3", at, byTime, err)
	}
	_, err = c.ListAccounts(ctx, onboarding.AccountListQuery{Limit: 2, StartingAfter: "acct_disconnected"})
	if e, ok := onboarding.AsError(err); !ok || e.Kind != onboarding.KindInvalid || e.Param != "starting_after" {
		t.Errorf("a cursor Stripe does not know: %v, want invalid starting_after", err)
	}
	lists := b.rec.Requests("GET /v1/accounts")
	if len(lists) != 4 {
		t.Fatalf("%d list requests, want 4", len(lists))
	}
	want := []url.Values{
		{"limit": {"2"}},
		{"limit": {"2"}, "starting_after": {ids[1]}},
		{"limit": {"10"}, "created[lte]": {strconv.FormatInt(at, 10)}},
		{"limit": {"2"}, "starting_after": {"acct_disconnected"}},
	}
	for i, w := range want {
		assertForm(t, lists[i].Form, w)
	}
}

// TestARefusedRejectionCarriesStripesMessage: Stripe refuses to reject a
// live-mode account until its balances are zero (the simulator applies
// that rule on its test key with RejectBalanceAlways). The refusal is
// Stripe's refusal of our request, with Stripe's message for staff, not
// "Stripe unavailable". Stripe saves it under the Idempotency-Key: the
// same key replays it after the balance was cleared, which is why each
// attempt has a key of its own, and a new key rejects. A second rejection
// of a rejected account is refused too.
func TestARefusedRejectionCarriesStripesMessage(t *testing.T) {
	sim := stripesim.New(stripesim.Options{RejectBalanceRule: stripesim.RejectBalanceAlways})
	srv := httptest.NewServer(sim)
	t.Cleanup(func() { srv.Close(); sim.Close() })
	c := newClient(t, srv.URL, 5*time.Second)
	ctx := context.Background()
	created, err := c.CreateAccount(ctx, onboarding.CreateAccountParams{Country: "US", Capabilities: []string{"card_payments", "transfers"},
		ServiceAgreement: "full", PlatformUserID: "bal"}, "create-bal")
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.SetBalance(created.ID, "usd", 1500); err != nil {
		t.Fatal(err)
	}
	refused := func(what string, err error) {
		t.Helper()
		e, ok := onboarding.AsError(err)
		if !ok || e.Kind != onboarding.KindInvalid || e.Code != "stripe_invalid_request" || e.KeySpent() {
			t.Fatalf("%s: %v, want Stripe's refusal (stripe_invalid_request)", what, err)
		}
	}
	_, err = c.RejectAccount(ctx, created.ID, "fraud", "reject-"+created.ID+"-a1")
	refused("a rejection with a balance", err)
	if e, _ := onboarding.AsError(err); !strings.Contains(e.Message, "cannot reject the account when the balance in any currency is non-zero") {
		t.Errorf("the refusal's message %q is not Stripe's", e.Message)
	}
	if err := sim.SetBalance(created.ID, "usd", 0); err != nil {
		t.Fatal(err)
	}
	_, err = c.RejectAccount(ctx, created.ID, "fraud", "reject-"+created.ID+"-a1")
	refused("the same key once the balance is zero (Stripe replays the saved refusal)", err)
	st, err := c.RejectAccount(ctx, created.ID, "fraud", "reject-"+created.ID+"-a2")
	if err != nil || st.Requirements.DisabledReason == nil || *st.Requirements.DisabledReason != "rejected.fraud" {
		t.Fatalf("a new attempt's key: %+v, %v", st.Requirements, err)
	}
	_, err = c.RejectAccount(ctx, created.ID, "fraud", "reject-"+created.ID+"-a3")
	refused("a second rejection", err)
}

// A pass lists its accounts in creation-time ranges: created[gte] and
// created[lt] (https://docs.stripe.com/api/accounts/list), combined with the
// cursor or the cursor's second. stripe-mock takes the parameters; the
// simulator keeps to them, newest first within the range, as Stripe does.
func TestListAccountsKeepsToACreatedRange(t *testing.T) {
	t.Run("stripe-mock", func(t *testing.T) {
		b := newBackend(t, "stripe-mock")
		ctx := context.Background()
		c := newClient(t, b.rec.URL, 5*time.Second)
		from, before := int64(1_700_000_000), int64(1_700_003_600)
		queries := []onboarding.AccountListQuery{
			{Limit: 100, CreatedFrom: from, CreatedBefore: before},
			{Limit: 100, CreatedFrom: from, CreatedBefore: before, StartingAfter: testAccountID},
			{Limit: 100, CreatedFrom: from, CreatedAtMost: before - 1},
			{Limit: 100, CreatedFrom: from},
		}
		for _, q := range queries {
			if _, err := c.ListAccounts(ctx, q); err != nil {
				t.Errorf("%+v: %v", q, err)
			}
		}
		lists := b.rec.Requests("GET /v1/accounts")
		if len(lists) != len(queries) {
			t.Fatalf("%d list requests, want %d", len(lists), len(queries))
		}
		f, bf := strconv.FormatInt(from, 10), strconv.FormatInt(before, 10)
		for i, w := range []url.Values{
			{"limit": {"100"}, "created[gte]": {f}, "created[lt]": {bf}},
			{"limit": {"100"}, "created[gte]": {f}, "created[lt]": {bf}, "starting_after": {testAccountID}},
			{"limit": {"100"}, "created[gte]": {f}, "created[lte]": {strconv.FormatInt(before-1, 10)}},
			{"limit": {"100"}, "created[gte]": {f}},
		} {
			assertForm(t, lists[i].Form, w)
		}
	})
	// The simulator on a clock of its own: an account an hour apart.
	now := time.Unix(1_700_000_000, 0)
	sim := stripesim.New(stripesim.Options{Now: func() time.Time { return now }})
	srv := httptest.NewServer(sim)
	t.Cleanup(func() { srv.Close(); sim.Close() })
	ctx := context.Background()
	c := newClient(t, srv.URL, 5*time.Second)
	var ids []string
	for i := range 4 {
		now = time.Unix(1_700_000_000+int64(i)*3600, 0)
		a, err := c.CreateAccount(ctx, onboarding.CreateAccountParams{Country: "US", Capabilities: []string{"card_payments", "transfers"}, ServiceAgreement: "full",
			PlatformUserID: fmt.Sprintf("user-%d", i), CreationID: fmt.Sprintf("cr-%d", i)}, fmt.Sprintf("range-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, a.ID)
	}
	for _, tc := range []struct {
		name string
		q    onboarding.AccountListQuery
		want []string
	}{
		{"open to the beginning", onboarding.AccountListQuery{Limit: 10, CreatedBefore: 1_700_003_600}, ids[:1]},
		{"a middle range, newest first", onboarding.AccountListQuery{Limit: 10, CreatedFrom: 1_700_003_600, CreatedBefore: 1_700_010_800}, []string{ids[2], ids[1]}},
		{"open to the future", onboarding.AccountListQuery{Limit: 10, CreatedFrom: 1_700_010_800}, ids[3:]},
		{"after a cursor within the range", onboarding.AccountListQuery{Limit: 10, CreatedFrom: 1_700_000_000, CreatedBefore: 1_700_010_800, StartingAfter: ids[2]}, []string{ids[1], ids[0]}},
		{"from the cursor's second within the range", onboarding.AccountListQuery{Limit: 10, CreatedFrom: 1_700_003_600, CreatedAtMost: 1_700_003_600}, ids[1:2]},
	} {
		page, err := c.ListAccounts(ctx, tc.q)
		var got []string
		for _, a := range page.Accounts {
			got = append(got, a.ID)
		}
		if err != nil || !slices.Equal(got, tc.want) || page.HasMore {
			t.Errorf("%s: %v, %v; want %v and no more", tc.name, got, err, tc.want)
		}
	}
}
