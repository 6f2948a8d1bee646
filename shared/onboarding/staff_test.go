package onboarding_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/connectexpress/onboarding/shared/onboarding"
)

// staffFake is a StaffStore holding one account, recording each call.
type staffFake struct {
	rec        onboarding.StaffRecord
	calls      []string
	decisions  []onboarding.ReviewDecision
	writes     []*onboarding.StateWrite
	rejectMark time.Time
	markEnded  bool // by a refusal's outcome
	// audit is every review audit item appended, oldest first.
	audit []onboarding.ReviewDecision
	// atStripe is what Stripe answers when the account is read (nil: a
	// Stripe failure).
	atStripe *onboarding.AccountState
	// beginErr fails BeginRejection, outcomeErr RecordRejectionOutcome.
	beginErr, outcomeErr error
	// sharedWith are the users whose accounts hold the record's email too.
	sharedWith []string
}

func (f *staffFake) ListAccounts(_ context.Context, af onboarding.AccountFilter) (onboarding.StaffPage, error) {
	f.calls = append(f.calls, "list")
	return onboarding.StaffPage{Accounts: make([]onboarding.AccountSummary, 0, af.Limit)}, nil
}

func (f *staffFake) StaffHistory(_ context.Context, userID string, _ int) (onboarding.StaffHistory, error) {
	f.calls = append(f.calls, "history")
	if userID != f.rec.Record.UserID {
		return onboarding.StaffHistory{}, onboarding.ErrNotFound
	}
	return onboarding.StaffHistory{StaffRecord: f.rec, EmailSharedWith: f.sharedWith}, nil
}

func (f *staffFake) RecordReview(_ context.Context, _ string, d onboarding.ReviewDecision, w *onboarding.StateWrite) (onboarding.StaffRecord, bool, error) {
	f.calls = append(f.calls, "record")
	f.decisions, f.writes = append(f.decisions, d), append(f.writes, w)
	f.audit = append(f.audit, d)
	f.rec.ReviewState = onboarding.ReviewState{Review: d.Decision.Outcome(), ReviewedBy: d.Reviewer, ReviewedAt: d.At}
	if w != nil {
		f.rec.Record.State = w.State
	}
	return f.rec, true, nil
}

func (f *staffFake) BeginRejection(_ context.Context, _ string, intent onboarding.ReviewDecision, until time.Time) error {
	f.calls = append(f.calls, "mark")
	if f.beginErr != nil {
		return f.beginErr
	}
	f.rejectMark = until
	f.audit = append(f.audit, intent)
	return nil
}

func (f *staffFake) RecordRejectionOutcome(ctx context.Context, _ string, d onboarding.ReviewDecision) error {
	f.calls = append(f.calls, "outcome "+string(d.Outcome))
	if ctx.Err() != nil { // as a real store's call would fail
		return ctx.Err()
	}
	if f.outcomeErr != nil {
		return f.outcomeErr
	}
	f.audit = append(f.audit, d)
	f.markEnded = f.markEnded || d.Outcome == onboarding.AuditRefused
	return nil
}

func staffService(t *testing.T, reject func(id, reason, key string) (onboarding.AccountState, error)) (*onboarding.Service, *staffFake) {
	t.Helper()
	p := testPolicy()
	p.StaffGroup = "onboarding-staff"
	staff := &staffFake{rec: onboarding.StaffRecord{
		Record:      onboarding.AccountRecord{UserID: "sid", AccountID: "acct_sid", ServiceAgreement: "full", State: onboarding.AccountState{DetailsSubmitted: true, ChargesEnabled: true, PayoutsEnabled: true, Capabilities: map[string]string{"card_payments": "active", "transfers": "active"}}},
		ReviewState: onboarding.ReviewState{Review: onboarding.ReviewPending},
	}}
	connect := &connectFake{
		RejectFn: func(_ context.Context, id, reason, key string) (onboarding.AccountState, error) {
			return reject(id, reason, key)
		},
		GetAccountFn: func(context.Context, string) (onboarding.AccountState, error) {
			staff.calls = append(staff.calls, "read")
			if staff.atStripe == nil {
				return onboarding.AccountState{}, onboarding.ErrStripeUnavailable
			}
			return *staff.atStripe, nil
		},
	}
	svc := onboarding.NewService(&storeFake{}, connect, p, onboarding.WithStaffStore(staff), onboarding.WithClock(func() time.Time { return testNow }))
	return svc, staff
}

var (
	staffCaller = onboarding.Caller{UserID: "stella", Groups: []string{"support", "onboarding-staff"}}
	notStaff    = []onboarding.Caller{
		{UserID: "mal"}, {UserID: "mal", Groups: []string{"support"}}, {UserID: "mal", Groups: []string{"onboarding-staff-readers"}},
		{UserID: "mal", Groups: []string{"Onboarding-Staff"}},
	}
)

func rejected(reason string) onboarding.AccountState {
	r := "rejected." + reason
	return onboarding.AccountState{DetailsSubmitted: true, Requirements: onboarding.Requirements{DisabledReason: &r}}
}

func TestStaffUseCasesRefuseCallersOutsideTheGroupBeforeAnything(t *testing.T) {
	svc, staff := staffService(t, func(string, string, string) (onboarding.AccountState, error) {
		t.Fatal("Stripe called for a non-staff caller")
		return onboarding.AccountState{}, nil
	})
	ctx := context.Background()
	for _, c := range notStaff {
		_, err1 := svc.ListAccounts(ctx, c, onboarding.AccountFilter{Limit: 1000})
		_, err2 := svc.StaffAccount(ctx, c, "")
		_, _, err3 := svc.ReviewAccount(ctx, c, "sid", onboarding.ReviewRequest{Decision: "ban"})
		for _, err := range []error{err1, err2, err3, svc.CheckStaff(c)} {
			if !errors.Is(err, onboarding.ErrForbidden) {
				t.Errorf("%+v: %v, want ErrForbidden", c, err)
			}
		}
	}
	if err := svc.CheckStaff(onboarding.Caller{Groups: []string{"onboarding-staff"}}); !errors.Is(err, onboarding.ErrUnauthorized) {
		t.Errorf("no sub: %v, want ErrUnauthorized", err)
	}
	if len(staff.calls) != 0 {
		t.Errorf("the store was called: %v", staff.calls)
	}
	// No staff group configured: nobody is staff.
	p := testPolicy()
	if err := onboarding.NewService(&storeFake{}, &connectFake{}, p, onboarding.WithStaffStore(staff)).CheckStaff(staffCaller); !errors.Is(err, onboarding.ErrForbidden) {
		t.Errorf("without a StaffGroup: %v, want ErrForbidden", err)
	}
}

func TestRejectionMarksTheRecordThenCallsStripeThenRecords(t *testing.T) {
	var svc *onboarding.Service
	var staff *staffFake
	var key string
	svc, staff = staffService(t, func(id, reason, k string) (onboarding.AccountState, error) {
		staff.calls = append(staff.calls, "stripe "+id+" "+reason)
		key = k
		return rejected(reason), nil
	})
	answer, recorded, err := svc.ReviewAccount(context.Background(), staffCaller, "sid", onboarding.ReviewRequest{Decision: onboarding.DecisionReject, Reason: "fraud", Note: "  stolen card \n"})
	if err != nil || !recorded || answer.Review != onboarding.ReviewRejected || answer.Status != onboarding.StatusRejected || answer.ReviewedBy != "stella" {
		t.Fatalf("reject: %+v, %v, %v", answer, recorded, err)
	}
	if got := strings.Join(staff.calls, ", "); got != "history, mark, stripe acct_sid fraud, record" {
		t.Errorf("calls: %s", got)
	}
	// The mark outlasts the review call's own life (API Gateway gives it 30 s
	// at most, Stripe's retries included), so the webhook of a rejection
	// still in flight is the staff's; and it ends within minutes, so a
	// failed rejection's mark cannot claim one Stripe makes on its own later.
	if d := staff.rejectMark.Sub(testNow); d < 30*time.Second || d > 5*time.Minute {
		t.Errorf("the rejection mark lasts %v, want between 30 s and 5 min", d)
	}
	d := staff.decisions[0]
	if d.Reviewer != "stella" || d.Reason != "fraud" || d.Note != "stolen card" || !d.At.Equal(testNow) || staff.writes[0] == nil || staff.writes[0].Version != testNow.Unix() {
		t.Errorf("decision %+v, write %+v", d, staff.writes[0])
	}
	// The audit: the intent before Stripe was called, then the decision,
	// both of one attempt, whose key Stripe got.
	if len(staff.audit) != 2 || staff.audit[0].Outcome != onboarding.AuditIntent || staff.audit[1].Outcome != onboarding.AuditRecorded ||
		d.Attempt == "" || staff.audit[0].Attempt != d.Attempt || staff.audit[0].Reason != "fraud" || staff.audit[0].Reviewer != "stella" ||
		key != "reject-acct_sid-"+d.Attempt {
		t.Errorf("audit %+v, key %q", staff.audit, key)
	}
	// Again: the same answer, nothing recorded, no Stripe call.
	staff.calls = nil
	again, recorded, err := svc.ReviewAccount(context.Background(), staffCaller, "sid", onboarding.ReviewRequest{Decision: onboarding.DecisionReject, Reason: "other"})
	if err != nil || recorded || again != answer || strings.Join(staff.calls, ", ") != "history" {
		t.Errorf("again: %+v, %v, %v, calls %v", again, recorded, err, staff.calls)
	}
	if _, _, err := svc.ReviewAccount(context.Background(), staffCaller, "sid", onboarding.ReviewRequest{Decision: onboarding.DecisionApprove}); !errors.Is(err, onboarding.ErrReviewFinal) {
		t.Errorf("approve after reject: %v, want ErrReviewFinal", err)
	}
}

// A rejection whose answer never came (a timeout, Stripe's 500) leaves the
// intent and an unknown outcome in the audit, no decision, and the mark in
// place: Stripe may yet have rejected the account, and its webhook is then
// the staff's.
func TestAStripeFailureRecordsTheIntentAndAnUnknownOutcome(t *testing.T) {
	svc, staff := staffService(t, func(string, string, string) (onboarding.AccountState, error) {
		return onboarding.AccountState{}, onboarding.ErrStripeUnavailable
	})
	if _, _, err := svc.ReviewAccount(context.Background(), staffCaller, "sid", onboarding.ReviewRequest{Decision: onboarding.DecisionReject, Reason: "fraud"}); !errors.Is(err, onboarding.ErrStripeUnavailable) {
		t.Fatalf("reject: %v", err)
	}
	if len(staff.decisions) != 0 {
		t.Errorf("a decision was recorded: %+v", staff.decisions)
	}
	if got := strings.Join(staff.calls, ", "); got != "history, mark, outcome unknown" {
		t.Errorf("calls: %s", got)
	}
	if len(staff.audit) != 2 || staff.audit[0].Outcome != onboarding.AuditIntent || staff.audit[1].Outcome != onboarding.AuditUnknown ||
		staff.audit[1].Attempt != staff.audit[0].Attempt || staff.audit[1].StripeMessage != "" {
		t.Errorf("audit: %+v", staff.audit)
	}
	if staff.rejectMark.IsZero() || staff.markEnded {
		t.Error("an unknown outcome ended the rejection mark")
	}
}

// Stripe's 403 account_invalid on the reject: the account is gone or the
// platform's access revoked (a deauthorization webhook missed). Staff get
// 409 account_deauthorized, the attempt's outcome is audited, and the
// account is stored as deauthorized, as every other route stores it.
func TestARejectionOfAnAccountGoneAtStripeStoresItDeauthorized(t *testing.T) {
	svc, staff := staffService(t, func(string, string, string) (onboarding.AccountState, error) {
		return onboarding.AccountState{}, onboarding.ErrAccountGone.WithCause(errors.New("stripe: status 403, code account_invalid"))
	})
	var changes []onboarding.StateChange
	store := &storeFake{ApplyEventFn: func(_ context.Context, c onboarding.StateChange) (onboarding.EventOutcome, error) {
		changes = append(changes, c)
		return onboarding.OutcomeApplied, nil
	}}
	connect := &connectFake{RejectFn: func(context.Context, string, string, string) (onboarding.AccountState, error) {
		return onboarding.AccountState{}, onboarding.ErrAccountGone.WithCause(errors.New("stripe: status 403, code account_invalid"))
	}}
	svc = onboarding.NewService(store, connect, svc.Policy(), onboarding.WithStaffStore(staff), onboarding.WithClock(func() time.Time { return testNow }))
	_, _, err := svc.ReviewAccount(context.Background(), staffCaller, "sid", onboarding.ReviewRequest{Decision: onboarding.DecisionReject, Reason: "fraud"})
	if !errors.Is(err, onboarding.ErrDeauthorized) {
		t.Fatalf("reject: %v, want account_deauthorized", err)
	}
	if len(changes) != 1 || changes[0].Kind != onboarding.ChangeDeauthorize || changes[0].Cause != onboarding.CauseAccountInvalid || changes[0].AccountID != "acct_sid" {
		t.Errorf("writes %+v, want the account stored as deauthorized (cause account_invalid)", changes)
	}
	if len(staff.decisions) != 0 {
		t.Errorf("a decision was recorded: %+v", staff.decisions)
	}
	if len(staff.audit) != 2 || staff.audit[0].Outcome != onboarding.AuditIntent || staff.audit[1].Outcome == onboarding.AuditRecorded {
		t.Errorf("audit: %+v, want the intent and an outcome that is not a rejection", staff.audit)
	}
}

// TestALostRejectionOutcomeIsLoggedAsAWarning: the outcome's write is best
// effort (the caller's answer does not wait on it), so when it fails the
// log is where staff learn the history lacks it; a write that succeeds
// logs no warning.
func TestALostRejectionOutcomeIsLoggedAsAWarning(t *testing.T) {
	const warning = "could not record a staff rejection's outcome"
	for _, tc := range []struct {
		name        string
		outcomeErr  error
		wantWarning bool
	}{
		{"the outcome's write fails: a warning", onboarding.StorageFailed(errors.New("throttled")), true},
		{"the outcome is written: no warning", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc, staff := staffService(t, func(string, string, string) (onboarding.AccountState, error) {
				return onboarding.AccountState{}, onboarding.ErrStripeUnavailable
			})
			staff.outcomeErr = tc.outcomeErr
			var logs bytes.Buffer
			connect := &connectFake{RejectFn: func(context.Context, string, string, string) (onboarding.AccountState, error) {
				return onboarding.AccountState{}, onboarding.ErrStripeUnavailable
			}}
			svc = onboarding.NewService(&storeFake{}, connect, svc.Policy(), onboarding.WithStaffStore(staff), onboarding.WithClock(func() time.Time { return testNow }),
				onboarding.WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))))
			if _, _, err := svc.ReviewAccount(context.Background(), staffCaller, "sid", onboarding.ReviewRequest{Decision: onboarding.DecisionReject, Reason: "fraud"}); !errors.Is(err, onboarding.ErrStripeUnavailable) {
				t.Fatalf("reject: %v", err)
			}
			if got := strings.Contains(logs.String(), warning); got != tc.wantWarning {
				t.Errorf("warning logged %v, want %v; logs:\n%s", got, tc.wantWarning, logs.String())
			}
		})
	}
}

// The review call's own deadline can be what ended the attempt: its
// outcome is written all the same.
func TestAnAttemptEndedByItsDeadlineStillRecordsItsOutcome(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	svc, staff := staffService(t, func(string, string, string) (onboarding.AccountState, error) {
		cancel()
		return onboarding.AccountState{}, onboarding.ErrStripeUnavailable.WithCause(context.Canceled)
	})
	if _, _, err := svc.ReviewAccount(ctx, staffCaller, "sid", onboarding.ReviewRequest{Decision: onboarding.DecisionReject, Reason: "fraud"}); !errors.Is(err, onboarding.ErrStripeUnavailable) {
		t.Fatalf("reject: %v", err)
	}
	if len(staff.audit) != 2 || staff.audit[1].Outcome != onboarding.AuditUnknown {
		t.Errorf("audit: %+v, want the intent and an unknown outcome", staff.audit)
	}
}

// stripeRefusal is Stripe's answer to rejecting a live-mode account with
// money on it, as the Stripe adapter hands it on.
func stripeRefusal() error {
	e := onboarding.ProviderRejected("", "This account has a non-zero balance in usd and cannot be rejected.", nil)
	e.ProviderCode = "balance_not_zero"
	return e
}

// Stripe refuses a rejection while the account holds money (live mode).
// Staff get Stripe's message as a 4xx; the audit has the intent and the
// refusal with Stripe's code and message, and no decision. Once the
// balance is cleared, the retry is a new attempt with a new
// Idempotency-Key (the old one would replay the refusal for 24 hours), and
// the account is rejected.
func TestARefusedRejectionIsRecordedAndItsRetryIsANewAttempt(t *testing.T) {
	balance := true
	var keys []string
	svc, staff := staffService(t, func(_, reason, key string) (onboarding.AccountState, error) {
		keys = append(keys, key)
		if balance {
			return onboarding.AccountState{}, stripeRefusal()
		}
		return rejected(reason), nil
	})
	stillActive := staff.rec.Record.State
	staff.atStripe = &stillActive
	ctx := context.Background()
	req := onboarding.ReviewRequest{Decision: onboarding.DecisionReject, Reason: "fraud", Note: "stolen card"}
	_, recorded, err := svc.ReviewAccount(ctx, staffCaller, "sid", req)
	e, ok := onboarding.AsError(err)
	if !ok || e.Kind != onboarding.KindInvalid || e.Message != "This account has a non-zero balance in usd and cannot be rejected." || recorded {
		t.Fatalf("a refused rejection: %v (recorded %v), want Stripe's refusal", err, recorded)
	}
	if got := strings.Join(staff.calls, ", "); got != "history, mark, read, outcome refused" {
		t.Errorf("calls: %s", got)
	}
	if len(staff.decisions) != 0 || staff.rec.Review != onboarding.ReviewPending || !staff.markEnded {
		t.Errorf("after a refusal: decisions %+v, review %s, mark %v", staff.decisions, staff.rec.Review, staff.rejectMark)
	}
	if len(staff.audit) != 2 || staff.audit[1].Outcome != onboarding.AuditRefused || staff.audit[1].StripeCode != "balance_not_zero" ||
		staff.audit[1].StripeMessage != e.Message || staff.audit[1].Attempt != staff.audit[0].Attempt || staff.audit[1].Reviewer != "stella" {
		t.Fatalf("audit after the refusal: %+v", staff.audit)
	}

	balance = false // staff settle the balance, and try again
	staff.calls = nil
	answer, recorded, err := svc.ReviewAccount(ctx, staffCaller, "sid", req)
	if err != nil || !recorded || answer.Review != onboarding.ReviewRejected || answer.Status != onboarding.StatusRejected {
		t.Fatalf("the retry: %+v, %v, %v", answer, recorded, err)
	}
	if got := strings.Join(staff.calls, ", "); got != "history, mark, record" {
		t.Errorf("calls of the retry: %s", got)
	}
	if len(keys) != 2 || keys[0] == keys[1] || !strings.HasPrefix(keys[1], "reject-acct_sid-") {
		t.Errorf("Idempotency-Keys of the two attempts: %q, want two different", keys)
	}
	if len(staff.audit) != 4 || staff.audit[2].Outcome != onboarding.AuditIntent || staff.audit[3].Outcome != onboarding.AuditRecorded ||
		staff.audit[2].Attempt == staff.audit[0].Attempt || staff.audit[3].Attempt != staff.audit[2].Attempt {
		t.Errorf("audit after the retry: %+v", staff.audit)
	}
}

// A retry after an answer that was lost (the first attempt did reject the
// account) may meet Stripe's refusal to reject it again: the account is
// read, and a rejected account is recorded as this attempt's rejection.
// When Stripe cannot be read, the refusal stands.
func TestARefusalOfAnAccountAlreadyRejectedAtStripeRecordsTheRejection(t *testing.T) {
	svc, staff := staffService(t, func(string, string, string) (onboarding.AccountState, error) {
		return onboarding.AccountState{}, onboarding.ProviderRejected("", "the account is already rejected", nil)
	})
	ctx := context.Background()
	req := onboarding.ReviewRequest{Decision: onboarding.DecisionReject, Reason: "terms_of_service"}
	if _, _, err := svc.ReviewAccount(ctx, staffCaller, "sid", req); err == nil || staff.audit[len(staff.audit)-1].Outcome != onboarding.AuditRefused {
		t.Fatalf("Stripe unreadable: %v, audit %+v; want the refusal", err, staff.audit)
	}
	atStripe := rejected("fraud")
	staff.atStripe = &atStripe
	staff.calls = nil
	answer, recorded, err := svc.ReviewAccount(ctx, staffCaller, "sid", req)
	if err != nil || !recorded || answer.Status != onboarding.StatusRejected || answer.Review != onboarding.ReviewRejected {
		t.Fatalf("reject: %+v, %v, %v", answer, recorded, err)
	}
	if got := strings.Join(staff.calls, ", "); got != "history, mark, read, record" {
		t.Errorf("calls: %s", got)
	}
	if w := staff.writes[0]; w == nil || *w.State.Requirements.DisabledReason != "rejected.fraud" || w.Version != testNow.Unix() {
		t.Errorf("the state recorded: %+v", w)
	}
}

// The intent is written before Stripe is asked: when it cannot be, Stripe
// is not called, and the storage failure is the answer.
func TestNoIntentNoStripeCall(t *testing.T) {
	svc, staff := staffService(t, func(string, string, string) (onboarding.AccountState, error) {
		t.Fatal("Stripe called without an intent in the audit")
		return onboarding.AccountState{}, nil
	})
	staff.beginErr = onboarding.StorageFailed(errors.New("throttled"))
	if _, _, err := svc.ReviewAccount(context.Background(), staffCaller, "sid", onboarding.ReviewRequest{Decision: onboarding.DecisionReject, Reason: "fraud"}); !errors.Is(err, onboarding.ErrStorageUnavailable) {
		t.Errorf("reject: %v, want storage_unavailable", err)
	}
}

func TestApprovalRecordsWithoutStripe(t *testing.T) {
	svc, staff := staffService(t, func(string, string, string) (onboarding.AccountState, error) {
		t.Fatal("an approval called Stripe")
		return onboarding.AccountState{}, nil
	})
	answer, recorded, err := svc.ReviewAccount(context.Background(), staffCaller, "sid", onboarding.ReviewRequest{Decision: onboarding.DecisionApprove, Note: "ok"})
	if err != nil || !recorded || answer.Review != onboarding.ReviewApproved || staff.writes[0] != nil || !staff.rejectMark.IsZero() {
		t.Errorf("approve: %+v, %v, %v; write %+v", answer, recorded, err, staff.writes)
	}
}

func TestReviewAndListInputIsChecked(t *testing.T) {
	svc, staff := staffService(t, func(string, string, string) (onboarding.AccountState, error) { return rejected("fraud"), nil })
	ctx := context.Background()
	for req, param := range map[onboarding.ReviewRequest]string{
		{Decision: "ban"}:                                                       "decision",
		{Decision: onboarding.DecisionReject}:                                   "reason",
		{Decision: onboarding.DecisionReject, Reason: "fraud."}:                 "reason",
		{Decision: onboarding.DecisionApprove, Reason: "fraud"}:                 "reason",
		{Decision: onboarding.DecisionApprove, Note: strings.Repeat("é", 1001)}: "note",
		{Decision: onboarding.DecisionApprove, Note: "a\x1bb"}:                  "note",
	} {
		_, _, err := svc.ReviewAccount(ctx, staffCaller, "sid", req)
		if e, ok := onboarding.AsError(err); !ok || e.Param != param {
			t.Errorf("%+v: %v, want Invalid(%s)", req, err, param)
		}
	}
	if _, _, err := svc.ReviewAccount(ctx, staffCaller, "sid", onboarding.ReviewRequest{Decision: onboarding.DecisionApprove, Note: strings.Repeat("é", 1000) + "\n\t"}); err != nil {
		t.Errorf("a 1000-character note with a line break: %v", err)
	}
	for f, param := range map[onboarding.AccountFilter]string{
		{Status: "bogus"}: "status", {Review: "maybe"}: "review", {Limit: 101}: "limit", {Limit: -1}: "limit",
	} {
		_, err := svc.ListAccounts(ctx, staffCaller, f)
		if e, ok := onboarding.AsError(err); !ok || e.Kind != onboarding.KindInvalid || e.Param != param {
			t.Errorf("%+v: %v, want Invalid(%s)", f, err, param)
		}
	}
	if _, err := svc.ListAccounts(ctx, staffCaller, onboarding.AccountFilter{Limit: 100}); err != nil {
		t.Errorf("a page of 100, the most: %v", err)
	}
	staff.calls = nil
	page, err := svc.ListAccounts(ctx, staffCaller, onboarding.AccountFilter{})
	if err != nil || cap(page.Accounts) != onboarding.DefaultPageSize {
		t.Errorf("default page size: %d, %v", cap(page.Accounts), err)
	}
	if _, err := svc.StaffAccount(ctx, staffCaller, "nobody"); !errors.Is(err, onboarding.ErrNotFound) {
		t.Errorf("unknown user: %v", err)
	}
}

// A note keeps what a reviewer types, and refuses the C1 controls (U+0080 to
// U+009F) as well as C0 and DEL: a log viewer or terminal would act on them.
// A path's user id is any 1 to 256 bytes a token's sub could be.
func TestANoteRefusesControlsAndAUserIDIsAtMost256Bytes(t *testing.T) {
	svc, _ := staffService(t, func(string, string, string) (onboarding.AccountState, error) { return rejected("fraud"), nil })
	ctx := context.Background()
	for note, ok := range map[string]bool{"\u0080": false, "\u009f": false, "\u007f": false, "\u001f": false,
		"no\u00a0break": true, "caf\u00e9 \u00ff": true, "\u007e~": true, " ": true} {
		_, _, err := svc.ReviewAccount(ctx, staffCaller, "sid", onboarding.ReviewRequest{Decision: onboarding.DecisionApprove, Note: note})
		if e, refused := onboarding.AsError(err); ok == (refused && e.Param == "note") {
			t.Errorf("note %+q: %v, want accepted %v", note, err, ok)
		}
	}
	// Bidirectional and zero-width format characters: a note that reads one
	// way in the audit and another in the bytes ("Trojan Source", CVE-2021-42574).
	for _, hidden := range []string{"\u202e", "\u202a", "\u202b", "\u202c", "\u202d", "\u2066", "\u2067", "\u2068", "\u2069",
		"\u200e", "\u200f", "\u061c", "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u180e"} {
		note := "approved\u00a0after " + hidden + "call"
		_, _, err := svc.ReviewAccount(ctx, staffCaller, "sid", onboarding.ReviewRequest{Decision: onboarding.DecisionApprove, Note: note})
		if e, refused := onboarding.AsError(err); !refused || e.Code != "validation_error" || e.Param != "note" {
			t.Errorf("note with %+q: %v, want validation_error on note", hidden, err)
		}
	}
	if err := onboarding.CheckUserID(strings.Repeat("u", 256)); err != nil {
		t.Errorf("a 256-byte user id: %v", err)
	}
	if err := onboarding.CheckUserID(strings.Repeat("u", 257)); err == nil {
		t.Error("a 257-byte user id was accepted")
	}
}

// What staff see of one account: a record written before reviews existed
// is pending, a reviewer is named with the time in UTC, and the lists are
// empty rather than null when nothing happened yet.
func TestStaffAccountShowsTheRecordAsStaffReadIt(t *testing.T) {
	ctx := context.Background()
	svc, staff := staffService(t, nil)
	staff.rec.ReviewState = onboarding.ReviewState{}
	got, err := svc.StaffAccount(ctx, staffCaller, "sid")
	if err != nil {
		t.Fatal(err)
	}
	if got.Review != onboarding.ReviewPending || got.ReviewedBy != nil || got.ReviewedAt != nil || got.FirstLinkAt != nil ||
		got.StatusChanges == nil || got.Reviews == nil || got.Account.ID != "acct_sid" {
		t.Errorf("an account never reviewed: %+v", got)
	}
	at := time.Date(2026, 11, 25, 13, 0, 0, 0, time.FixedZone("CET", 3600))
	staff.rec.ReviewState = onboarding.ReviewState{Review: onboarding.ReviewApproved, ReviewedBy: "stella", ReviewedAt: at}
	staff.rec.Record.FirstLinkAt = at
	got, err = svc.StaffAccount(ctx, staffCaller, "sid")
	if err != nil {
		t.Fatal(err)
	}
	if got.Review != onboarding.ReviewApproved || got.ReviewedBy == nil || *got.ReviewedBy != "stella" ||
		got.ReviewedAt == nil || !got.ReviewedAt.Equal(at) || got.ReviewedAt.Location() != time.UTC ||
		got.FirstLinkAt == nil || !got.FirstLinkAt.Equal(at) {
		t.Errorf("an approved account: %+v", got)
	}
}

// lostRaceFake answers RecordReview as a store whose record another
// decision changed first: nothing recorded, the record as it is now.
type lostRaceFake struct {
	*staffFake
	now onboarding.StaffRecord
}

func (f *lostRaceFake) RecordReview(context.Context, string, onboarding.ReviewDecision, *onboarding.StateWrite) (onboarding.StaffRecord, bool, error) {
	return f.now, false, nil
}

// A decision that lost the race to another answers as if it came second:
// the same decision is the other's answer, and an approval after a
// rejection is refused.
func TestAReviewThatLostTheRaceAnswersAsIfItCameSecond(t *testing.T) {
	ctx := context.Background()
	_, staff := staffService(t, nil)
	p := testPolicy()
	p.StaffGroup = "onboarding-staff"
	won := staff.rec
	won.ReviewState = onboarding.ReviewState{Review: onboarding.ReviewApproved, ReviewedBy: "other", ReviewedAt: testNow}
	svc := onboarding.NewService(&storeFake{}, &connectFake{}, p, onboarding.WithStaffStore(&lostRaceFake{staffFake: staff, now: won}),
		onboarding.WithClock(func() time.Time { return testNow }))
	answer, recorded, err := svc.ReviewAccount(ctx, staffCaller, "sid", onboarding.ReviewRequest{Decision: onboarding.DecisionApprove})
	if err != nil || recorded || answer.Review != onboarding.ReviewApproved || answer.ReviewedBy != "other" {
		t.Errorf("approval after another's approval: %+v, %v, %v; want the other's", answer, recorded, err)
	}
	won.ReviewState.Review = onboarding.ReviewRejected
	svc = onboarding.NewService(&storeFake{}, &connectFake{}, p, onboarding.WithStaffStore(&lostRaceFake{staffFake: staff, now: won}),
		onboarding.WithClock(func() time.Time { return testNow }))
	if _, _, err := svc.ReviewAccount(ctx, staffCaller, "sid", onboarding.ReviewRequest{Decision: onboarding.DecisionApprove}); !errors.Is(err, onboarding.ErrReviewFinal) {
		t.Errorf("approval after another's rejection: %v, want ErrReviewFinal", err)
	}
}
