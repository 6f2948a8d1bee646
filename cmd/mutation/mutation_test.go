package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const statusSrc = `package p

func status(n int, done bool) string {
	x := n * 2
	switch {
	case done:
		return "done"
	case n > 10, x < 0:
		return "big"
	default:
		return "small"
	case n == 3:
		return "three"
	}
}
`

// The positions in statusSrc that the tests name.
var (
	atKeyword = pos{5, 2}  // switch
	atGreater = pos{8, 9}  // n > 10
	atLess    = pos{8, 17} // x < 0
	atEqual   = pos{12, 9} // n == 3
	atTimes   = pos{4, 9}  // n * 2
)

func writeSrc(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "status.go"), []byte(statusSrc), 0o644); err != nil {
		t.Fatal(err)
	}
	// A test file's switches are not the package's code.
	if err := os.WriteFile(filepath.Join(dir, "status_test.go"), []byte("package p\nfunc f() { switch { case 1 > 2: } }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// profileOf is a coverage profile of statusSrc: the function's block ran runs times, and each
// clause body (done, big, small, three) as often as given.
func profileOf(runs, done, big, small, three int) map[string][]block {
	return map[string][]block{"status.go": {
		{pos{3, 41}, pos{5, 9}, runs},
		{pos{6, 12}, pos{7, 16}, done},
		{pos{8, 21}, pos{9, 15}, big},
		{pos{10, 10}, pos{11, 17}, small},
		{pos{12, 14}, pos{13, 17}, three},
	}}
}

func TestACaseIsEvaluatedEachTimeNoEarlierCaseWasChosen(t *testing.T) {
	sites, err := findSwitches(writeSrc(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(sites) != 1 || sites[0].keyword != atKeyword || len(sites[0].clauses) != 4 {
		t.Fatalf("switches %+v, want the one of status.go at %v with 4 clauses", sites, atKeyword)
	}
	tests := []struct {
		name   string
		prof   map[string][]block
		at     pos
		want   int
		inCase bool
	}{
		{name: "the second case, after 4 of 10 runs chose the first", prof: profileOf(10, 4, 1, 5, 0), at: atGreater, want: 6, inCase: true},
		{name: "the second expression of a case list", prof: profileOf(10, 4, 1, 5, 0), at: atLess, want: 6, inCase: true},
		{name: "a case after the default, which is evaluated last", prof: profileOf(10, 4, 1, 5, 0), at: atEqual, want: 5, inCase: true},
		{name: "a case no run reaches", prof: profileOf(3, 3, 0, 0, 0), at: atGreater, want: 0, inCase: true},
		{name: "a switch never run", prof: profileOf(0, 0, 0, 0, 0), at: atEqual, want: 0, inCase: true},
		{name: "no profile for the file: unknown", prof: map[string][]block{}, at: atGreater, want: -1, inCase: true},
		{name: "not in a case", prof: profileOf(10, 4, 1, 5, 0), at: atTimes, want: 0, inCase: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, inCase := caseOf(sites, tt.prof, "status.go", tt.at)
			if got != tt.want || inCase != tt.inCase {
				t.Errorf("caseOf = %d, %v; want %d, %v", got, inCase, tt.want, tt.inCase)
			}
		})
	}
}

func TestTheProfileGoTestWritesIsRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cover.out")
	text := "mode: atomic\ngithub.com/x/p/status.go:3.41,5.9 2 10\ngithub.com/x/p/status.go:12.14,13.17 1 0\n"
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	prof, err := readProfile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []block{{pos{3, 41}, pos{5, 9}, 10}, {pos{12, 14}, pos{13, 17}, 0}}
	if got := prof["status.go"]; len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("blocks %+v, want %+v", got, want)
	}
}

func TestAMutantChangesTheOneOperatorGremlinsNames(t *testing.T) {
	tests := []struct {
		kind string
		at   pos
		want string // the line as mutated
	}{
		{"CONDITIONALS_BOUNDARY", atGreater, "\tcase n >= 10, x < 0:"},
		{"CONDITIONALS_NEGATION", atGreater, "\tcase n <= 10, x < 0:"},
		{"CONDITIONALS_NEGATION", atLess, "\tcase n > 10, x >= 0:"},
		{"CONDITIONALS_NEGATION", atEqual, "\tcase n != 3:"},
		{"ARITHMETIC_BASE", atTimes, "\tx := n / 2"},
	}
	for _, tt := range tests {
		got, err := mutate([]byte(statusSrc), tt.at, tt.kind)
		if err != nil {
			t.Errorf("%s at %v: %v", tt.kind, tt.at, err)
			continue
		}
		lines := strings.Split(string(got), "\n")
		if lines[tt.at.line-1] != tt.want {
			t.Errorf("%s at %v: line %q, want %q", tt.kind, tt.at, lines[tt.at.line-1], tt.want)
		}
		lines[tt.at.line-1] = strings.Split(statusSrc, "\n")[tt.at.line-1]
		if !bytes.Equal([]byte(strings.Join(lines, "\n")), []byte(statusSrc)) {
			t.Errorf("%s at %v changed other lines", tt.kind, tt.at)
		}
	}
	if _, err := mutate([]byte(statusSrc), atEqual, "CONDITIONALS_BOUNDARY"); err == nil {
		t.Error("a boundary mutant of == was applied")
	}
	if _, err := mutate([]byte(statusSrc), pos{8, 10}, "CONDITIONALS_NEGATION"); err == nil {
		t.Error("a mutant between tokens was applied")
	}
}

func TestFiguresAreGremlins(t *testing.T) {
	r := Report{Files: []File{{Mutations: []Mutation{
		{Status: Killed}, {Status: Killed}, {Status: Killed}, {Status: Lived},
		{Status: NotCovered}, {Status: TimedOut}, {Status: NotViable},
	}}}}
	r.recount()
	if r.MutantsKilled != 3 || r.MutantsLived != 1 || r.MutantsNotCovered != 1 || r.MutantsTotal != 4 {
		t.Fatalf("counts %+v", r)
	}
	if r.TestEfficacy != 75 || r.MutationsCoverage != 80 {
		t.Fatalf("efficacy %.1f, coverage %.1f; want 75 and 80", r.TestEfficacy, r.MutationsCoverage)
	}
}

func TestTheTableMarksWhatMissesItsTarget(t *testing.T) {
	dir := t.TempDir()
	good := Report{Package: "shared/a", Files: []File{{FileName: "a.go", Mutations: []Mutation{{Type: "CONDITIONALS_NEGATION", Status: Killed, Line: 3, Column: 4}}}}}
	bad := Report{Package: "shared/b", Files: []File{{FileName: "b.go", Mutations: []Mutation{
		{Type: "CONDITIONALS_NEGATION", Status: Killed, Line: 1, Column: 2},
		{Type: "CONDITIONALS_BOUNDARY", Status: Lived, Line: 7, Column: 9},
	}}}}
	for name, r := range map[string]*Report{"a.json": &good, "b.json": &bad} {
		r.recount()
		if err := writeReport(filepath.Join(dir, name), *r); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	if err := runTable([]string{"-seconds", "61", filepath.Join(dir, "a.json"), "-seconds", "5", filepath.Join(dir, "b.json")}, &out); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, want := range []string{
		"| shared/a | 100.0%   | 100.0%   |", "1m1s",
		"| shared/b | 50.0% *  | 100.0%   |",
		"shared/b/b.go:7:9 CONDITIONALS_BOUNDARY",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("table lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "a.go:3:4") {
		t.Errorf("a killed mutant is listed as lived:\n%s", text)
	}
}

const declSrc = `package p

import "time"

const poll = 50 * time.Millisecond

var (
	limit   = 16 << 10
	retryIn = func() time.Duration { return 2 * time.Second }
)

func f(n int) int { return n * 2 }
`

func TestMutantsInPackageLevelDeclarationsAreFound(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "decl.go"), []byte(declSrc), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "decl_test.go"), []byte("package p\nconst x = 1 + 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	decls, err := findDecls(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		at   pos
		want bool
	}{
		{"a constant's expression", pos{5, 17}, true},
		{"a var's expression", pos{8, 15}, true},
		{"inside a function literal, which has coverage blocks", pos{9, 44}, false},
		{"a function body", pos{12, 30}, false},
	} {
		if got := inDecl(decls["decl.go"], tt.at); got != tt.want {
			t.Errorf("%s at %v: inDecl %v, want %v", tt.name, tt.at, got, tt.want)
		}
	}
	if len(decls["decl_test.go"]) != 0 {
		t.Errorf("a test file's declarations are not the package's: %v", decls["decl_test.go"])
	}
}
