package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
)

// grantOp is one grant transaction's work, waiting for a writer to run it.
type grantOp struct {
	ctx  context.Context
	fn   func(ctx context.Context, tx *preparedTx) error
	done chan error // buffered: the writer never waits for the caller
}

// grantBatch queues grant operations for the committer goroutine.
type grantBatch struct {
	mu      sync.Mutex
	pending []*grantOp
	closed  bool
	running bool          // the committer goroutine has been started
	wake    chan struct{} // buffered 1: "something is pending"
	stop    chan struct{}
	stopped chan struct{}
}

func newGrantBatch() grantBatch {
	return grantBatch{wake: make(chan struct{}, 1), stop: make(chan struct{}), stopped: make(chan struct{})}
}

// errStoreClosed answers operations that arrive after Close.
var errStoreClosed = errors.New("sqlstore: store closed")

// grantTx runs fn as if in a transaction of its own, which the connection
// string opens with BEGIN IMMEDIATE: every grant transaction holds the
// write lock from its first read, so single use and rotation are decided
// one at a time. A *oauth.ReuseError is committed (the family's revocation
// must stick) and then returned; any other error rolls back fn's writes.
//
// Concurrent calls share one commit (group commit): a committer goroutine
// takes every operation queued so far and runs them in one transaction,
// each inside a savepoint, in arrival order, each seeing the writes of
// those before it exactly as separate transactions would; then it commits
// once. Committing (writing the WAL frames) is the largest part of a
// rotation's cost on SQLite.
func (s *SQLite) grantTx(ctx context.Context, fn func(ctx context.Context, tx *preparedTx) error) error {
	op := &grantOp{ctx: ctx, fn: fn, done: make(chan error, 1)}
	s.batch.mu.Lock()
	if s.batch.closed {
		s.batch.mu.Unlock()
		return errStoreClosed
	}
	if !s.batch.running {
		s.batch.running = true
		go s.commitGrants()
	}
	s.batch.pending = append(s.batch.pending, op)
	s.batch.mu.Unlock()
	select {
	case s.batch.wake <- struct{}{}:
	default: // already signalled
	}
	return <-op.done
}

// commitGrants runs the queued operations, batch after batch, until the
// store is closed; what is queued by then still runs, so no caller waits
// forever.
func (s *SQLite) commitGrants() {
	defer close(s.batch.stopped)
	var w writerConn
	defer w.close()
	for {
		select {
		case <-s.batch.wake:
			s.runPendingGrantOps(&w)
		case <-s.batch.stop:
			s.runPendingGrantOps(&w)
			return
		}
	}
}

// writerPragmas set up the committer's connection:
//   - a large page cache: only a connection's own writes leave its cache
//     valid (WAL mode empties it when another connection has written), so
//     the one writer is the connection for which a large cache pays;
//     rotations insert at random places of the token-hash indexes, which
//     outgrow SQLite's default 2 MB cache;
//   - temp_store MEMORY: a batch runs each operation in a savepoint, which
//     first copies every page it changes into a sub-journal; those copies
//     stay off the disk.
var writerPragmas = []string{
	fmt.Sprintf("PRAGMA cache_size = -%d", 64<<10), // KiB: 64 MiB
	"PRAGMA temp_store = MEMORY",
}

// writerConn is the committer's own connection, kept across batches so
// that its page cache stays warm; nil until the first batch, and again
// after the connection failed.
type writerConn struct{ conn *sql.Conn }

// get returns the connection, opening it if needed; nil when it can't be
// opened, and the batch then takes a pooled connection.
func (w *writerConn) get(db *sql.DB) *sql.Conn {
	if w.conn != nil {
		return w.conn
	}
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil
	}
	for _, pragma := range writerPragmas {
		if _, err := conn.ExecContext(ctx, pragma); err != nil {
			conn.Close()
			return nil
		}
	}
	w.conn = conn
	return conn
}

func (w *writerConn) close() {
	if w.conn != nil {
		w.conn.Close()
		w.conn = nil
	}
}

// runPendingGrantOps takes the writer queue and runs what is queued.
func (s *SQLite) runPendingGrantOps(w *writerConn) {
	s.batch.mu.Lock()
	ops := s.batch.pending
	s.batch.pending = nil
	s.batch.mu.Unlock()
	if len(ops) == 0 {
		return
	}
	defer s.lockWrites()()
	s.runGrantOps(w, ops)
}

// stopGrants refuses new operations and waits for the committer to finish
// the queued ones. Calling it again does nothing.
func (s *SQLite) stopGrants() {
	s.batch.mu.Lock()
	if s.batch.closed {
		s.batch.mu.Unlock()
		return
	}
	s.batch.closed = true
	running := s.batch.running
	s.batch.mu.Unlock()
	if running {
		close(s.batch.stop)
		<-s.batch.stopped
	}
}

// grantSavepoint brackets one operation within a batch.
const grantSavepoint = "grant_op"

// runGrantOps runs ops in one transaction and tells each its result. The
// caller holds the writer queue.
func (s *SQLite) runGrantOps(w *writerConn, ops []*grantOp) {
	results := make([]error, len(ops))
	var tx *sql.Tx
	var err error
	if conn := w.get(s.db); conn != nil {
		if tx, err = conn.BeginTx(context.Background(), nil); err != nil {
			w.close() // the next batch opens another
		}
	} else {
		tx, err = s.db.BeginTx(context.Background(), nil)
	}
	if err != nil {
		for _, op := range ops {
			op.done <- err
		}
		return
	}
	defer tx.Rollback() // a no-op after Commit
	ptx := &preparedTx{tx: tx, stmts: &s.stmts}
	for i, op := range ops {
		results[i] = runGrantOp(ptx, op)
	}
	if err := tx.Commit(); err != nil {
		for i := range results {
			if kept(results[i]) {
				results[i] = err
			}
		}
	}
	for i, op := range ops {
		op.done <- results[i]
	}
}

// runGrantOp runs one operation inside a savepoint of tx, rolling back to
// it unless the operation's writes are to be kept.
func runGrantOp(tx *preparedTx, op *grantOp) (err error) {
	// A panic must not leave the other callers waiting forever; it ends
	// this operation with an error (and rolls back its writes).
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("sqlstore: grant operation panicked: %v", p)
			tx.ExecContext(context.Background(), "ROLLBACK TO "+grantSavepoint)
			tx.ExecContext(context.Background(), "RELEASE "+grantSavepoint)
		}
	}()
	if err := op.ctx.Err(); err != nil {
		return err // the caller has gone: do nothing on its behalf
	}
	// Statements run without the caller's cancellation: a canceled
	// statement interrupts SQLite, which would roll back the whole
	// transaction and with it the other callers' work. Operations are
	// short, so finishing one whose caller left costs little.
	ctx := context.WithoutCancel(op.ctx)
	if _, err := tx.ExecContext(ctx, "SAVEPOINT "+grantSavepoint); err != nil {
		return err
	}
	err = op.fn(ctx, tx)
	if !kept(err) {
		if _, rerr := tx.ExecContext(ctx, "ROLLBACK TO "+grantSavepoint); rerr != nil {
			return errors.Join(err, rerr)
		}
	}
	if _, rerr := tx.ExecContext(ctx, "RELEASE "+grantSavepoint); rerr != nil {
		return errors.Join(err, rerr)
	}
	return err
}
