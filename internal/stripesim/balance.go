package stripesim

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// Stripe refuses to reject a live-mode account while any of its balances
// is not zero: "Test-mode accounts can be rejected at any time. Live-mode
// accounts can only be rejected after all balances are zero."
// (https://docs.stripe.com/api/account/reject, API version 2023-10-16).
// The simulator keeps a balance per currency that a test or a developer
// sets (SetBalance, POST /_sim/accounts/{id}/balance), since it moves no
// money of its own.

// RejectBalanceRule says which accounts the simulator's reject refuses
// while a balance is not zero (SIM_REJECT_BALANCE_RULE).
type RejectBalanceRule string

const (
	// RejectBalanceLive is Stripe's rule: live-mode accounts only (the
	// default).
	RejectBalanceLive RejectBalanceRule = "live"
	// RejectBalanceAlways applies the rule to test-mode accounts too, which
	// Stripe does not: so that tests and `make dev`, which run on test
	// keys, can meet the refusal that live mode gives.
	RejectBalanceAlways RejectBalanceRule = "always"
)

// SetBalance sets an account's balance in currency (minor units, negative
// for money the account owes); 0 clears it.
func (s *Sim) SetBalance(accountID, currency string, amount int64) error {
	return s.withAccount(accountID, func(a *account) error {
		s.setBalance(a, currency, amount)
		return nil
	})
}

func (s *Sim) setBalance(a *account, currency string, amount int64) {
	currency = strings.ToLower(currency)
	if a.balances == nil {
		a.balances = map[string]int64{}
	}
	if amount == 0 {
		delete(a.balances, currency)
		return
	}
	a.balances[currency] = amount
}

// balanceRefusal is the reject's answer for an account the rule holds
// back, or nil. Stripe's reference gives the rule but not its error
// message; this one follows Stripe's message for the same rule on account
// deletion, as Stripe answers it ("For an account created with your
// live-mode key, you cannot delete the account when the balance in any
// currency is non-zero. Currencies with non-zero balances: gbp."), with
// reject for delete. The status and type are those of every refused
// request (400 invalid_request_error).
func (s *Sim) balanceRefusal(a *account) *apiError {
	if !a.livemode && s.opts.RejectBalanceRule != RejectBalanceAlways {
		return nil
	}
	var currencies []string
	for c, amount := range a.balances {
		if amount != 0 {
			currencies = append(currencies, c)
		}
	}
	if len(currencies) == 0 {
		return nil
	}
	slices.Sort(currencies)
	return invalidRequest("For an account created with your live-mode key, you cannot reject the account when the balance " +
		"in any currency is non-zero. Currencies with non-zero balances: " + strings.Join(currencies, ", ") + ".")
}

// alreadyRejected answers a reject of an account that is rejected. Stripe
// documents no answer for it; the simulator refuses, so that the
// production code is tested against the less forgiving of the two
// answers Stripe could give (a refusal, or the account as it is). The
// message is the simulator's own.
func alreadyRejected(id string) *apiError {
	return invalidRequest("The account " + id + " has already been rejected (local Stripe simulator).")
}

// balanceControl serves POST /_sim/accounts/{id}/balance with amount (minor
// units; 0 clears) and currency (default: the account's):
//
//	curl -XPOST $SIM/_sim/accounts/acct_.../balance -d amount=1500 -d currency=usd
func (s *Sim) balanceControl(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, invalidRequest("expected form parameters").body())
		return
	}
	amount, err := strconv.ParseInt(r.PostForm.Get("amount"), 10, 64)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, invalidParam("amount", "amount must be a whole number of minor units, such as 1500").body())
		return
	}
	currency := r.PostForm.Get("currency")
	err = s.withAccount(r.PathValue("id"), func(a *account) error {
		if currency == "" {
			currency = a.currency
		}
		if len(currency) != 3 {
			return errors.New("currency must be a three-letter ISO code, such as usd")
		}
		s.setBalance(a, currency, amount)
		return nil
	})
	if err != nil {
		writeControlError(w, r.PathValue("id"), "currency", err)
		return
	}
	writeJSON(w, http.StatusOK, []byte(fmt.Sprintf(`{"currency":%q,"amount":%d}`, strings.ToLower(currency), amount)))
}
