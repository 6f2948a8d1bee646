package lambdatest

import (
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"testing"

	"github.com/connectexpress/onboarding/shared/config"
	"github.com/connectexpress/onboarding/shared/dynamostore"
)

// opsFunction is a function of template.yaml that serves no route: the
// reconciliation sweep and the status-event consumer.
type opsFunction struct {
	ID      string // logical id in template.yaml
	Pkg     string // the wiring package its main.go calls (package name)
	Builder string // and the function of it
}

// opsFunctions by their folder under functions/.
var opsFunctions = map[string]opsFunction{
	"reconcile":    {ID: "ReconcileFunction", Pkg: "app", Builder: "ReconcileLambda"},
	"statusevents": {ID: "StatusEventsFunction", Pkg: "eventsapp", Builder: "Lambda"},
}

func isOpsFunction(id string) bool {
	for _, f := range opsFunctions {
		if f.ID == id {
			return true
		}
	}
	return false
}

// eventBusARN is the one event bus StatusEventsFunction may publish to.
const eventBusARN = "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/${EventBusName}"

// opsAttrs stand in for the attributes CloudFormation knows at deploy time.
var opsAttrs = map[string]string{
	"Table.Arn":                             "arn:aws:dynamodb:eu-west-1:123456789012:table/connect-onboarding-Table-1ABC",
	"Table.StreamArn":                       "arn:aws:dynamodb:eu-west-1:123456789012:table/connect-onboarding-Table-1ABC/stream/2026-12-01T00:00:00.000",
	"StatusEventsDeadLetterQueue.Arn":       "arn:aws:sqs:eu-west-1:123456789012:connect-onboarding-StatusEventsDeadLetterQueue-1ABC",
	"StatusEventsDeadLetterQueue.QueueName": "connect-onboarding-StatusEventsDeadLetterQueue-1ABC",
	"StatusEventBus.Arn":                    "arn:aws:events:eu-west-1:123456789012:event-bus/connect-onboarding-status-events",
	"StatusEventsFunctionRole.Arn":          statusEventsRoleARN,
}

// wantOpsGrants is what each ops function's code does, and nothing more.
var wantOpsGrants = map[string]map[string][]string{
	// Lease and checkpoint, listed pages, owner lookups, the webhooks'
	// versioned write; the review-queue index, which the sweep reads whole, and no Scan of the table; and the
	// Stripe key.
	"reconcile": {
		"Table":                    {"dynamodb:BatchGetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"},
		"Table/index/review-queue": {"dynamodb:Query"},
		"StripeSecret":             {"secretsmanager:GetSecretValue"},
	},
	// The stream, the one bus, the dead-letter queue: no table item, no secret.
	"statusevents": {
		"TableStream":     {"dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"},
		"EventBus":        {"events:PutEvents"},
		"DeadLetterQueue": {"sqs:SendMessage"},
	},
}

func TestTemplateOpsFunctionsAreBuiltRunAndGrantedWhatTheyUse(t *testing.T) {
	tpl := loadTemplate(t)
	read := map[string]bool{"AWS_ENDPOINT_URL_SECRETS_MANAGER": true, "AWS_ENDPOINT_URL_EVENTBRIDGE": true}
	if _, err := config.Load(func(k string) (string, bool) { read[k] = true; return "", false }); err != nil {
		t.Fatal(err)
	}
	e := newEvaluator(tpl, requiredParams, deployRefs, opsAttrs)
	for dir, f := range opsFunctions {
		t.Run(f.ID, func(t *testing.T) {
			if tpl.Resources[f.ID].Type != "AWS::Serverless::Function" {
				t.Fatalf("%s is not an AWS::Serverless::Function", f.ID)
			}
			checkBuildTarget(t, f.ID, dir)
			prop := func(name string) any { return tpl.FunctionProperty(f.ID, name) }
			if asString(prop("Runtime")) != "provided.al2023" || asString(prop("Handler")) != "bootstrap" || asString(prop("Tracing")) != "Active" {
				t.Errorf("want provided.al2023, bootstrap, active tracing")
			}
			logGroup := tpl.Resources[refOf(asMap(prop("LoggingConfig"))["LogGroup"])]
			if logGroup.Type != "AWS::Logs::LogGroup" || refOf(logGroup.Properties["RetentionInDays"]) != "LogRetentionInDays" {
				t.Errorf("LoggingConfig.LogGroup must name its own log group with RetentionInDays !Ref LogRetentionInDays")
			}
			for _, metric := range []string{"Errors", "Throttles"} {
				if !hasFunctionAlarm(tpl, f.ID, metric) {
					t.Errorf("no alarm on AWS/Lambda %s of %s", metric, f.ID)
				}
			}
			if got := grants(t, tpl, f.ID); !maps.EqualFunc(got, wantOpsGrants[dir], slices.Equal) {
				t.Errorf("granted %v, want %v", got, wantOpsGrants[dir])
			}
			vars := env(t, tpl, f.ID, e)
			for name := range vars {
				if !read[name] {
					t.Errorf("sets %s, which nothing reads", name)
				}
			}
			if (vars["STRIPE_SECRET_ARN"] != "") != (dir == "reconcile") || vars["STRIPE_WEBHOOK_SECRET_ARN"] != "" {
				t.Errorf("only the sweep holds the Stripe key, and no ops function the signing secrets: %v", vars)
			}
			if _, err := config.Load(func(k string) (string, bool) { v, ok := vars[k]; return v, ok }); err != nil {
				t.Errorf("would refuse to start: %v", err)
			}
		})
	}
}

func TestTemplateSchedulesTheSweepAndBoundsItsRate(t *testing.T) {
	tpl := loadTemplate(t)
	if got := asString(tpl.Parameters["SweepSchedule"]["Default"]); got != "rate(15 minutes)" {
		t.Errorf("SweepSchedule defaults to %q, want rate(15 minutes)", got)
	}
	var schedules []string
	for name, ev := range asMap(tpl.Resources["ReconcileFunction"].Properties["Events"]) {
		ev := asMap(ev)
		if asString(ev["Type"]) == "Schedule" {
			schedules = append(schedules, name)
			if refOf(asMap(ev["Properties"])["Schedule"]) != "SweepSchedule" {
				t.Errorf("event %s: Schedule must be !Ref SweepSchedule", name)
			}
		}
	}
	if len(schedules) != 1 {
		t.Errorf("ReconcileFunction has %d schedules, want 1", len(schedules))
	}
	// The function stops StopBefore (15 s) ahead of its deadline: its
	// timeout must leave room for pages, and a run must end before the next.
	timeout, err := strconv.Atoi(asString(tpl.FunctionProperty("ReconcileFunction", "Timeout")))
	if err != nil || timeout < 60 || timeout > 900 {
		t.Errorf("ReconcileFunction Timeout %v, want 60 to 900 s", tpl.FunctionProperty("ReconcileFunction", "Timeout"))
	}

	for _, c := range []struct {
		params map[string]string
		rate   float64
	}{{nil, config.DefaultSweepRate}, {map[string]string{"SweepStripeRate": "5"}, 5}} {
		params := maps.Clone(requiredParams)
		maps.Copy(params, c.params)
		vars := env(t, tpl, "ReconcileFunction", newEvaluator(tpl, params, deployRefs, opsAttrs))
		cfg, err := config.Load(func(k string) (string, bool) { v, ok := vars[k]; return v, ok })
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Ops.SweepRate != c.rate {
			t.Errorf("params %v: the sweep runs at %v Stripe requests/s, want %v", c.params, cfg.Ops.SweepRate, c.rate)
		}
	}
	if got := asString(tpl.Parameters["SweepStripeRate"]["Default"]); got != strconv.Itoa(config.DefaultSweepRate) {
		t.Errorf("SweepStripeRate defaults to %s, config to %d", got, config.DefaultSweepRate)
	}
}

func TestTemplateAlarmsOnSweepErrorsAndOrphans(t *testing.T) {
	tpl := loadTemplate(t)
	e := newEvaluator(tpl, requiredParams, deployRefs, opsAttrs)
	namespace := env(t, tpl, "ReconcileFunction", e)["METRICS_NAMESPACE"]
	if namespace == "" {
		t.Fatal("ReconcileFunction sets no METRICS_NAMESPACE")
	}
	for _, metric := range []string{"SweepErrors", "SweepOrphans"} {
		if !hasMetricAlarm(t, tpl, e, namespace, metric, "Component", "sweep") {
			t.Errorf("no alarm on %s/%s (Component=sweep) at 1 or more", namespace, metric)
		}
	}
}

// hasMetricAlarm looks for an alarm at >= 1 on one metric of one dimension.
func hasMetricAlarm(t *testing.T, tpl *Template, e *evaluator, namespace, metric, dimension, value string) bool {
	t.Helper()
	for _, id := range tpl.ResourcesOfType("AWS::CloudWatch::Alarm") {
		p := tpl.Resources[id].Properties
		ns, err := e.str(p["Namespace"])
		if err != nil || ns != namespace || asString(p["MetricName"]) != metric {
			continue
		}
		dims := asList(p["Dimensions"])
		if len(dims) != 1 || asString(asMap(dims[0])["Name"]) != dimension {
			continue
		}
		v, err := e.str(asMap(dims[0])["Value"])
		if err == nil && v == value && asString(p["Threshold"]) == "1" && asString(p["ComparisonOperator"]) == "GreaterThanOrEqualToThreshold" {
			return true
		}
	}
	return false
}

func TestTemplateStreamsStatusChangesWithoutLosingThem(t *testing.T) {
	tpl := loadTemplate(t)
	stream := asMap(tpl.Resources["Table"].Properties["StreamSpecification"])
	if got := asString(stream["StreamViewType"]); got != "NEW_AND_OLD_IMAGES" {
		t.Errorf("Table StreamViewType %q, want NEW_AND_OLD_IMAGES: the consumer compares both images", got)
	}
	mappings := tpl.ResourcesOfType("AWS::Lambda::EventSourceMapping")
	if len(mappings) != 1 {
		t.Fatalf("want one event source mapping, found %v", mappings)
	}
	p := tpl.Resources[mappings[0]].Properties
	if refOf(p["FunctionName"]) != "StatusEventsFunction" {
		t.Errorf("the stream must feed StatusEventsFunction")
	}
	if id, attr := getAttOf(p["EventSourceArn"]); id != "Table" || attr != "StreamArn" {
		t.Errorf("EventSourceArn must be !GetAtt Table.StreamArn")
	}
	if got := asList(p["FunctionResponseTypes"]); !slices.Contains(got, any("ReportBatchItemFailures")) {
		t.Errorf("FunctionResponseTypes %v: the consumer answers partial batch failures", got)
	}
	// From the oldest record the stream keeps: none is skipped at creation.
	if asString(p["StartingPosition"]) != "TRIM_HORIZON" {
		t.Errorf("StartingPosition %v, want TRIM_HORIZON", p["StartingPosition"])
	}
	dest := asMap(asMap(asMap(p["DestinationConfig"])["OnFailure"])["Destination"])
	if id, attr := getAttOf(dest); id != "StatusEventsDeadLetterQueue" || attr != "Arn" ||
		tpl.Resources[id].Type != "AWS::SQS::Queue" {
		t.Errorf("DestinationConfig.OnFailure must be the dead-letter queue's Arn, got %v", dest)
	}
	retries, err := strconv.Atoi(asString(p["MaximumRetryAttempts"]))
	if err != nil || retries < 1 {
		t.Errorf("MaximumRetryAttempts %v: a throttled PutEvents must be retried before the DLQ", p["MaximumRetryAttempts"])
	}
	// The filter lets through exactly the items the consumer reads.
	filters := asList(asMap(p["FilterCriteria"])["Filters"])
	if len(filters) != 1 {
		t.Fatalf("want one filter, got %v", filters)
	}
	var pattern struct {
		DynamoDB struct {
			Keys struct {
				PK struct {
					S []struct {
						Prefix string `json:"prefix"`
					}
				} `json:"pk"`
			}
		} `json:"dynamodb"`
	}
	if err := json.Unmarshal([]byte(asString(asMap(filters[0])["Pattern"])), &pattern); err != nil {
		t.Fatal(err)
	}
	if s := pattern.DynamoDB.Keys.PK.S; len(s) != 1 || s[0].Prefix != dynamostore.UserKeyPrefix {
		t.Errorf("filter %v, want the users' records: pk prefix %q", asMap(filters[0])["Pattern"], dynamostore.UserKeyPrefix)
	}

	e := newEvaluator(tpl, requiredParams, deployRefs, opsAttrs)
	if !hasMetricAlarm(t, tpl, e, "AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", opsAttrs["StatusEventsDeadLetterQueue.QueueName"]) {
		t.Error("no alarm on the dead-letter queue's depth")
	}

	// The bus and its policy: TestTemplatePublishesStatusEventsToABusOnlyItsFunctionCanPublishTo.
}
