package devserver

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connectexpress/onboarding/internal/stripesim"
)

// `make dev` as it runs, on its in-process engine and on moto: the
// simulator changes accounts and loses their webhooks, `make reconcile`
// (POST /dev/reconcile) heals every record, and each status change is one
// log line.

// logLines collects the dev server's JSON log lines.
type logLines struct {
	mu    sync.Mutex
	lines []map[string]any
}

func (l *logLines) Write(p []byte) (int, error) {
	var line map[string]any
	if json.Unmarshal(p, &line) == nil {
		l.mu.Lock()
		l.lines = append(l.lines, line)
		l.mu.Unlock()
	}
	return len(p), nil
}

func (l *logLines) withMsg(msg string) []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range l.lines {
		if line["msg"] == msg {
			out = append(out, line)
		}
	}
	return out
}

// devEngines are the DynamoDB settings `make dev` runs on: its in-process
// engine, and DYNAMODB_ENDPOINT (moto, when make test runs it).
func devEngines(t *testing.T) map[string]map[string]string {
	engines := map[string]map[string]string{"minidyn": {}}
	if moto := os.Getenv("TEST_DYNAMODB_ENDPOINT"); moto != "" {
		engines["moto"] = map[string]string{"DYNAMODB_ENDPOINT": moto, "TABLE_NAME": "dev-sweep-" + randomHex(4),
			"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
	} else if os.Getenv("CI") != "" {
		t.Fatal("TEST_DYNAMODB_ENDPOINT is not set: in CI the moto case must run (make test starts moto_server)")
	}
	return engines
}

func startLogged(t *testing.T, vars map[string]string) (*Running, *logLines) {
	t.Helper()
	all := map[string]string{"PORT": "0", "SIM_PORT": "0", "FRONTEND_URL": "http://localhost:0"}
	for k, v := range vars {
		all[k] = v
	}
	logs := &logLines{}
	r, err := Start(context.Background(), Options{LookupEnv: envOf(all), Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r, logs
}

type devUser struct {
	token, account string
}

func devAccount(t *testing.T, r *Running, sub string) devUser {
	t.Helper()
	_, body := httpDo(t, "GET", r.APIURL+"/dev/token?sub="+sub, "", "")
	var minted struct{ Token string }
	_ = json.Unmarshal([]byte(body), &minted)
	resp, body := httpDo(t, "POST", r.APIURL+"/accounts", minted.Token, `{"business_type":"individual"}`)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create %s: %d %s", sub, resp.StatusCode, body)
	}
	var acct struct {
		AccountID string `json:"account_id"`
	}
	_ = json.Unmarshal([]byte(body), &acct)
	return devUser{token: minted.Token, account: acct.AccountID}
}

// status is what GET /accounts/me answers from storage alone.
func (u devUser) status(t *testing.T, r *Running) string {
	t.Helper()
	_, body := httpDo(t, "GET", r.APIURL+"/accounts/me", u.token, "")
	var acct struct{ Status string }
	_ = json.Unmarshal([]byte(body), &acct)
	return acct.Status
}

func (u devUser) waitStatus(t *testing.T, r *Running, want string) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); u.status(t, r) != want; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: status %q, want %q (deliveries %+v)", u.account, u.status(t, r), want, r.Sim.Deliveries())
		}
	}
}

type sweepReport struct {
	Result        string `json:"result"`
	PassCompleted bool   `json:"pass_completed"`
	Run           struct {
		Listed, Foreign, Applied, Unchanged, Superseded, Orphans, Records, Missing int
	} `json:"run"`
}

func reconcile(t *testing.T, r *Running) sweepReport {
	t.Helper()
	resp, body := httpDo(t, "POST", r.APIURL+"/dev/reconcile", "", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /dev/reconcile: %d %s", resp.StatusCode, body)
	}
	var rep sweepReport
	if err := json.Unmarshal([]byte(body), &rep); err != nil {
		t.Fatal(err)
	}
	return rep
}

// simCreate makes an account at the simulator directly, as another
// integration or a Dashboard edit would.
func simCreate(t *testing.T, r *Running, form url.Values) {
	t.Helper()
	form.Set("type", "express")
	req, _ := http.NewRequest(http.MethodPost, r.SimURL+"/v1/accounts", strings.NewReader(form.Encode()))
	req.Header.Set("Authorization", "Bearer sk_test_devserver")
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("create at the simulator: %v %v", resp, err)
	}
	resp.Body.Close()
}

func TestMakeReconcileHealsWhatWebhooksMissed(t *testing.T) {
	for name, vars := range devEngines(t) {
		t.Run(name, func(t *testing.T) {
			r, logs := startLogged(t, vars)
			users := map[string]devUser{}
			for _, sub := range []string{"ana", "ben", "cat", "dan", "eve", "fay"} {
				users[sub] = devAccount(t, r, sub)
			}
			// Two accounts onboard with their webhooks delivered.
			for _, sub := range []string{"ana", "fay"} {
				if err := r.Sim.Outcome(users[sub].account, stripesim.OutcomeComplete, ""); err != nil {
					t.Fatal(err)
				}
				users[sub].waitStatus(t, r, "active")
			}
			// Then every delivery is lost while the accounts change.
			for _, u := range users {
				if err := r.Sim.MuteWebhooks(u.account, true); err != nil {
					t.Fatal(err)
				}
			}
			changes := []struct{ sub, outcome, due string }{
				{"ana", stripesim.OutcomeRestricted, "past"},
				{"ben", stripesim.OutcomeComplete, ""},
				{"cat", stripesim.OutcomeRestricted, "soon"},
				{"dan", stripesim.OutcomeReject, ""},
				{"eve", stripesim.OutcomeLeave, ""},
			}
			for _, c := range changes {
				if err := r.Sim.Outcome(users[c.sub].account, c.outcome, c.due); err != nil {
					t.Fatal(err)
				}
			}
			if err := r.Sim.Deauthorize(users["fay"].account); err != nil {
				t.Fatal(err)
			}
			simCreate(t, r, url.Values{"metadata[platform_user_id]": {"ghost"}, "metadata[platform_creation_id]": {"cr-ghost"}})
			simCreate(t, r, url.Values{})
			// What a delivery would have needed; and the sweep writes at the
			// second before its read, so it leaves alone a record written in
			// that second (a webhook of it may be newer than the read): let
			// the records' last writes be two seconds old.
			time.Sleep(2100 * time.Millisecond)
			stale := map[string]string{"ana": "active", "ben": "onboarding", "cat": "onboarding", "dan": "onboarding", "eve": "onboarding"}
			for sub, want := range stale {
				if got := users[sub].status(t, r); got != want {
					t.Fatalf("%s is %q before the sweep, want the stale %q: a webhook got through", sub, got, want)
				}
			}
			eventsBefore := len(logs.withMsg("status event"))

			rep := reconcile(t, r)
			// fay's account is no longer listed; her record is too young to
			// be judged missing (RecordGrace), and is left as it is.
			if !rep.PassCompleted || rep.Run.Listed != 7 || rep.Run.Foreign != 1 || rep.Run.Orphans != 1 || rep.Run.Applied != 4 ||
				rep.Run.Unchanged != 1 || rep.Run.Records != 6 {
				t.Errorf("report %+v, want 7 listed (1 foreign, 1 orphan), 4 applied, 1 unchanged, 6 records checked", rep)
			}
			want := map[string]string{"ana": "restricted", "ben": "active", "cat": "restricted_soon", "dan": "rejected", "eve": "onboarding", "fay": "active"}
			for sub, w := range want {
				if got := users[sub].status(t, r); got != w {
					t.Errorf("%s is %q after the sweep, want %q", sub, got, w)
				}
			}
			// One status event per change, printed as one log line.
			events := logs.withMsg("status event")[eventsBefore:]
			got := map[string]string{}
			for _, e := range events {
				d, _ := e["detail"].(map[string]any)
				if e["source"] != "connect-onboarding" || e["detail-type"] != "Connect account status changed" {
					t.Errorf("event line %v", e)
				}
				acct, _ := d["account_id"].(string)
				got[acct] = d["previous_status"].(string) + ">" + d["status"].(string)
			}
			wantEvents := map[string]string{users["ana"].account: "active>restricted", users["ben"].account: "onboarding>active",
				users["cat"].account: "onboarding>restricted_soon", users["dan"].account: "onboarding>rejected"}
			if len(events) != len(wantEvents) {
				t.Errorf("%d status events, want %d: %v", len(events), len(wantEvents), got)
			}
			for acct, w := range wantEvents {
				if got[acct] != w {
					t.Errorf("%s: event %q, want %q", acct, got[acct], w)
				}
			}
			if orphans := logs.withMsg("sweep: orphan account: it carries this service's metadata but no record holds it; not bound"); len(orphans) != 1 {
				t.Errorf("%d orphan log lines, want 1", len(orphans))
			}

			again := reconcile(t, r)
			if again.Run.Applied != 0 || again.Run.Unchanged != 5 || len(logs.withMsg("status event")) != eventsBefore+len(wantEvents) {
				t.Errorf("a second sweep: %+v and %d more events; want nothing applied", again, len(logs.withMsg("status event"))-eventsBefore-len(wantEvents))
			}
		})
	}
}

// The sweep and webhooks at once: every record still ends at Stripe's
// latest state, and the sweep never wrote what a webhook had superseded.
func TestSweepWhileWebhooksArriveConverges(t *testing.T) {
	r, _ := startLogged(t, map[string]string{"LOG_LEVEL": "ERROR", "SIM_CHAOS": "dup,shuffle,delay=200ms"})
	var users []devUser
	for _, sub := range []string{"gil", "hal", "ivy", "jon"} {
		users = append(users, devAccount(t, r, sub))
	}
	outcomes := []struct{ outcome, due string }{
		{stripesim.OutcomeRestricted, "soon"}, {stripesim.OutcomeComplete, ""}, {stripesim.OutcomeRestricted, "past"}, {stripesim.OutcomeComplete, ""},
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for round := range outcomes {
			for i, u := range users {
				o := outcomes[(round+i)%len(outcomes)]
				_ = r.Sim.Outcome(u.account, o.outcome, o.due)
			}
			time.Sleep(150 * time.Millisecond)
		}
	}()
	for range 6 {
		reconcile(t, r)
		time.Sleep(100 * time.Millisecond)
	}
	<-done
	// What Stripe says last, for each account.
	last := map[string]string{}
	for i, u := range users {
		o := outcomes[(len(outcomes)-1+i)%len(outcomes)]
		last[u.account] = map[string]string{"soon": "restricted_soon", "past": "restricted", "": "active"}[o.due]
	}
	for _, u := range users {
		u.waitStatus(t, r, last[u.account]) // the chaotic deliveries settle
	}
	if rep := reconcile(t, r); rep.Run.Applied != 0 {
		t.Errorf("after the webhooks settled, the sweep still found %d records to heal: %+v", rep.Run.Applied, rep)
	}
}
