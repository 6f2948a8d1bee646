package devserver

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/connectexpress/onboarding/internal/stripesim"
)

// noRedirect shows each redirect instead of following it.
var noRedirect = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Timeout:       10 * time.Second,
}

// finishHostedPage opens an account link as the browser does and submits
// outcome on the simulator's hosted page.
func finishHostedPage(t *testing.T, link, outcome string) {
	t.Helper()
	resp, err := noRedirect.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	i := strings.Index(string(page), `action="/setup/s/`)
	if resp.StatusCode != http.StatusOK || i < 0 {
		t.Fatalf("the hosted page: %d, no form", resp.StatusCode)
	}
	action := string(page[i+len(`action="`):])
	action = action[:strings.IndexByte(action, '"')]
	u, _ := url.Parse(link)
	sub, err := noRedirect.PostForm(u.Scheme+"://"+u.Host+action, url.Values{"outcome": {outcome}})
	if err != nil {
		t.Fatal(err)
	}
	sub.Body.Close()
	if sub.StatusCode != http.StatusSeeOther {
		t.Fatalf("submitting %s: %d, want 303 to return_url", outcome, sub.StatusCode)
	}
}

type futureView struct {
	Status             string
	FutureRequirements struct {
		CurrentlyDue    []string   `json:"currently_due"`
		CurrentDeadline *time.Time `json:"current_deadline"`
	} `json:"future_requirements"`
}

// TestFutureRequirementsAreCollectedOnlyWhenTheLinkIncludesThem: Stripe
// announces a requirement due in 30 days on an active account. A link
// minted while the platform did not know of it omits it, and finishing the
// hosted page leaves it due (restricted_soon); once the platform knows, the
// refresh route's link includes it, and finishing collects it (active).
func TestFutureRequirementsAreCollectedOnlyWhenTheLinkIncludesThem(t *testing.T) {
	r, _ := start(t, nil)
	seller := devAccount(t, r, "fay")
	if err := r.Sim.Outcome(seller.account, stripesim.OutcomeComplete, ""); err != nil {
		t.Fatal(err)
	}
	seller.waitStatus(t, r, "active")
	// read answers from storage, which the webhooks keep current.
	read := func(query string) futureView {
		t.Helper()
		resp, body := httpDo(t, "GET", r.APIURL+"/accounts/me"+query, seller.token, "")
		var v futureView
		if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &v) != nil {
			t.Fatalf("GET /accounts/me%s: %d %s", query, resp.StatusCode, body)
		}
		return v
	}

	// The rule change's account.updated is lost: the stored account knows
	// nothing of it, so its link cannot ask for it.
	if err := r.Sim.MuteWebhooks(seller.account, true); err != nil {
		t.Fatal(err)
	}
	if err := r.Sim.Outcome(seller.account, stripesim.OutcomeRestricted, "future"); err != nil {
		t.Fatal(err)
	}
	if err := r.Sim.MuteWebhooks(seller.account, false); err != nil {
		t.Fatal(err)
	}
	resp, body := httpDo(t, "POST", r.APIURL+"/accounts/me/onboarding-link", seller.token, "")
	var link struct{ URL string }
	if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &link) != nil {
		t.Fatalf("onboarding link: %d %s", resp.StatusCode, body)
	}
	omitted, ok := r.Sim.Link(link.URL)
	if !ok || omitted.IncludesFutureRequirements || omitted.Collect != "currently_due" {
		t.Fatalf("link %+v: want currently_due without future requirements, the account stored has none", omitted)
	}
	finishHostedPage(t, link.URL, stripesim.OutcomeComplete)
	seller.waitStatus(t, r, "restricted_soon") // the finish's account.updated
	v := read("")
	if v.Status != "restricted_soon" || !slices.Equal(v.FutureRequirements.CurrentlyDue, []string{"individual.verification.additional_document"}) {
		t.Fatalf("after a link that omitted it: %+v, want the future requirement still due (restricted_soon)", v)
	}
	if d := v.FutureRequirements.CurrentDeadline; d == nil || d.Sub(time.Now().Add(30*24*time.Hour)).Abs() > time.Minute {
		t.Errorf("future_requirements.current_deadline = %v, want in 30 days", d)
	}

	// The first link's refresh URL mints the next link: now it includes them.
	resp, err := noRedirect.Get(omitted.RefreshURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	next := resp.Header.Get("Location")
	included, ok := r.Sim.Link(next)
	if resp.StatusCode != http.StatusFound || !ok || !included.IncludesFutureRequirements || included.Collect != "currently_due" {
		t.Fatalf("refresh: %d to a link %+v, want one that includes future requirements", resp.StatusCode, included)
	}
	finishHostedPage(t, next, stripesim.OutcomeComplete)
	seller.waitStatus(t, r, "active")
	if v := read(""); v.Status != "active" || len(v.FutureRequirements.CurrentlyDue) != 0 || v.FutureRequirements.CurrentDeadline != nil {
		t.Errorf("after a link that included it: %+v, want active with nothing in future_requirements", v)
	}
}
