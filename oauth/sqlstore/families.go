package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/tokengate/caddy-tokengate/oauth"
)

// A refresh family is the chain of tokens one code exchange starts
// (oauth_families): rotation extends it, reuse and revocation end it as a
// whole. Its statements are among the grantStatements.

// RotateRefresh implements oauth.GrantStore. It first locks the family's
// row, where the database locks rows: every transaction that writes a
// family's tokens takes this lock first (after, at most, the code's row),
// so that they queue on it in one order and never deadlock on each other's
// token rows; and of racing rotations of one token the first rotates and
// the others find it rotated.
func (t *tables) RotateRefresh(ctx context.Context, old oauth.TokenHash, clientID string, now time.Time, grace time.Duration, check func(oauth.RefreshGrant) error, pair oauth.IssuedPair) (oauth.Rotation, error) {
	var rot oauth.Rotation
	err := t.dialect.grantTx(ctx, func(ctx context.Context, tx querier) error {
		var (
			g                               oauth.RefreshGrant
			scopes                          string
			familyCreated, familyRevoked    timeColumn
			expiresAt, revokedAt, rotatedAt timeColumn
			authTime                        timeColumn
			claims, resources               string
		)
		if err := lockRow(ctx, tx, t.grants.lockRefreshFamily, old[:]); err != nil {
			return err
		}
		// Read under the family's lock: a rotation that committed while
		// this one waited is seen.
		err := tx.QueryRowContext(ctx, t.grants.refreshGrant, old[:]).Scan(&g.FamilyID, &g.ClientID, &g.UserID,
			&scopes, &expiresAt, &revokedAt, &rotatedAt, &familyCreated, &familyRevoked, &g.ClientGeneration,
			&authTime, &claims, &resources, &g.DPoPKey)
		if errors.Is(err, sql.ErrNoRows) {
			return oauth.ErrNotFound
		}
		if err != nil {
			return err
		}
		if g.ClientID != clientID || revokedAt.Valid || familyRevoked.Valid {
			return oauth.ErrNotFound
		}
		if err := t.clientLive(ctx, tx, g.ClientID, g.ClientGeneration); err != nil {
			return err
		}
		g.Scopes, g.FamilyCreatedAt = splitScopes(scopes), familyCreated.Time
		g.AuthTime, g.Claims, g.Resources = authTime.Time, claimsColumn(claims), splitScopes(resources)
		rot = oauth.Rotation{FamilyID: g.FamilyID, UserID: g.UserID}
		if rotatedAt.Valid {
			if grace <= 0 || now.Sub(rotatedAt.Time) > grace {
				revoked, err := t.revokeFamily(ctx, tx, g.FamilyID, now)
				if err != nil {
					return err
				}
				return &oauth.ReuseError{Reused: oauth.ErrRefreshReused, FamilyID: g.FamilyID, ClientID: g.ClientID, UserID: g.UserID, Revoked: revoked}
			}
			if err := check(g); err != nil {
				return err
			}
			// A replay: the pair is the one the rotation stored.
			var accessScopes string
			var accessExpires timeColumn
			err := tx.QueryRowContext(ctx, t.grants.replayedAccess, pair.Access.Hash[:], g.FamilyID).Scan(&accessScopes, &accessExpires, &rot.AccessDPoPKey)
			if errors.Is(err, sql.ErrNoRows) {
				return oauth.ErrNotFound
			}
			if err != nil {
				return err
			}
			rot.Replay, rot.Scopes, rot.AccessExpiresAt = true, splitScopes(accessScopes), accessExpires.Time
			return nil
		}
		if !now.Before(expiresAt.Time) {
			return oauth.ErrNotFound
		}
		if err := check(g); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, t.grants.markRotated, t.dialect.timeArg(now), old[:]); err != nil {
			return err
		}
		rot.Scopes = pair.Scopes
		if rot.Scopes == nil {
			rot.Scopes = g.Scopes
		}
		rot.AccessExpiresAt, rot.AccessDPoPKey = storedTime(pair.Access.ExpiresAt), pair.AccessDPoPKey
		pair.Refresh.ExpiresAt = pair.RefreshExpiry(g.FamilyCreatedAt)
		return t.insertPair(ctx, tx, g.FamilyID, g.ClientID, g.UserID, rot.Scopes, pair)
	})
	if err != nil {
		return oauth.Rotation{}, wrapGrantErr("rotate refresh token", err)
	}
	return rot, nil
}

// RevokeToken implements oauth.GrantStore (RFC 7009 2.1): an access token
// alone, a refresh token with its whole family.
func (t *tables) RevokeToken(ctx context.Context, h oauth.TokenHash, clientID string, now time.Time) ([]oauth.TokenHash, error) {
	var revoked []oauth.TokenHash
	err := t.dialect.grantTx(ctx, func(ctx context.Context, tx querier) error {
		var kind, familyID, owner string
		err := tx.QueryRowContext(ctx, t.grants.tokenOwner, h[:]).Scan(&kind, &familyID, &owner)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		if owner != clientID {
			return nil
		}
		if kind == "a" {
			if _, err := tx.ExecContext(ctx, t.grants.revokeAccess, t.dialect.timeArg(now), h[:]); err != nil {
				return err
			}
			revoked = []oauth.TokenHash{h}
			return t.dialect.notifyRevoked(ctx, tx, h)
		}
		// The family's lock first, as in RotateRefresh.
		if err := lockRow(ctx, tx, t.grants.lockFamily, familyID); err != nil {
			return err
		}
		revoked, err = t.revokeFamily(ctx, tx, familyID, now)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlstore: revoke token: %w", err)
	}
	return revoked, nil
}

// revokeFamily revokes a family and every token in it, announces the
// family's access tokens to the other instances, and returns their hashes.
func (t *tables) revokeFamily(ctx context.Context, tx querier, familyID string, now time.Time) ([]oauth.TokenHash, error) {
	at := t.dialect.timeArg(now)
	if _, err := tx.ExecContext(ctx, t.grants.revokeFamily, at, familyID); err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, t.grants.revokeFamilyTokens, at, familyID); err != nil {
		return nil, err
	}
	rs, err := tx.QueryContext(ctx, t.grants.familyAccessTokens, familyID)
	if err != nil {
		return nil, err
	}
	hashes, err := scanTokenHashes(rs)
	if err != nil {
		return nil, err
	}
	for _, h := range hashes {
		if err := t.dialect.notifyRevoked(ctx, tx, h); err != nil {
			return nil, err
		}
	}
	return hashes, nil
}

// scanTokenHashes reads a result set of token hashes and closes it, so
// that the transaction can run its next statement.
func scanTokenHashes(rs rows) ([]oauth.TokenHash, error) {
	defer rs.Close()
	var out []oauth.TokenHash
	for rs.Next() {
		var b []byte
		if err := rs.Scan(&b); err != nil {
			return nil, err
		}
		h, err := tokenHash(b)
		if err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	if err := rs.Err(); err != nil {
		return nil, err
	}
	return out, nil
}
