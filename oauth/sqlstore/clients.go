package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/tokengate/caddy-tokengate/oauth"
)

// clientStatements are the oauth_clients statements in one dialect, and
// those that remove what was issued to a client.
type clientStatements struct {
	insert, get, list, update, setSecret, delete, live string
	countOwned, listOwned                              string

	lockFamilies, revokeRefresh, deleteCodes, deleteConsents string
}

// clientColumns are read by get and list, in scanClient's order.
const clientColumns = `client_id, generation, name, secret_hash, redirect_uris, scopes, pkce_required,
	grant_types, dpop_bound_access_tokens, source, owner_user_id, registration_token_hash, created_at, updated_at`

func newClientStatements(d dialect) clientStatements {
	return clientStatements{
		insert: d.rebind(`INSERT INTO oauth_clients (` + clientColumns + `)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (client_id) DO NOTHING`),
		get:        d.rebind(`SELECT ` + clientColumns + ` FROM oauth_clients WHERE client_id = ?`),
		list:       d.rebind(`SELECT ` + clientColumns + ` FROM oauth_clients ORDER BY client_id`),
		countOwned: d.rebind(`SELECT COUNT(*) FROM oauth_clients WHERE owner_user_id = ?`),
		listOwned: d.rebind(`SELECT ` + clientColumns + ` FROM oauth_clients WHERE owner_user_id = ?
			ORDER BY client_id`),
		update: d.rebind(`
			UPDATE oauth_clients SET name = ?, redirect_uris = ?, scopes = ?, pkce_required = ?,
				grant_types = ?, dpop_bound_access_tokens = ?, updated_at = ?
			WHERE client_id = ?`),
		setSecret: d.rebind(`UPDATE oauth_clients SET secret_hash = ?, updated_at = ? WHERE client_id = ?`),
		delete:    d.rebind(`DELETE FROM oauth_clients WHERE client_id = ?`),
		live:      d.rebind(`SELECT 1 FROM oauth_clients WHERE client_id = ? AND generation = ?`),

		// The client's families are locked before their tokens are
		// written, as every other writer of a family's tokens does
		// (families.go), and in the order of their ids, so that removing
		// a client deadlocks with no other writer.
		lockFamilies: lockRows(d, `SELECT 1 FROM oauth_families WHERE client_id = ? ORDER BY family_id`),
		revokeRefresh: d.rebind(`
			UPDATE oauth_tokens SET revoked_at = ?
			WHERE kind = 'r' AND revoked_at IS NULL
				AND family_id IN (SELECT family_id FROM oauth_families WHERE client_id = ?)`),
		deleteCodes:    d.rebind(`DELETE FROM oauth_codes WHERE client_id = ?`),
		deleteConsents: d.rebind(`DELETE FROM oauth_consents WHERE client_id = ?`),
	}
}

// CreateClient implements oauth.ClientStore.
func (t *tables) CreateClient(ctx context.Context, c oauth.StoredClient) error {
	return t.createClient(ctx, c, nil)
}

// ownedClientLock is the lockName prefix of a user's clients: two
// registrations by one user queue, so that the second counts the first.
const ownedClientLock = "tokengate.clients:"

// CreateOwnedClient implements oauth.OwnedClientStore.
func (t *tables) CreateOwnedClient(ctx context.Context, c oauth.StoredClient, limit int) error {
	if c.OwnerUserID == "" {
		return errors.New("sqlstore: create owned client: no owner")
	}
	return t.createClient(ctx, c, func(tx querier) error {
		if err := t.dialect.lockName(ctx, tx, ownedClientLock+c.OwnerUserID); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, t.clients.countOwned, c.OwnerUserID).Scan(&n); err != nil {
			return err
		}
		if n >= limit {
			return oauth.ErrClientLimit
		}
		return nil
	})
}

// ListOwnedClients implements oauth.OwnedClientStore.
func (t *tables) ListOwnedClients(ctx context.Context, owner string) ([]oauth.StoredClient, error) {
	rs, err := t.dialect.QueryContext(ctx, t.clients.listOwned, owner)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list clients: %w", err)
	}
	return scanClients(rs)
}

// createClient inserts c in a transaction that runs check first, when
// there is one; an error of check is returned as it is.
func (t *tables) createClient(ctx context.Context, c oauth.StoredClient, check func(tx querier) error) error {
	uris, err := json.Marshal(c.RedirectURIs)
	if err != nil {
		return fmt.Errorf("sqlstore: create client: %w", err)
	}
	err = t.dialect.writeTx(ctx, func(tx querier) error {
		if check != nil {
			if err := check(tx); err != nil {
				return err
			}
		}
		res, err := tx.ExecContext(ctx, t.clients.insert,
			c.ID, c.Generation, c.Name, nullBytes(c.SecretHash), string(uris), joinScopes(c.Scopes), c.PKCERequired,
			joinScopes(c.GrantTypes), c.DPoPBoundAccessTokens, string(c.Source), nullString(c.OwnerUserID),
			nullBytes(c.RegistrationTokenHash), t.dialect.timeArg(createdAtOrNow(c.CreatedAt)), t.dialect.timeArg(createdAtOrNow(c.UpdatedAt)))
		// ON CONFLICT DO NOTHING: no row inserted means the id is taken.
		if err := changedOne(res, err); errors.Is(err, oauth.ErrNotFound) {
			return oauth.ErrClientExists
		} else if err != nil {
			return err
		}
		return t.dialect.notifyClientChanged(ctx, tx, c.ID)
	})
	for _, known := range []error{oauth.ErrClientExists, oauth.ErrClientLimit} {
		if errors.Is(err, known) {
			return known
		}
	}
	if err != nil {
		return fmt.Errorf("sqlstore: create client: %w", err)
	}
	return nil
}

// GetClient implements oauth.ClientStore.
func (t *tables) GetClient(ctx context.Context, id string) (oauth.StoredClient, error) {
	c, err := scanClient(t.dialect.QueryRowContext(ctx, t.clients.get, id))
	if errors.Is(err, sql.ErrNoRows) {
		return oauth.StoredClient{}, oauth.ErrNotFound
	}
	if err != nil {
		return oauth.StoredClient{}, fmt.Errorf("sqlstore: read client: %w", err)
	}
	return c, nil
}

// ListClients implements oauth.ClientStore.
func (t *tables) ListClients(ctx context.Context) ([]oauth.StoredClient, error) {
	rs, err := t.dialect.QueryContext(ctx, t.clients.list)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list clients: %w", err)
	}
	return scanClients(rs)
}

// scanClients reads every row of rs, which holds clientColumns, and
// closes it.
func scanClients(rs rows) ([]oauth.StoredClient, error) {
	defer rs.Close()
	var out []oauth.StoredClient
	for rs.Next() {
		c, err := scanClient(rs)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: list clients: %w", err)
		}
		out = append(out, c)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: list clients: %w", err)
	}
	return out, nil
}

// UpdateClient implements oauth.ClientStore.
func (t *tables) UpdateClient(ctx context.Context, c oauth.StoredClient) error {
	uris, err := json.Marshal(c.RedirectURIs)
	if err != nil {
		return fmt.Errorf("sqlstore: update client: %w", err)
	}
	return t.changeClient(ctx, "update client", c.ID, t.clients.update,
		c.Name, string(uris), joinScopes(c.Scopes), c.PKCERequired, joinScopes(c.GrantTypes),
		c.DPoPBoundAccessTokens, t.dialect.timeArg(createdAtOrNow(c.UpdatedAt)), c.ID)
}

// SetClientSecretHash implements oauth.ClientStore.
func (t *tables) SetClientSecretHash(ctx context.Context, id string, hash []byte, now time.Time) error {
	return t.changeClient(ctx, "set client secret", id, t.clients.setSecret, nullBytes(hash), t.dialect.timeArg(now), id)
}

// changeClient runs stmt, which changes the client id, and tells the other
// instances; no row changed is ErrNotFound.
func (t *tables) changeClient(ctx context.Context, op, id, stmt string, args ...any) error {
	err := t.dialect.writeTx(ctx, func(tx querier) error {
		if err := changedOne(tx.ExecContext(ctx, stmt, args...)); err != nil {
			return err
		}
		return t.dialect.notifyClientChanged(ctx, tx, id)
	})
	if errors.Is(err, oauth.ErrNotFound) {
		return oauth.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("sqlstore: %s: %w", op, err)
	}
	return nil
}

// DeleteClient implements oauth.ClientStore. The client's row goes first,
// which also queues concurrent deletions of it; then its codes, its
// refresh tokens and its consents, so that a later client of the same id
// inherits none of them. Access tokens issued for users are left to run
// out; those the client holds for itself stand for nobody once it is
// gone, and are revoked (client_tokens.go). A code being
// exchanged or a token being rotated meanwhile may still commit a new
// family; its refresh token then fails the generation check (clientLive).
func (t *tables) DeleteClient(ctx context.Context, id string, now time.Time) error {
	err := t.dialect.grantTx(ctx, func(ctx context.Context, tx querier) error {
		if err := changedOne(tx.ExecContext(ctx, t.clients.delete, id)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, t.clients.deleteCodes, id); err != nil {
			return err
		}
		if t.clients.lockFamilies != "" {
			rs, err := tx.QueryContext(ctx, t.clients.lockFamilies, id)
			if err != nil {
				return err
			}
			if err := drain(rs); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, t.clients.revokeRefresh, t.dialect.timeArg(now), id); err != nil {
			return err
		}
		if err := t.revokeClientTokensIn(ctx, tx, id, now); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, t.clients.deleteConsents, id); err != nil {
			return err
		}
		return t.dialect.notifyClientChanged(ctx, tx, id)
	})
	if errors.Is(err, oauth.ErrNotFound) {
		return oauth.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("sqlstore: delete client: %w", err)
	}
	return nil
}

// clientLive returns nil when the store holds the client id of
// generation gen, and ErrNotFound otherwise: a code or refresh token
// issued to a stored client is honoured only then. An empty gen is a
// client of the config, which the store does not hold, and always live.
func (t *tables) clientLive(ctx context.Context, tx querier, id, gen string) error {
	if gen == "" {
		return nil
	}
	var found int
	err := tx.QueryRowContext(ctx, t.clients.live, id, gen).Scan(&found)
	if errors.Is(err, sql.ErrNoRows) {
		return oauth.ErrNotFound
	}
	return err
}

// scanClient reads one row of clientColumns.
func scanClient(r row) (oauth.StoredClient, error) {
	var (
		c                    oauth.StoredClient
		uris, scopes, grants string
		source               string
		owner                sql.NullString
		created, updated     timeColumn
	)
	err := r.Scan(&c.ID, &c.Generation, &c.Name, &c.SecretHash, &uris, &scopes, &c.PKCERequired,
		&grants, &c.DPoPBoundAccessTokens, &source, &owner, &c.RegistrationTokenHash, &created, &updated)
	if err != nil {
		return oauth.StoredClient{}, err
	}
	if err := json.Unmarshal([]byte(uris), &c.RedirectURIs); err != nil {
		return oauth.StoredClient{}, fmt.Errorf("client %s: redirect_uris: %w", c.ID, err)
	}
	if len(c.SecretHash) == 0 {
		c.SecretHash = nil
	}
	if len(c.RegistrationTokenHash) == 0 {
		c.RegistrationTokenHash = nil
	}
	c.Scopes, c.GrantTypes = splitScopes(scopes), splitScopes(grants)
	c.Source, c.OwnerUserID = oauth.ClientSource(source), owner.String
	c.CreatedAt, c.UpdatedAt = created.Time, updated.Time
	return c, nil
}

// changedOne turns a statement's result into ErrNotFound when it changed
// no row.
func changedOne(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return oauth.ErrNotFound
	}
	return nil
}

// drain reads a result set to its end and closes it.
func drain(rs rows) error {
	defer rs.Close()
	for rs.Next() {
	}
	return rs.Err()
}

// nullBytes stores an absent hash as NULL.
func nullBytes(b []byte) any {
	if b == nil {
		return nil
	}
	return b
}

// nullString stores an empty value as NULL.
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}
