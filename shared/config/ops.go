package config

import (
	"fmt"
	"strconv"
)

// OpsConfig is what the reconciliation sweep and the status-change events
// read besides the service's settings.
type OpsConfig struct {
	// SweepRate bounds the sweep's Stripe requests per second
	// (SWEEP_STRIPE_RATE, default 20: below Stripe's limits, which the
	// platform's payments share).
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
	DefaultSweepRate        = 20
	DefaultEventBus         = "default"
	DefaultMetricsNamespace = "ConnectOnboarding"
	// maxSweepRate is Stripe's live-mode read limit: the sweep never needs
	// it all.
	maxSweepRate = 100
)

func loadOps(get func(name, def string) string, errs []error) (OpsConfig, []error) {
	o := OpsConfig{
		SweepRate:        DefaultSweepRate,
		EventBusName:     get("EVENT_BUS_NAME", DefaultEventBus),
		MetricsNamespace: get("METRICS_NAMESPACE", DefaultMetricsNamespace),
	}
	if raw := get("SWEEP_STRIPE_RATE", ""); raw != "" {
		rate, err := strconv.ParseFloat(raw, 64)
		if err != nil || rate <= 0 || rate > maxSweepRate {
			errs = append(errs, fmt.Errorf("SWEEP_STRIPE_RATE: %q is not a rate of Stripe requests per second above 0 and at most %d", raw, maxSweepRate))
		} else {
			o.SweepRate = rate
		}
	}
	return o, errs
}
