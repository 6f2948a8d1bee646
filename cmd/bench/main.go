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

	"github.com/connectexpress/onboarding/internal/bench"
)

func main() {
	rounds := flag.Int("rounds", 15, "cold starts per function, interleaved with the baseline's")
	stormOnly := flag.Bool("storm", false, "run only the webhook storm rows (issue 25: the dev engine's cost per write)")
	flag.Parse()
	stripeBase := os.Getenv("TEST_STRIPE_API_BASE")
	if stripeBase == "" {
		fmt.Fprintln(os.Stderr, "bench: TEST_STRIPE_API_BASE is not set: run it as `make bench`")
		os.Exit(2)
	}
	if *stormOnly {
		storms, err := bench.MeasureStorms(stripeBase)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		bench.WriteStorms(os.Stdout, storms)
		return
	}
	if err := bench.Report(os.Stdout, bench.ReportOptions{Rounds: *rounds, StripeBase: stripeBase}); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}
