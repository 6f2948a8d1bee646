package onboarding_test

import (
	"context"
	"errors"
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
		ReleaseClaimFn:     func(context.Context, string, string, bool) error { return nil },
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
		{"duplicate capabilities are sent once", nil, onboarding.Caller{UserID: "u1"}, onboarding.CreateAccountRequest{Capabilities: &[]string{"transfers", "transfers"}},
			func(t *testing.T, p onboarding.CreateAccountParams) {
				want(t, strings.Join(p.Capabilities, ","), "transfers")
			}},
		{"token email prefills the account", nil, onboarding.Caller{UserID: "u1", Email: "seller@example.com"}, onboarding.CreateAccountRequest{},
			func(t *testing.T, p onboarding.CreateAccountParams) { want(t, p.Email, "seller@example.com") }},
		{"request email wins over the token's", nil, onboarding.Caller{UserID: "u1", Email: "seller@example.com"}, onboarding.CreateAccountRequest{Email: ptr("shop@example.com")},
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
	tests := []struct {
		name       string
		stripeErr  error
		wantForget bool
		wantErr    error
	}{
		{"refused params: nothing was created, forget them", onboarding.ProviderRejected("business_profile.url", "Not a valid URL", nil), true, nil},
		{"unavailable: outcome unknown, keep params for replay", onboarding.ErrStripeUnavailable, false, onboarding.ErrStripeUnavailable},
		{"unexpected error: keep params", errors.New("boom"), false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := emptyStore()
			released, forgot := false, false
			store.ReleaseClaimFn = func(_ context.Context, _, _ string, forget bool) error {
				released, forgot = true, forget
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
			if !released || forgot != tt.wantForget {
				t.Fatalf("released=%v forget=%v, want released with forget=%v", released, forgot, tt.wantForget)
			}
		})
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
		wantErr    error
		wantCode   string
		wantStripe bool
	}{
		{"before the first link updates Stripe", time.Time{}, onboarding.UpdateAccountRequest{Email: ptr("new@example.com")}, nil, "", true},
		{"after the first link is kyc_locked", testNow, onboarding.UpdateAccountRequest{Email: ptr("new@example.com")}, onboarding.ErrKYCLocked, "kyc_locked", false},
		{"country cannot change", time.Time{}, onboarding.UpdateAccountRequest{Country: ptr("CA")}, nil, "validation_error", false},
		{"service agreement cannot change", time.Time{}, onboarding.UpdateAccountRequest{ServiceAgreement: ptr("recipient")}, nil, "validation_error", false},
		{"empty update is refused", time.Time{}, onboarding.UpdateAccountRequest{}, nil, "validation_error", false},
		{"bad field is refused", time.Time{}, onboarding.UpdateAccountRequest{BusinessType: ptr("llc")}, nil, "validation_error", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rec
			r.FirstLinkAt = tt.firstLink
			store := &storeFake{GetUserFn: func(context.Context, string) (onboarding.UserRecord, error) {
				return onboarding.UserRecord{UserID: "u1", Account: &r}, nil
			}}
			called := false
			connect := &connectFake{UpdateAccountFn: func(_ context.Context, id string, p onboarding.Prefill) error {
				called = true
				if id != "acct_1" || p.Email != "new@example.com" {
					t.Errorf("update %s %+v", id, p)
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
		})
	}
}
