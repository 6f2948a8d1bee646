// Command mutation completes gremlins' reports for `make mutate` (scripts/mutate.sh) and prints
// their table.
//
//	mutation cases -module DIR -pkg shared/onboarding -report in.json -out out.json
//	mutation table -seconds 93 out.json [-seconds 41 out2.json ...]
//
// gremlins calls a mutant "not covered" unless its position lies in a block of Go's coverage
// profile, and Go's profile leaves out the expressions of a switch's case clauses: the block
// before a switch ends at its `{`, and each clause's block starts after its colon. So every
// condition written as a case (DeriveStatus is one switch) would count as untested, however
// well it is tested. `cases` takes those mutants, works out from a coverage profile of its own
// whether the tests evaluate the case at all, and runs the package's tests against each one
// that they do, as gremlins would have. The profile has no block for package-level const and
// var declarations either (a constant is folded into its uses): `cases` runs every mutant in
// those, since no profile can tell whether a test depends on the value.
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "cases":
		err = runCases(os.Args[2:])
	case "table":
		err = runTable(os.Args[2:], os.Stdout)
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mutation:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: mutation cases -module DIR -pkg PKG -report IN.json -out OUT.json | mutation table -seconds N REPORT.json ...")
	os.Exit(2)
}
