package devserver_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/connectexpress/onboarding/internal/stripesim"
	"github.com/connectexpress/onboarding/internal/testenv"
	"github.com/connectexpress/onboarding/shared/app"
	"github.com/connectexpress/onboarding/shared/onboarding"
)

// A sweep that stops mid-pass, at its deadline or killed in a Stripe call,
// is finished by the next run: the service as a Lambda wires it, on each
// engine, with the simulator as Stripe and no webhook delivered at all.

type sweepWorld struct {
	s      *testenv.Stack
	sim    *stripesim.Sim
	stripe *testenv.Recorder
	users  map[string]string // user -> token
	gone   string            // the user whose account was disconnected
}

func newSweepWorld(t *testing.T, e testenv.Engine) *sweepWorld {
	t.Helper()
	sim := stripesim.New(stripesim.Options{})
	srv := httptest.NewServer(sim)
	t.Cleanup(func() { srv.Close(); sim.Close() })
	sim.SetPublicURL(srv.URL)
	rec := testenv.NewRecorderAt(t, srv.URL)
	w := &sweepWorld{sim: sim, stripe: rec, users: map[string]string{},
		s: testenv.NewStack(t, testenv.StackOptions{DynamoDB: e.Client(t), Env: map[string]string{"STRIPE_API_BASE": rec.URL}})}
	for _, u := range []string{"u1", "u2", "u3", "u4", "u5", "u6", "u7"} {
		tok := w.s.Token(u, "")
		resp, body := w.s.Do(t, "POST", "/accounts", tok, `{}`)
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("create %s: %d %s", u, resp.StatusCode, body)
		}
		var acct struct {
			AccountID string `json:"account_id"`
		}
		_ = json.Unmarshal([]byte(body), &acct)
		w.users[u] = tok
		// No endpoint is registered: Stripe's news reaches nobody.
		if u == "u7" {
			w.gone = u
			if err := sim.Deauthorize(acct.AccountID); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := sim.Outcome(acct.AccountID, stripesim.OutcomeComplete, ""); err != nil {
			t.Fatal(err)
		}
	}
	// The sweep leaves alone a record written in the second before its read.
	time.Sleep(2100 * time.Millisecond)
	return w
}

func (w *sweepWorld) reconciler(t *testing.T) *app.Reconciler {
	t.Helper()
	r, err := w.s.App.ReconcilerWith(io.Discard, onboarding.SweepConfig{PageSize: 2, StopBefore: 500 * time.Millisecond, RecordGrace: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (w *sweepWorld) status(t *testing.T, user string) string {
	t.Helper()
	_, body := w.s.Do(t, "GET", "/accounts/me", w.users[user], "")
	var acct struct{ Status string }
	_ = json.Unmarshal([]byte(body), &acct)
	return acct.Status
}

// finish runs the sweep again without limit and checks that every record
// converged and the whole pass was counted.
func (w *sweepWorld) finish(t *testing.T, first app.SweepReport) {
	t.Helper()
	w.stripe.SetIntercept(nil)
	second, err := w.reconciler(t).Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !second.PassCompleted || second.PassID != first.PassID || second.Pages+first.Pages != 3 {
		t.Errorf("second run %+v after a first of %d pages: want it to finish the same pass (3 pages of 2)", second, first.Pages)
	}
	if p := second.Pass; p.Listed != 6 || p.Applied != 6 || p.Records != 7 || p.Missing != 1 {
		t.Errorf("the pass counted %+v, want 6 listed and applied, 7 records checked, the disconnected account's missing", p)
	}
	for u := range w.users {
		want := "active"
		if u == w.gone {
			want = "onboarding" // its account is not listed: reported, left as it is
		}
		if got := w.status(t, u); got != want {
			t.Errorf("%s is %q, want %q", u, got, want)
		}
		if u == w.gone {
			continue
		}
		// The healed change is the sweep's in the account's history.
		staff := testenv.Authorizer.MintClaims("staff", "", map[string]any{"cognito:groups": []any{"onboarding-staff"}}, time.Now(), time.Hour)
		_, body := w.s.Do(t, "GET", "/admin/accounts/"+u, staff, "")
		var h struct {
			StatusChanges []struct{ From, To, Cause string } `json:"status_changes"`
		}
		_ = json.Unmarshal([]byte(body), &h)
		if len(h.StatusChanges) != 1 || h.StatusChanges[0].From != "onboarding" || h.StatusChanges[0].To != "active" || h.StatusChanges[0].Cause != "sweep" {
			t.Errorf("%s's status changes: %s, want onboarding to active by the sweep", u, body)
		}
	}
}

func TestSweepStoppedAtItsDeadlineFinishesOnTheNextRun(t *testing.T) {
	for _, e := range testenv.Engines {
		t.Run(e.Name, func(t *testing.T) {
			w := newSweepWorld(t, e)
			// Each page takes 700 ms; the run has 2 s and starts no page in
			// its last 500 ms, or twice its longest page.
			w.stripe.SetIntercept(func(_ http.ResponseWriter, r *http.Request) bool {
				if r.Method == http.MethodGet && r.URL.Path == "/v1/accounts" {
					time.Sleep(700 * time.Millisecond)
				}
				return false
			})
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			first, err := w.reconciler(t).Run(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !first.Stopped || first.PassCompleted || first.Pages < 1 || first.Pages > 2 {
				t.Fatalf("first run %+v: want it stopped before its deadline after 1 or 2 of 3 pages", first)
			}
			w.finish(t, first)
		})
	}
}

func TestSweepKilledInAStripeCallFinishesOnTheNextRun(t *testing.T) {
	for _, e := range testenv.Engines {
		t.Run(e.Name, func(t *testing.T) {
			w := newSweepWorld(t, e)
			ctx, kill := context.WithCancel(context.Background())
			defer kill()
			var mu sync.Mutex
			lists := 0
			// The second page's request never answers: the run is killed
			// while it waits, as a Lambda at its timeout.
			w.stripe.SetIntercept(func(_ http.ResponseWriter, r *http.Request) bool {
				if r.Method != http.MethodGet || r.URL.Path != "/v1/accounts" {
					return false
				}
				mu.Lock()
				lists++
				n := lists
				mu.Unlock()
				if n == 2 {
					kill()
					<-r.Context().Done()
					return true
				}
				return false
			})
			first, err := w.reconciler(t).Run(ctx)
			if !errors.Is(err, context.Canceled) && !errors.Is(err, onboarding.ErrStripeUnavailable) {
				t.Fatalf("first run: %v, want it to end with its context", err)
			}
			if first.Pages != 1 || first.PassCompleted {
				t.Fatalf("first run %+v: want one page checkpointed", first)
			}
			w.finish(t, first)
		})
	}
}
