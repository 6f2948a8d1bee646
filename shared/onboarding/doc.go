// Package onboarding is the core of the Connect Express onboarding service:
// the domain types (Account, Status, OnboardingLink, RefreshToken,
// AccountEvent), the rules that keep money-adjacent state correct, and the
// ports it needs from the outside world (Store, Connect).
//
// It must never import AWS, Lambda or Stripe packages: adapters live in
// sibling packages (dynamostore, stripeconnect, httpapi) and depend on this
// one, never the other way round.
package onboarding
