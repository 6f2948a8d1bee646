package stripesim

import (
	"fmt"
	"strings"
	"time"
)

// OptionsFromEnv reads the simulator's knobs:
//
//	SIM_LINK_TTL       how long an account link works, a Go duration (default 300s)
//	SIM_VERIFY_DELAY   how long "verification pending" lasts (default 2s)
//	SIM_CHAOS          webhook chaos: any of dup, shuffle, reverse, delay=500ms, comma-separated
//
// An empty variable counts as unset.
func OptionsFromEnv(lookupEnv func(string) (string, bool)) (Options, error) {
	get := func(name string) string { v, _ := lookupEnv(name); return strings.TrimSpace(v) }
	var o Options
	var errs []string
	duration := func(name string) time.Duration {
		raw := get(name)
		if raw == "" {
			return 0
		}
		d, err := time.ParseDuration(raw)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Sprintf("%s: %q is not a positive Go duration such as 10s", name, raw))
			return 0
		}
		return d
	}
	o.LinkTTL = duration("SIM_LINK_TTL")
	o.VerifyDelay = duration("SIM_VERIFY_DELAY")
	chaos, err := ParseChaos(get("SIM_CHAOS"))
	if err != nil {
		errs = append(errs, "SIM_CHAOS: "+err.Error())
	}
	o.Chaos = chaos
	if len(errs) > 0 {
		return Options{}, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return o, nil
}

// ParseChaos reads "dup,shuffle,reverse,delay=500ms".
func ParseChaos(raw string) (Chaos, error) {
	var c Chaos
	for _, part := range strings.Split(raw, ",") {
		part = strings.TrimSpace(part)
		switch {
		case part == "" || part == "off":
		case part == "dup":
			c.Duplicate = true
		case part == "shuffle":
			c.Shuffle = true
		case part == "reverse":
			c.Reverse = true
		case strings.HasPrefix(part, "delay="):
			d, err := time.ParseDuration(strings.TrimPrefix(part, "delay="))
			if err != nil || d <= 0 || d > time.Minute {
				return Chaos{}, fmt.Errorf("%q: delay must be a Go duration up to 1m, such as delay=500ms", part)
			}
			c.MaxDelay = d
		default:
			return Chaos{}, fmt.Errorf("%q is not dup, shuffle, reverse or delay=<duration>", part)
		}
	}
	return c, nil
}
