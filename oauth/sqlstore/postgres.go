package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tokengate/caddy-tokengate/oauth"
)

// Postgres is the store for several tokengate instances sharing one
// PostgreSQL database. Revocations reach the other instances through
// LISTEN/NOTIFY (see WatchRevocations).
type Postgres struct {
	pool *pgxpool.Pool
	// pingInterval is how long WatchRevocations waits in silence before
	// checking its connection; tests shorten it.
	pingInterval time.Duration
}

// applicationName marks tokengate's sessions in pg_stat_activity, unless
// the connection string names them itself.
const applicationName = "tokengate"

// OpenPostgres connects to the database dsn names (a postgres:// URL or
// key=value pairs) and brings its schema up to date. Several instances may
// open the same database at once.
func OpenPostgres(ctx context.Context, dsn string) (*Postgres, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// The parse error may quote the DSN, password included, so it is
		// not wrapped.
		return nil, errors.New("sqlstore: open postgres: invalid connection string")
	}
	if cfg.ConnConfig.RuntimeParams["application_name"] == "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = applicationName
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: open postgres: %w", err)
	}
	if err := migratePostgres(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("sqlstore: open postgres: %w", err)
	}
	return &Postgres{pool: pool, pingInterval: listenPingInterval}, nil
}

// LookupToken implements oauth.TokenLookup for personal and access tokens;
// every other kind is unknown.
func (s *Postgres) LookupToken(ctx context.Context, k oauth.Kind, h oauth.TokenHash) (oauth.Principal, error) {
	if k == oauth.KindAccess {
		return s.lookupAccess(ctx, h)
	}
	if k != oauth.KindPersonal {
		return oauth.Principal{}, oauth.ErrNotFound
	}
	var userID, scopes string
	err := s.pool.QueryRow(ctx,
		`SELECT user_id, scopes FROM personal_tokens WHERE token_hash = $1`, h[:],
	).Scan(&userID, &scopes)
	if errors.Is(err, pgx.ErrNoRows) {
		return oauth.Principal{}, oauth.ErrNotFound
	}
	if err != nil {
		return oauth.Principal{}, fmt.Errorf("sqlstore: look up token: %w", err)
	}
	return oauth.Principal{UserID: userID, Scopes: splitScopes(scopes), Kind: oauth.KindPersonal}, nil
}

// lockPersonalToken serializes, until the transaction ends, every write to
// userID's personal token across all instances. A row lock would not do:
// when the user has no token yet there is no row to lock, and two first
// issues would both report that nothing was replaced.
func lockPersonalToken(ctx context.Context, tx pgx.Tx, userID string) error {
	_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('tokengate.personal:' || $1))`, userID)
	return err
}

// ReplacePersonalToken implements oauth.PersonalTokenStore. Under the
// per-user lock the old hash is read after the previous writer committed
// (READ COMMITTED takes a fresh snapshot per statement), so each call
// returns its predecessor's hash. The replaced hash is announced to the
// other instances in the same transaction, so the announcement is sent if
// and only if the rotation commits.
func (s *Postgres) ReplacePersonalToken(ctx context.Context, t oauth.PersonalToken) (oauth.TokenHash, bool, error) {
	var (
		replaced oauth.TokenHash
		ok       bool
	)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := lockPersonalToken(ctx, tx, t.UserID); err != nil {
			return err
		}
		var old []byte
		err := tx.QueryRow(ctx, `SELECT token_hash FROM personal_tokens WHERE user_id = $1`, t.UserID).Scan(&old)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
		case err != nil:
			return err
		default:
			if replaced, err = tokenHash(old); err != nil {
				return err
			}
			ok = true
		}
		_, err = tx.Exec(ctx, `
			INSERT INTO personal_tokens (user_id, token_hash, hint, scopes, created_at, last_used_at)
			VALUES ($1, $2, $3, $4, $5, NULL)
			ON CONFLICT (user_id) DO UPDATE SET
				token_hash = excluded.token_hash,
				hint = excluded.hint,
				scopes = excluded.scopes,
				created_at = excluded.created_at,
				last_used_at = NULL`,
			t.UserID, t.Hash[:], t.Hint, joinScopes(t.Scopes), createdAtOrNow(t.CreatedAt))
		if err != nil {
			return err
		}
		if ok && replaced != t.Hash {
			return notifyRevoked(ctx, tx, replaced)
		}
		return nil
	})
	if err != nil {
		return oauth.TokenHash{}, false, fmt.Errorf("sqlstore: replace personal token: %w", err)
	}
	return replaced, ok, nil
}

// DeletePersonalToken implements oauth.PersonalTokenStore. It takes the same
// per-user lock as ReplacePersonalToken, so a rotation racing with the
// deletion reports the hash that was really active before it.
func (s *Postgres) DeletePersonalToken(ctx context.Context, userID string) (oauth.TokenHash, bool, error) {
	var (
		deleted oauth.TokenHash
		ok      bool
	)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := lockPersonalToken(ctx, tx, userID); err != nil {
			return err
		}
		var b []byte
		err := tx.QueryRow(ctx, `DELETE FROM personal_tokens WHERE user_id = $1 RETURNING token_hash`, userID).Scan(&b)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		if deleted, err = tokenHash(b); err != nil {
			return err
		}
		ok = true
		return notifyRevoked(ctx, tx, deleted)
	})
	if err != nil {
		return oauth.TokenHash{}, false, fmt.Errorf("sqlstore: delete personal token: %w", err)
	}
	return deleted, ok, nil
}

// PersonalToken implements oauth.PersonalTokenStore.
func (s *Postgres) PersonalToken(ctx context.Context, userID string) (oauth.PersonalToken, error) {
	var (
		hash       []byte
		hint       string
		scopes     string
		createdAt  time.Time
		lastUsedAt *time.Time
	)
	err := s.pool.QueryRow(ctx,
		`SELECT token_hash, hint, scopes, created_at, last_used_at FROM personal_tokens WHERE user_id = $1`, userID,
	).Scan(&hash, &hint, &scopes, &createdAt, &lastUsedAt)
	if errors.Is(err, pgx.ErrNoRows) {
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
		CreatedAt: createdAt.UTC(),
	}
	if lastUsedAt != nil {
		pt.LastUsedAt = lastUsedAt.UTC()
	}
	return pt, nil
}

// TouchPersonalToken implements oauth.PersonalTokenStore. Instances record
// uses without coordinating, so an older time never overwrites a newer one.
// An unknown hash is not an error: the token may have been rotated since.
func (s *Postgres) TouchPersonalToken(ctx context.Context, h oauth.TokenHash, t time.Time) error {
	_, err := s.pool.Exec(ctx, `
		UPDATE personal_tokens SET last_used_at = $2
		WHERE token_hash = $1 AND (last_used_at IS NULL OR last_used_at < $2)`,
		h[:], t)
	if err != nil {
		return fmt.Errorf("sqlstore: touch personal token: %w", err)
	}
	return nil
}

// Close implements oauth.Store. A running WatchRevocations keeps its own
// connection until its context is done.
func (s *Postgres) Close() error {
	s.pool.Close()
	return nil
}

// Interface guards
var _ oauth.Store = (*Postgres)(nil)
