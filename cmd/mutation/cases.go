package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/scanner"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// pos is a position in a source file: line and byte column, both from 1.
type pos struct{ line, col int }

func (p pos) before(q pos) bool { return p.line < q.line || p.line == q.line && p.col < q.col }

// span is [from, to) in one file.
type span struct{ from, to pos }

func (s span) holds(p pos) bool { return !p.before(s.from) && p.before(s.to) }

// clause is one case of an expression switch. A default clause has no exprs.
type clause struct {
	body  pos // where its body's coverage block starts: just after the colon
	exprs []span
}

// switchSite is an expression switch: where its `switch` keyword is, and its clauses in
// source order.
type switchSite struct {
	file    string
	keyword pos
	clauses []clause
}

// parsePackage parses the non-test Go files in dir (the package gremlins mutates; its files
// carry no build tags), by file name.
func parsePackage(dir string) (*token.FileSet, map[string]*ast.File, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, nil, err
	}
	fset := token.NewFileSet()
	files := map[string]*ast.File{}
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			return nil, nil, err
		}
		files[name] = f
	}
	return fset, files, nil
}

// findSwitches returns the expression switches of the package's non-test files in dir.
func findSwitches(dir string) ([]switchSite, error) {
	fset, files, err := parsePackage(dir)
	if err != nil {
		return nil, err
	}
	at := func(p token.Pos) pos { q := fset.Position(p); return pos{q.Line, q.Column} }
	var sites []switchSite
	for name, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			sw, ok := n.(*ast.SwitchStmt)
			if !ok {
				return true
			}
			site := switchSite{file: filepath.Base(name), keyword: at(sw.Switch)}
			for _, st := range sw.Body.List {
				cc := st.(*ast.CaseClause)
				colon := at(cc.Colon)
				c := clause{body: pos{colon.line, colon.col + 1}}
				for _, e := range cc.List {
					c.exprs = append(c.exprs, span{at(e.Pos()), at(e.End())})
				}
				site.clauses = append(site.clauses, c)
			}
			sites = append(sites, site)
			return true
		})
	}
	return sites, nil
}

// findDecls returns, by file base name, the value expressions of the package-level const and
// var declarations of the package's non-test files in dir, less any function literal in them
// (its body has coverage blocks of its own). Go's profile has no block for them either: a
// constant is folded into each use and a var is set before any test runs, so gremlins reports
// their mutants as not covered. They hold limits and intervals that every test depends on.
func findDecls(dir string) (map[string][]span, error) {
	fset, files, err := parsePackage(dir)
	if err != nil {
		return nil, err
	}
	at := func(p token.Pos) pos { q := fset.Position(p); return pos{q.Line, q.Column} }
	out := map[string][]span{}
	for name, f := range files {
		base := filepath.Base(name)
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || (gd.Tok != token.CONST && gd.Tok != token.VAR) {
				continue
			}
			for _, spec := range gd.Specs {
				for _, e := range spec.(*ast.ValueSpec).Values {
					out[base] = append(out[base], valueSpans(e, at)...)
				}
			}
		}
	}
	return out, nil
}

// valueSpans returns e's span with the function literals in it cut out.
func valueSpans(e ast.Expr, at func(token.Pos) pos) []span {
	var spans []span
	from := at(e.Pos())
	ast.Inspect(e, func(n ast.Node) bool {
		if fl, ok := n.(*ast.FuncLit); ok {
			spans = append(spans, span{from, at(fl.Pos())})
			from = at(fl.End())
			return false
		}
		return true
	})
	return append(spans, span{from, at(e.End())})
}

// inDecl says whether p lies in one of spans.
func inDecl(spans []span, p pos) bool {
	for _, s := range spans {
		if s.holds(p) {
			return true
		}
	}
	return false
}

// block is one block of a Go coverage profile.
type block struct {
	from, to pos
	count    int
}

// readProfile reads a coverage profile into blocks by file base name (the package's files
// share one directory).
func readProfile(path string) (map[string][]block, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string][]block{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "mode:") || line == "" {
			continue
		}
		// name.go:12.3,14.9 2 1
		name, rest, ok := strings.Cut(line, ":")
		var b block
		var stmts int
		if !ok {
			return nil, fmt.Errorf("%s: bad line %q", path, line)
		}
		if _, err := fmt.Sscanf(rest, "%d.%d,%d.%d %d %d", &b.from.line, &b.from.col, &b.to.line, &b.to.col, &stmts, &b.count); err != nil {
			return nil, fmt.Errorf("%s: bad line %q: %v", path, line, err)
		}
		base := filepath.Base(name)
		out[base] = append(out[base], b)
	}
	return out, sc.Err()
}

// evaluations returns, for each clause of sw, how many times the tests evaluated its case
// expressions, or -1 where the profile does not say. A switch evaluates its cases in source
// order, the default last, until one holds: case k is evaluated each time the switch runs,
// less each time an earlier case was chosen.
func evaluations(sw switchSite, prof map[string][]block) []int {
	out := make([]int, len(sw.clauses))
	runs := -1
	for _, b := range prof[sw.file] {
		if !sw.keyword.before(b.from) && !b.to.before(sw.keyword) {
			runs = b.count
			break
		}
	}
	chosen := 0
	for i, c := range sw.clauses {
		if runs < 0 {
			out[i] = -1
			continue
		}
		if c.exprs == nil { // default: not a case to evaluate
			continue
		}
		out[i] = runs - chosen
		n := bodyCount(c, prof[sw.file])
		if n < 0 {
			runs = -1 // the later cases cannot be told
			continue
		}
		chosen += n
	}
	return out
}

func bodyCount(c clause, blocks []block) int {
	for _, b := range blocks {
		if b.from == c.body {
			return b.count
		}
	}
	return -1
}

// caseOf returns, for a mutant at p in file, how often its case was evaluated (-1: unknown),
// and whether it sits in a case expression at all.
func caseOf(sites []switchSite, prof map[string][]block, file string, p pos) (int, bool) {
	for _, sw := range sites {
		if sw.file != file {
			continue
		}
		for i, c := range sw.clauses {
			for _, e := range c.exprs {
				if e.holds(p) {
					return evaluations(sw, prof)[i], true
				}
			}
		}
	}
	return 0, false
}

// mutations are gremlins' token changes (internal/engine/mappings.go of v0.6.0) for the mutant
// types it enables by default.
var mutations = map[string]map[token.Token]token.Token{
	"ARITHMETIC_BASE":       {token.ADD: token.SUB, token.MUL: token.QUO, token.QUO: token.MUL, token.REM: token.MUL, token.SUB: token.ADD},
	"CONDITIONALS_BOUNDARY": {token.GEQ: token.GTR, token.GTR: token.GEQ, token.LEQ: token.LSS, token.LSS: token.LEQ},
	"CONDITIONALS_NEGATION": {token.EQL: token.NEQ, token.GEQ: token.LSS, token.GTR: token.LEQ, token.LEQ: token.GTR, token.LSS: token.GEQ, token.NEQ: token.EQL},
	"INCREMENT_DECREMENT":   {token.DEC: token.INC, token.INC: token.DEC},
	"INVERT_NEGATIVES":      {token.SUB: token.ADD},
}

// mutate returns src with the operator at p changed as kind says.
func mutate(src []byte, p pos, kind string) ([]byte, error) {
	fset := token.NewFileSet()
	file := fset.AddFile("", fset.Base(), len(src))
	var s scanner.Scanner
	s.Init(file, src, nil, 0)
	for {
		at, tok, _ := s.Scan()
		if tok == token.EOF {
			return nil, fmt.Errorf("no token at %d:%d", p.line, p.col)
		}
		q := fset.Position(at)
		if q.Line != p.line || q.Column != p.col {
			continue
		}
		to, ok := mutations[kind][tok]
		if !ok {
			return nil, fmt.Errorf("%d:%d: %s does not apply to %s", p.line, p.col, kind, tok)
		}
		off := file.Offset(at)
		out := append([]byte{}, src[:off]...)
		out = append(out, to.String()...)
		return append(out, src[off+len(tok.String()):]...), nil
	}
}

func runCases(args []string) error {
	fl := flag.NewFlagSet("cases", flag.ExitOnError)
	module := fl.String("module", ".", "the module root to test in (gremlins' copy of the sources)")
	pkg := fl.String("pkg", "", "the package, relative to the module root")
	in := fl.String("report", "", "gremlins' report")
	out := fl.String("out", "", "where to write the completed report")
	workers := fl.Int("workers", 2, "parallel go test runs, each in its own copy of the module")
	coefficient := fl.Int("timeout-coefficient", 5, "a mutant's tests may take this many times the unmutated run")
	_ = fl.Parse(args)
	if *pkg == "" || *in == "" || *out == "" {
		return errors.New("cases needs -pkg, -report and -out")
	}
	rep, err := readReport(*in)
	if err != nil {
		return err
	}
	rep.Package = *pkg
	sites, err := findSwitches(filepath.Join(*module, *pkg))
	if err != nil {
		return err
	}
	decls, err := findDecls(filepath.Join(*module, *pkg))
	if err != nil {
		return err
	}

	// One profile of our own, in count mode: how often each case clause's body ran.
	tmp, err := os.MkdirTemp("", "mutation-cases-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	profile := filepath.Join(tmp, "cover.out")
	start := time.Now()
	cmd := exec.Command("go", "test", "-count=1", "-covermode=atomic", "-coverprofile="+profile, "./"+*pkg)
	cmd.Dir = *module
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("the tests of %s fail without any mutant: %v\n%s", *pkg, err, b)
	}
	timeout := max(time.Duration(*coefficient)*time.Since(start), time.Minute)
	prof, err := readProfile(profile)
	if err != nil {
		return err
	}

	type job struct {
		file string
		m    *Mutation
	}
	var jobs []job
	for fi := range rep.Files {
		f := &rep.Files[fi]
		for mi := range f.Mutations {
			m := &f.Mutations[mi]
			if m.Status != NotCovered {
				continue
			}
			if inDecl(decls[f.FileName], pos{m.Line, m.Column}) {
				// Whether a test depends on the value cannot be read from a profile: run it,
				// and an unobserved value lives rather than hides.
				m.InDecl = true
				jobs = append(jobs, job{f.FileName, m})
				rep.DeclMutants++
				continue
			}
			evaluated, inCase := caseOf(sites, prof, f.FileName, pos{m.Line, m.Column})
			if !inCase {
				continue
			}
			m.InCase = true
			if evaluated != 0 { // unknown (-1) is run too: better a lived mutant than a hidden one
				jobs = append(jobs, job{f.FileName, m})
				rep.CaseMutants++
			}
		}
	}

	ch := make(chan job)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for w := 0; w < *workers && w < len(jobs); w++ {
		dir := filepath.Join(tmp, "w"+strconv.Itoa(w))
		if err := copyTree(*module, dir); err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range ch {
				status, err := runMutant(dir, *pkg, j.file, j.m, timeout)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				j.m.Status = status
				where := "case clause"
				if j.m.InDecl {
					where = "package-level declaration"
				}
				fmt.Fprintf(os.Stderr, "%12s %s at %s:%d:%d (%s)\n", status, j.m.Type, j.file, j.m.Line, j.m.Column, where)
				mu.Unlock()
			}
		}()
	}
	for _, j := range jobs {
		ch <- j
	}
	close(ch)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	rep.recount()
	return writeReport(*out, rep)
}

// runMutant applies m to file in the module copy at dir, runs the package's tests and puts the
// file back. The statuses are gremlins': exit 1 killed, 2 (build failure) not viable.
func runMutant(dir, pkg, file string, m *Mutation, timeout time.Duration) (string, error) {
	path := filepath.Join(dir, pkg, file)
	src, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	mutated, err := mutate(src, pos{m.Line, m.Column}, m.Type)
	if err != nil {
		return "", fmt.Errorf("%s: %w", file, err)
	}
	if err := os.WriteFile(path, mutated, 0o644); err != nil {
		return "", err
	}
	defer os.WriteFile(path, src, 0o644)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "test", "-count=1", "-failfast", "-timeout", (timeout + 2*time.Second).String(), "./"+pkg)
	cmd.Dir = dir
	err = cmd.Run()
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return TimedOut, nil
	case err == nil:
		return Lived, nil
	case errors.As(err, &exit) && exit.ExitCode() == 1:
		return Killed, nil
	case errors.As(err, &exit) && exit.ExitCode() == 2:
		return NotViable, nil
	}
	return "", err
}

// copyTree copies the regular files and folders under src to dst.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case info.Mode().IsRegular():
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			return os.WriteFile(target, b, info.Mode().Perm())
		}
		return nil
	})
}
