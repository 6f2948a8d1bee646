package lambdatest

import (
	"cmp"
	"context"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/connectexpress/onboarding/shared/app"
	"github.com/connectexpress/onboarding/shared/config"
	"github.com/connectexpress/onboarding/shared/dynamostore"
	"github.com/connectexpress/onboarding/shared/httpapi"
)

// apiRoute is a route as template.yaml declares it, followed through its
// integration to the function that serves it.
type apiRoute struct {
	Key        string // "POST /accounts"
	FunctionID string // logical id of the AWS::Serverless::Function
	Public     bool
}

// templateRoutes follows every AWS::ApiGatewayV2::Route to its function.
func templateRoutes(t *testing.T, tpl *Template) map[string]apiRoute {
	t.Helper()
	routes := map[string]apiRoute{}
	e := newEvaluator(tpl, requiredParams, deployRefs, nil)
	for _, id := range tpl.ResourcesOfType("AWS::ApiGatewayV2::Route") {
		p := tpl.Resources[id].Properties
		key, err := e.str(p["RouteKey"])
		if err != nil {
			t.Errorf("%s: RouteKey: %v", id, err)
		}
		if refOf(p["ApiId"]) != "HttpApi" {
			t.Errorf("%s: ApiId must be !Ref HttpApi", id)
		}
		target := asString(asMap(p["Target"])["Fn::Sub"])
		integrationID, ok := strings.CutPrefix(target, "integrations/${")
		integrationID = strings.TrimSuffix(integrationID, "}")
		integration, found := tpl.Resources[integrationID]
		if !ok || !found || integration.Type != "AWS::ApiGatewayV2::Integration" {
			t.Errorf("%s: Target must be !Sub integrations/${<an AWS::ApiGatewayV2::Integration>}, got %q", id, target)
			continue
		}
		ip := integration.Properties
		fn, attr := getAttOf(ip["IntegrationUri"])
		if tpl.Resources[fn].Type != "AWS::Serverless::Function" || attr != "Arn" {
			t.Errorf("%s: IntegrationUri must be !GetAtt <Function>.Arn", integrationID)
		}
		if asString(ip["IntegrationType"]) != "AWS_PROXY" || asString(ip["PayloadFormatVersion"]) != "2.0" || refOf(ip["ApiId"]) != "HttpApi" {
			t.Errorf("%s: want an AWS_PROXY integration on HttpApi with payload format 2.0", integrationID)
		}
		r := apiRoute{Key: key, FunctionID: fn}
		switch auth := asString(p["AuthorizationType"]); auth {
		case "NONE":
			r.Public = true
		case "JWT":
			authz := tpl.Resources[refOf(p["AuthorizerId"])]
			if authz.Type != "AWS::ApiGatewayV2::Authorizer" || asString(authz.Properties["AuthorizerType"]) != "JWT" {
				t.Errorf("%s: AuthorizerId must name the JWT authorizer", id)
			}
		default:
			t.Errorf("%s: AuthorizationType must be JWT or NONE, got %q", id, auth)
		}
		if _, dup := routes[key]; dup {
			t.Errorf("route %q is declared twice", key)
		}
		routes[key] = r
	}
	return routes
}

// functionIDs maps each route's function (httpapi.Route.Function) to the
// logical id of the template function serving it.
func functionIDs(t *testing.T, tpl *Template) map[string]string {
	t.Helper()
	declared := templateRoutes(t, tpl)
	ids := map[string]string{}
	for _, r := range httpapi.Routes {
		if d, ok := declared[r.Key()]; ok {
			ids[r.Function] = d.FunctionID
		}
	}
	return ids
}

func TestTemplateDeclaresExactlyTheRoutesOfTheContract(t *testing.T) {
	tpl := loadTemplate(t)
	declared := templateRoutes(t, tpl)
	servedBy := map[string]string{} // function logical id -> route key
	for _, r := range httpapi.Routes {
		d, ok := declared[r.Key()]
		if !ok {
			t.Errorf("route %q (functions/%s) is missing from template.yaml", r.Key(), r.Function)
			continue
		}
		delete(declared, r.Key())
		if d.Public != r.Public {
			t.Errorf("route %q: public=%v in template.yaml, %v in shared/httpapi/routes.go (public routes have AuthorizationType NONE)", r.Key(), d.Public, r.Public)
		}
		if other, ok := servedBy[d.FunctionID]; ok {
			t.Errorf("%s serves both %q and %q: one function per route", d.FunctionID, other, r.Key())
		}
		servedBy[d.FunctionID] = r.Key()
		t.Run(r.Key(), func(t *testing.T) {
			checkBuildTarget(t, d.FunctionID, r.Function)
			checkInvokePermission(t, tpl, d.FunctionID, r)
		})
	}
	for key := range declared {
		t.Errorf("template.yaml declares route %q, which shared/httpapi/routes.go does not have", key)
	}
	for _, id := range tpl.ResourcesOfType("AWS::Serverless::Function") {
		if _, ok := servedBy[id]; !ok && !isOpsFunction(id) {
			t.Errorf("function %s serves no route", id)
		}
	}
	// One API, which depends on no function (see the comment at the top of
	// template.yaml): SAM's own API types would.
	if n := len(tpl.ResourcesOfType("AWS::ApiGatewayV2::Api")); n != 1 || tpl.Resources["HttpApi"].Type != "AWS::ApiGatewayV2::Api" {
		t.Errorf("want one AWS::ApiGatewayV2::Api, HttpApi; found %d", n)
	}
	for _, typ := range []string{"AWS::Serverless::HttpApi", "AWS::Serverless::Api"} {
		if n := len(tpl.ResourcesOfType(typ)); n != 0 {
			t.Errorf("found %d %s", n, typ)
		}
	}
}

// checkBuildTarget asks make what `sam build` would run for the function and
// checks it builds functions/<function> the way Lambda needs it.
func checkBuildTarget(t *testing.T, logicalID, function string) {
	t.Helper()
	cmd := exec.Command("make", "-n", "--no-print-directory", "build-"+logicalID, "ARTIFACTS_DIR=/artifacts")
	cmd.Dir = repoRoot(t)
	cmd.Env = withoutEnv(os.Environ(), "LAMBDA_GOARCH", "MAKEFLAGS")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make -n build-%s: %v\n%s", logicalID, err, out)
	}
	var build string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, " go build ") {
			build = line
		}
	}
	for _, want := range []string{
		"CGO_ENABLED=0 ", "GOOS=linux ", "GOARCH=arm64 ", " -trimpath ", " -tags lambda.norpc ",
		" -ldflags='-s -w' ", " -o /artifacts/bootstrap ", " ./functions/" + function,
	} {
		if !strings.Contains(build+" ", want) {
			t.Errorf("make build-%s runs %q: missing %q", logicalID, build, strings.TrimSpace(want))
		}
	}
}

func withoutEnv(env []string, names ...string) []string {
	return slices.DeleteFunc(env, func(kv string) bool {
		name, _, _ := strings.Cut(kv, "=")
		return slices.Contains(names, name)
	})
}

// checkInvokePermission wants API Gateway allowed to invoke the function on
// its one route only.
func checkInvokePermission(t *testing.T, tpl *Template, logicalID string, r httpapi.Route) {
	t.Helper()
	var arns []string
	e := newEvaluator(tpl, requiredParams, deployRefs, nil)
	for _, id := range tpl.ResourcesOfType("AWS::Lambda::Permission") {
		p := tpl.Resources[id].Properties
		if refOf(p["FunctionName"]) != logicalID {
			continue
		}
		if asString(p["Principal"]) != "apigateway.amazonaws.com" || asString(p["Action"]) != "lambda:InvokeFunction" {
			t.Errorf("%s: want lambda:InvokeFunction for apigateway.amazonaws.com", id)
		}
		arn, err := e.str(p["SourceArn"])
		if err != nil {
			t.Errorf("%s: SourceArn: %v", id, err)
		}
		arns = append(arns, arn)
	}
	// A path parameter is a wildcard in the ARN, as SAM writes it.
	want := "arn:aws:execute-api:eu-west-1:123456789012:a1b2c3d4e5/*/" + r.Method + pathParam.ReplaceAllString(r.Path, "*")
	if len(arns) != 1 || arns[0] != want {
		t.Errorf("%s: want one invoke permission with SourceArn %s, got %q", logicalID, want, arns)
	}
}

var pathParam = regexp.MustCompile(`\{[^}]+\}`)

func TestTemplateFunctionsAreBuiltAndRunAsLambdaNeeds(t *testing.T) {
	tpl := loadTemplate(t)
	ids := functionIDs(t, tpl)
	for _, r := range httpapi.Routes {
		id := ids[r.Function]
		t.Run(id, func(t *testing.T) {
			prop := func(name string) any { return tpl.FunctionProperty(id, name) }
			if got := asString(prop("Runtime")); got != "provided.al2023" {
				t.Errorf("Runtime %q, want provided.al2023", got)
			}
			if got := asString(prop("Handler")); got != "bootstrap" {
				t.Errorf("Handler %q, want bootstrap", got)
			}
			if got := asList(prop("Architectures")); len(got) != 1 || got[0] != "arm64" {
				t.Errorf("Architectures %v, want [arm64]", got)
			}
			if got := asString(prop("CodeUri")); got != "." {
				t.Errorf("CodeUri %q, want . (the Makefile builds from the module root)", got)
			}
			if got := asString(tpl.Resources[id].Metadata["BuildMethod"]); got != "makefile" {
				t.Errorf("Metadata.BuildMethod %q, want makefile", got)
			}
			// API Gateway gives up after 30 s; the function must answer first.
			if timeout, err := strconv.Atoi(asString(prop("Timeout"))); err != nil || timeout >= 30 || timeout < 3 {
				t.Errorf("Timeout %v, want 3 to 29 seconds", prop("Timeout"))
			}
			if got := asString(prop("Tracing")); got != "Active" {
				t.Errorf("Tracing %q, want Active", got)
			}
			logging := asMap(prop("LoggingConfig"))
			if asString(logging["LogFormat"]) != "JSON" {
				t.Errorf("LoggingConfig.LogFormat %v, want JSON", logging["LogFormat"])
			}
			logGroup := tpl.Resources[refOf(logging["LogGroup"])]
			if logGroup.Type != "AWS::Logs::LogGroup" || refOf(logGroup.Properties["RetentionInDays"]) != "LogRetentionInDays" {
				t.Errorf("LoggingConfig.LogGroup must name its own log group with RetentionInDays !Ref LogRetentionInDays")
			}
			for _, metric := range []string{"Errors", "Throttles"} {
				if !hasFunctionAlarm(tpl, id, metric) {
					t.Errorf("no alarm on AWS/Lambda %s of %s", metric, id)
				}
			}
		})
	}
}

func hasFunctionAlarm(tpl *Template, functionID, metric string) bool {
	for _, id := range tpl.ResourcesOfType("AWS::CloudWatch::Alarm") {
		p := tpl.Resources[id].Properties
		dims := asList(p["Dimensions"])
		if asString(p["Namespace"]) == "AWS/Lambda" && asString(p["MetricName"]) == metric && len(dims) == 1 &&
			asString(asMap(dims[0])["Name"]) == "FunctionName" && refOf(asMap(dims[0])["Value"]) == functionID &&
			asString(p["ComparisonOperator"]) == "GreaterThanOrEqualToThreshold" && asString(p["Threshold"]) == "1" {
			return true
		}
	}
	return false
}

func TestTemplateAlarmsOnWebhookServerErrors(t *testing.T) {
	tpl := loadTemplate(t)
	webhookID := functionIDs(t, tpl)["webhook"]
	logGroup := refOf(asMap(tpl.FunctionProperty(webhookID, "LoggingConfig"))["LogGroup"])
	var metric, namespace string
	for _, id := range tpl.ResourcesOfType("AWS::Logs::MetricFilter") {
		p := tpl.Resources[id].Properties
		// The request log line of shared/httpapi.WithLogging: msg "request", status.
		if refOf(p["LogGroupName"]) == logGroup && strings.Contains(asString(p["FilterPattern"]), "$.status >= 500") &&
			strings.Contains(asString(p["FilterPattern"]), `$.msg = "request"`) {
			mt := asMap(asList(p["MetricTransformations"])[0])
			metric, namespace = asString(mt["MetricName"]), asString(asMap(mt["MetricNamespace"])["Fn::Sub"])
		}
	}
	if metric == "" {
		t.Fatalf("no metric filter counting 5xx request lines in the webhook's log group %s", logGroup)
	}
	for _, id := range tpl.ResourcesOfType("AWS::CloudWatch::Alarm") {
		p := tpl.Resources[id].Properties
		if asString(p["MetricName"]) == metric && asString(asMap(p["Namespace"])["Fn::Sub"]) == namespace {
			return
		}
	}
	t.Errorf("no alarm on %s/%s", namespace, metric)
}

// tableRecorder captures what dynamostore.CreateTable asks for: the key
// schema and TTL attribute the store's code depends on.
type tableRecorder struct {
	create *dynamodb.CreateTableInput
	ttl    *dynamodb.UpdateTimeToLiveInput
}

func (r *tableRecorder) CreateTable(_ context.Context, in *dynamodb.CreateTableInput, _ ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error) {
	r.create = in
	return &dynamodb.CreateTableOutput{}, nil
}

func (r *tableRecorder) UpdateTimeToLive(_ context.Context, in *dynamodb.UpdateTimeToLiveInput, _ ...func(*dynamodb.Options)) (*dynamodb.UpdateTimeToLiveOutput, error) {
	r.ttl = in
	return &dynamodb.UpdateTimeToLiveOutput{}, nil
}

func TestTemplateTableIsTheStoresTable(t *testing.T) {
	tpl := loadTemplate(t)
	table, ok := tpl.Resources["Table"]
	if !ok || table.Type != "AWS::DynamoDB::Table" {
		t.Fatal("no AWS::DynamoDB::Table named Table")
	}
	if n := len(tpl.ResourcesOfType("AWS::DynamoDB::Table")); n != 1 {
		t.Errorf("%d tables, want one", n)
	}
	rec := &tableRecorder{}
	if err := dynamostore.CreateTable(context.Background(), rec, "t"); err != nil {
		t.Fatal(err)
	}
	p := table.Properties
	var keys, attrs []string
	for _, k := range asList(p["KeySchema"]) {
		keys = append(keys, asString(asMap(k)["AttributeName"])+" "+asString(asMap(k)["KeyType"]))
	}
	for _, a := range asList(p["AttributeDefinitions"]) {
		attrs = append(attrs, asString(asMap(a)["AttributeName"])+" "+asString(asMap(a)["AttributeType"]))
	}
	var wantKeys, wantAttrs []string
	for _, k := range rec.create.KeySchema {
		wantKeys = append(wantKeys, *k.AttributeName+" "+string(k.KeyType))
	}
	for _, a := range rec.create.AttributeDefinitions {
		wantAttrs = append(wantAttrs, *a.AttributeName+" "+string(a.AttributeType))
	}
	if !slices.Equal(keys, wantKeys) || !slices.Equal(attrs, wantAttrs) {
		t.Errorf("key schema %v %v, the store's is %v %v", keys, attrs, wantKeys, wantAttrs)
	}
	// The indexes the staff routes query: the same names, keys and projections.
	var indexes, wantIndexes []string
	for _, gsi := range asList(p["GlobalSecondaryIndexes"]) {
		g := asMap(gsi)
		desc := asString(g["IndexName"])
		for _, k := range asList(g["KeySchema"]) {
			desc += " " + asString(asMap(k)["AttributeName"]) + " " + asString(asMap(k)["KeyType"])
		}
		proj := asMap(g["Projection"])
		desc += " " + asString(proj["ProjectionType"])
		for _, a := range asList(proj["NonKeyAttributes"]) {
			desc += " " + asString(a)
		}
		indexes = append(indexes, desc)
	}
	for _, g := range rec.create.GlobalSecondaryIndexes {
		desc := *g.IndexName
		for _, k := range g.KeySchema {
			desc += " " + *k.AttributeName + " " + string(k.KeyType)
		}
		desc += " " + string(g.Projection.ProjectionType)
		for _, a := range g.Projection.NonKeyAttributes {
			desc += " " + a
		}
		wantIndexes = append(wantIndexes, desc)
	}
	if !slices.Equal(indexes, wantIndexes) {
		t.Errorf("indexes %q, the store's are %q", indexes, wantIndexes)
	}
	ttl := asMap(p["TimeToLiveSpecification"])
	if asString(ttl["AttributeName"]) != *rec.ttl.TimeToLiveSpecification.AttributeName || asString(ttl["Enabled"]) != "true" {
		t.Errorf("TTL %v, the store's is on %s", ttl, *rec.ttl.TimeToLiveSpecification.AttributeName)
	}
	settings := map[string]string{
		"BillingMode":         asString(p["BillingMode"]),
		"PITR":                asString(asMap(p["PointInTimeRecoverySpecification"])["PointInTimeRecoveryEnabled"]),
		"SSE":                 asString(asMap(p["SSESpecification"])["SSEEnabled"]),
		"DeletionPolicy":      table.DeletionPolicy,
		"UpdateReplacePolicy": table.UpdateReplacePolicy,
	}
	want := map[string]string{
		"BillingMode": "PAY_PER_REQUEST", "PITR": "true", "SSE": "true", "DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain",
	}
	if !maps.Equal(settings, want) {
		t.Errorf("table settings %v, want %v", settings, want)
	}
	if p["TableName"] != nil {
		t.Error("TableName is set: a re-created stack would collide with the retained table")
	}
}

// wantTableActions is each function's least privilege on the table: the
// DynamoDB calls its use case makes (a TransactWriteItems needs the action of
// each item it contains; IAM has no TransactWriteItems action). Queries are
// granted on the indexes they read only (wantIndexActions).
var wantTableActions = map[string][]string{
	"createaccount":     {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"}, // claim, release, complete (Update+Put)
	"accountstatus":     {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"}, // read; ?refresh=true saves (and a status change)
	"updateaccount":     {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"}, // read; prefill lease; an account Stripe calls gone (its deauthorization's transaction)
	"accountlink":       {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"}, // read, token; limit, KYC lock
	"onboardingsession": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"}, // read; limit, KYC lock; gone account
	"dashboardlink":     {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"}, // read; limit; a refused link's re-read
	"refresh":           {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"}, // next token; reserve/spend token, lock (reads the user), limit; a bounce's re-read (reads the user to save it)
	"webhook":           {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"}, // owner lookup, event transaction
	// The staff routes: the page's records; the account; the decision's transaction.
	"adminlistaccounts":  {"dynamodb:BatchGetItem"},
	"admingetaccount":    {"dynamodb:GetItem"},
	"adminreviewaccount": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"},
}

// wantIndexActions is what each function may do on which index ("Table/index/<name>").
var wantIndexActions = map[string]map[string][]string{
	"adminlistaccounts": {"Table/index/by-review": {"dynamodb:Query"}, "Table/index/by-status": {"dynamodb:Query"}, "Table/index/review-queue": {"dynamodb:Query"}},
	"admingetaccount":   {"Table/index/history": {"dynamodb:Query"}},
}

// grants returns a function's IAM grants by resource logical id ("Table",
// "Table/index/<name>", "StripeSecret", "StripeWebhookSecret"), failing on
// anything but inline Allow statements on those.
func grants(t *testing.T, tpl *Template, functionID string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, policy := range asList(tpl.Resources[functionID].Properties["Policies"]) {
		statements, ok := asMap(policy)["Statement"]
		if !ok || len(asMap(policy)) != 1 {
			t.Errorf("%s: only inline Statement policies, so every grant is visible here; got %v", functionID, policy)
			continue
		}
		for _, s := range asList(statements) {
			st := asMap(s)
			resources := asList(st["Resource"])
			if len(resources) == 0 {
				resources = []any{st["Resource"]}
			}
			for _, res := range resources {
				resource := grantResource(res)
				if asString(st["Effect"]) != "Allow" || resource == "" || st["NotAction"] != nil || st["NotResource"] != nil {
					t.Errorf("%s: statement %v: want Allow on !GetAtt Table.Arn, !Sub ${Table.Arn}/index/<name>, !Ref StripeSecret, !Ref StripeWebhookSecret, "+
						"!GetAtt Table.StreamArn, the dead-letter queue or the event bus", functionID, st)
					continue
				}
				for _, a := range asList(st["Action"]) {
					out[resource] = append(out[resource], asString(a))
				}
			}
		}
	}
	for r := range out {
		slices.Sort(out[r])
		out[r] = slices.Compact(out[r])
	}
	return out
}

// grantResource names the resource of one IAM statement: a secret, the
// table, or one of its indexes; "" for anything else.
func grantResource(res any) string {
	if ref := refOf(res); ref == "StripeSecret" || ref == "StripeWebhookSecret" {
		return ref
	}
	switch id, attr := getAttOf(res); {
	case id == "Table" && attr == "Arn":
		return "Table"
	case id == "Table" && attr == "StreamArn":
		return "TableStream"
	case id == "StatusEventsDeadLetterQueue" && attr == "Arn":
		return "DeadLetterQueue"
	}
	if asString(asMap(res)["Fn::Sub"]) == eventBusARN {
		return "EventBus"
	}
	// The stack's own bus, or the one EventBusName names.
	if l := asList(asMap(res)["Fn::If"]); len(l) == 3 && asString(l[0]) == "CreateEventBus" {
		if id, attr := getAttOf(l[1]); id == "StatusEventBus" && attr == "Arn" && asString(asMap(l[2])["Fn::Sub"]) == eventBusARN {
			return "EventBus"
		}
	}
	if index, ok := strings.CutPrefix(asString(asMap(res)["Fn::Sub"]), "${Table.Arn}/index/"); ok && index != "" && !strings.ContainsAny(index, "/*$") {
		return "Table/index/" + index
	}
	return ""
}

// wantSecrets are the secrets each function may read, sorted: only the
// webhook function reads the signing secrets, and it reads the API key too,
// to read an account from Stripe when two events of one second disagree;
// the staff list and account read storage only, so they hold no secret;
// every other function calls Stripe with the key.
var wantSecrets = map[string][]string{
	"createaccount":      {"StripeSecret"},
	"accountstatus":      {"StripeSecret"},
	"updateaccount":      {"StripeSecret"},
	"accountlink":        {"StripeSecret"},
	"onboardingsession":  {"StripeSecret"},
	"dashboardlink":      {"StripeSecret"},
	"refresh":            {"StripeSecret"},
	"webhook":            {"StripeSecret", "StripeWebhookSecret"},
	"adminlistaccounts":  nil,
	"admingetaccount":    nil,
	"adminreviewaccount": {"StripeSecret"},
}

// secretVariable is the variable naming each secret to the functions.
var secretVariable = map[string]string{"StripeSecret": "STRIPE_SECRET_ARN", "StripeWebhookSecret": "STRIPE_WEBHOOK_SECRET_ARN"}

func TestTemplateGrantsEachFunctionOnlyWhatItUses(t *testing.T) {
	tpl := loadTemplate(t)
	ids := functionIDs(t, tpl)
	for _, r := range httpapi.Routes {
		id := ids[r.Function]
		got := grants(t, tpl, id)
		want := map[string][]string{"Table": wantTableActions[r.Function]}
		for _, secret := range wantSecrets[r.Function] {
			want[secret] = []string{"secretsmanager:GetSecretValue"}
		}
		for index, actions := range wantIndexActions[r.Function] {
			want[index] = actions
		}
		if !maps.EqualFunc(got, want, slices.Equal) {
			t.Errorf("%s (%s) is granted %v, want %v", id, r.Key(), got, want)
		}
	}
}

// env evaluates a function's environment as CloudFormation would set it.
func env(t *testing.T, tpl *Template, functionID string, e *evaluator) map[string]string {
	t.Helper()
	out := map[string]string{}
	for name, v := range tpl.Env(functionID) {
		s, err := e.str(v)
		if err != nil {
			t.Fatalf("%s: environment %s: %v", functionID, name, err)
		}
		out[name] = s
	}
	return out
}

// deployRefs stand in for what CloudFormation knows only at deploy time.
var deployRefs = map[string]string{
	"Table": "connect-onboarding-Table-1ABC", "StripeSecret": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:StripeSecret-AbCdEf",
	"StripeWebhookSecret": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:StripeWebhookSecret-GhIjKl",
	"HttpApi":             "a1b2c3d4e5", "AWS::Region": "eu-west-1", "AWS::URLSuffix": "amazonaws.com", "AWS::StackName": "connect-onboarding",
	"AWS::Partition": "aws", "AWS::AccountId": "123456789012", "AWS::NoValue": "",
	"StatusEventBus": "connect-onboarding-status-events",
}

// requiredParams are the answers `sam deploy --guided` asks for.
var requiredParams = map[string]string{
	"JwtIssuer": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123", "JwtAudience": "client-id",
	"FrontendUrl": "https://app.example.com/en",
}

func TestTemplateEnvironmentIsAConfigurationTheFunctionsAccept(t *testing.T) {
	tpl := loadTemplate(t)
	ids := functionIDs(t, tpl)

	// The settings shared/config reads: every variable the template sets must
	// be one of them (or the SDK's Secrets Manager endpoint), so a typo in a
	// name cannot silently leave a default in place.
	read := map[string]bool{}
	if _, err := config.Load(func(k string) (string, bool) { read[k] = true; return "", false }); err != nil {
		t.Fatal(err)
	}
	read["AWS_ENDPOINT_URL_SECRETS_MANAGER"] = true

	cases := []struct {
		name      string
		overrides map[string]string
		key       string
		publicURL string
	}{
		{"defaults, test key", nil, "sk_test_abc", "https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com"},
		{"live mode, live key", map[string]string{"StripeMode": "live"}, "sk_live_abc", "https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com"},
		{"custom domain", map[string]string{"StripeMode": "live", "CustomDomainName": "api.example.com", "CustomDomainCertificateArn": "arn:aws:acm:eu-west-1:123456789012:certificate/x"},
			"sk_live_abc", "https://api.example.com"},
		{"transfers-only platform", map[string]string{"AllowTransfersOnly": "true", "DefaultCapabilities": "transfers"}, "sk_test_abc",
			"https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com"},
		{"an issuer without email_verified", map[string]string{"EmailRequiresVerified": "false"}, "sk_test_abc",
			"https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			params := maps.Clone(requiredParams)
			maps.Copy(params, c.overrides)
			e := newEvaluator(tpl, params, deployRefs, nil)
			for _, r := range httpapi.Routes {
				vars := env(t, tpl, ids[r.Function], e)
				for name, v := range vars {
					if !read[name] {
						t.Errorf("%s sets %s, which nothing reads", ids[r.Function], name)
					}
					if name == "STRIPE_SECRET_KEY" || name == "STRIPE_WEBHOOK_SECRET" || looksLikeStripeSecret.MatchString(v) {
						t.Errorf("%s: %s in the environment: secrets belong in the Secrets Manager secret", ids[r.Function], name)
					}
				}
				if vars["TABLE_NAME"] != deployRefs["Table"] {
					t.Errorf("%s: TABLE_NAME must name the stack's table: %v", ids[r.Function], vars)
				}
				// Each function is told of its own secrets only.
				for secret, name := range secretVariable {
					want := ""
					if slices.Contains(wantSecrets[r.Function], secret) {
						want = deployRefs[secret]
					}
					if vars[name] != want {
						t.Errorf("%s: %s = %q, want %q", ids[r.Function], name, vars[name], want)
					}
				}
				if want := cmp.Or(params["StripeMode"], "test"); vars["STRIPE_MODE"] != want {
					t.Errorf("%s: STRIPE_MODE %q, want the StripeMode parameter (default test)", ids[r.Function], vars["STRIPE_MODE"])
				}
				if vars["PUBLIC_API_URL"] != c.publicURL {
					t.Errorf("PUBLIC_API_URL %q, want %q", vars["PUBLIC_API_URL"], c.publicURL)
				}
				cfg, err := config.Load(func(k string) (string, bool) { v, ok := vars[k]; return v, ok })
				if err != nil {
					t.Fatalf("%s: %v", ids[r.Function], err)
				}
				// What loadSecrets would have put there from the function's secret.
				needs := app.NeedsFor(r)
				if needs.StripeKey {
					cfg.StripeSecretKey = c.key
				}
				if needs.WebhookSecrets {
					cfg.WebhookSecrets = []string{"whsec_abc0123456789abcdefghijklmnopqrstuv"}
				}
				if _, err := cfg.Validate(needs); err != nil {
					t.Errorf("%s would refuse to start: %v", ids[r.Function], err)
				}
				if want := strings.HasPrefix(c.key, "sk_live_"); cfg.Policy.Livemode != want {
					t.Errorf("%s: livemode %v, want %v", ids[r.Function], cfg.Policy.Livemode, want)
				}
				if want := params["AllowTransfersOnly"] == "true"; cfg.Policy.AllowTransfersOnly != want {
					t.Errorf("%s: AllowTransfersOnly %v, want the parameter's %v", ids[r.Function], cfg.Policy.AllowTransfersOnly, want)
				}
				if want := params["EmailRequiresVerified"] == "false"; cfg.Policy.PrefillUnverifiedEmail != want {
					t.Errorf("%s: PrefillUnverifiedEmail %v, want %v from EmailRequiresVerified %q (default true)", ids[r.Function], cfg.Policy.PrefillUnverifiedEmail, want, params["EmailRequiresVerified"])
				}
				if want := c.publicURL + "/onboarding/refresh"; cfg.Policy.RefreshURL != want {
					t.Errorf("refresh_url %q, want %q", cfg.Policy.RefreshURL, want)
				}
			}
		})
	}
}

func TestTemplateCORSDefaultsToTheFrontendOrigin(t *testing.T) {
	tpl := loadTemplate(t)
	origins := asMap(tpl.Resources["HttpApi"].Properties["CorsConfiguration"])["AllowOrigins"]
	for _, c := range []struct {
		frontend, cors, console string
		want                    []any
	}{
		{"https://app.example.com/en", "", "", []any{"https://app.example.com"}},
		{"http://localhost:5173", "", "", []any{"http://localhost:5173"}},
		{"https://app.example.com", "https://a.example.com,https://b.example.com", "", []any{"https://a.example.com", "https://b.example.com"}},
		// The staff console's origin joins the frontend's by default.
		{"https://app.example.com/en", "", "https://staff.example.com/queue", []any{"https://app.example.com", "https://staff.example.com"}},
		{"https://app.example.com", "", "http://localhost:5174", []any{"https://app.example.com", "http://localhost:5174"}},
		// An explicit list is the whole list.
		{"https://app.example.com", "https://a.example.com", "https://staff.example.com", []any{"https://a.example.com"}},
	} {
		params := maps.Clone(requiredParams)
		params["FrontendUrl"], params["CorsAllowOrigins"] = c.frontend, c.cors
		if c.console != "" {
			params["StaffConsoleUrl"] = c.console
		}
		got, err := newEvaluator(tpl, params, deployRefs, nil).eval(origins)
		if err != nil {
			t.Fatal(err)
		}
		if l, ok := got.([]string); ok {
			got = []any{}
			for _, s := range l {
				got = append(got.([]any), s)
			}
		}
		if !slices.Equal(got.([]any), c.want) {
			t.Errorf("FrontendUrl %s, CorsAllowOrigins %q, StaffConsoleUrl %q: AllowOrigins %v, want %v", c.frontend, c.cors, c.console, got, c.want)
		}
	}
}

var looksLikeStripeSecret = regexp.MustCompile(`\b(sk|rk)_(test|live)_[A-Za-z0-9]{6,}|\bwhsec_[A-Za-z0-9]{6,}`)

func TestNoSecretValueInTheDeployFiles(t *testing.T) {
	tpl := loadTemplate(t)
	root := repoRoot(t)
	for _, f := range []string{"template.yaml", "samconfig.toml", filepath.Join("local", "env.json")} {
		raw, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		if m := looksLikeStripeSecret.Find(raw); m != nil {
			t.Errorf("%s contains what looks like a Stripe secret (%.12s...)", f, m)
		}
	}
	// The placeholders must parse as the documents shared/app reads, with no
	// values. StripeSecret's is the one stacks had when it held both kinds of
	// secret: changing it would overwrite their stored key on the next deploy.
	for id, placeholder := range map[string]string{
		"StripeSecret":        `{"stripe_secret_key":""}`,
		"StripeWebhookSecret": `{"stripe_webhook_secrets":""}`,
	} {
		secret := tpl.Resources[id]
		if secret.Type != "AWS::SecretsManager::Secret" {
			t.Fatalf("no AWS::SecretsManager::Secret named %s", id)
		}
		if got := asString(secret.Properties["SecretString"]); got != placeholder {
			t.Errorf("%s: SecretString %q: keep the empty placeholder %s (CloudFormation rewrites the secret when it changes)", id, got, placeholder)
		}
	}
	if p := tpl.Parameters["StripeMode"]; asString(p["Default"]) != "test" {
		t.Errorf("StripeMode parameter: default %v, want test", p["Default"])
	}
	for _, want := range []string{"ApiUrl", "WebhookUrl", "TableName", "StripeSecretArn", "StripeWebhookSecretArn"} {
		if _, ok := tpl.Outputs[want]; !ok {
			t.Errorf("output %s is missing", want)
		}
	}
	e := newEvaluator(tpl, requiredParams, deployRefs, nil)
	webhookURL, err := e.str(tpl.Outputs["WebhookUrl"]["Value"])
	if err != nil {
		t.Fatal(err)
	}
	route, _ := httpapi.FunctionRoute("webhook")
	if want := "https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com" + route.Path; webhookURL != want {
		t.Errorf("WebhookUrl output %q, want %q", webhookURL, want)
	}
	if refOf(tpl.Outputs["StripeSecretArn"]["Value"]) != "StripeSecret" || refOf(tpl.Outputs["StripeWebhookSecretArn"]["Value"]) != "StripeWebhookSecret" ||
		refOf(tpl.Outputs["TableName"]["Value"]) != "Table" {
		t.Errorf("StripeSecretArn, StripeWebhookSecretArn and TableName outputs must name the two secrets and the table")
	}
}

// TestTemplateRetiredWebhookSecretTtlReachesRegisterWebhook: the parameter
// that says how long a replaced signing secret verifies is a stack output,
// which make register-webhook reads, and defaults to Stripe's 24 hours.
func TestTemplateRetiredWebhookSecretTtlReachesRegisterWebhook(t *testing.T) {
	tpl := loadTemplate(t)
	p, ok := tpl.Parameters["RetiredWebhookSecretTtl"]
	if !ok {
		t.Fatal("no RetiredWebhookSecretTtl parameter")
	}
	if d, err := time.ParseDuration(asString(p["Default"])); err != nil || d != 24*time.Hour {
		t.Errorf("RetiredWebhookSecretTtl default %v, want 24h", p["Default"])
	}
	pattern := regexp.MustCompile(asString(p["AllowedPattern"]))
	for v, valid := range map[string]bool{"24h": true, "90m": true, "0s": true, "1d": false, "24": false, "-1h": false} {
		if pattern.MatchString(v) != valid {
			t.Errorf("AllowedPattern on %q: %v, want %v", v, !valid, valid)
		}
		if _, err := time.ParseDuration(v); valid && err != nil {
			t.Errorf("%q passes the parameter's pattern but is no Go duration", v)
		}
	}
	if refOf(tpl.Outputs["RetiredWebhookSecretTtl"]["Value"]) != "RetiredWebhookSecretTtl" {
		t.Error("the RetiredWebhookSecretTtl output must give the parameter to make register-webhook")
	}
}
