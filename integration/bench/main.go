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
//   - headers: the same reverse_proxy after request_header makes the
//     guard's changes to the request without validating anything (the
//     four identity headers set, Authorization removed): what passing the
//     identity to the backend costs apart from the guard;
//   - malformed: the guarded route with a token whose checksum is wrong,
//     refused with 401 before any cache or store look-up;
//   - unknown: the guarded route with a well-formed token the store does
//     not know, refused with 401 from the cache's negative entry;
//   - forward_auth: Caddy's forward_auth to a Go endpoint that checks the
//     bearer token against a map, then the same reverse_proxy;
//   - bearer (oauth) and dpop (ES256): the guarded route with an OAuth
//     access token, unbound and sent as a bearer token, or bound to a DPoP
//     key and sent with a fresh ES256 proof on every request (RFC 9449 7);
//     both cached. Proofs are made before each run, outside its timing, and
//     handed out one per request by a wrk Lua script, which the bearer
//     variant runs too, without proofs (dpop.go);
//   - code exchange, and code exchange + ID token: POST /oauth/token with
//     grant_type=authorization_code, each request redeeming its own code,
//     made before the run through the dashboard flow (exchange.go), for a
//     scope without and with openid: what signing the ID token adds;
//   - in a phase of their own after the others, with the config reloaded
//     with access_token_format jwt: plain again, and the guarded route with
//     a cached opaque OAuth access token and with a cached RFC 9068 JWT
//     access token, whose throughput ratio is reported (jwt.go);
//   - token endpoint (refresh grant, SQLite, or PostgreSQL with -postgres,
//     which starts a private cluster on 127.0.0.1 and puts the store
//     there for the whole run): POST /oauth/token with
//     grant_type=refresh_token and Basic client authentication, each request
//     presenting a different refresh token (rotation makes them single-use).
//     Before each run, 1.5 times the count the fastest earlier run (the
//     warm-up included) suggests is minted (at least 1,000, at most
//     200,000; the warm-up gets 10,000 a second; after a run that ran
//     short, the rate of all its answers counts, refusals included) through
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
// wrk keeps every connection busy, so its latency percentiles are queueing
// at saturation. What the guard adds to latency is measured after the wrk
// rounds, at a fixed rate (a quarter of the plain route's median throughput) sent
// on a schedule by vegeta (installed for the run with go install from the
// Go module proxy): plain and guarded, the same number of rounds,
// alternating. The added-p99 target is checked against those runs.
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
	"runtime/pprof"
	"strings"
	"sync"
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
	postgres    bool   // the store on a private PostgreSQL cluster, not SQLite
	signingAlg  string // the openid option's signing_alg: RS256 or ES256
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
	// dpop is set for the DPoP variants, which send their requests from
	// a wrk script too.
	dpop *dpopLoad
	// exchange is set for the code exchange variants, likewise.
	exchange *exchangeLoad
	warm     run
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
	flag.StringVar(&o.signingAlg, "signing-alg", "RS256", "signing_alg of ID tokens and JWT access tokens: RS256 (the default of the openid option) or ES256")
	flag.BoolVar(&o.postgres, "postgres", false, "put the store on a private PostgreSQL cluster started for the run (needs the server binaries), instead of SQLite")
	flag.BoolVar(&o.profile, "cpuprofile", false, "write cpu-<variant>.pprof to -out: this process (Caddy, backend, auth endpoint) during each variant's last-round run")
	flag.Parse()
	if short {
		o.rounds, o.duration = 3, 2*time.Second
	}
	if o.signingAlg != "RS256" && o.signingAlg != "ES256" {
		fmt.Fprintln(os.Stderr, "bench: -signing-alg is RS256 or ES256")
		os.Exit(2)
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
	variantsCount := 11 + 3 // the JWT phase's three after the others
	budget := time.Duration(o.rounds*(variantsCount+2))*(o.duration+3*time.Second) + 5*time.Minute +
		time.Duration(variantsCount)*(o.warmup+3*time.Second) + 2*time.Minute +
		time.Duration(o.rounds+1)*4*time.Minute // minting refresh tokens and codes
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

	vegeta, err := installVegeta(dir)
	if err != nil {
		return err
	}

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
	caddyfile := func(port int, options string) string {
		return fmt.Sprintf(caddyfileTemplate, port, database,
			userJWTSecret, benchScope, backend.Addr, authSrv.Addr, benchUser, options, o.signingAlg)
	}
	port, err := loadOnFreePort(func(port int) string { return caddyfile(port, "") })
	if err != nil {
		return err
	}
	defer caddy.Stop()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
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
	boundLoad, bearerLoad, err := newDPoPLoads(base, dir)
	if err != nil {
		return err
	}
	exchangeLoad, idTokenLoad, err := newExchangeLoads(base, dir)
	if err != nil {
		return err
	}

	variants := []*variant{
		{name: "plain", path: "/plain", token: token, want: 200, note: "reverse_proxy only"},
		{name: "guarded", path: "/guarded", token: token, want: 200, note: "tokengate + reverse_proxy, valid cached token"},
		{name: "headers", path: "/headers", token: token, want: 200, note: "reverse_proxy after request_header makes the guard's header changes without validating: the four identity headers set, Authorization removed"},
		{name: "malformed", path: "/guarded", token: malformed, want: 401, note: "guarded route, bad checksum"},
		{name: "unknown", path: "/guarded", token: unknown, want: 401, note: "guarded route, well-formed unknown token"},
		{name: "forward_auth", path: "/fa", token: token, want: 200, note: "forward_auth to a Go endpoint + reverse_proxy"},
		{name: dpopBearerName, path: dpopPath, want: 200, note: "guarded route, unbound OAuth access token as Bearer, cached, requests built by a wrk script", dpop: bearerLoad},
		{name: dpopName, path: dpopPath, want: 200, note: "guarded route, DPoP-bound OAuth access token, cached, a fresh ES256 proof per request made before the run", dpop: boundLoad},
		{name: exchangeName, path: "/oauth/token", want: 200, note: "authorization_code grant on " + storeName(o) + ", Basic client auth, one fresh code per request, scope without openid", exchange: exchangeLoad},
		{name: exchangeIDTokenName, path: "/oauth/token", want: 200, note: "the same with openid: an " + o.signingAlg + " ID token in every answer", exchange: idTokenLoad},
		{name: refreshName(o), path: "/oauth/token", want: 200, note: "refresh grant on " + storeName(o) + ", Basic client auth, one fresh refresh token per request",
			refresh: newRefreshLoad(base, dir)},
	}
	if len(variants) != variantsCount-3 {
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
		if v.warm, err = runVariant(wrk, script, o, o.warmup, base, v, false); err != nil {
			return fmt.Errorf("warm-up %s: %w", v.name, err)
		}
	}
	for r := range o.rounds {
		for i := range variants {
			v := variants[(r+i)%len(variants)]
			res, err := runVariant(wrk, script, o, o.duration, base, v, o.profile && r == o.rounds-1)
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", r+1, v.name, err)
			}
			v.result = append(v.result, res)
			fmt.Printf("round %d  %-13s %9.0f req/s  p50 %-9s p90 %-9s p99 %-9s cores: caddy %.2f, wrk %.2f%s%s\n",
				r+1, v.name, res.rps, fmtDur(res.p50), fmtDur(res.p90), fmtDur(res.p99), res.selfCores, res.wrkCores, v.refresh.status(res), v.dpop.status(res)+v.exchange.status(res))
		}
	}

	plain, guarded := variants[0], variants[1]
	rate := int(math.Round(summarizeVariant(plain).rps.med*openLoopLoad/100)) * 100
	ol, err := measureOpenLoop(vegeta, dir, o, rate, base, plain, guarded)
	if err != nil {
		return err
	}

	// Minted before the reload that makes access tokens JWTs.
	opaque, err := mintAccessToken(base, nil)
	if err != nil {
		return err
	}
	jwtPhase, err := measureJWT(wrk, o, base, caddyfile(port, "access_token_format jwt"), opaque)
	if err != nil {
		return err
	}

	rep := newReport(o, variants, ol)
	rep.jwt = jwtPhase
	rep.targets = append(rep.targets, jwtPhase.target())
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
// address, the personal token's user ID, more tokengate options.
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
		openid {
			signing_alg %[9]s
		}
		%[8]s
		client bench-app {
			secret bench-app-secret
			redirect_uri https://bench.example.com/cb
			scopes %[4]s openid offline_access
			pkce optional
		}
	}
}

http://127.0.0.1:%[1]d {
	tokengate_endpoints
	route /plain* {
		reverse_proxy %[5]s
	}
	route /headers* {
		request_header -Authorization
		request_header X-Authenticated-Userid %[7]s
		request_header X-Authenticated-Scope %[4]s
		request_header X-Authenticated-Client-Id ""
		request_header X-Authenticated-Token-Type personal
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

// loadOnFreePort starts Caddy with the Caddyfile that caddyfile returns
// for a free port, and returns the port. A port free a moment ago may be
// taken by another process when Caddy binds it; then another is tried.
func loadOnFreePort(caddyfile func(port int) string) (int, error) {
	const attempts = 5
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return 0, err
		}
		err = loadCaddyfile(caddyfile(port))
		if err == nil {
			return port, nil
		}
		if attempt == attempts || !strings.Contains(err.Error(), "address already in use") {
			return 0, err
		}
	}
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

// waitReady polls url until it answers. The deadline is generous: it
// bounds a server that never comes up, not how fast a loaded machine
// starts one.
func waitReady(url string) error {
	deadline := time.Now().Add(60 * time.Second)
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
	if v.dpop != nil {
		return v.dpop.check()
	}
	if v.exchange != nil {
		return v.exchange.check()
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
