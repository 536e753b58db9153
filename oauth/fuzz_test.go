package oauth

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

// bearerReference is RFC 6750 2.1 with the scheme case-insensitive and one
// or more spaces before a token68 (RFC 9110 11.1, 11.2), except that '=' is
// allowed anywhere, as bearer.go documents. The (?i) flag folds only the
// letters of "bearer", none of which has a non-ASCII fold in Go's tables
// that is not also one of them.
var bearerReference = regexp.MustCompile(`^(?i:bearer) +([A-Za-z0-9\-._~+/=]+)$`)

func FuzzBearerToken(f *testing.F) {
	real, _ := mustNewToken(f, KindAccess)
	for _, seed := range []string{
		"", "Bearer", "Bearer ", "Bearer x", "bearer x", "BEARER x", "BeArEr   x",
		"Bearer " + real, "Bearer  " + real, "Basic abc", "Bearerx", "Bearer\tx",
		"Bearer x y", "Bearer x ", "Bearer t\u00f6k\u00e9n", "Bearer a-._~+/=",
		"Bearer abc==", " Bearer x", "B\u0435arer x", "Bearer\u00a0x", "Bearer a\x00b",
		"bEARER \xff", "Bearer \u2713", "Bearer =", "DPoP " + real,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, header string) {
		tok, err := BearerToken([]string{header})
		want := bearerReference.FindStringSubmatch(header)
		if err != nil {
			if !errors.Is(err, ErrBadAuthorization) {
				t.Fatalf("BearerToken(%q): %v; one header value can only be ErrBadAuthorization", header, err)
			}
			if tok != "" {
				t.Fatalf("BearerToken(%q) returned %q with error %v", header, tok, err)
			}
			if want != nil {
				t.Fatalf("BearerToken(%q) refused a header the reference accepts (token %q)", header, want[1])
			}
			return
		}
		if tok == "" {
			t.Fatalf("BearerToken(%q) returned an empty token", header)
		}
		if strings.ContainsAny(tok, " \t\r\n") {
			t.Fatalf("BearerToken(%q) = %q contains white space", header, tok)
		}
		if len(header) < 7 || !strings.EqualFold(header[:7], "bearer ") {
			t.Fatalf("BearerToken(%q) = %q, but the header does not start with \"bearer \"", header, tok)
		}
		if !strings.HasSuffix(header, tok) || strings.TrimLeft(header[6:], " ") != tok {
			t.Fatalf("BearerToken(%q) = %q is not what follows the spaces", header, tok)
		}
		for i := 0; i < len(tok); i++ {
			if !strings.ContainsRune("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/=", rune(tok[i])) {
				t.Fatalf("BearerToken(%q) = %q holds %q, outside token68", header, tok, tok[i])
			}
		}
		if want == nil || want[1] != tok {
			t.Fatalf("BearerToken(%q) = %q, reference says %q", header, tok, want)
		}
	})
}

func FuzzParseToken(f *testing.F) {
	for _, k := range []Kind{KindAccess, KindRefresh, KindPersonal, KindCode, KindRegistration, KindDevice} {
		real, _ := mustNewToken(f, k)
		f.Add(real)
		f.Add(real[:TokenLen-1])
		f.Add(real + "A")
		f.Add(replaceAt(real, 10, '+'))
		f.Add(replaceAt(real, 2, 'z'))
		f.Add(replaceAt(real, TokenLen-1, 'B'))
		f.Add(strings.ToUpper(real))
		// A right checksum over a non-canonical body.
		f.Add(withChecksum(real[:46] + "B"))
	}
	f.Add("")
	f.Add("tga_")
	f.Add("tga_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAASdeS1w")
	f.Add("tgp_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA0izLUA")
	f.Add(strings.Repeat("\x00", TokenLen))
	f.Add(strings.Repeat("\xff", TokenLen))
	f.Fuzz(func(t *testing.T, text string) {
		k, err := ParseToken(text)
		ref := refTokenValid(text)
		if err != nil {
			if !errors.Is(err, ErrMalformedToken) {
				t.Fatalf("ParseToken(%q): %v, want ErrMalformedToken", text, err)
			}
			if ref {
				t.Fatalf("ParseToken(%q) refused a token the reference accepts", text)
			}
			return
		}
		if len(text) != TokenLen {
			t.Fatalf("ParseToken accepted %q of length %d, want %d", text, len(text), TokenLen)
		}
		if k != Kind(text[2]) || k.String() == "unknown" {
			t.Fatalf("ParseToken(%q) = kind %q", text, k)
		}
		// Re-encoding check: what is accepted carries the checksum of its
		// own prefix and body, in canonical form.
		if withChecksum(text[:47]) != text {
			t.Fatalf("ParseToken accepted %q, whose checksum should be %q", text, refChecksum(text[:47]))
		}
		if !ref {
			t.Fatalf("ParseToken accepted %q, which the reference refuses", text)
		}
	})
}
