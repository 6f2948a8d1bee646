package devserver

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"
)

// The dev server emulates the HTTP API's JWT authorizer with HS256 tokens
// signed by DEV_JWT_SECRET. In AWS the authorizer verifies the identity
// provider's RS256 tokens and this code does not exist.

var errBadToken = errors.New("invalid token")

// Mint signs a token for sub (and email, when given) valid for ttl.
func Mint(secret []byte, sub, email string, now time.Time, ttl time.Duration) string {
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	claims := map[string]any{"sub": sub, "iat": now.Unix(), "exp": now.Add(ttl).Unix(), "iss": "devserver"}
	if email != "" {
		claims["email"] = email
	}
	payload, _ := json.Marshal(claims)
	signing := header + "." + base64.RawURLEncoding.EncodeToString(payload)
	return signing + "." + base64.RawURLEncoding.EncodeToString(sign(secret, signing))
}

// Verify checks an HS256 token and returns its claims as strings, the way
// API Gateway hands JWT claims to a function.
func Verify(secret []byte, token string, now time.Time) (map[string]string, error) {
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
	if err != nil || !hmac.Equal(sig, sign(secret, parts[0]+"."+parts[1])) {
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
	exp, ok := claims["exp"].(float64)
	if !ok || now.Unix() >= int64(exp) {
		return nil, errBadToken
	}
	out := make(map[string]string, len(claims))
	for k, v := range claims {
		switch v := v.(type) {
		case string:
			out[k] = v
		case float64:
			out[k] = strconv.FormatFloat(v, 'f', -1, 64)
		}
	}
	if out["sub"] == "" {
		return nil, errBadToken
	}
	return out, nil
}

func sign(secret []byte, data string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(data))
	return m.Sum(nil)
}
