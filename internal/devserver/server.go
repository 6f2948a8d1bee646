// Package devserver serves every route of the HTTP contract from one local
// process, through the same handlers the Lambdas run: each HTTP request is
// turned into an HTTP API payload 2.0 event, and an emulated JWT authorizer
// puts the caller's claims where API Gateway would.
package devserver

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"github.com/connectexpress/onboarding/shared/app"
	"github.com/connectexpress/onboarding/shared/httpapi"
)

// maxBody is API Gateway's own payload limit; handlers apply tighter ones.
const maxBody = 10 << 20

// Server is the local HTTP front of the App.
type Server struct {
	routes map[string]routeEntry
	// reconciler runs the sweep for POST /dev/reconcile (`make
	// reconcile`); nil, with why, when the App cannot.
	reconciler    *app.Reconciler
	reconcilerErr error
	auth          Authorizer
	now           func() time.Time
	log           *slog.Logger
	cors          cors
	// templated are the routes with path parameters ({user_id}), matched
	// segment by segment.
	templated []routeEntry
	// groupsClaim is the claim /dev/token?groups= fills (STAFF_GROUPS_CLAIM).
	groupsClaim string
}

type routeEntry struct {
	route   httpapi.Route
	handler httpapi.Handler
}

// New builds the server for a wired App; auth mints and verifies the
// emulated authorizer's tokens.
func New(a *app.App, auth Authorizer) *Server {
	s := &Server{routes: map[string]routeEntry{}, auth: auth, now: time.Now, log: a.Logger,
		// As template.yaml's default: the frontend's origin only.
		cors: cors{origins: []string{origin(a.Config.FrontendURL)}}, groupsClaim: a.Config.Policy.StaffGroupsClaim}
	for _, r := range httpapi.Routes {
		e := routeEntry{route: r, handler: a.Handler(r)}
		if strings.Contains(r.Path, "{") {
			s.templated = append(s.templated, e)
			continue
		}
		s.routes[r.Key()] = e
	}
	s.reconciler, s.reconcilerErr = a.Reconciler(nil)
	return s
}

// match finds the route of a request, and its path parameters as API
// Gateway would decode them.
func (s *Server) match(r *http.Request) (routeEntry, map[string]string, bool) {
	if e, ok := s.routes[r.Method+" "+r.URL.Path]; ok {
		return e, nil, true
	}
	got := strings.Split(r.URL.EscapedPath(), "/")
	for _, e := range s.templated {
		want := strings.Split(e.route.Path, "/")
		if e.route.Method != r.Method || len(want) != len(got) {
			continue
		}
		params := map[string]string{}
		for i, seg := range want {
			name, isParam := strings.CutPrefix(seg, "{")
			value, err := url.PathUnescape(got[i])
			switch {
			case isParam && got[i] != "" && err == nil:
				params[strings.TrimSuffix(name, "}")] = value
			case seg != got[i]:
				params = nil
			}
			if params == nil {
				break
			}
		}
		if params != nil {
			return e, params, true
		}
	}
	return routeEntry{}, nil, false
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.cors.handle(w, r) {
		return
	}
	if r.Method == http.MethodGet && r.URL.Path == "/dev/token" {
		s.mintToken(w, r)
		return
	}
	if r.Method == http.MethodPost && r.URL.Path == "/dev/reconcile" {
		s.reconcile(w, r)
		return
	}
	entry, params, ok := s.match(r)
	if !ok {
		writeError(w, http.StatusNotFound, "route_not_found", "no such route")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || len(body) > maxBody {
		writeError(w, http.StatusRequestEntityTooLarge, "body_too_large", "the request body is too large")
		return
	}
	event := toEvent(r, entry.route, body)
	event.PathParameters = params
	if !entry.route.Public {
		claims, ok := s.authorize(r)
		if !ok {
			// API Gateway answers before the function runs; so do we.
			writeError(w, http.StatusUnauthorized, "unauthorized", "a valid bearer token is required")
			return
		}
		event.RequestContext.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
			JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{Claims: claims},
		}
	}
	writeResponse(w, entry.handler(r.Context(), event))
}

func (s *Server) authorize(r *http.Request) (map[string]string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return nil, false
	}
	claims, err := s.auth.Verify(strings.TrimSpace(token), s.now())
	return claims, err == nil
}

// mintToken answers GET /dev/token?sub=alice&email=alice@example.com; it
// exists in the dev server only. groups=onboarding-staff (comma-separated)
// puts a list of groups in the STAFF_GROUPS_CLAIM claim, as Cognito does.
func (s *Server) mintToken(w http.ResponseWriter, r *http.Request) {
	sub := r.URL.Query().Get("sub")
	if sub == "" || len(sub) > 256 {
		writeError(w, http.StatusBadRequest, "validation_error", "sub is required (at most 256 characters)")
		return
	}
	var extra map[string]any
	if raw := r.URL.Query().Get("groups"); raw != "" {
		groups := []any{}
		for _, g := range strings.Split(raw, ",") {
			if g = strings.TrimSpace(g); g != "" {
				groups = append(groups, g)
			}
		}
		extra = map[string]any{s.groupsClaim: groups}
	}
	token := s.auth.MintClaims(sub, r.URL.Query().Get("email"), extra, s.now(), time.Hour)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(map[string]string{"token": token})
}

// toEvent builds the payload 2.0 event API Gateway would send for r.
func toEvent(r *http.Request, route httpapi.Route, body []byte) events.APIGatewayV2HTTPRequest {
	// Every header reaches the function, Authorization included, as API
	// Gateway passes it: the staff routes read their groups from the token.
	headers := make(map[string]string, len(r.Header))
	for name, values := range r.Header {
		headers[strings.ToLower(name)] = strings.Join(values, ",")
	}
	headers["host"] = r.Host
	query := map[string]string{}
	for k, v := range r.URL.Query() {
		query[k] = strings.Join(v, ",")
	}
	var cookies []string
	for _, c := range r.Cookies() {
		cookies = append(cookies, c.String())
	}
	delete(headers, "cookie")
	ev := events.APIGatewayV2HTTPRequest{
		Version:               "2.0",
		RouteKey:              route.Key(),
		RawPath:               r.URL.Path,
		RawQueryString:        r.URL.RawQuery,
		Cookies:               cookies,
		Headers:               headers,
		QueryStringParameters: query,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey:   route.Key(),
			Stage:      "$default",
			RequestID:  requestID(),
			DomainName: r.Host,
			TimeEpoch:  time.Now().UnixMilli(),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method: r.Method, Path: r.URL.Path, Protocol: r.Proto,
				SourceIP: strings.Split(r.RemoteAddr, ":")[0], UserAgent: r.UserAgent(),
			},
		},
	}
	// API Gateway base64-encodes bodies that are not text; so do we.
	if utf8.Valid(body) {
		ev.Body = string(body)
	} else {
		ev.Body, ev.IsBase64Encoded = base64.StdEncoding.EncodeToString(body), true
	}
	return ev
}

func writeResponse(w http.ResponseWriter, resp events.APIGatewayV2HTTPResponse) {
	for k, v := range resp.Headers {
		w.Header().Set(k, v)
	}
	for k, vs := range resp.MultiValueHeaders {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	status := resp.StatusCode
	if status == 0 {
		status = http.StatusOK
	}
	body := []byte(resp.Body)
	if resp.IsBase64Encoded {
		body, _ = base64.StdEncoding.DecodeString(resp.Body)
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": message}})
}

func requestID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
