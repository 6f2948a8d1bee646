package stripesim_test

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/connectexpress/onboarding/internal/stripesim"
)

// Stripe shows tos_acceptance.service_agreement only for the recipient
// agreement; a full-agreement account (Stripe's default) has none. The
// 2023-10-16 spec types it as a string that is never null (spec3.json,
// components.schemas.account_tos_acceptance), and stripe-mock's account
// fixture leaves it out, so "none" is the key's absence. The adapter reads
// an absent agreement as full (shared/stripeconnect).
func TestServiceAgreementIsShownOnlyWhenRecipient(t *testing.T) {
	s := newSim(t, stripesim.Options{})
	k := newSink(t, 0)
	register(t, s, k, true)
	for _, tt := range []struct {
		name, agreement string // "" sends none
		want            any    // tos_acceptance.service_agreement; nil means absent
	}{
		{"full, sent by the platform", "full", nil},
		{"none sent: Stripe's default, full", "", nil},
		{"recipient", "recipient", "recipient"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := form("type", "express", "country", "US", "capabilities[transfers][requested]", "true")
			if tt.agreement != "" {
				f.Set("tos_acceptance[service_agreement]", tt.agreement)
			}
			if tt.agreement != "recipient" {
				f.Set("capabilities[card_payments][requested]", "true")
			}
			created := call(t, s.url, "POST", "/v1/accounts", f)
			if created.status != 200 {
				t.Fatalf("create: %d %s", created.status, created.raw)
			}
			id := created.str("id")
			if err := s.sim.Outcome(id, stripesim.OutcomeComplete, ""); err != nil {
				t.Fatal(err)
			}
			retrieved := call(t, s.url, "GET", "/v1/accounts/"+id, nil)
			var event map[string]any
			waitFor(t, "account.updated", 5*time.Second, func() bool {
				events, _ := k.snapshot()
				for _, ev := range events {
					if ev["account"] == id && ev["type"] == "account.updated" {
						event = ev["data"].(map[string]any)["object"].(map[string]any)
						return true
					}
				}
				return false
			})
			for name, obj := range map[string]map[string]any{"create": created.body, "retrieve": retrieved.body, "account.updated": event} {
				tos, _ := obj["tos_acceptance"].(map[string]any)
				got, present := tos["service_agreement"]
				if tt.want == nil && present {
					t.Errorf("%s: tos_acceptance %v, want no service_agreement", name, tos)
				}
				if tt.want != nil && got != tt.want {
					t.Errorf("%s: service_agreement %v, want %v", name, got, tt.want)
				}
			}
		})
	}
}

// Stripe's test mode retries a failed delivery three times over a few hours
// (https://docs.stripe.com/webhooks#automatic-retries); the simulator runs
// that schedule (30 min, 1 h, 2 h) RetryScale times faster, so a test sees
// Stripe give up in seconds.
func TestWebhookRetriesFollowStripesTestModeScheduleScaled(t *testing.T) {
	for _, tt := range []struct {
		name  string
		scale float64 // 0: the default
		gaps  []time.Duration
	}{
		{"an hour a tenth of a second", 36000, []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond}},
		{"the default: an hour a second", 0, []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newSim(t, stripesim.Options{RetryScale: tt.scale})
			k := newSink(t, 1000)
			register(t, s, k, true)
			id := createAccount(t, s, "retries")
			call(t, s.url, "POST", "/v1/accounts/"+id, form("metadata[x]", "1")) // one account.updated
			waitFor(t, "giving up", 10*time.Second, func() bool { d := s.sim.Deliveries(); return len(d) == 1 && d[0].GaveUp })
			_, times := k.snapshot()
			if len(times) != 1+len(tt.gaps) {
				t.Fatalf("%d attempts, want the delivery and Stripe's three retries", len(times))
			}
			for i, want := range tt.gaps {
				gap := times[i+1].Sub(times[i])
				if gap < want || gap > 2*want+250*time.Millisecond {
					t.Errorf("retry %d came %v after the attempt before, want %v", i+1, gap, want)
				}
			}
			if d := s.sim.Deliveries()[0]; d.Attempts != 4 || d.Delivered || d.LastStatus != 500 {
				t.Errorf("delivery %+v", d)
			}
		})
	}
}

func TestRetryScaleFromEnv(t *testing.T) {
	env := func(v string) func(string) (string, bool) {
		return func(k string) (string, bool) {
			if k == "SIM_RETRY_SCALE" {
				return v, true
			}
			return "", false
		}
	}
	for raw, want := range map[string]float64{"": 0, "3600": 3600, "1": 1, " 36000 ": 36000, "1.5": 1.5} {
		if o, err := stripesim.OptionsFromEnv(env(raw)); err != nil || o.RetryScale != want {
			t.Errorf("SIM_RETRY_SCALE=%q: %v, %v; want %v", raw, o.RetryScale, err, want)
		}
	}
	for _, bad := range []string{"fast", "0", "-10", "0.5", "Inf", "NaN"} {
		if _, err := stripesim.OptionsFromEnv(env(bad)); err == nil || !strings.Contains(err.Error(), "SIM_RETRY_SCALE") {
			t.Errorf("SIM_RETRY_SCALE=%q: %v, want an error naming it", bad, err)
		}
	}
}

// The simulator's refusals carry Stripe's own messages where they are known
// (see the comments at each), so code and people that match on them see what
// Stripe would say.
func TestErrorMessagesAreStripesWords(t *testing.T) {
	s := newSim(t, stripesim.Options{})
	id := createAccount(t, s, "messages")
	first := call(t, s.url, "POST", "/v1/accounts", form("type", "express"), "Idempotency-Key", "messages-k1")
	if first.status != 200 {
		t.Fatalf("idempotent create: %d %s", first.status, first.raw)
	}
	s.sim.InjectFault(stripesim.Fault{Op: stripesim.OpListWebhookEndpoints, Kind: stripesim.FaultRateLimit})
	for _, tt := range []struct {
		name, method, path string
		form               url.Values
		headers            []string
		status             int
		code, message      string
	}{
		{"no API key", "GET", "/v1/accounts", nil, []string{"Authorization", ""}, 401, "",
			"You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth " +
				"(e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, " +
				"or we can help at https://support.stripe.com/."},
		{"an unknown parameter", "POST", "/v1/accounts", form("type", "express", "nickname", "x"), nil, 400, "parameter_unknown",
			"Received unknown parameter: nickname"},
		{"a missing required parameter", "POST", "/v1/accounts", form("country", "US"), nil, 400, "parameter_missing",
			"Missing required param: type."},
		{"an empty string that cannot unset", "POST", "/v1/accounts", form("type", "express", "email", ""), nil, 400, "parameter_invalid_empty",
			"You passed an empty string for 'email'. We assume empty values are an attempt to unset a parameter; however 'email' " +
				"cannot be unset. You should remove 'email' from your request or supply a non-empty value."},
		{"not an integer", "GET", "/v1/accounts", form("limit", "many"), nil, 400, "parameter_invalid_integer",
			"Invalid integer: many"},
		{"a limit below one", "GET", "/v1/accounts", form("limit", "0"), nil, 400, "",
			"This value must be greater than or equal to 1."},
		{"an unknown URL", "GET", "/v1/balance_transactions", nil, nil, 404, "",
			"Unrecognized request URL (GET: /v1/balance_transactions). Please see https://stripe.com/docs or we can help at https://support.stripe.com/."},
		{"a login link before onboarding", "POST", "/v1/accounts/" + id + "/login_links", nil, nil, 400, "",
			"Cannot create a login link for an account that has not completed onboarding."},
		{"an idempotency key reused with other parameters", "POST", "/v1/accounts", form("type", "express", "email", "other@example.com"),
			[]string{"Idempotency-Key", "messages-k1"}, 400, "",
			"Keys for idempotent requests can only be used with the same parameters they were first used with. " +
				"Try using a key other than 'messages-k1' if you meant to execute a different request."},
		{"too many requests", "GET", "/v1/webhook_endpoints", nil, nil, 429, "rate_limit",
			"Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits."},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := call(t, s.url, tt.method, tt.path, tt.form, tt.headers...)
			if got.status != tt.status || got.errField("code") != tt.code || got.errField("message") != tt.message {
				t.Errorf("%d %q %q\nwant %d %q %q", got.status, got.errField("code"), got.errField("message"), tt.status, tt.code, tt.message)
			}
		})
	}
}
