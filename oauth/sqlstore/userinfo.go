package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/tokengate/caddy-tokengate/oauth"
)

// userinfoStatements read what the userinfo endpoint answers with: the
// IdP claims a refresh family keeps, found through one of its access
// tokens.
type userinfoStatements struct {
	accessTokenClaims string
}

func newUserinfoStatements(d dialect) userinfoStatements {
	return userinfoStatements{
		accessTokenClaims: d.rebind(`
			SELECT f.claims
			FROM oauth_tokens t JOIN oauth_families f ON f.family_id = t.family_id
			WHERE t.token_hash = ? AND t.kind = 'a' AND t.revoked_at IS NULL AND f.revoked_at IS NULL`),
	}
}

// AccessTokenClaims implements oauth.UserinfoStore. An expired token is
// found too: the caller has validated it, which expiry includes.
func (t *tables) AccessTokenClaims(ctx context.Context, h oauth.TokenHash) ([]byte, error) {
	var claims string
	err := t.dialect.QueryRowContext(ctx, t.userinfo.accessTokenClaims, h[:]).Scan(&claims)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, oauth.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: access token claims: %w", err)
	}
	return claimsColumn(claims), nil
}
