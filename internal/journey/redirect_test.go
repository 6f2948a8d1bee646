package journey_test

import (
	"encoding/json"
	"net/url"
	"testing"

	"github.com/chromedp/chromedp"
)

// Issue 22, item 9: sign-in's `next` sends the user only to a path of the
// frontend's own origin, never to another site.

// nextCases are raw `next` values and where sign-in must go for each: ""
// means the onboarding home (the fallback).
var nextCases = []struct{ next, want string }{
	{"/onboarding?from=signin#top", "/onboarding?from=signin#top"},
	{"/onboarding/../onboarding", "/onboarding"},
	{"/%2F%2Fevil.example", "/%2F%2Fevil.example"}, // a path of this site, not a host
	{"//evil.example", ""},
	{"//evil.example/onboarding", ""},
	{`/\evil.example`, ""},   // browsers read a backslash as a slash
	{`\/evil.example`, ""},   // does not start with "/"
	{"/\t/evil.example", ""}, // the URL parser drops the tab: "//evil.example"
	{"/\n/evil.example", ""},
	{"/onboarding\x00", ""},
	{"/onboarding\u0085", ""}, // a C1 control character
	{"https://evil.example/onboarding", ""},
	{"http:evil.example", ""},
	{"javascript:alert(1)", ""},
	{"onboarding", ""},
	{"", ""},
}

func TestSafeNextKeepsOnlyPathsOfTheFrontendsOrigin(t *testing.T) {
	s := startStack(t, nil)
	b := newBrowser(t)
	b.do("open the frontend", chromedp.Navigate(s.FrontendURL), chromedp.WaitVisible(testid("dev-user")))
	raw := make([]string, len(nextCases))
	for i, c := range nextCases {
		raw[i] = c.next
	}
	arg, _ := json.Marshal(raw)
	got := evalAsync[[]string](b, `import("/js/redirect.js").then(m => `+string(arg)+
		`.map(n => m.safeNext(n, location.origin, "/fallback")))`)
	if len(got) != len(nextCases) {
		t.Fatalf("safeNext answered %d values for %d cases", len(got), len(nextCases))
	}
	for i, c := range nextCases {
		want := c.want
		if want == "" {
			want = "/fallback"
		}
		if got[i] != want {
			t.Errorf("safeNext(%q) = %q, want %q", c.next, got[i], want)
		}
	}
}

func TestSignInFollowsNextOnlyToThisSite(t *testing.T) {
	s := startStack(t, nil)
	b := newBrowser(t)
	for _, c := range []struct{ next, want string }{
		{"/onboarding?from=signin", "/onboarding?from=signin"},
		{`/\evil.example`, "/onboarding"},
		{"/\t/evil.example", "/onboarding"},
		{"//evil.example", "/onboarding"},
		{"https://evil.example/onboarding", "/onboarding"},
	} {
		b.do("open sign-in with next="+url.QueryEscape(c.next),
			chromedp.Navigate(s.FrontendURL+"/?next="+url.QueryEscape(c.next)),
			chromedp.WaitVisible(testid("dev-user")),
			chromedp.SendKeys(testid("dev-user"), "mallory"),
			chromedp.Click(testid("dev-signin")),
			chromedp.WaitVisible(testid("start-onboarding")),
		)
		if loc := b.location(); loc != s.FrontendURL+c.want {
			t.Errorf("next=%q: sign-in went to %s, want %s", c.next, loc, s.FrontendURL+c.want)
		}
	}
}
