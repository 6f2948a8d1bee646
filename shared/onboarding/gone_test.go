package onboarding_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connectexpress/onboarding/internal/memstore"
	"github.com/connectexpress/onboarding/shared/onboarding"
)

// goneWorld is one user's onboarded account on the in-memory store, whose
// writes through ApplyEvent are recorded, and a Stripe fake that answers
// every call with stripeErr once it is set, counting the calls.
type goneWorld struct {
	*memstore.Store
	mu        sync.Mutex
	changes   []onboarding.StateChange
	stripeErr error
	calls     int
	refresh   string // the refresh_url of the last link asked for
}

func (w *goneWorld) ApplyEvent(ctx context.Context, c onboarding.StateChange) (onboarding.EventOutcome, error) {
	w.mu.Lock()
	w.changes = append(w.changes, c)
	w.mu.Unlock()
	return w.Store.ApplyEvent(ctx, c)
}

func (w *goneWorld) answer() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls++
	return w.stripeErr
}

func (w *goneWorld) stripeCalls() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.calls
}

func newGoneWorld(t *testing.T) (*goneWorld, *onboarding.Service) {
	t.Helper()
	w := &goneWorld{Store: memstore.New()}
	ctx := context.Background()
	if err := w.ClaimCreation(ctx, "u1", onboarding.CreationClaim{ClaimID: "c1", LeaseUntil: testNow.Add(time.Minute)}, testNow); err != nil {
		t.Fatal(err)
	}
	rec := onboarding.AccountRecord{UserID: "u1", AccountID: "acct_1", ServiceAgreement: onboarding.AgreementFull,
		State: onboarding.AccountState{DetailsSubmitted: true}, StateVersion: testNow.Unix() - 60}
	if err := w.CompleteCreation(ctx, rec, "c1"); err != nil {
		t.Fatal(err)
	}
	connect := &connectFake{
		GetAccountFn: func(context.Context, string) (onboarding.AccountState, error) {
			return onboarding.AccountState{DetailsSubmitted: true}, w.answer()
		},
		UpdateAccountFn: func(context.Context, string, onboarding.Prefill) error { return w.answer() },
		LinkFn: func(_ context.Context, r onboarding.LinkRequest) (onboarding.OnboardingLink, error) {
			w.mu.Lock()
			w.refresh = r.RefreshURL
			w.mu.Unlock()
			return onboarding.OnboardingLink{URL: "https://connect.stripe.com/setup/e/acct_1/x"}, w.answer()
		},
		DashboardFn: func(context.Context, string) (string, error) {
			return "https://connect.stripe.com/express/acct_1", w.answer()
		},
	}
	return w, newService(w, connect, testPolicy())
}

// goneCalls are the account's own calls that reach Stripe, each with what
// it answers once Stripe said the account is gone.
var goneCalls = []struct {
	name string
	// call makes the call; token is a refresh token of the account.
	call func(svc *onboarding.Service, token string) error
	want *onboarding.Error // nil: the call succeeds
}{
	{"status refresh", func(svc *onboarding.Service, _ string) error {
		acct, err := svc.GetAccount(context.Background(), u1, true)
		if err == nil && acct.Status != onboarding.StatusDeauthorized {
			return errors.New("status " + string(acct.Status) + ", want deauthorized")
		}
		return err
	}, nil},
	{"onboarding link", func(svc *onboarding.Service, _ string) error {
		_, err := svc.CreateOnboardingLink(context.Background(), u1)
		return err
	}, onboarding.ErrDeauthorized},
	{"dashboard link", func(svc *onboarding.Service, _ string) error {
		_, err := svc.CreateDashboardLink(context.Background(), u1)
		return err
	}, onboarding.ErrDeauthorized},
	{"prefill update", func(svc *onboarding.Service, _ string) error {
		_, err := svc.UpdateAccount(context.Background(), u1, onboarding.UpdateAccountRequest{Email: ptr("new@example.com")})
		return err
	}, onboarding.ErrDeauthorized},
	{"refresh of an onboarding link", func(svc *onboarding.Service, token string) error {
		location, err := svc.RefreshOnboardingLink(context.Background(), token)
		if e, ok := onboarding.AsError(err); ok && !strings.HasSuffix(location, "?error="+e.Code) {
			return errors.New("redirected to " + location + " for " + e.Code)
		}
		return err
	}, onboarding.ErrAccountUnavailable},
}

// Stripe's 403 account_invalid on an account's own call (ErrAccountGone)
// means the account was deleted or the platform's access revoked, whether
// or not account.application.deauthorized arrived: the record is stored as
// deauthorized, with cause account_invalid, and from then on the account's
// routes answer so without calling Stripe. Never stripe_unavailable.
func TestStripesAccountInvalidStoresTheAccountAsDeauthorized(t *testing.T) {
	for _, tt := range goneCalls {
		t.Run(tt.name, func(t *testing.T) {
			w, svc := newGoneWorld(t)
			token := w.tokenFor(t, svc, tt.name)
			w.stripeErr = onboarding.ErrAccountGone.WithCause(errors.New("stripe: status 403, code account_invalid"))

			err := tt.call(svc, token)
			switch {
			case tt.want == nil && err != nil:
				t.Fatalf("err = %v, want the account answered as deauthorized", err)
			case tt.want != nil && !errors.Is(err, tt.want):
				t.Fatalf("err = %v, want %s", err, tt.want.Code)
			}
			u, err := w.GetUser(context.Background(), "u1")
			if err != nil || !u.Account.State.Deauthorized {
				t.Fatalf("stored %+v %v, want deauthorized", u.Account, err)
			}
			if n := len(w.changes); n != 1 || w.changes[0].Kind != onboarding.ChangeDeauthorize ||
				w.changes[0].Cause != onboarding.CauseAccountInvalid || w.changes[0].AccountID != "acct_1" {
				t.Fatalf("writes %+v, want one deauthorization with cause account_invalid", w.changes)
			}

			before := w.stripeCalls()
			for _, again := range goneCalls[:4] {
				if err := again.call(svc, ""); (again.want == nil) != (err == nil) || (again.want != nil && !errors.Is(err, again.want)) {
					t.Errorf("%s afterwards: %v, want %v", again.name, err, again.want)
				}
			}
			if n := w.stripeCalls() - before; n != 0 {
				t.Errorf("%d Stripe calls after the account was known gone, want none", n)
			}
		})
	}
}

// tokenFor returns a refresh token of the account for the call that
// redeems one ("" for the others: a link would lock prefill).
func (w *goneWorld) tokenFor(t *testing.T, svc *onboarding.Service, call string) string {
	t.Helper()
	if call != "refresh of an onboarding link" {
		return ""
	}
	if _, err := svc.CreateOnboardingLink(context.Background(), u1); err != nil {
		t.Fatal(err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return tokenOf(t, w.refresh)
}

// A refused key (401, or a 403 without account_invalid) is the operator's
// misconfiguration: every call answers stripe_unavailable, and no account
// is marked.
func TestARefusedKeyNeverMarksTheAccount(t *testing.T) {
	for _, tt := range goneCalls {
		t.Run(tt.name, func(t *testing.T) {
			w, svc := newGoneWorld(t)
			token := w.tokenFor(t, svc, tt.name)
			w.stripeErr = onboarding.StripeKeyRefused(errors.New("stripe refused the platform's API key: check STRIPE_SECRET_KEY"))
			if err := tt.call(svc, token); !errors.Is(err, onboarding.ErrStripeUnavailable) {
				t.Fatalf("err = %v, want stripe_unavailable", err)
			}
			if u, _ := w.GetUser(context.Background(), "u1"); u.Account.State.Deauthorized || len(w.changes) != 0 {
				t.Errorf("a refused key marked the account: %+v, writes %+v", u.Account.State, w.changes)
			}
		})
	}
}
