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

// consentStatements are the oauth_consents statements in one dialect.
type consentStatements struct {
	read, ensure, readForUpdate, update, list string
}

func newConsentStatements(d dialect) consentStatements {
	return consentStatements{
		read: d.rebind(`SELECT scopes FROM oauth_consents WHERE user_id = ? AND client_id = ?`),
		ensure: d.rebind(`
			INSERT INTO oauth_consents (user_id, client_id, scopes, granted_at) VALUES (?, ?, '', ?)
			ON CONFLICT (user_id, client_id) DO NOTHING`),
		readForUpdate: d.rebind(`SELECT scopes FROM oauth_consents WHERE user_id = ? AND client_id = ?` + d.forUpdate()),
		update:        d.rebind(`UPDATE oauth_consents SET scopes = ?, granted_at = ? WHERE user_id = ? AND client_id = ?`),
		list:          d.rebind(`SELECT client_id, scopes, granted_at FROM oauth_consents WHERE user_id = ? ORDER BY client_id`),
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
// consents for one user and client both end up recorded. A consent that
// adds no scope writes nothing more, and keeps its granted_at.
func (t *tables) RecordConsent(ctx context.Context, userID, clientID string, scopes []string) error {
	now := t.dialect.timeArg(time.Now())
	err := t.dialect.grantTx(ctx, func(ctx context.Context, tx querier) error {
		if _, err := tx.ExecContext(ctx, t.consents.ensure, userID, clientID, now); err != nil {
			return err
		}
		var have string
		if err := tx.QueryRowContext(ctx, t.consents.readForUpdate, userID, clientID).Scan(&have); err != nil {
			return err
		}
		had := splitScopes(have)
		all := unionScopes(had, scopes)
		if len(all) == len(had) {
			return nil
		}
		_, err := tx.ExecContext(ctx, t.consents.update, joinScopes(all), now, userID, clientID)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlstore: record consent: %w", err)
	}
	return nil
}

// Consents implements oauth.UserGrantStore.
func (t *tables) Consents(ctx context.Context, userID string) ([]oauth.Consent, error) {
	rs, err := t.dialect.QueryContext(ctx, t.consents.list, userID)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list consents: %w", err)
	}
	defer rs.Close()
	var out []oauth.Consent
	for rs.Next() {
		var (
			c         oauth.Consent
			scopes    string
			grantedAt timeColumn
		)
		if err := rs.Scan(&c.ClientID, &scopes, &grantedAt); err != nil {
			return nil, fmt.Errorf("sqlstore: list consents: %w", err)
		}
		c.Scopes, c.GrantedAt = splitScopes(scopes), grantedAt.Time
		out = append(out, c)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: list consents: %w", err)
	}
	return out, nil
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
