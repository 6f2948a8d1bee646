package main

import (
	"encoding/json"
	"fmt"
	"os"
)

// Report is gremlins' --output file (v0.6.0), with what `cases` adds.
type Report struct {
	GoModule          string  `json:"go_module"`
	TestEfficacy      float64 `json:"test_efficacy"`
	MutationsCoverage float64 `json:"mutations_coverage"`
	MutantsTotal      int     `json:"mutants_total"`
	MutantsKilled     int     `json:"mutants_killed"`
	MutantsLived      int     `json:"mutants_lived"`
	MutantsNotViable  int     `json:"mutants_not_viable"`
	MutantsNotCovered int     `json:"mutants_not_covered"`
	ElapsedTime       float64 `json:"elapsed_time"`
	Files             []File  `json:"files"`
	// Package is the package path the report is for (shared/onboarding).
	Package string `json:"package,omitempty"`
	// CaseMutants counts the mutants in case clauses that `cases` ran.
	CaseMutants int `json:"case_mutants,omitempty"`
	// DeclMutants counts the mutants in package-level const and var declarations that `cases` ran.
	DeclMutants int `json:"decl_mutants,omitempty"`
}

// File is one source file's mutants.
type File struct {
	FileName  string     `json:"file_name"`
	Mutations []Mutation `json:"mutations"`
}

// Mutation is one mutant: a token at Line:Column (bytes, from 1) changed as Type says.
type Mutation struct {
	Type   string `json:"type"`
	Status string `json:"status"`
	Line   int    `json:"line"`
	Column int    `json:"column"`
	// InCase: the mutant sits in a case clause's expression, where gremlins cannot see coverage.
	InCase bool `json:"in_case,omitempty"`
	// InDecl: the mutant sits in a package-level const or var declaration, which has no coverage
	// block either.
	InDecl bool `json:"in_decl,omitempty"`
}

// The statuses gremlins writes.
const (
	Killed     = "KILLED"
	Lived      = "LIVED"
	NotCovered = "NOT COVERED"
	TimedOut   = "TIMED OUT"
	NotViable  = "NOT VIABLE"
)

func readReport(path string) (Report, error) {
	var r Report
	b, err := os.ReadFile(path)
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

func writeReport(path string, r Report) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// recount sets the totals and figures from the mutants, as gremlins computes them: efficacy is
// killed over killed and lived; coverage is killed and lived over those and the not covered.
// Timed out and not viable mutants count in neither.
func (r *Report) recount() {
	r.MutantsKilled, r.MutantsLived, r.MutantsNotCovered, r.MutantsNotViable = 0, 0, 0, 0
	for _, f := range r.Files {
		for _, m := range f.Mutations {
			switch m.Status {
			case Killed:
				r.MutantsKilled++
			case Lived:
				r.MutantsLived++
			case NotCovered:
				r.MutantsNotCovered++
			case NotViable:
				r.MutantsNotViable++
			}
		}
	}
	r.MutantsTotal = r.MutantsKilled + r.MutantsLived
	r.TestEfficacy, r.MutationsCoverage = 0, 0
	if r.MutantsTotal > 0 {
		r.TestEfficacy = 100 * float64(r.MutantsKilled) / float64(r.MutantsTotal)
		r.MutationsCoverage = 100 * float64(r.MutantsTotal) / float64(r.MutantsTotal+r.MutantsNotCovered)
	}
}

// count returns how many mutants have status.
func (r Report) count(status string) int {
	n := 0
	for _, f := range r.Files {
		for _, m := range f.Mutations {
			if m.Status == status {
				n++
			}
		}
	}
	return n
}
