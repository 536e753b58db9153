package sqlstore

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Under a steady stream of writes the WAL file still starts over, and
// stays much smaller than what passes through it. Without the
// checkpointer nothing would be copied (auto-checkpoints are off), and
// without its pass under the writer queue the WAL would never start over.
func TestSQLiteWALStaysBounded(t *testing.T) {
	defer func(n int, d time.Duration) { walRestartFrames, checkpointSpacing = n, d }(walRestartFrames, checkpointSpacing)
	walRestartFrames, checkpointSpacing = 200, time.Millisecond
	path := filepath.Join(t.TempDir(), "tokengate.db")
	s := openSQLiteAt(t, path)
	var pageSize int64
	if err := s.db.QueryRow(`PRAGMA page_size`).Scan(&pageSize); err != nil {
		t.Fatal(err)
	}
	const writers, opsEach, rowsPerOp = 8, 600, 10
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
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var rows int
	if err := s.db.QueryRow(`SELECT count(*) FROM oauth_codes`).Scan(&rows); err != nil || rows != writers*opsEach*rowsPerOp {
		t.Fatalf("%d rows (%v), want %d", rows, err, writers*opsEach*rowsPerOp)
	}

	// Everything is copied soon after the writes stop. Every page of the
	// database file was written to the WAL at least once, so a WAL that
	// never started over would be at least as large as the database file.
	// The WAL file keeps the largest size it reached.
	wal := fileSize(t, path+"-wal")
	deadline := time.Now().Add(10 * time.Second)
	for fileSize(t, path) < 2*wal {
		if time.Now().After(deadline) {
			t.Fatalf("WAL file grew to %d bytes, database file is %d: the WAL did not start over, or its pages were not copied",
				wal, fileSize(t, path))
		}
		time.Sleep(10 * time.Millisecond)
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
