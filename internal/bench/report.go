package bench

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/connectexpress/onboarding/shared/httpapi"
)

// ReportOptions steer Report.
type ReportOptions struct {
	Rounds     int
	StripeBase string
	Dir        string // build output, default .cache/bench
	// Functions, when set, limits the functions table to these (and the
	// hello-world baseline): a quick before/after on a loaded machine.
	Functions []string
	// Only, when set, names the sections to run: "functions", "routes",
	// "sweep"; the others are skipped.
	Only []string
}

// runs says whether the report runs section.
func (o ReportOptions) runs(section string) bool {
	return len(o.Only) == 0 || slices.Contains(o.Only, section)
}

// Prices (USD, us-east-1, on-demand, as published in 2026) that the cost
// estimate uses; the table prints them beside the result.
// Sources (read 2026-12-06): Lambda arm64 per GB-s and per request,
// https://aws.amazon.com/lambda/pricing/; DynamoDB on-demand per million
// RRU and WRU (halved in November 2024),
// https://aws.amazon.com/dynamodb/pricing/on-demand/.
const (
	lambdaArmPerGBSecond = 0.0000133334
	lambdaPerRequest     = 0.20 / 1e6
	httpAPIPerRequest    = 1.00 / 1e6
	dynamoPerWRU         = 0.625 / 1e6
	dynamoPerRRU         = 0.125 / 1e6
)

// sweepAccounts is the table the sweep's cost is measured on: the size
// the figures are given for, so nothing is extrapolated.
const sweepAccounts = 10000

// journey is what one completed onboarding costs in route calls: the inputs
// of the estimate, printed with it.
var journey = []struct {
	scenario string
	calls    float64
}{
	{"create (new user)", 1}, {"create (existing)", 1}, {"onboarding link", 1}, {"refresh", 0.5},
	{"status", 3}, {"status with refresh", 1}, {"dashboard link", 1},
	{"webhook (new event)", 8}, {"webhook (duplicate)", 1},
}

// Report builds, measures and prints the table.
func Report(w io.Writer, o ReportOptions) error {
	if o.Dir == "" {
		o.Dir = filepath.Join(".cache", "bench")
	}
	o.Dir, _ = filepath.Abs(o.Dir)
	start := time.Now()
	fmt.Fprintf(w, "# make bench, %s, %s/%s, %d CPUs, %s\n\n", start.UTC().Format("2006-01-02 15:04 MST"), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version())

	if o.runs("functions") {
		fns, err := buildFunctions(o.Dir, o.Functions)
		if err != nil {
			return err
		}
		if err := measureFunctions(w, fns, o.Rounds); err != nil {
			return err
		}
		if err := fns.writeLinked(w); err != nil {
			return err
		}
	}
	if o.runs("routes") {
		routes, err := measureRoutes(o.StripeBase)
		if err != nil {
			return err
		}
		routes.write(w)
		routes.writeCost(w, templateMemory())
	}
	if o.runs("sweep") {
		sweep, err := MeasureSweep(o.StripeBase, sweepAccounts, 0.01)
		if err != nil {
			return fmt.Errorf("sweep: %w", err)
		}
		if sweep.IndexHeapBytes, err = measureIndexHeap(sweepScaleAccounts[len(sweepScaleAccounts)-1]); err != nil {
			return fmt.Errorf("sweep index heap: %w", err)
		}
		sweep.IndexHeapEntries = sweepScaleAccounts[len(sweepScaleAccounts)-1]
		sweep.write(w)
	}
	if o.runs("storm") {
		storms, err := MeasureStorms(o.StripeBase)
		if err != nil {
			return fmt.Errorf("storm: %w", err)
		}
		WriteStorms(w, storms)
	}
	fmt.Fprintf(w, "\nNot included: CloudWatch Logs, X-Ray, Secrets Manager calls at cold starts; at idle the stack costs its secrets and alarms (docs/deploy.md, What it costs). Measured in %v.\n", time.Since(start).Round(time.Second))
	return nil
}

// builtFunctions are the hello-world baseline and every route's function,
// in that order: their arm64 sizes and host builds (for the RIE); and the
// functions that serve no route (the sweep, the stream consumer), sized
// only: their events are not HTTP requests.
type builtFunctions struct {
	names    []string
	sizes    map[string][2]int64 // stripped, zipped
	host     []Binary
	unrouted []string
	// linked is each arm64 binary's symbol bytes by package (unstripped).
	linked map[string]map[string]int64
}

// dynamodbFloor is the second baseline (bench/dynamodbfloor): hello-world
// with the DynamoDB client every function needs, and none of our code.
const dynamodbFloor = "dynamodb-floor"

// unroutedFunctions are the functions/ that serve no route.
var unroutedFunctions = []string{"reconcile", "statusevents"}

// buildFunctions builds each function for arm64 (to size it, as Lambda
// runs it, and once unstripped to read what it links) and for the host (to
// run it under the RIE), into dir; only, when set, limits the functions.
func buildFunctions(dir string, only []string) (builtFunctions, error) {
	b := builtFunctions{names: []string{"hello-world", dynamodbFloor}, sizes: map[string][2]int64{}, linked: map[string]map[string]int64{}}
	for _, r := range httpapi.Routes {
		if len(only) == 0 || slices.Contains(only, r.Function) {
			b.names = append(b.names, r.Function)
		}
	}
	for _, name := range unroutedFunctions {
		if len(only) == 0 || slices.Contains(only, name) {
			b.unrouted = append(b.unrouted, name)
		}
	}
	pkg := func(name string) string {
		switch name {
		case "hello-world":
			return "./bench/helloworld"
		case dynamodbFloor:
			return "./bench/dynamodbfloor"
		}
		return "./functions/" + name
	}
	for _, name := range slices.Concat(b.names, b.unrouted) {
		arm := filepath.Join(dir, "arm64", name, "bootstrap")
		if err := build(pkg(name), arm, "arm64"); err != nil {
			return b, err
		}
		size, zipped, err := sizeAndZipped(arm)
		if err != nil {
			return b, err
		}
		b.sizes[name] = [2]int64{size, zipped}
		symbols := filepath.Join(dir, "arm64-symbols", name, "bootstrap")
		if err := buildWithSymbols(pkg(name), symbols, "arm64"); err != nil {
			return b, err
		}
		if b.linked[name], err = PackageSizes(symbols); err != nil {
			return b, err
		}
		if slices.Contains(b.unrouted, name) {
			continue
		}
		host := filepath.Join(dir, "host", name, "bootstrap")
		if err := build(pkg(name), host, runtime.GOARCH); err != nil {
			return b, err
		}
		b.host = append(b.host, Binary{Name: name, Path: host})
	}
	return b, nil
}

// measureFunctions times each function's cold start under the RIE, rounds
// times, and prints them with their sizes beside hello-world's.
func measureFunctions(w io.Writer, fns builtFunctions, rounds int) error {
	rie, _ := filepath.Abs(filepath.Join(".cache", "bin", "aws-lambda-rie"))
	if err := run("go", "build", "-C", "tools", "-o", rie, "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie"); err != nil {
		return err
	}
	counter := NewCounter()
	defer counter.Close()
	env := []string{
		"STRIPE_SECRET_KEY=sk_test_bench", "STRIPE_WEBHOOK_SECRET=" + benchWebhookSecret, "STRIPE_API_BASE=" + counter.URL,
		"DYNAMODB_ENDPOINT=" + counter.URL, "AWS_ENDPOINT_URL=" + counter.URL, "AWS_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=bench", "AWS_SECRET_ACCESS_KEY=bench", "TABLE_NAME=bench",
		"FRONTEND_URL=https://frontend.example", "PUBLIC_API_URL=https://api.example",
	}
	// No JWT, no token, no signature: each function answers 401, 302 or 400
	// without I/O, so any request the counter sees was made by init.
	event := []byte(`{"version":"2.0","routeKey":"GET /accounts/me","rawPath":"/accounts/me","headers":{},"requestContext":{"http":{"method":"GET","path":"/accounts/me"},"requestId":"bench"}}`)
	colds, err := MeasureColdStarts(rie, fns.host, rounds, env, event, counter)
	if err != nil {
		return err
	}
	base := colds["hello-world"].Median()
	baseSize := fns.sizes["hello-world"][0]

	fmt.Fprintf(w, "## Functions (arm64 size; cold start = INIT REPORT of the %s build under aws-lambda-rie, %d interleaved runs each)\n\n", runtime.GOARCH, rounds)
	floor := colds[dynamodbFloor].Median()
	fmt.Fprintln(w, "| function | arm64 stripped | zipped | vs hello | cold start median | max | vs hello (median) | vs dynamodb-floor (median) | requests during init |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, name := range fns.names {
		c, s := colds[name], fns.sizes[name]
		fmt.Fprintf(w, "| %s | %.1f MiB | %.1f MiB | %.2fx | %.2f ms | %.2f ms | %.2fx | %.2fx | %d |\n", name,
			mib(s[0]), mib(s[1]), float64(s[0])/float64(baseSize), c.Median(), c.Max(), c.Median()/base, c.Median()/floor, c.Calls)
	}
	fmt.Fprintf(w, "\n%s is hello-world with aws-sdk-go-v2's DynamoDB client made at init and none of our code (bench/dynamodbfloor): the floor the design's SDK sets.\n", dynamodbFloor)
	for _, b := range fns.host[:min(3, len(fns.host))] { // the two baselines and the first route's function
		if trace, err := InitTrace(b.Path, env, 5); err == nil {
			fmt.Fprintf(w, "\nPackage inits of %s (GODEBUG=inittrace=1): %s\n", b.Name, strings.Join(trace, "; "))
		}
	}
	return nil
}

// routeFigures are each scenario's requests and latency, warm, in process.
type routeFigures struct {
	counts    map[string]Usage
	warm, own map[string]Latency // own: with store and Stripe stubbed
}

// measureRoutes counts each scenario's DynamoDB and Stripe requests and
// benchmarks it, on the real store and stripe-mock and on stubs.
func measureRoutes(stripeBase string) (routeFigures, error) {
	var f routeFigures
	real, err := NewHarness(stripeBase)
	if err != nil {
		return f, err
	}
	if f.counts, err = Count(real); err != nil {
		return f, err
	}
	if f.warm, err = Benchmark(real); err != nil {
		return f, err
	}
	f.own, err = Benchmark(NewStubHarness())
	return f, err
}

func (f routeFigures) write(w io.Writer) {
	fmt.Fprintln(w, "\n## Routes (warm, in process: store on the in-process DynamoDB engine, Stripe on stripe-mock over loopback; \"own code\" = the same call with both answered by in-memory stubs)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| route call | ns/op | B/op | allocs/op | own code ns/op | own share | DynamoDB requests | RRU | WRU | Stripe requests |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, sc := range Scenarios {
		l, s, u := f.warm[sc.Name], f.own[sc.Name], f.counts[sc.Name]
		fmt.Fprintf(w, "| %s | %d | %d | %d | %d | %.0f%% | %d | %.1f | %.1f | %d |\n", sc.Name, l.NsPerOp, l.BytesPerOp, l.AllocsPerOp,
			s.NsPerOp, 100*float64(s.NsPerOp)/float64(l.NsPerOp), u.DynamoRequests, u.ReadUnits, u.WriteUnits, u.StripeRequests)
	}
}

// writeCost estimates what 1,000 journeys cost from the figures, with the
// functions' memory size, as measured and with AWS's network waits added.
func (f routeFigures) writeCost(w io.Writer, memoryMB int) {
	fmt.Fprintf(w, "\n## Cost per 1,000 completed onboardings (estimate)\n\n")
	fmt.Fprintf(w, "Inputs: one onboarding =")
	for _, j := range journey {
		fmt.Fprintf(w, " %g x %s;", j.calls, j.scenario)
	}
	fmt.Fprintf(w, " Lambda arm64 %d MB at $%.10f/GB-s and $0.20/M requests, billed per ms; HTTP API $1.00/M requests; DynamoDB on-demand $0.625/M WRU, $0.125/M RRU.\n\n", memoryMB, lambdaArmPerGBSecond)
	fmt.Fprintln(w, "| duration assumption | Lambda | HTTP API | DynamoDB | total per 1,000 |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|")
	for _, a := range []struct {
		name                 string
		perStripe, perDynamo float64 // ms of network wait added per request
	}{
		{"measured here (loopback)", 0, 0},
		{"in AWS: +300 ms per Stripe call, +5 ms per DynamoDB request", 300, 5},
	} {
		var lambda, api, dynamo float64
		for _, j := range journey {
			u, l := f.counts[j.scenario], f.warm[j.scenario]
			ms := float64(l.NsPerOp)/1e6 + a.perStripe*float64(u.StripeRequests) + a.perDynamo*float64(u.DynamoRequests)
			billedMs := float64(int(ms) + 1)
			lambda += j.calls * (billedMs/1000*float64(memoryMB)/1024*lambdaArmPerGBSecond + lambdaPerRequest)
			api += j.calls * httpAPIPerRequest
			dynamo += j.calls * (u.ReadUnits*dynamoPerRRU + u.WriteUnits*dynamoPerWRU)
		}
		fmt.Fprintf(w, "| %s | $%.4f | $%.4f | $%.4f | **$%.4f** |\n", a.name, 1000*lambda, 1000*api, 1000*dynamo, 1000*(lambda+api+dynamo))
	}
}

// writeLinked prints each function's size and the five packages that add
// the most to it beside hello-world: where a function's size goes.
func (b builtFunctions) writeLinked(w io.Writer) error {
	base := b.linked["hello-world"]
	fmt.Fprintln(w, "\n## What each function links (arm64 stripped size; the five packages adding the most symbol bytes beside hello-world, from the unstripped build's symbol table)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| function | arm64 stripped | vs 8 MiB | adds most beside hello-world |")
	fmt.Fprintln(w, "|---|---:|---:|---|")
	for _, name := range slices.Concat(b.names[1:], b.unrouted) {
		var top []string
		for _, g := range TopGrowth(b.linked[name], base, 5) {
			top = append(top, fmt.Sprintf("%s +%.0f KiB", shortPackage(g.Package), float64(g.Bytes)/1024))
		}
		size := b.sizes[name][0]
		fmt.Fprintf(w, "| %s | %.2f MiB | %+.2f MiB | %s |\n", name, mib(size), mib(size)-8, strings.Join(top, ", "))
	}
	return nil
}

func build(pkg, out, arch string) error {
	return goBuild(pkg, out, arch, "-ldflags=-s -w")
}

// buildWithSymbols is build keeping the symbol table, for PackageSizes.
func buildWithSymbols(pkg, out, arch string) error { return goBuild(pkg, out, arch) }

func goBuild(pkg, out, arch string, flags ...string) error {
	args := slices.Concat([]string{"build", "-trimpath", "-tags", "lambda.norpc"}, flags, []string{"-o", out, pkg})
	cmd := exec.Command("go", args...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build %s for %s: %v\n%s", pkg, arch, err, b)
	}
	return nil
}

func run(name string, args ...string) error {
	if b, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("%s %v: %v\n%s", name, args, err, b)
	}
	return nil
}

func sizeAndZipped(path string) (int64, int64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, err
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	f, err := zw.CreateHeader(&zip.FileHeader{Name: "bootstrap", Method: zip.Deflate})
	if err != nil {
		return 0, 0, err
	}
	if _, err := f.Write(data); err != nil {
		return 0, 0, err
	}
	if err := zw.Close(); err != nil {
		return 0, 0, err
	}
	return int64(len(data)), int64(buf.Len()), nil
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// templateMemory reads the functions' MemorySize from template.yaml, or 256.
func templateMemory() int {
	b, err := os.ReadFile("template.yaml")
	if err != nil {
		return 256
	}
	if m := regexp.MustCompile(`(?m)^\s*MemorySize:\s*(\d+)`).FindSubmatch(b); m != nil {
		if v, err := strconv.Atoi(string(m[1])); err == nil {
			return v
		}
	}
	return 256
}
