// Package repofile helps tests read the repository's own files: where the
// module root is, and paths into YAML node trees (template.yaml,
// openapi.yaml). It imports nothing of this module, so any test can use it.
package repofile

import (
	"os"
	"path/filepath"
	"testing"

	"gopkg.in/yaml.v3"
)

// Root is the module root: the first directory above the test's own
// that holds go.mod.
func Root(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// YAMLPath follows mapping keys down a YAML node tree (from a document or
// a mapping) and returns the node they lead to, or nil where one is
// missing. Tests read template.yaml and openapi.yaml as node trees because
// decoding into Go values fails on CloudFormation's short-form tags (!Ref).
func YAMLPath(n *yaml.Node, keys ...string) *yaml.Node {
	if n != nil && n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	for _, k := range keys {
		if n == nil || n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				next = n.Content[i+1]
			}
		}
		n = next
	}
	return n
}
