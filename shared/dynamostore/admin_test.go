package dynamostore_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/connectexpress/onboarding/internal/testenv"
	"github.com/connectexpress/onboarding/shared/dynamostore"
	"github.com/connectexpress/onboarding/shared/onboarding"
)

// The staff routes' storage (admin.go) and the derived status every state
// write keeps (status.go), on each engine.

func str(item map[string]types.AttributeValue, name string) string {
	if v, ok := item[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

// history is alice's status changes, oldest first.
func (h *harness) history(t *testing.T, user string) []onboarding.StatusHistoryEntry {
	t.Helper()
	got, err := h.store.StaffHistory(context.Background(), user, onboarding.HistoryLimit)
	if err != nil {
		t.Fatalf("StaffHistory(%s): %v", user, err)
	}
	changes := slices.Clone(got.StatusChanges)
	slices.Reverse(changes)
	return changes
}

type move struct {
	from, to onboarding.Status
	cause    onboarding.Cause
}

func (h *harness) wantMoves(t *testing.T, user string, want ...move) {
	t.Helper()
	var got []move
	for _, c := range h.history(t, user) {
		got = append(got, move{c.From, c.To, c.Cause})
	}
	if !slices.Equal(got, want) {
		t.Errorf("status changes of %s, oldest first:\n got %v\nwant %v", user, got, want)
	}
}

func (h *harness) wantDerived(t *testing.T, user string, want onboarding.Status) {
	t.Helper()
	if got := str(h.raw(t, "USER#"+user), "derived_status"); got != string(want) {
		t.Errorf("derived_status of %s = %q, want %q", user, got, want)
	}
}

func webhook(c onboarding.StateChange) onboarding.StateChange {
	c.Cause = onboarding.CauseWebhook
	return c
}

func (h *harness) apply(t *testing.T, c onboarding.StateChange, want onboarding.EventOutcome) {
	t.Helper()
	if got, err := h.store.ApplyEvent(context.Background(), c); err != nil || got != want {
		t.Fatalf("ApplyEvent(%s) = %v, %v; want %v", c.EventID, got, err, want)
	}
}

func TestEveryStateWriteKeepsTheDerivedStatusAndRecordsItsChanges(t *testing.T) {
	ctx := context.Background()
	pending := stateActive()
	pending.Capabilities = map[string]string{"card_payments": "active", "transfers": "pending"}
	runCases(t, []storeCase{
		{"a new account enters the review queue with its status, and no change", func(t *testing.T, h *harness) {
			h.withAccount(t)
			item := h.raw(t, "USER#"+alice)
			if str(item, "derived_status") != string(onboarding.StatusRestricted) || str(item, "review") != "pending" ||
				str(item, "listed_at") != "2024-05-01T12:00:00.000000000Z#alice" {
				t.Errorf("new record: derived_status %q, review %q, listed_at %q", str(item, "derived_status"), str(item, "review"), str(item, "listed_at"))
			}
			h.wantMoves(t, alice)
		}},
		{"webhook, capability, refresh, sweep and deauthorization each record the change they make", func(t *testing.T, h *harness) {
			h.withAccount(t)
			h.apply(t, webhook(snapshotEvent("evt_1", 10, stateActive())), onboarding.OutcomeApplied)
			h.apply(t, webhook(snapshotEvent("evt_2", 20, stateActive())), onboarding.OutcomeApplied) // no change: nothing recorded
			h.apply(t, webhook(capabilityEvent("evt_3", 30, "transfers", "pending")), onboarding.OutcomeApplied)
			h.wantDerived(t, alice, onboarding.StatusPendingVerification)
			if _, err := h.store.SaveState(ctx, alice, stateActive(), vBase+40, eventNow(40), onboarding.CauseRefresh); err != nil {
				t.Fatal(err)
			}
			if _, err := h.store.SaveState(ctx, alice, stateOnboarding(), vBase+50, eventNow(50), onboarding.CauseSweep); err != nil {
				t.Fatal(err)
			}
			h.apply(t, webhook(deauthEvent("evt_4", 60)), onboarding.OutcomeApplied)
			h.wantDerived(t, alice, onboarding.StatusDeauthorized)
			h.wantMoves(t, alice,
				move{onboarding.StatusRestricted, onboarding.StatusActive, onboarding.CauseWebhook},
				move{onboarding.StatusActive, onboarding.StatusPendingVerification, onboarding.CauseWebhook},
				move{onboarding.StatusPendingVerification, onboarding.StatusActive, onboarding.CauseRefresh},
				move{onboarding.StatusActive, onboarding.StatusRestricted, onboarding.CauseSweep},
				move{onboarding.StatusRestricted, onboarding.StatusDeauthorized, onboarding.CauseWebhook},
			)
			got, _ := h.store.StaffHistory(ctx, alice, 1)
			if len(got.StatusChanges) != 1 || !got.StatusChanges[0].At.Equal(eventNow(60)) {
				t.Errorf("StaffHistory(limit 1) = %+v, want the latest change only, at the deauthorization", got.StatusChanges)
			}
		}},
		{"older news and duplicates change neither the status nor the history", func(t *testing.T, h *harness) {
			h.withAccount(t)
			h.apply(t, webhook(snapshotEvent("evt_1", 10, stateActive())), onboarding.OutcomeApplied)
			h.apply(t, webhook(snapshotEvent("evt_1", 10, stateActive())), onboarding.OutcomeDuplicate)
			h.apply(t, webhook(snapshotEvent("evt_old", 5, pending)), onboarding.OutcomeSuperseded)
			if _, err := h.store.SaveState(ctx, alice, pending, vBase+1, eventNow(1), onboarding.CauseSweep); err != nil {
				t.Fatal(err)
			}
			h.wantDerived(t, alice, onboarding.StatusActive)
			h.wantMoves(t, alice, move{onboarding.StatusRestricted, onboarding.StatusActive, onboarding.CauseWebhook})
		}},
		{"a record healed from its event gets a status and a place in the queue", func(t *testing.T, h *harness) {
			h.claim(t, alice, newClaim(claim1, t0.Add(lease), 0), t0)
			h.apply(t, webhook(healingEvent("evt_heal", 10, stateActive())), onboarding.OutcomeApplied)
			h.wantDerived(t, alice, onboarding.StatusActive)
			if str(h.raw(t, "USER#"+alice), "review") != "pending" {
				t.Error("healed record is not in the review queue")
			}
			h.wantMoves(t, alice)
		}},
		{"a record from before derived statuses gets one at its next write, with no change", func(t *testing.T, h *harness) {
			h.withAccount(t)
			h.strip(t, alice, "derived_status", "review", "listed_at")
			h.apply(t, webhook(snapshotEvent("evt_1", 10, stateActive())), onboarding.OutcomeApplied)
			h.wantDerived(t, alice, onboarding.StatusActive)
			h.strip(t, alice, "derived_status", "review", "listed_at")
			if _, err := h.store.SaveState(ctx, alice, pending, vBase+20, eventNow(20), onboarding.CauseSweep); err != nil {
				t.Fatal(err)
			}
			item := h.raw(t, "USER#"+alice)
			if str(item, "derived_status") != string(onboarding.StatusPendingVerification) || str(item, "review") != "pending" || str(item, "listed_at") == "" {
				t.Errorf("after SaveState: derived_status %q review %q listed_at %q", str(item, "derived_status"), str(item, "review"), str(item, "listed_at"))
			}
			h.wantMoves(t, alice)
		}},
	})
}

// strip rewrites a user's record without attrs (minidyn ignores REMOVE).
func (h *harness) strip(t *testing.T, user string, attrs ...string) {
	t.Helper()
	item := h.raw(t, "USER#"+user)
	for _, a := range attrs {
		delete(item, a)
	}
	if _, err := h.db.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: &h.table, Item: item}); err != nil {
		t.Fatal(err)
	}
}

// Concurrent writers of one account, each moving its status: every write
// that applied left exactly the change it made, so the history is one
// unbroken chain that ends at the stored status. All carry the same version
// (ties apply), so every write applies and most change the status.
func TestConcurrentStateWritesLeaveAnUnbrokenHistory(t *testing.T) {
	states := []onboarding.AccountState{stateActive(), stateOnboarding(), stateRejected()}
	eachEngine(t, func(t *testing.T, e testenv.Engine) {
		h := newHarness(t, e)
		h.withAccount(t)
		var wg sync.WaitGroup
		errs := make(chan error, 40)
		for i := range 20 {
			wg.Add(2)
			st := states[i%len(states)]
			go func() {
				defer wg.Done()
				_, err := h.store.ApplyEvent(context.Background(), webhook(snapshotEvent(fmt.Sprintf("evt_%d", i), 100, st)))
				errs <- err
			}()
			go func() {
				defer wg.Done()
				_, err := h.store.SaveState(context.Background(), alice, states[(i+1)%len(states)], vBase+100, eventNow(100), onboarding.CauseSweep)
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		retry := 0
		for err := range errs {
			// A writer that lost to others on every attempt is told to
			// retry (storage_unavailable): allowed, never a wrong history.
			if errors.Is(err, onboarding.ErrStorageUnavailable) {
				if retry == 0 {
					t.Logf("first retry: %v", err)
				}
				retry++
			} else if err != nil {
				t.Errorf("write: %v", err)
			}
		}
		changes := h.history(t, alice)
		if len(changes) < 2 {
			t.Fatalf("%d status changes recorded from 40 writes of alternating states", len(changes))
		}
		at := onboarding.StatusRestricted // baseRecord's
		for i, c := range changes {
			if c.From != at || c.From == c.To {
				t.Fatalf("change %d is %s -> %s, after the status was %s: %+v", i, c.From, c.To, at, changes)
			}
			at = c.To
		}
		stored := h.raw(t, "USER#"+alice)
		if str(stored, "derived_status") != string(at) {
			t.Errorf("stored status %s, history ends at %s", str(stored, "derived_status"), at)
		}
		rec := h.user(t, alice).Account
		if want := onboarding.DeriveStatus(rec.State, rec.ServiceAgreement, rec.UpdatedAt); string(want) != str(stored, "derived_status") {
			t.Errorf("stored status %s, but the stored state derives to %s", str(stored, "derived_status"), want)
		}
		t.Logf("%d changes recorded; %d of 40 writers told to retry", len(changes), retry)
	})
}

// ---- the staff list ----

// listWorld is accounts created a minute apart (newest last), with
// reviews and statuses in a fixed pattern.
type listWorld struct {
	users  []string // oldest first
	review map[string]onboarding.Review
	status map[string]onboarding.Status
}

func (h *harness) listWorld(t *testing.T, n int) listWorld {
	t.Helper()
	ctx := context.Background()
	w := listWorld{review: map[string]onboarding.Review{}, status: map[string]onboarding.Status{}}
	for i := range n {
		user := fmt.Sprintf("u%02d", i)
		created := t0.Add(time.Duration(i) * time.Minute)
		c := newClaim("claim-"+user, created.Add(lease), 0)
		h.claim(t, user, c, created)
		st := stateActive()
		if i%3 == 1 {
			st = stateOnboarding()
		}
		rec := onboarding.AccountRecord{UserID: user, AccountID: "acct_" + user, Country: "US", ServiceAgreement: "full",
			State: st, StateVersion: created.Unix(), CreatedAt: created, UpdatedAt: created}
		h.complete(t, rec, "claim-"+user)
		w.users = append(w.users, user)
		w.status[user] = onboarding.DeriveStatus(st, "full", created)
		w.review[user] = onboarding.ReviewPending
		if i%4 == 2 {
			d := onboarding.ReviewDecision{Decision: onboarding.DecisionApprove, Reviewer: "staff", At: created.Add(time.Second)}
			if _, ok, err := h.store.RecordReview(ctx, user, d, nil); err != nil || !ok {
				t.Fatalf("approve %s: %v, %v", user, ok, err)
			}
			w.review[user] = onboarding.ReviewApproved
		}
	}
	return w
}

// want is what the list must answer for f, newest first.
func (w listWorld) want(f onboarding.AccountFilter) []string {
	var out []string
	for i := len(w.users) - 1; i >= 0; i-- {
		u := w.users[i]
		created := t0.Add(time.Duration(i) * time.Minute)
		if (f.Status == "" || w.status[u] == f.Status) && (f.Review == "" || w.review[u] == f.Review) && created.After(f.CreatedAfter) {
			out = append(out, u)
		}
	}
	if f.Review == onboarding.ReviewPending {
		// The review queue, oldest first: here every account's details were
		// submitted when it was stored.
		slices.Reverse(out)
	}
	return out
}

// listAll follows the cursors to the end. Every page but the last is full
// (nothing here makes a page end early), and the last is not empty (it is
// the one holding the last accounts that says so), unless nothing matches.
// Each page reads each partition it merges once: one query.
func listAll(t *testing.T, db dynamostore.Client, table string, f onboarding.AccountFilter) (users []string, pages int) {
	t.Helper()
	c, queries := countingQueries(db, nil)
	st := dynamostore.New(c, table)
	partitions := 1
	if f.Review == "" && f.Status == "" {
		partitions = len(onboarding.Reviews)
	}
	for {
		*queries = 0
		page, err := st.ListAccounts(context.Background(), f)
		if err != nil {
			t.Fatalf("ListAccounts(%+v): %v", f, err)
		}
		pages++
		if *queries != partitions {
			t.Errorf("page %d made %d queries, want %d: one per partition", pages, *queries, partitions)
		}
		if len(page.Accounts) > f.Limit {
			t.Fatalf("page of %d accounts, limit %d", len(page.Accounts), f.Limit)
		}
		if page.NextCursor != nil && len(page.Accounts) != f.Limit {
			t.Fatalf("page %d holds %d accounts and a cursor, want %d", pages, len(page.Accounts), f.Limit)
		}
		if page.NextCursor == nil && len(page.Accounts) == 0 && pages > 1 {
			t.Fatalf("page %d is empty: the page before it was the last and had a cursor", pages)
		}
		for _, a := range page.Accounts {
			users = append(users, a.UserID)
		}
		if page.NextCursor == nil {
			return users, pages
		}
		if pages > 50 {
			t.Fatal("more than 50 pages: the cursor does not move on")
		}
		f.Cursor = *page.NextCursor
	}
}

func TestListAccountsPagesNewestFirstThroughEveryFilter(t *testing.T) {
	eachEngine(t, func(t *testing.T, e testenv.Engine) {
		h := newHarness(t, e)
		w := h.listWorld(t, 14)
		filters := []onboarding.AccountFilter{
			{},
			{Review: onboarding.ReviewPending},
			{Review: onboarding.ReviewApproved},
			{Status: onboarding.StatusActive},
			{Status: onboarding.StatusRestricted},
			{Status: onboarding.StatusRejected},
			{Review: onboarding.ReviewPending, Status: onboarding.StatusActive},
			{Review: onboarding.ReviewApproved, Status: onboarding.StatusRestricted},
			{CreatedAfter: t0.Add(5 * time.Minute)}, // u05 itself is not after
			{CreatedAfter: t0.Add(5*time.Minute + time.Second), Review: onboarding.ReviewPending},
		}
		for _, f := range filters {
			for _, limit := range []int{1, 3, 100} {
				f.Limit = limit
				t.Run(fmt.Sprintf("%+v", f), func(t *testing.T) {
					got, pages := listAll(t, h.db, h.table, f)
					if want := w.want(f); !slices.Equal(got, want) {
						t.Errorf("listed %v in %d pages, want %v", got, pages, want)
					}
				})
			}
		}
		page, err := h.store.ListAccounts(context.Background(), onboarding.AccountFilter{Limit: 1})
		if err != nil || len(page.Accounts) != 1 {
			t.Fatalf("first page: %+v, %v", page, err)
		}
		// u13 is restricted (stateOnboarding: two items currently due, one past due).
		a := page.Accounts[0]
		if a.UserID != "u13" || a.AccountID != "acct_u13" || a.Status != onboarding.StatusRestricted || a.Review != onboarding.ReviewPending ||
			a.Country != "US" || a.ServiceAgreement != "full" || !a.CreatedAt.Equal(t0.Add(13*time.Minute)) || !a.UpdatedAt.Equal(t0.Add(13*time.Minute)) ||
			a.RequirementsDueCount != 3 {
			t.Errorf("summary %+v", a)
		}
		page, _ = h.store.ListAccounts(context.Background(), onboarding.AccountFilter{Limit: 1, Status: onboarding.StatusActive})
		if a := page.Accounts[0]; a.UserID != "u12" || a.RequirementsDueCount != 0 {
			t.Errorf("active summary %+v, want u12 with nothing due", a)
		}
	})
}

func TestListAccountsRefusesACursorItDidNotMake(t *testing.T) {
	eachEngine(t, func(t *testing.T, e testenv.Engine) {
		h := newHarness(t, e)
		h.listWorld(t, 4)
		pending := onboarding.AccountFilter{Limit: 1, Review: onboarding.ReviewPending}
		page, err := h.store.ListAccounts(context.Background(), pending)
		if err != nil || page.NextCursor == nil {
			t.Fatalf("first page: %+v, %v", page, err)
		}
		good := *page.NextCursor
		raw, _ := base64.RawURLEncoding.DecodeString(good)
		refuse := func(f onboarding.AccountFilter, c string) {
			t.Helper()
			f.Cursor = c
			_, err := h.store.ListAccounts(context.Background(), f)
			if e, ok := onboarding.AsError(err); !ok || e.Code != "validation_error" || e.Param != "cursor" {
				t.Errorf("cursor %q with %+v: %v, want validation_error on cursor", c, f, err)
			}
		}
		for _, c := range []string{"not base64!", "bm90IGEgY3Vyc29y", "MjAyNC0wNS0wMVQxMjowMDowMFo", good[:len(good)-2]} {
			refuse(pending, c)
		}
		// Each byte changed: the position's time, its user, the tag.
		for i := range raw {
			changed := slices.Clone(raw)
			changed[i] ^= 0x04
			refuse(pending, base64.RawURLEncoding.EncodeToString(changed))
		}
		// The position alone, as an untagged cursor would hold it.
		refuse(pending, base64.RawURLEncoding.EncodeToString(raw[:len(raw)-12]))
		// Another query's filters.
		refuse(onboarding.AccountFilter{Limit: 1}, good)
		refuse(onboarding.AccountFilter{Limit: 1, Review: onboarding.ReviewApproved}, good)
		refuse(onboarding.AccountFilter{Limit: 1, Review: onboarding.ReviewPending, Status: onboarding.StatusActive}, good)
		refuse(onboarding.AccountFilter{Limit: 1, Review: onboarding.ReviewPending, CreatedAfter: t0}, good)
		// The page size may change between pages.
		pending.Limit, pending.Cursor = 100, good
		if _, err := h.store.ListAccounts(context.Background(), pending); err != nil {
			t.Errorf("the cursor with another limit: %v", err)
		}
	})
}

// ---- decisions ----

func decision(d onboarding.Decision, reason, reviewer string, at time.Time) onboarding.ReviewDecision {
	return onboarding.ReviewDecision{Decision: d, Reason: reason, Note: "checked " + reviewer, Reviewer: reviewer, At: at}
}

func TestRecordReviewAppendsOneDecisionPerChange(t *testing.T) {
	ctx := context.Background()
	at := t0.Add(time.Hour)
	runCases(t, []storeCase{
		{"approve, approve again, reject, approve: two decisions", func(t *testing.T, h *harness) {
			h.withAccount(t)
			rec, ok, err := h.store.RecordReview(ctx, alice, decision(onboarding.DecisionApprove, "", "staff-1", at), nil)
			if err != nil || !ok || rec.Review != onboarding.ReviewApproved || rec.ReviewedBy != "staff-1" || !rec.ReviewedAt.Equal(at) {
				t.Fatalf("approve: %+v, %v, %v", rec, ok, err)
			}
			if rec, ok, err := h.store.RecordReview(ctx, alice, decision(onboarding.DecisionApprove, "", "staff-2", at.Add(time.Minute)), nil); err != nil || ok || rec.ReviewedBy != "staff-1" {
				t.Fatalf("approve again: %+v, %v, %v; want nothing recorded, the first approval standing", rec, ok, err)
			}
			write := &onboarding.StateWrite{State: stateRejected(), Version: vBase + 100}
			rec, ok, err = h.store.RecordReview(ctx, alice, decision(onboarding.DecisionReject, "fraud", "staff-2", at.Add(2*time.Minute)), write)
			if err != nil || !ok || rec.Review != onboarding.ReviewRejected || rec.Record.StateVersion != vBase+100 || onboarding.DeriveStatus(rec.Record.State, "full", at) != onboarding.StatusRejected {
				t.Fatalf("reject: %+v, %v, %v", rec, ok, err)
			}
			if _, ok, err := h.store.RecordReview(ctx, alice, decision(onboarding.DecisionApprove, "", "staff-3", at.Add(3*time.Minute)), nil); err != nil || ok {
				t.Fatalf("approve after the rejection: %v, %v; want nothing recorded", ok, err)
			}
			got, err := h.store.StaffHistory(ctx, alice, onboarding.HistoryLimit)
			if err != nil {
				t.Fatal(err)
			}
			want := []onboarding.ReviewDecision{
				decision(onboarding.DecisionReject, "fraud", "staff-2", at.Add(2*time.Minute)),
				decision(onboarding.DecisionApprove, "", "staff-1", at),
			}
			if len(got.Reviews) != 2 || !sameDecision(got.Reviews[0], want[0]) || !sameDecision(got.Reviews[1], want[1]) {
				t.Errorf("reviews, newest first:\n got %+v\nwant %+v", got.Reviews, want)
			}
			// Written without an outcome, as before attempts had one: each reads as a decision.
			for _, r := range got.Reviews {
				if r.Outcome != onboarding.AuditRecorded || r.Attempt != "" {
					t.Errorf("a decision stored without an outcome reads as %q (attempt %q), want recorded", r.Outcome, r.Attempt)
				}
			}
			if got.Review != onboarding.ReviewRejected || got.Record.StateVersion != vBase+100 {
				t.Errorf("record after the rejection: %+v", got.StaffRecord)
			}
			h.wantDerived(t, alice, onboarding.StatusRejected)
			h.wantMoves(t, alice, move{onboarding.StatusRestricted, onboarding.StatusRejected, onboarding.CauseStaff})
		}},
		{"a rejection whose state is older than the stored one records the decision and keeps the state", func(t *testing.T, h *harness) {
			h.withAccount(t)
			h.apply(t, webhook(snapshotEvent("evt_1", 200, stateRejected())), onboarding.OutcomeApplied)
			write := &onboarding.StateWrite{State: stateActive(), Version: vBase + 100}
			rec, ok, err := h.store.RecordReview(ctx, alice, decision(onboarding.DecisionReject, "other", "staff-1", at), write)
			if err != nil || !ok || rec.Review != onboarding.ReviewRejected || rec.Record.StateVersion != vBase+200 {
				t.Fatalf("reject: %+v, %v, %v", rec, ok, err)
			}
			h.wantDerived(t, alice, onboarding.StatusRejected)
			h.wantMoves(t, alice, move{onboarding.StatusRestricted, onboarding.StatusRejected, onboarding.CauseWebhook})
		}},
		{"Stripe's webhook of a staff rejection, stored first, is recorded as the staff's; the decision ends the mark", func(t *testing.T, h *harness) {
			h.withAccount(t)
			if err := h.store.BeginRejection(ctx, alice, intent("a1", eventNow(10)), eventNow(10).Add(onboarding.RejectionWindow)); err != nil {
				t.Fatal(err)
			}
			h.apply(t, webhook(snapshotEvent("evt_rejected", 10, stateRejected())), onboarding.OutcomeApplied)
			write := &onboarding.StateWrite{State: stateRejected(), Version: vBase + 10}
			if _, ok, err := h.store.RecordReview(ctx, alice, decision(onboarding.DecisionReject, "fraud", "staff-1", eventNow(11)), write); err != nil || !ok {
				t.Fatalf("reject: %v, %v", ok, err)
			}
			h.wantMoves(t, alice, move{onboarding.StatusRestricted, onboarding.StatusRejected, onboarding.CauseStaff})
			if _, marked := h.raw(t, "USER#"+alice)["rejecting_until"]; marked {
				t.Error("the rejection's mark outlived the decision")
			}
		}},
		{"a mark that ran out claims nothing; no mark without an account", func(t *testing.T, h *harness) {
			h.withAccount(t)
			if err := h.store.BeginRejection(ctx, alice, intent("a1", eventNow(8)), eventNow(9)); err != nil {
				t.Fatal(err)
			}
			h.apply(t, webhook(snapshotEvent("evt_rejected", 10, stateRejected())), onboarding.OutcomeApplied)
			h.wantMoves(t, alice, move{onboarding.StatusRestricted, onboarding.StatusRejected, onboarding.CauseWebhook})
			if err := h.store.BeginRejection(ctx, bob, intent("a1", eventNow(8)), eventNow(60)); !errors.Is(err, onboarding.ErrNotFound) {
				t.Errorf("BeginRejection(bob) = %v, want ErrNotFound", err)
			}
		}},
		{"no account, no decision", func(t *testing.T, h *harness) {
			h.claim(t, alice, newClaim(claim1, t0.Add(lease), 0), t0)
			for _, user := range []string{alice, bob} {
				if _, _, err := h.store.RecordReview(ctx, user, decision(onboarding.DecisionApprove, "", "s", at), nil); !errors.Is(err, onboarding.ErrNotFound) {
					t.Errorf("RecordReview(%s) = %v, want ErrNotFound", user, err)
				}
				if _, err := h.store.StaffHistory(ctx, user, 10); !errors.Is(err, onboarding.ErrNotFound) {
					t.Errorf("StaffHistory(%s) = %v, want ErrNotFound", user, err)
				}
			}
		}},
		{"concurrent approvals record one decision", func(t *testing.T, h *harness) {
			h.withAccount(t)
			var wg sync.WaitGroup
			var mu sync.Mutex
			recorded := 0
			for i := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, ok, err := h.store.RecordReview(ctx, alice, decision(onboarding.DecisionApprove, "", fmt.Sprintf("staff-%d", i), at), nil)
					if err != nil && !errors.Is(err, onboarding.ErrStorageUnavailable) {
						t.Errorf("approve %d: %v", i, err)
					}
					mu.Lock()
					if ok {
						recorded++
					}
					mu.Unlock()
				}()
			}
			wg.Wait()
			got, _ := h.store.StaffHistory(ctx, alice, onboarding.HistoryLimit)
			if recorded != 1 || len(got.Reviews) != 1 || got.Reviews[0].Reviewer != got.ReviewedBy {
				t.Errorf("%d recorded, %d decisions stored (%+v), review by %q; want one", recorded, len(got.Reviews), got.Reviews, got.ReviewedBy)
			}
		}},
	})
}

func sameDecision(a, b onboarding.ReviewDecision) bool {
	outcome := func(d onboarding.ReviewDecision) onboarding.AuditOutcome {
		if d.Outcome == "" {
			return onboarding.AuditRecorded
		}
		return d.Outcome
	}
	return a.Decision == b.Decision && a.Reason == b.Reason && a.Note == b.Note && a.Reviewer == b.Reviewer && a.At.Equal(b.At) &&
		outcome(a) == outcome(b) && a.Attempt == b.Attempt && a.StripeCode == b.StripeCode && a.StripeMessage == b.StripeMessage
}

// intent is a fraud rejection's intent item of attempt, by staff-1.
func intent(attempt string, at time.Time) onboarding.ReviewDecision {
	d := decision(onboarding.DecisionReject, "fraud", "staff-1", at)
	d.Outcome, d.Attempt = onboarding.AuditIntent, attempt
	return d
}

// outcomeOf is attempt's outcome item.
func outcomeOf(attempt string, o onboarding.AuditOutcome, at time.Time) onboarding.ReviewDecision {
	d := intent(attempt, at)
	d.Outcome = o
	if o == onboarding.AuditRefused {
		d.StripeCode, d.StripeMessage = "balance_not_zero", "This account has a non-zero balance in usd and cannot be rejected."
	}
	return d
}

// Every attempt of a rejection is in the audit with its outcome, newest
// first: the intent before Stripe is called (with the mark, in one
// write), then a refusal (which ends the mark: Stripe rejected nothing),
// an unknown outcome (which keeps it: Stripe may have rejected), or the
// decision. Nothing changes the review but the decision.
func TestEveryRejectionAttemptIsAuditedWithItsOutcome(t *testing.T) {
	ctx := context.Background()
	runCases(t, []storeCase{
		{"refused, unknown, then rejected", func(t *testing.T, h *harness) {
			h.withAccount(t)
			marked := func() bool { _, ok := h.raw(t, "USER#"+alice)["rejecting_until"]; return ok }
			if err := h.store.BeginRejection(ctx, alice, intent("a1", eventNow(1)), eventNow(1).Add(onboarding.RejectionWindow)); err != nil || !marked() {
				t.Fatalf("intent 1: %v (marked %v)", err, marked())
			}
			if err := h.store.RecordRejectionOutcome(ctx, alice, outcomeOf("a1", onboarding.AuditRefused, eventNow(2))); err != nil || marked() {
				t.Fatalf("refusal 1: %v (marked %v, want the mark gone)", err, marked())
			}
			if err := h.store.BeginRejection(ctx, alice, intent("a2", eventNow(3)), eventNow(3).Add(onboarding.RejectionWindow)); err != nil {
				t.Fatal(err)
			}
			if err := h.store.RecordRejectionOutcome(ctx, alice, outcomeOf("a2", onboarding.AuditUnknown, eventNow(4))); err != nil || !marked() {
				t.Fatalf("unknown 2: %v (marked %v, want the mark kept)", err, marked())
			}
			got, err := h.store.StaffHistory(ctx, alice, onboarding.HistoryLimit)
			if err != nil || got.Review != "" && got.Review != onboarding.ReviewPending {
				t.Fatalf("review after two attempts: %q, %v; want still pending", got.Review, err)
			}
			if err := h.store.BeginRejection(ctx, alice, intent("a3", eventNow(5)), eventNow(5).Add(onboarding.RejectionWindow)); err != nil {
				t.Fatal(err)
			}
			done := outcomeOf("a3", onboarding.AuditRecorded, eventNow(6))
			if _, ok, err := h.store.RecordReview(ctx, alice, done, &onboarding.StateWrite{State: stateRejected(), Version: vBase + 5}); err != nil || !ok || marked() {
				t.Fatalf("decision 3: %v, %v (marked %v)", ok, err, marked())
			}
			got, err = h.store.StaffHistory(ctx, alice, onboarding.HistoryLimit)
			if err != nil {
				t.Fatal(err)
			}
			want := []onboarding.ReviewDecision{
				done, intent("a3", eventNow(5)),
				outcomeOf("a2", onboarding.AuditUnknown, eventNow(4)), intent("a2", eventNow(3)),
				outcomeOf("a1", onboarding.AuditRefused, eventNow(2)), intent("a1", eventNow(1)),
			}
			if len(got.Reviews) != len(want) {
				t.Fatalf("audit, newest first:\n got %+v\nwant %+v", got.Reviews, want)
			}
			for i := range want {
				if !sameDecision(got.Reviews[i], want[i]) || got.Reviews[i].Outcome != want[i].Outcome {
					t.Errorf("audit item %d:\n got %+v\nwant %+v", i, got.Reviews[i], want[i])
				}
			}
			if got.Review != onboarding.ReviewRejected {
				t.Errorf("review %q, want rejected", got.Review)
			}
			h.wantMoves(t, alice, move{onboarding.StatusRestricted, onboarding.StatusRejected, onboarding.CauseStaff})
		}},
		{"no account: no intent, no outcome, nothing written", func(t *testing.T, h *harness) {
			h.claim(t, alice, newClaim(claim1, t0.Add(lease), 0), t0)
			for _, user := range []string{alice, bob} {
				if err := h.store.BeginRejection(ctx, user, intent("a1", eventNow(1)), eventNow(60)); !errors.Is(err, onboarding.ErrNotFound) {
					t.Errorf("BeginRejection(%s) = %v, want ErrNotFound", user, err)
				}
				for _, o := range []onboarding.AuditOutcome{onboarding.AuditRefused, onboarding.AuditUnknown} {
					if err := h.store.RecordRejectionOutcome(ctx, user, outcomeOf("a1", o, eventNow(2))); !errors.Is(err, onboarding.ErrNotFound) {
						t.Errorf("RecordRejectionOutcome(%s, %s) = %v, want ErrNotFound", user, o, err)
					}
				}
			}
			if _, marked := h.raw(t, "USER#"+alice)["rejecting_until"]; marked {
				t.Error("a claim without an account was marked")
			}
		}},
	})
}

func TestStaffStorageFailuresAreRetryable(t *testing.T) {
	eachEngine(t, func(t *testing.T, e testenv.Engine) {
		h := newHarness(t, e)
		h.withAccount(t)
		for _, fault := range []error{errors.New("connection reset by peer"), &types.InternalServerError{Message: aws.String("oops")}} {
			st := dynamostore.New(failing(fault), h.table)
			_, err := st.ListAccounts(context.Background(), onboarding.AccountFilter{Limit: 10})
			wantStorageUnavailable(t, "ListAccounts", err)
			_, err = st.StaffHistory(context.Background(), alice, 10)
			wantStorageUnavailable(t, "StaffHistory", err)
			_, _, err = st.RecordReview(context.Background(), alice, decision(onboarding.DecisionApprove, "", "s", t0), nil)
			wantStorageUnavailable(t, "RecordReview", err)
		}
		// The record read works, the history query fails.
		c := passthrough(h.db)
		c.query = failing(errors.New("timeout")).query
		_, err := dynamostore.New(c, h.table).StaffHistory(context.Background(), alice, 10)
		wantStorageUnavailable(t, "StaffHistory with a failing index", err)
		c = passthrough(h.db)
		c.batchGetItem = failing(errors.New("timeout")).batchGetItem
		_, err = dynamostore.New(c, h.table).ListAccounts(context.Background(), onboarding.AccountFilter{Limit: 10})
		wantStorageUnavailable(t, "ListAccounts with a failing batch read", err)
	})
}

// A cursor made by hand (its tag is a checksum anyone can compute) may sit
// at or below created_after. The page is empty and the last, and DynamoDB
// is not asked: it refuses a BETWEEN whose bounds are reversed.
func TestListAccountsWithACursorBelowCreatedAfterIsEmptyWithoutAQuery(t *testing.T) {
	eachEngine(t, func(t *testing.T, e testenv.Engine) {
		h := newHarness(t, e)
		h.listWorld(t, 3)
		c, queries := countingQueries(h.db, nil)
		st := dynamostore.New(c, h.table)
		f := onboarding.AccountFilter{Limit: 10, CreatedAfter: t0.Add(90 * time.Second)} // u02 is after it
		position := t0.Add(time.Minute).UTC().Format("2006-01-02T15:04:05.000000000Z") + "#u01"
		f.Cursor = dynamostore.EncodeCursor(f, position)
		page, err := st.ListAccounts(context.Background(), f)
		if err != nil || len(page.Accounts) != 0 || page.NextCursor != nil {
			t.Fatalf("%+v %v, want an empty last page", page, err)
		}
		if *queries != 0 {
			t.Errorf("%d queries for a page with nothing between its bounds, want none", *queries)
		}
	})
}

// DynamoDB may end a query's answer early (at 1 MB, here at every item).
// When a filter skips what it reads, one page reads a partition at most 4
// times and ends early with a cursor; following the cursors finds every
// match.
func TestListAccountsBoundsItsReadsWhenAFilterSkipsMost(t *testing.T) {
	eachEngine(t, func(t *testing.T, e testenv.Engine) {
		h := newHarness(t, e)
		w := h.listWorld(t, 12)
		c, queries := countingQueries(h.db, func(in *dynamodb.QueryInput) { in.Limit = aws.Int32(1) })
		st := dynamostore.New(c, h.table)
		// Three pending and restricted among 12, each behind others that
		// are not; the queue is oldest first.
		f := onboarding.AccountFilter{Limit: 5, Review: onboarding.ReviewPending, Status: onboarding.StatusRestricted}
		want := w.want(f)
		if !slices.Equal(want, []string{"u01", "u04", "u07"}) {
			t.Fatalf("the world's pending restricted accounts: %v", want)
		}
		for _, f := range []onboarding.AccountFilter{f, {Review: onboarding.ReviewApproved, Status: onboarding.StatusRestricted}} {
			want := w.want(f)
			for _, limit := range []int{5, 1} { // 1: a page fills on the last item an answer holds
				f.Limit, f.Cursor = limit, ""
				if got := h.listBounded(t, st, f, queries); !slices.Equal(got, want) {
					t.Errorf("%+v: listed %v, want %v", f, got, want)
				}
			}
		}
	})
}

// listBounded follows the cursors of f to the end, each page within 4
// queries (counted in queries).
func (h *harness) listBounded(t *testing.T, st *dynamostore.Store, f onboarding.AccountFilter, queries *int) []string {
	t.Helper()
	var got []string
	for pages := 1; ; pages++ {
		*queries = 0
		page, err := st.ListAccounts(context.Background(), f)
		if err != nil {
			t.Fatal(err)
		}
		if *queries > 4 {
			t.Fatalf("page %d made %d queries, want 4 at most", pages, *queries)
		}
		for _, a := range page.Accounts {
			got = append(got, a.UserID)
		}
		if page.NextCursor == nil {
			return got
		}
		if pages > 12 {
			t.Fatal("more than 12 pages: the cursor does not move on")
		}
		f.Cursor = *page.NextCursor
	}
}

// A healing webhook (the account carries the claim's creation id) that
// meets the creator's own completion just before its write completes the
// record is applied to the account the creator stored.
func TestAHealingWebhookThatMeetsTheCreatorsCompletionAppliesToIt(t *testing.T) {
	eachEngine(t, func(t *testing.T, e testenv.Engine) {
		ctx := context.Background()
		h := newHarness(t, e)
		h.claim(t, alice, newClaim(claim1, t0.Add(lease), 0), t0)
		completed := false
		c := passthrough(h.db)
		c.transactWriteItems = func(ctx context.Context, in *dynamodb.TransactWriteItemsInput, o ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
			for _, ti := range in.TransactItems {
				// The write that completes the record stores the account's index.
				if ti.Put != nil && strings.HasPrefix(str(ti.Put.Item, "pk"), "ACCOUNT#") && !completed {
					completed = true
					h.complete(t, baseRecord(), claim1)
				}
			}
			return h.db.TransactWriteItems(ctx, in, o...)
		}
		got, err := dynamostore.New(c, h.table).ApplyEvent(ctx, healingEvent("evt_heal", 10, stateActive()))
		if err != nil || got != onboarding.OutcomeApplied || !completed {
			t.Fatalf("ApplyEvent = %q, %v (creator's completion met: %v); want it applied to the account the creator stored", got, err, completed)
		}
		u := h.user(t, alice)
		if u.Account == nil || u.Account.StateVersion != vBase+10 || !u.Account.State.ChargesEnabled {
			t.Errorf("record %+v, want the webhook's state on the creator's record", u.Account)
		}
		h.wantOwner(t, acctAlice, alice)
	})
}

// A rejection's state of the stored state's own second replaces it (ties
// apply, as for webhooks), and the answer shows what was stored.
func TestARejectionOfTheStoredStatesSecondReplacesIt(t *testing.T) {
	runCases(t, []storeCase{{"tie", func(t *testing.T, h *harness) {
		ctx := context.Background()
		h.withAccount(t)
		write := &onboarding.StateWrite{State: stateRejected(), Version: vBase}
		rec, ok, err := h.store.RecordReview(ctx, alice, decision(onboarding.DecisionReject, "fraud", "staff-1", t0.Add(time.Hour)), write)
		if err != nil || !ok {
			t.Fatalf("reject: %v, %v", ok, err)
		}
		stored := h.user(t, alice).Account
		if got := onboarding.DeriveStatus(rec.Record.State, "full", t0); got != onboarding.StatusRejected || !reflect.DeepEqual(normalized(rec.Record).State, normalized(*stored).State) {
			t.Errorf("answered %s %+v, stored %+v; want the rejection in both", got, rec.Record.State, stored.State)
		}
		h.wantDerived(t, alice, onboarding.StatusRejected)
	}}})
}

// ---- status edge cases ----

func TestStatusEdgeCases(t *testing.T) {
	ctx := context.Background()
	runCases(t, []storeCase{
		{"a record's status changes are numbered from 1 on, in their keys and items", func(t *testing.T, h *harness) {
			h.withAccount(t)
			h.apply(t, webhook(snapshotEvent("evt_1", 10, stateActive())), onboarding.OutcomeApplied)
			h.apply(t, webhook(snapshotEvent("evt_2", 20, stateOnboarding())), onboarding.OutcomeApplied)
			for n := 1; n <= 2; n++ {
				item := h.raw(t, fmt.Sprintf("STATUS#%s#%012d", alice, n))
				if seq, ok := item["seq"].(*types.AttributeValueMemberN); !ok || seq.Value != strconv.Itoa(n) {
					t.Errorf("status change %d: %v", n, item)
				}
			}
			if seq, ok := h.raw(t, "USER#"+alice)["status_seq"].(*types.AttributeValueMemberN); !ok || seq.Value != "2" {
				t.Errorf("the record counts %v changes, want 2", h.raw(t, "USER#"+alice)["status_seq"])
			}
		}},
		{"a state older than the stored one, of the same status, leaves the record and answers it", func(t *testing.T, h *harness) {
			h.withAccount(t)
			older := stateOnboarding()
			older.Requirements.EventuallyDue = append(older.Requirements.EventuallyDue, "company.tax_id")
			got, err := h.store.SaveState(ctx, alice, older, vBase-1, t0.Add(time.Hour), onboarding.CauseRefresh)
			if err != nil {
				t.Fatal(err)
			}
			sameRecord(t, "answered", got, baseRecord())
			h.wantAccount(t, baseRecord())
		}},
		{"a capability event on an account that listed none yet", func(t *testing.T, h *harness) {
			h.claim(t, alice, newClaim(claim1, t0.Add(lease), 0), t0)
			rec := baseRecord()
			rec.State.Capabilities = nil
			h.complete(t, rec, claim1)
			h.apply(t, webhook(capabilityEvent("evt_cap", 10, "transfers", "active")), onboarding.OutcomeApplied)
			if caps := h.user(t, alice).Account.State.Capabilities; len(caps) != 1 || caps["transfers"] != "active" {
				t.Errorf("capabilities %v, want transfers active", caps)
			}
		}},
		{"a recipient account completed by its webhook gets the recipient's status", func(t *testing.T, h *harness) {
			claim := newClaim(claim1, t0.Add(lease), 0)
			claim.Params.ServiceAgreement, claim.Params.Capabilities = onboarding.AgreementRecipient, []string{"transfers"}
			h.claim(t, alice, claim, t0)
			st := stateActive()
			st.ChargesEnabled = false // a recipient account has transfers only
			st.Capabilities = map[string]string{"transfers": "active"}
			c := healingEvent("evt_heal", 10, st)
			c.ServiceAgreement = onboarding.AgreementRecipient
			h.apply(t, webhook(c), onboarding.OutcomeApplied)
			h.wantDerived(t, alice, onboarding.StatusActive)
		}},
	})
}

// racingClient is h's client, except that before each of the first races
// transactions another writer changes alice's status: an older webhook
// lands first, with another status each time. writes counts transactions.
func (h *harness) racingClient(t *testing.T, races int) (c funcClient, writes *int) {
	writes = new(int)
	events := 0
	c = passthrough(h.db)
	c.transactWriteItems = func(ctx context.Context, in *dynamodb.TransactWriteItemsInput, o ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
		*writes++
		if events < races {
			events++
			st := stateActive()
			if events%2 == 0 {
				st = stateOnboarding()
			}
			h.apply(t, webhook(snapshotEvent(fmt.Sprintf("evt_race_%d", events), int64(events), st)), onboarding.OutcomeApplied)
		}
		return h.db.TransactWriteItems(ctx, in, o...)
	}
	return c, writes
}

// wantRaceWaits checks the waits between the attempts of a write losing
// races: none before the first retry (it usually wins), then a jittered
// 1 to 10 ms times the attempt, so that writers spread.
func wantRaceWaits(t *testing.T, waits *dynamostore.Waits, races int) {
	t.Helper()
	got := waits.All()
	if races == 1 {
		if len(got) != 0 {
			t.Errorf("waited %v before the first retry, want no wait", got)
		}
		return
	}
	if len(got) != 6 {
		t.Fatalf("waited %v, want a wait before each of the attempts 3 to 8", got)
	}
	for i, d := range got {
		attempt := time.Duration(i + 2)
		if d < attempt*time.Millisecond || d > 10*attempt*time.Millisecond {
			t.Errorf("wait %d after attempt %d: %v, want %v to %v", i, attempt, d, attempt*time.Millisecond, 10*attempt*time.Millisecond)
		}
	}
}

// A state write that loses to another writer (a webhook changed the
// account's status between its read and its write) is tried again on the
// record as it is, and stored once; one whose record changes status under
// every attempt fails as retryable (Stripe redelivers, staff try again),
// after 2 to 8 attempts: each costs a transaction's write units.
func TestAStateWriteThatLosesAStatusRaceIsTriedAgain(t *testing.T) {
	ctx := context.Background()
	writers := []struct {
		name      string
		decisions int // the audit items one stored write leaves
		write     func(st *dynamostore.Store) error
	}{
		{"a webhook", 0, func(st *dynamostore.Store) error {
			got, err := st.ApplyEvent(ctx, webhook(snapshotEvent("evt_new", 100, stateRejected())))
			if err == nil && got != onboarding.OutcomeApplied {
				return fmt.Errorf("outcome %q, want applied", got)
			}
			return err
		}},
		{"a refresh", 0, func(st *dynamostore.Store) error {
			got, err := st.SaveState(ctx, alice, stateRejected(), vBase+100, t0.Add(time.Hour), onboarding.CauseRefresh)
			if err == nil && got.StateVersion != vBase+100 {
				return fmt.Errorf("answered version %d, want the refresh's", got.StateVersion)
			}
			return err
		}},
		{"a staff rejection", 1, func(st *dynamostore.Store) error {
			write := &onboarding.StateWrite{State: stateRejected(), Version: vBase + 100}
			rec, ok, err := st.RecordReview(ctx, alice, decision(onboarding.DecisionReject, "fraud", "staff-1", t0.Add(time.Hour)), write)
			if err == nil && (!ok || rec.Review != onboarding.ReviewRejected || rec.ReviewedBy != "staff-1" || rec.Record.StateVersion != vBase+100) {
				return fmt.Errorf("answered %+v, %v; want the rejection recorded", rec, ok)
			}
			return err
		}},
	}
	eachEngine(t, func(t *testing.T, e testenv.Engine) {
		for _, w := range writers {
			for _, races := range []int{1, 20} {
				t.Run(fmt.Sprintf("%s, %d races", w.name, races), func(t *testing.T) {
					h := newHarness(t, e)
					h.withAccount(t)
					c, writes := h.racingClient(t, races)
					st := dynamostore.New(c, h.table)
					waits := dynamostore.RecordWaits(st)
					err := w.write(st)
					wantRaceWaits(t, waits, races)
					history, herr := h.store.StaffHistory(ctx, alice, onboarding.HistoryLimit)
					if herr != nil {
						t.Fatal(herr)
					}
					stored := history.Record.StateVersion == vBase+100
					if races == 1 {
						if err != nil || *writes != 2 || !stored || len(history.Reviews) != w.decisions {
							t.Fatalf("after one lost race: %v in %d writes, stored version %d, %d decisions; want it stored once, in 2",
								err, *writes, history.Record.StateVersion, len(history.Reviews))
						}
						h.wantDerived(t, alice, onboarding.StatusRejected)
						return
					}
					wantStorageUnavailable(t, w.name+" losing every race", err)
					if *writes < 2 || *writes > 8 || stored || len(history.Reviews) != 0 {
						t.Errorf("%d writes, stored version %d, %d decisions; want 2 to 8 attempts and nothing stored", *writes, history.Record.StateVersion, len(history.Reviews))
					}
				})
			}
		}
	})
}

// A record written before records named their user (no user_id) is listed
// under the user its key names.
func TestTheStaffListNamesTheUserOfARecordWithoutUserID(t *testing.T) {
	runCases(t, []storeCase{{"legacy record", func(t *testing.T, h *harness) {
		h.withAccount(t)
		h.strip(t, alice, "user_id")
		page, err := h.store.ListAccounts(context.Background(), onboarding.AccountFilter{Limit: 10})
		if err != nil || len(page.Accounts) != 1 || page.Accounts[0].UserID != alice {
			t.Errorf("%+v %v, want alice's account under her name", page, err)
		}
	}}})
}

// A history of no entries asks the index nothing: DynamoDB refuses a
// query with a limit of 0.
func TestStaffHistoryWithoutEntriesMakesNoQuery(t *testing.T) {
	eachEngine(t, func(t *testing.T, e testenv.Engine) {
		h := newHarness(t, e)
		h.withAccount(t)
		c, queries := countingQueries(h.db, nil)
		got, err := dynamostore.New(c, h.table).StaffHistory(context.Background(), alice, 0)
		if err != nil || got.Record.AccountID != acctAlice || *queries != 0 {
			t.Errorf("%+v %v after %d queries, want the record and no query", got.StaffRecord, err, *queries)
		}
	})
}

// A capability event's status depends on the state it lands on: after a
// lost race it is judged again on the state as it is now.
func TestACapabilityEventThatLosesARaceIsJudgedOnTheStateItLandsOn(t *testing.T) {
	eachEngine(t, func(t *testing.T, e testenv.Engine) {
		h := newHarness(t, e)
		h.withAccount(t)
		c, writes := h.racingClient(t, 1) // the account becomes active first
		got, err := dynamostore.New(c, h.table).ApplyEvent(context.Background(), webhook(capabilityEvent("evt_cap", 100, "transfers", "inactive")))
		if err != nil || got != onboarding.OutcomeApplied || *writes != 2 {
			t.Fatalf("ApplyEvent = %q, %v in %d writes; want it applied on the second", got, err, *writes)
		}
		st := h.user(t, alice).Account.State
		if !st.ChargesEnabled || st.Capabilities["transfers"] != "inactive" {
			t.Fatalf("stored %+v, want the active state with transfers inactive", st)
		}
		h.wantDerived(t, alice, onboarding.DeriveStatus(st, "full", eventNow(100)))
	})
}

// A staff rejection's mark ends at its until: Stripe's rejection of that
// very millisecond is Stripe's own (a mark that ran out claims nothing).
func TestARejectionMarkEndsAtItsUntil(t *testing.T) {
	runCases(t, []storeCase{{"mark ended", func(t *testing.T, h *harness) {
		h.withAccount(t)
		if err := h.store.BeginRejection(context.Background(), alice, intent("a1", eventNow(9)), eventNow(10)); err != nil {
			t.Fatal(err)
		}
		h.apply(t, webhook(snapshotEvent("evt_rejected", 10, stateRejected())), onboarding.OutcomeApplied)
		h.wantMoves(t, alice, move{onboarding.StatusRestricted, onboarding.StatusRejected, onboarding.CauseWebhook})
	}}})
}

// countingQueries is db, counting its queries; change, when set, alters
// each query's copy before it is sent.
func countingQueries(db dynamostore.Client, change func(*dynamodb.QueryInput)) (c funcClient, queries *int) {
	queries = new(int)
	c = passthrough(db)
	c.query = func(ctx context.Context, in *dynamodb.QueryInput, o ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
		*queries++
		if change != nil {
			copied := *in
			change(&copied)
			in = &copied
		}
		return db.Query(ctx, in, o...)
	}
	return c, queries
}
