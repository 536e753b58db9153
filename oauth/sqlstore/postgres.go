package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tokengate/caddy-tokengate/oauth"
)

// Postgres is the store for several tokengate instances sharing one
// PostgreSQL database. Revocations reach the other instances through
// LISTEN/NOTIFY (see WatchRevocations). Its tables are the shared ones
// (tables.go), run through postgresDialect.
type Postgres struct {
	tables
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
	return &Postgres{tables: newTables(newPostgresDialect(pool)), pool: pool, pingInterval: listenPingInterval}, nil
}

// Close implements oauth.Store. A running WatchRevocations keeps its own
// connection until its context is done.
func (s *Postgres) Close() error {
	s.pool.Close()
	return nil
}

// Interface guards
var _ oauth.Store = (*Postgres)(nil)
