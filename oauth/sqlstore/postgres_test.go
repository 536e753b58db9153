package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokengate/caddy-tokengate/internal/pgtest"
	"github.com/tokengate/caddy-tokengate/oauth"
)

func openPostgresAt(t *testing.T, dsn string) *Postgres {
	t.Helper()
	s, err := OpenPostgres(context.Background(), dsn)
	if err != nil {
		t.Fatalf("OpenPostgres: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestPostgresStore(t *testing.T) {
	runStoreSuite(t, func(t *testing.T) oauth.Store {
		return openPostgresAt(t, pgtest.Start(t))
	})
}

// Instances of a cluster start at once and all migrate the same fresh
// database (docs/operations.md).
func TestPostgresConcurrentMigrations(t *testing.T) {
	dsn := pgtest.Start(t)
	const instances = 3
	stores := make([]*Postgres, instances)
	errs := make([]error, instances)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range instances {
		wg.Go(func() {
			<-start
			stores[i], errs[i] = OpenPostgres(context.Background(), dsn)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("instance %d: %v", i, err)
		}
		t.Cleanup(func() { stores[i].Close() })
	}
	assertAllMigrations(t, stores[0].dialect, postgresMigrations)

	// Opening again finds nothing left to do.
	again := openPostgresAt(t, dsn)
	assertAllMigrations(t, again.dialect, postgresMigrations)
}

func TestPostgresReopenKeepsData(t *testing.T) {
	dsn := pgtest.Start(t)
	first := openPostgresAt(t, dsn)
	pt := newPersonalToken(t, "alice", "read")
	replace(t, first, pt)
	first.Close()
	assertFound(t, openPostgresAt(t, dsn), pt.Hash, "alice")
}

func TestPostgresOpenFails(t *testing.T) {
	// A server that hangs up on every connection. The test keeps the port
	// for as long as it runs: a port closed again could be taken meanwhile
	// by another test's PostgreSQL cluster.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	hangUpPort := l.Addr().(*net.TCPAddr).Port

	tests := []struct {
		name string
		dsn  string
	}{
		{"server hangs up", fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable&connect_timeout=5", hangUpPort)},
		{"invalid", "postgres://tokengate:s3cret@127.0.0.1:notaport/db"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			s, err := OpenPostgres(ctx, tt.dsn)
			if err == nil {
				s.Close()
				t.Fatal("OpenPostgres succeeded")
			}
			if errors.Is(err, oauth.ErrNotFound) {
				t.Errorf("OpenPostgres error %v is ErrNotFound", err)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("OpenPostgres error %q shows the password", err)
			}
		})
	}
}

// revocationWatch runs s.WatchRevocations and records what it is told.
type revocationWatch struct {
	forgotten chan oauth.TokenHash
	mu        sync.Mutex
	resets    int
	cancel    context.CancelFunc
	done      chan struct{}
}

func watchRevocations(t *testing.T, s *Postgres) *revocationWatch {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &revocationWatch{forgotten: make(chan oauth.TokenHash, 100), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		s.WatchRevocations(ctx,
			func(h oauth.TokenHash) { w.forgotten <- h },
			func() { w.mu.Lock(); w.resets++; w.mu.Unlock() })
	}()
	t.Cleanup(w.stop)
	return w
}

func (w *revocationWatch) resetCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.resets
}

func (w *revocationWatch) stop() {
	w.cancel()
	<-w.done
}

// expectForgotten waits for the next revocation heard, which the contract wants
// within a second of the revoking call's return: call it right after that
// call.
func (w *revocationWatch) expectForgotten(t *testing.T, want oauth.TokenHash) {
	t.Helper()
	timer := time.NewTimer(time.Second)
	defer timer.Stop()
	var got oauth.TokenHash
	select {
	case got = <-w.forgotten:
	case <-timer.C:
		// A forget that came just in time may lose select's draw.
		select {
		case got = <-w.forgotten:
		default:
			t.Fatalf("forget(%x) not called within 1s", want[:4])
		}
	}
	if got != want {
		t.Fatalf("forget(%x), want forget(%x)", got[:4], want[:4])
	}
}

// watchTimeout bounds waits for the listening connection that no bound is
// promised for (coming up, coming back, closing): generous, since a loaded
// machine may run its goroutines late, and the waits end as soon as they
// can.
const watchTimeout = 60 * time.Second

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// listenerQuery returns the last statement of s's listening session, or ""
// while there is none.
func listenerQuery(t *testing.T, s *Postgres) string {
	t.Helper()
	var query string
	err := s.pool.QueryRow(context.Background(), `
		SELECT COALESCE(max(query), '') FROM pg_stat_activity
		WHERE datname = current_database() AND application_name = $1`,
		listenerApplicationName).Scan(&query)
	if err != nil {
		t.Fatal(err)
	}
	return query
}

// waitListening waits for the first reset, which WatchRevocations calls
// once its LISTEN has returned, so a notification from now on is heard.
// (pg_stat_activity shows the LISTEN as it starts, a moment too early.)
func waitListening(t *testing.T, w *revocationWatch) {
	t.Helper()
	waitFor(t, watchTimeout, "listening connection up", func() bool { return w.resetCount() >= 1 })
}

// Revocations made through one instance reach the others
// (docs/operations.md), and a lost listening connection is re-established and
// reported with reset.
func TestPostgresWatchRevocations(t *testing.T) {
	dsn := pgtest.Start(t)
	watcher := openPostgresAt(t, dsn)
	other := openPostgresAt(t, dsn)
	w := watchRevocations(t, watcher)
	waitListening(t, w)

	first := newPersonalToken(t, "alice")
	replace(t, other, first) // nothing replaced, nothing to announce
	second := newPersonalToken(t, "alice")
	replace(t, other, second)
	w.expectForgotten(t, first.Hash)
	if _, _, err := other.DeletePersonalToken(context.Background(), "alice"); err != nil {
		t.Fatal(err)
	}
	w.expectForgotten(t, second.Hash)
	// One reset when the first LISTEN took hold: what was cached before it
	// may have been revoked with nobody listening.
	if n := w.resetCount(); n != 1 {
		t.Fatalf("reset called %d times before any connection was lost, want 1", n)
	}

	var killed int
	err := other.pool.QueryRow(context.Background(), `
		SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND application_name = $1`,
		listenerApplicationName).Scan(&killed)
	if err != nil || killed != 1 {
		t.Fatalf("terminated %d listening sessions (%v), want 1", killed, err)
	}
	waitFor(t, watchTimeout, "reset after reconnecting", func() bool { return w.resetCount() == 2 })

	// reset comes after LISTEN, so revocations are heard again at once.
	third := newPersonalToken(t, "alice")
	replace(t, other, third)
	fourth := newPersonalToken(t, "alice")
	replace(t, other, fourth)
	w.expectForgotten(t, third.Hash)
	// Nothing else was announced: notifications arrive in commit order, so
	// the next one heard is that of the next revocation.
	replace(t, other, newPersonalToken(t, "alice"))
	w.expectForgotten(t, fourth.Hash)

	w.stop()
	if n := w.resetCount(); n != 2 {
		t.Errorf("reset called %d times, want 2", n)
	}
}

// Waiting in silence past the ping interval must neither lose the
// connection nor count as a loss.
func TestPostgresWatchRevocationsPingsQuietConnection(t *testing.T) {
	dsn := pgtest.Start(t)
	watcher := openPostgresAt(t, dsn)
	watcher.pingInterval = 20 * time.Millisecond
	other := openPostgresAt(t, dsn)
	w := watchRevocations(t, watcher)
	waitFor(t, watchTimeout, "a ping on the listening connection", func() bool {
		return listenerQuery(t, watcher) == "-- ping"
	})

	first := newPersonalToken(t, "bob")
	replace(t, other, first)
	replace(t, other, newPersonalToken(t, "bob"))
	w.expectForgotten(t, first.Hash)
	if n := w.resetCount(); n != 1 {
		t.Errorf("reset called %d times on a connection that was never lost, want 1 (the first LISTEN)", n)
	}
}

// An instance shutting down releases its listening session.
func TestPostgresWatchRevocationsStopsWhenContextDone(t *testing.T) {
	s := openPostgresAt(t, pgtest.Start(t))
	w := watchRevocations(t, s)
	waitListening(t, w)
	stopped := make(chan struct{})
	go func() { w.stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(watchTimeout):
		t.Fatal("WatchRevocations did not return after its context was done")
	}
	waitFor(t, watchTimeout, "listening session closed", func() bool { return listenerQuery(t, s) == "" })
}
