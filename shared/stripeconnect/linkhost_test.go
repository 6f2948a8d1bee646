package stripeconnect

import "testing"

func TestLinkHostsAllowOnlyStripeOrTheDevelopmentBase(t *testing.T) {
	tests := []struct {
		apiBase, link string
		ok            bool
	}{
		{"", "https://connect.stripe.com/setup/e/acct_1/abc", true},
		{"", "https://CONNECT.stripe.com/express/acct_1/xyz", true},
		{"", "http://connect.stripe.com/setup/e/acct_1/abc", false},
		{"", "https://connect.stripe.com.evil.example/setup", false},
		{"", "https://evil.example/connect.stripe.com", false},
		{"", "https://user@connect.stripe.com/setup", false},
		{"", "https://pakrym-manage-mydev.dev.stripe.me/setup/s/acct_1/x", false},
		{"", "javascript:alert(1)", false},
		{"", "/setup/relative", false},
		{"http://127.0.0.1:12111", "http://127.0.0.1:12111/sim/onboarding/lnk_1", true},
		{"http://127.0.0.1:12111", "http://127.0.0.1:9999/sim/onboarding/lnk_1", false},
		{"http://127.0.0.1:12111", "https://127.0.0.1:12111/sim/onboarding/lnk_1", false},
		{"http://127.0.0.1:12111", "https://connect.stripe.com/setup/e/acct_1/abc", true},
		{"http://127.0.0.1:12111", "https://pakrym-manage-mydev.dev.stripe.me/setup/s/acct_1/x", true},
		{"http://127.0.0.1:12111", "http://pakrym-manage-mydev.dev.stripe.me/setup/s/acct_1/x", false},
		{"http://127.0.0.1:12111", "https://evil.example/setup", false},
	}
	for _, tt := range tests {
		err := linkHostsFor(tt.apiBase).check(tt.link)
		if (err == nil) != tt.ok {
			t.Errorf("base %q, link %q: err %v, want ok=%v", tt.apiBase, tt.link, err, tt.ok)
		}
	}
}
