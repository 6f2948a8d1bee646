package devserver_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/connectexpress/onboarding/internal/testenv"
)

// TestDashboardLinkStripeRefusesIsOnboardingIncomplete: the stored
// details_submitted said yes, Stripe says the account has not completed
// onboarding. The caller gets 409 onboarding_incomplete, not a 400 about
// Stripe's parameters, and the account is read again.
func TestDashboardLinkStripeRefusesIsOnboardingIncomplete(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{})
	acct, tok := onboarded(t, s, "olga")
	if code, _ := s.PostEvent(t, testenv.AccountUpdated("evt_olga", acct, "olga", time.Now().Unix()+1, snapActive)); code != 200 {
		t.Fatal(code)
	}
	s.Stripe.SetIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.HasSuffix(r.URL.Path, "/login_links") {
			return false
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":{"type":"invalid_request_error","message":"Cannot create a login link for an account that has not completed onboarding."}}`))
		return true
	})
	resp, body := s.Do(t, "POST", "/accounts/me/dashboard-link", tok, "")
	expectStatus(t, resp, body, http.StatusConflict)
	if e := decode[errorJSON](t, body); e.Error.Code != "onboarding_incomplete" {
		t.Fatalf("dashboard link: %s", body)
	}
	if n := len(s.Stripe.Requests("POST /v1/accounts/" + acct + "/login_links")); n != 1 {
		t.Fatalf("%d login link requests, want 1", n)
	}
	if n := len(s.Stripe.Requests("GET /v1/accounts/" + acct)); n != 1 {
		t.Fatalf("the account was re-read %d times, want 1", n)
	}
}

// TestCardPaymentsWithoutTransfersIsRefusedBeforeStripe: Stripe answers 400
// to card_payments without transfers; we say so without calling it.
func TestCardPaymentsWithoutTransfersIsRefusedBeforeStripe(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{})
	resp, body := s.Do(t, "POST", "/accounts", s.Token("pia", ""), `{"capabilities":["card_payments"]}`)
	expectStatus(t, resp, body, http.StatusBadRequest)
	if e := decode[errorJSON](t, body); e.Error.Code != "validation_error" || e.Error.Param != "capabilities" {
		t.Fatalf("%s", body)
	}
	if n := len(s.Stripe.Requests("")); n != 0 {
		t.Fatalf("Stripe was called %d times", n)
	}
}

// TestStatusFollowsStripeThroughWebhooks drives the statuses that need more
// than one flag through signed events: restricted_soon, a recipient that is
// active without charges, and platform_paused.
func TestStatusFollowsStripeThroughWebhooks(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{})
	now := time.Now().Unix()
	dueSoon := testenv.AccountSnapshot{DetailsSubmitted: true, ChargesEnabled: true, PayoutsEnabled: true,
		CurrentlyDue: []string{"company.tax_id"}, CurrentDeadline: now + 7*24*3600}
	tests := []struct {
		name string
		user string
		body string
		snap testenv.AccountSnapshot
		want string
	}{
		{"due by a future deadline and still enabled", "quinn", `{}`, dueSoon, "restricted_soon"},
		{"recipient with transfers active and payouts enabled", "rosa", `{"country":"GB","service_agreement":"recipient","capabilities":["transfers"]}`,
			testenv.AccountSnapshot{DetailsSubmitted: true, PayoutsEnabled: true, Capabilities: map[string]string{"transfers": "active"}}, "active"},
		{"paused by the platform", "sam", `{}`, testenv.AccountSnapshot{DisabledReason: "platform_paused"}, "platform_paused"},
		{"under review", "tia", `{}`, testenv.AccountSnapshot{DetailsSubmitted: true, DisabledReason: "under_review"}, "pending_verification"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := s.Token(tt.user, "")
			resp, body := s.Do(t, "POST", "/accounts", tok, tt.body)
			expectStatus(t, resp, body, http.StatusCreated)
			acct := decode[accountJSON](t, body).AccountID
			// Created after the account, whose creation is the stored version.
			created := time.Now().Unix() + 1
			if code, _ := s.PostEvent(t, testenv.AccountUpdated("evt_"+tt.user, acct, tt.user, created, tt.snap)); code != 200 {
				t.Fatal(code)
			}
			if got := status(t, s, tok).Status; got != tt.want {
				t.Fatalf("status %q, want %q", got, tt.want)
			}
		})
	}
}
