package onboarding_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/connectexpress/onboarding/shared/onboarding"
)

// A pass lists its accounts in creation-time ranges at once (issue 25: one
// cursor at Stripe's latency cannot list a million accounts within the
// hour). These tests hold the ranges to the properties of the one cursor.

// spreadWorld holds 12 records created an hour apart, each listed by
// Stripe at its record's time, plus two orphans: one older than every
// record, one newer.
func spreadWorld(t *testing.T) *sweepWorld {
	w := newSweepWorld(t)
	first := testNow.Add(-48 * time.Hour)
	w.list.accounts = append(w.list.accounts, onboarding.ListedAccount{ID: "acct_orphan_new", Created: testNow.Add(-2 * time.Hour), Country: "US",
		PlatformUserID: "nobody", CreationID: "cr-nobody", State: activeState})
	for i := 11; i >= 0; i-- { // newest first, as Stripe lists
		user, account := fmt.Sprintf("u%02d", i), fmt.Sprintf("acct_%02d", i)
		created := first.Add(time.Duration(i) * time.Hour)
		w.stored(user, account, pendingState, created)
		w.list.accounts = append(w.list.accounts, onboarding.ListedAccount{ID: account, Created: created, Country: "US",
			PlatformUserID: user, CreationID: "cr-" + user, State: activeState})
	}
	w.list.accounts = append(w.list.accounts, onboarding.ListedAccount{ID: "acct_orphan_old", Created: first.Add(-24 * time.Hour), Country: "US",
		PlatformUserID: "nobody2", CreationID: "cr-nobody2", State: activeState})
	return w
}

func TestSweepRangesCoverAllTimeOnceAndListEveryAccount(t *testing.T) {
	w := spreadWorld(t)
	res, err := w.sweeper(onboarding.SweepConfig{PageSize: 2, ListRanges: 4}).Run(context.Background(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	ranges := w.store.cp.Ranges
	if len(ranges) != 4 {
		t.Fatalf("ranges %+v, want 4", ranges)
	}
	if ranges[0].From != 0 || ranges[len(ranges)-1].Before != 0 {
		t.Errorf("ranges %+v: want the first open to the beginning and the last open to the future", ranges)
	}
	for i := 1; i < len(ranges); i++ {
		if ranges[i].From != ranges[i-1].Before || ranges[i].From <= ranges[i-1].From {
			t.Errorf("range %d %+v does not begin where range %d %+v ends", i, ranges[i], i-1, ranges[i-1])
		}
	}
	// Similar counts: the 12 records split 3 by 3.
	for i, rg := range ranges {
		n := 0
		for _, a := range w.list.accounts {
			c := a.Created.Unix()
			if c >= rg.From && (rg.Before == 0 || c < rg.Before) && a.PlatformUserID[0] == 'u' {
				n++
			}
		}
		if n != 3 {
			t.Errorf("range %d %+v holds %d records' accounts, want 3", i, rg, n)
		}
	}
	// Every account once, both orphans reported, every record brought to Stripe's state.
	want := onboarding.SweepCounts{Listed: 14, Applied: 12, Orphans: 2, Records: 12, Read: 14}
	if !res.PassCompleted || res.Pass != want {
		t.Errorf("pass %+v, want %+v", res, want)
	}
	for i := range 12 {
		if !w.state(fmt.Sprintf("u%02d", i)).ChargesEnabled {
			t.Errorf("u%02d was not brought to Stripe's state", i)
		}
	}
}

// inFlightLister holds its first calls until as many as want are in
// flight at once, and notes when each call came by the sweep's clock.
type inFlightLister struct {
	*listFake
	clock *sweepClock
	want  int

	mu      sync.Mutex
	calls   int
	at      []time.Time
	most    int
	current int
	all     chan struct{}
}

func (l *inFlightLister) ListAccounts(ctx context.Context, q onboarding.AccountListQuery) (onboarding.AccountPage, error) {
	l.mu.Lock()
	l.calls++
	l.current++
	l.most = max(l.most, l.current)
	l.at = append(l.at, l.clock.Now())
	if l.calls == l.want {
		close(l.all)
	}
	wait := l.calls <= l.want
	l.mu.Unlock()
	if wait {
		select {
		case <-l.all:
		case <-time.After(5 * time.Second): // the ranges were not listed at once
		}
	}
	defer func() { l.mu.Lock(); l.current--; l.mu.Unlock() }()
	return l.listFake.ListAccounts(ctx, q)
}

func TestSweepListsItsRangesAtOnceWithinTheOneRate(t *testing.T) {
	w := spreadWorld(t)
	lister := &inFlightLister{listFake: w.list, clock: w.clock, want: 4, all: make(chan struct{})}
	res, err := w.svc.NewSweeper(w.store, lister, onboarding.SweepConfig{PageSize: 2, ListRanges: 4, RequestsPerSecond: 5}).Run(context.Background(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if lister.most != 4 {
		t.Errorf("at most %d requests in flight, want the 4 ranges listed at once", lister.most)
	}
	// 5/s, however many ranges ask: by any moment, at most one request
	// and one more for each 200 ms since the run began.
	for k, at := range lister.at {
		if allowed := testNow.Add(time.Duration(k) * 200 * time.Millisecond); at.Before(allowed) {
			t.Errorf("request %d came at %v, before %v: more than 5/s", k+1, at.Sub(testNow), allowed.Sub(testNow))
		}
	}
	if !res.PassCompleted || res.StripeRequests != len(lister.at) || res.Pass.Listed != 14 {
		t.Errorf("result %+v after %d requests, want the pass completed with 14 accounts listed", res, len(lister.at))
	}
}

func TestSweepResumesEachRangeFromItsOwnCursor(t *testing.T) {
	w := spreadWorld(t)
	// An earlier run listed the first range whole and one page of the
	// last; the middle range had not begun.
	mid1, mid2 := testNow.Add(-44*time.Hour).Unix(), testNow.Add(-40*time.Hour).Unix()
	w.store.cp = onboarding.SweepCheckpoint{PassID: "p", PassStarted: testNow, Phase: onboarding.SweepListing, Pages: 3,
		Ranges: []onboarding.SweepRange{
			{Before: mid1, StartingAfter: "acct_orphan_old", CursorCreated: 1, Done: true},
			{From: mid1, Before: mid2},
			{From: mid2, StartingAfter: "acct_11", CursorCreated: testNow.Add(-37 * time.Hour).Unix()},
		}}
	w.store.pages["p#1"] = []string{"acct_03", "acct_02"}
	w.store.pages["p#2"] = []string{"acct_01", "acct_00", "acct_orphan_old"}
	w.store.pages["p#3"] = []string{"acct_orphan_new", "acct_11"}
	res, err := w.sweeper(onboarding.SweepConfig{PageSize: 4}).Run(context.Background(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var asked []string
	for _, q := range w.list.queries {
		asked = append(asked, fmt.Sprintf("[%d,%d) after %q", q.CreatedFrom, q.CreatedBefore, q.StartingAfter))
	}
	slices.Sort(asked)
	wantAsked := []string{fmt.Sprintf("[%d,%d) after %q", mid1, mid2, ""), fmt.Sprintf("[%d,0) after %q", mid2, "acct_11")}
	slices.Sort(wantAsked)
	if !slices.Equal(asked, wantAsked) {
		t.Errorf("asked %v, want the middle range from its start and the last after its cursor, the done range not at all", asked)
	}
	// acct_04..acct_07 in the middle, acct_08..acct_10 after the cursor;
	// the records phase knows the rest from the kept pages: none missing.
	if !res.PassCompleted || res.Run.Listed != 7 || res.Pass.Missing != 0 || res.Pass.Records != 12 {
		t.Errorf("result %+v, want the pass finished with 7 more accounts and no record missing", res)
	}
}

func TestSweepListsAnAccountCreatedDuringThePassAtTheNextPassAtTheLatest(t *testing.T) {
	w := spreadWorld(t)
	created := false
	w.list.before = func(q onboarding.AccountListQuery) error {
		if !created {
			// A user onboards while the pass lists: Stripe makes the
			// account, then its record is stored.
			created = true
			w.clock.Advance(time.Second)
			now := w.clock.Now()
			w.list.accounts = slices.Insert(w.list.accounts, 0, onboarding.ListedAccount{ID: "acct_new", Created: now, Country: "US",
				PlatformUserID: "newcomer", CreationID: "cr-newcomer", State: activeState})
			w.stored("newcomer", "acct_new", pendingState, now)
		}
		return nil
	}
	cfg := onboarding.SweepConfig{PageSize: 2, ListRanges: 4}
	first, err := w.sweeper(cfg).Run(context.Background(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if !first.PassCompleted || first.Pass.Missing != 0 || first.Pass.Orphans != 2 {
		t.Errorf("first pass %+v, want it completed without reporting the newcomer's record", first.Pass)
	}
	w.clock.Advance(time.Hour)
	second, err := w.sweeper(cfg).Run(context.Background(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if !second.PassCompleted || second.Pass.Listed != 15 || second.Pass.Missing != 0 || !w.state("newcomer").ChargesEnabled {
		t.Errorf("second pass %+v, want the newcomer listed and brought to Stripe's state", second.Pass)
	}
}

func TestSweepStoppedMidRangesListsEveryAccountOnceAcrossRuns(t *testing.T) {
	w := spreadWorld(t)
	// Each page takes ten seconds of the run's time, whichever range asks.
	w.list.before = func(onboarding.AccountListQuery) error { w.clock.Advance(10 * time.Second); return nil }
	cfg := onboarding.SweepConfig{PageSize: 1, ListRanges: 4, StopBefore: 15 * time.Second}
	first, err := w.sweeper(cfg).Run(context.Background(), w.clock.Now().Add(60*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if !first.Stopped || first.PassCompleted || w.store.cp.Phase != onboarding.SweepListing || len(w.store.cp.Ranges) != 4 {
		t.Fatalf("first run %+v, checkpoint %+v: want it stopped mid-pass with its 4 ranges kept", first, w.store.cp)
	}
	for {
		res, err := w.sweeper(cfg).Run(context.Background(), w.clock.Now().Add(60*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if res.PassCompleted {
			// Pages fetched when a run stopped were dropped, not applied:
			// their range's cursor had not moved, so a later run listed
			// them, and no account twice.
			if res.Pass.Listed != 14 || res.Pass.Applied != 12 || res.Pass.Orphans != 2 || res.Pass.Missing != 0 || res.PassID != first.PassID {
				t.Errorf("the pass counted %+v, want 14 listed once each, 12 applied, 2 orphans, none missing", res.Pass)
			}
			break
		}
		if res.Pages == 0 {
			t.Fatalf("a run listed nothing: %+v", res)
		}
	}
	for i := range 12 {
		if !w.state(fmt.Sprintf("u%02d", i)).ChargesEnabled {
			t.Errorf("u%02d was not brought to Stripe's state", i)
		}
	}
}

// TestSweepSplitsIntoAsManyRangesAsItsRateAndPagesAllow: not told, a pass
// lists in as many ranges as its rate allows requests a second, and never
// in more ranges than it has pages of records.
func TestSweepSplitsIntoAsManyRangesAsItsRateAndPagesAllow(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  onboarding.SweepConfig
		want int
	}{
		{"not told: one a request the rate allows a second", onboarding.SweepConfig{PageSize: 2, RequestsPerSecond: 4}, 4},
		{"told more than its pages: one a page (12 records in pages of 5)", onboarding.SweepConfig{PageSize: 5, ListRanges: 8}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := spreadWorld(t)
			res, err := w.sweeper(tc.cfg).Run(context.Background(), time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			if got := len(w.store.cp.Ranges); got != tc.want || !res.PassCompleted || res.Pass.Orphans != 2 {
				t.Errorf("%d ranges %+v, pass %+v; want %d ranges and the pass done with both orphans", got, w.store.cp.Ranges, res, tc.want)
			}
		})
	}
}

// TestSweepRangesSkipARepeatedBoundary: records made in the same second
// (a burst of sign-ups) put one second at two quantiles; the pass makes
// one range of it, not an empty range between the two.
func TestSweepRangesSkipARepeatedBoundary(t *testing.T) {
	w := newSweepWorld(t)
	first := testNow.Add(-48 * time.Hour)
	// Sorted by creation: 1 at first, 8 in one second, 3 an hour later.
	// Quantiles of 4 ranges fall on indexes 3, 6 and 9: burst, burst, late.
	burst, late := first.Add(time.Hour), first.Add(2*time.Hour)
	for i := range 12 {
		created := first
		switch {
		case i >= 9:
			created = late
		case i >= 1:
			created = burst
		}
		user, account := fmt.Sprintf("u%02d", i), fmt.Sprintf("acct_%02d", i)
		w.stored(user, account, pendingState, created)
		w.list.accounts = append([]onboarding.ListedAccount{{ID: account, Created: created, Country: "US",
			PlatformUserID: user, CreationID: "cr-" + user, State: activeState}}, w.list.accounts...)
	}
	res, err := w.sweeper(onboarding.SweepConfig{PageSize: 2, ListRanges: 4}).Run(context.Background(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	ranges := w.store.cp.Ranges
	want := []onboarding.SweepRange{{Before: burst.Unix()}, {From: burst.Unix(), Before: late.Unix()}, {From: late.Unix()}}
	if len(ranges) != len(want) {
		t.Fatalf("ranges %+v, want the 3 of %+v", ranges, want)
	}
	for i, rg := range ranges {
		if rg.From != want[i].From || rg.Before != want[i].Before {
			t.Errorf("range %d is [%d, %d), want [%d, %d)", i, rg.From, rg.Before, want[i].From, want[i].Before)
		}
	}
	if !res.PassCompleted || res.Pass.Listed != 12 || res.Pass.Missing != 0 {
		t.Errorf("pass %+v, want all 12 listed and none missing", res)
	}
}

// TestSweepStopsTwiceItsLongestPageBeforeItsDeadlineWritesIncluded: a
// page's time is its listing and its writes; slow writes count toward the
// margin the run keeps before its deadline, or its last page would run past.
func TestSweepStopsTwiceItsLongestPageBeforeItsDeadlineWritesIncluded(t *testing.T) {
	w := newSweepWorld(t)
	old := testNow.Add(-24 * time.Hour)
	for i := range 3 {
		id := fmt.Sprintf("acct_%d", i)
		w.stored("u"+id, id, pendingState, old)
		w.listed(id, "u"+id, "cr-u"+id, activeState)
	}
	w.writes.onApply = func() { w.clock.Advance(10 * time.Second) }
	start := w.clock.Now()
	// The first page (one account) takes 10 s to write: the margin is
	// then 20 s, more than the 15 s kept before any page, and at 10 s in
	// the deadline at 30 s is 20 s away.
	res, err := w.sweeper(onboarding.SweepConfig{PageSize: 1, ListRanges: 1}).Run(context.Background(), start.Add(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Stopped || res.Pages != 1 {
		t.Errorf("run %+v, want it stopped after its first page", res)
	}
}

// TestSweepChecksARecordOnceItIsAsOldAsTheGrace: a record is checked (read
// again, strongly consistent, and reported missing) only when made before
// the grace before the pass began; one made exactly then may hold an
// account Stripe lists only now, and is not even read.
func TestSweepChecksARecordOnceItIsAsOldAsTheGrace(t *testing.T) {
	w := newSweepWorld(t)
	w.stored("edge", "acct_edge", activeState, testNow.Add(-onboarding.DefaultSweepGrace))
	w.stored("older", "acct_older", activeState, testNow.Add(-onboarding.DefaultSweepGrace-time.Millisecond))
	res, err := w.sweeper(onboarding.SweepConfig{}).Run(context.Background(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.PassCompleted || res.Pass.Missing != 1 {
		t.Errorf("pass %+v, want 1 missing: the record older than the grace, not the one exactly as old", res)
	}
	if w.store.userReads != 1 {
		t.Errorf("%d records read to confirm them missing, want 1: the one older than the grace", w.store.userReads)
	}
}
