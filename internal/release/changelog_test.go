package release

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// semverPattern is the regular expression of semver.org 2.0.0.
const semverPattern = `(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)` +
	`(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?` +
	`(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?`

var (
	semverRE        = regexp.MustCompile(`^` + semverPattern + `$`)
	releaseHeading  = regexp.MustCompile(`^## \[(` + semverPattern + `)\] - (\d{4}-\d{2}-\d{2})$`)
	linkDefinition  = regexp.MustCompile(`^\[([^\]]+)\]: (\S+)$`)
	changelogGroups = []string{"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}
)

// compareSemver orders two semver.org versions: -1, 0 or 1. Build metadata
// is ignored; a pre-release sorts before its release, and pre-releases
// compare field by field (numbers numerically, below any text).
func compareSemver(a, b string) int {
	ma, mb := semverRE.FindStringSubmatch(a), semverRE.FindStringSubmatch(b)
	for i := 1; i <= 3; i++ {
		x, _ := strconv.Atoi(ma[i])
		y, _ := strconv.Atoi(mb[i])
		if c := cmpInt(x, y); c != 0 {
			return c
		}
	}
	pa, pb := ma[4], mb[4]
	switch {
	case pa == pb:
		return 0
	case pa == "":
		return 1
	case pb == "":
		return -1
	}
	fa, fb := strings.Split(pa, "."), strings.Split(pb, ".")
	for i := 0; i < len(fa) && i < len(fb); i++ {
		x, errX := strconv.Atoi(fa[i])
		y, errY := strconv.Atoi(fb[i])
		switch {
		case errX == nil && errY == nil:
			if c := cmpInt(x, y); c != 0 {
				return c
			}
		case errX == nil:
			return -1
		case errY == nil:
			return 1
		default:
			if c := strings.Compare(fa[i], fb[i]); c != 0 {
				return c
			}
		}
	}
	return cmpInt(len(fa), len(fb))
}

func cmpInt(x, y int) int {
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

// checkChangelog reads CHANGELOG.md in the Keep a Changelog 1.1.0 shape and
// returns its latest released version and what is wrong with it: an
// [Unreleased] section first, then releases "## [x.y.z] - YYYY-MM-DD", newest
// first; only Keep a Changelog's groups as "###" headings, each release with
// entries; a link definition for every heading, under the project's home.
func checkChangelog(text, home string) (latest string, problems []string) {
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	lines := strings.Split(text, "\n")
	if len(lines) == 0 || lines[0] != "# Changelog" {
		bad(`the first line must be "# Changelog"`)
	}

	type section struct {
		label, version, date string
		groups               map[string]int // "###" group -> its "- " entries
		group                string
	}
	var sections []*section
	links := map[string]string{}
	for n, line := range lines {
		num := n + 1
		switch {
		case strings.HasPrefix(line, "## "):
			s := &section{groups: map[string]int{}}
			if line == "## [Unreleased]" {
				s.label = "Unreleased"
			} else if m := releaseHeading.FindStringSubmatch(line); m != nil {
				s.label, s.version, s.date = m[1], m[1], m[len(m)-1]
				if _, err := time.Parse(time.DateOnly, s.date); err != nil {
					bad("line %d: %s is not a date", num, s.date)
				}
			} else {
				bad(`line %d: %q is neither "## [Unreleased]" nor "## [x.y.z] - YYYY-MM-DD"`, num, line)
				continue
			}
			sections = append(sections, s)
		case strings.HasPrefix(line, "### "):
			name := strings.TrimPrefix(line, "### ")
			if len(sections) == 0 {
				bad("line %d: %q before any version heading", num, line)
				continue
			}
			s := sections[len(sections)-1]
			if !slices.Contains(changelogGroups, name) {
				bad("line %d: %q is not one of Keep a Changelog's groups %v", num, name, changelogGroups)
			}
			if _, dup := s.groups[name]; dup {
				bad("line %d: [%s] has two %q groups", num, s.label, name)
			}
			s.groups[name] = 0
			s.group = name
		case strings.HasPrefix(line, "- "):
			if len(sections) > 0 && sections[len(sections)-1].group != "" {
				s := sections[len(sections)-1]
				s.groups[s.group]++
			}
		default:
			if m := linkDefinition.FindStringSubmatch(line); m != nil {
				links[m[1]] = m[2]
			}
		}
	}

	if len(sections) == 0 || sections[0].label != "Unreleased" {
		bad("the first section must be [Unreleased], where the next changes go")
	}
	var released []*section
	for i, s := range sections {
		if s.label == "Unreleased" {
			if i > 0 {
				bad("[Unreleased] must come first, not after [%s]", sections[i-1].label)
			}
			continue
		}
		released = append(released, s)
		entries := 0
		for _, n := range s.groups {
			entries += n
		}
		if entries == 0 {
			bad("[%s] lists no changes", s.label)
		}
	}
	if len(released) == 0 {
		bad("no released version")
		return "", problems
	}
	for i := 1; i < len(released); i++ {
		newer, older := released[i-1], released[i]
		if compareSemver(newer.version, older.version) <= 0 {
			bad("[%s] is listed above [%s]: newest first", newer.version, older.version)
		}
		if newer.date < older.date {
			bad("[%s] is dated %s, before [%s] (%s)", newer.version, newer.date, older.version, older.date)
		}
	}
	latest = released[0].version
	for _, s := range sections {
		url, ok := links[s.label]
		switch {
		case !ok:
			bad("no link definition [%s]: ...", s.label)
		case !strings.HasPrefix(url, home+"/"):
			bad("[%s] links %s, not under %s", s.label, url, home)
		case s.label == "Unreleased" && !strings.HasSuffix(url, "v"+latest+"...HEAD"):
			bad("[Unreleased] links %s: it should compare v%s...HEAD", url, latest)
		case s.label != "Unreleased" && !strings.HasSuffix(url, "v"+s.version):
			bad("[%s] links %s, which does not end at its tag v%s", s.label, url, s.version)
		}
	}
	return latest, problems
}

// latestReleasedVersion is the changelog's newest release; the test fails
// when CHANGELOG.md is not in shape.
func latestReleasedVersion(t testing.TB) string {
	t.Helper()
	latest, problems := checkChangelog(string(readFile(t, "CHANGELOG.md")), homeURL(t))
	for _, p := range problems {
		t.Errorf("CHANGELOG.md: %s", p)
	}
	if latest == "" {
		t.FailNow()
	}
	return latest
}

func TestChangelogKeepsAChangelogShape(t *testing.T) {
	latest := latestReleasedVersion(t)
	t.Logf("latest released version: %s", latest)
}

func TestCheckChangelogRefusesWhatIsOutOfShape(t *testing.T) {
	const home = "https://github.com/example/project"
	good := "# Changelog\n\n## [Unreleased]\n\n## [0.2.0] - 2026-12-02\n\n### Fixed\n\n- a fix\n\n" +
		"## [0.1.0] - 2026-12-01\n\n### Added\n\n- a start\n\n" +
		"[Unreleased]: " + home + "/compare/v0.2.0...HEAD\n" +
		"[0.2.0]: " + home + "/compare/v0.1.0...v0.2.0\n" +
		"[0.1.0]: " + home + "/releases/tag/v0.1.0\n"
	if latest, problems := checkChangelog(good, home); latest != "0.2.0" || len(problems) > 0 {
		t.Fatalf("the good changelog: latest %q, problems %q; want 0.2.0 and none", latest, problems)
	}
	tests := []struct {
		name, from, to, want string
	}{
		{"no Unreleased section", "## [Unreleased]\n", "", "first section must be [Unreleased]"},
		{"versions out of order", "## [0.2.0] - 2026-12-02", "## [0.0.9] - 2026-12-02", "newest first"},
		{"dates out of order", "## [0.2.0] - 2026-12-02", "## [0.2.0] - 2026-11-30", "dated 2026-11-30"},
		{"not a date", "2026-12-02\n\n### Fixed", "2026-13-02\n\n### Fixed", "not a date"},
		{"a group Keep a Changelog does not have", "### Fixed", "### Improvements", "not one of Keep a Changelog's groups"},
		{"a release without entries", "- a fix\n", "", "[0.2.0] lists no changes"},
		{"a version that is not semver", "## [0.2.0] - 2026-12-02", "## [0.2] - 2026-12-02", "neither"},
		{"no link for a version", "[0.1.0]: " + home + "/releases/tag/v0.1.0\n", "", "no link definition [0.1.0]"},
		{"Unreleased compares from an old tag", "compare/v0.2.0...HEAD", "compare/v0.1.0...HEAD", "should compare v0.2.0...HEAD"},
		{"a link off the project's home", home + "/releases/tag/v0.1.0", "https://elsewhere.example/v0.1.0", "not under " + home},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := strings.Replace(good, tt.from, tt.to, 1)
			if text == good {
				t.Fatalf("the edit %q -> %q changed nothing", tt.from, tt.to)
			}
			_, problems := checkChangelog(text, home)
			if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tt.want) }) {
				t.Errorf("problems %q, want one containing %q", problems, tt.want)
			}
		})
	}
}

func TestCompareSemver(t *testing.T) {
	ordered := []string{"0.1.0-alpha", "0.1.0-alpha.1", "0.1.0-alpha.beta", "0.1.0-beta.2", "0.1.0-beta.11", "0.1.0", "0.1.1", "0.10.0", "1.0.0"}
	for i := range ordered {
		for j := range ordered {
			if got, want := compareSemver(ordered[i], ordered[j]), cmpInt(i, j); got != want {
				t.Errorf("compareSemver(%s, %s) = %d, want %d", ordered[i], ordered[j], got, want)
			}
		}
	}
}

// SECURITY.md's supported versions move with the releases: the latest
// release's minor line is the one that gets fixes.
func TestSecurityPolicySupportsTheLatestRelease(t *testing.T) {
	latest := latestReleasedVersion(t)
	m := semverRE.FindStringSubmatch(latest)
	line := m[1] + "." + m[2] + ".x"
	policy := string(readFile(t, "SECURITY.md"))
	supported := regexp.MustCompile(`(?m)^\| ` + regexp.QuoteMeta(line) + `\b[^|]*\| yes`)
	if !supported.MatchString(policy) {
		t.Errorf("SECURITY.md's supported versions have no row %q marked yes for the latest release %s", "| "+line+" ... | yes", latest)
	}
}
