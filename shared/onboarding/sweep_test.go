package onboarding_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connectexpress/onboarding/internal/localproc"
	"github.com/connectexpress/onboarding/internal/memstore"
	"github.com/connectexpress/onboarding/shared/onboarding"
)

// The sweep's rules on in-memory ports: memstore keeps the DynamoDB store's
// versioned write (the real one is tested on moto and minidyn in
// shared/dynamostore, and with the simulator in internal/devserver).

// sweepClock is a clock that the sweep's waits move on.
type sweepClock struct {
	mu    sync.Mutex
	now   time.Time
	slept time.Duration
}

func (c *sweepClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *sweepClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
func (c *sweepClock) Sleep(_ context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now, c.slept = c.now.Add(d), c.slept+d
	return nil
}

// listFake is Stripe's account list: newest first, cut into pages, kept to
// a created range when asked, as Stripe does. The ranges' listers call it
// at once.
type listFake struct {
	mu       sync.Mutex
	accounts []onboarding.ListedAccount
	queries  []onboarding.AccountListQuery
	// before runs before each page is answered (a webhook arriving, time passing).
	before func(q onboarding.AccountListQuery) error
}

func (l *listFake) ListAccounts(_ context.Context, q onboarding.AccountListQuery) (onboarding.AccountPage, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.queries = append(l.queries, q)
	if l.before != nil {
		if err := l.before(q); err != nil {
			return onboarding.AccountPage{}, err
		}
	}
	inRange := func(a onboarding.ListedAccount) bool {
		c := a.Created.Unix()
		return c >= q.CreatedFrom && (q.CreatedBefore == 0 || c < q.CreatedBefore) && (q.CreatedAtMost == 0 || c <= q.CreatedAtMost)
	}
	var listed []onboarding.ListedAccount
	for _, a := range l.accounts {
		if inRange(a) {
			listed = append(listed, a)
		}
	}
	from := 0
	if q.StartingAfter != "" {
		i := slices.IndexFunc(listed, func(a onboarding.ListedAccount) bool { return a.ID == q.StartingAfter })
		if i < 0 {
			return onboarding.AccountPage{}, onboarding.ProviderRejected("starting_after", "No such account", nil)
		}
		from = i + 1
	}
	to := min(from+q.Limit, len(listed))
	return onboarding.AccountPage{Accounts: slices.Clone(listed[from:to]), HasMore: to < len(listed)}, nil
}

// sweepStoreFake keeps the checkpoint and pages in memory and reads records
// from a memstore.
type sweepStoreFake struct {
	mu      sync.Mutex
	records *memstore.Store
	cp      onboarding.SweepCheckpoint
	lease   onboarding.Lease
	pages   map[string][]string
	// indexed are the users whose records the sweep index holds;
	// staleIndex, when set, is the index as a read finds it instead of
	// the records' current state; indexReads counts the reads, and
	// userReads the records GetUsers read.
	indexed    []string
	staleIndex []onboarding.IndexedRecord
	indexReads int
	userReads  int
	// writes are the world's versioned writes: a record the sweep
	// completed enters the index too.
	writes    *recordedWrites
	saves     int
	loseAfter int // SaveSweep fails with ErrConflict after this many saves (0: never)
	taken     []onboarding.Lease
	// releaseErr, when set, is ReleaseSweep's answer.
	releaseErr error
	// pageExpiry is when each kept page may go; readBacks counts
	// ListedAccounts calls.
	pageExpiry map[string]time.Time
	readBacks  int
}

func newSweepStoreFake(records *memstore.Store) *sweepStoreFake {
	return &sweepStoreFake{records: records, pages: map[string][]string{}, pageExpiry: map[string]time.Time{}}
}

func (f *sweepStoreFake) TakeSweep(_ context.Context, lease onboarding.Lease, now time.Time) (onboarding.SweepCheckpoint, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lease.ID != "" && f.lease.ID != lease.ID && f.lease.Until.After(now) {
		return onboarding.SweepCheckpoint{}, false, nil
	}
	f.lease = lease
	f.taken = append(f.taken, lease)
	return f.cp, true, nil
}

func (f *sweepStoreFake) SaveSweep(_ context.Context, cp onboarding.SweepCheckpoint, lease onboarding.Lease) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lease.ID != lease.ID || (f.loseAfter > 0 && f.saves >= f.loseAfter) {
		return onboarding.ErrConflict
	}
	f.saves++
	f.cp = cp
	return nil
}

func (f *sweepStoreFake) ReleaseSweep(ctx context.Context, lease onboarding.Lease) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err // as DynamoDB's client: no request on an ended context
	}
	if f.releaseErr != nil {
		return f.releaseErr
	}
	if f.lease.ID == lease.ID {
		f.lease = onboarding.Lease{}
	}
	return nil
}

func (f *sweepStoreFake) GetUsers(ctx context.Context, ids []string) (map[string]onboarding.UserRecord, error) {
	f.mu.Lock()
	f.userReads += len(ids)
	f.mu.Unlock()
	out := map[string]onboarding.UserRecord{}
	for _, id := range ids {
		if u, err := f.records.GetUser(ctx, id); err == nil {
			out[id] = u
		}
	}
	return out, nil
}

func (f *sweepStoreFake) FindUsersByAccounts(ctx context.Context, ids []string) (map[string]string, error) {
	out := map[string]string{}
	for _, id := range ids {
		if u, err := f.records.FindUserByAccount(ctx, id); err == nil {
			out[id] = u
		}
	}
	return out, nil
}

func (f *sweepStoreFake) SaveListedPage(_ context.Context, pass string, page int, ids []string, expires time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pages[pass+"#"+string(rune('0'+page))] = ids
	f.pageExpiry[pass+"#"+string(rune('0'+page))] = expires
	return nil
}

func (f *sweepStoreFake) ListedAccounts(_ context.Context, pass string, pages int, each func(string)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.readBacks++
	for p := 1; p <= pages; p++ {
		ids, ok := f.pages[pass+"#"+string(rune('0'+p))]
		if !ok {
			return errors.New("page missing")
		}
		for _, id := range ids {
			each(id)
		}
	}
	return nil
}

// ReadSweepIndex answers the indexed records as they are now (an index
// that kept up), or staleIndex.
func (f *sweepStoreFake) ReadSweepIndex(ctx context.Context, each func(onboarding.IndexedRecord)) error {
	f.mu.Lock()
	f.indexReads++
	stale, users := f.staleIndex, slices.Clone(f.indexed)
	f.mu.Unlock()
	if f.writes != nil {
		f.writes.mu.Lock()
		for _, c := range f.writes.changes {
			if !slices.Contains(users, c.UserID) {
				users = append(users, c.UserID)
			}
		}
		f.writes.mu.Unlock()
	}
	if stale != nil {
		for _, r := range stale {
			each(r)
		}
		return nil
	}
	for _, user := range users {
		u, err := f.records.GetUser(ctx, user)
		if err != nil || u.Account == nil || u.Account.State.Deauthorized {
			continue
		}
		each(onboarding.IndexedRecord{UserID: user, AccountID: u.Account.AccountID, CreatedAt: u.Account.CreatedAt,
			StateDigest: onboarding.StateDigest(u.Account.State)})
	}
	return nil
}

// sweepWorld is a platform's records and Stripe's list, for one test.
type sweepWorld struct {
	t       *testing.T
	clock   *sweepClock
	records *memstore.Store
	writes  *recordedWrites
	store   *sweepStoreFake
	list    *listFake
	svc     *onboarding.Service
	logs    *localproc.SyncBuffer // the service's log lines, WARN and above
}

// recordedWrites is the records' store, keeping each versioned write the
// service makes.
type recordedWrites struct {
	*memstore.Store
	mu      sync.Mutex
	changes []onboarding.StateChange
	// answerLost: each write is applied and then tried again, as the SDK
	// does when the first answer was lost; the caller sees the second.
	answerLost bool
	// onApply runs before each write (a slow store moving the clock on).
	onApply func()
}

func (r *recordedWrites) ApplyEvent(ctx context.Context, c onboarding.StateChange) (onboarding.EventOutcome, error) {
	r.mu.Lock()
	r.changes = append(r.changes, c)
	onApply := r.onApply
	r.mu.Unlock()
	if onApply != nil {
		onApply()
	}
	if r.answerLost {
		if _, err := r.Store.ApplyEvent(ctx, c); err != nil {
			return "", err
		}
	}
	return r.Store.ApplyEvent(ctx, c)
}

func newSweepWorld(t *testing.T) *sweepWorld {
	w := &sweepWorld{t: t, clock: &sweepClock{now: testNow}, records: memstore.New(), list: &listFake{}, logs: &localproc.SyncBuffer{}}
	w.writes = &recordedWrites{Store: w.records}
	w.store = newSweepStoreFake(w.records)
	w.store.writes = w.writes
	w.svc = onboarding.NewService(w.writes, nil, testPolicy(), onboarding.WithClock(w.clock.Now), onboarding.WithSleep(w.clock.Sleep),
		onboarding.WithLogger(slog.New(slog.NewTextHandler(w.logs, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	return w
}

func (w *sweepWorld) sweeper(cfg onboarding.SweepConfig) *onboarding.Sweeper {
	return w.svc.NewSweeper(w.store, w.list, cfg)
}

var (
	pendingState = onboarding.AccountState{DetailsSubmitted: true, Requirements: onboarding.Requirements{PendingVerification: []string{"individual.verification.document"}}}
	activeState  = onboarding.AccountState{DetailsSubmitted: true, ChargesEnabled: true, PayoutsEnabled: true,
		Capabilities: map[string]string{"card_payments": "active", "transfers": "active"}}
)

// stored gives user a record of account at state, created at created.
func (w *sweepWorld) stored(user, account string, state onboarding.AccountState, created time.Time) {
	w.t.Helper()
	ctx := context.Background()
	if err := w.records.ClaimCreation(ctx, user, onboarding.CreationClaim{ClaimID: "c-" + user, CreationID: "cr-" + user, LeaseUntil: created.Add(time.Minute)}, created); err != nil {
		w.t.Fatal(err)
	}
	rec := onboarding.AccountRecord{UserID: user, AccountID: account, Country: "US", ServiceAgreement: "full", State: state,
		StateVersion: created.Unix(), CreatedAt: created, UpdatedAt: created}
	if err := w.records.CompleteCreation(ctx, rec, "c-"+user); err != nil {
		w.t.Fatal(err)
	}
	w.store.indexed = append(w.store.indexed, user)
}

// listed adds an account to Stripe's list, as the newest-but-older-than-the-last.
func (w *sweepWorld) listed(account, user, creation string, state onboarding.AccountState) {
	created := testNow.Add(-time.Hour - time.Duration(len(w.list.accounts))*time.Minute)
	w.list.accounts = append(w.list.accounts, onboarding.ListedAccount{ID: account, Created: created, Country: "US",
		PlatformUserID: user, CreationID: creation, State: state})
}

func (w *sweepWorld) state(user string) onboarding.AccountState {
	w.t.Helper()
	u, err := w.records.GetUser(context.Background(), user)
	if err != nil || u.Account == nil {
		w.t.Fatalf("no account stored for %s: %v", user, err)
	}
	return u.Account.State
}

func TestSweepPassAppliesWhatDiffersAndReportsMismatches(t *testing.T) {
	w := newSweepWorld(t)
	old := testNow.Add(-24 * time.Hour)
	w.stored("stale", "acct_stale", pendingState, old)
	w.stored("same", "acct_same", activeState, old)
	w.stored("owner", "acct_renamed", pendingState, old)
	w.stored("gone", "acct_gone", activeState, old) // Stripe does not list it
	w.stored("young", "acct_young", activeState, testNow.Add(-time.Minute))
	if err := w.records.ClaimCreation(context.Background(), "crashed", onboarding.CreationClaim{ClaimID: "c1", CreationID: "cr-crashed", LeaseUntil: old}, old); err != nil {
		t.Fatal(err)
	}
	w.listed("acct_stale", "stale", "cr-stale", activeState)
	w.listed("acct_same", "same", "cr-same", activeState)
	w.listed("acct_renamed", "someone-else", "cr-x", activeState) // metadata edited: the index names its owner
	w.listed("acct_crashed", "crashed", "cr-crashed", pendingState)
	w.listed("acct_orphan", "nobody", "cr-nobody", activeState)
	w.listed("acct_wrongclaim", "crashed2", "cr-other", activeState)
	w.listed("acct_foreign", "", "", activeState)
	if err := w.records.ClaimCreation(context.Background(), "crashed2", onboarding.CreationClaim{ClaimID: "c2", CreationID: "cr-mine", LeaseUntil: old}, old); err != nil {
		t.Fatal(err)
	}

	res, err := w.sweeper(onboarding.SweepConfig{PageSize: 3, ListRanges: 1}).Run(context.Background(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	// Read: all but acct_same, which the index shows at Stripe's state.
	want := onboarding.SweepCounts{Listed: 7, Foreign: 1, Applied: 3, Unchanged: 1, Orphans: 2, Records: 5, Missing: 1, Read: 5}
	if !res.Ran || !res.PassCompleted || res.Stopped || res.Pass != want || res.Run != want {
		t.Errorf("result %+v, want a completed pass counting %+v", res, want)
	}
	if res.Pages != 3 || res.StripeRequests != 3 {
		t.Errorf("%d pages in %d requests, want 7 accounts in 3 pages of 3", res.Pages, res.StripeRequests)
	}
	for user, want := range map[string]onboarding.AccountState{"stale": activeState, "same": activeState, "owner": activeState, "crashed": pendingState} {
		if got := w.state(user); got.ChargesEnabled != want.ChargesEnabled || got.DetailsSubmitted != want.DetailsSubmitted {
			t.Errorf("%s holds %+v, want %+v", user, got, want)
		}
	}
	// The provenance rule, as for webhooks: the unfinished claim whose
	// creation id the account carries is completed; any other is not.
	if owner, err := w.records.FindUserByAccount(context.Background(), "acct_crashed"); err != nil || owner != "crashed" {
		t.Errorf("acct_crashed belongs to %q (%v), want the claim it came from", owner, err)
	}
	for _, acct := range []string{"acct_orphan", "acct_wrongclaim"} {
		if owner, err := w.records.FindUserByAccount(context.Background(), acct); !errors.Is(err, onboarding.ErrNotFound) {
			t.Errorf("%s was bound to %q: an orphan is never bound", acct, owner)
		}
	}
	if u, _ := w.records.GetUser(context.Background(), "crashed2"); u.Account != nil {
		t.Errorf("crashed2's claim was completed with an account that did not come from it")
	}
	if w.store.cp.Phase != "" || w.store.cp.LastCompleted.IsZero() || w.store.lease.ID != "" {
		t.Errorf("after the pass: checkpoint %+v, lease %+v; want no pass in progress and the lease released", w.store.cp, w.store.lease)
	}
	if w.store.readBacks != 0 {
		t.Errorf("a pass listed in one run read its listed pages back %d times, want none", w.store.readBacks)
	}

	t.Run("a second pass changes nothing", func(t *testing.T) {
		w.clock.Advance(15 * time.Minute)
		res, err := w.sweeper(onboarding.SweepConfig{PageSize: 3}).Run(context.Background(), time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		// The young record is now older than the pass (less the clock
		// skew allowed): its account is missing too.
		// Only the accounts no record holds, and the one whose metadata
		// names another user (warned about at each pass), are read.
		want := onboarding.SweepCounts{Listed: 7, Foreign: 1, Unchanged: 4, Orphans: 2, Records: 6, Missing: 2, Read: 3}
		if res.Pass != want || res.PassID == "" {
			t.Errorf("second pass counts %+v, want %+v", res.Pass, want)
		}
	})
}

func TestSweepStopsBeforeItsDeadlineAndTheNextRunFinishes(t *testing.T) {
	w := newSweepWorld(t)
	old := testNow.Add(-24 * time.Hour)
	for _, u := range []string{"a", "b", "c", "d", "e"} {
		w.stored(u, "acct_"+u, pendingState, old)
		w.listed("acct_"+u, u, "cr-"+u, activeState)
	}
	w.stored("gone", "acct_gone", pendingState, old)
	// Each page takes ten seconds of the run's time.
	w.list.before = func(onboarding.AccountListQuery) error { w.clock.Advance(10 * time.Second); return nil }
	cfg := onboarding.SweepConfig{PageSize: 1, StopBefore: 15 * time.Second, ListRanges: 1}

	// It starts no page 15 s, or twice its longest page, before its deadline.
	first, err := w.sweeper(cfg).Run(context.Background(), w.clock.Now().Add(50*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if !first.Stopped || first.PassCompleted || first.Pages != 3 || first.Run.Applied != 3 {
		t.Fatalf("first run %+v, want it stopped after 3 pages (10 s each, 20 s before a 50 s deadline)", first)
	}
	if cp := w.store.cp; cp.Phase != onboarding.SweepListing || len(cp.Ranges) != 1 || cp.Ranges[0].StartingAfter != "acct_c" || cp.Pages != 3 || w.store.lease.ID != "" {
		t.Fatalf("checkpoint after the first run %+v", cp)
	}
	if !w.store.cp.LastCompleted.IsZero() {
		t.Errorf("after a stopped run the last completed pass is at %v, want none yet", w.store.cp.LastCompleted)
	}

	second, err := w.sweeper(cfg).Run(context.Background(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if !second.PassCompleted || second.PassID != first.PassID || second.Pages != 2 || second.Run.Applied != 2 {
		t.Errorf("second run %+v, want it to finish the same pass with the last 2 pages", second)
	}
	// The records phase knows what the first run listed (kept per page):
	// only the unlisted account's record is missing.
	if second.Pass.Missing != 1 || second.Pass.Applied != 5 || second.Pass.Listed != 5 {
		t.Errorf("the pass counted %+v, want 5 listed and applied, 1 missing", second.Pass)
	}
	if !w.store.cp.LastCompleted.Equal(w.clock.Now()) {
		t.Errorf("the pass is recorded as completed at %v, want %v when the second run ended it", w.store.cp.LastCompleted, w.clock.Now())
	}
	if got := w.list.queries[3].StartingAfter; got != "acct_c" {
		t.Errorf("the second run began after %q, want acct_c", got)
	}
	for _, u := range []string{"a", "b", "c", "d", "e"} {
		if !w.state(u).ChargesEnabled {
			t.Errorf("%s did not converge", u)
		}
	}
}

func TestSweepKeepsToItsRequestRate(t *testing.T) {
	w := newSweepWorld(t)
	for i := range 5 {
		w.listed("acct_"+string(rune('a'+i)), "", "", activeState)
	}
	res, err := w.sweeper(onboarding.SweepConfig{PageSize: 1, RequestsPerSecond: 2}).Run(context.Background(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	// Five requests at 2/s: the first at once, then one every 500 ms.
	if res.StripeRequests != 5 || w.clock.slept != 2*time.Second {
		t.Errorf("%d requests, slept %v; want 5 requests and 2 s of waiting", res.StripeRequests, w.clock.slept)
	}
}

func TestSweepResumesFromTheCursorsSecondWhenItsAccountIsGone(t *testing.T) {
	w := newSweepWorld(t)
	for _, u := range []string{"a", "b", "c", "d"} {
		w.listed("acct_"+u, "", "", activeState)
	}
	w.store.cp = onboarding.SweepCheckpoint{PassID: "p", PassStarted: testNow, Phase: onboarding.SweepListing,
		StartingAfter: "acct_disconnected", CursorCreated: w.list.accounts[1].Created.Unix(), Pages: 2}
	w.store.pages["p#1"], w.store.pages["p#2"] = []string{"acct_a"}, []string{"acct_disconnected"}
	res, err := w.sweeper(onboarding.SweepConfig{PageSize: 10}).Run(context.Background(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(w.list.queries) != 2 || w.list.queries[1].CreatedAtMost != w.list.accounts[1].Created.Unix() || w.list.queries[1].StartingAfter != "" {
		t.Fatalf("queries %+v, want the gone cursor, then its created second", w.list.queries)
	}
	if !res.PassCompleted || res.Run.Listed != 3 {
		t.Errorf("result %+v, want the pass finished from acct_b on", res)
	}
}

// A webhook newer than the sweep's read wins, whichever write comes first:
// the sweep writes at the second before its read began.
func TestSweepNeverOverwritesNewerState(t *testing.T) {
	for _, webhookFirst := range []bool{true, false} {
		name := map[bool]string{true: "webhook stored first", false: "webhook stored after the sweep"}[webhookFirst]
		t.Run(name, func(t *testing.T) {
			w := newSweepWorld(t)
			w.stored("u", "acct_u", pendingState, testNow.Add(-time.Hour))
			w.listed("acct_u", "u", "cr-u", activeState) // what the page shows
			restricted := onboarding.AccountState{DetailsSubmitted: true, Requirements: onboarding.Requirements{PastDue: []string{"external_account"}}}
			webhook := func() {
				// Stripe changed the account in the second the page was read.
				out, err := w.records.ApplyEvent(context.Background(), onboarding.StateChange{EventID: "evt_new", UserID: "u", AccountID: "acct_u",
					Kind: onboarding.ChangeSnapshot, Version: w.clock.Now().Unix(), State: restricted, Now: w.clock.Now()})
				if err != nil || out != onboarding.OutcomeApplied {
					t.Fatalf("webhook: %v %v", out, err)
				}
			}
			if webhookFirst {
				w.list.before = func(onboarding.AccountListQuery) error { webhook(); return nil }
			}
			res, err := w.sweeper(onboarding.SweepConfig{}).Run(context.Background(), time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			if !webhookFirst {
				webhook()
			}
			if got := w.state("u"); len(got.Requirements.PastDue) != 1 {
				t.Errorf("stored %+v: the sweep's older read overwrote the webhook (sweep counted %+v)", got, res.Run)
			}
			if webhookFirst && res.Run.Superseded != 1 {
				t.Errorf("counted %+v, want the sweep's write superseded", res.Run)
			}
		})
	}
}

func TestSweepRunsOneAtATime(t *testing.T) {
	w := newSweepWorld(t)
	w.listed("acct_a", "", "", activeState)
	w.store.lease = onboarding.Lease{ID: "other-run", Until: testNow.Add(time.Minute)}
	res, err := w.sweeper(onboarding.SweepConfig{}).Run(context.Background(), time.Time{})
	if err != nil || res.Ran || len(w.list.queries) != 0 {
		t.Errorf("while another run holds the sweep: %+v %v, %d Stripe calls; want no run", res, err, len(w.list.queries))
	}
	w.clock.Advance(2 * time.Minute) // the other run's lease ran out
	if res, err := w.sweeper(onboarding.SweepConfig{}).Run(context.Background(), time.Time{}); err != nil || !res.PassCompleted {
		t.Errorf("after the other lease ended: %+v %v", res, err)
	}
}

func TestSweepStopsWhenItsLeasePassedToAnotherRun(t *testing.T) {
	w := newSweepWorld(t)
	for _, u := range []string{"a", "b", "c"} {
		w.listed("acct_"+u, "", "", activeState)
	}
	w.store.loseAfter = 1
	res, err := w.sweeper(onboarding.SweepConfig{PageSize: 1}).Run(context.Background(), time.Time{})
	if !errors.Is(err, onboarding.ErrSweepLost) || res.Pages != 2 {
		t.Errorf("%+v %v, want ErrSweepLost at the second checkpoint", res, err)
	}
}

func TestSweepReturnsStripeFailuresAndKeepsItsCheckpoint(t *testing.T) {
	w := newSweepWorld(t)
	for _, u := range []string{"a", "b", "c"} {
		w.listed("acct_"+u, "", "", activeState)
	}
	w.list.before = func(q onboarding.AccountListQuery) error {
		if q.StartingAfter == "acct_b" {
			return onboarding.ErrStripeUnavailable
		}
		return nil
	}
	_, err := w.sweeper(onboarding.SweepConfig{PageSize: 1, ListRanges: 1}).Run(context.Background(), time.Time{})
	if !errors.Is(err, onboarding.ErrStripeUnavailable) || w.store.cp.Ranges[0].StartingAfter != "acct_b" || w.store.lease.ID != "" {
		t.Errorf("err %v, checkpoint %+v: want Stripe's failure, the cursor after acct_b and the lease released", err, w.store.cp)
	}
}

func TestStatusChangeBetween(t *testing.T) {
	at := testNow
	deadline := at.Add(72 * time.Hour)
	rec := func(state onboarding.AccountState) *onboarding.AccountRecord {
		return &onboarding.AccountRecord{UserID: "u", AccountID: "acct_1", ServiceAgreement: "full", State: state}
	}
	dueSoon := onboarding.AccountState{DetailsSubmitted: true, ChargesEnabled: true, PayoutsEnabled: true,
		Requirements: onboarding.Requirements{CurrentlyDue: []string{"a", "b"}, CurrentDeadline: &deadline}}
	pastDue := dueSoon
	pastDue.Requirements.PastDue = []string{"b"}
	pastDeadline := at.Add(-time.Hour)
	tests := []struct {
		name          string
		before, after *onboarding.AccountRecord
		want          *onboarding.StatusChange
	}{
		{"a new account has no previous status", nil, rec(onboarding.AccountState{}),
			&onboarding.StatusChange{UserID: "u", AccountID: "acct_1", Status: onboarding.StatusOnboarding, OccurredAt: at}},
		{"a change of status", rec(pendingState), rec(activeState),
			&onboarding.StatusChange{UserID: "u", AccountID: "acct_1", PreviousStatus: ptr(onboarding.StatusPendingVerification),
				Status: onboarding.StatusActive, ChargesEnabled: true, PayoutsEnabled: true, OccurredAt: at}},
		{"restricted soon names the deadline", rec(activeState), rec(dueSoon),
			&onboarding.StatusChange{UserID: "u", AccountID: "acct_1", PreviousStatus: ptr(onboarding.StatusActive),
				Status: onboarding.StatusRestrictedSoon, ChargesEnabled: true, PayoutsEnabled: true, RequirementsDueCount: 2,
				CurrentDeadline: &deadline, OccurredAt: at}},
		{"what is both currently and past due counts once", rec(dueSoon), rec(pastDue),
			&onboarding.StatusChange{UserID: "u", AccountID: "acct_1", PreviousStatus: ptr(onboarding.StatusRestrictedSoon),
				Status: onboarding.StatusRestricted, ChargesEnabled: true, PayoutsEnabled: true, RequirementsDueCount: 2,
				CurrentDeadline: &deadline, OccurredAt: at}},
		{"a write that leaves the status alone", rec(activeState), rec(activeState), nil},
		{"no account after the write", rec(activeState), nil, nil},
		{"both sides judged at the write's time", rec(onboarding.AccountState{DetailsSubmitted: true, Requirements: onboarding.Requirements{CurrentlyDue: []string{"a"}, CurrentDeadline: &pastDeadline}}),
			rec(onboarding.AccountState{DetailsSubmitted: true, Requirements: onboarding.Requirements{CurrentlyDue: []string{"a", "b"}, CurrentDeadline: &pastDeadline}}), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := onboarding.StatusChangeBetween(tt.before, tt.after, at)
			switch {
			case tt.want == nil && ok:
				t.Errorf("got a change %+v, want none", got)
			case tt.want != nil && !ok:
				t.Errorf("got no change, want %+v", *tt.want)
			case tt.want != nil && !equalChange(got, *tt.want):
				t.Errorf("got %+v, want %+v", got, *tt.want)
			}
		})
	}
}

func equalChange(a, b onboarding.StatusChange) bool {
	samePtr := func(x, y *onboarding.Status) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	sameTime := func(x, y *time.Time) bool { return (x == nil) == (y == nil) && (x == nil || x.Equal(*y)) }
	return samePtr(a.PreviousStatus, b.PreviousStatus) && sameTime(a.CurrentDeadline, b.CurrentDeadline) &&
		a.UserID == b.UserID && a.AccountID == b.AccountID && a.Status == b.Status && a.ChargesEnabled == b.ChargesEnabled &&
		a.PayoutsEnabled == b.PayoutsEnabled && a.RequirementsDueCount == b.RequirementsDueCount && a.OccurredAt.Equal(b.OccurredAt)
}

// A sweep built with no settings, or with ones out of range, runs with the
// documented defaults: 100 accounts a page, 20 Stripe requests a second, a
// 15-minute lease, no page started 15 s before the deadline, and records
// younger than a minute never reported missing.
func TestASweepWithoutSettingsRunsWithTheDefaults(t *testing.T) {
	for _, cfg := range []onboarding.SweepConfig{{},
		{PageSize: -1, RequestsPerSecond: -1, StopBefore: -time.Second, Lease: -time.Second, RecordGrace: -time.Second},
		{PageSize: 101}} {
		w := newSweepWorld(t)
		old := testNow.Add(-24 * time.Hour)
		for i := range 101 { // two pages of 100
			id := fmt.Sprintf("acct_%03d", i)
			w.stored("u"+id, id, activeState, old)
			w.listed(id, "u"+id, "cr-u"+id, activeState)
		}
		w.stored("young", "acct_young", activeState, testNow.Add(-59*time.Second))
		w.stored("older", "acct_older", activeState, testNow.Add(-61*time.Second))
		start := w.clock.Now()

		// 15 s before the deadline: not a page.
		early, err := w.sweeper(cfg).Run(context.Background(), start.Add(15*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if !early.Stopped || early.Pages != 0 {
			t.Errorf("config %+v, deadline in 15 s: %+v, want it stopped before any page", cfg, early)
		}
		res, err := w.sweeper(cfg).Run(context.Background(), time.Time{}) // no deadline: the lease alone bounds the run
		if err != nil {
			t.Fatal(err)
		}
		if !res.PassCompleted || res.Pages != 2 {
			t.Fatalf("config %+v: %+v, want the pass done in 2 pages", cfg, res)
		}
		for _, q := range w.list.queries {
			if q.Limit != 100 {
				t.Errorf("config %+v: a page of %d asked, want 100", cfg, q.Limit)
			}
		}
		// Two requests at the default 10/s: one wait of 100 ms.
		if w.clock.slept != 100*time.Millisecond {
			t.Errorf("config %+v: slept %v between 2 requests, want 100ms", cfg, w.clock.slept)
		}
		if l := w.store.taken[len(w.store.taken)-1]; !l.Until.Equal(start.Add(15 * time.Minute)) {
			t.Errorf("config %+v: lease until %v, want %v", cfg, l.Until, start.Add(15*time.Minute))
		}
		if res.Pass.Missing != 1 {
			t.Errorf("config %+v: %d records missing, want 1 (older than a minute; the 59 s one is left alone)", cfg, res.Pass.Missing)
		}
	}
}

func TestSweepOfAPlatformWithoutAccountsCompletes(t *testing.T) {
	w := newSweepWorld(t)
	w.stored("gone", "acct_gone", activeState, testNow.Add(-24*time.Hour)) // Stripe lists nothing
	res, err := w.sweeper(onboarding.SweepConfig{}).Run(context.Background(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.PassCompleted || res.Pass != (onboarding.SweepCounts{Records: 1, Missing: 1}) || res.StripeRequests != 1 {
		t.Errorf("%+v, want the pass done after one empty page, the record missing", res)
	}
	if w.store.cp.Pages != 0 || len(w.store.pages) != 0 {
		t.Errorf("checkpoint %+v, pages %v: an empty page is not kept", w.store.cp, w.store.pages)
	}
}

// What the sweep writes outlives what may need it: the marker of each
// record write a retry of that write (seconds later), and each listed page
// the run that resumes its pass (15 minutes later, or after a day of
// failures); and neither stays for ever.
func TestSweepKeepsItsMarkersADayAndItsListedPagesAWeek(t *testing.T) {
	w := newSweepWorld(t)
	old := testNow.Add(-24 * time.Hour)
	for _, u := range []string{"a", "b"} {
		w.stored(u, "acct_"+u, pendingState, old)
		w.listed("acct_"+u, u, "cr-"+u, activeState)
	}
	if _, err := w.sweeper(onboarding.SweepConfig{PageSize: 1}).Run(context.Background(), time.Time{}); err != nil {
		t.Fatal(err)
	}
	if len(w.writes.changes) != 2 {
		t.Fatalf("%d writes, want 2", len(w.writes.changes))
	}
	for _, c := range w.writes.changes {
		if keep := c.RetainUntil.Sub(c.Now); keep < 24*time.Hour || keep > 30*24*time.Hour {
			t.Errorf("the marker of %s is kept %v, want a day at least and not for ever", c.EventID, keep)
		}
	}
	if len(w.store.pageExpiry) != 2 {
		t.Fatalf("%d pages kept, want 2", len(w.store.pageExpiry))
	}
	for page, expires := range w.store.pageExpiry {
		if keep := expires.Sub(testNow); keep < 7*24*time.Hour || keep > 30*24*time.Hour {
			t.Errorf("page %s is kept %v, want a week at least and not for ever", page, keep)
		}
	}
}

// The lease is given back when the run ends, however it ends, so the next
// run need not wait out its 15 minutes; and a lease that could not be given
// back is said in the log.
func TestSweepGivesBackItsLeaseWhenItEnds(t *testing.T) {
	t.Run("its context ended mid-run", func(t *testing.T) {
		w := newSweepWorld(t)
		w.listed("acct_a", "", "", activeState)
		ctx, cancel := context.WithCancel(context.Background())
		w.list.before = func(onboarding.AccountListQuery) error { cancel(); return context.Canceled }
		if _, err := w.sweeper(onboarding.SweepConfig{}).Run(ctx, time.Time{}); !errors.Is(err, context.Canceled) {
			t.Fatalf("err %v, want the run ended with its context", err)
		}
		if w.store.lease.ID != "" {
			t.Errorf("lease %+v still held: the next run waits for it to end", w.store.lease)
		}
		if logs := w.logs.String(); logs != "" {
			t.Errorf("logged %q, want nothing", logs)
		}
	})
	t.Run("the store refused", func(t *testing.T) {
		w := newSweepWorld(t)
		w.listed("acct_a", "", "", activeState)
		w.store.releaseErr = errors.New("dynamodb: request timed out")
		res, err := w.sweeper(onboarding.SweepConfig{}).Run(context.Background(), time.Time{})
		if err != nil || !res.PassCompleted {
			t.Fatalf("%+v %v: the pass is done whether or not the lease goes back", res, err)
		}
		if logs := w.logs.String(); !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, "could not release its lease") {
			t.Errorf("logged %q, want a warning that the lease is still held", logs)
		}
	})
}

// A run that resumes after an account that is gone reads from the
// cursor's second on; a webhook of the second of that read still wins.
func TestSweepResumingFromTheCursorsSecondNeverOverwritesNewerState(t *testing.T) {
	w := newSweepWorld(t)
	for _, u := range []string{"a", "b"} {
		w.stored(u, "acct_"+u, pendingState, testNow.Add(-24*time.Hour))
		w.listed("acct_"+u, u, "cr-"+u, activeState)
	}
	w.store.cp = onboarding.SweepCheckpoint{PassID: "p", PassStarted: testNow, Phase: onboarding.SweepListing,
		StartingAfter: "acct_disconnected", CursorCreated: w.list.accounts[0].Created.Unix(), Pages: 1}
	w.store.pages["p#1"] = []string{"acct_disconnected"}
	restricted := onboarding.AccountState{DetailsSubmitted: true, Requirements: onboarding.Requirements{PastDue: []string{"external_account"}}}
	w.list.before = func(q onboarding.AccountListQuery) error {
		if q.CreatedAtMost == 0 {
			return nil
		}
		// Stripe changed acct_b in the second of the read from the cursor's second.
		_, err := w.records.ApplyEvent(context.Background(), onboarding.StateChange{EventID: "evt_new", UserID: "b", AccountID: "acct_b",
			Kind: onboarding.ChangeSnapshot, Version: w.clock.Now().Unix(), State: restricted, Now: w.clock.Now()})
		return err
	}
	res, err := w.sweeper(onboarding.SweepConfig{}).Run(context.Background(), time.Time{})
	if err != nil || !res.PassCompleted {
		t.Fatalf("%+v %v", res, err)
	}
	if got := w.state("b"); len(got.Requirements.PastDue) != 1 {
		t.Errorf("acct_b holds %+v: the sweep's read overwrote the webhook of its own second", got)
	}
	if !w.state("a").ChargesEnabled || res.Run.Applied != 1 || res.Run.Superseded != 1 {
		t.Errorf("counted %+v, want acct_a applied and acct_b's write superseded", res.Run)
	}
}

// A record the sweep completes from its unfinished claim gets the service
// agreement Stripe lists; Stripe leaves its default, full, out.
func TestSweepCompletesARecordWithTheAgreementStripeLists(t *testing.T) {
	w := newSweepWorld(t)
	old := testNow.Add(-24 * time.Hour)
	for i, agreement := range []string{"recipient", ""} {
		user := fmt.Sprintf("crashed%d", i)
		if err := w.records.ClaimCreation(context.Background(), user, onboarding.CreationClaim{ClaimID: "c" + user, CreationID: "cr-" + user, LeaseUntil: old}, old); err != nil {
			t.Fatal(err)
		}
		w.listed("acct_"+user, user, "cr-"+user, pendingState)
		w.list.accounts[i].ServiceAgreement = agreement
	}
	if _, err := w.sweeper(onboarding.SweepConfig{}).Run(context.Background(), time.Time{}); err != nil {
		t.Fatal(err)
	}
	for user, want := range map[string]string{"crashed0": "recipient", "crashed1": "full"} {
		u, err := w.records.GetUser(context.Background(), user)
		if err != nil || u.Account == nil || u.Account.ServiceAgreement != want {
			t.Errorf("%s: %+v %v, want its account stored with the %s agreement", user, u.Account, err, want)
		}
	}
}

// A record whose account disconnected stays as it is, whatever Stripe
// lists: deauthorization is terminal.
func TestSweepLeavesADisconnectedAccountsRecordAlone(t *testing.T) {
	w := newSweepWorld(t)
	w.stored("gone", "acct_gone", pendingState, testNow.Add(-24*time.Hour))
	if _, err := w.records.ApplyEvent(context.Background(), onboarding.StateChange{EventID: "evt_deauth", UserID: "gone", AccountID: "acct_gone",
		Kind: onboarding.ChangeDeauthorize, Version: testNow.Add(-time.Hour).Unix(), Now: testNow.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	w.listed("acct_gone", "gone", "cr-gone", activeState)
	res, err := w.sweeper(onboarding.SweepConfig{}).Run(context.Background(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Run.Superseded != 1 || res.Run.Applied != 0 || len(w.writes.changes) != 0 || w.state("gone").ChargesEnabled {
		t.Errorf("counted %+v after %d writes: want the disconnected record left alone and counted superseded", res.Run, len(w.writes.changes))
	}
}

// A sweep write whose answer was lost, and that the retry then finds
// applied, counts as unchanged (it is this very write) and not as an error.
func TestSweepCountsItsOwnRetriedWriteOnce(t *testing.T) {
	w := newSweepWorld(t)
	w.stored("u", "acct_u", pendingState, testNow.Add(-24*time.Hour))
	w.listed("acct_u", "u", "cr-u", activeState)
	w.writes.answerLost = true
	res, err := w.sweeper(onboarding.SweepConfig{}).Run(context.Background(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Run.Unchanged != 1 || res.Run.Applied != 0 || res.Run.Superseded != 0 || !w.state("u").ChargesEnabled {
		t.Errorf("counted %+v: want the write stored and counted once, as unchanged", res.Run)
	}
}

func TestSweepReadsOnlyTheRecordsTheIndexDoesNotShowAtStripesState(t *testing.T) {
	w := newSweepWorld(t)
	old := testNow.Add(-24 * time.Hour)
	for _, u := range []string{"a", "b", "c", "d"} {
		w.stored(u, "acct_"+u, activeState, old)
		w.listed("acct_"+u, u, "cr-"+u, activeState)
	}
	w.stored("drifted", "acct_drifted", pendingState, old) // its webhook was missed
	w.listed("acct_drifted", "drifted", "cr-drifted", activeState)

	res, err := w.sweeper(onboarding.SweepConfig{PageSize: 2}).Run(context.Background(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	want := onboarding.SweepCounts{Listed: 5, Applied: 1, Unchanged: 4, Records: 5, Read: 1}
	if !res.PassCompleted || res.Pass != want {
		t.Errorf("pass %+v, want %+v", res.Pass, want)
	}
	if w.store.userReads != 1 || w.store.indexReads != 1 {
		t.Errorf("the pass read %d records and the index %d times, want the drifted record alone and the index once", w.store.userReads, w.store.indexReads)
	}
	if !w.state("drifted").ChargesEnabled {
		t.Error("the drifted record was not healed")
	}
}

func TestSweepTrustsStripeOverAnIndexThatIsBehind(t *testing.T) {
	old := testNow.Add(-24 * time.Hour)
	for _, c := range []struct {
		name      string
		indexed   onboarding.AccountState // what the index says the record holds
		stored    onboarding.AccountState // what the record holds
		wantWrite bool
		want      onboarding.SweepCounts
	}{
		// A webhook stored Stripe's state after the index was read: the
		// record is read, and nothing written.
		{"the record caught up since", pendingState, activeState, false, onboarding.SweepCounts{Listed: 1, Unchanged: 1, Records: 1, Read: 1}},
		// The index is behind on a missed change: the record is read and healed.
		{"the record drifted", pendingState, pendingState, true, onboarding.SweepCounts{Listed: 1, Applied: 1, Records: 1, Read: 1}},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := newSweepWorld(t)
			w.stored("u", "acct_u", c.stored, old)
			w.listed("acct_u", "u", "cr-u", activeState)
			w.store.staleIndex = []onboarding.IndexedRecord{{UserID: "u", AccountID: "acct_u", CreatedAt: old, StateDigest: onboarding.StateDigest(c.indexed)}}
			res, err := w.sweeper(onboarding.SweepConfig{}).Run(context.Background(), time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Pass != c.want || (len(w.writes.changes) > 0) != c.wantWrite {
				t.Errorf("pass %+v with %d writes, want %+v, a write: %v", res.Pass, len(w.writes.changes), c.want, c.wantWrite)
			}
			if !w.state("u").ChargesEnabled {
				t.Error("the record does not hold Stripe's state")
			}
		})
	}
}

func TestSweepReportsOnlyTheMissingRecordsAReadConfirms(t *testing.T) {
	w := newSweepWorld(t)
	old := testNow.Add(-24 * time.Hour)
	w.stored("listed", "acct_listed", activeState, old)
	w.listed("acct_listed", "listed", "cr-listed", activeState)
	w.stored("gone", "acct_gone", activeState, old)
	w.stored("disconnected", "acct_disconnected", activeState, old)
	entry := func(user string) onboarding.IndexedRecord {
		return onboarding.IndexedRecord{UserID: user, AccountID: "acct_" + user, CreatedAt: old, StateDigest: onboarding.StateDigest(activeState)}
	}
	// The index was read before acct_disconnected's deauthorization was
	// stored: it still holds the record, which the pass does not list.
	w.store.staleIndex = []onboarding.IndexedRecord{entry("listed"), entry("gone"), entry("disconnected")}
	if out, err := w.records.ApplyEvent(context.Background(), onboarding.StateChange{EventID: "evt_deauth", UserID: "disconnected",
		AccountID: "acct_disconnected", Kind: onboarding.ChangeDeauthorize, Version: testNow.Unix(), Now: testNow}); err != nil || out != onboarding.OutcomeApplied {
		t.Fatal(out, err)
	}

	res, err := w.sweeper(onboarding.SweepConfig{}).Run(context.Background(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Pass.Missing != 1 || res.Pass.Records != 3 {
		t.Errorf("pass %+v, want 3 records checked and acct_gone alone missing", res.Pass)
	}
	if logs := w.logs.String(); !strings.Contains(logs, "acct_gone") || strings.Contains(logs, "acct_disconnected") {
		t.Errorf("logs %s: want acct_gone reported, acct_disconnected not", logs)
	}
}
