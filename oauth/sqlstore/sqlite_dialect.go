package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/tokengate/caddy-tokengate/oauth"
)

// sqliteDialect is the dialect of a SQLite store. One instance owns the
// file, and writes one at a time: through the writer queue (lockWrites),
// each write transaction begun IMMEDIATE, holding the file's write lock
// from its first statement. So a write transaction's reads are current
// without row locks, there are no other instances to lock against or to
// notify, and hot statements are prepared once (sqlite_prepared.go).
type sqliteDialect struct{ s *SQLite }

func (d sqliteDialect) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	defer d.s.lockWrites()()
	return d.s.stmts.ExecContext(ctx, query, args...)
}

func (d sqliteDialect) QueryRowContext(ctx context.Context, query string, args ...any) row {
	return d.s.stmts.QueryRowContext(ctx, query, args...)
}

func (d sqliteDialect) QueryContext(ctx context.Context, query string, args ...any) (rows, error) {
	return d.s.stmts.QueryContext(ctx, query, args...)
}

// rebind keeps the ? placeholders: they are SQLite's own.
func (sqliteDialect) rebind(query string) string { return query }

func (sqliteDialect) forUpdate() string { return "" }

// writeTx runs fn in a transaction of the writer queue; the connection
// string begins it IMMEDIATE (sqliteDSN).
func (d sqliteDialect) writeTx(ctx context.Context, fn func(tx querier) error) error {
	defer d.s.lockWrites()()
	tx, err := d.s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() // a no-op after Commit
	if err := fn(&preparedTx{tx: tx, stmts: &d.s.stmts}); err != nil {
		return err
	}
	return tx.Commit()
}

// grantTx queues fn for the committer, which runs it in a batch of grant
// transactions sharing one commit (sqlite_batch.go).
func (d sqliteDialect) grantTx(ctx context.Context, fn func(ctx context.Context, tx querier) error) error {
	return d.s.grantTx(ctx, func(ctx context.Context, tx *preparedTx) error { return fn(ctx, tx) })
}

// lockName has nothing to do: the transaction holds the file's write lock.
func (sqliteDialect) lockName(context.Context, querier, string) error { return nil }

// notifyRevoked has nobody to tell: the file serves one instance, which
// forgets what it revokes itself.
func (sqliteDialect) notifyRevoked(context.Context, querier, oauth.TokenHash) error { return nil }

// notifyClientChanged has nobody to tell either: the instance reads its
// own changes back.
func (sqliteDialect) notifyClientChanged(context.Context, querier, string) error { return nil }

// timeArg stores t as unix microseconds, the precision PostgreSQL keeps.
func (sqliteDialect) timeArg(t time.Time) any { return t.UnixMicro() }

// Scan implements sql.Scanner for a time column of SQLite, which holds
// unix microseconds or NULL.
func (c *timeColumn) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*c = timeColumn{}
	case int64:
		*c = timeColumn{Time: time.UnixMicro(v).UTC(), Valid: true}
	default:
		return fmt.Errorf("sqlstore: time column holds %T, want unix microseconds", src)
	}
	return nil
}

// Interface guards
var (
	_ dialect     = sqliteDialect{}
	_ sql.Scanner = (*timeColumn)(nil)
)
