package release

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"

	"gopkg.in/yaml.v3"

	"github.com/connectexpress/onboarding/internal/repofile"
	"github.com/connectexpress/onboarding/shared/httpapi"
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
// repository that do not exist, and to headings that are not in the page
// they name (the page itself for "#anchor"). Web links are not followed.
func brokenLocalLinks(root, name string, text []byte) []string {
	var broken []string
	for _, m := range localLink.FindAllSubmatch(withoutCodeBlocks(text), -1) {
		target := string(m[1])
		if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
			continue
		}
		file, anchor, _ := strings.Cut(target, "#")
		page := text
		if file != "" {
			path := filepath.Join(root, filepath.Dir(name), file)
			if _, err := os.Stat(path); err != nil {
				broken = append(broken, fmt.Sprintf("%s links %s, which does not exist", name, file))
				continue
			}
			if anchor == "" {
				continue
			}
			if !strings.HasSuffix(file, ".md") {
				broken = append(broken, fmt.Sprintf("%s links %s: an anchor in a file that is not Markdown", name, target))
				continue
			}
			raw, err := os.ReadFile(path)
			if err != nil {
				broken = append(broken, fmt.Sprintf("%s links %s: %v", name, target, err))
				continue
			}
			page = raw
		}
		if !slices.Contains(headingAnchors(page), anchor) {
			broken = append(broken, fmt.Sprintf("%s links %s, which has no heading with the anchor #%s", name, target, anchor))
		}
	}
	return broken
}

// withoutCodeBlocks blanks the fenced code blocks of a Markdown text: a
// "# comment" in a shell block is no heading, and "](x)" in code no link.
func withoutCodeBlocks(text []byte) []byte {
	var out []string
	in := false
	for _, line := range strings.Split(string(text), "\n") {
		if strings.HasPrefix(line, "```") {
			in = !in
			out = append(out, "")
			continue
		}
		if in {
			line = ""
		}
		out = append(out, line)
	}
	return []byte(strings.Join(out, "\n"))
}

var heading = regexp.MustCompile(`(?m)^#{1,6}[ \t]+(.+?)[ \t#]*$`)

// headingAnchors lists the anchors GitHub gives a Markdown page's headings,
// in order: the heading's text lowercased, every character dropped that is
// not a letter, a digit, a space, '-' or '_', each space a '-'; a repeated
// anchor gets -1, -2, ... in the order the headings come.
func headingAnchors(text []byte) []string {
	seen := map[string]int{}
	var anchors []string
	for _, m := range heading.FindAllSubmatch(withoutCodeBlocks(text), -1) {
		slug := headingSlug(string(m[1]))
		if n := seen[slug]; n > 0 {
			anchors = append(anchors, fmt.Sprintf("%s-%d", slug, n))
		} else {
			anchors = append(anchors, slug)
		}
		seen[slug]++
	}
	return anchors
}

func headingSlug(title string) string {
	// A link in a heading counts by its text only.
	title = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`).ReplaceAllString(title, "$1")
	var b strings.Builder
	for _, r := range strings.ToLower(title) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// The project documents a reader looks for first, each linked from the
// README, each linking only to files that exist: so CONTRIBUTING.md cannot
// point at a docs page or a make target before it is there.
func TestREADMELinksTheProjectDocumentsAndTheirLinksResolve(t *testing.T) {
	root := repofile.Root(t)
	readme := readFile(t, "README.md")
	for _, doc := range []string{"LICENSE", "SECURITY.md", "CHANGELOG.md", "CONTRIBUTING.md", "openapi.yaml",
		"docs/architecture.md", "docs/deploy.md", "docs/configuration.md", "docs/operations.md",
		"docs/performance.md", "docs/reliability.md", "docs/local.md"} {
		if !bytes.Contains(readme, []byte("]("+doc+")")) {
			t.Errorf("README.md does not link %s", doc)
		}
	}
	for _, doc := range markdownDocuments(t) {
		for _, b := range brokenLocalLinks(root, doc, readFile(t, doc)) {
			t.Error(b)
		}
	}
}

// markdownDocuments are the project's Markdown pages: the top-level ones and
// docs/*.md. docs/_incoming/ holds text waiting to be placed, not pages.
func markdownDocuments(t *testing.T) []string {
	t.Helper()
	root := repofile.Root(t)
	var docs []string
	for _, pattern := range []string{"*.md", "docs/*.md"} {
		matches, err := filepath.Glob(filepath.Join(root, pattern))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range matches {
			rel, _ := filepath.Rel(root, m)
			docs = append(docs, filepath.ToSlash(rel))
		}
	}
	for _, want := range []string{"README.md", "CONTRIBUTING.md", "SECURITY.md", "CHANGELOG.md", "docs/architecture.md"} {
		if !slices.Contains(docs, want) {
			t.Errorf("%s is missing", want)
		}
	}
	return docs
}

// The README is a page a newcomer reads in five minutes; the rest is in docs/.
func TestREADMEIsAtMostThreeHundredLines(t *testing.T) {
	if n := bytes.Count(readFile(t, "README.md"), []byte("\n")); n > 300 {
		t.Errorf("README.md has %d lines, want at most 300: move the detail to a page in docs/", n)
	}
}

func TestHeadingAnchorsFollowGitHubsRules(t *testing.T) {
	page := "# Deploy\n## 1. Build and deploy\n### Running it locally with `sam local` (Docker)\n" +
		"## What `make test` proves about this, without an AWS account\n## Operations\n### Operations\n" +
		"```sh\n# a comment, not a heading\n```\n## Staff routes: fraud vetting\n## Operations\n## [Unreleased](https://example.com)\n"
	want := []string{"deploy", "1-build-and-deploy", "running-it-locally-with-sam-local-docker",
		"what-make-test-proves-about-this-without-an-aws-account", "operations", "operations-1",
		"staff-routes-fraud-vetting", "operations-2", "unreleased"}
	if got := headingAnchors([]byte(page)); !slices.Equal(got, want) {
		t.Errorf("anchors\n got %q\nwant %q", got, want)
	}
}

func TestBrokenLocalLinksFindsMissingFilesAndAnchors(t *testing.T) {
	root := repofile.Root(t)
	cases := []struct {
		name, text, want string
	}{
		{"a missing page", "see [the layers](docs/no-such-page.md#top)", "docs/no-such-page.md, which does not exist"},
		{"a missing heading in another page", "see [the layers](docs/architecture.md#no-such-heading)", "no heading with the anchor #no-such-heading"},
		{"a missing heading in the page itself", "# Title\nsee [here](#tests)", "no heading with the anchor #tests"},
		{"a heading only inside a code block", "```\n## Tests\n```\nsee [here](#tests)", "no heading with the anchor #tests"},
		{"an anchor in a file that is not Markdown", "[the licence](LICENSE#top)", "not Markdown"},
		{"nothing wrong", "## Tests\n[home](https://example.com/#x), [here](#tests), [the licence](LICENSE), " +
			"[the layers](docs/architecture.md#packages-and-what-each-may-import), [mail](mailto:a@example.com)", ""},
		{"a link inside a code block is not followed", "```\n[x](no-such-file.md)\n```", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := brokenLocalLinks(root, "CONTRIBUTING.md", []byte(c.text))
			if c.want == "" {
				if len(got) != 0 {
					t.Fatalf("got %q, want nothing broken", got)
				}
				return
			}
			if len(got) != 1 || !strings.Contains(got[0], c.want) {
				t.Fatalf("got %q, want one broken link saying %q", got, c.want)
			}
		})
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

// The README's first screens show how the parts fit together: one Mermaid
// diagram naming each part of the system, and the whole HTTP contract.
func TestREADMEDiagramAndContractCoverTheSystem(t *testing.T) {
	readme := string(readFile(t, "README.md"))
	var diagrams []string
	for _, block := range strings.Split(readme, "```mermaid\n")[1:] {
		diagram, _, _ := strings.Cut(block, "```")
		diagrams = append(diagrams, diagram)
	}
	if len(diagrams) != 1 {
		t.Fatalf("README.md has %d Mermaid diagrams, want one", len(diagrams))
	}
	for _, part := range []string{"frontend", "API Gateway", "JWT authorizer", "DynamoDB table", "DynamoDB stream",
		"Stripe", "webhooks", "sweep", "EventBridge", "Staff console", "Secrets Manager"} {
		if !strings.Contains(diagrams[0], part) {
			t.Errorf("the README's diagram does not show %q", part)
		}
	}
	_, contract, ok := strings.Cut(readme, "\n## HTTP contract\n")
	if !ok {
		t.Fatal("README.md has no HTTP contract section")
	}
	contract, _, _ = strings.Cut(contract, "\n## ")
	if !strings.Contains(contract, "](openapi.yaml)") {
		t.Error("the README's HTTP contract does not link openapi.yaml")
	}
	for _, r := range httpapi.Routes {
		if !strings.Contains(contract, "| `"+r.Method+" "+r.Path) {
			t.Errorf("the README's HTTP contract table has no row for %s %s", r.Method, r.Path)
		}
	}
}
