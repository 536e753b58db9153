package sqlstore

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tokengate/caddy-tokengate/oauth"
)

func openSQLiteAt(t *testing.T, path string) *SQLite {
	t.Helper()
	s, err := OpenSQLite(context.Background(), path)
	if err != nil {
		t.Fatalf("OpenSQLite(%s): %v", path, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestSQLiteStore(t *testing.T) {
	runStoreSuite(t, func(t *testing.T) oauth.Store {
		return openSQLiteAt(t, filepath.Join(t.TempDir(), "tokengate.db"))
	})
}

// A restart, or the next config during caddy reload, reopens the file: the
// data must be there and the migrations must not run twice
// (docs/operations.md).
func TestSQLiteReopenKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokengate.db")
	first, err := OpenSQLite(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	pt := newPersonalToken(t, "alice", "read")
	replace(t, first, pt)
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}

	second := openSQLiteAt(t, path)
	assertFound(t, second, pt.Hash, "alice")
	assertAllMigrations(t, second.dialect, sqliteMigrations)
}

// During caddy reload the new config opens the file while the old one still
// has it open, possibly both for the first time.
func TestSQLiteConcurrentOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokengate.db")
	const opens = 3
	stores := make([]*SQLite, opens)
	errs := make([]error, opens)
	var wg sync.WaitGroup
	for i := range opens {
		wg.Go(func() { stores[i], errs[i] = OpenSQLite(context.Background(), path) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		t.Cleanup(func() { stores[i].Close() })
	}
	assertAllMigrations(t, stores[0].dialect, sqliteMigrations)
}

func TestSQLiteCreatesPrivateDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "caddy", "tokengate")
	openSQLiteAt(t, filepath.Join(dir, "tokengate.db"))
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o700 {
		t.Errorf("directory mode = %v, want 0700", perm)
	}
}

// Characters that mean something in a URI must stay part of the file name.
func TestSQLitePathWithURICharacters(t *testing.T) {
	dir := t.TempDir()
	name := "token gate?mode=ro&x=%41#1.db"
	s := openSQLiteAt(t, filepath.Join(dir, name))
	replace(t, s, newPersonalToken(t, "alice"))
	if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
		t.Errorf("database file not created under its literal name: %v", err)
	}
}

func TestSQLiteConnectionSettings(t *testing.T) {
	s := openSQLiteAt(t, filepath.Join(t.TempDir(), "tokengate.db"))
	tests := []struct {
		pragma string
		want   string
	}{
		{"journal_mode", "wal"},
		{"foreign_keys", "1"},
		{"busy_timeout", "5000"},
		{"synchronous", "1"}, // NORMAL
	}
	for _, tt := range tests {
		var got string
		if err := s.db.QueryRow("PRAGMA " + tt.pragma).Scan(&got); err != nil {
			t.Fatalf("PRAGMA %s: %v", tt.pragma, err)
		}
		if got != tt.want {
			t.Errorf("PRAGMA %s = %q, want %q", tt.pragma, got, tt.want)
		}
	}
}

func TestSQLiteWatchRevocationsListensAtOnceAndWaitsForContext(t *testing.T) {
	s := openSQLiteAt(t, filepath.Join(t.TempDir(), "tokengate.db"))
	ctx, cancel := context.WithCancel(context.Background())
	var calls sync.WaitGroup
	called := make(chan string, 2)
	done := make(chan struct{})
	calls.Go(func() {
		s.WatchRevocations(ctx,
			func(oauth.TokenHash) { called <- "forget" },
			func() { called <- "reset" })
		close(done)
	})
	pt := newPersonalToken(t, "alice")
	replace(t, s, pt)
	replace(t, s, newPersonalToken(t, "alice"))
	select {
	case <-done:
		t.Fatal("WatchRevocations returned before its context was done")
	default:
	}
	cancel()
	select {
	case <-done:
	case <-time.After(60 * time.Second): // generous: a hang, not a speed
		t.Fatal("WatchRevocations did not return after its context was done")
	}
	calls.Wait()
	close(called)
	var got []string
	for c := range called {
		got = append(got, c)
	}
	// One reset, at once, says it is listening; nothing is ever forgotten.
	if len(got) != 1 || got[0] != "reset" {
		t.Errorf("WatchRevocations called %v on a single-instance store, want [reset]", got)
	}
}

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, driver, path string
		wantErr            bool
	}{
		{"sqlite", DriverSQLite, filepath.Join(dir, "tokengate.db"), false},
		{"unknown driver", "mysql", filepath.Join(dir, "other.db"), true},
		// The directory cannot be created under a regular file.
		{"sqlite failing", DriverSQLite, filepath.Join(blocker, "tokengate.db"), true},
		{"postgres failing", DriverPostgres, "postgres://%zz", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(context.Background(), tt.driver, tt.path)
			if tt.wantErr {
				// A nil pointer in a non-nil interface would pass a
				// caller's s != nil check and crash later.
				if err == nil || s != nil {
					t.Fatalf("Open = %v, %v; want nil, an error", s, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer s.Close()
			if _, ok := s.(*SQLite); !ok {
				t.Errorf("Open(%q) = %T, want *SQLite", tt.driver, s)
			}
		})
	}
}
