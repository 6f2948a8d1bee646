package stripeconnect

import (
	"crypto/hmac"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/connectexpress/onboarding/shared/onboarding"
)

// Verifier checks Stripe-Signature headers and decodes Connect events.
type Verifier struct {
	secrets   func() []string
	tolerance time.Duration
	now       func() time.Time
}

// NewVerifier accepts a signature made with any of secrets, so an endpoint
// secret can be rolled without dropping events. With no secrets, nothing
// verifies: configuration refuses to start that way.
func NewVerifier(secrets []string, now func() time.Time) *Verifier {
	return NewRotatingVerifier(func() []string { return secrets }, now)
}

// NewRotatingVerifier asks secrets for the signing secrets at each event, so
// that secrets rotated in Secrets Manager take effect without a new process.
func NewRotatingVerifier(secrets func() []string, now func() time.Time) *Verifier {
	if now == nil {
		now = time.Now
	}
	return &Verifier{secrets: secrets, tolerance: webhook.DefaultTolerance, now: now}
}

var (
	errNotSigned   = onboarding.InvalidCode("invalid_signature", "stripe-signature", "the Stripe-Signature header is missing")
	errBadHeader   = onboarding.InvalidCode("invalid_signature", "stripe-signature", "the Stripe-Signature header is malformed")
	errNoSignature = onboarding.InvalidCode("invalid_signature", "stripe-signature", "no signature matches the payload")
	errStale       = onboarding.InvalidCode("invalid_signature", "stripe-signature", "the signature timestamp is outside the 300 s tolerance")
	errBadPayload  = onboarding.InvalidCode("invalid_payload", "", "the event is not a valid Stripe event")
)

// Verify checks header against payload (the raw body, byte for byte) and
// decodes the event. stripe-go's own check accepts any future timestamp and
// one secret at a time; this one bounds both directions and tries each
// secret.
func (v *Verifier) Verify(payload []byte, header string) (onboarding.AccountEvent, error) {
	ts, sigs, err := parseSignatureHeader(header)
	if err != nil {
		return onboarding.AccountEvent{}, err
	}
	if !v.signedByAny(ts, payload, sigs) {
		return onboarding.AccountEvent{}, errNoSignature
	}
	if age := v.now().Sub(ts); age > v.tolerance || age < -v.tolerance {
		return onboarding.AccountEvent{}, errStale
	}
	return decodeEvent(payload)
}

func (v *Verifier) signedByAny(ts time.Time, payload []byte, sigs [][]byte) bool {
	for _, secret := range v.secrets() {
		if secret == "" {
			// An empty key would make any HMAC an attacker computes valid:
			// configuration drops empty entries, and so does this.
			continue
		}
		expected := webhook.ComputeSignature(ts, payload, secret)
		for _, sig := range sigs {
			if hmac.Equal(expected, sig) {
				return true
			}
		}
	}
	return false
}

// parseSignatureHeader reads "t=<unix>,v1=<hex>[,v1=<hex>...]"; other
// schemes (v0) are ignored, as Stripe documents.
func parseSignatureHeader(header string) (time.Time, [][]byte, error) {
	if strings.TrimSpace(header) == "" {
		return time.Time{}, nil, errNotSigned
	}
	var ts time.Time
	var sigs [][]byte
	for _, pair := range strings.Split(header, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if !ok {
			return time.Time{}, nil, errBadHeader
		}
		switch k {
		case "t":
			sec, err := strconv.ParseInt(val, 10, 64)
			if err != nil || sec <= 0 {
				return time.Time{}, nil, errBadHeader
			}
			ts = time.Unix(sec, 0)
		case "v1":
			if sig, err := hex.DecodeString(val); err == nil && len(sig) == 32 {
				sigs = append(sigs, sig)
			}
		}
	}
	if ts.IsZero() {
		return time.Time{}, nil, errBadHeader
	}
	if len(sigs) == 0 {
		return time.Time{}, nil, errNoSignature
	}
	return ts, sigs, nil
}

type eventEnvelope struct {
	ID         string `json:"id"`
	Object     string `json:"object"`
	Type       string `json:"type"`
	Created    int64  `json:"created"`
	Account    string `json:"account"`
	Livemode   bool   `json:"livemode"`
	APIVersion string `json:"api_version"`
	Data       struct {
		Object json.RawMessage `json:"object"`
	} `json:"data"`
}

type capabilityObject struct {
	ID      string `json:"id"`
	Account string `json:"account"`
	Status  string `json:"status"`
}

// decodeEvent decodes the fields the core uses. Events in another API
// version than stripe-go's are accepted: see accountObject.
func decodeEvent(payload []byte) (onboarding.AccountEvent, error) {
	var env eventEnvelope
	if err := json.Unmarshal(payload, &env); err != nil || env.Object != "event" ||
		!strings.HasPrefix(env.ID, "evt_") || env.Type == "" || env.Created <= 0 {
		return onboarding.AccountEvent{}, errBadPayload
	}
	ev := onboarding.AccountEvent{
		ID: env.ID, Type: env.Type, Created: time.Unix(env.Created, 0), AccountID: env.Account,
		Livemode: env.Livemode, APIVersion: env.APIVersion,
		APIVersionMismatch: env.APIVersion != stripe.APIVersion,
	}
	switch env.Type {
	case onboarding.EventAccountUpdated:
		acct, err := decodeAccount(env.Data.Object)
		if err != nil || acct.Object != "account" || acct.ID == "" {
			return ev, errBadPayload
		}
		if ev.AccountID == "" {
			ev.AccountID = acct.ID
		}
		if acct.ID != ev.AccountID {
			return ev, errBadPayload
		}
		st := acct.state()
		ev.State, ev.Country, ev.ServiceAgreement = &st, acct.Country, acct.serviceAgreement()
		ev.PlatformUserID, ev.CreationID = acct.Metadata[MetadataUserID], acct.Metadata[MetadataCreationID]
	case onboarding.EventCapabilityUpdated:
		var c capabilityObject
		if err := json.Unmarshal(env.Data.Object, &c); err != nil || c.ID == "" || c.Status == "" {
			return ev, errBadPayload
		}
		if ev.AccountID == "" {
			ev.AccountID = c.Account
		}
		ev.Capability, ev.CapabilityStatus = c.ID, c.Status
	}
	return ev, nil
}
