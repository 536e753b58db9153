package integration

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/golang-jwt/jwt/v5"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/tokengate/caddy-tokengate"
	"github.com/tokengate/caddy-tokengate/internal/pgtest"
)

// userJWTSecret signs the test users' JWTs (the users block's jwt_secret).
const userJWTSecret = "integration-test-user-jwt-secret-0123456789"

func TestMain(m *testing.M) {
	// Caddy writes its data (and tokengate its default SQLite file) under
	// XDG_DATA_HOME; keep it out of the developer's home.
	dir, err := os.MkdirTemp("", "tokengate-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("XDG_DATA_HOME", dir+"/data")
	os.Setenv("XDG_CONFIG_HOME", dir+"/config")
	os.Setenv("TEST_USER_JWT_SECRET", userJWTSecret)
	// Caddy's own storage (certificates, locks), named in every test
	// Caddyfile, since Caddy reads XDG_* once at start-up.
	os.Setenv("TEST_DATA_DIR", dir+"/storage")
	code := pgtest.Run(m)
	caddy.Stop()
	os.RemoveAll(dir)
	os.Exit(code)
}

// freePort returns a loopback port that was free a moment ago. Another
// process may take it before Caddy binds it: load configs on it with
// loadOnFreePort, which picks another port then.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// portAttempts bounds how many free ports loadOnFreePort tries.
const portAttempts = 5

// loadOnFreePort loads the Caddyfile that caddyfile returns for a free
// port and returns the port. The tests of other packages run at the same
// time and open ports of their own (clusters, servers, client
// connections), so a port free a moment ago may be taken when Caddy binds
// it; then another port is tried.
func loadOnFreePort(t testing.TB, caddyfile func(port int) string) int {
	t.Helper()
	for attempt := 1; ; attempt++ {
		port := freePort(t)
		err := tryLoadCaddyfile(caddyfile(port))
		if err == nil {
			return port
		}
		if attempt == portAttempts || !strings.Contains(err.Error(), "address already in use") {
			t.Fatal(err)
		}
		t.Logf("port %d was taken before Caddy bound it; trying another", port)
	}
}

// loadCaddyfile adapts a Caddyfile and loads it into the running Caddy (a
// reload when one is already running), failing the test on any error.
func loadCaddyfile(t testing.TB, caddyfile string) {
	t.Helper()
	if err := tryLoadCaddyfile(caddyfile); err != nil {
		t.Fatal(err)
	}
}

func tryLoadCaddyfile(caddyfile string) error {
	adapter := caddyconfig.GetAdapter("caddyfile")
	cfg, warnings, err := adapter.Adapt([]byte(caddyfile), nil)
	if err != nil {
		return fmt.Errorf("adapting Caddyfile: %w\n%s", err, caddyfile)
	}
	for _, w := range warnings {
		if !strings.Contains(w.Message, "formatted") {
			return fmt.Errorf("adapter warning: %s", w.String())
		}
	}
	if err := caddy.Load(cfg, true); err != nil {
		return fmt.Errorf("loading config: %w", err)
	}
	if err := awaitOldListenersClosed(); err != nil {
		return err
	}
	// The old config's servers closed their connections; don't reuse them.
	http.DefaultClient.CloseIdleConnections()
	return nil
}

// awaitOldListenersClosed waits until each port of the config just loaded
// has one listening socket left: the new config's. On Linux Caddy does not
// hand a listening socket over across a load: each config binds its own
// with SO_REUSEPORT, and the kernel spreads new connections over all the
// sockets bound to the port. caddy.Load (and caddy.Stop before a load on
// the same port) returns once the old config's servers have begun to shut
// down, and an old socket can stay open a while after that. A connection
// the kernel gives it then is lost either way: reset when the socket
// closes with the connection still unaccepted, or accepted and closed
// unanswered (EOF), since net/http drops a request it reads once Shutdown
// has begun. That is the handover, with or without tokengate; a test's
// next request must reach the new config, so no new connection is made
// until the old sockets are gone. Answers are no sign of it: the old
// server answers too until it stops accepting.
func awaitOldListenersClosed() error {
	app, err := caddy.ActiveContext().AppIfConfigured("http")
	if err != nil {
		return nil
	}
	for _, srv := range app.(*caddyhttp.App).Servers {
		for _, listen := range srv.Listen {
			addr, err := caddy.ParseNetworkAddress(listen)
			if err != nil {
				return err
			}
			for offset := range addr.PortRangeSize() {
				hostport := addr.JoinHostPort(offset)
				deadline := time.Now().Add(readyTimeout)
				for {
					n, err := listeningSockets(hostport)
					if err != nil {
						return err
					}
					if n == 1 {
						break
					}
					if time.Now().After(deadline) {
						return fmt.Errorf("after the load, %d sockets listen on %s, want 1", n, hostport)
					}
					time.Sleep(time.Millisecond)
				}
			}
		}
	}
	return nil
}

// listeningSockets counts the TCP sockets listening on hostport (an IPv4
// address), as the kernel lists them in /proc/net/tcp.
func listeningSockets(hostport string) (int, error) {
	host, portStr, err := net.SplitHostPort(hostport)
	if err != nil {
		return 0, err
	}
	ip := net.ParseIP(host).To4()
	port, err := strconv.Atoi(portStr)
	if ip == nil || err != nil {
		return 0, fmt.Errorf("listeningSockets: %s is not an IPv4 address and port", hostport)
	}
	// The kernel prints the address as a native-endian word in hex.
	local := fmt.Sprintf("%08X:%04X", binary.NativeEndian.Uint32(ip), port)
	data, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return 0, err
	}
	const listen = "0A"
	n := 0
	for _, line := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 3 && f[1] == local && f[3] == listen {
			n++
		}
	}
	return n, nil
}

// stopCaddy stops the running Caddy, as a process exit would.
func stopCaddy(t testing.TB) {
	t.Helper()
	if err := caddy.Stop(); err != nil {
		t.Fatal(err)
	}
}

// readyTimeout bounds waiting for a server to answer. It is generous: a
// loaded machine may take long to start one, and the wait ends as soon as
// the server answers.
const readyTimeout = 60 * time.Second

// waitReady polls url until it answers with any status, or fails the test
// after readyTimeout.
func waitReady(t testing.TB, url string) {
	t.Helper()
	deadline := time.Now().Add(readyTimeout)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready: %v", url, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// eventually polls cond until it holds, and fails the test only when a
// check that began after within had passed still finds it false. A check
// that began in time and fails is not held against the product even if it
// returns late (on a loaded machine a request may take long): its answer
// may have been made before the deadline. So within may be a bound the
// product promises, counted from the call, not only a generous deadline.
func eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		late := time.Now().After(deadline)
		if cond() {
			return
		}
		if late {
			t.Fatalf("not within %s: %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// recordingBackend is an upstream that records every request it receives.
type recordingBackend struct {
	*httptest.Server
	name string
	mu   sync.Mutex
	seen []*http.Request
}

func newBackend(t testing.TB, name string) *recordingBackend {
	b := &recordingBackend{name: name}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.seen = append(b.seen, r.Clone(r.Context()))
		b.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{
			"backend": name,
			"user":    r.Header.Get("X-Authenticated-Userid"),
		})
	}))
	t.Cleanup(b.Close)
	return b
}

// hostPort is the backend's address for reverse_proxy.
func (b *recordingBackend) hostPort() string {
	return strings.TrimPrefix(b.URL, "http://")
}

func (b *recordingBackend) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.seen)
}

func (b *recordingBackend) last(t testing.TB) *http.Request {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.seen) == 0 {
		t.Fatalf("backend %s received nothing", b.name)
	}
	return b.seen[len(b.seen)-1]
}

// userJWT returns an HS256 user JWT as the identity provider would sign it.
func userJWT(t testing.TB, sub string) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub":  sub,
		"aud":  "authenticated",
		"role": "authenticated",
		"iat":  time.Now().Unix(),
		"exp":  time.Now().Add(time.Hour).Unix(),
	})
	s, err := tok.SignedString([]byte(userJWTSecret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// response is what a test needs of an HTTP answer.
type response struct {
	status int
	header http.Header
	body   string
}

// do sends one request; headers are given as name, value pairs, and a name
// may repeat to send a header twice. It fails the test on a transport error,
// so call it from the test's own goroutine only.
func do(t testing.TB, method, url, body string, headers ...string) response {
	t.Helper()
	r, err := send(http.DefaultClient, method, url, body, headers...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// send is do for any goroutine: it returns transport errors.
func send(client *http.Client, method, url, body string, headers ...string) (response, error) {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		return response{}, err
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header[headers[i]] = append(req.Header[headers[i]], headers[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: %w", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, err
	}
	return response{status: resp.StatusCode, header: resp.Header, body: string(bytes.TrimSpace(b))}, nil
}

// decode parses a JSON body into a map.
func (r response) decode(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.body), &m); err != nil {
		t.Fatalf("body %q is not JSON: %v", r.body, err)
	}
	return m
}

func expiredUserJWT(t testing.TB, sub string) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": sub, "aud": "authenticated",
		"iat": time.Now().Add(-2 * time.Hour).Unix(),
		"exp": time.Now().Add(-time.Hour).Unix(),
	})
	s, err := tok.SignedString([]byte(userJWTSecret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func foreignJWT(t testing.TB, sub string) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": sub, "aud": "authenticated", "exp": time.Now().Add(time.Hour).Unix(),
	})
	s, err := tok.SignedString([]byte("some-other-secret-entirely-0123456789"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// forEachStore runs test once on SQLite and once on a fresh PostgreSQL
// database, passing the Caddyfile database setting.
func forEachStore(t *testing.T, test func(t *testing.T, database string)) {
	t.Run("sqlite", func(t *testing.T) {
		test(t, "sqlite "+t.TempDir()+"/tg.db")
	})
	t.Run("postgres", func(t *testing.T) {
		test(t, "postgres "+pgtest.Start(t))
	})
}
