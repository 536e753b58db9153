package oauth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// The JWS algorithms tokengate signs with (RFC 7518 3.1).
const (
	AlgRS256 = "RS256" // RSASSA-PKCS1-v1_5 with SHA-256, on an RSA 2048 key; the default
	AlgES256 = "ES256" // ECDSA with SHA-256, on a P-256 key
)

// signingRSABits is the size of the RSA keys generated (RFC 7518 3.3 asks
// for at least 2048).
const signingRSABits = 2048

// kidLen is the length of every kid: the unpadded base64url of a SHA-256
// thumbprint.
const kidLen = 43

// ErrSigningKeysUnavailable wraps a store failure that left the key ring
// without the key it needed; like any store outage, it is answered with 503.
var ErrSigningKeysUnavailable = errors.New("signing keys unavailable")

// StoredSigningKey is a signing key as the store keeps it. A key belongs to
// one rotation slot and one algorithm; the store holds at most one key per
// (Slot, Alg), the first one inserted.
type StoredSigningKey struct {
	KID        string    // RFC 7638 thumbprint of the public key
	Slot       int64     // the rotation slot the key signs in
	Alg        string    // AlgRS256 or AlgES256
	PrivateKey []byte    // PKCS #8 DER
	CreatedAt  time.Time // when the key was made, and published
	RetireAt   time.Time // when every token it may have signed has expired
}

// SigningKeyStore keeps the signing keys of a deployment, shared by every
// instance of a cluster. Agreement on the key of a slot comes from the
// store alone: each instance inserts its candidate only if the slot has
// none yet, and then uses whichever key the store kept.
type SigningKeyStore interface {
	// InsertSigningKey stores k unless the store already has a key for
	// k.Slot and k.Alg; inserted reports whether k was stored.
	InsertSigningKey(ctx context.Context, k StoredSigningKey) (inserted bool, err error)
	// ExtendSigningKey moves the RetireAt of key kid to retireAt, if that
	// is later than the stored one; it never brings a retirement forward.
	// A missing key is not an error.
	ExtendSigningKey(ctx context.Context, kid string, retireAt time.Time) error
	// SigningKeys returns every stored key, retired or not.
	SigningKeys(ctx context.Context) ([]StoredSigningKey, error)
	// PurgeSigningKeys deletes the keys retired by then (RetireAt not
	// after it) and returns how many it deleted.
	PurgeSigningKeys(ctx context.Context, retiredBy time.Time) (int, error)
}

// SigningKey is a key ready to sign, or to verify what it signed.
type SigningKey struct {
	kid      string
	alg      string
	slot     int64
	private  crypto.Signer // *rsa.PrivateKey or *ecdsa.PrivateKey
	public   crypto.PublicKey
	retireAt time.Time
}

// KID returns the key's id, its RFC 7638 thumbprint.
func (k *SigningKey) KID() string { return k.kid }

// Alg returns the one JWS algorithm the key signs and verifies with.
func (k *SigningKey) Alg() string { return k.alg }

// Public returns the public key: *rsa.PublicKey or *ecdsa.PublicKey.
func (k *SigningKey) Public() crypto.PublicKey { return k.public }

// RetireAt returns when the key leaves the key set: no token it signs may
// expire later.
func (k *SigningKey) RetireAt() time.Time { return k.retireAt }

// newStoredSigningKey generates a key of alg for slot.
func newStoredSigningKey(alg string, slot int64, createdAt, retireAt time.Time) (StoredSigningKey, error) {
	var (
		priv crypto.Signer
		err  error
	)
	switch alg {
	case AlgRS256:
		priv, err = rsa.GenerateKey(rand.Reader, signingRSABits)
	case AlgES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		return StoredSigningKey{}, fmt.Errorf("signing key: unsupported alg %q", alg)
	}
	if err != nil {
		return StoredSigningKey{}, fmt.Errorf("signing key: generate %s: %w", alg, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return StoredSigningKey{}, fmt.Errorf("signing key: encode: %w", err)
	}
	kid, err := Thumbprint(priv.Public())
	if err != nil {
		return StoredSigningKey{}, err
	}
	return StoredSigningKey{
		KID:        kid,
		Slot:       slot,
		Alg:        alg,
		PrivateKey: der,
		CreatedAt:  createdAt,
		RetireAt:   retireAt,
	}, nil
}

// parseSigningKey turns a stored key into one ready for use, refusing a
// key whose type does not fit its alg or whose kid is not its thumbprint:
// either would mean the row was altered.
func parseSigningKey(s StoredSigningKey) (*SigningKey, error) {
	raw, err := x509.ParsePKCS8PrivateKey(s.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", s.KID, err)
	}
	var priv crypto.Signer
	switch k := raw.(type) {
	case *rsa.PrivateKey:
		if s.Alg != AlgRS256 || k.N.BitLen() < minRSABits {
			return nil, fmt.Errorf("signing key %s: RSA key of %d bits for alg %q", s.KID, k.N.BitLen(), s.Alg)
		}
		priv = k
	case *ecdsa.PrivateKey:
		if s.Alg != AlgES256 || k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("signing key %s: EC key for alg %q", s.KID, s.Alg)
		}
		priv = k
	default:
		return nil, fmt.Errorf("signing key %s: key type %T not supported", s.KID, raw)
	}
	kid, err := Thumbprint(priv.Public())
	if err != nil {
		return nil, err
	}
	if kid != s.KID {
		return nil, fmt.Errorf("signing key %s: kid is not the key's thumbprint", s.KID)
	}
	return &SigningKey{
		kid:      kid,
		alg:      s.Alg,
		slot:     s.Slot,
		private:  priv,
		public:   priv.Public(),
		retireAt: s.RetireAt,
	}, nil
}

// Thumbprint returns the RFC 7638 thumbprint of a public key: the SHA-256
// of its canonical JWK members, unpadded base64url. It names tokengate's
// signing keys (their kid) and is the jkt of RFC 9449.
func Thumbprint(pub crypto.PublicKey) (string, error) {
	sum, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(sum), nil
}

// wellFormedKID reports whether kid can be one of ours: 43 base64url
// characters. Anything else is refused before any look-up, so a token's
// header cannot make the ring ask the store.
func wellFormedKID(kid string) bool {
	if len(kid) != kidLen {
		return false
	}
	for i := 0; i < len(kid); i++ {
		c := kid[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
