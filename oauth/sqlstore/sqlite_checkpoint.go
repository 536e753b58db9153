package sqlstore

import (
	"context"
	"database/sql"
	"sync"
	"time"
)

// Checkpoints move committed pages from the WAL into the database file.
// SQLite runs one after any commit that leaves the WAL over 1000 pages, in
// the committing connection, with two fsyncs: on the token endpoint that
// was two fifths of a refresh rotation's cost, all of it inside the one
// writer's turn. The store turns those off (wal_autocheckpoint(0) on every
// connection) and checkpoints in a goroutine of its own instead:
//   - after writes, at most every checkpointSpacing, a PASSIVE checkpoint
//     copies what is committed so far, on its own connection, while the
//     writer goes on writing and readers go on reading;
//   - SQLite starts the WAL file over only when a write begins with every
//     page copied, which a steady stream of writes would never allow; so
//     once the WAL holds walRestartFrames pages, the checkpointer takes the
//     writer queue and copies the little written since its last pass, and
//     the next write starts the WAL over.
//
// That is the fast path, and it needs the checkpointer to keep up. When it
// does not (writes come faster than pages can be copied, or the scheduler
// starves it), the writers themselves stop the WAL at a hard limit
// (sqlite_walbound.go).
const (
	walTailFrames    = 100
	maxCatchUpPasses = 8
)

// Variables so that tests can lower them.
var (
	checkpointSpacing = 20 * time.Millisecond
	walRestartFrames  = 4000
)

// walCheckpointer is the store's checkpoint goroutine.
type walCheckpointer struct {
	wake     chan struct{} // buffered 1: "something was written"
	stop     chan struct{}
	stopOnce sync.Once
	stopped  chan struct{}
}

func newWALCheckpointer() walCheckpointer {
	return walCheckpointer{wake: make(chan struct{}, 1), stop: make(chan struct{}), stopped: make(chan struct{})}
}

// written tells the checkpointer that a write has ended.
func (c *walCheckpointer) written() {
	select {
	case c.wake <- struct{}{}:
	default: // already told
	}
}

// checkpointWAL runs until Close.
func (s *SQLite) checkpointWAL() {
	defer close(s.ckpt.stopped)
	var conn *sql.Conn
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	for {
		select {
		case <-s.ckpt.wake:
		case <-s.ckpt.stop:
			return
		}
		if conn == nil {
			c, err := s.db.Conn(context.Background())
			if err != nil {
				continue // tried again after the next write
			}
			conn = c
		}
		restarted, err := s.checkpointOnce(conn)
		if err != nil {
			conn.Close() // the next pass opens another
			conn = nil
		}
		if restarted {
			continue // writes are coming fast: copy the next ones at once
		}
		select {
		case <-time.After(checkpointSpacing):
		case <-s.ckpt.stop:
			return
		}
	}
}

// checkpointOnce copies what is committed, and when the WAL has grown past
// walRestartFrames, copies the rest while holding the writer queue, so
// that the next write starts the WAL over; it reports whether it did.
func (s *SQLite) checkpointOnce(conn *sql.Conn) (restarted bool, err error) {
	frames, err := s.passiveCheckpoint(conn)
	if err != nil || frames < walRestartFrames {
		return false, err
	}
	// Each pass copies what was written during the one before, less each
	// time while copying outpaces writing, so that little is left for
	// the pass that holds the writers back. When writing outpaces copying,
	// the WAL's size decides: twice walRestartFrames, and the writers wait.
	for range maxCatchUpPasses {
		if frames >= 2*walRestartFrames {
			break
		}
		written := frames
		if frames, err = s.passiveCheckpoint(conn); err != nil {
			return false, err
		}
		if frames-written < walTailFrames {
			break
		}
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	_, err = s.passiveCheckpoint(conn)
	return err == nil, err
}

// passiveCheckpoint runs a PASSIVE checkpoint on conn and returns the
// WAL's size in pages.
func (s *SQLite) passiveCheckpoint(conn *sql.Conn) (frames int, err error) {
	_, frames, err = s.checkpoint(conn, "PASSIVE")
	return frames, err
}

// stopCheckpoints stops the checkpointer; calling it again does nothing.
func (s *SQLite) stopCheckpoints() {
	s.ckpt.stopOnce.Do(func() { close(s.ckpt.stop) })
	<-s.ckpt.stopped
}
