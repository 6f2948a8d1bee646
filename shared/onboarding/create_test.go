package onboarding_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/connectexpress/onboarding/shared/onboarding"
)

// emptyStore has no user and accepts every claim; tests override fields.
func emptyStore() *storeFake {
	return &storeFake{
		GetUserFn: func(context.Context, string) (onboarding.UserRecord, error) {
			return onboarding.UserRecord{}, onboarding.ErrNotFound
		},
		ClaimCreationFn:    func(context.Context, string, onboarding.CreationClaim, time.Time) error { return nil },
		CompleteCreationFn: func(context.Context, onboarding.AccountRecord, string) error { return nil },
		ReleaseClaimFn:     func(context.Context, string, onboarding.CreationClaim) error { return nil },
		TakeSlotFn:         allowSlot,
	}
}

// capturingConnect records the params of CreateAccount and answers acct_new.
func capturingConnect(got *onboarding.CreateAccountParams, key *string) *connectFake {
	return &connectFake{CreateAccountFn: func(_ context.Context, p onboarding.CreateAccountParams, k string) (onboarding.CreatedAccount, error) {
		*got, *key = p, k
		return onboarding.CreatedAccount{ID: "acct_new", Country: p.Country}, nil
	}}
}

func TestCreateAccountRejectsBadInputBeforeStripe(t *testing.T) {
	long := strings.Repeat("x", 501)
	tests := []struct {
		name      string
		req       onboarding.CreateAccountRequest
		wantCode  string
		wantParam string
	}{
		{"unknown country code", onboarding.CreateAccountRequest{Country: ptr("XX")}, "validation_error", "country"},
		{"country not two letters", onboarding.CreateAccountRequest{Country: ptr("USA")}, "validation_error", "country"},
		{"empty country", onboarding.CreateAccountRequest{Country: ptr("")}, "validation_error", "country"},
		{"letters that only upper-case to a code", onboarding.CreateAccountRequest{Country: ptr("u\u017f")}, "validation_error", "country"},
		{"country with white space", onboarding.CreateAccountRequest{Country: ptr(" US")}, "validation_error", "country"},
		{"bad email", onboarding.CreateAccountRequest{Email: ptr("not-an-email")}, "validation_error", "email"},
		{"email with display name", onboarding.CreateAccountRequest{Email: ptr("Al <al@example.com>")}, "validation_error", "email"},
		{"business type outside the four", onboarding.CreateAccountRequest{BusinessType: ptr("sole_trader")}, "validation_error", "business_type"},
		{"http profile url", onboarding.CreateAccountRequest{BusinessProfile: &onboarding.BusinessProfileRequest{URL: ptr("http://shop.example")}}, "validation_error", "business_profile.url"},
		{"malformed profile url", onboarding.CreateAccountRequest{BusinessProfile: &onboarding.BusinessProfileRequest{URL: ptr("https://")}}, "validation_error", "business_profile.url"},
		{"javascript url", onboarding.CreateAccountRequest{BusinessProfile: &onboarding.BusinessProfileRequest{URL: ptr("javascript:alert(1)")}}, "validation_error", "business_profile.url"},
		{"url with credentials", onboarding.CreateAccountRequest{BusinessProfile: &onboarding.BusinessProfileRequest{URL: ptr("https://u:p@shop.example")}}, "validation_error", "business_profile.url"},
		{"too long description", onboarding.CreateAccountRequest{BusinessProfile: &onboarding.BusinessProfileRequest{ProductDescription: &long}}, "validation_error", "business_profile.product_description"},
		{"mcc not four digits", onboarding.CreateAccountRequest{BusinessProfile: &onboarding.BusinessProfileRequest{MCC: ptr("57a4")}}, "validation_error", "business_profile.mcc"},
		{"profile url on an IPv4 literal", onboarding.CreateAccountRequest{BusinessProfile: &onboarding.BusinessProfileRequest{URL: ptr("https://192.168.0.10/shop")}}, "validation_error", "business_profile.url"},
		{"profile url on an IPv6 literal", onboarding.CreateAccountRequest{BusinessProfile: &onboarding.BusinessProfileRequest{URL: ptr("https://[2001:db8::1]/shop")}}, "validation_error", "business_profile.url"},
		{"profile url on localhost with a trailing dot", onboarding.CreateAccountRequest{BusinessProfile: &onboarding.BusinessProfileRequest{URL: ptr("https://localhost./shop")}}, "validation_error", "business_profile.url"},
		{"profile url under .localhost", onboarding.CreateAccountRequest{BusinessProfile: &onboarding.BusinessProfileRequest{URL: ptr("https://shop.localhost")}}, "validation_error", "business_profile.url"},
		{"capability not offered", onboarding.CreateAccountRequest{Capabilities: &[]string{"crypto_payments"}}, "validation_error", "capabilities"},
		{"card payments without transfers", onboarding.CreateAccountRequest{Capabilities: &[]string{"card_payments"}}, "validation_error", "capabilities"},
		{"transfers without card payments under the full agreement", onboarding.CreateAccountRequest{Capabilities: &[]string{"transfers"}}, "validation_error", "capabilities"},
		{"transfers without card payments, full agreement named", onboarding.CreateAccountRequest{Country: ptr("GB"), ServiceAgreement: ptr("full"), Capabilities: &[]string{"transfers"}}, "validation_error", "capabilities"},
		{"service agreement unknown", onboarding.CreateAccountRequest{ServiceAgreement: ptr("partial")}, "validation_error", "service_agreement"},
		{"recipient with card payments", onboarding.CreateAccountRequest{Country: ptr("GB"), ServiceAgreement: ptr("recipient"), Capabilities: &[]string{"card_payments", "transfers"}}, "validation_error", "capabilities"},
		{"full agreement in a recipient-only country", onboarding.CreateAccountRequest{Country: ptr("IL"), ServiceAgreement: ptr("full")}, "validation_error", "service_agreement"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			connect := &connectFake{CreateAccountFn: func(context.Context, onboarding.CreateAccountParams, string) (onboarding.CreatedAccount, error) {
				t.Fatal("Stripe must not be called for bad input")
				return onboarding.CreatedAccount{}, nil
			}}
			_, _, err := newService(emptyStore(), connect, testPolicy()).CreateAccount(context.Background(), onboarding.Caller{UserID: "u1"}, tt.req)
			e, ok := onboarding.AsError(err)
			if !ok || e.Kind != onboarding.KindInvalid || e.Code != tt.wantCode || e.Param != tt.wantParam {
				t.Fatalf("err = %v, want %s on %s", err, tt.wantCode, tt.wantParam)
			}
		})
	}
}

func TestCountryOutsideAllowedListIsNotEnabled(t *testing.T) {
	p := testPolicy()
	p.AllowedCountries = map[string]bool{"US": true, "CA": true}
	_, _, err := newService(emptyStore(), &connectFake{}, p).CreateAccount(context.Background(), onboarding.Caller{UserID: "u1"}, onboarding.CreateAccountRequest{Country: ptr("FR")})
	if e, ok := onboarding.AsError(err); !ok || e.Code != "country_not_enabled" || e.Param != "country" {
		t.Fatalf("err = %v, want country_not_enabled on country", err)
	}
}

func TestCreateAccountParamsFollowThePlatformPolicy(t *testing.T) {
	tests := []struct {
		name   string
		policy func(*onboarding.Policy)
		caller onboarding.Caller
		req    onboarding.CreateAccountRequest
		check  func(t *testing.T, p onboarding.CreateAccountParams)
	}{
		{"same country defaults to full with the default capabilities", nil, onboarding.Caller{UserID: "u1"}, onboarding.CreateAccountRequest{},
			func(t *testing.T, p onboarding.CreateAccountParams) {
				want(t, p.Country, "US")
				want(t, p.ServiceAgreement, "full")
				want(t, strings.Join(p.Capabilities, ","), "card_payments,transfers")
				want(t, p.PlatformUserID, "u1")
			}},
		{"cross-border follows CROSS_BORDER_SERVICE_AGREEMENT=recipient with transfers only",
			func(p *onboarding.Policy) { p.CrossBorderServiceAgreement = "recipient" }, onboarding.Caller{UserID: "u1"}, onboarding.CreateAccountRequest{Country: ptr("gb")},
			func(t *testing.T, p onboarding.CreateAccountParams) {
				want(t, p.Country, "GB")
				want(t, p.ServiceAgreement, "recipient")
				want(t, strings.Join(p.Capabilities, ","), "transfers")
			}},
		{"cross-border defaults to full", nil, onboarding.Caller{UserID: "u1"}, onboarding.CreateAccountRequest{Country: ptr("FR")},
			func(t *testing.T, p onboarding.CreateAccountParams) { want(t, p.ServiceAgreement, "full") }},
		{"explicit recipient with transfers", nil, onboarding.Caller{UserID: "u1"},
			onboarding.CreateAccountRequest{Country: ptr("GB"), ServiceAgreement: ptr("recipient"), Capabilities: &[]string{"transfers"}},
			func(t *testing.T, p onboarding.CreateAccountParams) {
				want(t, p.ServiceAgreement, "recipient")
				want(t, strings.Join(p.Capabilities, ","), "transfers")
			}},
		{"recipient-only country becomes recipient", nil, onboarding.Caller{UserID: "u1"}, onboarding.CreateAccountRequest{Country: ptr("IL")},
			func(t *testing.T, p onboarding.CreateAccountParams) { want(t, p.ServiceAgreement, "recipient") }},
		{"empty default capabilities send none", func(p *onboarding.Policy) { p.DefaultCapabilities = nil }, onboarding.Caller{UserID: "u1"}, onboarding.CreateAccountRequest{},
			func(t *testing.T, p onboarding.CreateAccountParams) {
				if len(p.Capabilities) != 0 {
					t.Errorf("capabilities = %v, want none", p.Capabilities)
				}
			}},
		{"duplicate capabilities are sent once", nil, onboarding.Caller{UserID: "u1"}, onboarding.CreateAccountRequest{Capabilities: &[]string{"transfers", "card_payments", "transfers"}},
			func(t *testing.T, p onboarding.CreateAccountParams) {
				want(t, strings.Join(p.Capabilities, ","), "transfers,card_payments")
			}},
		{"transfers only under the full agreement once Stripe approved the platform (ALLOW_TRANSFERS_ONLY)",
			func(p *onboarding.Policy) { p.AllowTransfersOnly = true }, onboarding.Caller{UserID: "u1"}, onboarding.CreateAccountRequest{Capabilities: &[]string{"transfers"}},
			func(t *testing.T, p onboarding.CreateAccountParams) {
				want(t, p.ServiceAgreement, "full")
				want(t, strings.Join(p.Capabilities, ","), "transfers")
			}},
		{"transfers-only defaults once Stripe approved the platform",
			func(p *onboarding.Policy) { p.AllowTransfersOnly, p.DefaultCapabilities = true, []string{"transfers"} }, onboarding.Caller{UserID: "u1"}, onboarding.CreateAccountRequest{},
			func(t *testing.T, p onboarding.CreateAccountParams) {
				want(t, strings.Join(p.Capabilities, ","), "transfers")
			}},
		{"a verified token email prefills the account", nil, onboarding.Caller{UserID: "u1", Email: "seller@example.com", EmailVerified: true}, onboarding.CreateAccountRequest{},
			func(t *testing.T, p onboarding.CreateAccountParams) { want(t, p.Email, "seller@example.com") }},
		{"an unverified token email prefills nothing", nil, onboarding.Caller{UserID: "u1", Email: "victim@example.com"}, onboarding.CreateAccountRequest{},
			func(t *testing.T, p onboarding.CreateAccountParams) { want(t, p.Email, "") }},
		{"an unverified token email prefills the account when the issuer never verifies (EMAIL_REQUIRES_VERIFIED=false)",
			func(p *onboarding.Policy) { p.PrefillUnverifiedEmail = true }, onboarding.Caller{UserID: "u1", Email: "seller@example.com"}, onboarding.CreateAccountRequest{},
			func(t *testing.T, p onboarding.CreateAccountParams) { want(t, p.Email, "seller@example.com") }},
		{"request email wins over the token's", nil, onboarding.Caller{UserID: "u1", Email: "seller@example.com", EmailVerified: true}, onboarding.CreateAccountRequest{Email: ptr("shop@example.com")},
			func(t *testing.T, p onboarding.CreateAccountParams) { want(t, p.Email, "shop@example.com") }},
		{"profile URL template escapes the user id",
			func(p *onboarding.Policy) { p.ProfileURLTemplate = "https://market.example/sellers/{user_id}" }, onboarding.Caller{UserID: "auth0|a b/c?"}, onboarding.CreateAccountRequest{},
			func(t *testing.T, p onboarding.CreateAccountParams) {
				want(t, p.BusinessProfile.URL, "https://market.example/sellers/auth0%7Ca%20b%2Fc%3F")
			}},
		{"request URL overrides the template",
			func(p *onboarding.Policy) { p.ProfileURLTemplate = "https://market.example/sellers/{user_id}" }, onboarding.Caller{UserID: "u1"},
			onboarding.CreateAccountRequest{BusinessProfile: &onboarding.BusinessProfileRequest{URL: ptr("https://own.example")}},
			func(t *testing.T, p onboarding.CreateAccountParams) {
				want(t, p.BusinessProfile.URL, "https://own.example")
			}},
		{"product description fallback without any URL",
			func(p *onboarding.Policy) { p.ProductDescriptionDefault = "Sells handmade goods on Market" }, onboarding.Caller{UserID: "u1"}, onboarding.CreateAccountRequest{},
			func(t *testing.T, p onboarding.CreateAccountParams) {
				want(t, p.BusinessProfile.ProductDescription, "Sells handmade goods on Market")
				want(t, p.BusinessProfile.URL, "")
			}},
		{"no product description fallback when a URL is given",
			func(p *onboarding.Policy) { p.ProductDescriptionDefault = "Sells handmade goods" }, onboarding.Caller{UserID: "u1"},
			onboarding.CreateAccountRequest{BusinessProfile: &onboarding.BusinessProfileRequest{URL: ptr("https://own.example")}},
			func(t *testing.T, p onboarding.CreateAccountParams) {
				want(t, p.BusinessProfile.ProductDescription, "")
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := testPolicy()
			if tt.policy != nil {
				tt.policy(&p)
			}
			var got onboarding.CreateAccountParams
			var key string
			_, created, err := newService(emptyStore(), capturingConnect(&got, &key), p).CreateAccount(context.Background(), tt.caller, tt.req)
			if err != nil || !created {
				t.Fatalf("CreateAccount: created=%v err=%v", created, err)
			}
			tt.check(t, got)
		})
	}
}

func want(t *testing.T, got, wantValue string) {
	t.Helper()
	if got != wantValue {
		t.Errorf("got %q, want %q", got, wantValue)
	}
}

func TestSecondCreateReturnsTheStoredAccountWithoutStripe(t *testing.T) {
	store := emptyStore()
	store.GetUserFn = func(context.Context, string) (onboarding.UserRecord, error) {
		return onboarding.UserRecord{UserID: "u1", Account: &onboarding.AccountRecord{AccountID: "acct_1", Country: "US"}}, nil
	}
	acct, created, err := newService(store, &connectFake{}, testPolicy()).CreateAccount(context.Background(), onboarding.Caller{UserID: "u1"}, onboarding.CreateAccountRequest{})
	if err != nil || created || acct.ID != "acct_1" {
		t.Fatalf("got %+v created=%v err=%v, want acct_1 not created", acct, created, err)
	}
}

func TestLiveClaimAnswersCreationInProgress(t *testing.T) {
	store := emptyStore()
	store.GetUserFn = func(context.Context, string) (onboarding.UserRecord, error) {
		return onboarding.UserRecord{UserID: "u1", Claim: &onboarding.CreationClaim{ClaimID: "c", LeaseUntil: testNow.Add(time.Second)}}, nil
	}
	_, _, err := newService(store, &connectFake{}, testPolicy()).CreateAccount(context.Background(), onboarding.Caller{UserID: "u1"}, onboarding.CreateAccountRequest{})
	if !errors.Is(err, onboarding.ErrCreationInProgress) {
		t.Fatalf("err = %v, want creation_in_progress", err)
	}
}

// storeWhereAnotherWriterStores finds nothing on the first read and the
// account another writer stored on every later one.
func storeWhereAnotherWriterStores(accountID string) *storeFake {
	store := emptyStore()
	calls := 0
	store.GetUserFn = func(context.Context, string) (onboarding.UserRecord, error) {
		calls++
		if calls == 1 {
			return onboarding.UserRecord{}, onboarding.ErrNotFound
		}
		return onboarding.UserRecord{UserID: "u1", Account: &onboarding.AccountRecord{AccountID: accountID}}, nil
	}
	return store
}

func TestLostClaimRaceReturnsTheWinnersAccount(t *testing.T) {
	store := storeWhereAnotherWriterStores("acct_winner")
	store.ClaimCreationFn = func(context.Context, string, onboarding.CreationClaim, time.Time) error {
		return onboarding.ErrConflict
	}
	acct, created, err := newService(store, &connectFake{}, testPolicy()).CreateAccount(context.Background(), onboarding.Caller{UserID: "u1"}, onboarding.CreateAccountRequest{})
	if err != nil || created || acct.ID != "acct_winner" {
		t.Fatalf("got %+v created=%v err=%v", acct, created, err)
	}
}

func TestExpiredClaimReplaysTheSameParamsAndKey(t *testing.T) {
	earlier := onboarding.CreateAccountParams{Country: "CA", ServiceAgreement: "full", PlatformUserID: "u1"}
	store := emptyStore()
	store.GetUserFn = func(context.Context, string) (onboarding.UserRecord, error) {
		return onboarding.UserRecord{UserID: "u1", Claim: &onboarding.CreationClaim{
			ClaimID: "old", LeaseUntil: testNow.Add(-time.Second), Attempt: 2, Params: &earlier,
		}}, nil
	}
	var got onboarding.CreateAccountParams
	var key string
	svc := newService(store, capturingConnect(&got, &key), testPolicy())
	if _, _, err := svc.CreateAccount(context.Background(), onboarding.Caller{UserID: "u1"}, onboarding.CreateAccountRequest{Country: ptr("FR")}); err != nil {
		t.Fatal(err)
	}
	if got.Country != "CA" {
		t.Errorf("replayed country %q, want the earlier attempt's CA: Stripe refuses a key reused with other params", got.Country)
	}
	if !strings.HasSuffix(key, "-2") {
		t.Errorf("idempotency key %q does not carry attempt 2", key)
	}
	var fresh string
	svc = newService(emptyStore(), capturingConnect(&got, &fresh), testPolicy())
	_, _, _ = svc.CreateAccount(context.Background(), onboarding.Caller{UserID: "u1"}, onboarding.CreateAccountRequest{})
	if strings.TrimSuffix(key, "-2") != strings.TrimSuffix(fresh, "-0") || strings.Contains(key, "u1") {
		t.Errorf("keys %q and %q must derive from the user (hashed), differing only by attempt", key, fresh)
	}
}

func TestStripeFailureReleasesTheClaim(t *testing.T) {
	params := onboarding.CreateAccountParams{Country: "US", ServiceAgreement: "full", PlatformUserID: "u1", CreationID: "cr1"}
	tests := []struct {
		name        string
		stripeErr   error
		wantAttempt int
		wantParams  bool
		wantSearch  bool
		wantErr     error
	}{
		{"refused params: nothing was created, a new key may send new ones", onboarding.ProviderRejected("business_profile.url", "Not a valid URL", nil), 3, false, false, nil},
		{"no answer: outcome unknown, replay the same key and params", onboarding.ErrStripeUnavailable, 2, true, false, onboarding.ErrStripeUnavailable},
		{"saved failure: keep the params, look for an account before a new key", onboarding.StripeKeySpent(errors.New("500")), 2, true, true, onboarding.ErrStripeUnavailable},
		{"unexpected error: keep params", errors.New("boom"), 2, true, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := emptyStore()
			store.GetUserFn = func(context.Context, string) (onboarding.UserRecord, error) {
				p := params
				return onboarding.UserRecord{UserID: "u1", Claim: &onboarding.CreationClaim{
					ClaimID: "old", LeaseUntil: testNow.Add(-time.Second), CreationID: "cr1", Attempt: 2, AttemptSince: testNow.Add(-time.Hour), Params: &p,
				}}, nil
			}
			var released *onboarding.CreationClaim
			store.ReleaseClaimFn = func(_ context.Context, _ string, next onboarding.CreationClaim) error {
				released = &next
				return nil
			}
			store.CompleteCreationFn = func(context.Context, onboarding.AccountRecord, string) error {
				t.Fatal("nothing may be stored after a failed create")
				return nil
			}
			connect := &connectFake{CreateAccountFn: func(context.Context, onboarding.CreateAccountParams, string) (onboarding.CreatedAccount, error) {
				return onboarding.CreatedAccount{}, tt.stripeErr
			}}
			_, _, err := newService(store, connect, testPolicy()).CreateAccount(context.Background(), onboarding.Caller{UserID: "u1"}, onboarding.CreateAccountRequest{})
			if err == nil || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
				t.Fatalf("err = %v", err)
			}
			if released == nil || released.Attempt != tt.wantAttempt || (released.Params != nil) != tt.wantParams || released.Search != tt.wantSearch || released.CreationID != "cr1" {
				t.Fatalf("released %+v, want attempt %d, params kept %v, search %v, the same creation id", released, tt.wantAttempt, tt.wantParams, tt.wantSearch)
			}
		})
	}
}

// searchingClaim is a user whose attempt 4 answered a saved failure.
func searchingClaim(params *onboarding.CreateAccountParams) *storeFake {
	store := emptyStore()
	store.GetUserFn = func(context.Context, string) (onboarding.UserRecord, error) {
		return onboarding.UserRecord{UserID: "u1", Claim: &onboarding.CreationClaim{
			ClaimID: "old", LeaseUntil: testNow.Add(-time.Second), CreationID: "cr9", Attempt: 4, Search: true,
			AttemptSince: testNow.Add(-10 * time.Minute), Params: params,
		}}, nil
	}
	return store
}

func TestAfterASavedFailureAnAccountTheAttemptMadeIsAdopted(t *testing.T) {
	params := &onboarding.CreateAccountParams{Country: "US", ServiceAgreement: "full", PlatformUserID: "u1", CreationID: "cr9"}
	store := searchingClaim(params)
	var stored onboarding.AccountRecord
	store.CompleteCreationFn = func(_ context.Context, rec onboarding.AccountRecord, _ string) error { stored = rec; return nil }
	var asked onboarding.CreatedAccountQuery
	connect := &connectFake{
		FindCreatedFn: func(_ context.Context, q onboarding.CreatedAccountQuery) (onboarding.CreatedAccount, bool, error) {
			asked = q
			return onboarding.CreatedAccount{ID: "acct_made", Country: "US"}, true, nil
		},
		CreateAccountFn: func(context.Context, onboarding.CreateAccountParams, string) (onboarding.CreatedAccount, error) {
			t.Fatal("a found account must not be created again")
			return onboarding.CreatedAccount{}, nil
		},
	}
	acct, created, err := newService(store, connect, testPolicy()).CreateAccount(context.Background(), onboarding.Caller{UserID: "u1"}, onboarding.CreateAccountRequest{})
	if err != nil || !created || acct.ID != "acct_made" || stored.AccountID != "acct_made" {
		t.Fatalf("got %+v created=%v err=%v stored %+v", acct, created, err, stored)
	}
	if asked.UserID != "u1" || asked.CreationID != "cr9" || !asked.Since.Before(testNow.Add(-10*time.Minute)) {
		t.Fatalf("searched %+v: want u1's creation cr9, from before the attempt began (clock skew)", asked)
	}
}

func TestAfterASavedFailureWithNothingMadeANewKeyReplaysTheParams(t *testing.T) {
	params := &onboarding.CreateAccountParams{Country: "CA", ServiceAgreement: "full", PlatformUserID: "u1", CreationID: "cr9"}
	store := searchingClaim(params)
	var got onboarding.CreateAccountParams
	var key string
	connect := capturingConnect(&got, &key)
	connect.FindCreatedFn = func(context.Context, onboarding.CreatedAccountQuery) (onboarding.CreatedAccount, bool, error) {
		return onboarding.CreatedAccount{}, false, nil
	}
	if _, _, err := newService(store, connect, testPolicy()).CreateAccount(context.Background(), onboarding.Caller{UserID: "u1"}, onboarding.CreateAccountRequest{Country: ptr("FR")}); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(key, "-5") || got.Country != "CA" || got.CreationID != "cr9" {
		t.Fatalf("key %q params %+v: want attempt 5 with the stored params and creation id", key, got)
	}
}

func TestAFailedSearchKeepsTheUserSearching(t *testing.T) {
	store := searchingClaim(&onboarding.CreateAccountParams{Country: "US", PlatformUserID: "u1", CreationID: "cr9"})
	var released onboarding.CreationClaim
	store.ReleaseClaimFn = func(_ context.Context, _ string, next onboarding.CreationClaim) error { released = next; return nil }
	connect := &connectFake{FindCreatedFn: func(context.Context, onboarding.CreatedAccountQuery) (onboarding.CreatedAccount, bool, error) {
		return onboarding.CreatedAccount{}, false, onboarding.ErrStripeUnavailable
	}}
	_, _, err := newService(store, connect, testPolicy()).CreateAccount(context.Background(), onboarding.Caller{UserID: "u1"}, onboarding.CreateAccountRequest{})
	if !errors.Is(err, onboarding.ErrStripeUnavailable) || !released.Search || released.Attempt != 4 {
		t.Fatalf("err %v, released %+v: want 502 and the same attempt still to search", err, released)
	}
}

func TestEveryCreationCarriesItsClaimsCreationID(t *testing.T) {
	var claimed onboarding.CreationClaim
	store := emptyStore()
	store.ClaimCreationFn = func(_ context.Context, _ string, c onboarding.CreationClaim, _ time.Time) error {
		claimed = c
		return nil
	}
	var got onboarding.CreateAccountParams
	var key string
	if _, _, err := newService(store, capturingConnect(&got, &key), testPolicy()).CreateAccount(context.Background(), onboarding.Caller{UserID: "u1"}, onboarding.CreateAccountRequest{}); err != nil {
		t.Fatal(err)
	}
	if len(claimed.CreationID) < 16 || got.CreationID != claimed.CreationID || !claimed.AttemptSince.Equal(testNow) {
		t.Fatalf("claim %+v sent %q: want an unguessable creation id, sent as the claim holds it", claimed, got.CreationID)
	}
	// After a refusal the claim's creation id stays, with new params.
	store = emptyStore()
	store.GetUserFn = func(context.Context, string) (onboarding.UserRecord, error) {
		return onboarding.UserRecord{UserID: "u1", Claim: &onboarding.CreationClaim{ClaimID: "old", CreationID: "kept", Attempt: 1}}, nil
	}
	if _, _, err := newService(store, capturingConnect(&got, &key), testPolicy()).CreateAccount(context.Background(), onboarding.Caller{UserID: "u1"}, onboarding.CreateAccountRequest{}); err != nil {
		t.Fatal(err)
	}
	if got.CreationID != "kept" {
		t.Fatalf("creation id %q after a refused attempt, want the claim's", got.CreationID)
	}
}

func TestCompletionLostToWebhookReturnsStoredAccount(t *testing.T) {
	store := storeWhereAnotherWriterStores("acct_new")
	store.CompleteCreationFn = func(context.Context, onboarding.AccountRecord, string) error { return onboarding.ErrConflict }
	var got onboarding.CreateAccountParams
	var key string
	acct, _, err := newService(store, capturingConnect(&got, &key), testPolicy()).CreateAccount(context.Background(), onboarding.Caller{UserID: "u1"}, onboarding.CreateAccountRequest{})
	if err != nil || acct.ID != "acct_new" {
		t.Fatalf("got %+v, %v", acct, err)
	}
}

func TestUpdateAccountUntilTheFirstLink(t *testing.T) {
	rec := onboarding.AccountRecord{UserID: "u1", AccountID: "acct_1"}
	tests := []struct {
		name       string
		firstLink  time.Time
		req        onboarding.UpdateAccountRequest
		wantCode   string
		wantStripe bool
	}{
		{"before the first link updates Stripe", time.Time{}, onboarding.UpdateAccountRequest{Email: ptr("new@example.com")}, "", true},
		{"after the first link is kyc_locked", testNow, onboarding.UpdateAccountRequest{Email: ptr("new@example.com")}, "kyc_locked", false},
		{"country cannot change", time.Time{}, onboarding.UpdateAccountRequest{Country: ptr("CA")}, "validation_error", false},
		{"service agreement cannot change", time.Time{}, onboarding.UpdateAccountRequest{ServiceAgreement: ptr("recipient")}, "validation_error", false},
		{"empty update is refused", time.Time{}, onboarding.UpdateAccountRequest{}, "validation_error", false},
		{"bad field is refused", time.Time{}, onboarding.UpdateAccountRequest{BusinessType: ptr("llc")}, "validation_error", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rec
			r.FirstLinkAt = tt.firstLink
			var leased, ended onboarding.Lease
			var recorded []string
			store := &storeFake{
				GetUserFn: func(context.Context, string) (onboarding.UserRecord, error) {
					return onboarding.UserRecord{UserID: "u1", Account: &r}, nil
				},
				BeginPrefillFn: func(_ context.Context, _ string, _ time.Time, lease onboarding.Lease) (onboarding.AccountRecord, bool, error) {
					leased = lease
					return r, true, nil
				},
				EndPrefillFn: func(_ context.Context, _ string, lease onboarding.Lease) error { ended = lease; return nil },
				TakeSlotFn:   allowSlot,
				RecordPrefillFn: func(_ context.Context, _ string, p onboarding.Prefill) error {
					recorded = append(recorded, p.Email)
					return nil
				},
			}
			called := false
			connect := &connectFake{UpdateAccountFn: func(ctx context.Context, id string, p onboarding.Prefill) error {
				called = true
				if id != "acct_1" || p.Email != "new@example.com" {
					t.Errorf("update %s %+v", id, p)
				}
				if d, ok := ctx.Deadline(); !ok || d.After(leased.Until) {
					t.Errorf("the update may outlive its lease: deadline %v, lease until %v", d, leased)
				}
				return nil
			}}
			_, err := newService(store, connect, testPolicy()).UpdateAccount(context.Background(), onboarding.Caller{UserID: "u1"}, tt.req)
			if tt.wantCode == "" && err != nil {
				t.Fatal(err)
			}
			if tt.wantCode != "" {
				if e, ok := onboarding.AsError(err); !ok || e.Code != tt.wantCode {
					t.Fatalf("err = %v, want %s", err, tt.wantCode)
				}
			}
			if called != tt.wantStripe {
				t.Fatalf("Stripe called = %v, want %v", called, tt.wantStripe)
			}
			if called && (leased.ID == "" || ended != leased) {
				t.Fatalf("lease %v ended %v: the update must hold the prefill lease and end it", leased, ended)
			}
			// The email Stripe accepted is the one duplicate_email compares.
			if want := tt.wantStripe && tt.req.Email != nil; want != slices.Equal(recorded, []string{"new@example.com"}) {
				t.Errorf("emails recorded %v; want the new one only when Stripe took it", recorded)
			}
		})
	}
}

// A prefill Stripe refused is not recorded, and one Stripe took but the
// store could not record fails the update (the caller retries), so that
// duplicate_email never compares an email Stripe does not have.
func TestUpdateAccountRecordsThePrefillStripeTook(t *testing.T) {
	rec := onboarding.AccountRecord{UserID: "u1", AccountID: "acct_1"}
	storeDown := onboarding.StorageFailed(errors.New("throttled"))
	tests := []struct {
		name                  string
		stripeErr, recordErr  error
		wantRecorded, wantErr bool
	}{
		{"Stripe took it: recorded", nil, nil, true, false},
		{"Stripe refused it: not recorded", &onboarding.Error{Kind: onboarding.KindInvalid, Code: "validation_error", Message: "bad email"}, nil, false, true},
		{"the store could not record it: the update fails", nil, storeDown, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recorded := false
			store := &storeFake{
				GetUserFn: func(context.Context, string) (onboarding.UserRecord, error) {
					return onboarding.UserRecord{UserID: "u1", Account: &rec}, nil
				},
				BeginPrefillFn: func(context.Context, string, time.Time, onboarding.Lease) (onboarding.AccountRecord, bool, error) {
					return rec, true, nil
				},
				EndPrefillFn: func(context.Context, string, onboarding.Lease) error { return nil },
				TakeSlotFn:   allowSlot,
				RecordPrefillFn: func(_ context.Context, user string, p onboarding.Prefill) error {
					recorded = user == "u1" && p == onboarding.Prefill{Email: "Seller@Example.com", BusinessProfile: onboarding.BusinessProfile{Name: "Sid's <b>Bikes</b>", URL: "https://sid.example"}}
					return tt.recordErr
				},
			}
			connect := &connectFake{UpdateAccountFn: func(context.Context, string, onboarding.Prefill) error { return tt.stripeErr }}
			_, err := newService(store, connect, testPolicy()).UpdateAccount(context.Background(), onboarding.Caller{UserID: "u1"},
				onboarding.UpdateAccountRequest{Email: ptr("Seller@Example.com"), BusinessProfile: &onboarding.BusinessProfileRequest{Name: ptr("Sid's <b>Bikes</b>"), URL: ptr("https://sid.example")}})
			if recorded != tt.wantRecorded || (err != nil) != tt.wantErr {
				t.Errorf("recorded %v, err %v; want recorded %v, an error %v", recorded, err, tt.wantRecorded, tt.wantErr)
			}
		})
	}
}

// TestUpdateAccountRecordsANameOrAURLGivenAlone: any one prefill field
// Stripe took is recorded for staff, not only an email.
func TestUpdateAccountRecordsANameOrAURLGivenAlone(t *testing.T) {
	rec := onboarding.AccountRecord{UserID: "u1", AccountID: "acct_1"}
	tests := []struct {
		name string
		req  onboarding.UpdateAccountRequest
		want onboarding.Prefill
	}{
		{"a business name alone", onboarding.UpdateAccountRequest{BusinessProfile: &onboarding.BusinessProfileRequest{Name: ptr("Sid's Bikes")}},
			onboarding.Prefill{BusinessProfile: onboarding.BusinessProfile{Name: "Sid's Bikes"}}},
		{"a business URL alone", onboarding.UpdateAccountRequest{BusinessProfile: &onboarding.BusinessProfileRequest{URL: ptr("https://sid.example")}},
			onboarding.Prefill{BusinessProfile: onboarding.BusinessProfile{URL: "https://sid.example"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var recorded []onboarding.Prefill
			store := &storeFake{
				GetUserFn: func(context.Context, string) (onboarding.UserRecord, error) {
					return onboarding.UserRecord{UserID: "u1", Account: &rec}, nil
				},
				BeginPrefillFn: func(context.Context, string, time.Time, onboarding.Lease) (onboarding.AccountRecord, bool, error) {
					return rec, true, nil
				},
				EndPrefillFn: func(context.Context, string, onboarding.Lease) error { return nil },
				TakeSlotFn:   allowSlot,
				RecordPrefillFn: func(_ context.Context, _ string, p onboarding.Prefill) error {
					recorded = append(recorded, p)
					return nil
				},
			}
			connect := &connectFake{UpdateAccountFn: func(context.Context, string, onboarding.Prefill) error { return nil }}
			if _, err := newService(store, connect, testPolicy()).UpdateAccount(context.Background(), onboarding.Caller{UserID: "u1"}, tt.req); err != nil {
				t.Fatal(err)
			}
			if len(recorded) != 1 || recorded[0] != tt.want {
				t.Errorf("recorded %+v, want [%+v]", recorded, tt.want)
			}
		})
	}
}

func TestUpdateAccountLosesToALinkThatLockedMeanwhile(t *testing.T) {
	rec := onboarding.AccountRecord{UserID: "u1", AccountID: "acct_1"}
	store := &storeFake{
		GetUserFn: func(context.Context, string) (onboarding.UserRecord, error) {
			return onboarding.UserRecord{UserID: "u1", Account: &rec}, nil
		},
		BeginPrefillFn: func(context.Context, string, time.Time, onboarding.Lease) (onboarding.AccountRecord, bool, error) {
			locked := rec
			locked.FirstLinkAt = testNow
			return locked, false, nil
		},
		TakeSlotFn: allowSlot,
	}
	connect := &connectFake{UpdateAccountFn: func(context.Context, string, onboarding.Prefill) error {
		t.Fatal("a prefill update after the lock must not reach Stripe")
		return nil
	}}
	_, err := newService(store, connect, testPolicy()).UpdateAccount(context.Background(), onboarding.Caller{UserID: "u1"}, onboarding.UpdateAccountRequest{Email: ptr("a@example.com")})
	if !errors.Is(err, onboarding.ErrKYCLocked) {
		t.Fatalf("err = %v, want kyc_locked", err)
	}
}

// A claim whose answer was lost after it was written, and that the SDK
// retried, finds itself stored: the claim is the caller's, not another's.
func TestAClaimThatMeetsItsOwnRetryGoesOn(t *testing.T) {
	store := emptyStore()
	var mine *onboarding.CreationClaim
	store.ClaimCreationFn = func(_ context.Context, _ string, c onboarding.CreationClaim, _ time.Time) error {
		mine = &c
		return onboarding.ErrConflict
	}
	reads := 0
	store.GetUserFn = func(context.Context, string) (onboarding.UserRecord, error) {
		reads++
		if mine == nil {
			return onboarding.UserRecord{}, onboarding.ErrNotFound
		}
		return onboarding.UserRecord{UserID: "u1", Claim: mine}, nil
	}
	var got onboarding.CreateAccountParams
	var key string
	acct, created, err := newService(store, capturingConnect(&got, &key), testPolicy()).CreateAccount(context.Background(), onboarding.Caller{UserID: "u1"}, onboarding.CreateAccountRequest{})
	if err != nil || !created || acct.ID != "acct_new" || reads != 2 {
		t.Fatalf("got %+v created=%v err=%v after %d reads: want the account created under the caller's own claim", acct, created, err, reads)
	}
}

// The record keeps the capabilities this service requested, which its
// status is judged on: Stripe's answer lists capabilities the platform's
// settings added too, and never says which were asked for.
func TestCreatedRecordKeepsTheRequestedCapabilities(t *testing.T) {
	for _, tc := range []struct {
		name     string
		defaults []string
		req      *[]string
		want     string
	}{
		{"the caller's", []string{"card_payments", "transfers"}, &[]string{"transfers", "card_payments"}, "transfers,card_payments"},
		{"DEFAULT_CAPABILITIES", []string{"card_payments", "transfers"}, nil, "card_payments,transfers"},
		{"none: Stripe chooses", nil, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := testPolicy()
			p.DefaultCapabilities = tc.defaults
			store := emptyStore()
			var stored onboarding.AccountRecord
			store.CompleteCreationFn = func(_ context.Context, rec onboarding.AccountRecord, _ string) error { stored = rec; return nil }
			connect := &connectFake{CreateAccountFn: func(_ context.Context, params onboarding.CreateAccountParams, _ string) (onboarding.CreatedAccount, error) {
				// Stripe lists what the platform's settings added as well.
				return onboarding.CreatedAccount{ID: "acct_new", Country: "US", State: onboarding.AccountState{
					Capabilities: map[string]string{"card_payments": "inactive", "transfers": "inactive", "us_bank_account_ach_payments": "inactive"}}}, nil
			}}
			if _, _, err := newService(store, connect, p).CreateAccount(context.Background(), onboarding.Caller{UserID: "u1"}, onboarding.CreateAccountRequest{Capabilities: tc.req}); err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(stored.State.RequestedCapabilities, ","); got != tc.want {
				t.Errorf("stored requested capabilities %q, want %q", got, tc.want)
			}
		})
	}
}
