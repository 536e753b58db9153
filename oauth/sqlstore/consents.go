package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
)

// consentStatements are the oauth_consents statements in one dialect.
type consentStatements struct {
	read, ensure, readForUpdate, update string
}

func newConsentStatements(d dialect) consentStatements {
	return consentStatements{
		read: d.rebind(`SELECT scopes FROM oauth_consents WHERE user_id = ? AND client_id = ?`),
		ensure: d.rebind(`
			INSERT INTO oauth_consents (user_id, client_id, scopes) VALUES (?, ?, '')
			ON CONFLICT (user_id, client_id) DO NOTHING`),
		readForUpdate: d.rebind(`SELECT scopes FROM oauth_consents WHERE user_id = ? AND client_id = ?` + d.forUpdate()),
		update:        d.rebind(`UPDATE oauth_consents SET scopes = ? WHERE user_id = ? AND client_id = ?`),
	}
}

// GrantedScopes implements oauth.GrantStore.
func (t *tables) GrantedScopes(ctx context.Context, userID, clientID string) ([]string, error) {
	var scopes string
	err := t.dialect.QueryRowContext(ctx, t.consents.read, userID, clientID).Scan(&scopes)
	if errors.Is(err, sql.ErrNoRows) {
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
func (t *tables) RecordConsent(ctx context.Context, userID, clientID string, scopes []string) error {
	err := t.dialect.grantTx(ctx, func(ctx context.Context, tx querier) error {
		if _, err := tx.ExecContext(ctx, t.consents.ensure, userID, clientID); err != nil {
			return err
		}
		var have string
		if err := tx.QueryRowContext(ctx, t.consents.readForUpdate, userID, clientID).Scan(&have); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, t.consents.update, joinScopes(unionScopes(splitScopes(have), scopes)), userID, clientID)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlstore: record consent: %w", err)
	}
	return nil
}

// unionScopes returns have followed by the scopes of add it lacks.
func unionScopes(have, add []string) []string {
	out := slices.Clone(have)
	for _, s := range add {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
