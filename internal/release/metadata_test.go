package release

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/connectexpress/onboarding/internal/repofile"
)

// apacheLicenseSHA256 is the SHA-256 of https://www.apache.org/licenses/LICENSE-2.0.txt,
// the licence's standard text (also aws-sdk-go-v2's LICENSE.txt, byte for byte).
const apacheLicenseSHA256 = "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30"

// sarProperties are the AWS::ServerlessRepo::Application properties this
// project publishes (the SAM developer guide's "Metadata section properties";
// the *Body variants are the alternative to the *Url ones we use).
var sarProperties = []string{
	"Name", "Description", "Author", "SpdxLicenseId", "LicenseUrl", "ReadmeUrl",
	"Labels", "HomePageUrl", "SemanticVersion", "SourceCodeUrl",
}

// The limits of the Serverless Application Repository API (CreateApplication).
var (
	sarName   = regexp.MustCompile(`^[a-zA-Z0-9-]{1,140}$`)
	sarAuthor = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,125}[a-z0-9])?$`) // and no "--"
	sarLabel  = regexp.MustCompile(`^[a-zA-Z0-9+\-_:/@]{1,127}$`)
)

const (
	sarMaxDescription = 256
	sarMaxLabels      = 10
	sarMaxFileBytes   = 5 << 20 // LicenseUrl and ReadmeUrl files
)

// sarMetadata returns template.yaml's Metadata.AWS::ServerlessRepo::Application node.
func sarMetadata(template *yaml.Node) *yaml.Node {
	return repofile.YAMLPath(template, "Metadata", "AWS::ServerlessRepo::Application")
}

// checkSARMetadata returns what keeps the metadata from being published as
// this project's listing: a missing or misspelt property, a value SAR
// refuses, an intrinsic function (SAR resolves none here), a licence or
// readme file that is not there, links that are not the project's home, or a
// SemanticVersion other than the changelog's latest release.
func checkSARMetadata(app *yaml.Node, root, home, latest string) []string {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if app == nil || app.Kind != yaml.MappingNode {
		return []string{"template.yaml has no Metadata.AWS::ServerlessRepo::Application mapping"}
	}
	props := map[string]*yaml.Node{}
	for i := 0; i+1 < len(app.Content); i += 2 {
		key := app.Content[i].Value
		if !slices.Contains(sarProperties, key) {
			bad("%s: not one of %v (SAR would ignore a misspelt property)", key, sarProperties)
			continue
		}
		props[key] = app.Content[i+1]
	}
	text := func(key string) string {
		n := props[key]
		switch {
		case n == nil:
			bad("%s: missing", key)
			return ""
		case n.Kind != yaml.ScalarNode || n.Tag != "!!str":
			bad("%s: must be a plain string (SAR resolves no intrinsic functions here), got %s", key, n.Tag)
			return ""
		case strings.TrimSpace(n.Value) == "":
			bad("%s: empty", key)
		}
		return n.Value
	}
	localFile := func(key string) []byte {
		name := text(key)
		if name == "" {
			return nil
		}
		if filepath.IsAbs(name) || strings.Contains(name, "://") || !filepath.IsLocal(name) {
			bad("%s: %q must be a file of the repository (sam package uploads it)", key, name)
			return nil
		}
		raw, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			bad("%s: %v", key, err)
			return nil
		}
		if len(raw) > sarMaxFileBytes {
			bad("%s: %s is %d bytes, over SAR's 5 MB", key, name, len(raw))
		}
		return raw
	}

	if name := text("Name"); !sarName.MatchString(name) {
		bad("Name: %q must be 1 to 140 letters, digits or hyphens", name)
	}
	if d := text("Description"); utf8.RuneCountInString(d) > sarMaxDescription {
		bad("Description: %d characters, over SAR's %d", utf8.RuneCountInString(d), sarMaxDescription)
	}
	if a := text("Author"); !sarAuthor.MatchString(a) || strings.Contains(a, "--") {
		bad("Author: %q must be lower-case letters, digits and single hyphens, at most 127, starting and ending with a letter or digit", a)
	}
	if id := text("SpdxLicenseId"); id != "Apache-2.0" {
		bad("SpdxLicenseId: %q, want Apache-2.0 (the LICENSE)", id)
	}
	if raw := localFile("LicenseUrl"); raw != nil {
		if sum := sha256.Sum256(raw); hex.EncodeToString(sum[:]) != apacheLicenseSHA256 {
			bad("LicenseUrl: %s is not the standard Apache-2.0 text that SpdxLicenseId names", props["LicenseUrl"].Value)
		}
	}
	if localFile("ReadmeUrl") != nil && !strings.HasSuffix(props["ReadmeUrl"].Value, ".md") {
		bad("ReadmeUrl: %s must be Markdown", props["ReadmeUrl"].Value)
	}

	switch labels := props["Labels"]; {
	case labels == nil:
		bad("Labels: missing")
	case labels.Kind != yaml.SequenceNode || len(labels.Content) == 0 || len(labels.Content) > sarMaxLabels:
		bad("Labels: must be a list of 1 to %d labels", sarMaxLabels)
	default:
		seen := map[string]bool{}
		for _, l := range labels.Content {
			if l.Kind != yaml.ScalarNode || l.Tag != "!!str" || !sarLabel.MatchString(l.Value) {
				bad("Labels: %q must be 1 to 127 of a-z A-Z 0-9 + - _ : / @", l.Value)
			}
			if seen[l.Value] {
				bad("Labels: %q twice", l.Value)
			}
			seen[l.Value] = true
		}
	}

	if u := text("HomePageUrl"); u != home {
		bad("HomePageUrl: %q, want the project's home %s (go.mod's module path)", u, home)
	}
	version := text("SemanticVersion")
	switch {
	case !semverRE.MatchString(version):
		bad("SemanticVersion: %q is not a semantic version", version)
	case version != latest:
		bad("SemanticVersion: %s, but CHANGELOG.md's latest release is %s: keep them equal", version, latest)
	}
	// SAR keeps a source link per version: the tag of this one.
	if u, want := text("SourceCodeUrl"), home+"/tree/v"+version; u != want {
		bad("SourceCodeUrl: %q, want %s (the tag of SemanticVersion)", u, want)
	}
	return problems
}

func TestServerlessRepoMetadataIsCompleteAndMatchesTheChangelog(t *testing.T) {
	latest := latestReleasedVersion(t)
	tpl := parseYAML(t, "template.yaml", readFile(t, "template.yaml"))
	for _, p := range checkSARMetadata(sarMetadata(tpl), repofile.Root(t), homeURL(t), latest) {
		t.Error(p)
	}
}

func TestCheckSARMetadataRefusesWhatSARWouldRefuseOrMisstate(t *testing.T) {
	root, home := repofile.Root(t), homeURL(t)
	raw := string(readFile(t, "template.yaml"))
	latest := latestReleasedVersion(t)
	tests := []struct {
		name, from, to, want string
	}{
		{"a missing property", "    Author: connectexpress\n", "", "Author: missing"},
		{"a misspelt property", "    SpdxLicenseId:", "    SpdxLicenceId:", "SpdxLicenceId: not one of"},
		{"an author SAR refuses", "Author: connectexpress", "Author: Connect Express", "Author:"},
		{"an intrinsic function", "SemanticVersion: " + latest, "SemanticVersion: !Ref Version", "must be a plain string"},
		{"a version the changelog has not released", "SemanticVersion: " + latest, "SemanticVersion: 99.0.0", "keep them equal"},
		{"a source link to another tag", "/tree/v" + latest, "/tree/main", "SourceCodeUrl"},
		{"a licence file that is not there", "LicenseUrl: LICENSE", "LicenseUrl: LICENCE", "LicenseUrl:"},
		{"a licence file that is not Apache-2.0", "LicenseUrl: LICENSE", "LicenseUrl: README.md", "not the standard Apache-2.0 text"},
		{"a file outside the repository", "ReadmeUrl: README.md", "ReadmeUrl: ../README.md", "must be a file of the repository"},
		{"another licence", "SpdxLicenseId: Apache-2.0", "SpdxLicenseId: MIT", "want Apache-2.0"},
		{"eleven labels", "Labels: [", "Labels: [one, ", "1 to 10 labels"},
		{"a label SAR refuses", "Labels: [stripe,", "Labels: [two words,", "must be 1 to 127"},
		{"another home", "HomePageUrl: " + home, "HomePageUrl: https://example.com", "HomePageUrl"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := strings.Replace(raw, tt.from, tt.to, 1)
			if text == raw {
				t.Fatalf("the edit %q -> %q changed nothing: template.yaml's metadata block moved?", tt.from, tt.to)
			}
			problems := checkSARMetadata(sarMetadata(parseYAML(t, tt.name, []byte(text))), root, home, latest)
			if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tt.want) }) {
				t.Errorf("problems %q, want one containing %q", problems, tt.want)
			}
		})
	}
}

func TestLicenseIsTheStandardApache20Text(t *testing.T) {
	sum := sha256.Sum256(readFile(t, "LICENSE"))
	if got := hex.EncodeToString(sum[:]); got != apacheLicenseSHA256 {
		t.Errorf("LICENSE has SHA-256 %s, not the standard Apache-2.0 text's %s", got, apacheLicenseSHA256)
	}
	if readme := string(readFile(t, "README.md")); !strings.Contains(readme, "Apache-2.0") {
		t.Error("README.md does not name the licence (Apache-2.0)")
	}
}
