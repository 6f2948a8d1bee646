package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/connectexpress/onboarding/internal/devserver/memdynamo"
	"github.com/connectexpress/onboarding/shared/app"
	"github.com/connectexpress/onboarding/shared/config"
	"github.com/connectexpress/onboarding/shared/dynamostore"
	"github.com/connectexpress/onboarding/shared/onboarding"
	"github.com/connectexpress/onboarding/shared/stripeconnect"
)

// The sweep's cost: a table of n users' records on the in-process engine,
// Stripe's account list of the same n accounts served from stripe-mock's
// account object (so each page decodes what Stripe sends), and the sweep
// run as the Lambda runs it, with counting clients.

// SweepFigures are one pass's requests, units and time.
type SweepFigures struct {
	Accounts int
	Usage    Usage // DynamoDB and Stripe of the whole pass
	Index    Usage // of which the reads of the sweep index
	// IndexTime is the index reads' share of the time: the in-process
	// engine answers an index query by scanning the whole table.
	IndexTime time.Duration
	Wall      time.Duration // at the configured rate (what Lambda bills here)
	Own       time.Duration // with the rate unbounded: our own code and the engine
	Applied   int
	passID    string
}

// SweepCosts are a pass in which some accounts drifted and one in which none did.
type SweepCosts struct {
	Rate          float64
	Drifted       float64 // share of accounts the first pass heals
	Drift, Steady SweepFigures
	// PageItemBytes is the size of one kept page of 100 listed ids.
	PageItemBytes int
	// IndexHeapBytes is the Go heap a run holds for an index of
	// IndexHeapEntries records.
	IndexHeapBytes   uint64
	IndexHeapEntries int
}

// BatchGetItem makes CountingDB a sweep client: strongly consistent batch
// reads cost each item's own units (a missing item one), eventually
// consistent ones half.
func (c *CountingDB) BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	out, err := c.Client.(dynamostore.SweepClient).BatchGetItem(ctx, in, o...)
	if err != nil {
		return out, err
	}
	var units float64
	for _, ka := range in.RequestItems {
		for _, key := range ka.Keys {
			u := readUnits(c.sizeOf(ctx, key))
			if !aws.ToBool(ka.ConsistentRead) {
				u /= 2 // the staff list's reads (issue 24)
			}
			units += u
		}
	}
	c.add(1, units, 0)
	return out, nil
}

// sweepDB counts the sweep index's queries as DynamoDB bills them: the
// bytes of the index entries read (keys and projected attributes), 4 KB
// per unit, half a unit for an eventually consistent read, which is all a
// GSI offers
// (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html,
// read 2026-12-06). The in-process engine answers whole items; only the
// index's attributes are counted.
type sweepDB struct {
	*CountingDB
	index     Usage         // the index queries' share of the counts
	indexTime time.Duration // and of the time
}

// sweepIndexAttributes are what an entry of the review-queue index, which
// the sweep reads whole, holds.
var sweepIndexAttributes = []string{"pk", "review", "queued_at", "derived_status", "listed_at", "account_id", "state_digest"}

func (c *sweepDB) Query(ctx context.Context, in *dynamodb.QueryInput, o ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	start := time.Now()
	out, err := c.CountingDB.Client.Query(ctx, in, o...)
	if err != nil || aws.ToString(in.IndexName) != dynamostore.IndexReviewQueue {
		return out, err
	}
	c.indexTime += time.Since(start)
	size := 0
	for _, item := range out.Items {
		for _, a := range sweepIndexAttributes {
			if v, ok := item[a]; ok {
				size += len(a) + valueSize(v)
			}
		}
	}
	units := math.Max(1, math.Ceil(float64(size)/4096)) / 2
	c.add(1, units, 0)
	c.index.DynamoRequests++
	c.index.ReadUnits += units
	return out, nil
}

// accountList serves GET /v1/accounts from n accounts, newest first, as
// Stripe pages it.
type accountList struct {
	ids     []string
	index   map[string]int
	objects map[string][]byte
	created []int64 // of each of ids, newest first
}

func newAccountList(template map[string]any, n int, created time.Time) *accountList {
	l := &accountList{index: map[string]int{}, objects: map[string][]byte{}}
	for i := range n {
		id := fmt.Sprintf("acct_bench%07d", i)
		obj := maps.Clone(template)
		obj["id"], obj["type"], obj["created"] = id, "express", created.Add(-time.Duration(i)*time.Second).Unix()
		obj["metadata"] = map[string]string{stripeconnect.MetadataUserID: benchUser(i), stripeconnect.MetadataCreationID: "creation-" + benchUser(i)}
		b, _ := json.Marshal(obj)
		l.index[id] = len(l.ids)
		l.ids = append(l.ids, id)
		l.objects[id] = b
		l.created = append(l.created, obj["created"].(int64))
	}
	return l
}

func benchUser(i int) string { return fmt.Sprintf("sweep-user-%07d", i) }

func (l *accountList) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet || r.URL.Path != "/v1/accounts" {
		http.Error(w, `{"error":{"type":"invalid_request_error","message":"only the account list here"}}`, http.StatusNotFound)
		return
	}
	q := r.URL.Query()
	limit, _ := strconv.Atoi(q.Get("limit"))
	limit = min(max(limit, 1), 100)
	// created[gte|lt|lte] keep the list to a range of creation times, as
	// Stripe's does (https://docs.stripe.com/api/accounts/list): the
	// sweep lists its ranges at once.
	bound := func(op string, fallback int64) int64 {
		v, err := strconv.ParseInt(q.Get("created["+op+"]"), 10, 64)
		if err != nil {
			return fallback
		}
		return v
	}
	from, before, atMost := bound("gte", math.MinInt64), bound("lt", math.MaxInt64), bound("lte", math.MaxInt64)
	var listed []int
	for i, c := range l.created {
		if c >= from && c < before && c <= atMost {
			listed = append(listed, i)
		}
	}
	start := 0
	if after, ok := l.index[q.Get("starting_after")]; ok {
		start = len(listed)
		for j, i := range listed {
			if i == after {
				start = j + 1
			}
		}
	}
	end := min(start+limit, len(listed))
	var b strings.Builder
	b.WriteString(`{"object":"list","url":"/v1/accounts","has_more":` + strconv.FormatBool(end < len(listed)) + `,"data":[`)
	for j := start; j < end; j++ {
		if j > start {
			b.WriteByte(',')
		}
		b.Write(l.objects[l.ids[listed[j]]])
	}
	b.WriteString("]}")
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, b.String())
}

// MeasureSweep runs two passes over n accounts: the first heals drifted
// (a share) of them, the second finds nothing to do, as most runs do.
func MeasureSweep(stripeBase string, n int, drifted float64) (SweepCosts, error) {
	costs := SweepCosts{Drifted: drifted}
	template, err := stripeMockAccount(stripeBase)
	if err != nil {
		return costs, err
	}
	list := newAccountList(template, n, time.Now().Add(-time.Hour))
	srv := httptest.NewServer(list)
	defer srv.Close()

	mem := memdynamo.New()
	ctx := context.Background()
	if err := dynamostore.CreateTable(ctx, mem, benchTable); err != nil {
		return costs, err
	}
	db := &sweepDB{CountingDB: NewCountingDB(mem, benchTable)}
	stripe := &CountingTransport{}
	env := map[string]string{
		"STRIPE_SECRET_KEY": "sk_test_bench", "STRIPE_API_BASE": srv.URL, "STRIPE_MAX_RETRIES": "0", "TABLE_NAME": benchTable,
		"FRONTEND_URL": "https://frontend.example", "PUBLIC_API_URL": "https://api.example",
	}
	a, err := app.New(ctx, app.Options{
		LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		Logger:    slog.New(slog.NewJSONHandler(io.Discard, nil)),
		DynamoDB:  db, Needs: config.Needs{StripeKey: true}, StripeTransport: stripe,
	})
	if err != nil {
		return costs, err
	}
	costs.Rate = a.Config.Ops.SweepRate
	seed, err := newSweepSeed(ctx, mem, list)
	if err != nil {
		return costs, err
	}
	if err := seed.write(ctx, mem, drifted); err != nil {
		return costs, err
	}
	db.Take()
	stripe.Take()

	pass := func(rate float64) (SweepFigures, error) {
		rec, err := a.ReconcilerWith(nil, onboarding.SweepConfig{RequestsPerSecond: rate})
		if err != nil {
			return SweepFigures{}, err
		}
		start := time.Now()
		rep, err := rec.Run(ctx)
		f := SweepFigures{Accounts: n, Wall: time.Since(start), Applied: rep.Run.Applied, passID: rep.PassID}
		if err == nil && !rep.PassCompleted {
			err = fmt.Errorf("the sweep's pass did not complete: %s", rep.Result)
		}
		f.Usage = db.Take()
		f.Usage.StripeRequests = stripe.Take()
		f.Index, db.index = db.index, Usage{}
		f.IndexTime, db.indexTime = db.indexTime, 0
		return f, err
	}
	// Each pass at the configured rate, then the same table state again
	// unbounded for our own code's time (the drift pass restored first).
	if costs.Drift, err = pass(0); err != nil {
		return costs, err
	}
	if costs.Steady, err = pass(0); err != nil {
		return costs, err
	}
	steadyOwn, err := pass(1e6)
	if err != nil {
		return costs, err
	}
	costs.Steady.Own, costs.Steady.IndexTime = steadyOwn.Wall, steadyOwn.IndexTime
	page, err := getItem(ctx, mem, "SWEEP#"+costs.Steady.passID+"#1")
	if err != nil || len(page) == 0 {
		return costs, fmt.Errorf("the steady pass kept no first page: %v", err)
	}
	costs.PageItemBytes = itemSize(page)
	if err := seed.write(ctx, mem, drifted); err != nil {
		return costs, err
	}
	db.Take()
	stripe.Take()
	driftOwn, err := pass(1e6)
	costs.Drift.Own, costs.Drift.IndexTime = driftOwn.Wall, driftOwn.IndexTime
	return costs, err
}

// stripeMockAccount is stripe-mock's account object: the shape and size
// of what Stripe lists.
func stripeMockAccount(base string) (map[string]any, error) {
	req, _ := http.NewRequest(http.MethodGet, strings.TrimRight(base, "/")+"/v1/accounts/acct_bench", nil)
	req.Header.Set("Authorization", "Bearer sk_test_bench")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var obj map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&obj); err != nil || resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("stripe-mock's account: %d %v", resp.StatusCode, err)
	}
	return obj, nil
}

// sweepSeed is every listed account's record as the service stores it:
// one user is created through the store (stale: the state of creation)
// and healed by a sweep of its one account, and its two items (the record
// and the account index) are copied for the others.
type sweepSeed struct {
	list                    *accountList
	stale, healed, index    map[string]types.AttributeValue
	firstUser, firstAccount string
}

func newSweepSeed(ctx context.Context, mem *memdynamo.Client, list *accountList) (*sweepSeed, error) {
	store := dynamostore.New(mem, benchTable)
	sd := &sweepSeed{list: list, firstAccount: list.ids[0], firstUser: benchUser(0)}
	created := time.Now().Add(-2 * time.Hour)
	claim := onboarding.CreationClaim{ClaimID: "claim", CreationID: "creation", LeaseUntil: created.Add(time.Minute), AttemptSince: created}
	if err := store.ClaimCreation(ctx, sd.firstUser, claim, created); err != nil {
		return nil, err
	}
	rec := onboarding.AccountRecord{UserID: sd.firstUser, AccountID: sd.firstAccount, Country: "US", ServiceAgreement: onboarding.AgreementFull,
		StateVersion: created.Unix(), CreatedAt: created, UpdatedAt: created}
	if err := store.CompleteCreation(ctx, rec, claim.ClaimID); err != nil {
		return nil, err
	}
	var err error
	if sd.stale, err = getItem(ctx, mem, dynamostore.UserKeyPrefix+sd.firstUser); err != nil {
		return nil, err
	}
	one := &accountList{ids: list.ids[:1], index: map[string]int{sd.firstAccount: 0}, objects: map[string][]byte{sd.firstAccount: list.objects[sd.firstAccount]}, created: list.created[:1]}
	oneSrv := httptest.NewServer(one)
	defer oneSrv.Close()
	if err := healOne(ctx, mem, oneSrv.URL); err != nil {
		return nil, err
	}
	if sd.healed, err = getItem(ctx, mem, dynamostore.UserKeyPrefix+sd.firstUser); err != nil {
		return nil, err
	}
	if sd.index, err = getItem(ctx, mem, "ACCOUNT#"+sd.firstAccount); err != nil || len(sd.index) == 0 {
		return nil, fmt.Errorf("no account index item for %s: %v", sd.firstAccount, err)
	}
	return sd, nil
}

// write stores every account's two items, a share of the records stale,
// and removes the sweep's checkpoint: the next run starts a pass.
func (sd *sweepSeed) write(ctx context.Context, mem *memdynamo.Client, drifted float64) error {
	every := 0
	if drifted > 0 {
		every = int(math.Round(1 / drifted))
	}
	put := func(item map[string]types.AttributeValue) error {
		_, err := mem.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(benchTable), Item: item})
		return err
	}
	for i, id := range sd.list.ids {
		user, src := benchUser(i), sd.healed
		if every > 0 && i%every == every/2 { // not the first: its heal's marker would make it a replay
			src = sd.stale
		}
		if err := put(createdAt(renamed(src, sd.firstUser, user, sd.firstAccount, id), sd.list.created[i]+1)); err != nil {
			return err
		}
		if err := put(renamed(sd.index, sd.firstUser, user, sd.firstAccount, id)); err != nil {
			return err
		}
	}
	_, err := mem.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(benchTable),
		Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "SWEEP#state"}}})
	return err
}

// createdAt dates a copied record a second after Stripe made its account,
// as the service stores it: the sweep splits its pass at the quantiles of
// the records' creation (listed_at holds it first).
func createdAt(item map[string]types.AttributeValue, unix int64) map[string]types.AttributeValue {
	if s, ok := item["listed_at"].(*types.AttributeValueMemberS); ok {
		if _, rest, found := strings.Cut(s.Value, "#"); found {
			item["listed_at"] = &types.AttributeValueMemberS{Value: time.Unix(unix, 0).UTC().Format("2006-01-02T15:04:05.000000000Z") + "#" + rest}
		}
	}
	return item
}

func getItem(ctx context.Context, mem *memdynamo.Client, pk string) (map[string]types.AttributeValue, error) {
	out, err := mem.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(benchTable), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}}})
	if err != nil {
		return nil, err
	}
	return maps.Clone(out.Item), nil
}

// healOne runs a sweep of one account on its own App, uncounted.
func healOne(ctx context.Context, mem *memdynamo.Client, stripeBase string) error {
	env := map[string]string{"STRIPE_SECRET_KEY": "sk_test_bench", "STRIPE_API_BASE": stripeBase, "STRIPE_MAX_RETRIES": "0",
		"TABLE_NAME": benchTable, "FRONTEND_URL": "https://frontend.example", "PUBLIC_API_URL": "https://api.example"}
	a, err := app.New(ctx, app.Options{LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), DynamoDB: mem, Needs: config.Needs{StripeKey: true}})
	if err != nil {
		return err
	}
	rec, err := a.ReconcilerWith(nil, onboarding.SweepConfig{RequestsPerSecond: 1e6})
	if err != nil {
		return err
	}
	rep, err := rec.Run(ctx)
	if err == nil && rep.Run.Applied != 1 {
		err = fmt.Errorf("seeding: the one-account sweep applied %d states: %+v", rep.Run.Applied, rep.Run)
	}
	if err == nil {
		_, err = mem.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(benchTable),
			Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "SWEEP#state"}}})
	}
	return err
}

// renamed copies an item with one user's and account's ids replaced.
func renamed(item map[string]types.AttributeValue, fromUser, toUser, fromAcct, toAcct string) map[string]types.AttributeValue {
	out := make(map[string]types.AttributeValue, len(item))
	r := strings.NewReplacer(fromUser, toUser, fromAcct, toAcct)
	for k, v := range item {
		if s, ok := v.(*types.AttributeValueMemberS); ok && (strings.Contains(s.Value, fromUser) || strings.Contains(s.Value, fromAcct)) {
			v = &types.AttributeValueMemberS{Value: r.Replace(s.Value)}
		}
		out[k] = v
	}
	return out
}

// sweepRunsPerDay reads SweepSchedule's default from template.yaml
// (rate(N minutes|hours)); 96 if it says otherwise.
func sweepRunsPerDay() (float64, string) {
	b, err := os.ReadFile("template.yaml")
	if err != nil {
		return 96, "rate(15 minutes)"
	}
	m := regexp.MustCompile(`SweepSchedule:.*Default: (rate\((\d+) (minute|minutes|hour|hours)\))`).FindSubmatch(b)
	if m == nil {
		return 96, "rate(15 minutes)"
	}
	n, _ := strconv.ParseFloat(string(m[2]), 64)
	per := 24 * 60 / n
	if strings.HasPrefix(string(m[3]), "hour") {
		per = 24 / n
	}
	return per, string(m[1])
}

// write prints the sweep's cost per 10,000 accounts per day.
func (c SweepCosts) write(w io.Writer) {
	runs, schedule := sweepRunsPerDay()
	memoryMB := templateSweepSchedule().memoryMB // the reconcile function's own
	scale := 10000 / float64(c.Steady.Accounts)
	fmt.Fprintf(w, "\n## Reconciliation sweep, per 10,000 accounts\n\n")
	fmt.Fprintf(w, "Measured: one pass over %d accounts (in-process DynamoDB engine; Stripe's list served from stripe-mock's account object, 100 per page), "+
		"at SWEEP_STRIPE_RATE %g/s; \"own code\" is the same pass with the rate unbounded. Scaled x%g to 10,000 accounts.\n\n", c.Steady.Accounts, c.Rate, scale)
	fmt.Fprintln(w, "| pass | Stripe requests | DynamoDB requests | RRU | WRU | states written | wall ms (Lambda bills) | own code ms |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|")
	for _, p := range []struct {
		name string
		f    SweepFigures
	}{{fmt.Sprintf("%g%% of accounts drifted", 100*c.Drifted), c.Drift}, {"nothing drifted (most runs)", c.Steady}} {
		u := p.f.Usage
		fmt.Fprintf(w, "| %s | %.0f | %.0f | %.1f | %.1f | %.0f | %.0f | %.0f |\n", p.name, scale*float64(u.StripeRequests), scale*float64(u.DynamoRequests),
			scale*u.ReadUnits, scale*u.WriteUnits, scale*float64(p.f.Applied), scale*float64(p.f.Wall.Milliseconds()), scale*float64(p.f.Own.Milliseconds()))
	}
	// A day: every run a pass with nothing drifted (the webhooks keep up).
	u, f := c.Steady.Usage, c.Steady
	perRunMs := func(perStripe, perDynamo float64) float64 {
		rateBound := float64(u.StripeRequests) / c.Rate * 1000
		waits := float64(f.Own.Milliseconds()) + perStripe*float64(u.StripeRequests) + perDynamo*float64(u.DynamoRequests)
		return scale * math.Max(math.Max(rateBound, waits), float64(f.Wall.Milliseconds()))
	}
	fmt.Fprintf(w, "\nPer day: %g runs (SweepSchedule %s), each a pass with nothing drifted: %.0f Stripe requests, %.0f DynamoDB requests, %.0f RRU, %.0f WRU.\n\n",
		runs, schedule, runs*scale*float64(u.StripeRequests), runs*scale*float64(u.DynamoRequests), runs*scale*u.ReadUnits, runs*scale*u.WriteUnits)
	fmt.Fprintln(w, "| duration assumption | Lambda s/day | Lambda | DynamoDB | total per day | per 30 days |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|")
	for _, a := range []struct {
		name                 string
		perStripe, perDynamo float64
	}{
		{"measured here", 0, 0},
		{"in AWS: +400 ms per Stripe list page, +5 ms per DynamoDB request", 400, 5},
	} {
		ms := perRunMs(a.perStripe, a.perDynamo)
		lambda := runs * (math.Ceil(ms)/1000*float64(memoryMB)/1024*lambdaArmPerGBSecond + lambdaPerRequest)
		dynamo := runs * scale * (u.ReadUnits*dynamoPerRRU + u.WriteUnits*dynamoPerWRU)
		fmt.Fprintf(w, "| %s | %.0f | $%.4f | $%.4f | **$%.4f** | $%.2f |\n", a.name, runs*ms/1000, lambda, dynamo, lambda+dynamo, 30*(lambda+dynamo))
	}
	fmt.Fprintln(w, "\nStripe charges nothing for API reads; they count against the platform's rate limit, which SWEEP_STRIPE_RATE bounds. "+
		"The drifted pass's time is mostly the in-process engine's (its transactions run under one lock, with an undo log of the items they touch); DynamoDB's is the +5 ms per request above. "+
		"The read units are the sweep index's bytes, and the records of the accounts it does not show at Stripe's state.")
	c.writeScale(w)
}
