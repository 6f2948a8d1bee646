package onboarding

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// CreateAccountRequest is the POST /accounts body. Nil means "not given".
type CreateAccountRequest struct {
	Country          *string                 `json:"country"`
	Email            *string                 `json:"email"`
	BusinessType     *string                 `json:"business_type"`
	BusinessProfile  *BusinessProfileRequest `json:"business_profile"`
	Capabilities     *[]string               `json:"capabilities"`
	ServiceAgreement *string                 `json:"service_agreement"`
}

// UpdateAccountRequest is the PATCH /accounts/me body: prefill fields only.
// Country and ServiceAgreement are decoded only to refuse them clearly.
type UpdateAccountRequest struct {
	Email            *string                 `json:"email"`
	BusinessType     *string                 `json:"business_type"`
	BusinessProfile  *BusinessProfileRequest `json:"business_profile"`
	Country          *string                 `json:"country"`
	ServiceAgreement *string                 `json:"service_agreement"`
	Capabilities     *[]string               `json:"capabilities"`
}

// BusinessProfileRequest is the prefillable business_profile of a request.
type BusinessProfileRequest struct {
	URL                *string `json:"url"`
	ProductDescription *string `json:"product_description"`
	Name               *string `json:"name"`
	MCC                *string `json:"mcc"`
}

var (
	businessTypes = setOf("individual", "company", "non_profit", "government_entity")
)

// isCountryCode says whether s has the shape of an ISO 3166-1 alpha-2 code
// (openapi.yaml says the same: ^[A-Za-z]{2}$), and isMCC whether s is a
// four-digit merchant category code (^[0-9]{4}$). They were regexps
// compiled at package init, which every function's cold start paid for and
// which linked regexp into the functions that never call Stripe.
func isCountryCode(s string) bool {
	return len(s) == 2 && isASCIILetter(s[0]) && isASCIILetter(s[1])
}

func isMCC(s string) bool {
	if len(s) != 4 {
		return false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isASCIILetter(b byte) bool { return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' }

const (
	maxEmail              = 254 // RFC 5321 path limit
	maxURL                = 2048
	maxProductDescription = 500 // characters as given, like openapi.yaml's maxLength
	maxBusinessName       = 100
	maxCapabilities       = 32
)

// CreateAccount creates the caller's Express account, once. It returns the
// account and whether this call created it.
//
// Exactly once: the user is claimed in the store with a conditional write
// before Stripe is called, Stripe gets an idempotency key derived from the
// user and attempt, and the account carries the user and the claim's
// creation id in its metadata, so that the account's webhook can heal a
// crash between Stripe and the store, and a later attempt can find it.
func (s *Service) CreateAccount(ctx context.Context, c Caller, req CreateAccountRequest) (Account, bool, error) {
	if c.UserID == "" {
		return Account{}, false, ErrUnauthorized
	}
	params, err := s.createParams(c, req)
	if err != nil {
		return Account{}, false, err
	}
	u, err := s.store.GetUser(ctx, c.UserID)
	switch {
	case errors.Is(err, ErrNotFound):
		u = UserRecord{UserID: c.UserID}
	case err != nil:
		return Account{}, false, err
	}
	if u.Account != nil {
		return u.Account.Account(s.now()), false, nil
	}

	now := s.now()
	claim := CreationClaim{
		ClaimID: s.newSecret(16), LeaseUntil: now.Add(s.policy.ClaimLease),
		CreationID: s.newSecret(creationIDBytes), AttemptSince: now, Params: &params,
	}
	if prev := u.Claim; prev != nil {
		if prev.LeaseUntil.After(now) {
			return Account{}, false, ErrCreationInProgress
		}
		claim.Attempt, claim.Search = prev.Attempt, prev.Search
		if prev.CreationID != "" {
			claim.CreationID = prev.CreationID
		}
		if !prev.AttemptSince.IsZero() {
			claim.AttemptSince = prev.AttemptSince
		}
		if prev.Params != nil {
			// An earlier attempt may have created the account at Stripe:
			// replay it exactly, so the idempotency key returns that account.
			claim.Params = prev.Params
		}
	}
	if refusedBefore(u.Claim) {
		// Stripe refused the last attempt's parameters, so this one is a
		// new Stripe write with new ones: a caller could repeat it without
		// end. The first attempt, and replays of one that may have created
		// the account, are not counted.
		if err := s.takeUpdateSlot(ctx, c.UserID); err != nil {
			return Account{}, false, err
		}
	}
	if claim.Params.CreationID == "" {
		claim.Params.CreationID = claim.CreationID
	}
	if err := s.store.ClaimCreation(ctx, c.UserID, claim, now); err != nil {
		if !errors.Is(err, ErrConflict) {
			return Account{}, false, err
		}
		// Claim ids are random: one stored already is this very write,
		// retried by the SDK after its answer was lost. Anything else lost.
		if u, err := s.store.GetUser(ctx, c.UserID); err != nil || u.Account != nil || u.Claim == nil || u.Claim.ClaimID != claim.ClaimID {
			return s.afterLostClaim(ctx, c.UserID)
		}
	}

	if claim.Search {
		// The attempt's key can only replay a failure: an account it made
		// would be lost with it. Look for one before moving to a new key.
		found, ok, err := s.connect.FindCreatedAccount(ctx, CreatedAccountQuery{
			UserID: c.UserID, CreationID: claim.CreationID, Since: claim.AttemptSince.Add(-stripeClockSkew),
		})
		if err != nil {
			s.releaseClaim(ctx, c.UserID, claim)
			return Account{}, false, err
		}
		if ok {
			s.log.InfoContext(ctx, "adopting the account an earlier creation attempt made", "account_id", found.ID, "attempt", claim.Attempt)
			return s.completeCreation(ctx, c.UserID, claim, found, now)
		}
		claim.Attempt, claim.Search, claim.AttemptSince = claim.Attempt+1, false, now
	}

	created, err := s.connect.CreateAccount(ctx, *claim.Params, creationKey(c.UserID, claim.Attempt))
	if err != nil {
		next := claim
		switch e, ok := AsError(err); {
		case ok && e.Kind == KindInvalid:
			// Stripe refused our parameters: nothing exists there, so the
			// next attempt may use new ones, with a new key.
			next.Attempt, next.Params, next.AttemptSince = next.Attempt+1, nil, time.Time{}
		case ok && e.KeySpent():
			next.Search = true
		}
		// Anything else may have created it: the next attempt replays.
		s.releaseClaim(ctx, c.UserID, next)
		return Account{}, false, err
	}
	return s.completeCreation(ctx, c.UserID, claim, created, now)
}

// refusedBefore says whether claim is what a creation attempt that Stripe
// refused left behind: a later attempt (Attempt > 0) with no parameters to
// replay. A first claim, or one left by a failure that may have created
// the account (which keeps its parameters), is not.
func refusedBefore(claim *CreationClaim) bool {
	return claim != nil && claim.Attempt > 0 && claim.Params == nil
}

// creationIDBytes is the entropy of a creation id: 96 bits, unguessable,
// so an account carrying it provably came from the claim.
const creationIDBytes = 12

// stripeClockSkew widens the search for an account an attempt made, for a
// difference between our clock and Stripe's.
const stripeClockSkew = 5 * time.Minute

// releaseClaim ends the claim's lease, recording how the next attempt starts.
func (s *Service) releaseClaim(ctx context.Context, userID string, next CreationClaim) {
	if err := s.store.ReleaseClaim(ctx, userID, next); err != nil {
		s.log.WarnContext(ctx, "could not release creation claim; it expires with its lease", "error", err)
	}
}

// completeCreation stores the account that the claim's attempt made.
func (s *Service) completeCreation(ctx context.Context, userID string, claim CreationClaim, created CreatedAccount, now time.Time) (Account, bool, error) {
	rec := AccountRecord{
		UserID:           userID,
		AccountID:        created.ID,
		Country:          firstNonEmpty(created.Country, claim.Params.Country),
		ServiceAgreement: claim.Params.ServiceAgreement,
		State:            created.State,
		StateVersion:     now.Unix(),
		CreatedAt:        now,
		UpdatedAt:        now,
	}
	// The status follows what this service asked for, not every capability
	// Stripe lists; Stripe's answer does not say which those were.
	rec.State.RequestedCapabilities = claim.Params.Capabilities
	// What staff see of the prefill: duplicate_email's evidence (signals.go).
	rec.Email, rec.BusinessName, rec.BusinessURL = claim.Params.Email, claim.Params.BusinessProfile.Name, claim.Params.BusinessProfile.URL
	if err := s.store.CompleteCreation(ctx, rec, claim.ClaimID); err != nil {
		if errors.Is(err, ErrConflict) {
			// A webhook (or a caller that took over an expired lease) stored
			// the account first; the stored record is the truth.
			return s.afterLostClaim(ctx, userID)
		}
		return Account{}, false, err
	}
	s.log.InfoContext(ctx, "connected account created", "account_id", rec.AccountID, "attempt", claim.Attempt)
	return rec.Account(s.now()), true, nil
}

// afterLostClaim answers a caller whose conditional write lost a race.
func (s *Service) afterLostClaim(ctx context.Context, userID string) (Account, bool, error) {
	u, err := s.store.GetUser(ctx, userID)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return Account{}, false, err
	}
	if u.Account != nil {
		return u.Account.Account(s.now()), false, nil
	}
	return Account{}, false, ErrCreationInProgress
}

// creationKey is the Stripe Idempotency-Key for a user's creation attempt.
// Hashing keeps user ids out of Stripe's request logs.
func creationKey(userID string, attempt int) string {
	return fmt.Sprintf("create-account-%s-%d", hashHex(userID)[:32], attempt)
}

// createParams validates req and fills in what the platform's policy adds.
func (s *Service) createParams(c Caller, req CreateAccountRequest) (CreateAccountParams, error) {
	p := CreateAccountParams{PlatformUserID: c.UserID, Country: s.policy.PlatformCountry}
	if req.Country != nil {
		// The pattern is checked on the input as given: strings.ToUpper
		// would turn "ſe" (long s) into "SE".
		country := strings.ToUpper(*req.Country)
		switch {
		case !isCountryCode(*req.Country) || !StripeSupportsCountry(country):
			return p, Invalid("country", "country must be an ISO 3166-1 alpha-2 code of a country where Stripe supports Express accounts")
		case !s.policy.AllowedCountries[country]:
			return p, InvalidCode("country_not_enabled", "country", "this platform does not onboard accounts in "+country)
		}
		p.Country = country
	}
	prefill, err := validatePrefill(req.Email, req.BusinessType, req.BusinessProfile)
	if err != nil {
		return p, err
	}
	p.Prefill = prefill
	if p.Email == "" && c.Email != "" && (c.EmailVerified || s.policy.PrefillUnverifiedEmail) && validEmail(c.Email) {
		p.Email = c.Email
	}
	if p.BusinessProfile.URL == "" && s.policy.ProfileURLTemplate != "" {
		p.BusinessProfile.URL = strings.ReplaceAll(s.policy.ProfileURLTemplate, "{user_id}", url.PathEscape(c.UserID))
	}
	if p.BusinessProfile.URL == "" && p.BusinessProfile.ProductDescription == "" {
		p.BusinessProfile.ProductDescription = s.policy.ProductDescriptionDefault
	}

	if p.ServiceAgreement, err = s.serviceAgreement(p.Country, req.ServiceAgreement); err != nil {
		return p, err
	}
	if p.Capabilities, err = s.capabilities(p.ServiceAgreement, req.Capabilities); err != nil {
		return p, err
	}
	return p, nil
}

func (s *Service) serviceAgreement(country string, requested *string) (string, error) {
	if requested != nil {
		a := *requested
		switch {
		case a != AgreementFull && a != AgreementRecipient:
			return "", Invalid("service_agreement", "service_agreement must be full or recipient")
		case a == AgreementFull && recipientOnlyCountries.has(country):
			return "", Invalid("service_agreement", "accounts in "+country+" receive cross-border payouts only and need the recipient service agreement")
		}
		return a, nil
	}
	switch {
	case recipientOnlyCountries.has(country):
		return AgreementRecipient, nil
	case country == s.policy.PlatformCountry:
		return AgreementFull, nil
	default:
		return s.policy.CrossBorderServiceAgreement, nil
	}
}

func (s *Service) capabilities(agreement string, requested *[]string) ([]string, error) {
	if requested == nil {
		caps := s.policy.DefaultCapabilities
		if agreement == AgreementRecipient {
			// Recipients cannot take payments: transfers is all they may ask.
			caps = []string{"transfers"}
		}
		return caps, nil
	}
	if len(*requested) > maxCapabilities {
		return nil, Invalid("capabilities", fmt.Sprintf("at most %d capabilities", maxCapabilities))
	}
	seen := map[string]bool{}
	var caps []string
	for _, c := range *requested {
		if !s.policy.AllowedCapabilities[c] {
			return nil, Invalid("capabilities", fmt.Sprintf("capability %q is not offered by this platform", truncate(c, 64)))
		}
		if agreement == AgreementRecipient && c != "transfers" {
			return nil, Invalid("capabilities", "accounts under the recipient service agreement can only request transfers")
		}
		if !seen[c] {
			seen[c] = true
			caps = append(caps, c)
		}
	}
	if seen["card_payments"] && !seen["transfers"] {
		// Stripe answers 400 to this (changelog 2019-08-14): say so without
		// spending a Stripe call.
		return nil, Invalid("capabilities", "card_payments must be requested together with transfers")
	}
	if agreement == AgreementFull && transfersOnly(caps) && !s.policy.AllowTransfersOnly {
		// Stripe answers 400 unless it approved the platform ("Your platform
		// needs approval for accounts to have requested the `transfers`
		// capability without the `card_payments` capability"): say so without
		// spending a Stripe call. A recipient has transfers alone by rule.
		return nil, Invalid("capabilities", "transfers must be requested together with card_payments under the full service agreement: "+
			"this platform is not approved by Stripe for transfers-only accounts")
	}
	return caps, nil
}

// transfersOnly: transfers requested without card_payments.
func transfersOnly(caps []string) bool {
	return slices.Contains(caps, "transfers") && !slices.Contains(caps, "card_payments")
}

// validatePrefill checks the fields POST and PATCH share.
func validatePrefill(email, businessType *string, bp *BusinessProfileRequest) (Prefill, error) {
	var p Prefill
	if email != nil {
		if !validEmail(*email) {
			return p, Invalid("email", "email must be a valid address")
		}
		p.Email = *email
	}
	if businessType != nil {
		if !businessTypes[*businessType] {
			return p, Invalid("business_type", "business_type must be individual, company, non_profit or government_entity")
		}
		p.BusinessType = *businessType
	}
	if bp == nil {
		return p, nil
	}
	if bp.URL != nil {
		if !publicHTTPSURL(*bp.URL) {
			return p, Invalid("business_profile.url", "business_profile.url must be an https URL with a public host name")
		}
		p.BusinessProfile.URL = *bp.URL
	}
	if bp.ProductDescription != nil {
		if d := strings.TrimSpace(*bp.ProductDescription); d == "" || utf8.RuneCountInString(*bp.ProductDescription) > maxProductDescription {
			return p, Invalid("business_profile.product_description", fmt.Sprintf("business_profile.product_description must have 1 to %d characters", maxProductDescription))
		}
		p.BusinessProfile.ProductDescription = strings.TrimSpace(*bp.ProductDescription)
	}
	if bp.Name != nil {
		if n := strings.TrimSpace(*bp.Name); n == "" || utf8.RuneCountInString(*bp.Name) > maxBusinessName {
			return p, Invalid("business_profile.name", fmt.Sprintf("business_profile.name must have 1 to %d characters", maxBusinessName))
		}
		p.BusinessProfile.Name = strings.TrimSpace(*bp.Name)
	}
	if bp.MCC != nil {
		if !isMCC(*bp.MCC) {
			return p, Invalid("business_profile.mcc", "business_profile.mcc must be a four-digit merchant category code")
		}
		p.BusinessProfile.MCC = *bp.MCC
	}
	return p, nil
}

// publicHTTPSURL: https, no credentials, and a host name that could be on
// the internet: not an IP literal, not localhost, not a single label.
func publicHTTPSURL(raw string) bool {
	u, err := url.Parse(raw)
	if len(raw) > maxURL || err != nil || u.Scheme != "https" || u.User != nil {
		return false
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	switch {
	case host == "", !strings.Contains(host, "."), net.ParseIP(host) != nil:
		return false
	case host == "localhost", strings.HasSuffix(host, ".localhost"):
		return false
	}
	return true
}

func validEmail(s string) bool {
	if len(s) > maxEmail || strings.ContainsAny(s, "<> \t\r\n") {
		return false
	}
	a, err := mail.ParseAddress(s)
	return err == nil && a.Address == s && strings.Contains(s[strings.LastIndexByte(s, '@'):], ".")
}

// UpdateAccount changes prefilled details at Stripe until the first
// onboarding link: from then on Stripe owns the KYC information.
func (s *Service) UpdateAccount(ctx context.Context, c Caller, req UpdateAccountRequest) (Account, error) {
	switch {
	case req.Country != nil:
		return Account{}, Invalid("country", "country is fixed when the account is created")
	case req.ServiceAgreement != nil:
		return Account{}, Invalid("service_agreement", "service_agreement is fixed when the account is created")
	case req.Capabilities != nil:
		return Account{}, Invalid("capabilities", "capabilities cannot be changed here")
	}
	prefill, err := validatePrefill(req.Email, req.BusinessType, req.BusinessProfile)
	if err != nil {
		return Account{}, err
	}
	rec, err := s.accountFor(ctx, c)
	if err != nil {
		return Account{}, err
	}
	switch {
	case rec.State.Deauthorized:
		return Account{}, ErrDeauthorized
	case !rec.FirstLinkAt.IsZero():
		return Account{}, ErrKYCLocked
	case prefill == Prefill{}:
		return Account{}, Invalid("", "nothing to update: give email, business_type or business_profile")
	}
	// Counted before the lease: past the budget a PATCH costs one write,
	// and reaches neither the lease nor Stripe.
	if err := s.takeUpdateSlot(ctx, c.UserID); err != nil {
		return Account{}, err
	}
	lease, err := s.beginPrefill(ctx, c.UserID)
	if err != nil {
		return Account{}, err
	}
	// The update must be through before the lease ends: a link waits for
	// the lease, so that no prefill update reaches Stripe after a link.
	callCtx, cancel := context.WithDeadline(ctx, lease.Until)
	err = s.connect.UpdateAccount(callCtx, rec.AccountID, prefill)
	cancel()
	if eerr := s.store.EndPrefill(ctx, c.UserID, lease); eerr != nil {
		s.log.WarnContext(ctx, "could not end the prefill lease; links wait until it expires", "error", eerr)
	}
	if errors.Is(err, ErrAccountGone) {
		return Account{}, s.goneError(ctx, rec, err, ErrDeauthorized)
	}
	if err != nil {
		return Account{}, err
	}
	if prefill.Email != "" || prefill.BusinessProfile.Name != "" || prefill.BusinessProfile.URL != "" {
		// Stripe has them now: staff see these, and the duplicate_email
		// signal compares this email from now on.
		if err := s.store.RecordPrefill(ctx, c.UserID, prefill); err != nil {
			return Account{}, err
		}
	}
	return rec.Account(s.now()), nil
}

// beginPrefill takes the account's prefill lease. Another update's lease
// held answers ErrUpdateInProgress at once, with when it ends: waiting for
// it would hold this function and read the table until then. Once the
// first link was requested no lease is granted: the KYC information is
// Stripe's.
func (s *Service) beginPrefill(ctx context.Context, userID string) (Lease, error) {
	now := s.now()
	lease := s.newLease(s.policy.StripeCallLease)
	rec, taken, err := s.store.BeginPrefill(ctx, userID, now, lease)
	switch {
	case err != nil:
		return lease, err
	case taken:
		return lease, nil
	case rec.State.Deauthorized:
		return lease, ErrDeauthorized
	case !rec.FirstLinkAt.IsZero():
		return lease, ErrKYCLocked
	case !rec.PrefillLease.Until.After(now):
		return lease, StorageFailed(errors.New("the prefill lease was refused without a holder"))
	}
	return lease, UpdateInProgress(rec.PrefillLease.Until.Sub(now))
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
