package lambdatest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"testing"

	"github.com/connectexpress/onboarding/shared/httpapi"
)

// TestEachMainServesItsOwnRoute reads functions/<name>/main.go: each names
// its route as a value (app.Lambda(httpapi.X)), and X is the route whose
// Function is <name>. The compiler catches a misspelt route; this catches
// a main that names another function's route.
func TestEachMainServesItsOwnRoute(t *testing.T) {
	byName := map[string]httpapi.Route{
		"CreateAccount": httpapi.CreateAccount, "GetAccount": httpapi.GetAccount, "UpdateAccount": httpapi.UpdateAccount,
		"CreateOnboardingLink": httpapi.CreateOnboardingLink, "CreateDashboardLink": httpapi.CreateDashboardLink,
		"CreateOnboardingSession": httpapi.CreateOnboardingSession, "RefreshLink": httpapi.RefreshLink, "Webhook": httpapi.Webhook,
		"AdminListAccounts": httpapi.AdminListAccounts, "AdminGetAccount": httpapi.AdminGetAccount, "AdminReviewAccount": httpapi.AdminReviewAccount,
	}
	if len(byName) != len(httpapi.Routes) {
		t.Fatalf("%d route values named here, %d in httpapi.Routes: add the new route", len(byName), len(httpapi.Routes))
	}
	dirs, err := os.ReadDir(filepath.Join("..", "..", "functions"))
	if err != nil {
		t.Fatal(err)
	}
	served := map[string]bool{}
	for _, d := range dirs {
		path := filepath.Join("..", "..", "functions", d.Name(), "main.go")
		if handler, ok := opsFunctions[d.Name()]; ok {
			if !calls(t, path, handler.Pkg, handler.Builder) {
				t.Errorf("%s: no %s.%s() call", path, handler.Pkg, handler.Builder)
			}
			continue
		}
		wiring, name := lambdaRoute(t, path)
		r, ok := byName[name]
		switch {
		case name == "":
			t.Errorf("%s: no app.Lambda(httpapi.<Route>) or storeapp.Lambda(httpapi.<Route>) call", path)
		case !ok:
			t.Errorf("%s: httpapi.%s is not a route of httpapi.Routes", path, name)
		case r.Function != d.Name():
			t.Errorf("%s serves httpapi.%s, whose function is functions/%s", path, name, r.Function)
		case r.StoreOnly != (wiring == "storeapp"):
			// A store-only route started by app.Lambda would link Stripe's
			// client for nothing; storeapp.Lambda refuses any other route.
			t.Errorf("%s starts httpapi.%s (StoreOnly %v) with %s.Lambda", path, name, r.StoreOnly, wiring)
		}
		served[d.Name()] = true
	}
	for _, r := range httpapi.Routes {
		if !served[r.Function] {
			t.Errorf("route %s has no functions/%s/main.go", r.Key(), r.Function)
		}
	}
}

// lambdaRoute returns the wiring package and X of the app.Lambda(httpapi.X)
// or storeapp.Lambda(httpapi.X) call in the file.
func lambdaRoute(t *testing.T, path string) (wiring, name string) {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok || len(call.Args) != 1 {
			return true
		}
		var pkg string
		for _, p := range []string{"app", "storeapp"} {
			if isSelector(call.Fun, p, "Lambda") {
				pkg = p
			}
		}
		if pkg == "" {
			return true
		}
		if sel, ok := call.Args[0].(*ast.SelectorExpr); ok && isSelector(sel, "httpapi", sel.Sel.Name) {
			wiring, name = pkg, sel.Sel.Name
		}
		return false
	})
	return wiring, name
}

func isSelector(e ast.Expr, pkg, name string) bool {
	sel, ok := e.(*ast.SelectorExpr)
	if !ok || sel.Sel.Name != name {
		return false
	}
	id, ok := sel.X.(*ast.Ident)
	return ok && id.Name == pkg
}

// calls says whether the file calls pkg.name.
func calls(t *testing.T, path, pkg, name string) bool {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	ast.Inspect(f, func(n ast.Node) bool {
		if call, ok := n.(*ast.CallExpr); ok && isSelector(call.Fun, pkg, name) {
			found = true
		}
		return !found
	})
	return found
}
