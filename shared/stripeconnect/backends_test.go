package stripeconnect_test

import (
	"context"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/connectexpress/onboarding/internal/stripesim"
	"github.com/connectexpress/onboarding/internal/testenv"
	"github.com/connectexpress/onboarding/shared/onboarding"
)

// The adapter's requests must satisfy two Stripes: stripe-mock checks them
// against Stripe's OpenAPI spec (it keeps no state), and the local simulator
// against Stripe's behaviour (so it can never accept what the spec refuses
// while the spec is silent on state).
var backendNames = []string{"stripe-mock", "simulator"}

type stripeBackend struct {
	name string
	rec  *testenv.Recorder
	sim  *stripesim.Sim // nil for stripe-mock
	base string         // the backend itself, not the recorder
}

func newBackend(t *testing.T, name string) *stripeBackend {
	t.Helper()
	if name == "stripe-mock" {
		rec := testenv.NewRecorder(t)
		return &stripeBackend{name: name, rec: rec}
	}
	sim := stripesim.New(stripesim.Options{})
	srv := httptest.NewServer(sim)
	t.Cleanup(func() { srv.Close(); sim.Close() })
	rec := testenv.NewRecorderAt(t, srv.URL)
	// The simulator's hosted pages live on the API base the client is given,
	// as in make dev: the only development host a link may point at.
	sim.SetPublicURL(rec.URL)
	return &stripeBackend{name: name, rec: rec, sim: sim, base: srv.URL}
}

// account returns an account the request under test can act on:
// stripe-mock answers for any id; the simulator needs one it made, created
// here around the recorder so that only the request under test is recorded.
// With submitted, its holder completed onboarding.
func (b *stripeBackend) account(t *testing.T, submitted bool) string {
	t.Helper()
	if b.sim == nil {
		return testAccountID
	}
	created, err := newClient(t, b.base, 5*time.Second).CreateAccount(context.Background(), onboarding.CreateAccountParams{
		Country: "US", Capabilities: []string{"card_payments", "transfers"}, ServiceAgreement: "full", PlatformUserID: "seed",
	}, "seed-"+testenv.RandomID(6))
	if err != nil {
		t.Fatalf("seed an account on the simulator: %v", err)
	}
	if submitted {
		if err := b.sim.Outcome(created.ID, stripesim.OutcomeComplete, ""); err != nil {
			t.Fatal(err)
		}
	}
	return created.ID
}

func forEachBackend(t *testing.T, f func(t *testing.T, b *stripeBackend)) {
	for _, name := range backendNames {
		t.Run(name, func(t *testing.T) { f(t, newBackend(t, name)) })
	}
}

// assertNewSimulatedAccount checks the simulator's fresh Express account:
// nothing submitted, disabled until onboarding, the requested capabilities
// (or, with none, what the platform's settings give) inactive.
func assertNewSimulatedAccount(t *testing.T, st onboarding.AccountState, p onboarding.CreateAccountParams) {
	t.Helper()
	if st.DetailsSubmitted || st.ChargesEnabled || st.PayoutsEnabled {
		t.Errorf("a new account is submitted or enabled: %+v", st)
	}
	if r := st.Requirements.DisabledReason; r == nil || *r != "requirements.past_due" {
		t.Errorf("DisabledReason = %v, want requirements.past_due", r)
	}
	if !slices.Contains(st.Requirements.CurrentlyDue, "external_account") || st.Requirements.CurrentDeadline != nil {
		t.Errorf("Requirements = %+v, want external_account due and no deadline", st.Requirements)
	}
	if p.BusinessType == "" && !slices.Contains(st.Requirements.CurrentlyDue, "business_type") {
		t.Errorf("business_type is not due without a prefilled business type: %v", st.Requirements.CurrentlyDue)
	}
	if p.BusinessProfile.ProductDescription != "" && slices.Contains(st.Requirements.CurrentlyDue, "business_profile.url") {
		t.Errorf("a product description stands in for the URL, yet business_profile.url is due")
	}
	wantCaps := p.Capabilities
	if len(wantCaps) == 0 {
		wantCaps = []string{"card_payments", "transfers"}
	}
	want := map[string]string{}
	for _, c := range wantCaps {
		want[c] = "inactive"
	}
	if !reflect.DeepEqual(st.Capabilities, want) {
		t.Errorf("Capabilities = %v, want %v", st.Capabilities, want)
	}
	if st.FutureRequirements == nil || len(st.FutureRequirements.CurrentlyDue) != 0 {
		t.Errorf("FutureRequirements = %+v, want present and empty", st.FutureRequirements)
	}
}

func linkForm(id, fields string, includeFuture bool) url.Values {
	f := url.Values{
		"account":                    {id},
		"type":                       {"account_onboarding"},
		"refresh_url":                {testRefreshURL},
		"return_url":                 {testReturnURL},
		"collection_options[fields]": {fields},
	}
	if includeFuture {
		f["collection_options[future_requirements]"] = []string{"include"}
	}
	return f
}
