package config_test

import (
	"strings"
	"testing"

	"github.com/connectexpress/onboarding/shared/config"
)

func TestOpsSettings(t *testing.T) {
	c, _, err := load(t, base())
	if err != nil {
		t.Fatal(err)
	}
	if want := (config.OpsConfig{SweepRate: 10, EventBusName: "default", MetricsNamespace: "ConnectOnboarding"}); c.Ops != want {
		t.Errorf("defaults %+v, want %+v", c.Ops, want)
	}
	m := base()
	m["SWEEP_STRIPE_RATE"], m["EVENT_BUS_NAME"], m["METRICS_NAMESPACE"] = "2.5", "platform-bus", "ConnectOnboarding/prod"
	if c, _, err = load(t, m); err != nil || c.Ops != (config.OpsConfig{SweepRate: 2.5, EventBusName: "platform-bus", MetricsNamespace: "ConnectOnboarding/prod"}) {
		t.Errorf("set: %+v %v", c.Ops, err)
	}
	for _, bad := range []string{"0", "-1", "fast", "81"} {
		m := base()
		m["SWEEP_STRIPE_RATE"] = bad
		if _, _, err := load(t, m); err == nil || !strings.Contains(err.Error(), "SWEEP_STRIPE_RATE") {
			t.Errorf("SWEEP_STRIPE_RATE=%s: %v, want it refused by name", bad, err)
		}
	}
}

// Stripe allows 25 operations/s in test mode and 100 in live mode, shared
// with the platform's payments: the sweep may take at most 20 and 80.
func TestSweepRateIsBoundedByTheKeysMode(t *testing.T) {
	live := func(m map[string]string) map[string]string {
		m["STRIPE_SECRET_KEY"], m["FRONTEND_URL"], m["PUBLIC_API_URL"] = "sk_live_x", "https://app.example", "https://api.example"
		return m
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		rate string
		ok   bool
	}{
		{"test key at its ceiling", base(), "20", true},
		{"test key above its ceiling", base(), "21", false},
		{"test key at the live ceiling", base(), "80", false},
		{"live key at its ceiling", live(base()), "80", true},
		{"live key above its ceiling", live(base()), "81", false},
		{"live key at Stripe's whole limit", live(base()), "100", false},
		{"no key, STRIPE_MODE live", map[string]string{"STRIPE_MODE": "live", "FRONTEND_URL": "https://app.example", "PUBLIC_API_URL": "https://api.example"}, "80", true},
		{"no key, test mode by default", map[string]string{}, "25", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.env["SWEEP_STRIPE_RATE"] = tc.rate
			c, err := config.Load(env(tc.env))
			if err == nil {
				_, err = c.Validate(config.Needs{})
			}
			switch {
			case tc.ok && err != nil:
				t.Errorf("refused: %v", err)
			case !tc.ok && (err == nil || !strings.Contains(err.Error(), "SWEEP_STRIPE_RATE")):
				t.Errorf("err %v, want SWEEP_STRIPE_RATE=%s refused by name", err, tc.rate)
			}
		})
	}
}
