package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/tokengate/caddy-tokengate/oauth"
)

// grantStatements are the statements of the OAuth codes, tokens and their
// refresh families, in one dialect.
type grantStatements struct {
	saveCode, codeForExchange, markCodeUsed, insertFamily, insertPair string

	lockRefreshFamily, refreshGrant, replayedAccess, markRotated string

	tokenOwner, revokeAccess, lockFamily string

	revokeFamily, revokeFamilyTokens, familyAccessTokens string

	lookupAccess, introspect string

	purge []string
}

func newGrantStatements(d dialect) grantStatements {
	return grantStatements{
		saveCode: d.rebind(`
			INSERT INTO oauth_codes (code_hash, client_id, user_id, redirect_uri, scopes, challenge, family_id, expires_at, client_generation,
				nonce, auth_time, claims, resources)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		codeForExchange: d.rebind(`
			SELECT client_id, user_id, redirect_uri, scopes, challenge, family_id, expires_at, used_at, client_generation,
				nonce, auth_time, claims, resources
			FROM oauth_codes WHERE code_hash = ?` + d.forUpdate()),
		markCodeUsed: d.rebind(`UPDATE oauth_codes SET used_at = ? WHERE code_hash = ?`),
		insertFamily: d.rebind(`
			INSERT INTO oauth_families (family_id, client_id, user_id, created_at, client_generation, auth_time, claims, resources, dpop_jkt)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		// One statement for both rows: each statement run has a fixed cost.
		insertPair: d.rebind(`
			INSERT INTO oauth_tokens (token_hash, kind, family_id, client_id, user_id, scopes, issued_at, expires_at, audience, dpop_jkt)
			VALUES (?, 'a', ?, ?, ?, ?, ?, ?, ?, ?), (?, 'r', ?, ?, ?, ?, ?, ?, '', '')`),

		lockRefreshFamily: lockRows(d, `
			SELECT 1 FROM oauth_families
			WHERE family_id = (SELECT family_id FROM oauth_tokens WHERE token_hash = ? AND kind = 'r')`),
		refreshGrant: d.rebind(`
			SELECT t.family_id, t.client_id, t.user_id, t.scopes, t.expires_at, t.revoked_at, t.rotated_at,
				f.created_at, f.revoked_at, f.client_generation, f.auth_time, f.claims, f.resources, f.dpop_jkt
			FROM oauth_tokens t JOIN oauth_families f ON f.family_id = t.family_id
			WHERE t.token_hash = ? AND t.kind = 'r'`),
		replayedAccess: d.rebind(`
			SELECT scopes, expires_at, dpop_jkt FROM oauth_tokens
			WHERE token_hash = ? AND family_id = ? AND kind = 'a' AND revoked_at IS NULL`),
		markRotated: d.rebind(`UPDATE oauth_tokens SET rotated_at = ? WHERE token_hash = ?`),

		tokenOwner:   d.rebind(`SELECT kind, family_id, client_id FROM oauth_tokens WHERE token_hash = ?`),
		revokeAccess: d.rebind(`UPDATE oauth_tokens SET revoked_at = ? WHERE token_hash = ? AND revoked_at IS NULL`),
		lockFamily:   lockRows(d, `SELECT 1 FROM oauth_families WHERE family_id = ?`),

		revokeFamily:       d.rebind(`UPDATE oauth_families SET revoked_at = ? WHERE family_id = ? AND revoked_at IS NULL`),
		revokeFamilyTokens: d.rebind(`UPDATE oauth_tokens SET revoked_at = ? WHERE family_id = ? AND revoked_at IS NULL`),
		familyAccessTokens: d.rebind(`SELECT token_hash FROM oauth_tokens WHERE family_id = ? AND kind = 'a'`),

		lookupAccess: d.rebind(`
			SELECT t.user_id, t.client_id, t.scopes, t.expires_at, t.audience, t.dpop_jkt
			FROM oauth_tokens t JOIN oauth_families f ON f.family_id = t.family_id
			WHERE t.token_hash = ? AND t.kind = 'a' AND t.revoked_at IS NULL AND f.revoked_at IS NULL`),
		introspect: d.rebind(`
			SELECT t.kind, t.client_id, t.user_id, t.scopes, t.issued_at, t.expires_at, t.audience, t.dpop_jkt
			FROM oauth_tokens t JOIN oauth_families f ON f.family_id = t.family_id
			WHERE t.token_hash = ? AND t.revoked_at IS NULL AND t.rotated_at IS NULL AND f.revoked_at IS NULL`),

		purge: []string{
			d.rebind(`DELETE FROM oauth_codes WHERE expires_at < ?`),
			d.rebind(`DELETE FROM oauth_tokens WHERE expires_at < ?`),
			d.rebind(`DELETE FROM oauth_families WHERE created_at < ? AND NOT EXISTS
				(SELECT 1 FROM oauth_tokens t WHERE t.family_id = oauth_families.family_id)`),
		},
	}
}

// SaveCode implements oauth.GrantStore.
func (t *tables) SaveCode(ctx context.Context, c oauth.Code) error {
	_, err := t.dialect.ExecContext(ctx, t.grants.saveCode,
		c.Hash[:], c.ClientID, c.UserID, c.RedirectURI, joinScopes(c.Scopes), c.Challenge, c.FamilyID, t.dialect.timeArg(c.ExpiresAt),
		c.ClientGeneration, c.Nonce, t.optionalTime(c.AuthTime), string(c.Claims), joinScopes(c.Resources))
	if err != nil {
		return fmt.Errorf("sqlstore: save code: %w", err)
	}
	return nil
}

// ExchangeCode implements oauth.GrantStore. The code's row is read for
// update: of racing exchanges, the first uses the code and the others find
// it used.
func (t *tables) ExchangeCode(ctx context.Context, h oauth.TokenHash, now time.Time, check func(oauth.Code) error, pair oauth.IssuedPair) (oauth.Code, error) {
	var c oauth.Code
	err := t.dialect.grantTx(ctx, func(ctx context.Context, tx querier) error {
		var (
			scopes, claims, resources   string
			expiresAt, usedAt, authTime timeColumn
		)
		err := tx.QueryRowContext(ctx, t.grants.codeForExchange, h[:]).
			Scan(&c.ClientID, &c.UserID, &c.RedirectURI, &scopes, &c.Challenge, &c.FamilyID, &expiresAt, &usedAt, &c.ClientGeneration,
				&c.Nonce, &authTime, &claims, &resources)
		if errors.Is(err, sql.ErrNoRows) {
			return oauth.ErrNotFound
		}
		if err != nil {
			return err
		}
		c.Hash, c.Scopes, c.ExpiresAt = h, splitScopes(scopes), expiresAt.Time
		c.AuthTime, c.Claims, c.Resources = authTime.Time, claimsColumn(claims), splitScopes(resources)
		if usedAt.Valid {
			revoked, err := t.revokeFamily(ctx, tx, c.FamilyID, now)
			if err != nil {
				return err
			}
			return &oauth.ReuseError{Reused: oauth.ErrCodeReused, FamilyID: c.FamilyID, ClientID: c.ClientID, UserID: c.UserID, Revoked: revoked}
		}
		if !now.Before(c.ExpiresAt) {
			return oauth.ErrNotFound
		}
		if err := t.clientLive(ctx, tx, c.ClientID, c.ClientGeneration); err != nil {
			return err
		}
		if err := check(c); err != nil {
			return err
		}
		at := t.dialect.timeArg(now)
		if _, err := tx.ExecContext(ctx, t.grants.markCodeUsed, at, h[:]); err != nil {
			return err
		}
		family := c.GrantContext
		family.Nonce, family.DPoPKey = "", pair.FamilyDPoPKey
		if err := t.insertFamily(ctx, tx, c.FamilyID, c.ClientID, c.UserID, c.ClientGeneration, now, family); err != nil {
			return err
		}
		return t.insertPair(ctx, tx, c.FamilyID, c.ClientID, c.UserID, c.Scopes, pair)
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

// insertFamily starts a refresh family created at now.
func (t *tables) insertFamily(ctx context.Context, tx querier, familyID, clientID, userID, clientGeneration string, now time.Time, g oauth.GrantContext) error {
	_, err := tx.ExecContext(ctx, t.grants.insertFamily, familyID, clientID, userID, t.dialect.timeArg(now), clientGeneration,
		t.optionalTime(g.AuthTime), string(g.Claims), joinScopes(g.Resources), g.DPoPKey)
	return err
}

func (t *tables) insertPair(ctx context.Context, tx querier, familyID, clientID, userID string, scopes []string, p oauth.IssuedPair) error {
	joined, issued := joinScopes(scopes), t.dialect.timeArg(p.IssuedAt)
	_, err := tx.ExecContext(ctx, t.grants.insertPair,
		p.Access.Hash[:], familyID, clientID, userID, joined, issued, t.dialect.timeArg(p.Access.ExpiresAt), p.Audience, p.AccessDPoPKey,
		p.Refresh.Hash[:], familyID, clientID, userID, joined, issued, t.dialect.timeArg(p.Refresh.ExpiresAt))
	return err
}

// optionalTime is t as an argument for a nullable time column: NULL when
// t is zero.
func (t *tables) optionalTime(at time.Time) any {
	if at.IsZero() {
		return nil
	}
	return t.dialect.timeArg(at)
}

// claimsColumn reads a claims column: nil for none.
func claimsColumn(s string) []byte {
	if s == "" {
		return nil
	}
	return []byte(s)
}

// lookupAccess is LookupToken for OAuth access tokens.
func (t *tables) lookupAccess(ctx context.Context, h oauth.TokenHash) (oauth.Principal, error) {
	var (
		p         oauth.Principal
		scopes    string
		expiresAt timeColumn
	)
	err := t.dialect.QueryRowContext(ctx, t.grants.lookupAccess, h[:]).Scan(&p.UserID, &p.ClientID, &scopes, &expiresAt, &p.Audience, &p.DPoPKey)
	if errors.Is(err, sql.ErrNoRows) {
		return oauth.Principal{}, oauth.ErrNotFound
	}
	if err != nil {
		return oauth.Principal{}, fmt.Errorf("sqlstore: look up token: %w", err)
	}
	p.Scopes, p.Kind, p.ExpiresAt = splitScopes(scopes), oauth.KindAccess, expiresAt.Time
	return p, nil
}

// IntrospectToken implements oauth.GrantStore.
func (t *tables) IntrospectToken(ctx context.Context, h oauth.TokenHash) (oauth.TokenInfo, error) {
	var (
		info                oauth.TokenInfo
		kind, scopes        string
		issuedAt, expiresAt timeColumn
	)
	err := t.dialect.QueryRowContext(ctx, t.grants.introspect, h[:]).
		Scan(&kind, &info.ClientID, &info.UserID, &scopes, &issuedAt, &expiresAt, &info.Audience, &info.DPoPKey)
	if errors.Is(err, sql.ErrNoRows) {
		return oauth.TokenInfo{}, oauth.ErrNotFound
	}
	if err != nil {
		return oauth.TokenInfo{}, fmt.Errorf("sqlstore: introspect token: %w", err)
	}
	info.Kind = oauth.Kind(kind[0])
	info.Scopes, info.IssuedAt, info.ExpiresAt = splitScopes(scopes), issuedAt.Time, expiresAt.Time
	return info, nil
}

// PurgeExpired implements oauth.GrantStore. Each statement commits on its
// own, so the purge never holds one family's locks while waiting for
// another's.
func (t *tables) PurgeExpired(ctx context.Context, now time.Time) (int, error) {
	cutoff := t.dialect.timeArg(oauth.PurgeBefore(now))
	var n int64
	for _, q := range append(slices.Clip(t.grants.purge), t.devices.purge...) {
		res, err := t.dialect.ExecContext(ctx, q, cutoff)
		if err == nil {
			var rows int64
			rows, err = res.RowsAffected()
			n += rows
		}
		if err != nil {
			return int(n), fmt.Errorf("sqlstore: purge expired: %w", err)
		}
	}
	return int(n), nil
}
