package main

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// The targets of docs/mutation.md.
const (
	targetEfficacy = 95.0
	targetCoverage = 90.0
)

// runTable prints one row per report: "-seconds N path" pairs, in order.
func runTable(args []string, w io.Writer) error {
	type row struct {
		rep  Report
		secs int
	}
	var rows []row
	for len(args) > 0 {
		if len(args) < 3 || args[0] != "-seconds" {
			return errors.New("table takes -seconds N REPORT.json pairs")
		}
		secs, err := strconv.Atoi(args[1])
		if err != nil {
			return fmt.Errorf("-seconds %q: %v", args[1], err)
		}
		rep, err := readReport(args[2])
		if err != nil {
			return err
		}
		rows = append(rows, row{rep, secs})
		args = args[3:]
	}
	head := []string{"package", "efficacy", "coverage", "killed", "lived", "not covered", "timed out", "in cases", "in decls", "time"}
	cells := [][]string{head}
	var lived []string
	for _, r := range rows {
		rep := r.rep
		mark := func(v, target float64) string {
			s := fmt.Sprintf("%.1f%%", v)
			if v < target {
				s += " *"
			}
			return s
		}
		cells = append(cells, []string{
			rep.Package, mark(rep.TestEfficacy, targetEfficacy), mark(rep.MutationsCoverage, targetCoverage),
			strconv.Itoa(rep.MutantsKilled), strconv.Itoa(rep.MutantsLived), strconv.Itoa(rep.MutantsNotCovered),
			strconv.Itoa(rep.count(TimedOut)), strconv.Itoa(rep.CaseMutants), strconv.Itoa(rep.DeclMutants), (time.Duration(r.secs) * time.Second).String(),
		})
		for _, f := range rep.Files {
			for _, m := range f.Mutations {
				if m.Status == Lived {
					lived = append(lived, fmt.Sprintf("%s/%s:%d:%d %s", rep.Package, f.FileName, m.Line, m.Column, m.Type))
				}
			}
		}
	}
	widths := make([]int, len(head))
	for _, c := range cells {
		for i, s := range c {
			widths[i] = max(widths[i], len(s))
		}
	}
	line := func(c []string) {
		parts := make([]string, len(c))
		for i, s := range c {
			parts[i] = s + strings.Repeat(" ", widths[i]-len(s))
		}
		fmt.Fprintln(w, "| "+strings.Join(parts, " | ")+" |")
	}
	line(cells[0])
	dashes := make([]string, len(head))
	for i, n := range widths {
		dashes[i] = strings.Repeat("-", n+2)
	}
	fmt.Fprintln(w, "|"+strings.Join(dashes, "|")+"|")
	for _, c := range cells[1:] {
		line(c)
	}
	fmt.Fprintf(w, "\n* below the target (efficacy %.0f%%, coverage %.0f%%): docs/mutation.md explains each mutant that lives.\n", targetEfficacy, targetCoverage)
	fmt.Fprintln(w, "in cases, in decls: mutants in case clauses and in package-level const and var declarations,")
	fmt.Fprintln(w, "which gremlins cannot see covered, run by cmd/mutation.")
	if len(lived) > 0 {
		fmt.Fprintln(w, "\nlived:")
		for _, l := range lived {
			fmt.Fprintln(w, "  "+l)
		}
	}
	return nil
}
