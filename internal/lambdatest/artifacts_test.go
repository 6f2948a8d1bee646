package lambdatest

import (
	"debug/buildinfo"
	"debug/elf"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/connectexpress/onboarding/shared/httpapi"
)

// TestSAMBuildArtifactsAreStaticLinuxARM64Bootstraps checks what `sam build`
// (scripts/check-template.sh, before the Go tests in make test) left in
// .aws-sam/build: for every function, a bootstrap that Lambda's
// provided.al2023 arm64 runtime can exec, built from the right package.
func TestSAMBuildArtifactsAreStaticLinuxARM64Bootstraps(t *testing.T) {
	root := repoRoot(t)
	built := filepath.Join(root, ".aws-sam", "build", "template.yaml")
	_, err := os.Stat(built)
	requireArtifact(t, err == nil, "%s is missing: run `make test` (or scripts/check-template.sh), which runs sam build first", built)

	tpl := loadTemplate(t)
	raw, err := os.ReadFile(built)
	if err != nil {
		t.Fatal(err)
	}
	out, err := parseTemplate(raw)
	if err != nil {
		t.Fatalf("%s: %v", built, err)
	}
	// scripts/expand-template.py expanded the built template's Fn::ForEach for
	// sam local, with cfn-lint's implementation: it must agree with the
	// expansion these tests check.
	if n, m := len(out.Resources), len(tpl.Resources); n != m {
		t.Errorf("built template: %d resources, template.yaml %d", n, m)
	}
	for id, want := range tpl.Resources {
		got := out.Resources[id]
		if want.Type == "AWS::Serverless::Function" { // sam build names the artifact folder
			got.Properties = maps.Clone(got.Properties)
			delete(got.Properties, "CodeUri")
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("built template: %s is\n%v\ntemplate.yaml expands to\n%v", id, got, want)
		}
	}
	const module = "github.com/connectexpress/onboarding"
	ids := functionIDs(t, tpl)
	for dir, f := range opsFunctions {
		ids[dir] = f.ID
	}
	for fn, id := range ids {
		t.Run(id, func(t *testing.T) {
			// sam build rewrites CodeUri to the artifact folder it deploys.
			if got := asString(out.Resources[id].Properties["CodeUri"]); got != id {
				t.Errorf("built template: CodeUri %q, want %q", got, id)
			}
			path := filepath.Join(root, ".aws-sam", "build", id, "bootstrap")
			info, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if info.Mode()&0o111 == 0 {
				t.Errorf("bootstrap is not executable: %v", info.Mode())
			}
			f, err := elf.Open(path)
			if err != nil {
				t.Fatalf("not an ELF file: %v", err)
			}
			defer f.Close()
			if f.Class != elf.ELFCLASS64 || f.Machine != elf.EM_AARCH64 || f.Data != elf.ELFDATA2LSB {
				t.Errorf("ELF %v %v %v, want ELFCLASS64 EM_AARCH64 little-endian", f.Class, f.Machine, f.Data)
			}
			// Static: no program interpreter, nothing for a dynamic loader.
			for _, p := range f.Progs {
				if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
					t.Errorf("has a %v program header: not a static binary", p.Type)
				}
			}
			for _, name := range []string{".interp", ".dynamic", ".symtab"} {
				if f.Section(name) != nil {
					t.Errorf("has a %s section (want static and stripped: -ldflags='-s -w')", name)
				}
			}
			for _, s := range f.Sections {
				if strings.HasPrefix(s.Name, ".debug_") || strings.HasPrefix(s.Name, ".zdebug_") {
					t.Errorf("has DWARF section %s (want -ldflags='-s -w')", s.Name)
					break
				}
			}
			bi, err := buildinfo.ReadFile(path)
			if err != nil {
				t.Fatalf("no Go build info: %v", err)
			}
			if want := module + "/functions/" + fn; bi.Path != want {
				t.Errorf("built from %s, want %s (the function of %s)", bi.Path, want, id)
			}
			settings := map[string]string{}
			for _, s := range bi.Settings {
				settings[s.Key] = s.Value
			}
			// (Go does not record -ldflags under -trimpath; the missing
			// symbol and DWARF sections above show -s -w.)
			for k, want := range map[string]string{
				"GOOS": "linux", "GOARCH": "arm64", "CGO_ENABLED": "0", "-trimpath": "true", "-tags": "lambda.norpc",
			} {
				if settings[k] != want {
					t.Errorf("build setting %s=%q, want %q", k, settings[k], want)
				}
			}
		})
	}
}

// TestSAMLocalServesTheContractRoutes checks the routes `sam local start-api`
// would serve from the built template (scripts/sam-local-routes.py, run by
// scripts/check-template.sh): the same methods, paths and functions as the
// contract, as payload 2.0 HTTP API events.
func TestSAMLocalServesTheContractRoutes(t *testing.T) {
	path := filepath.Join(repoRoot(t), ".aws-sam", "local-routes.json")
	raw, err := os.ReadFile(path)
	requireArtifact(t, err == nil, "%s is missing: run `make test` (or scripts/check-template.sh)", path)
	var routes []struct {
		Methods              []string
		Path, Function       string
		PayloadFormatVersion string `json:"payload_format_version"`
		EventType            string `json:"event_type"`
	}
	if err := json.Unmarshal(raw, &routes); err != nil {
		t.Fatal(err)
	}
	served := map[string]string{}
	for _, r := range routes {
		if r.PayloadFormatVersion != "2.0" || r.EventType != "HttpApi" {
			t.Errorf("%s %v: %s payload %s, want an HttpApi route with payload 2.0", r.Path, r.Methods, r.EventType, r.PayloadFormatVersion)
		}
		for _, m := range r.Methods {
			if m != "OPTIONS" { // CORS preflight, answered by SAM as API Gateway would
				served[m+" "+r.Path] = r.Function
			}
		}
	}
	ids := functionIDs(t, loadTemplate(t))
	for _, r := range httpapi.Routes {
		if got := served[r.Key()]; got != ids[r.Function] {
			t.Errorf("sam local serves %q with %q, want %s", r.Key(), got, ids[r.Function])
		}
		delete(served, r.Key())
	}
	for key := range served {
		t.Errorf("sam local serves %q, which the contract does not have", key)
	}
}
