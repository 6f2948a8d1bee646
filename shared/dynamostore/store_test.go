package dynamostore_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strconv"
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

// Every test here runs on each engine of testenv.Engines, every case on a
// fresh table, with explicit times: nothing sleeps, nothing depends on the
// clock.

const (
	alice     = "alice"
	bob       = "bob"
	acctAlice = "acct_alice"
	acctOther = "acct_other"
	claim1    = "claim-1"
	claim2    = "claim-2"
	lease     = 30 * time.Second
	retention = 30 * 24 * time.Hour
)

// t0 is when alice's account was created; vBase its first state version.
var (
	t0    = time.Date(2024, time.May, 1, 12, 0, 0, 0, time.UTC)
	vBase = t0.Unix()
)

// harness is a store on a fresh table of one engine, with the raw client
// for reading items as DynamoDB holds them.
type harness struct {
	db    dynamostore.Client
	table string
	store *dynamostore.Store
}

func newHarness(t *testing.T, e testenv.Engine) *harness {
	t.Helper()
	db := e.Client(t)
	table := testenv.NewTable(t, db)
	return &harness{db: db, table: table, store: dynamostore.New(db, table)}
}

// eachEngine runs f as one subtest per engine.
func eachEngine(t *testing.T, f func(t *testing.T, e testenv.Engine)) {
	for _, e := range testenv.Engines {
		t.Run(e.Name, func(t *testing.T) { f(t, e) })
	}
}

// storeCase is one behaviour, run on its own fresh table.
type storeCase struct {
	name string
	run  func(t *testing.T, h *harness)
}

func runCases(t *testing.T, cases []storeCase) {
	eachEngine(t, func(t *testing.T, e testenv.Engine) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) { tc.run(t, newHarness(t, e)) })
		}
	})
}

// ---- fixtures ----

func createParams(user string) *onboarding.CreateAccountParams {
	return &onboarding.CreateAccountParams{
		Prefill: onboarding.Prefill{
			Email:        user + "@example.com",
			BusinessType: "individual",
			BusinessProfile: onboarding.BusinessProfile{
				URL: "https://platform.example/u/" + user, ProductDescription: "Rides in town",
				Name: "Rides by " + user, MCC: "4121",
			},
		},
		Country:          "US",
		Capabilities:     []string{"card_payments", "transfers"},
		ServiceAgreement: "full",
		PlatformUserID:   user,
		CreationID:       creationAlice,
	}
}

// creationAlice names alice's creation in her claims and her account's
// metadata.
const creationAlice = "creation-alice"

func newClaim(id string, leaseUntil time.Time, attempt int) onboarding.CreationClaim {
	return onboarding.CreationClaim{
		ClaimID: id, LeaseUntil: leaseUntil, CreationID: creationAlice, Attempt: attempt,
		AttemptSince: t0.Add(-time.Second), Params: createParams(alice),
	}
}

// stateOnboarding has every field of AccountState set, so a round trip
// proves each of them.
func stateOnboarding() onboarding.AccountState {
	reason := "requirements.past_due"
	deadline := time.Date(2024, time.June, 1, 0, 0, 0, 0, time.UTC)
	future := time.Date(2024, time.September, 30, 23, 59, 59, 0, time.UTC)
	return onboarding.AccountState{
		DetailsSubmitted: true,
		ChargesEnabled:   false,
		PayoutsEnabled:   true,
		Requirements: onboarding.Requirements{
			CurrentlyDue:        []string{"individual.verification.document", "external_account"},
			EventuallyDue:       []string{"individual.id_number"},
			PastDue:             []string{"tos_acceptance.date"},
			PendingVerification: []string{"individual.dob.day"},
			DisabledReason:      &reason,
			CurrentDeadline:     &deadline,
			Errors: []onboarding.RequirementError{{
				Code: "verification_document_expired", Reason: "The document has expired.", Requirement: "individual.verification.document",
			}},
		},
		FutureRequirements: &onboarding.Requirements{
			CurrentlyDue:        []string{},
			EventuallyDue:       []string{"company.tax_id"},
			PastDue:             []string{},
			PendingVerification: []string{},
			CurrentDeadline:     &future,
			Errors:              []onboarding.RequirementError{{Code: "invalid_tax_id", Reason: "Invalid tax ID.", Requirement: "company.tax_id"}},
		},
		Capabilities: map[string]string{"card_payments": "inactive", "transfers": "pending"},
	}
}

func stateActive() onboarding.AccountState {
	return onboarding.AccountState{
		DetailsSubmitted: true, ChargesEnabled: true, PayoutsEnabled: true,
		Requirements: onboarding.Requirements{
			CurrentlyDue: []string{}, EventuallyDue: []string{}, PastDue: []string{}, PendingVerification: []string{},
		},
		Capabilities: map[string]string{"card_payments": "active", "transfers": "active"},
	}
}

func stateRejected() onboarding.AccountState {
	reason := "rejected.fraud"
	return onboarding.AccountState{
		DetailsSubmitted: true,
		Requirements:     onboarding.Requirements{DisabledReason: &reason},
		Capabilities:     map[string]string{"card_payments": "inactive", "transfers": "inactive"},
	}
}

// baseRecord is alice's account as CompleteCreation stores it.
func baseRecord() onboarding.AccountRecord {
	return onboarding.AccountRecord{
		UserID: alice, AccountID: acctAlice, Country: "US", ServiceAgreement: "full",
		State: stateOnboarding(), StateVersion: vBase,
		CreatedAt: t0, UpdatedAt: t0.Add(1500 * time.Millisecond),
	}
}

// ---- harness helpers ----

// claimCreation claims as the core does: a conflict under which the stored
// claim is this one is this very write, retried by the SDK after its answer
// was lost (moto under load answers late), not a race it lost.
func claimCreation(ctx context.Context, store *dynamostore.Store, user string, c onboarding.CreationClaim, now time.Time) error {
	err := store.ClaimCreation(ctx, user, c, now)
	if errors.Is(err, onboarding.ErrConflict) {
		if u, gerr := store.GetUser(ctx, user); gerr == nil && u.Account == nil && u.Claim != nil && u.Claim.ClaimID == c.ClaimID {
			return nil
		}
	}
	return err
}

func (h *harness) claim(t *testing.T, user string, c onboarding.CreationClaim, now time.Time) {
	t.Helper()
	if err := claimCreation(context.Background(), h.store, user, c, now); err != nil {
		t.Fatalf("ClaimCreation(%s, %s): %v", user, c.ClaimID, err)
	}
}

func (h *harness) complete(t *testing.T, rec onboarding.AccountRecord, claimID string) {
	t.Helper()
	if err := h.store.CompleteCreation(context.Background(), rec, claimID); err != nil {
		t.Fatalf("CompleteCreation(%s): %v", claimID, err)
	}
}

// withAccount stores alice's account through the normal claim + complete.
func (h *harness) withAccount(t *testing.T) {
	t.Helper()
	h.claim(t, alice, newClaim(claim1, t0.Add(lease), 0), t0)
	h.complete(t, baseRecord(), claim1)
}

// setupAccount is withAccount in the shape of a case's setup.
func setupAccount(t *testing.T, h *harness) { h.withAccount(t) }

func (h *harness) user(t *testing.T, user string) onboarding.UserRecord {
	t.Helper()
	u, err := h.store.GetUser(context.Background(), user)
	if err != nil {
		t.Fatalf("GetUser(%s): %v", user, err)
	}
	return u
}

// wantAccount asserts the stored account equals want in every field.
func (h *harness) wantAccount(t *testing.T, want onboarding.AccountRecord) {
	t.Helper()
	u := h.user(t, want.UserID)
	if u.Claim != nil {
		t.Errorf("GetUser(%s).Claim = %+v, want none once the account exists", want.UserID, *u.Claim)
	}
	if u.Account == nil {
		t.Fatalf("GetUser(%s).Account = nil, want %+v", want.UserID, want)
	}
	sameRecord(t, "stored account", *u.Account, want)
}

func (h *harness) wantNoUser(t *testing.T, user string) {
	t.Helper()
	if u, err := h.store.GetUser(context.Background(), user); !errors.Is(err, onboarding.ErrNotFound) {
		t.Fatalf("GetUser(%s) = %+v, %v; want ErrNotFound", user, u, err)
	}
}

func (h *harness) wantOwner(t *testing.T, accountID, user string) {
	t.Helper()
	got, err := h.store.FindUserByAccount(context.Background(), accountID)
	if err != nil || got != user {
		t.Fatalf("FindUserByAccount(%s) = %q, %v; want %q", accountID, got, err, user)
	}
}

func (h *harness) wantNoOwner(t *testing.T, accountID string) {
	t.Helper()
	if got, err := h.store.FindUserByAccount(context.Background(), accountID); !errors.Is(err, onboarding.ErrNotFound) {
		t.Fatalf("FindUserByAccount(%s) = %q, %v; want ErrNotFound", accountID, got, err)
	}
}

// raw reads an item as the engine holds it.
func (h *harness) raw(t *testing.T, pk string) map[string]types.AttributeValue {
	t.Helper()
	out, err := h.db.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName: &h.table, ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}},
	})
	if err != nil {
		t.Fatalf("GetItem(%s): %v", pk, err)
	}
	return out.Item
}

// wantExpiresAt asserts item pk carries the TTL attribute as a Number of
// Unix seconds.
func (h *harness) wantExpiresAt(t *testing.T, pk string, want time.Time) {
	t.Helper()
	item := h.raw(t, pk)
	if len(item) == 0 {
		t.Fatalf("item %s does not exist", pk)
	}
	v, ok := item["expires_at"].(*types.AttributeValueMemberN)
	if !ok {
		t.Fatalf("item %s: expires_at = %#v, want a Number (the table's TTL attribute)", pk, item["expires_at"])
	}
	if v.Value != strconv.FormatInt(want.Unix(), 10) {
		t.Errorf("item %s: expires_at = %s, want %d (%s)", pk, v.Value, want.Unix(), want)
	}
}

// sameRecord compares records field by field; times by instant.
func sameRecord(t *testing.T, what string, got, want onboarding.AccountRecord) {
	t.Helper()
	got, want = normalized(got), normalized(want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
		if !reflect.DeepEqual(got.State, want.State) {
			t.Errorf("%s state:\n got %s\nwant %s", what, describeState(got.State), describeState(want.State))
		}
	}
}

func normalized(r onboarding.AccountRecord) onboarding.AccountRecord {
	r.CreatedAt, r.UpdatedAt, r.FirstLinkAt, r.PrefillLease.Until = r.CreatedAt.UTC(), r.UpdatedAt.UTC(), r.FirstLinkAt.UTC(), r.PrefillLease.Until.UTC()
	r.State.Requirements = normalizedReq(r.State.Requirements)
	if r.State.FutureRequirements != nil {
		f := normalizedReq(*r.State.FutureRequirements)
		r.State.FutureRequirements = &f
	}
	return r
}

func normalizedReq(q onboarding.Requirements) onboarding.Requirements {
	if q.CurrentDeadline != nil {
		d := q.CurrentDeadline.UTC()
		q.CurrentDeadline = &d
	}
	return q
}

func describeState(s onboarding.AccountState) string {
	out := fmt.Sprintf("%+v", s)
	if s.Requirements.DisabledReason != nil {
		out += " disabled_reason=" + *s.Requirements.DisabledReason
	}
	if s.Requirements.CurrentDeadline != nil {
		out += " deadline=" + s.Requirements.CurrentDeadline.String()
	}
	if f := s.FutureRequirements; f != nil {
		out += fmt.Sprintf(" future=%+v", *f)
	}
	return out
}

// ---- ClaimCreation ----

func TestClaimCreationGrantsOneLeaseAtATime(t *testing.T) {
	type attempt struct {
		claimID string
		now     time.Time
		want    error // nil or onboarding.ErrConflict
	}
	cases := []struct {
		name     string
		setup    func(t *testing.T, h *harness)
		attempts []attempt
		holder   string // the claim id GetUser must show afterwards; "" when an account is stored
	}{
		{
			name:     "first claim on a fresh user succeeds",
			attempts: []attempt{{claim1, t0, nil}},
			holder:   claim1,
		},
		{
			name: "second claim while the lease is live conflicts",
			attempts: []attempt{
				{claim1, t0, nil},
				{claim2, t0.Add(lease - time.Millisecond), onboarding.ErrConflict},
			},
			holder: claim1,
		},
		{
			name: "the holder cannot claim twice either",
			attempts: []attempt{
				{claim1, t0, nil},
				{claim1, t0.Add(time.Second), onboarding.ErrConflict},
			},
			holder: claim1,
		},
		{
			name: "claim after the lease expired succeeds and takes over",
			attempts: []attempt{
				{claim1, t0, nil},
				{claim2, t0.Add(lease + time.Millisecond), nil},
			},
			holder: claim2,
		},
		{
			name:  "no claim once the account is stored, even long after the lease",
			setup: func(t *testing.T, h *harness) { h.withAccount(t) },
			attempts: []attempt{
				{claim2, t0.Add(time.Second), onboarding.ErrConflict},
				{claim2, t0.Add(365 * 24 * time.Hour), onboarding.ErrConflict},
			},
		},
	}
	eachEngine(t, func(t *testing.T, e testenv.Engine) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				h := newHarness(t, e)
				if tc.setup != nil {
					tc.setup(t, h)
				}
				for i, a := range tc.attempts {
					// Each claim leases for `lease` from its own now.
					err := h.store.ClaimCreation(context.Background(), alice, newClaim(a.claimID, a.now.Add(lease), 0), a.now)
					if !errors.Is(err, a.want) || (a.want == nil && err != nil) {
						t.Fatalf("attempt %d: ClaimCreation(%s at +%s) = %v, want %v", i, a.claimID, a.now.Sub(t0), err, a.want)
					}
				}
				u := h.user(t, alice)
				if tc.holder == "" {
					if u.Account == nil || u.Claim != nil {
						t.Fatalf("GetUser = %+v, want the stored account and no claim", u)
					}
					sameRecord(t, "account after refused claims", *u.Account, baseRecord())
					return
				}
				if u.Claim == nil || u.Claim.ClaimID != tc.holder {
					t.Fatalf("GetUser.Claim = %+v, want claim %s", u.Claim, tc.holder)
				}
			})
		}
	})
}

func TestClaimCreationConcurrentClaimsYieldExactlyOneWinner(t *testing.T) {
	const claimers = 20
	eachEngine(t, func(t *testing.T, e testenv.Engine) {
		h := newHarness(t, e)
		errs := make([]error, claimers)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range claimers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				errs[i] = h.store.ClaimCreation(context.Background(), alice, newClaim(fmt.Sprintf("claim-%02d", i), t0.Add(lease), 0), t0)
			}()
		}
		close(start)
		wg.Wait()

		winner := -1
		for i, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Errorf("claims %d and %d both won", winner, i)
			case err == nil:
				winner = i
			case !errors.Is(err, onboarding.ErrConflict):
				t.Errorf("claim %d: %v, want nil or ErrConflict", i, err)
			}
		}
		if winner < 0 {
			t.Fatalf("no claim won: %v", errs)
		}
		if u := h.user(t, alice); u.Claim == nil || u.Claim.ClaimID != fmt.Sprintf("claim-%02d", winner) {
			t.Errorf("stored claim = %+v, want the winner's claim-%02d", u.Claim, winner)
		}
	})
}

// ---- GetUser ----

func TestGetUserReturnsWhatIsStored(t *testing.T) {
	runCases(t, []storeCase{
		{"unknown user is not found", func(t *testing.T, h *harness) {
			h.wantNoUser(t, alice)
		}},
		{"another user's record is not returned", func(t *testing.T, h *harness) {
			h.withAccount(t)
			h.wantNoUser(t, bob)
		}},
		{"claimed user returns the claim with its params", func(t *testing.T, h *harness) {
			leaseUntil := t0.Add(lease + 250*time.Millisecond)
			h.claim(t, alice, newClaim(claim1, leaseUntil, 3), t0)
			u := h.user(t, alice)
			if u.UserID != alice || u.Account != nil || u.Claim == nil {
				t.Fatalf("GetUser = %+v, want alice's claim and no account", u)
			}
			c := *u.Claim
			if c.ClaimID != claim1 || c.Attempt != 3 || !c.LeaseUntil.Equal(leaseUntil) || c.CreationID != creationAlice ||
				!c.AttemptSince.Equal(t0.Add(-time.Second)) || c.Search {
				t.Errorf("claim = %+v, want {%s attempt 3 lease %s creation %s since %s, not searching}", c, claim1, leaseUntil, creationAlice, t0.Add(-time.Second))
			}
			if !reflect.DeepEqual(c.Params, createParams(alice)) {
				t.Errorf("claim params:\n got %+v\nwant %+v", c.Params, createParams(alice))
			}
		}},
		{"claim without params round-trips as none", func(t *testing.T, h *harness) {
			c := newClaim(claim1, t0.Add(lease), 0)
			c.Params = nil
			h.claim(t, alice, c, t0)
			if u := h.user(t, alice); u.Claim == nil || u.Claim.Params != nil {
				t.Fatalf("GetUser.Claim = %+v, want a claim with nil Params", u.Claim)
			}
		}},
		{"completed user returns the account with every field", func(t *testing.T, h *harness) {
			h.withAccount(t)
			u := h.user(t, alice)
			if u.UserID != alice {
				t.Errorf("UserID = %q, want %q", u.UserID, alice)
			}
			h.wantAccount(t, baseRecord())
		}},
		{"a state stored before requirement errors were kept reads with none", func(t *testing.T, h *harness) {
			h.withAccount(t)
			old := `{"details_submitted":true,"charges_enabled":false,"payouts_enabled":true,` +
				`"requirements":{"currently_due":["external_account"],"eventually_due":[],"past_due":[],"pending_verification":[],"disabled_reason":null,"current_deadline":null},` +
				`"future_requirements":{"currently_due":[],"eventually_due":[],"past_due":[],"pending_verification":[],"disabled_reason":null,"current_deadline":null}}`
			_, err := h.db.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{
				TableName: &h.table, Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "USER#" + alice}},
				UpdateExpression:          aws.String("SET #s = :s"),
				ExpressionAttributeNames:  map[string]string{"#s": "state"},
				ExpressionAttributeValues: map[string]types.AttributeValue{":s": &types.AttributeValueMemberS{Value: old}},
			})
			if err != nil {
				t.Fatal(err)
			}
			u := h.user(t, alice)
			if u.Account == nil || u.Account.State.Requirements.Errors != nil || !u.Account.State.DetailsSubmitted ||
				len(u.Account.State.Requirements.CurrentlyDue) != 1 {
				t.Fatalf("an old state read as %+v", u.Account)
			}
			a := u.Account.Account(t0)
			if a.Requirements.Errors == nil || len(a.Requirements.Errors) != 0 || a.FutureRequirements.Errors == nil {
				t.Errorf("the old record renders errors %v and %v, want [] for both", a.Requirements.Errors, a.FutureRequirements.Errors)
			}
		}},
		{"a searching claim round-trips", func(t *testing.T, h *harness) {
			c := newClaim(claim1, t0.Add(lease), 1)
			c.Search = true
			h.claim(t, alice, c, t0)
			if u := h.user(t, alice); u.Claim == nil || !u.Claim.Search {
				t.Fatalf("GetUser.Claim = %+v, want it searching", u.Claim)
			}
		}},
		{"the prefill lease and first link time round-trip", func(t *testing.T, h *harness) {
			h.withAccount(t)
			until := t0.Add(20*time.Second + 250*time.Millisecond)
			if _, taken, err := h.store.BeginPrefill(context.Background(), alice, t0, lz(until)); err != nil || !taken {
				t.Fatal(taken, err)
			}
			want := baseRecord()
			want.PrefillLease = lz(until)
			h.wantAccount(t, want)
			if err := h.store.EndPrefill(context.Background(), alice, lz(until)); err != nil {
				t.Fatal(err)
			}
			at := t0.Add(time.Minute + 123456789*time.Nanosecond)
			if _, locked, err := h.store.LockPrefill(context.Background(), alice, acctAlice, at); err != nil || !locked {
				t.Fatal(locked, err)
			}
			want.FirstLinkAt, want.PrefillLease = at, onboarding.Lease{}
			h.wantAccount(t, want)
		}},
	})
}

// ---- CompleteCreation / FindUserByAccount ----

func TestCompleteCreationRequiresTheLiveClaim(t *testing.T) {
	runCases(t, []storeCase{
		{"the claim holder stores the account and its index", func(t *testing.T, h *harness) {
			h.withAccount(t)
			h.wantAccount(t, baseRecord())
			h.wantOwner(t, acctAlice, alice)
		}},
		{"a wrong claim id conflicts and stores nothing", func(t *testing.T, h *harness) {
			h.claim(t, alice, newClaim(claim1, t0.Add(lease), 0), t0)
			if err := h.store.CompleteCreation(context.Background(), baseRecord(), claim2); !errors.Is(err, onboarding.ErrConflict) {
				t.Fatalf("CompleteCreation(wrong claim) = %v, want ErrConflict", err)
			}
			if u := h.user(t, alice); u.Account != nil || u.Claim == nil || u.Claim.ClaimID != claim1 {
				t.Fatalf("GetUser = %+v, want claim-1 still pending", u)
			}
			h.wantNoOwner(t, acctAlice)
		}},
		{"without any claim it conflicts and creates no record", func(t *testing.T, h *harness) {
			if err := h.store.CompleteCreation(context.Background(), baseRecord(), claim1); !errors.Is(err, onboarding.ErrConflict) {
				t.Fatalf("CompleteCreation(no claim) = %v, want ErrConflict", err)
			}
			h.wantNoUser(t, alice)
			h.wantNoOwner(t, acctAlice)
		}},
		{"a claim whose lease was taken over conflicts", func(t *testing.T, h *harness) {
			h.claim(t, alice, newClaim(claim1, t0.Add(lease), 0), t0)
			h.claim(t, alice, newClaim(claim2, t0.Add(2*lease), 0), t0.Add(lease+time.Second))
			if err := h.store.CompleteCreation(context.Background(), baseRecord(), claim1); !errors.Is(err, onboarding.ErrConflict) {
				t.Fatalf("CompleteCreation(old claim) = %v, want ErrConflict", err)
			}
			h.complete(t, baseRecord(), claim2)
			h.wantAccount(t, baseRecord())
		}},
		{"completing twice conflicts and keeps the first account", func(t *testing.T, h *harness) {
			h.withAccount(t)
			other := baseRecord()
			other.AccountID, other.State = acctOther, stateActive()
			if err := h.store.CompleteCreation(context.Background(), other, claim1); !errors.Is(err, onboarding.ErrConflict) {
				t.Fatalf("second CompleteCreation = %v, want ErrConflict", err)
			}
			h.wantAccount(t, baseRecord())
			h.wantNoOwner(t, acctOther)
		}},
		{"an account indexed to another user is never moved", func(t *testing.T, h *harness) {
			h.withAccount(t)
			h.claim(t, bob, newClaim(claim2, t0.Add(lease), 0), t0)
			rec := baseRecord()
			rec.UserID = bob
			if err := h.store.CompleteCreation(context.Background(), rec, claim2); !errors.Is(err, onboarding.ErrConflict) {
				t.Fatalf("CompleteCreation(bob, alice's account) = %v, want ErrConflict", err)
			}
			h.wantOwner(t, acctAlice, alice)
			if u := h.user(t, bob); u.Account != nil || u.Claim == nil {
				t.Fatalf("bob = %+v, want his claim still pending (transaction rolled back)", u)
			}
		}},
	})
}

func TestFindUserByAccount(t *testing.T) {
	runCases(t, []storeCase{
		{"unknown account is not found", func(t *testing.T, h *harness) {
			h.wantNoOwner(t, acctAlice)
		}},
		{"a user id is not an account id", func(t *testing.T, h *harness) {
			h.withAccount(t)
			h.wantNoOwner(t, alice)
			h.wantNoOwner(t, acctOther)
		}},
		{"completed account maps to its user", func(t *testing.T, h *harness) {
			h.withAccount(t)
			h.wantOwner(t, acctAlice, alice)
		}},
	})
}

// ---- ReleaseClaim ----

func TestReleaseClaimEndsTheLease(t *testing.T) {
	ctx := context.Background()
	released := func(c onboarding.CreationClaim) onboarding.CreationClaim { return c }
	runCases(t, []storeCase{
		{"it stores how the next attempt starts and frees the user now", func(t *testing.T, h *harness) {
			h.claim(t, alice, newClaim(claim1, t0.Add(lease), 2), t0)
			next := released(newClaim(claim1, t0.Add(lease), 2))
			next.Search = true
			if err := h.store.ReleaseClaim(ctx, alice, next); err != nil {
				t.Fatal(err)
			}
			u := h.user(t, alice)
			if u.Claim == nil || u.Claim.Attempt != 2 || !u.Claim.Search || u.Claim.CreationID != creationAlice ||
				!u.Claim.AttemptSince.Equal(next.AttemptSince) || !reflect.DeepEqual(u.Claim.Params, createParams(alice)) {
				t.Fatalf("claim after release = %+v, want attempt 2, searching, the same creation, since and params", u.Claim)
			}
			if u.Claim.LeaseUntil.After(t0) {
				t.Errorf("LeaseUntil = %s, want ended (not after %s)", u.Claim.LeaseUntil, t0)
			}
			// The core takes over at the same instant the claim was made.
			h.claim(t, alice, newClaim(claim2, t0.Add(lease), 2), t0)
		}},
		{"without params the next attempt sends new ones", func(t *testing.T, h *harness) {
			h.claim(t, alice, newClaim(claim1, t0.Add(lease), 2), t0)
			next := newClaim(claim1, t0.Add(lease), 3)
			next.Params, next.AttemptSince = nil, time.Time{}
			if err := h.store.ReleaseClaim(ctx, alice, next); err != nil {
				t.Fatal(err)
			}
			u := h.user(t, alice)
			if u.Claim == nil || u.Claim.Attempt != 3 || u.Claim.Params != nil || u.Claim.Search || !u.Claim.AttemptSince.IsZero() {
				t.Fatalf("claim after a refusal = %+v, want attempt 3, no params, not searching", u.Claim)
			}
			if u.Claim.LeaseUntil.After(t0) {
				t.Errorf("LeaseUntil = %s, want ended", u.Claim.LeaseUntil)
			}
			h.claim(t, alice, newClaim(claim2, t0.Add(lease), 3), t0)
		}},
		{"a wrong claim id conflicts and keeps the lease", func(t *testing.T, h *harness) {
			h.claim(t, alice, newClaim(claim1, t0.Add(lease), 0), t0)
			if err := h.store.ReleaseClaim(ctx, alice, newClaim(claim2, t0, 5)); !errors.Is(err, onboarding.ErrConflict) {
				t.Fatalf("ReleaseClaim(wrong claim) = %v, want ErrConflict", err)
			}
			if err := h.store.ClaimCreation(ctx, alice, newClaim(claim2, t0.Add(lease), 0), t0.Add(time.Second)); !errors.Is(err, onboarding.ErrConflict) {
				t.Fatalf("claim after a refused release = %v, want ErrConflict (lease still live)", err)
			}
			if u := h.user(t, alice); u.Claim == nil || u.Claim.Attempt != 0 || u.Claim.Params == nil {
				t.Fatalf("claim = %+v, want it untouched", u.Claim)
			}
		}},
		{"after completion it conflicts and keeps the account", func(t *testing.T, h *harness) {
			h.withAccount(t)
			if err := h.store.ReleaseClaim(ctx, alice, newClaim(claim1, t0, 1)); !errors.Is(err, onboarding.ErrConflict) {
				t.Fatalf("ReleaseClaim(completed) = %v, want ErrConflict", err)
			}
			h.wantAccount(t, baseRecord())
		}},
		{"for an unknown user it conflicts and creates nothing", func(t *testing.T, h *harness) {
			if err := h.store.ReleaseClaim(ctx, alice, newClaim(claim1, t0, 1)); !errors.Is(err, onboarding.ErrConflict) {
				t.Fatalf("ReleaseClaim(unknown) = %v, want ErrConflict", err)
			}
			h.wantNoUser(t, alice)
		}},
	})
}

// ---- items say what they mean ----

// claimAttributes are the attributes of a creation claim.
var claimAttributes = []string{"claim_id", "lease_until", "creation_id", "attempt", "attempt_since", "search_first", "create_params"}

// wantWithout asserts item pk exists, lacks attrs, and holds no stand-in
// for a missing value (a "null" string, a NULL).
func (h *harness) wantWithout(t *testing.T, pk string, attrs ...string) {
	t.Helper()
	item := h.raw(t, pk)
	if len(item) == 0 {
		t.Fatalf("item %s does not exist", pk)
	}
	for _, a := range attrs {
		if v, ok := item[a]; ok {
			t.Errorf("item %s still holds %s = %#v", pk, a, v)
		}
	}
	for a, v := range item {
		if sv, ok := v.(*types.AttributeValueMemberS); ok && sv.Value == "null" {
			t.Errorf("item %s: %s is the string \"null\"", pk, a)
		}
		if _, ok := v.(*types.AttributeValueMemberNULL); ok {
			t.Errorf("item %s: %s is NULL", pk, a)
		}
	}
}

func TestItemsHoldWhatTheyMean(t *testing.T) {
	ctx := context.Background()
	runCases(t, []storeCase{
		{"a stored account keeps none of its claim", func(t *testing.T, h *harness) {
			h.withAccount(t)
			h.wantWithout(t, "USER#"+alice, claimAttributes...)
		}},
		{"an account a webhook completed keeps none of its claim", func(t *testing.T, h *harness) {
			h.claim(t, alice, newClaim(claim1, t0.Add(lease), 0), t0)
			if got, err := h.store.ApplyEvent(ctx, healingEvent("evt_heal", 10, stateActive())); err != nil || got != onboarding.OutcomeApplied {
				t.Fatalf("ApplyEvent = %q, %v; want applied", got, err)
			}
			h.wantWithout(t, "USER#"+alice, claimAttributes...)
		}},
		{"a claim released without params has none, nor a start or a search", func(t *testing.T, h *harness) {
			h.claim(t, alice, newClaim(claim1, t0.Add(lease), 2), t0)
			next := newClaim(claim1, t0.Add(lease), 3)
			next.Params, next.AttemptSince = nil, time.Time{}
			if err := h.store.ReleaseClaim(ctx, alice, next); err != nil {
				t.Fatal(err)
			}
			h.wantWithout(t, "USER#"+alice, "create_params", "attempt_since", "search_first")
		}},
		{"a claim made without params has none", func(t *testing.T, h *harness) {
			c := newClaim(claim1, t0.Add(lease), 0)
			c.Params = nil
			h.claim(t, alice, c, t0)
			h.wantWithout(t, "USER#"+alice, "create_params", "account_id", "state", "capabilities")
		}},
		{"an unused token has no use", func(t *testing.T, h *harness) {
			if err := h.store.PutRefreshToken(ctx, refreshToken("d00d")); err != nil {
				t.Fatal(err)
			}
			h.wantWithout(t, "TOKEN#d00d", "used_at", "lease_id", "lease_until")
		}},
	})
}

// ---- refresh tokens ----

func refreshToken(hash string) onboarding.RefreshToken {
	return onboarding.RefreshToken{Hash: hash, UserID: alice, AccountID: acctAlice, ExpiresAt: t0.Add(15 * time.Minute)}
}

// lz is a lease until `until`, whose id is its time: two leases are the
// same holder's when they end at the same instant.
func lz(until time.Time) onboarding.Lease {
	return onboarding.Lease{ID: "lease-" + strconv.FormatInt(until.UnixNano(), 10), Until: until}
}

// redeemLease is how long a redemption reserves a token in these tests.
const redeemLease = 20 * time.Second

// redeem redeems a token as a link that was made does: claim, then spend.
func redeem(ctx context.Context, st *dynamostore.Store, hash string, now time.Time) (onboarding.RefreshToken, error) {
	tok, err := st.ClaimRefreshToken(ctx, hash, now, lz(now.Add(redeemLease)))
	if err != nil {
		return tok, err
	}
	return tok, st.SpendRefreshToken(ctx, hash, now)
}

func TestRefreshTokenIsSingleUseUntilItExpires(t *testing.T) {
	// hashes sort (as the engines keep keys) before, between and after one
	// another, so no case depends on which item an engine looks at first.
	const hashFirst, hashA, hashB, hashLast = "0000aa", "a1f3c9e0aa", "b2e4d8f1bb", "ffffaa"
	expired := func(hash string) onboarding.RefreshToken {
		tok := refreshToken(hash)
		tok.ExpiresAt = t0.Add(-time.Minute)
		return tok
	}
	type consume struct {
		hash string
		now  time.Time
		want error // nil: returns the token stored under hash
	}
	cases := []struct {
		name     string
		put      []onboarding.RefreshToken
		consumes []consume
	}{
		{
			name:     "a stored token is returned once",
			put:      []onboarding.RefreshToken{refreshToken(hashA)},
			consumes: []consume{{hashA, t0, nil}},
		},
		{
			name: "a second consume is refused",
			put:  []onboarding.RefreshToken{refreshToken(hashA)},
			consumes: []consume{
				{hashA, t0, nil},
				{hashA, t0, onboarding.ErrTokenInvalid},
				{hashA, t0.Add(time.Minute), onboarding.ErrTokenInvalid},
			},
		},
		{
			name:     "a token after its expiry is refused",
			put:      []onboarding.RefreshToken{refreshToken(hashA)},
			consumes: []consume{{hashA, t0.Add(15*time.Minute + time.Second), onboarding.ErrTokenInvalid}},
		},
		{
			name:     "a token at its expiry instant is refused",
			put:      []onboarding.RefreshToken{refreshToken(hashA)},
			consumes: []consume{{hashA, t0.Add(15 * time.Minute), onboarding.ErrTokenInvalid}},
		},
		{
			name:     "a token just before its expiry is accepted",
			put:      []onboarding.RefreshToken{refreshToken(hashA)},
			consumes: []consume{{hashA, t0.Add(15*time.Minute - time.Second), nil}},
		},
		{
			name:     "an unknown hash is refused on an empty table",
			consumes: []consume{{hashB, t0, onboarding.ErrTokenInvalid}},
		},
		{
			// minidyn's conditional DeleteItem once matched any item of the
			// table: an unknown hash must not be satisfied by another token.
			name: "an unknown hash is refused while another valid token exists, which stays usable",
			put:  []onboarding.RefreshToken{refreshToken(hashA)},
			consumes: []consume{
				{hashB, t0, onboarding.ErrTokenInvalid},
				{hashB, t0, onboarding.ErrTokenInvalid},
				{hashA, t0, nil},
			},
		},
		{
			name: "unknown hashes sorting before and after a valid token are refused",
			put:  []onboarding.RefreshToken{refreshToken(hashA)},
			consumes: []consume{
				{hashFirst, t0, onboarding.ErrTokenInvalid},
				{hashLast, t0, onboarding.ErrTokenInvalid},
				{hashA, t0, nil},
			},
		},
		{
			name: "a valid token is accepted whatever expired tokens sit beside it",
			put:  []onboarding.RefreshToken{expired(hashFirst), refreshToken(hashA), expired(hashLast)},
			consumes: []consume{
				{hashA, t0, nil},
				{hashFirst, t0, onboarding.ErrTokenInvalid},
				{hashLast, t0, onboarding.ErrTokenInvalid},
			},
		},
		{
			name: "a valid token is accepted whatever used tokens sit beside it",
			put:  []onboarding.RefreshToken{refreshToken(hashFirst), refreshToken(hashA), refreshToken(hashLast)},
			consumes: []consume{
				{hashFirst, t0, nil},
				{hashLast, t0, nil},
				{hashA, t0, nil},
				{hashFirst, t0, onboarding.ErrTokenInvalid},
			},
		},
		{
			name: "consuming one token leaves the others alone",
			put:  []onboarding.RefreshToken{refreshToken(hashA), refreshToken(hashB)},
			consumes: []consume{
				{hashA, t0, nil},
				{hashB, t0, nil},
				{hashA, t0, onboarding.ErrTokenInvalid},
			},
		},
	}
	eachEngine(t, func(t *testing.T, e testenv.Engine) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				h := newHarness(t, e)
				stored := map[string]onboarding.RefreshToken{}
				for _, tok := range tc.put {
					if err := h.store.PutRefreshToken(context.Background(), tok); err != nil {
						t.Fatalf("PutRefreshToken(%s): %v", tok.Hash, err)
					}
					stored[tok.Hash] = tok
				}
				for i, c := range tc.consumes {
					got, err := redeem(context.Background(), h.store, c.hash, c.now)
					if c.want != nil {
						if !errors.Is(err, c.want) {
							t.Fatalf("consume %d (%s at +%s) = %+v, %v; want %v", i, c.hash, c.now.Sub(t0), got, err, c.want)
						}
						continue
					}
					want := stored[c.hash]
					if err != nil || got.Hash != want.Hash || got.UserID != want.UserID || got.AccountID != want.AccountID || !got.ExpiresAt.Equal(want.ExpiresAt) {
						t.Fatalf("consume %d (%s at +%s) = %+v, %v; want %+v", i, c.hash, c.now.Sub(t0), got, err, want)
					}
				}
				for _, c := range tc.consumes {
					if _, known := stored[c.hash]; !known {
						if item := h.raw(t, "TOKEN#"+c.hash); len(item) != 0 {
							t.Errorf("consuming unknown hash %s created an item: %v", c.hash, item)
						}
					}
				}
			})
		}
	})
}

func TestRefreshTokenStorage(t *testing.T) {
	ctx := context.Background()
	runCases(t, []storeCase{
		{"the item carries expires_at as Unix seconds for TTL", func(t *testing.T, h *harness) {
			tok := refreshToken("c0ffee")
			if err := h.store.PutRefreshToken(ctx, tok); err != nil {
				t.Fatal(err)
			}
			h.wantExpiresAt(t, "TOKEN#c0ffee", tok.ExpiresAt)
			if _, err := redeem(ctx, h.store, tok.Hash, t0); err != nil {
				t.Fatal(err)
			}
			// Used, it still expires with TTL.
			h.wantExpiresAt(t, "TOKEN#c0ffee", tok.ExpiresAt)
		}},
		{"a claimed token says when its link was minted, so the core can tell a bounce", func(t *testing.T, h *harness) {
			tok := refreshToken("c0ffee")
			tok.IssuedAt = t0.Add(-1500 * time.Millisecond)
			if err := h.store.PutRefreshToken(ctx, tok); err != nil {
				t.Fatal(err)
			}
			got, err := h.store.ClaimRefreshToken(ctx, tok.Hash, t0, lz(t0.Add(redeemLease)))
			if err != nil || !got.IssuedAt.Equal(tok.IssuedAt) || !got.ExpiresAt.Equal(tok.ExpiresAt) {
				t.Fatalf("claimed %+v %v, want issued at %v and expiring at %v", got, err, tok.IssuedAt, tok.ExpiresAt)
			}
		}},
		{"a hash is never stored twice, so a used token cannot be re-armed", func(t *testing.T, h *harness) {
			tok := refreshToken("c0ffee")
			if err := h.store.PutRefreshToken(ctx, tok); err != nil {
				t.Fatal(err)
			}
			if _, err := redeem(ctx, h.store, tok.Hash, t0); err != nil {
				t.Fatal(err)
			}
			if err := h.store.PutRefreshToken(ctx, tok); !errors.Is(err, onboarding.ErrConflict) {
				t.Fatalf("PutRefreshToken(same hash) = %v, want ErrConflict", err)
			}
			if got, err := redeem(ctx, h.store, tok.Hash, t0); !errors.Is(err, onboarding.ErrTokenInvalid) {
				t.Fatalf("consume after the refused put = %+v, %v; want ErrTokenInvalid", got, err)
			}
		}},
	})
}

func TestARedemptionReservesTheTokenUntilItEndsOrIsReleased(t *testing.T) {
	ctx := context.Background()
	const hash = "beef"
	put := func(t *testing.T, h *harness) {
		if err := h.store.PutRefreshToken(ctx, refreshToken(hash)); err != nil {
			t.Fatal(err)
		}
	}
	until := t0.Add(redeemLease)
	runCases(t, []storeCase{
		{"a reserved token is refused to others until the reservation ends", func(t *testing.T, h *harness) {
			put(t, h)
			if _, err := h.store.ClaimRefreshToken(ctx, hash, t0, lz(until)); err != nil {
				t.Fatal(err)
			}
			if _, err := h.store.ClaimRefreshToken(ctx, hash, until.Add(-time.Millisecond), lz(until.Add(time.Minute))); !errors.Is(err, onboarding.ErrTokenInvalid) {
				t.Fatalf("claim during the reservation = %v, want ErrTokenInvalid", err)
			}
			// A redeemer that died holds it no longer than its reservation.
			if _, err := h.store.ClaimRefreshToken(ctx, hash, until, lz(until.Add(redeemLease))); err != nil {
				t.Fatalf("claim once the reservation ended = %v", err)
			}
		}},
		{"a released token can be redeemed again at once", func(t *testing.T, h *harness) {
			put(t, h)
			if _, err := h.store.ClaimRefreshToken(ctx, hash, t0, lz(until)); err != nil {
				t.Fatal(err)
			}
			if err := h.store.ReleaseRefreshToken(ctx, hash, lz(until)); err != nil {
				t.Fatal(err)
			}
			if _, err := redeem(ctx, h.store, hash, t0.Add(time.Second)); err != nil {
				t.Fatalf("redeem after the release = %v", err)
			}
			if _, err := h.store.ClaimRefreshToken(ctx, hash, t0.Add(time.Minute), lz(t0.Add(2*time.Minute))); !errors.Is(err, onboarding.ErrTokenInvalid) {
				t.Fatalf("claim after the token was spent = %v, want ErrTokenInvalid", err)
			}
		}},
		{"a stale release leaves a newer reservation alone", func(t *testing.T, h *harness) {
			put(t, h)
			if _, err := h.store.ClaimRefreshToken(ctx, hash, t0, lz(until)); err != nil {
				t.Fatal(err)
			}
			later := until.Add(redeemLease)
			if _, err := h.store.ClaimRefreshToken(ctx, hash, until, lz(later)); err != nil {
				t.Fatal(err)
			}
			if err := h.store.ReleaseRefreshToken(ctx, hash, lz(until)); err != nil {
				t.Fatalf("stale release = %v, want no error (it is a no-op)", err)
			}
			if _, err := h.store.ClaimRefreshToken(ctx, hash, later.Add(-time.Second), lz(later.Add(time.Minute))); !errors.Is(err, onboarding.ErrTokenInvalid) {
				t.Fatalf("claim during the newer reservation = %v, want ErrTokenInvalid", err)
			}
		}},
		{"releasing or spending an unknown token creates nothing", func(t *testing.T, h *harness) {
			if err := h.store.ReleaseRefreshToken(ctx, hash, lz(until)); err != nil {
				t.Fatal(err)
			}
			if err := h.store.SpendRefreshToken(ctx, hash, t0); err != nil {
				t.Fatal(err)
			}
			if item := h.raw(t, "TOKEN#"+hash); len(item) != 0 {
				t.Fatalf("an item appeared: %v", item)
			}
		}},
	})
}

func TestConsumeRefreshTokenConcurrentConsumersExactlyOneWins(t *testing.T) {
	const consumers = 50
	eachEngine(t, func(t *testing.T, e testenv.Engine) {
		h := newHarness(t, e)
		tok := refreshToken("feedface")
		if err := h.store.PutRefreshToken(context.Background(), tok); err != nil {
			t.Fatal(err)
		}
		errs := make([]error, consumers)
		got := make([]onboarding.RefreshToken, consumers)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range consumers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				got[i], errs[i] = h.store.ClaimRefreshToken(context.Background(), tok.Hash, t0, onboarding.Lease{ID: strconv.Itoa(i), Until: t0.Add(redeemLease)})
			}()
		}
		close(start)
		wg.Wait()

		wins := 0
		for i, err := range errs {
			switch {
			case err == nil:
				wins++
				if got[i].UserID != alice || got[i].AccountID != acctAlice {
					t.Errorf("consumer %d got %+v", i, got[i])
				}
			case !errors.Is(err, onboarding.ErrTokenInvalid):
				t.Errorf("consumer %d: %v, want nil or ErrTokenInvalid", i, err)
			}
		}
		if wins != 1 {
			t.Fatalf("%d of %d consumers won, want exactly 1", wins, consumers)
		}
	})
}

// ---- the KYC lock and the prefill lease ----

func TestPrefillLockAndLeaseExcludeEachOther(t *testing.T) {
	ctx := context.Background()
	first, later := t0.Add(time.Minute), t0.Add(time.Hour)
	until := first.Add(20 * time.Second)
	runCases(t, []storeCase{
		{"the lock is taken once and keeps the first time", func(t *testing.T, h *harness) {
			h.withAccount(t)
			rec, locked, err := h.store.LockPrefill(ctx, alice, acctAlice, first)
			if err != nil || !locked || !rec.FirstLinkAt.Equal(first) {
				t.Fatalf("LockPrefill = %+v, %v, %v", rec, locked, err)
			}
			if rec, locked, err := h.store.LockPrefill(ctx, alice, acctAlice, later); err != nil || !locked || !rec.FirstLinkAt.Equal(first) {
				t.Fatalf("second LockPrefill = %v, %v, first link at %v: want it locked since %v", locked, err, rec.FirstLinkAt, first)
			}
			want := baseRecord()
			want.FirstLinkAt = first
			h.wantAccount(t, want)
		}},
		{"a locked account grants no prefill lease", func(t *testing.T, h *harness) {
			h.withAccount(t)
			if _, locked, err := h.store.LockPrefill(ctx, alice, acctAlice, first); err != nil || !locked {
				t.Fatal(locked, err)
			}
			rec, taken, err := h.store.BeginPrefill(ctx, alice, later, lz(later.Add(time.Minute)))
			if err != nil || taken || !rec.FirstLinkAt.Equal(first) {
				t.Fatalf("BeginPrefill after the lock = %+v, %v, %v; want refused, showing the lock", rec, taken, err)
			}
		}},
		{"a live prefill lease holds the lock off until it ends", func(t *testing.T, h *harness) {
			h.withAccount(t)
			if _, taken, err := h.store.BeginPrefill(ctx, alice, first, lz(until)); err != nil || !taken {
				t.Fatal(taken, err)
			}
			rec, locked, err := h.store.LockPrefill(ctx, alice, acctAlice, until.Add(-time.Millisecond))
			if err != nil || locked || !rec.PrefillLease.Until.Equal(until) || !rec.FirstLinkAt.IsZero() {
				t.Fatalf("LockPrefill during the lease = %+v, %v, %v; want refused, showing the lease", rec, locked, err)
			}
			if _, locked, err := h.store.LockPrefill(ctx, alice, acctAlice, until); err != nil || !locked {
				t.Fatalf("LockPrefill once the lease ran out = %v, %v", locked, err)
			}
		}},
		{"an ended lease lets the lock in at once, and another update", func(t *testing.T, h *harness) {
			h.withAccount(t)
			if _, taken, err := h.store.BeginPrefill(ctx, alice, first, lz(until)); err != nil || !taken {
				t.Fatal(taken, err)
			}
			if _, taken, _ := h.store.BeginPrefill(ctx, alice, first.Add(time.Second), lz(until.Add(time.Second))); taken {
				t.Fatal("two prefill updates held the lease at once")
			}
			if err := h.store.EndPrefill(ctx, alice, lz(until)); err != nil {
				t.Fatal(err)
			}
			if _, taken, err := h.store.BeginPrefill(ctx, alice, first.Add(time.Second), lz(until.Add(time.Second))); err != nil || !taken {
				t.Fatalf("BeginPrefill after EndPrefill = %v, %v", taken, err)
			}
			// A stale EndPrefill does not end the newer lease.
			if err := h.store.EndPrefill(ctx, alice, lz(until)); err != nil {
				t.Fatal(err)
			}
			if _, locked, _ := h.store.LockPrefill(ctx, alice, acctAlice, first.Add(2*time.Second)); locked {
				t.Fatal("a stale EndPrefill ended another update's lease")
			}
		}},
		{"a deauthorized account is neither locked nor leased", func(t *testing.T, h *harness) {
			h.withAccount(t)
			if _, err := h.store.ApplyEvent(ctx, deauthEvent("evt_deauth", 1)); err != nil {
				t.Fatal(err)
			}
			if rec, locked, err := h.store.LockPrefill(ctx, alice, acctAlice, first); err != nil || locked || !rec.State.Deauthorized {
				t.Fatalf("LockPrefill = %+v, %v, %v", rec, locked, err)
			}
			if rec, taken, err := h.store.BeginPrefill(ctx, alice, first, lz(until)); err != nil || taken || !rec.State.Deauthorized {
				t.Fatalf("BeginPrefill = %+v, %v, %v", rec, taken, err)
			}
		}},
		{"another account's lock is refused", func(t *testing.T, h *harness) {
			h.withAccount(t)
			if rec, locked, err := h.store.LockPrefill(ctx, alice, acctOther, first); err != nil || locked || rec.AccountID != acctAlice {
				t.Fatalf("LockPrefill(other account) = %+v, %v, %v", rec, locked, err)
			}
		}},
		{"a user without an account is not found and gets no record", func(t *testing.T, h *harness) {
			if _, _, err := h.store.LockPrefill(ctx, alice, acctAlice, first); !errors.Is(err, onboarding.ErrNotFound) {
				t.Fatalf("LockPrefill(unknown) = %v", err)
			}
			if _, _, err := h.store.BeginPrefill(ctx, alice, first, lz(until)); !errors.Is(err, onboarding.ErrNotFound) {
				t.Fatalf("BeginPrefill(unknown) = %v", err)
			}
			h.claim(t, alice, newClaim(claim1, t0.Add(lease), 0), t0)
			if _, _, err := h.store.LockPrefill(ctx, alice, acctAlice, first); !errors.Is(err, onboarding.ErrNotFound) {
				t.Fatalf("LockPrefill(claim only) = %v", err)
			}
			if err := h.store.EndPrefill(ctx, bob, lz(until)); err != nil {
				t.Fatal(err)
			}
			h.wantNoUser(t, bob)
		}},
	})
}

// ---- limits ----

func TestTakeSlotAllowsMaxUsesInAnyWindow(t *testing.T) {
	ctx := context.Background()
	const window = time.Hour
	take := func(t *testing.T, h *harness, max int, at time.Time) (bool, time.Time) {
		t.Helper()
		ok, retryAt, err := h.store.TakeSlot(ctx, "links#alice", max, window, at)
		if err != nil {
			t.Fatal(err)
		}
		return ok, retryAt
	}
	runCases(t, []storeCase{
		{"max uses, then none until the oldest leaves the window", func(t *testing.T, h *harness) {
			for i := range 3 {
				if ok, _ := take(t, h, 3, t0.Add(time.Duration(i)*10*time.Minute)); !ok {
					t.Fatalf("use %d refused", i)
				}
			}
			ok, retryAt := take(t, h, 3, t0.Add(30*time.Minute))
			if ok || !retryAt.Equal(t0.Add(window)) {
				t.Fatalf("fourth use = %v, retry at %v; want refused until %v", ok, retryAt, t0.Add(window))
			}
			if ok, _ := take(t, h, 3, t0.Add(window-time.Millisecond)); ok {
				t.Fatal("a use a millisecond before the oldest left the window was allowed")
			}
			if ok, _ := take(t, h, 3, t0.Add(window)); !ok {
				t.Fatal("a use once the oldest left the window was refused")
			}
			// Now the uses at +10m, +20m and +60m are in the window.
			if ok, retryAt := take(t, h, 3, t0.Add(window+5*time.Minute)); ok || !retryAt.Equal(t0.Add(10*time.Minute+window)) {
				t.Fatalf("refused use: %v, retry at %v; want at %v", ok, retryAt, t0.Add(10*time.Minute+window))
			}
			h.wantExpiresAt(t, "LIMIT#links#alice", t0.Add(2*window+time.Second))
		}},
		{"a refused use counts nothing", func(t *testing.T, h *harness) {
			take(t, h, 1, t0)
			for i := range 5 {
				if ok, _ := take(t, h, 1, t0.Add(time.Duration(i+1)*time.Minute)); ok {
					t.Fatal("second use in the window allowed")
				}
			}
			if ok, _ := take(t, h, 1, t0.Add(window)); !ok {
				t.Fatal("refused uses pushed the window on")
			}
		}},
		{"keys are counted apart", func(t *testing.T, h *harness) {
			take(t, h, 1, t0)
			if ok, _, err := h.store.TakeSlot(ctx, "links#bob", 1, window, t0); err != nil || !ok {
				t.Fatalf("bob's first use = %v, %v", ok, err)
			}
		}},
		{"a lower limit than the item has slots counts the newest uses", func(t *testing.T, h *harness) {
			for i := range 5 {
				take(t, h, 5, t0.Add(time.Duration(i)*time.Minute))
			}
			if ok, _ := take(t, h, 2, t0.Add(10*time.Minute)); ok {
				t.Fatal("allowed under a limit of 2 with 5 uses in the window")
			}
			if ok, _ := take(t, h, 10, t0.Add(10*time.Minute)); !ok {
				t.Fatal("refused under a raised limit of 10 with 5 uses in the window")
			}
		}},
	})
}

func TestTakeSlotConcurrentCallersNeverExceedTheLimit(t *testing.T) {
	const callers, max = 30, 7
	eachEngine(t, func(t *testing.T, e testenv.Engine) {
		h := newHarness(t, e)
		var wg sync.WaitGroup
		var mu sync.Mutex
		allowed := 0
		start := make(chan struct{})
		for range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				ok, _, err := h.store.TakeSlot(context.Background(), "links#alice", max, time.Hour, t0)
				if err != nil {
					t.Error(err)
				}
				if ok {
					mu.Lock()
					allowed++
					mu.Unlock()
				}
			}()
		}
		close(start)
		wg.Wait()
		if allowed != max {
			t.Fatalf("%d of %d concurrent uses allowed, want exactly %d", allowed, callers, max)
		}
	})
}

// ---- SaveState ----

func TestSaveStateNeverReplacesNewerState(t *testing.T) {
	saved := t0.Add(time.Hour)
	deauthorized := func() onboarding.AccountRecord {
		r := baseRecord()
		r.State.Deauthorized, r.UpdatedAt = true, eventNow(60)
		return r
	}
	cases := []struct {
		name    string
		setup   func(t *testing.T, h *harness)
		version int64
		want    func() onboarding.AccountRecord // returned and stored afterwards
		wantErr error
	}{
		{
			name: "a newer version applies", setup: setupAccount, version: vBase + 60,
			want: func() onboarding.AccountRecord {
				r := baseRecord()
				r.State, r.StateVersion, r.UpdatedAt = stateActive(), vBase+60, saved
				return r
			},
		},
		{
			name: "an equal version applies", setup: setupAccount, version: vBase,
			want: func() onboarding.AccountRecord {
				r := baseRecord()
				r.State, r.UpdatedAt = stateActive(), saved
				return r
			},
		},
		{
			name: "an older version leaves the state and returns the stored one", setup: setupAccount, version: vBase - 1,
			want: baseRecord,
		},
		{
			name: "a deauthorized account is left alone",
			setup: func(t *testing.T, h *harness) {
				h.withAccount(t)
				if out, err := h.store.ApplyEvent(context.Background(), deauthEvent("evt_deauth", 60)); err != nil || out != onboarding.OutcomeApplied {
					t.Fatalf("deauthorize: %v, %v", out, err)
				}
			},
			version: vBase + 3600,
			want:    deauthorized,
		},
		{
			name: "a claim without an account is not found", version: vBase,
			setup:   func(t *testing.T, h *harness) { h.claim(t, alice, newClaim(claim1, t0.Add(lease), 0), t0) },
			wantErr: onboarding.ErrNotFound,
		},
		{
			name: "an unknown user is not found and gets no record", version: vBase,
			setup:   func(*testing.T, *harness) {},
			wantErr: onboarding.ErrNotFound,
		},
	}
	eachEngine(t, func(t *testing.T, e testenv.Engine) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				h := newHarness(t, e)
				tc.setup(t, h)
				got, err := h.store.SaveState(context.Background(), alice, stateActive(), tc.version, saved, onboarding.CauseRefresh)
				if tc.wantErr != nil {
					if !errors.Is(err, tc.wantErr) {
						t.Fatalf("SaveState = %+v, %v; want %v", got, err, tc.wantErr)
					}
					if u, err := h.store.GetUser(context.Background(), alice); err == nil && u.Account != nil {
						t.Fatalf("SaveState stored an account: %+v", u.Account)
					}
					return
				}
				if err != nil {
					t.Fatalf("SaveState: %v", err)
				}
				sameRecord(t, "returned record", got, tc.want())
				h.wantAccount(t, tc.want())
			})
		}
	})
}

// ---- ApplyEvent ----

func eventNow(dv int64) time.Time { return t0.Add(time.Duration(dv)*time.Second + 2*time.Second) }

// snapshotEvent is an account.updated for alice's account, created dv
// seconds after her account was.
func snapshotEvent(id string, dv int64, st onboarding.AccountState) onboarding.StateChange {
	return onboarding.StateChange{
		EventID: id, UserID: alice, AccountID: acctAlice, Kind: onboarding.ChangeSnapshot, Version: vBase + dv,
		State: st, Country: "US", ServiceAgreement: "full",
		Now: eventNow(dv), RetainUntil: eventNow(dv).Add(retention),
	}
}

// healingEvent is a snapshot whose account carries alice's creation id.
func healingEvent(id string, dv int64, st onboarding.AccountState) onboarding.StateChange {
	c := snapshotEvent(id, dv, st)
	c.HealCreationID = creationAlice
	return c
}

func capabilityEvent(id string, dv int64, capability, status string) onboarding.StateChange {
	return onboarding.StateChange{
		EventID: id, UserID: alice, AccountID: acctAlice, Kind: onboarding.ChangeCapability, Version: vBase + dv,
		Capability: capability, CapabilityStatus: status,
		Now: eventNow(dv), RetainUntil: eventNow(dv).Add(retention),
	}
}

func deauthEvent(id string, dv int64) onboarding.StateChange {
	return onboarding.StateChange{
		EventID: id, UserID: alice, AccountID: acctAlice, Kind: onboarding.ChangeDeauthorize, Version: vBase + dv,
		Now: eventNow(dv), RetainUntil: eventNow(dv).Add(retention),
	}
}

func otherAccount(c onboarding.StateChange) onboarding.StateChange {
	c.AccountID = acctOther
	return c
}

type eventStep struct {
	change onboarding.StateChange
	want   onboarding.EventOutcome
}

func TestApplyEventAppliesEachEventOnceAndNeverOlderState(t *testing.T) {
	// recordAfter is baseRecord changed by the snapshot dv seconds later.
	recordAfter := func(dv int64, st onboarding.AccountState) onboarding.AccountRecord {
		r := baseRecord()
		r.State, r.StateVersion, r.UpdatedAt = st, vBase+dv, eventNow(dv)
		return r
	}
	pendingClaim := func(t *testing.T, h *harness) { h.claim(t, alice, newClaim(claim1, t0.Add(lease), 0), t0) }
	cases := []struct {
		name  string
		setup func(t *testing.T, h *harness)
		steps []eventStep
		want  func() onboarding.AccountRecord // nil: alice must have no account
		check func(t *testing.T, h *harness)
	}{
		{
			name:  "a new snapshot applies",
			setup: setupAccount,
			steps: []eventStep{{snapshotEvent("evt_1", 10, stateActive()), onboarding.OutcomeApplied}},
			want:  func() onboarding.AccountRecord { return recordAfter(10, stateActive()) },
		},
		{
			name:  "the same event id again is a duplicate and changes nothing",
			setup: setupAccount,
			steps: []eventStep{
				{snapshotEvent("evt_1", 10, stateActive()), onboarding.OutcomeApplied},
				{snapshotEvent("evt_1", 20, stateRejected()), onboarding.OutcomeDuplicate},
			},
			want: func() onboarding.AccountRecord { return recordAfter(10, stateActive()) },
			check: func(t *testing.T, h *harness) {
				h.wantExpiresAt(t, "EVENT#evt_1", eventNow(10).Add(retention))
			},
		},
		{
			name:  "an older version after a newer one is superseded",
			setup: setupAccount,
			steps: []eventStep{
				{snapshotEvent("evt_new", 20, stateActive()), onboarding.OutcomeApplied},
				{snapshotEvent("evt_old", 10, stateRejected()), onboarding.OutcomeSuperseded},
			},
			want: func() onboarding.AccountRecord { return recordAfter(20, stateActive()) },
		},
		{
			name:  "a snapshot older than the created state is superseded",
			setup: setupAccount,
			steps: []eventStep{{snapshotEvent("evt_old", -1, stateActive()), onboarding.OutcomeSuperseded}},
			want:  baseRecord,
		},
		{
			name:  "an equal version applies",
			setup: setupAccount,
			steps: []eventStep{
				{snapshotEvent("evt_1", 10, stateActive()), onboarding.OutcomeApplied},
				{snapshotEvent("evt_2", 10, stateRejected()), onboarding.OutcomeApplied},
			},
			want: func() onboarding.AccountRecord { return recordAfter(10, stateRejected()) },
		},
		{
			name:  "a capability event updates only that capability",
			setup: setupAccount,
			steps: []eventStep{{capabilityEvent("evt_cap", 10, "transfers", "active"), onboarding.OutcomeApplied}},
			want: func() onboarding.AccountRecord {
				r := recordAfter(10, stateOnboarding())
				r.State.Capabilities = map[string]string{"card_payments": "inactive", "transfers": "active"}
				return r
			},
		},
		{
			name:  "a capability event may add a capability",
			setup: setupAccount,
			steps: []eventStep{{capabilityEvent("evt_cap", 10, "us_bank_account_ach_payments", "pending"), onboarding.OutcomeApplied}},
			want: func() onboarding.AccountRecord {
				r := recordAfter(10, stateOnboarding())
				r.State.Capabilities["us_bank_account_ach_payments"] = "pending"
				return r
			},
		},
		{
			name: "a capability event on an account stored without capabilities adds it",
			setup: func(t *testing.T, h *harness) {
				rec := baseRecord()
				rec.State.Capabilities = nil
				h.claim(t, alice, newClaim(claim1, t0.Add(lease), 0), t0)
				h.complete(t, rec, claim1)
			},
			steps: []eventStep{{capabilityEvent("evt_cap", 10, "transfers", "active"), onboarding.OutcomeApplied}},
			want: func() onboarding.AccountRecord {
				r := recordAfter(10, stateOnboarding())
				r.State.Capabilities = map[string]string{"transfers": "active"}
				return r
			},
		},
		{
			name:  "a snapshot older than a capability event is superseded",
			setup: setupAccount,
			steps: []eventStep{
				{capabilityEvent("evt_cap", 20, "transfers", "active"), onboarding.OutcomeApplied},
				{snapshotEvent("evt_old", 10, stateRejected()), onboarding.OutcomeSuperseded},
				{capabilityEvent("evt_cap_old", 10, "transfers", "inactive"), onboarding.OutcomeSuperseded},
			},
			want: func() onboarding.AccountRecord {
				r := recordAfter(20, stateOnboarding())
				r.State.Capabilities["transfers"] = "active"
				return r
			},
		},
		{
			name:  "deauthorization is terminal: later snapshots and capability events are superseded",
			setup: setupAccount,
			steps: []eventStep{
				{deauthEvent("evt_deauth", 10), onboarding.OutcomeApplied},
				{snapshotEvent("evt_snap", 20, stateActive()), onboarding.OutcomeSuperseded},
				{capabilityEvent("evt_cap", 30, "transfers", "active"), onboarding.OutcomeSuperseded},
				{healingEvent("evt_heal", 40, stateActive()), onboarding.OutcomeSuperseded},
				{deauthEvent("evt_deauth_again", 50), onboarding.OutcomeSuperseded},
			},
			want: func() onboarding.AccountRecord {
				r := baseRecord()
				r.State.Deauthorized, r.UpdatedAt = true, eventNow(10)
				return r
			},
		},
		{
			name:  "deauthorization applies whatever its version",
			setup: setupAccount,
			steps: []eventStep{
				{snapshotEvent("evt_snap", 20, stateActive()), onboarding.OutcomeApplied},
				{deauthEvent("evt_deauth", 10), onboarding.OutcomeApplied},
			},
			want: func() onboarding.AccountRecord {
				r := recordAfter(20, stateActive())
				r.State.Deauthorized, r.UpdatedAt = true, eventNow(10)
				return r
			},
		},
		{
			name:  "a snapshot naming a user without a record binds nothing",
			steps: []eventStep{{healingEvent("evt_heal", 10, stateActive()), onboarding.OutcomeUnknown}},
			check: func(t *testing.T, h *harness) {
				h.wantNoUser(t, alice)
				h.wantNoOwner(t, acctAlice)
			},
		},
		{
			name:  "a snapshot from another creation leaves a claim alone",
			setup: pendingClaim,
			steps: []eventStep{{func() onboarding.StateChange {
				c := healingEvent("evt_other", 10, stateActive())
				c.HealCreationID = "creation-of-someone-else"
				return c
			}(), onboarding.OutcomeUnknown}},
			check: func(t *testing.T, h *harness) {
				if u := h.user(t, alice); u.Account != nil || u.Claim == nil || u.Claim.ClaimID != claim1 {
					t.Fatalf("GetUser = %+v, want claim-1 still pending", u)
				}
				h.wantNoOwner(t, acctAlice)
			},
		},
		{
			name: "a snapshot of an account another user owns does not complete a claim",
			setup: func(t *testing.T, h *harness) {
				pendingClaim(t, h)
				h.claim(t, bob, newClaim(claim2, t0.Add(lease), 0), t0)
				rec := baseRecord()
				rec.UserID = bob
				h.complete(t, rec, claim2)
			},
			steps: []eventStep{{healingEvent("evt_heal", 10, stateActive()), onboarding.OutcomeUnknown}},
			check: func(t *testing.T, h *harness) {
				if u := h.user(t, alice); u.Account != nil {
					t.Fatalf("alice got bob's account: %+v", *u.Account)
				}
				h.wantOwner(t, acctAlice, bob)
			},
		},
		{
			name:  "a snapshot that may create the record completes a live claim",
			setup: pendingClaim,
			steps: []eventStep{{healingEvent("evt_heal", 10, stateActive()), onboarding.OutcomeApplied}},
			want: func() onboarding.AccountRecord {
				r := onboarding.AccountRecord{
					UserID: alice, AccountID: acctAlice, Country: "US", ServiceAgreement: "full",
					State: stateActive(), StateVersion: vBase + 10, CreatedAt: eventNow(10), UpdatedAt: eventNow(10),
				}
				r.State.RequestedCapabilities = createParams(alice).Capabilities // the claim's
				return r
			},
			check: func(t *testing.T, h *harness) {
				ctx := context.Background()
				h.wantOwner(t, acctAlice, alice)
				if err := h.store.CompleteCreation(ctx, baseRecord(), claim1); !errors.Is(err, onboarding.ErrConflict) {
					t.Errorf("CompleteCreation by the healed claim = %v, want ErrConflict", err)
				}
				if err := h.store.ReleaseClaim(ctx, alice, newClaim(claim1, t0, 1)); !errors.Is(err, onboarding.ErrConflict) {
					t.Errorf("ReleaseClaim by the healed claim = %v, want ErrConflict", err)
				}
				if err := h.store.ClaimCreation(ctx, alice, newClaim(claim2, t0.Add(time.Hour), 0), t0.Add(time.Hour)); !errors.Is(err, onboarding.ErrConflict) {
					t.Errorf("ClaimCreation after healing = %v, want ErrConflict", err)
				}
			},
		},
		{
			name:  "a snapshot that may create the record keeps the stored creation facts",
			setup: setupAccount,
			steps: []eventStep{{func() onboarding.StateChange {
				c := healingEvent("evt_heal", 10, stateActive())
				c.Country, c.ServiceAgreement = "CA", "recipient"
				return c
			}(), onboarding.OutcomeApplied}},
			want: func() onboarding.AccountRecord { return recordAfter(10, stateActive()) },
		},
		{
			name:  "events for a record holding a different account are not this user's",
			setup: setupAccount,
			steps: []eventStep{
				{otherAccount(healingEvent("evt_other", 10, stateActive())), onboarding.OutcomeUnknown},
				{otherAccount(snapshotEvent("evt_other2", 10, stateActive())), onboarding.OutcomeUnknown},
				{otherAccount(capabilityEvent("evt_other3", 10, "transfers", "active")), onboarding.OutcomeUnknown},
				{otherAccount(deauthEvent("evt_other4", 10)), onboarding.OutcomeUnknown},
			},
			want: baseRecord,
			check: func(t *testing.T, h *harness) {
				h.wantNoOwner(t, acctOther)
				h.wantOwner(t, acctAlice, alice)
			},
		},
		{
			name: "events that may not create the record leave an unknown user alone",
			steps: []eventStep{
				{snapshotEvent("evt_snap", 10, stateActive()), onboarding.OutcomeUnknown},
				{capabilityEvent("evt_cap", 10, "transfers", "active"), onboarding.OutcomeUnknown},
				{deauthEvent("evt_deauth", 10), onboarding.OutcomeUnknown},
			},
			check: func(t *testing.T, h *harness) {
				h.wantNoUser(t, alice)
				h.wantNoOwner(t, acctAlice)
			},
		},
		{
			name:  "events that may not create the record leave a pending claim alone",
			setup: pendingClaim,
			steps: []eventStep{
				{snapshotEvent("evt_snap", 10, stateActive()), onboarding.OutcomeUnknown},
				{capabilityEvent("evt_cap", 10, "transfers", "active"), onboarding.OutcomeUnknown},
				{deauthEvent("evt_deauth", 10), onboarding.OutcomeUnknown},
			},
			check: func(t *testing.T, h *harness) {
				if u := h.user(t, alice); u.Account != nil || u.Claim == nil || u.Claim.ClaimID != claim1 {
					t.Fatalf("GetUser = %+v, want claim-1 still pending", u)
				}
			},
		},
		{
			name:  "an event that found no record can apply later, since no marker was written",
			setup: pendingClaim,
			steps: []eventStep{
				{capabilityEvent("evt_cap", 20, "transfers", "active"), onboarding.OutcomeUnknown},
				{healingEvent("evt_heal", 10, stateOnboarding()), onboarding.OutcomeApplied},
				{capabilityEvent("evt_cap", 20, "transfers", "active"), onboarding.OutcomeApplied},
			},
			want: func() onboarding.AccountRecord {
				r := recordAfter(20, stateOnboarding())
				r.State.Capabilities["transfers"] = "active"
				r.State.RequestedCapabilities = createParams(alice).Capabilities // the claim's
				r.CreatedAt = eventNow(10)
				return r
			},
		},
	}
	eachEngine(t, func(t *testing.T, e testenv.Engine) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				h := newHarness(t, e)
				if tc.setup != nil {
					tc.setup(t, h)
				}
				applied := map[string]onboarding.StateChange{}
				for i, step := range tc.steps {
					got, err := h.store.ApplyEvent(context.Background(), step.change)
					if err != nil || got != step.want {
						t.Fatalf("step %d: ApplyEvent(%s) = %q, %v; want %q", i, step.change.EventID, got, err, step.want)
					}
					if got == onboarding.OutcomeApplied {
						applied[step.change.EventID] = step.change
					}
				}
				// The processed marker exists exactly for applied events, and
				// expires with the table's TTL at RetainUntil.
				for _, step := range tc.steps {
					id := step.change.EventID
					if c, ok := applied[id]; ok {
						h.wantExpiresAt(t, "EVENT#"+id, c.RetainUntil)
					} else if item := h.raw(t, "EVENT#"+id); len(item) != 0 {
						t.Errorf("event %s was not applied but its marker exists: %v", id, item)
					}
				}
				if tc.want != nil {
					h.wantAccount(t, tc.want())
				} else if u, err := h.store.GetUser(context.Background(), alice); err == nil && u.Account != nil {
					t.Errorf("alice has an account: %+v", *u.Account)
				}
				if tc.check != nil {
					tc.check(t, h)
				}
			})
		}
	})
}

// ---- writes the SDK retried after their answer was lost ----

// retriedWrites applies every update and transaction twice and answers
// with the second result: what the SDK does when a write was applied but
// its answer was lost ("use of closed network connection").
func retriedWrites(db dynamostore.Client) funcClient {
	c := passthrough(db)
	c.updateItem = func(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
		_, _ = db.UpdateItem(ctx, in, o...)
		return db.UpdateItem(ctx, in, o...)
	}
	c.transactWriteItems = func(ctx context.Context, in *dynamodb.TransactWriteItemsInput, o ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
		_, _ = db.TransactWriteItems(ctx, in, o...)
		return db.TransactWriteItems(ctx, in, o...)
	}
	return c
}

func TestAWriteThatMeetsItsOwnRetryKeepsItsAnswer(t *testing.T) {
	ctx := context.Background()
	retried := func(h *harness) *dynamostore.Store { return dynamostore.New(retriedWrites(h.db), h.table) }
	runCases(t, []storeCase{
		{"a reserved refresh token is the reserver's", func(t *testing.T, h *harness) {
			if err := h.store.PutRefreshToken(ctx, refreshToken("d00d")); err != nil {
				t.Fatal(err)
			}
			tok, err := retried(h).ClaimRefreshToken(ctx, "d00d", t0, lz(t0.Add(redeemLease)))
			if err != nil || tok.AccountID != acctAlice {
				t.Fatalf("ClaimRefreshToken = %+v, %v; want the token", tok, err)
			}
			// Anybody else's claim is still refused.
			if _, err := h.store.ClaimRefreshToken(ctx, "d00d", t0, lz(t0.Add(time.Minute))); !errors.Is(err, onboarding.ErrTokenInvalid) {
				t.Fatalf("another reserver = %v, want ErrTokenInvalid", err)
			}
		}},
		{"a prefill lease is the taker's", func(t *testing.T, h *harness) {
			h.withAccount(t)
			if _, taken, err := retried(h).BeginPrefill(ctx, alice, t0, lz(t0.Add(time.Minute))); err != nil || !taken {
				t.Fatalf("BeginPrefill = %v, %v; want taken", taken, err)
			}
			if _, taken, _ := h.store.BeginPrefill(ctx, alice, t0, lz(t0.Add(2*time.Minute))); taken {
				t.Fatal("another update took the lease too")
			}
		}},
		{"a counted use is counted once", func(t *testing.T, h *harness) {
			for i := range 2 {
				if ok, _, err := retried(h).TakeSlot(ctx, "links#alice", 2, time.Hour, t0.Add(time.Duration(i)*time.Minute)); err != nil || !ok {
					t.Fatalf("use %d = %v, %v; want allowed", i, ok, err)
				}
			}
			if ok, _, _ := h.store.TakeSlot(ctx, "links#alice", 2, time.Hour, t0.Add(2*time.Minute)); ok {
				t.Fatal("a third use within the hour was allowed under a limit of 2")
			}
		}},
		{"a completed creation is the completer's", func(t *testing.T, h *harness) {
			h.claim(t, alice, newClaim(claim1, t0.Add(lease), 0), t0)
			if err := retried(h).CompleteCreation(ctx, baseRecord(), claim1); err != nil {
				t.Fatalf("CompleteCreation = %v, want nil", err)
			}
			h.wantOwner(t, acctAlice, alice)
			rec := baseRecord()
			if err := h.store.CompleteCreation(ctx, rec, claim2); !errors.Is(err, onboarding.ErrConflict) {
				t.Fatalf("another claim's CompleteCreation = %v, want ErrConflict", err)
			}
		}},
	})
}

// ---- storage failures ----

// funcClient is a dynamostore.Client made of functions, to inject faults.
type funcClient struct {
	getItem            func(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	putItem            func(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	updateItem         func(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	transactWriteItems func(context.Context, *dynamodb.TransactWriteItemsInput, ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
	query              func(context.Context, *dynamodb.QueryInput, ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	batchGetItem       func(context.Context, *dynamodb.BatchGetItemInput, ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
}

func (c funcClient) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	return c.getItem(ctx, in, o...)
}

func (c funcClient) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	return c.putItem(ctx, in, o...)
}

func (c funcClient) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	return c.updateItem(ctx, in, o...)
}

func (c funcClient) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, o ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	return c.transactWriteItems(ctx, in, o...)
}

func (c funcClient) Query(ctx context.Context, in *dynamodb.QueryInput, o ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	return c.query(ctx, in, o...)
}

func (c funcClient) BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	return c.batchGetItem(ctx, in, o...)
}

// passthrough calls db for everything.
func passthrough(db dynamostore.Client) funcClient {
	return funcClient{getItem: db.GetItem, putItem: db.PutItem, updateItem: db.UpdateItem, transactWriteItems: db.TransactWriteItems,
		query: db.Query, batchGetItem: db.BatchGetItem}
}

// failing returns err from every call.
func failing(err error) funcClient {
	return funcClient{
		getItem: func(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
			return nil, err
		},
		putItem: func(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
			return nil, err
		},
		updateItem: func(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
			return nil, err
		},
		transactWriteItems: func(context.Context, *dynamodb.TransactWriteItemsInput, ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
			return nil, err
		},
		query: func(context.Context, *dynamodb.QueryInput, ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
			return nil, err
		},
		batchGetItem: func(context.Context, *dynamodb.BatchGetItemInput, ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
			return nil, err
		},
	}
}

// storeOp is one Store call whose only possible failure here is storage.
type storeOp struct {
	name string
	call func(ctx context.Context, st *dynamostore.Store) error
}

var storeOps = []storeOp{
	{"GetUser", func(ctx context.Context, st *dynamostore.Store) error {
		_, err := st.GetUser(ctx, alice)
		return err
	}},
	{"ClaimCreation", func(ctx context.Context, st *dynamostore.Store) error {
		return st.ClaimCreation(ctx, bob, newClaim(claim2, t0.Add(lease), 0), t0)
	}},
	{"CompleteCreation", func(ctx context.Context, st *dynamostore.Store) error {
		rec := baseRecord()
		rec.UserID, rec.AccountID = bob, acctOther
		return st.CompleteCreation(ctx, rec, claim2)
	}},
	{"ReleaseClaim", func(ctx context.Context, st *dynamostore.Store) error {
		return st.ReleaseClaim(ctx, bob, newClaim(claim2, t0, 1))
	}},
	{"SaveState", func(ctx context.Context, st *dynamostore.Store) error {
		_, err := st.SaveState(ctx, alice, stateActive(), vBase+60, t0.Add(time.Hour), onboarding.CauseRefresh)
		return err
	}},
	{"LockPrefill", func(ctx context.Context, st *dynamostore.Store) error {
		_, _, err := st.LockPrefill(ctx, alice, acctAlice, t0.Add(time.Minute))
		return err
	}},
	{"BeginPrefill", func(ctx context.Context, st *dynamostore.Store) error {
		_, _, err := st.BeginPrefill(ctx, alice, t0.Add(time.Minute), lz(t0.Add(2*time.Minute)))
		return err
	}},
	{"EndPrefill", func(ctx context.Context, st *dynamostore.Store) error {
		return st.EndPrefill(ctx, alice, lz(t0.Add(2*time.Minute)))
	}},
	{"TakeSlot", func(ctx context.Context, st *dynamostore.Store) error {
		_, _, err := st.TakeSlot(ctx, "links#alice", 3, time.Hour, t0)
		return err
	}},
	{"PutRefreshToken", func(ctx context.Context, st *dynamostore.Store) error {
		return st.PutRefreshToken(ctx, refreshToken("f00d"))
	}},
	{"ClaimRefreshToken", func(ctx context.Context, st *dynamostore.Store) error {
		_, err := st.ClaimRefreshToken(ctx, "c0ffee", t0, lz(t0.Add(redeemLease)))
		return err
	}},
	{"ReleaseRefreshToken", func(ctx context.Context, st *dynamostore.Store) error {
		return st.ReleaseRefreshToken(ctx, "c0ffee", lz(t0.Add(redeemLease)))
	}},
	{"SpendRefreshToken", func(ctx context.Context, st *dynamostore.Store) error {
		return st.SpendRefreshToken(ctx, "c0ffee", t0)
	}},
	{"FindUserByAccount", func(ctx context.Context, st *dynamostore.Store) error {
		_, err := st.FindUserByAccount(ctx, acctAlice)
		return err
	}},
	{"ApplyEvent", func(ctx context.Context, st *dynamostore.Store) error {
		out, err := st.ApplyEvent(ctx, snapshotEvent("evt_1", 10, stateActive()))
		if err != nil && out != "" {
			return fmt.Errorf("outcome %q together with error: %w", out, err)
		}
		return err
	}},
	{"ApplyEvent that may create the record", func(ctx context.Context, st *dynamostore.Store) error {
		c := healingEvent("evt_2", 10, stateActive())
		c.UserID, c.AccountID = bob, acctOther
		out, err := st.ApplyEvent(ctx, c)
		if err != nil && out != "" {
			return fmt.Errorf("outcome %q together with error: %w", out, err)
		}
		return err
	}},
}

func wantStorageUnavailable(t *testing.T, what string, err error) {
	t.Helper()
	switch {
	case err == nil:
		t.Errorf("%s succeeded on a failing client", what)
	case !errors.Is(err, onboarding.ErrStorageUnavailable):
		t.Errorf("%s = %v, want ErrStorageUnavailable", what, err)
	case errors.Is(err, onboarding.ErrConflict), errors.Is(err, onboarding.ErrNotFound), errors.Is(err, onboarding.ErrTokenInvalid):
		t.Errorf("%s = %v, which also claims an answer (conflict, not found or token invalid)", what, err)
	}
}

func TestStorageFailuresAreRetryable(t *testing.T) {
	faults := []struct {
		name string
		err  error
	}{
		{"network error", errors.New("dial tcp 127.0.0.1:8000: connect: connection refused")},
		{"deadline", fmt.Errorf("operation error DynamoDB: %w", context.DeadlineExceeded)},
		{"throughput exceeded", &types.ProvisionedThroughputExceededException{Message: aws.String("slow down")}},
		{"internal server error", &types.InternalServerError{Message: aws.String("oops")}},
		{"transaction conflict", &types.TransactionCanceledException{
			Message: aws.String("Transaction cancelled [None, TransactionConflict]"),
			CancellationReasons: []types.CancellationReason{
				{Code: aws.String("None")}, {Code: aws.String("TransactionConflict")},
			},
		}},
		{"condition failure mixed with throttling", &types.TransactionCanceledException{
			Message: aws.String("Transaction cancelled [ConditionalCheckFailed, ThrottlingError]"),
			CancellationReasons: []types.CancellationReason{
				{Code: aws.String("ConditionalCheckFailed")}, {Code: aws.String("ThrottlingError")},
			},
		}},
	}
	eachEngine(t, func(t *testing.T, e testenv.Engine) {
		// Real data behind the faults: a failing read must not look like
		// "not found", nor a failing write like a lost condition.
		h := newHarness(t, e)
		h.withAccount(t)
		h.claim(t, bob, newClaim(claim2, t0.Add(lease), 0), t0)
		if err := h.store.PutRefreshToken(context.Background(), refreshToken("c0ffee")); err != nil {
			t.Fatal(err)
		}
		for _, f := range faults {
			t.Run(f.name, func(t *testing.T) {
				st := dynamostore.New(failing(f.err), h.table)
				for _, op := range storeOps {
					wantStorageUnavailable(t, op.name, op.call(context.Background(), st))
				}
			})
		}
		// Nothing above changed the data.
		h.wantAccount(t, baseRecord())
		if u := h.user(t, bob); u.Claim == nil || u.Claim.ClaimID != claim2 {
			t.Fatalf("bob = %+v, want his claim", u)
		}
		if _, err := redeem(context.Background(), h.store, "c0ffee", t0); err != nil {
			t.Fatalf("token after the faults: %v", err)
		}
	})
}

func TestStorageFailureAfterALostConditionIsRetryable(t *testing.T) {
	// SaveState loses to newer state, then cannot re-read it: the caller
	// must retry, not hear "not found".
	runCases(t, []storeCase{
		{"SaveState re-read fails", func(t *testing.T, h *harness) {
			h.withAccount(t)
			c := passthrough(h.db)
			c.getItem = failing(errors.New("connection reset by peer")).getItem
			_, err := dynamostore.New(c, h.table).SaveState(context.Background(), alice, stateActive(), vBase-1, t0.Add(time.Hour), onboarding.CauseRefresh)
			wantStorageUnavailable(t, "SaveState", err)
			h.wantAccount(t, baseRecord())
		}},
	})
}
