package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/connectexpress/onboarding/shared/config"
	"github.com/connectexpress/onboarding/shared/dynamostore"
	"github.com/connectexpress/onboarding/shared/onboarding"
)

// Reconciler runs the reconciliation sweep and reports each run as a log
// line and as CloudWatch metrics (an Embedded Metric Format line on
// stdout, which Lambda's log pipeline turns into metrics: no SDK call).
type Reconciler struct {
	sweeper   *onboarding.Sweeper
	log       *slog.Logger
	metrics   io.Writer
	namespace string
	now       func() time.Time
}

// Reconciler builds the sweep on the App's store and Stripe client;
// metrics receives the EMF lines (os.Stdout in Lambda; nil: none).
func (a *App) Reconciler(metrics io.Writer) (*Reconciler, error) {
	return a.ReconcilerWith(metrics, onboarding.SweepConfig{})
}

// ReconcilerWith is Reconciler with the sweep's bounds set (zero fields:
// the defaults, and SWEEP_STRIPE_RATE).
func (a *App) ReconcilerWith(metrics io.Writer, cfg onboarding.SweepConfig) (*Reconciler, error) {
	db, ok := a.db.(dynamostore.SweepClient)
	if !ok {
		return nil, fmt.Errorf("the sweep needs BatchGetItem and Query, which the DynamoDB client %T lacks", a.db)
	}
	if cfg.RequestsPerSecond == 0 {
		cfg.RequestsPerSecond = a.Config.Ops.SweepRate
	}
	sweeper := a.Service.NewSweeper(dynamostore.NewSweepStore(db, a.Config.TableName), a.connect, cfg)
	if metrics == nil {
		metrics = io.Discard
	}
	return &Reconciler{sweeper: sweeper, log: a.Logger, metrics: metrics, namespace: a.Config.Ops.MetricsNamespace, now: time.Now}, nil
}

// SweepReport is what a run answers (the Lambda's result, the dev route's
// body).
type SweepReport struct {
	Result         string                 `json:"result"`
	PassID         string                 `json:"pass_id,omitempty"`
	PassCompleted  bool                   `json:"pass_completed"`
	Stopped        bool                   `json:"stopped"`
	Pages          int                    `json:"pages"`
	StripeRequests int                    `json:"stripe_requests"`
	Run            onboarding.SweepCounts `json:"run"`
	Pass           onboarding.SweepCounts `json:"pass"`
	DurationMS     int64                  `json:"duration_ms"`
}

// Run runs the sweep until the pass ends or ctx's deadline comes near.
func (r *Reconciler) Run(ctx context.Context) (SweepReport, error) {
	start := r.now()
	deadline, _ := ctx.Deadline()
	res, err := r.sweeper.Run(ctx, deadline)
	report := SweepReport{
		Result: res.String(), PassID: res.PassID, PassCompleted: res.PassCompleted, Stopped: res.Stopped,
		Pages: res.Pages, StripeRequests: res.StripeRequests, Run: res.Run, Pass: res.Pass,
		DurationMS: r.now().Sub(start).Milliseconds(),
	}
	attrs := []any{"result", report.Result, "pass_id", report.PassID, "pages", report.Pages, "stripe_requests", report.StripeRequests,
		"run", report.Run, "duration_ms", report.DurationMS}
	if err != nil {
		r.log.ErrorContext(ctx, "sweep run failed; the next run goes on from the last checkpoint", append(attrs, "error", err)...)
	} else {
		r.log.InfoContext(ctx, "sweep run", attrs...)
	}
	r.writeMetrics(report, err, start)
	return report, err
}

// writeMetrics writes one Embedded Metric Format line: the alarms on sweep
// errors and orphans read these metrics.
func (r *Reconciler) writeMetrics(rep SweepReport, runErr error, at time.Time) {
	metrics := []struct {
		name  string
		value int
	}{
		{"SweepErrors", boolInt(runErr != nil)},
		{"SweepOrphans", rep.Run.Orphans},
		{"SweepMissingRecords", rep.Run.Missing},
		{"SweepStatesApplied", rep.Run.Applied},
		{"SweepAccountsListed", rep.Run.Listed},
		{"SweepStripeRequests", rep.StripeRequests},
		{"SweepPassesCompleted", boolInt(rep.PassCompleted)},
	}
	defs := make([]map[string]string, len(metrics))
	line := map[string]any{"Component": "sweep"}
	for i, m := range metrics {
		defs[i] = map[string]string{"Name": m.name, "Unit": "Count"}
		line[m.name] = m.value
	}
	line["_aws"] = map[string]any{
		"Timestamp": at.UnixMilli(),
		"CloudWatchMetrics": []any{map[string]any{
			"Namespace": r.namespace, "Dimensions": [][]string{{"Component"}}, "Metrics": defs,
		}},
	}
	b, err := json.Marshal(line)
	if err == nil {
		_, _ = r.metrics.Write(append(b, '\n'))
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// ReconcileLambda builds the App for the sweep function and returns its
// handler for lambda.Start: the schedule's event carries nothing it needs.
func ReconcileLambda() func(context.Context, json.RawMessage) (SweepReport, error) {
	a, err := New(context.Background(), Options{Needs: config.Needs{StripeKey: true}})
	if err != nil {
		fail(err)
	}
	rec, err := a.Reconciler(os.Stdout)
	if err != nil {
		fail(err)
	}
	return func(ctx context.Context, _ json.RawMessage) (SweepReport, error) { return rec.Run(ctx) }
}

// AWS returns the SDK settings the App's clients are built with and the
// endpoint override of one service (AWS_ENDPOINT_URL_<SERVICE>, "" for
// AWS's own), for clients of services only one function uses
// (shared/eventsapp).
func (a *App) AWS(service string) (aws.Config, string, error) {
	return a.base.AWS(service)
}

// Fail ends a cold start that cannot serve, with one log line saying why.
func Fail(err error) { fail(err) }
