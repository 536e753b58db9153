package integration

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The caddy binary of ./cmd/caddy, built once for the tests that run it
// as a process of its own: a second instance, and the command line.
var built struct {
	once sync.Once
	path string
	err  error
}

// caddyBinary builds ./cmd/caddy (Caddy with the standard modules and
// tokengate) with go build, once per test run, and returns its path. It
// goes under the run's temporary directory, which TestMain removes.
func caddyBinary(t testing.TB) string {
	t.Helper()
	built.once.Do(func() {
		dir := filepath.Join(filepath.Dir(os.Getenv("TEST_DATA_DIR")), "bin")
		built.path = filepath.Join(dir, "caddy")
		cmd := exec.Command("go", "build", "-o", built.path, "./cmd/caddy")
		cmd.Dir = ".." // the module's root
		if out, err := cmd.CombinedOutput(); err != nil {
			built.err = fmt.Errorf("go build ./cmd/caddy: %v\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.path
}

// caddyProcess is Caddy running as a process of its own.
type caddyProcess struct {
	cmd   *exec.Cmd
	base  string // its site, http://127.0.0.1:<port>
	admin string // its admin endpoint, http://127.0.0.1:<port>
	out   *lockedBuffer
	done  chan struct{}
}

// lockedBuffer collects a process's output for the test's log.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startCaddyProcess runs `caddy run` on the Caddyfile that caddyfile makes
// for a site port and an admin port, with data directories of its own,
// and waits until both answer. A port taken before the process bound it
// is tried again with others, as loadOnFreePort does.
func startCaddyProcess(t *testing.T, caddyfile func(port, adminPort int) string) *caddyProcess {
	t.Helper()
	bin := caddyBinary(t)
	for attempt := 1; ; attempt++ {
		p, err := tryCaddyProcess(t, bin, caddyfile)
		if err == nil {
			return p
		}
		if attempt == portAttempts || !strings.Contains(err.Error(), "address already in use") {
			t.Fatal(err)
		}
		t.Logf("a port was taken before caddy bound it; trying others")
	}
}

func tryCaddyProcess(t *testing.T, bin string, caddyfile func(port, adminPort int) string) (*caddyProcess, error) {
	dir := t.TempDir()
	port, adminPort := freePort(t), freePort(t)
	file := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(file, []byte(caddyfile(port, adminPort)), 0o600); err != nil {
		return nil, err
	}
	p := &caddyProcess{
		base:  fmt.Sprintf("http://127.0.0.1:%d", port),
		admin: fmt.Sprintf("http://127.0.0.1:%d", adminPort),
		out:   &lockedBuffer{},
		done:  make(chan struct{}),
	}
	p.cmd = exec.Command(bin, "run", "--config", file, "--adapter", "caddyfile")
	p.cmd.Env = append(os.Environ(),
		"XDG_DATA_HOME="+filepath.Join(dir, "data"), "XDG_CONFIG_HOME="+filepath.Join(dir, "config"),
		"TEST_DATA_DIR="+filepath.Join(dir, "storage"))
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	deadline := time.Now().Add(readyTimeout)
	for {
		select {
		case <-p.done:
			return nil, fmt.Errorf("caddy exited before it was ready: %s", p.out.String())
		default:
		}
		if answers(p.admin+"/config/") && answers(p.base+"/") {
			break
		}
		if time.Now().After(deadline) {
			p.stop(t)
			return nil, fmt.Errorf("caddy not ready within %v: %s", readyTimeout, p.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Cleanup(func() {
		p.stop(t)
		if t.Failed() {
			t.Logf("output of the caddy process at %s:\n%s", p.base, p.out.String())
		}
	})
	return p, nil
}

func answers(url string) bool {
	resp, err := http.Get(url)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return true
}

// stop asks the process to stop, as Ctrl-C would, and kills it if it has
// not exited within readyTimeout.
func (p *caddyProcess) stop(t *testing.T) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.done:
	case <-time.After(readyTimeout):
		t.Errorf("caddy at %s did not stop on SIGINT; killing it", p.base)
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// kill ends the process with SIGKILL, giving it no chance to flush or
// close anything, and waits until it has exited.
func (p *caddyProcess) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatalf("killing caddy at %s: %v", p.base, err)
	}
	<-p.done
	if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("caddy at %s ended with %v, not by SIGKILL", p.base, p.cmd.ProcessState)
	}
}
