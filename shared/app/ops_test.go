package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/connectexpress/onboarding/internal/testenv"
	"github.com/connectexpress/onboarding/shared/dynamostore"
	"github.com/connectexpress/onboarding/shared/onboarding"
)

// TestReconcilerReportsMismatchesAsLogLinesAndMetrics runs the sweep as the
// Lambda does, on moto and stripe-mock: an account with this service's
// metadata that no record holds (an orphan) and a record whose account
// Stripe does not list each get a WARN line naming the account, and count
// in the run's Embedded Metric Format line.
func TestReconcilerReportsMismatchesAsLogLinesAndMetrics(t *testing.T) {
	stack := testenv.NewStack(t, testenv.StackOptions{})
	stack.Stripe.EmulateAccountList()
	ctx := context.Background()

	// The orphan: made at Stripe with our metadata, never stored.
	form := url.Values{"type": {"express"}, "metadata[platform_user_id]": {"ghost"}, "metadata[platform_creation_id]": {"cr-ghost"}}
	req, _ := http.NewRequest(http.MethodPost, stack.Stripe.URL+"/v1/accounts", strings.NewReader(form.Encode()))
	req.Header.Set("Authorization", "Bearer sk_test_stack")
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var orphan struct{ ID string }
	_ = json.NewDecoder(resp.Body).Decode(&orphan)
	resp.Body.Close()
	if resp.StatusCode != 200 || orphan.ID == "" {
		t.Fatalf("create the orphan at stripe-mock: %d", resp.StatusCode)
	}
	// The unlisted record: stored an hour ago, its account not at Stripe.
	store := dynamostore.New(stack.DB, stack.Table)
	created := time.Now().Add(-time.Hour)
	claim := onboarding.CreationClaim{ClaimID: "claim-gone", CreationID: "cr-gone", LeaseUntil: created.Add(time.Minute), AttemptSince: created}
	if err := store.ClaimCreation(ctx, "gone", claim, created); err != nil {
		t.Fatal(err)
	}
	if err := store.CompleteCreation(ctx, onboarding.AccountRecord{UserID: "gone", AccountID: "acct_gone1", Country: "US",
		ServiceAgreement: onboarding.AgreementFull, StateVersion: created.Unix(), CreatedAt: created, UpdatedAt: created}, claim.ClaimID); err != nil {
		t.Fatal(err)
	}

	var metrics bytes.Buffer
	rec, err := stack.App.Reconciler(&metrics)
	if err != nil {
		t.Fatal(err)
	}
	report, err := rec.Run(ctx)
	if err != nil || !report.PassCompleted || report.Run.Orphans != 1 || report.Run.Missing != 1 {
		t.Fatalf("report %+v, %v: want a completed pass with 1 orphan and 1 missing record", report, err)
	}

	var emf map[string]any
	if err := json.Unmarshal(metrics.Bytes(), &emf); err != nil {
		t.Fatalf("EMF line %q: %v", metrics.String(), err)
	}
	for name, want := range map[string]float64{"SweepOrphans": 1, "SweepMissingRecords": 1, "SweepErrors": 0, "SweepAccountsListed": 1, "SweepStripeRequests": 1} {
		if emf[name] != want {
			t.Errorf("%s = %v, want %v (line %s)", name, emf[name], want, metrics.String())
		}
	}

	warned := map[string]string{}
	for _, line := range stack.Logs.Lines() {
		var l struct {
			Level     string `json:"level"`
			Msg       string `json:"msg"`
			AccountID string `json:"account_id"`
		}
		if json.Unmarshal([]byte(line), &l) == nil && l.Level == "WARN" && strings.HasPrefix(l.Msg, "sweep: ") {
			warned[l.AccountID] = l.Msg
		}
		if strings.Contains(line, "sk_test_stack") {
			t.Errorf("a log line holds the Stripe key: %s", line)
		}
	}
	if !strings.Contains(warned[orphan.ID], "orphan") {
		t.Errorf("no WARN line for the orphan %s: %v", orphan.ID, warned)
	}
	if !strings.Contains(warned["acct_gone1"], "not in Stripe's account list") {
		t.Errorf("no WARN line for the unlisted record: %v", warned)
	}
}
