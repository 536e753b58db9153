package sqlstore

import (
	"context"

	"github.com/tokengate/caddy-tokengate/oauth"
)

// tables is the store's one implementation of its tables, written against
// a dialect; SQLite and Postgres embed it and add what only they have
// (opening, closing, hearing about revocations).
//
// Each table has a file of its own, with its statements, built for the
// dialect when the store opens, and the methods that use them:
// personal_tokens.go, grants.go (codes and tokens; the statements of
// both and of their refresh families), families.go (rotation and
// revocation), consents.go, secrets.go, clients.go and device_codes.go;
// user_grants.go ends what one user granted, across those tables, and
// client_tokens.go keeps the tokens clients hold for themselves in them;
// userinfo.go reads a grant's claims through its access tokens. A new
// table follows the same shape: a statements struct and its constructor,
// a field here, and migrations for both databases.
type tables struct {
	dialect  dialect
	personal personalTokenStatements
	grants   grantStatements
	consents consentStatements
	secrets  secretStatements
	users    userGrantStatements
	clients  clientStatements
	userinfo userinfoStatements

	signingKeys  signingKeyStatements
	clientTokens clientTokenStatements
	devices      deviceCodeStatements
}

func newTables(d dialect) tables {
	return tables{
		dialect:  d,
		personal: newPersonalTokenStatements(d),
		grants:   newGrantStatements(d),
		consents: newConsentStatements(d),
		secrets:  newSecretStatements(d),
		users:    newUserGrantStatements(d),
		clients:  newClientStatements(d),
		userinfo: newUserinfoStatements(d),

		signingKeys:  newSigningKeyStatements(d),
		clientTokens: newClientTokenStatements(d),
		devices:      newDeviceCodeStatements(d),
	}
}

// LookupToken implements oauth.TokenLookup for personal and access tokens;
// every other kind is unknown.
func (t *tables) LookupToken(ctx context.Context, k oauth.Kind, h oauth.TokenHash) (oauth.Principal, error) {
	switch k {
	case oauth.KindAccess:
		return t.lookupAccess(ctx, h)
	case oauth.KindPersonal:
		return t.lookupPersonal(ctx, h)
	}
	return oauth.Principal{}, oauth.ErrNotFound
}
