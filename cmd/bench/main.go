// Command bench prints `make bench`'s table: per function its stripped
// linux/arm64 size, cold start under the Lambda Runtime Interface Emulator
// beside a hello-world baseline, then per route its warm in-process latency,
// the share of it that is our own code, its DynamoDB and Stripe requests,
// and the AWS cost per 1,000 onboardings. Run it inside
// scripts/with-services.sh (it needs stripe-mock at TEST_STRIPE_API_BASE).
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/connectexpress/onboarding/internal/bench"
)

func main() {
	rounds := flag.Int("rounds", 15, "cold starts per function, interleaved with the baseline's")
	functions := flag.String("functions", "", "comma-separated functions to build and measure (default: all), e.g. accountstatus,adminlistaccounts")
	only := flag.String("only", "", "comma-separated sections to run (default: all): functions, routes, sweep, storm")
	dir := flag.String("dir", "", "where to build the functions (default .cache/bench): apart when several runs share the checkout's cache")
	flag.Parse()
	stripeBase := os.Getenv("TEST_STRIPE_API_BASE")
	if stripeBase == "" && *only != "functions" {
		fmt.Fprintln(os.Stderr, "bench: TEST_STRIPE_API_BASE is not set: run it as `make bench`")
		os.Exit(2)
	}
	if err := bench.Report(os.Stdout, bench.ReportOptions{Rounds: *rounds, StripeBase: stripeBase, Functions: list(*functions), Only: list(*only), Dir: *dir}); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// list splits a comma-separated flag; "" is none.
func list(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}
