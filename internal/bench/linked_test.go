package bench

import (
	"reflect"
	"testing"
)

func TestSymbolPackageNamesThePackageThatDefinesTheSymbol(t *testing.T) {
	for symbol, want := range map[string]string{
		"github.com/stripe/stripe-go/v76.(*BackendImplementation).Call":                  "github.com/stripe/stripe-go/v76",
		"github.com/aws/aws-sdk-go-v2/service/dynamodb/schemas.init":                     "github.com/aws/aws-sdk-go-v2/service/dynamodb/schemas",
		"type:.eq.github.com/stripe/stripe-go/v76.Account":                               "github.com/stripe/stripe-go/v76",
		"go:itab.*github.com/a/b.T,github.com/c/d.I":                                     "github.com/a/b",
		"github.com/a/b.serve[go.shape.string,github.com/c/d.T].func1":                   "github.com/a/b",
		"net/http.(*Transport).RoundTrip":                                                "net/http",
		"go:func.*":                                                                      "",
		"go:string.*":                                                                    "",
		"runtime.mallocgc":                                                               "runtime",
		"vendor/golang.org/x/net/http2/hpack.(*Decoder).Write":                           "vendor/golang.org/x/net/http2/hpack",
		"github.com/connectexpress/onboarding/shared/onboarding.(*Service).ListAccounts": "github.com/connectexpress/onboarding/shared/onboarding",
	} {
		if got := SymbolPackage(symbol); got != want {
			t.Errorf("SymbolPackage(%q) = %q, want %q", symbol, got, want)
		}
	}
}

func TestTopGrowthRanksWhatPackagesAddBesideTheBaseline(t *testing.T) {
	base := map[string]int64{"runtime": 900, "net/http": 300}
	sizes := map[string]int64{"runtime": 950, "net/http": 300, "sdk/schemas": 180, "stripe": 150, "regexp": 80, "own": 50, "slog": 30, "tiny": 1}
	want := []PackageGrowth{{"sdk/schemas", 180}, {"stripe", 150}, {"regexp", 80}, {"own", 50}, {"runtime", 50}} // ties by name
	if got := TopGrowth(sizes, base, 5); !reflect.DeepEqual(got, want) {
		t.Errorf("TopGrowth = %v, want %v", got, want)
	}
	if got := TopGrowth(map[string]int64{"runtime": 900}, base, 5); len(got) != 0 {
		t.Errorf("nothing added, TopGrowth = %v", got)
	}
}
