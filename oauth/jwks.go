package oauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	// maxJWKSSize bounds the key set response, so a misbehaving or hostile
	// endpoint cannot make us buffer an arbitrary amount of memory.
	maxJWKSSize = 1 << 20

	// jwksRefetchInterval is the minimum time between two refetches of a key
	// set that is already loaded. A token naming an unknown kid is cheap for
	// anyone to forge; without this limit each one would cost a request to the
	// identity provider.
	jwksRefetchInterval = time.Minute

	// jwksRetryInterval is the minimum time between two attempts to load a key
	// set that has never been fetched successfully: short, because nothing can
	// be verified until it succeeds, but not zero, so an outage of the identity
	// provider is not answered with a request per incoming token.
	jwksRetryInterval = 5 * time.Second

	// jwksMaxAge is how long a loaded key set is trusted without asking again,
	// so a key withdrawn by the identity provider stops being accepted.
	jwksMaxAge = time.Hour

	// jwksFetchTimeout bounds a fetch even when the configured HTTP client has
	// no timeout of its own.
	jwksFetchTimeout = 10 * time.Second

	// minRSABits is the smallest RSA modulus accepted (RFC 7518 3.3).
	minRSABits = 2048
)

// Reasons a key lookup fails; their messages are shown to clients, so they
// say nothing about the token or the keys.
var (
	errUnknownKey   = errors.New("no key matches the token's kid and alg")
	errKeyAlg       = errors.New("token alg does not match the key")
	errAmbiguousKey = errors.New("token has no kid and several keys fit its alg")
)

// jwk is one key of a JWK Set as published (RFC 7517 4, RFC 7518 6).
type jwk struct {
	Kty    string   `json:"kty"`
	Use    string   `json:"use"`
	KeyOps []string `json:"key_ops"`
	Alg    string   `json:"alg"`
	Kid    string   `json:"kid"`
	Crv    string   `json:"crv"`
	N      string   `json:"n"`
	E      string   `json:"e"`
	X      string   `json:"x"`
	Y      string   `json:"y"`
}

// publicKey is a verification key ready for use: the one JWS algorithm it
// may verify and the key in the form jwt/v5 expects for that algorithm.
type publicKey struct {
	kid string
	alg string
	key any
}

// parseJWKS decodes a JWK Set (RFC 7517 5) and keeps the keys usable to verify
// RS256, ES256 or EdDSA signatures. Keys meant for encryption, of a type or
// curve not supported, declaring another algorithm, or malformed are skipped
// rather than failing the whole set, so one odd key published next to the
// signing keys does not stop verification.
func parseJWKS(data []byte) ([]publicKey, error) {
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("decoding JWK set: %w", err)
	}
	keys := make([]publicKey, 0, len(set.Keys))
	for _, k := range set.Keys {
		if pk, ok := k.publicKey(); ok {
			keys = append(keys, pk)
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("JWK set has no usable signature key")
	}
	return keys, nil
}

// publicKey converts k, reporting false when it must not be used.
func (k *jwk) publicKey() (publicKey, bool) {
	// RFC 7517 4.2 and 4.3: a key published for encryption must not verify
	// signatures.
	if k.Use != "" && k.Use != "sig" {
		return publicKey{}, false
	}
	if k.KeyOps != nil && !slices.Contains(k.KeyOps, "verify") {
		return publicKey{}, false
	}
	var (
		alg string
		key any
		err error
	)
	switch k.Kty {
	case "RSA":
		alg = jwt.SigningMethodRS256.Alg()
		key, err = k.rsaKey()
	case "EC":
		alg = jwt.SigningMethodES256.Alg()
		key, err = k.ecKey()
	case "OKP":
		alg = jwt.SigningMethodEdDSA.Alg()
		key, err = k.ed25519Key()
	default:
		return publicKey{}, false
	}
	// Each key type maps to exactly one accepted algorithm, so a key whose
	// declared alg (RFC 7517 4.4) differs is not usable with any token we
	// would accept; binding key and algorithm this way is what RFC 8725 3.1
	// asks for.
	if err != nil || (k.Alg != "" && k.Alg != alg) {
		return publicKey{}, false
	}
	return publicKey{kid: k.Kid, alg: alg, key: key}, true
}

func (k *jwk) rsaKey() (*rsa.PublicKey, error) {
	n, err := decodeBase64URLUint(k.N)
	if err != nil {
		return nil, err
	}
	e, err := decodeBase64URLUint(k.E)
	if err != nil {
		return nil, err
	}
	if n.BitLen() < minRSABits {
		return nil, errors.New("RSA modulus too small")
	}
	// A public exponent must be odd and greater than 1; anything that does not
	// fit an int is not a key any issuer uses.
	if !e.IsInt64() || e.Int64() > 1<<31-1 || e.Int64() < 3 || e.Bit(0) == 0 {
		return nil, errors.New("bad RSA exponent")
	}
	return &rsa.PublicKey{N: n, E: int(e.Int64())}, nil
}

func (k *jwk) ecKey() (*ecdsa.PublicKey, error) {
	if k.Crv != "P-256" {
		return nil, errors.New("unsupported curve")
	}
	x, err := decodeBase64URL(k.X)
	if err != nil {
		return nil, err
	}
	y, err := decodeBase64URL(k.Y)
	if err != nil {
		return nil, err
	}
	// RFC 7518 6.2.1.2: coordinates are the full field size. Parsing the
	// uncompressed point also rejects one that is not on the curve, the
	// precondition for the invalid-curve attack.
	if len(x) != 32 || len(y) != 32 {
		return nil, errors.New("bad P-256 coordinate length")
	}
	point := make([]byte, 0, 65)
	point = append(point, 4)
	point = append(point, x...)
	point = append(point, y...)
	return ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point)
}

func (k *jwk) ed25519Key() (ed25519.PublicKey, error) {
	// RFC 8037 2: OKP keys name their curve; only Ed25519 signs.
	if k.Crv != "Ed25519" {
		return nil, errors.New("unsupported curve")
	}
	x, err := decodeBase64URL(k.X)
	if err != nil {
		return nil, err
	}
	if len(x) != ed25519.PublicKeySize {
		return nil, errors.New("bad Ed25519 key length")
	}
	return ed25519.PublicKey(x), nil
}

// decodeBase64URL decodes base64url without padding (RFC 7515 2), tolerating
// trailing padding that some publishers add.
func decodeBase64URL(s string) ([]byte, error) {
	if s == "" {
		return nil, errors.New("missing key parameter")
	}
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

// decodeBase64URLUint decodes a Base64urlUInt (RFC 7518 2).
func decodeBase64URLUint(s string) (*big.Int, error) {
	b, err := decodeBase64URL(s)
	if err != nil {
		return nil, err
	}
	return new(big.Int).SetBytes(b), nil
}

// selectKey finds the key for a token's kid and alg. With a kid, the key so
// named must be bound to alg; without one, exactly one key may fit alg, since
// trying several would let the token choose among them.
func selectKey(keys []publicKey, kid, alg string) (any, error) {
	var fit []jwt.VerificationKey
	named := false
	for _, k := range keys {
		if kid != "" && k.kid != kid {
			continue
		}
		named = true
		if k.alg == alg {
			fit = append(fit, k.key)
		}
	}
	switch {
	case len(fit) == 1:
		return fit[0], nil
	case len(fit) > 1 && kid != "":
		// RFC 7517 4.5 asks for distinct kids but does not forbid repeats;
		// the signature must then verify with one of the keys so named.
		return jwt.VerificationKeySet{Keys: fit}, nil
	case len(fit) > 1:
		return nil, errAmbiguousKey
	case kid != "" && named:
		return nil, errKeyAlg
	default:
		return nil, errUnknownKey
	}
}

// jwksCache holds the keys fetched from a JWKS URL. Keys are loaded on first
// need and refetched when a token names a kid not in the set (the identity
// provider rotated its keys) or the set is older than jwksMaxAge, at most once
// per jwksRefetchInterval.
type jwksCache struct {
	url    string
	client *http.Client
	now    func() time.Time

	// fetching admits one fetch at a time; a channel rather than a mutex so
	// that a caller waiting for it can give up when its context ends.
	fetching chan struct{}

	mu    sync.RWMutex
	state jwksState
}

// jwksState is an immutable snapshot of the cache.
type jwksState struct {
	keys        []publicKey // nil until a fetch succeeds
	fetchedAt   time.Time   // last successful fetch
	attemptAt   time.Time   // last attempt of any kind
	refetchAt   time.Time   // last attempt once keys were loaded
	lastErr     error       // outcome of the last attempt
	generation  uint64      // counts attempts
	initialized bool        // a fetch has succeeded
}

func newJWKSCache(url string, client *http.Client, now func() time.Time) *jwksCache {
	return &jwksCache{url: url, client: client, now: now, fetching: make(chan struct{}, 1)}
}

func (c *jwksCache) snapshot() jwksState {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.state
}

// key returns the verification key for kid and alg. Its error is
// ErrUserKeysUnavailable when no key could be loaded, or when the key is not
// known and the last attempt to refresh the set failed; otherwise it is one
// of the lookup errors above, safe to show a client.
func (c *jwksCache) key(ctx context.Context, kid, alg string) (any, error) {
	st := c.snapshot()
	err := errUnknownKey
	if st.initialized {
		var k any
		k, err = selectKey(st.keys, kid, alg)
		if err == nil && c.now().Sub(st.fetchedAt) < jwksMaxAge {
			return k, nil
		}
		if err != nil && !errors.Is(err, errUnknownKey) {
			return nil, err
		}
	}
	// A caller that already has its key only refreshes a stale set if no
	// other fetch is running; one that lacks its key waits for the fetch.
	st, werr := c.refresh(ctx, st.generation, err != nil)
	if werr != nil {
		return nil, keysUnavailable(werr)
	}
	if !st.initialized {
		return nil, keysUnavailable(st.lastErr)
	}
	k, err := selectKey(st.keys, kid, alg)
	if errors.Is(err, errUnknownKey) && st.lastErr != nil {
		// The key may be a rotated one we cannot fetch right now.
		return nil, keysUnavailable(st.lastErr)
	}
	return k, err
}

func keysUnavailable(cause error) error {
	if cause == nil {
		return ErrUserKeysUnavailable
	}
	return fmt.Errorf("%w: %w", ErrUserKeysUnavailable, cause)
}

// refresh fetches the key set unless another caller did so since seen (the
// generation the caller looked at) or the rate limit forbids it, and returns
// the resulting state. With wait false it gives up at once when a fetch is
// already running. Its error is only ever the context's.
func (c *jwksCache) refresh(ctx context.Context, seen uint64, wait bool) (jwksState, error) {
	if wait {
		select {
		case c.fetching <- struct{}{}:
		case <-ctx.Done():
			return jwksState{}, ctx.Err()
		}
	} else {
		select {
		case c.fetching <- struct{}{}:
		default:
			return c.snapshot(), nil
		}
	}
	defer func() { <-c.fetching }()

	st := c.snapshot()
	if st.generation != seen {
		return st, nil // a concurrent caller fetched while this one waited
	}
	now := c.now()
	if st.initialized {
		if !st.refetchAt.IsZero() && now.Sub(st.refetchAt) < jwksRefetchInterval {
			return st, nil
		}
	} else if !st.attemptAt.IsZero() && now.Sub(st.attemptAt) < jwksRetryInterval {
		return st, nil
	}

	// The fetch outlives a caller that disconnects: an aborted request must
	// not count as a failed attempt and hold back every other caller.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), jwksFetchTimeout)
	defer cancel()
	keys, err := c.fetch(fctx)

	c.mu.Lock()
	defer c.mu.Unlock()
	s := &c.state
	s.generation++
	s.attemptAt = now
	if s.initialized {
		s.refetchAt = now
	}
	s.lastErr = err
	if err == nil {
		s.keys, s.fetchedAt, s.initialized = keys, now, true
	}
	return c.state, nil
}

// fetch downloads and parses the key set.
func (c *jwksCache) fetch(ctx context.Context) ([]publicKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return nil, fmt.Errorf("JWKS request: %w", err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching JWKS: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching JWKS: HTTP status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading JWKS: %w", err)
	}
	if len(body) > maxJWKSSize {
		return nil, fmt.Errorf("JWKS larger than %d bytes", maxJWKSSize)
	}
	return parseJWKS(body)
}
