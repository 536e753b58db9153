package oauth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Errors of ClientAdmin besides ErrNotFound and ErrClientExists.
var (
	// ErrStaticClient: the id is a client of the config, which only the
	// config can change.
	ErrStaticClient = errors.New("client is defined in the config")
	// ErrPublicClient: a public client has no secret to rotate.
	ErrPublicClient = errors.New("client is public and has no secret")
)

// ClientSpec is what the admin API says of a client to add or change. The
// caller has checked it against the config's rules.
type ClientSpec struct {
	// ID of a new client; empty means one is generated.
	ID           string
	Name         string
	RedirectURIs []string
	Scopes       []string
	// Public makes a client without a secret; it cannot change later.
	Public       bool
	PKCEOptional bool
	// GrantTypes the client may use; empty means the default ones.
	GrantTypes []string
	// DPoPBoundAccessTokens: see StoredClient.
	DPoPBoundAccessTokens bool
}

// ClientAdmin adds, changes and removes the stored clients of a config,
// refusing the ids of its static clients, and records each change in the
// audit log. Every change is read back into the view at once, so it holds
// on this instance when the call returns; the store tells the others.
type ClientAdmin struct {
	Clients *Clients
	Store   ClientStore
	// Owned keeps the clients users register themselves; the methods
	// with Owned in their names need it.
	Owned OwnedClientStore
	// Tokens and Validator, when set, let a removal drop the client's own
	// tokens (client_credentials) from this instance's validation cache at
	// once; the store revokes them either way.
	Tokens    ClientTokenStore
	Validator *Validator
	Audit     Auditor
	Now       func() time.Time
}

// ClientAdmin's methods with Owned in their names serve a user's
// self-service: they act on the clients of the user owner only, and
// another's client, or one of the config, is ErrNotFound to them. Their
// audit events carry the user's id.

// Create adds a stored client and returns it with its secret, which is
// shown only now ("" for a public client).
func (a *ClientAdmin) Create(ctx context.Context, spec ClientSpec) (StoredClient, string, error) {
	return a.createClient(ctx, spec, "", 0, nil)
}

// CreateOwned adds a stored client of the user owner, with a generated
// id, as Create does, unless the user has limit clients already
// (ErrClientLimit).
func (a *ClientAdmin) CreateOwned(ctx context.Context, owner string, limit int, spec ClientSpec) (StoredClient, string, error) {
	if owner == "" || a.Owned == nil {
		return StoredClient{}, "", errors.New("oauth: no store of owned clients")
	}
	spec.ID = ""
	return a.createClient(ctx, spec, owner, limit, nil)
}

// ListOwned returns the stored clients of the user owner, sorted by id.
func (a *ClientAdmin) ListOwned(ctx context.Context, owner string) ([]StoredClient, error) {
	if a.Owned == nil {
		return nil, errors.New("oauth: no store of owned clients")
	}
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	return a.Owned.ListOwnedClients(ctx, owner)
}

// GetOwned returns the stored client id of the user owner.
func (a *ClientAdmin) GetOwned(ctx context.Context, owner, id string) (StoredClient, error) {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	return a.ownedClient(ctx, owner, id)
}

// ownedClient reads the stored client id, which must be the user
// owner's; an empty owner is the operator, to whom every stored client
// is theirs.
func (a *ClientAdmin) ownedClient(ctx context.Context, owner, id string) (StoredClient, error) {
	if owner != "" && a.Clients.Static[id] != nil {
		return StoredClient{}, ErrNotFound
	}
	rec, err := a.Store.GetClient(ctx, id)
	if err != nil {
		return StoredClient{}, err
	}
	if owner != "" && rec.OwnerUserID != owner {
		return StoredClient{}, ErrNotFound
	}
	return rec, nil
}

// createClient is Create, for the user owner when owner is set, who may
// have at most limit clients; with a registration token hash, the client
// registered itself (RFC 7591). A client without a name is named by its
// id.
func (a *ClientAdmin) createClient(ctx context.Context, spec ClientSpec, owner string, limit int, registration []byte) (StoredClient, string, error) {
	if a.Clients.Static[spec.ID] != nil {
		return StoredClient{}, "", ErrStaticClient
	}
	generation, err := randomHex(16)
	if err != nil {
		return StoredClient{}, "", err
	}
	now := a.now()
	rec := StoredClient{
		ID:           spec.ID,
		Name:         spec.Name,
		RedirectURIs: slices.Clone(spec.RedirectURIs),
		Scopes:       slices.Clone(spec.Scopes),
		PKCERequired: !spec.PKCEOptional,
		GrantTypes:   grantTypesOrDefault(spec.GrantTypes),
		Source:       SourceStore,
		OwnerUserID:  owner,
		Generation:   generation,
		CreatedAt:    now,
		UpdatedAt:    now,

		DPoPBoundAccessTokens: spec.DPoPBoundAccessTokens,
	}
	if registration != nil {
		rec.Source, rec.RegistrationTokenHash = SourceRegistration, registration
	}
	var secret string
	if !spec.Public {
		if secret, rec.SecretHash, err = newClientSecret(); err != nil {
			return StoredClient{}, "", err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	insert := a.Store.CreateClient
	if owner != "" {
		insert = func(ctx context.Context, c StoredClient) error { return a.Owned.CreateOwnedClient(ctx, c, limit) }
	}
	if err := a.create(ctx, &rec, insert); err != nil {
		return StoredClient{}, "", err
	}
	a.readBack(ctx, rec.ID)
	a.audit(ctx, AuditClientAdded, owner, rec.ID, rec.Scopes)
	return rec, secret, nil
}

// create stores rec, generating its id first when it has none: a
// generated id that happens to be taken, static or stored, is drawn again.
func (a *ClientAdmin) create(ctx context.Context, rec *StoredClient, insert func(context.Context, StoredClient) error) error {
	if rec.ID != "" {
		return insert(ctx, *rec)
	}
	unnamed := rec.Name == ""
	for range 3 {
		id, err := randomHex(12)
		if err != nil {
			return err
		}
		rec.ID = "c_" + id
		if unnamed {
			rec.Name = rec.ID
		}
		if a.Clients.Static[rec.ID] != nil {
			continue
		}
		if err = insert(ctx, *rec); !errors.Is(err, ErrClientExists) {
			return err
		}
	}
	return errors.New("oauth: no free client id found")
}

// Update replaces what spec says of the stored client id (its name,
// redirect URIs, scopes, PKCE rule, grant types and DPoP rule) and
// returns the client as stored.
// Whether it is public cannot change. New authorizations and refreshes
// get at most the new scopes once the call returns.
func (a *ClientAdmin) Update(ctx context.Context, id string, spec ClientSpec) (StoredClient, error) {
	if a.Clients.Static[id] != nil {
		return StoredClient{}, ErrStaticClient
	}
	return a.update(ctx, "", id, spec)
}

// UpdateOwned is Update on a client of the user owner.
func (a *ClientAdmin) UpdateOwned(ctx context.Context, owner, id string, spec ClientSpec) (StoredClient, error) {
	return a.update(ctx, owner, id, spec)
}

func (a *ClientAdmin) update(ctx context.Context, owner, id string, spec ClientSpec) (StoredClient, error) {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	rec, err := a.ownedClient(ctx, owner, id)
	if err != nil {
		return StoredClient{}, err
	}
	rec.Name = spec.Name
	rec.RedirectURIs = slices.Clone(spec.RedirectURIs)
	rec.Scopes = slices.Clone(spec.Scopes)
	rec.PKCERequired = !spec.PKCEOptional
	rec.GrantTypes = grantTypesOrDefault(spec.GrantTypes)
	if rec.Name == "" {
		rec.Name = rec.ID
	}
	rec.DPoPBoundAccessTokens = spec.DPoPBoundAccessTokens
	rec.UpdatedAt = a.now()
	if err := a.Store.UpdateClient(ctx, rec); err != nil {
		return StoredClient{}, err
	}
	a.readBack(ctx, id)
	a.audit(ctx, AuditClientUpdated, owner, id, rec.Scopes)
	return rec, nil
}

// Delete removes the stored client id: its codes, its refresh tokens and
// the tokens it holds for itself stop working at once, in the store, for
// every instance; the access tokens of its users run out.
func (a *ClientAdmin) Delete(ctx context.Context, id string) error {
	if a.Clients.Static[id] != nil {
		return ErrStaticClient
	}
	return a.delete(ctx, "", id)
}

// DeleteOwned is Delete on a client of the user owner.
func (a *ClientAdmin) DeleteOwned(ctx context.Context, owner, id string) error {
	return a.delete(ctx, owner, id)
}

func (a *ClientAdmin) delete(ctx context.Context, owner, id string) error {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	if owner != "" {
		if _, err := a.ownedClient(ctx, owner, id); err != nil {
			return err
		}
	}
	if err := a.Store.DeleteClient(ctx, id, a.now()); err != nil {
		return err
	}
	a.forgetClientTokens(ctx, id)
	a.readBack(ctx, id)
	a.audit(ctx, AuditClientRemoved, owner, id, nil)
	return nil
}

// RotateSecret gives the stored confidential client id a new secret and
// returns it; the old one stops working once the call returns.
func (a *ClientAdmin) RotateSecret(ctx context.Context, id string) (string, error) {
	if a.Clients.Static[id] != nil {
		return "", ErrStaticClient
	}
	return a.rotateSecret(ctx, "", id)
}

// RotateOwnedSecret is RotateSecret on a client of the user owner.
func (a *ClientAdmin) RotateOwnedSecret(ctx context.Context, owner, id string) (string, error) {
	return a.rotateSecret(ctx, owner, id)
}

func (a *ClientAdmin) rotateSecret(ctx context.Context, owner, id string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	rec, err := a.ownedClient(ctx, owner, id)
	if err != nil {
		return "", err
	}
	if rec.Public() {
		return "", ErrPublicClient
	}
	secret, hash, err := newClientSecret()
	if err != nil {
		return "", err
	}
	if err := a.Store.SetClientSecretHash(ctx, id, hash, a.now()); err != nil {
		return "", err
	}
	a.readBack(ctx, id)
	a.audit(ctx, AuditClientSecretRotated, owner, id, nil)
	return secret, nil
}

// forgetClientTokens drops the tokens the client id held for itself, which
// removing it has just revoked, from this instance's validation cache. The
// other instances hear of them from the store. Should the store not answer,
// the whole cache is dropped rather than keep them.
func (a *ClientAdmin) forgetClientTokens(ctx context.Context, id string) {
	if a.Tokens == nil || a.Validator == nil {
		return
	}
	hashes, err := a.Tokens.RevokeClientTokens(ctx, id, a.now())
	if err != nil {
		a.Validator.ForgetAll()
		return
	}
	for _, h := range hashes {
		a.Validator.Forget(h)
	}
}

// readBack brings the view up to date with a change just made. Should the
// read fail, the view removes nothing it should not keep and keeps nothing
// it should not: a client removed or changed is dropped instead, to be
// read again on its next use.
func (a *ClientAdmin) readBack(ctx context.Context, id string) {
	if a.Clients.Stored == nil {
		return
	}
	if err := a.Clients.Stored.Refresh(ctx, id); err != nil {
		a.Clients.Stored.Forget(id)
	}
}

func (a *ClientAdmin) audit(ctx context.Context, msg, userID, id string, scopes []string) {
	auditorOrNone(a.Audit).Audit(ctx, AuditEvent{Message: msg, UserID: userID, ClientID: id, Scopes: scopes})
}

func (a *ClientAdmin) now() time.Time {
	if a.Now != nil {
		return a.Now().UTC()
	}
	return time.Now().UTC()
}

// clientSecretPrefix marks tokengate's generated client secrets, so that
// a secret scanner can recognize one.
const clientSecretPrefix = "tgs_"

// newClientSecret returns a new client secret of 256 random bits and its
// SHA-256, the hash a secret_hash option gives (sha256:<hex>).
func newClientSecret() (string, []byte, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", nil, fmt.Errorf("oauth: generating a client secret: %w", err)
	}
	secret := clientSecretPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	sum := sha256.Sum256([]byte(secret))
	return secret, sum[:], nil
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}
