package devserver

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/connectexpress/onboarding/internal/stripesim"
)

// capsToken mints a caller's token on the dev server.
func capsToken(t *testing.T, r *Running, sub string) string {
	t.Helper()
	_, body := httpDo(t, "GET", r.APIURL+"/dev/token?sub="+sub, "", "")
	var minted struct{ Token string }
	if err := json.Unmarshal([]byte(body), &minted); err != nil || minted.Token == "" {
		t.Fatalf("/dev/token: %s", body)
	}
	return minted.Token
}

type capsAccount struct {
	AccountID      string            `json:"account_id"`
	Status         string            `json:"status"`
	ChargesEnabled bool              `json:"charges_enabled"`
	PayoutsEnabled bool              `json:"payouts_enabled"`
	Capabilities   map[string]string `json:"capabilities"`
}

func (u devUser) read(t *testing.T, r *Running) capsAccount {
	t.Helper()
	_, body := httpDo(t, "GET", r.APIURL+"/accounts/me", u.token, "")
	var a capsAccount
	_ = json.Unmarshal([]byte(body), &a)
	return a
}

// A platform whose Connect settings add us_bank_account_ach_payments: the
// simulator leaves it inactive, as Stripe does for a seller who never
// provides what it needs. The seller's cards, transfers and payouts work,
// so the account is active, and the added capability stays visible.
func TestAnAccountWithAnInactivePlatformCapabilityIsActive(t *testing.T) {
	r, _ := start(t, map[string]string{"SIM_PLATFORM_CAPABILITIES": "us_bank_account_ach_payments"})
	seller := devAccount(t, r, "achilles")
	if err := r.Sim.Outcome(seller.account, stripesim.OutcomeComplete, ""); err != nil {
		t.Fatal(err)
	}
	seller.waitStatus(t, r, "active")
	a := seller.read(t, r)
	if a.Capabilities["us_bank_account_ach_payments"] != "inactive" || a.Capabilities["card_payments"] != "active" ||
		a.Capabilities["transfers"] != "active" || !a.ChargesEnabled || !a.PayoutsEnabled {
		t.Errorf("the account %+v, want the added capability shown inactive beside active cards and transfers", a)
	}
	// A refresh reads Stripe and judges its state on the same capabilities.
	if resp, body := httpDo(t, "GET", r.APIURL+"/accounts/me?refresh=true", seller.token, ""); resp.StatusCode != 200 || !strings.Contains(body, `"status":"active"`) {
		t.Errorf("refresh: %d %s", resp.StatusCode, body)
	}
}

// transfers without card_payments under the full agreement: refused before
// Stripe unless ALLOW_TRANSFERS_ONLY; refused by Stripe when the platform
// says it may but Stripe has not approved it; and, approved, active once
// transfers and payouts work, without charges.
func TestTransfersOnlyAccounts(t *testing.T) {
	const transfersOnly = `{"business_type":"individual","capabilities":["transfers"]}`
	t.Run("not allowed: 400 before Stripe", func(t *testing.T) {
		r, _ := start(t, nil)
		resp, body := httpDo(t, "POST", r.APIURL+"/accounts", capsToken(t, r, "tess"), transfersOnly)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `"code":"validation_error"`) || !strings.Contains(body, `"param":"capabilities"`) {
			t.Errorf("%d %s, want 400 validation_error on capabilities", resp.StatusCode, body)
		}
		req, _ := http.NewRequest("GET", r.SimURL+"/v1/accounts", nil)
		req.Header.Set("Authorization", "Bearer "+r.App.Config.StripeSecretKey)
		listed, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer listed.Body.Close()
		var list struct{ Data []any }
		if err := json.NewDecoder(listed.Body).Decode(&list); err != nil || len(list.Data) != 0 {
			t.Errorf("Stripe holds %d accounts (%v), want none: the request must not reach it", len(list.Data), err)
		}
	})
	t.Run("allowed here, not approved at Stripe: Stripe's refusal", func(t *testing.T) {
		r, _ := start(t, map[string]string{"ALLOW_TRANSFERS_ONLY": "true"})
		resp, body := httpDo(t, "POST", r.APIURL+"/accounts", capsToken(t, r, "tess"), transfersOnly)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `"param":"capabilities"`) || !strings.Contains(body, "needs approval") {
			t.Errorf("%d %s, want Stripe's 400 on capabilities", resp.StatusCode, body)
		}
	})
	t.Run("allowed and approved: active without charges", func(t *testing.T) {
		r, _ := start(t, map[string]string{"ALLOW_TRANSFERS_ONLY": "true", "SIM_TRANSFERS_ONLY_APPROVED": "true"})
		tok := capsToken(t, r, "tess")
		resp, body := httpDo(t, "POST", r.APIURL+"/accounts", tok, transfersOnly)
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("create: %d %s", resp.StatusCode, body)
		}
		var created capsAccount
		_ = json.Unmarshal([]byte(body), &created)
		seller := devUser{token: tok, account: created.AccountID}
		if err := r.Sim.Outcome(seller.account, stripesim.OutcomeComplete, ""); err != nil {
			t.Fatal(err)
		}
		seller.waitStatus(t, r, "active")
		if a := seller.read(t, r); a.ChargesEnabled || !a.PayoutsEnabled || a.Capabilities["transfers"] != "active" || len(a.Capabilities) != 1 {
			t.Errorf("the account %+v, want transfers active, payouts on, charges off", a)
		}
	})
}
