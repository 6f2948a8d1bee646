package stripesim

import (
	"fmt"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// OptionsFromEnv reads the simulator's knobs:
//
//	SIM_LINK_TTL       how long an account link works, a Go duration (default 300s)
//	SIM_VERIFY_DELAY   how long "verification pending" lasts (default 2s)
//	SIM_CHAOS          webhook chaos: any of dup, shuffle, reverse, delay=500ms, comma-separated
//	SIM_RETRY_SCALE    how many times faster than Stripe's test-mode webhook retries
//	                   (30 min, 1 h, 2 h) redelivery runs (default 3600; 1 is Stripe's pace)
//	SIM_REJECT_BALANCE_RULE  whose reject a non-zero balance refuses: live (Stripe's, default) or always
//	SIM_TRANSFERS_ONLY_APPROVED  true: Stripe approved the platform for transfers-only accounts
//	SIM_PLATFORM_CAPABILITIES    capabilities the platform's Connect settings add (they stay inactive), comma-separated
//	SIM_EMBED_ORIGINS  origins of the platform pages that run the Connect.js stand-in, comma-separated
//	                   (e.g. http://localhost:5173; the dev server sets its FRONTEND_URL's)
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
	if raw := get("SIM_RETRY_SCALE"); raw != "" {
		scale, err := strconv.ParseFloat(raw, 64)
		if err != nil || !(scale >= 1) || math.IsInf(scale, 0) { // NaN too
			errs = append(errs, fmt.Sprintf("SIM_RETRY_SCALE: %q is not a number of at least 1, such as 3600", raw))
		} else {
			o.RetryScale = scale
		}
	}
	chaos, err := ParseChaos(get("SIM_CHAOS"))
	if err != nil {
		errs = append(errs, "SIM_CHAOS: "+err.Error())
	}
	o.Chaos = chaos
	switch rule := RejectBalanceRule(get("SIM_REJECT_BALANCE_RULE")); rule {
	case "", RejectBalanceLive, RejectBalanceAlways:
		o.RejectBalanceRule = rule
	default:
		errs = append(errs, fmt.Sprintf("SIM_REJECT_BALANCE_RULE: %q is not live or always", string(rule)))
	}
	switch v := strings.ToLower(get("SIM_TRANSFERS_ONLY_APPROVED")); v {
	case "", "false":
	case "true":
		o.TransfersOnlyApproved = true
	default:
		errs = append(errs, fmt.Sprintf("SIM_TRANSFERS_ONLY_APPROVED: %q is not true or false", v))
	}
	for _, c := range strings.Split(get("SIM_PLATFORM_CAPABILITIES"), ",") {
		switch c = strings.TrimSpace(c); {
		case c == "":
		case !slices.Contains(capabilityNames, c):
			errs = append(errs, fmt.Sprintf("SIM_PLATFORM_CAPABILITIES: %q is not a capability of API 2023-10-16", c))
		default:
			o.PlatformCapabilities = append(o.PlatformCapabilities, c)
		}
	}
	for _, page := range strings.Split(get("SIM_EMBED_ORIGINS"), ",") {
		switch page = strings.TrimSpace(page); {
		case page == "":
		case !isOrigin(page):
			errs = append(errs, fmt.Sprintf("SIM_EMBED_ORIGINS: %q is not an origin such as http://localhost:5173", page))
		default:
			o.EmbedOrigins = append(o.EmbedOrigins, page)
		}
	}
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

// isOrigin: scheme://host[:port] and nothing else, as browsers send Origin.
func isOrigin(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" &&
		u.Path == "" && u.RawQuery == "" && u.Fragment == "" && u.User == nil && u.Scheme+"://"+u.Host == raw
}
