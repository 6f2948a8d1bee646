package release

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/connectexpress/onboarding/internal/repofile"
)

func readFile(t testing.TB, rel string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repofile.Root(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// homeURL is the project's public home: https:// and the module path of
// go.mod, so the links in the metadata, the changelog and SECURITY.md move
// together with the module if it is ever renamed.
func homeURL(t testing.TB) string {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(readFile(t, "go.mod")))
	for sc.Scan() {
		if path, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module "); ok {
			return "https://" + strings.TrimSpace(path)
		}
	}
	t.Fatal("go.mod has no module line")
	return ""
}

// mappingKeys lists the keys of a YAML mapping node in file order.
func mappingKeys(m *yaml.Node) []string {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	keys := make([]string, 0, len(m.Content)/2)
	for i := 0; i+1 < len(m.Content); i += 2 {
		keys = append(keys, m.Content[i].Value)
	}
	return keys
}

// parseYAML parses raw into a node tree. Unlike decoding into Go values, it
// keeps CloudFormation's short-form tags (!Ref, !Sub) instead of failing on them.
func parseYAML(t testing.TB, name string, raw []byte) *yaml.Node {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return &doc
}

// localLink matches a Markdown link target: [text](target).
var localLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// brokenLocalLinks lists the links of a Markdown file to files of the
// repository that do not exist (web links and anchors are not followed).
func brokenLocalLinks(root, name string, text []byte) []string {
	var broken []string
	for _, m := range localLink.FindAllSubmatch(text, -1) {
		target := string(m[1])
		if strings.Contains(target, "://") || strings.HasPrefix(target, "#") || strings.HasPrefix(target, "mailto:") {
			continue
		}
		target, _, _ = strings.Cut(target, "#")
		if _, err := os.Stat(filepath.Join(root, filepath.Dir(name), target)); err != nil {
			broken = append(broken, fmt.Sprintf("%s links %s, which does not exist", name, target))
		}
	}
	return broken
}

// The project documents a reader looks for first, each linked from the
// README, each linking only to files that exist: so CONTRIBUTING.md cannot
// point at a docs page or a make target before it is there.
func TestREADMELinksTheProjectDocumentsAndTheirLinksResolve(t *testing.T) {
	root := repofile.Root(t)
	readme := readFile(t, "README.md")
	for _, doc := range []string{"LICENSE", "SECURITY.md", "CHANGELOG.md", "CONTRIBUTING.md", "docs/architecture.md"} {
		if !bytes.Contains(readme, []byte("]("+doc+")")) {
			t.Errorf("README.md does not link %s", doc)
		}
	}
	for _, doc := range []string{"README.md", "SECURITY.md", "CHANGELOG.md", "CONTRIBUTING.md", "docs/architecture.md"} {
		for _, b := range brokenLocalLinks(root, doc, readFile(t, doc)) {
			t.Error(b)
		}
	}
}

func TestBrokenLocalLinksFindsAMissingFile(t *testing.T) {
	root := repofile.Root(t)
	got := brokenLocalLinks(root, "CONTRIBUTING.md", []byte("see [the layers](docs/no-such-page.md#top), [home](https://example.com), [here](#tests), [the licence](LICENSE)"))
	if len(got) != 1 || !strings.Contains(got[0], "docs/no-such-page.md") {
		t.Fatalf("got %q, want one broken link to docs/no-such-page.md", got)
	}
}

// The commands in CONTRIBUTING.md's code blocks must run: each make target
// they name exists (the page may mention planned targets in its prose only).
func TestContributingCommandsNameMakeTargetsThatExist(t *testing.T) {
	makefile := string(readFile(t, "Makefile"))
	named := 0
	for _, block := range codeBlocks(string(readFile(t, "CONTRIBUTING.md"))) {
		for _, m := range regexp.MustCompile(`(?m)^(?:[A-Z_]+=\S+ )*make ([a-z][a-z0-9-]*)`).FindAllStringSubmatch(block, -1) {
			named++
			if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(m[1]) + `:`).MatchString(makefile) {
				t.Errorf("CONTRIBUTING.md runs `make %s`, which the Makefile does not have", m[1])
			}
		}
	}
	if named == 0 {
		t.Error("CONTRIBUTING.md's code blocks run no make target: the two commands belong there")
	}
}

// codeBlocks returns the contents of a Markdown text's fenced code blocks.
func codeBlocks(text string) []string {
	var blocks []string
	var cur []string
	in := false
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "```") {
			if in {
				blocks = append(blocks, strings.Join(cur, "\n"))
				cur = nil
			}
			in = !in
			continue
		}
		if in {
			cur = append(cur, line)
		}
	}
	return blocks
}
