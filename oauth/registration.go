package oauth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
)

// ErrInvalidRegistrationToken is what every RFC 7592 request gets whose
// registration access token is missing, malformed or wrong, and one for a
// client that does not exist or did not register itself: which of these
// it was is not told.
var ErrInvalidRegistrationToken = errors.New("invalid registration access token")

// dummyRegistrationHash stands in for the hash of a client that has none,
// so that every refusal does the same comparison.
var dummyRegistrationHash = dummySecretHash

// Register adds a client that registers itself (RFC 7591 3): a stored
// client of source registration, with a generated id. It returns the
// client, its secret ("" for a public client) and its registration access
// token (RFC 7592 3), both shown only now; the store keeps their SHA-256.
func (a *ClientAdmin) Register(ctx context.Context, spec ClientSpec) (rec StoredClient, secret, registrationToken string, err error) {
	registrationToken, h, err := NewToken(KindRegistration)
	if err != nil {
		return StoredClient{}, "", "", err
	}
	spec.ID = ""
	rec, secret, err = a.createClient(ctx, spec, "", 0, h[:])
	if err != nil {
		return StoredClient{}, "", "", err
	}
	return rec, secret, registrationToken, nil
}

// Registered returns the client id that registered itself, when token is
// its registration access token (RFC 7592 2.1); any other case is
// ErrInvalidRegistrationToken. Any other error means the store could not
// be read.
func (a *ClientAdmin) Registered(ctx context.Context, id, token string) (StoredClient, error) {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	return a.registered(ctx, id, token)
}

func (a *ClientAdmin) registered(ctx context.Context, id, token string) (StoredClient, error) {
	if k, err := ParseToken(token); err != nil || k != KindRegistration {
		return StoredClient{}, ErrInvalidRegistrationToken
	}
	var rec StoredClient
	var err error
	if a.Clients.Static[id] == nil {
		rec, err = a.Store.GetClient(ctx, id)
	} else {
		err = ErrNotFound
	}
	if err != nil && !errors.Is(err, ErrNotFound) {
		return StoredClient{}, err
	}
	want := dummyRegistrationHash
	if err == nil && rec.Source == SourceRegistration && len(rec.RegistrationTokenHash) == sha256.Size {
		want = rec.RegistrationTokenHash
	}
	sum := HashToken(token)
	if subtle.ConstantTimeCompare(sum[:], want) != 1 || err != nil {
		return StoredClient{}, ErrInvalidRegistrationToken
	}
	return rec, nil
}

// UpdateRegistered replaces what spec says of the client id that
// registered itself (RFC 7592 2.2), as Update does, once token is its
// registration access token.
func (a *ClientAdmin) UpdateRegistered(ctx context.Context, id, token string, spec ClientSpec) (StoredClient, error) {
	if _, err := a.Registered(ctx, id, token); err != nil {
		return StoredClient{}, err
	}
	return a.update(ctx, "", id, spec)
}

// DeleteRegistered removes the client id that registered itself (RFC
// 7592 2.3), as Delete does, once token is its registration access token.
func (a *ClientAdmin) DeleteRegistered(ctx context.Context, id, token string) error {
	if _, err := a.Registered(ctx, id, token); err != nil {
		return err
	}
	return a.delete(ctx, "", id)
}

// MatchesSecret reports, in constant time, whether secret is the secret
// of the stored client rec (RFC 7592 2.2: a client may repeat its secret
// in an update, and it must be the one issued).
func (rec StoredClient) MatchesSecret(secret string) bool {
	want := dummySecretHash
	if rec.SecretHash != nil {
		want = rec.SecretHash
	}
	sum := sha256.Sum256([]byte(secret))
	return subtle.ConstantTimeCompare(sum[:], want) == 1 && rec.SecretHash != nil
}
