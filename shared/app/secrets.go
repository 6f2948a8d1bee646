package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
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
		StripeWebhookSecrets string `json:"stripe_webhook_secrets"` // comma-separated, newest first
	}
)

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
	webhooks []string
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
	key, webhooks, err := s.read(ctx)
	if err != nil {
		return nil, err
	}
	s.key, s.webhooks, s.readAt = key, webhooks, now()
	return s, nil
}

// read fetches every secret the process has an ARN for.
func (s *secretSource) read(ctx context.Context) (key string, webhooks []string, err error) {
	if s.keyARN != "" {
		var doc keySecretDocument
		if err := s.readJSON(ctx, s.keyARN, &doc, `{"stripe_secret_key":"sk_..."}`); err != nil {
			return "", nil, err
		}
		key = doc.StripeSecretKey
	}
	if s.webhookARN != "" {
		var doc webhookSecretDocument
		if err := s.readJSON(ctx, s.webhookARN, &doc, `{"stripe_webhook_secrets":"whsec_new,whsec_old"}`); err != nil {
			return "", nil, err
		}
		webhooks = config.SplitList(doc.StripeWebhookSecrets)
	}
	return key, webhooks, nil
}

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
		return s.key, s.webhooks
	}
	// Whatever happens, the next re-read waits a whole TTL: a failing
	// Secrets Manager must not add a read to every request.
	s.readAt = s.now()
	ctx, cancel := context.WithTimeout(context.Background(), secretReadTimeout)
	defer cancel()
	key, webhooks, err := s.read(ctx)
	if err == nil {
		err = s.usable(key, webhooks)
	}
	if err != nil {
		s.log.Warn("re-reading the Stripe secrets failed; keeping the last good values", "error", err.Error())
		return s.key, s.webhooks
	}
	if key != s.key || strings.Join(webhooks, ",") != strings.Join(s.webhooks, ",") {
		s.log.Info("Stripe secrets changed in Secrets Manager; using the new values", "webhook_secrets", len(webhooks))
	}
	s.key, s.webhooks = key, webhooks
	return key, webhooks
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
