package bench

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/connectexpress/onboarding/internal/localproc"
)

// Binary is a Lambda bootstrap to measure.
type Binary struct {
	Name string // the function, or "hello-world"
	Path string
}

// ColdStarts are one binary's INIT durations under the emulator.
type ColdStarts struct {
	Samples []float64 // ms
	// Calls is how many requests the function sent anywhere (AWS, Stripe)
	// during its cold starts: all endpoints point at a counting server.
	Calls int
}

// Median and Max summarize the samples.
func (c ColdStarts) Median() float64 {
	s := slices.Clone(c.Samples)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func (c ColdStarts) Max() float64 { return slices.Max(c.Samples) }

var initReport = regexp.MustCompile(`INIT REPORT\(durationMs: ([0-9.]+)\)`)

// MeasureColdStarts starts each binary under aws-lambda-rie rounds times,
// interleaved (every round runs every binary once, in a rotating order),
// invokes it once with event, and reads the INIT REPORT duration. env is
// the functions' configuration; every endpoint in it should point at
// counter, which counts what init and the invoke call.
func MeasureColdStarts(rie string, bins []Binary, rounds int, env []string, event []byte, counter *Counter) (map[string]ColdStarts, error) {
	out := map[string]ColdStarts{}
	for round := range rounds {
		for i := range bins {
			b := bins[(i+round)%len(bins)]
			ms, err := coldStartOnce(rie, b.Path, env, event)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", b.Name, err)
			}
			c := out[b.Name]
			c.Samples = append(c.Samples, ms)
			c.Calls += counter.Take()
			out[b.Name] = c
		}
	}
	return out, nil
}

func coldStartOnce(rie, bootstrap string, env []string, event []byte) (float64, error) {
	ms, _, err := runOnce(rie, bootstrap, env, event)
	return ms, err
}

// InitTrace runs bootstrap once outside the emulator with
// GODEBUG=inittrace=1 (under it, the emulator's own inits would mix in) and
// returns the package inits that took longest, as "pkg N ms". The function
// stops after init, when it finds no Lambda runtime API.
func InitTrace(bootstrap string, env []string, top int) ([]string, error) {
	cmd := exec.Command(bootstrap)
	cmd.Env = append(append(os.Environ(), env...), "GODEBUG=inittrace=1", "AWS_LAMBDA_RUNTIME_API=127.0.0.1:1")
	logs, _ := cmd.CombinedOutput()
	type entry struct {
		pkg string
		ms  float64
	}
	var entries []entry
	for _, m := range initTraceLine.FindAllStringSubmatch(string(logs), -1) {
		ms, _ := strconv.ParseFloat(m[2], 64)
		entries = append(entries, entry{m[1], ms})
	}
	if len(entries) == 0 {
		return nil, errors.New("no inittrace output")
	}
	slices.SortFunc(entries, func(a, b entry) int { return int((b.ms - a.ms) * 1e6) })
	var out []string
	total := 0.0
	for i, e := range entries {
		total += e.ms
		if i < top {
			out = append(out, fmt.Sprintf("%s %.2f ms", e.pkg, e.ms))
		}
	}
	return append([]string{fmt.Sprintf("all package inits %.2f ms", total)}, out...), nil
}

var initTraceLine = regexp.MustCompile(`init ([^ ]+) @[0-9.]+ ms, ([0-9.]+) ms clock`)

func runOnce(rie, bootstrap string, env []string, event []byte) (float64, string, error) {
	ports, err := localproc.FreePorts(2)
	if err != nil {
		return 0, "", err
	}
	cmd := exec.Command(rie, "--runtime-interface-emulator-address", "127.0.0.1:"+ports[0],
		"--runtime-api-address", "127.0.0.1:"+ports[1], bootstrap)
	cmd.Dir = filepath.Dir(bootstrap)
	cmd.Env = append(os.Environ(), env...)
	logs := &localproc.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return 0, "", err
	}
	defer func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	}()
	url := "http://127.0.0.1:" + ports[0] + "/2015-03-31/functions/function/invocations"
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Post(url, "application/json", bytes.NewReader(event))
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(body), "errorMessage") {
				return 0, "", fmt.Errorf("invoke failed: %s", body)
			}
			break
		}
		if time.Now().After(deadline) {
			return 0, "", fmt.Errorf("emulator did not answer: %v\n%s", err, logs.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	for wait := 0; wait < 200; wait++ {
		if m := initReport.FindStringSubmatch(logs.String()); m != nil {
			ms, err := strconv.ParseFloat(m[1], 64)
			return ms, logs.String(), err
		}
		time.Sleep(5 * time.Millisecond)
	}
	return 0, "", errors.New("no INIT REPORT line:\n" + logs.String())
}

// Counter is an HTTP server that answers 503 to everything and counts.
type Counter struct {
	URL   string
	n     atomic.Int64
	close func()
}

// NewCounter starts a Counter.
func NewCounter() *Counter {
	c := &Counter{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		c.n.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	c.URL, c.close = srv.URL, srv.Close
	return c
}

// Take returns the count since the last Take and resets it.
func (c *Counter) Take() int { return int(c.n.Swap(0)) }

// Close stops the server.
func (c *Counter) Close() { c.close() }
