package onboarding

import (
	"context"
	"errors"
	"net/url"
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
	rec, err := s.accountFor(ctx, c)
	if err != nil {
		return OnboardingLink{}, err
	}
	if rec.State.Deauthorized {
		return OnboardingLink{}, ErrDeauthorized
	}
	return s.issueLink(ctx, rec.UserID, rec.AccountID, rec.FirstLinkAt.IsZero())
}

// RefreshOnboardingLink turns a refresh token into the URL to send the
// browser to: a fresh Stripe link, or the frontend's link-expired page. It
// never returns any other URL, whatever the token or Stripe say.
func (s *Service) RefreshOnboardingLink(ctx context.Context, rawToken string) (string, error) {
	token, ok := ParseRefreshToken(rawToken)
	if !ok {
		return s.policy.LinkExpiredURL, ErrTokenInvalid
	}
	t, err := s.store.ConsumeRefreshToken(ctx, hashHex(token), s.now())
	if err != nil {
		return s.policy.LinkExpiredURL, err
	}
	link, err := s.issueLink(ctx, t.UserID, t.AccountID, false)
	if err != nil {
		return s.policy.LinkExpiredURL, err
	}
	return link.URL, nil
}

// issueLink stores a new refresh token and asks Stripe for a link carrying
// it. The token is stored first, so a link never points at a token that
// does not exist.
func (s *Service) issueLink(ctx context.Context, userID, accountID string, first bool) (OnboardingLink, error) {
	token := s.newSecret(refreshTokenBytes)
	now := s.now()
	err := s.store.PutRefreshToken(ctx, RefreshToken{
		Hash: hashHex(token), UserID: userID, AccountID: accountID, ExpiresAt: now.Add(s.policy.RefreshTokenTTL),
	})
	if err != nil {
		return OnboardingLink{}, err
	}
	link, err := s.connect.CreateOnboardingLink(ctx, LinkRequest{
		AccountID:     accountID,
		RefreshURL:    withQuery(s.policy.RefreshURL, "token", token),
		ReturnURL:     s.policy.ReturnURL,
		CollectFields: s.policy.CollectFields,
	})
	if err != nil {
		return OnboardingLink{}, err
	}
	if first {
		// Stripe locks KYC prefill once a link exists; record it after the
		// link really exists, so a failed call does not lock the user out.
		if err := s.store.MarkFirstLink(ctx, userID, now); err != nil && !errors.Is(err, ErrConflict) {
			return OnboardingLink{}, err
		}
	}
	return link, nil
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
