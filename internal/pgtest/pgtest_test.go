package pgtest

import (
	"context"
	"errors"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) {
	os.Exit(Run(m))
}

func queryString(t *testing.T, dsn, sql string, args ...any) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	var s string
	if err := conn.QueryRow(ctx, sql, args...).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

func TestStartGivesEachCallItsOwnDatabase(t *testing.T) {
	a, b := Start(t), Start(t)
	nameA := queryString(t, a, "SELECT current_database()")
	nameB := queryString(t, b, "SELECT current_database()")
	if !strings.HasPrefix(nameA, "tg_") || nameA == nameB {
		t.Fatalf("databases %q and %q, want two distinct tg_ databases", nameA, nameB)
	}
	// Superuser, so tests may create roles, terminate sessions and so on.
	if su := queryString(t, a, "SELECT current_setting('is_superuser')"); su != "on" {
		t.Errorf("is_superuser = %q, want on", su)
	}
}

func TestStartDropsDatabaseWhenTestEnds(t *testing.T) {
	var dsn, name string
	t.Run("user", func(t *testing.T) {
		dsn = Start(t)
		name = queryString(t, dsn, "SELECT current_database()")
	})
	other := Start(t)
	exists := queryString(t, other, "SELECT (count(*) > 0)::text FROM pg_database WHERE datname = $1", name)
	if exists != "false" {
		t.Errorf("database %s still exists after its test ended", name)
	}
}

func TestStartClusterStop(t *testing.T) {
	dir, err := os.MkdirTemp("", "tgpg-")
	if err != nil {
		t.Fatal(err)
	}
	dsn, stop, err := StartCluster(dir)
	if errors.Is(err, ErrUnavailable) {
		stopTest(t, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if ok := queryString(t, dsn, "SELECT (current_setting('server_version_num')::int >= 150000)::text"); ok != "true" {
		t.Error("server older than PostgreSQL 15")
	}
	stop()
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("cluster directory after stop: %v, want it removed", err)
	}
	conn, err := pgx.Connect(context.Background(), dsn)
	if err == nil {
		conn.Close(context.Background())
		t.Error("server still accepts connections after stop")
	}
}

func TestWithDatabase(t *testing.T) {
	tests := []struct {
		server, want string
	}{
		{"postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "postgres://postgres@127.0.0.1:5432/tg_x?sslmode=disable"},
		{"postgresql://u:p@db/", "postgresql://u:p@db/tg_x"},
		{"host=db user=u dbname=postgres", "host=db user=u dbname=postgres dbname=tg_x"},
	}
	for _, tt := range tests {
		got, err := withDatabase(tt.server, "tg_x")
		if err != nil || got != tt.want {
			t.Errorf("withDatabase(%q) = %q, %v; want %q", tt.server, got, err, tt.want)
		}
	}
}

// endingTB records how a test was ended. Like testing.T, Skipf and Fatalf
// stop the calling goroutine.
type endingTB struct {
	testing.TB
	ended string
}

func (tb *endingTB) Helper() {}

func (tb *endingTB) Skipf(string, ...any) {
	tb.ended = "skip"
	runtime.Goexit()
}

func (tb *endingTB) Fatalf(string, ...any) {
	tb.ended = "fail"
	runtime.Goexit()
}

func (tb *endingTB) Fatal(...any) {
	tb.ended = "fail"
	runtime.Goexit()
}

func TestStopTest(t *testing.T) {
	tests := []struct {
		name    string
		err     error
		require string
		want    string
	}{
		{"not installed", ErrUnavailable, "", "skip"},
		{"not installed but required", ErrUnavailable, "1", "fail"},
		{"broken", errors.New("initdb failed"), "", "fail"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(EnvRequire, tt.require)
			tb := &endingTB{TB: t}
			done := make(chan struct{})
			go func() {
				defer close(done)
				stopTest(tb, tt.err)
			}()
			<-done
			if tb.ended != tt.want {
				t.Errorf("stopTest ended the test with %q, want %q", tb.ended, tt.want)
			}
		})
	}
}
