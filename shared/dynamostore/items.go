package dynamostore

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/connectexpress/onboarding/shared/onboarding"
)

// Attribute names, in one place: the item structs' tags spell the same
// names, and every condition and update names attributes through these.
const (
	attrPK           = "pk"
	attrExpiresAt    = "expires_at" // the table's TTL attribute, Unix seconds
	attrUserID       = "user_id"
	attrAccountID    = "account_id"
	attrClaimID      = "claim_id"
	attrLeaseUntil   = "lease_until" // a claim's or a refresh token's lease, Unix ms
	attrCreationID   = "creation_id"
	attrAttempt      = "attempt"
	attrAttemptSince = "attempt_since"
	attrSearch       = "search_first"
	attrCreateParams = "create_params"
	attrCountry      = "country"
	attrAgreement    = "service_agreement"
	attrState        = "state"
	attrCapabilities = "capabilities"
	// attrRequested holds the capabilities this service requested for the
	// account, sorted and comma-joined (requestedKey); written once, with
	// the account, and absent when none were (or before they were kept).
	attrRequested    = "requested_capabilities"
	attrStateVersion = "state_version"
	// attrStateDigest is onboarding.StateDigest of the stored state, with
	// its capabilities: a same-second event is compared with it (events.go).
	attrStateDigest  = "state_digest"
	attrDeauthorized = "deauthorized_at"
	attrFirstLinkAt  = "first_link_at"
	attrPrefillUntil = "prefill_until" // Unix ms
	attrPrefillID    = "prefill_id"    // the prefill lease's holder
	attrLeaseID      = "lease_id"      // a refresh token reservation's holder
	attrCompletedBy  = "completed_by"  // the claim that stored the account
	attrCreatedAt    = "created_at"
	attrUpdatedAt    = "updated_at"
	attrUsedAt       = "used_at"
	attrLastUse      = "last_use" // the latest use of a limit, by its id

	// The staff view of an account record (status.go, admin.go).
	// derived_status is the onboarding.Status as of the last state write
	// (deadlines judged at that write's time); status_seq counts the
	// record's status changes, so the history's order never depends on
	// clocks; listed_at orders the staff list (created_at at fixed width,
	// "#", the user id, so that keys are unique and sort as times).
	attrDerivedStatus = "derived_status"
	attrStatusSeq     = "status_seq"
	attrReview        = "review" // onboarding.Review: pending, approved, rejected
	attrListedAt      = "listed_at"
	attrReviewedBy    = "reviewed_by"
	attrReviewedAt    = "reviewed_at"
	// attrSubmittedKey is when the record was first written with Stripe's
	// details_submitted true (fixed-width time, "#", the user id, as
	// listed_at). Never changed once set.
	attrSubmittedKey = "submitted_key"
	// attrQueuedAt is the review-queue index's range key, on every
	// connected record: submitted_key, or notQueued before the details
	// are submitted (queue.go).
	attrQueuedAt = "queued_at"
	// attrRejectingUntil marks a staff rejection on its way to Stripe (Unix
	// ms): a change to rejected that Stripe's webhook stores first is still
	// the staff's.
	attrRejectingUntil = "rejecting_until"
	// The history index's keys, on STATUS# and REVIEW# items only.
	attrHistoryUser = "history_user"
	attrHistoryKey  = "history_key" // "status#<seq>" or "review#<at>#<random>"
)

// claimAttributes are the creation claim's: storing the account removes
// them.
var claimAttributes = []string{attrClaimID, attrLeaseUntil, attrCreationID, attrAttempt, attrAttemptSince, attrSearch, attrCreateParams}

// userItem is a USER#<user id> item: the user's creation claim while the
// account is being created, then the account.
type userItem struct {
	PK     string `dynamodbav:"pk"`
	UserID string `dynamodbav:"user_id,omitempty"`

	ClaimID      string                                   `dynamodbav:"claim_id,omitempty"`
	LeaseUntil   int64                                    `dynamodbav:"lease_until,omitempty"` // Unix ms; 0 once released
	CreationID   string                                   `dynamodbav:"creation_id,omitempty"`
	Attempt      int                                      `dynamodbav:"attempt,omitempty"`
	AttemptSince int64                                    `dynamodbav:"attempt_since,omitempty"` // Unix ms
	Search       bool                                     `dynamodbav:"search_first,omitempty"`
	Params       *jsonDoc[onboarding.CreateAccountParams] `dynamodbav:"create_params,omitempty"`

	AccountID        string                            `dynamodbav:"account_id,omitempty"`
	Country          string                            `dynamodbav:"country,omitempty"`
	ServiceAgreement string                            `dynamodbav:"service_agreement,omitempty"`
	State            *jsonDoc[onboarding.AccountState] `dynamodbav:"state,omitempty"`
	// Capabilities and deauthorization are attributes of their own, outside
	// State: capability.updated changes one key at a time.
	Capabilities   map[string]string `dynamodbav:"capabilities,omitempty"`
	Requested      string            `dynamodbav:"requested_capabilities,omitempty"`
	DeauthorizedAt time.Time         `dynamodbav:"deauthorized_at,omitempty"`
	StateVersion   int64             `dynamodbav:"state_version,omitempty"`
	FirstLinkAt    time.Time         `dynamodbav:"first_link_at,omitempty"`
	PrefillUntil   int64             `dynamodbav:"prefill_until,omitempty"` // Unix ms; 0 once ended
	PrefillID      string            `dynamodbav:"prefill_id,omitempty"`
	CompletedBy    string            `dynamodbav:"completed_by,omitempty"`
	CreatedAt      time.Time         `dynamodbav:"created_at,omitempty"`
	UpdatedAt      time.Time         `dynamodbav:"updated_at,omitempty"`

	// The staff view: keys of the sparse indexes, and the latest decision.
	DerivedStatus string    `dynamodbav:"derived_status,omitempty"`
	StatusSeq     int64     `dynamodbav:"status_seq,omitempty"`
	Review        string    `dynamodbav:"review,omitempty"`
	ListedAt      string    `dynamodbav:"listed_at,omitempty"`
	ReviewedBy    string    `dynamodbav:"reviewed_by,omitempty"`
	ReviewedAt    time.Time `dynamodbav:"reviewed_at,omitempty"`
	QueuedAt      string    `dynamodbav:"queued_at,omitempty"`
	SubmittedKey  string    `dynamodbav:"submitted_key,omitempty"`
	// Email is the email last given to Stripe for the account (email.go).
	Email        string `dynamodbav:"email,omitempty"`
	BusinessName string `dynamodbav:"business_name,omitempty"`
	BusinessURL  string `dynamodbav:"business_url,omitempty"`
	// RejectingUntil is a staff rejection's mark (Unix ms; absent when none).
	RejectingUntil int64 `dynamodbav:"rejecting_until,omitempty"`
}

// statusChangeItem is a STATUS#<user id>#<seq> item: one change of an
// account's derived status, written in the transaction that made it.
type statusChangeItem struct {
	PK           string    `dynamodbav:"pk"`
	UserID       string    `dynamodbav:"user_id"`
	AccountID    string    `dynamodbav:"account_id"`
	From         string    `dynamodbav:"from_status"`
	To           string    `dynamodbav:"to_status"`
	Cause        string    `dynamodbav:"cause"` // onboarding.Cause: webhook, refresh, sweep, staff
	At           time.Time `dynamodbav:"at"`
	StateVersion int64     `dynamodbav:"state_version"`
	Seq          int64     `dynamodbav:"seq"` // the record's status_seq after this change
	HistoryUser  string    `dynamodbav:"history_user"`
	HistoryKey   string    `dynamodbav:"history_key"`
}

// reviewItem is a REVIEW#<user id>#<at>#<random> item: one staff decision,
// or one step of a rejection attempt (its intent, its refusal, its unknown
// outcome), written once (attribute_not_exists), never updated or deleted
// by any code path.
type reviewItem struct {
	PK            string    `dynamodbav:"pk"`
	UserID        string    `dynamodbav:"user_id"`
	AccountID     string    `dynamodbav:"account_id"`
	Decision      string    `dynamodbav:"decision"`
	Reason        string    `dynamodbav:"reason,omitempty"`
	Note          string    `dynamodbav:"note,omitempty"`
	Reviewer      string    `dynamodbav:"reviewer"`
	At            time.Time `dynamodbav:"at"`
	Outcome       string    `dynamodbav:"outcome,omitempty"` // onboarding.AuditOutcome; absent on items older than outcomes: recorded
	Attempt       string    `dynamodbav:"attempt,omitempty"`
	StripeCode    string    `dynamodbav:"stripe_code,omitempty"`
	StripeMessage string    `dynamodbav:"stripe_message,omitempty"`
	HistoryUser   string    `dynamodbav:"history_user"`
	HistoryKey    string    `dynamodbav:"history_key"`
}

// accountIndexItem is an ACCOUNT#<account id> item: which user owns a
// Stripe account, for webhooks.
type accountIndexItem struct {
	PK        string `dynamodbav:"pk"`
	UserID    string `dynamodbav:"user_id"`
	AccountID string `dynamodbav:"account_id"`
}

// tokenItem is a TOKEN#<sha256> item: a refresh token by its hash, single
// use through used_at.
type tokenItem struct {
	PK         string    `dynamodbav:"pk"`
	UserID     string    `dynamodbav:"user_id"`
	AccountID  string    `dynamodbav:"account_id"`
	ExpiresAt  time.Time `dynamodbav:"expires_at,unixtime"`
	LeaseUntil int64     `dynamodbav:"lease_until,omitempty"` // Unix ms; 0 once released
	LeaseID    string    `dynamodbav:"lease_id,omitempty"`
	UsedAt     time.Time `dynamodbav:"used_at,omitempty"`
	IssuedAt   time.Time `dynamodbav:"issued_at,omitempty"` // when its link was minted: a refresh soon after is a bounce
}

// eventItem is an EVENT#<event id> item: a processed webhook event, kept
// past Stripe's retries.
type eventItem struct {
	PK        string    `dynamodbav:"pk"`
	AccountID string    `dynamodbav:"account_id"`
	ExpiresAt time.Time `dynamodbav:"expires_at,unixtime"`
	UpdatedAt time.Time `dynamodbav:"updated_at"`
}

// limitItem is a LIMIT#<key> item: a limit's most recent uses, newest
// first, in s1..s<limit> (Unix ms; the limit says how many, so the struct
// cannot name them: see slot), and the latest use's id.
type limitItem struct {
	PK        string    `dynamodbav:"pk"`
	LastUse   string    `dynamodbav:"last_use"`
	ExpiresAt time.Time `dynamodbav:"expires_at,unixtime"`
}

func slot(i int) string { return fmt.Sprintf("s%d", i) }

func userPK(id string) string { return "USER#" + id }

// jsonDoc keeps a domain value as one JSON string attribute: Stripe's
// account state and the parameters a creation replays byte for byte are
// documents, written and read whole.
type jsonDoc[T any] struct{ V T }

func (d jsonDoc[T]) MarshalDynamoDBAttributeValue() (types.AttributeValue, error) {
	b, err := json.Marshal(d.V)
	return &types.AttributeValueMemberS{Value: string(b)}, err
}

func (d *jsonDoc[T]) UnmarshalDynamoDBAttributeValue(av types.AttributeValue) error {
	s, ok := av.(*types.AttributeValueMemberS)
	if !ok {
		return fmt.Errorf("dynamostore: a JSON document is a string, not %T", av)
	}
	return json.Unmarshal([]byte(s.Value), &d.V)
}

func docOf[T any](v *T) *jsonDoc[T] {
	if v == nil {
		return nil
	}
	return &jsonDoc[T]{V: *v}
}

// stateDoc is the part of a state kept in the "state" document.
func stateDoc(st onboarding.AccountState) jsonDoc[onboarding.AccountState] {
	st.Capabilities, st.Deauthorized = nil, false
	return jsonDoc[onboarding.AccountState]{V: st}
}

// encoding is how items and expression values are written: times in UTC,
// zero times left out like any other empty field.
func encoding(o *attributevalue.EncoderOptions) {
	o.EncodeTime = func(t time.Time) (types.AttributeValue, error) {
		return &types.AttributeValueMemberS{Value: t.UTC().Format(time.RFC3339Nano)}, nil
	}
	o.OmitEmptyTime = true
}

func marshalItem(item any) (map[string]types.AttributeValue, error) {
	return attributevalue.MarshalMapWithOptions(item, encoding)
}

func keyOf(pk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrPK: &types.AttributeValueMemberS{Value: pk}}
}

// Expression parts: names from the constants above, values marshalled
// like items.

func name(attr string) expression.NameBuilder { return expression.Name(attr) }

func value(v any) expression.ValueBuilder {
	return expression.ValueWithOptions(v, func(o *expression.ValueBuilderOptions) {
		o.EncoderOptions = append(o.EncoderOptions, encoding)
	})
}

func exists(attr string) expression.ConditionBuilder { return expression.AttributeExists(name(attr)) }
func missing(attr string) expression.ConditionBuilder {
	return expression.AttributeNotExists(name(attr))
}

// leaseFree holds when the lease in attr (Unix ms) was never taken or ran
// out by now.
func leaseFree(attr string, now time.Time) expression.ConditionBuilder {
	return missing(attr).Or(name(attr).LessThanEqual(value(now.UnixMilli())))
}

// millis is t in Unix ms, 0 for the zero time (so omitempty leaves it out).
func millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func timeOfMillis(ms int64) time.Time {
	if ms <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// claimItem is the item ClaimCreation puts.
func claimItem(userID string, c onboarding.CreationClaim) userItem {
	return userItem{
		PK: userPK(userID), UserID: userID,
		ClaimID: c.ClaimID, LeaseUntil: c.LeaseUntil.UnixMilli(), CreationID: c.CreationID,
		Attempt: c.Attempt, AttemptSince: millis(c.AttemptSince), Search: c.Search, Params: docOf(c.Params),
	}
}

// decodeUser reads a user item: its account, else its claim, else
// ErrNotFound.
func decodeUser(userID string, item map[string]types.AttributeValue) (onboarding.UserRecord, error) {
	u := onboarding.UserRecord{UserID: userID}
	var it userItem
	if err := attributevalue.UnmarshalMap(item, &it); err != nil {
		return u, onboarding.StorageFailed(fmt.Errorf("decode the item of %s: %w", userID, err))
	}
	switch {
	case it.AccountID != "":
		rec := it.account(userID)
		u.Account = &rec
	case it.ClaimID != "":
		u.Claim = &onboarding.CreationClaim{
			ClaimID: it.ClaimID, LeaseUntil: time.UnixMilli(it.LeaseUntil), CreationID: it.CreationID,
			Attempt: it.Attempt, AttemptSince: timeOfMillis(it.AttemptSince), Search: it.Search,
		}
		if it.Params != nil {
			u.Claim.Params = &it.Params.V
		}
	default:
		return u, onboarding.ErrNotFound
	}
	return u, nil
}

// account is the account a user item holds (it.AccountID is set).
func (it userItem) account(userID string) onboarding.AccountRecord {
	rec := onboarding.AccountRecord{
		UserID: userID, AccountID: it.AccountID, Country: it.Country, ServiceAgreement: it.ServiceAgreement,
		StateVersion: it.StateVersion, FirstLinkAt: it.FirstLinkAt, CreatedAt: it.CreatedAt, UpdatedAt: it.UpdatedAt,
		Email: it.Email, BusinessName: it.BusinessName, BusinessURL: it.BusinessURL,
	}
	if it.State != nil {
		rec.State = it.State.V
	}
	if len(it.Capabilities) > 0 {
		rec.State.Capabilities = it.Capabilities
	}
	rec.State.RequestedCapabilities = requestedList(it.Requested)
	rec.State.Deauthorized = !it.DeauthorizedAt.IsZero()
	if it.PrefillUntil > 0 {
		rec.PrefillLease = onboarding.Lease{ID: it.PrefillID, Until: time.UnixMilli(it.PrefillUntil)}
	}
	return rec
}

// decodeAccount reads a user item that must hold an account.
func decodeAccount(userID string, item map[string]types.AttributeValue) (onboarding.AccountRecord, error) {
	u, err := decodeUser(userID, item)
	switch {
	case err != nil:
		return onboarding.AccountRecord{}, err
	case u.Account == nil:
		return onboarding.AccountRecord{}, onboarding.ErrNotFound
	}
	return *u.Account, nil
}

// requestedKey is how the requested capabilities are stored: sorted and
// comma-joined, so that two writers of one set write the same value and a
// condition can compare it.
func requestedKey(caps []string) string {
	sorted := slices.Clone(caps)
	slices.Sort(sorted)
	return strings.Join(slices.Compact(sorted), ",")
}

func requestedList(key string) []string {
	if key == "" {
		return nil
	}
	return strings.Split(key, ",")
}

// withRequested sets the requested capabilities of a record being created
// (none: the attribute stays absent, and the status judges card_payments
// and transfers where listed).
func withRequested(u expression.UpdateBuilder, caps []string) expression.UpdateBuilder {
	if key := requestedKey(caps); key != "" {
		u = u.Set(name(attrRequested), expression.IfNotExists(name(attrRequested), value(key)))
	}
	return u
}
