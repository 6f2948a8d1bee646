package stripesim

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"
)

// endpoint is a registered webhook endpoint.
type endpoint struct {
	id          string
	url         string
	secret      string
	events      []string
	connect     bool
	apiVersion  string
	description string
	metadata    map[string]string
	created     int64
	livemode    bool
}

func (e *endpoint) object(withSecret bool) map[string]any {
	we := &stripe.WebhookEndpoint{
		ID: e.id, Object: "webhook_endpoint", URL: e.url, EnabledEvents: e.events, APIVersion: e.apiVersion,
		Description: e.description, Metadata: e.metadata, Created: e.created, Livemode: e.livemode, Status: "enabled",
	}
	if withSecret {
		we.Secret = e.secret // Stripe shows the signing secret only at creation
	}
	obj := render(we)
	obj["application"] = nil
	delete(obj, "deleted")
	if !withSecret {
		delete(obj, "secret")
	}
	// Connect endpoints name the application they belong to; the simulator
	// has one platform.
	if e.connect {
		obj["application"] = "ca_simulatedplatform"
	}
	if e.metadata == nil {
		obj["metadata"] = map[string]string{}
	}
	return obj
}

func (e *endpoint) wants(eventType string) bool {
	return slices.Contains(e.events, "*") || slices.Contains(e.events, eventType)
}

func (s *Sim) createWebhookEndpoint(req *request) (any, *apiError) {
	p := req.params
	rawURL, _ := p.str("url")
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, &apiError{status: 400, typ: typeInvalidRequest, code: "url_invalid", param: "url", message: "Invalid URL: " + rawURL}
	}
	if req.livemode && u.Scheme != "https" {
		return nil, &apiError{status: 400, typ: typeInvalidRequest, code: "url_invalid", param: "url",
			message: "Livemode webhook endpoints must use HTTPS."}
	}
	events := p.strings("enabled_events")
	if len(events) == 0 {
		return nil, &apiError{status: 400, typ: typeInvalidRequest, code: "parameter_missing", param: "enabled_events",
			message: "Missing required param: enabled_events."}
	}
	version := stripe.APIVersion
	if v, ok := p.str("api_version"); ok {
		version = v
	}
	connect, _ := p.boolean("connect")
	description, _ := p.str("description")
	ep := &endpoint{
		id: "we_1" + randomID(23), url: rawURL, secret: "whsec_" + randomID(32), events: events, connect: connect,
		apiVersion: version, description: description, metadata: map[string]string{},
		created: s.opts.Now().Unix(), livemode: req.livemode,
	}
	for _, k := range p.keys("metadata") {
		if v, _ := p.str("metadata", k); v != "" {
			ep.metadata[k] = v
		}
	}
	s.endpoints[ep.id] = ep
	s.endpointList = append(s.endpointList, ep.id)
	s.opts.Logger.Info("stripesim: webhook endpoint created", "endpoint", ep.id, "connect", connect)
	return ep.object(true), nil
}

func (s *Sim) findEndpoint(id string, livemode bool) (*endpoint, *apiError) {
	ep, ok := s.endpoints[id]
	if !ok || ep.livemode != livemode {
		return nil, &apiError{status: 404, typ: typeInvalidRequest, code: "resource_missing", param: "id",
			message: "No such webhook endpoint: '" + id + "'"}
	}
	return ep, nil
}

func (s *Sim) retrieveWebhookEndpoint(req *request) (any, *apiError) {
	ep, err := s.findEndpoint(req.r.PathValue("id"), req.livemode)
	if err != nil {
		return nil, err
	}
	return ep.object(false), nil
}

func (s *Sim) deleteWebhookEndpoint(req *request) (any, *apiError) {
	ep, err := s.findEndpoint(req.r.PathValue("id"), req.livemode)
	if err != nil {
		return nil, err
	}
	delete(s.endpoints, ep.id)
	s.endpointList = slices.DeleteFunc(s.endpointList, func(id string) bool { return id == ep.id })
	return map[string]any{"id": ep.id, "object": "webhook_endpoint", "deleted": true}, nil
}

func (s *Sim) listWebhookEndpoints(req *request) (any, *apiError) {
	limit, err := listLimit(req.params)
	if err != nil {
		return nil, err
	}
	var ids []string
	for i := len(s.endpointList) - 1; i >= 0; i-- {
		if ep := s.endpoints[s.endpointList[i]]; ep.livemode == req.livemode {
			ids = append(ids, ep.id)
		}
	}
	from, to, perr := page(ids, req.params, limit, "webhook endpoint")
	if perr != nil {
		return nil, perr
	}
	data := make([]any, 0, to-from)
	for _, id := range ids[from:to] {
		data = append(data, s.endpoints[id].object(false))
	}
	return listObject("/v1/webhook_endpoints", data, hasMore(ids, req.params, from, to)), nil
}

// Delivery is one event on its way to one endpoint.
type Delivery struct {
	EventID    string
	EventType  string
	AccountID  string
	EndpointID string
	Attempts   int
	LastStatus int // the endpoint's last HTTP status, 0 if it did not answer
	Delivered  bool
	GaveUp     bool

	url     string
	secret  string
	payload []byte
}

// Deliveries returns a snapshot of every delivery so far, oldest first.
func (s *Sim) Deliveries() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Delivery, len(s.deliveries))
	for i, d := range s.deliveries {
		out[i] = *d
		out[i].payload = nil
	}
	return out
}

// event renders a Connect event about account a.
func (s *Sim) event(a *account, typ string, object map[string]any, created int64) (id string, payload []byte) {
	id = "evt_1" + randomID(23)
	raw, _ := json.Marshal(object)
	ev := render(&stripe.Event{
		ID: id, Object: "event", Type: stripe.EventType(typ), APIVersion: stripe.APIVersion, Created: created,
		Account: a.id, Livemode: a.livemode, PendingWebhooks: 1, Request: &stripe.EventRequest{},
		Data: &stripe.EventData{Raw: raw},
	})
	if data, ok := ev["data"].(map[string]any); ok && data["previous_attributes"] == nil {
		delete(data, "previous_attributes")
	}
	b, _ := json.Marshal(ev)
	return id, b
}

// emitAccountChange sends account.updated with the whole account and, with
// capabilities, capability.updated for each requested capability, as Stripe
// does when requirements or statuses change. Called with s.mu held.
func (s *Sim) emitAccountChange(a *account, capabilities bool) {
	s.emitBurst(a, capabilities, nil)
}

// emitBurst sends one change's events, all created in the same second, as
// Stripe sends bursts of account.updated and capability.updated within one
// second: first, when the change went through another state (earlier is
// not nil), account.updated as it was then; then capability.updated for
// each requested capability (with capabilities); last, account.updated as
// the account is now. Stripe does not guarantee the order in which they
// arrive ("Stripe doesn't guarantee delivery of events in the order in which
// they're generated", https://docs.stripe.com/webhooks#event-ordering):
// SIM_CHAOS=shuffle delivers them in random order, SIM_CHAOS=reverse newest
// first. Called with s.mu held.
func (s *Sim) emitBurst(a *account, capabilities bool, earlier *account) {
	created := s.opts.Now().Unix()
	type ev struct {
		id, typ string
		payload []byte
	}
	var events []ev
	if earlier != nil {
		id, payload := s.event(a, "account.updated", earlier.object(), created)
		events = append(events, ev{id, "account.updated", payload})
	}
	id, payload := s.event(a, "account.updated", a.object(), created)
	now := ev{id, "account.updated", payload}
	if earlier == nil {
		events = append(events, now) // a change in one step: account.updated first, as before
	}
	if capabilities {
		for _, c := range a.requested {
			id, payload := s.event(a, "capability.updated", a.capabilityObject(c), created)
			events = append(events, ev{id, "capability.updated", payload})
		}
	}
	if earlier != nil {
		events = append(events, now)
	}
	if s.opts.Chaos.Reverse {
		slices.Reverse(events)
	}
	for _, e := range events {
		s.dispatch(a, e.id, e.typ, e.payload)
	}
}

// emitDeauthorized sends account.application.deauthorized.
func (s *Sim) emitDeauthorized(a *account) {
	id, payload := s.event(a, "account.application.deauthorized",
		map[string]any{"id": "ca_simulatedplatform", "object": "application", "name": "Platform (local simulator)"},
		s.opts.Now().Unix())
	s.dispatch(a, id, "account.application.deauthorized", payload)
}

func (a *account) capabilityObject(name string) map[string]any {
	req := a.requirements()
	status := a.capabilityStatus()
	reason := ""
	switch {
	case a.stage == stageRejected:
		reason = "rejected.other"
		if strings.HasPrefix(a.stageReason, "rejected.") {
			reason = a.stageReason
		}
	case a.stage == stageHeld:
		reason = a.stageReason // the capability's enum has both held reasons
	case status == "inactive":
		reason = "requirements.past_due"
	case status == "pending":
		reason = "requirements.pending_verification"
	}
	obj := render(&stripe.Capability{
		ID: name, Object: "capability", Requested: true, RequestedAt: a.created, Status: stripe.CapabilityStatus(status),
		Requirements: &stripe.CapabilityRequirements{
			Alternatives: []*stripe.CapabilityRequirementsAlternative{}, Errors: []*stripe.AccountRequirementsError{},
			CurrentDeadline: req.CurrentDeadline, CurrentlyDue: req.CurrentlyDue, EventuallyDue: req.EventuallyDue,
			PastDue: req.PastDue, PendingVerification: req.PendingVerification,
			DisabledReason: stripe.CapabilityDisabledReason(reason),
		},
	})
	obj["account"] = a.id // stripe-go would expand it; Stripe sends the id
	if r, ok := obj["requirements"].(map[string]any); ok && req.CurrentDeadline == 0 {
		r["current_deadline"] = nil
	}
	delete(obj, "future_requirements")
	return obj
}

// dispatch queues an event for every Connect endpoint that wants it. Called
// with s.mu held; delivery happens on other goroutines.
func (s *Sim) dispatch(a *account, eventID, typ string, payload []byte) {
	if s.stopped {
		return
	}
	if a.muted {
		s.opts.Logger.Info("stripesim: webhooks muted for the account: event not delivered", "event", eventID, "type", typ, "account", a.id)
		return
	}
	for _, id := range s.endpointList {
		ep := s.endpoints[id]
		if !ep.connect || ep.livemode != a.livemode || !ep.wants(typ) {
			continue
		}
		copies := 1
		if s.opts.Chaos.Duplicate {
			copies = 2
		}
		for range copies {
			d := &Delivery{EventID: eventID, EventType: typ, AccountID: a.id, EndpointID: ep.id,
				url: ep.url, secret: ep.secret, payload: payload}
			s.deliveries = append(s.deliveries, d)
			s.enqueue(d)
		}
	}
}

// enqueue hands d to its endpoint's worker, which delivers in order; with
// chaos, each delivery goes on its own after a random delay instead.
func (s *Sim) enqueue(d *Delivery) {
	if s.opts.Chaos.enabled() {
		delay := time.Duration(0)
		if s.opts.Chaos.MaxDelay > 0 {
			delay = rand.N(s.opts.Chaos.MaxDelay + 1)
		}
		if s.opts.Chaos.Shuffle {
			// A random extra wait reorders the events of one change.
			delay += rand.N(50 * time.Millisecond)
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if !s.sleep(delay) {
				return
			}
			s.deliver(d)
		}()
		return
	}
	q, ok := s.queues[d.EndpointID]
	if !ok {
		q = make(chan *Delivery, 4096)
		s.queues[d.EndpointID] = q
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			for {
				select {
				case <-s.ctx.Done():
					return
				case next := <-q:
					s.deliver(next)
				}
			}
		}()
	}
	select {
	case q <- d:
	default:
		d.GaveUp = true
		s.opts.Logger.Warn("stripesim: delivery queue full, event dropped", "event", d.EventID)
	}
}

// sleep waits d unless the simulator closes; false when it closed.
func (s *Sim) sleep(d time.Duration) bool {
	if d <= 0 {
		return s.ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.ctx.Done():
		return false
	}
}

// deliver posts d, signed, until the endpoint answers 2xx or the retry
// policy gives up. Each attempt is signed afresh, as Stripe signs with the
// time of sending.
func (s *Sim) deliver(d *Delivery) {
	backoff := s.opts.Retry.FirstBackoff
	for attempt := 1; ; attempt++ {
		status := s.post(d)
		s.mu.Lock()
		d.Attempts, d.LastStatus = attempt, status
		d.Delivered = status >= 200 && status < 300
		if !d.Delivered && attempt >= s.opts.Retry.MaxAttempts {
			d.GaveUp = true
		}
		done := d.Delivered || d.GaveUp
		s.mu.Unlock()
		if done {
			if d.GaveUp {
				s.opts.Logger.Warn("stripesim: webhook delivery gave up", "event", d.EventID, "type", d.EventType,
					"endpoint", d.EndpointID, "attempts", attempt, "status", status)
			}
			return
		}
		if !s.sleep(backoff) {
			return
		}
		backoff = min(backoff*2, s.opts.Retry.MaxBackoff)
	}
}

func (s *Sim) post(d *Delivery) int {
	now := s.opts.Now()
	sig := hex.EncodeToString(webhook.ComputeSignature(now, d.payload, d.secret))
	req, err := http.NewRequestWithContext(s.ctx, http.MethodPost, d.url, bytes.NewReader(d.payload))
	if err != nil {
		return 0
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("User-Agent", "Stripe/1.0 (+https://stripe.com/docs/webhooks) local-simulator")
	req.Header.Set("Stripe-Signature", fmt.Sprintf("t=%d,v1=%s", now.Unix(), sig))
	resp, err := s.opts.HTTPClient.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	return resp.StatusCode
}
