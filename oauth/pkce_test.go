package oauth

import (
	"strings"
	"testing"
)

// RFC 7636 Appendix B.
const (
	rfcVerifier  = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	rfcChallenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
)

func TestS256ChallengeAppendixB(t *testing.T) {
	if got := S256Challenge(rfcVerifier); got != rfcChallenge {
		t.Fatalf("S256Challenge = %q, want %q", got, rfcChallenge)
	}
}

func TestVerifyPKCE(t *testing.T) {
	tests := []struct {
		name      string
		challenge string
		verifier  string
		want      bool
	}{
		{"RFC 7636 Appendix B", rfcChallenge, rfcVerifier, true},
		{"RFC 7636 4.6 wrong verifier", rfcChallenge, strings.Replace(rfcVerifier, "d", "e", 1), false},
		{"RFC 7636 4.6 verifier equal to challenge (plain)", rfcChallenge, rfcChallenge, false},
		{"RFC 7636 4.1 verifier too short", S256Challenge(strings.Repeat("a", 42)), strings.Repeat("a", 42), false},
		{"RFC 7636 4.1 verifier 43 chars", S256Challenge(strings.Repeat("a", 43)), strings.Repeat("a", 43), true},
		{"RFC 7636 4.1 verifier 128 chars", S256Challenge(strings.Repeat("~", 128)), strings.Repeat("~", 128), true},
		{"RFC 7636 4.1 verifier too long", S256Challenge(strings.Repeat("a", 129)), strings.Repeat("a", 129), false},
		{"RFC 7636 4.1 verifier bad character", S256Challenge(strings.Repeat("a", 42) + "+"), strings.Repeat("a", 42) + "+", false},
		{"RFC 7636 4.1 unreserved characters", S256Challenge("-._~" + strings.Repeat("Z9", 20)), "-._~" + strings.Repeat("Z9", 20), true},
		{"empty verifier", rfcChallenge, "", false},
		{"empty challenge", "", rfcVerifier, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := VerifyPKCE(tt.challenge, tt.verifier); got != tt.want {
				t.Errorf("VerifyPKCE = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestValidChallenge(t *testing.T) {
	tests := []struct {
		name string
		c    string
		want bool
	}{
		{"43 base64url characters", rfcChallenge, true},
		{"42 characters", rfcChallenge[:42], false},
		{"44 characters", rfcChallenge + "A", false},
		{"padded standard base64", strings.Repeat("A", 42) + "=", false},
		{"standard base64 alphabet", strings.Repeat("A", 42) + "+", false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ValidChallenge(tt.c); got != tt.want {
				t.Errorf("ValidChallenge(%q) = %v, want %v", tt.c, got, tt.want)
			}
		})
	}
}
