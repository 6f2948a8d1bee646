package memdynamo_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/connectexpress/onboarding/internal/devserver/memdynamo"
)

func n(v int) types.AttributeValue { return &types.AttributeValueMemberN{Value: strconv.Itoa(v)} }

func put(pk string, cond string) types.TransactWriteItem {
	p := &types.Put{TableName: aws.String(table), Item: map[string]types.AttributeValue{"pk": s(pk), "new": s("yes")}}
	if cond != "" {
		p.ConditionExpression = aws.String(cond)
	}
	return types.TransactWriteItem{Put: p}
}

func get(t *testing.T, db *memdynamo.Client, pk string) map[string]types.AttributeValue {
	t.Helper()
	out, err := db.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(table), Key: key(pk), ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Item) == 0 {
		return nil
	}
	return out.Item
}

func codes(err error) []string {
	var tce *types.TransactionCanceledException
	if !errors.As(err, &tce) {
		return nil
	}
	var c []string
	for _, r := range tce.CancellationReasons {
		c = append(c, aws.ToString(r.Code))
	}
	return c
}

func TestATransactionIsAllOrNothingWithOneReasonPerItem(t *testing.T) {
	setX := types.TransactWriteItem{Update: &types.Update{TableName: aws.String(table), Key: key("a"),
		UpdateExpression: aws.String("SET x = :x REMOVE y"), ExpressionAttributeValues: map[string]types.AttributeValue{":x": s("changed")}}}
	for _, tc := range []struct {
		name  string
		items []types.TransactWriteItem
		want  []string // cancellation reasons; nil: applied
	}{
		{"all conditions hold", []types.TransactWriteItem{put("b", ""), setX, put("c", "attribute_not_exists(pk)"), put("d", "")}, nil},
		{"the third of four fails", []types.TransactWriteItem{put("b", ""), setX, put("a2", "attribute_exists(pk)"), put("d", "")},
			[]string{"None", "None", "ConditionalCheckFailed", "None"}},
		{"the first and the last fail", []types.TransactWriteItem{put("b", "attribute_exists(pk)"), setX, put("c", ""), put("d", "attribute_exists(pk)")},
			[]string{"ConditionalCheckFailed", "None", "None", "ConditionalCheckFailed"}},
		{"a condition check fails", []types.TransactWriteItem{put("b", ""), setX, {ConditionCheck: &types.ConditionCheck{
			TableName: aws.String(table), Key: key("a2"), ConditionExpression: aws.String("attribute_exists(pk)")}}},
			[]string{"None", "None", "ConditionalCheckFailed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := withItem(t, memdynamo.New())
			_, err := db.TransactWriteItems(context.Background(), &dynamodb.TransactWriteItemsInput{TransactItems: tc.items})
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				if got := get(t, db, "a"); !reflect.DeepEqual(names(got), []string{"pk", "x", "z"}) || got["x"].(*types.AttributeValueMemberS).Value != "changed" {
					t.Errorf("a = %v, want x changed and y removed", got)
				}
				for _, pk := range []string{"b", "c", "d"} {
					if get(t, db, pk) == nil {
						t.Errorf("%s is missing after an applied transaction", pk)
					}
				}
				return
			}
			if got := codes(err); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("reasons %v (error %v), want %v", got, err, tc.want)
			}
			if got := get(t, db, "a"); !reflect.DeepEqual(got, map[string]types.AttributeValue{"pk": s("a"), "x": s("1"), "y": s("2"), "z": s("3")}) {
				t.Errorf("a = %v after a cancelled transaction, want it untouched", got)
			}
			for _, pk := range []string{"b", "c", "d", "a2"} {
				if got := get(t, db, pk); got != nil {
					t.Errorf("%s = %v after a cancelled transaction, want it absent", pk, got)
				}
			}
		})
	}
}

func TestAFailedConditionReturnsTheItemWhenAskedFor(t *testing.T) {
	db := withItem(t, memdynamo.New())
	_, err := db.TransactWriteItems(context.Background(), &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		put("b", ""),
		{Update: &types.Update{TableName: aws.String(table), Key: key("a"), UpdateExpression: aws.String("SET x = :x"),
			ConditionExpression: aws.String("attribute_not_exists(pk)"), ExpressionAttributeValues: map[string]types.AttributeValue{":x": s("9")},
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld}},
	}})
	var tce *types.TransactionCanceledException
	if !errors.As(err, &tce) || len(tce.CancellationReasons) != 2 {
		t.Fatalf("error %v, want a cancellation with two reasons", err)
	}
	if r := tce.CancellationReasons[0]; r.Item != nil {
		t.Errorf("the passing item's reason carries %v, want no item", r.Item)
	}
	if got := tce.CancellationReasons[1].Item; !reflect.DeepEqual(names(got), []string{"pk", "x", "y", "z"}) {
		t.Errorf("the failed item's reason carries %v, want the item as it was", got)
	}
}

func TestAPassingConditionCheckWritesNothing(t *testing.T) {
	db := withItem(t, memdynamo.New())
	check := func(pk, cond string) types.TransactWriteItem {
		return types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{TableName: aws.String(table), Key: key(pk), ConditionExpression: aws.String(cond)}}
	}
	if _, err := db.TransactWriteItems(context.Background(), &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		check("a", "attribute_exists(pk)"), check("absent", "attribute_not_exists(pk)"), put("b", ""),
	}}); err != nil {
		t.Fatal(err)
	}
	if got := attributes(t, db); !reflect.DeepEqual(got, []string{"pk", "x", "y", "z"}) {
		t.Errorf("a checked item holds %v, want it unchanged", got)
	}
	if got := get(t, db, "absent"); got != nil {
		t.Errorf("a checked absent item became %v, want it absent", got)
	}
}

func TestTwoActionsOnOneItemAreRefused(t *testing.T) {
	db := withItem(t, memdynamo.New())
	_, err := db.TransactWriteItems(context.Background(), &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{put("b", ""), put("b", "")}})
	var api smithy.APIError
	if !errors.As(err, &api) || api.ErrorCode() != "ValidationException" {
		t.Fatalf("error %v, want a ValidationException", err)
	}
	if got := get(t, db, "b"); got != nil {
		t.Errorf("b = %v, want nothing written", got)
	}
}

// TestACancelledTransactionKeepsEmptyListsAndMaps: minidyn's own rollback
// (a snapshot of the table) restored an empty list as a value of no type,
// which every later condition on it refused with a ValidationException.
func TestACancelledTransactionKeepsEmptyListsAndMaps(t *testing.T) {
	db := withItem(t, memdynamo.New())
	ctx := context.Background()
	if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: map[string]types.AttributeValue{
		"pk": s("a"), "l": &types.AttributeValueMemberL{Value: []types.AttributeValue{}}, "m": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{}},
	}}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Update: &types.Update{TableName: aws.String(table), Key: key("a"), UpdateExpression: aws.String("SET x = :x"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":x": s("1")}}},
		put("b", "attribute_exists(pk)"),
	}}); codes(err) == nil {
		t.Fatalf("error %v, want a cancellation", err)
	}
	for _, a := range []struct{ name, typ string }{{"l", "L"}, {"m", "M"}} {
		if _, err := db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: aws.String(table), Key: key("a"), UpdateExpression: aws.String("SET y = :y"),
			ConditionExpression:       aws.String("attribute_type(#a, :t)"),
			ExpressionAttributeNames:  map[string]string{"#a": a.name},
			ExpressionAttributeValues: map[string]types.AttributeValue{":t": s(a.typ), ":y": s("1")},
		}); err != nil {
			t.Errorf("after a cancelled transaction, attribute_type(%s, %s) = %v, want it kept", a.name, a.typ, err)
		}
	}
}

// TestConcurrentTransactionsAreIsolated runs transactions that add one to
// two counters, half of them cancelled by their second item after the
// first was applied, beside readers of both counters at once: no reader
// may see one counter moved without the other. Run with -race.
func TestConcurrentTransactionsAreIsolated(t *testing.T) {
	db := withItem(t, memdynamo.New())
	ctx := context.Background()
	for _, pk := range []string{"left", "right"} {
		if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: map[string]types.AttributeValue{"pk": s(pk), "n": n(0)}}); err != nil {
			t.Fatal(err)
		}
	}
	add := func(pk, cond string) types.TransactWriteItem {
		return types.TransactWriteItem{Update: &types.Update{TableName: aws.String(table), Key: key(pk), UpdateExpression: aws.String("SET n = n + :one"),
			ConditionExpression: aws.String(cond), ExpressionAttributeValues: map[string]types.AttributeValue{":one": n(1)}}}
	}
	const writers, each = 8, 50
	var wg sync.WaitGroup
	done := make(chan struct{})
	errs := make(chan error, writers*each+1)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				second := "attribute_exists(pk)"
				if (w+i)%2 == 1 {
					second = "attribute_not_exists(pk)" // cancels after the first applied
				}
				_, err := db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{add("left", "attribute_exists(pk)"), add("right", second)}})
				if err != nil && codes(err) == nil {
					errs <- err
				}
			}
		}()
	}
	var readers sync.WaitGroup
	readers.Add(1)
	go func() {
		defer readers.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			out, err := db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{
				table: {Keys: []map[string]types.AttributeValue{key("left"), key("right")}, ConsistentRead: aws.Bool(true)},
			}})
			if err != nil {
				errs <- err
				return
			}
			got := map[string]string{}
			for _, it := range out.Responses[table] {
				got[it["pk"].(*types.AttributeValueMemberS).Value] = it["n"].(*types.AttributeValueMemberN).Value
			}
			if got["left"] != got["right"] {
				errs <- fmt.Errorf("a reader saw left=%s right=%s: a transaction half applied", got["left"], got["right"])
				return
			}
		}
	}()
	wg.Wait()
	close(done)
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, pk := range []string{"left", "right"} {
		if got := get(t, db, pk)["n"].(*types.AttributeValueMemberN).Value; got != strconv.Itoa(writers*each/2) {
			t.Errorf("%s = %s, want %d (one per applied transaction)", pk, got, writers*each/2)
		}
	}
}
