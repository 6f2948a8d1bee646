package layering

import (
	"go/build"
	"io/fs"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/connectexpress/onboarding/internal/repofile"
)

const module = "github.com/connectexpress/onboarding/"

// Third-party roots the rules name.
var (
	awsSDK    = []string{"github.com/aws/aws-sdk-go-v2", "github.com/aws/smithy-go"}
	stripeGo  = []string{"github.com/stripe/stripe-go/v76"}
	lambdaEvt = []string{"github.com/aws/aws-lambda-go/events"}
	lambdaRun = []string{"github.com/aws/aws-lambda-go/lambda"}
)

// rule is what one package of shared/ or functions/ may import besides the
// standard library: packages of this module, and third-party roots.
type rule struct {
	own, thirdParty []string
}

// rules is the table of docs/architecture.md, "Packages and what each may
// import". functions/* stands for every function.
var rules = map[string]rule{
	"shared/onboarding":    {},
	"shared/dynamostore":   {own: []string{"shared/onboarding"}, thirdParty: awsSDK},
	"shared/stripeconnect": {own: []string{"shared/onboarding"}, thirdParty: stripeGo},
	"shared/httpapi":       {own: []string{"shared/onboarding"}, thirdParty: lambdaEvt},
	"shared/config":        {own: []string{"shared/onboarding"}},
	"shared/statusevents":  {own: []string{"shared/dynamostore", "shared/onboarding"}, thirdParty: append(slices.Clone(awsSDK), lambdaEvt...)},
	// The wiring without Stripe: the functions that never call Stripe start here.
	"shared/storeapp": {own: []string{"shared/config", "shared/dynamostore", "shared/httpapi", "shared/onboarding"},
		thirdParty: append(slices.Clone(awsSDK), lambdaEvt...)},
	"shared/app": {own: []string{"shared/config", "shared/dynamostore", "shared/httpapi", "shared/onboarding", "shared/storeapp", "shared/stripeconnect"},
		thirdParty: append(slices.Clone(awsSDK), lambdaEvt...)},
	// Apart from shared/app: the API's functions do not link EventBridge,
	// and the stream consumer links no Stripe client.
	"shared/eventsapp": {own: []string{"shared/storeapp", "shared/statusevents"}, thirdParty: append(slices.Clone(awsSDK), lambdaEvt...)},
	"functions/*":      {own: []string{"shared/app", "shared/eventsapp", "shared/httpapi", "shared/storeapp"}, thirdParty: lambdaRun},
}

func TestPackagesImportOnlyWhatTheirLayerAllows(t *testing.T) {
	root := repofile.Root(t)
	checked := map[string]bool{}
	for _, top := range []string{"shared", "functions"} {
		err := filepath.WalkDir(filepath.Join(root, top), func(path string, d fs.DirEntry, err error) error {
			if err != nil || !d.IsDir() || d.Name() == "testdata" {
				return err
			}
			pkg, err := build.ImportDir(path, 0)
			if _, none := err.(*build.NoGoError); none {
				return nil
			} else if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, path)
			rel = filepath.ToSlash(rel)
			name := rel
			if strings.HasPrefix(rel, "functions/") {
				name = "functions/*"
			}
			r, ok := rules[name]
			if !ok {
				t.Errorf("%s has no rule: add it to docs/architecture.md and to rules here", rel)
				return nil
			}
			checked[name] = true
			for _, imp := range pkg.Imports { // non-test files only
				if why := r.refuses(imp); why != "" {
					t.Errorf("%s imports %s: %s", rel, imp, why)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for name := range rules {
		if !checked[name] {
			t.Errorf("rule for %s, which has no Go package: remove it", name)
		}
	}
}

// refuses says why the rule does not allow imp, or "".
func (r rule) refuses(imp string) string {
	if own, ok := strings.CutPrefix(imp, module); ok {
		if slices.Contains(r.own, own) {
			return ""
		}
		return "not one of the packages its layer may import (" + strings.Join(r.own, ", ") + ")"
	}
	first, _, _ := strings.Cut(imp, "/")
	if !strings.Contains(first, ".") {
		return "" // the standard library
	}
	for _, root := range r.thirdParty {
		if imp == root || strings.HasPrefix(imp, root+"/") {
			return ""
		}
	}
	return "a third-party package its layer may not import"
}

// TestOnlyTheStatusEventFunctionLinksEventBridge: EventBridge's client
// costs every cold start that links it (its schemas' init), so only the
// function that publishes may hold it.
func TestOnlyTheStatusEventFunctionLinksEventBridge(t *testing.T) {
	root := repofile.Root(t)
	dirs, err := filepath.Glob(filepath.Join(root, "functions", "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range dirs {
		name := filepath.Base(dir)
		cmd := exec.Command("go", "list", "-deps", "./functions/"+name)
		cmd.Dir = root
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list -deps ./functions/%s: %v", name, err)
		}
		links := slices.Contains(strings.Fields(string(out)), "github.com/aws/aws-sdk-go-v2/service/eventbridge")
		if links != (name == "statusevents") {
			t.Errorf("functions/%s links EventBridge's client: %v, want %v", name, links, name == "statusevents")
		}
	}
}
