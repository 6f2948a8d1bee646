// Package stripeconnect adapts Stripe Connect (stripe-go v76) to the
// onboarding core: it implements onboarding.Connect, and verifies and
// decodes Connect webhook events into onboarding.AccountEvent.
//
// It is the only package that imports stripe-go. It never logs secrets,
// link URLs or request bodies.
package stripeconnect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/account"
	"github.com/stripe/stripe-go/v76/accountlink"
	"github.com/stripe/stripe-go/v76/accountsession"
	"github.com/stripe/stripe-go/v76/form"
	"github.com/stripe/stripe-go/v76/loginlink"

	"github.com/connectexpress/onboarding/shared/onboarding"
)

// Config says how to reach Stripe.
type Config struct {
	SecretKey string
	// SecretKeyFunc, when set, gives the key for each request instead of
	// SecretKey: a key rotated in Secrets Manager takes effect without a
	// new process.
	SecretKeyFunc func() string
	// APIBase overrides https://api.stripe.com (stripe-mock, a test proxy).
	APIBase string
	// Timeout bounds each HTTP attempt. With MaxNetworkRetries it must stay
	// well below API Gateway's 30 s integration timeout.
	Timeout           time.Duration
	MaxNetworkRetries int64
	// Transport, when set, carries the requests (tests and benchmarks count
	// them with it); Timeout still applies.
	Transport http.RoundTripper
}

// Client implements onboarding.Connect with injected stripe-go resource
// clients: never the package-global stripe.Key, and not client.API, which
// links every Stripe resource into the binary (+2.7 MiB, slower cold start).
type Client struct {
	api       stripe.Backend
	key       func() string
	linkHosts linkHosts
}

// The resource clients are values: built per request with the current key.
func (c *Client) accounts() account.Client         { return account.Client{B: c.api, Key: c.key()} }
func (c *Client) accountLinks() accountlink.Client { return accountlink.Client{B: c.api, Key: c.key()} }
func (c *Client) loginLinks() loginlink.Client     { return loginlink.Client{B: c.api, Key: c.key()} }
func (c *Client) accountSessions() accountsession.Client {
	return accountsession.Client{B: c.api, Key: c.key()}
}

var _ onboarding.Connect = (*Client)(nil)

// New builds a Client. Build it once per cold start.
func New(cfg Config) *Client {
	if cfg.Timeout == 0 {
		cfg.Timeout = 8 * time.Second
	}
	backendCfg := &stripe.BackendConfig{
		HTTPClient:        &http.Client{Timeout: cfg.Timeout, Transport: cfg.Transport},
		MaxNetworkRetries: stripe.Int64(cfg.MaxNetworkRetries),
		// stripe-go's own log lines name request paths (account ids) and, at
		// debug level, whole response bodies (link URLs, emails): it stays
		// silent, and the request log line says how each call ended.
		LeveledLogger: &stripe.LeveledLogger{Level: stripe.LevelNull},
	}
	if cfg.APIBase != "" {
		backendCfg.URL = stripe.String(cfg.APIBase)
	}
	api := stripe.GetBackendWithConfig(stripe.APIBackend, backendCfg)
	key := cfg.SecretKeyFunc
	if key == nil {
		key = func() string { return cfg.SecretKey }
	}
	return &Client{api: api, key: key, linkHosts: linkHostsFor(cfg.APIBase)}
}

// stripeLinkHost serves Stripe's hosted onboarding and the Express
// Dashboard: the only place a real Stripe link may send a browser.
const stripeLinkHost = "connect.stripe.com"

// linkHosts says where a link URL from Stripe may point. The browser is
// redirected there, so a link anywhere else (a tampered answer, a
// misconfigured proxy) is refused before any redirect.
type linkHosts struct {
	// devBase is the API base's scheme and host in development: the
	// simulator serves its hosted pages on its own host.
	devBase *url.URL
}

func linkHostsFor(apiBase string) linkHosts {
	if apiBase == "" {
		return linkHosts{}
	}
	u, err := url.Parse(apiBase)
	if err != nil {
		return linkHosts{}
	}
	return linkHosts{devBase: u}
}

// check returns an error, naming only the host (the URL is a bearer
// credential), when raw is not a link a browser may be sent to.
func (h linkHosts) check(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.User != nil {
		return errors.New("stripe: the link URL is malformed")
	}
	host := strings.ToLower(u.Hostname())
	switch {
	case u.Scheme == "https" && host == stripeLinkHost:
		return nil
	case h.devBase == nil:
	case u.Scheme == h.devBase.Scheme && strings.EqualFold(u.Host, h.devBase.Host):
		return nil
	case u.Scheme == "https" && strings.HasSuffix(host, ".stripe.me"):
		// stripe-mock's fixture links point at Stripe's own development
		// domain; accepted only when STRIPE_API_BASE is set.
		return nil
	}
	return fmt.Errorf("stripe: the link URL points at %s://%s, not at %s", u.Scheme, host, stripeLinkHost)
}

// CreateAccount creates an Express account with the platform's prefill.
// The form is assembled here, not by stripe-go: its way to name any
// capability (extra parameters) encodes a Go map, in a new order each time,
// and a replay under the same Idempotency-Key must send the same bytes or
// Stripe answers idempotency_error. Capabilities go in the order of the
// stored parameters; everything else is encoded from stripe-go's structs,
// whose order is fixed (and whose metadata map it sorts).
func (c *Client) CreateAccount(ctx context.Context, p onboarding.CreateAccountParams, idempotencyKey string) (onboarding.CreatedAccount, error) {
	params := &stripe.AccountParams{
		Type:          stripe.String(string(stripe.AccountTypeExpress)),
		Country:       stripe.String(p.Country),
		Metadata:      map[string]string{MetadataUserID: p.PlatformUserID},
		TOSAcceptance: &stripe.AccountTOSAcceptanceParams{ServiceAgreement: stripe.String(p.ServiceAgreement)},
	}
	if p.CreationID != "" {
		params.Metadata[MetadataCreationID] = p.CreationID
	}
	applyPrefill(params, p.Prefill)
	params.Context = ctx
	params.SetIdempotencyKey(idempotencyKey)
	body := &form.Values{}
	form.AppendTo(body, params)
	for _, capability := range p.Capabilities {
		body.Add("capabilities["+capability+"][requested]", "true")
	}
	acct := &stripe.Account{}
	accounts := c.accounts()
	if err := accounts.B.CallRaw(http.MethodPost, "/v1/accounts", accounts.Key, body, &params.Params, acct); err != nil {
		return onboarding.CreatedAccount{}, mapError(err)
	}
	obj, err := decodeAccount(acct.LastResponse.RawJSON)
	if err != nil {
		return onboarding.CreatedAccount{}, onboarding.ErrStripeUnavailable.WithCause(err)
	}
	return onboarding.CreatedAccount{ID: acct.ID, Country: obj.Country, State: obj.state()}, nil
}

// maxListedAccounts bounds the search for an account an earlier attempt
// made (ten pages): past it the search fails rather than guess.
const maxListedAccounts = 1000

// FindCreatedAccount pages through the connected accounts created since
// q.Since (newest first) for the one whose metadata carries q's user and
// creation id, and reads it.
func (c *Client) FindCreatedAccount(ctx context.Context, q onboarding.CreatedAccountQuery) (onboarding.CreatedAccount, bool, error) {
	params := &stripe.AccountListParams{CreatedRange: &stripe.RangeQueryParams{GreaterThanOrEqual: q.Since.Unix()}}
	params.Limit = stripe.Int64(100)
	params.Context = ctx
	it := c.accounts().List(params)
	for seen := 0; it.Next(); seen++ {
		if seen == maxListedAccounts {
			return onboarding.CreatedAccount{}, false, onboarding.ErrStripeUnavailable.WithCause(
				fmt.Errorf("more than %d accounts created since %s: not searching further", maxListedAccounts, q.Since.UTC().Format(time.RFC3339)))
		}
		a := it.Account()
		if a.Metadata[MetadataUserID] != q.UserID || a.Metadata[MetadataCreationID] != q.CreationID {
			continue
		}
		state, err := c.GetAccount(ctx, a.ID)
		if err != nil {
			return onboarding.CreatedAccount{}, false, err
		}
		return onboarding.CreatedAccount{ID: a.ID, Country: a.Country, State: state}, true, nil
	}
	if err := it.Err(); err != nil {
		return onboarding.CreatedAccount{}, false, mapError(err)
	}
	return onboarding.CreatedAccount{}, false, nil
}

// GetAccount reads an account's current state.
func (c *Client) GetAccount(ctx context.Context, accountID string) (onboarding.AccountState, error) {
	params := &stripe.AccountParams{}
	params.Context = ctx
	return accountState(c.accounts().GetByID(accountID, params))
}

// accountState is the state of the account a call answered, decoded from
// its raw body as webhook events are (decodeAccount): both read alike.
func accountState(acct *stripe.Account, err error) (onboarding.AccountState, error) {
	if err != nil {
		return onboarding.AccountState{}, mapError(err)
	}
	obj, err := decodeAccount(acct.LastResponse.RawJSON)
	if err != nil {
		return onboarding.AccountState{}, onboarding.ErrStripeUnavailable.WithCause(err)
	}
	return obj.state(), nil
}

// UpdateAccount changes prefilled details (allowed until the first link).
func (c *Client) UpdateAccount(ctx context.Context, accountID string, p onboarding.Prefill) error {
	params := &stripe.AccountParams{}
	applyPrefill(params, p)
	params.Context = ctx
	_, err := c.accounts().Update(accountID, params)
	return mapError(err)
}

func applyPrefill(params *stripe.AccountParams, p onboarding.Prefill) {
	if p.Email != "" {
		params.Email = stripe.String(p.Email)
	}
	if p.BusinessType != "" {
		params.BusinessType = stripe.String(p.BusinessType)
	}
	bp := p.BusinessProfile
	if bp == (onboarding.BusinessProfile{}) {
		return
	}
	params.BusinessProfile = &stripe.AccountBusinessProfileParams{}
	set := func(dst **string, v string) {
		if v != "" {
			*dst = stripe.String(v)
		}
	}
	set(&params.BusinessProfile.URL, bp.URL)
	set(&params.BusinessProfile.ProductDescription, bp.ProductDescription)
	set(&params.BusinessProfile.Name, bp.Name)
	set(&params.BusinessProfile.MCC, bp.MCC)
}

// CreateOnboardingLink creates an account_onboarding Account Link: Express
// accounts refuse account_update.
func (c *Client) CreateOnboardingLink(ctx context.Context, r onboarding.LinkRequest) (onboarding.OnboardingLink, error) {
	params := &stripe.AccountLinkParams{
		Account:    stripe.String(r.AccountID),
		RefreshURL: stripe.String(r.RefreshURL),
		ReturnURL:  stripe.String(r.ReturnURL),
		Type:       stripe.String(string(stripe.AccountLinkTypeAccountOnboarding)),
	}
	// collection_options is always sent, so what is collected never rests on
	// Stripe's defaults (fields currently_due, future_requirements omit:
	// https://docs.stripe.com/api/account_links/create?api-version=2023-10-16).
	// future_requirements=include only when the account has some: the spec
	// (spec3.json, POST /v1/account_links, collection_options) requires
	// fields and takes future_requirements include or omit.
	fields := r.CollectFields
	if fields == "" {
		fields = "currently_due"
	}
	params.CollectionOptions = &stripe.AccountLinkCollectionOptionsParams{Fields: stripe.String(fields)}
	if r.IncludeFutureRequirements {
		params.CollectionOptions.FutureRequirements = stripe.String("include")
	}
	params.Context = ctx
	link, err := c.accountLinks().New(params)
	if err != nil {
		return onboarding.OnboardingLink{}, mapError(err)
	}
	if err := c.linkHosts.check(link.URL); err != nil {
		return onboarding.OnboardingLink{}, onboarding.ErrStripeUnavailable.WithCause(err)
	}
	return onboarding.OnboardingLink{URL: link.URL, ExpiresAt: time.Unix(link.ExpiresAt, 0).UTC()}, nil
}

// CreateAccountSession creates an Account Session enabling components for
// Connect.js's embedded components. POST /v1/account_sessions takes
// account_onboarding, documents, payment_details, payments and payouts in
// 2023-10-16, each {enabled} (spec3.json, paths./v1/account_sessions.post;
// https://docs.stripe.com/api/account_sessions/create?api-version=2023-10-16).
// The client secret is returned, never logged: it authorises the account.
func (c *Client) CreateAccountSession(ctx context.Context, accountID string, components []string) (onboarding.AccountSession, error) {
	enabled := func() *bool { return stripe.Bool(true) }
	var cp stripe.AccountSessionComponentsParams
	for _, name := range components {
		switch name {
		case "account_onboarding":
			cp.AccountOnboarding = &stripe.AccountSessionComponentsAccountOnboardingParams{Enabled: enabled()}
		case "documents":
			cp.Documents = &stripe.AccountSessionComponentsDocumentsParams{Enabled: enabled()}
		case "payment_details":
			cp.PaymentDetails = &stripe.AccountSessionComponentsPaymentDetailsParams{Enabled: enabled()}
		case "payments":
			cp.Payments = &stripe.AccountSessionComponentsPaymentsParams{Enabled: enabled()}
		case "payouts":
			cp.Payouts = &stripe.AccountSessionComponentsPayoutsParams{Enabled: enabled()}
		default:
			// Policy.Check refuses such a name at start.
			return onboarding.AccountSession{}, onboarding.Invalid("components", fmt.Sprintf("%q is not an embedded component", name))
		}
	}
	params := &stripe.AccountSessionParams{Account: stripe.String(accountID), Components: &cp}
	params.Context = ctx
	sess, err := c.accountSessions().New(params)
	if err != nil {
		return onboarding.AccountSession{}, mapError(err)
	}
	if sess.ClientSecret == "" {
		return onboarding.AccountSession{}, onboarding.ErrStripeUnavailable.WithCause(errors.New("stripeconnect: an account session without a client secret"))
	}
	return onboarding.AccountSession{ClientSecret: sess.ClientSecret, ExpiresAt: time.Unix(sess.ExpiresAt, 0).UTC()}, nil
}

// CreateDashboardLink creates an Express Dashboard login link.
func (c *Client) CreateDashboardLink(ctx context.Context, accountID string) (string, error) {
	params := &stripe.LoginLinkParams{Account: stripe.String(accountID)}
	params.Context = ctx
	link, err := c.loginLinks().New(params)
	if err != nil {
		return "", mapError(err)
	}
	if err := c.linkHosts.check(link.URL); err != nil {
		return "", onboarding.ErrStripeUnavailable.WithCause(err)
	}
	return link.URL, nil
}

// RejectAccount rejects an account (staff found fraud, or a terms of
// service breach) and returns the state Stripe answers with. The core
// names each attempt's Idempotency-Key: stripe-go's own retries of this
// call share it, and a later attempt is never answered with this one's
// saved refusal. In live mode Stripe refuses while any balance is not zero
// ("Live-mode accounts can only be rejected after all balances are zero",
// https://docs.stripe.com/api/account/reject): a ProviderRejected with
// Stripe's message.
func (c *Client) RejectAccount(ctx context.Context, accountID, reason, idempotencyKey string) (onboarding.AccountState, error) {
	params := &stripe.AccountRejectParams{Reason: stripe.String(reason)}
	params.Context = ctx
	params.SetIdempotencyKey(idempotencyKey)
	return accountState(c.accounts().Reject(accountID, params))
}

// mapError tells "Stripe refused our parameters" (the caller can fix the
// request; nothing was created) from everything else (we do not know).
func mapError(err error) error {
	if err == nil {
		return nil
	}
	var se *stripe.Error
	if errors.As(err, &se) {
		// Stripe's messages may echo what we sent (an email, a URL): logs
		// get only the codes.
		cause := fmt.Errorf("stripe: status %d, type %s, code %s, param %q, request %s",
			se.HTTPStatusCode, se.Type, se.Code, se.Param, se.RequestID)
		refused := (se.HTTPStatusCode == http.StatusBadRequest || se.HTTPStatusCode == http.StatusNotFound) &&
			se.Type == stripe.ErrorTypeInvalidRequest
		switch {
		case se.HTTPStatusCode == http.StatusForbidden && se.Code == stripe.ErrorCodeAccountInvalid:
			// "The provided key ... does not have access to account ... (or
			// that account does not exist). Application access may have been
			// revoked.": the account was deleted or disconnected from the
			// platform. https://docs.stripe.com/error-codes#account-invalid
			return onboarding.ErrAccountGone.WithCause(cause)
		case se.HTTPStatusCode == http.StatusUnauthorized || se.HTTPStatusCode == http.StatusForbidden:
			// The key itself: invalid, expired or revoked (401), or a
			// restricted key without the permission (403 without
			// account_invalid). https://docs.stripe.com/api/errors lists 401
			// "No valid API key provided" and 403 "The API key doesn't have
			// permissions to perform the request". No account is to blame.
			return onboarding.StripeKeyRefused(fmt.Errorf(
				"stripe refused the platform's API key: check STRIPE_SECRET_KEY (in AWS, the secret STRIPE_SECRET_ARN names) and the key's permissions: %w", cause))
		case se.Type == stripe.ErrorTypeIdempotency:
			// The key was used with other params: its first use may have
			// created something, so this is no clean refusal, and replaying
			// the key can only repeat it.
			return onboarding.StripeKeySpent(cause)
		case refused:
			msg := se.Msg
			if msg == "" {
				msg = "Stripe refused the request"
			}
			e := onboarding.ProviderRejected(se.Param, msg, cause)
			e.ProviderCode = string(se.Code)
			return e
		case se.HTTPStatusCode >= http.StatusInternalServerError && se.Type != "":
			// Stripe's own failure, which it saves under the request's
			// Idempotency-Key once execution began: a replay returns it.
			return onboarding.StripeKeySpent(cause)
		}
		return onboarding.ErrStripeUnavailable.WithCause(cause)
	}
	return onboarding.ErrStripeUnavailable.WithCause(transportCause(err))
}

// errUnreadableResponse stands for every error stripe-go makes from a body it
// could not decode: those quote up to 500 bytes of the body (a truncated
// account, a proxy's HTML page, an error without an error object), which may
// echo what we sent (an email, a URL).
var errUnreadableResponse = errors.New("stripe: response could not be decoded (body withheld)")

// transportCause keeps an error that is not a *stripe.Error for the logs
// only when it cannot carry response content: transport failures (the
// request never got a complete answer). Everything else came from decoding
// a response and is replaced.
func transportCause(err error) error {
	var urlErr *url.Error
	var netErr net.Error
	switch {
	case errors.As(err, &urlErr), errors.As(err, &netErr),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	}
	return errUnreadableResponse
}

// Account metadata keys set at creation: the platform user, and the
// creation claim the account came from.
const (
	MetadataUserID     = "platform_user_id"
	MetadataCreationID = "platform_creation_id"
)
