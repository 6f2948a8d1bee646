package onboarding_test

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/connectexpress/onboarding/shared/onboarding"
)

const base64URLAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// FuzzParseRefreshToken: the parser never panics, accepts exactly the
// shape of the tokens we issue (43 base64url characters, 256 bits without
// padding) and returns them unchanged; every such token is accepted.
// Seeds: testdata/fuzz/FuzzParseRefreshToken and the f.Add calls below.
func FuzzParseRefreshToken(f *testing.F) {
	for _, seed := range []string{
		"", strings.Repeat("A", 43), strings.Repeat("A", 42), strings.Repeat("A", 44),
		strings.Repeat("A", 42) + "=", strings.Repeat("A", 42) + "\n", base64.RawURLEncoding.EncodeToString(make([]byte, 32)),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		token, ok := onboarding.ParseRefreshToken(raw)
		wellFormed := len(raw) == 43 && strings.Trim(raw, base64URLAlphabet) == ""
		switch {
		case ok != wellFormed:
			t.Fatalf("ParseRefreshToken(%q) accepted=%v, want %v", raw, ok, wellFormed)
		case ok && token != raw:
			t.Fatalf("ParseRefreshToken(%q) = %q, want it unchanged", raw, token)
		case !ok && token != "":
			t.Fatalf("ParseRefreshToken(%q) refused but returned %q", raw, token)
		}
		// What we issue (newSecret: 32 random bytes, base64url without
		// padding) always parses; the input supplies the bytes.
		b := make([]byte, 32)
		copy(b, raw)
		issued := base64.RawURLEncoding.EncodeToString(b)
		if got, ok := onboarding.ParseRefreshToken(issued); !ok || got != issued {
			t.Fatalf("an issued token %q was refused", issued)
		}
	})
}
