package lambdatest

import (
	"bufio"
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"github.com/connectexpress/onboarding/internal/testenv"
	"github.com/connectexpress/onboarding/shared/app"
	"github.com/connectexpress/onboarding/shared/dynamostore"
	"github.com/connectexpress/onboarding/shared/onboarding"
	"github.com/connectexpress/onboarding/shared/statusevents"
)

// TestOpsFunctionsRunAsLambdas runs the built reconcile and statusevents
// bootstraps under the emulator with the template's environment: the sweep
// heals a record a lost webhook left stale, the write reaches the table's
// stream on moto, and the consumer publishes its status change to an
// EventBridge bus on moto, whose rule delivers it to a queue.
func TestOpsFunctionsRunAsLambdas(t *testing.T) {
	motoURL := testenv.MotoURL(t)
	tpl := loadTemplate(t)
	db := testenv.MotoClient(t)
	table, streamARN := testenv.NewStreamTable(t, db)
	stack := testenv.NewStack(t, testenv.StackOptions{Table: table})
	stack.Stripe.EmulateAccountList()
	store := dynamostore.New(db, table)
	ctx := context.Background()

	// A user onboards; then a webhook says restricted, and the webhook
	// that would have said otherwise never comes.
	resp, body := stack.Do(t, "POST", "/accounts", stack.Token("ops-user", "ops@example.com"), `{"country":"US","business_type":"individual"}`)
	if resp.StatusCode != 201 {
		t.Fatalf("POST /accounts: %d %s", resp.StatusCode, body)
	}
	user, err := store.GetUser(ctx, "ops-user")
	if err != nil || user.Account == nil {
		t.Fatalf("GetUser: %+v %v", user, err)
	}
	acct := user.Account
	restricted := acct.State
	restricted.DetailsSubmitted = true
	restricted.Requirements.PastDue = []string{"individual.verification.document"}
	if out, err := store.ApplyEvent(ctx, onboarding.StateChange{EventID: "evt_ops_1", UserID: "ops-user", AccountID: acct.AccountID,
		Kind: onboarding.ChangeSnapshot, Version: acct.StateVersion, State: restricted, Now: time.Now(), RetainUntil: time.Now().Add(time.Hour),
	}); err != nil || out != onboarding.OutcomeApplied {
		t.Fatalf("ApplyEvent: %s %v", out, err)
	}
	// The sweep's version is the second before its read: past the webhook's.
	for time.Now().Unix() < acct.StateVersion+2 {
		time.Sleep(100 * time.Millisecond)
	}

	keyARN := testenv.CreateSecret(t, motoURL, `{"stripe_secret_key":"sk_test_ops`+testenv.RandomID(6)+`"}`)
	bus := "ops-" + testenv.RandomID(8)
	params := maps.Clone(requiredParams)
	params["EventBusName"] = bus
	refs := maps.Clone(deployRefs)
	refs["Table"], refs["StripeSecret"], refs["AWS::Region"] = table, keyARN, region
	e := newEvaluator(tpl, params, refs, opsAttrs)
	rie := buildRIE(t)
	ids := map[string]string{}
	for dir, f := range opsFunctions {
		ids[dir] = f.ID
	}
	bootstraps := buildHostBootstraps(t, ids)
	start := func(id string, local map[string]string) (*lambda, map[string]string) {
		vars := env(t, tpl, id, e)
		for k, v := range local {
			if _, declared := vars[k]; !declared {
				t.Fatalf("%s does not declare %s: sam local could not set it either", id, k)
			}
			vars[k] = v
		}
		rec := newAWSRecorder(t, motoURL)
		for k, v := range vars {
			vars[k] = strings.ReplaceAll(v, "{aws}", rec.URL)
		}
		// The emulator gives each invocation the template's timeout.
		vars["AWS_LAMBDA_FUNCTION_TIMEOUT"] = asString(tpl.FunctionProperty(id, "Timeout"))
		return startLambda(t, rie, id, bootstraps[id], vars, rec), vars
	}

	// The bus of the platform's other services, with a rule to a queue.
	bridge := eventbridge.New(eventbridge.Options{Region: region, BaseEndpoint: aws.String(motoURL),
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")})
	if _, err := bridge.CreateEventBus(ctx, &eventbridge.CreateEventBusInput{Name: &bus}); err != nil {
		t.Fatal(err)
	}
	queueURL, queueARN := testenv.NewQueue(t, bus)
	pattern, _ := json.Marshal(map[string]any{"source": []string{statusevents.Source}, "detail": map[string][]string{"account_id": {acct.AccountID}}})
	if _, err := bridge.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("seller"), EventBusName: &bus, EventPattern: aws.String(string(pattern))}); err != nil {
		t.Fatal(err)
	}
	if _, err := bridge.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("seller"), EventBusName: &bus,
		Targets: []ebtypes.Target{{Id: aws.String("queue"), Arn: &queueARN}}}); err != nil {
		t.Fatal(err)
	}

	reconcile, reconcileVars := start("ReconcileFunction", map[string]string{
		"DYNAMODB_ENDPOINT": "{aws}", "AWS_ENDPOINT_URL_SECRETS_MANAGER": "{aws}", "STRIPE_API_BASE": stack.Stripe.URL,
	})
	t.Run("reconcile heals the record on its schedule's event", func(t *testing.T) {
		status, raw := reconcile.invokeRaw(t, map[string]any{
			"version": "0", "id": "sched-1", "detail-type": "Scheduled Event", "source": "aws.events", "account": "123456789012",
			"time": time.Now().UTC().Format(time.RFC3339), "region": region, "resources": []string{"arn:aws:events:us-east-1:123456789012:rule/sweep"}, "detail": map[string]any{},
		})
		var report app.SweepReport
		// Applied, or Unchanged when a DynamoDB attempt timed out under load
		// after its write: the retry finds the write's own marker. The
		// record below says which.
		if err := json.Unmarshal(raw, &report); status != 200 || err != nil || !report.PassCompleted || report.Run.Applied+report.Run.Unchanged != 1 || report.StripeRequests < 1 {
			t.Fatalf("reconcile answered %d %s, want a completed pass over 1 account:\n%s", status, raw, reconcile.Logs.String())
		}
		healed, err := store.GetUser(ctx, "ops-user")
		if err != nil || len(healed.Account.State.Requirements.PastDue) != 0 || healed.Account.StateVersion <= acct.StateVersion {
			t.Errorf("after the sweep: %+v %v, want Stripe's state at a newer version", healed.Account, err)
		}
	})

	t.Run("reconcile's metrics are the ones its alarms watch", func(t *testing.T) {
		var emf map[string]any
		sc := bufio.NewScanner(strings.NewReader(reconcile.Logs.String()))
		for sc.Scan() {
			if line := sc.Text(); strings.Contains(line, `"_aws"`) && json.Unmarshal([]byte(line), &emf) == nil {
				break
			}
		}
		if emf == nil {
			t.Fatalf("no Embedded Metric Format line in the logs:\n%s", reconcile.Logs.String())
		}
		var meta struct {
			CloudWatchMetrics []struct {
				Namespace  string
				Dimensions [][]string
				Metrics    []struct{ Name string }
			}
		}
		raw, _ := json.Marshal(emf["_aws"])
		if err := json.Unmarshal(raw, &meta); err != nil || len(meta.CloudWatchMetrics) != 1 {
			t.Fatalf("_aws %s: %v", raw, err)
		}
		cw := meta.CloudWatchMetrics[0]
		if cw.Namespace != reconcileVars["METRICS_NAMESPACE"] || !slices.EqualFunc(cw.Dimensions, [][]string{{"Component"}}, slices.Equal) {
			t.Errorf("metrics in %s by %v, want %s by Component", cw.Namespace, cw.Dimensions, reconcileVars["METRICS_NAMESPACE"])
		}
		component, _ := emf["Component"].(string)
		for _, alarmed := range []string{"SweepErrors", "SweepOrphans"} {
			if !slices.ContainsFunc(cw.Metrics, func(m struct{ Name string }) bool { return m.Name == alarmed }) || emf[alarmed] == nil {
				t.Errorf("the EMF line has no %s", alarmed)
			}
			if !hasMetricAlarm(t, tpl, e, cw.Namespace, alarmed, "Component", component) {
				t.Errorf("no alarm on the %s the function writes (%s, Component=%s)", alarmed, cw.Namespace, component)
			}
		}
		if emf["SweepErrors"] != float64(0) || emf["SweepAccountsListed"] != float64(1) {
			t.Errorf("metrics %v", emf)
		}
	})

	statusEvents, _ := start("StatusEventsFunction", map[string]string{"AWS_ENDPOINT_URL_EVENTBRIDGE": "{aws}"})
	t.Run("statusevents publishes the stream's status changes", func(t *testing.T) {
		var batch []events.DynamoDBEventRecord
		for _, r := range testenv.StreamRecords(t, streamARN) {
			// What the event source mapping's filter lets through.
			if strings.HasPrefix(r.Change.Keys["pk"].String(), dynamostore.UserKeyPrefix) {
				batch = append(batch, r)
			}
		}
		status, raw := statusEvents.invokeRaw(t, events.DynamoDBEvent{Records: batch})
		var out events.DynamoDBEventResponse
		if err := json.Unmarshal(raw, &out); status != 200 || err != nil || out.BatchItemFailures == nil || len(out.BatchItemFailures) != 0 {
			t.Fatalf("statusevents answered %d %s, want no batch item failures:\n%s", status, raw, statusEvents.Logs.String())
		}
		var changes []onboarding.StatusChange
		for _, body := range testenv.ReceiveMessages(t, queueURL, 3) {
			var ev struct {
				DetailType string                  `json:"detail-type"`
				Detail     onboarding.StatusChange `json:"detail"`
			}
			if err := json.Unmarshal([]byte(body), &ev); err != nil || ev.DetailType != statusevents.DetailType {
				t.Fatalf("delivered %s: %v", body, err)
			}
			changes = append(changes, ev.Detail)
		}
		slices.SortFunc(changes, func(a, b onboarding.StatusChange) int { return a.OccurredAt.Compare(b.OccurredAt) })
		// Created, then restricted by the webhook, then healed by the sweep.
		first, last := changes[0], changes[2]
		if first.PreviousStatus != nil || changes[1].Status != onboarding.StatusRestricted || last.PreviousStatus == nil ||
			*last.PreviousStatus != onboarding.StatusRestricted || last.Status == onboarding.StatusRestricted || last.UserID != "ops-user" {
			t.Errorf("delivered %+v", changes)
		}
	})

	t.Run("each ops function makes only the AWS calls its IAM policy allows", func(t *testing.T) {
		resources := map[string]string{table: "Table", table + "/index/review-queue": "Table/index/review-queue", keyARN: "StripeSecret", bus: "EventBus"}
		for _, l := range []*lambda{reconcile, statusEvents} {
			allowed := grants(t, tpl, l.ID)
			var seen []string
			for _, c := range l.AWS.Calls() {
				if !slices.Contains(allowed[resources[c.Resource]], c.Action) {
					t.Errorf("%s called %s on %q, which template.yaml does not allow it", l.ID, c.Action, c.Resource)
				}
				seen = append(seen, c.Action)
			}
			checkWriteKeys(t, tpl, l, table)
			slices.Sort(seen)
			t.Logf("%-22s %s", l.ID, strings.Join(slices.Compact(seen), " "))
			if len(seen) == 0 {
				t.Errorf("%s made no AWS call through the recorder", l.ID)
			}
		}
	})

	for _, l := range []*lambda{reconcile, statusEvents} {
		if ms := coldStart(l.Logs.String()); ms != "" {
			t.Logf("%-22s cold start (INIT) %s ms", l.ID, ms)
		}
	}
}
