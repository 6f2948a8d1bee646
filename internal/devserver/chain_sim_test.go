package devserver

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"
)

// A refresh URL minted by a refresh keeps the expiry of the first URL in
// its chain, so a leaked link cannot renew itself: with
// REFRESH_TOKEN_TTL=12s, the first hop (6 s in) still makes a link, and
// the second, made once the first URL has expired, lands on the onboarding
// page with ?error=link_expired. Before, each hop's URL lived 12 s from
// that hop (this one until 18 s), and the chain went on for ever.
// Real time, as the dev server has no clock of its own to move: about 13 s.
func TestTheSecondHopAfterTheFirstURLsExpiryIsLinkExpired(t *testing.T) {
	r, _ := start(t, map[string]string{"REFRESH_TOKEN_TTL": "12s"})
	seller := devAccount(t, r, "chain")
	resp, body := httpDo(t, "POST", r.APIURL+"/accounts/me/onboarding-link", seller.token, "")
	// The first URL's token expires 12 s after it was stored, before this.
	firstExpiry := time.Now().Add(12 * time.Second)
	var link struct{ URL string }
	if _ = json.Unmarshal([]byte(body), &link); resp.StatusCode != http.StatusOK || link.URL == "" {
		t.Fatalf("onboarding link: %d %s", resp.StatusCode, body)
	}
	first, ok := r.Sim.Link(link.URL)
	if !ok {
		t.Fatalf("the simulator does not know the link %q", link.URL)
	}
	browser := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	hop := func(refreshURL string) string {
		t.Helper()
		resp, err := browser.Get(refreshURL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("refresh: %d, want 302", resp.StatusCode)
		}
		return resp.Header.Get("Location")
	}

	time.Sleep(6 * time.Second)
	second, ok := r.Sim.Link(hop(first.RefreshURL))
	if !ok {
		t.Fatal("the first hop, within the first URL's life, made no link")
	}
	time.Sleep(time.Until(firstExpiry.Add(time.Second)))
	if got, want := hop(second.RefreshURL), r.App.Config.Policy.ErrorPage("link_expired"); got != want {
		t.Fatalf("the second hop, after the first URL's expiry, went to %q, want %q", got, want)
	}
}
