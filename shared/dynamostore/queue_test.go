package dynamostore_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/connectexpress/onboarding/internal/testenv"
	"github.com/connectexpress/onboarding/shared/dynamostore"
	"github.com/connectexpress/onboarding/shared/onboarding"
)

// The review queue (review=pending) and the risk signals of the staff
// list and detail, on each engine.

func stateNotSubmitted() onboarding.AccountState {
	st := stateOnboarding()
	st.DetailsSubmitted = false
	return st
}

// storeAccount creates user's account at created, with state and email, through
// the claim and its completion.
func (h *harness) storeAccount(t *testing.T, user string, created time.Time, st onboarding.AccountState, email string) {
	t.Helper()
	h.claim(t, user, newClaim("claim-"+user, created.Add(lease), 0), created)
	h.complete(t, onboarding.AccountRecord{UserID: user, AccountID: "acct_" + user, Country: "US", ServiceAgreement: "full",
		State: st, StateVersion: created.Unix(), CreatedAt: created, UpdatedAt: created, Email: email}, "claim-"+user)
}

// queue follows the queue's cursors to the end, limit accounts a page,
// each page one query.
func (h *harness) queue(t *testing.T, limit int, status onboarding.Status) []string {
	t.Helper()
	c, queries := countingQueries(h.db, nil)
	st := dynamostore.New(c, h.table)
	f := onboarding.AccountFilter{Review: onboarding.ReviewPending, Status: status, Limit: limit}
	var got []string
	for pages := 1; ; pages++ {
		*queries = 0
		page, err := st.ListAccounts(context.Background(), f)
		if err != nil {
			t.Fatalf("queue page %d: %v", pages, err)
		}
		if *queries != 1 {
			t.Errorf("queue page %d made %d queries, want 1", pages, *queries)
		}
		for _, a := range page.Accounts {
			if a.Review != onboarding.ReviewPending {
				t.Errorf("%s in the queue with review %q", a.UserID, a.Review)
			}
			got = append(got, a.UserID)
		}
		if page.NextCursor == nil {
			return got
		}
		if pages > 20 {
			t.Fatal("more than 20 pages: the cursor does not move on")
		}
		f.Cursor = *page.NextCursor
	}
}

func TestTheReviewQueueHoldsSubmittedUndecidedAccountsOldestFirstBySubmission(t *testing.T) {
	eachEngine(t, func(t *testing.T, e testenv.Engine) {
		ctx := context.Background()
		h := newHarness(t, e)
		at := func(minutes int) time.Time { return t0.Add(time.Duration(minutes) * time.Minute) }
		// early: created first, submits last (a webhook at minute 30).
		h.storeAccount(t, "early", at(0), stateNotSubmitted(), "")
		// submitted: created with its details in (an account Stripe had).
		h.storeAccount(t, "submitted", at(1), stateActive(), "")
		// refreshed: submits at minute 20, seen through a refresh.
		h.storeAccount(t, "refreshed", at(2), stateNotSubmitted(), "")
		// never: still filling in Stripe's form.
		h.storeAccount(t, "never", at(3), stateNotSubmitted(), "")
		// approved, rejected: submitted, then decided.
		h.storeAccount(t, "approved", at(4), stateActive(), "")
		h.storeAccount(t, "rejected", at(5), stateActive(), "")
		for user, d := range map[string]onboarding.Decision{"approved": onboarding.DecisionApprove, "rejected": onboarding.DecisionReject} {
			if _, ok, err := h.store.RecordReview(ctx, user, onboarding.ReviewDecision{Decision: d, Reviewer: "staff", At: at(6)}, nil); err != nil || !ok {
				t.Fatalf("decide %s: %v, %v", user, ok, err)
			}
		}
		if _, err := h.store.SaveState(ctx, "refreshed", stateActive(), at(20).Unix(), at(20), onboarding.CauseRefresh); err != nil {
			t.Fatal(err)
		}
		submit := onboarding.StateChange{EventID: "evt_early", UserID: "early", AccountID: "acct_early", Kind: onboarding.ChangeSnapshot,
			Version: at(30).Unix(), State: stateActive(), Country: "US", ServiceAgreement: "full", Now: at(30), RetainUntil: at(30).Add(retention)}
		h.apply(t, webhook(submit), onboarding.OutcomeApplied)
		// A later state write with the details still submitted keeps the
		// account's place: it entered the queue once.
		if _, err := h.store.SaveState(ctx, "submitted", stateOnboarding(), at(40).Unix(), at(40), onboarding.CauseSweep); err != nil {
			t.Fatal(err)
		}

		want := []string{"submitted", "refreshed", "early"}
		for _, limit := range []int{1, 2, 100} {
			if got := h.queue(t, limit, ""); !slices.Equal(got, want) {
				t.Errorf("limit %d: the queue is %v, want %v", limit, got, want)
			}
		}
		// With a status: the queue's accounts in it, in the queue's order.
		if got := h.queue(t, 1, onboarding.StatusRestricted); !slices.Equal(got, []string{"submitted"}) {
			t.Errorf("the queue's restricted accounts: %v, want [submitted]", got)
		}
		if got := h.queue(t, 1, onboarding.StatusActive); !slices.Equal(got, []string{"refreshed", "early"}) {
			t.Errorf("the queue's active accounts: %v, want [refreshed early]", got)
		}
		// The unfiltered list still holds every account, newest first.
		page, err := h.store.ListAccounts(ctx, onboarding.AccountFilter{Limit: 100})
		if err != nil || len(page.Accounts) != 6 || page.Accounts[0].UserID != "rejected" {
			t.Errorf("the unfiltered list: %+v, %v; want all 6, newest first", page.Accounts, err)
		}
	})
}

// A record stored before the queue existed has no queued_at: its next
// state write with details submitted puts it in the queue, at that write.
func TestARecordFromBeforeTheQueueJoinsItAtItsNextSubmittedStateWrite(t *testing.T) {
	eachEngine(t, func(t *testing.T, e testenv.Engine) {
		ctx := context.Background()
		h := newHarness(t, e)
		h.storeAccount(t, "old", t0, stateActive(), "")
		h.storeAccount(t, "new", t0.Add(time.Minute), stateActive(), "")
		h.strip(t, "old", "queued_at", "submitted_key")
		if got := h.queue(t, 10, ""); !slices.Equal(got, []string{"new"}) {
			t.Fatalf("queue before old's next write: %v, want [new]", got)
		}
		later := t0.Add(time.Hour)
		if _, err := h.store.SaveState(ctx, "old", stateActive(), later.Unix(), later, onboarding.CauseSweep); err != nil {
			t.Fatal(err)
		}
		if got := h.queue(t, 10, ""); !slices.Equal(got, []string{"new", "old"}) {
			t.Errorf("queue after: %v, want [new old]", got)
		}
	})
}

func TestTheQueueRefusesACursorOfAnotherFilter(t *testing.T) {
	eachEngine(t, func(t *testing.T, e testenv.Engine) {
		ctx := context.Background()
		h := newHarness(t, e)
		h.storeAccount(t, "a", t0, stateActive(), "")
		h.storeAccount(t, "b", t0.Add(time.Minute), stateActive(), "")
		page, err := h.store.ListAccounts(ctx, onboarding.AccountFilter{Review: onboarding.ReviewPending, Limit: 1})
		if err != nil || page.NextCursor == nil {
			t.Fatalf("first page: %+v, %v", page, err)
		}
		for _, f := range []onboarding.AccountFilter{{}, {Review: onboarding.ReviewApproved}, {Review: onboarding.ReviewPending, Status: onboarding.StatusActive}} {
			f.Limit, f.Cursor = 1, *page.NextCursor
			_, err := h.store.ListAccounts(ctx, f)
			if e, ok := onboarding.AsError(err); !ok || e.Param != "cursor" {
				t.Errorf("the queue's cursor with %+v: %v, want validation_error on cursor", f, err)
			}
		}
		// And a list cursor is no queue cursor.
		all, _ := h.store.ListAccounts(ctx, onboarding.AccountFilter{Limit: 1})
		_, err = h.store.ListAccounts(ctx, onboarding.AccountFilter{Review: onboarding.ReviewPending, Limit: 1, Cursor: *all.NextCursor})
		if e, ok := onboarding.AsError(err); !ok || e.Param != "cursor" {
			t.Errorf("a list cursor in the queue: %v, want validation_error on cursor", err)
		}
	})
}

// signalsOf is each listed account's signal codes, from the unfiltered list.
func (h *harness) signalsOf(t *testing.T) map[string][]string {
	t.Helper()
	page, err := h.store.ListAccounts(context.Background(), onboarding.AccountFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, a := range page.Accounts {
		if a.Signals == nil {
			t.Errorf("%s: signals nil, want a list", a.UserID)
		}
		codes := []string{}
		for _, s := range a.Signals {
			codes = append(codes, s.Code)
		}
		out[a.UserID] = codes
	}
	return out
}

func (h *harness) sharedWith(t *testing.T, user string) []string {
	t.Helper()
	got, err := h.store.StaffHistory(context.Background(), user, onboarding.HistoryLimit)
	if err != nil {
		t.Fatal(err)
	}
	return got.EmailSharedWith
}

func TestDuplicateEmailsAreFoundCaseInsensitivelyAndFollowAChangedEmail(t *testing.T) {
	eachEngine(t, func(t *testing.T, e testenv.Engine) {
		ctx := context.Background()
		h := newHarness(t, e)
		h.storeAccount(t, "ann", t0, stateActive(), "Seller@Example.com")
		h.storeAccount(t, "ben", t0.Add(time.Minute), stateActive(), " seller@example.COM")
		h.storeAccount(t, "cat", t0.Add(2*time.Minute), stateActive(), "cat@example.com")
		h.storeAccount(t, "dan", t0.Add(3*time.Minute), stateActive(), "")
		dup := []string{onboarding.SignalDuplicateEmail}
		wantSignals := func(when string, want map[string][]string) {
			t.Helper()
			got := h.signalsOf(t)
			for user, codes := range want {
				if !slices.Equal(got[user], codes) {
					t.Errorf("%s: %s's signals %v, want %v", when, user, got[user], codes)
				}
			}
		}
		wantSignals("ann and ben share an email", map[string][]string{"ann": dup, "ben": dup, "cat": {}, "dan": {}})
		if got := h.sharedWith(t, "ann"); !slices.Equal(got, []string{"ben"}) {
			t.Errorf("ann's email is shared with %v, want [ben]", got)
		}
		page, _ := h.store.ListAccounts(ctx, onboarding.AccountFilter{Limit: 100})
		for _, a := range page.Accounts {
			if a.UserID == "ann" && (a.Email == nil || *a.Email != "Seller@Example.com") {
				t.Errorf("ann's summary email %v, want the one given", a.Email)
			}
			if a.UserID == "dan" && a.Email != nil {
				t.Errorf("dan's summary email %q, want null", *a.Email)
			}
		}

		// ben moves to another email: nobody shares one.
		if err := h.store.RecordPrefill(ctx, "ben", onboarding.Prefill{Email: "ben@example.org"}); err != nil {
			t.Fatal(err)
		}
		wantSignals("ben changed his", map[string][]string{"ann": {}, "ben": {}, "cat": {}})
		// cat takes ann's, in other case; dan gets his first.
		if err := h.store.RecordPrefill(ctx, "cat", onboarding.Prefill{Email: "SELLER@EXAMPLE.COM"}); err != nil {
			t.Fatal(err)
		}
		if err := h.store.RecordPrefill(ctx, "dan", onboarding.Prefill{Email: "Seller@example.com"}); err != nil {
			t.Fatal(err)
		}
		wantSignals("cat and dan took ann's", map[string][]string{"ann": dup, "ben": {}, "cat": dup, "dan": dup})
		if got := h.sharedWith(t, "ann"); !slices.Equal(slices.Sorted(slices.Values(got)), []string{"cat", "dan"}) {
			t.Errorf("ann's email is shared with %v, want [cat dan]", got)
		}
		// A change of case only, and the same email again, keep the sets.
		if err := h.store.RecordPrefill(ctx, "ann", onboarding.Prefill{Email: "seller@example.com"}); err != nil {
			t.Fatal(err)
		}
		if err := h.store.RecordPrefill(ctx, "ann", onboarding.Prefill{Email: "seller@example.com"}); err != nil {
			t.Fatal(err)
		}
		wantSignals("ann changed case", map[string][]string{"ann": dup, "cat": dup, "dan": dup})
		if err := h.store.RecordPrefill(ctx, "nobody", onboarding.Prefill{Email: "x@example.com"}); err != onboarding.ErrNotFound {
			t.Errorf("RecordEmail of a user without an account: %v, want ErrNotFound", err)
		}
	})
}

func TestStripesStateGivesTheVerificationAndReviewSignals(t *testing.T) {
	eachEngine(t, func(t *testing.T, e testenv.Engine) {
		h := newHarness(t, e)
		withErrors := stateActive()
		withErrors.Requirements.Errors = []onboarding.RequirementError{{Code: "verification_document_failed_copy", Reason: "a copy", Requirement: "individual.verification.document"}}
		underReview := stateActive()
		reason := "under_review"
		underReview.Requirements.DisabledReason = &reason
		h.storeAccount(t, "errs", t0, withErrors, "")
		h.storeAccount(t, "held", t0.Add(time.Minute), underReview, "")
		h.storeAccount(t, "fine", t0.Add(2*time.Minute), stateActive(), "")
		got := h.signalsOf(t)
		want := map[string][]string{"errs": {onboarding.SignalVerificationErrors}, "held": {onboarding.SignalStripeReview}, "fine": {}}
		for user, codes := range want {
			if !slices.Equal(got[user], codes) {
				t.Errorf("%s's signals %v, want %v", user, got[user], codes)
			}
		}
	})
}

// What staff see of the prefill: the email, business name and URL given at
// creation, then a PATCH's, each kept until a new one comes.
func TestTheSummaryShowsThePrefillStripeWasGiven(t *testing.T) {
	eachEngine(t, func(t *testing.T, e testenv.Engine) {
		ctx := context.Background()
		h := newHarness(t, e)
		h.claim(t, "sid", newClaim("claim-sid", t0.Add(lease), 0), t0)
		h.complete(t, onboarding.AccountRecord{UserID: "sid", AccountID: "acct_sid", Country: "US", ServiceAgreement: "full",
			State: stateActive(), StateVersion: vBase, CreatedAt: t0, UpdatedAt: t0,
			Email: "sid@example.com", BusinessName: "Sid's <b>Bikes</b>", BusinessURL: "https://bikes.example"}, "claim-sid")
		want := func(when, email, business, url string) {
			t.Helper()
			page, err := h.store.ListAccounts(ctx, onboarding.AccountFilter{Limit: 10})
			if err != nil || len(page.Accounts) != 1 {
				t.Fatalf("%s: %+v, %v", when, page, err)
			}
			a := page.Accounts[0]
			if a.Email == nil || *a.Email != email || a.BusinessName == nil || *a.BusinessName != business || a.BusinessURL == nil || *a.BusinessURL != url {
				t.Errorf("%s: email %v, business %v, url %v; want %q, %q, %q", when, a.Email, a.BusinessName, a.BusinessURL, email, business, url)
			}
			got, err := h.store.StaffHistory(ctx, "sid", 1)
			if r := got.Record; err != nil || r.Email != email || r.BusinessName != business || r.BusinessURL != url {
				t.Errorf("%s: the detail's record %+v, %v", when, r, err)
			}
		}
		want("created", "sid@example.com", "Sid's <b>Bikes</b>", "https://bikes.example")
		if err := h.store.RecordPrefill(ctx, "sid", onboarding.Prefill{BusinessProfile: onboarding.BusinessProfile{URL: "https://sid.example"}}); err != nil {
			t.Fatal(err)
		}
		want("a new url", "sid@example.com", "Sid's <b>Bikes</b>", "https://sid.example")
		h.storeAccount(t, "bare", t0.Add(time.Minute), stateActive(), "")
		page, _ := h.store.ListAccounts(ctx, onboarding.AccountFilter{Limit: 1})
		if a := page.Accounts[0]; a.UserID != "bare" || a.Email != nil || a.BusinessName != nil || a.BusinessURL != nil {
			t.Errorf("an account given none: %+v, want null email, business name and url", a)
		}
	})
}

// The review queue and the reconciliation sweep read one index (a stack
// update may add only one): every connected account is in it, whatever its
// review and whether its details are submitted, so the sweep sees each at
// its state; the queue's part of it is only the submitted, undecided ones,
// each at the time it first submitted, even after its details were taken
// back and given again.
func TestTheSweepReadsEveryConnectedAccountFromTheQueuesIndexAndTheQueueOnlyItsSubmittedOnes(t *testing.T) {
	eachEngine(t, func(t *testing.T, e testenv.Engine) {
		ctx := context.Background()
		h := newHarness(t, e)
		at := func(minutes int) time.Time { return t0.Add(time.Duration(minutes) * time.Minute) }
		h.storeAccount(t, "filling", at(0), stateNotSubmitted(), "")
		h.storeAccount(t, "submitted", at(1), stateActive(), "")
		h.storeAccount(t, "approved", at(2), stateActive(), "")
		h.storeAccount(t, "rejected", at(3), stateActive(), "")
		h.storeAccount(t, "taken-back", at(4), stateActive(), "")
		for user, d := range map[string]onboarding.Decision{"approved": onboarding.DecisionApprove, "rejected": onboarding.DecisionReject} {
			if _, ok, err := h.store.RecordReview(ctx, user, onboarding.ReviewDecision{Decision: d, Reviewer: "staff", At: at(6)}, nil); err != nil || !ok {
				t.Fatalf("decide %s: %v, %v", user, ok, err)
			}
		}
		// taken-back: Stripe asks again for its details, then has them.
		for i, st := range []onboarding.AccountState{stateNotSubmitted(), stateActive()} {
			if _, err := h.store.SaveState(ctx, "taken-back", st, at(10+i).Unix(), at(10+i), onboarding.CauseRefresh); err != nil {
				t.Fatal(err)
			}
		}
		// old: stored before the index (no queued_at, no submitted_key),
		// then a capability webhook: its write puts it in the index.
		h.storeAccount(t, "old", at(5), stateActive(), "")
		h.strip(t, "old", "queued_at", "submitted_key")
		sweep := dynamostore.NewSweepStore(h.db, h.table)
		indexed := func() map[string]onboarding.IndexedRecord {
			t.Helper()
			seen := map[string]onboarding.IndexedRecord{}
			if err := sweep.ReadSweepIndex(ctx, func(r onboarding.IndexedRecord) { seen[r.UserID] = r }); err != nil {
				t.Fatal(err)
			}
			return seen
		}
		if _, ok := indexed()["old"]; ok {
			t.Error("a record from before the index is in it before its next state write")
		}
		capability := onboarding.StateChange{EventID: "evt_old", UserID: "old", AccountID: "acct_old", Kind: onboarding.ChangeCapability,
			Version: at(20).Unix(), Capability: "card_payments", CapabilityStatus: "inactive", Now: at(20), RetainUntil: at(20).Add(retention)}
		h.apply(t, webhook(capability), onboarding.OutcomeApplied)

		seen := indexed()
		for _, user := range []string{"filling", "submitted", "approved", "rejected", "taken-back", "old"} {
			rec, ok := seen[user]
			stored, err := h.store.GetUser(ctx, user)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case !ok:
				t.Errorf("%s is not in the index the sweep reads", user)
			case rec.AccountID != "acct_"+user || rec.StateDigest != onboarding.StateDigest(stored.Account.State):
				t.Errorf("%s read from the index as %+v, want its account and the digest of its stored state", user, rec)
			}
		}
		if len(seen) != 6 {
			t.Errorf("the sweep read %d accounts from the index, want 6: %v", len(seen), seen)
		}
		if got, want := h.queue(t, 1, ""), []string{"submitted", "taken-back", "old"}; !slices.Equal(got, want) {
			t.Errorf("the queue is %v, want %v", got, want)
		}
	})
}
