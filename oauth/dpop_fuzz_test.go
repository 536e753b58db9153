package oauth

import (
	"errors"
	"strings"
	"testing"

	"github.com/tokengate/caddy-tokengate/internal/dpoptest"
)

func FuzzDPoPHTU(f *testing.F) {
	for _, seed := range []string{
		"", "https://server.example.com/token", "HTTPS://Server.Example.COM:443/token?x#y",
		"http://h:80", "https://[::1]:443/a/../b", "https://h/%7e%2f%zz", "https://h/a/./b/../../c/",
		"https://u@h/", "https://h:/", "https://[::1", "https://h:99999999999999999999/", "ftp://h/",
		"https://h/..", "https://h/%2E%2e/x", "https://h/a%", "https://h/\xff", "http://::",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, u string) {
		n, ok := normalizeHTU(u)
		if !ok {
			if sameHTU(u, u) {
				t.Fatalf("sameHTU(%q, itself) with no normal form", u)
			}
			return
		}
		// The normal form is a fixed point and names the same resource.
		n2, ok2 := normalizeHTU(n)
		if !ok2 || n2 != n {
			t.Fatalf("normalizeHTU(%q) = %q, whose own normal form is %q (%v)", u, n, n2, ok2)
		}
		if !sameHTU(u, n) || !sameHTU(n, u) {
			t.Fatalf("%q and its normal form %q do not match", u, n)
		}
		if strings.ContainsAny(n, "?#") {
			t.Fatalf("normal form %q of %q keeps a query or fragment", n, u)
		}
	})
}

func FuzzDPoPVerify(f *testing.F) {
	k := dpoptest.NewKey("ES256")
	for _, seed := range []string{
		"", ".", "..", "a.b.c", rfc9449TokenProof,
		k.Proof("POST", tokenURI, "", dpoptest.At(dpopT0)),
		k.Proof("POST", tokenURI, "", dpoptest.At(dpopT0), dpoptest.Alg("none")),
		k.Proof("POST", tokenURI, "", dpoptest.At(dpopT0), dpoptest.PrivateJWK()),
		k.Proof("POST", tokenURI, "", dpoptest.At(dpopT0), dpoptest.Claim("iat", "x")),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, proof string) {
		v := NewDPoPVerifier(DPoPConfig{MaxProofs: 64})
		jkt, err := v.Verify(proof, "POST", tokenURI, "", dpopT0)
		if err == nil {
			// Only a proof signed by its jwk gets here; the same again
			// is a replay.
			if jkt == "" {
				t.Fatalf("Verify(%q) accepted with no jkt", proof)
			}
			if _, err := v.Verify(proof, "POST", tokenURI, "", dpopT0); err != errDPoPReplay {
				t.Fatalf("Verify(%q) twice: %v", proof, err)
			}
			return
		}
		var oe *Error
		if !errors.As(err, &oe) || oe.Code != "invalid_dpop_proof" || oe.Description == "" || jkt != "" {
			t.Fatalf("Verify(%q) = %q, %#v; want an invalid_dpop_proof refusal", proof, jkt, err)
		}
	})
}
