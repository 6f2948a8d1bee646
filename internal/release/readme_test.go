package release

import (
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/connectexpress/onboarding/internal/repofile"
)

// docSection returns a Markdown page's "## <title>" section, up to the next "## ".
func docSection(t *testing.T, page, title string) string {
	t.Helper()
	text := string(readFile(t, page))
	_, section, ok := strings.Cut(text, "\n## "+title+"\n")
	if !ok {
		t.Fatalf("%s has no section %q", page, "## "+title)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	return section
}

// docs/deploy.md's nesting example must deploy: it passes every parameter of
// template.yaml that has no default and no parameter the template lacks,
// nests the latest release under the published name, and the section names
// every output a parent stack can read.
func TestNestingSnippetMatchesTheTemplate(t *testing.T) {
	section := docSection(t, "docs/deploy.md", "Use it from your own SAM template")
	var snippet string
	for _, block := range codeBlocks(section) {
		if strings.Contains(block, "AWS::Serverless::Application") {
			snippet = block
			break
		}
	}
	if snippet == "" {
		t.Fatal("the section has no code block with an AWS::Serverless::Application")
	}
	var app *yaml.Node
	resources := repofile.YAMLPath(parseYAML(t, "the nesting snippet", []byte(snippet)), "Resources")
	for _, id := range mappingKeys(resources) {
		r := repofile.YAMLPath(resources, id)
		if typ := repofile.YAMLPath(r, "Type"); typ != nil && typ.Value == "AWS::Serverless::Application" {
			app = repofile.YAMLPath(r, "Properties")
		}
	}
	if app == nil {
		t.Fatal("the snippet's AWS::Serverless::Application has no Properties")
	}

	tpl := parseYAML(t, "template.yaml", readFile(t, "template.yaml"))
	sar := sarMetadata(tpl)
	location := repofile.YAMLPath(app, "Location")
	if id := repofile.YAMLPath(location, "ApplicationId"); id == nil || !strings.HasSuffix(id.Value, ":applications/"+repofile.YAMLPath(sar, "Name").Value) {
		t.Errorf("Location.ApplicationId must end with applications/%s (the metadata's Name)", repofile.YAMLPath(sar, "Name").Value)
	}
	if v, latest := repofile.YAMLPath(location, "SemanticVersion"), latestReleasedVersion(t); v == nil || v.Value != latest {
		t.Errorf("Location.SemanticVersion must be the latest release, %s", latest)
	}

	params := repofile.YAMLPath(tpl, "Parameters")
	passed := mappingKeys(repofile.YAMLPath(app, "Parameters"))
	for _, name := range passed {
		if repofile.YAMLPath(params, name) == nil {
			t.Errorf("the snippet passes %s, which template.yaml does not declare", name)
		}
	}
	for _, name := range mappingKeys(params) {
		if repofile.YAMLPath(repofile.YAMLPath(params, name), "Default") == nil && !slices.Contains(passed, name) {
			t.Errorf("the snippet does not pass %s, which has no default", name)
		}
	}
	for _, name := range mappingKeys(repofile.YAMLPath(tpl, "Outputs")) {
		if !strings.Contains(section, "`"+name+"`") {
			t.Errorf("the section does not name the output %s", name)
		}
	}
}
