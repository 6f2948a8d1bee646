package lambdatest

import (
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/connectexpress/onboarding/shared/config"
	"github.com/connectexpress/onboarding/shared/httpapi"
	"github.com/connectexpress/onboarding/shared/statusevents"
)

// tableWrites are the DynamoDB actions that change items. Each must be
// conditioned on the partition keys its function owns; a transaction's
// items are authorized as these actions, one by one
// (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis-iam.html).
var tableWrites = []string{"dynamodb:BatchWriteItem", "dynamodb:ConditionCheckItem", "dynamodb:DeleteItem", "dynamodb:PutItem", "dynamodb:UpdateItem"}

// leadingKeysOperator is the one condition a write may carry: every
// partition key the request touches matches one of the patterns.
const leadingKeysOperator = "ForAllValues:StringLike"

// wantWriteKeys is, per function (its folder under functions/), the key
// prefixes of the items each write action may touch, sorted: what
// shared/dynamostore writes for the function's use cases (docs/architecture.md,
// "Who writes which items", says why each is there).
var wantWriteKeys = map[string]map[string][]string{
	// The claim on the user, then the account and its owner index; the
	// user's update budget for an attempt after a refusal (UPDATES_PER_HOUR).
	// The prefilled email's set (EMAIL#), for the staff's duplicate_email.
	"createaccount": {"dynamodb:PutItem": {"ACCOUNT#*", "USER#*"}, "dynamodb:UpdateItem": {"EMAIL#*", "LIMIT#*", "USER#*"}},
	// ?refresh=true: its slot, the state and its status change; an account
	// Stripe calls gone is stored as a deauthorization (its EVENT# marker).
	"accountstatus": {"dynamodb:PutItem": {"EVENT#*", "STATUS#*"}, "dynamodb:UpdateItem": {"LIMIT#*", "USER#*"}},
	// The update budget (UPDATES_PER_HOUR), the prefill lease; an account
	// Stripe calls gone; a new email's sets (EMAIL#).
	"updateaccount": {"dynamodb:PutItem": {"EVENT#*", "STATUS#*"}, "dynamodb:UpdateItem": {"EMAIL#*", "LIMIT#*", "USER#*"}},
	// The link count, the KYC lock, the refresh token; an account gone.
	"accountlink":       {"dynamodb:PutItem": {"EVENT#*", "STATUS#*", "TOKEN#*"}, "dynamodb:UpdateItem": {"LIMIT#*", "USER#*"}},
	"onboardingsession": {"dynamodb:PutItem": {"EVENT#*", "STATUS#*"}, "dynamodb:UpdateItem": {"LIMIT#*", "USER#*"}},
	// The link count; a refused link's re-read; an account gone.
	"dashboardlink": {"dynamodb:PutItem": {"EVENT#*", "STATUS#*"}, "dynamodb:UpdateItem": {"LIMIT#*", "USER#*"}},
	// The token's reserve, release and spend, the next token, the link
	// count and lock; a bounce's re-read; an account gone.
	"refresh": {"dynamodb:PutItem": {"EVENT#*", "STATUS#*", "TOKEN#*"}, "dynamodb:UpdateItem": {"LIMIT#*", "TOKEN#*", "USER#*"}},
	// The event marker, the record and its status change; a record healed
	// from the account's metadata gets its owner index.
	"webhook": {"dynamodb:PutItem": {"ACCOUNT#*", "EVENT#*", "STATUS#*"}, "dynamodb:UpdateItem": {"USER#*"}},
	// The staff's reads write nothing.
	"adminlistaccounts": {},
	"admingetaccount":   {},
	// Decisions and rejection attempts (REVIEW#, append-only), the record,
	// a rejection's status change; an account gone.
	"adminreviewaccount": {"dynamodb:PutItem": {"EVENT#*", "REVIEW#*", "STATUS#*"}, "dynamodb:UpdateItem": {"USER#*"}},
	// The sweep's lease, checkpoint and listed pages (SWEEP#), and the
	// webhooks' versioned write.
	"reconcile": {"dynamodb:PutItem": {"ACCOUNT#*", "EVENT#*", "STATUS#*", "SWEEP#*"}, "dynamodb:UpdateItem": {"SWEEP#*", "USER#*"}},
	// The stream's consumer reads no item and writes none.
	"statusevents": {},
}

// writeKeys returns the key patterns a function's policy allows each table
// write action on, failing on a write not conditioned on dynamodb:LeadingKeys
// alone.
func writeKeys(t *testing.T, tpl *Template, functionID string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, policy := range asList(tpl.Resources[functionID].Properties["Policies"]) {
		for _, s := range asList(asMap(policy)["Statement"]) {
			st := asMap(s)
			resources := asList(st["Resource"])
			if len(resources) == 0 {
				resources = []any{st["Resource"]}
			}
			onTable := slices.ContainsFunc(resources, func(r any) bool { return grantResource(r) == "Table" })
			actions := asList(st["Action"])
			if len(actions) == 0 {
				actions = []any{st["Action"]}
			}
			for _, a := range actions {
				action := asString(a)
				if !onTable || !slices.Contains(tableWrites, action) {
					continue
				}
				cond := asMap(st["Condition"])
				keys := asMap(cond[leadingKeysOperator])
				patterns := asList(keys["dynamodb:LeadingKeys"])
				if len(cond) != 1 || len(keys) != 1 || len(patterns) == 0 {
					t.Errorf("%s: %s on the table needs Condition {%s: {dynamodb:LeadingKeys: [...]}} and nothing else; got %v",
						functionID, action, leadingKeysOperator, st["Condition"])
					continue
				}
				for _, p := range patterns {
					out[action] = append(out[action], asString(p))
				}
			}
		}
	}
	for a := range out {
		slices.Sort(out[a])
		out[a] = slices.Compact(out[a])
	}
	return out
}

// allFunctionIDs maps every function's folder to its logical id.
func allFunctionIDs(t *testing.T, tpl *Template) map[string]string {
	ids := functionIDs(t, tpl)
	for dir, f := range opsFunctions {
		ids[dir] = f.ID
	}
	return ids
}

func TestTemplateLetsEachFunctionWriteOnlyItsOwnItems(t *testing.T) {
	tpl := loadTemplate(t)
	ids := allFunctionIDs(t, tpl)
	writers := map[string][]string{} // prefix -> functions that may write it
	for dir, id := range ids {
		want, ok := wantWriteKeys[dir]
		if !ok {
			t.Errorf("%s: no wantWriteKeys entry", dir)
			continue
		}
		got := writeKeys(t, tpl, id)
		if !maps.EqualFunc(got, want, slices.Equal) {
			t.Errorf("%s may write %v, want %v", id, got, want)
		}
		for _, patterns := range got {
			for _, p := range patterns {
				if !regexp.MustCompile(`^[A-Z]+#\*$`).MatchString(p) {
					t.Errorf("%s: key pattern %q: want one prefix, PREFIX#*", id, p)
				}
				writers[p] = append(writers[p], dir)
			}
		}
	}
	// The audit trail and the sweep's state have one writer each.
	for prefix, only := range map[string]string{"REVIEW#*": "adminreviewaccount", "SWEEP#*": "reconcile"} {
		if w := slices.Compact(slices.Sorted(slices.Values(writers[prefix]))); !slices.Equal(w, []string{only}) {
			t.Errorf("%s is writable by %v, want %s only", prefix, w, only)
		}
	}
	// The public routes cannot touch the audit trail, the sweep, or (the
	// refresh function) the account index.
	for _, dir := range []string{"refresh", "webhook"} {
		for _, prefix := range []string{"REVIEW#*", "SWEEP#*"} {
			if slices.Contains(writers[prefix], dir) {
				t.Errorf("public function %s may write %s", dir, prefix)
			}
		}
	}
	if slices.Contains(writers["ACCOUNT#*"], "refresh") {
		t.Error("the refresh function may write the account index")
	}
}

// matchesKey says whether IAM's StringLike pattern (* any run, ? one
// character) matches key.
func matchesKey(pattern, key string) bool {
	var re strings.Builder
	re.WriteString("^")
	for _, r := range pattern {
		switch r {
		case '*':
			re.WriteString(".*")
		case '?':
			re.WriteString(".")
		default:
			re.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	re.WriteString("$")
	return regexp.MustCompile(re.String()).MatchString(key)
}

// checkWriteKeys fails for each table write of a function's calls whose
// partition key its policy's dynamodb:LeadingKeys does not allow.
func checkWriteKeys(t *testing.T, tpl *Template, l *lambda, table string) {
	t.Helper()
	allowed := writeKeys(t, tpl, l.ID)
	var written []string // "PutItem EVENT#", for the log
	for _, c := range l.AWS.Calls() {
		if c.Resource != table || !slices.Contains(tableWrites, c.Action) {
			continue
		}
		prefix, _, _ := strings.Cut(c.Key, "#")
		written = append(written, strings.TrimPrefix(c.Action, "dynamodb:")+" "+prefix+"#")
		if c.Key == "" {
			t.Errorf("%s: %s without a recorded partition key", l.ID, c.Action)
			continue
		}
		if !slices.ContainsFunc(allowed[c.Action], func(p string) bool { return matchesKey(p, c.Key) }) {
			t.Errorf("%s: %s on key %q, which its dynamodb:LeadingKeys %v do not allow", l.ID, c.Action, c.Key, allowed[c.Action])
		}
	}
	slices.Sort(written)
	t.Logf("%-22s wrote %s", l.ID, strings.Join(slices.Compact(written), ", "))
}

func TestTemplateProtectsTheTableFromDeletion(t *testing.T) {
	tpl := loadTemplate(t)
	table := tpl.Resources["Table"]
	if got := asString(table.Properties["DeletionProtectionEnabled"]); got != "true" {
		t.Errorf("Table DeletionProtectionEnabled %q, want true", got)
	}
	if table.DeletionPolicy != "Retain" {
		t.Errorf("Table DeletionPolicy %q, want Retain", table.DeletionPolicy)
	}
}

// wantRouteThrottles are the routes without a token, each with its own
// throttle parameters.
var wantRouteThrottles = map[string][2]string{
	"GET /onboarding/refresh": {"RefreshThrottleRate", "RefreshThrottleBurst"},
	"POST /webhooks/stripe":   {"WebhookThrottleRate", "WebhookThrottleBurst"},
}

func TestTemplateThrottlesThePublicRoutesOnTheirOwn(t *testing.T) {
	tpl := loadTemplate(t)
	stage := tpl.Resources["HttpApiStage"]
	settings := asMap(stage.Properties["RouteSettings"])
	var public []string
	for _, r := range httpapi.Routes {
		if r.Public {
			public = append(public, r.Key())
		}
	}
	slices.Sort(public)
	if got := slices.Sorted(maps.Keys(settings)); !slices.Equal(got, public) {
		t.Errorf("RouteSettings for %v, want the routes without a token: %v", got, public)
	}
	e := newEvaluator(tpl, requiredParams, deployRefs, nil)
	routeIDs := map[string]string{}
	for _, id := range tpl.ResourcesOfType("AWS::ApiGatewayV2::Route") {
		if key, err := e.str(tpl.Resources[id].Properties["RouteKey"]); err == nil {
			routeIDs[key] = id
		}
	}
	defaults := map[string]int{}
	for key, params := range wantRouteThrottles {
		s := asMap(settings[key])
		if refOf(s["ThrottlingRateLimit"]) != params[0] || refOf(s["ThrottlingBurstLimit"]) != params[1] {
			t.Errorf("%s: route settings %v, want ThrottlingRateLimit !Ref %s, ThrottlingBurstLimit !Ref %s", key, s, params[0], params[1])
		}
		for _, p := range params {
			def := tpl.Parameters[p]
			n, err := strconv.Atoi(asString(def["Default"]))
			if asString(def["Type"]) != "Number" || asString(def["MinValue"]) != "1" || err != nil || n < 1 {
				t.Errorf("parameter %s: %v, want a Number, at least 1, with a default", p, def)
			}
			defaults[p] = n
		}
		// Route settings name a route that must exist before the stage.
		id, ok := routeIDs[key]
		if !ok {
			t.Errorf("no route %s", key)
			continue
		}
		if !slices.Contains(stage.DependsOn, id) {
			t.Errorf("HttpApiStage DependsOn %v, want %s (its route settings name it)", stage.DependsOn, id)
		}
	}
	// Stripe delivers in bursts, and retries what was throttled; a browser's
	// refresh is one request per click.
	if defaults["WebhookThrottleBurst"] <= defaults["RefreshThrottleBurst"] {
		t.Errorf("WebhookThrottleBurst %d, want more than RefreshThrottleBurst %d", defaults["WebhookThrottleBurst"], defaults["RefreshThrottleBurst"])
	}
}

// statusEventsRoleARN stands in for the role SAM makes for StatusEventsFunction.
const statusEventsRoleARN = "arn:aws:iam::123456789012:role/connect-onboarding-StatusEventsFunctionRole-1ABC"

func TestTemplatePublishesStatusEventsToABusOnlyItsFunctionCanPublishTo(t *testing.T) {
	tpl := loadTemplate(t)
	if got := asString(tpl.Parameters["EventBusName"]["Default"]); got != "" {
		t.Errorf("EventBusName defaults to %q, want empty: the stack creates its own bus", got)
	}
	if bus := tpl.Resources["StatusEventBus"]; bus.Type != "AWS::Events::EventBus" || bus.Condition != "CreateEventBus" {
		t.Errorf("StatusEventBus: %s (Condition %q), want an AWS::Events::EventBus created when EventBusName is empty", bus.Type, bus.Condition)
	}
	for _, c := range []struct{ param, bus string }{{"", "connect-onboarding-status-events"}, {"platform-events", "platform-events"}} {
		t.Run("EventBusName="+c.param, func(t *testing.T) {
			params := maps.Clone(requiredParams)
			params["EventBusName"] = c.param
			e := newEvaluator(tpl, params, deployRefs, opsAttrs)
			busARN := "arn:aws:events:eu-west-1:123456789012:event-bus/" + c.bus

			vars := env(t, tpl, "StatusEventsFunction", e)
			cfg, err := config.Load(func(k string) (string, bool) { v, ok := vars[k]; return v, ok })
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Ops.EventBusName != c.bus {
				t.Errorf("the function publishes to %q, want %q", cfg.Ops.EventBusName, c.bus)
			}
			// Its role may put events on that bus only.
			for _, s := range asList(asMap(asList(tpl.Resources["StatusEventsFunction"].Properties["Policies"])[0])["Statement"]) {
				st := asMap(s)
				if asString(st["Action"]) != "events:PutEvents" {
					continue
				}
				if got, err := e.str(st["Resource"]); err != nil || got != busARN {
					t.Errorf("PutEvents granted on %q (%v), want %s", got, err, busARN)
				}
			}

			// The bus's policy: the function's role may publish the source;
			// anyone else publishing it is denied, whatever their own policy allows.
			var allow, deny map[string]any
			for id, r := range tpl.Resources {
				if r.Type != "AWS::Events::EventBusPolicy" {
					continue
				}
				if name, err := e.str(r.Properties["EventBusName"]); err != nil || name != c.bus {
					t.Errorf("%s is on bus %q (%v), want %s", id, name, err, c.bus)
				}
				st := asMap(r.Properties["Statement"])
				if asString(st["Sid"]) != asString(r.Properties["StatementId"]) {
					t.Errorf("%s: Sid %v, StatementId %v: want them equal", id, st["Sid"], r.Properties["StatementId"])
				}
				if res, err := e.str(st["Resource"]); err != nil || res != busARN || asString(st["Action"]) != "events:PutEvents" {
					t.Errorf("%s: %v on %q (%v), want events:PutEvents on %s", id, st["Action"], res, err, busARN)
				}
				switch asString(st["Effect"]) {
				case "Allow":
					allow = st
				case "Deny":
					deny = st
				}
			}
			if allow == nil || deny == nil {
				t.Fatalf("want an Allow and a Deny statement on the bus; allow %v, deny %v", allow, deny)
			}
			principal, err := e.str(asMap(allow["Principal"])["AWS"])
			if err != nil || principal != statusEventsRoleARN {
				t.Errorf("Allow principal %q (%v), want the function's role %s", principal, err, statusEventsRoleARN)
			}
			if src := asList(asMap(asMap(allow["Condition"])["ForAllValues:StringEquals"])["events:source"]); len(src) != 1 || asString(src[0]) != statusevents.Source {
				t.Errorf("Allow condition %v, want events:source %s only", allow["Condition"], statusevents.Source)
			}
			cond := asMap(deny["Condition"])
			if asString(deny["Principal"]) != "*" || len(cond) != 2 {
				t.Errorf("Deny %v, want Principal * under two conditions", deny)
			}
			if src := asList(asMap(cond["ForAnyValue:StringEquals"])["events:source"]); len(src) != 1 || asString(src[0]) != statusevents.Source {
				t.Errorf("Deny condition %v, want any entry of source %s", cond, statusevents.Source)
			}
			if other, err := e.str(asMap(cond["ArnNotEquals"])["aws:PrincipalArn"]); err != nil || other != statusEventsRoleARN {
				t.Errorf("Deny spares %q (%v), want the function's role %s only", other, err, statusEventsRoleARN)
			}
		})
	}
}
