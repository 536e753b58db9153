// Command bench measures the tokengate guard under HTTP load, side by side
// with plain reverse_proxy and with Caddy's forward_auth, in one run.
//
// Usage:
//
//	go run ./integration/bench [-rounds 5] [-duration 5s] [-short] [-out DIR] [-cpuprofile] [-postgres]
//
// It starts Caddy in this process from one Caddyfile whose routes are the
// variants measured, all on 127.0.0.1:
//
//   - plain: reverse_proxy to a small Go backend answering a fixed JSON body;
//   - guarded: tokengate <scope> then the same reverse_proxy, with a valid
//     personal token (served from the validation cache after the first
//     request);
//   - malformed: the guarded route with a token whose checksum is wrong,
//     refused with 401 before any cache or store look-up;
//   - unknown: the guarded route with a well-formed token the store does
//     not know, refused with 401 from the cache's negative entry;
//   - forward_auth: Caddy's forward_auth to a Go endpoint that checks the
//     bearer token against a map, then the same reverse_proxy;
//   - token endpoint (refresh grant, SQLite, or PostgreSQL with -postgres,
//     which starts a private cluster on 127.0.0.1 and puts the store
//     there for the whole run): POST /oauth/token with
//     grant_type=refresh_token and Basic client authentication, each request
//     presenting a different refresh token (rotation makes them single-use).
//     Before each run, 1.5 times the count the fastest earlier run (the
//     warm-up included) suggests is minted (at least 1,000, at most
//     200,000; twice that rate after a run that ran short) through
//     authorize and code exchange, and a wrk Lua script hands each thread
//     its own slice. Its req/s counts 200 answers only; a non-200 answer to
//     a fresh token is an error, and requests past the end of the tokens
//     (reuse, refused) are reported.
//
// The personal token is issued through the api_token endpoint with an
// HS256 user JWT. Load comes from wrk (the Debian package wrk must be
// installed), run as wrk -t2 -c64 -d<duration> --latency with the same
// Authorization header shape on every variant but the token endpoint's,
// whose requests come from a Lua script. Variants alternate within
// each round, each round starting one variant later, so that drift in the
// machine's speed spreads over all of them; ratios are taken between
// medians of the same run. -short runs 3 rounds of 2 s.
//
// Results go to stdout and to bench-results.md and bench-results.svg in
// -out: medians with min–max, p50/p90/p99 latency, the ratios against plain
// reverse_proxy and against forward_auth, and PASS or FAIL per target. A
// missed target is reported, not an error: the exit status is non-zero only
// when the benchmark itself could not run or a variant got answers it
// should not have.
//
// Store queries cannot be seen from outside the process; that malformed
// tokens cost none is shown by the unit test
// TestValidateMalformedTokenCostsNoLookup and the benchmark
// BenchmarkValidateMalformed in package oauth.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
	"github.com/golang-jwt/jwt/v5"

	_ "github.com/tokengate/caddy-tokengate"
	"github.com/tokengate/caddy-tokengate/internal/pgtest"
	"github.com/tokengate/caddy-tokengate/oauth"
)

const (
	// userJWTSecret signs the user JWT that asks for the personal token.
	userJWTSecret = "bench-user-jwt-secret-0123456789-abcdefghij"
	benchScope    = "bench:read"
	benchUser     = "7c1e4f2a-9b3d-4c5e-8f6a-0b1c2d3e4f5a"
	backendBody   = `{"id":42,"status":"ok","items":[1,2,3]}`
)

// options are the command line flags.
type options struct {
	rounds      int
	duration    time.Duration
	warmup      time.Duration
	threads     int
	connections int
	out         string
	profile     bool
	postgres    bool // the store on a private PostgreSQL cluster, not SQLite
}

// variant is one route and header combination under load.
type variant struct {
	name   string
	path   string
	token  string
	want   int // expected status of every response
	note   string
	result []run
	// refresh is set for the token endpoint variant, which sends its own
	// requests from a wrk script instead of path and token.
	refresh *refreshLoad
	warm    run
}

// run is what one wrk run measured.
type run struct {
	rps              float64
	p50, p90, p99    time.Duration
	requests, non2xx int64
	exhausted        int64 // refresh variant: requests past the minted tokens
	socketErrors     string
	// Cores busy on average during the run: this process (Caddy and the
	// backends) and wrk.
	selfCores, wrkCores float64
}

func main() {
	var o options
	short := false
	flag.IntVar(&o.rounds, "rounds", 5, "rounds; each runs every variant once")
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "length of one variant's run in one round")
	flag.BoolVar(&short, "short", false, "3 rounds of 2s (overrides -rounds and -duration)")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "warm-up run per variant before the first round")
	flag.IntVar(&o.threads, "threads", 2, "wrk threads")
	flag.IntVar(&o.connections, "connections", 64, "wrk connections")
	flag.StringVar(&o.out, "out", ".", "directory for bench-results.md and bench-results.svg")
	flag.BoolVar(&o.postgres, "postgres", false, "put the store on a private PostgreSQL cluster started for the run (needs the server binaries), instead of SQLite")
	flag.BoolVar(&o.profile, "cpuprofile", false, "write cpu-<variant>.pprof to -out: this process (Caddy, backend, auth endpoint) during each variant's last-round run")
	flag.Parse()
	if short {
		o.rounds, o.duration = 3, 2*time.Second
	}
	if o.rounds < 1 || o.duration < time.Second || o.threads < 1 || o.connections < o.threads {
		fmt.Fprintln(os.Stderr, "bench: need -rounds >= 1, -duration >= 1s and -connections >= -threads >= 1")
		os.Exit(2)
	}
	if err := benchmark(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func benchmark(o options) error {
	wrk, err := exec.LookPath("wrk")
	if err != nil {
		return errors.New("wrk not found in PATH: install it (Debian: apt-get install -y wrk)")
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}

	// The whole run stops by itself even if something hangs.
	variantsCount := 6
	budget := time.Duration(o.rounds*variantsCount)*(o.duration+3*time.Second) +
		time.Duration(variantsCount)*(o.warmup+3*time.Second) + 2*time.Minute +
		time.Duration(o.rounds+1)*2*time.Minute // minting refresh tokens
	watchdog := time.AfterFunc(budget, func() {
		fmt.Fprintf(os.Stderr, "bench: still running after %v, giving up\n", budget)
		os.Exit(3)
	})
	defer watchdog.Stop()

	dir, err := os.MkdirTemp("", "tokengate-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	os.Setenv("XDG_DATA_HOME", filepath.Join(dir, "data"))
	os.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))

	backend, err := serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, backendBody)
	}))
	if err != nil {
		return err
	}
	defer backend.Close()

	auth := &authEndpoint{valid: map[string]string{}}
	authSrv, err := serve(auth)
	if err != nil {
		return err
	}
	defer authSrv.Close()

	port, err := freePort()
	if err != nil {
		return err
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	database := "sqlite " + filepath.Join(dir, "tokengate.db")
	if o.postgres {
		// A directory of its own: the server may run as another user,
		// who cannot enter the run's private temporary directory.
		pgDir, err := os.MkdirTemp("", "tgpg-")
		if err != nil {
			return err
		}
		dsn, stop, err := pgtest.StartCluster(pgDir)
		if err != nil {
			os.RemoveAll(pgDir)
			return err
		}
		defer stop()
		database = "postgres " + dsn
	}
	caddyfile := fmt.Sprintf(caddyfileTemplate, port, database,
		userJWTSecret, benchScope, backend.Addr, authSrv.Addr)
	if err := loadCaddyfile(caddyfile); err != nil {
		return err
	}
	defer caddy.Stop()
	if err := waitReady(base + "/plain"); err != nil {
		return err
	}

	token, err := issuePersonalToken(base)
	if err != nil {
		return err
	}
	auth.add(token, benchUser)
	malformed := breakChecksum(token)
	// A well-formed personal token that was never issued.
	unknown, _, err := oauth.NewToken(oauth.KindPersonal)
	if err != nil {
		return err
	}

	variants := []*variant{
		{name: "plain", path: "/plain", token: token, want: 200, note: "reverse_proxy only"},
		{name: "guarded", path: "/guarded", token: token, want: 200, note: "tokengate + reverse_proxy, valid cached token"},
		{name: "malformed", path: "/guarded", token: malformed, want: 401, note: "guarded route, bad checksum"},
		{name: "unknown", path: "/guarded", token: unknown, want: 401, note: "guarded route, well-formed unknown token"},
		{name: "forward_auth", path: "/fa", token: token, want: 200, note: "forward_auth to a Go endpoint + reverse_proxy"},
		{name: refreshName(o), path: "/oauth/token", want: 200, note: "refresh grant on " + storeName(o) + ", Basic client auth, one fresh refresh token per request",
			refresh: newRefreshLoad(base, dir)},
	}
	if len(variants) != variantsCount {
		return errors.New("variant count out of date")
	}
	for _, v := range variants {
		if err := check(base, v); err != nil {
			return err
		}
	}
	script, err := variants[len(variants)-1].refresh.writeScript()
	if err != nil {
		return err
	}

	fmt.Printf("tokengate load benchmark: %d rounds x %v per variant, wrk -t%d -c%d\n",
		o.rounds, o.duration, o.threads, o.connections)
	loadBefore := loadAverage()
	for _, v := range variants {
		if v.warm, err = runVariant(wrk, script, o, o.warmup, base, v, nil); err != nil {
			return fmt.Errorf("warm-up %s: %w", v.name, err)
		}
	}
	for r := range o.rounds {
		for i := range variants {
			v := variants[(r+i)%len(variants)]
			var profile func() (func(), error)
			if o.profile && r == o.rounds-1 {
				profile = func() (func(), error) { return startProfile(o, v) }
			}
			res, err := runVariant(wrk, script, o, o.duration, base, v, profile)
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", r+1, v.name, err)
			}
			v.result = append(v.result, res)
			fmt.Printf("round %d  %-13s %9.0f req/s  p50 %-9s p90 %-9s p99 %-9s cores: caddy %.2f, wrk %.2f%s\n",
				r+1, v.name, res.rps, fmtDur(res.p50), fmtDur(res.p90), fmtDur(res.p99), res.selfCores, res.wrkCores, v.refresh.status(res))
		}
	}

	rep := newReport(o, variants)
	rep.load = [2]string{loadBefore, loadAverage()}
	md := rep.markdown()
	fmt.Println()
	fmt.Print(md)
	mdPath := filepath.Join(o.out, "bench-results.md")
	svgPath := filepath.Join(o.out, "bench-results.svg")
	if err := os.WriteFile(mdPath, []byte(md), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(svgPath, []byte(rep.svg()), 0o644); err != nil {
		return err
	}
	fmt.Printf("\nwrote %s and %s\n", mdPath, svgPath)
	if misses := rep.misses(); len(misses) > 0 {
		fmt.Printf("targets missed: %s\n", strings.Join(misses, "; "))
	}
	return nil
}

// startProfile starts a CPU profile of the variant's run and returns the
// function that stops it.
func startProfile(o options, v *variant) (func(), error) {
	f, err := os.Create(filepath.Join(o.out, "cpu-"+v.name+".pprof"))
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// caddyfileTemplate holds every variant as its own route. Arguments: port,
// database setting, user JWT secret, scope, backend address, auth endpoint
// address.
const caddyfileTemplate = `{
	admin off
	persist_config off
	default_bind 127.0.0.1
	skip_install_trust
	log {
		level WARN
	}
	tokengate {
		issuer http://127.0.0.1:%[1]d
		database %[2]s
		users {
			jwt_secret %[3]s
			audience authenticated
		}
		scope %[4]s "Benchmark reads"
		client bench-app {
			secret bench-app-secret
			redirect_uri https://bench.example.com/cb
			scopes %[4]s
			pkce optional
		}
	}
}

http://127.0.0.1:%[1]d {
	tokengate_endpoints
	route /plain* {
		reverse_proxy %[5]s
	}
	route /guarded* {
		tokengate %[4]s
		reverse_proxy %[5]s
	}
	route /fa* {
		forward_auth %[6]s {
			uri /validate
			copy_headers X-Authenticated-Userid
		}
		reverse_proxy %[5]s
	}
}
`

// authEndpoint answers forward_auth: 200 with the caller's user ID for a
// known bearer token, 401 otherwise.
type authEndpoint struct {
	mu    sync.RWMutex
	valid map[string]string
}

func (a *authEndpoint) add(token, user string) {
	a.mu.Lock()
	a.valid[token] = user
	a.mu.Unlock()
}

func (a *authEndpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	a.mu.RLock()
	user, known := a.valid[token]
	a.mu.RUnlock()
	if !ok || !known {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	w.Header().Set("X-Authenticated-Userid", user)
	w.WriteHeader(http.StatusOK)
}

// server is an HTTP server on a loopback port.
type server struct {
	Addr string
	srv  *http.Server
}

func serve(h http.Handler) (*server, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &server{Addr: l.Addr().String(), srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}}
	go s.srv.Serve(l)
	return s, nil
}

func (s *server) Close() { s.srv.Close() }

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func loadCaddyfile(caddyfile string) error {
	cfg, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile), nil)
	if err != nil {
		return fmt.Errorf("adapting the Caddyfile: %w", err)
	}
	for _, w := range warnings {
		if !strings.Contains(w.Message, "formatted") {
			return fmt.Errorf("adapter warning: %s", w.String())
		}
	}
	if err := caddy.Load(cfg, true); err != nil {
		return fmt.Errorf("starting Caddy: %w", err)
	}
	return nil
}

func waitReady(url string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not answering: %w", url, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// signUserJWT returns benchUser's JWT, valid for an hour.
func signUserJWT() (string, error) {
	return jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": benchUser,
		"aud": "authenticated",
		"iat": time.Now().Unix(),
		"exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString([]byte(userJWTSecret))
}

// issuePersonalToken asks the api_token endpoint for benchUser's token.
func issuePersonalToken(base string) (string, error) {
	userJWT, err := signUserJWT()
	if err != nil {
		return "", err
	}
	req, err := http.NewRequest(http.MethodPost, base+"/api-token", nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+userJWT)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("POST /api-token: %d %s", resp.StatusCode, body)
	}
	var out struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(body, &out); err != nil || out.Token == "" {
		return "", fmt.Errorf("POST /api-token: no token in %s", body)
	}
	return out.Token, nil
}

// breakChecksum changes one character of the token's random part, so its
// shape stays right and only the checksum fails.
func breakChecksum(token string) string {
	b := []byte(token)
	if b[10] == 'A' {
		b[10] = 'B'
	} else {
		b[10] = 'A'
	}
	return string(b)
}

// check sends one request of the variant and compares the status.
func check(base string, v *variant) error {
	if v.refresh != nil {
		return v.refresh.check()
	}
	req, err := http.NewRequest(http.MethodGet, base+v.path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+v.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != v.want {
		return fmt.Errorf("%s: GET %s answered %d %s, want %d", v.name, v.path, resp.StatusCode, body, v.want)
	}
	if v.want == 200 && string(body) != backendBody {
		return fmt.Errorf("%s: GET %s answered %q, want the backend's body", v.name, v.path, body)
	}
	return nil
}

var (
	reRPS      = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	rePercent  = regexp.MustCompile(`(?m)^\s+(50|75|90|99)%\s+([0-9.]+)(us|ms|s|m)\s*$`)
	reRequests = regexp.MustCompile(`(\d+) requests in`)
	reNon2xx   = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	reSocket   = regexp.MustCompile(`Socket errors: (.*)`)
)

// runVariant runs wrk once against the variant and parses its report.
// Every response must have the variant's status: a 2xx variant may have no
// non-2xx answers, a 401 variant nothing but. The refresh variant mints its
// tokens first and runs script. A non-nil profile is started after the
// minting, just before wrk, and stopped when wrk ends.
func runVariant(wrk, script string, o options, d time.Duration, base string, v *variant, profile func() (func(), error)) (run, error) {
	args := []string{"-H", "Authorization: Bearer " + v.token, base + v.path}
	if v.refresh != nil {
		if err := v.refresh.prepare(o, d); err != nil {
			return run{}, fmt.Errorf("minting refresh tokens: %w", err)
		}
		args = []string{"-s", script, base}
	}
	if profile != nil {
		stop, err := profile()
		if err != nil {
			return run{}, err
		}
		defer stop()
	}
	ctx, cancel := context.WithTimeout(context.Background(), d+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, wrk, append([]string{
		"-t" + strconv.Itoa(o.threads), "-c" + strconv.Itoa(o.connections),
		"-d" + strconv.Itoa(int(math.Ceil(d.Seconds()))) + "s", "--latency"}, args...)...)
	selfBefore, start := processCPU(), time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return run{}, fmt.Errorf("wrk: %w\n%s", err, out)
	}
	wall := time.Since(start).Seconds()
	text := string(out)
	var r run
	r.selfCores = (processCPU() - selfBefore).Seconds() / wall
	r.wrkCores = (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds() / wall
	m := reRPS.FindStringSubmatch(text)
	if m == nil {
		return run{}, fmt.Errorf("no Requests/sec in wrk output:\n%s", text)
	}
	r.rps, _ = strconv.ParseFloat(m[1], 64)
	found := 0
	for _, pm := range rePercent.FindAllStringSubmatch(text, -1) {
		d, err := parseWrkDuration(pm[2], pm[3])
		if err != nil {
			return run{}, err
		}
		switch pm[1] {
		case "50":
			r.p50 = d
		case "90":
			r.p90 = d
		case "99":
			r.p99 = d
		}
		found++
	}
	if found < 4 {
		return run{}, fmt.Errorf("no latency distribution in wrk output:\n%s", text)
	}
	if m := reRequests.FindStringSubmatch(text); m != nil {
		r.requests, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if m := reNon2xx.FindStringSubmatch(text); m != nil {
		r.non2xx, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if m := reSocket.FindStringSubmatch(text); m != nil {
		r.socketErrors = strings.TrimSpace(m[1])
	}
	if r.requests == 0 {
		return run{}, fmt.Errorf("wrk completed no request:\n%s", text)
	}
	if v.refresh != nil {
		return r, v.refresh.parseRefreshCounts(text, &r)
	}
	if v.want < 300 && r.non2xx != 0 {
		return run{}, fmt.Errorf("%d of %d responses were not 2xx", r.non2xx, r.requests)
	}
	// wrk counts requests cut off at the end of the run too; allow those.
	if v.want >= 300 && r.requests-r.non2xx > int64(o.connections) {
		return run{}, fmt.Errorf("only %d of %d responses were refused", r.non2xx, r.requests)
	}
	return r, nil
}

// processCPU is the CPU time this process has used so far, user and
// system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func parseWrkDuration(num, unit string) (time.Duration, error) {
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, err
	}
	scale := map[string]float64{"us": 1e3, "ms": 1e6, "s": 1e9, "m": 60e9}[unit]
	return time.Duration(f * scale), nil
}

// stat is the median and range of one measure over the rounds.
type stat struct{ med, min, max float64 }

func summarize(xs []float64) stat {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	med := s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return stat{med: med, min: s[0], max: s[n-1]}
}

// summary is one variant's medians.
type summary struct {
	*variant
	rps, p50, p90, p99 stat // latencies in milliseconds
}

func summarizeVariant(v *variant) summary {
	var rps, p50, p90, p99 []float64
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	for _, r := range v.result {
		rps = append(rps, r.rps)
		p50 = append(p50, ms(r.p50))
		p90 = append(p90, ms(r.p90))
		p99 = append(p99, ms(r.p99))
	}
	return summary{variant: v, rps: summarize(rps), p50: summarize(p50), p90: summarize(p90), p99: summarize(p99)}
}

// target is one line of the issue's targets.
type target struct {
	name, measured, goal, result string
}

type report struct {
	o       options
	load    [2]string // load averages before and after the rounds
	sums    []summary
	byName  map[string]summary
	targets []target
}

func newReport(o options, variants []*variant) *report {
	rep := &report{o: o, byName: map[string]summary{}}
	for _, v := range variants {
		s := summarizeVariant(v)
		rep.sums = append(rep.sums, s)
		rep.byName[v.name] = s
	}
	plain, guarded := rep.byName["plain"], rep.byName["guarded"]
	fa := rep.byName["forward_auth"]
	passFail := func(ok bool) string {
		if ok {
			return "PASS"
		}
		return "FAIL"
	}
	ratio := func(a, b summary) float64 { return a.rps.med / b.rps.med }

	r := ratio(guarded, plain)
	rep.targets = append(rep.targets, target{"guarded vs plain reverse_proxy, throughput",
		fmt.Sprintf("%.3f× (paired per round: %s)", r, pairedRatio(guarded.variant, plain.variant)), "≥ 0.97×", passFail(r >= 0.97)})
	added := guarded.p99.med - plain.p99.med
	rep.targets = append(rep.targets, target{"guarded vs plain reverse_proxy, added p99 latency",
		fmt.Sprintf("%+.3f ms (%.3f vs %.3f ms)", added, guarded.p99.med, plain.p99.med), "≤ 0.2 ms", passFail(added <= 0.2)})
	for _, name := range []string{"malformed", "unknown"} {
		s := rep.byName[name]
		r := ratio(s, plain)
		rep.targets = append(rep.targets, target{name + " token vs plain reverse_proxy, throughput",
			fmt.Sprintf("%.3f× (paired per round: %s)", r, pairedRatio(s.variant, plain.variant)), "≥ 1.0×", passFail(r >= 1.0)})
	}
	rep.targets = append(rep.targets,
		target{"store queries for malformed tokens", "0: refused by the checksum before any cache or store look-up (oauth: TestValidateMalformedTokenCostsNoLookup, BenchmarkValidateMalformed)", "0", "PASS (unit test)"},
		target{"guarded vs forward_auth, throughput",
			fmt.Sprintf("%.3f× (paired per round: %s); p99 %.3f vs %.3f ms", ratio(guarded, fa), pairedRatio(guarded.variant, fa.variant), guarded.p99.med, fa.p99.med),
			"report", "—"},
	)
	tok := rep.byName[refreshName(o)]
	r = ratio(tok, plain)
	measured := fmt.Sprintf("%.3f× (paired per round: %s); p99 %.3f vs %.3f ms", r, pairedRatio(tok.variant, plain.variant), tok.p99.med, plain.p99.med)
	sqlite := target{"token endpoint, refresh grant on SQLite, vs plain reverse_proxy, throughput", measured, "≥ 0.5×", passFail(r >= 0.5)}
	postgres := target{"token endpoint, refresh grant on PostgreSQL, vs plain reverse_proxy, throughput", measured, "report", "—"}
	if o.postgres {
		sqlite.measured, sqlite.result = "not measured in this run (-postgres)", "—"
	} else {
		postgres.measured = "not measured in this run (run with -postgres)"
	}
	rep.targets = append(rep.targets, sqlite, postgres)
	return rep
}

// pairedRatio is the median and range of a's throughput over b's, round by
// round.
func pairedRatio(a, b *variant) string {
	var rs []float64
	for i := range a.result {
		if i < len(b.result) {
			rs = append(rs, a.result[i].rps/b.result[i].rps)
		}
	}
	s := summarize(rs)
	return fmt.Sprintf("%.3f× [%.3f–%.3f]", s.med, s.min, s.max)
}

func (rep *report) misses() []string {
	var out []string
	for _, t := range rep.targets {
		if t.result == "FAIL" {
			out = append(out, t.name+": "+t.measured+", want "+t.goal)
		}
	}
	return out
}

func (rep *report) markdown() string {
	var b strings.Builder
	o := rep.o
	version, _ := caddy.Version()
	fmt.Fprintf(&b, "# tokengate load benchmark\n\n")
	fmt.Fprintf(&b, "%s; Caddy %s, %s, %s/%s, %d CPUs. wrk -t%d -c%d --latency, %d rounds × %v per variant, variants alternating; medians over the rounds, [min–max].\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), version, runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(),
		o.threads, o.connections, o.rounds, o.duration)
	plain := rep.byName["plain"]
	fa := rep.byName["forward_auth"]
	b.WriteString("| variant | route | status | req/s | p50 ms | p90 ms | p99 ms | vs plain | vs forward_auth |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, s := range rep.sums {
		fmt.Fprintf(&b, "| %s | %s (%s) | %d | %.0f [%.0f–%.0f] | %s | %s | %s | %.3f× | %.3f× |\n",
			s.name, s.path, s.note, s.want, s.rps.med, s.rps.min, s.rps.max,
			fmtStat(s.p50), fmtStat(s.p90), fmtStat(s.p99),
			s.rps.med/plain.rps.med, s.rps.med/fa.rps.med)
	}
	b.WriteString("\n" + rep.refreshNote() + "\n\n")

	b.WriteString("## Targets\n\n| target | measured | goal | result |\n| --- | --- | --- | --- |\n")
	for _, t := range rep.targets {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", t.name, t.measured, t.goal, t.result)
	}

	b.WriteString("\n## Every run (req/s; p99 ms)\n\n| variant |")
	for r := range o.rounds {
		fmt.Fprintf(&b, " round %d |", r+1)
	}
	b.WriteString("\n| --- |" + strings.Repeat(" --- |", o.rounds) + "\n")
	for _, s := range rep.sums {
		fmt.Fprintf(&b, "| %s |", s.name)
		for _, r := range s.result {
			fmt.Fprintf(&b, " %.0f; %.3f |", r.rps, float64(r.p99)/1e6)
		}
		b.WriteString("\n")
	}
	var sock []string
	for _, s := range rep.sums {
		for _, r := range s.result {
			if r.socketErrors != "" {
				sock = append(sock, s.name+": "+r.socketErrors)
			}
		}
	}
	if len(sock) > 0 {
		b.WriteString("\nwrk socket errors: " + strings.Join(sock, "; ") + "\n")
	}
	if rep.load[0] != "" {
		fmt.Fprintf(&b, "\nLoad average (1, 5, 15 min) before the rounds: %s; after: %s. Anything else running on the machine shows up as noise here.\n", rep.load[0], rep.load[1])
	}
	b.WriteString("\nLoad generator, Caddy and the backends share the machine's CPUs, so absolute figures are lower than on separate hosts; compare the ratios, which come from the same run.\n")
	return b.String()
}

// loadAverage returns the system's 1, 5 and 15 minute load averages, or ""
// where /proc/loadavg does not exist.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], ", ")
}

func fmtStat(s stat) string {
	return fmt.Sprintf("%.3f [%.3f–%.3f]", s.med, s.min, s.max)
}

func fmtDur(d time.Duration) string {
	return fmt.Sprintf("%.3fms", float64(d)/1e6)
}

// svg draws two panels: median throughput with min–max whiskers, and the
// median p50/p90/p99 latency of each variant.
func (rep *report) svg() string {
	const (
		width   = 960
		height  = 760
		left    = 80
		right   = 30
		panelH  = 250
		top1    = 70
		top2    = top1 + panelH + 110
		plotW   = width - left - right
		barFill = "#4c78a8"
	)
	var b strings.Builder
	w := bufio.NewWriter(&b)
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(w, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	fmt.Fprintf(w, `<text x="%d" y="24" font-size="16" font-weight="bold">tokengate load benchmark: %d rounds × %v, wrk -t%d -c%d</text>`+"\n",
		left, rep.o.rounds, rep.o.duration, rep.o.threads, rep.o.connections)

	n := len(rep.sums)
	slot := float64(plotW) / float64(n)

	// Panel 1: throughput.
	maxRPS := 0.0
	for _, s := range rep.sums {
		maxRPS = math.Max(maxRPS, s.rps.max)
	}
	yMax := niceCeil(maxRPS)
	fmt.Fprintf(w, `<text x="%d" y="%d" font-size="14" font-weight="bold">Throughput (req/s): median, whiskers min–max</text>`+"\n", left, top1-12)
	axis(w, left, top1, plotW, panelH, yMax, "%.0f")
	for i, s := range rep.sums {
		x := float64(left) + slot*float64(i) + slot*0.2
		bw := slot * 0.6
		y := func(v float64) float64 { return float64(top1+panelH) - v/yMax*panelH }
		fmt.Fprintf(w, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`+"\n", x, y(s.rps.med), bw, float64(top1+panelH)-y(s.rps.med), barFill)
		cx := x + bw/2
		fmt.Fprintf(w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="black"/>`+"\n", cx, y(s.rps.min), cx, y(s.rps.max))
		for _, v := range []float64{s.rps.min, s.rps.max} {
			fmt.Fprintf(w, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="black"/>`+"\n", cx-8, y(v), cx+8, y(v))
		}
		fmt.Fprintf(w, `<text x="%.1f" y="%.1f" text-anchor="middle">%.0f</text>`+"\n", cx, y(s.rps.max)-6, s.rps.med)
		fmt.Fprintf(w, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", cx, top1+panelH+18, shortName(s.name))
		fmt.Fprintf(w, `<text x="%.1f" y="%d" text-anchor="middle" fill="#555">%d, %s</text>`+"\n", cx, top1+panelH+34, s.want, s.path)
	}

	// Panel 2: latency percentiles, scaled to the proxied variants; the
	// token endpoint's taller bars are cut at the top.
	maxLat := 0.0
	for _, s := range rep.sums {
		if s.refresh == nil {
			maxLat = math.Max(maxLat, s.p99.med)
		}
	}
	lMax := niceCeil(maxLat)
	colors := []string{"#72b7b2", "#f58518", "#e45756"}
	fmt.Fprintf(w, `<text x="%d" y="%d" font-size="14" font-weight="bold">Latency (ms): median p50 / p90 / p99</text>`+"\n", left, top2-12)
	for i, name := range []string{"p50", "p90", "p99"} {
		lx := width - right - 210 + i*70
		fmt.Fprintf(w, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n", lx, top2-23, colors[i], lx+16, top2-13, name)
	}
	latFormat := "%.0f"
	if lMax < 10 {
		latFormat = "%.2f"
	}
	axis(w, left, top2, plotW, panelH, lMax, latFormat)
	for i, s := range rep.sums {
		x0 := float64(left) + slot*float64(i) + slot*0.15
		bw := slot * 0.7 / 3
		for j, v := range []float64{s.p50.med, s.p90.med, s.p99.med} {
			h := math.Min(v, lMax) / lMax * panelH
			x := x0 + bw*float64(j)
			// A cut bar's label goes inside it, in white, staggered.
			ly, style, label := float64(top2+panelH)-h-4, "", fmt.Sprintf("%.2f", v)
			if v > lMax {
				ly, style, label = float64(top2+14+j%2*12), ` font-weight="bold" fill="white"`, fmt.Sprintf("%.0f", v)
			}
			fmt.Fprintf(w, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`+"\n", x, float64(top2+panelH)-h, bw-2, h, colors[j])
			fmt.Fprintf(w, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="10"%s>%s</text>`+"\n", x+bw/2-1, ly, style, label)
		}
		fmt.Fprintf(w, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", x0+bw*1.5, top2+panelH+18, shortName(s.name))
	}
	fmt.Fprintf(w, `<text x="%d" y="%d" fill="#555">%s: token pairs issued per second (200 answers only). Ratios and targets: bench-results.md.</text>`+"\n", left, height-12, refreshName(rep.o))
	w.WriteString("</svg>\n")
	w.Flush()
	return b.String()
}

// axis draws a y axis with five gridlines from 0 to max, and the x axis.
func axis(w io.Writer, left, top, plotW, h int, max float64, format string) {
	for i := 0; i <= 5; i++ {
		v := max * float64(i) / 5
		y := float64(top+h) - float64(h)*float64(i)/5
		fmt.Fprintf(w, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", left, y, left+plotW, y)
		fmt.Fprintf(w, `<text x="%d" y="%.1f" text-anchor="end">`+format+`</text>`+"\n", left-6, y+4, v)
	}
	fmt.Fprintf(w, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n", left, top, left, top+h)
	fmt.Fprintf(w, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n", left, top+h, left+plotW, top+h)
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten, with headroom.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	v *= 1.1
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}
