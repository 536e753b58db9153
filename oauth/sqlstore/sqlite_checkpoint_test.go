package sqlstore

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The WAL file never holds more than its limit plus one writer turn's
// pages, whatever share of the processor the checkpointer gets: the
// writers themselves truncate it once it passes the limit. The WAL's size
// is sampled at the end of every turn in the writer queue, before the
// writer bounds it, while goroutines
// that only spin compete for every core.
func TestSQLiteWALStaysBounded(t *testing.T) {
	for _, tc := range []struct {
		name         string
		checkpointer bool
	}{
		{"with the checkpointer", true},
		// As if the checkpointer never got a processor: the limit still
		// holds, and only the writers' truncations hold it.
		{"without the checkpointer", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testWALBound(t, tc.checkpointer)
		})
	}
}

func testWALBound(t *testing.T, checkpointer bool) {
	defer func(n int, d time.Duration) { walRestartFrames, checkpointSpacing = n, d }(walRestartFrames, checkpointSpacing)
	walRestartFrames, checkpointSpacing = 100, time.Millisecond
	path := filepath.Join(t.TempDir(), "tokengate.db")

	var largest atomic.Int64
	beforeWALBound = func() {
		if fi, err := os.Stat(path + "-wal"); err == nil && fi.Size() > largest.Load() {
			largest.Store(fi.Size()) // turns run one at a time
		}
	}
	defer func() { beforeWALBound = nil }()

	s := openSQLiteAt(t, path)
	if !checkpointer {
		s.stopCheckpoints()
	}
	stopHogs := spinOnEveryCore()
	defer stopHogs()

	// One turn runs at most one operation per writer; each inserts
	// rowsPerOp rows of about 400 bytes, dirtying a handful of table and
	// index pages per row, far fewer than the limit's pages.
	const writers, opsEach, rowsPerOp = 8, 200, 10
	filler := strings.Repeat("x", 300)
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for range writers {
		wg.Go(func() {
			for range opsEach {
				err := s.grantTx(context.Background(), func(ctx context.Context, tx *preparedTx) error {
					for range rowsPerOp {
						hash := make([]byte, 32)
						rand.Read(hash)
						if _, err := tx.ExecContext(ctx, `
							INSERT INTO oauth_codes (code_hash, client_id, user_id, redirect_uri, scopes, challenge, family_id, expires_at)
							VALUES (?, 'c', 'u', ?, 's', 'ch', 'f', 0)`, hash, filler); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	stopHogs()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var rows int
	if err := s.db.QueryRow(`SELECT count(*) FROM oauth_codes`).Scan(&rows); err != nil || rows != writers*opsEach*rowsPerOp {
		t.Fatalf("%d rows (%v), want %d", rows, err, writers*opsEach*rowsPerOp)
	}

	// The bound: the limit plus one turn, which is far less than the
	// limit again.
	if got, bound := largest.Load(), 2*s.wal.maxBytes; got > bound {
		t.Fatalf("WAL file reached %d bytes, above %d (limit %d plus one turn)", got, bound, s.wal.maxBytes)
	}
	// What passed through the WAL is at least the database file's size
	// (every page was written to it at least once), several times the
	// limit: a WAL that never started over would have passed the bound.
	if db := fileSize(t, path); db < 2*s.wal.maxBytes {
		t.Fatalf("database file is %d bytes, too small to test a WAL limit of %d", db, s.wal.maxBytes)
	}
	if !checkpointer && s.wal.truncations.Load() == 0 {
		t.Fatal("no truncation by the writers, yet nothing else checkpoints")
	}
	t.Logf("largest WAL %d bytes (limit %d), writer truncations %d", largest.Load(), s.wal.maxBytes, s.wal.truncations.Load())
}

// spinOnEveryCore starts goroutines that only burn processor time, two for
// each core, so that the goroutines under test compete for them; call the
// result (once or more) to stop them.
func spinOnEveryCore() (stop func()) {
	var done atomic.Bool
	var wg sync.WaitGroup
	for range 2 * runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for !done.Load() {
			}
		})
	}
	return func() {
		done.Store(true)
		wg.Wait()
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}
