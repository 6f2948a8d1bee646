package dynamostore_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/connectexpress/onboarding/internal/testenv"
	"github.com/connectexpress/onboarding/shared/dynamostore"
	"github.com/connectexpress/onboarding/shared/onboarding"
)

// The account's first account.updated event can arrive while the request that created the
// account is still storing it. The event first finds only the claim, so it goes to complete the
// record itself; if the creator stores the account in between, the event must apply to that
// account rather than be dropped as older news: it is the newest state Stripe sent.
func TestAnEventHealingAClaimItsCreatorCompletesMeanwhileStillApplies(t *testing.T) {
	eachEngine(t, func(t *testing.T, e testenv.Engine) {
		h := newHarness(t, e)
		ctx := context.Background()
		h.claim(t, alice, newClaim(claim1, t0.Add(lease), 0), t0)

		var transactions atomic.Int32
		racing := passthrough(h.db)
		racing.transactWriteItems = func(ctx context.Context, in *dynamodb.TransactWriteItemsInput, o ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
			if transactions.Add(1) == 2 { // the event's attempt to complete the record itself
				h.complete(t, baseRecord(), claim1)
			}
			return h.db.TransactWriteItems(ctx, in, o...)
		}
		ev := healingEvent("evt_heal", 10, stateActive())
		got, err := dynamostore.New(racing, h.table).ApplyEvent(ctx, ev)
		if err != nil || got != onboarding.OutcomeApplied {
			t.Fatalf("ApplyEvent = %q, %v; want applied to the account the creator stored", got, err)
		}
		if n := transactions.Load(); n != 3 {
			t.Fatalf("%d transactions, want 3: the update, the completion that lost to the creator, the update again", n)
		}
		want := baseRecord()
		want.State, want.StateVersion, want.UpdatedAt = stateActive(), ev.Version, ev.Now
		h.wantAccount(t, want)
		h.wantExpiresAt(t, "EVENT#evt_heal", ev.RetainUntil)
		h.wantOwner(t, acctAlice, alice)
	})
}
