package stripesim_test

import (
	"testing"
	"time"

	"github.com/connectexpress/onboarding/internal/stripesim"
)

// Stripe shows tos_acceptance.service_agreement only for the recipient
// agreement; a full-agreement account (Stripe's default) has none. The
// 2023-10-16 spec types it as a string that is never null (spec3.json,
// components.schemas.account_tos_acceptance), and stripe-mock's account
// fixture leaves it out, so "none" is the key's absence. The adapter reads
// an absent agreement as full (shared/stripeconnect).
func TestServiceAgreementIsShownOnlyWhenRecipient(t *testing.T) {
	s := newSim(t, stripesim.Options{})
	k := newSink(t, 0)
	register(t, s, k, true)
	for _, tt := range []struct {
		name, agreement string // "" sends none
		want            any    // tos_acceptance.service_agreement; nil means absent
	}{
		{"full, sent by the platform", "full", nil},
		{"none sent: Stripe's default, full", "", nil},
		{"recipient", "recipient", "recipient"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := form("type", "express", "country", "US", "capabilities[transfers][requested]", "true")
			if tt.agreement != "" {
				f.Set("tos_acceptance[service_agreement]", tt.agreement)
			}
			if tt.agreement != "recipient" {
				f.Set("capabilities[card_payments][requested]", "true")
			}
			created := call(t, s.url, "POST", "/v1/accounts", f)
			if created.status != 200 {
				t.Fatalf("create: %d %s", created.status, created.raw)
			}
			id := created.str("id")
			if err := s.sim.Outcome(id, stripesim.OutcomeComplete, ""); err != nil {
				t.Fatal(err)
			}
			retrieved := call(t, s.url, "GET", "/v1/accounts/"+id, nil)
			var event map[string]any
			waitFor(t, "account.updated", 5*time.Second, func() bool {
				events, _ := k.snapshot()
				for _, ev := range events {
					if ev["account"] == id && ev["type"] == "account.updated" {
						event = ev["data"].(map[string]any)["object"].(map[string]any)
						return true
					}
				}
				return false
			})
			for name, obj := range map[string]map[string]any{"create": created.body, "retrieve": retrieved.body, "account.updated": event} {
				tos, _ := obj["tos_acceptance"].(map[string]any)
				got, present := tos["service_agreement"]
				if tt.want == nil && present {
					t.Errorf("%s: tos_acceptance %v, want no service_agreement", name, tos)
				}
				if tt.want != nil && got != tt.want {
					t.Errorf("%s: service_agreement %v, want %v", name, got, tt.want)
				}
			}
		})
	}
}
