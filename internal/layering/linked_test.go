package layering

import (
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/connectexpress/onboarding/internal/repofile"
	"github.com/connectexpress/onboarding/shared/httpapi"
)

// What a function may not link, by what it does. Packages are checked with
// go list -deps; code that shares a package with code the function does
// use (the staff use cases beside the user's, the sweep beside the store)
// is checked in the built binary's symbol table, since the linker drops
// what no path from main reaches.
var (
	// Only the stream consumer reads the stream and publishes.
	streamAndEventBridge = []string{
		"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams",
		"github.com/aws/aws-sdk-go-v2/service/eventbridge",
		module + "shared/statusevents",
		module + "shared/eventsapp",
	}
	// The SDK's attributevalue, which the store encodes its items with,
	// imports the stream's types to convert stream records, and with them
	// their schemas' init (0.05 ms, 16 KiB here): the floor of any function
	// on the store until it encodes items itself. The stream's client is
	// still refused.
	throughAttributeValue = []string{
		"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types",
		"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/schemas",
	}
	stripeClient = []string{"github.com/stripe/stripe-go/v76", module + "shared/stripeconnect"}
	// The staff use cases and handlers.
	staffCode = []string{
		module + "shared/onboarding.(*Service).ListAccounts",
		module + "shared/onboarding.(*Service).StaffAccount",
		module + "shared/onboarding.(*Service).ReviewAccount",
		module + "shared/httpapi.admin",
	}
	// The reconciliation sweep.
	sweepCode = []string{
		module + "shared/onboarding.(*Sweeper)",
		module + "shared/onboarding.(*sweepRun)",
		module + "shared/dynamostore.(*SweepStore)",
		module + "shared/app.(*Reconciler)",
	}
	// The webhook's handler and signature checks.
	webhookCode = []string{
		module + "shared/httpapi.webhook",
		module + "shared/stripeconnect.(*Verifier).Verify",
	}
)

// TestEachFunctionLinksOnlyWhatItsRouteUses: each function's binary holds
// the code of its own route, so its size and cold start pay for nothing
// else (issue 25): no stream or EventBridge code in the API's functions,
// no Stripe client where the route never calls Stripe, no staff, sweep or
// webhook code in the user's routes.
func TestEachFunctionLinksOnlyWhatItsRouteUses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds every function")
	}
	root := repofile.Root(t)
	type forbidden struct{ packages, symbols []string }
	want := map[string]forbidden{
		"reconcile":    {packages: streamAndEventBridge, symbols: slices.Concat(staffCode, webhookCode)},
		"statusevents": {packages: stripeClient, symbols: slices.Concat(staffCode, sweepCode, webhookCode)},
	}
	for _, r := range httpapi.Routes {
		f := forbidden{packages: streamAndEventBridge, symbols: sweepCode}
		if r.StoreOnly {
			f.packages = slices.Concat(f.packages, stripeClient)
		}
		if !r.Staff {
			f.symbols = slices.Concat(f.symbols, staffCode)
		}
		if !r.VerifiesSignatures() {
			f.symbols = slices.Concat(f.symbols, webhookCode)
		}
		want[r.Function] = f
	}
	dirs, err := filepath.Glob(filepath.Join(root, "functions", "*"))
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	allSymbols := slices.Concat(staffCode, sweepCode, webhookCode)
	linkedSomewhere := map[string]bool{}
	for _, dir := range dirs {
		name := filepath.Base(dir)
		f, ok := want[name]
		if !ok {
			t.Errorf("functions/%s serves no route of httpapi.Routes and is not reconcile or statusevents: say what it may link", name)
			continue
		}
		deps := goOutput(t, root, "list", "-tags", "lambda.norpc", "-deps", "./functions/"+name)
		for _, pkg := range strings.Fields(deps) {
			if slices.Contains(throughAttributeValue, pkg) {
				continue
			}
			for _, p := range f.packages {
				if pkg == p || strings.HasPrefix(pkg, p+"/") {
					t.Errorf("functions/%s links %s", name, pkg)
				}
			}
		}
		out := filepath.Join(bin, name)
		goOutput(t, root, "build", "-tags", "lambda.norpc", "-o", out, "./functions/"+name)
		reported := map[string]bool{}
		for _, line := range strings.Split(goOutput(t, root, "tool", "nm", out), "\n") {
			fields := strings.Fields(line)
			if len(fields) < 3 {
				continue
			}
			symbol := strings.Join(fields[2:], " ")
			for _, s := range allSymbols {
				if !strings.HasPrefix(symbol, s) {
					continue
				}
				linkedSomewhere[s] = true
				if slices.Contains(f.symbols, s) && !reported[s] {
					reported[s] = true
					t.Errorf("functions/%s links %s (%s)", name, s, symbol)
				}
			}
		}
	}
	// Each name must match code some function does link (the sweep in
	// reconcile, the staff use cases in the staff functions...): a renamed
	// function would otherwise leave a check that can no longer fail.
	for _, s := range allSymbols {
		if !linkedSomewhere[s] {
			t.Errorf("no function links %s: it was renamed or removed; name what replaced it here", s)
		}
	}
}

func goOutput(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, msg)
	}
	return string(out)
}
