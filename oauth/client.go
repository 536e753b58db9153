package oauth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Client is a registered OAuth client (RFC 6749 2).
type Client struct {
	ID   string
	Name string
	// secretHash is the SHA-256 of the client secret; nil for a public
	// client (RFC 6749 2.1).
	secretHash []byte
	// RedirectURIs are the registered redirection endpoints (RFC 6749 3.1.2).
	RedirectURIs []string
	// Scopes the client may ask for; empty means every declared scope.
	Scopes []string
	// PKCERequired is false only for a confidential client registered with
	// "pkce optional".
	PKCERequired bool
	// GrantTypes the client may use (RFC 7591 2); empty means the default
	// ones, authorization_code and refresh_token. See AllowsGrant.
	GrantTypes []string
	// DPoPBoundAccessTokens makes the token endpoint refuse the client's
	// requests that carry no DPoP proof (RFC 9449 5.2), so that every
	// access token it gets is bound to a key.
	DPoPBoundAccessTokens bool
	// Source says where the client is defined: SourceConfig for a client
	// of the config, or that of a stored client.
	Source ClientSource
	// generation is a stored client's StoredClient.Generation; empty for
	// a client of the config.
	generation string
}

// ClientOptions describe a client to NewClient.
type ClientOptions struct {
	ID   string
	Name string // default: ID
	// Secret is the plain client secret. At most one of Secret and
	// SecretHash is set; with neither the client is public.
	Secret string
	// SecretHash is "sha256:<hex>" of the secret.
	SecretHash   string
	RedirectURIs []string
	Scopes       []string
	// PKCEOptional lets a confidential client leave PKCE out.
	PKCEOptional bool
	// GrantTypes the client may use; default: authorization_code and
	// refresh_token.
	GrantTypes []string
	// DPoPBoundAccessTokens: see Client.
	DPoPBoundAccessTokens bool
}

// NewClient builds a client, hashing a plain secret at once so that only the
// hash is kept in memory.
func NewClient(o ClientOptions) (*Client, error) {
	if o.ID == "" {
		return nil, errors.New("oauth: client without id")
	}
	c := &Client{
		ID:           o.ID,
		Name:         o.Name,
		RedirectURIs: o.RedirectURIs,
		Scopes:       o.Scopes,
		PKCERequired: !o.PKCEOptional,
		GrantTypes:   grantTypesOrDefault(o.GrantTypes),
		Source:       SourceConfig,

		DPoPBoundAccessTokens: o.DPoPBoundAccessTokens,
	}
	if c.Name == "" {
		c.Name = o.ID
	}
	switch {
	case o.Secret != "" && o.SecretHash != "":
		return nil, fmt.Errorf("oauth: client %s: both secret and secret hash given", o.ID)
	case o.Secret != "":
		sum := sha256.Sum256([]byte(o.Secret))
		c.secretHash = sum[:]
	case o.SecretHash != "":
		hexSum, ok := strings.CutPrefix(o.SecretHash, "sha256:")
		sum, err := hex.DecodeString(hexSum)
		if !ok || err != nil || len(sum) != sha256.Size {
			return nil, fmt.Errorf("oauth: client %s: secret hash must be sha256:<64 hex digits>", o.ID)
		}
		c.secretHash = sum
	}
	if o.PKCEOptional && c.secretHash == nil {
		return nil, fmt.Errorf("oauth: client %s: pkce optional needs a confidential client", o.ID)
	}
	if err := CheckGrantTypes(c.GrantTypes, c.secretHash == nil); err != nil {
		return nil, fmt.Errorf("oauth: client %s: %w", o.ID, err)
	}
	if len(o.RedirectURIs) == 0 && NeedsRedirectURI(c.GrantTypes) {
		return nil, fmt.Errorf("oauth: client %s: no redirect URI", o.ID)
	}
	return c, nil
}

// Confidential reports whether the client has a secret (RFC 6749 2.1).
func (c *Client) Confidential() bool {
	return c.secretHash != nil
}

// MayRequest reports whether the client may ask for scope s.
func (c *Client) MayRequest(s string) bool {
	if len(c.Scopes) == 0 {
		return true
	}
	for _, have := range c.Scopes {
		if have == s {
			return true
		}
	}
	return false
}

// mayRequestAll reports whether the client may ask for every scope of
// scopes.
func (c *Client) mayRequestAll(scopes []string) bool {
	for _, s := range scopes {
		if !c.MayRequest(s) {
			return false
		}
	}
	return true
}

// allowedOf returns the scopes of scopes the client may ask for, in order.
func (c *Client) allowedOf(scopes []string) []string {
	var out []string
	for _, s := range scopes {
		if c.MayRequest(s) {
			out = append(out, s)
		}
	}
	return out
}

// MatchRedirectURI reports whether uri is one of the client's registered
// redirect URIs, byte for byte (RFC 6749 3.1.2.3, RFC 9700 2.1), except that
// an http URI on the loopback IP literals 127.0.0.1 or [::1] may use any
// port (RFC 8252 7.3). "localhost" gets no such exception (RFC 8252 8.3).
func (c *Client) MatchRedirectURI(uri string) bool {
	for _, r := range c.RedirectURIs {
		if r == uri {
			return true
		}
	}
	host, rest, ok := splitLoopback(uri)
	if !ok {
		return false
	}
	for _, r := range c.RedirectURIs {
		if rh, rr, ok := splitLoopback(r); ok && rh == host && rr == rest {
			return true
		}
	}
	return false
}

// splitLoopback splits an http URI on a loopback IP literal into its host
// and what follows the port; ok is false for any other URI.
func splitLoopback(uri string) (host, rest string, ok bool) {
	after, found := strings.CutPrefix(uri, "http://")
	if !found {
		return "", "", false
	}
	end := strings.IndexAny(after, "/?#")
	if end < 0 {
		end = len(after)
	}
	authority, rest := after[:end], after[end:]
	for _, h := range []string{"127.0.0.1", "[::1]"} {
		port, found := strings.CutPrefix(authority, h)
		if !found {
			continue
		}
		if port == "" {
			return h, rest, true
		}
		digits, found := strings.CutPrefix(port, ":")
		if !found || digits == "" || strings.Trim(digits, "0123456789") != "" {
			return "", "", false
		}
		return h, rest, true
	}
	return "", "", false
}

// ClientFinder finds clients by id. It is what the authorization server
// needs to know of the clients.
type ClientFinder interface {
	// FindClient returns the client with id, or ErrNotFound. Any other
	// error means the clients could not be read.
	FindClient(ctx context.Context, id string) (*Client, error)
}

// ClientRegistry holds the configured clients by id.
type ClientRegistry map[string]*Client

// FindClient implements ClientFinder.
func (r ClientRegistry) FindClient(_ context.Context, id string) (*Client, error) {
	if c := r[id]; c != nil {
		return c, nil
	}
	return nil, ErrNotFound
}

// NewClientRegistry indexes clients by id, refusing duplicates.
func NewClientRegistry(clients ...*Client) (ClientRegistry, error) {
	r := make(ClientRegistry, len(clients))
	for _, c := range clients {
		if _, dup := r[c.ID]; dup {
			return nil, fmt.Errorf("oauth: client %s registered twice", c.ID)
		}
		r[c.ID] = c
	}
	return r, nil
}

// dummySecretHash stands in for an unknown client's secret hash, so that
// authenticating an unknown client costs what a known one does. It is the
// hash of random bytes: no secret matches it.
var dummySecretHash = func() []byte {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	sum := sha256.Sum256(b[:])
	return sum[:]
}()

// Authenticate checks a client's credentials (RFC 6749 2.3.1).
// presented says whether a secret was sent at all, so that an empty secret
// is still a secret. An unknown client and a wrong secret both get
// ErrInvalidClient, after the same work. A public client must not send a
// secret; a confidential one must.
func (r ClientRegistry) Authenticate(id, secret string, presented bool) (*Client, error) {
	return authenticate(r[id], secret, presented)
}

// authenticate checks secret against c, which is nil for an unknown
// client, doing the same work in every case.
func authenticate(c *Client, secret string, presented bool) (*Client, error) {
	want := dummySecretHash
	if c != nil && c.secretHash != nil {
		want = c.secretHash
	}
	sum := sha256.Sum256([]byte(secret))
	match := subtle.ConstantTimeCompare(sum[:], want) == 1
	switch {
	case c == nil:
		return nil, ErrInvalidClient
	case c.secretHash == nil:
		if presented {
			return nil, ErrInvalidClient
		}
	case !presented || !match:
		return nil, ErrInvalidClient
	}
	return c, nil
}

// Interface guards
var _ ClientFinder = ClientRegistry(nil)
