package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tokengate/caddy-tokengate/internal/dpoptest"
)

// The DPoP variants compare, on the guarded route, an OAuth access token
// bound to a DPoP key, sent with a fresh ES256 proof on every request, with
// an unbound OAuth access token sent as a bearer token. Both tokens are
// served from the validation cache after the first request, so what the
// first variant adds is the proof's check: parsing, the ES256 signature,
// the replay memory.
//
// A proof is good for one request (its jti is remembered), so proofs are
// made before each run, in this process but before wrk starts and before
// the run's CPU accounting begins, as many as the fastest earlier run
// suggests (like the refresh tokens of the token endpoint variant), and a
// wrk Lua script hands each thread its own slice, one proof per request.
// The bearer variant runs the same script without proofs, so that both pay
// the same for building requests in Lua.

// The DPoP variants' names.
const (
	dpopName       = "dpop (ES256)"
	dpopBearerName = "bearer (oauth)"
)

const (
	dpopPath = "/guarded"
	// maxProofs bounds the proofs made for one run; every one is accepted
	// within a minute, and the verifier remembers a million at most.
	maxProofs = 200_000
	// minProofsPerSecond is the least rate the proofs of a run are made
	// for: above what the guard reaches on a small machine, so that a
	// slow warm-up does not leave a run short. Making them costs a few
	// seconds per run, outside the timing.
	minProofsPerSecond = 10_000
)

// dpopLoad drives the guarded route with an OAuth access token, bound to
// key and with a proof per request, or (key nil) as a bearer token.
type dpopLoad struct {
	base, dir, name string
	key             *dpoptest.Key
	token           string
	estimate        float64 // fastest run so far, requests per second
	made            int     // proofs of the last run
	makeTime        time.Duration
	script          string
}

// newDPoPLoads mints the two tokens through authorize and code exchange,
// one with a DPoP proof and one without, and returns the bound load and
// the bearer one.
func newDPoPLoads(base, dir string) (bound, bearer *dpopLoad, err error) {
	key := dpoptest.NewKey("ES256")
	boundToken, err := mintAccessToken(base, key)
	if err != nil {
		return nil, nil, fmt.Errorf("a DPoP-bound access token: %w", err)
	}
	bearerToken, err := mintAccessToken(base, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("a bearer access token: %w", err)
	}
	bound = &dpopLoad{base: base, dir: dir, name: "dpop", key: key, token: boundToken}
	bearer = &dpopLoad{base: base, dir: dir, name: "bearer", token: bearerToken}
	for _, l := range []*dpopLoad{bound, bearer} {
		if err := l.writeScript(); err != nil {
			return nil, nil, err
		}
	}
	return bound, bearer, nil
}

// mintAccessToken authorizes the bench client for benchUser and exchanges
// the code, with a DPoP proof of key when key is not nil.
func mintAccessToken(base string, key *dpoptest.Key) (string, error) {
	userJWT, err := signUserJWT()
	if err != nil {
		return "", err
	}
	body, _ := json.Marshal(map[string]string{"client_id": benchClient, "redirect_uri": benchRedirect,
		"response_type": "code", "scope": benchScope, "state": "bench"})
	var auth struct {
		RedirectURL string `json:"redirect_url"`
	}
	if err := postJSON(base+"/oauth/authorize", string(body), "application/json", map[string]string{"Authorization": "Bearer " + userJWT}, &auth); err != nil {
		return "", err
	}
	u, err := url.Parse(auth.RedirectURL)
	if err != nil || u.Query().Get("code") == "" {
		return "", fmt.Errorf("authorize: no code in %q", auth.RedirectURL)
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {u.Query().Get("code")}, "redirect_uri": {benchRedirect}}
	headers := map[string]string{"Authorization": basicAuth()}
	want := "Bearer"
	if key != nil {
		headers["DPoP"] = key.Proof(http.MethodPost, base+"/oauth/token", "")
		want = "DPoP"
	}
	var pair struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	if err := postJSON(base+"/oauth/token", form.Encode(), "application/x-www-form-urlencoded", headers, &pair); err != nil {
		return "", err
	}
	if pair.AccessToken == "" || pair.TokenType != want {
		return "", fmt.Errorf("exchange: token_type %q, want %s", pair.TokenType, want)
	}
	return pair.AccessToken, nil
}

// postJSON sends body and decodes a 200 JSON answer into out.
func postJSON(u, body, contentType string, headers map[string]string, out any) error {
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", contentType)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST %s: %d %s", u, resp.StatusCode, b)
	}
	return json.Unmarshal(b, out)
}

// authorization is the Authorization header of every request.
func (l *dpopLoad) authorization() string {
	if l.key != nil {
		return "DPoP " + l.token
	}
	return "Bearer " + l.token
}

// prepare makes the proofs of a run of d and writes them to one file per
// wrk thread: twice what the fastest earlier run suggests, at least
// minProofsPerSecond's worth and at most maxProofs. The bearer load writes
// empty files.
func (l *dpopLoad) prepare(o options, d time.Duration) error {
	n := 0
	if l.key != nil {
		rate := max(2*l.estimate, minProofsPerSecond)
		n = min(int(math.Ceil(rate*d.Seconds()))+2*o.connections, maxProofs)
	}
	start := time.Now()
	proofs := l.makeProofs(n)
	l.made, l.makeTime = n, time.Since(start)
	per := (n + o.threads - 1) / o.threads
	for t := range o.threads {
		chunk := proofs[min(t*per, n):min((t+1)*per, n)]
		data := strings.Join(chunk, "\n") + "\n"
		if err := os.WriteFile(l.proofFile(t), []byte(data), 0o600); err != nil {
			return err
		}
	}
	// The proofs' garbage is not the run's to collect.
	runtime.GC()
	return nil
}

// makeProofs signs n proofs for GET on the guarded route, on every core.
func (l *dpopLoad) makeProofs(n int) []string {
	proofs := make([]string, n)
	htu := l.base + dpopPath
	workers := runtime.NumCPU()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				proofs[i] = l.key.Proof(http.MethodGet, htu, l.token)
			}
		})
	}
	wg.Wait()
	return proofs
}

func (l *dpopLoad) proofFile(thread int) string {
	return filepath.Join(l.dir, l.name+"-proofs-"+strconv.Itoa(thread)+".txt")
}

// writeScript writes the load's wrk script.
func (l *dpopLoad) writeScript() error {
	l.script = filepath.Join(l.dir, l.name+".lua")
	body := fmt.Sprintf(dpopScript, filepath.Join(l.dir, l.name+"-proofs-"), l.authorization(), dpopPath)
	return os.WriteFile(l.script, []byte(body), 0o600)
}

// dpopScript arguments: proof file prefix, Authorization header, path.
// Each thread presents each of its proofs once; past the end it starts
// over, and those requests (replays, answered 401) are counted as
// exhausted. Without proofs it sends the bearer token alone.
const dpopScript = `local threads = {}
local n = 0

function setup(thread)
	thread:set("prooffile", "%[1]s" .. n .. ".txt")
	n = n + 1
	table.insert(threads, thread)
end

function init(args)
	proofs = {}
	for line in io.lines(prooffile) do
		if line ~= "" then proofs[#proofs + 1] = line end
	end
	i, ok, bad, exhausted = 0, 0, 0, 0
	auth = "%[2]s"
end

function request()
	i = i + 1
	local headers = {["Authorization"] = auth}
	if #proofs > 0 then
		if i > #proofs then exhausted = exhausted + 1 end
		headers["DPoP"] = proofs[(i - 1) %% #proofs + 1]
	end
	return wrk.format("GET", "%[3]s", headers)
end

function response(status, headers, body)
	if status == 200 then ok = ok + 1 else bad = bad + 1 end
end

function done(summary, latency, requests)
	local o, b, e = 0, 0, 0
	for _, t in ipairs(threads) do
		o = o + t:get("ok")
		b = b + t:get("bad")
		e = e + t:get("exhausted")
	end
	io.write(string.format("tokengate-dpop: ok=%%d bad=%%d exhausted=%%d\n", o, b, e))
end
`

// parseCounts reads the script's line into r, counts only the 200
// answers in its req/s, and fails when a fresh proof was refused.
func (l *dpopLoad) parseCounts(text string, r *run) error {
	ok, bad, err := scriptCounts("tokengate-dpop", text, r)
	if err != nil {
		return err
	}
	if ok == 0 {
		return fmt.Errorf("no request succeeded (%d refused)", bad)
	}
	// A replayed proof is refused (401); nothing else may be.
	if bad > r.exhausted {
		return fmt.Errorf("%d answers were not 200 with only %d replayed proofs (%d made)", bad, r.exhausted, l.made)
	}
	answered := r.rps
	if r.requests > 0 {
		r.rps *= float64(ok) / float64(r.requests)
	}
	if r.exhausted > 0 {
		l.estimate = max(l.estimate, answered)
	}
	l.estimate = max(l.estimate, r.rps)
	return nil
}

// check sends one request of the load from Go.
func (l *dpopLoad) check() error {
	req, err := http.NewRequest(http.MethodGet, l.base+dpopPath, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", l.authorization())
	if l.key != nil {
		req.Header.Set("DPoP", l.key.Proof(http.MethodGet, l.base+dpopPath, l.token))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != backendBody {
		return fmt.Errorf("%s: GET %s answered %d %s, want 200 and the backend's body", l.name, dpopPath, resp.StatusCode, body)
	}
	return nil
}

// status is the DPoP variant's extra progress text for one run.
func (l *dpopLoad) status(r run) string {
	if l == nil || l.key == nil {
		return ""
	}
	s := fmt.Sprintf("  (%d proofs made in %.1fs", l.made, l.makeTime.Seconds())
	if r.exhausted > 0 {
		s += fmt.Sprintf("; ran out: %d replayed, %d refused", r.exhausted, r.non2xx)
	}
	return s + ")"
}
