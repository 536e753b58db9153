package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
)

// The checkpointer (sqlite_checkpoint.go) keeps the WAL short when it gets
// its share of the processor. Nothing makes it get that share: on a busy
// machine writers can outpace it for as long as the load lasts, and a WAL
// that never starts over grows without bound. So the writers bound it
// themselves. At the end of every turn in the writer queue, the writer
// looks at the WAL file's size; past walLimitFrames pages it runs a
// TRUNCATE checkpoint before leaving the queue. That copies every page,
// waits for readers to leave the WAL (the busy handler, busy_timeout) and
// empties the file, so the next write starts at its first frame. No other
// writer of this store can write meanwhile, because the queue is held.
//
// The file's size is a high-water mark: SQLite reuses a restarted WAL from
// its start without shrinking it. It passes the limit only when the WAL's
// content does, and the truncation sets it back to zero, so the file never
// holds more than walLimitFrames plus what one turn wrote.
//
// walLimitFrames is a multiple of walRestartFrames, so that the writers
// step in only when the checkpointer has fallen well behind.
const walLimitMultiple = 3

// walHeaderBytes and walFrameHeaderBytes are fixed by SQLite's WAL format.
const (
	walHeaderBytes      = 32
	walFrameHeaderBytes = 24
)

// beforeWALBound, when set (by tests), runs at the end of every turn in
// the writer queue, before the WAL is bounded.
var beforeWALBound func()

// walBound is the writers' side of the WAL limit.
type walBound struct {
	path     string
	maxBytes int64
	// checkpointMu is held for every checkpoint this store runs. SQLite
	// answers SQLITE_BUSY at once, without the busy handler, to a
	// checkpoint that meets another one running; waiting here instead
	// means a writer's truncation never fails because the checkpointer
	// was copying.
	checkpointMu sync.Mutex
	// truncations counts the truncations the writers made.
	truncations atomic.Int64
}

// init reads the page size and sets the limit for the WAL file at walPath.
func (w *walBound) init(ctx context.Context, db *sql.DB, walPath string) error {
	var pageSize int64
	if err := db.QueryRowContext(ctx, "PRAGMA page_size").Scan(&pageSize); err != nil {
		return fmt.Errorf("reading the page size: %w", err)
	}
	w.path = walPath
	w.maxBytes = walHeaderBytes + int64(walLimitMultiple*walRestartFrames)*(walFrameHeaderBytes+pageSize)
	return nil
}

// boundWAL truncates the WAL when it has grown past its limit. The caller
// holds the writer queue. A truncation that could not finish (a reader
// kept the WAL busy past busy_timeout) is tried again at the end of the
// next turn.
func (s *SQLite) boundWAL() {
	if beforeWALBound != nil {
		beforeWALBound()
	}
	if fi, err := os.Stat(s.wal.path); err == nil && fi.Size() > s.wal.maxBytes {
		if busy, _, err := s.checkpoint(s.db, "TRUNCATE"); err == nil && !busy {
			s.wal.truncations.Add(1)
		}
	}
}

// queryRower is a *sql.DB or a *sql.Conn.
type queryRower interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// checkpoint runs a checkpoint of the given mode (PASSIVE, TRUNCATE) on q
// and returns whether it was kept from finishing and the WAL's size in
// pages.
func (s *SQLite) checkpoint(q queryRower, mode string) (busy bool, frames int, err error) {
	s.wal.checkpointMu.Lock()
	defer s.wal.checkpointMu.Unlock()
	var busyFlag, copied int
	err = q.QueryRowContext(context.Background(), "PRAGMA wal_checkpoint("+mode+")").Scan(&busyFlag, &frames, &copied)
	return busyFlag != 0, frames, err
}
