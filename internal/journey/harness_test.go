package journey_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/connectexpress/onboarding/internal/devserver"
	"github.com/connectexpress/onboarding/internal/localproc"
	"github.com/connectexpress/onboarding/internal/stripesim"
)

// One Chromium for the whole package; each test gets its own browser
// context (cookies and storage), so tests cannot see each other's sign-in.
var (
	browserOnce   sync.Once
	browserCtx    context.Context
	browserErr    error
	browserCancel = func() {}
)

func TestMain(m *testing.M) {
	code := m.Run()
	browserCancel()
	os.Exit(code)
}

// chromiumPath finds Debian's chromium (CHROMIUM overrides).
func chromiumPath() (string, error) {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p, nil
	}
	for _, p := range []string{"/usr/bin/chromium", "chromium"} {
		if found, err := exec.LookPath(p); err == nil {
			return found, nil
		}
	}
	return "", errors.New("chromium not found: apt-get install -y chromium (.ci/run installs it), or set CHROMIUM")
}

func sharedBrowser(t *testing.T) context.Context {
	t.Helper()
	browserOnce.Do(func() {
		path, err := chromiumPath()
		if err != nil {
			browserErr = err
			return
		}
		opts := append(chromedp.DefaultExecAllocatorOptions[:],
			chromedp.ExecPath(path),
			chromedp.NoSandbox, // the tests run as root in CI
			chromedp.DisableGPU,
			chromedp.WindowSize(1000, 760),
			// This machine's network is closed: without these Chromium keeps
			// trying to reach Google's services.
			chromedp.Flag("disable-background-networking", true),
			chromedp.Flag("disable-component-update", true),
			chromedp.Flag("disable-sync", true),
			chromedp.Flag("disable-quic", true),
			chromedp.Flag("disable-domain-reliability", true),
			chromedp.Flag("no-pings", true),
		)
		allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
		ctx, cancelCtx := chromedp.NewContext(allocCtx)
		// The first Run starts the browser; its context must carry no timeout.
		if err := chromedp.Do(ctx); err != nil {
			cancelCtx()
			cancelAlloc()
			browserErr = fmt.Errorf("start chromium at %s: %w", path, err)
			return
		}
		browserCtx = ctx
		browserCancel = func() { cancelCtx(); cancelAlloc() }
	})
	if browserErr != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("browser tests must run in CI: %v", browserErr)
		}
		t.Skipf("no browser: %v", browserErr)
	}
	return browserCtx
}

// stack is the dev server as `make dev` runs it (in-process DynamoDB, the
// simulator as Stripe, the example frontend), on free ports.
type stack struct {
	*devserver.Running
	logs *localproc.SyncBuffer
}

func startStack(t *testing.T, env map[string]string) *stack {
	t.Helper()
	vars := map[string]string{
		"PORT": "0", "SIM_PORT": "0", "FRONTEND_URL": "http://localhost:0", "STAFF_CONSOLE_URL": "http://localhost:0",
		"DEV_JWT_SECRET": "journey-test-jwt-secret", "LOG_LEVEL": "DEBUG",
	}
	for k, v := range env {
		vars[k] = v
	}
	logs := &localproc.SyncBuffer{}
	r, err := devserver.Start(context.Background(), devserver.Options{
		// Only these variables: the machine's STRIPE_* must not steer the test.
		LookupEnv: func(k string) (string, bool) { v, ok := vars[k]; return v, ok },
		Logger:    slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatalf("start the dev server: %v", err)
	}
	t.Cleanup(func() {
		_ = r.Close()
		assertNothingSecretLogged(t, logs.String())
	})
	if r.Sim == nil || r.FrontendURL == "" {
		t.Fatalf("the dev server runs no simulator (%q) or frontend (%q)", r.SimURL, r.FrontendURL)
	}
	return &stack{Running: r, logs: logs}
}

// Link URLs, refresh tokens, Account Session client secrets and emails are
// bearer secrets or personal data:
// no log line of the API or the simulator may hold one.
var leaks = regexp.MustCompile(`/setup/e/|/express/acct_|token=|@example\.com|whsec_|sk_test_|accs_secret_`)

func assertNothingSecretLogged(t *testing.T, logs string) {
	t.Helper()
	for _, line := range strings.Split(logs, "\n") {
		if leaks.MatchString(line) {
			t.Errorf("log line leaks a link, token, secret or email: %s", line)
		}
	}
}

// waitDelivered waits until every event the simulator sent for account
// reached the API with a 2xx, so a test proves the webhooks, not just the
// re-read that the return page asks for.
func (s *stack) waitDelivered(t *testing.T, accountID, eventType string, atLeast int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var delivered, pending int
		for _, d := range s.Sim.Deliveries() {
			if d.AccountID != accountID || d.EventType != eventType {
				continue
			}
			if d.Delivered {
				delivered++
			} else {
				pending++
			}
			if d.GaveUp {
				t.Fatalf("the simulator gave up delivering %s %s: last status %d", d.EventType, d.EventID, d.LastStatus)
			}
		}
		if delivered >= atLeast && pending == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s for %s: %d delivered, %d pending after 20 s, want at least %d delivered", eventType, accountID, delivered, pending, atLeast)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// browser is one test's tab, with a screenshot after each named step.
type browser struct {
	t     *testing.T
	ctx   context.Context
	dir   string
	shots int
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	ctx, cancel := chromedp.NewContext(sharedBrowser(t), chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	return &browser{t: t, ctx: ctx, dir: artifactsDir(t)}
}

// artifactsDir is where screenshots go: test-artifacts/journey/<test>,
// never committed (.gitignore). JOURNEY_ARTIFACTS moves it.
func artifactsDir(t *testing.T) string {
	base := os.Getenv("JOURNEY_ARTIFACTS")
	if base == "" {
		base = filepath.Join("..", "..", "test-artifacts", "journey")
	}
	dir := filepath.Join(base, strings.ReplaceAll(t.Name(), "/", "_"))
	_ = os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("artifacts: %v", err)
	}
	return dir
}

// stepTimeout bounds one browser step; generous for a loaded 2-core machine.
const stepTimeout = 20 * time.Second

// do runs steps, failing the test (with a screenshot of where it stood) on
// the first error.
func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.shot("failed-" + what)
		b.t.Fatalf("%s: %v (at %s)", what, err, b.location())
	}
}

// shot saves a PNG screenshot of the whole page.
func (b *browser) shot(name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	img, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	b.shots++
	path := filepath.Join(b.dir, fmt.Sprintf("%02d-%s.png", b.shots, name))
	if err := os.WriteFile(path, img, 0o644); err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
	}
}

func (b *browser) location() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	return loc
}

func testid(id string) chromedp.CSS { return chromedp.CSS(`[data-testid="` + id + `"]`) }

// text reads an element's text once it is visible.
func (b *browser) text(sel chromedp.CSS) string {
	b.t.Helper()
	b.do("wait for "+string(sel), chromedp.WaitVisible(sel))
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Text(sel))
	if err != nil {
		b.shot("failed-text")
		b.t.Fatalf("read %s: %v (at %s)", sel, err, b.location())
	}
	return strings.TrimSpace(v)
}

// waitStatus polls the page's account-status until it reads want: the page
// changes it by itself (polling, webhooks), so the test must not reload.
func (b *browser) waitStatus(want string, within time.Duration) {
	b.t.Helper()
	deadline := time.Now().Add(within)
	last := ""
	for {
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](
			`(document.querySelector('[data-testid="account-status"]') || {}).textContent || ""`))
		cancel()
		if err == nil {
			last = strings.TrimSpace(v)
			if last == want {
				return
			}
		}
		if time.Now().After(deadline) {
			b.shot("failed-status-" + want)
			b.t.Fatalf("account-status is %q after %v, want %q (at %s)", last, within, want, b.location())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// present reports whether an element matches now.
func (b *browser) present(id string) bool {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector('[data-testid="`+id+`"]') !== null`))
	if err != nil {
		b.t.Fatalf("query %s: %v", id, err)
	}
	return v
}

// evalAsync runs a script that returns a promise and decodes its value.
func evalAsync[T any](b *browser, script string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](script, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("evaluate: %v", err)
	}
	return v
}

// linkInfo looks an account link up in the simulator.
func linkInfo(t *testing.T, s *stack, url string) stripesim.LinkInfo {
	t.Helper()
	info, ok := s.Sim.Link(url)
	if !ok {
		t.Fatalf("the simulator handed out no link %s", redact(url))
	}
	return info
}

// redact keeps test output free of link tokens.
func redact(u string) string {
	if i := strings.LastIndexByte(u, '/'); i > 0 {
		return u[:i] + "/…"
	}
	return u
}
