package dynamostore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/connectexpress/onboarding/internal/testenv"
	"github.com/connectexpress/onboarding/shared/dynamostore"
	"github.com/connectexpress/onboarding/shared/onboarding"
)

// The sweep's storage on each engine, every case on a fresh table.

type sweepHarness struct {
	db    dynamostore.SweepClient
	table string
	store *dynamostore.Store
	sweep *dynamostore.SweepStore
}

func newSweepHarness(t *testing.T, e testenv.Engine) *sweepHarness {
	t.Helper()
	db, ok := e.Client(t).(dynamostore.SweepClient)
	if !ok {
		t.Fatalf("%s's client cannot BatchGetItem and Scan", e.Name)
	}
	table := testenv.NewTable(t, db)
	return &sweepHarness{db: db, table: table, store: dynamostore.New(db, table), sweep: dynamostore.NewSweepStore(db, table)}
}

func eachSweepEngine(t *testing.T, f func(t *testing.T, h *sweepHarness)) {
	for _, e := range testenv.Engines {
		t.Run(e.Name, func(t *testing.T) { f(t, newSweepHarness(t, e)) })
	}
}

var sweepT0 = time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)

// account stores user's record holding account, created at created.
func (h *sweepHarness) account(t *testing.T, user, account string, created time.Time) {
	t.Helper()
	ctx := context.Background()
	claim := onboarding.CreationClaim{ClaimID: "claim-" + user, CreationID: "cr-" + user, LeaseUntil: created.Add(time.Minute), AttemptSince: created}
	if err := claimCreation(ctx, h.store, user, claim, created); err != nil {
		t.Fatal(err)
	}
	rec := onboarding.AccountRecord{UserID: user, AccountID: account, Country: "US", ServiceAgreement: "full",
		State:        onboarding.AccountState{DetailsSubmitted: true, Capabilities: map[string]string{"transfers": "active"}},
		StateVersion: created.Unix(), CreatedAt: created, UpdatedAt: created}
	if err := h.store.CompleteCreation(ctx, rec, claim.ClaimID); err != nil {
		t.Fatal(err)
	}
}

func TestSweepLeaseHoldsOneRunAtATime(t *testing.T) {
	eachSweepEngine(t, func(t *testing.T, h *sweepHarness) {
		ctx := context.Background()
		first := onboarding.Lease{ID: "run-1", Until: sweepT0.Add(time.Minute)}
		cp, ok, err := h.sweep.TakeSweep(ctx, first, sweepT0)
		if err != nil || !ok || cp.Phase != "" || cp.PassID != "" {
			t.Fatalf("first take: %+v %v %v, want the lease and an empty checkpoint", cp, ok, err)
		}
		if _, ok, err := h.sweep.TakeSweep(ctx, first, sweepT0); err != nil || !ok {
			t.Errorf("the same run's retried take: %v %v, want it to hold", ok, err)
		}
		second := onboarding.Lease{ID: "run-2", Until: sweepT0.Add(2 * time.Minute)}
		if _, ok, err := h.sweep.TakeSweep(ctx, second, sweepT0.Add(30*time.Second)); err != nil || ok {
			t.Errorf("another run while the lease holds: %v %v, want refused", ok, err)
		}
		if _, ok, err := h.sweep.TakeSweep(ctx, second, sweepT0.Add(time.Minute)); err != nil || !ok {
			t.Fatalf("another run once the lease ended: %v %v", ok, err)
		}
		if err := h.sweep.SaveSweep(ctx, onboarding.SweepCheckpoint{PassID: "late"}, first); !errors.Is(err, onboarding.ErrConflict) {
			t.Errorf("a save under the lost lease: %v, want ErrConflict", err)
		}
		if err := h.sweep.ReleaseSweep(ctx, first); err != nil {
			t.Errorf("releasing a lost lease: %v, want nothing to do", err)
		}
		if _, ok, _ := h.sweep.TakeSweep(ctx, first, sweepT0.Add(time.Minute)); ok {
			t.Error("the old lease's release freed the new run's lease")
		}
		if err := h.sweep.ReleaseSweep(ctx, second); err != nil {
			t.Fatal(err)
		}
		if _, ok, err := h.sweep.TakeSweep(ctx, first, sweepT0.Add(time.Minute)); err != nil || !ok {
			t.Errorf("after the release: %v %v, want the lease free", ok, err)
		}
	})
}

func TestSweepCheckpointRoundTrips(t *testing.T) {
	eachSweepEngine(t, func(t *testing.T, h *sweepHarness) {
		ctx := context.Background()
		lease := onboarding.Lease{ID: "run", Until: sweepT0.Add(time.Minute)}
		if _, _, err := h.sweep.TakeSweep(ctx, lease, sweepT0); err != nil {
			t.Fatal(err)
		}
		want := onboarding.SweepCheckpoint{
			PassID: "20260301T120000.000000000Z", PassStarted: sweepT0, Phase: onboarding.SweepListing,
			StartingAfter: "acct_1Abc", CursorCreated: sweepT0.Add(-time.Hour).Unix(), Pages: 7,
			Counts:        onboarding.SweepCounts{Listed: 700, Foreign: 1, Applied: 2, Unchanged: 3, Superseded: 4, Orphans: 5, Records: 6, Missing: 7, Read: 8},
			LastCompleted: sweepT0.Add(-15 * time.Minute),
		}
		// A pass listed in ranges: each range's cursor, a done one, the
		// open ends.
		ranged := want
		ranged.StartingAfter, ranged.CursorCreated = "", 0
		ranged.Ranges = []onboarding.SweepRange{
			{Before: 1_700_000_000, StartingAfter: "acct_1Old", CursorCreated: 1_600_000_000, Done: true},
			{From: 1_700_000_000, Before: 1_750_000_000},
			{From: 1_750_000_000, StartingAfter: "acct_1New", CursorCreated: 1_760_000_000},
		}
		for _, cp := range []onboarding.SweepCheckpoint{want, ranged, {LastCompleted: want.LastCompleted}} {
			if err := h.sweep.SaveSweep(ctx, cp, lease); err != nil {
				t.Fatal(err)
			}
			got, ok, err := h.sweep.TakeSweep(ctx, lease, sweepT0)
			if err != nil || !ok {
				t.Fatal(ok, err)
			}
			if got.PassID != cp.PassID || !got.PassStarted.Equal(cp.PassStarted) || got.Phase != cp.Phase || got.StartingAfter != cp.StartingAfter ||
				got.CursorCreated != cp.CursorCreated || got.Pages != cp.Pages || got.Counts != cp.Counts || !slices.Equal(got.Ranges, cp.Ranges) ||
				!got.LastCompleted.Equal(cp.LastCompleted) {
				t.Errorf("stored %+v, read back %+v", cp, got)
			}
		}
	})
}

func TestSweepReadsRecordsAndOwnersInBatches(t *testing.T) {
	eachSweepEngine(t, func(t *testing.T, h *sweepHarness) {
		ctx := context.Background()
		var users, accounts []string
		for i := range 130 { // more than one BatchGetItem holds
			u := "user-" + strconv.Itoa(i)
			h.account(t, u, "acct_"+strconv.Itoa(i), sweepT0)
			users, accounts = append(users, u), append(accounts, "acct_"+strconv.Itoa(i))
		}
		if err := claimCreation(ctx, h.store, "claimed", onboarding.CreationClaim{ClaimID: "c", CreationID: "cr-claimed", LeaseUntil: sweepT0}, sweepT0); err != nil {
			t.Fatal(err)
		}
		got, err := h.sweep.GetUsers(ctx, append(slices.Clone(users), "claimed", "nobody"))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 131 {
			t.Fatalf("%d records, want the 130 accounts and the claim (and nothing for nobody)", len(got))
		}
		one, err := h.store.GetUser(ctx, "user-7")
		if err != nil {
			t.Fatal(err)
		}
		if rec := got["user-7"].Account; rec == nil || rec.AccountID != "acct_7" || rec.StateVersion != one.Account.StateVersion ||
			rec.State.Capabilities["transfers"] != "active" || !rec.CreatedAt.Equal(one.Account.CreatedAt) {
			t.Errorf("batched read %+v, GetUser reads %+v", rec, one.Account)
		}
		if c := got["claimed"].Claim; c == nil || c.CreationID != "cr-claimed" || got["claimed"].Account != nil {
			t.Errorf("the claim read as %+v", got["claimed"])
		}
		owners, err := h.sweep.FindUsersByAccounts(ctx, append(slices.Clone(accounts), "acct_unknown"))
		if err != nil {
			t.Fatal(err)
		}
		if len(owners) != 130 || owners["acct_129"] != "user-129" {
			t.Errorf("%d owners (acct_129: %q), want 130", len(owners), owners["acct_129"])
		}
	})
}

func TestSweepListedPagesComeBackWithTheirTTL(t *testing.T) {
	eachSweepEngine(t, func(t *testing.T, h *sweepHarness) {
		ctx := context.Background()
		expires := sweepT0.Add(7 * 24 * time.Hour)
		for p := 1; p <= 3; p++ {
			ids := []string{fmt.Sprintf("acct_%da", p), fmt.Sprintf("acct_%db", p)}
			if err := h.sweep.SaveListedPage(ctx, "pass-1", p, ids, expires); err != nil {
				t.Fatal(err)
			}
		}
		if err := h.sweep.SaveListedPage(ctx, "pass-0", 1, []string{"acct_old"}, expires); err != nil {
			t.Fatal(err)
		}
		listed := map[string]bool{}
		if err := h.sweep.ListedAccounts(ctx, "pass-1", 3, func(id string) { listed[id] = true }); err != nil {
			t.Fatal(err)
		}
		if len(listed) != 6 || !listed["acct_3b"] || listed["acct_old"] {
			t.Errorf("listed %v, want the six of pass-1", listed)
		}
		if err := h.sweep.ListedAccounts(ctx, "pass-1", 4, func(string) {}); err == nil {
			t.Error("a page never kept read as none: the records phase would report its accounts missing")
		}
		out, err := h.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &h.table,
			Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "SWEEP#pass-1#2"}}})
		if err != nil {
			t.Fatal(err)
		}
		if ttl, ok := out.Item["expires_at"].(*types.AttributeValueMemberN); !ok || ttl.Value != strconv.FormatInt(expires.Unix(), 10) {
			t.Errorf("page item %v: want expires_at (the table's TTL) %d", out.Item, expires.Unix())
		}
	})
}

func TestSweepIndexHoldsEveryConnectedAccountRecordWithItsStateDigest(t *testing.T) {
	eachSweepEngine(t, func(t *testing.T, h *sweepHarness) {
		ctx := context.Background()
		want := map[string]bool{}
		for i := range 12 {
			h.account(t, "user-"+strconv.Itoa(i), "acct_"+strconv.Itoa(i), sweepT0.Add(time.Duration(i)*time.Minute))
			want["acct_"+strconv.Itoa(i)] = true
		}
		// What the index leaves out: a claim, a token, an event, the sweep's own items.
		if err := claimCreation(ctx, h.store, "claimed", onboarding.CreationClaim{ClaimID: "c", LeaseUntil: sweepT0}, sweepT0); err != nil {
			t.Fatal(err)
		}
		if err := h.store.PutRefreshToken(ctx, onboarding.RefreshToken{Hash: "h", UserID: "user-1", AccountID: "acct_1", ExpiresAt: sweepT0.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if err := h.sweep.SaveListedPage(ctx, "p", 1, []string{"acct_1"}, sweepT0); err != nil {
			t.Fatal(err)
		}
		// A disconnected account: terminal, neither written nor reported.
		if out, err := h.store.ApplyEvent(ctx, onboarding.StateChange{EventID: "evt_d", UserID: "user-3", AccountID: "acct_3",
			Kind: onboarding.ChangeDeauthorize, Now: sweepT0, RetainUntil: sweepT0.Add(time.Hour)}); err != nil || out != onboarding.OutcomeApplied {
			t.Fatal(out, err)
		}
		delete(want, "acct_3")
		// A state written by a webhook moves the digest with it.
		active := onboarding.AccountState{DetailsSubmitted: true, ChargesEnabled: true, PayoutsEnabled: true,
			Capabilities: map[string]string{"transfers": "active", "card_payments": "active"}}
		if out, err := h.store.ApplyEvent(ctx, onboarding.StateChange{EventID: "evt_5", UserID: "user-5", AccountID: "acct_5",
			Kind: onboarding.ChangeSnapshot, Version: sweepT0.Add(time.Hour).Unix(), State: active, Now: sweepT0.Add(time.Hour),
			RetainUntil: sweepT0.Add(2 * time.Hour)}); err != nil || out != onboarding.OutcomeApplied {
			t.Fatal(out, err)
		}
		seen := map[string]onboarding.IndexedRecord{}
		if err := h.sweep.ReadSweepIndex(ctx, func(r onboarding.IndexedRecord) {
			if _, dup := seen[r.AccountID]; dup {
				t.Errorf("%s read twice", r.AccountID)
			}
			seen[r.AccountID] = r
		}); err != nil {
			t.Fatal(err)
		}
		if len(seen) != len(want) {
			t.Errorf("read %d records from the index, want the %d connected accounts' records: %v", len(seen), len(want), seen)
		}
		for id := range want {
			if _, ok := seen[id]; !ok {
				t.Errorf("%s is not in the sweep index", id)
			}
		}
		created := onboarding.AccountState{DetailsSubmitted: true, Capabilities: map[string]string{"transfers": "active"}}
		if r := seen["acct_4"]; r.UserID != "user-4" || !r.CreatedAt.Equal(sweepT0.Add(4*time.Minute)) || r.StateDigest != onboarding.StateDigest(created) {
			t.Errorf("acct_4 read as %+v, want user-4, created %v, the digest of its state", r, sweepT0.Add(4*time.Minute))
		}
		if r := seen["acct_5"]; r.StateDigest != onboarding.StateDigest(active) {
			t.Errorf("acct_5 after its webhook read as %+v, want the digest of the webhook's state", r)
		}
	})
}

func TestDecodeUserItemIsTheStoresDecoding(t *testing.T) {
	eachSweepEngine(t, func(t *testing.T, h *sweepHarness) {
		ctx := context.Background()
		h.account(t, "dora", "acct_dora", sweepT0)
		out, err := h.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &h.table, ConsistentRead: aws.Bool(true),
			Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "USER#dora"}}})
		if err != nil {
			t.Fatal(err)
		}
		got, err := dynamostore.DecodeUserItem(out.Item)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := h.store.GetUser(ctx, "dora")
		if got.UserID != "dora" || got.Account == nil || got.Account.AccountID != want.Account.AccountID ||
			got.Account.StateVersion != want.Account.StateVersion || !got.Account.UpdatedAt.Equal(want.Account.UpdatedAt) {
			t.Errorf("decoded %+v, GetUser reads %+v", got.Account, want.Account)
		}
		index, _ := h.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &h.table,
			Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "ACCOUNT#acct_dora"}}})
		if _, err := dynamostore.DecodeUserItem(index.Item); !errors.Is(err, onboarding.ErrNotFound) {
			t.Errorf("the account index item decoded as a user's record: %v", err)
		}
	})
}

// throttledBatches is DynamoDB under throttling: each BatchGetItem reads
// only the first half of its keys and hands the rest back as
// UnprocessedKeys, for the first `partial` calls (every call when
// partial < 0). moto and minidyn never leave keys unprocessed.
type throttledBatches struct {
	dynamostore.SweepClient
	partial, calls int
}

func (d *throttledBatches) BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	d.calls++
	if d.partial >= 0 && d.calls > d.partial {
		return d.SweepClient.BatchGetItem(ctx, in, opts...)
	}
	served, left := map[string]types.KeysAndAttributes{}, map[string]types.KeysAndAttributes{}
	for table, req := range in.RequestItems {
		half := len(req.Keys) / 2
		now, later := req, req
		now.Keys, later.Keys = req.Keys[:half], req.Keys[half:]
		if half > 0 {
			served[table] = now
		}
		left[table] = later
	}
	out := &dynamodb.BatchGetItemOutput{Responses: map[string][]map[string]types.AttributeValue{}}
	if len(served) > 0 {
		got, err := d.SweepClient.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: served}, opts...)
		if err != nil {
			return nil, err
		}
		out.Responses = got.Responses
	}
	out.UnprocessedKeys = left
	return out, nil
}

func TestSweepReadsEveryRecordWhenDynamoDBLeavesKeysUnprocessed(t *testing.T) {
	eachSweepEngine(t, func(t *testing.T, h *sweepHarness) {
		ctx := context.Background()
		var users []string
		for i := range 130 { // two batches
			u := "user-" + strconv.Itoa(i)
			h.account(t, u, "acct_"+strconv.Itoa(i), sweepT0)
			users = append(users, u)
		}
		throttled := &throttledBatches{SweepClient: h.db, partial: 3}
		got, err := dynamostore.NewSweepStore(throttled, h.table).GetUsers(ctx, users)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 130 || got["user-0"].Account == nil || got["user-129"].Account == nil {
			t.Fatalf("%d records read under throttling, want all 130", len(got))
		}
		if throttled.calls < 5 {
			t.Errorf("%d BatchGetItem calls, want the unprocessed keys asked for again", throttled.calls)
		}

		// A hundred keys are one request, and none is none: DynamoDB refuses
		// a batch without keys.
		for _, n := range []int{100, 0} {
			plain := &throttledBatches{SweepClient: h.db}
			got, err := dynamostore.NewSweepStore(plain, h.table).GetUsers(ctx, users[:n])
			if err != nil || len(got) != n || plain.calls != (n+99)/100 {
				t.Errorf("%d records: %d read in %d BatchGetItem calls (%v), want %d", n, len(got), plain.calls, err, (n+99)/100)
			}
		}

		// Keys that stay unprocessed are a storage failure after a bounded
		// number of tries, not a loop until the Lambda's deadline.
		// Between them it backs off, as DynamoDB asks under throttling:
		// 25 ms times the square of the retry.
		stuck := &throttledBatches{SweepClient: h.db, partial: -1}
		st := dynamostore.NewSweepStore(stuck, h.table)
		waits := dynamostore.RecordSweepWaits(st)
		_, err = st.GetUsers(ctx, users[:2])
		if got, want := waits.All(), []time.Duration{25 * time.Millisecond, 100 * time.Millisecond, 225 * time.Millisecond, 400 * time.Millisecond, 625 * time.Millisecond}; !slices.Equal(got, want) {
			t.Errorf("waited %v between the tries of keys never processed, want %v", got, want)
		}
		var oe *onboarding.Error
		if !errors.As(err, &oe) || oe.Code != onboarding.ErrStorageUnavailable.Code {
			t.Fatalf("GetUsers with keys never processed: %v, want a storage failure", err)
		}
		if stuck.calls != 6 {
			t.Errorf("%d BatchGetItem calls for keys never processed, want the first and 5 retries", stuck.calls)
		}
	})
}

// An entry the sweep cannot use never stops every run: one without account
// is no account's record, and one whose listed_at does not parse reads as
// the oldest (the read that confirms a missing record uses its created_at).
func TestSweepIndexReadsPastEntriesItCannotUse(t *testing.T) {
	eachSweepEngine(t, func(t *testing.T, h *sweepHarness) {
		ctx := context.Background()
		h.account(t, "user-ok", "acct_ok", sweepT0)
		s := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
		for _, item := range []map[string]types.AttributeValue{
			{"pk": s("USER#no-account"), "review": s("pending"), "queued_at": s("~not-submitted"), "derived_status": s("onboarding"),
				"listed_at": s(sweepT0.Format(time.RFC3339Nano) + "#no-account")},
			{"pk": s("USER#odd-time"), "review": s("approved"), "queued_at": s("yesterday#odd-time"), "derived_status": s("active"),
				"listed_at": s("yesterday#odd-time"), "account_id": s("acct_odd"), "state_digest": s("x")},
		} {
			if _, err := h.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &h.table, Item: item}); err != nil {
				t.Fatal(err)
			}
		}
		seen := map[string]onboarding.IndexedRecord{}
		if err := h.sweep.ReadSweepIndex(ctx, func(r onboarding.IndexedRecord) { seen[r.AccountID] = r }); err != nil {
			t.Fatalf("the index read failed on an entry it cannot use: %v", err)
		}
		if len(seen) != 2 || seen["acct_ok"].UserID != "user-ok" || !seen["acct_odd"].CreatedAt.IsZero() || seen["acct_odd"].UserID != "odd-time" {
			t.Errorf("read %+v, want acct_ok, and acct_odd as the oldest", seen)
		}
	})
}
