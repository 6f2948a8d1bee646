package devserver

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/connectexpress/onboarding/internal/stripesim"
)

// `make dev` with an account the platform lost at Stripe while the
// account.application.deauthorized event never came (the simulator's
// RevokeAccess): Stripe answers 403 account_invalid, and whichever of the
// account's calls meets it first, the account is stored as deauthorized,
// with cause account_invalid in its history, and its routes answer so
// without calling Stripe again. Before, each answered 502
// stripe_unavailable ("retry shortly") for ever.
func TestAnAccountGoneAtStripeWithoutItsWebhookIsDeauthorized(t *testing.T) {
	r, _ := start(t, nil)
	staff := devToken(t, r, "sub=stella&groups=support,onboarding-staff")
	for _, first := range []struct {
		name, method, path string
		want               int
	}{
		{"status refresh", "GET", "/accounts/me?refresh=true", http.StatusOK},
		{"onboarding link", "POST", "/accounts/me/onboarding-link", http.StatusConflict},
		{"dashboard link", "POST", "/accounts/me/dashboard-link", http.StatusConflict},
	} {
		t.Run("first "+first.name, func(t *testing.T) {
			sub := "gone-" + strings.ReplaceAll(first.name, " ", "-")
			seller := devAccount(t, r, sub)
			if err := r.Sim.Outcome(seller.account, stripesim.OutcomeComplete, ""); err != nil {
				t.Fatal(err)
			}
			seller.waitStatus(t, r, "active")
			if err := r.Sim.RevokeAccess(seller.account); err != nil {
				t.Fatal(err)
			}

			resp, body := httpDo(t, first.method, r.APIURL+first.path, seller.token, "")
			if resp.StatusCode != first.want || (first.want == http.StatusConflict && !strings.Contains(body, `"account_deauthorized"`)) ||
				(first.want == http.StatusOK && !strings.Contains(body, `"status":"deauthorized"`)) {
				t.Fatalf("%s: %d %s", first.name, resp.StatusCode, body)
			}
			if got := seller.status(t, r); got != "deauthorized" {
				t.Fatalf("stored status %q, want deauthorized", got)
			}
			// Stripe is not asked again: each of these would meet a fault.
			for _, op := range []string{stripesim.OpRetrieveAccount, stripesim.OpCreateAccountLink, stripesim.OpCreateLoginLink} {
				r.Sim.InjectFault(stripesim.Fault{Op: op, Kind: stripesim.FaultServerError, Count: 5})
			}
			for _, then := range []struct {
				method, path string
				want         int
				code         string
			}{
				{"GET", "/accounts/me?refresh=true", http.StatusOK, `"status":"deauthorized"`},
				{"POST", "/accounts/me/onboarding-link", http.StatusConflict, `"account_deauthorized"`},
				{"POST", "/accounts/me/dashboard-link", http.StatusConflict, `"account_deauthorized"`},
			} {
				if resp, body := httpDo(t, then.method, r.APIURL+then.path, seller.token, ""); resp.StatusCode != then.want || !strings.Contains(body, then.code) {
					t.Errorf("then %s %s: %d %s, want %d %s without calling Stripe", then.method, then.path, resp.StatusCode, body, then.want, then.code)
				}
			}
			r.Sim.ClearFaults()

			_, body = httpDo(t, "GET", r.APIURL+"/admin/accounts/"+url.PathEscape(sub), staff, "")
			var h struct {
				StatusChanges []struct{ From, To, Cause string } `json:"status_changes"`
			}
			if _ = json.Unmarshal([]byte(body), &h); len(h.StatusChanges) == 0 || h.StatusChanges[0].From != "active" ||
				h.StatusChanges[0].To != "deauthorized" || h.StatusChanges[0].Cause != "account_invalid" {
				t.Errorf("history, newest first: %s", body)
			}
		})
	}
}

// A key Stripe refuses (a restricted key without the permission: 403
// without account_invalid) is the operator's to mend: 502, an ERROR line
// that names the setting, and the account stays as it was.
func TestARefusedKeyIsAnOperatorErrorAndMarksNoAccount(t *testing.T) {
	r, logs := startLogged(t, nil)
	seller := devAccount(t, r, "kim")
	r.Sim.InjectFault(stripesim.Fault{Op: stripesim.OpRetrieveAccount, Kind: stripesim.FaultKeyRefused, Count: 5})
	resp, body := httpDo(t, "GET", r.APIURL+"/accounts/me?refresh=true", seller.token, "")
	r.Sim.ClearFaults()
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, `"stripe_unavailable"`) {
		t.Fatalf("%d %s, want 502 stripe_unavailable", resp.StatusCode, body)
	}
	if got := seller.status(t, r); got != "onboarding" {
		t.Errorf("status %q: a refused key marked the account", got)
	}
	found := false
	for _, line := range logs.withMsg("request") {
		if line["level"] == "ERROR" && strings.Contains(line["error"].(string), "STRIPE_SECRET_KEY") {
			found = true
		}
	}
	if !found {
		t.Errorf("no ERROR line names STRIPE_SECRET_KEY: %v", logs.withMsg("request"))
	}
}

// Stripe sends every link of an account it rejected straight back to
// refresh_url. Rejected while its webhooks were lost, the account's link,
// followed as a browser does, ends on the onboarding page with
// ?error=account_unavailable within two refreshes, at most one extra link
// made. Before, each refresh made a link until LINKS_PER_HOUR was spent.
func TestARejectedAccountsLinkEndsOnAccountUnavailableWithinTwoHops(t *testing.T) {
	r, _ := start(t, nil)
	seller := devAccount(t, r, "rex")
	if err := r.Sim.MuteWebhooks(seller.account, true); err != nil {
		t.Fatal(err)
	}
	if err := r.Sim.Outcome(seller.account, stripesim.OutcomeReject, ""); err != nil {
		t.Fatal(err)
	}
	resp, body := httpDo(t, "POST", r.APIURL+"/accounts/me/onboarding-link", seller.token, "")
	var link struct{ URL string }
	if _ = json.Unmarshal([]byte(body), &link); resp.StatusCode != http.StatusOK || link.URL == "" {
		t.Fatalf("the link: %d %s (the stored account does not know it was rejected)", resp.StatusCode, body)
	}

	frontend := r.App.Config.Policy.OnboardingURL
	var refreshes, links int
	browser := &http.Client{CheckRedirect: func(req *http.Request, via []*http.Request) error {
		switch {
		case strings.HasPrefix(req.URL.String(), frontend):
			return http.ErrUseLastResponse // the frontend is not served here: stop at its URL
		case req.URL.Path == "/onboarding/refresh":
			refreshes++
		case strings.HasPrefix(req.URL.Path, "/setup/e/"):
			links++
		}
		if len(via) > 100 {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	got, err := browser.Get(link.URL)
	if err != nil {
		t.Fatal(err)
	}
	got.Body.Close()
	if location := got.Header.Get("Location"); location != frontend+"?error=account_unavailable" {
		t.Fatalf("the chain ended at %d %q after %d refreshes, want %s?error=account_unavailable", got.StatusCode, location, refreshes, frontend)
	}
	if refreshes > 2 || links > 1 {
		t.Errorf("%d refreshes and %d extra links, want at most 2 and 1", refreshes, links)
	}
	if got := seller.status(t, r); got != "rejected" {
		t.Errorf("stored status %q, want what Stripe said: rejected", got)
	}
}

func devToken(t *testing.T, r *Running, query string) string {
	t.Helper()
	resp, body := httpDo(t, "GET", r.APIURL+"/dev/token?"+query, "", "")
	var minted struct{ Token string }
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &minted) != nil || minted.Token == "" {
		t.Fatalf("/dev/token?%s: %d %s", query, resp.StatusCode, body)
	}
	return minted.Token
}
