package lambdatest

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/connectexpress/onboarding/internal/localproc"
	"github.com/connectexpress/onboarding/internal/testenv"
	"github.com/connectexpress/onboarding/shared/httpapi"
)

const region = "us-east-1"

// buildHostBootstraps builds every function with its own Makefile target,
// as sam build does, but for the host's architecture so the emulator can run
// it. It returns the bootstrap path by function logical id.
func buildHostBootstraps(t *testing.T, ids map[string]string) map[string]string {
	t.Helper()
	requireArtifact(t, runtime.GOOS == "linux", "the Lambda bootstraps run under the emulator on Linux only (GOOS=%s)", runtime.GOOS)
	root := repoRoot(t)
	dir := t.TempDir()
	// Compile the packages once; the seven builds below then only link.
	warm := exec.Command("go", "build", "-trimpath", "-tags", "lambda.norpc", "./functions/...")
	warm.Dir, warm.Env = root, append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if out, err := warm.CombinedOutput(); err != nil {
		t.Fatalf("go build ./functions/...: %v\n%s", err, out)
	}
	paths := map[string]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			artifacts := filepath.Join(dir, id)
			cmd := exec.Command("make", "-s", "--no-print-directory", "build-"+id, "ARTIFACTS_DIR="+artifacts, "LAMBDA_GOARCH="+runtime.GOARCH)
			cmd.Dir, cmd.Env = root, withoutEnv(os.Environ(), "MAKEFLAGS")
			out, err := cmd.CombinedOutput()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Errorf("make build-%s: %v\n%s", id, err, out)
				return
			}
			paths[id] = filepath.Join(artifacts, "bootstrap")
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return paths
}

// buildRIE builds the emulator pinned by tools/go.mod into .cache/bin.
func buildRIE(t *testing.T) string {
	t.Helper()
	root := repoRoot(t)
	bin := filepath.Join(root, ".cache", "bin", "aws-lambda-rie")
	cmd := exec.Command("go", "build", "-C", "tools", "-o", bin, "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie")
	cmd.Dir, cmd.Env = root, append(os.Environ(), "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build aws-lambda-rie: %v\n%s", err, out)
	}
	return bin
}

// awsCall is one AWS API call a function made, as IAM would see it.
type awsCall struct {
	Action   string // "dynamodb:GetItem"; each item of a TransactWriteItems counts as its own action
	Resource string // table name or secret id
	Key      string // the item's partition key (pk), for an action on one item: what dynamodb:LeadingKeys sees
}

// itemKey is the partition key of one item request: its Key, or a Put's Item.
type itemKey struct {
	TableName string
	Key, Item struct {
		PK struct{ S string } `json:"pk"`
	}
}

func (k itemKey) pk() string { return cmp.Or(k.Key.PK.S, k.Item.PK.S) }

// awsRecorder is a reverse proxy in front of moto that records the calls.
type awsRecorder struct {
	URL   string
	mu    sync.Mutex
	calls []awsCall
}

func newAWSRecorder(t *testing.T, motoURL string) *awsRecorder {
	target, err := url.Parse(motoURL)
	if err != nil {
		t.Fatal(err)
	}
	rec := &awsRecorder{}
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec.record(r.Header.Get("X-Amz-Target"), body)
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	rec.URL = srv.URL
	return rec
}

func (r *awsRecorder) record(target string, body []byte) {
	var in struct {
		itemKey
		IndexName     string
		SecretId      string
		TransactItems []map[string]itemKey
		Entries       []struct{ EventBusName string }
		RequestItems  map[string]json.RawMessage // BatchGetItem, by table
	}
	_ = json.Unmarshal(body, &in)
	var calls []awsCall
	switch service, op, _ := strings.Cut(target, "."); {
	case strings.HasPrefix(service, "DynamoDB_") && op == "BatchGetItem":
		for table := range in.RequestItems {
			calls = append(calls, awsCall{"dynamodb:BatchGetItem", table, ""})
		}
	case strings.HasPrefix(service, "DynamoDB_") && in.IndexName != "":
		// IAM sees a query of an index as an action on the index's ARN.
		calls = append(calls, awsCall{"dynamodb:" + op, in.TableName + "/index/" + in.IndexName, ""})
	case strings.HasPrefix(service, "DynamoDB_") && op == "TransactWriteItems":
		for _, item := range in.TransactItems {
			for kind, x := range item {
				action := map[string]string{"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem", "ConditionCheck": "ConditionCheckItem"}[kind]
				calls = append(calls, awsCall{"dynamodb:" + action, x.TableName, x.pk()})
			}
		}
	case strings.HasPrefix(service, "DynamoDB_") && op == "BatchGetItem":
		for table := range in.RequestItems {
			calls = append(calls, awsCall{"dynamodb:" + op, table, ""})
		}
	case strings.HasPrefix(service, "DynamoDB_"):
		calls = append(calls, awsCall{"dynamodb:" + op, in.TableName, in.pk()})
	case service == "secretsmanager":
		calls = append(calls, awsCall{"secretsmanager:" + op, in.SecretId, ""})
	case service == "AWSEvents": // each entry names its bus
		for _, e := range in.Entries {
			calls = append(calls, awsCall{"events:" + op, e.EventBusName, ""})
		}
	default:
		calls = append(calls, awsCall{"unknown:" + target, "", ""})
	}
	r.mu.Lock()
	r.calls = append(r.calls, calls...)
	r.mu.Unlock()
}

func (r *awsRecorder) Calls() []awsCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// lambda is one function running under its own emulator.
type lambda struct {
	ID   string
	url  string
	Logs *localproc.SyncBuffer
	AWS  *awsRecorder
}

// startLambda runs bootstrap under aws-lambda-rie with exactly env (plus
// what Lambda itself sets), on two ports of its own.
func startLambda(t *testing.T, rie, id, bootstrap string, env map[string]string, aws *awsRecorder) *lambda {
	t.Helper()
	ports, err := localproc.FreePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	apiPort, runtimePort := ports[0], ports[1]
	full := map[string]string{
		// What Lambda sets for every function (the credentials are the
		// execution role's there; moto accepts any).
		"AWS_REGION": region, "AWS_DEFAULT_REGION": region,
		"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_SESSION_TOKEN": "test",
		"AWS_LAMBDA_FUNCTION_NAME": id, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
		// Keep the SDK off the developer's ~/.aws and the metadata service.
		"HOME": t.TempDir(), "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": os.DevNull, "AWS_SHARED_CREDENTIALS_FILE": os.DevNull,
		"PATH": os.Getenv("PATH"),
	}
	maps.Copy(full, env)
	cmd := exec.Command(rie,
		"--runtime-interface-emulator-address", "127.0.0.1:"+apiPort,
		"--runtime-api-address", "127.0.0.1:"+runtimePort,
		bootstrap)
	cmd.Dir = filepath.Dir(bootstrap)
	for k, v := range full {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	logs := &localproc.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	// Its own process group, so the cleanup stops the emulator and the function.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", rie, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", id, logs.String())
		}
	})
	addr := "127.0.0.1:" + apiPort
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			break
		}
		select {
		case <-done:
			t.Fatalf("%s: aws-lambda-rie exited:\n%s", id, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: aws-lambda-rie not listening on %s:\n%s", id, addr, logs.String())
		}
	}
	return &lambda{ID: id, url: "http://" + addr + "/2015-03-31/functions/function/invocations", Logs: logs, AWS: aws}
}

var invokeClient = &http.Client{Timeout: 60 * time.Second}

// invokeRaw posts an event to the emulator and returns its raw answer.
func (l *lambda) invokeRaw(t *testing.T, event any) (int, []byte) {
	t.Helper()
	payload, err := json.Marshal(event)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := invokeClient.Post(l.url, "application/json", bytes.NewReader(payload))
	if err != nil {
		t.Fatalf("invoke %s: %v\n%s", l.ID, err, l.Logs.String())
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// invoke sends an HTTP API event and returns the function's HTTP answer.
func (l *lambda) invoke(t *testing.T, ev events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse {
	t.Helper()
	status, raw := l.invokeRaw(t, ev)
	if status != http.StatusOK {
		t.Fatalf("%s: the emulator answered %d %s:\n%s", l.ID, status, raw, l.Logs.String())
	}
	var resp events.APIGatewayV2HTTPResponse
	var failure struct{ ErrorMessage, ErrorType string }
	if json.Unmarshal(raw, &failure); failure.ErrorType != "" || failure.ErrorMessage != "" {
		t.Fatalf("%s failed as a Lambda (%s: %s):\n%s", l.ID, failure.ErrorType, failure.ErrorMessage, l.Logs.String())
	}
	if err := json.Unmarshal(raw, &resp); err != nil || resp.StatusCode == 0 {
		t.Fatalf("%s answered %q, not an HTTP API response", l.ID, raw)
	}
	return resp
}

// fixture loads a payload 2.0 event from testdata (also usable with
// `sam local invoke -e`).
func fixture(t *testing.T, name string) events.APIGatewayV2HTTPRequest {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return ev
}

func withBody(ev events.APIGatewayV2HTTPRequest, body []byte, base64Encoded bool) events.APIGatewayV2HTTPRequest {
	ev.Headers = maps.Clone(ev.Headers)
	ev.Headers["content-length"] = fmt.Sprint(len(body))
	ev.Body, ev.IsBase64Encoded = string(body), base64Encoded
	if base64Encoded {
		ev.Body = base64.StdEncoding.EncodeToString(body)
	}
	return ev
}

func withSignature(ev events.APIGatewayV2HTTPRequest, signature string) events.APIGatewayV2HTTPRequest {
	ev.Headers = maps.Clone(ev.Headers)
	ev.Headers["stripe-signature"] = signature
	return ev
}

func withQuery(ev events.APIGatewayV2HTTPRequest, q url.Values) events.APIGatewayV2HTTPRequest {
	ev.RawQueryString = q.Encode()
	ev.QueryStringParameters = map[string]string{}
	for k := range q {
		ev.QueryStringParameters[k] = strings.Join(q[k], ",") // as API Gateway joins repeated keys
	}
	return ev
}

// stack is every function of template.yaml running under the emulator with
// the template's environment, pointed at moto and stripe-mock.
type stack struct {
	tpl    *Template
	ids    map[string]string // route function -> logical id
	fns    map[string]*lambda
	stripe *testenv.Recorder
	table  string
	secret secretDoc
	// secretARNs maps each secret's ARN on moto to its logical id in
	// template.yaml (StripeSecret, StripeWebhookSecret).
	secretARNs map[string]string
}

// secretDoc is what the operator stores: the API key in StripeSecret, the
// webhook signing secrets in StripeWebhookSecret.
type secretDoc struct {
	Key     string
	Webhook string
}

// functionEnv is a function's environment as the template sets it in AWS,
// with the local slots (DYNAMODB_ENDPOINT, ...) filled as local/env.json
// fills them for sam local.
func functionEnv(t *testing.T, tpl *Template, id string, refs map[string]string, local map[string]string) map[string]string {
	t.Helper()
	params := maps.Clone(requiredParams)
	params["FrontendUrl"] = "https://app.example.com"
	params["StripePublishableKey"] = "pk_test_rie"
	vars := env(t, tpl, id, newEvaluator(tpl, params, refs, nil))
	for k, v := range local {
		if _, declared := vars[k]; !declared {
			t.Fatalf("%s does not declare %s: sam local could not set it either", id, k)
		}
		vars[k] = v
	}
	return vars
}

func startStack(t *testing.T, secret secretDoc) *stack {
	t.Helper()
	motoURL := os.Getenv("TEST_DYNAMODB_ENDPOINT")
	requireArtifact(t, motoURL != "", "TEST_DYNAMODB_ENDPOINT is not set: run `make test` (or scripts/with-services.sh) to start moto_server and stripe-mock")
	tpl := loadTemplate(t)
	s := &stack{tpl: tpl, ids: functionIDs(t, tpl), fns: map[string]*lambda{}, stripe: testenv.NewRecorder(t), secret: secret}
	s.table = testenv.NewTable(t, testenv.MotoClient(t))
	keyDoc, _ := json.Marshal(map[string]string{"stripe_secret_key": secret.Key})
	webhookDoc, _ := json.Marshal(map[string]string{"stripe_webhook_secrets": secret.Webhook})
	keyARN, webhookARN := testenv.CreateSecret(t, motoURL, string(keyDoc)), testenv.CreateSecret(t, motoURL, string(webhookDoc))
	s.secretARNs = map[string]string{keyARN: "StripeSecret", webhookARN: "StripeWebhookSecret"}
	rie := buildRIE(t)
	bootstraps := buildHostBootstraps(t, s.ids)

	refs := maps.Clone(deployRefs)
	refs["Table"], refs["StripeSecret"], refs["StripeWebhookSecret"], refs["AWS::Region"] = s.table, keyARN, webhookARN, region
	for fn, id := range s.ids {
		rec := newAWSRecorder(t, motoURL)
		vars := functionEnv(t, tpl, id, refs, map[string]string{
			"DYNAMODB_ENDPOINT": rec.URL, "AWS_ENDPOINT_URL_SECRETS_MANAGER": rec.URL, "STRIPE_API_BASE": s.stripe.URL,
		})
		s.fns[fn] = startLambda(t, rie, id, bootstraps[id], vars, rec)
	}
	return s
}

func decode[T any](t *testing.T, resp events.APIGatewayV2HTTPResponse) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(resp.Body), &v); err != nil {
		t.Fatalf("body %q: %v", resp.Body, err)
	}
	return v
}

func wantStatus(t *testing.T, what string, resp events.APIGatewayV2HTTPResponse, status int) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("%s: status %d, want %d; body %s", what, resp.StatusCode, status, resp.Body)
	}
}

type account struct {
	AccountID        string `json:"account_id"`
	Status           string `json:"status"`
	DetailsSubmitted bool   `json:"details_submitted"`
}

type apiError struct {
	Error struct{ Code string } `json:"error"`
}

// TestEveryFunctionRunsAsALambda drives the onboarding journey through the
// built bootstraps, one emulator per function, as API Gateway invokes them.
func TestEveryFunctionRunsAsALambda(t *testing.T) {
	secret := secretDoc{Key: "sk_test_rie" + testenv.RandomID(8), Webhook: "whsec_rie" + testenv.RandomID(32)}
	s := startStack(t, secret)
	fn := s.fns
	sub := fixture(t, "create_account.json").RequestContext.Authorizer.JWT.Claims["sub"]

	var acct account
	t.Run("createaccount creates the account, once", func(t *testing.T) {
		resp := fn["createaccount"].invoke(t, fixture(t, "create_account.json"))
		wantStatus(t, "first POST /accounts", resp, 201)
		acct = decode[account](t, resp)
		if !strings.HasPrefix(acct.AccountID, "acct_") || acct.Status != "onboarding" {
			t.Fatalf("created %+v", acct)
		}
		again := fn["createaccount"].invoke(t, fixture(t, "create_account.json"))
		wantStatus(t, "second POST /accounts", again, 200)
		if got := decode[account](t, again).AccountID; got != acct.AccountID {
			t.Fatalf("second create answered %s, first %s", got, acct.AccountID)
		}
	})
	if acct.AccountID == "" {
		t.FailNow()
	}

	t.Run("updateaccount prefills before the first link", func(t *testing.T) {
		wantStatus(t, "PATCH /accounts/me", fn["updateaccount"].invoke(t, fixture(t, "update_account.json")), 200)
	})

	var link struct{ URL string }
	var token string
	t.Run("accountlink links", func(t *testing.T) {
		resp := fn["accountlink"].invoke(t, fixture(t, "onboarding_link.json"))
		wantStatus(t, "POST /accounts/me/onboarding-link", resp, 200)
		link = decode[struct{ URL string }](t, resp)
		if !strings.HasPrefix(link.URL, "https://") {
			t.Fatalf("link %q", link.URL)
		}
		sent := s.stripe.Requests("POST /v1/account_links")
		if len(sent) != 1 {
			t.Fatalf("%d account link requests reached Stripe", len(sent))
		}
		refreshURL, err := url.Parse(sent[0].Form.Get("refresh_url"))
		if err != nil {
			t.Fatal(err)
		}
		// PUBLIC_API_URL comes from the API's id: the refresh_url is this stack's own route.
		if want := "https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com/onboarding/refresh"; refreshURL.Scheme+"://"+refreshURL.Host+refreshURL.Path != want {
			t.Errorf("refresh_url %s, want %s?token=...", refreshURL.Redacted(), want)
		}
		token = refreshURL.Query().Get("token")
	})

	t.Run("onboardingsession hands out an Account Session", func(t *testing.T) {
		resp := fn["onboardingsession"].invoke(t, fixture(t, "onboarding_session.json"))
		wantStatus(t, "POST /accounts/me/onboarding-session", resp, 200)
		sess := decode[struct {
			ClientSecret   string `json:"client_secret"`
			PublishableKey string `json:"publishable_key"`
		}](t, resp)
		if sess.ClientSecret == "" || sess.PublishableKey != "pk_test_rie" || resp.Headers["Cache-Control"] != "no-store" {
			t.Fatalf("session %+v headers %v, want a secret, the template's publishable key, no-store", sess, resp.Headers)
		}
		sent := s.stripe.Requests("POST /v1/account_sessions")
		if len(sent) != 1 || sent[0].Form.Get("account") != acct.AccountID || sent[0].Form.Get("components[account_onboarding][enabled]") != "true" {
			t.Fatalf("account session requests at Stripe: %+v", sent)
		}
	})

	t.Run("updateaccount is locked after the first link", func(t *testing.T) {
		resp := fn["updateaccount"].invoke(t, fixture(t, "update_account.json"))
		wantStatus(t, "PATCH after the link", resp, 409)
		if code := decode[apiError](t, resp).Error.Code; code != "kyc_locked" {
			t.Errorf("code %q, want kyc_locked", code)
		}
	})

	t.Run("refresh redirects to a fresh link, once per token", func(t *testing.T) {
		ev := withQuery(fixture(t, "refresh.json"), url.Values{"token": {token}})
		resp := fn["refresh"].invoke(t, ev)
		wantStatus(t, "GET /onboarding/refresh", resp, 302)
		if resp.Headers["Location"] != link.URL || resp.Headers["Cache-Control"] != "no-store" {
			t.Errorf("redirect headers %v, want Location %s and no-store", resp.Headers, link.URL)
		}
		// Redeemed the instant its link was minted, as only Stripe bouncing
		// the link back does: the account was read from Stripe first, and
		// saved (which reads the user: the function's GetItem).
		if n := len(s.stripe.Requests("GET /v1/accounts/" + acct.AccountID)); n != 1 {
			t.Errorf("%d account reads reached Stripe on a bounce, want 1", n)
		}
		used := fn["refresh"].invoke(t, ev)
		wantStatus(t, "the same token again", used, 302)
		if want := "https://app.example.com/onboarding?error=link_expired"; used.Headers["Location"] != want {
			t.Errorf("used token: Location %q, want %q", used.Headers["Location"], want)
		}
	})

	t.Run("webhook verifies signed events and rejects forged ones", func(t *testing.T) {
		now := time.Now()
		// A second after the state the creation stored: an event of that very second that
		// says otherwise would be settled by reading Stripe (stripe-mock's fixed account).
		updated := testenv.AccountUpdated("evt_rie_1", acct.AccountID, sub, now.Unix()+1,
			testenv.AccountSnapshot{DetailsSubmitted: true, ChargesEnabled: true, PayoutsEnabled: true})
		resp := fn["webhook"].invoke(t, withSignature(withBody(fixture(t, "webhook.json"), updated, false), testenv.Sign(updated, secret.Webhook, now)))
		wantStatus(t, "signed account.updated", resp, 200)
		if resp.Body != `{"received":true}` {
			t.Errorf("body %s", resp.Body)
		}
		// API Gateway may deliver the body base64-encoded; the signature is on the raw bytes.
		capability := testenv.CapabilityUpdated("evt_rie_2", acct.AccountID, "transfers", "active", now.Unix()+2)
		wantStatus(t, "base64 capability.updated",
			fn["webhook"].invoke(t, withSignature(withBody(fixture(t, "webhook.json"), capability, true), testenv.Sign(capability, secret.Webhook, now))), 200)
		forged := testenv.AccountUpdated("evt_rie_3", acct.AccountID, sub, now.Unix()+3, testenv.AccountSnapshot{})
		wantStatus(t, "forged account.updated",
			fn["webhook"].invoke(t, withSignature(withBody(fixture(t, "webhook.json"), forged, false), testenv.Sign(forged, "whsec_forged", now))), 400)
	})

	t.Run("accountstatus reads what the webhook stored", func(t *testing.T) {
		resp := fn["accountstatus"].invoke(t, fixture(t, "account_status.json"))
		wantStatus(t, "GET /accounts/me", resp, 200)
		if got := decode[account](t, resp); got.AccountID != acct.AccountID || !got.DetailsSubmitted || got.Status != "active" {
			t.Errorf("account %+v, want %s active with details submitted", got, acct.AccountID)
		}
		anonymous := fixture(t, "account_status.json")
		anonymous.RequestContext.Authorizer = nil
		wantStatus(t, "no JWT claims", fn["accountstatus"].invoke(t, anonymous), 401)
	})

	t.Run("dashboardlink answers once onboarded", func(t *testing.T) {
		resp := fn["dashboardlink"].invoke(t, fixture(t, "dashboard_link.json"))
		wantStatus(t, "POST /accounts/me/dashboard-link", resp, 200)
		if u := decode[struct{ URL string }](t, resp).URL; !strings.HasPrefix(u, "https://") {
			t.Errorf("dashboard link %q", u)
		}
	})

	t.Run("accountstatus re-reads Stripe on refresh=true", func(t *testing.T) {
		ev := withQuery(fixture(t, "account_status.json"), url.Values{"refresh": {"true"}})
		wantStatus(t, "GET /accounts/me?refresh=true", fn["accountstatus"].invoke(t, ev), 200)
		if n := len(s.stripe.Requests("GET /v1/accounts/" + acct.AccountID)); n != 2 {
			t.Errorf("%d account reads reached Stripe, want 2 (the refresh's bounce, this)", n)
		}
	})

	staffSteps(t, s, sub, acct.AccountID)

	t.Run("each function makes only the AWS calls its IAM policy allows", func(t *testing.T) {
		for _, r := range httpapi.Routes {
			l := fn[r.Function]
			allowed := grants(t, s.tpl, l.ID)
			var seen []string
			resources := maps.Clone(s.secretARNs)
			resources[s.table] = "Table"
			for _, index := range []string{"by-review", "by-status", "history", "review-queue"} {
				resources[s.table+"/index/"+index] = "Table/index/" + index
			}
			var secretsRead []string
			for _, c := range l.AWS.Calls() {
				resource := resources[c.Resource]
				if !slices.Contains(allowed[resource], c.Action) {
					t.Errorf("%s called %s on %q, which template.yaml does not allow it", l.ID, c.Action, c.Resource)
				}
				if c.Action == "secretsmanager:GetSecretValue" {
					secretsRead = append(secretsRead, resource)
				}
				seen = append(seen, c.Action)
			}
			checkWriteKeys(t, s.tpl, l, s.table)
			slices.Sort(seen)
			t.Logf("%-22s %s (secret read: %s)", l.ID, strings.Join(slices.Compact(seen), " "), strings.Join(secretsRead, " "))
			// Its own secrets, each once per cold start: the API functions that
			// call Stripe the key's, the webhook function the signing secrets'
			// and the key's, the staff list and account none.
			slices.Sort(secretsRead)
			if want := wantSecrets[r.Function]; !slices.Equal(secretsRead, want) {
				t.Errorf("%s read the secrets %v, want %v: its own secret once per cold start", l.ID, secretsRead, want)
			}
		}
	})

	t.Run("no secret, token or link in any log line", func(t *testing.T) {
		for _, l := range fn {
			logs := l.Logs.String()
			for what, s := range map[string]string{"Stripe key": secret.Key, "webhook secret": secret.Webhook, "refresh token": token, "link URL": link.URL,
				"email": "rie-user@example.com", "staff email": "rie-staff@example.com", "review note": "documents match the listing"} {
				if s != "" && strings.Contains(logs, s) {
					t.Errorf("%s logged the %s", l.ID, what)
				}
			}
		}
	})

	for _, r := range httpapi.Routes {
		if ms := coldStart(fn[r.Function].Logs.String()); ms != "" {
			t.Logf("%-22s cold start (INIT) %s ms", fn[r.Function].ID, ms)
		}
	}
}

var initReport = regexp.MustCompile(`INIT_REPORT Init Duration: ([0-9.]+) ms|INIT REPORT\(durationMs: ([0-9.]+)\)|"durationMs":\s*([0-9.]+)`)

// coldStart returns the emulator's INIT duration from a function's output.
func coldStart(logs string) string {
	sc := bufio.NewScanner(strings.NewReader(logs))
	for sc.Scan() {
		if !strings.Contains(sc.Text(), "INIT") {
			continue
		}
		if m := initReport.FindStringSubmatch(sc.Text()); m != nil {
			for _, g := range m[1:] {
				if g != "" {
					return g
				}
			}
		}
	}
	return ""
}

// TestColdStartRefusesThePlaceholderSecret: until the operator fills the
// stack's secrets, a function stops at cold start and says what is missing,
// instead of answering requests it cannot serve.
func TestColdStartRefusesThePlaceholderSecret(t *testing.T) {
	motoURL := os.Getenv("TEST_DYNAMODB_ENDPOINT")
	requireArtifact(t, motoURL != "", "TEST_DYNAMODB_ENDPOINT is not set: run `make test`")
	tpl := loadTemplate(t)
	ids := functionIDs(t, tpl)
	for _, c := range []struct {
		function, fixture, why string
	}{
		{"accountstatus", "account_status.json", "STRIPE_SECRET_KEY (or STRIPE_SECRET_ARN in AWS) is required"},
		{"webhook", "webhook.json", "STRIPE_WEBHOOK_SECRET (or STRIPE_WEBHOOK_SECRET_ARN in AWS) is required"},
	} {
		t.Run(c.function, func(t *testing.T) {
			id := ids[c.function]
			rec := newAWSRecorder(t, motoURL)
			refs := maps.Clone(deployRefs)
			refs["Table"], refs["AWS::Region"] = "unused", region
			for _, secret := range []string{"StripeSecret", "StripeWebhookSecret"} {
				refs[secret] = testenv.CreateSecret(t, motoURL, asString(tpl.Resources[secret].Properties["SecretString"]))
			}
			vars := functionEnv(t, tpl, id, refs, map[string]string{
				"DYNAMODB_ENDPOINT": rec.URL, "AWS_ENDPOINT_URL_SECRETS_MANAGER": rec.URL, "STRIPE_API_BASE": testenv.StripeAPIBase(t),
			})
			bootstraps := buildHostBootstraps(t, map[string]string{c.function: id})
			l := startLambda(t, buildRIE(t), id, bootstraps[id], vars, rec)

			status, raw := l.invokeRaw(t, fixture(t, c.fixture))
			var resp events.APIGatewayV2HTTPResponse
			if json.Unmarshal(raw, &resp) == nil && resp.StatusCode != 0 {
				t.Fatalf("the function answered HTTP %d; it must not serve without its secret", resp.StatusCode)
			}
			if status == http.StatusOK && !bytes.Contains(raw, []byte("errorType")) {
				t.Errorf("the emulator answered %d %s, want an invocation failure", status, raw)
			}
			// The function's output reaches the emulator's asynchronously.
			for deadline := time.Now().Add(5 * time.Second); !strings.Contains(l.Logs.String(), c.why); time.Sleep(50 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("the function's log does not say why it cannot start:\n%s", l.Logs.String())
				}
			}
		})
	}
}

// withGroups is a staff fixture whose token holds groups in cognito:groups
// (nil: no such claim), in the Authorization header's JWT and in the
// authorizer's context as API Gateway renders it ("[a b]").
func withGroups(t *testing.T, ev events.APIGatewayV2HTTPRequest, groups any) events.APIGatewayV2HTTPRequest {
	t.Helper()
	context := maps.Clone(ev.RequestContext.Authorizer.JWT.Claims)
	token := map[string]any{"sub": context["sub"]}
	delete(context, "cognito:groups")
	switch g := groups.(type) {
	case []any:
		names := make([]string, len(g))
		for i, name := range g {
			names[i] = name.(string)
		}
		context["cognito:groups"] = "[" + strings.Join(names, " ") + "]"
		token["cognito:groups"] = g
	case string:
		context["cognito:groups"] = g
		token["cognito:groups"] = g
	}
	payload, err := json.Marshal(token)
	if err != nil {
		t.Fatal(err)
	}
	authorizer := *ev.RequestContext.Authorizer
	jwt := *authorizer.JWT
	jwt.Claims, authorizer.JWT = context, &jwt
	ev.RequestContext.Authorizer = &authorizer
	ev.Headers = maps.Clone(ev.Headers)
	ev.Headers["authorization"] = "Bearer eyJraWQiOiJ0ZXN0IiwiYWxnIjoiUlMyNTYifQ." + base64.RawURLEncoding.EncodeToString(payload) + ".c2lnbmF0dXJl"
	return ev
}

// staffSteps drives the staff functions under the emulator: a caller whose
// token lacks the staff group is refused by each; staff list the account,
// read its history (the webhook above made it active), approve it, and
// reject it at stripe-mock.
func staffSteps(t *testing.T, s *stack, user, accountID string) {
	fn := s.fns
	staffFixtures := map[string]string{
		"adminlistaccounts": "admin_list_accounts.json", "admingetaccount": "admin_get_account.json", "adminreviewaccount": "admin_review_account.json",
	}
	t.Run("the staff functions refuse a caller without the staff group", func(t *testing.T) {
		// The groups come from the token in the Authorization header; API
		// Gateway's context renders a list as "[a b]", where the look-alike
		// "onboarding-staff applicants" reads as the staff group.
		for _, groups := range []any{[]any{"support", "onboarding-staff-readers"}, []any{"support,onboarding-staff"},
			[]any{"onboarding-staff applicants"}, []any{`"onboarding-staff"`}, "support", nil} {
			for function, name := range staffFixtures {
				ev := withGroups(t, fixture(t, name), groups)
				resp := fn[function].invoke(t, ev)
				wantStatus(t, fmt.Sprintf("%s with groups %q", function, groups), resp, 403)
				if code := decode[apiError](t, resp).Error.Code; code != "forbidden" {
					t.Errorf("%s: code %q, want forbidden", function, code)
				}
			}
		}
		// A staff token beside another user's verified claims: not theirs.
		for function, name := range staffFixtures {
			ev := fixture(t, name)
			ev.RequestContext.Authorizer.JWT.Claims = maps.Clone(ev.RequestContext.Authorizer.JWT.Claims)
			ev.RequestContext.Authorizer.JWT.Claims["sub"] = "another-user"
			wantStatus(t, function+" with another sub in the context", fn[function].invoke(t, ev), 403)
			ev = fixture(t, name)
			ev.Headers = maps.Clone(ev.Headers)
			delete(ev.Headers, "authorization")
			wantStatus(t, function+" without the Authorization header", fn[function].invoke(t, ev), 403)
		}
	})
	var listed string // the account's status in the list
	t.Run("adminlistaccounts lists the account in the review queue", func(t *testing.T) {
		resp := fn["adminlistaccounts"].invoke(t, fixture(t, "admin_list_accounts.json"))
		wantStatus(t, "GET /admin/accounts?review=pending", resp, 200)
		page := decode[struct {
			Accounts []struct {
				UserID    string `json:"user_id"`
				AccountID string `json:"account_id"`
				Status    string `json:"status"`
				Review    string `json:"review"`
				Email     *string
				Signals   []struct{ Code, Detail string }
			} `json:"accounts"`
		}](t, resp)
		if len(page.Accounts) != 1 || page.Accounts[0].UserID != user || page.Accounts[0].AccountID != accountID || page.Accounts[0].Review != "pending" {
			t.Fatalf("page %+v, want %s of %s, pending", page, accountID, user)
		}
		// The token's verified email prefilled the account; nobody else has it.
		if a := page.Accounts[0]; a.Email == nil || *a.Email != "rie-user@example.com" || a.Signals == nil || len(a.Signals) != 0 {
			t.Errorf("the account's email %v and signals %+v, want its email and no signal", a.Email, a.Signals)
		}
		listed = page.Accounts[0].Status
	})
	t.Run("admingetaccount shows the account's status changes", func(t *testing.T) {
		resp := fn["admingetaccount"].invoke(t, fixture(t, "admin_get_account.json"))
		wantStatus(t, "GET /admin/accounts/{user_id}", resp, 200)
		got := decode[struct {
			UserID        string                             `json:"user_id"`
			StatusChanges []struct{ From, To, Cause string } `json:"status_changes"`
		}](t, resp)
		// The webhook made it active. The refresh above stored stripe-mock's
		// fixed account too when its version (the read's second) was not
		// older than the event's: then a second change, by refresh.
		changes := got.StatusChanges
		if got.UserID != user || len(changes) == 0 || len(changes) > 2 {
			t.Fatalf("account %+v, want one or two status changes", got)
		}
		if first := changes[len(changes)-1]; first.From != "onboarding" || first.To != "active" || first.Cause != "webhook" {
			t.Errorf("first change %+v, want onboarding to active by webhook", first)
		}
		if len(changes) == 2 && (changes[0].From != "active" || changes[0].Cause != "refresh") {
			t.Errorf("second change %+v, want from active by refresh", changes[0])
		}
		if changes[0].To != listed {
			t.Errorf("the latest change is to %s, the list says %s", changes[0].To, listed)
		}
	})
	t.Run("adminreviewaccount approves, then rejects at Stripe", func(t *testing.T) {
		approve := fixture(t, "admin_review_account.json")
		first := fn["adminreviewaccount"].invoke(t, approve)
		wantStatus(t, "approve", first, 200)
		again := fn["adminreviewaccount"].invoke(t, approve)
		wantStatus(t, "approve again", again, 200)
		if again.Body != first.Body {
			t.Errorf("approving again answered %s, the first approval %s", again.Body, first.Body)
		}
		reject := withBody(approve, []byte(`{"decision":"reject","reason":"fraud","note":"stolen identity"}`), false)
		resp := fn["adminreviewaccount"].invoke(t, reject)
		wantStatus(t, "reject", resp, 200)
		if got := decode[struct{ Review string }](t, resp).Review; got != "rejected" {
			t.Errorf("review %q after the rejection", got)
		}
		sent := s.stripe.Requests("POST /v1/accounts/" + accountID + "/reject")
		if len(sent) != 1 || sent[0].Form.Get("reason") != "fraud" {
			t.Errorf("Stripe rejects: %+v, want one with reason fraud", sent)
		}
	})
}
