package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/tokengate/caddy-tokengate/oauth"
)

// userGrantStatements end what one user granted, to one client or to all:
// the consents, the unused codes, the refresh families with their tokens
// and, for all, the personal token. They span the tables of consents.go,
// grants.go and personal_tokens.go; each set is written once, for a user
// and client and for a user alone.
type userGrantStatements struct {
	client, user revocationStatements
}

// revocationStatements are the statements of one revocation, in the order
// it runs them, which is the order in which code exchanges and rotations
// lock rows (grants.go, families.go): codes, then families, then their
// tokens.
type revocationStatements struct {
	deleteCodes, lockFamilies, revokeFamilies, revokeTokens, deleteConsents string
	// deleteDeviceCodes ends device authorizations approved but not yet
	// issued (device_codes.go); it runs after deleteCodes, locking the
	// device rows before the families, as a poll does.
	deleteDeviceCodes string
}

func newUserGrantStatements(d dialect) userGrantStatements {
	return userGrantStatements{
		client: newRevocationStatements(d, `user_id = ? AND client_id = ?`),
		user:   newRevocationStatements(d, `user_id = ?`),
	}
}

// newRevocationStatements builds the statements of a revocation whose rows
// match where, a condition on user_id and client_id with ? placeholders.
func newRevocationStatements(d dialect, where string) revocationStatements {
	return revocationStatements{
		// A used code has been exchanged: its family is revoked below,
		// and a replay of it is still recognized as reuse.
		deleteCodes: d.rebind(`DELETE FROM oauth_codes WHERE ` + where + ` AND used_at IS NULL`),
		// The families are locked in the order of their ids, as removing
		// a client locks them (clients.go), so that the two never wait
		// for each other in opposite orders.
		lockFamilies:   lockRows(d, `SELECT 1 FROM oauth_families WHERE `+where+` ORDER BY family_id`),
		revokeFamilies: d.rebind(`UPDATE oauth_families SET revoked_at = ? WHERE ` + where + ` AND revoked_at IS NULL`),
		// The tokens of those families not revoked yet; a family
		// revoked earlier had its tokens revoked with it.
		revokeTokens: d.rebind(`
			UPDATE oauth_tokens SET revoked_at = ?
			WHERE revoked_at IS NULL AND family_id IN (SELECT family_id FROM oauth_families WHERE ` + where + `)
			RETURNING kind, token_hash, expires_at`),
		deleteConsents:    d.rebind(`DELETE FROM oauth_consents WHERE ` + where),
		deleteDeviceCodes: d.rebind(`DELETE FROM oauth_device_codes WHERE ` + where + ` AND status = 'approved'`),
	}
}

// userGrantLock is the lockName prefix of a user's revocations: two of
// them for one user (a sign-out everywhere while the user revokes an app)
// queue instead of locking the same rows in different orders.
const userGrantLock = "tokengate.user:"

// RevokeClientGrant implements oauth.UserGrantStore.
func (t *tables) RevokeClientGrant(ctx context.Context, userID, clientID string, now time.Time) ([]oauth.TokenHash, bool, error) {
	revoked, found, err := t.revokeUserGrants(ctx, userID, now, t.users.client, false, userID, clientID)
	if err != nil {
		return nil, false, fmt.Errorf("sqlstore: revoke grant: %w", err)
	}
	return revoked, found, nil
}

// RevokeUser implements oauth.UserGrantStore.
func (t *tables) RevokeUser(ctx context.Context, userID string, now time.Time) ([]oauth.TokenHash, bool, error) {
	revoked, found, err := t.revokeUserGrants(ctx, userID, now, t.users.user, true, userID)
	if err != nil {
		return nil, false, fmt.Errorf("sqlstore: revoke user: %w", err)
	}
	return revoked, found, nil
}

// revokeUserGrants runs the statements of one revocation in a transaction,
// with args (the user and, for one client, its id) for their condition, and
// the personal token too when personal is set. It announces the hashes it
// returns to the other instances, when the transaction commits.
func (t *tables) revokeUserGrants(ctx context.Context, userID string, now time.Time, st revocationStatements, personal bool, args ...any) ([]oauth.TokenHash, bool, error) {
	var (
		revoked []oauth.TokenHash
		found   bool
	)
	err := t.dialect.writeTx(ctx, func(tx querier) error {
		if err := t.dialect.lockName(ctx, tx, userGrantLock+userID); err != nil {
			return err
		}
		// exec runs a statement, noting whether it changed anything.
		exec := func(query string, args ...any) error {
			res, err := tx.ExecContext(ctx, query, args...)
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			found = found || n > 0
			return err
		}
		withTime := append([]any{t.dialect.timeArg(now)}, args...)
		if err := exec(st.deleteCodes, args...); err != nil {
			return err
		}
		if err := exec(st.deleteDeviceCodes, args...); err != nil {
			return err
		}
		if st.lockFamilies != "" {
			rs, err := tx.QueryContext(ctx, st.lockFamilies, args...)
			if err != nil {
				return err
			}
			if err := drain(rs); err != nil {
				return err
			}
		}
		if err := exec(st.revokeFamilies, withTime...); err != nil {
			return err
		}
		rs, err := tx.QueryContext(ctx, st.revokeTokens, withTime...)
		if err != nil {
			return err
		}
		tokens, live, err := scanRevokedTokens(rs, now)
		if err != nil {
			return err
		}
		found, revoked = found || tokens > 0, live
		if err := exec(st.deleteConsents, args...); err != nil {
			return err
		}
		if personal {
			h, ok, err := t.deletePersonalIn(ctx, tx, userID)
			if err != nil {
				return err
			}
			if ok {
				found, revoked = true, append(revoked, h)
			}
		}
		for _, h := range revoked {
			if err := t.dialect.notifyRevoked(ctx, tx, h); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	return revoked, found, nil
}

// scanRevokedTokens reads the rows revokeTokens returns, and closes them:
// how many tokens it revoked, and the hashes of the access tokens among
// them still unexpired at now (an expired one is refused anyway, and
// announcing it would only cost a notification).
func scanRevokedTokens(rs rows, now time.Time) (int, []oauth.TokenHash, error) {
	defer rs.Close()
	var (
		n    int
		live []oauth.TokenHash
	)
	for rs.Next() {
		var (
			kind      string
			hash      []byte
			expiresAt timeColumn
		)
		if err := rs.Scan(&kind, &hash, &expiresAt); err != nil {
			return 0, nil, err
		}
		n++
		if kind != "a" || !now.Before(expiresAt.Time) {
			continue
		}
		h, err := tokenHash(hash)
		if err != nil {
			return 0, nil, err
		}
		live = append(live, h)
	}
	if err := rs.Err(); err != nil {
		return 0, nil, err
	}
	return n, live, nil
}
