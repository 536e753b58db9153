package pgtest

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// Server is a private cluster that a test may stop and start again, to see
// how its code behaves while the database is unreachable.
type Server struct {
	// DSN connects to the cluster's postgres database; it stays the same
	// across Stop and Start.
	DSN  string
	c    *cluster
	port int
}

// StartServer starts a cluster of t's own, removed when t ends. Like Start,
// it skips t when PostgreSQL is unavailable unless TOKENGATE_REQUIRE_POSTGRES=1.
func StartServer(t testing.TB) *Server {
	t.Helper()
	dir, err := os.MkdirTemp("", "pgtest-server-")
	if err != nil {
		t.Fatal(err)
	}
	// The cluster runs as postgres when we are root; it must reach its dir.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	dsn, stop, err := StartCluster(filepath.Join(dir, "c"))
	if err != nil {
		os.RemoveAll(dir)
		stopTest(t, err)
	}
	t.Cleanup(func() {
		stop()
		os.RemoveAll(dir)
	})
	s := &Server{DSN: dsn}
	if _, err := fmt.Sscanf(dsn, "postgres://postgres@127.0.0.1:%d/", &s.port); err != nil {
		t.Fatalf("pgtest: port of %s: %v", dsn, err)
	}
	bin, err := findBinaries()
	if err != nil {
		t.Fatal(err)
	}
	runAs, err := clusterCredential()
	if err != nil {
		t.Fatal(err)
	}
	c := filepath.Join(dir, "c")
	s.c = &cluster{bin: bin, dir: c, data: filepath.Join(c, "data"), runAs: runAs}
	return s
}

// Stop stops the server at once, as a crash or a network cut would look to
// its clients.
func (s *Server) Stop() error {
	return s.c.run("pg_ctl", "-D", s.c.data, "-m", "immediate", "-w", "stop")
}

// Start starts the stopped server again on the same port.
func (s *Server) Start() error {
	return s.c.start(s.port)
}
