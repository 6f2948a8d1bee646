package stripeconnect_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/connectexpress/onboarding/shared/onboarding"
)

// The session request enables exactly the components asked for, each with
// enabled=true, and both Stripes take it: stripe-mock holds it to the
// 2023-10-16 spec, the simulator to Stripe's behaviour.
func TestCreateAccountSession(t *testing.T) {
	for _, tt := range []struct {
		name       string
		components []string
	}{
		{"onboarding alone", []string{"account_onboarding"}},
		{"every component of 2023-10-16", []string{"account_onboarding", "documents", "payment_details", "payments", "payouts"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, b *stripeBackend) {
				id := b.account(t, false)
				c := newClient(t, b.rec.URL, 5*time.Second)
				start := time.Now()
				got, err := c.CreateAccountSession(context.Background(), id, tt.components)
				if err != nil {
					t.Fatalf("CreateAccountSession: %v", err)
				}
				req := onlyRequest(t, b.rec, "POST /v1/account_sessions")
				if req.Status != http.StatusOK {
					t.Errorf("%s answered %d: the request does not match Stripe", b.name, req.Status)
				}
				want := url.Values{"account": {id}}
				for _, name := range tt.components {
					want["components["+name+"][enabled]"] = []string{"true"}
				}
				assertForm(t, req.Form, want)
				if got.ClientSecret == "" || got.ExpiresAt.Location() != time.UTC {
					t.Fatalf("session %+v, want a client secret and an expiry in UTC", got)
				}
				if b.sim != nil {
					if !strings.HasPrefix(got.ClientSecret, "accs_secret__") {
						t.Errorf("client secret %q, want the simulator's accs_secret__", got.ClientSecret)
					}
					if want := start.Add(30 * time.Minute); got.ExpiresAt.Sub(want).Abs() > 5*time.Second {
						t.Errorf("ExpiresAt = %v, want about %v", got.ExpiresAt, want)
					}
				}
			})
		})
	}
}

// A session for an account the platform lost is ErrAccountGone, as for
// links; an error never carries the client secret of a session answer.
func TestAccountSessionForAGoneAccountIsAccountGone(t *testing.T) {
	b := newBackend(t, "simulator")
	id := b.account(t, false)
	if err := b.sim.Deauthorize(id); err != nil {
		t.Fatal(err)
	}
	_, err := newClient(t, b.rec.URL, 5*time.Second).CreateAccountSession(context.Background(), id, []string{"account_onboarding"})
	if !errors.Is(err, onboarding.ErrAccountGone) {
		t.Fatalf("session of a deauthorized account: %v, want ErrAccountGone", err)
	}
}

func TestAnUnknownComponentNeverReachesStripe(t *testing.T) {
	b := newBackend(t, "simulator")
	_, err := newClient(t, b.rec.URL, 5*time.Second).CreateAccountSession(context.Background(), "acct_1", []string{"account_management"})
	if e, ok := onboarding.AsError(err); !ok || e.Kind != onboarding.KindInvalid {
		t.Fatalf("unknown component: %v, want a validation error", err)
	}
	if n := len(b.rec.Requests("POST /v1/account_sessions")); n != 0 {
		t.Fatalf("%d requests reached Stripe", n)
	}
}
