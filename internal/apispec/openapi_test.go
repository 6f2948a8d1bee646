package apispec_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/connectexpress/onboarding/internal/repofile"
	"github.com/connectexpress/onboarding/shared/httpapi"
)

// The parts of an OpenAPI 3.1 document these tests read.
type document struct {
	OpenAPI    string                          `yaml:"openapi"`
	Security   *[]map[string][]string          `yaml:"security"`
	Paths      map[string]map[string]yaml.Node `yaml:"paths"`
	Components struct {
		SecuritySchemes map[string]struct {
			Type         string `yaml:"type"`
			Scheme       string `yaml:"scheme"`
			BearerFormat string `yaml:"bearerFormat"`
		} `yaml:"securitySchemes"`
	} `yaml:"components"`
}

type operation struct {
	Security    *[]map[string][]string `yaml:"security"`
	RequestBody map[string]any         `yaml:"requestBody"`
	Responses   map[string]yaml.Node   `yaml:"responses"`
}

var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

func load(t *testing.T) (document, []byte) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "openapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc document
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1.") {
		t.Fatalf("openapi: %q, want 3.1.x", doc.OpenAPI)
	}
	return doc, raw
}

// operations returns the document's operations by route key ("POST /accounts").
func operations(t *testing.T, doc document) map[string]operation {
	t.Helper()
	ops := map[string]operation{}
	for path, item := range doc.Paths {
		for key, node := range item {
			if !slices.Contains(httpMethods, key) {
				continue // parameters, summary, ...
			}
			var op operation
			if err := node.Decode(&op); err != nil {
				t.Fatalf("%s %s: %v", key, path, err)
			}
			ops[strings.ToUpper(key)+" "+path] = op
		}
	}
	return ops
}

func TestOpenAPIHasExactlyTheRoutes(t *testing.T) {
	doc, _ := load(t)
	ops := operations(t, doc)
	var want, got []string
	for _, r := range httpapi.Routes {
		want = append(want, r.Key())
	}
	for k := range ops {
		got = append(got, k)
	}
	slices.Sort(want)
	slices.Sort(got)
	for _, k := range want {
		if _, ok := ops[k]; !ok {
			t.Errorf("openapi.yaml lacks the route %s", k)
		}
	}
	for _, k := range got {
		if !slices.Contains(want, k) {
			t.Errorf("openapi.yaml documents %s, which httpapi.Routes does not serve", k)
		}
	}
	if t.Failed() {
		t.Logf("routes:  %v\nopenapi: %v", want, got)
	}
}

func TestOpenAPISecurityMatchesPublicRoutes(t *testing.T) {
	doc, _ := load(t)
	ops := operations(t, doc)
	bearer := map[string]bool{}
	for name, s := range doc.Components.SecuritySchemes {
		if s.Type == "http" && strings.EqualFold(s.Scheme, "bearer") && s.BearerFormat == "JWT" {
			bearer[name] = true
		}
	}
	if len(bearer) == 0 {
		t.Fatal("openapi.yaml declares no http bearer JWT security scheme")
	}
	for _, r := range httpapi.Routes {
		op, ok := ops[r.Key()]
		if !ok {
			continue // TestOpenAPIHasExactlyTheRoutes says so
		}
		security := doc.Security // an operation without its own inherits the document's
		if op.Security != nil {
			security = op.Security
		}
		if r.Public {
			if security == nil || len(*security) != 0 {
				t.Errorf("%s is public: its security must be [] (got %v)", r.Key(), security)
			}
			if _, ok := op.Responses["401"]; ok {
				t.Errorf("%s is public but documents 401", r.Key())
			}
			continue
		}
		// Every alternative must demand a bearer JWT: an empty requirement
		// ({}) would make the token optional.
		if security == nil || len(*security) == 0 {
			t.Errorf("%s needs a JWT but has no security requirement", r.Key())
		}
		for _, req := range derefOr(security) {
			hasBearer := false
			for name := range req {
				hasBearer = hasBearer || bearer[name]
			}
			if !hasBearer {
				t.Errorf("%s: security requirement %v does not demand the bearer JWT", r.Key(), req)
			}
		}
		if _, ok := op.Responses["401"]; !ok {
			t.Errorf("%s needs a JWT but does not document 401", r.Key())
		}
	}
}

// Bodies are limited (16 KiB JSON, 512 KiB events): whatever takes one
// must document 413, and nothing else may.
func TestOpenAPIBodyLimits(t *testing.T) {
	doc, _ := load(t)
	for key, op := range operations(t, doc) {
		_, has413 := op.Responses["413"]
		if (op.RequestBody != nil) != has413 {
			t.Errorf("%s: request body %v but 413 documented %v", key, op.RequestBody != nil, has413)
		}
	}
}

// Every local $ref must name something the document defines.
func TestOpenAPIReferencesResolve(t *testing.T) {
	_, raw := load(t)
	var root yaml.Node
	if err := yaml.Unmarshal(raw, &root); err != nil {
		t.Fatal(err)
	}
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				if k, v := n.Content[i], n.Content[i+1]; k.Value == "$ref" && v.Kind == yaml.ScalarNode {
					if resolve(root.Content[0], v.Value) == nil {
						t.Errorf("line %d: $ref %q does not resolve", v.Line, v.Value)
					}
				}
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(&root)
}

// resolve follows a local JSON pointer ("#/components/schemas/Account").
func resolve(doc *yaml.Node, ref string) *yaml.Node {
	path, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil
	}
	parts := strings.Split(path, "/")
	for i, part := range parts {
		parts[i] = strings.NewReplacer("~1", "/", "~0", "~").Replace(part)
	}
	return repofile.YAMLPath(doc, parts...)
}

func derefOr(p *[]map[string][]string) []map[string][]string {
	if p == nil {
		return nil
	}
	return *p
}
