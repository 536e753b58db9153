package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/tokengate/caddy-tokengate/oauth"
)

// personalTokenStatements are the personal_tokens statements in one
// dialect.
type personalTokenStatements struct {
	lookup, read, currentHash, upsert, delete, touch string
}

func newPersonalTokenStatements(d dialect) personalTokenStatements {
	return personalTokenStatements{
		lookup:      d.rebind(`SELECT user_id, scopes FROM personal_tokens WHERE token_hash = ?`),
		read:        d.rebind(`SELECT token_hash, hint, scopes, created_at, last_used_at FROM personal_tokens WHERE user_id = ?`),
		currentHash: d.rebind(`SELECT token_hash FROM personal_tokens WHERE user_id = ?`),
		upsert: d.rebind(`
			INSERT INTO personal_tokens (user_id, token_hash, hint, scopes, created_at, last_used_at)
			VALUES (?, ?, ?, ?, ?, NULL)
			ON CONFLICT (user_id) DO UPDATE SET
				token_hash = excluded.token_hash,
				hint = excluded.hint,
				scopes = excluded.scopes,
				created_at = excluded.created_at,
				last_used_at = NULL`),
		delete: d.rebind(`DELETE FROM personal_tokens WHERE user_id = ? RETURNING token_hash`),
		touch: d.rebind(`
			UPDATE personal_tokens SET last_used_at = ?
			WHERE token_hash = ? AND (last_used_at IS NULL OR last_used_at < ?)`),
	}
}

// personalTokenLock is the lockName prefix of a user's personal token. A
// row lock would not do: when the user has no token yet there is no row to
// lock, and two first issues would both report that nothing was replaced.
const personalTokenLock = "tokengate.personal:"

// lookupPersonal is LookupToken for personal tokens.
func (t *tables) lookupPersonal(ctx context.Context, h oauth.TokenHash) (oauth.Principal, error) {
	var userID, scopes string
	err := t.dialect.QueryRowContext(ctx, t.personal.lookup, h[:]).Scan(&userID, &scopes)
	if errors.Is(err, sql.ErrNoRows) {
		return oauth.Principal{}, oauth.ErrNotFound
	}
	if err != nil {
		return oauth.Principal{}, fmt.Errorf("sqlstore: look up token: %w", err)
	}
	return oauth.Principal{UserID: userID, Scopes: splitScopes(scopes), Kind: oauth.KindPersonal}, nil
}

// ReplacePersonalToken implements oauth.PersonalTokenStore. Under the
// user's lock the old hash is read after the previous writer committed, so
// each call returns its predecessor's hash. The replaced hash is announced
// to the other instances in the same transaction, so the announcement is
// sent if and only if the rotation commits.
func (t *tables) ReplacePersonalToken(ctx context.Context, pt oauth.PersonalToken) (oauth.TokenHash, bool, error) {
	var (
		replaced oauth.TokenHash
		ok       bool
	)
	err := t.dialect.writeTx(ctx, func(tx querier) error {
		if err := t.dialect.lockName(ctx, tx, personalTokenLock+pt.UserID); err != nil {
			return err
		}
		var old []byte
		err := tx.QueryRowContext(ctx, t.personal.currentHash, pt.UserID).Scan(&old)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return err
		default:
			if replaced, err = tokenHash(old); err != nil {
				return err
			}
			ok = true
		}
		if _, err := tx.ExecContext(ctx, t.personal.upsert,
			pt.UserID, pt.Hash[:], pt.Hint, joinScopes(pt.Scopes), t.dialect.timeArg(createdAtOrNow(pt.CreatedAt))); err != nil {
			return err
		}
		if ok && replaced != pt.Hash {
			return t.dialect.notifyRevoked(ctx, tx, replaced)
		}
		return nil
	})
	if err != nil {
		return oauth.TokenHash{}, false, fmt.Errorf("sqlstore: replace personal token: %w", err)
	}
	return replaced, ok, nil
}

// DeletePersonalToken implements oauth.PersonalTokenStore. It takes the same
// lock as ReplacePersonalToken, so a rotation racing with the deletion
// reports the hash that was really active before it.
func (t *tables) DeletePersonalToken(ctx context.Context, userID string) (oauth.TokenHash, bool, error) {
	var (
		deleted oauth.TokenHash
		ok      bool
	)
	err := t.dialect.writeTx(ctx, func(tx querier) error {
		var err error
		if deleted, ok, err = t.deletePersonalIn(ctx, tx, userID); err != nil || !ok {
			return err
		}
		return t.dialect.notifyRevoked(ctx, tx, deleted)
	})
	if err != nil {
		return oauth.TokenHash{}, false, fmt.Errorf("sqlstore: delete personal token: %w", err)
	}
	return deleted, ok, nil
}

// deletePersonalIn deletes userID's personal token inside tx, under the
// lock ReplacePersonalToken takes, and returns its hash; ok is false when
// the user had none. Announcing the hash is the caller's.
func (t *tables) deletePersonalIn(ctx context.Context, tx querier, userID string) (oauth.TokenHash, bool, error) {
	if err := t.dialect.lockName(ctx, tx, personalTokenLock+userID); err != nil {
		return oauth.TokenHash{}, false, err
	}
	var b []byte
	err := tx.QueryRowContext(ctx, t.personal.delete, userID).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return oauth.TokenHash{}, false, nil
	}
	if err != nil {
		return oauth.TokenHash{}, false, err
	}
	h, err := tokenHash(b)
	return h, err == nil, err
}

// PersonalToken implements oauth.PersonalTokenStore.
func (t *tables) PersonalToken(ctx context.Context, userID string) (oauth.PersonalToken, error) {
	var (
		hash                  []byte
		hint, scopes          string
		createdAt, lastUsedAt timeColumn
	)
	err := t.dialect.QueryRowContext(ctx, t.personal.read, userID).Scan(&hash, &hint, &scopes, &createdAt, &lastUsedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return oauth.PersonalToken{}, oauth.ErrNotFound
	}
	if err != nil {
		return oauth.PersonalToken{}, fmt.Errorf("sqlstore: read personal token: %w", err)
	}
	h, err := tokenHash(hash)
	if err != nil {
		return oauth.PersonalToken{}, fmt.Errorf("sqlstore: read personal token: %w", err)
	}
	pt := oauth.PersonalToken{
		UserID:    userID,
		Hash:      h,
		Hint:      hint,
		Scopes:    splitScopes(scopes),
		CreatedAt: createdAt.Time,
	}
	if lastUsedAt.Valid {
		pt.LastUsedAt = lastUsedAt.Time
	}
	return pt, nil
}

// TouchPersonalToken implements oauth.PersonalTokenStore. Uses are recorded
// from several goroutines and instances without ordering, so an older time
// never overwrites a newer one. An unknown hash is not an error: the token
// may have been rotated since it was used.
func (t *tables) TouchPersonalToken(ctx context.Context, h oauth.TokenHash, at time.Time) error {
	usedAt := t.dialect.timeArg(at)
	if _, err := t.dialect.ExecContext(ctx, t.personal.touch, usedAt, h[:], usedAt); err != nil {
		return fmt.Errorf("sqlstore: touch personal token: %w", err)
	}
	return nil
}
