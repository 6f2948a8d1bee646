package devserver_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/connectexpress/onboarding/internal/testenv"
	"github.com/connectexpress/onboarding/shared/dynamostore"
	"github.com/connectexpress/onboarding/shared/httpapi"
	"github.com/connectexpress/onboarding/shared/onboarding"
)

// onboarded creates an account for user through the API and returns its id.
func onboarded(t *testing.T, s *testenv.Stack, user string) (string, string) {
	t.Helper()
	tok := s.Token(user, "")
	resp, body := s.Do(t, "POST", "/accounts", tok, `{}`)
	expectStatus(t, resp, body, http.StatusCreated)
	return decode[accountJSON](t, body).AccountID, tok
}

// seeded stores an account for user as a completed creation would, with
// its state as of version: events about older news than that change nothing.
func seeded(t *testing.T, s *testenv.Stack, user, acct string, version int64) {
	t.Helper()
	ctx := context.Background()
	claim := onboarding.CreationClaim{ClaimID: "seed-" + user, LeaseUntil: time.Now().Add(time.Minute), CreationID: "seed-" + user, AttemptSince: time.Now()}
	// A write the SDK retried after a lost answer conflicts with itself:
	// what counts is what is stored afterwards.
	if err := s.App.Store.ClaimCreation(ctx, user, claim, time.Now()); err != nil && !errors.Is(err, onboarding.ErrConflict) {
		t.Fatalf("seed %s: %v", user, err)
	}
	at := time.Unix(version, 0)
	rec := onboarding.AccountRecord{UserID: user, AccountID: acct, Country: "US", ServiceAgreement: "full", StateVersion: version, CreatedAt: at, UpdatedAt: at}
	if err := s.App.Store.CompleteCreation(ctx, rec, claim.ClaimID); err != nil && !errors.Is(err, onboarding.ErrConflict) {
		t.Fatalf("seed %s: %v", user, err)
	}
	if u, err := s.App.Store.GetUser(ctx, user); err != nil || u.Account == nil || u.Account.AccountID != acct {
		t.Fatalf("seed %s: stored %+v, %v", user, u, err)
	}
}

func status(t *testing.T, s *testenv.Stack, tok string) accountJSON {
	t.Helper()
	resp, body := s.Do(t, "GET", "/accounts/me", tok, "")
	expectStatus(t, resp, body, http.StatusOK)
	return decode[accountJSON](t, body)
}

var (
	snapDue    = testenv.AccountSnapshot{CurrentlyDue: []string{"external_account"}}
	snapReview = testenv.AccountSnapshot{DetailsSubmitted: true}
	snapActive = testenv.AccountSnapshot{DetailsSubmitted: true, ChargesEnabled: true, PayoutsEnabled: true}
)

func TestWebhookTurnsOnboardingIntoActiveAndIgnoresReplaysAndOlderNews(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{})
	acct, tok := onboarded(t, s, "frank")
	if got := status(t, s, tok).Status; got != "onboarding" {
		t.Fatalf("before: %s", got)
	}
	now := afterCreation()
	active := testenv.AccountUpdated("evt_active", acct, "frank", now, snapActive)
	if code, body := s.PostEvent(t, active); code != 200 || body != `{"received":true}` {
		t.Fatalf("deliver: %d %s", code, body)
	}
	if got := status(t, s, tok); got.Status != "active" || !got.ChargesEnabled || !got.PayoutsEnabled || !got.DetailsSubmitted {
		t.Fatalf("after: %+v", got)
	}
	if code, _ := s.PostEvent(t, active); code != 200 {
		t.Fatalf("replay: %d", code)
	}
	older := testenv.AccountUpdated("evt_older", acct, "frank", now-60, snapDue)
	if code, _ := s.PostEvent(t, older); code != 200 {
		t.Fatalf("older: %d", code)
	}
	if got := status(t, s, tok).Status; got != "active" {
		t.Fatalf("an older snapshot overwrote newer state: %s", got)
	}
	// Dashboard opens once details are submitted.
	resp, body := s.Do(t, "POST", "/accounts/me/dashboard-link", tok, "")
	expectStatus(t, resp, body, http.StatusOK)
	assertNoSecretsLogged(t, s, decode[struct {
		URL string `json:"url"`
	}](t, body).URL)
}

func TestWebhookSignatureChecks(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{Env: map[string]string{
		"STRIPE_WEBHOOK_SECRET": "whsec_new0123456789abcdefghijklmnopqrstuv,whsec_old0123456789abcdefghijklmnopqrstuv",
	}})
	acct, _ := onboarded(t, s, "gina")
	payload := testenv.AccountUpdated("evt_sig", acct, "gina", time.Now().Unix(), snapActive)
	now := time.Now()
	tests := []struct {
		name      string
		body      []byte
		signature string
		want      int
	}{
		{"missing header", payload, "", 400},
		{"malformed header", payload, "garbage", 400},
		{"wrong scheme", payload, strings.Replace(testenv.Sign(payload, "whsec_new0123456789abcdefghijklmnopqrstuv", now), "v1=", "v0=", 1), 400},
		{"wrong secret", payload, testenv.Sign(payload, "whsec_other", now), 400},
		{"stale", payload, testenv.Sign(payload, "whsec_new0123456789abcdefghijklmnopqrstuv", now.Add(-301*time.Second)), 400},
		{"future", payload, testenv.Sign(payload, "whsec_new0123456789abcdefghijklmnopqrstuv", now.Add(301*time.Second)), 400},
		{"tampered body", append([]byte(nil), strings.Replace(string(payload), `"charges_enabled":true`, `"charges_enabled":false`, 1)...), testenv.Sign(payload, "whsec_new0123456789abcdefghijklmnopqrstuv", now), 400},
		{"old secret after rotation", payload, testenv.Sign(payload, "whsec_old0123456789abcdefghijklmnopqrstuv", now), 200},
		{"new secret", payload, testenv.Sign(payload, "whsec_new0123456789abcdefghijklmnopqrstuv", now), 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := s.PostSigned(t, tt.body, tt.signature)
			if code != tt.want {
				t.Fatalf("status %d, want %d: %s", code, tt.want, body)
			}
			if tt.want == 400 {
				if e := decode[errorJSON](t, body); e.Error.Code != "invalid_signature" {
					t.Fatalf("envelope %s", body)
				}
			}
		})
	}
}

func TestWebhookAcceptsABase64Body(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{})
	acct, tok := onboarded(t, s, "hana")
	payload := testenv.AccountUpdated("evt_b64", acct, "hana", afterCreation(), snapActive)
	h := s.App.Handler(httpapi.Webhook)
	resp := h(context.Background(), testenv.HTTPEvent("POST", "/webhooks/stripe", base64.StdEncoding.EncodeToString(payload), true,
		map[string]string{"stripe-signature": testenv.Sign(payload, testenv.WebhookSecret, time.Now())}))
	if resp.StatusCode != 200 {
		t.Fatalf("base64 body: %d %s", resp.StatusCode, resp.Body)
	}
	if got := status(t, s, tok).Status; got != "active" {
		t.Fatalf("status %s", got)
	}
}

func TestDeauthorizationIsTerminal(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{})
	acct, tok := onboarded(t, s, "ivan")
	now := time.Now().Unix()
	for _, ev := range [][]byte{
		testenv.Deauthorized("evt_deauth", acct, now),
		testenv.AccountUpdated("evt_later", acct, "ivan", now+10, snapActive),
		testenv.CapabilityUpdated("evt_cap", acct, "transfers", "active", now+20),
	} {
		if code, body := s.PostEvent(t, ev); code != 200 {
			t.Fatalf("%d %s", code, body)
		}
	}
	if got := status(t, s, tok).Status; got != "deauthorized" {
		t.Fatalf("status %s, want deauthorized to stay", got)
	}
	resp, body := s.Do(t, "POST", "/accounts/me/onboarding-link", tok, "")
	expectStatus(t, resp, body, http.StatusConflict)
}

func TestUnknownAccountsLivemodeAndOtherTypesAreAcknowledged(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{})
	now := time.Now().Unix()
	// A capability event finds its account through the account index.
	acct, _ := onboarded(t, s, "julia")
	if code, _ := s.PostEvent(t, testenv.CapabilityUpdated("evt_cap_julia", acct, "transfers", "active", afterCreation())); code != 200 {
		t.Fatal(code)
	}

	for name, ev := range map[string][]byte{
		// Metadata naming a user does not make the account theirs: only a
		// creation claim of theirs that made it does (hardening_test.go).
		"unknown account naming a user":    testenv.AccountUpdated("evt_named", "acct_named", "jules", now, snapReview),
		"unknown account without metadata": testenv.AccountUpdated("evt_stranger", "acct_stranger", "", now, snapActive),
		"unknown capability account":       testenv.CapabilityUpdated("evt_cap_x", "acct_stranger", "transfers", "active", now),
		"unknown type":                     testenv.Event("evt_payout", "payout.paid", "acct_healed", now),
		"live event on a test key":         []byte(strings.Replace(string(testenv.AccountUpdated("evt_live", "acct_live", "kim", now, snapActive)), `"livemode":false`, `"livemode":true`, 1)),
	} {
		if code, body := s.PostEvent(t, ev); code != 200 {
			t.Errorf("%s: %d %s", name, code, body)
		}
	}
	for _, user := range []string{"kim", "jules"} {
		if resp, _ := s.Do(t, "GET", "/accounts/me", s.Token(user, ""), ""); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("an event created a record for %s", user)
		}
	}
	var outcomes []string
	for _, l := range s.Logs.Lines() {
		if i := strings.Index(l, `"outcome":"`); i >= 0 {
			outcomes = append(outcomes, strings.SplitN(l[i+11:], `"`, 2)[0])
		}
	}
	joined := strings.Join(outcomes, ",")
	for _, want := range []string{"unknown_account", "ignored_type", "livemode_mismatch", "applied"} {
		if !strings.Contains(joined, want) {
			t.Errorf("log outcomes %q do not count %s", joined, want)
		}
	}
}

// TestShuffledDuplicatedSnapshotsConverge is a property test: any order of a
// sequence of snapshots, each delivered twice, ends in the newest one.
func TestShuffledDuplicatedSnapshotsConverge(t *testing.T) {
	snaps := []testenv.AccountSnapshot{
		snapDue,
		{CurrentlyDue: []string{"individual.id_number"}},
		snapReview,
		{DetailsSubmitted: true, ChargesEnabled: true},
		snapActive,
	}
	// moto copies a table for every transaction's rollback, so a small table
	// per batch keeps 200 permutations fast.
	const batches, perBatch = 20, 10
	base := time.Now().Unix() - 3600
	for b := range batches {
		t.Run(fmt.Sprintf("batch%02d", b), func(t *testing.T) {
			t.Parallel()
			s := testenv.NewStack(t, testenv.StackOptions{})
			rng := rand.New(rand.NewPCG(uint64(b), 2))
			for p := b * perBatch; p < (b+1)*perBatch; p++ {
				user, acct := fmt.Sprintf("prop-%d", p), fmt.Sprintf("acct_prop%d", p)
				seeded(t, s, user, acct, base-1)
				var deliveries [][]byte
				for i, snap := range snaps {
					ev := testenv.AccountUpdated(fmt.Sprintf("evt_p%d_%d", p, i), acct, user, base+int64(i*10), snap)
					deliveries = append(deliveries, ev, ev)
				}
				rng.Shuffle(len(deliveries), func(i, j int) { deliveries[i], deliveries[j] = deliveries[j], deliveries[i] })
				for _, d := range deliveries {
					if code, body := s.PostEvent(t, d); code != 200 {
						t.Fatalf("permutation %d: %d %s", p, code, body)
					}
				}
				if got := status(t, s, s.Token(user, "")); got.Status != "active" || !got.PayoutsEnabled {
					t.Fatalf("permutation %d ended in %+v, want the newest snapshot (active)", p, got)
				}
			}
		})
	}
}

// faultyDB fails TransactWriteItems on demand, before or after the write
// reaches DynamoDB: the two crash points around an event's transaction.
type faultyDB struct {
	dynamostore.Client
	failBefore, failAfter atomic.Int32
}

func (f *faultyDB) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	if f.failBefore.Add(-1) >= 0 {
		return nil, errors.New("injected: connection lost before the write")
	}
	out, err := f.Client.TransactWriteItems(ctx, in, opts...)
	if err == nil && f.failAfter.Add(-1) >= 0 {
		return nil, errors.New("injected: connection lost after the write")
	}
	return out, err
}

func (f *faultyDB) CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, opts ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error) {
	return f.Client.(dynamostore.TableAdmin).CreateTable(ctx, in, opts...)
}

func (f *faultyDB) UpdateTimeToLive(ctx context.Context, in *dynamodb.UpdateTimeToLiveInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateTimeToLiveOutput, error) {
	return f.Client.(dynamostore.TableAdmin).UpdateTimeToLive(ctx, in, opts...)
}

func TestCrashAroundTheEventWriteLosesNothing(t *testing.T) {
	db := &faultyDB{Client: testenv.MotoClient(t)}
	s := testenv.NewStack(t, testenv.StackOptions{DynamoDB: db})
	acct, tok := onboarded(t, s, "lena")
	ev := testenv.AccountUpdated("evt_crash", acct, "lena", afterCreation(), snapActive)

	db.failBefore.Store(1)
	if code, body := s.PostEvent(t, ev); code < 500 {
		t.Fatalf("a storage failure must answer 5xx so Stripe retries: %d %s", code, body)
	}
	if got := status(t, s, tok).Status; got != "onboarding" {
		t.Fatalf("nothing should be stored yet: %s", got)
	}
	if code, _ := s.PostEvent(t, ev); code != 200 {
		t.Fatalf("redelivery: %d", code)
	}
	if got := status(t, s, tok).Status; got != "active" {
		t.Fatalf("redelivery lost the update: %s", got)
	}

	ev2 := testenv.AccountUpdated("evt_crash2", acct, "lena", time.Now().Unix()+5, snapReview)
	db.failAfter.Store(1)
	if code, _ := s.PostEvent(t, ev2); code < 500 {
		t.Fatalf("want 5xx, got %d", code)
	}
	if code, _ := s.PostEvent(t, ev2); code != 200 {
		t.Fatalf("redelivery after a committed write: %d", code)
	}
	if got := status(t, s, tok).Status; got != "pending_verification" {
		t.Fatalf("status %s after redelivery of a committed event", got)
	}
}
