package onboarding_test

import (
	"context"
	"strings"
	"testing"

	"github.com/connectexpress/onboarding/shared/onboarding"
)

// Each limit of the create body holds to the character: what openapi.yaml allows is taken,
// one more is refused before Stripe is called.
func TestInputAtItsLimitIsTakenAndOneMoreIsRefused(t *testing.T) {
	email := func(n int) string { // a valid address of n bytes
		const domain = "@example.com"
		return strings.Repeat("a", n-len(domain)) + domain
	}
	profileURL := func(n int) string { // a valid https URL of n bytes
		const base = "https://shop.example/"
		return base + strings.Repeat("p", n-len(base))
	}
	profile := func(bp onboarding.BusinessProfileRequest) onboarding.CreateAccountRequest {
		return onboarding.CreateAccountRequest{BusinessProfile: &bp}
	}
	transfers := func(n int) *[]string {
		caps := make([]string, n)
		for i := range caps {
			caps[i] = "transfers"
		}
		return &caps
	}
	tests := []struct {
		name      string
		req       onboarding.CreateAccountRequest
		wantParam string // "" when the request is taken
		check     func(t *testing.T, p onboarding.CreateAccountParams)
	}{
		{name: "an email of 254 bytes", req: onboarding.CreateAccountRequest{Email: ptr(email(254))}},
		{name: "an email of 255 bytes", req: onboarding.CreateAccountRequest{Email: ptr(email(255))}, wantParam: "email"},
		{name: "a profile URL of 2048 bytes", req: profile(onboarding.BusinessProfileRequest{URL: ptr(profileURL(2048))})},
		{name: "a profile URL of 2049 bytes", req: profile(onboarding.BusinessProfileRequest{URL: ptr(profileURL(2049))}), wantParam: "business_profile.url"},
		{name: "a product description of 500 characters", req: profile(onboarding.BusinessProfileRequest{ProductDescription: ptr(strings.Repeat("é", 500))})},
		{name: "a product description of 501 characters", req: profile(onboarding.BusinessProfileRequest{ProductDescription: ptr(strings.Repeat("é", 501))}), wantParam: "business_profile.product_description"},
		{name: "a product description of white space only", req: profile(onboarding.BusinessProfileRequest{ProductDescription: ptr(" \t ")}), wantParam: "business_profile.product_description"},
		{
			name: "a product description reaches Stripe trimmed",
			req:  profile(onboarding.BusinessProfileRequest{ProductDescription: ptr("  Bicycle repairs ")}),
			check: func(t *testing.T, p onboarding.CreateAccountParams) {
				want(t, p.BusinessProfile.ProductDescription, "Bicycle repairs")
			},
		},
		{name: "a business name of 100 characters", req: profile(onboarding.BusinessProfileRequest{Name: ptr(strings.Repeat("ß", 100))})},
		{name: "a business name of 101 characters", req: profile(onboarding.BusinessProfileRequest{Name: ptr(strings.Repeat("ß", 101))}), wantParam: "business_profile.name"},
		{name: "a business name of white space only", req: profile(onboarding.BusinessProfileRequest{Name: ptr("   ")}), wantParam: "business_profile.name"},
		{
			name: "a business name reaches Stripe trimmed",
			req:  profile(onboarding.BusinessProfileRequest{Name: ptr(" Cycle Works  ")}),
			check: func(t *testing.T, p onboarding.CreateAccountParams) {
				want(t, p.BusinessProfile.Name, "Cycle Works")
			},
		},
		{
			name: "32 capabilities, duplicates, reach Stripe once each",
			req:  onboarding.CreateAccountRequest{Capabilities: ptr(append(*transfers(31), "card_payments"))},
			check: func(t *testing.T, p onboarding.CreateAccountParams) {
				want(t, strings.Join(p.Capabilities, ","), "transfers,card_payments")
			},
		},
		{name: "33 capabilities", req: onboarding.CreateAccountRequest{Capabilities: transfers(33)}, wantParam: "capabilities"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got onboarding.CreateAccountParams
			var key string
			_, created, err := newService(emptyStore(), capturingConnect(&got, &key), testPolicy()).CreateAccount(context.Background(), onboarding.Caller{UserID: "u1"}, tt.req)
			if tt.wantParam == "" {
				if err != nil || !created {
					t.Fatalf("created %v, err %v; want the account created", created, err)
				}
				if tt.check != nil {
					tt.check(t, got)
				}
				return
			}
			e, ok := onboarding.AsError(err)
			if !ok || e.Code != "validation_error" || e.Param != tt.wantParam {
				t.Fatalf("err = %v, want validation_error on %s", err, tt.wantParam)
			}
			if key != "" {
				t.Error("Stripe was called for a refused request")
			}
		})
	}
}
