package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tokengate/caddy-tokengate/oauth"
)

// postgresDialect is the dialect of a PostgreSQL store, which several
// instances share. Transactions are READ COMMITTED: single use and
// rotation lock the rows they decide on (forUpdate), so a racing
// transaction waits for the lock and then reads the committed row; what
// has no row yet is locked by name (an advisory lock); revocations reach
// the other instances by NOTIFY, sent when the revoking transaction
// commits (notify.go).
type postgresDialect struct {
	*pgxQuerier // the pool
	pool        *pgxpool.Pool
}

func newPostgresDialect(pool *pgxpool.Pool) postgresDialect {
	return postgresDialect{pgxQuerier: &pgxQuerier{pool}, pool: pool}
}

// rebind numbers the ? placeholders $1, $2, ... in order. A ? inside a
// quoted string is left alone.
func (postgresDialect) rebind(query string) string {
	var b strings.Builder
	b.Grow(len(query) + 8)
	n, quoted := 0, false
	for i := 0; i < len(query); i++ {
		switch c := query[i]; {
		case c == '\'':
			quoted = !quoted // a doubled '' inside a string toggles twice
			b.WriteByte(c)
		case c == '?' && !quoted:
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func (postgresDialect) forUpdate() string { return " FOR UPDATE" }

func (d postgresDialect) writeTx(ctx context.Context, fn func(tx querier) error) error {
	return pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error { return fn(&pgxQuerier{tx}) })
}

func (d postgresDialect) grantTx(ctx context.Context, fn func(ctx context.Context, tx querier) error) error {
	tx, err := d.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx) // a no-op after Commit
	err = fn(ctx, &pgxQuerier{tx})
	if !kept(err) {
		return err
	}
	if cerr := tx.Commit(ctx); cerr != nil {
		return cerr
	}
	return err
}

// lockName takes a transaction-level advisory lock on the name's hash. The
// hashes are 32-bit, far from migrationLockKey; two names that share a
// hash merely queue behind each other.
func (postgresDialect) lockName(ctx context.Context, tx querier, name string) error {
	_, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtext($1))`, name)
	return err
}

func (postgresDialect) notifyRevoked(ctx context.Context, tx querier, h oauth.TokenHash) error {
	return notifyRevoked(ctx, tx, h)
}

func (postgresDialect) notifyClientChanged(ctx context.Context, tx querier, id string) error {
	return notifyClientChanged(ctx, tx, id)
}

// timeArg passes t as it is: pgx sends it as a timestamptz, which keeps
// microseconds.
func (postgresDialect) timeArg(t time.Time) any { return t }

// ScanTimestamptz implements pgtype.TimestamptzScanner, which pgx calls for
// a timestamptz column, NULL included.
func (c *timeColumn) ScanTimestamptz(v pgtype.Timestamptz) error {
	if !v.Valid {
		*c = timeColumn{}
		return nil
	}
	if v.InfinityModifier != pgtype.Finite {
		return errors.New("sqlstore: time column holds an infinite timestamp")
	}
	*c = timeColumn{Time: v.Time.UTC(), Valid: true}
	return nil
}

// pgxQuerier runs statements through pgx, on the pool or in a transaction.
type pgxQuerier struct {
	db interface { // *pgxpool.Pool or pgx.Tx
		Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
		QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
		Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	}
}

func (q *pgxQuerier) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	tag, err := q.db.Exec(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return rowsAffected(tag.RowsAffected()), nil
}

func (q *pgxQuerier) QueryRowContext(ctx context.Context, query string, args ...any) row {
	return q.db.QueryRow(ctx, query, args...)
}

func (q *pgxQuerier) QueryContext(ctx context.Context, query string, args ...any) (rows, error) {
	rs, err := q.db.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return pgxRows{rs}, nil
}

// rowsAffected is a command tag's count as a sql.Result.
type rowsAffected int64

func (n rowsAffected) RowsAffected() (int64, error) { return int64(n), nil }

func (rowsAffected) LastInsertId() (int64, error) {
	return 0, fmt.Errorf("sqlstore: PostgreSQL reports no last insert id")
}

// pgxRows gives pgx.Rows the Close of rows.
type pgxRows struct{ pgx.Rows }

func (r pgxRows) Close() error {
	r.Rows.Close()
	return nil
}

// Interface guards
var (
	_ dialect                   = postgresDialect{}
	_ querier                   = (*pgxQuerier)(nil)
	_ pgtype.TimestamptzScanner = (*timeColumn)(nil)
)
