package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/tokengate/caddy-tokengate/oauth"
)

// dialect is what the tables need of one database, and all that differs
// between SQLite (sqlite_dialect.go) and PostgreSQL (postgres_dialect.go),
// much as a database/sql driver keeps a database's differences behind one
// interface. The tables (tables.go and the files it names) are written once
// against it.
//
// Statements are written with ? placeholders; rebind and forUpdate shape
// them for the database once, when the store is opened. Times go in
// through timeArg and come out through timeColumn.
type dialect interface {
	// querier runs statements outside any transaction: reads, and writes
	// of one statement that commit on their own. ExecContext takes this
	// instance's turn to write: SQLite has one writer at a time.
	querier

	// rebind rewrites query's ? placeholders in the database's own form.
	rebind(query string) string
	// forUpdate is appended to a SELECT that must lock the rows it reads
	// until its transaction ends. It is empty where every write
	// transaction already holds the database's write lock from its first
	// statement (SQLite), which makes what it reads current.
	forUpdate() string

	// writeTx runs fn in a transaction that commits when fn returns nil.
	writeTx(ctx context.Context, fn func(tx querier) error) error
	// grantTx runs fn in a transaction that commits when fn returns nil or
	// a *oauth.ReuseError (the family's revocation must stick; the error
	// is then returned), and rolls back on any other error. Single use
	// and rotation are decided in these, so that of two racing
	// transactions the second sees what the first wrote: SQLite runs them
	// one at a time (sharing commits, sqlite_batch.go), PostgreSQL relies
	// on the rows that forUpdate locks. fn must use the ctx it is given.
	grantTx(ctx context.Context, fn func(ctx context.Context, tx querier) error) error

	// lockName serializes, until tx ends, the transactions that lock the
	// same name across every instance sharing the database. It covers
	// what forUpdate cannot: a row that does not exist yet.
	lockName(ctx context.Context, tx querier, name string) error
	// notifyRevoked tells the other instances sharing the database that
	// the token with hash h is revoked, if and when tx commits.
	notifyRevoked(ctx context.Context, tx querier, h oauth.TokenHash) error
	// notifyClientChanged tells the other instances sharing the database
	// that the stored client id was added, changed or removed, if and
	// when tx commits.
	notifyClientChanged(ctx context.Context, tx querier, id string) error

	// timeArg is t as a statement argument for a time column.
	timeArg(t time.Time) any
}

// lockRows returns query, a SELECT, in d's form and locking the rows it
// reads, for a transaction to run before it reads what those rows guard.
// Where d needs no row locks (forUpdate is empty) it returns "", and
// lockRow skips the statement.
func lockRows(d dialect, query string) string {
	if d.forUpdate() == "" {
		return ""
	}
	return d.rebind(query + d.forUpdate())
}

// lockRow runs a statement made by lockRows, if there is one. Finding no
// row to lock is ErrNotFound.
func lockRow(ctx context.Context, tx querier, stmt string, args ...any) error {
	if stmt == "" {
		return nil
	}
	var found int
	err := tx.QueryRowContext(ctx, stmt, args...).Scan(&found)
	if errors.Is(err, sql.ErrNoRows) {
		return oauth.ErrNotFound
	}
	return err
}

// querier runs statements, on the database or in a transaction. It has the
// shape of database/sql's methods; the pgx side adapts to it.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) row
	QueryContext(ctx context.Context, query string, args ...any) (rows, error)
}

// row is one result row; Scan returns an error that errors.Is matches to
// sql.ErrNoRows when there is none (pgx.ErrNoRows matches it too).
type row interface {
	Scan(dest ...any) error
}

// rows is a result set, read with Next and Scan, then Err; Close may be
// called more than once.
type rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close() error
}

// timeColumn receives a time column, or NULL (Valid false). Each dialect
// file gives it the scanning method its driver calls: SQLite stores unix
// microseconds, PostgreSQL a timestamptz. Time is in UTC.
type timeColumn struct {
	Time  time.Time
	Valid bool
}

// kept reports whether a grant transaction whose work returned err keeps
// its writes: on success, and on a detected reuse, whose revocations must
// stick.
func kept(err error) bool {
	var reuse *oauth.ReuseError
	return err == nil || errors.As(err, &reuse)
}

// storedTime is t as either database gives it back: microseconds, in UTC.
func storedTime(t time.Time) time.Time {
	return t.UTC().Truncate(time.Microsecond)
}
