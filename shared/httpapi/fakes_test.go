package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/connectexpress/onboarding/shared/config"
	"github.com/connectexpress/onboarding/shared/onboarding"
)

// fakeStripeLink is the prefix of every link fakeConnect issues.
const fakeStripeLink = "https://connect.stripe.test/"

// fakeConnect is an onboarding.Connect that never touches the network. It
// records the creation parameters so tests can hold them to the contract.
type fakeConnect struct {
	mu      sync.Mutex
	n       int
	created []onboarding.CreateAccountParams
}

var _ onboarding.Connect = (*fakeConnect)(nil)

func (f *fakeConnect) CreateAccount(_ context.Context, p onboarding.CreateAccountParams, _ string) (onboarding.CreatedAccount, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	f.created = append(f.created, p)
	return onboarding.CreatedAccount{ID: fmt.Sprintf("acct_fake%06d", f.n), Country: p.Country}, nil
}

func (f *fakeConnect) FindCreatedAccount(context.Context, onboarding.CreatedAccountQuery) (onboarding.CreatedAccount, bool, error) {
	return onboarding.CreatedAccount{}, false, nil
}

func (f *fakeConnect) GetAccount(context.Context, string) (onboarding.AccountState, error) {
	return onboarding.AccountState{DetailsSubmitted: true, Requirements: onboarding.Requirements{EventuallyDue: []string{"external_account"}}}, nil
}

func (f *fakeConnect) UpdateAccount(context.Context, string, onboarding.Prefill) error { return nil }

func (f *fakeConnect) CreateOnboardingLink(_ context.Context, r onboarding.LinkRequest) (onboarding.OnboardingLink, error) {
	return onboarding.OnboardingLink{URL: fakeStripeLink + "setup/" + r.AccountID, ExpiresAt: time.Unix(1_900_000_000, 0).UTC()}, nil
}

func (f *fakeConnect) CreateDashboardLink(_ context.Context, accountID string) (string, error) {
	return fakeStripeLink + "express/" + accountID, nil
}

func (f *fakeConnect) CreateAccountSession(_ context.Context, accountID string, _ []string) (onboarding.AccountSession, error) {
	return onboarding.AccountSession{ClientSecret: "accs_secret__fake_" + accountID, ExpiresAt: time.Unix(1_900_000_000, 0).UTC()}, nil
}

func (f *fakeConnect) RejectAccount(_ context.Context, _, reason, _ string) (onboarding.AccountState, error) {
	r := "rejected." + reason
	return onboarding.AccountState{DetailsSubmitted: true, Requirements: onboarding.Requirements{DisabledReason: &r}}, nil
}

// fakeVerifier stands in for the Stripe signature check: the header
// "t=1,v1=fuzz" is a valid signature, and the body is then decoded as a
// minimal event; anything else fails the way the real verifier does.
type fakeVerifier struct{}

const fakeSignature = "t=1,v1=fuzz"

func (fakeVerifier) Verify(payload []byte, sig string) (onboarding.AccountEvent, error) {
	if sig != fakeSignature {
		return onboarding.AccountEvent{}, onboarding.InvalidCode("invalid_signature", "stripe-signature", "no signature matches the payload")
	}
	var ev struct {
		ID       string `json:"id"`
		Type     string `json:"type"`
		Created  int64  `json:"created"`
		Account  string `json:"account"`
		Livemode bool   `json:"livemode"`
		Data     struct {
			Object struct {
				DetailsSubmitted bool              `json:"details_submitted"`
				ChargesEnabled   bool              `json:"charges_enabled"`
				PayoutsEnabled   bool              `json:"payouts_enabled"`
				Country          string            `json:"country"`
				Metadata         map[string]string `json:"metadata"`
				ID               string            `json:"id"`
				Status           string            `json:"status"`
			} `json:"object"`
		} `json:"data"`
	}
	if err := json.Unmarshal(payload, &ev); err != nil || ev.ID == "" {
		return onboarding.AccountEvent{}, onboarding.InvalidCode("invalid_payload", "", "the event is not a valid Stripe event")
	}
	o := ev.Data.Object
	out := onboarding.AccountEvent{
		ID: ev.ID, Type: ev.Type, Created: time.Unix(ev.Created, 0), AccountID: ev.Account, Livemode: ev.Livemode,
		Country: o.Country, ServiceAgreement: onboarding.AgreementFull, PlatformUserID: o.Metadata["platform_user_id"],
		Capability: o.ID, CapabilityStatus: o.Status,
	}
	if ev.Type == onboarding.EventAccountUpdated {
		out.State = &onboarding.AccountState{DetailsSubmitted: o.DetailsSubmitted, ChargesEnabled: o.ChargesEnabled, PayoutsEnabled: o.PayoutsEnabled}
	}
	return out, nil
}

// testPolicy is the policy the service runs with on default configuration.
func testPolicy() onboarding.Policy {
	env := map[string]string{"FRONTEND_URL": "https://frontend.example", "PUBLIC_API_URL": "https://api.example", "STRIPE_PUBLISHABLE_KEY": "pk_test_platform"}
	cfg, err := config.Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		panic(err)
	}
	return cfg.Policy
}
