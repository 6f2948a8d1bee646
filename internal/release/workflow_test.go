package release

import (
	"io/fs"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/connectexpress/onboarding/internal/repofile"
)

// workflow is the part of a GitHub Actions workflow these tests read.
type workflow struct {
	Permissions map[string]string `yaml:"permissions"`
	Jobs        map[string]struct {
		RunsOn      string            `yaml:"runs-on"`
		Permissions map[string]string `yaml:"permissions"`
		Env         map[string]string `yaml:"env"`
		Steps       []struct {
			Name string            `yaml:"name"`
			Uses string            `yaml:"uses"`
			With map[string]string `yaml:"with"`
			Env  map[string]string `yaml:"env"`
			Run  string            `yaml:"run"`
		} `yaml:"steps"`
	} `yaml:"jobs"`
}

const ciWorkflow = ".github/workflows/ci.yml"

func loadWorkflow(t *testing.T) (workflow, string) {
	t.Helper()
	raw := readFile(t, ciWorkflow)
	var w workflow
	if err := yaml.Unmarshal(raw, &w); err != nil {
		t.Fatalf("%s: %v", ciWorkflow, err)
	}
	return w, string(raw)
}

// The hosting platform's CI runs what .ci/run runs, on the toolchains the
// project pins, and can neither read a secret nor change anything.
func TestCIWorkflowRunsMakeTestWithNoSecretsAndReadOnlyPermissions(t *testing.T) {
	w, raw := loadWorkflow(t)
	if want := map[string]string{"contents": "read"}; !maps.Equal(w.Permissions, want) {
		t.Errorf("workflow permissions %v, want exactly %v", w.Permissions, want)
	}
	// Secrets and the job token are the ways a workflow reaches beyond the checkout.
	for _, forbidden := range []string{"secrets.", "secrets[", "github.token", "GITHUB_TOKEN", "id-token"} {
		if strings.Contains(raw, forbidden) {
			t.Errorf("%s mentions %q: CI needs no secret and no token", ciWorkflow, forbidden)
		}
	}
	if len(w.Jobs) == 0 {
		t.Fatal("no jobs")
	}
	runsMakeTest := false
	for name, job := range w.Jobs {
		if job.RunsOn != "ubuntu-latest" {
			t.Errorf("job %s runs on %q, want ubuntu-latest", name, job.RunsOn)
		}
		for scope, level := range job.Permissions {
			if level != "read" && level != "none" {
				t.Errorf("job %s asks for %s: %s; CI may only read", name, scope, level)
			}
		}
		var setupGo, setupPython bool
		for _, step := range job.Steps {
			action, _, _ := strings.Cut(step.Uses, "@")
			switch action {
			case "actions/setup-go":
				setupGo = true
				if step.With["go-version-file"] != "go.mod" {
					t.Errorf("job %s: actions/setup-go must take Go from go.mod (go-version-file: go.mod), got %v", name, step.With)
				}
			case "actions/setup-python":
				setupPython = true
				if step.With["python-version"] != "3.11" {
					t.Errorf("job %s: Python %q, want 3.11 (README's prerequisite)", name, step.With["python-version"])
				}
			}
			for _, deploy := range []string{"sam deploy", "make deploy", "sam publish", "sam package", "sam sync", "register-webhook", "aws "} {
				if strings.Contains(step.Run, deploy) {
					t.Errorf("job %s, step %q runs %q: CI must not deploy or publish", name, step.Name, deploy)
				}
			}
			if strings.TrimSpace(step.Run) == "make test" {
				runsMakeTest = true
				if !setupGo || !setupPython {
					t.Errorf("job %s runs make test before setting up Go and Python", name)
				}
				if job.Env["CI"] != "true" && step.Env["CI"] != "true" {
					t.Errorf("job %s runs make test without CI=true: tests would skip instead of failing", name)
				}
			}
		}
	}
	if !runsMakeTest {
		t.Errorf("no step runs exactly `make test`, which .ci/run runs")
	}
}

var (
	// aptLine matches an apt-get command that installs or downloads packages.
	aptLine = regexp.MustCompile(`apt-get\s+(?:-\S+\s+)*(?:install|download)\s+(.*)`)
	// arrayAppend matches `need+=(docker.io)`: scripts/ci-setup.sh collects
	// what is missing in an array and installs it with one apt-get.
	arrayAppend    = regexp.MustCompile(`\w+\+=\(([^)]*)\)`)
	shellSeparator = regexp.MustCompile(`[;&|)]`)
	debianPackage  = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+(:[a-z0-9]+)?$`)
)

// aptPackages returns the Debian packages named on the apt-get install and
// apt-get download lines of a shell script, and in array appends such as
// need+=(docker.io) (options and shell expansions are skipped).
func aptPackages(script string) []string {
	var pkgs []string
	for _, line := range strings.Split(script, "\n") {
		line, _, _ = strings.Cut(line, "#")
		if first, _, _ := strings.Cut(strings.TrimSpace(line), " "); first == "echo" || first == "printf" {
			continue // a message that names apt-get runs nothing
		}
		var args string
		if m := aptLine.FindStringSubmatch(line); m != nil {
			args = shellSeparator.Split(m[1], 2)[0] // the command ends at ; & | or )
		} else if m := arrayAppend.FindStringSubmatch(line); m != nil {
			args = m[1]
		} else {
			continue
		}
		for _, word := range strings.Fields(args) {
			if word = strings.Trim(word, `"'`); debianPackage.MatchString(word) {
				pkgs = append(pkgs, word)
			}
		}
	}
	return pkgs
}

// Every Debian package .ci/run installs, the workflow installs too (or makes
// downloadable), so the two CI entry points run the same tests.
func TestCIWorkflowInstallsTheDebianPackagesThatCIRunInstalls(t *testing.T) {
	w, _ := loadWorkflow(t)
	var listed []string
	for _, job := range w.Jobs {
		for _, step := range job.Steps {
			listed = append(listed, strings.Fields(step.Env["DEBIAN_PACKAGES"])...)
			listed = append(listed, strings.Fields(step.Env["DEBIAN_DOWNLOADS"])...)
		}
	}
	if len(listed) == 0 {
		t.Fatalf("%s has no step listing DEBIAN_PACKAGES", ciWorkflow)
	}
	// .ci/run leaves the installing to scripts/ci-setup.sh.
	found := 0
	for _, script := range []string{".ci/run", "scripts/ci-setup.sh"} {
		for _, pkg := range aptPackages(string(readFile(t, script))) {
			found++
			if !slices.Contains(listed, pkg) {
				t.Errorf("%s installs %s, which %s does not list in DEBIAN_PACKAGES or DEBIAN_DOWNLOADS", script, pkg, ciWorkflow)
			}
		}
	}
	if found == 0 {
		t.Error("no Debian package found in .ci/run or scripts/ci-setup.sh: the check would pass vacuously")
	}
}

func TestAptPackagesReadsInstallAndDownloadLines(t *testing.T) {
	script := `apt-get update
if ! command -v chromium; then apt-get install -y --no-install-recommends chromium "$extra"; fi
DEBIAN_FRONTEND=noninteractive apt-get -q install -y docker.io qemu-user-static binfmt-support # and more
(cd "$dir" && apt-get download busybox-static:arm64)
# apt-get install commented-out
command -v update-binfmts >/dev/null || need+=(binfmt-support)
  echo "apt-get download busybox-static:arm64 failed" >&2
`
	got := aptPackages(script)
	want := []string{"chromium", "docker.io", "qemu-user-static", "binfmt-support", "busybox-static:arm64", "binfmt-support"}
	if !slices.Equal(got, want) {
		t.Errorf("aptPackages = %q, want %q", got, want)
	}
}

// dependabotConfig is the part of .github/dependabot.yml these tests read.
type dependabotConfig struct {
	Version int `yaml:"version"`
	Updates []struct {
		Ecosystem string `yaml:"package-ecosystem"`
		Directory string `yaml:"directory"`
		Schedule  struct {
			Interval string `yaml:"interval"`
		} `yaml:"schedule"`
		Ignore []struct {
			DependencyName string   `yaml:"dependency-name"`
			UpdateTypes    []string `yaml:"update-types"`
		} `yaml:"ignore"`
	} `yaml:"updates"`
}

// ignores reports whether an ignore rule of the update for (ecosystem,
// directory) covers updates of kind updateType ("version-update:semver-major")
// to dependency. A rule without update-types ignores every update.
func (c dependabotConfig) ignores(ecosystem, directory, dependency, updateType string) bool {
	for _, u := range c.Updates {
		if u.Ecosystem != ecosystem || u.Directory != directory {
			continue
		}
		for _, rule := range u.Ignore {
			// Dependabot's dependency-name takes * as a wildcard for any text.
			pattern := "^" + strings.ReplaceAll(regexp.QuoteMeta(rule.DependencyName), `\*`, ".*") + "$"
			if regexp.MustCompile(pattern).MatchString(dependency) &&
				(len(rule.UpdateTypes) == 0 || slices.Contains(rule.UpdateTypes, updateType)) {
				return true
			}
		}
	}
	return false
}

// goModuleDirs lists the directories of the repository's Go modules as
// Dependabot names them ("/", "/tools").
func goModuleDirs(t *testing.T) []string {
	t.Helper()
	root := repofile.Root(t)
	var dirs []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if !d.IsDir() && d.Name() == "go.mod" {
			rel, err := filepath.Rel(root, filepath.Dir(path))
			if err != nil {
				return err
			}
			dirs = append(dirs, "/"+strings.TrimPrefix(filepath.ToSlash(rel), "."))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return dirs
}

func TestDependabotCoversEveryModuleWeeklyAndKeepsThePins(t *testing.T) {
	var c dependabotConfig
	if err := yaml.Unmarshal(readFile(t, ".github/dependabot.yml"), &c); err != nil {
		t.Fatalf(".github/dependabot.yml: %v", err)
	}
	if c.Version != 2 {
		t.Errorf("version %d, want 2", c.Version)
	}
	covered := map[string]bool{}
	for _, u := range c.Updates {
		covered[u.Ecosystem+" "+u.Directory] = true
		if u.Schedule.Interval != "weekly" {
			t.Errorf("%s %s: interval %q, want weekly", u.Ecosystem, u.Directory, u.Schedule.Interval)
		}
	}
	want := []string{"pip /", "github-actions /"}
	for _, dir := range goModuleDirs(t) {
		want = append(want, "gomod "+dir)
	}
	for _, w := range want {
		if !covered[w] {
			t.Errorf("no update entry for %s", w)
		}
	}
	if len(goModuleDirs(t)) < 2 {
		t.Errorf("found Go modules %v: want the service's and the tools'", goModuleDirs(t))
	}

	// stripe-go: v76 only, by design, while its own fixes still arrive.
	stripeGo := "github.com/stripe/stripe-go/v76"
	if !strings.Contains(string(readFile(t, "go.mod")), stripeGo+" v76.") {
		t.Errorf("go.mod does not require %s: the pin below protects nothing", stripeGo)
	}
	if !c.ignores("gomod", "/", stripeGo, "version-update:semver-major") {
		t.Errorf("stripe-go's major updates are not ignored: v76 pins Stripe API version 2023-10-16")
	}
	for _, kind := range []string{"version-update:semver-minor", "version-update:semver-patch"} {
		if c.ignores("gomod", "/", stripeGo, kind) {
			t.Errorf("stripe-go's %s updates are ignored: v76's own releases must still arrive", kind)
		}
	}
	// stripe-mock: v0.183.0 is the last served that bundles API version 2023-10-16 (v0.185.0 is 2024-04-10).
	if !c.ignores("gomod", "/tools", "github.com/stripe/stripe-mock", "version-update:semver-minor") {
		t.Errorf("stripe-mock updates are not ignored: newer releases refuse stripe-go v76 under -strict-version-check")
	}
	if c.ignores("gomod", "/", "github.com/aws/aws-sdk-go-v2", "version-update:semver-minor") {
		t.Errorf("the AWS SDK's updates are ignored: only stripe-go is pinned")
	}
}
