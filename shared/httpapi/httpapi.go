// Package httpapi turns API Gateway HTTP API (payload 2.0) events into calls
// on the onboarding core and its answers into responses: request decoding,
// the JSON error envelope, one log line per request, and the route table
// that the Lambdas, the dev server and template.yaml share.
//
// It depends on aws-lambda-go's event types only; never on the AWS SDK.
package httpapi

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"github.com/connectexpress/onboarding/shared/onboarding"
)

// Request and Response are the HTTP API payload 2.0 shapes.
type (
	Request  = events.APIGatewayV2HTTPRequest
	Response = events.APIGatewayV2HTTPResponse
)

// Handler answers one HTTP API event. It never returns an error: API Gateway
// turns a Lambda error into a bare 500 without our envelope.
type Handler func(ctx context.Context, req Request) Response

// Body limits. Stripe's events are far below maxEventBody.
const (
	maxJSONBody  = 16 << 10
	maxEventBody = 512 << 10
)

// header returns a request header by name whatever its case: payload 2.0
// lower-cases names, the dev server and tests may not.
func header(req Request, name string) string {
	if v, ok := req.Headers[strings.ToLower(name)]; ok {
		return v
	}
	for k, v := range req.Headers {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

// rawBody returns the body bytes as sent, decoding base64 when API Gateway
// marked it so; it refuses bodies over limit.
func rawBody(req Request, limit int) ([]byte, error) {
	if !req.IsBase64Encoded {
		if len(req.Body) > limit {
			return nil, onboarding.ErrBodyTooLarge
		}
		return []byte(req.Body), nil
	}
	if base64.StdEncoding.DecodedLen(len(req.Body)) > limit+3 {
		return nil, onboarding.ErrBodyTooLarge
	}
	b, err := base64.StdEncoding.DecodeString(req.Body)
	if err != nil {
		return nil, onboarding.Invalid("", "the body is not valid base64")
	}
	if len(b) > limit {
		return nil, onboarding.ErrBodyTooLarge
	}
	return b, nil
}

// decodeJSON decodes a JSON object body strictly, in two steps. First the
// raw body is walked: it must be UTF-8 and one JSON object whose keys, at
// every depth, name a field of dst exactly and once. encoding/json would
// match names case-insensitively, let the last duplicate win and replace
// bad UTF-8 silently, so {"country":"US","country":"FR"} would create an FR
// account. Then it is decoded, and a wrong type names its field. An empty
// body is {}.
func decodeJSON(req Request, dst any) error {
	body, err := rawBody(req, maxJSONBody)
	if err != nil {
		return err
	}
	if len(bytes.TrimLeft(body, " \t\r\n")) == 0 { // JSON's white space only
		return nil
	}
	if !utf8.Valid(body) {
		return onboarding.Invalid("", "the body is not valid UTF-8")
	}
	if err := checkFields(body, reflect.TypeOf(dst)); err != nil {
		return err
	}
	if err := json.Unmarshal(body, dst); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			field := truncate(typeErr.Field)
			return onboarding.Invalid(field, field+" has the wrong type")
		}
		return onboarding.Invalid("", "the body is not valid JSON")
	}
	return nil
}

// checkFields walks body, which must be exactly one JSON object, against
// struct type t.
func checkFields(body []byte, t reflect.Type) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	tok, err := dec.Token()
	if err != nil {
		return errNotJSON
	}
	if tok != json.Delim('{') {
		// A bare null would decode as "no fields"; the contract is an object.
		return onboarding.Invalid("", "the body must be a JSON object")
	}
	if err := checkObject(dec, t, ""); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return onboarding.Invalid("", "the body must be a single JSON object")
	}
	return nil
}

var errNotJSON = onboarding.Invalid("", "the body is not valid JSON")

// checkObject reads the members of an object whose '{' was read, up to and
// including its '}'. With a struct type t, each key must name one of its
// fields; prefix is the path of the object ("business_profile.").
func checkObject(dec *json.Decoder, t reflect.Type, prefix string) error {
	t = deref(t)
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return errNotJSON
		}
		key := tok.(string) // object keys are strings, or Token failed
		path := truncate(prefix + key)
		if seen[key] {
			return onboarding.Invalid(path, fmt.Sprintf("field %q is given twice", path))
		}
		seen[key] = true
		var fieldType reflect.Type
		if t != nil && t.Kind() == reflect.Struct {
			f, ok := fieldByJSONName(t, key)
			if !ok {
				return onboarding.Invalid(path, fmt.Sprintf("unknown field %q", path))
			}
			fieldType = f.Type
		}
		if err := checkValue(dec, fieldType, prefix+key); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return errNotJSON
	}
	return nil
}

// checkValue reads one value of type t (nil: any) at path.
func checkValue(dec *json.Decoder, t reflect.Type, path string) error {
	tok, err := dec.Token()
	if err != nil {
		return errNotJSON
	}
	switch tok {
	case json.Delim('{'):
		return checkObject(dec, t, path+".")
	case json.Delim('['):
		var elem reflect.Type
		if t = deref(t); t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for dec.More() {
			if err := checkValue(dec, elem, path); err != nil {
				return err
			}
		}
		if _, err := dec.Token(); err != nil { // the closing ']'
			return errNotJSON
		}
	}
	return nil
}

func deref(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// truncate keeps a client-chosen field path short enough for an answer.
func truncate(path string) string {
	if len(path) > 64 {
		return path[:64]
	}
	return path
}

// fieldByJSONName finds the field of struct type t whose JSON name is name,
// looking into embedded structs.
func fieldByJSONName(t reflect.Type, name string) (reflect.StructField, bool) {
	for _, f := range reflect.VisibleFields(t) {
		if !f.IsExported() || f.Anonymous {
			continue
		}
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if tag == "-" {
			continue
		}
		if tag == "" {
			tag = f.Name
		}
		if tag == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// caller reads the identity the HTTP API's JWT authorizer verified.
func caller(req Request) (onboarding.Caller, error) {
	if req.RequestContext.Authorizer == nil || req.RequestContext.Authorizer.JWT == nil {
		return onboarding.Caller{}, onboarding.ErrUnauthorized
	}
	claims := req.RequestContext.Authorizer.JWT.Claims
	sub := claims["sub"]
	if sub == "" || len(sub) > 256 {
		return onboarding.Caller{}, onboarding.ErrUnauthorized
	}
	// API Gateway renders every claim as a string: email_verified true (a
	// JSON boolean, or the string some issuers send) is "true".
	return onboarding.Caller{UserID: sub, Email: claims["email"], EmailVerified: claims["email_verified"] == "true"}, nil
}

// baseHeaders go on every answer: nothing here is cacheable, and bodies
// may name identity data.
func baseHeaders() map[string]string {
	return map[string]string{
		"Content-Type":           "application/json",
		"Cache-Control":          "no-store",
		"X-Content-Type-Options": "nosniff",
	}
}

func jsonResponse(status int, v any) Response {
	body, err := json.Marshal(v)
	if err != nil {
		return errorResponse(err)
	}
	return Response{StatusCode: status, Headers: baseHeaders(), Body: string(body)}
}

type errorEnvelope struct {
	Error errorBody `json:"error"`
}

type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Param   string `json:"param,omitempty"`
}

// statusOf maps the core's error kinds to HTTP statuses, in one place.
var statusOf = map[onboarding.Kind]int{
	onboarding.KindInvalid:             http.StatusBadRequest,
	onboarding.KindUnauthorized:        http.StatusUnauthorized,
	onboarding.KindNotFound:            http.StatusNotFound,
	onboarding.KindConflict:            http.StatusConflict,
	onboarding.KindTooLarge:            http.StatusRequestEntityTooLarge,
	onboarding.KindProviderUnavailable: http.StatusBadGateway,
	onboarding.KindStorageUnavailable:  http.StatusServiceUnavailable,
	onboarding.KindRateLimited:         http.StatusTooManyRequests,
	onboarding.KindForbidden:           http.StatusForbidden,
	// Stripe's 403 account_invalid that no use case turned into
	// ErrDeauthorized: the account is gone all the same.
	onboarding.KindAccountGone: http.StatusConflict,
}

// errorResponse renders err as the envelope. Only the core's own safe texts
// are shown; anything else is a 500 with a fixed message.
func errorResponse(err error) Response {
	e, ok := onboarding.AsError(err)
	if !ok {
		return jsonResponse(http.StatusInternalServerError, errorEnvelope{errorBody{Code: "internal_error", Message: "internal error"}})
	}
	status := statusOf[e.Kind]
	if status == 0 {
		status = http.StatusInternalServerError
	}
	resp := jsonResponse(status, errorEnvelope{errorBody{Code: e.Code, Message: e.Message, Param: e.Param}})
	switch {
	case e.RetryAfter > 0:
		resp.Headers["Retry-After"] = strconv.FormatInt(int64(math.Ceil(e.RetryAfter.Seconds())), 10)
	case status == http.StatusServiceUnavailable:
		resp.Headers["Retry-After"] = "1"
	}
	return resp
}

// redirect answers a browser with 302. The refresh route is the only user:
// its Location is always a Stripe link or our frontend, never input.
func redirect(location string) Response {
	return Response{StatusCode: http.StatusFound, Headers: map[string]string{
		"Location":        location,
		"Cache-Control":   "no-store",
		"Referrer-Policy": "no-referrer",
	}}
}

// requestLog collects what the request's log line says; handlers add to it.
type requestLog struct {
	attrs []slog.Attr
	err   error
}

type logKey struct{}

// annotate adds attributes to the current request's log line.
func annotate(ctx context.Context, attrs ...slog.Attr) {
	if rl, ok := ctx.Value(logKey{}).(*requestLog); ok {
		rl.attrs = append(rl.attrs, attrs...)
	}
}

// failed answers with err and keeps it for the log line.
func failed(ctx context.Context, err error) Response {
	keepError(ctx, err)
	return errorResponse(err)
}

// keepError puts err on the request's log line.
func keepError(ctx context.Context, err error) {
	if rl, ok := ctx.Value(logKey{}).(*requestLog); ok {
		rl.err = err
	}
}

// needsOperator says whether err is one only an operator can mend (Stripe
// refused the platform's key): its line is an ERROR whatever the answer.
func needsOperator(err error) bool {
	e, ok := onboarding.AsError(err)
	return ok && e.KeyRefused()
}

// WithLogging wraps h with one JSON log line per request: route, status,
// latency, request id and what the handler annotated. Never bodies, tokens,
// link URLs or emails; a panic becomes a 500 envelope, not a crash.
func WithLogging(logger *slog.Logger, route string, h Handler) Handler {
	return func(ctx context.Context, req Request) (resp Response) {
		start := time.Now()
		rl := &requestLog{}
		ctx = context.WithValue(ctx, logKey{}, rl)
		defer func() {
			if p := recover(); p != nil {
				rl.err = fmt.Errorf("panic: %v", p)
				resp = errorResponse(rl.err)
			}
			attrs := append([]slog.Attr{
				slog.String("route", route),
				slog.Int("status", resp.StatusCode),
				slog.Float64("latency_ms", float64(time.Since(start).Microseconds())/1000),
				slog.String("request_id", req.RequestContext.RequestID),
			}, rl.attrs...)
			level := slog.LevelInfo
			if rl.err != nil {
				attrs = append(attrs, slog.String("error", logSafe(rl.err)))
				if resp.StatusCode >= 500 || needsOperator(rl.err) {
					level = slog.LevelError
				}
			}
			logger.LogAttrs(ctx, level, "request", attrs...)
		}()
		return h(ctx, req)
	}
}

// logSafe renders an error for logs: the core's code and param, then the
// adapter's cause, which carries codes and request ids only. Messages are
// left out: Stripe's may echo what was sent (an email), ours may quote input.
func logSafe(err error) string {
	msg := err.Error()
	if e, ok := onboarding.AsError(err); ok {
		msg = e.Code
		if e.Param != "" {
			msg += " param=" + e.Param
		}
		if cause := errors.Unwrap(e); cause != nil {
			msg += ": " + cause.Error()
		}
	}
	if len(msg) > 500 {
		msg = msg[:500]
	}
	return msg
}
