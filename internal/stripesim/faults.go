package stripesim

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// FaultKind is how an injected fault fails a request.
type FaultKind string

const (
	// FaultServerError answers 500 before the operation runs; nothing is
	// saved under the Idempotency-Key, so a retry with the key succeeds.
	FaultServerError FaultKind = "500"
	// FaultRateLimit answers 429 rate_limit; nothing runs or is saved.
	FaultRateLimit FaultKind = "429"
	// FaultTimeout runs the operation and saves its result under the key,
	// then holds the answer for Delay (or until the client gives up): the
	// caller cannot tell whether it worked, and a retry with the same key
	// gets the saved answer.
	FaultTimeout FaultKind = "timeout"
	// FaultSavedServerError answers 500 and saves that 500 under the key,
	// as Stripe does: every retry with the same key gets the same 500
	// (Idempotent-Replayed). With Created the operation took effect anyway.
	FaultSavedServerError FaultKind = "saved_500"
	// FaultKeyRefused answers 403 without a code, as Stripe answers a
	// restricted key that lacks the endpoint's permission
	// (https://docs.stripe.com/api/errors: 403 "The API key doesn't have
	// permissions to perform the request"): the key's fault, not the
	// account's. Nothing runs or is saved.
	FaultKeyRefused FaultKind = "403"
)

// Fault makes the next Count requests of Op fail.
type Fault struct {
	Op      string // an Op* constant; "" matches every API operation
	Kind    FaultKind
	Count   int           // how many requests; 0 means 1
	Created bool          // FaultSavedServerError: the operation still ran
	Delay   time.Duration // FaultTimeout: how long the answer waits (default 30 s)
}

// InjectFault adds a fault; faults are consumed in the order they were added.
func (s *Sim) InjectFault(f Fault) {
	if f.Count <= 0 {
		f.Count = 1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &f)
}

// ClearFaults drops every fault not yet consumed.
func (s *Sim) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

func (s *Sim) takeFault(op string) *Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.faults {
		if f.Op != "" && f.Op != op {
			continue
		}
		taken := *f
		f.Count--
		if f.Count == 0 {
			s.faults = append(s.faults[:i], s.faults[i+1:]...)
		}
		return &taken
	}
	return nil
}

func (f *Fault) delay() time.Duration {
	if f.Delay > 0 {
		return f.Delay
	}
	return 30 * time.Second
}

func (f *Fault) apiError() *apiError {
	if f.Kind == FaultKeyRefused {
		return &apiError{status: http.StatusForbidden, typ: typeInvalidRequest,
			message: "The provided key does not have the required permissions for this endpoint (injected by the local Stripe simulator)."}
	}
	if f.Kind == FaultRateLimit {
		// Stripe's answer, verbatim as public test suites record it (the
		// error-codes page describes rate_limit in other words; the message
		// points at https://stripe.com/docs/rate-limits).
		return &apiError{status: http.StatusTooManyRequests, typ: typeInvalidRequest, code: "rate_limit",
			message: "Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits."}
	}
	return &apiError{status: http.StatusInternalServerError, typ: typeAPI,
		message: "An unknown error occurred (injected by the local Stripe simulator)."}
}

// faultsControl serves POST /_sim/faults (op, kind, count, created, delay)
// and DELETE /_sim/faults, so faults can be injected by hand:
//
//	curl -XPOST $SIM/_sim/faults -d op=create_account -d kind=saved_500 -d count=2
func (s *Sim) faultsControl(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodDelete {
		s.ClearFaults()
		writeJSON(w, http.StatusOK, []byte(`{"faults":[]}`))
		return
	}
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, invalidRequest("expected form parameters").body())
		return
	}
	f := Fault{Op: r.PostForm.Get("op"), Kind: FaultKind(r.PostForm.Get("kind"))}
	switch f.Kind {
	case FaultServerError, FaultRateLimit, FaultTimeout, FaultSavedServerError, FaultKeyRefused:
	default:
		writeJSON(w, http.StatusBadRequest, invalidParam("kind", "kind must be one of 500, 429, timeout, saved_500, 403").body())
		return
	}
	if v := r.PostForm.Get("count"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeJSON(w, http.StatusBadRequest, invalidParam("count", "count must be a positive integer").body())
			return
		}
		f.Count = n
	}
	f.Created = r.PostForm.Get("created") == "true"
	if v := r.PostForm.Get("delay"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			writeJSON(w, http.StatusBadRequest, invalidParam("delay", "delay must be a Go duration such as 10s").body())
			return
		}
		f.Delay = d
	}
	s.InjectFault(f)
	b, _ := json.Marshal(map[string]any{"injected": map[string]any{
		"op": f.Op, "kind": f.Kind, "count": max(f.Count, 1), "created": f.Created, "delay": f.Delay.String()}})
	writeJSON(w, http.StatusOK, b)
}

// idemEntry is a saved answer for one Idempotency-Key.
type idemEntry struct {
	fingerprint string
	inFlight    bool
	status      int
	body        []byte
	requestID   string
	expires     time.Time
}

// idempotencyWindow is how long Stripe keeps a key's result: at least 24 h.
const idempotencyWindow = 24 * time.Hour

// beginIdempotent looks the key up: a saved answer to replay, a conflict
// (another request in flight, or other parameters), or a new entry for the
// caller to finish.
func (s *Sim) beginIdempotent(apiKey, key, fingerprint string) (entry, replay *idemEntry, conflict *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	scoped := apiKey + "\x00" + key
	now := s.opts.Now()
	if e, ok := s.idem[scoped]; ok && now.Before(e.expires) {
		switch {
		case e.fingerprint != fingerprint:
			return nil, nil, &apiError{status: http.StatusBadRequest, typ: typeIdempotency,
				message: "Keys for idempotent requests can only be used with the same parameters they were first used with. " +
					"Try using a key other than '" + key + "' if you meant to execute a different request."}
		case e.inFlight:
			return nil, nil, &apiError{status: http.StatusConflict, typ: typeInvalidRequest, code: "idempotency_key_in_use",
				message: "There is currently another in-progress request using this Idempotent Key (that probably means " +
					"you submitted twice, and the other request is still going through): " + key + ". Please try again later."}
		default:
			return nil, e, nil
		}
	}
	e := &idemEntry{fingerprint: fingerprint, inFlight: true, expires: now.Add(idempotencyWindow)}
	s.idem[scoped] = e
	return e, nil, nil
}

func (s *Sim) finishIdempotent(e *idemEntry, status int, body []byte, requestID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e.inFlight, e.status, e.body, e.requestID = false, status, body, requestID
}
