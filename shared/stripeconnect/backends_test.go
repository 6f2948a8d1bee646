package stripeconnect_test

import (
	"context"
	"net/http/httptest"
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

// simLinkBase is where the simulator in these tests says its pages are.
const simLinkBase = "https://sim.example"

func newBackend(t *testing.T, name string) *stripeBackend {
	t.Helper()
	if name == "stripe-mock" {
		rec := testenv.NewRecorder(t)
		return &stripeBackend{name: name, rec: rec}
	}
	sim := stripesim.New(stripesim.Options{PublicURL: simLinkBase})
	srv := httptest.NewServer(sim)
	t.Cleanup(func() { srv.Close(); sim.Close() })
	return &stripeBackend{name: name, rec: testenv.NewRecorderAt(t, srv.URL), sim: sim, base: srv.URL}
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
