package onboarding

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The reconciliation sweep. Webhooks alone leave an account stale forever
// when its deliveries fail for longer than Stripe retries them (three days:
// a misconfigured endpoint, a signing secret rotated wrongly, an outage).
// The sweep pages Stripe's list of connected accounts and applies each
// account's state through the same versioned write webhooks use, so it can
// never overwrite newer state with older, whatever arrives meanwhile.
//
// One pass has two phases, each checkpointed in the store after every page,
// so a run that reaches its time limit (or dies) goes on where it stopped:
//   - accounts: page through Stripe's list, newest first; apply what differs;
//     report accounts carrying this service's metadata that no record holds
//     (orphans, never bound here beyond what the provenance rule allows).
//   - records: report the stored records whose account the pass did not
//     list.
//
// At a million accounts, reading every record at every pass is what costs
// (issue 25): so a run first reads the sweep index, a slim projection of
// every account record (its account, owner, creation and state digest),
// which DynamoDB bills by the bytes read, not per record. A listed account
// whose state hashes to the digest its record holds needs no read and no
// write; only the others are read, strongly consistent, and written as
// before. The records phase compares the same index with what the pass
// listed, and reads only the records it would report.

// ListedAccount is one account of Stripe's account list, as the sweep uses it.
type ListedAccount struct {
	ID               string
	Created          time.Time
	Country          string
	ServiceAgreement string // "" when Stripe shows none (its default, full)
	PlatformUserID   string // metadata.platform_user_id
	CreationID       string // metadata.platform_creation_id
	State            AccountState
}

// AccountPage is one page of Stripe's account list, newest first.
type AccountPage struct {
	Accounts []ListedAccount
	HasMore  bool
}

// AccountListQuery asks for one page of the account list.
type AccountListQuery struct {
	// StartingAfter continues the list after this account.
	StartingAfter string
	// CreatedAtMost, without StartingAfter, starts the list at the accounts
	// created at or before this Unix second: where a pass resumes when the
	// account its cursor names is no longer listed.
	CreatedAtMost int64
	// CreatedFrom and CreatedBefore keep the list to the accounts created
	// in [CreatedFrom, CreatedBefore) (Unix seconds; 0: unbounded): one
	// range of a pass, which Stripe lists newest first like the whole.
	CreatedFrom, CreatedBefore int64
	Limit                      int
}

// AccountLister is the part of Stripe the sweep reads.
type AccountLister interface {
	ListAccounts(ctx context.Context, q AccountListQuery) (AccountPage, error)
}

// SweepPhase is the part of a pass a checkpoint is in.
type SweepPhase string

const (
	SweepListing  SweepPhase = "accounts" // paging Stripe's account list
	SweepChecking SweepPhase = "records"  // paging the stored records
)

// SweepCheckpoint is where the sweep stands between runs.
type SweepCheckpoint struct {
	PassID      string // names the pass's listed pages
	PassStarted time.Time
	Phase       SweepPhase // "" between passes
	// Ranges split the pass's listing by creation time, each paged with
	// its own cursor; nil until the pass chooses them.
	Ranges []SweepRange
	// StartingAfter and CursorCreated are the single cursor of a pass
	// checkpointed before ranges existed: it resumes as one open range.
	StartingAfter string
	CursorCreated int64
	Pages         int // pages listed in this pass
	Counts        SweepCounts
	LastCompleted time.Time // when the last pass ended
}

// SweepRange is one part of a pass's listing: the accounts created in
// [From, Before) (Unix seconds; 0: unbounded), paged newest first.
type SweepRange struct {
	From, Before int64
	// StartingAfter is the last account listed in the range; CursorCreated
	// its created second, for when that account is no longer listed.
	StartingAfter string
	CursorCreated int64
	Done          bool
}

// moveAfter sets the range's cursor past the last account of a page.
func (rg *SweepRange) moveAfter(page AccountPage) {
	last := page.Accounts[len(page.Accounts)-1]
	rg.StartingAfter, rg.CursorCreated = last.ID, last.Created.Unix()
}

// SweepCounts count what a pass or a run saw and did.
type SweepCounts struct {
	Listed     int `json:"listed"`     // accounts Stripe listed
	Foreign    int `json:"foreign"`    // without this service's metadata: left alone
	Applied    int `json:"applied"`    // Stripe's state differed and was written
	Unchanged  int `json:"unchanged"`  // the record already held Stripe's state
	Superseded int `json:"superseded"` // newer state was stored meanwhile, or the account is deauthorized
	Orphans    int `json:"orphans"`    // this service's metadata, and no record holds the account
	Records    int `json:"records"`    // stored records (not deauthorized) checked against the pass
	Missing    int `json:"missing"`    // records whose account the pass did not list
	Read       int `json:"read"`       // listed accounts whose record was read: the index did not show it at Stripe's state
}

func (c *SweepCounts) add(o SweepCounts) {
	c.Listed += o.Listed
	c.Foreign += o.Foreign
	c.Applied += o.Applied
	c.Unchanged += o.Unchanged
	c.Read += o.Read
	c.Superseded += o.Superseded
	c.Orphans += o.Orphans
	c.Records += o.Records
	c.Missing += o.Missing
}

// IndexedRecord is an account record as the sweep index holds it.
type IndexedRecord struct {
	UserID, AccountID string
	CreatedAt         time.Time
	StateDigest       string // StateDigest of the stored state
}

// SweepStore is what the sweep needs from storage beyond Store.
type SweepStore interface {
	// TakeSweep takes the sweep for one run under lease, unless another
	// run holds it, and returns the checkpoint (zero before the first run).
	TakeSweep(ctx context.Context, lease Lease, now time.Time) (SweepCheckpoint, bool, error)
	// SaveSweep stores cp if lease still holds the sweep; ErrConflict if not.
	SaveSweep(ctx context.Context, cp SweepCheckpoint, lease Lease) error
	// ReleaseSweep ends lease, if it still holds the sweep.
	ReleaseSweep(ctx context.Context, lease Lease) error
	// GetUsers reads the records of these users (those that exist).
	GetUsers(ctx context.Context, userIDs []string) (map[string]UserRecord, error)
	// FindUsersByAccounts reads the account index: the owner of each
	// account that has one.
	FindUsersByAccounts(ctx context.Context, accountIDs []string) (map[string]string, error)
	// SaveListedPage keeps the ids of page number page of a pass until
	// expires, for a records phase in a later run.
	SaveListedPage(ctx context.Context, passID string, page int, accountIDs []string, expires time.Time) error
	// ListedAccounts calls each with the ids of pages 1..pages of a pass.
	ListedAccounts(ctx context.Context, passID string, pages int, each func(accountID string)) error
	// ReadSweepIndex calls each with every account record that is not
	// deauthorized, as the sweep index holds it: eventually consistent (a
	// write of the last moments may be missing), billed by the index's
	// bytes rather than per record. A store may leave out records from
	// before its index until their next state write: the sweep reads
	// those it lists, and its records phase cannot report them.
	ReadSweepIndex(ctx context.Context, each func(IndexedRecord)) error
}

// SweepConfig bounds the sweep.
type SweepConfig struct {
	// RequestsPerSecond bounds the sweep's Stripe requests (default 20,
	// well below Stripe's live limit, which the platform's payments share).
	RequestsPerSecond float64
	// PageSize is the number of accounts asked per page (default and
	// Stripe's maximum: 100).
	PageSize int
	// StopBefore is how long before the run's deadline no new page starts
	// (default 15 s): a page's Stripe call and its writes fit in it.
	StopBefore time.Duration
	// Lease is how long a run without deadline holds the sweep (default
	// 15 min); a run with one holds it until its deadline.
	Lease time.Duration
	// RecordGrace: a record younger than this when a pass begins is not
	// checked against the pass (default 1 min). A record is stored after
	// Stripe made its account, so an older one holds an account the pass
	// lists; the grace covers the clocks of our functions and the list's
	// own delay.
	RecordGrace time.Duration
	// ListRanges is how many creation-time ranges a pass lists at once,
	// each with its own cursor (default: RequestsPerSecond × 1 s, at most
	// 32, and no more than the index's records fill pages). A cursor's
	// pages come one after the other, so one cursor at Stripe's ~0.4 s a
	// page lists 2.5 pages/s whatever the rate; enough ranges make the
	// rate, not Stripe's latency, bound the pass.
	ListRanges int
}

// Defaults of SweepConfig.
const (
	DefaultSweepRate       = 10 // SWEEP_STRIPE_RATE's default (shared/config)
	DefaultSweepPageSize   = 100
	DefaultSweepStopBefore = 15 * time.Second
	DefaultSweepLease      = 15 * time.Minute
	DefaultSweepGrace      = time.Minute
	// sweepMarkerRetention keeps the markers of the sweep's writes: they
	// only guard a retry of the same write, which comes within seconds.
	sweepMarkerRetention = 24 * time.Hour
	// maxSweepRanges bounds the ranges (and the requests in flight).
	maxSweepRanges = 32
	// listedPageRetention keeps a pass's listed pages for a records phase
	// that starts in a later run.
	listedPageRetention = 7 * 24 * time.Hour
)

// SweepResult is what one run of the sweep did.
type SweepResult struct {
	Ran            bool   // false: another run holds the sweep
	PassID         string // the pass this run worked on
	PassCompleted  bool   // the run ended the pass
	Stopped        bool   // the run stopped at its time limit; the next goes on
	Run            SweepCounts
	Pass           SweepCounts // the pass so far (all of it when PassCompleted)
	Pages          int         // Stripe pages this run listed
	StripeRequests int
}

// Sweeper runs the reconciliation sweep. Build it once per process.
type Sweeper struct {
	svc    *Service
	sweep  SweepStore
	lister AccountLister
	cfg    SweepConfig
	// nextRequest is when the rate bound allows the next Stripe request;
	// paceMu makes the ranges listed at once share it.
	paceMu      sync.Mutex
	nextRequest time.Time
}

// NewSweeper builds the sweep on the service's store, clock and logger.
func (s *Service) NewSweeper(sweep SweepStore, lister AccountLister, cfg SweepConfig) *Sweeper {
	if cfg.RequestsPerSecond <= 0 {
		cfg.RequestsPerSecond = DefaultSweepRate
	}
	if cfg.PageSize <= 0 || cfg.PageSize > DefaultSweepPageSize {
		cfg.PageSize = DefaultSweepPageSize
	}
	if cfg.StopBefore <= 0 {
		cfg.StopBefore = DefaultSweepStopBefore
	}
	if cfg.Lease <= 0 {
		cfg.Lease = DefaultSweepLease
	}
	if cfg.RecordGrace <= 0 {
		cfg.RecordGrace = DefaultSweepGrace
	}
	if cfg.ListRanges > maxSweepRanges {
		cfg.ListRanges = maxSweepRanges
	}
	return &Sweeper{svc: s, sweep: sweep, lister: lister, cfg: cfg}
}

// ErrSweepLost: another run took the sweep over (this one outlived its
// lease); this run stopped.
var ErrSweepLost = errors.New("onboarding: the sweep's lease passed to another run")

// DefaultSweepListRanges is how many ranges a pass at rate lists at once
// unless told: one for each request the rate allows a second, so that
// pages taking up to a second each (Stripe's list takes ~0.4 s) still
// leave the rate, not the latency, bounding the pass.
func DefaultSweepListRanges(rate float64) int {
	return max(1, min(int(math.Ceil(rate)), maxSweepRanges))
}

// Run works on the current pass until it ends or the deadline (zero: none)
// comes near: one pass at most per run. Its errors are storage and Stripe
// failures; the checkpoint keeps what was done before them.
func (w *Sweeper) Run(ctx context.Context, deadline time.Time) (SweepResult, error) {
	var res SweepResult
	now := w.svc.now()
	until := now.Add(w.cfg.Lease)
	if !deadline.IsZero() {
		until = deadline
	}
	lease := Lease{ID: w.svc.newSecret(12), Until: until}
	cp, ok, err := w.sweep.TakeSweep(ctx, lease, now)
	if err != nil || !ok {
		return res, err
	}
	res.Ran = true
	defer func() {
		// Released even when ctx ended, so the next run need not wait.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := w.sweep.ReleaseSweep(rctx, lease); err != nil {
			w.svc.log.WarnContext(ctx, "sweep: could not release its lease; the next run waits for it to end", "error", err)
		}
	}()

	run := &sweepRun{Sweeper: w, cp: cp, lease: lease, deadline: deadline, res: &res}
	if cp.Phase == "" {
		run.cp = SweepCheckpoint{
			PassID: now.UTC().Format("20060102T150405.000000000Z"), PassStarted: now,
			Phase: SweepListing, LastCompleted: cp.LastCompleted,
		}
	}
	// A pass this run starts is listed whole in memory; one it resumes
	// reads what earlier runs listed back from the store.
	run.listedHere = run.cp.Phase == SweepListing && run.cp.Pages == 0
	res.PassID = run.cp.PassID
	err = run.pass(ctx)
	res.Pass = run.cp.Counts
	res.StripeRequests = int(run.requests.Load())
	return res, err
}

// sweepRun is the state of one run.
type sweepRun struct {
	*Sweeper
	cp         SweepCheckpoint
	lease      Lease
	deadline   time.Time
	res        *SweepResult
	listedHere bool
	// index is the sweep index as this run read it, by account id; nil
	// until read.
	index   map[string]indexedAccount
	longest time.Duration // the longest page of this run so far
	// requests counts Stripe requests, which the ranges' listers make at once.
	requests atomic.Int64
}

// indexedAccount is one entry of the index a run holds: compact, since a
// million of them are held at once (about 150 bytes each, make bench).
type indexedAccount struct {
	digest    [16]byte
	hasDigest bool
	owner     uint64 // ownerKey of the user holding the account
	created   int64  // Unix ms
	listed    bool   // the pass listed the account
}

// ownerKey is a user id as an index entry keeps it: a 64-bit hash, which
// two users share with a chance of 1 in 2^64; the fast path compares it
// with the user an account's metadata names.
func ownerKey(userID string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(userID))
	return h.Sum64()
}

// digestBytes decodes a StateDigest; false when it is not one.
func digestBytes(digest string) ([16]byte, bool) {
	var d [16]byte
	n, err := hex.Decode(d[:], []byte(digest))
	return d, err == nil && n == len(d) && len(digest) == 2*len(d)
}

// readIndex reads the sweep index into the run, once.
func (r *sweepRun) readIndex(ctx context.Context) error {
	if r.index != nil {
		return nil
	}
	index := map[string]indexedAccount{}
	err := r.sweep.ReadSweepIndex(ctx, func(rec IndexedRecord) {
		d, ok := digestBytes(rec.StateDigest)
		index[rec.AccountID] = indexedAccount{digest: d, hasDigest: ok, owner: ownerKey(rec.UserID), created: rec.CreatedAt.UnixMilli()}
	})
	if err != nil {
		return err
	}
	r.index = index
	return nil
}

// markListed notes that the pass listed an account.
func (r *sweepRun) markListed(accountID string) {
	if e, ok := r.index[accountID]; ok && !e.listed {
		e.listed = true
		r.index[accountID] = e
	}
}

func (r *sweepRun) pass(ctx context.Context) error {
	if r.cp.Phase == SweepListing {
		if err := r.readIndex(ctx); err != nil {
			return err
		}
		if r.cp.Ranges == nil {
			r.cp.Ranges = r.chooseRanges()
			r.cp.StartingAfter, r.cp.CursorCreated = "", 0
		}
		if err := r.listRanges(ctx); err != nil {
			return err
		}
	}
	if r.cp.Phase != SweepChecking || r.timeUp() {
		return nil
	}
	if err := r.readIndex(ctx); err != nil {
		return err
	}
	if !r.listedHere {
		if err := r.sweep.ListedAccounts(ctx, r.cp.PassID, r.cp.Pages, r.markListed); err != nil {
			return err
		}
	}
	return r.checkRecords(ctx)
}

// timeUp says whether the deadline is too near for another page (closer
// than StopBefore, or than twice the longest page so far: Stripe may be
// slow today), and then marks the run as stopped.
func (r *sweepRun) timeUp() bool {
	margin := max(r.cfg.StopBefore, 2*r.longest)
	if r.deadline.IsZero() || r.svc.now().Add(margin).Before(r.deadline) {
		return false
	}
	r.res.Stopped = true
	return true
}

// chooseRanges splits the pass by creation time into ranges that hold
// similar counts, by the quantiles of the records' creation in the index
// (a record is stored just after Stripe made its account). The first is
// open to the beginning and the last to now and beyond, and each begins
// where the one before ends: together they cover all time, once, so the
// pass still lists every account Stripe holds (orphans included). A pass
// checkpointed with the single cursor of old resumes as one open range.
func (r *sweepRun) chooseRanges() []SweepRange {
	if r.cp.StartingAfter != "" || r.cp.Pages > 0 {
		return []SweepRange{{StartingAfter: r.cp.StartingAfter, CursorCreated: r.cp.CursorCreated}}
	}
	n := r.cfg.ListRanges
	if n <= 0 {
		n = DefaultSweepListRanges(r.cfg.RequestsPerSecond)
	}
	// More ranges than pages would only add requests.
	n = max(1, min(n, (len(r.index)+r.cfg.PageSize-1)/r.cfg.PageSize))
	created := make([]int64, 0, len(r.index))
	for _, e := range r.index {
		created = append(created, e.created/1000)
	}
	slices.Sort(created)
	ranges := []SweepRange{{}}
	for k := 1; k < n; k++ {
		bound := created[k*len(created)/n]
		// A bound at the oldest record would only split off the accounts
		// older than every record (none of ours): no share worth a range.
		if last := &ranges[len(ranges)-1]; bound > last.From && bound > created[0] {
			last.Before = bound
			ranges = append(ranges, SweepRange{From: bound})
		}
	}
	return ranges
}

// listedPage is one page a range's lister fetched, for the run to apply.
type listedPage struct {
	rangeIndex int
	page       AccountPage
	version    int64
	took       time.Duration
	err        error
	// goOn answers the lister: fetch the range's next page, or stop. It
	// waits for the answer, so a range never runs ahead of its checkpoint
	// and no page starts once the run is out of time.
	goOn chan<- bool
}

// listRanges lists the pass's unfinished ranges at once, each paged by a
// lister of its own, all within the one rate bound. The run applies and
// checkpoints their pages one at a time, so the checkpoint only moves a
// range's cursor past pages applied and kept. It returns when every range
// is listed (the pass moves to its records), or at the time limit.
func (r *sweepRun) listRanges(ctx context.Context) error {
	if r.timeUp() {
		return nil
	}
	listCtx, stop := context.WithCancel(ctx)
	defer stop()
	pages := make(chan listedPage)
	var listers sync.WaitGroup
	for i, rg := range r.cp.Ranges {
		if rg.Done {
			continue
		}
		listers.Add(1)
		go func() {
			defer listers.Done()
			r.listRange(listCtx, i, rg, pages)
		}()
	}
	go func() { listers.Wait(); close(pages) }()
	var failed error
	stopped := false
	for p := range pages {
		switch {
		case failed != nil || stopped:
			// The listers are stopping: drained, not applied.
		case p.err != nil:
			failed = p.err
			stop()
		default:
			start := r.svc.now()
			if err := r.takePage(ctx, p); err != nil {
				failed = err
				stop()
				break
			}
			r.longest = max(r.longest, p.took+r.svc.now().Sub(start))
			if r.cp.Phase == SweepListing && r.timeUp() {
				stopped = true
				stop()
			}
		}
		p.goOn <- failed == nil && !stopped
	}
	if failed == nil && !stopped {
		failed = ctx.Err() // the run's context ended: its listers stopped
	}
	return failed
}

// listRange pages one range from its cursor until the range ends or ctx
// does, handing each page to the run.
func (r *sweepRun) listRange(ctx context.Context, index int, rg SweepRange, pages chan<- listedPage) {
	goOn := make(chan bool, 1)
	for {
		started := r.svc.now()
		page, version, err := r.fetch(ctx, rg)
		if ctx.Err() != nil {
			return
		}
		select {
		case pages <- listedPage{rangeIndex: index, page: page, version: version, took: r.svc.now().Sub(started), err: err, goOn: goOn}:
		case <-ctx.Done():
			return
		}
		if !<-goOn || err != nil || !page.HasMore || len(page.Accounts) == 0 {
			return
		}
		rg.moveAfter(page)
	}
}

// fetch asks Stripe for the next page of a range, and the version its
// accounts are written at.
func (r *sweepRun) fetch(ctx context.Context, rg SweepRange) (AccountPage, int64, error) {
	q := AccountListQuery{StartingAfter: rg.StartingAfter, CreatedFrom: rg.From, CreatedBefore: rg.Before, Limit: r.cfg.PageSize}
	if err := r.pace(ctx); err != nil {
		return AccountPage{}, 0, err
	}
	// The version is the second before the read began: Stripe rendered the
	// page after it, so any change the page misses is a webhook of a later
	// second, and even one of the same second wins (ties apply).
	version := r.svc.now().Unix() - 1
	r.requests.Add(1)
	page, err := r.lister.ListAccounts(ctx, q)
	if e, ok := AsError(err); ok && e.Kind == KindInvalid && e.Param == "starting_after" && rg.CursorCreated > 0 {
		// The cursor's account is no longer listed (disconnected since):
		// go on from its second; what is listed twice is applied twice,
		// which changes nothing.
		if err := r.pace(ctx); err != nil {
			return AccountPage{}, 0, err
		}
		version = r.svc.now().Unix() - 1
		r.requests.Add(1)
		page, err = r.lister.ListAccounts(ctx, AccountListQuery{CreatedAtMost: rg.CursorCreated, CreatedFrom: rg.From, Limit: r.cfg.PageSize})
	}
	return page, version, err
}

// takePage applies, keeps and checkpoints one page a range listed.
func (r *sweepRun) takePage(ctx context.Context, p listedPage) error {
	var counts SweepCounts
	if err := r.apply(ctx, p.page.Accounts, p.version, &counts); err != nil {
		return err
	}
	ids := make([]string, 0, len(p.page.Accounts))
	for _, a := range p.page.Accounts {
		ids = append(ids, a.ID)
		r.markListed(a.ID)
	}
	r.res.Pages++
	next := r.cp
	next.Ranges = slices.Clone(r.cp.Ranges)
	rg := &next.Ranges[p.rangeIndex]
	if len(ids) > 0 {
		next.Pages++
		// Kept for a records phase in another run; before the cursor moves
		// past it, so a checkpoint never counts a page that was not kept.
		if err := r.sweep.SaveListedPage(ctx, r.cp.PassID, next.Pages, ids, r.svc.now().Add(listedPageRetention)); err != nil {
			return err
		}
		rg.moveAfter(p.page)
	}
	if !p.page.HasMore || len(ids) == 0 {
		// A listed range needs no cursor: the checkpoint, written after
		// every page, stays small.
		*rg = SweepRange{From: rg.From, Before: rg.Before, Done: true}
	}
	if !slices.ContainsFunc(next.Ranges, func(rg SweepRange) bool { return !rg.Done }) {
		next.Phase = SweepChecking
	}
	next.Counts.add(counts)
	return r.checkpoint(ctx, next, counts)
}

// pace waits until the rate bound allows the next Stripe request. The
// ranges' listers wait in turn, so together they keep to the one rate.
func (w *Sweeper) pace(ctx context.Context) error {
	w.paceMu.Lock()
	defer w.paceMu.Unlock()
	now := w.svc.now()
	if wait := w.nextRequest.Sub(now); wait > 0 {
		if err := w.svc.sleep(ctx, wait); err != nil {
			return err
		}
		now = w.nextRequest
	}
	w.nextRequest = now.Add(time.Duration(float64(time.Second) / w.cfg.RequestsPerSecond))
	return nil
}

// checkpoint stores next as the sweep's state and counts a run's work.
func (r *sweepRun) checkpoint(ctx context.Context, next SweepCheckpoint, counts SweepCounts) error {
	if next.Phase == "" {
		next.LastCompleted = r.svc.now()
	}
	if err := r.sweep.SaveSweep(ctx, next, r.lease); errors.Is(err, ErrConflict) {
		return ErrSweepLost
	} else if err != nil {
		return err
	}
	r.cp = next
	r.res.Run.add(counts)
	if next.Phase == "" {
		r.res.PassCompleted = true
		r.svc.log.InfoContext(ctx, "sweep: pass completed", "pass_id", next.PassID, "pages", next.Pages,
			"listed", next.Counts.Listed, "applied", next.Counts.Applied, "orphans", next.Counts.Orphans, "missing", next.Counts.Missing)
	}
	return nil
}

// apply brings the records of one page's accounts to Stripe's state.
func (r *sweepRun) apply(ctx context.Context, accounts []ListedAccount, version int64, counts *SweepCounts) error {
	var ours []ListedAccount
	for _, a := range accounts {
		counts.Listed++
		if a.PlatformUserID == "" || a.CreationID == "" {
			counts.Foreign++ // another integration's, or made by hand: not ours to judge
			continue
		}
		if r.indexHolds(a) {
			counts.Unchanged++
			continue
		}
		counts.Read++
		ours = append(ours, a)
	}
	if len(ours) == 0 {
		return nil
	}
	named := make(map[string]string, len(ours)) // account -> the user its metadata names
	for _, a := range ours {
		named[a.ID] = a.PlatformUserID
	}
	unmatched, err := r.applyTo(ctx, ours, named, true, version, counts)
	if err != nil || len(unmatched) == 0 {
		return err
	}
	// Metadata anyone can edit does not say who owns an account: the
	// account index, written when we stored it, does.
	ids := make([]string, len(unmatched))
	for i, a := range unmatched {
		ids[i] = a.ID
	}
	owners, err := r.sweep.FindUsersByAccounts(ctx, ids)
	if err != nil {
		return err
	}
	var owned []ListedAccount
	for _, a := range unmatched {
		owner, ok := owners[a.ID]
		switch {
		case !ok, owner == a.PlatformUserID: // the index and the record disagree: nothing to apply
			r.orphan(ctx, a, counts)
		default:
			r.svc.log.WarnContext(ctx, "sweep: the account's metadata names another user than the one it belongs to; applying to its owner",
				"account_id", a.ID)
			owned = append(owned, a)
		}
	}
	if len(owned) == 0 {
		return nil
	}
	left, err := r.applyTo(ctx, owned, owners, false, version, counts)
	for _, a := range left {
		r.orphan(ctx, a, counts)
	}
	return err
}

// indexHolds says whether the index shows the record of the user the
// account's metadata names holding the account at Stripe's state: then
// there is nothing to write, and no record to read. An index that is
// behind (a write of the moments before it was read) only sends an account
// to the read; one that is behind the other way (the record changed just
// after, to another state than Stripe's) leaves it to the next pass.
func (r *sweepRun) indexHolds(a ListedAccount) bool {
	e, ok := r.index[a.ID]
	if !ok || !e.hasDigest || e.owner != ownerKey(a.PlatformUserID) {
		return false
	}
	d, ok := digestBytes(StateDigest(a.State))
	return ok && d == e.digest
}

// applyTo applies each account to the record of the user owner names, when
// that record holds it (or, with heal, the unfinished claim it provably
// came from: the provenance rule), and returns the accounts no record
// held.
func (r *sweepRun) applyTo(ctx context.Context, accounts []ListedAccount, owner map[string]string, heal bool, version int64, counts *SweepCounts) ([]ListedAccount, error) {
	var users []string
	for _, a := range accounts {
		if !slices.Contains(users, owner[a.ID]) {
			users = append(users, owner[a.ID])
		}
	}
	records, err := r.sweep.GetUsers(ctx, users)
	if err != nil {
		return nil, err
	}
	var unmatched []ListedAccount
	for _, a := range accounts {
		user := owner[a.ID]
		u, found := records[user]
		creation := ""
		switch {
		case found && u.Account != nil && u.Account.AccountID == a.ID:
			if u.Account.State.Deauthorized {
				counts.Superseded++ // terminal: nothing Stripe lists changes it
				continue
			}
			if sameState(u.Account.State, a.State) {
				counts.Unchanged++
				continue
			}
		case heal && found && u.Account == nil && u.Claim != nil && u.Claim.CreationID == a.CreationID:
			// The write completes the record, as the account's webhook would.
			creation = a.CreationID
		default:
			unmatched = append(unmatched, a)
			continue
		}
		outcome, err := r.write(ctx, a, user, creation, version)
		if err != nil {
			return nil, err
		}
		if outcome == OutcomeUnknown {
			unmatched = append(unmatched, a) // the record changed since it was read
			continue
		}
		counts.count(outcome)
	}
	return unmatched, nil
}

// orphan reports an account that carries this service's metadata while no
// record holds it. It is never bound here: metadata anyone can set does not
// prove who it belongs to.
func (r *sweepRun) orphan(ctx context.Context, a ListedAccount, counts *SweepCounts) {
	counts.Orphans++
	r.svc.log.WarnContext(ctx, "sweep: orphan account: it carries this service's metadata but no record holds it; not bound",
		"account_id", a.ID, "created", a.Created.UTC().Format(time.RFC3339))
}

func (c *SweepCounts) count(o EventOutcome) {
	switch o {
	case OutcomeApplied:
		c.Applied++
	case OutcomeDuplicate:
		c.Unchanged++ // this very write, already applied
	default:
		c.Superseded++
	}
}

// write applies a listed account's state to userID's record through
// Store.ApplyEvent, the webhooks' versioned write: a snapshot at version,
// under a marker of its own.
func (r *sweepRun) write(ctx context.Context, a ListedAccount, userID, healCreationID string, version int64) (EventOutcome, error) {
	agreement := a.ServiceAgreement
	if agreement == "" {
		agreement = AgreementFull // Stripe omits its default
	}
	now := r.svc.now()
	return r.svc.store.ApplyEvent(ctx, StateChange{
		EventID:          "sweep_" + a.ID + "_" + strconv.FormatInt(version, 10),
		UserID:           userID,
		AccountID:        a.ID,
		Kind:             ChangeSnapshot,
		Cause:            CauseSweep, // the status change it makes is recorded as the sweep's
		Version:          version,
		State:            a.State,
		Country:          a.Country,
		ServiceAgreement: agreement,
		HealCreationID:   healCreationID,
		Now:              now,
		RetainUntil:      now.Add(sweepMarkerRetention),
	})
}

// checkRecords reports the records of the index whose account the pass did
// not list, and ends the pass. Those it would report are read first,
// strongly consistent: the index may be behind a record disconnected since
// it was read.
func (r *sweepRun) checkRecords(ctx context.Context) error {
	var counts SweepCounts
	// A younger record may hold an account the pass did not list yet.
	before := r.cp.PassStarted.Add(-r.cfg.RecordGrace).UnixMilli()
	var unlisted []string
	for id, e := range r.index {
		counts.Records++
		if !e.listed && e.created < before {
			unlisted = append(unlisted, id)
		}
	}
	slices.Sort(unlisted)
	missing, err := r.confirmMissing(ctx, unlisted, time.UnixMilli(before))
	if err != nil {
		return err
	}
	for _, id := range missing {
		counts.Missing++
		r.svc.log.WarnContext(ctx, "sweep: a record's account is not in Stripe's account list", "account_id", id)
	}
	next := r.cp
	next.Phase = ""
	next.Counts.add(counts)
	return r.checkpoint(ctx, next, counts)
}

// confirmMissing returns the accounts of ids that a record still holds, not
// disconnected and created before before.
func (r *sweepRun) confirmMissing(ctx context.Context, ids []string, before time.Time) ([]string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	owners, err := r.sweep.FindUsersByAccounts(ctx, ids)
	if err != nil {
		return nil, err
	}
	var users []string
	for _, u := range owners {
		users = append(users, u)
	}
	slices.Sort(users)
	records, err := r.sweep.GetUsers(ctx, slices.Compact(users))
	if err != nil {
		return nil, err
	}
	var missing []string
	for _, id := range ids {
		u, ok := records[owners[id]]
		if ok && u.Account != nil && u.Account.AccountID == id && !u.Account.State.Deauthorized && u.Account.CreatedAt.Before(before) {
			missing = append(missing, id)
		}
	}
	return missing, nil
}

// sameState says whether two states say the same, however their empty
// lists and maps were decoded.
func sameState(a, b AccountState) bool {
	ja, errA := json.Marshal(canonical(a))
	jb, errB := json.Marshal(canonical(b))
	return errA == nil && errB == nil && bytes.Equal(ja, jb)
}

func canonical(s AccountState) AccountState {
	s.Requirements = s.Requirements.normalized()
	future := Requirements{}
	if s.FutureRequirements != nil {
		future = *s.FutureRequirements
	}
	future = future.normalized()
	s.FutureRequirements = &future
	for _, r := range []*Requirements{&s.Requirements, s.FutureRequirements} {
		if r.CurrentDeadline != nil {
			t := r.CurrentDeadline.UTC().Truncate(time.Second)
			r.CurrentDeadline = &t
		}
	}
	return s
}

// String names the run's outcome for a log line.
func (r SweepResult) String() string {
	switch {
	case !r.Ran:
		return "another run holds the sweep"
	case r.PassCompleted:
		return fmt.Sprintf("pass %s completed", r.PassID)
	case r.Stopped:
		return fmt.Sprintf("pass %s stopped at the time limit; the next run goes on", r.PassID)
	}
	return fmt.Sprintf("pass %s in progress", r.PassID)
}
