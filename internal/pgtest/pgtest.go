// Package pgtest gives tests a fresh PostgreSQL database: on a server named
// by TOKENGATE_POSTGRES_DSN, or else on a throwaway cluster it starts from
// the local PostgreSQL binaries.
//
// Without the binaries, tests that need PostgreSQL are skipped, unless
// TOKENGATE_REQUIRE_POSTGRES=1 (as in CI), which makes them fail instead.
//
// A test binary whose TestMain calls Run shares one cluster among all its
// tests; otherwise each Start call starts and stops its own (about 1 s).
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Environment variables read by Start.
const (
	// EnvDSN names an existing server to use instead of starting one. Its
	// user must be allowed to create databases.
	EnvDSN = "TOKENGATE_POSTGRES_DSN"
	// EnvRequire, set to 1, turns a missing PostgreSQL into a failure.
	EnvRequire = "TOKENGATE_REQUIRE_POSTGRES"
)

// adminTimeout bounds creating and dropping a test database.
const adminTimeout = 30 * time.Second

var (
	// runActive is set by Run: a shared cluster will be stopped at exit.
	runActive atomic.Bool

	sharedOnce sync.Once
	sharedDSN  string
	sharedStop func()
	sharedErr  error
)

// Run runs the tests of m with one cluster shared by all of them, started
// at the first Start call and stopped when they are done. Use it as
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }
func Run(m *testing.M) int {
	runActive.Store(true)
	code := m.Run()
	if sharedStop != nil {
		sharedStop()
	}
	return code
}

// Start returns the DSN of a new, empty database that t may use freely; it
// is dropped when t ends. Start skips t when PostgreSQL is unavailable,
// unless TOKENGATE_REQUIRE_POSTGRES=1.
func Start(t testing.TB) string {
	t.Helper()
	server, own, err := serverDSN(t)
	if err != nil {
		stopTest(t, err)
	}
	dsn, drop, err := createDatabase(server, own)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := drop(); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return dsn
}

// stopTest ends t because no server could be had: a skip when PostgreSQL
// is simply not installed and not required, a failure otherwise.
func stopTest(t testing.TB, err error) {
	t.Helper()
	if !errors.Is(err, ErrUnavailable) {
		t.Fatal(err)
	}
	if os.Getenv(EnvRequire) == "1" {
		t.Fatalf("%s=1 but PostgreSQL is unavailable: %v (install PostgreSQL 15 or set %s)", EnvRequire, err, EnvDSN)
	}
	t.Skipf("PostgreSQL unavailable, skipping: %v", err)
}

// serverDSN returns the DSN of a server to create t's database on, and
// whether it is a throwaway cluster of ours.
func serverDSN(t testing.TB) (dsn string, own bool, err error) {
	if dsn := os.Getenv(EnvDSN); dsn != "" {
		return dsn, false, nil
	}
	if runActive.Load() {
		sharedOnce.Do(func() {
			sharedDSN, sharedStop, sharedErr = startInTempDir()
		})
		return sharedDSN, true, sharedErr
	}
	dsn, stop, err := startInTempDir()
	if err != nil {
		return "", false, err
	}
	t.Cleanup(stop)
	return dsn, true, nil
}

// startInTempDir starts a cluster in a new directory under the system's
// temporary directory, whose short path keeps the socket path legal.
func startInTempDir() (string, func(), error) {
	dir, err := os.MkdirTemp("", "tgpg-")
	if err != nil {
		return "", nil, fmt.Errorf("pgtest: %w", err)
	}
	dsn, stop, err := StartCluster(dir)
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	return dsn, stop, nil
}

// createDatabase creates a database with a random name on server and
// returns its DSN and a function that drops it. On a cluster of ours it
// copies the template's files, which with fsync off takes a fifth of the
// time of the default strategy; elsewhere that copy costs a checkpoint.
func createDatabase(server string, own bool) (string, func() error, error) {
	var random [8]byte
	if _, err := rand.Read(random[:]); err != nil {
		return "", nil, fmt.Errorf("pgtest: %w", err)
	}
	name := "tg_" + hex.EncodeToString(random[:])
	create := "CREATE DATABASE " + name
	if own {
		create += " STRATEGY = FILE_COPY"
	}
	if err := adminExec(server, create); err != nil {
		return "", nil, fmt.Errorf("pgtest: create database %s: %w", name, err)
	}
	dsn, err := withDatabase(server, name)
	if err != nil {
		return "", nil, err
	}
	drop := func() error {
		// FORCE ends sessions a test left open, such as a store's
		// listening connection.
		if err := adminExec(server, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("drop database %s: %w", name, err)
		}
		return nil
	}
	return dsn, drop, nil
}

func adminExec(server, sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, server)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

// withDatabase returns server's DSN pointed at database name, in whichever
// of the two DSN forms server is written.
func withDatabase(server, name string) (string, error) {
	if strings.HasPrefix(server, "postgres://") || strings.HasPrefix(server, "postgresql://") {
		u, err := url.Parse(server)
		if err != nil {
			return "", errors.New("pgtest: cannot parse the server DSN as a URL")
		}
		u.Path = "/" + name
		return u.String(), nil
	}
	// In key=value form a later key overrides an earlier one.
	return server + " dbname=" + name, nil
}
