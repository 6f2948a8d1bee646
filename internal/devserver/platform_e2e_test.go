package devserver_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/connectexpress/onboarding/internal/testenv"
)

// TestStripeCreateFollowsThePlatformsExpressDuties pins the exact form
// fields sent to Stripe (through stripe-mock, which validates them) for each
// of the guide's platform duties.
func TestStripeCreateFollowsThePlatformsExpressDuties(t *testing.T) {
	tests := []struct {
		name       string
		env        map[string]string
		user       string
		body       string
		wantStatus int
		want       map[string]string // form field -> value; "" means absent
	}{
		{"same country, full agreement", nil, "u1", `{}`, 201, map[string]string{
			"country": "US", "tos_acceptance[service_agreement]": "full",
			"capabilities[card_payments][requested]": "true", "capabilities[transfers][requested]": "true",
		}},
		{"cross-border is a recipient by configuration", map[string]string{"CROSS_BORDER_SERVICE_AGREEMENT": "recipient"}, "u2", `{"country":"GB"}`, 201, map[string]string{
			"country": "GB", "tos_acceptance[service_agreement]": "recipient",
			"capabilities[transfers][requested]": "true", "capabilities[card_payments][requested]": "",
		}},
		{"explicit recipient with transfers only", nil, "u3", `{"country":"FR","service_agreement":"recipient","capabilities":["transfers"]}`, 201, map[string]string{
			"country": "FR", "tos_acceptance[service_agreement]": "recipient",
			"capabilities[transfers][requested]": "true", "capabilities[card_payments][requested]": "",
		}},
		{"empty default capabilities send none", map[string]string{"DEFAULT_CAPABILITIES": ""}, "u4", `{}`, 201, map[string]string{
			"capabilities[transfers][requested]": "", "capabilities[card_payments][requested]": "",
		}},
		{"profile URL template with a user id that needs escaping", map[string]string{"PROFILE_URL_TEMPLATE": "https://market.example/sellers/{user_id}"}, "auth0|a b/c", `{}`, 201, map[string]string{
			"business_profile[url]": "https://market.example/sellers/auth0%7Ca%20b%2Fc",
		}},
		{"product description fallback", map[string]string{"PRODUCT_DESCRIPTION_DEFAULT": "Sells handmade goods on Market"}, "u6", `{}`, 201, map[string]string{
			"business_profile[product_description]": "Sells handmade goods on Market", "business_profile[url]": "",
		}},
		{"a request URL overrides the template", map[string]string{"PROFILE_URL_TEMPLATE": "https://market.example/sellers/{user_id}"}, "u7", `{"business_profile":{"url":"https://own.example"}}`, 201, map[string]string{
			"business_profile[url]": "https://own.example",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := testenv.NewStack(t, testenv.StackOptions{Env: tt.env})
			resp, body := s.Do(t, "POST", "/accounts", s.Token(tt.user, ""), tt.body)
			expectStatus(t, resp, body, tt.wantStatus)
			creates := s.Stripe.Requests("POST /v1/accounts")
			if len(creates) != 1 {
				t.Fatalf("%d creates", len(creates))
			}
			for field, want := range tt.want {
				if got := creates[0].Form.Get(field); got != want {
					t.Errorf("%s = %q, want %q", field, got, want)
				}
			}
			if got := decode[accountJSON](t, body).ServiceAgreement; got != creates[0].Form.Get("tos_acceptance[service_agreement]") {
				t.Errorf("stored service_agreement %q differs from what Stripe got", got)
			}
		})
	}
}

func TestRecipientAskingForCardPaymentsIsRefusedBeforeStripe(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{})
	resp, body := s.Do(t, "POST", "/accounts", s.Token("u8", ""), `{"country":"GB","service_agreement":"recipient","capabilities":["card_payments","transfers"]}`)
	expectStatus(t, resp, body, http.StatusBadRequest)
	if e := decode[errorJSON](t, body); e.Error.Param != "capabilities" {
		t.Fatalf("%s", body)
	}
	if n := len(s.Stripe.Requests("")); n != 0 {
		t.Fatalf("Stripe was called %d times", n)
	}
}

func TestUnallowedCountryIsNotEnabled(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{Env: map[string]string{"ALLOWED_COUNTRIES": "US"}})
	resp, body := s.Do(t, "POST", "/accounts", s.Token("u9", ""), `{"country":"CA"}`)
	expectStatus(t, resp, body, http.StatusBadRequest)
	if e := decode[errorJSON](t, body); e.Error.Code != "country_not_enabled" || e.Error.Param != "country" {
		t.Fatal(fmt.Sprint(body))
	}
}
