package dynamostore

import (
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/connectexpress/onboarding/shared/onboarding"
)

// UserKeyPrefix begins the key of every user's record: the stream consumer
// (shared/statusevents) and the sweep read those items only.
const UserKeyPrefix = "USER#"

// DecodeUserItem decodes a user's record item, as GetItem returns it or a
// DynamoDB stream image shows it, with the store's own decoding: the stream
// consumer judges a status change by exactly what the store reads.
// onboarding.ErrNotFound when the item is no user's record, or holds
// neither a claim nor an account.
func DecodeUserItem(item map[string]types.AttributeValue) (onboarding.UserRecord, error) {
	pk, _ := item["pk"].(*types.AttributeValueMemberS)
	if pk == nil || !strings.HasPrefix(pk.Value, UserKeyPrefix) {
		return onboarding.UserRecord{}, onboarding.ErrNotFound
	}
	return decodeUser(strings.TrimPrefix(pk.Value, UserKeyPrefix), item)
}
