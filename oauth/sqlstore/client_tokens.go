package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/tokengate/caddy-tokengate/oauth"
)

// A client token (client_credentials, RFC 6749 4.4) is kept as an access
// token with no user (user_id ''), alone in a refresh family of its own
// with no user. So revocation, introspection, the purge and the
// revocations of families (families.go) treat it as any other access
// token; no user's revocation reaches it, since every user has an id.

// clientTokenStatements are the statements of clients' own tokens, in one
// dialect.
type clientTokenStatements struct {
	// lockClient locks the stored client's row, so that a removal of the
	// client waits for an issue under way and then revokes what it
	// stored; "" where every write transaction holds the database's
	// write lock (SQLite).
	lockClient                string
	insertFamily, insertToken string

	lockFamilies, revokeFamilies, revokeTokens, liveTokens string
}

// clientTokenFamilies is the condition on oauth_families that picks the
// families of a client's own tokens.
const clientTokenFamilies = `user_id = '' AND client_id = ?`

func newClientTokenStatements(d dialect) clientTokenStatements {
	return clientTokenStatements{
		lockClient: lockRows(d, `SELECT 1 FROM oauth_clients WHERE client_id = ? AND generation = ?`),
		insertFamily: d.rebind(`
			INSERT INTO oauth_families (family_id, client_id, user_id, created_at, client_generation)
			VALUES (?, ?, '', ?, ?)`),
		insertToken: d.rebind(`
			INSERT INTO oauth_tokens (token_hash, kind, family_id, client_id, user_id, scopes, issued_at, expires_at, dpop_jkt, audience)
			VALUES (?, 'a', ?, ?, '', ?, ?, ?, ?, ?)`),

		// In the order of their ids, as every revocation of many
		// families locks them (clients.go, user_grants.go).
		lockFamilies:   lockRows(d, `SELECT 1 FROM oauth_families WHERE `+clientTokenFamilies+` ORDER BY family_id`),
		revokeFamilies: d.rebind(`UPDATE oauth_families SET revoked_at = ? WHERE ` + clientTokenFamilies + ` AND revoked_at IS NULL`),
		revokeTokens: d.rebind(`
			UPDATE oauth_tokens SET revoked_at = ?
			WHERE revoked_at IS NULL AND family_id IN (SELECT family_id FROM oauth_families WHERE ` + clientTokenFamilies + `)
			RETURNING kind, token_hash, expires_at`),
		liveTokens: d.rebind(`
			SELECT token_hash FROM oauth_tokens
			WHERE kind = 'a' AND expires_at > ?
				AND family_id IN (SELECT family_id FROM oauth_families WHERE ` + clientTokenFamilies + `)`),
	}
}

// IssueClientToken implements oauth.ClientTokenStore.
func (t *tables) IssueClientToken(ctx context.Context, c oauth.ClientToken) error {
	err := t.dialect.grantTx(ctx, func(ctx context.Context, tx querier) error {
		if c.ClientGeneration != "" {
			if t.clientTokens.lockClient != "" {
				if err := lockRow(ctx, tx, t.clientTokens.lockClient, c.ClientID, c.ClientGeneration); err != nil {
					return err
				}
			} else if err := t.clientLive(ctx, tx, c.ClientID, c.ClientGeneration); err != nil {
				return err
			}
		}
		issued := t.dialect.timeArg(c.IssuedAt)
		if _, err := tx.ExecContext(ctx, t.clientTokens.insertFamily, c.FamilyID, c.ClientID, issued, c.ClientGeneration); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, t.clientTokens.insertToken,
			c.Hash[:], c.FamilyID, c.ClientID, joinScopes(c.Scopes), issued, t.dialect.timeArg(c.ExpiresAt), c.DPoPKey, c.Audience)
		return err
	})
	if err != nil {
		return wrapGrantErr("issue client token", err)
	}
	return nil
}

// RevokeClientTokens implements oauth.ClientTokenStore.
func (t *tables) RevokeClientTokens(ctx context.Context, clientID string, now time.Time) ([]oauth.TokenHash, error) {
	var live []oauth.TokenHash
	err := t.dialect.writeTx(ctx, func(tx querier) error {
		if err := t.revokeClientTokensIn(ctx, tx, clientID, now); err != nil {
			return err
		}
		rs, err := tx.QueryContext(ctx, t.clientTokens.liveTokens, t.dialect.timeArg(now), clientID)
		if err != nil {
			return err
		}
		live, err = scanTokenHashes(rs)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlstore: revoke client tokens: %w", err)
	}
	return live, nil
}

// revokeClientTokensIn revokes, in tx, the families of clientID's own
// tokens and the tokens in them, and announces those that were live to
// the other instances, when tx commits.
func (t *tables) revokeClientTokensIn(ctx context.Context, tx querier, clientID string, now time.Time) error {
	if t.clientTokens.lockFamilies != "" {
		rs, err := tx.QueryContext(ctx, t.clientTokens.lockFamilies, clientID)
		if err != nil {
			return err
		}
		if err := drain(rs); err != nil {
			return err
		}
	}
	at := t.dialect.timeArg(now)
	if _, err := tx.ExecContext(ctx, t.clientTokens.revokeFamilies, at, clientID); err != nil {
		return err
	}
	rs, err := tx.QueryContext(ctx, t.clientTokens.revokeTokens, at, clientID)
	if err != nil {
		return err
	}
	_, revoked, err := scanRevokedTokens(rs, now)
	if err != nil {
		return err
	}
	for _, h := range revoked {
		if err := t.dialect.notifyRevoked(ctx, tx, h); err != nil {
			return err
		}
	}
	return nil
}
