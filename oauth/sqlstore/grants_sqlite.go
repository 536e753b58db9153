package sqlstore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/tokengate/caddy-tokengate/oauth"
)

// serverKeyName is the tokengate_secrets row of the refresh-derivation key.
const serverKeyName = "server_key"

func micro(t time.Time) int64 { return t.UnixMicro() }

func fromMicro(us int64) time.Time { return time.UnixMicro(us).UTC() }

// SaveCode implements oauth.GrantStore.
func (s *SQLite) SaveCode(ctx context.Context, c oauth.Code) error {
	defer s.lockWrites()()
	_, err := s.db.ExecContext(ctx, `
		INSERT INTO oauth_codes (code_hash, client_id, user_id, redirect_uri, scopes, challenge, family_id, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		c.Hash[:], c.ClientID, c.UserID, c.RedirectURI, joinScopes(c.Scopes), c.Challenge, c.FamilyID, micro(c.ExpiresAt))
	if err != nil {
		return fmt.Errorf("sqlstore: save code: %w", err)
	}
	return nil
}

// ExchangeCode implements oauth.GrantStore.
func (s *SQLite) ExchangeCode(ctx context.Context, h oauth.TokenHash, now time.Time, check func(oauth.Code) error, pair oauth.IssuedPair) (oauth.Code, error) {
	var c oauth.Code
	err := s.grantTx(ctx, func(ctx context.Context, tx *preparedTx) error {
		var (
			scopes    string
			expiresAt int64
			usedAt    sql.NullInt64
		)
		err := tx.QueryRowContext(ctx, `
			SELECT client_id, user_id, redirect_uri, scopes, challenge, family_id, expires_at, used_at
			FROM oauth_codes WHERE code_hash = ?`, h[:],
		).Scan(&c.ClientID, &c.UserID, &c.RedirectURI, &scopes, &c.Challenge, &c.FamilyID, &expiresAt, &usedAt)
		if errors.Is(err, sql.ErrNoRows) {
			return oauth.ErrNotFound
		}
		if err != nil {
			return err
		}
		c.Hash, c.Scopes, c.ExpiresAt = h, splitScopes(scopes), fromMicro(expiresAt)
		if usedAt.Valid {
			revoked, err := sqliteRevokeFamily(ctx, tx, c.FamilyID, now)
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
		if _, err := tx.ExecContext(ctx, `UPDATE oauth_codes SET used_at = ? WHERE code_hash = ?`, micro(now), h[:]); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `
			INSERT INTO oauth_families (family_id, client_id, user_id, created_at) VALUES (?, ?, ?, ?)`,
			c.FamilyID, c.ClientID, c.UserID, micro(now)); err != nil {
			return err
		}
		return sqliteInsertPair(ctx, tx, c.FamilyID, c.ClientID, c.UserID, c.Scopes, pair)
	})
	if err != nil {
		return oauth.Code{}, wrapGrantErr("exchange code", err)
	}
	return c, nil
}

// wrapGrantErr adds context to database errors but passes the contract's
// own errors (ErrNotFound, *ReuseError, the check's error) as they are.
func wrapGrantErr(op string, err error) error {
	var reuse *oauth.ReuseError
	var oerr *oauth.Error
	if errors.Is(err, oauth.ErrNotFound) || errors.As(err, &reuse) || errors.As(err, &oerr) {
		return err
	}
	return fmt.Errorf("sqlstore: %s: %w", op, err)
}

func sqliteInsertPair(ctx context.Context, tx *preparedTx, familyID, clientID, userID string, scopes []string, p oauth.IssuedPair) error {
	// One statement for both rows: each statement run has a fixed cost.
	joined, issued := joinScopes(scopes), micro(p.IssuedAt)
	_, err := tx.ExecContext(ctx, `
		INSERT INTO oauth_tokens (token_hash, kind, family_id, client_id, user_id, scopes, issued_at, expires_at)
		VALUES (?, 'a', ?, ?, ?, ?, ?, ?), (?, 'r', ?, ?, ?, ?, ?, ?)`,
		p.Access.Hash[:], familyID, clientID, userID, joined, issued, micro(p.Access.ExpiresAt),
		p.Refresh.Hash[:], familyID, clientID, userID, joined, issued, micro(p.Refresh.ExpiresAt))
	return err
}

// sqliteRevokeFamily revokes a family and every token in it, and returns
// the hashes of its access tokens.
func sqliteRevokeFamily(ctx context.Context, tx *preparedTx, familyID string, now time.Time) ([]oauth.TokenHash, error) {
	if _, err := tx.ExecContext(ctx,
		`UPDATE oauth_families SET revoked_at = ? WHERE family_id = ? AND revoked_at IS NULL`, micro(now), familyID); err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx,
		`UPDATE oauth_tokens SET revoked_at = ? WHERE family_id = ? AND revoked_at IS NULL`, micro(now), familyID); err != nil {
		return nil, err
	}
	rows, err := tx.QueryContext(ctx, `SELECT token_hash FROM oauth_tokens WHERE family_id = ? AND kind = 'a'`, familyID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []oauth.TokenHash
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return nil, err
		}
		h, err := tokenHash(b)
		if err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// RotateRefresh implements oauth.GrantStore.
func (s *SQLite) RotateRefresh(ctx context.Context, old oauth.TokenHash, clientID string, now time.Time, grace time.Duration, check func(oauth.RefreshGrant) error, pair oauth.IssuedPair) (oauth.Rotation, error) {
	var rot oauth.Rotation
	err := s.grantTx(ctx, func(ctx context.Context, tx *preparedTx) error {
		var (
			g                               oauth.RefreshGrant
			scopes                          string
			expiresAt, familyCreated        int64
			revokedAt, rotatedAt, famRevoke sql.NullInt64
		)
		err := tx.QueryRowContext(ctx, `
			SELECT t.family_id, t.client_id, t.user_id, t.scopes, t.expires_at, t.revoked_at, t.rotated_at,
				f.created_at, f.revoked_at
			FROM oauth_tokens t JOIN oauth_families f ON f.family_id = t.family_id
			WHERE t.token_hash = ? AND t.kind = 'r'`, old[:],
		).Scan(&g.FamilyID, &g.ClientID, &g.UserID, &scopes, &expiresAt, &revokedAt, &rotatedAt, &familyCreated, &famRevoke)
		if errors.Is(err, sql.ErrNoRows) {
			return oauth.ErrNotFound
		}
		if err != nil {
			return err
		}
		if g.ClientID != clientID || revokedAt.Valid || famRevoke.Valid {
			return oauth.ErrNotFound
		}
		g.Scopes, g.FamilyCreatedAt = splitScopes(scopes), fromMicro(familyCreated)
		rot = oauth.Rotation{FamilyID: g.FamilyID, UserID: g.UserID}
		if rotatedAt.Valid {
			if grace <= 0 || now.Sub(fromMicro(rotatedAt.Int64)) > grace {
				revoked, err := sqliteRevokeFamily(ctx, tx, g.FamilyID, now)
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
			var accessExpires int64
			err := tx.QueryRowContext(ctx, `
				SELECT scopes, expires_at FROM oauth_tokens
				WHERE token_hash = ? AND family_id = ? AND kind = 'a' AND revoked_at IS NULL`,
				pair.Access.Hash[:], g.FamilyID).Scan(&accessScopes, &accessExpires)
			if errors.Is(err, sql.ErrNoRows) {
				return oauth.ErrNotFound
			}
			if err != nil {
				return err
			}
			rot.Replay, rot.Scopes, rot.AccessExpiresAt = true, splitScopes(accessScopes), fromMicro(accessExpires)
			return nil
		}
		if !now.Before(fromMicro(expiresAt)) {
			return oauth.ErrNotFound
		}
		if err := check(g); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE oauth_tokens SET rotated_at = ? WHERE token_hash = ?`, micro(now), old[:]); err != nil {
			return err
		}
		rot.Scopes = pair.Scopes
		if rot.Scopes == nil {
			rot.Scopes = g.Scopes
		}
		rot.AccessExpiresAt = fromMicro(micro(pair.Access.ExpiresAt))
		pair.Refresh.ExpiresAt = pair.RefreshExpiry(g.FamilyCreatedAt)
		return sqliteInsertPair(ctx, tx, g.FamilyID, g.ClientID, g.UserID, rot.Scopes, pair)
	})
	if err != nil {
		return oauth.Rotation{}, wrapGrantErr("rotate refresh token", err)
	}
	return rot, nil
}

// RevokeToken implements oauth.GrantStore.
func (s *SQLite) RevokeToken(ctx context.Context, h oauth.TokenHash, clientID string, now time.Time) ([]oauth.TokenHash, error) {
	var revoked []oauth.TokenHash
	err := s.grantTx(ctx, func(ctx context.Context, tx *preparedTx) error {
		var kind, familyID, owner string
		err := tx.QueryRowContext(ctx,
			`SELECT kind, family_id, client_id FROM oauth_tokens WHERE token_hash = ?`, h[:],
		).Scan(&kind, &familyID, &owner)
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
			_, err := tx.ExecContext(ctx,
				`UPDATE oauth_tokens SET revoked_at = ? WHERE token_hash = ? AND revoked_at IS NULL`, micro(now), h[:])
			revoked = []oauth.TokenHash{h}
			return err
		}
		revoked, err = sqliteRevokeFamily(ctx, tx, familyID, now)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlstore: revoke token: %w", err)
	}
	return revoked, nil
}

// lookupAccess is LookupToken for OAuth access tokens.
func (s *SQLite) lookupAccess(ctx context.Context, h oauth.TokenHash) (oauth.Principal, error) {
	var (
		p         oauth.Principal
		scopes    string
		expiresAt int64
	)
	err := s.stmts.QueryRowContext(ctx, `
		SELECT t.user_id, t.client_id, t.scopes, t.expires_at
		FROM oauth_tokens t JOIN oauth_families f ON f.family_id = t.family_id
		WHERE t.token_hash = ? AND t.kind = 'a' AND t.revoked_at IS NULL AND f.revoked_at IS NULL`, h[:],
	).Scan(&p.UserID, &p.ClientID, &scopes, &expiresAt)
	if errors.Is(err, sql.ErrNoRows) {
		return oauth.Principal{}, oauth.ErrNotFound
	}
	if err != nil {
		return oauth.Principal{}, fmt.Errorf("sqlstore: look up token: %w", err)
	}
	p.Scopes, p.Kind, p.ExpiresAt = splitScopes(scopes), oauth.KindAccess, fromMicro(expiresAt)
	return p, nil
}

// IntrospectToken implements oauth.GrantStore.
func (s *SQLite) IntrospectToken(ctx context.Context, h oauth.TokenHash) (oauth.TokenInfo, error) {
	var (
		info                oauth.TokenInfo
		kind, scopes        string
		issuedAt, expiresAt int64
	)
	err := s.db.QueryRowContext(ctx, `
		SELECT t.kind, t.client_id, t.user_id, t.scopes, t.issued_at, t.expires_at
		FROM oauth_tokens t JOIN oauth_families f ON f.family_id = t.family_id
		WHERE t.token_hash = ? AND t.revoked_at IS NULL AND t.rotated_at IS NULL AND f.revoked_at IS NULL`, h[:],
	).Scan(&kind, &info.ClientID, &info.UserID, &scopes, &issuedAt, &expiresAt)
	if errors.Is(err, sql.ErrNoRows) {
		return oauth.TokenInfo{}, oauth.ErrNotFound
	}
	if err != nil {
		return oauth.TokenInfo{}, fmt.Errorf("sqlstore: introspect token: %w", err)
	}
	info.Kind = oauth.Kind(kind[0])
	info.Scopes, info.IssuedAt, info.ExpiresAt = splitScopes(scopes), fromMicro(issuedAt), fromMicro(expiresAt)
	return info, nil
}

// GrantedScopes implements oauth.GrantStore.
func (s *SQLite) GrantedScopes(ctx context.Context, userID, clientID string) ([]string, error) {
	var scopes string
	err := s.db.QueryRowContext(ctx,
		`SELECT scopes FROM oauth_consents WHERE user_id = ? AND client_id = ?`, userID, clientID).Scan(&scopes)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: read consent: %w", err)
	}
	return splitScopes(scopes), nil
}

// RecordConsent implements oauth.GrantStore.
func (s *SQLite) RecordConsent(ctx context.Context, userID, clientID string, scopes []string) error {
	err := s.grantTx(ctx, func(ctx context.Context, tx *preparedTx) error {
		var have string
		err := tx.QueryRowContext(ctx,
			`SELECT scopes FROM oauth_consents WHERE user_id = ? AND client_id = ?`, userID, clientID).Scan(&have)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		_, err = tx.ExecContext(ctx, `
			INSERT INTO oauth_consents (user_id, client_id, scopes) VALUES (?, ?, ?)
			ON CONFLICT (user_id, client_id) DO UPDATE SET scopes = excluded.scopes`,
			userID, clientID, joinScopes(unionScopes(splitScopes(have), scopes)))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlstore: record consent: %w", err)
	}
	return nil
}

// unionScopes returns have followed by the scopes of add it lacks.
func unionScopes(have, add []string) []string {
	out := append([]string(nil), have...)
	for _, s := range add {
		found := false
		for _, h := range out {
			if h == s {
				found = true
				break
			}
		}
		if !found {
			out = append(out, s)
		}
	}
	return out
}

// newServerKey returns a fresh random server key.
func newServerKey() ([]byte, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	return key, nil
}

// ServerKey implements oauth.GrantStore. The first caller's key wins; the
// others insert nothing and read it back.
func (s *SQLite) ServerKey(ctx context.Context) ([]byte, error) {
	defer s.lockWrites()()
	fresh, err := newServerKey()
	if err != nil {
		return nil, fmt.Errorf("sqlstore: server key: %w", err)
	}
	if _, err := s.db.ExecContext(ctx,
		`INSERT INTO tokengate_secrets (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`, serverKeyName, fresh); err != nil {
		return nil, fmt.Errorf("sqlstore: server key: %w", err)
	}
	var key []byte
	if err := s.db.QueryRowContext(ctx,
		`SELECT value FROM tokengate_secrets WHERE name = ?`, serverKeyName).Scan(&key); err != nil {
		return nil, fmt.Errorf("sqlstore: server key: %w", err)
	}
	return key, nil
}

// PurgeExpired implements oauth.GrantStore.
func (s *SQLite) PurgeExpired(ctx context.Context, now time.Time) (int, error) {
	cutoff := micro(oauth.PurgeBefore(now))
	var n int64
	err := s.grantTx(ctx, func(ctx context.Context, tx *preparedTx) error {
		for _, q := range []string{
			`DELETE FROM oauth_codes WHERE expires_at < ?`,
			`DELETE FROM oauth_tokens WHERE expires_at < ?`,
			`DELETE FROM oauth_families WHERE created_at < ? AND NOT EXISTS
				(SELECT 1 FROM oauth_tokens t WHERE t.family_id = oauth_families.family_id)`,
		} {
			res, err := tx.ExecContext(ctx, q, cutoff)
			if err != nil {
				return err
			}
			rows, err := res.RowsAffected()
			if err != nil {
				return err
			}
			n += rows
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("sqlstore: purge expired: %w", err)
	}
	return int(n), nil
}
