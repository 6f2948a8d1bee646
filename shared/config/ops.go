package config

import (
	"fmt"
	"strconv"
)

// OpsConfig is what the reconciliation sweep and the status-change events
// read besides the service's settings.
type OpsConfig struct {
	// SweepRate bounds the sweep's Stripe requests per second
	// (SWEEP_STRIPE_RATE, default 10: well below Stripe's limits, which the
	// platform's payments share; at most MaxSweepRateTest or
	// MaxSweepRateLive, by the key's mode).
	SweepRate float64
	// EventBusName is the EventBridge bus status changes go to
	// (EVENT_BUS_NAME, default "default").
	EventBusName string
	// MetricsNamespace is the CloudWatch namespace of the sweep's metrics
	// (METRICS_NAMESPACE, default "ConnectOnboarding").
	MetricsNamespace string
}

// Defaults of OpsConfig.
const (
	DefaultSweepRate        = 10
	DefaultEventBus         = "default"
	DefaultMetricsNamespace = "ConnectOnboarding"
)

// The sweep's ceilings, by mode. Stripe allows 25 operations per second in
// test mode and 100 in live mode, counted per account and shared with
// everything else the platform does, its payments included
// (https://docs.stripe.com/rate-limits): the sweep takes at most four
// fifths of either, so the platform keeps room even while it runs.
const (
	MaxSweepRateTest = 20
	MaxSweepRateLive = 80
)

func loadOps(get func(name, def string) string, errs []error) (OpsConfig, []error) {
	o := OpsConfig{
		SweepRate:        DefaultSweepRate,
		EventBusName:     get("EVENT_BUS_NAME", DefaultEventBus),
		MetricsNamespace: get("METRICS_NAMESPACE", DefaultMetricsNamespace),
	}
	if raw := get("SWEEP_STRIPE_RATE", ""); raw != "" {
		rate, err := strconv.ParseFloat(raw, 64)
		if err != nil || rate <= 0 || rate > MaxSweepRateLive {
			errs = append(errs, fmt.Errorf("SWEEP_STRIPE_RATE: %q is not a rate of Stripe requests per second above 0 and at most %d", raw, MaxSweepRateLive))
		} else {
			o.SweepRate = rate
		}
	}
	return o, errs
}

// checkRate refuses a sweep rate above the ceiling of the key's mode: the
// mode is known only once the key is (Validate).
func (o OpsConfig) checkRate(livemode bool) error {
	ceiling, mode := MaxSweepRateTest, "a test"
	if livemode {
		ceiling, mode = MaxSweepRateLive, "a live"
	}
	if o.SweepRate > float64(ceiling) {
		return fmt.Errorf("SWEEP_STRIPE_RATE: %g requests/s is more than the %d allowed with %s key "+
			"(Stripe allows 25/s in test mode and 100/s in live mode, shared with the platform's payments)", o.SweepRate, ceiling, mode)
	}
	return nil
}
