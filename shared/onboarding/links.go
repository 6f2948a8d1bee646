package onboarding

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"time"
)

// refreshTokenBytes is the entropy of a refresh token: 256 bits.
const refreshTokenBytes = 32

// refreshTokenLen is the base64url length of refreshTokenBytes.
const refreshTokenLen = 43

// ParseRefreshToken checks the shape of a token from a URL before any lookup,
// so garbage never reaches the store. (A loop, not a regexp: package-level
// regexps compile during every cold start.)
func ParseRefreshToken(raw string) (string, bool) {
	if len(raw) != refreshTokenLen {
		return "", false
	}
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return "", false
		}
	}
	return raw, true
}

// CreateOnboardingLink issues a Stripe-hosted onboarding link for the caller.
func (s *Service) CreateOnboardingLink(ctx context.Context, c Caller) (OnboardingLink, error) {
	rec, err := s.startOnboarding(ctx, c)
	if err != nil {
		return OnboardingLink{}, err
	}
	link, err := s.issueLink(ctx, rec, time.Time{})
	if errors.Is(err, ErrAccountGone) {
		return OnboardingLink{}, s.goneError(ctx, rec, err, ErrDeauthorized)
	}
	return link, err
}

// startOnboarding is what every way into Stripe's onboarding does first,
// hosted (an account link) or embedded (an account session): the caller's
// account must still be able to onboard, the call counts against the
// user's hourly link limit, and the first one takes the KYC lock before
// Stripe is asked, since Stripe locks prefill once onboarding can begin.
func (s *Service) startOnboarding(ctx context.Context, c Caller) (AccountRecord, error) {
	rec, err := s.accountFor(ctx, c)
	if err != nil {
		return rec, err
	}
	switch {
	case rec.State.Deauthorized:
		return rec, ErrDeauthorized
	case DeriveStatus(rec.State, rec.ServiceAgreement, s.now()) == StatusRejected:
		return rec, ErrRejected
	}
	if err := s.takeLinkSlot(ctx, rec.UserID); err != nil {
		return rec, err
	}
	if rec.FirstLinkAt.IsZero() {
		if rec, err = s.lockPrefill(ctx, rec.UserID, rec.AccountID); err != nil {
			return rec, err
		}
	}
	return rec, nil
}

// CreateOnboardingSession issues an Account Session for Stripe's embedded
// onboarding component (Connect.js account-onboarding) on the platform's
// own page. It shares everything with CreateOnboardingLink but the page the
// user fills in: the same refusals, the same hourly limit and the same KYC
// lock. The client secret is handed to the caller only: never stored or
// logged.
func (s *Service) CreateOnboardingSession(ctx context.Context, c Caller) (OnboardingSession, error) {
	if s.policy.PublishableKey == "" {
		// Connect.js cannot start without it: refuse before any Stripe call.
		return OnboardingSession{}, ErrEmbeddedUnconfigured
	}
	rec, err := s.startOnboarding(ctx, c)
	if err != nil {
		return OnboardingSession{}, err
	}
	components := []string{ComponentAccountOnboarding}
	for _, c := range s.policy.EmbeddedComponents {
		if !slices.Contains(components, c) {
			components = append(components, c)
		}
	}
	sess, err := s.connect.CreateAccountSession(ctx, rec.AccountID, components)
	if errors.Is(err, ErrAccountGone) {
		return OnboardingSession{}, s.goneError(ctx, rec, err, ErrDeauthorized)
	}
	if err != nil {
		return OnboardingSession{}, err
	}
	return OnboardingSession{ClientSecret: sess.ClientSecret, ExpiresAt: sess.ExpiresAt.UTC(), PublishableKey: s.policy.PublishableKey}, nil
}

// RefreshOnboardingLink turns a refresh token into the URL to send the
// browser to: a fresh Stripe link, or the frontend's onboarding page with
// ?error= saying why not. It never returns any other URL, whatever the
// token or Stripe say. A token makes one link: it is reserved while its link
// is asked for, and spent only once the link exists, so a Stripe failure
// leaves it good for another try.
func (s *Service) RefreshOnboardingLink(ctx context.Context, rawToken string) (string, error) {
	token, ok := ParseRefreshToken(rawToken)
	if !ok {
		return s.policy.ErrorPage(ErrTokenInvalid.Code), ErrTokenInvalid
	}
	hash := hashHex(token)
	lease := s.newLease(s.policy.StripeCallLease)
	t, err := s.store.ClaimRefreshToken(ctx, hash, s.now(), lease)
	if err != nil {
		return s.errorPage(err), err
	}
	// The redemption ends with its reservation, so that a redeemer taking
	// over an expired one cannot make a second link alongside it.
	redeemCtx, cancel := context.WithDeadline(ctx, lease.Until)
	defer cancel()
	link, err := s.redeem(redeemCtx, t)
	if err != nil {
		if rerr := s.store.ReleaseRefreshToken(ctx, hash, lease); rerr != nil {
			s.log.WarnContext(ctx, "could not release a refresh token; usable again when its reservation ends", "error", rerr)
		}
		return s.errorPage(err), err
	}
	if err := s.store.SpendRefreshToken(ctx, hash, s.now()); err != nil {
		// The link exists; until its reservation ends nobody else redeems it.
		s.log.WarnContext(ctx, "could not mark a refresh token used", "error", err)
	}
	return link.URL, nil
}

// redeem issues the link a claimed refresh token asks for, if its account
// can still onboard. Taking the KYC lock reads the account too: a link
// issued here locks prefill like the first one, whatever happened to that.
// A token whose link was minted moments ago is a bounce: Stripe sent the
// browser straight back instead of showing its page, as it does for an
// account it rejected. Stripe is asked about the account before another
// link is made, so a rejection whose webhook has not arrived ends the
// chain here instead of at the user's hourly link limit.
func (s *Service) redeem(ctx context.Context, t RefreshToken) (OnboardingLink, error) {
	rec, err := s.lockPrefill(ctx, t.UserID, t.AccountID)
	switch {
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrDeauthorized):
		return OnboardingLink{}, ErrAccountUnavailable
	case err != nil:
		return OnboardingLink{}, err
	case DeriveStatus(rec.State, rec.ServiceAgreement, s.now()) == StatusRejected:
		return OnboardingLink{}, ErrAccountUnavailable
	}
	// The slot counts the bounce's read too: over the limit, Stripe is not
	// called at all.
	if err := s.takeLinkSlot(ctx, rec.UserID); err != nil {
		return OnboardingLink{}, err
	}
	if s.bounced(t) {
		if rec, err = s.rereadOnBounce(ctx, rec); err != nil {
			return OnboardingLink{}, err
		}
	}
	link, err := s.issueLink(ctx, rec, t.ExpiresAt)
	if errors.Is(err, ErrAccountGone) {
		return OnboardingLink{}, s.goneError(ctx, rec, err, ErrAccountUnavailable)
	}
	return link, err
}

// bounced says whether t comes back within the bounce window of its link
// being minted. Tokens stored before IssuedAt existed never count.
func (s *Service) bounced(t RefreshToken) bool {
	return !t.IssuedAt.IsZero() && s.now().Sub(t.IssuedAt) < s.policy.RefreshBounceWindow
}

// rereadOnBounce reads the account from Stripe and stores what it says
// (cause refresh). A rejected or gone account is ErrAccountUnavailable;
// a failed read is returned, so the token stays usable.
func (s *Service) rereadOnBounce(ctx context.Context, rec AccountRecord) (AccountRecord, error) {
	saved, err := s.refreshState(ctx, rec)
	if err != nil {
		return rec, err
	}
	switch {
	case saved.State.Deauthorized, DeriveStatus(saved.State, saved.ServiceAgreement, s.now()) == StatusRejected:
		return saved, ErrAccountUnavailable
	}
	return saved, nil
}

// errorPage says on the frontend's onboarding page why a refresh gave no
// link. Anything but these few reasons reads as an expired link.
func (s *Service) errorPage(err error) string {
	code := ErrTokenInvalid.Code
	if e, ok := AsError(err); ok {
		switch {
		case e.Kind == KindProviderUnavailable:
			code = ErrStripeUnavailable.Code
		case e.Kind == KindRateLimited, e.Code == ErrAccountUnavailable.Code:
			code = e.Code
		}
	}
	return s.policy.ErrorPage(code)
}

// takeLinkSlot counts one Stripe link (account link, login link or
// Account Session) against the user's hourly limit.
func (s *Service) takeLinkSlot(ctx context.Context, userID string) error {
	return s.takeHourlySlot(ctx, "links#"+userID, s.policy.LinksPerHour)
}

// takeUpdateSlot counts one Stripe account write (a prefill update, or a
// creation attempt after a refusal) against the user's hourly budget.
func (s *Service) takeUpdateSlot(ctx context.Context, userID string) error {
	return s.takeHourlySlot(ctx, "updates#"+userID, s.policy.UpdatesPerHour)
}

// takeHourlySlot counts one use of key against limit uses in any rolling
// hour; past it, RateLimited with when a use is possible again.
func (s *Service) takeHourlySlot(ctx context.Context, key string, limit int) error {
	now := s.now()
	ok, retryAt, err := s.store.TakeSlot(ctx, key, limit, time.Hour, now)
	if err != nil {
		return err
	}
	if !ok {
		return RateLimited(retryAt.Sub(now))
	}
	return nil
}

// prefillPoll is how often a link waiting for a prefill update looks again.
const prefillPoll = 50 * time.Millisecond

// lockPrefill records that the account's first onboarding link is being
// requested, before any link is: Stripe locks KYC prefill once a link
// exists, so no prefill update may reach Stripe after this. A prefill update
// already on its way holds a lease: the lock waits until it is through.
func (s *Service) lockPrefill(ctx context.Context, userID, accountID string) (AccountRecord, error) {
	for {
		now := s.now()
		rec, locked, err := s.store.LockPrefill(ctx, userID, accountID, now)
		switch {
		case err != nil:
			return rec, err
		case locked:
			return rec, nil
		case rec.AccountID != accountID:
			return rec, ErrNotFound
		case rec.State.Deauthorized:
			return rec, ErrDeauthorized
		case !rec.PrefillLease.Until.After(now):
			return rec, StorageFailed(errors.New("the KYC lock was refused without a live prefill lease"))
		}
		if err := s.sleep(ctx, min(rec.PrefillLease.Until.Sub(now), prefillPoll)); err != nil {
			return rec, StorageFailed(err)
		}
	}
}

// issueLink stores a new refresh token and asks Stripe for a link carrying
// it. The token is stored first, so a link never points at a token that
// does not exist. A link minted by a refresh passes its chain's expiry:
// the new token keeps it, so refreshing never extends a chain.
func (s *Service) issueLink(ctx context.Context, rec AccountRecord, chainExpiry time.Time) (OnboardingLink, error) {
	token := s.newSecret(refreshTokenBytes)
	now := s.now()
	expires := now.Add(s.policy.RefreshTokenTTL)
	if !chainExpiry.IsZero() && chainExpiry.Before(expires) {
		expires = chainExpiry
	}
	err := s.store.PutRefreshToken(ctx, RefreshToken{
		Hash: hashHex(token), UserID: rec.UserID, AccountID: rec.AccountID, ExpiresAt: expires, IssuedAt: now,
	})
	// A 256-bit token's hash already stored can only be this very write,
	// retried by the SDK after its answer was lost.
	if err != nil && !errors.Is(err, ErrConflict) {
		return OnboardingLink{}, err
	}
	return s.connect.CreateOnboardingLink(ctx, LinkRequest{
		AccountID:     rec.AccountID,
		RefreshURL:    withQuery(s.policy.RefreshURL, "token", token),
		ReturnURL:     s.policy.ReturnURL,
		CollectFields: s.policy.CollectFields,
		// Judged from the stored state: a webhook or re-read keeps it current.
		IncludeFutureRequirements: rec.State.HasFutureRequirements(),
	})
}

func withQuery(base, key, value string) string {
	u, err := url.Parse(base)
	if err != nil {
		return base // Policy.Check refuses such a base at start-up
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}
