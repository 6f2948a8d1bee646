package dynamostore

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/connectexpress/onboarding/shared/onboarding"
)

// encodeState splits an AccountState into the JSON document kept in "state"
// and the "capabilities" map, which capability.updated changes one key at a
// time. Deauthorization lives in its own attribute for the same reason.
func encodeState(st onboarding.AccountState) (string, types.AttributeValue, error) {
	caps := make(map[string]types.AttributeValue, len(st.Capabilities))
	for name, status := range st.Capabilities {
		caps[name] = s(status)
	}
	st.Capabilities, st.Deauthorized = nil, false
	doc, err := json.Marshal(st)
	if err != nil {
		return "", nil, err
	}
	return string(doc), &types.AttributeValueMemberM{Value: caps}, nil
}

func decodeUser(userID string, item map[string]types.AttributeValue) (onboarding.UserRecord, error) {
	u := onboarding.UserRecord{UserID: userID}
	if accountID := str(item, attrAccountID); accountID != "" {
		rec := onboarding.AccountRecord{
			UserID:           userID,
			AccountID:        accountID,
			Country:          str(item, attrCountry),
			ServiceAgreement: str(item, attrAgreement),
			FirstLinkAt:      timeOf(item, attrFirstLinkAt),
			CreatedAt:        timeOf(item, attrCreatedAt),
			UpdatedAt:        timeOf(item, attrUpdatedAt),
		}
		rec.StateVersion, _ = number(item, attrStateVersion)
		if until, _ := number(item, attrPrefillUntil); until > 0 {
			rec.PrefillLease = onboarding.Lease{ID: str(item, attrPrefillID), Until: time.UnixMilli(until)}
		}
		if doc := str(item, attrState); doc != "" {
			if err := json.Unmarshal([]byte(doc), &rec.State); err != nil {
				return u, onboarding.StorageFailed(fmt.Errorf("decode state of %s: %w", accountID, err))
			}
		}
		if m, ok := item[attrCapabilities].(*types.AttributeValueMemberM); ok && len(m.Value) > 0 {
			rec.State.Capabilities = make(map[string]string, len(m.Value))
			for name, v := range m.Value {
				if sv, ok := v.(*types.AttributeValueMemberS); ok {
					rec.State.Capabilities[name] = sv.Value
				}
			}
		}
		_, rec.State.Deauthorized = item[attrDeauthorized]
		u.Account = &rec
		return u, nil
	}
	if claimID := str(item, attrClaimID); claimID != "" {
		lease, _ := number(item, attrLeaseUntil)
		attempt, _ := number(item, attrAttempt)
		c := &onboarding.CreationClaim{
			ClaimID: claimID, LeaseUntil: time.UnixMilli(lease), CreationID: str(item, attrCreationID), Attempt: int(attempt),
		}
		if since, _ := number(item, attrAttemptSince); since > 0 {
			c.AttemptSince = time.UnixMilli(since)
		}
		if b, ok := item[attrSearch].(*types.AttributeValueMemberBOOL); ok {
			c.Search = b.Value
		}
		if doc := str(item, attrCreateParams); doc != "" && doc != "null" {
			c.Params = new(onboarding.CreateAccountParams)
			if err := json.Unmarshal([]byte(doc), c.Params); err != nil {
				return u, onboarding.StorageFailed(fmt.Errorf("decode claim params: %w", err))
			}
		}
		u.Claim = c
		return u, nil
	}
	return u, onboarding.ErrNotFound
}
