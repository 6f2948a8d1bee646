package devserver

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/connectexpress/onboarding/internal/stripesim"
)

// queueAccount is an account of the staff list or detail, with what the
// console shows of it.
type queueAccount struct {
	UserID       string  `json:"user_id"`
	Review       string  `json:"review"`
	Email        *string `json:"email"`
	BusinessName *string `json:"business_name"`
	Signals      []struct {
		Code   string `json:"code"`
		Detail string `json:"detail"`
	} `json:"signals"`
}

func (a queueAccount) codes() []string {
	out := []string{}
	for _, s := range a.Signals {
		out = append(out, s.Code)
	}
	return out
}

// TestTheReviewQueueOverHTTP runs `make dev` as it starts (the simulator,
// the in-process engine): accounts enter GET /admin/accounts?review=pending
// when their holder submits at Stripe, oldest submission first, page by
// page; a decision takes them out; two users given the same email in other
// case carry duplicate_email, which the detail explains with the other
// user's id.
func TestTheReviewQueueOverHTTP(t *testing.T) {
	r, _ := start(t, nil)
	create := func(sub, email string, profile ...string) devUser {
		t.Helper()
		_, body := httpDo(t, "GET", r.APIURL+"/dev/token?sub="+sub, "", "")
		var minted struct{ Token string }
		_ = json.Unmarshal([]byte(body), &minted)
		extra := ""
		if len(profile) > 0 {
			extra = `,"business_profile":{"name":` + strconv.Quote(profile[0]) + `}`
		}
		resp, body := httpDo(t, "POST", r.APIURL+"/accounts", minted.Token, `{"business_type":"individual","email":"`+email+`"`+extra+`}`)
		var acct struct {
			AccountID string `json:"account_id"`
		}
		if _ = json.Unmarshal([]byte(body), &acct); resp.StatusCode != http.StatusCreated {
			t.Fatalf("create %s: %d %s", sub, resp.StatusCode, body)
		}
		return devUser{token: minted.Token, account: acct.AccountID}
	}
	// Created in this order; they submit at Stripe in another.
	never := create("never", "never@example.com")
	ben := create("ben", "seller@example.com")
	ann := create("ann", "Seller@Example.COM", "Ann's <i>Antiques</i>")
	cat := create("cat", "cat@example.com")
	for _, u := range []devUser{ann, cat, ben} {
		if err := r.Sim.Outcome(u.account, stripesim.OutcomeComplete, ""); err != nil {
			t.Fatal(err)
		}
		u.waitStatus(t, r, "active")
	}
	never.waitStatus(t, r, "onboarding")

	_, body := httpDo(t, "GET", r.APIURL+"/dev/token?sub=stella&groups=onboarding-staff", "", "")
	var minted struct{ Token string }
	_ = json.Unmarshal([]byte(body), &minted)
	staff := minted.Token
	queue := func(query string) (users []string, accounts map[string]queueAccount) {
		t.Helper()
		accounts = map[string]queueAccount{}
		cursor := ""
		for pages := 1; ; pages++ {
			q := "/admin/accounts?review=pending&limit=1" + query
			if cursor != "" {
				q += "&cursor=" + url.QueryEscape(cursor)
			}
			resp, body := httpDo(t, "GET", r.APIURL+q, staff, "")
			var page struct {
				Accounts   []queueAccount `json:"accounts"`
				NextCursor *string        `json:"next_cursor"`
			}
			if err := json.Unmarshal([]byte(body), &page); resp.StatusCode != 200 || err != nil {
				t.Fatalf("%s: %d %s", q, resp.StatusCode, body)
			}
			for _, a := range page.Accounts {
				users, accounts[a.UserID] = append(users, a.UserID), a
			}
			if page.NextCursor == nil || pages > 10 {
				return users, accounts
			}
			cursor = *page.NextCursor
		}
	}
	users, accounts := queue("")
	if want := []string{"ann", "cat", "ben"}; !slices.Equal(users, want) {
		t.Errorf("the queue, page by page: %v, want %v (by submission; never has not submitted)", users, want)
	}
	for user, want := range map[string][]string{"ann": {"duplicate_email"}, "ben": {"duplicate_email"}, "cat": {}} {
		if got := accounts[user].codes(); !slices.Equal(got, want) {
			t.Errorf("%s's signals in the queue: %v, want %v", user, got, want)
		}
	}
	if a := accounts["ann"]; a.Email == nil || *a.Email != "Seller@Example.COM" || a.BusinessName == nil || *a.BusinessName != "Ann's <i>Antiques</i>" {
		t.Errorf("ann's email and business name in the queue: %v, %v", a.Email, a.BusinessName)
	}
	if a := accounts["cat"]; a.BusinessName != nil {
		t.Errorf("cat's business name %q, want null: none was given", *a.BusinessName)
	}

	resp, body := httpDo(t, "GET", r.APIURL+"/admin/accounts/ann", staff, "")
	var detail queueAccount
	if _ = json.Unmarshal([]byte(body), &detail); resp.StatusCode != 200 || !slices.Equal(detail.codes(), []string{"duplicate_email"}) ||
		detail.Signals[0].Detail != "the same email is on 1 other user's account: ben" {
		t.Errorf("ann's detail: %d %s", resp.StatusCode, body)
	}

	if resp, body := httpDo(t, "POST", r.APIURL+"/admin/accounts/cat/review", staff, `{"decision":"approve","note":"known seller"}`); resp.StatusCode != 200 {
		t.Fatalf("approve cat: %d %s", resp.StatusCode, body)
	}
	if users, _ := queue(""); !slices.Equal(users, []string{"ann", "ben"}) {
		t.Errorf("the queue after cat's approval: %v, want [ann ben]", users)
	}
	if users, _ := queue("&status=restricted"); len(users) != 0 {
		t.Errorf("the queue's restricted accounts: %v, want none", users)
	}
}

// TestAnAccountStripesRiskChecksHoldCarriesTheStripeReviewSignal: when
// Stripe's own review holds a submitted account (disabled_reason
// under_review or listed, which the simulator's Hold gives as Stripe
// does), its account.updated reaches the record and the staff detail
// carries stripe_review, naming the reason.
func TestAnAccountStripesRiskChecksHoldCarriesTheStripeReviewSignal(t *testing.T) {
	for _, reason := range []string{"under_review", "listed"} {
		t.Run(reason, func(t *testing.T) {
			r, _ := start(t, nil)
			u := devAccount(t, r, "held")
			if err := r.Sim.Outcome(u.account, stripesim.OutcomeComplete, ""); err != nil {
				t.Fatal(err)
			}
			u.waitStatus(t, r, "active")
			if err := r.Sim.Hold(u.account, reason); err != nil {
				t.Fatal(err)
			}
			_, body := httpDo(t, "GET", r.APIURL+"/dev/token?sub=stella&groups=onboarding-staff", "", "")
			var minted struct{ Token string }
			_ = json.Unmarshal([]byte(body), &minted)
			deadline := time.Now().Add(10 * time.Second)
			for {
				_, body := httpDo(t, "GET", r.APIURL+"/admin/accounts/held", minted.Token, "")
				var detail queueAccount
				_ = json.Unmarshal([]byte(body), &detail)
				for _, sig := range detail.Signals {
					if sig.Code == "stripe_review" {
						if !strings.Contains(sig.Detail, reason) {
							t.Errorf("stripe_review says %q, want the reason %s", sig.Detail, reason)
						}
						return
					}
				}
				if time.Now().After(deadline) {
					t.Fatalf("no stripe_review after Stripe held the account (%s): %s", reason, body)
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}
