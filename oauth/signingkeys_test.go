package oauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"math/big"
	"strings"
	"testing"
	"time"
)

// RFC 7638 3.1: the thumbprint of the RSA key of RFC 7517 A.1.
func TestThumbprintRFC7638Example(t *testing.T) {
	n, err := base64.RawURLEncoding.DecodeString("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw")
	if err != nil {
		t.Fatal(err)
	}
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: 65537}
	got, err := Thumbprint(pub)
	if err != nil {
		t.Fatal(err)
	}
	if want := "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"; got != want {
		t.Errorf("Thumbprint = %s, want %s", got, want)
	}
	if !wellFormedKID(got) {
		t.Errorf("the RFC 7638 thumbprint %s is not a well-formed kid", got)
	}
}

func TestNewStoredSigningKey(t *testing.T) {
	created := time.Unix(1_900_000_000, 0)
	retire := created.Add(48 * time.Hour)
	tests := []struct {
		alg   string
		check func(t *testing.T, pub any)
	}{
		{AlgRS256, func(t *testing.T, pub any) {
			k, ok := pub.(*rsa.PublicKey)
			if !ok || k.N.BitLen() != 2048 {
				t.Errorf("RS256 public key = %T, want a 2048-bit *rsa.PublicKey", pub)
			}
		}},
		{AlgES256, func(t *testing.T, pub any) {
			k, ok := pub.(*ecdsa.PublicKey)
			if !ok || k.Curve != elliptic.P256() {
				t.Errorf("ES256 public key = %T, want a P-256 *ecdsa.PublicKey", pub)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.alg, func(t *testing.T) {
			s, err := newStoredSigningKey(tt.alg, 42, created, retire)
			if err != nil {
				t.Fatal(err)
			}
			if s.Slot != 42 || s.Alg != tt.alg || !s.CreatedAt.Equal(created) || !s.RetireAt.Equal(retire) {
				t.Errorf("stored key = slot %d alg %s created %v retire %v", s.Slot, s.Alg, s.CreatedAt, s.RetireAt)
			}
			// Private keys are kept as PKCS #8 DER.
			raw, err := x509.ParsePKCS8PrivateKey(s.PrivateKey)
			if err != nil {
				t.Fatalf("private key is not PKCS #8 DER: %v", err)
			}
			k, err := parseSigningKey(s)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, k.Public())
			if !raw.(interface{ Equal(crypto.PrivateKey) bool }).Equal(k.private) {
				t.Error("the parsed key is not the stored one")
			}
			want, err := Thumbprint(k.Public())
			if err != nil {
				t.Fatal(err)
			}
			if s.KID != want || k.KID() != want || !wellFormedKID(want) {
				t.Errorf("kid = %q / %q, want the thumbprint %q (43 base64url characters)", s.KID, k.KID(), want)
			}
			if k.Alg() != tt.alg || !k.RetireAt().Equal(retire) {
				t.Errorf("key alg %s retire %v, want %s %v", k.Alg(), k.RetireAt(), tt.alg, retire)
			}
			// Two keys are never the same.
			other, err := newStoredSigningKey(tt.alg, 42, created, retire)
			if err != nil {
				t.Fatal(err)
			}
			if other.KID == s.KID {
				t.Error("two generated keys have the same kid")
			}
		})
	}
	if _, err := newStoredSigningKey("HS256", 1, created, retire); err == nil {
		t.Error("newStoredSigningKey(HS256) succeeded")
	}
}

// A stored row whose kid, alg or key does not fit is never used: it would
// mean the database was altered.
func TestParseSigningKeyRefusesMismatch(t *testing.T) {
	at := time.Unix(1_900_000_000, 0)
	ec, err := newStoredSigningKey(AlgES256, 1, at, at)
	if err != nil {
		t.Fatal(err)
	}
	other, err := newStoredSigningKey(AlgES256, 1, at, at)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		mutate func(k *StoredSigningKey)
	}{
		{"kid of another key", func(k *StoredSigningKey) { k.KID = other.KID }},
		{"EC key stored as RS256", func(k *StoredSigningKey) { k.Alg = AlgRS256 }},
		{"unknown alg", func(k *StoredSigningKey) { k.Alg = "none" }},
		{"truncated DER", func(k *StoredSigningKey) { k.PrivateKey = k.PrivateKey[:len(k.PrivateKey)/2] }},
		{"empty DER", func(k *StoredSigningKey) { k.PrivateKey = nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := ec
			k.PrivateKey = append([]byte(nil), ec.PrivateKey...)
			tt.mutate(&k)
			if got, err := parseSigningKey(k); err == nil {
				t.Errorf("parseSigningKey = %s, want an error", got.KID())
			}
		})
	}
	if _, err := parseSigningKey(ec); err != nil {
		t.Errorf("the unaltered key: %v", err)
	}
}

func TestWellFormedKID(t *testing.T) {
	good := "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
	tests := []struct {
		kid  string
		want bool
	}{
		{good, true},
		{"", false},
		{good[:42], false},
		{good + "A", false},
		{"../../../../../../../../etc/passwd" + strings.Repeat("A", 9), false},
		{"x' OR '1'='1'; DROP TABLE oauth_signing_keys--", false},
		{strings.Repeat("A", 42) + "=", false},
		{strings.Repeat("A", 42) + "+", false},
		{strings.Repeat("A", 42) + "/", false},
		{strings.Repeat("A", 42) + "\x00", false},
		{strings.Repeat("é", 21) + "A", false},
		{strings.Repeat("A", 1<<16), false},
	}
	for _, tt := range tests {
		if got := wellFormedKID(tt.kid); got != tt.want {
			t.Errorf("wellFormedKID(%.50q) = %v, want %v", tt.kid, got, tt.want)
		}
	}
}
