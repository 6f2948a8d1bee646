package onboarding

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// The Express guide makes the platform responsible for losses on its
// Express accounts: staff vet every account for fraud. These are their use
// cases, for callers in Policy.StaffGroup only.

// Review is where an account stands in the platform's fraud vetting. New
// accounts start as ReviewPending, and enter the review queue (the list
// with Review pending) once their details are submitted to Stripe.
type Review string

const (
	ReviewPending  Review = "pending"
	ReviewApproved Review = "approved"
	ReviewRejected Review = "rejected"
)

// Reviews lists every Review.
var Reviews = []Review{ReviewPending, ReviewApproved, ReviewRejected}

// Decision is what a staff member decided about an account.
type Decision string

const (
	DecisionApprove Decision = "approve"
	DecisionReject  Decision = "reject"
)

// Outcome is the review an account has once the decision is recorded.
func (d Decision) Outcome() Review {
	if d == DecisionReject {
		return ReviewRejected
	}
	return ReviewApproved
}

// RejectReasons are the reasons Stripe's account reject takes.
var RejectReasons = []string{"fraud", "terms_of_service", "other"}

// Cause says what wrote an account's state; each status change records it.
type Cause string

const (
	CauseWebhook Cause = "webhook" // a Connect event
	CauseRefresh Cause = "refresh" // a re-read of Stripe for the user (GET /accounts/me?refresh=true, a refused login link)
	CauseSweep   Cause = "sweep"   // the reconciliation sweep
	CauseStaff   Cause = "staff"   // a staff review (a rejection)
	// CauseAccountInvalid: Stripe answered one of the account's own calls
	// with 403 account_invalid (deleted, or access revoked) and no
	// account.application.deauthorized had arrived.
	CauseAccountInvalid Cause = "account_invalid"
)

// Statuses lists every Status DeriveStatus returns.
var Statuses = []Status{
	StatusOnboarding, StatusPendingVerification, StatusRestricted, StatusRestrictedSoon,
	StatusActive, StatusPlatformPaused, StatusRejected, StatusDeauthorized,
}

// RequirementsDueCount is how many requirements Stripe needs now: those
// currently due and past due (Stripe lists past-due items among the
// currently due ones too; each counts once).
func (s AccountState) RequirementsDueCount() int {
	seen := map[string]bool{}
	for _, l := range [][]string{s.Requirements.CurrentlyDue, s.Requirements.PastDue} {
		for _, r := range l {
			seen[r] = true
		}
	}
	return len(seen)
}

// StatusHistoryEntry is one change of an account's derived status, recorded in
// the write that made it.
type StatusHistoryEntry struct {
	From  Status    `json:"from"`
	To    Status    `json:"to"`
	At    time.Time `json:"at"`
	Cause Cause     `json:"cause"`
}

// ReviewDecision is one staff decision, or one step of a rejection at
// Stripe: an append-only audit item, which no route edits or deletes.
type ReviewDecision struct {
	Decision Decision  `json:"decision"`
	Reason   string    `json:"reason,omitempty"` // a reject's reason (RejectReasons)
	Note     string    `json:"note"`
	Reviewer string    `json:"reviewer"` // the staff member's sub
	At       time.Time `json:"at"`
	// Outcome says what this item records; items stored before outcomes
	// existed read as AuditRecorded.
	Outcome AuditOutcome `json:"outcome"`
	// Attempt names the rejection attempt (one per review call that asks
	// Stripe) the item belongs to: its intent and its outcome share it.
	Attempt string `json:"attempt,omitempty"`
	// StripeCode and StripeMessage are Stripe's refusal (AuditRefused).
	StripeCode    string `json:"stripe_code,omitempty"`
	StripeMessage string `json:"stripe_message,omitempty"`
}

// AuditOutcome is what a review audit item records. A rejection that asks
// Stripe writes its intent first, then one outcome: so an answer lost on
// its way back (or a function that dies waiting) still leaves the intent
// in the history.
type AuditOutcome string

const (
	// AuditIntent: staff decided to reject; Stripe is being asked next.
	AuditIntent AuditOutcome = "intent"
	// AuditRefused: Stripe refused the rejection (StripeCode, StripeMessage),
	// such as a live-mode account whose balance is not zero.
	AuditRefused AuditOutcome = "refused"
	// AuditUnknown: Stripe's answer never came, or was a failure of its
	// own; the account may or may not be rejected at Stripe.
	AuditUnknown AuditOutcome = "unknown"
	// AuditRecorded: the decision took effect and the review reflects it.
	AuditRecorded AuditOutcome = "recorded"
)

// ReviewState is the review an account record holds: the outcome of the
// latest decision, who made it and when (zero while pending).
type ReviewState struct {
	Review     Review
	ReviewedBy string
	ReviewedAt time.Time
}

// StaffRecord is an account record with its review state.
type StaffRecord struct {
	Record AccountRecord
	ReviewState
}

// StaffHistory is what a store keeps about an account for staff: the record
// and its latest status changes and decisions, newest first.
type StaffHistory struct {
	StaffRecord
	StatusChanges []StatusHistoryEntry
	Reviews       []ReviewDecision
	// EmailSharedWith are the other users whose accounts were given the
	// same email (EmailKey).
	EmailSharedWith []string
}

// StateWrite is a state read from Stripe at Version, to store with the
// versioned write SaveState uses.
type StateWrite struct {
	State   AccountState
	Version int64
}

// AccountFilter selects accounts for the staff list. Zero fields select
// everything.
type AccountFilter struct {
	Status       Status
	Review       Review
	CreatedAfter time.Time
	Limit        int
	// Cursor is a previous page's NextCursor: the page goes on from there.
	Cursor string
}

// Page sizes of the staff list.
const (
	DefaultPageSize = 25
	MaxPageSize     = 100
)

// HistoryLimit is how many status changes (and decisions) an account's
// staff view shows, newest first.
const HistoryLimit = 50

// AccountSummary is one account of the staff list.
type AccountSummary struct {
	UserID               string    `json:"user_id"`
	AccountID            string    `json:"account_id"`
	Status               Status    `json:"status"`
	Review               Review    `json:"review"`
	Country              string    `json:"country"`
	ServiceAgreement     string    `json:"service_agreement"`
	CreatedAt            time.Time `json:"created_at"`
	UpdatedAt            time.Time `json:"updated_at"`
	RequirementsDueCount int       `json:"requirements_due_count"`
	// Email is the email the platform gave Stripe for the account (the
	// token's or the request's, at creation or a later update); nil when
	// none is known.
	Email *string `json:"email"`
	// BusinessName and BusinessURL are the business_profile name and url
	// the platform gave Stripe; nil when none is known.
	BusinessName *string `json:"business_name"`
	BusinessURL  *string `json:"business_url"`
	// Signals are the account's risk signals (signals.go); never nil.
	Signals []Signal `json:"signals"`
}

// StaffPage is one page of the staff list (or of the review queue).
type StaffPage struct {
	Accounts []AccountSummary `json:"accounts"`
	// NextCursor continues the list; nil on its last page.
	NextCursor *string `json:"next_cursor"`
}

// StaffStore is what the staff use cases need from storage, beside Store.
type StaffStore interface {
	// ListAccounts answers one page of the accounts f selects, newest first
	// by creation, from an index: never a scan. With f.Review pending it is
	// the review queue instead: the accounts with details submitted and no
	// decision, oldest first by when they entered it. Each summary carries
	// its signals. A page may hold fewer than f.Limit accounts when more
	// follow (NextCursor says so). A cursor the store did not make, or made
	// for other filters, is Invalid("cursor").
	ListAccounts(ctx context.Context, f AccountFilter) (StaffPage, error)
	// StaffHistory returns the user's account, its review state, and its
	// last limit status changes and review decisions, newest first, and
	// the other users whose accounts hold its email (none read when limit
	// is 0); ErrNotFound without an account.
	StaffHistory(ctx context.Context, userID string, limit int) (StaffHistory, error)
	// RecordReview appends d and sets the account's review to d's outcome,
	// in one transaction, unless the review already is that outcome or, for
	// an approval, rejected: then nothing is written and recorded is false.
	// With state, the same transaction stores Stripe's state after a
	// rejection through SaveState's versioned write (cause staff); newer
	// state already stored wins, and the decision is recorded all the same.
	// It returns the record as it stands; ErrNotFound without an account.
	RecordReview(ctx context.Context, userID string, d ReviewDecision, state *StateWrite) (rec StaffRecord, recorded bool, err error)
	// BeginRejection appends the rejection's intent (an AuditIntent item)
	// and marks the account, until then, as being rejected by staff, in one
	// write: a change to rejected stored meanwhile (Stripe's webhook often
	// arrives before the rejection's own write) is recorded with cause
	// staff. RecordReview of the rejection ends the mark.
	BeginRejection(ctx context.Context, userID string, intent ReviewDecision, until time.Time) error
	// RecordRejectionOutcome appends a rejection attempt's outcome that
	// changes no review (AuditRefused, AuditUnknown). A refusal also ends
	// the mark: Stripe rejected nothing. ErrNotFound without an account.
	RecordRejectionOutcome(ctx context.Context, userID string, outcome ReviewDecision) error
}

// RejectionWindow bounds a staff rejection's mark: longer than a Stripe
// call with its retries takes, short enough that a failed rejection's mark
// cannot claim a rejection Stripe makes later on its own.
const RejectionWindow = 2 * time.Minute

// ReviewRequest is the body of POST /admin/accounts/{user_id}/review.
type ReviewRequest struct {
	Decision Decision `json:"decision"`
	Reason   string   `json:"reason"`
	Note     string   `json:"note"`
}

// MaxNoteLength bounds a decision's note, in characters.
const MaxNoteLength = 1000

// ReviewAnswer is the account's review after POST .../review.
type ReviewAnswer struct {
	UserID     string    `json:"user_id"`
	AccountID  string    `json:"account_id"`
	Review     Review    `json:"review"`
	Status     Status    `json:"status"`
	ReviewedBy string    `json:"reviewed_by"`
	ReviewedAt time.Time `json:"reviewed_at"`
}

// StaffAccount is an account as staff see it (GET /admin/accounts/{user_id}).
type StaffAccount struct {
	UserID     string     `json:"user_id"`
	Review     Review     `json:"review"`
	ReviewedBy *string    `json:"reviewed_by"`
	ReviewedAt *time.Time `json:"reviewed_at"`
	// FirstLinkAt is when the first onboarding link was requested (Stripe
	// locks the prefilled KYC details from then); null before.
	FirstLinkAt *time.Time `json:"first_link_at"`
	// StateVersion is the Unix second the stored state describes.
	StateVersion  int64                `json:"state_version"`
	Account       Account              `json:"account"`
	StatusChanges []StatusHistoryEntry `json:"status_changes"`
	Reviews       []ReviewDecision     `json:"reviews"`
	// Email, BusinessName and BusinessURL are as in AccountSummary.
	Email        *string `json:"email"`
	BusinessName *string `json:"business_name"`
	BusinessURL  *string `json:"business_url"`
	// Signals are the account's risk signals, a duplicate email naming the
	// other users; never nil.
	Signals []Signal `json:"signals"`
}

// ErrReviewFinal refuses to approve an account staff rejected: Stripe's
// rejection cannot be undone.
var ErrReviewFinal = &Error{Kind: KindConflict, Code: "account_rejected", Message: "the account was rejected; a rejection is final"}

// CheckStaff admits callers in the staff group: ErrForbidden for anyone else
// with a valid identity. Every staff use case checks it; the HTTP edge checks
// it first too, so that a non-staff caller learns nothing from input errors.
func (s *Service) CheckStaff(c Caller) error {
	switch {
	case c.UserID == "":
		return ErrUnauthorized
	case s.policy.StaffGroup == "" || !slices.Contains(c.Groups, s.policy.StaffGroup):
		return ErrForbidden
	case s.staff == nil:
		return StorageFailed(errNoStaffStore)
	}
	return nil
}

var errNoStaffStore = errors.New("onboarding: the service was built without a staff store (WithStaffStore)")

// CheckUserID refuses a path's user id that no token's sub could be.
func CheckUserID(userID string) error {
	if userID == "" || len(userID) > 256 || !utf8.ValidString(userID) {
		return Invalid("user_id", "user_id must be a platform user id (1 to 256 bytes of UTF-8)")
	}
	return nil
}

// ListAccounts answers one page of the staff list.
func (s *Service) ListAccounts(ctx context.Context, c Caller, f AccountFilter) (StaffPage, error) {
	if err := s.CheckStaff(c); err != nil {
		return StaffPage{}, err
	}
	switch {
	case f.Status != "" && !slices.Contains(Statuses, f.Status):
		return StaffPage{}, Invalid("status", "status must be one of "+joinStatuses(Statuses))
	case f.Review != "" && !slices.Contains(Reviews, f.Review):
		return StaffPage{}, Invalid("review", "review must be pending, approved or rejected")
	case f.Limit < 0 || f.Limit > MaxPageSize:
		return StaffPage{}, Invalid("limit", "limit must be 1 to 100")
	case f.Limit == 0:
		f.Limit = DefaultPageSize
	}
	return s.staff.ListAccounts(ctx, f)
}

func joinStatuses(l []Status) string {
	names := make([]string, len(l))
	for i, st := range l {
		names[i] = string(st)
	}
	return strings.Join(names, ", ")
}

// StaffAccount returns one user's account with its last status changes and
// review decisions.
func (s *Service) StaffAccount(ctx context.Context, c Caller, userID string) (StaffAccount, error) {
	if err := s.CheckStaff(c); err != nil {
		return StaffAccount{}, err
	}
	if err := CheckUserID(userID); err != nil {
		return StaffAccount{}, err
	}
	h, err := s.staff.StaffHistory(ctx, userID, HistoryLimit)
	if err != nil {
		return StaffAccount{}, err
	}
	rec := h.Record
	out := StaffAccount{
		UserID: userID, Review: h.Review, StateVersion: rec.StateVersion, Account: rec.Account(s.now()),
		StatusChanges: h.StatusChanges, Reviews: h.Reviews,
		Signals: Signals(rec.State, h.EmailSharedWith, true),
	}
	out.Email, out.BusinessName, out.BusinessURL = nonEmpty(rec.Email), nonEmpty(rec.BusinessName), nonEmpty(rec.BusinessURL)
	if out.Review == "" {
		out.Review = ReviewPending // a record written before reviews existed
	}
	if h.ReviewedBy != "" {
		out.ReviewedBy, out.ReviewedAt = &h.ReviewedBy, utcPtr(h.ReviewedAt)
	}
	if !rec.FirstLinkAt.IsZero() {
		out.FirstLinkAt = utcPtr(rec.FirstLinkAt)
	}
	if out.StatusChanges == nil {
		out.StatusChanges = []StatusHistoryEntry{}
	}
	if out.Reviews == nil {
		out.Reviews = []ReviewDecision{}
	}
	return out, nil
}

// nonEmpty is s, or nil (JSON null) for "".
func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func utcPtr(t time.Time) *time.Time {
	u := t.UTC()
	return &u
}

// validate checks a review request; it returns it with the note trimmed.
func (r ReviewRequest) validate() (ReviewRequest, error) {
	r.Note = strings.TrimSpace(r.Note)
	switch {
	case r.Decision != DecisionApprove && r.Decision != DecisionReject:
		return r, Invalid("decision", "decision must be approve or reject")
	case r.Decision == DecisionReject && !slices.Contains(RejectReasons, r.Reason):
		return r, Invalid("reason", "a rejection needs a reason: fraud, terms_of_service or other")
	case r.Decision == DecisionApprove && r.Reason != "":
		return r, Invalid("reason", "reason is for rejections only")
	case utf8.RuneCountInString(r.Note) > MaxNoteLength:
		return r, Invalid("note", "note is at most 1000 characters")
	case strings.ContainsFunc(r.Note, isControl):
		return r, Invalid("note", "note must not hold control characters other than line breaks and tabs")
	case strings.ContainsFunc(r.Note, isHiddenFormat):
		return r, Invalid("note", "note must not hold bidirectional or zero-width formatting characters")
	}
	return r, nil
}

// isHiddenFormat: characters that change how a note reads without being
// seen. Unicode's Bidi_Control set (U+061C, U+200E, U+200F, U+202A to
// U+202E, U+2066 to U+2069; https://www.unicode.org/reports/tr9/) reorders
// the text around it, so a staff reader and the audit's bytes disagree
// (CVE-2021-42574, "Trojan Source"); the zero-width characters hide or
// join text invisibly.
func isHiddenFormat(r rune) bool {
	switch r {
	case '\u200b', '\u200c', '\u200d', '\u2060', '\ufeff', '\u180e': // zero width: space, non-joiner, joiner, word joiner, no-break space (BOM), Mongolian vowel separator
		return true
	}
	return unicode.Is(unicode.Bidi_Control, r)
}

func isControl(r rune) bool {
	return (r < 0x20 && r != '\n' && r != '\t' && r != '\r') || r == 0x7f || (r >= 0x80 && r < 0xa0)
}

// ReviewAccount records a staff decision about a user's account. A
// rejection writes its intent, rejects the account at Stripe (a new
// attempt, with its own Idempotency-Key, each call), then records the
// decision and Stripe's new state in one write; a refusal (Stripe's
// message, ProviderRejected) or an unknown outcome is recorded instead.
// Reviewing twice is idempotent: the
// decision the account's review already reflects records nothing and
// answers the review as it stands (recorded false). Approving a rejected
// account is ErrReviewFinal; rejecting is possible after an approval.
func (s *Service) ReviewAccount(ctx context.Context, c Caller, userID string, r ReviewRequest) (ReviewAnswer, bool, error) {
	if err := s.CheckStaff(c); err != nil {
		return ReviewAnswer{}, false, err
	}
	if err := CheckUserID(userID); err != nil {
		return ReviewAnswer{}, false, err
	}
	r, err := r.validate()
	if err != nil {
		return ReviewAnswer{}, false, err
	}
	h, err := s.staff.StaffHistory(ctx, userID, 0)
	if err != nil {
		return ReviewAnswer{}, false, err
	}
	if done, err := s.alreadyReviewed(h.StaffRecord, r.Decision); done || err != nil {
		return s.reviewAnswer(h.StaffRecord), false, err
	}
	d := ReviewDecision{Decision: r.Decision, Reason: r.Reason, Note: r.Note, Reviewer: c.UserID, At: s.now(), Outcome: AuditRecorded}
	var write *StateWrite
	if r.Decision == DecisionReject {
		rec := h.Record
		if rec.State.Deauthorized {
			return ReviewAnswer{}, false, ErrDeauthorized
		}
		// An account Stripe itself rejected needs no second rejection.
		if DeriveStatus(rec.State, rec.ServiceAgreement, s.now()) != StatusRejected {
			d.Attempt = s.newSecret(12)
			if write, err = s.rejectAtStripe(ctx, rec, d); err != nil {
				return ReviewAnswer{}, false, err
			}
			d.At = s.now() // after its intent: the history's order is the items' times
		}
	}
	sr, recorded, err := s.staff.RecordReview(ctx, userID, d, write)
	if err != nil {
		return ReviewAnswer{}, false, err
	}
	if !recorded {
		// Another decision won the race: answer as if this one came second.
		if _, err := s.alreadyReviewed(sr, r.Decision); err != nil {
			return ReviewAnswer{}, false, err
		}
	}
	s.log.InfoContext(ctx, "staff review recorded", "account_id", sr.Record.AccountID,
		"decision", string(r.Decision), "reason", r.Reason, "recorded", recorded)
	return s.reviewAnswer(sr), recorded, nil
}

// rejectAtStripe asks Stripe to reject rec's account as attempt d.Attempt,
// and returns the state to record with the decision. The intent is in the
// audit history before Stripe is called; a refusal or an unknown outcome
// follows it there (a rejection is recorded by RecordReview).
func (s *Service) rejectAtStripe(ctx context.Context, rec AccountRecord, d ReviewDecision) (*StateWrite, error) {
	version := s.now().Unix() // before the call, as a refresh takes it
	intent := d
	intent.Outcome = AuditIntent
	if err := s.staff.BeginRejection(ctx, rec.UserID, intent, s.now().Add(RejectionWindow)); err != nil {
		return nil, err
	}
	state, err := s.connect.RejectAccount(ctx, rec.AccountID, d.Reason, rejectionKey(rec.AccountID, d.Attempt))
	if e, ok := AsError(err); ok && e.Kind == KindInvalid {
		// Stripe's refusal may be of an account already rejected: an
		// earlier attempt whose answer was lost, or another staff member's
		// at the same time. Stripe's docs do not say what a second reject
		// answers, so ask for the account rather than read the message.
		if current, gerr := s.connect.GetAccount(ctx, rec.AccountID); gerr == nil && rejectedAtStripe(current) {
			state, err = current, nil
		}
	}
	if err != nil {
		s.recordRejectionOutcome(ctx, rec, d, err)
		if errors.Is(err, ErrAccountGone) {
			// Stripe's 403 account_invalid: the account is gone or our
			// access revoked, so there is nothing left to reject. Store it
			// as deauthorized, as every other route does.
			return nil, s.goneError(ctx, rec, err, ErrDeauthorized)
		}
		return nil, err
	}
	return &StateWrite{State: state, Version: version}, nil
}

// outcomeWriteTimeout bounds the write of a rejection attempt's outcome
// once the call's own context has ended.
const outcomeWriteTimeout = 3 * time.Second

// rejectionKey is the Idempotency-Key of one rejection attempt. Stripe
// saves the answer of every request that began executing, refusals and
// 500s included, for 24 hours: a key per account and reason would replay
// a refusal (a live-mode balance not yet zero) for a day after its cause
// was gone. Each review call is its own attempt; Stripe's retries of one
// call (stripe-go's) share its key.
func rejectionKey(accountID, attempt string) string {
	return "reject-" + accountID + "-" + attempt
}

// rejectedAtStripe says whether Stripe's state of an account is rejected.
func rejectedAtStripe(st AccountState) bool {
	return st.Requirements.DisabledReason != nil && reasonStatus(*st.Requirements.DisabledReason) == StatusRejected
}

// recordRejectionOutcome appends what became of a rejection attempt that
// rejected nothing we know of, best effort: its intent is in the history
// already, and the caller's answer does not depend on this write.
func (s *Service) recordRejectionOutcome(ctx context.Context, rec AccountRecord, d ReviewDecision, stripeErr error) {
	d.At, d.Outcome = s.now(), AuditUnknown
	if e, ok := AsError(stripeErr); ok && e.Kind != KindProviderUnavailable {
		d.Outcome, d.StripeCode, d.StripeMessage = AuditRefused, e.ProviderCode, e.Message
	}
	// The call's own context may be what ended the attempt (its deadline):
	// the outcome is still worth a short write.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), outcomeWriteTimeout)
	defer cancel()
	if err := s.staff.RecordRejectionOutcome(wctx, rec.UserID, d); err != nil {
		s.log.WarnContext(ctx, "could not record a staff rejection's outcome", "account_id", rec.AccountID,
			"attempt", d.Attempt, "outcome", string(d.Outcome), "error", err)
	}
	s.log.InfoContext(ctx, "staff rejection not confirmed by Stripe", "account_id", rec.AccountID, "attempt", d.Attempt,
		"outcome", string(d.Outcome), "stripe_code", d.StripeCode)
}

// alreadyReviewed says whether rec's review already reflects decision (a
// repeat: nothing to do), or refuses it.
func (s *Service) alreadyReviewed(rec StaffRecord, decision Decision) (bool, error) {
	switch {
	case rec.Review == decision.Outcome():
		return true, nil
	case decision == DecisionApprove && rec.Review == ReviewRejected:
		return false, ErrReviewFinal
	}
	return false, nil
}

func (s *Service) reviewAnswer(sr StaffRecord) ReviewAnswer {
	rec := sr.Record
	review := sr.Review
	if review == "" {
		review = ReviewPending
	}
	return ReviewAnswer{
		UserID: rec.UserID, AccountID: rec.AccountID, Review: review,
		Status:     DeriveStatus(rec.State, rec.ServiceAgreement, s.now()),
		ReviewedBy: sr.ReviewedBy, ReviewedAt: sr.ReviewedAt.UTC(),
	}
}
