package oauth

import (
	"strings"
	"testing"
)

// RFC 8628 6.1: the user code's character set has no vowels (no words can
// form) and no digits (nothing to confuse with letters).
func TestUserCodeAlphabet(t *testing.T) {
	if len(UserCodeAlphabet) != 20 {
		t.Fatalf("%d characters, want 20", len(UserCodeAlphabet))
	}
	seen := map[rune]bool{}
	for _, c := range UserCodeAlphabet {
		if c < 'A' || c > 'Z' || strings.ContainsRune("AEIOUY", c) || seen[c] {
			t.Errorf("character %q: want distinct upper-case consonants", c)
		}
		seen[c] = true
	}
}

func TestNewUserCode(t *testing.T) {
	const draws = 20000
	counts := map[byte]int{}
	codes := map[string]bool{}
	for range draws {
		code, err := newUserCode()
		if err != nil {
			t.Fatal(err)
		}
		if len(code) != 8 || strings.Trim(code, UserCodeAlphabet) != "" {
			t.Fatalf("user code %q: want 8 characters of %s", code, UserCodeAlphabet)
		}
		if got, ok := NormalizeUserCode(code); !ok || got != code {
			t.Fatalf("NormalizeUserCode(%q) = %q, %v; want it unchanged", code, got, ok)
		}
		codes[code] = true
		for i := range len(code) {
			counts[code[i]]++
		}
	}
	// 20^8 codes: 20,000 draws repeat one with probability about 1e-2.
	if len(codes) < draws-2 {
		t.Errorf("%d distinct codes in %d draws", len(codes), draws)
	}
	// Every character is used, and none far from its share (8,000 each;
	// the bound is about 11 standard deviations).
	for i := range len(UserCodeAlphabet) {
		c := UserCodeAlphabet[i]
		if n := counts[c]; n < 7000 || n > 9000 {
			t.Errorf("character %c drawn %d times of %d, want about %d", c, n, 8*draws, 8*draws/20)
		}
	}
}

func TestFormatUserCode(t *testing.T) {
	if got := FormatUserCode("BCDFGHJK"); got != "BCDF-GHJK" {
		t.Errorf("FormatUserCode = %q, want BCDF-GHJK", got)
	}
}

// RFC 8628 6.1: the code is entered in any letter case, with or without
// the dash; characters outside the set are not guessed at.
func TestNormalizeUserCode(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"BCDF-GHJK", "BCDFGHJK", true},
		{"BCDFGHJK", "BCDFGHJK", true},
		{"bcdfghjk", "BCDFGHJK", true},
		{"bcdf-ghjk", "BCDFGHJK", true},
		{"  Bcdf-Ghjk\n", "BCDFGHJK", true},
		{"bcdf ghjk", "BCDFGHJK", true},
		{"BC-DF-GH-JK", "BCDFGHJK", true},
		{"", "", false},
		{"BCDF-GHJ", "", false},       // too short
		{"BCDF-GHJKL", "", false},     // too long
		{"BCDF-GHJA", "", false},      // a vowel
		{"BCDF-GHJ1", "", false},      // a digit
		{"BCDF_GHJK", "", false},      // another separator
		{"BCDF-GHJ\u017f", "", false}, // U+017F upper-cases to S in Unicode, not here
		{"BCDF-GHJK\x00", "", false},
	}
	for _, tt := range tests {
		got, ok := NormalizeUserCode(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("NormalizeUserCode(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// The store keeps the user code's HMAC under the derived key: another key
// gives another hash, and every spelling of a code gives the same one.
func TestHashUserCode(t *testing.T) {
	k1, k2 := []byte("key one, thirty-two bytes long!!"), []byte("key two, thirty-two bytes long!!")
	a, _ := NormalizeUserCode("bcdf-ghjk")
	b, _ := NormalizeUserCode("BCDFGHJK")
	if hashUserCode(k1, a) != hashUserCode(k1, b) {
		t.Error("two spellings of one code hash apart")
	}
	if hashUserCode(k1, a) == hashUserCode(k2, a) {
		t.Error("the hash does not depend on the key")
	}
	if hashUserCode(k1, "BCDFGHJK") == hashUserCode(k1, "BCDFGHJL") {
		t.Error("two codes hash alike")
	}
}

func TestWithUserCode(t *testing.T) {
	tests := []struct{ uri, want string }{
		{"https://api.example.com/oauth/device", "https://api.example.com/oauth/device?user_code=BCDF-GHJK"},
		{"https://api.example.com/device?lang=de", "https://api.example.com/device?lang=de&user_code=BCDF-GHJK"},
	}
	for _, tt := range tests {
		if got := withUserCode(tt.uri, "BCDF-GHJK"); got != tt.want {
			t.Errorf("withUserCode(%q) = %q, want %q", tt.uri, got, tt.want)
		}
	}
}
