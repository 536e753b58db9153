package sqlstore

import (
	"context"
	"crypto/sha256"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/tokengate/caddy-tokengate/internal/pgtest"
	"github.com/tokengate/caddy-tokengate/oauth"
)

// clientWatch runs WatchClients until stopped and records what it hears.
type clientWatch struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	changed []string
	resets  int
}

func watchClients(t *testing.T, s oauth.Store) *clientWatch {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &clientWatch{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		s.WatchClients(ctx, func(id string) {
			w.mu.Lock()
			w.changed = append(w.changed, id)
			w.mu.Unlock()
		}, func() {
			w.mu.Lock()
			w.resets++
			w.mu.Unlock()
		})
	}()
	t.Cleanup(w.stop)
	return w
}

func (w *clientWatch) stop() {
	w.cancel()
	<-w.done
}

func (w *clientWatch) heard() ([]string, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.changed), w.resets
}

// Every change of a stored client through one instance reaches the others,
// in commit order; a change that fails tells nobody.
func TestPostgresWatchClients(t *testing.T) {
	dsn := pgtest.Start(t)
	watcher := openPostgresAt(t, dsn)
	other := openPostgresAt(t, dsn)
	w := watchClients(t, watcher)
	waitFor(t, watchTimeout, "listening for client changes", func() bool { _, n := w.heard(); return n >= 1 })

	ctx := context.Background()
	c := newStoredClient("app", "g1")
	createClient(t, other, c)
	if err := other.CreateClient(ctx, c); err == nil {
		t.Fatal("second CreateClient succeeded")
	}
	c.Name = "Renamed"
	if err := other.UpdateClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("new"))
	if err := other.SetClientSecretHash(ctx, "app", sum[:], grantNow); err != nil {
		t.Fatal(err)
	}
	if err := other.DeleteClient(ctx, "app", grantNow); err != nil {
		t.Fatal(err)
	}
	if err := other.DeleteClient(ctx, "app", grantNow); err == nil {
		t.Fatal("second DeleteClient succeeded")
	}
	createClient(t, other, newStoredClient("last", "g2"))

	want := []string{"app", "app", "app", "app", "last"}
	waitFor(t, watchTimeout, "client changes heard", func() bool { got, _ := w.heard(); return len(got) >= len(want) })
	got, resets := w.heard()
	if !slices.Equal(got, want) {
		t.Errorf("heard %q, want %q", got, want)
	}
	if resets != 1 {
		t.Errorf("reset called %d times on a connection never lost, want 1", resets)
	}
}

// A SQLite file serves one instance: WatchClients resets once and has
// nothing to hear.
func TestSQLiteWatchClients(t *testing.T) {
	s := openSQLiteAt(t, filepath.Join(t.TempDir(), "tokengate.db"))
	w := watchClients(t, s)
	waitFor(t, watchTimeout, "the reset", func() bool { _, n := w.heard(); return n == 1 })
	createClient(t, s, newStoredClient("app", "g1"))
	w.stop()
	if got, n := w.heard(); len(got) != 0 || n != 1 {
		t.Errorf("heard %q and %d resets, want nothing and 1", got, n)
	}
}
