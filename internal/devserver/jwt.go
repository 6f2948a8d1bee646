package devserver

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The dev server emulates the HTTP API's JWT authorizer with HS256 tokens
// signed by DEV_JWT_SECRET. In AWS the authorizer verifies the identity
// provider's RS256 tokens and this code does not exist.

// Defaults of DEV_JWT_ISSUER and DEV_JWT_AUDIENCE: what the emulated
// authorizer's JwtConfiguration (template.yaml's JwtIssuer, JwtAudience)
// holds when nothing is set.
const (
	DefaultIssuer   = "urn:connect-onboarding:devserver"
	DefaultAudience = "connect-onboarding-dev"
)

// Authorizer checks tokens as API Gateway's JWT authorizer does: signature,
// iss equal to Issuer, aud (or, without aud, client_id) one of Audiences,
// exp after now, nbf and iat not after now.
type Authorizer struct {
	Secret    []byte
	Issuer    string
	Audiences []string
}

var errBadToken = errors.New("invalid token")

// Mint signs a token for sub (and email, verified, when given) valid for ttl from now,
// with the issuer and first audience the authorizer accepts.
func (a Authorizer) Mint(sub, email string, now time.Time, ttl time.Duration) string {
	return a.MintClaims(sub, email, nil, now, ttl)
}

// MintClaims is Mint with extra claims (a staff token's groups).
func (a Authorizer) MintClaims(sub, email string, extra map[string]any, now time.Time, ttl time.Duration) string {
	claims := map[string]any{}
	for k, v := range extra {
		claims[k] = v
	}
	for k, v := range map[string]any{
		"sub": sub, "iss": a.Issuer, "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(ttl).Unix(),
	} {
		claims[k] = v
	}
	if len(a.Audiences) > 0 {
		claims["aud"] = a.Audiences[0]
	}
	if email != "" {
		claims["email"] = email
		// As an issuer does once the user confirmed the address; extra may
		// say false (an address nobody confirmed).
		if _, given := claims["email_verified"]; !given {
			claims["email_verified"] = true
		}
	}
	return a.Sign(claims)
}

// Sign signs any claims with HS256 (tests forge tokens with it).
func (a Authorizer) Sign(claims map[string]any) string {
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	payload, _ := json.Marshal(claims)
	signing := header + "." + base64.RawURLEncoding.EncodeToString(payload)
	return signing + "." + base64.RawURLEncoding.EncodeToString(sign(a.Secret, signing))
}

// Verify checks an HS256 token and returns its claims as strings, the way
// API Gateway hands JWT claims to a function.
func (a Authorizer) Verify(token string, now time.Time) (map[string]string, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 || len(token) > 8192 {
		return nil, errBadToken
	}
	var header struct {
		Alg string `json:"alg"`
	}
	if raw, err := base64.RawURLEncoding.DecodeString(parts[0]); err != nil || json.Unmarshal(raw, &header) != nil || header.Alg != "HS256" {
		// Only HS256: "none" and algorithm confusion are refused here.
		return nil, errBadToken
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || !hmac.Equal(sig, sign(a.Secret, parts[0]+"."+parts[1])) {
		return nil, errBadToken
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, errBadToken
	}
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil {
		return nil, errBadToken
	}
	if !a.claimsHold(claims, now) {
		return nil, errBadToken
	}
	out := make(map[string]string, len(claims))
	for k, v := range claims {
		switch v := v.(type) {
		case string:
			out[k] = v
		case float64:
			out[k] = strconv.FormatFloat(v, 'f', -1, 64)
		case bool:
			// email_verified true arrives as "true".
			out[k] = strconv.FormatBool(v)
		case []any:
			// API Gateway hands list claims over as "[a b]".
			items := make([]string, 0, len(v))
			for _, item := range v {
				if s, ok := item.(string); ok {
					items = append(items, s)
				}
			}
			out[k] = "[" + strings.Join(items, " ") + "]"
		}
	}
	if out["sub"] == "" {
		return nil, errBadToken
	}
	return out, nil
}

// claimsHold evaluates the registered claims in API Gateway's order.
func (a Authorizer) claimsHold(claims map[string]any, now time.Time) bool {
	if iss, _ := claims["iss"].(string); iss != a.Issuer {
		return false
	}
	if !a.audienceAccepted(claims) {
		return false
	}
	exp, ok := claims["exp"].(float64)
	if !ok || now.Unix() >= int64(exp) {
		return false
	}
	for _, name := range []string{"nbf", "iat"} {
		if v, present := claims[name]; present {
			t, ok := v.(float64)
			if !ok || int64(t) > now.Unix() {
				return false
			}
		}
	}
	return true
}

// audienceAccepted: aud (a string or a list) names an accepted audience;
// client_id counts only when aud is absent (Cognito access tokens).
func (a Authorizer) audienceAccepted(claims map[string]any) bool {
	switch aud := claims["aud"].(type) {
	case string:
		return slices.Contains(a.Audiences, aud)
	case []any:
		for _, v := range aud {
			if s, ok := v.(string); ok && slices.Contains(a.Audiences, s) {
				return true
			}
		}
		return false
	case nil:
		if _, present := claims["aud"]; present {
			return false
		}
		clientID, _ := claims["client_id"].(string)
		return clientID != "" && slices.Contains(a.Audiences, clientID)
	default:
		return false
	}
}

func sign(secret []byte, data string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(data))
	return m.Sum(nil)
}
