// Package stripeevents renders Stripe Connect webhook events the way Stripe
// sends them (API version 2023-10-16) and signs them: for tests, the bench
// and cmd/devevent, which posts them to the dev server.
package stripeevents

import (
	"encoding/json"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"
)

// AccountSnapshot is what an account.updated event says about an account.
type AccountSnapshot struct {
	DetailsSubmitted, ChargesEnabled, PayoutsEnabled bool
	CurrentlyDue                                     []string
	DisabledReason                                   string
	CurrentDeadline                                  int64 // Unix seconds; 0 for none
	// Capabilities default to card_payments and transfers, both active
	// when charges and payouts are enabled, else both inactive, as Stripe
	// shows an Express account before and after onboarding.
	Capabilities map[string]string
	// CreationID is metadata.platform_creation_id: the creation attempt of
	// ours that made the account.
	CreationID string
}

// AccountUpdated renders a Connect account.updated event as Stripe sends it
// in API version 2023-10-16. userID "" leaves metadata empty.
func AccountUpdated(eventID, accountID, userID string, created int64, s AccountSnapshot) []byte {
	due := s.CurrentlyDue
	if due == nil {
		due = []string{}
	}
	var reason any
	if s.DisabledReason != "" {
		reason = s.DisabledReason
	}
	var deadline any
	if s.CurrentDeadline != 0 {
		deadline = s.CurrentDeadline
	}
	caps := s.Capabilities
	if caps == nil {
		status := "inactive"
		if s.ChargesEnabled && s.PayoutsEnabled {
			status = "active"
		}
		caps = map[string]string{"card_payments": status, "transfers": status}
	}
	metadata := map[string]string{}
	if userID != "" {
		metadata["platform_user_id"] = userID
	}
	if s.CreationID != "" {
		metadata["platform_creation_id"] = s.CreationID
	}
	return event(eventID, "account.updated", accountID, created, map[string]any{
		"id": accountID, "object": "account", "type": "express", "country": "US",
		"details_submitted": s.DetailsSubmitted, "charges_enabled": s.ChargesEnabled, "payouts_enabled": s.PayoutsEnabled,
		"metadata": metadata,
		"requirements": map[string]any{
			"currently_due": due, "eventually_due": due, "past_due": []string{}, "pending_verification": []string{},
			"disabled_reason": reason, "current_deadline": deadline,
		},
		"capabilities":   caps,
		"tos_acceptance": map[string]any{"service_agreement": "full"},
	})
}

// CapabilityUpdated renders a capability.updated event.
func CapabilityUpdated(eventID, accountID, capability, status string, created int64) []byte {
	return event(eventID, "capability.updated", accountID, created, map[string]any{
		"id": capability, "object": "capability", "account": accountID, "status": status, "requested": true,
	})
}

// Deauthorized renders an account.application.deauthorized event.
func Deauthorized(eventID, accountID string, created int64) []byte {
	return event(eventID, "account.application.deauthorized", accountID, created, map[string]any{
		"id": "ca_platform", "object": "application", "name": "Platform",
	})
}

// Event renders any other event type.
func Event(eventID, typ, accountID string, created int64) []byte {
	return event(eventID, typ, accountID, created, map[string]any{"id": "po_1", "object": "payout"})
}

func event(id, typ, account string, created int64, object map[string]any) []byte {
	b, _ := json.Marshal(map[string]any{
		"id": id, "object": "event", "type": typ, "api_version": "2023-10-16", "created": created,
		"account": account, "livemode": false, "pending_webhooks": 1,
		"request": map[string]any{"id": nil, "idempotency_key": nil},
		"data":    map[string]any{"object": object},
	})
	return b
}

// Sign returns a Stripe-Signature header for payload.
func Sign(payload []byte, secret string, at time.Time) string {
	return webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: secret, Timestamp: at}).Header
}
