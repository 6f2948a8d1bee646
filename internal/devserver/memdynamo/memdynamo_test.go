package memdynamo_test

import (
	"context"
	"errors"
	"reflect"
	"sort"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/truora/minidyn/aws-v2/client"

	"github.com/connectexpress/onboarding/internal/devserver/memdynamo"
)

const table = "t"

type engine interface {
	CreateTable(context.Context, *dynamodb.CreateTableInput, ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	TransactWriteItems(context.Context, *dynamodb.TransactWriteItemsInput, ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
}

func s(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }

func key(pk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"pk": s(pk)}
}

// withItem returns db holding one item {pk: "a", x, y, z}.
func withItem[E engine](t *testing.T, db E) E {
	t.Helper()
	ctx := context.Background()
	if _, err := db.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(table),
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash}},
		BillingMode:          types.BillingModePayPerRequest,
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: map[string]types.AttributeValue{
		"pk": s("a"), "x": s("1"), "y": s("2"), "z": s("3"),
	}}); err != nil {
		t.Fatal(err)
	}
	return db
}

func attributes(t *testing.T, db engine) []string {
	t.Helper()
	out, err := db.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(table), Key: key("a"), ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	return names(out.Item)
}

func names(item map[string]types.AttributeValue) []string {
	var n []string
	for k := range item {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

func TestUpdateItemRemovesWhatItsExpressionRemoves(t *testing.T) {
	for _, tc := range []struct {
		name  string
		in    dynamodb.UpdateItemInput
		after []string
	}{
		{"REMOVE alone", dynamodb.UpdateItemInput{UpdateExpression: aws.String("REMOVE x, y")}, []string{"pk", "z"}},
		{"REMOVE after SET", dynamodb.UpdateItemInput{
			UpdateExpression:          aws.String("SET w = :w REMOVE x"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":w": s("0")},
		}, []string{"pk", "w", "y", "z"}},
		{"REMOVE before SET, with placeholders and newlines as the expression package writes them", dynamodb.UpdateItemInput{
			UpdateExpression:          aws.String("REMOVE #0, #1\nSET #2 = :0\n"),
			ExpressionAttributeNames:  map[string]string{"#0": "x", "#1": "z", "#2": "w"},
			ExpressionAttributeValues: map[string]types.AttributeValue{":0": s("0")},
		}, []string{"pk", "w", "y"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := withItem(t, memdynamo.New())
			in := tc.in
			in.TableName, in.Key, in.ReturnValues = aws.String(table), key("a"), types.ReturnValueAllNew
			out, err := db.UpdateItem(context.Background(), &in)
			if err != nil {
				t.Fatal(err)
			}
			if got := attributes(t, db); !reflect.DeepEqual(got, tc.after) {
				t.Errorf("item holds %v, want %v", got, tc.after)
			}
			if got := names(out.Attributes); !reflect.DeepEqual(got, tc.after) {
				t.Errorf("ALL_NEW answered %v, want %v", got, tc.after)
			}
		})
	}
}

func TestARefusedUpdateRemovesNothing(t *testing.T) {
	db := withItem(t, memdynamo.New())
	_, err := db.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{
		TableName: aws.String(table), Key: key("a"),
		UpdateExpression:    aws.String("REMOVE x"),
		ConditionExpression: aws.String("attribute_not_exists(pk)"),
	})
	var ccf *types.ConditionalCheckFailedException
	if !errors.As(err, &ccf) {
		t.Fatalf("UpdateItem = %v, want ConditionalCheckFailed", err)
	}
	if got := attributes(t, db); !reflect.DeepEqual(got, []string{"pk", "x", "y", "z"}) {
		t.Errorf("item holds %v after a refused update, want it whole", got)
	}
}

func TestTransactionsRemoveWhatTheirUpdatesRemove(t *testing.T) {
	db := withItem(t, memdynamo.New())
	update := func(cond string) []types.TransactWriteItem {
		return []types.TransactWriteItem{
			{Update: &types.Update{TableName: aws.String(table), Key: key("a"), UpdateExpression: aws.String("SET w = :w REMOVE #x"),
				ConditionExpression:       aws.String(cond),
				ExpressionAttributeNames:  map[string]string{"#x": "x"},
				ExpressionAttributeValues: map[string]types.AttributeValue{":w": s("0")}}},
			{Put: &types.Put{TableName: aws.String(table), Item: map[string]types.AttributeValue{"pk": s("b")}}},
		}
	}
	if _, err := db.TransactWriteItems(context.Background(), &dynamodb.TransactWriteItemsInput{TransactItems: update("attribute_not_exists(pk)")}); err == nil {
		t.Fatal("a transaction whose condition fails succeeded")
	}
	if got := attributes(t, db); !reflect.DeepEqual(got, []string{"pk", "x", "y", "z"}) {
		t.Fatalf("item holds %v after a cancelled transaction, want it whole", got)
	}
	if _, err := db.TransactWriteItems(context.Background(), &dynamodb.TransactWriteItemsInput{TransactItems: update("attribute_exists(pk)")}); err != nil {
		t.Fatal(err)
	}
	if got := attributes(t, db); !reflect.DeepEqual(got, []string{"pk", "w", "y", "z"}) {
		t.Errorf("item holds %v, want x removed and w set", got)
	}
}

func TestARemovalKeepsEmptyMapsAndListsAndNulls(t *testing.T) {
	db := withItem(t, memdynamo.New())
	ctx := context.Background()
	if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: map[string]types.AttributeValue{
		"pk": s("a"), "x": s("1"), "m": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{}},
		"l": &types.AttributeValueMemberL{Value: []types.AttributeValue{}}, "n": &types.AttributeValueMemberNULL{Value: true},
	}}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(table), Key: key("a"), UpdateExpression: aws.String("REMOVE x")}); err != nil {
		t.Fatal(err)
	}
	for _, a := range []struct{ name, typ string }{{"m", "M"}, {"l", "L"}, {"n", "NULL"}} {
		// attribute_type sees what minidyn stores; its reads answer empty
		// maps and lists as NULL.
		if _, err := db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: aws.String(table), Key: key("a"), UpdateExpression: aws.String("SET #a = #a"),
			ConditionExpression:       aws.String("attribute_type(#a, :t)"),
			ExpressionAttributeNames:  map[string]string{"#a": a.name},
			ExpressionAttributeValues: map[string]types.AttributeValue{":t": s(a.typ)},
		}); err != nil {
			t.Errorf("%s after the removal: attribute_type(%s) = %v, want it kept", a.name, a.typ, err)
		}
	}
}

func TestNestedRemovalsAreRefusedNotIgnored(t *testing.T) {
	db := withItem(t, memdynamo.New())
	for _, expr := range []string{"REMOVE m.k", "REMOVE l[0]", "REMOVE #m.#k"} {
		if _, err := db.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{
			TableName: aws.String(table), Key: key("a"), UpdateExpression: aws.String(expr),
			ExpressionAttributeNames: map[string]string{"#m": "m", "#k": "k"},
		}); err == nil {
			t.Errorf("%s succeeded, want an error (not emulated)", expr)
		}
	}
}

// TestMinidynStillIgnoresRemove pins why Client exists: when an upgrade of
// minidyn deletes REMOVEd attributes itself, this fails, and the emulation
// can go.
func TestMinidynStillIgnoresRemove(t *testing.T) {
	db := withItem(t, client.NewClient())
	if _, err := db.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{
		TableName: aws.String(table), Key: key("a"), UpdateExpression: aws.String("REMOVE x"),
	}); err != nil {
		t.Fatal(err)
	}
	if got := attributes(t, db); !reflect.DeepEqual(got, []string{"pk", "x", "y", "z"}) {
		t.Fatalf("minidyn alone now leaves %v: it implements REMOVE, so memdynamo's emulation can go", got)
	}
}
