package stripesim

import (
	"encoding/json"
	"net/http"
)

// Stripe's error types.
const (
	typeInvalidRequest = "invalid_request_error"
	typeAPI            = "api_error"
	typeIdempotency    = "idempotency_error"
)

// apiError is an answer in Stripe's error envelope:
// {"error":{"type","code","param","message","doc_url"}}.
type apiError struct {
	status  int
	typ     string
	code    string
	param   string
	message string
}

func invalidParam(param, message string) *apiError {
	return &apiError{status: http.StatusBadRequest, typ: typeInvalidRequest, param: param, message: message}
}

func invalidRequest(message string) *apiError {
	return &apiError{status: http.StatusBadRequest, typ: typeInvalidRequest, message: message}
}

// noSuchAccount answers the simulator's own controls (/_sim/) for an
// account it never made. Stripe's API answers noAccess instead.
func noSuchAccount(id string) *apiError {
	return &apiError{status: http.StatusNotFound, typ: typeInvalidRequest, code: "resource_missing", param: "account",
		message: "No such account: '" + id + "'"}
}

// noAccess is what Stripe answers the platform for an account its key
// cannot reach: one that disconnected from the platform
// (account.application.deauthorized), was deleted, or never existed. Stripe
// does not tell these apart: 403 with code account_invalid
// (https://docs.stripe.com/error-codes#account-invalid), whose message
// says "(or that account does not exist)".
func noAccess(id string) *apiError {
	return &apiError{status: http.StatusForbidden, typ: typeInvalidRequest, code: "account_invalid",
		message: "The provided key does not have access to account '" + id + "' (or that account does not exist). " +
			"Application access may have been revoked."}
}

func (e *apiError) body() []byte {
	inner := map[string]any{"type": e.typ, "message": e.message}
	if e.code != "" {
		inner["code"] = e.code
		inner["doc_url"] = "https://stripe.com/docs/error-codes/" + kebab(e.code)
	}
	if e.param != "" {
		inner["param"] = e.param
	}
	b, _ := json.Marshal(map[string]any{"error": inner})
	return b
}

func kebab(code string) string {
	out := []byte(code)
	for i, c := range out {
		if c == '_' {
			out[i] = '-'
		}
	}
	return string(out)
}

// transfersWithoutCardPayments is Stripe's refusal of an account that
// requests transfers without card_payments under the full agreement, for a
// platform Stripe has not approved for it. The message is Stripe's answer
// as the fidelity audit of issue 21 recorded it; Stripe's public docs do
// not quote it.
func transfersWithoutCardPayments() *apiError {
	return invalidParam("capabilities",
		"Your platform needs approval for accounts to have requested the `transfers` capability without the `card_payments` capability.")
}
