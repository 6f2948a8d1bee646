// Command devevent posts a signed Connect webhook event to the dev server,
// as Stripe would, so the webhook path can be tried with no Stripe account:
//
//	go run ./cmd/devevent -secret whsec_... -account acct_... -user alice -state active
//
// The secret is the STRIPE_WEBHOOK_SECRET the dev server printed (or was
// given). Re-running with the same -id replays an event; an older -created
// sends older news.
package main

import (
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/connectexpress/onboarding/internal/stripeevents"
)

var states = map[string]stripeevents.AccountSnapshot{
	"onboarding":           {CurrentlyDue: []string{"external_account", "individual.dob.day"}},
	"pending_verification": {DetailsSubmitted: true},
	"restricted":           {DetailsSubmitted: true, CurrentlyDue: []string{"individual.verification.document"}},
	"active":               {DetailsSubmitted: true, ChargesEnabled: true, PayoutsEnabled: true},
	"rejected":             {DetailsSubmitted: true, DisabledReason: "rejected.fraud"},
}

func main() {
	url := flag.String("url", "http://127.0.0.1:3000/webhooks/stripe", "the webhook route")
	secret := flag.String("secret", os.Getenv("STRIPE_WEBHOOK_SECRET"), "the endpoint's signing secret (whsec_...)")
	account := flag.String("account", "", "the connected account id (acct_...), from GET /accounts/me")
	user := flag.String("user", "", "metadata.platform_user_id; empty sends an account without our metadata")
	state := flag.String("state", "active", "account.updated snapshot: onboarding, pending_verification, restricted, active or rejected")
	typ := flag.String("type", "account.updated", "account.updated, capability.updated or account.application.deauthorized")
	id := flag.String("id", "", "event id (default: a new evt_...)")
	created := flag.Int64("created", time.Now().Unix(), "the event's created time, Unix seconds")
	flag.Parse()

	if *secret == "" || *account == "" {
		fmt.Fprintln(os.Stderr, "devevent: -secret and -account are required")
		os.Exit(2)
	}
	if *id == "" {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		*id = "evt_dev" + hex.EncodeToString(b)
	}
	var payload []byte
	switch *typ {
	case "account.updated":
		snap, ok := states[*state]
		if !ok {
			fmt.Fprintf(os.Stderr, "devevent: unknown -state %q\n", *state)
			os.Exit(2)
		}
		payload = stripeevents.AccountUpdated(*id, *account, *user, *created, snap)
	case "capability.updated":
		payload = stripeevents.CapabilityUpdated(*id, *account, "transfers", "active", *created)
	case "account.application.deauthorized":
		payload = stripeevents.Deauthorized(*id, *account, *created)
	default:
		fmt.Fprintf(os.Stderr, "devevent: unknown -type %q\n", *typ)
		os.Exit(2)
	}
	req, err := http.NewRequest(http.MethodPost, *url, strings.NewReader(string(payload)))
	if err != nil {
		fmt.Fprintln(os.Stderr, "devevent:", err)
		os.Exit(1)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Stripe-Signature", stripeevents.Sign(payload, *secret, time.Now()))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintln(os.Stderr, "devevent:", err)
		os.Exit(1)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Printf("%s %s -> %d %s\n", *typ, *id, resp.StatusCode, strings.TrimSpace(string(body)))
	if resp.StatusCode >= 300 {
		os.Exit(1)
	}
}
