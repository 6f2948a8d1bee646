package lambdatest

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// DynamoDB creates or deletes only one global secondary index per
// UpdateTable ("You can create or delete only one global secondary index
// per UpdateTable operation",
// https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_UpdateTable.html,
// read 2026-12-07), and CloudFormation updates a table that way: a stack
// update from the last release whose template adds two indexes, or
// changes an index's keys or projection (a delete plus a create), fails.
// testdata/released-indexes.json holds the last release's indexes; a
// release updates it to its own template's.

// gsi is one entry of a table's GlobalSecondaryIndexes, as CloudFormation
// and the released record spell it.
type gsi struct {
	IndexName string
	KeySchema []struct {
		AttributeName string
		KeyType       string
	}
	Projection struct {
		ProjectionType   string
		NonKeyAttributes []string
	}
}

// shape is what a change of which makes DynamoDB rebuild the index.
func (g gsi) shape() string {
	var b strings.Builder
	for _, k := range g.KeySchema {
		fmt.Fprintf(&b, "%s %s, ", k.AttributeName, k.KeyType)
	}
	b.WriteString(g.Projection.ProjectionType)
	attrs := slices.Clone(g.Projection.NonKeyAttributes)
	slices.Sort(attrs) // a set: its order is no change
	if len(attrs) > 0 {
		b.WriteString(" [" + strings.Join(attrs, " ") + "]")
	}
	return b.String()
}

// indexUpdateProblems says why a stack update from released to next would
// fail: more than one index created or deleted, or an index rebuilt.
func indexUpdateProblems(released, next []gsi) []string {
	was := map[string]gsi{}
	for _, g := range released {
		was[g.IndexName] = g
	}
	is := map[string]gsi{}
	for _, g := range next {
		is[g.IndexName] = g
	}
	var created, deleted, problems []string
	for _, g := range next {
		old, ok := was[g.IndexName]
		switch {
		case !ok:
			created = append(created, g.IndexName)
		case old.shape() != g.shape():
			problems = append(problems, fmt.Sprintf("index %s changes from (%s) to (%s): DynamoDB cannot change an index's keys or projection, only delete it and create another", g.IndexName, old.shape(), g.shape()))
		}
	}
	for _, g := range released {
		if _, ok := is[g.IndexName]; !ok {
			deleted = append(deleted, g.IndexName)
		}
	}
	if n := len(created) + len(deleted); n > 1 {
		problems = append(problems, fmt.Sprintf("%d indexes created %v and deleted %v since the last release: a stack update may create or delete only one", n, created, deleted))
	}
	return problems
}

var semanticVersion = regexp.MustCompile(`(?m)^\s*SemanticVersion:\s*(\S+)`)

func TestTemplateChangesAtMostOneIndexSinceTheLastRelease(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "released-indexes.json"))
	if err != nil {
		t.Fatal(err)
	}
	var released struct {
		Release string
		Indexes []gsi
	}
	if err := json.Unmarshal(raw, &released); err != nil || len(released.Indexes) == 0 {
		t.Fatalf("testdata/released-indexes.json: %v, %d indexes", err, len(released.Indexes))
	}
	// Cutting a release records its indexes here: a record of another
	// version than the template's SemanticVersion (CHANGELOG.md's latest
	// release, internal/release) was left behind by a release.
	tpl, err := os.ReadFile(filepath.Join(repoRoot(t), "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if m := semanticVersion.FindSubmatch(tpl); m == nil || string(m[1]) != released.Release {
		t.Errorf("testdata/released-indexes.json records release %q, template.yaml's SemanticVersion line is %q: a release copies its indexes here", released.Release, m)
	}
	table, ok := loadTemplate(t).Resources["Table"]
	if !ok {
		t.Fatal("template.yaml has no Table")
	}
	// Through JSON: the template's tree decodes as the record does.
	tree, err := json.Marshal(table.Properties["GlobalSecondaryIndexes"])
	if err != nil {
		t.Fatal(err)
	}
	var next []gsi
	if err := json.Unmarshal(tree, &next); err != nil || len(next) == 0 {
		t.Fatalf("the Table's GlobalSecondaryIndexes: %v, %d indexes", err, len(next))
	}
	for _, p := range indexUpdateProblems(released.Indexes, next) {
		t.Errorf("from release %s: %s", released.Release, p)
	}
}

func TestIndexUpdateProblemsAllowOneIndexCreatedOrDeletedAndNoneRebuilt(t *testing.T) {
	index := func(name, hash, rangeKey, projection string, attrs ...string) gsi {
		var g gsi
		g.IndexName = name
		g.KeySchema = append(g.KeySchema, struct{ AttributeName, KeyType string }{hash, "HASH"}, struct{ AttributeName, KeyType string }{rangeKey, "RANGE"})
		g.Projection.ProjectionType, g.Projection.NonKeyAttributes = projection, attrs
		return g
	}
	byReview := index("by-review", "review", "listed_at", "INCLUDE", "derived_status", "account_id")
	byStatus := index("by-status", "derived_status", "listed_at", "KEYS_ONLY")
	queue := index("review-queue", "review", "queued_at", "INCLUDE", "derived_status", "listed_at")
	sweep := index("sweep", "derived_status", "listed_at", "INCLUDE", "account_id", "state_digest")
	released := []gsi{byReview, byStatus}
	for _, tc := range []struct {
		name  string
		next  []gsi
		fails bool
	}{
		{"no change", []gsi{byReview, byStatus}, false},
		{"reordered indexes", []gsi{byStatus, byReview}, false},
		{"projected attributes reordered", []gsi{index("by-review", "review", "listed_at", "INCLUDE", "account_id", "derived_status"), byStatus}, false},
		{"one index created", []gsi{byReview, byStatus, queue}, false},
		{"one index deleted", []gsi{byReview}, false},
		{"two indexes created (the review queue's and the sweep's)", []gsi{byReview, byStatus, queue, sweep}, true},
		{"one created and one deleted", []gsi{byReview, queue}, true},
		{"an index renamed", []gsi{byReview, index("by-derived-status", "derived_status", "listed_at", "KEYS_ONLY")}, true},
		{"a projection widened", []gsi{byReview, index("by-status", "derived_status", "listed_at", "INCLUDE", "account_id")}, true},
		{"a range key changed", []gsi{index("by-review", "review", "queued_at", "INCLUDE", "derived_status", "account_id"), byStatus}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if problems := indexUpdateProblems(released, tc.next); (len(problems) > 0) != tc.fails {
				t.Errorf("problems %q, want a failed update: %v", problems, tc.fails)
			}
		})
	}
}
