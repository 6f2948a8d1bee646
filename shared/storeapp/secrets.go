package storeapp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/connectexpress/onboarding/shared/config"
)

// The documents the two secrets hold (template.yaml creates them).
type (
	keySecretDocument struct {
		StripeSecretKey string `json:"stripe_secret_key"`
	}
	webhookSecretDocument struct {
		// The endpoint's current secret(s), comma-separated, newest first.
		// Entries here never expire: a document written before retired
		// secrets had expiries keeps working as it did, and
		// cmd/registerwebhook -replace moves them to Retired.
		StripeWebhookSecrets string `json:"stripe_webhook_secrets"`
		// Secrets a rotation replaced, each verifying only until its expiry.
		Retired []RetiredWebhookSecret `json:"stripe_webhook_secrets_retired,omitempty"`
	}
)

// RetiredWebhookSecret is a signing secret a rotation replaced, kept so
// deliveries signed before the switch still verify, and no longer than
// ExpiresAt: a leaked retired secret must not sign events for ever. Stripe's
// own roll keeps the old secret working for up to 24 hours
// (https://docs.stripe.com/webhooks#roll-endpoint-secrets).
type RetiredWebhookSecret struct {
	Secret    string    `json:"secret"`
	ExpiresAt time.Time `json:"expires_at"` // RFC 3339
}

// secretReadTimeout bounds one Secrets Manager read, at a cold start or a
// later re-read on a request's path.
const secretReadTimeout = 3 * time.Second

// secretSource holds the Stripe secrets read from Secrets Manager and reads
// them again once they are older than ttl, so a rotated API key or webhook
// signing secret takes effect without a redeploy. A re-read that fails, or
// that brings values the service cannot use, keeps the last good values.
// Values are never logged, and errors never carry them.
type secretSource struct {
	env                awsEnv
	http               *http.Client
	keyARN, webhookARN string
	ttl                time.Duration
	now                func() time.Time
	log                *slog.Logger
	// livemode is the mode the process started in: a key of the other mode
	// arriving by rotation is refused.
	livemode bool

	mu       sync.Mutex
	key      string
	webhooks []string // current: no expiry
	retired  []RetiredWebhookSecret
	readAt   time.Time
}

// newSecretSource reads the secrets a process has ARNs for, once.
func newSecretSource(ctx context.Context, e awsEnv, cfg config.Config, now func() time.Time, log *slog.Logger) (*secretSource, error) {
	s := &secretSource{
		env: e, http: &http.Client{Timeout: secretReadTimeout},
		keyARN: cfg.SecretARN, webhookARN: cfg.WebhookSecretARN,
		ttl: cfg.SecretsTTL, now: now, log: log,
	}
	ctx, cancel := context.WithTimeout(ctx, secretReadTimeout)
	defer cancel()
	key, webhooks, retired, err := s.read(ctx)
	if err != nil {
		return nil, err
	}
	s.key, s.webhooks, s.retired, s.readAt = key, webhooks, retired, now()
	return s, nil
}

// read fetches every secret the process has an ARN for. Retired signing
// secrets already past their expiry are dropped here.
func (s *secretSource) read(ctx context.Context) (key string, webhooks []string, retired []RetiredWebhookSecret, err error) {
	if s.keyARN != "" {
		var doc keySecretDocument
		if err := s.readJSON(ctx, s.keyARN, &doc, `{"stripe_secret_key":"sk_..."}`); err != nil {
			return "", nil, nil, err
		}
		key = doc.StripeSecretKey
	}
	if s.webhookARN != "" {
		var doc webhookSecretDocument
		if err := s.readJSON(ctx, s.webhookARN, &doc, webhookDocumentShape); err != nil {
			return "", nil, nil, err
		}
		webhooks = config.SplitList(doc.StripeWebhookSecrets)
		if len(webhooks) > 1 {
			// The form written before retired secrets expired: its older
			// entries keep verifying until the next rotation moves them.
			s.log.Warn("stripe_webhook_secrets holds more than one secret, and these never expire: "+
				"make register-webhook ARGS=-replace moves the older ones to stripe_webhook_secrets_retired with an expiry", "webhook_secrets", len(webhooks))
		}
		dropped := 0
		for _, r := range doc.Retired {
			// A retired secret the service cannot use refuses the whole
			// document, as a bad current one does: at start the function
			// does not start, on a re-read the last good values stay.
			if err := config.CheckWebhookSecret(r.Secret); err != nil {
				return "", nil, nil, errors.New("stripe_webhook_secrets_retired: " + err.Error())
			}
			if r.ExpiresAt.IsZero() {
				return "", nil, nil, errors.New("stripe_webhook_secrets_retired: every entry needs its expires_at (RFC 3339): a retired secret never verifies for ever")
			}
			if !s.now().Before(r.ExpiresAt) {
				dropped++
				continue
			}
			retired = append(retired, r)
		}
		if dropped > 0 {
			s.log.Info("retired webhook signing secrets past their expiry dropped", "expired_secrets", dropped)
		}
	}
	return key, webhooks, retired, nil
}

const webhookDocumentShape = `{"stripe_webhook_secrets":"whsec_new","stripe_webhook_secrets_retired":[{"secret":"whsec_old","expires_at":"2006-01-02T15:04:05Z"}]}`

func (s *secretSource) readJSON(ctx context.Context, arn string, doc any, shape string) error {
	secret, err := s.env.getSecretString(ctx, s.http, arn)
	if err != nil {
		return fmt.Errorf("read secret %s: %w", arn, err)
	}
	if json.Unmarshal([]byte(secret), doc) != nil {
		return errors.New("secret " + arn + " must be JSON: " + shape)
	}
	return nil
}

// current returns the secrets, reading them again first when they are
// older than the TTL.
func (s *secretSource) current() (string, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.now().Sub(s.readAt) < s.ttl {
		return s.key, s.verifying()
	}
	// Whatever happens, the next re-read waits a whole TTL: a failing
	// Secrets Manager must not add a read to every request.
	s.readAt = s.now()
	ctx, cancel := context.WithTimeout(context.Background(), secretReadTimeout)
	defer cancel()
	key, webhooks, retired, err := s.read(ctx)
	if err == nil {
		err = s.usable(key, webhooks)
	}
	if err != nil {
		s.log.Warn("re-reading the Stripe secrets failed; keeping the last good values", "error", err.Error())
		return s.key, s.verifying()
	}
	if key != s.key || strings.Join(webhooks, ",") != strings.Join(s.webhooks, ",") || len(retired) != len(s.retired) {
		s.log.Info("Stripe secrets changed in Secrets Manager; using the new values", "webhook_secrets", len(webhooks), "retired_webhook_secrets", len(retired))
	}
	s.key, s.webhooks, s.retired = key, webhooks, retired
	return key, s.verifying()
}

// verifying is the signing secrets an event may be signed with now: the
// current ones and the retired ones not yet expired. The expiry is checked
// at each use, so a retired secret stops verifying at its expiry even
// between two reads. Call with mu held.
func (s *secretSource) verifying() []string {
	if len(s.retired) == 0 {
		return s.webhooks
	}
	out := slices.Clone(s.webhooks)
	now := s.now()
	for _, r := range s.retired {
		if now.Before(r.ExpiresAt) {
			out = append(out, r.Secret)
		}
	}
	return out
}

// usable refuses rotated values the service could not run with, as
// strictly as at start-up: an API key that is none, or of the other mode,
// and signing secrets that are not whsec_ secrets.
func (s *secretSource) usable(key string, webhooks []string) error {
	if s.keyARN != "" {
		switch mode := config.KeyMode(key); {
		case mode == "":
			return errors.New("the rotated API key is not a Stripe secret or restricted key")
		case (mode == config.ModeLive) != s.livemode:
			return errors.New("the rotated API key is of the other Stripe mode")
		}
	}
	if s.webhookARN != "" {
		if err := config.CheckWebhookSecrets(webhooks); err != nil {
			return errors.New("the rotated webhook secret: " + err.Error())
		}
	}
	return nil
}

// StripeKey and WebhookSecrets give the current values to the adapters.
func (s *secretSource) StripeKey() string {
	key, _ := s.current()
	return key
}

func (s *secretSource) WebhookSecrets() []string {
	_, webhooks := s.current()
	return webhooks
}
