package stripesim_test

import (
	"net/url"
	"testing"

	"github.com/connectexpress/onboarding/internal/stripesim"
)

// Stripe refuses transfers without card_payments under the full agreement
// unless it approved the platform; a recipient has transfers alone by rule.
func TestTransfersWithoutCardPaymentsNeedsThePlatformsApproval(t *testing.T) {
	transfersOnly := func(agreement string) url.Values {
		return form("type", "express", "country", "GB", "tos_acceptance[service_agreement]", agreement, "capabilities[transfers][requested]", "true")
	}
	const stripesMessage = "Your platform needs approval for accounts to have requested the `transfers` capability without the `card_payments` capability."
	for _, tc := range []struct {
		name     string
		approved bool
		form     url.Values
		refused  bool
	}{
		{"full agreement, platform not approved", false, transfersOnly("full"), true},
		{"full agreement by default, platform not approved", false, form("type", "express", "capabilities[transfers][requested]", "true"), true},
		{"full agreement, platform approved", true, transfersOnly("full"), false},
		{"recipient, platform not approved", false, transfersOnly("recipient"), false},
		{"card_payments beside transfers, platform not approved", false, createForm("cards"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSim(t, stripesim.Options{TransfersOnlyApproved: tc.approved})
			got := call(t, s.url, "POST", "/v1/accounts", tc.form)
			switch {
			case tc.refused && (got.status != 400 || got.errField("param") != "capabilities" || got.errField("message") != stripesMessage ||
				got.errField("type") != "invalid_request_error"):
				t.Errorf("%d %s, want 400 on capabilities with Stripe's message", got.status, got.raw)
			case !tc.refused && got.status != 200:
				t.Errorf("%d %s, want the account created", got.status, got.raw)
			case tc.refused && countAccounts(t, s) != 0:
				t.Error("a refused request created an account")
			}
		})
	}
	t.Run("an update that drops card_payments is refused too", func(t *testing.T) {
		s := newSim(t, stripesim.Options{})
		id := createAccount(t, s, "dropper")
		got := call(t, s.url, "POST", "/v1/accounts/"+id, form("capabilities[card_payments][requested]", "false"))
		if got.status != 400 || got.errField("message") != stripesMessage {
			t.Errorf("%d %s, want Stripe's refusal", got.status, got.raw)
		}
		if acct := call(t, s.url, "GET", "/v1/accounts/"+id, nil); acct.str("capabilities", "card_payments") != "inactive" {
			t.Errorf("the refused update changed the account: %s", acct.raw)
		}
	})
}

// A platform's Connect settings add payment-method capabilities to its
// accounts; the simulator's stay inactive while the requested ones become
// active, and charges and payouts work.
func TestPlatformCapabilitiesStayInactive(t *testing.T) {
	s := newSim(t, stripesim.Options{PlatformCapabilities: []string{"us_bank_account_ach_payments"}})
	id := createAccount(t, s, "achy")
	if err := s.sim.Outcome(id, stripesim.OutcomeComplete, ""); err != nil {
		t.Fatal(err)
	}
	acct := call(t, s.url, "GET", "/v1/accounts/"+id, nil)
	if acct.str("capabilities", "us_bank_account_ach_payments") != "inactive" ||
		acct.str("capabilities", "card_payments") != "active" || acct.str("capabilities", "transfers") != "active" ||
		acct.body["charges_enabled"] != true || acct.body["payouts_enabled"] != true {
		t.Errorf("complete account with a platform capability: %s", acct.raw)
	}
	recipient := call(t, s.url, "POST", "/v1/accounts", form("type", "express", "country", "FR", "tos_acceptance[service_agreement]", "recipient",
		"capabilities[transfers][requested]", "true"))
	if caps, _ := recipient.body["capabilities"].(map[string]any); recipient.status != 200 || len(caps) != 1 {
		t.Errorf("a recipient gets no payment-method capability: %s", recipient.raw)
	}
}

func TestCapabilityKnobsFromEnv(t *testing.T) {
	env := func(kv map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) { v, ok := kv[k]; return v, ok }
	}
	o, err := stripesim.OptionsFromEnv(env(map[string]string{"SIM_TRANSFERS_ONLY_APPROVED": "true", "SIM_PLATFORM_CAPABILITIES": "us_bank_account_ach_payments, link_payments"}))
	if err != nil || !o.TransfersOnlyApproved || len(o.PlatformCapabilities) != 2 || o.PlatformCapabilities[1] != "link_payments" {
		t.Errorf("%+v, %v", o, err)
	}
	for _, bad := range []map[string]string{{"SIM_TRANSFERS_ONLY_APPROVED": "yes"}, {"SIM_PLATFORM_CAPABILITIES": "teleport_payments"}} {
		if _, err := stripesim.OptionsFromEnv(env(bad)); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
