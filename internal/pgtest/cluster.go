package pgtest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// ErrUnavailable is returned by StartCluster when this machine cannot run a
// throwaway PostgreSQL cluster: no initdb/pg_ctl, or running as root with no
// postgres user to run them as.
var ErrUnavailable = errors.New("pgtest: PostgreSQL binaries unavailable")

// startAttempts bounds retries when the free port picked for the server is
// taken by someone else before the server binds it.
const startAttempts = 3

// StartCluster creates a PostgreSQL cluster under dir (which must be empty
// or absent, and short: the server's Unix socket lives there) and starts it
// on a free port of 127.0.0.1. It returns the DSN of the cluster's postgres
// database as superuser postgres, and stop, which stops the server at once
// and removes dir. Errors wrap ErrUnavailable when the binaries are missing.
func StartCluster(dir string) (dsn string, stop func(), err error) {
	bin, err := findBinaries()
	if err != nil {
		return "", nil, err
	}
	runAs, err := clusterCredential()
	if err != nil {
		return "", nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", nil, fmt.Errorf("pgtest: create %s: %w", dir, err)
	}
	if runAs != nil {
		// initdb and the server refuse to run as root, so they run as
		// postgres, which must own the directory.
		if err := os.Chown(dir, int(runAs.Uid), int(runAs.Gid)); err != nil {
			return "", nil, fmt.Errorf("pgtest: chown %s: %w", dir, err)
		}
	}
	c := &cluster{bin: bin, dir: dir, data: filepath.Join(dir, "data"), runAs: runAs}
	if err := c.run("initdb", "-D", c.data, "-A", "trust", "--no-sync", "-U", "postgres",
		"-E", "UTF8", "--locale=C"); err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	var port int
	for attempt := 1; ; attempt++ {
		port, err = freePort()
		if err == nil {
			err = c.start(port)
		}
		if err == nil {
			break
		}
		// A start that gave up waiting (pg_ctl -t) may have left a server
		// starting; it must not outlive the attempt.
		_ = c.run("pg_ctl", "-D", c.data, "-m", "immediate", "-w", "stop")
		if attempt == startAttempts {
			os.RemoveAll(dir)
			return "", nil, err
		}
	}
	dsn = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	return dsn, c.stop, nil
}

// cluster is one throwaway PostgreSQL cluster.
type cluster struct {
	bin   string // directory holding initdb and pg_ctl
	dir   string // removed on stop; holds data and the Unix socket
	data  string
	runAs *syscall.Credential // nil when not root
}

func (c *cluster) start(port int) error {
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -k %s -c fsync=off -c full_page_writes=off", port, c.dir)
	// -l sends the server's output to a file: without it the server would
	// inherit pg_ctl's stdout, and waiting for pg_ctl's output would wait
	// for the server to exit.
	err := c.run("pg_ctl", "-D", c.data, "-l", c.logFile(), "-w", "-t", "60", "-o", opts, "start")
	if err != nil {
		log, _ := os.ReadFile(c.logFile())
		return fmt.Errorf("%w\nserver log:\n%s", err, log)
	}
	return nil
}

func (c *cluster) stop() {
	// Immediate: the data is thrown away, so a clean shutdown is wasted time.
	_ = c.run("pg_ctl", "-D", c.data, "-m", "immediate", "-w", "stop")
	os.RemoveAll(c.dir)
}

func (c *cluster) logFile() string {
	return filepath.Join(c.dir, "postgres.log")
}

// run runs one of the PostgreSQL programs, as postgres when we are root.
func (c *cluster) run(program string, args ...string) error {
	cmd := exec.Command(filepath.Join(c.bin, program), args...)
	// The caller's working directory may be unreadable to postgres.
	cmd.Dir = c.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if c.runAs != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.runAs}
		cmd.Env = append(cmd.Env, "HOME="+c.dir, "USER=postgres", "LOGNAME=postgres")
	}
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("pgtest: %s %s: %w\n%s", program, strings.Join(args, " "), err, out.Bytes())
	}
	return nil
}

// findBinaries returns a directory holding both initdb and pg_ctl: the one
// pg_ctl is found in on PATH, else the newest /usr/lib/postgresql/*/bin
// (Debian keeps them off PATH).
func findBinaries() (string, error) {
	var dirs []string
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		dirs = append(dirs, filepath.Dir(p))
	}
	installed, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(installed, func(i, j int) bool { return debianVersion(installed[i]) > debianVersion(installed[j]) })
	dirs = append(dirs, installed...)
	for _, d := range dirs {
		if isExecutable(filepath.Join(d, "initdb")) && isExecutable(filepath.Join(d, "pg_ctl")) {
			return d, nil
		}
	}
	return "", fmt.Errorf("%w: no initdb and pg_ctl on PATH or in /usr/lib/postgresql/*/bin", ErrUnavailable)
}

// debianVersion returns the major version in /usr/lib/postgresql/<v>/bin.
func debianVersion(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// clusterCredential returns who to run the PostgreSQL programs as: nil (the
// current user) unless we are root, which initdb and postgres refuse.
func clusterCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("%w: running as root and there is no postgres user to run them as: %v", ErrUnavailable, err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("pgtest: uid of postgres: %w", err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("pgtest: gid of postgres: %w", err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// freePort returns a TCP port of 127.0.0.1 that nothing listens on now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgtest: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
