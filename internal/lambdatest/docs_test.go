package lambdatest

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/connectexpress/onboarding/internal/stripesim"
	"github.com/connectexpress/onboarding/shared/config"
)

// The documents an operator reads are held here to template.yaml and to the
// code, so that they cannot drift from what is deployed: docs/configuration.md's
// one table of settings, and docs/operations.md's runbook of the alarms.

// settingRow is one row of docs/configuration.md's table.
type settingRow struct {
	line      int
	variables []string // `NAME`s of the first column
	params    []string // `Name`s of the second
}

var (
	variableName  = regexp.MustCompile("`([A-Z][A-Z0-9_]*)`")
	parameterName = regexp.MustCompile("`([A-Z][A-Za-z0-9]*)`")
)

// settingsTable parses the table whose header is "| variable | template parameter |".
func settingsTable(t *testing.T, page string) []settingRow {
	t.Helper()
	var rows []settingRow
	in := false
	for i, line := range strings.Split(page, "\n") {
		if strings.HasPrefix(line, "| variable | template parameter |") {
			in = true
			continue
		}
		if !in {
			continue
		}
		if !strings.HasPrefix(line, "|") {
			break
		}
		cells := strings.Split(line, "|")
		if len(cells) < 4 || strings.HasPrefix(line, "|---") {
			continue
		}
		row := settingRow{line: i + 1}
		for _, m := range variableName.FindAllStringSubmatch(cells[1], -1) {
			row.variables = append(row.variables, m[1])
		}
		for _, m := range parameterName.FindAllStringSubmatch(cells[2], -1) {
			row.params = append(row.params, m[1])
		}
		rows = append(rows, row)
	}
	if len(rows) == 0 {
		t.Fatal("docs/configuration.md has no table headed | variable | template parameter |")
	}
	return rows
}

// readBy records the variables a loader asks for.
func readBy(load func(lookup func(string) (string, bool))) []string {
	var names []string
	load(func(name string) (string, bool) { names = append(names, name); return "", false })
	return names
}

// devServerReads are the variables internal/devserver reads for itself (the
// rest it hands to shared/config and the simulator).
var devServerRead = regexp.MustCompile(`env\.(?:get|lookup|orGenerate)\("([A-Z][A-Z0-9_]*)"`)

func TestConfigurationTableIsEveryVariableAndParameter(t *testing.T) {
	root := repoRoot(t)
	raw, err := os.ReadFile(filepath.Join(root, "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	rows := settingsTable(t, string(raw))
	documentedVariables, documentedParams := map[string]int{}, map[string]int{}
	for _, r := range rows {
		for _, v := range r.variables {
			if documentedVariables[v] != 0 {
				t.Errorf("line %d: %s is already in the row of line %d: one row per setting", r.line, v, documentedVariables[v])
			}
			documentedVariables[v] = r.line
		}
		for _, p := range r.params {
			if documentedParams[p] != 0 {
				t.Errorf("line %d: %s is already in the row of line %d", r.line, p, documentedParams[p])
			}
			documentedParams[p] = r.line
		}
	}

	// Who reads what: shared/config, the simulator, the dev server, and
	// make register-webhook.
	readers := map[string][]string{
		"shared/config": readBy(func(l func(string) (string, bool)) { _, _ = config.Load(l) }),
		"internal/stripesim": readBy(func(l func(string) (string, bool)) {
			_, _ = stripesim.OptionsFromEnv(l)
		}),
	}
	for _, file := range []string{"internal/devserver/run.go", "internal/devserver/settings.go"} {
		src, err := os.ReadFile(filepath.Join(root, file))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range devServerRead.FindAllStringSubmatch(string(src), -1) {
			readers["internal/devserver"] = append(readers["internal/devserver"], m[1])
		}
	}
	if len(readers["internal/devserver"]) == 0 {
		t.Fatal("found no env.get(...) in internal/devserver: the pattern must follow the code")
	}

	tpl := loadTemplate(t)
	functions := tpl.ResourcesOfType("AWS::Serverless::Function")
	set := map[string]string{} // variable -> a function that sets it
	e := newEvaluator(tpl, requiredParams, deployRefs, nil)
	for _, id := range functions {
		for name := range env(t, tpl, id, e) {
			set[name] = id
		}
	}

	// Every variable read or set is documented.
	for who, names := range readers {
		for _, name := range names {
			if documentedVariables[name] == 0 {
				t.Errorf("%s reads %s, which docs/configuration.md does not list", who, name)
			}
		}
	}
	for name, id := range set {
		if documentedVariables[name] == 0 {
			t.Errorf("template.yaml sets %s (%s), which docs/configuration.md does not list", name, id)
		}
	}
	// Every documented variable is read or set by something: a name the code
	// gave up stays behind in no table.
	source := goSourceText(t, root, "cmd", "internal", "shared")
	for name, line := range documentedVariables {
		known := set[name] != ""
		for _, names := range readers {
			known = known || slices.Contains(names, name)
		}
		if !known && !strings.Contains(source, `"`+name+`"`) {
			t.Errorf("docs/configuration.md line %d lists %s, which nothing reads", line, name)
		}
	}
	// Every parameter of the template is documented, and only those.
	for name := range tpl.Parameters {
		if documentedParams[name] == 0 {
			t.Errorf("template.yaml has the parameter %s, which docs/configuration.md does not list", name)
		}
	}
	for name, line := range documentedParams {
		if tpl.Parameters[name] == nil {
			t.Errorf("docs/configuration.md line %d lists the parameter %s, which template.yaml does not have", line, name)
		}
	}

	// A parameter named beside a variable sets it: a marked value given to
	// the parameter reaches that variable in some function's environment, or
	// an output (make register-webhook reads RetiredWebhookSecretTtl there).
	for _, r := range rows {
		if len(r.params) == 0 || len(r.variables) == 0 {
			continue
		}
		if len(r.params) != len(r.variables) {
			t.Errorf("line %d: %d variables beside %d parameters: pair them one to one", r.line, len(r.variables), len(r.params))
			continue
		}
		for i, param := range r.params {
			if tpl.Parameters[param] == nil {
				continue
			}
			mark := markFor(tpl.Parameters[param])
			params := maps.Clone(requiredParams)
			params[param] = mark
			e := newEvaluator(tpl, params, deployRefs, nil)
			if !setsVariable(t, tpl, e, functions, r.variables[i], mark) && !outputCarries(tpl, e, mark) {
				t.Errorf("line %d: %s = %q reaches %s in no function's environment (nor an output)", r.line, param, mark, r.variables[i])
			}
		}
	}
}

// markFor is a value that parameter accepts and no default holds.
func markFor(param map[string]any) string {
	if asString(param["Type"]) == "Number" {
		return "73"
	}
	if allowed := asList(param["AllowedValues"]); len(allowed) > 0 {
		// The last allowed value that is not the default, so the value moves.
		for i := len(allowed) - 1; i >= 0; i-- {
			if v := asString(allowed[i]); v != asString(param["Default"]) {
				return v
			}
		}
	}
	return "m4rk3d7"
}

func setsVariable(t *testing.T, tpl *Template, e *evaluator, functions []string, name, mark string) bool {
	for _, id := range functions {
		if v, ok := env(t, tpl, id, e)[name]; ok && strings.Contains(v, mark) {
			return true
		}
	}
	return false
}

func outputCarries(tpl *Template, e *evaluator, mark string) bool {
	for _, o := range tpl.Outputs {
		if v, err := e.str(o["Value"]); err == nil && strings.Contains(v, mark) {
			return true
		}
	}
	return false
}

// goSourceText is the non-test Go source under dirs, concatenated.
func goSourceText(t *testing.T, root string, dirs ...string) string {
	t.Helper()
	var b strings.Builder
	for _, dir := range dirs {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			src, err := os.ReadFile(path)
			b.Write(src)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}

func TestSettingsTableParsesEachRowsNames(t *testing.T) {
	page := "intro\n\n| variable | template parameter | default | meaning |\n|---|---|---|---|\n" +
		"| `STAFF_GROUPS_CLAIM`, `STAFF_GROUP` | `StaffGroupsClaim`, `StaffGroup` | `cognito:groups` | who (`STAFF_GROUP` in prose is not a row's name) |\n" +
		"| — | `JwtIssuer` | none | issuer |\n| `PORT` | — | `3000` | dev |\n\nafter the table | `NOT_A_ROW` |\n"
	got := settingsTable(t, page)
	want := []settingRow{
		{5, []string{"STAFF_GROUPS_CLAIM", "STAFF_GROUP"}, []string{"StaffGroupsClaim", "StaffGroup"}},
		{6, nil, []string{"JwtIssuer"}},
		{7, []string{"PORT"}, nil},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

// runbookEntry is one "### `Name`" entry of docs/operations.md's runbook.
type runbookEntry struct {
	name string // an alarm's logical id, or "<Function>..." for every function's
	text string
}

// runbook parses the entries of the "## Runbook" section.
func runbook(t *testing.T, page string) []runbookEntry {
	t.Helper()
	_, section, ok := strings.Cut(page, "\n## Runbook\n")
	if !ok {
		t.Fatal(`docs/operations.md has no "## Runbook" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	var entries []runbookEntry
	for _, part := range strings.Split(section, "\n### ")[1:] {
		title, text, _ := strings.Cut(part, "\n")
		name := strings.Trim(strings.TrimSpace(title), "`")
		entries = append(entries, runbookEntry{name: name, text: text})
	}
	return entries
}

// functionPlaceholder stands for any function of the stack in an entry's name.
const functionPlaceholder = "<Function>"

// runbookEntryFor finds the entry of an alarm: the one naming it exactly, else
// the one whose <Function> stands for the function the alarm is named after.
func runbookEntryFor(entries []runbookEntry, functions []string, alarm string) (runbookEntry, bool) {
	for _, e := range entries {
		if e.name == alarm {
			return e, true
		}
	}
	for _, e := range entries {
		prefix, suffix, ok := strings.Cut(e.name, functionPlaceholder)
		if !ok {
			continue
		}
		for _, f := range functions {
			if alarm == prefix+strings.TrimSuffix(f, "Function")+suffix {
				return e, true
			}
		}
	}
	return runbookEntry{}, false
}

// Every alarm in template.yaml has a runbook entry saying what it means, how
// to confirm it and what to do, and every entry is an alarm's.
func TestEveryAlarmHasARunbookEntry(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(repoRoot(t), "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	entries := runbook(t, string(raw))
	tpl := loadTemplate(t)
	functions := tpl.ResourcesOfType("AWS::Serverless::Function")
	alarms := tpl.ResourcesOfType("AWS::CloudWatch::Alarm")
	if len(alarms) == 0 {
		t.Fatal("template.yaml has no alarm: the Fn::ForEach expansion must have failed")
	}
	used := map[string]bool{}
	for _, alarm := range alarms {
		e, ok := runbookEntryFor(entries, functions, alarm)
		if !ok {
			t.Errorf("the alarm %s has no runbook entry in docs/operations.md", alarm)
			continue
		}
		used[e.name] = true
	}
	for _, e := range entries {
		if !used[e.name] {
			t.Errorf("the runbook entry %q is no alarm's of template.yaml", e.name)
		}
		for _, part := range []string{"**What it means.**", "**Confirm.**", "**Act.**"} {
			if !strings.Contains(e.text, part) {
				t.Errorf("the runbook entry %q has no %s", e.name, part)
			}
		}
	}
}

func TestRunbookEntryForPrefersTheExactEntry(t *testing.T) {
	entries := []runbookEntry{{name: "<Function>ErrorsAlarm"}, {name: "ReconcileErrorsAlarm"}, {name: "WebhookServerErrorsAlarm"}}
	functions := []string{"WebhookFunction", "ReconcileFunction"}
	cases := []struct{ alarm, want string }{
		{"WebhookErrorsAlarm", "<Function>ErrorsAlarm"},
		{"ReconcileErrorsAlarm", "ReconcileErrorsAlarm"},
		{"WebhookServerErrorsAlarm", "WebhookServerErrorsAlarm"},
		{"WebhookThrottlesAlarm", ""},
		{"UnknownErrorsAlarm", ""},
	}
	for _, c := range cases {
		got, _ := runbookEntryFor(entries, functions, c.alarm)
		if got.name != c.want {
			t.Errorf("%s: entry %q, want %q", c.alarm, got.name, c.want)
		}
	}
}
