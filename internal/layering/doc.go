// Package layering holds the packages to the import rules of
// docs/architecture.md: the core imports nothing of AWS, Lambda or Stripe,
// each adapter only the core and its own SDK, and nothing in shared/ or
// functions/ imports cmd/ or internal/.
//
// It has no code outside its tests.
package layering
