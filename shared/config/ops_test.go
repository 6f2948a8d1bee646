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
	if want := (config.OpsConfig{SweepRate: 20, EventBusName: "default", MetricsNamespace: "ConnectOnboarding"}); c.Ops != want {
		t.Errorf("defaults %+v, want %+v", c.Ops, want)
	}
	m := base()
	m["SWEEP_STRIPE_RATE"], m["EVENT_BUS_NAME"], m["METRICS_NAMESPACE"] = "2.5", "platform-bus", "ConnectOnboarding/prod"
	if c, _, err = load(t, m); err != nil || c.Ops != (config.OpsConfig{SweepRate: 2.5, EventBusName: "platform-bus", MetricsNamespace: "ConnectOnboarding/prod"}) {
		t.Errorf("set: %+v %v", c.Ops, err)
	}
	for _, bad := range []string{"0", "-1", "fast", "101"} {
		m := base()
		m["SWEEP_STRIPE_RATE"] = bad
		if _, _, err := load(t, m); err == nil || !strings.Contains(err.Error(), "SWEEP_STRIPE_RATE") {
			t.Errorf("SWEEP_STRIPE_RATE=%s: %v, want it refused by name", bad, err)
		}
	}
}
