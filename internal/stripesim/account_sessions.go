package stripesim

import (
	"slices"
	"time"
)

// Account Sessions authorise Connect.js's embedded components for one
// connected account (POST /v1/account_sessions, API version 2023-10-16:
// https://docs.stripe.com/api/account_sessions/create?api-version=2023-10-16;
// stripe-mock v0.183.0 embedded/openapi/spec3.json,
// paths./v1/account_sessions.post and components.schemas.account_session).

// accountSessionTTL: "The timestamp at which this AccountSession will
// expire" is 30 minutes after creation at Stripe
// (https://docs.stripe.com/connect/get-started-connect-embedded-components).
const accountSessionTTL = 30 * time.Minute

// embeddedComponents are the components 2023-10-16 takes, in the order
// Stripe renders them.
var embeddedComponents = []string{"account_onboarding", "documents", "payment_details", "payments", "payouts"}

// componentFeatures are each component's features as the spec names them
// (connect_embedded_*_features): the payments ones in the request's
// payments_features_param, the payouts ones in payouts_features_param.
var componentFeatures = map[string][]string{
	"account_onboarding": nil,
	"documents":          nil,
	"payment_details":    {"capture_payments", "dispute_management", "refund_management"},
	"payments":           {"capture_payments", "dispute_management", "refund_management"},
	"payouts":            {"edit_payout_schedule", "instant_payouts", "standard_payouts"},
}

// accountSessionSchema is the request's schema: account and components
// required, each component {enabled required, features}.
var accountSessionSchema = func() map[string]*field {
	components := map[string]*field{}
	for _, name := range embeddedComponents {
		features := map[string]*field{}
		for _, f := range componentFeatures[name] {
			features[f] = boolean()
		}
		components[name] = hash(map[string]*field{"enabled": required(boolean()), "features": hash(features)})
	}
	return map[string]*field{
		"account":    required(str()),
		"components": required(hash(components)),
		"expand":     array(str()),
	}
}()

// accountSession is one Account Session: its client secret lets Connect.js
// act for accountID until expires, with components enabled.
type accountSession struct {
	secret, accountID string
	expires           int64
	livemode          bool
	components        []string
}

func (s *Sim) createAccountSession(req *request) (any, *apiError) {
	p := req.params
	id, _ := p.str("account")
	a, err := s.lookup(id, req.livemode)
	if err != nil {
		return nil, err
	}
	var enabled []string
	for _, name := range embeddedComponents {
		if on, _ := p.boolean("components", name, "enabled"); on {
			enabled = append(enabled, name)
		}
	}
	now := s.opts.Now()
	sess := &accountSession{
		secret: "accs_secret__" + randomID(48), accountID: a.id, expires: now.Add(accountSessionTTL).Unix(),
		livemode: a.livemode, components: enabled,
	}
	s.accountSessions[sess.secret] = sess
	// Stripe locks KYC prefill once onboarding can begin, embedded or not.
	if slices.Contains(enabled, "account_onboarding") {
		a.linked = true
	}
	return sess.render(p), nil
}

// render is the account_session object: every component with enabled and
// features, as connect_embedded_account_session_create_components requires.
// A feature the request set is echoed; the others are Stripe's defaults
// for an Express account, whose platform owns losses (payments features on,
// payouts features off).
func (sess *accountSession) render(p *param) map[string]any {
	components := map[string]any{}
	for _, name := range embeddedComponents {
		features := map[string]any{}
		for _, f := range componentFeatures[name] {
			def := name != "payouts"
			if v, ok := p.boolean("components", name, "features", f); ok {
				def = v
			}
			features[f] = def
		}
		components[name] = map[string]any{"enabled": slices.Contains(sess.components, name), "features": features}
	}
	return map[string]any{
		"object": "account_session", "account": sess.accountID, "client_secret": sess.secret,
		"expires_at": sess.expires, "livemode": sess.livemode, "components": components,
	}
}

// accountSessionFor returns the live session secret names and its account:
// false when the secret is unknown or expired, or the account is gone or
// deauthorized. Called with s.mu held.
func (s *Sim) accountSessionFor(secret string) (*accountSession, *account, bool) {
	sess, ok := s.accountSessions[secret]
	if !ok || s.opts.Now().Unix() >= sess.expires {
		return nil, nil, false
	}
	a, ok := s.accounts[sess.accountID]
	if !ok || a.deauthorized || a.livemode != sess.livemode {
		return nil, nil, false
	}
	return sess, a, true
}
