package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/tokengate/caddy-tokengate/oauth"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// SQLite is the store for a single tokengate instance: one database file,
// shared safely by the configs that overlap during caddy reload. Its tables
// are the shared ones (tables.go), run through sqliteDialect.
type SQLite struct {
	tables
	db *sql.DB
	// writeMu queues this process's writers. SQLite admits one writer at a
	// time; without the queue, concurrent writers meet in SQLite's busy
	// handler, which sleeps and retries, and under load a 10 ms median
	// became a 1.4 s p99. busy_timeout still covers other processes.
	writeMu sync.Mutex
	// batch queues grant transactions for group commit (grantTx).
	batch grantBatch
	stmts preparedStatements
	ckpt  walCheckpointer
	wal   walBound
}

// lockWrites takes the writer queue; call the result to leave it.
func (s *SQLite) lockWrites() func() {
	s.writeMu.Lock()
	return s.unlockWrites
}

// unlockWrites bounds the WAL, leaves the writer queue and tells the
// checkpointer.
func (s *SQLite) unlockWrites() {
	s.boundWAL()
	s.writeMu.Unlock()
	s.ckpt.written()
}

// sqliteBusyTimeout is how long a writer waits for another connection's
// write lock before giving up; writes are short, so waiting is cheaper than
// failing a token request.
const sqliteBusyTimeout = 5 * time.Second

// OpenSQLite opens (creating if needed) the database file at path and brings
// its schema up to date. The file's directory is created readable by the
// owner only, since the database holds token hashes.
func OpenSQLite(ctx context.Context, path string) (*SQLite, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: open sqlite %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return nil, fmt.Errorf("sqlstore: open sqlite %s: %w", path, err)
	}
	db, err := sql.Open("sqlite", sqliteDSN(abs))
	if err != nil {
		return nil, fmt.Errorf("sqlstore: open sqlite %s: %w", path, err)
	}
	if err := migrateSQLiteWhenFree(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlstore: open sqlite %s: %w", path, err)
	}
	s := &SQLite{db: db, batch: newGrantBatch(), ckpt: newWALCheckpointer()}
	s.stmts.db = db
	if err := s.wal.init(ctx, db, abs+"-wal"); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlstore: open sqlite %s: %w", path, err)
	}
	s.tables = newTables(sqliteDialect{s})
	go s.checkpointWAL()
	return s, nil
}

// migrateSQLiteWhenFree migrates, retrying while another connection holds
// the file. The busy handler does not cover everything at start-up: a new
// file's switch to WAL, made as each connection opens, answers SQLITE_BUSY
// at once while another connection (the other config during caddy reload,
// or another process) is creating the same file.
func migrateSQLiteWhenFree(ctx context.Context, db *sql.DB) error {
	deadline := time.Now().Add(sqliteBusyTimeout)
	wait := 5 * time.Millisecond
	for {
		err := migrateSQLite(ctx, db)
		if err == nil || !isSQLiteBusy(err) || time.Now().Add(wait).After(deadline) {
			return err
		}
		if !sleepContext(ctx, wait) {
			return err
		}
		wait = min(2*wait, 200*time.Millisecond)
	}
}

// isSQLiteBusy reports whether err is SQLite's SQLITE_BUSY (the database
// file is locked), in its primary or any extended form.
func isSQLiteBusy(err error) bool {
	const sqliteBusy = 5
	var coded interface{ Code() int }
	return errors.As(err, &coded) && coded.Code()&0xff == sqliteBusy
}

// sqliteDSN builds a file: URI, so that a path containing '?' or '%' is
// escaped rather than read as parameters. The parameters apply to every
// pooled connection:
//   - WAL lets readers (token look-ups) proceed while a writer commits;
//   - synchronous NORMAL with WAL syncs at checkpoints, not at every commit:
//     a commit survives the process being killed (it is in the WAL file),
//     and only a power or OS failure can take back the last ones, which
//     keeps the database consistent either way;
//   - wal_autocheckpoint 0: no checkpoint inside a committing writer's
//     turn; the store's checkpointer does them (sqlite_checkpoint.go);
//   - busy_timeout makes a writer wait for the lock instead of failing;
//   - _txlock=immediate opens each transaction with BEGIN IMMEDIATE, taking
//     the write lock before the first read, so read-then-write transactions
//     (rotation) are serialized and never fail to upgrade a read lock.
func sqliteDSN(absPath string) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", sqliteBusyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "wal_autocheckpoint(0)")
	q.Set("_txlock", "immediate")
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(absPath), RawQuery: q.Encode()}
	return u.String()
}

// WatchRevocations implements oauth.Store. A SQLite file serves one
// instance, which already forgets what it revokes, so there is nothing to
// hear about: it is listening from the start.
func (s *SQLite) WatchRevocations(ctx context.Context, forget func(oauth.TokenHash), reset func()) {
	reset()
	<-ctx.Done()
}

// WatchClients implements oauth.Store: as with revocations, the instance
// that owns the file reads its own changes back, and there is nobody else
// to hear from.
func (s *SQLite) WatchClients(ctx context.Context, changed func(id string), reset func()) {
	reset()
	<-ctx.Done()
}

// Close implements oauth.Store.
func (s *SQLite) Close() error {
	s.stopGrants()
	s.stopCheckpoints()
	s.stmts.close()
	return s.db.Close()
}

// Interface guards
var _ oauth.Store = (*SQLite)(nil)
