package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The OAuth client the refresh variant uses, registered in the Caddyfile.
const (
	benchClient   = "bench-app"
	benchSecret   = "bench-app-secret"
	benchRedirect = "https://bench.example.com/cb"
	// maxRefreshTokens bounds the refresh tokens minted for one run.
	maxRefreshTokens = 200_000
	mintWorkers      = 16
	// warmupPairsPerSecond sizes the warm-up, before any rate is known:
	// above what the endpoint has reached on this machine, so that the
	// warm-up does not run out and its rate sizes the rounds.
	warmupPairsPerSecond = 10_000
)

// refreshLoad drives the token endpoint with the refresh grant: every
// request presents a different refresh token, minted before the run
// through authorize and code exchange, since rotation makes each one
// single-use.
type refreshLoad struct {
	base, dir string
	client    *http.Client
	estimate  float64 // expected pairs per second, for sizing the next run
	measured  float64 // fastest run so far, pairs per second
	minted    int     // tokens of the last run
	mintTime  time.Duration
	// Grants the run has put in the store: families started (one per
	// minted token) and rotations answered.
	families, rotations int64
}

func newRefreshLoad(base, dir string) *refreshLoad {
	return &refreshLoad{base: base, dir: dir,
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: mintWorkers}, Timeout: 30 * time.Second}}
}

// prepare mints enough refresh tokens for a run of d (1.5 times the
// estimate, at least 1000 and at most maxRefreshTokens; the warm-up, with
// no estimate yet, gets warmupPairsPerSecond's worth) and writes them to
// one file per wrk thread.
func (l *refreshLoad) prepare(o options, d time.Duration) error {
	n := int(math.Ceil(l.estimate*d.Seconds()*1.5)) + 2*o.connections
	if l.estimate == 0 {
		n = int(math.Ceil(warmupPairsPerSecond * d.Seconds()))
	}
	n = min(max(n, 1000), maxRefreshTokens)
	start := time.Now()
	tokens, err := l.mint(n)
	if err != nil {
		return err
	}
	l.minted, l.mintTime = n, time.Since(start)
	l.families += int64(n)
	per := (n + o.threads - 1) / o.threads
	for t := range o.threads {
		chunk := tokens[min(t*per, n):min((t+1)*per, n)]
		data := strings.Join(chunk, "\n") + "\n"
		if err := os.WriteFile(l.tokenFile(t), []byte(data), 0o600); err != nil {
			return err
		}
	}
	return nil
}

func (l *refreshLoad) tokenFile(thread int) string {
	return filepath.Join(l.dir, "refresh-"+strconv.Itoa(thread)+".txt")
}

// mint returns n fresh refresh tokens, form-escaped, from parallel
// authorize and exchange requests.
func (l *refreshLoad) mint(n int) ([]string, error) {
	userJWT, err := signUserJWT()
	if err != nil {
		return nil, err
	}
	tokens := make([]string, n)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		next     int
	)
	for range mintWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				stop := firstErr != nil
				mu.Unlock()
				if i >= n || stop {
					return
				}
				tok, err := l.mintOne(userJWT)
				if err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					return
				}
				tokens[i] = url.QueryEscape(tok)
			}
		}()
	}
	wg.Wait()
	return tokens, firstErr
}

// scopeOfflineAccess asks for a refresh token: the bench config has openid
// on, where only a grant with it gets one (OpenID Connect Core 11).
const scopeOfflineAccess = "offline_access"

// mintOne authorizes the bench client for benchUser and exchanges the code.
func (l *refreshLoad) mintOne(userJWT string) (string, error) {
	body, _ := json.Marshal(map[string]string{"client_id": benchClient, "redirect_uri": benchRedirect,
		"response_type": "code", "scope": scopeOfflineAccess + " " + benchScope, "state": "bench"})
	var auth struct {
		RedirectURL string `json:"redirect_url"`
	}
	if err := l.post("/oauth/authorize", string(body), "application/json", "Bearer "+userJWT, &auth); err != nil {
		return "", err
	}
	u, err := url.Parse(auth.RedirectURL)
	if err != nil || u.Query().Get("code") == "" {
		return "", fmt.Errorf("authorize: no code in %q", auth.RedirectURL)
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {u.Query().Get("code")}, "redirect_uri": {benchRedirect}}
	var pair struct {
		RefreshToken string `json:"refresh_token"`
	}
	if err := l.post("/oauth/token", form.Encode(), "application/x-www-form-urlencoded", basicAuth(), &pair); err != nil {
		return "", err
	}
	if pair.RefreshToken == "" {
		return "", fmt.Errorf("exchange: no refresh_token")
	}
	return pair.RefreshToken, nil
}

// post sends body and decodes a 200 JSON answer into out.
func (l *refreshLoad) post(path, body, contentType, authorization string, out any) error {
	req, err := http.NewRequest(http.MethodPost, l.base+path, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Authorization", authorization)
	resp, err := l.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST %s: %d %s", path, resp.StatusCode, b)
	}
	return json.Unmarshal(b, out)
}

// check refreshes one freshly minted token from Go.
func (l *refreshLoad) check() error {
	userJWT, err := signUserJWT()
	if err != nil {
		return err
	}
	tok, err := l.mintOne(userJWT)
	if err != nil {
		return err
	}
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok}}
	var pair struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	if err := l.post("/oauth/token", form.Encode(), "application/x-www-form-urlencoded", basicAuth(), &pair); err != nil {
		return fmt.Errorf("refresh check: %w", err)
	}
	if pair.AccessToken == "" || pair.RefreshToken == "" || pair.RefreshToken == tok {
		return fmt.Errorf("refresh check: no new token pair")
	}
	return nil
}

func basicAuth() string {
	raw := url.QueryEscape(benchClient) + ":" + url.QueryEscape(benchSecret)
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(raw))
}

// writeScript writes the wrk script and returns its path. Each thread
// reads its own token file and presents each token once; past the end it
// starts over, and those requests (reuse, answered 400) are counted as
// exhausted. done prints one line that parseRefreshCounts reads.
func (l *refreshLoad) writeScript() (string, error) {
	script := fmt.Sprintf(refreshScript, filepath.Join(l.dir, "refresh-"), basicAuth())
	path := filepath.Join(l.dir, "refresh.lua")
	return path, os.WriteFile(path, []byte(script), 0o600)
}

// refreshScript arguments: token file prefix, Authorization header.
const refreshScript = `local threads = {}
local n = 0

function setup(thread)
	thread:set("tokfile", "%[1]s" .. n .. ".txt")
	n = n + 1
	table.insert(threads, thread)
end

function init(args)
	toks = {}
	for line in io.lines(tokfile) do
		if line ~= "" then toks[#toks + 1] = line end
	end
	i, ok, bad, exhausted = 0, 0, 0, 0
	headers = {["Authorization"] = "%[2]s", ["Content-Type"] = "application/x-www-form-urlencoded"}
end

function request()
	i = i + 1
	if i > #toks then exhausted = exhausted + 1 end
	local tok = toks[(i - 1) %% #toks + 1]
	return wrk.format("POST", "/oauth/token", headers, "grant_type=refresh_token&refresh_token=" .. tok)
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
	io.write(string.format("tokengate-refresh: ok=%%d bad=%%d exhausted=%%d\n", o, b, e))
end
`

// parseRefreshCounts reads the script's line into r, turns its req/s into
// token pairs issued per second, and fails when a fresh token was refused.
func (l *refreshLoad) parseRefreshCounts(text string, r *run) error {
	ok, bad, err := scriptCounts("tokengate-refresh", text, r)
	if err != nil {
		return err
	}
	l.rotations += ok
	if ok == 0 {
		return fmt.Errorf("no refresh succeeded (%d refused)", bad)
	}
	if bad > r.exhausted {
		return fmt.Errorf("%d answers were not 200 with only %d reused tokens (%d minted)", bad, r.exhausted, l.minted)
	}
	answered := r.rps
	if r.requests > 0 {
		r.rps *= float64(ok) / float64(r.requests)
	}
	// The fastest run so far sizes the next: a slow one must not leave the
	// next short of tokens. One that ran out measured less than the
	// endpoint can do; the rate of all its answers, refusals included, is
	// the bound used for it.
	if r.exhausted > 0 {
		l.measured = max(l.measured, answered)
	}
	l.measured = max(l.measured, r.rps)
	l.estimate = l.measured
	return nil
}

// refreshName is the token endpoint variant's name.
func refreshName(o options) string {
	return "token endpoint (refresh grant, " + storeName(o) + ")"
}

// storeName names the database the run's store is on.
func storeName(o options) string {
	if o.postgres {
		return "PostgreSQL"
	}
	return "SQLite"
}

// status is the refresh variant's extra progress text for one run: how
// many tokens were minted, in how long, and any that ran short.
func (l *refreshLoad) status(r run) string {
	if l == nil {
		return ""
	}
	s := fmt.Sprintf("  (%d tokens minted in %.1fs", l.minted, l.mintTime.Seconds())
	if r.exhausted > 0 {
		s += fmt.Sprintf("; ran out: %d reused, %d refused", r.exhausted, r.non2xx)
	}
	return s + ")"
}

// refreshNote says how the token endpoint variant was measured and whether
// any run ran out of refresh tokens.
func (rep *report) refreshNote() string {
	s := rep.byName[refreshName(rep.o)]
	var exhausted, refused int64
	for _, r := range s.result {
		exhausted += r.exhausted
		refused += r.non2xx
	}
	note := "The token endpoint's req/s counts 200 answers (token pairs issued) only; every request presented a different, freshly minted refresh token."
	if exhausted > 0 {
		note += fmt.Sprintf(" Some runs ran out of minted tokens: %d requests reused one, %d answers were refused; the figure counts only the 200s.", exhausted, refused)
	} else {
		note += " No run ran out of tokens, and every answer was 200."
	}
	if l := s.refresh; l != nil {
		note += fmt.Sprintf(" The store grows as the run goes: by its end it held %d token families and about %d tokens (an access and a refresh token per family and per rotation).",
			l.families, 2*(l.families+l.rotations))
	}
	return note
}

// shortName is the variant's label in the SVG, where the token endpoint's
// full name does not fit.
func shortName(name string) string {
	if strings.HasPrefix(name, "token endpoint") {
		return "token (refresh)"
	}
	if name == exchangeIDTokenName {
		return "exchange + ID token"
	}
	return name
}
