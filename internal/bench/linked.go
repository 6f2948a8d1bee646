package bench

import (
	"cmp"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
)

// PackageSizes sums the sizes of an unstripped binary's symbols by the Go
// package that defines them (go tool nm -size). Only what the file holds
// counts: zero-filled data (bss) takes no room in the binary. The sums
// leave out the tables the linker writes for all code (pclntab), so they
// are a lower bound of what each package costs, and they rank packages
// the way the stripped size does.
func PackageSizes(binary string) (map[string]int64, error) {
	out, err := exec.Command("go", "tool", "nm", "-size", binary).Output()
	if err != nil {
		return nil, fmt.Errorf("go tool nm %s: %w", binary, err)
	}
	sizes := map[string]int64{}
	for _, line := range strings.Split(string(out), "\n") {
		// address, size, type, name (which may hold spaces)
		fields := strings.Fields(line)
		if len(fields) < 4 || fields[2] == "B" || fields[2] == "b" {
			continue
		}
		size, err := strconv.ParseInt(fields[1], 10, 64)
		if err != nil {
			continue
		}
		if pkg := SymbolPackage(strings.Join(fields[3:], " ")); pkg != "" {
			sizes[pkg] += size
		}
	}
	return sizes, nil
}

// SymbolPackage returns the import path of the package a symbol belongs
// to: "github.com/a/b.(*T).M" and "type:.eq.github.com/a/b.T" are
// github.com/a/b's. A symbol the linker makes for all code (funcdata in
// "go:func.*", strings in "go:string.*") belongs to no package: "".
func SymbolPackage(symbol string) string {
	for _, prefix := range []string{"type:.eq.", "type:.hash.", "type:", "go:itab.", "*"} {
		symbol = strings.TrimPrefix(symbol, prefix)
	}
	if strings.HasPrefix(symbol, "go:") {
		return ""
	}
	if i := strings.IndexAny(symbol, "[(,"); i >= 0 { // generics, methods, an itab's interface
		symbol = symbol[:i]
	}
	dir, last := "", symbol
	if i := strings.LastIndex(symbol, "/"); i >= 0 {
		dir, last = symbol[:i+1], symbol[i+1:]
	}
	if i := strings.Index(last, "."); i >= 0 {
		last = last[:i]
	}
	return dir + last
}

// PackageGrowth is what one package adds to a binary beside a baseline.
type PackageGrowth struct {
	Package string
	Bytes   int64
}

// TopGrowth returns the n packages that add the most to sizes beside base.
func TopGrowth(sizes, base map[string]int64, n int) []PackageGrowth {
	var all []PackageGrowth
	for pkg, size := range sizes {
		if added := size - base[pkg]; added > 0 {
			all = append(all, PackageGrowth{pkg, added})
		}
	}
	slices.SortFunc(all, func(a, b PackageGrowth) int {
		return cmp.Or(cmp.Compare(b.Bytes, a.Bytes), cmp.Compare(a.Package, b.Package))
	})
	return all[:min(n, len(all))]
}

// shortPackage drops the module prefixes the table would repeat.
func shortPackage(pkg string) string {
	for _, prefix := range []string{"github.com/connectexpress/onboarding/", "github.com/aws/aws-sdk-go-v2/", "github.com/aws/"} {
		if s, ok := strings.CutPrefix(pkg, prefix); ok {
			return s
		}
	}
	return strings.TrimPrefix(pkg, "github.com/")
}
