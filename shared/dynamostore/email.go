package dynamostore

import (
	"context"
	"errors"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/connectexpress/onboarding/shared/onboarding"
)

// The duplicate_email signal's index: one EMAIL#<email key> item per
// email (onboarding.EmailKey), whose users set names every user whose
// account record holds that email. The record's email and the sets move in
// one transaction, so the staff list reads who shares an email with one
// BatchGetItem per page, and no scan. (A global secondary index on the
// email would need no bookkeeping, but CloudFormation adds one index per
// stack update, and the review queue takes this release's.)
//
//	EMAIL#<email key>    users: string set of user ids

const (
	attrEmail = "email" // on USER#: the email last given to Stripe
	attrUsers = "users" // on EMAIL#: a string set
	// On USER#: the business_profile name and url last given to Stripe,
	// for staff.
	attrBusinessName = "business_name"
	attrBusinessURL  = "business_url"
)

func emailPK(email string) string { return "EMAIL#" + onboarding.EmailKey(email) }

// emailItem is an EMAIL# item as read.
type emailItem struct {
	PK    string   `dynamodbav:"pk"`
	Users []string `dynamodbav:"users,stringset,omitempty"`
}

// emailSetUpdate adds userID to (op "ADD") or removes it from ("DELETE")
// an email's set. An emptied set leaves the item with its key only.
func (st *Store) emailSetUpdate(email, op, userID string) *types.Update {
	return &types.Update{
		TableName: &st.table, Key: keyOf(emailPK(email)),
		UpdateExpression:          aws.String(op + " #users :user"),
		ExpressionAttributeNames:  map[string]string{"#users": attrUsers},
		ExpressionAttributeValues: map[string]types.AttributeValue{":user": &types.AttributeValueMemberSS{Value: []string{userID}}},
	}
}

// prefillAttempts bounds how often RecordPrefill tries again when the
// record's email changed between its read and its write.
const prefillAttempts = 4

// RecordPrefill stores the account's email, business name and URL as the
// prefill gave them (empty ones leave what is stored). A new email moves
// the user from the old email's set to the new one's in the same
// transaction, conditioned on the email read.
func (st *Store) RecordPrefill(ctx context.Context, userID string, p onboarding.Prefill) error {
	for attempt := 1; attempt <= prefillAttempts; attempt++ {
		it, err := st.readUser(ctx, userID)
		switch {
		case err != nil:
			return err
		case it.AccountID == "":
			return onboarding.ErrNotFound
		}
		var update expression.UpdateBuilder
		changed := false
		for attr, v := range map[string][2]string{
			attrEmail: {it.Email, p.Email}, attrBusinessName: {it.BusinessName, p.BusinessProfile.Name}, attrBusinessURL: {it.BusinessURL, p.BusinessProfile.URL},
		} {
			if v[1] != "" && v[1] != v[0] {
				update, changed = update.Set(name(attr), value(v[1])), true
			}
		}
		if !changed {
			return nil
		}
		cond := exists(attrAccountID).And(missing(attrEmail))
		if it.Email != "" {
			cond = exists(attrAccountID).And(name(attrEmail).Equal(value(it.Email)))
		}
		record, err := st.transactUpdate(userPK(userID), update, cond)
		if err != nil {
			return err
		}
		items := []types.TransactWriteItem{{Update: record}}
		if p.Email != "" && (it.Email == "" || onboarding.EmailKey(it.Email) != onboarding.EmailKey(p.Email)) {
			items = append(items, types.TransactWriteItem{Update: st.emailSetUpdate(p.Email, "ADD", userID)})
			if it.Email != "" {
				items = append(items, types.TransactWriteItem{Update: st.emailSetUpdate(it.Email, "DELETE", userID)})
			}
		}
		_, err = st.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
		var tce *types.TransactionCanceledException
		if !errors.As(err, &tce) || !onlyConditionFailures(tce) {
			return conditional(err)
		}
		// Another update of the email came between: read it again.
	}
	return onboarding.StorageFailed(errors.New("dynamostore: the account's email changed under each attempt to record it"))
}

// sharingEmail returns, per email key of emails, the users whose accounts
// hold it, from one BatchGetItem (eventually consistent, as the list).
func (st *Store) sharingEmail(ctx context.Context, emails []string) (map[string][]string, error) {
	var pks []string
	for _, e := range emails {
		if pk := emailPK(e); !slices.Contains(pks, pk) {
			pks = append(pks, pk)
		}
	}
	out := map[string][]string{}
	if len(pks) == 0 {
		return out, nil
	}
	items, err := st.batchRead(ctx, pks, false)
	if err != nil {
		return nil, err
	}
	for _, item := range items {
		var e emailItem
		if err := attributevalue.UnmarshalMap(item, &e); err != nil {
			return nil, onboarding.StorageFailed(err)
		}
		out[e.PK] = e.Users
	}
	return out, nil
}

// others is users without userID.
func others(users []string, userID string) []string {
	return slices.DeleteFunc(slices.Clone(users), func(u string) bool { return u == userID })
}

// withSignals adds the duplicate_email signal to the summaries whose email
// another user's account holds too.
func (st *Store) withSignals(ctx context.Context, accounts []onboarding.AccountSummary) error {
	var emails []string
	for _, a := range accounts {
		if a.Email != nil {
			emails = append(emails, *a.Email)
		}
	}
	sharing, err := st.sharingEmail(ctx, emails)
	if err != nil {
		return err
	}
	for i, a := range accounts {
		if a.Email == nil {
			continue
		}
		if o := others(sharing[emailPK(*a.Email)], a.UserID); len(o) > 0 {
			accounts[i].Signals = append([]onboarding.Signal{onboarding.DuplicateEmail(o, false)}, a.Signals...)
		}
	}
	return nil
}

// emailSharedWith is the other users whose accounts hold rec's email, read
// consistently (the staff detail reads its record so too).
func (st *Store) emailSharedWith(ctx context.Context, rec onboarding.AccountRecord) ([]string, error) {
	if rec.Email == "" {
		return nil, nil
	}
	item, err := st.getItem(ctx, emailPK(rec.Email))
	if err != nil || item == nil {
		return nil, err
	}
	var e emailItem
	if err := attributevalue.UnmarshalMap(item, &e); err != nil {
		return nil, onboarding.StorageFailed(err)
	}
	return others(e.Users, rec.UserID), nil
}
