package bench

import (
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/connectexpress/onboarding/shared/config"
)

// Scenario is one kind of route call. Prepare runs untimed before each call
// and returns the call itself.
type Scenario struct {
	Name    string
	Want    int
	Prepare func(h *Harness, s *state) (func() events.APIGatewayV2HTTPResponse, error)
}

// state keeps what scenarios share on one harness.
type state struct {
	user, dupUser, refreshedUser string
	created                      int64
	// Users who make links are replaced before LINKS_PER_HOUR (the
	// harness's default, 20) would refuse them: a benchmark calls a route
	// thousands of times.
	linking, refreshing, dashboard, sessions rotating
	// Users who update prefill are replaced before UPDATES_PER_HOUR (10).
	updating rotating
	// queued: the staff review queue holds a full page (staff.go).
	queued bool
}

// rotating is a user who may make `left` more links before a new one is made.
type rotating struct {
	user string
	left int
	// limit is the per-user hourly limit the user is spending; 0 means
	// LINKS_PER_HOUR.
	limit int
}

// next returns the user for one call costing `cost` links, making a new
// one with fresh (which makes `setup` links) when the current one has too
// few links left.
func (r *rotating) next(cost, setup int, fresh func() (string, error)) (string, error) {
	if r.left < cost {
		u, err := fresh()
		if err != nil {
			return "", err
		}
		limit := r.limit
		if limit == 0 {
			limit = config.DefaultLinksPerHour
		}
		r.user, r.left = u, limit-setup
	}
	r.left -= cost
	return r.user, nil
}

// active makes a new user whose details are submitted.
func (s *state) active(h *Harness) (string, error) {
	u, err := h.Onboarded()
	if err != nil {
		return "", err
	}
	if r := h.Webhook(fmt.Sprintf("evt_active_%s", u), u, s.nextCreated()+1_000_000, true); r.StatusCode != 200 {
		return "", fmt.Errorf("activate: %d %s", r.StatusCode, r.Body)
	}
	return u, nil
}

func (s *state) onboarded(h *Harness) (string, error) {
	if s.user == "" {
		u, err := h.Onboarded()
		if err != nil {
			return "", err
		}
		s.user = u
	}
	return s.user, nil
}

func (s *state) nextCreated() int64 {
	if s.created == 0 {
		s.created = time.Now().Unix() - 86400
	}
	s.created++
	return s.created
}

// Scenarios are the route calls `make bench` measures.
var Scenarios = []Scenario{
	{"create (new user)", 201, func(h *Harness, _ *state) (func() events.APIGatewayV2HTTPResponse, error) {
		u := h.NewUser()
		return func() events.APIGatewayV2HTTPResponse { return h.Call("POST", "/accounts", u, nil, nil, "{}") }, nil
	}},
	{"create (existing)", 200, func(h *Harness, s *state) (func() events.APIGatewayV2HTTPResponse, error) {
		u, err := s.onboarded(h)
		return func() events.APIGatewayV2HTTPResponse { return h.Call("POST", "/accounts", u, nil, nil, "{}") }, err
	}},
	// The first link takes the KYC lock; later ones find it taken.
	{"onboarding link", 200, func(h *Harness, _ *state) (func() events.APIGatewayV2HTTPResponse, error) {
		u, err := h.Onboarded()
		return func() events.APIGatewayV2HTTPResponse {
			return h.Call("POST", "/accounts/me/onboarding-link", u, nil, nil, "")
		}, err
	}},
	{"onboarding link (again)", 200, func(h *Harness, s *state) (func() events.APIGatewayV2HTTPResponse, error) {
		u, err := s.linking.next(1, 1, func() (string, error) {
			u, err := h.Onboarded()
			if err == nil {
				_, err = h.RefreshToken(u) // its first link
			}
			return u, err
		})
		return func() events.APIGatewayV2HTTPResponse {
			return h.Call("POST", "/accounts/me/onboarding-link", u, nil, nil, "")
		}, err
	}},
	// Embedded onboarding: the first session takes the KYC lock as the
	// first link does; later ones find it taken. Both spend LINKS_PER_HOUR.
	{"onboarding session", 200, func(h *Harness, _ *state) (func() events.APIGatewayV2HTTPResponse, error) {
		u, err := h.Onboarded()
		return func() events.APIGatewayV2HTTPResponse {
			return h.Call("POST", "/accounts/me/onboarding-session", u, nil, nil, "")
		}, err
	}},
	{"onboarding session (again)", 200, func(h *Harness, s *state) (func() events.APIGatewayV2HTTPResponse, error) {
		u, err := s.sessions.next(1, 1, func() (string, error) {
			u, err := h.Onboarded()
			if err == nil {
				if r := h.Call("POST", "/accounts/me/onboarding-session", u, nil, nil, ""); r.StatusCode != 200 {
					err = fmt.Errorf("first session: %d %s", r.StatusCode, r.Body)
				}
			}
			return u, err
		})
		return func() events.APIGatewayV2HTTPResponse {
			return h.Call("POST", "/accounts/me/onboarding-session", u, nil, nil, "")
		}, err
	}},
	{"refresh", 302, func(h *Harness, s *state) (func() events.APIGatewayV2HTTPResponse, error) {
		u, err := s.refreshing.next(2, 0, h.Onboarded) // the link that carries the token, and the refresh
		if err != nil {
			return nil, err
		}
		token, err := h.RefreshToken(u)
		return func() events.APIGatewayV2HTTPResponse {
			return h.Call("GET", "/onboarding/refresh", "", map[string]string{"token": token}, nil, "")
		}, err
	}},
	{"status", 200, func(h *Harness, s *state) (func() events.APIGatewayV2HTTPResponse, error) {
		u, err := s.onboarded(h)
		return func() events.APIGatewayV2HTTPResponse { return h.Call("GET", "/accounts/me", u, nil, nil, "") }, err
	}},
	// An account not re-read within STATUS_REFRESH_INTERVAL: Stripe is read.
	{"status with refresh", 200, func(h *Harness, _ *state) (func() events.APIGatewayV2HTTPResponse, error) {
		u, err := h.Onboarded()
		return func() events.APIGatewayV2HTTPResponse {
			return h.Call("GET", "/accounts/me", u, map[string]string{"refresh": "true"}, nil, "")
		}, err
	}},
	// Within the interval the stored state answers.
	{"status with refresh (within the interval)", 200, func(h *Harness, s *state) (func() events.APIGatewayV2HTTPResponse, error) {
		if s.refreshedUser == "" {
			u, err := h.Onboarded()
			if err != nil {
				return nil, err
			}
			if r := h.Call("GET", "/accounts/me", u, map[string]string{"refresh": "true"}, nil, ""); r.StatusCode != 200 {
				return nil, fmt.Errorf("first refresh: %d %s", r.StatusCode, r.Body)
			}
			s.refreshedUser = u
		}
		u := s.refreshedUser
		return func() events.APIGatewayV2HTTPResponse {
			return h.Call("GET", "/accounts/me", u, map[string]string{"refresh": "true"}, nil, "")
		}, nil
	}},
	// Before the first link: the update takes a slot of the user's
	// UPDATES_PER_HOUR, and holds the prefill lease while it goes to Stripe.
	{"prefill update", 200, func(h *Harness, s *state) (func() events.APIGatewayV2HTTPResponse, error) {
		s.updating.limit = config.DefaultUpdatesPerHour
		u, err := s.updating.next(1, 0, h.Onboarded)
		return func() events.APIGatewayV2HTTPResponse {
			return h.Call("PATCH", "/accounts/me", u, nil, nil, `{"business_profile":{"product_description":"Rides in town"}}`)
		}, err
	}},
	{"dashboard link", 200, func(h *Harness, s *state) (func() events.APIGatewayV2HTTPResponse, error) {
		u, err := s.dashboard.next(1, 0, func() (string, error) { return s.active(h) })
		return func() events.APIGatewayV2HTTPResponse {
			return h.Call("POST", "/accounts/me/dashboard-link", u, nil, nil, "")
		}, err
	}},
	{"webhook (new event)", 200, func(h *Harness, s *state) (func() events.APIGatewayV2HTTPResponse, error) {
		u, err := s.onboarded(h)
		created := s.nextCreated()
		id := fmt.Sprintf("evt_new_%d", created)
		return func() events.APIGatewayV2HTTPResponse { return h.Webhook(id, u, created, false) }, err
	}},
	{"webhook (duplicate)", 200, func(h *Harness, s *state) (func() events.APIGatewayV2HTTPResponse, error) {
		if s.dupUser == "" {
			u, err := h.Onboarded()
			if err != nil {
				return nil, err
			}
			if r := h.Webhook("evt_dup", u, 1_700_000_000, false); r.StatusCode != 200 {
				return nil, fmt.Errorf("first delivery: %d", r.StatusCode)
			}
			s.dupUser = u
		}
		u := s.dupUser
		return func() events.APIGatewayV2HTTPResponse { return h.Webhook("evt_dup", u, 1_700_000_000, false) }, nil
	}},
	// Issue 24: a page of the review queue, every account with an email
	// (its duplicate_email read), as the staff console loads it.
	{"staff review queue (25 accounts)", 200, func(h *Harness, s *state) (func() events.APIGatewayV2HTTPResponse, error) {
		if !s.queued {
			if err := s.fillQueue(h, queuePage+1); err != nil {
				return nil, err
			}
			s.queued = true
		}
		return func() events.APIGatewayV2HTTPResponse {
			return h.StaffCall("GET", "/admin/accounts", map[string]string{"review": "pending"})
		}, nil
	}},
}

// Count measures what one call of each scenario costs.
func Count(h *Harness) (map[string]Usage, error) {
	st := &state{}
	out := map[string]Usage{}
	for _, sc := range Scenarios {
		call, err := sc.Prepare(h, st)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", sc.Name, err)
		}
		h.DB.Take()
		h.Stripe.Take()
		if r := call(); r.StatusCode != sc.Want {
			return nil, fmt.Errorf("%s: status %d, want %d: %s", sc.Name, r.StatusCode, sc.Want, r.Body)
		}
		u := h.DB.Take()
		u.StripeRequests = h.Stripe.Take()
		out[sc.Name] = u
	}
	return out, nil
}

// Latency is one scenario's warm in-process cost.
type Latency struct {
	NsPerOp, BytesPerOp, AllocsPerOp int64
}

// Benchmark runs each scenario as a Go benchmark on h.
func Benchmark(h *Harness) (map[string]Latency, error) {
	st := &state{}
	out := map[string]Latency{}
	for _, sc := range Scenarios {
		var failure error
		r := testing.Benchmark(func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				call, err := sc.Prepare(h, st)
				if err != nil {
					failure = err
					b.FailNow()
				}
				b.StartTimer()
				if resp := call(); resp.StatusCode != sc.Want {
					failure = fmt.Errorf("status %d: %s", resp.StatusCode, resp.Body)
					b.FailNow()
				}
			}
		})
		if failure != nil {
			return nil, fmt.Errorf("%s: %w", sc.Name, failure)
		}
		out[sc.Name] = Latency{r.NsPerOp(), r.AllocedBytesPerOp(), r.AllocsPerOp()}
	}
	return out, nil
}
