package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tokengate/caddy-tokengate/oauth"
)

// grantTx runs fn in one READ COMMITTED transaction. Single use and
// rotation take the code's or token's row with SELECT ... FOR UPDATE: a
// racing transaction waits on the row lock and then reads the committed
// row, so it sees the code used or the token rotated. A *oauth.ReuseError
// is committed (the family's revocation must stick) and then returned; any
// other error rolls back.
func (s *Postgres) grantTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx) // a no-op after Commit
	err = fn(tx)
	var reuse *oauth.ReuseError
	if err != nil && !errors.As(err, &reuse) {
		return err
	}
	if cerr := tx.Commit(ctx); cerr != nil {
		return cerr
	}
	return err
}

// SaveCode implements oauth.GrantStore.
func (s *Postgres) SaveCode(ctx context.Context, c oauth.Code) error {
	_, err := s.pool.Exec(ctx, `
		INSERT INTO oauth_codes (code_hash, client_id, user_id, redirect_uri, scopes, challenge, family_id, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		c.Hash[:], c.ClientID, c.UserID, c.RedirectURI, joinScopes(c.Scopes), c.Challenge, c.FamilyID, c.ExpiresAt)
	if err != nil {
		return fmt.Errorf("sqlstore: save code: %w", err)
	}
	return nil
}

// ExchangeCode implements oauth.GrantStore.
func (s *Postgres) ExchangeCode(ctx context.Context, h oauth.TokenHash, now time.Time, check func(oauth.Code) error, pair oauth.IssuedPair) (oauth.Code, error) {
	var c oauth.Code
	err := s.grantTx(ctx, func(tx pgx.Tx) error {
		var (
			scopes string
			usedAt *time.Time
		)
		err := tx.QueryRow(ctx, `
			SELECT client_id, user_id, redirect_uri, scopes, challenge, family_id, expires_at, used_at
			FROM oauth_codes WHERE code_hash = $1 FOR UPDATE`, h[:],
		).Scan(&c.ClientID, &c.UserID, &c.RedirectURI, &scopes, &c.Challenge, &c.FamilyID, &c.ExpiresAt, &usedAt)
		if errors.Is(err, pgx.ErrNoRows) {
			return oauth.ErrNotFound
		}
		if err != nil {
			return err
		}
		c.Hash, c.Scopes, c.ExpiresAt = h, splitScopes(scopes), c.ExpiresAt.UTC()
		if usedAt != nil {
			revoked, err := pgRevokeFamily(ctx, tx, c.FamilyID, now)
			if err != nil {
				return err
			}
			return &oauth.ReuseError{Reused: oauth.ErrCodeReused, FamilyID: c.FamilyID, ClientID: c.ClientID, UserID: c.UserID, Revoked: revoked}
		}
		if !now.Before(c.ExpiresAt) {
			return oauth.ErrNotFound
		}
		if err := check(c); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE oauth_codes SET used_at = $1 WHERE code_hash = $2`, now, h[:]); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `
			INSERT INTO oauth_families (family_id, client_id, user_id, created_at) VALUES ($1, $2, $3, $4)`,
			c.FamilyID, c.ClientID, c.UserID, now); err != nil {
			return err
		}
		return pgInsertPair(ctx, tx, c.FamilyID, c.ClientID, c.UserID, c.Scopes, pair)
	})
	if err != nil {
		return oauth.Code{}, wrapGrantErr("exchange code", err)
	}
	return c, nil
}

func pgInsertPair(ctx context.Context, tx pgx.Tx, familyID, clientID, userID string, scopes []string, p oauth.IssuedPair) error {
	for _, t := range []struct {
		kind string
		tok  oauth.IssuedToken
	}{{"a", p.Access}, {"r", p.Refresh}} {
		_, err := tx.Exec(ctx, `
			INSERT INTO oauth_tokens (token_hash, kind, family_id, client_id, user_id, scopes, issued_at, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			t.tok.Hash[:], t.kind, familyID, clientID, userID, joinScopes(scopes), p.IssuedAt, t.tok.ExpiresAt)
		if err != nil {
			return err
		}
	}
	return nil
}

// pgRevokeFamily revokes a family and every token in it, announces the
// family's access tokens to the other instances, and returns their hashes.
func pgRevokeFamily(ctx context.Context, tx pgx.Tx, familyID string, now time.Time) ([]oauth.TokenHash, error) {
	if _, err := tx.Exec(ctx,
		`UPDATE oauth_families SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL`, now, familyID); err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx,
		`UPDATE oauth_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL`, now, familyID); err != nil {
		return nil, err
	}
	rows, err := tx.Query(ctx, `SELECT token_hash FROM oauth_tokens WHERE family_id = $1 AND kind = 'a'`, familyID)
	if err != nil {
		return nil, err
	}
	hashes, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		return nil, err
	}
	out := make([]oauth.TokenHash, 0, len(hashes))
	for _, b := range hashes {
		h, err := tokenHash(b)
		if err != nil {
			return nil, err
		}
		if err := notifyRevoked(ctx, tx, h); err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, nil
}

// pgLockFamily locks a family's row until the transaction ends. Every
// transaction that writes a family's tokens takes this lock first (after,
// at most, the code's row), so that they queue on it in one order and never
// deadlock on each other's token rows.
func pgLockFamily(ctx context.Context, tx pgx.Tx, familyID string, createdAt *time.Time, revokedAt **time.Time) error {
	err := tx.QueryRow(ctx,
		`SELECT created_at, revoked_at FROM oauth_families WHERE family_id = $1 FOR UPDATE`, familyID,
	).Scan(createdAt, revokedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return oauth.ErrNotFound
	}
	return err
}

// RotateRefresh implements oauth.GrantStore. It serializes on the family's
// row, so of racing rotations of one token the first rotates and the others
// find it rotated.
func (s *Postgres) RotateRefresh(ctx context.Context, old oauth.TokenHash, clientID string, now time.Time, grace time.Duration, check func(oauth.RefreshGrant) error, pair oauth.IssuedPair) (oauth.Rotation, error) {
	var rot oauth.Rotation
	err := s.grantTx(ctx, func(tx pgx.Tx) error {
		var (
			g                    oauth.RefreshGrant
			scopes               string
			expiresAt            time.Time
			revokedAt, rotatedAt *time.Time
			famRevoke            *time.Time
		)
		err := tx.QueryRow(ctx,
			`SELECT family_id FROM oauth_tokens WHERE token_hash = $1 AND kind = 'r'`, old[:]).Scan(&g.FamilyID)
		if errors.Is(err, pgx.ErrNoRows) {
			return oauth.ErrNotFound
		}
		if err != nil {
			return err
		}
		if err := pgLockFamily(ctx, tx, g.FamilyID, &g.FamilyCreatedAt, &famRevoke); err != nil {
			return err
		}
		// Read under the family's lock: a rotation that committed while
		// this one waited is seen.
		err = tx.QueryRow(ctx, `
			SELECT client_id, user_id, scopes, expires_at, revoked_at, rotated_at
			FROM oauth_tokens WHERE token_hash = $1`, old[:],
		).Scan(&g.ClientID, &g.UserID, &scopes, &expiresAt, &revokedAt, &rotatedAt)
		if errors.Is(err, pgx.ErrNoRows) {
			return oauth.ErrNotFound
		}
		if err != nil {
			return err
		}
		if g.ClientID != clientID || revokedAt != nil || famRevoke != nil {
			return oauth.ErrNotFound
		}
		g.Scopes, g.FamilyCreatedAt = splitScopes(scopes), g.FamilyCreatedAt.UTC()
		rot = oauth.Rotation{FamilyID: g.FamilyID, UserID: g.UserID}
		if rotatedAt != nil {
			if grace <= 0 || now.Sub(*rotatedAt) > grace {
				revoked, err := pgRevokeFamily(ctx, tx, g.FamilyID, now)
				if err != nil {
					return err
				}
				return &oauth.ReuseError{Reused: oauth.ErrRefreshReused, FamilyID: g.FamilyID, ClientID: g.ClientID, UserID: g.UserID, Revoked: revoked}
			}
			if err := check(g); err != nil {
				return err
			}
			var accessScopes string
			var accessExpires time.Time
			err := tx.QueryRow(ctx, `
				SELECT scopes, expires_at FROM oauth_tokens
				WHERE token_hash = $1 AND family_id = $2 AND kind = 'a' AND revoked_at IS NULL`,
				pair.Access.Hash[:], g.FamilyID).Scan(&accessScopes, &accessExpires)
			if errors.Is(err, pgx.ErrNoRows) {
				return oauth.ErrNotFound
			}
			if err != nil {
				return err
			}
			rot.Replay, rot.Scopes, rot.AccessExpiresAt = true, splitScopes(accessScopes), accessExpires.UTC()
			return nil
		}
		if !now.Before(expiresAt) {
			return oauth.ErrNotFound
		}
		if err := check(g); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE oauth_tokens SET rotated_at = $1 WHERE token_hash = $2`, now, old[:]); err != nil {
			return err
		}
		rot.Scopes = pair.Scopes
		if rot.Scopes == nil {
			rot.Scopes = g.Scopes
		}
		rot.AccessExpiresAt = pair.Access.ExpiresAt.UTC().Truncate(time.Microsecond)
		pair.Refresh.ExpiresAt = pair.RefreshExpiry(g.FamilyCreatedAt)
		return pgInsertPair(ctx, tx, g.FamilyID, g.ClientID, g.UserID, rot.Scopes, pair)
	})
	if err != nil {
		return oauth.Rotation{}, wrapGrantErr("rotate refresh token", err)
	}
	return rot, nil
}

// RevokeToken implements oauth.GrantStore.
func (s *Postgres) RevokeToken(ctx context.Context, h oauth.TokenHash, clientID string, now time.Time) ([]oauth.TokenHash, error) {
	var revoked []oauth.TokenHash
	err := s.grantTx(ctx, func(tx pgx.Tx) error {
		var kind, familyID, owner string
		err := tx.QueryRow(ctx,
			`SELECT kind, family_id, client_id FROM oauth_tokens WHERE token_hash = $1`, h[:],
		).Scan(&kind, &familyID, &owner)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		if owner != clientID {
			return nil
		}
		if kind == "a" {
			if _, err := tx.Exec(ctx,
				`UPDATE oauth_tokens SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL`, now, h[:]); err != nil {
				return err
			}
			revoked = []oauth.TokenHash{h}
			return notifyRevoked(ctx, tx, h)
		}
		var createdAt time.Time
		var famRevoked *time.Time
		if err := pgLockFamily(ctx, tx, familyID, &createdAt, &famRevoked); err != nil {
			return err
		}
		revoked, err = pgRevokeFamily(ctx, tx, familyID, now)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlstore: revoke token: %w", err)
	}
	return revoked, nil
}

// lookupAccess is LookupToken for OAuth access tokens.
func (s *Postgres) lookupAccess(ctx context.Context, h oauth.TokenHash) (oauth.Principal, error) {
	var (
		p      oauth.Principal
		scopes string
	)
	err := s.pool.QueryRow(ctx, `
		SELECT t.user_id, t.client_id, t.scopes, t.expires_at
		FROM oauth_tokens t JOIN oauth_families f ON f.family_id = t.family_id
		WHERE t.token_hash = $1 AND t.kind = 'a' AND t.revoked_at IS NULL AND f.revoked_at IS NULL`, h[:],
	).Scan(&p.UserID, &p.ClientID, &scopes, &p.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return oauth.Principal{}, oauth.ErrNotFound
	}
	if err != nil {
		return oauth.Principal{}, fmt.Errorf("sqlstore: look up token: %w", err)
	}
	p.Scopes, p.Kind, p.ExpiresAt = splitScopes(scopes), oauth.KindAccess, p.ExpiresAt.UTC()
	return p, nil
}

// IntrospectToken implements oauth.GrantStore.
func (s *Postgres) IntrospectToken(ctx context.Context, h oauth.TokenHash) (oauth.TokenInfo, error) {
	var (
		info         oauth.TokenInfo
		kind, scopes string
	)
	err := s.pool.QueryRow(ctx, `
		SELECT t.kind, t.client_id, t.user_id, t.scopes, t.issued_at, t.expires_at
		FROM oauth_tokens t JOIN oauth_families f ON f.family_id = t.family_id
		WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND t.rotated_at IS NULL AND f.revoked_at IS NULL`, h[:],
	).Scan(&kind, &info.ClientID, &info.UserID, &scopes, &info.IssuedAt, &info.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return oauth.TokenInfo{}, oauth.ErrNotFound
	}
	if err != nil {
		return oauth.TokenInfo{}, fmt.Errorf("sqlstore: introspect token: %w", err)
	}
	info.Kind = oauth.Kind(kind[0])
	info.Scopes, info.IssuedAt, info.ExpiresAt = splitScopes(scopes), info.IssuedAt.UTC(), info.ExpiresAt.UTC()
	return info, nil
}

// GrantedScopes implements oauth.GrantStore.
func (s *Postgres) GrantedScopes(ctx context.Context, userID, clientID string) ([]string, error) {
	var scopes string
	err := s.pool.QueryRow(ctx,
		`SELECT scopes FROM oauth_consents WHERE user_id = $1 AND client_id = $2`, userID, clientID).Scan(&scopes)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: read consent: %w", err)
	}
	return splitScopes(scopes), nil
}

// RecordConsent implements oauth.GrantStore. The row is created first, so
// that there is one to lock, then extended under the lock: concurrent
// consents for one user and client both end up recorded.
func (s *Postgres) RecordConsent(ctx context.Context, userID, clientID string, scopes []string) error {
	err := s.grantTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `
			INSERT INTO oauth_consents (user_id, client_id, scopes) VALUES ($1, $2, '')
			ON CONFLICT (user_id, client_id) DO NOTHING`, userID, clientID); err != nil {
			return err
		}
		var have string
		if err := tx.QueryRow(ctx, `
			SELECT scopes FROM oauth_consents WHERE user_id = $1 AND client_id = $2 FOR UPDATE`,
			userID, clientID).Scan(&have); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE oauth_consents SET scopes = $3 WHERE user_id = $1 AND client_id = $2`,
			userID, clientID, joinScopes(unionScopes(splitScopes(have), scopes)))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlstore: record consent: %w", err)
	}
	return nil
}

// ServerKey implements oauth.GrantStore. The first instance's key wins; the
// others insert nothing and read it back.
func (s *Postgres) ServerKey(ctx context.Context) ([]byte, error) {
	fresh, err := newServerKey()
	if err != nil {
		return nil, fmt.Errorf("sqlstore: server key: %w", err)
	}
	if _, err := s.pool.Exec(ctx,
		`INSERT INTO tokengate_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`, serverKeyName, fresh); err != nil {
		return nil, fmt.Errorf("sqlstore: server key: %w", err)
	}
	var key []byte
	if err := s.pool.QueryRow(ctx,
		`SELECT value FROM tokengate_secrets WHERE name = $1`, serverKeyName).Scan(&key); err != nil {
		return nil, fmt.Errorf("sqlstore: server key: %w", err)
	}
	return key, nil
}

// PurgeExpired implements oauth.GrantStore. Each statement commits on its
// own, so the purge never holds one family's locks while waiting for
// another's.
func (s *Postgres) PurgeExpired(ctx context.Context, now time.Time) (int, error) {
	cutoff := oauth.PurgeBefore(now)
	var n int64
	for _, q := range []string{
		`DELETE FROM oauth_codes WHERE expires_at < $1`,
		`DELETE FROM oauth_tokens WHERE expires_at < $1`,
		`DELETE FROM oauth_families f WHERE f.created_at < $1 AND NOT EXISTS
			(SELECT 1 FROM oauth_tokens t WHERE t.family_id = f.family_id)`,
	} {
		tag, err := s.pool.Exec(ctx, q, cutoff)
		if err != nil {
			return int(n), fmt.Errorf("sqlstore: purge expired: %w", err)
		}
		n += tag.RowsAffected()
	}
	return int(n), nil
}
