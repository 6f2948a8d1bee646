package stripesim_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// The simulator is bound to Stripe's own description of its API: the OpenAPI
// spec of API version 2023-10-16 that stripe-mock v0.183.0 embeds
// (embedded/openapi/spec3.json). The spec is read from the Go module cache
// through the tools module, which pins stripe-mock, so the version lives in
// one place (tools/go.mod) and 6 MB of JSON stay out of the repository.
//
// Stripe's schemas are OpenAPI 3.0, not JSON Schema: `nullable: true` says
// null is allowed, and an object lists its properties without saying that
// others are forbidden. toJSONSchema rewrites them for a JSON Schema
// validator (github.com/santhosh-tekuri/jsonschema/v6): nullable becomes a
// "null" type (or a null branch of anyOf), and every object that lists
// properties gets additionalProperties:false unless the spec says otherwise,
// so a field 2023-10-16 does not have fails the check as a missing, mistyped
// or out-of-enum one does.

const specResource = "stripe-spec-2023-10-16.json"

// stripeSpec validates bodies against the spec's response schemas.
type stripeSpec struct {
	paths    map[string]any // the spec's paths, unconverted (to find a response's schema)
	compiler *jsonschema.Compiler

	mu       sync.Mutex
	compiled map[string]*jsonschema.Schema // by JSON pointer into specResource
}

var (
	specOnce   sync.Once
	loadedSpec *stripeSpec
	specErr    error
)

// loadStripeSpec reads and converts the spec once per test binary.
func loadStripeSpec(t *testing.T) *stripeSpec {
	t.Helper()
	specOnce.Do(func() { loadedSpec, specErr = readStripeSpec() })
	if specErr != nil {
		t.Fatalf("Stripe's OpenAPI spec: %v", specErr)
	}
	return loadedSpec
}

// specFile finds spec3.json in stripe-mock's module folder, downloading the
// module (from the Go module proxy) when the cache does not have it yet.
func specFile() (string, error) {
	tools, err := filepath.Abs(filepath.Join("..", "..", "tools"))
	if err != nil {
		return "", err
	}
	cmd := exec.Command("go", "mod", "download", "-json", "github.com/stripe/stripe-mock")
	cmd.Dir = tools
	cmd.Env = append(os.Environ(), "GOWORK=off")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go mod download github.com/stripe/stripe-mock in %s: %v: %s %s", tools, err, stderr.String(), out)
	}
	var mod struct{ Version, Dir, Error string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		return "", fmt.Errorf("go mod download: no module folder in %s (%v)", out, err)
	}
	return filepath.Join(mod.Dir, "embedded", "openapi", "spec3.json"), nil
}

func readStripeSpec() (*stripeSpec, error) {
	path, err := specFile()
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	raw, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	doc, _ := raw.(map[string]any)
	if info, _ := doc["info"].(map[string]any); info["version"] != "2023-10-16" {
		return nil, fmt.Errorf("%s is API version %v, want 2023-10-16", path, info["version"])
	}
	components, _ := doc["components"].(map[string]any)
	schemas, _ := components["schemas"].(map[string]any)
	if len(schemas) == 0 {
		return nil, fmt.Errorf("%s has no components.schemas", path)
	}
	paths, _ := doc["paths"].(map[string]any)
	// The validator sees the converted schemas and the converted response
	// schemas of every path, at the same pointers as in the spec.
	converted := map[string]any{}
	for name, s := range schemas {
		converted[name] = toJSONSchema(s)
	}
	responses := map[string]any{}
	for p, item := range paths {
		ops, _ := item.(map[string]any)
		convertedOps := map[string]any{}
		for method, op := range ops {
			if s := responseSchemas(op); s != nil {
				convertedOps[method] = s
			}
		}
		responses[p] = convertedOps
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource(specResource, map[string]any{
		"components": map[string]any{"schemas": converted},
		"responses":  responses,
	}); err != nil {
		return nil, err
	}
	return &stripeSpec{paths: paths, compiler: c, compiled: map[string]*jsonschema.Schema{}}, nil
}

// responseSchemas converts an operation's response schemas, by status.
func responseSchemas(op any) map[string]any {
	o, _ := op.(map[string]any)
	rs, _ := o["responses"].(map[string]any)
	if len(rs) == 0 {
		return nil
	}
	out := map[string]any{}
	for status, r := range rs {
		rm, _ := r.(map[string]any)
		content, _ := rm["content"].(map[string]any)
		media, _ := content["application/json"].(map[string]any)
		if s, ok := media["schema"]; ok {
			out[status] = toJSONSchema(s)
		}
	}
	return out
}

// toJSONSchema rewrites one OpenAPI 3.0 schema (a copy) as JSON Schema
// 2020-12, walking only schema positions.
func toJSONSchema(v any) any {
	s, ok := v.(map[string]any)
	if !ok {
		return v
	}
	out := make(map[string]any, len(s))
	for k, val := range s {
		switch {
		case strings.HasPrefix(k, "x-"), k == "description", k == "title", k == "nullable", k == "format":
			// Stripe's annotations; format "unix-time" is Stripe's own.
		case k == "$ref":
			out[k] = strings.Replace(val.(string), "#/components/", specResource+"#/components/", 1)
		case k == "properties":
			props := map[string]any{}
			for name, p := range val.(map[string]any) {
				props[name] = toJSONSchema(p)
			}
			out[k] = props
		case k == "items" || k == "additionalProperties" || k == "not":
			out[k] = toJSONSchema(val)
		case k == "anyOf" || k == "oneOf" || k == "allOf":
			list := []any{}
			for _, sub := range val.([]any) {
				list = append(list, toJSONSchema(sub))
			}
			out[k] = list
		default:
			out[k] = val
		}
	}
	if _, listed := s["properties"]; listed {
		if _, said := s["additionalProperties"]; !said {
			out["additionalProperties"] = false
		}
	}
	if nullable, _ := s["nullable"].(bool); nullable {
		switch {
		case s["type"] != nil:
			out["type"] = []any{s["type"], "null"}
			if enum, ok := out["enum"].([]any); ok {
				out["enum"] = append(append([]any{}, enum...), nil)
			}
		case out["anyOf"] != nil:
			out["anyOf"] = append(out["anyOf"].([]any), map[string]any{"type": "null"})
		default:
			out = map[string]any{"anyOf": []any{out, map[string]any{"type": "null"}}}
		}
	}
	return out
}

// schema compiles (once) the schema at a JSON pointer into the converted spec.
func (s *stripeSpec) schema(pointer string) (*jsonschema.Schema, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sch, ok := s.compiled[pointer]; ok {
		return sch, nil
	}
	sch, err := s.compiler.Compile(specResource + "#" + pointer)
	if err != nil {
		return nil, err
	}
	s.compiled[pointer] = sch
	return sch, nil
}

func escapePointer(seg string) string {
	return strings.ReplaceAll(strings.ReplaceAll(seg, "~", "~0"), "/", "~1")
}

// responsePointer finds the schema for an answer to method on the spec's
// path: the status's own, or the operation's "default" (Stripe's error).
func (s *stripeSpec) responsePointer(method, specPath string, status int) (string, error) {
	item, _ := s.paths[specPath].(map[string]any)
	op, _ := item[strings.ToLower(method)].(map[string]any)
	if op == nil {
		return "", fmt.Errorf("the spec has no %s %s", method, specPath)
	}
	responses, _ := op["responses"].(map[string]any)
	code := fmt.Sprint(status)
	if _, ok := responses[code]; !ok {
		if _, ok := responses["default"]; !ok {
			return "", fmt.Errorf("the spec has no %d or default answer for %s %s", status, method, specPath)
		}
		code = "default"
	}
	return "/responses/" + escapePointer(specPath) + "/" + strings.ToLower(method) + "/" + code, nil
}

// validateResponse checks an API answer's body.
func (s *stripeSpec) validateResponse(method, specPath string, status int, body []byte) error {
	ptr, err := s.responsePointer(method, specPath, status)
	if err != nil {
		return err
	}
	return s.validate(ptr, body)
}

// validateObject checks a body against a named component schema, e.g.
// "account", "event", "capability".
func (s *stripeSpec) validateObject(name string, body []byte) error {
	return s.validate("/components/schemas/"+escapePointer(name), body)
}

func (s *stripeSpec) validate(pointer string, body []byte) error {
	sch, err := s.schema(pointer)
	if err != nil {
		return fmt.Errorf("compile %s: %v", pointer, err)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("not JSON: %v", err)
	}
	return sch.Validate(v)
}

// validateEvent checks a webhook body: the event envelope, then its
// data.object against the schema its "object" names (the envelope's own
// schema says only "type: object" there).
func (s *stripeSpec) validateEvent(body []byte) error {
	if err := s.validateObject("event", body); err != nil {
		return fmt.Errorf("event envelope: %v", err)
	}
	var ev struct {
		Data struct {
			Object json.RawMessage `json:"object"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		return err
	}
	var kind struct {
		Object string `json:"object"`
	}
	if err := json.Unmarshal(ev.Data.Object, &kind); err != nil || kind.Object == "" {
		return fmt.Errorf("data.object names no object type: %s", ev.Data.Object)
	}
	if err := s.validateObject(kind.Object, ev.Data.Object); err != nil {
		return fmt.Errorf("data.object (%s): %v", kind.Object, err)
	}
	return nil
}

// The validator must catch each kind of divergence from the spec, or the
// spec check proves nothing. Each body is an otherwise valid answer with one
// thing wrong.
func TestSpecValidatorCatchesEachKindOfDivergence(t *testing.T) {
	spec := loadStripeSpec(t)
	validLink := `{"object":"account_link","created":1700000000,"expires_at":1700000300,"url":"https://connect.stripe.com/setup/e/acct_1/x"}`
	if err := spec.validateResponse("POST", "/v1/account_links", 200, []byte(validLink)); err != nil {
		t.Fatalf("a valid account link fails: %v", err)
	}
	validTOS := `{"date":null,"ip":null,"user_agent":null}`
	if err := spec.validateObject("account_tos_acceptance", []byte(validTOS)); err != nil {
		t.Fatalf("valid (nullable) tos_acceptance fails: %v", err)
	}
	validError := `{"error":{"type":"invalid_request_error","message":"No such account: 'acct_1'","code":"resource_missing","param":"account"}}`
	if err := spec.validateResponse("GET", "/v1/accounts/{account}", 404, []byte(validError)); err != nil {
		t.Fatalf("a valid error fails: %v", err)
	}
	cases := []struct {
		name    string
		check   func(body []byte) error
		body    string
		message string // in the validator's error
	}{
		{"a missing required field",
			func(b []byte) error { return spec.validateResponse("POST", "/v1/account_links", 200, b) },
			`{"object":"account_link","created":1700000000,"url":"https://connect.stripe.com/setup/e/acct_1/x"}`,
			"expires_at"},
		{"a wrong type",
			func(b []byte) error { return spec.validateResponse("POST", "/v1/account_links", 200, b) },
			`{"object":"account_link","created":"yesterday","expires_at":1700000300,"url":"https://connect.stripe.com/setup/e/acct_1/x"}`,
			"created"},
		{"an enum value not in the spec",
			func(b []byte) error { return spec.validateResponse("POST", "/v1/account_links", 200, b) },
			`{"object":"onboarding_link","created":1700000000,"expires_at":1700000300,"url":"https://connect.stripe.com/setup/e/acct_1/x"}`,
			"object"},
		{"a property the spec does not have",
			func(b []byte) error { return spec.validateResponse("POST", "/v1/account_links", 200, b) },
			`{"object":"account_link","created":1700000000,"expires_at":1700000300,"url":"https://connect.stripe.com/setup/e/acct_1/x","collection_options":{}}`,
			"collection_options"},
		{"a null the spec does not allow",
			func(b []byte) error { return spec.validateObject("account_tos_acceptance", b) },
			`{"date":null,"ip":null,"user_agent":null,"service_agreement":null}`,
			"service_agreement"},
		{"a property the spec does not have, nested under anyOf and nullable",
			func(b []byte) error { return spec.validateObject("account", b) },
			`{"id":"acct_1","object":"account","business_profile":{"mcc":null,"colour":"green"}}`,
			"colour"},
		{"a field the error envelope does not have",
			func(b []byte) error { return spec.validateResponse("GET", "/v1/accounts/{account}", 404, b) },
			`{"error":{"type":"invalid_request_error","message":"x","status":404}}`,
			"status"},
		{"an error type not in the spec",
			func(b []byte) error { return spec.validateResponse("GET", "/v1/accounts/{account}", 404, b) },
			`{"error":{"type":"not_found_error","message":"x"}}`,
			"type"},
		{"an event whose data.object has a field its schema does not",
			spec.validateEvent,
			`{"id":"evt_1","object":"event","type":"capability.updated","api_version":"2023-10-16","created":1,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"data":{"object":{"id":"transfers","object":"capability","account":"acct_1","requested":true,"requested_at":1,"status":"active","colour":"green"}}}`,
			"colour"},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.check([]byte(tt.body))
			if err == nil {
				t.Fatalf("accepted %s", tt.body)
			}
			if !strings.Contains(fmt.Sprintf("%#v", err), tt.message) {
				t.Errorf("the error does not name %q:\n%#v", tt.message, err)
			}
		})
	}
}
