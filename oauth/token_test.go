package oauth

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"strings"
	"testing"
)

// Reference implementation of the token layout, written
// independently of token.go so the tests do not check the code against
// itself: "tg" + kind + "_" + base64url(32 random bytes) + base64url(big-endian
// CRC-32C of everything before).

var refCastagnoli = crc32.MakeTable(crc32.Castagnoli)

const b64url = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// refChecksum returns the 6-character checksum of a token's first 47 characters.
func refChecksum(prefixAndBody string) string {
	var sum [4]byte
	binary.BigEndian.PutUint32(sum[:], crc32.Checksum([]byte(prefixAndBody), refCastagnoli))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// withChecksum appends the right checksum to a token's first 47 characters,
// so a test can change the body and still present a matching checksum.
func withChecksum(prefixAndBody string) string {
	return prefixAndBody + refChecksum(prefixAndBody)
}

// refTokenValid reports whether text is a well-formed token of any kind:
// right length and prefix, a body that is the canonical unpadded base64url
// of 32 bytes, and a checksum that is the canonical encoding of the CRC.
func refTokenValid(text string) bool {
	if len(text) != TokenLen || !strings.HasPrefix(text, "tg") || text[3] != '_' {
		return false
	}
	if !strings.ContainsRune("arpcxd", rune(text[2])) {
		return false
	}
	for i := 4; i < len(text); i++ {
		if strings.IndexByte(b64url, text[i]) < 0 {
			return false
		}
	}
	strict := base64.RawURLEncoding.Strict()
	body, err := strict.DecodeString(text[4:47])
	if err != nil || len(body) != 32 || base64.RawURLEncoding.EncodeToString(body) != text[4:47] {
		return false
	}
	sum, err := strict.DecodeString(text[47:])
	if err != nil || len(sum) != 4 || base64.RawURLEncoding.EncodeToString(sum) != text[47:] {
		return false
	}
	return binary.BigEndian.Uint32(sum) == crc32.Checksum([]byte(text[:47]), refCastagnoli)
}

func mustNewToken(tb testing.TB, k Kind) (string, TokenHash) {
	tb.Helper()
	text, h, err := NewToken(k)
	if err != nil {
		tb.Fatalf("NewToken(%q): %v", k, err)
	}
	return text, h
}

// replaceAt returns s with the byte at i replaced by c.
func replaceAt(s string, i int, c byte) string {
	b := []byte(s)
	b[i] = c
	return string(b)
}

var allKinds = []struct {
	kind   Kind
	prefix string
	name   string
}{
	{KindAccess, "tga_", "oauth"},
	{KindRefresh, "tgr_", "refresh"},
	{KindPersonal, "tgp_", "personal"},
	{KindCode, "tgc_", "code"},
	{KindRegistration, "tgx_", "registration"},
	{KindDevice, "tgd_", "device"},
}

func TestTokenLenIsPrefixBodyAndChecksum(t *testing.T) {
	// 256 random bits (43 base64url characters) plus a checksum.
	if TokenLen != 4+43+6 {
		t.Fatalf("TokenLen = %d, want %d", TokenLen, 4+43+6)
	}
}

func TestNewToken(t *testing.T) {
	for _, tc := range allKinds {
		t.Run("SPEC2_prefix_"+tc.prefix, func(t *testing.T) {
			text, h := mustNewToken(t, tc.kind)
			if len(text) != TokenLen {
				t.Errorf("len(%q) = %d, want TokenLen %d", text, len(text), TokenLen)
			}
			if !strings.HasPrefix(text, tc.prefix) {
				t.Errorf("token %q lacks prefix %q", text, tc.prefix)
			}
			k, err := ParseToken(text)
			if err != nil || k != tc.kind {
				t.Errorf("ParseToken(%q) = %q, %v; want %q, nil", text, k, err, tc.kind)
			}
			if h != HashToken(text) {
				t.Errorf("NewToken returned a hash other than HashToken(text)")
			}
			if !refTokenValid(text) {
				t.Errorf("token %q does not match the reference layout", text)
			}
			body, err := base64.RawURLEncoding.Strict().DecodeString(text[4:47])
			if err != nil || len(body) != 32 {
				t.Errorf("body of %q decodes to %d bytes (%v), want 32 random bytes", text, len(body), err)
			}
		})
	}
}

func TestNewTokenTwoTokensDiffer(t *testing.T) {
	// Every token carries at least 256 bits from crypto/rand.
	const n = 1000
	seenText := make(map[string]bool, n)
	seenBody := make(map[string]bool, n)
	for i := 0; i < n; i++ {
		text, _ := mustNewToken(t, KindAccess)
		if seenText[text] || seenBody[text[4:47]] {
			t.Fatalf("token %q repeated after %d tokens", text, i)
		}
		seenText[text] = true
		seenBody[text[4:47]] = true
	}
	// The same random body never appears under two kinds either.
	a, _ := mustNewToken(t, KindAccess)
	r, _ := mustNewToken(t, KindRefresh)
	if a[4:47] == r[4:47] {
		t.Fatalf("access and refresh tokens share a body: %q %q", a, r)
	}
}

func TestTokenKindString(t *testing.T) {
	// X-Authenticated-Token-Type is "oauth" or "personal".
	for _, tc := range allKinds {
		if got := tc.kind.String(); got != tc.name {
			t.Errorf("Kind(%q).String() = %q, want %q", tc.kind, got, tc.name)
		}
	}
	for _, k := range []Kind{0, 'z', 'A', 'P'} {
		if got := k.String(); got != "unknown" {
			t.Errorf("Kind(%q).String() = %q, want unknown", k, got)
		}
	}
}

func TestParseTokenFormatIsStable(t *testing.T) {
	// Tokens already handed out must keep parsing after an upgrade, so the
	// layout (CRC-32C, big-endian, base64url) is pinned by known texts.
	golden := []struct {
		text string
		kind Kind
	}{
		{"tga_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAASdeS1w", KindAccess},
		{"tgp_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA0izLUA", KindPersonal},
		{"tgr_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh87e3QiQ", KindRefresh},
	}
	for _, g := range golden {
		k, err := ParseToken(g.text)
		if err != nil || k != g.kind {
			t.Errorf("ParseToken(%q) = %q, %v; want %q, nil", g.text, k, err, g.kind)
		}
		if !refTokenValid(g.text) {
			t.Errorf("reference rejects golden token %q", g.text)
		}
	}
	// The checksum is CRC-32C (Castagnoli): check the reference itself.
	if got := crc32.Checksum([]byte("123456789"), refCastagnoli); got != 0xe3069283 {
		t.Fatalf("CRC-32C check value = %08x, want e3069283", got)
	}
}

func TestParseTokenRefuses(t *testing.T) {
	real, _ := mustNewToken(t, KindPersonal)
	body := real[4:47]
	// A checksum computed correctly over a bad prefix isolates the prefix rule
	// from the checksum rule.
	cases := []struct {
		name string
		text string
	}{
		{"SPEC2_empty", ""},
		{"SPEC2_length_short_by_one", real[:TokenLen-1]},
		{"SPEC2_length_long_by_one", real + "A"},
		{"SPEC2_length_prefix_only", "tgp_"},
		{"SPEC2_length_double", real + real},
		{"SPEC2_unknown_kind_z", withChecksum("tgz_" + body)},
		{"SPEC2_unknown_kind_uppercase_P", withChecksum("tgP_" + body)},
		{"SPEC2_unknown_kind_zero_byte", withChecksum("tg\x00_" + body)},
		{"SPEC2_unknown_kind_underscore", withChecksum("tg__" + body)},
		{"SPEC2_wrong_prefix_uppercase_TG", withChecksum("TGp_" + body)},
		{"SPEC2_wrong_prefix_Tg", withChecksum("Tgp_" + body)},
		{"SPEC2_wrong_prefix_xg", withChecksum("xgp_" + body)},
		{"SPEC2_wrong_prefix_tx", withChecksum("txp_" + body)},
		{"SPEC2_wrong_separator_dash", withChecksum("tgp-" + body)},
		{"SPEC2_wrong_separator_dot", withChecksum("tgp." + body)},
		{"SPEC2_leading_space", " " + real[:TokenLen-1]},
		{"SPEC2_trailing_space", real[1:] + " "},
		{"SPEC2_all_spaces", strings.Repeat(" ", TokenLen)},
		{"SPEC2_all_zero_bytes", strings.Repeat("\x00", TokenLen)},
	}
	for _, c := range []struct {
		name string
		c    byte
	}{
		{"plus", '+'}, {"slash", '/'}, {"equals", '='}, {"space", ' '},
		{"dot", '.'}, {"tilde", '~'}, {"nul", 0}, {"newline", '\n'},
		{"carriage_return", '\r'}, {"tab", '\t'}, {"high_byte", 0xc3}, {"del", 0x7f},
	} {
		// In the body, with the checksum recomputed over it, and in the
		// checksum itself.
		cases = append(cases,
			struct{ name, text string }{"RFC4648_5_non_base64url_in_body_" + c.name, withChecksum("tgp_" + replaceAt(body, 20, c.c))},
			struct{ name, text string }{"RFC4648_5_non_base64url_in_checksum_" + c.name, replaceAt(real, TokenLen-3, c.c)},
		)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.text != "" && refTokenValid(tc.text) {
				t.Fatalf("bad case: reference accepts %q", tc.text)
			}
			k, err := ParseToken(tc.text)
			if !errors.Is(err, ErrMalformedToken) {
				t.Fatalf("ParseToken(%q) = %q, %v; want ErrMalformedToken", tc.text, k, err)
			}
		})
	}
}

func TestParseTokenRefusesNonCanonicalTrailingBits(t *testing.T) {
	// RFC 4648 3.5: the unused bits of the last character must be zero, or
	// two texts would decode to the same bytes.
	for _, tc := range allKinds {
		real, _ := mustNewToken(t, tc.kind)
		last := strings.IndexByte(b64url, real[46])
		for bits := 1; bits < 4; bits++ {
			// Body: 2 padding bits in its 43rd character; checksum recomputed
			// so only the padding rule can refuse it.
			text := withChecksum(real[:46] + string(b64url[last|bits]))
			if _, err := ParseToken(text); !errors.Is(err, ErrMalformedToken) {
				t.Errorf("RFC4648_3.5_body_padding_bits_%d: ParseToken(%q) = %v, want ErrMalformedToken", bits, text, err)
			}
		}
		sumLast := strings.IndexByte(b64url, real[TokenLen-1])
		for bits := 1; bits < 16; bits++ {
			text := real[:TokenLen-1] + string(b64url[sumLast|bits])
			if _, err := ParseToken(text); !errors.Is(err, ErrMalformedToken) {
				t.Errorf("RFC4648_3.5_checksum_padding_bits_%d: ParseToken(%q) = %v, want ErrMalformedToken", bits, text, err)
			}
		}
	}
}

func TestParseTokenChecksumCatchesEverySingleCharacterChange(t *testing.T) {
	// A mistyped token is refused without touching the store. Change
	// every position of real tokens to every other base64url character (and
	// every other kind letter), and expect a refusal each time.
	for _, tc := range allKinds {
		t.Run(tc.prefix, func(t *testing.T) {
			for n := 0; n < 4; n++ {
				real, _ := mustNewToken(t, tc.kind)
				for i := 0; i < TokenLen; i++ {
					alphabet := b64url
					if i == 2 {
						alphabet = "arpcd"
					}
					for j := 0; j < len(alphabet); j++ {
						c := alphabet[j]
						if c == real[i] {
							continue
						}
						text := replaceAt(real, i, c)
						if k, err := ParseToken(text); err == nil {
							t.Fatalf("ParseToken accepted %q (kind %q), %q with position %d changed to %q",
								text, k, real, i, c)
						}
					}
				}
			}
		})
	}
}

func TestParseTokenAcceptsExactlyTheReferenceLayout(t *testing.T) {
	// Tokens built by the reference from chosen bodies parse, under every kind.
	bodies := [][]byte{
		make([]byte, 32),
		[]byte(strings.Repeat("\xff", 32)),
		[]byte("0123456789abcdef0123456789abcdef"),
	}
	for _, tc := range allKinds {
		for _, b := range bodies {
			text := withChecksum(tc.prefix + base64.RawURLEncoding.EncodeToString(b))
			k, err := ParseToken(text)
			if err != nil || k != tc.kind {
				t.Errorf("ParseToken(%q) = %q, %v; want %q, nil", text, k, err, tc.kind)
			}
		}
	}
}

func TestParseTokenAllocatesNothing(t *testing.T) {
	// token.go documents "It allocates nothing": ParseToken runs on every
	// request, before the cache.
	//
	// Regression guard: converting text[:47] to []byte for crc32.Checksum
	// escapes through crc32's indirect update call and allocates 48 bytes.
	text, _ := mustNewToken(t, KindAccess)
	bad := replaceAt(text, 10, 'A')
	if bad == text {
		bad = replaceAt(text, 10, 'B')
	}
	for _, in := range []string{text, bad} {
		allocs := testing.AllocsPerRun(100, func() {
			_, _ = ParseToken(in)
		})
		if allocs != 0 {
			t.Errorf("ParseToken(%q) allocates %.0f times per call, want 0", in, allocs)
		}
	}
}

func TestHashToken(t *testing.T) {
	// The store keeps only a hash of each token.
	text, h := mustNewToken(t, KindRefresh)
	if got := HashToken(text); got != h {
		t.Errorf("HashToken not stable: %x then %x", h, got)
	}
	if got, want := HashToken(text), TokenHash(sha256.Sum256([]byte(text))); got != want {
		t.Errorf("HashToken(%q) = %x, want sha256 %x", text, got, want)
	}
	if HashToken(text) != HashToken(strings.Clone(text)) {
		t.Errorf("HashToken depends on more than the text")
	}
	// The kind letter is part of what is hashed.
	other := withChecksum("tga_" + text[4:47])
	if HashToken(other) == HashToken(text) {
		t.Errorf("tokens differing only in kind share a hash")
	}
	if got, want := HashToken(""), TokenHash(sha256.Sum256(nil)); got != want {
		t.Errorf("HashToken(\"\") = %x, want %x", got, want)
	}
}

func TestTokenHint(t *testing.T) {
	// The hint looks like "tgp_abcd".
	real, _ := mustNewToken(t, KindPersonal)
	cases := []struct {
		name, text, want string
	}{
		{"SPEC4.7_prefix_and_four_characters", real, real[:8]},
		{"SPEC4.7_golden", "tgp_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA0izLUA", "tgp_AAAA"},
		{"short_text_unchanged", "tgp_ab", "tgp_ab"},
		{"exactly_hint_length", "tgp_abcd", "tgp_abcd"},
		{"empty", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := TokenHint(tc.text); got != tc.want {
				t.Errorf("TokenHint(%q) = %q, want %q", tc.text, got, tc.want)
			}
		})
	}
	// The hint reveals at most 4 of the 43 random characters.
	if h := TokenHint(real); len(h) != 8 || !strings.HasPrefix(real, h) {
		t.Errorf("TokenHint(%q) = %q, want the first 8 characters", real, h)
	}
}
