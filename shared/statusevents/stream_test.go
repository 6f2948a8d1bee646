package statusevents_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"github.com/connectexpress/onboarding/internal/testenv"
	"github.com/connectexpress/onboarding/shared/dynamostore"
	"github.com/connectexpress/onboarding/shared/onboarding"
	"github.com/connectexpress/onboarding/shared/statusevents"
)

// The consumer on real stream records: the store writes to a moto table
// with a NEW_AND_OLD_IMAGES stream, the records come from moto's DynamoDB
// Streams API as Lambda would hand them over, and the events go to moto's
// EventBridge, whose rule delivers them to an SQS queue.

// delivered receives n events from the rule's queue.
func deliveries(t *testing.T, queueURL string, n int) []delivery {
	t.Helper()
	var out []delivery
	for _, body := range testenv.ReceiveMessages(t, queueURL, n) {
		var d delivery
		if err := json.Unmarshal([]byte(body), &d); err != nil {
			t.Fatalf("message %s: %v", body, err)
		}
		out = append(out, d)
	}
	return out
}

type delivery struct {
	Source     string          `json:"source"`
	DetailType string          `json:"detail-type"`
	Detail     json.RawMessage `json:"detail"`
}

// recordingBridge forwards PutEvents to moto's EventBridge and keeps each
// call's entries; failCall makes the call of that number (from 1) fail
// before it reaches moto, throttleCall answers the first entry of that
// call as throttled, as EventBridge does one entry at a time.
type recordingBridge struct {
	next         statusevents.PutEventsAPI
	mu           sync.Mutex
	calls        [][]ebtypes.PutEventsRequestEntry
	published    []ebtypes.PutEventsRequestEntry
	failCall     int
	throttleCall int
}

func (r *recordingBridge) PutEvents(ctx context.Context, in *eventbridge.PutEventsInput, opts ...func(*eventbridge.Options)) (*eventbridge.PutEventsOutput, error) {
	r.mu.Lock()
	r.calls = append(r.calls, in.Entries)
	n := len(r.calls)
	r.mu.Unlock()
	if n == r.failCall {
		return nil, errors.New("connection reset (injected)")
	}
	entries := in.Entries
	throttled := n == r.throttleCall
	if throttled {
		entries = entries[1:]
	}
	out, err := r.next.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: entries}, opts...)
	if err != nil {
		return out, err
	}
	r.mu.Lock()
	r.published = append(r.published, entries...)
	r.mu.Unlock()
	if throttled {
		first := ebtypes.PutEventsResultEntry{ErrorCode: aws.String("ThrottlingException"), ErrorMessage: aws.String("Rate exceeded")}
		out.Entries = append([]ebtypes.PutEventsResultEntry{first}, out.Entries...)
		out.FailedEntryCount++
	}
	return out, nil
}

// streamWorld is a table with a stream on moto, the store on it, and an
// event bus of its own whose rule feeds a queue.
type streamWorld struct {
	store     *dynamostore.Store
	streamARN string
	bus       string
	bridge    *eventbridge.Client
	queueURL  string
}

func newStreamWorld(t *testing.T) *streamWorld {
	t.Helper()
	db := testenv.MotoClient(t) // stops the test unless moto runs (fails in CI)
	w := &streamWorld{}
	ctx := context.Background()
	var table string
	table, w.streamARN = testenv.NewStreamTable(t, db)
	w.store = dynamostore.New(db, table)

	w.bridge = eventbridge.New(eventbridge.Options{Region: "us-east-1", BaseEndpoint: aws.String(testenv.MotoURL(t)),
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")})
	w.bus = "platform-" + testenv.RandomID(8)
	if _, err := w.bridge.CreateEventBus(ctx, &eventbridge.CreateEventBusInput{Name: &w.bus}); err != nil {
		t.Fatal(err)
	}
	var queueARN string
	w.queueURL, queueARN = testenv.NewQueue(t, w.bus)
	pattern, _ := json.Marshal(map[string][]string{"source": {statusevents.Source}, "detail-type": {statusevents.DetailType}})
	if _, err := w.bridge.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("status"), EventBusName: &w.bus, EventPattern: aws.String(string(pattern))}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.bridge.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("status"), EventBusName: &w.bus,
		Targets: []ebtypes.Target{{Id: aws.String("queue"), Arn: &queueARN}}}); err != nil {
		t.Fatal(err)
	}
	return w
}

var streamT0 = time.Date(2026, time.March, 2, 9, 0, 0, 0, time.UTC)

func (w *streamWorld) create(t *testing.T, user, account string, at time.Time) {
	t.Helper()
	ctx := context.Background()
	claim := onboarding.CreationClaim{ClaimID: "claim-" + user, CreationID: "cr-" + user, LeaseUntil: at.Add(time.Minute), AttemptSince: at}
	if err := w.store.ClaimCreation(ctx, user, claim, at); err != nil {
		t.Fatal(err)
	}
	rec := onboarding.AccountRecord{UserID: user, AccountID: account, Country: "US", ServiceAgreement: onboarding.AgreementFull,
		StateVersion: at.Unix(), CreatedAt: at, UpdatedAt: at}
	if err := w.store.CompleteCreation(ctx, rec, claim.ClaimID); err != nil {
		t.Fatal(err)
	}
}

// apply stores a webhook's snapshot of account, sent at `at`.
func (w *streamWorld) apply(t *testing.T, event, user, account string, state onboarding.AccountState, at time.Time) onboarding.EventOutcome {
	t.Helper()
	out, err := w.store.ApplyEvent(context.Background(), onboarding.StateChange{
		EventID: event, UserID: user, AccountID: account, Kind: onboarding.ChangeSnapshot, Version: at.Unix(),
		State: state, Country: "US", ServiceAgreement: onboarding.AgreementFull, Now: at, RetainUntil: at.Add(24 * time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

var (
	deadline     = streamT0.Add(30 * 24 * time.Hour)
	dueSoon      = onboarding.AccountState{DetailsSubmitted: true, ChargesEnabled: true, PayoutsEnabled: true, Requirements: onboarding.Requirements{CurrentlyDue: []string{"individual.id_number"}, CurrentDeadline: &deadline}}
	enabledState = onboarding.AccountState{DetailsSubmitted: true, ChargesEnabled: true, PayoutsEnabled: true, Capabilities: map[string]string{"transfers": "active"}}
)

// history writes two accounts' lives: the status changes it makes, in
// order, are wantChanges.
func (w *streamWorld) history(t *testing.T) {
	t.Helper()
	w.create(t, "alice", "acct_A", streamT0)
	w.create(t, "bob", "acct_B", streamT0.Add(time.Second))
	if out := w.apply(t, "evt_1", "alice", "acct_A", dueSoon, streamT0.Add(10*time.Second)); out != onboarding.OutcomeApplied {
		t.Fatalf("evt_1: %s", out)
	}
	// A newer snapshot that changes no status: a write, and no event.
	sameStatus := dueSoon
	sameStatus.Requirements.EventuallyDue = []string{"company.tax_id"}
	w.apply(t, "evt_2", "alice", "acct_A", sameStatus, streamT0.Add(20*time.Second))
	w.apply(t, "evt_3", "bob", "acct_B", enabledState, streamT0.Add(30*time.Second))
	// Older news is refused: no write, no event.
	if out := w.apply(t, "evt_old", "bob", "acct_B", onboarding.AccountState{}, streamT0.Add(5*time.Second)); out != onboarding.OutcomeSuperseded {
		t.Fatalf("evt_old: %s, want superseded", out)
	}
	w.apply(t, "evt_4", "alice", "acct_A", enabledState, streamT0.Add(40*time.Second))
}

type change struct{ Account, From, To string }

var wantChanges = []change{
	{"acct_A", "", "onboarding"},
	{"acct_B", "", "onboarding"},
	{"acct_A", "onboarding", "restricted_soon"},
	{"acct_B", "onboarding", "active"},
	{"acct_A", "restricted_soon", "active"},
}

func changeOf(t *testing.T, detail string) change {
	t.Helper()
	var d map[string]any
	if err := json.Unmarshal([]byte(detail), &d); err != nil {
		t.Fatal(err)
	}
	// The contract's detail fields, all of them, always.
	for _, k := range []string{"user_id", "account_id", "previous_status", "status", "charges_enabled", "payouts_enabled",
		"requirements_due_count", "current_deadline", "occurred_at"} {
		if _, ok := d[k]; !ok {
			t.Errorf("detail %s has no %s", detail, k)
		}
	}
	from, _ := d["previous_status"].(string)
	return change{Account: fmt.Sprint(d["account_id"]), From: from, To: fmt.Sprint(d["status"])}
}

func perAccount(changes []change) map[string][]change {
	out := map[string][]change{}
	for _, c := range changes {
		out[c.Account] = append(out[c.Account], c)
	}
	return out
}

func TestConsumerPublishesEachStatusChangeOfRealStreamRecords(t *testing.T) {
	w := newStreamWorld(t)
	w.history(t)
	records := testenv.StreamRecords(t, w.streamARN)
	if len(records) < len(wantChanges) {
		t.Fatalf("%d stream records", len(records))
	}
	var logs bytes.Buffer
	rec := &recordingBridge{next: w.bridge, throttleCall: 2}
	consumer := statusevents.NewConsumer(statusevents.NewEventBridge(rec, w.bus), slog.New(slog.NewJSONHandler(&logs, nil)))
	resp, err := consumer.Handle(context.Background(), events.DynamoDBEvent{Records: records})
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("Handle: %+v %v; logs %s", resp, err, logs.String())
	}

	var got []change
	for _, e := range rec.published {
		if aws.ToString(e.Source) != statusevents.Source || aws.ToString(e.DetailType) != statusevents.DetailType || aws.ToString(e.EventBusName) != w.bus {
			t.Errorf("entry %s / %s on %s", aws.ToString(e.Source), aws.ToString(e.DetailType), aws.ToString(e.EventBusName))
		}
		got = append(got, changeOf(t, aws.ToString(e.Detail)))
	}
	// The throttled entry went again after the rest of its call: other
	// accounts may pass it, its own account's next change may not.
	if g, w := perAccount(got), perAccount(wantChanges); !maps.EqualFunc(g, w, slices.Equal) {
		t.Errorf("published, by account\n%v\nwant\n%v", g, w)
	}
	// EventBridge does not order one call's entries: an account appears
	// once per call at most, so its events arrive in order.
	for i, call := range rec.calls {
		seen := map[string]bool{}
		for _, e := range call {
			a := changeOf(t, aws.ToString(e.Detail)).Account
			if seen[a] {
				t.Errorf("call %d holds two events of %s", i+1, a)
			}
			seen[a] = true
		}
	}
	// The throttled entry was sent again, and nothing twice.
	if len(rec.calls) < 3 {
		t.Errorf("%d PutEvents calls: the throttled entry was not retried", len(rec.calls))
	}

	// What the platform's rule on the bus received.
	var delivered []change
	for _, d := range deliveries(t, w.queueURL, len(wantChanges)) {
		if d.Source != statusevents.Source || d.DetailType != statusevents.DetailType {
			t.Errorf("delivered %s / %s", d.Source, d.DetailType)
		}
		delivered = append(delivered, changeOf(t, string(d.Detail)))
	}
	slices.SortFunc(delivered, func(a, b change) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
	want := slices.Clone(wantChanges)
	slices.SortFunc(want, func(a, b change) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
	if !slices.Equal(delivered, want) {
		t.Errorf("the rule delivered\n%v\nwant\n%v", delivered, want)
	}
}

func TestConsumerReportsTheFirstRecordNotPublishedAndTheRetryKeepsOrder(t *testing.T) {
	w := newStreamWorld(t)
	w.history(t)
	records := testenv.StreamRecords(t, w.streamARN)
	// The second PutEvents call fails: the batch answers the record of the
	// first change it did not publish, and Lambda hands the batch back
	// from there.
	rec := &recordingBridge{next: w.bridge, failCall: 2}
	consumer := statusevents.NewConsumer(statusevents.NewEventBridge(rec, w.bus), slog.New(slog.NewTextHandler(io.Discard, nil)))
	resp, err := consumer.Handle(context.Background(), events.DynamoDBEvent{Records: records})
	if err != nil || len(resp.BatchItemFailures) != 1 {
		t.Fatalf("Handle: %+v %v, want one batch item failure", resp, err)
	}
	failed := slices.IndexFunc(records, func(r events.DynamoDBEventRecord) bool {
		return r.Change.SequenceNumber == resp.BatchItemFailures[0].ItemIdentifier
	})
	if failed < 0 {
		t.Fatalf("the failure names %q, no record of the batch", resp.BatchItemFailures[0].ItemIdentifier)
	}
	firstTry := len(rec.published)
	if firstTry == 0 || firstTry >= len(wantChanges) {
		t.Fatalf("%d events published before the failure", firstTry)
	}
	resp, err = consumer.Handle(context.Background(), events.DynamoDBEvent{Records: records[failed:]})
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("retry: %+v %v", resp, err)
	}
	var got []change
	for _, e := range rec.published {
		got = append(got, changeOf(t, aws.ToString(e.Detail)))
	}
	// Every change once, in order: nothing lost, nothing out of order.
	if !slices.Equal(got, wantChanges) {
		t.Errorf("published across the two tries\n%v\nwant\n%v", got, wantChanges)
	}
	deliveries(t, w.queueURL, len(wantChanges))
}

func TestConsumerHandsBackARecordItCannotRead(t *testing.T) {
	w := newStreamWorld(t)
	w.history(t)
	records := testenv.StreamRecords(t, w.streamARN)
	// A user's record whose state is not what the store writes.
	bad := slices.IndexFunc(records, func(r events.DynamoDBEventRecord) bool {
		_, hasState := r.Change.NewImage["state"]
		return r.EventName == "MODIFY" && strings.HasPrefix(r.Change.Keys["pk"].String(), dynamostore.UserKeyPrefix) && hasState
	})
	if bad < 0 {
		t.Fatal("no update of a user's record with a state in the stream")
	}
	corrupt := records[bad]
	corrupt.Change.NewImage = map[string]events.DynamoDBAttributeValue{}
	for k, v := range records[bad].Change.NewImage {
		corrupt.Change.NewImage[k] = v
	}
	corrupt.Change.NewImage["state"] = events.NewStringAttribute("{not json")
	batch := slices.Clone(records)
	batch[bad] = corrupt
	rec := &recordingBridge{next: w.bridge}
	consumer := statusevents.NewConsumer(statusevents.NewEventBridge(rec, w.bus), slog.New(slog.NewTextHandler(io.Discard, nil)))
	resp, err := consumer.Handle(context.Background(), events.DynamoDBEvent{Records: batch})
	if err != nil || len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != corrupt.Change.SequenceNumber {
		t.Fatalf("Handle: %+v %v, want the unreadable record %s handed back", resp, err, corrupt.Change.SequenceNumber)
	}
}
