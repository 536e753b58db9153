package main

import (
	"encoding/json"
	"fmt"
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

// The code exchange variants compare, at the token endpoint, the
// authorization_code grant of a grant with openid, whose answer carries an
// ID token (an RS256 signature per request, OpenID Connect Core 3.1.3.3),
// with the same grant without openid. Each request redeems its own code,
// since codes are single-use: codes are made through the dashboard flow
// before each run, outside its timing and CPU accounting, as many as the
// fastest earlier run suggests, and a wrk Lua script hands each thread its
// own slice, as for the refresh variant.

// The code exchange variants' names.
const (
	exchangeName        = "code exchange"
	exchangeIDTokenName = "code exchange + ID token"
)

const (
	// maxCodes bounds the codes made for one run; each lives code_ttl.
	maxCodes = 200_000
	// minCodesPerSecond sizes a run before any rate is known.
	minCodesPerSecond = 2_000
)

// exchangeLoad drives the token endpoint with the authorization_code
// grant for scope.
type exchangeLoad struct {
	base, dir, name, scope string
	idToken                bool // answers must carry an ID token
	client                 *http.Client
	estimate               float64 // fastest run so far, exchanges per second
	made                   int     // codes of the last run
	makeTime               time.Duration
	script                 string
}

// newExchangeLoads returns the load without ID tokens and the one with.
func newExchangeLoads(base, dir string) (plain, withIDToken *exchangeLoad, err error) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: mintWorkers}, Timeout: 30 * time.Second}
	plain = &exchangeLoad{base: base, dir: dir, name: "exchange", scope: benchScope, client: client}
	withIDToken = &exchangeLoad{base: base, dir: dir, name: "exchange-idtoken", scope: "openid " + benchScope, idToken: true, client: client}
	for _, l := range []*exchangeLoad{plain, withIDToken} {
		if err := l.writeScript(); err != nil {
			return nil, nil, err
		}
	}
	return plain, withIDToken, nil
}

// prepare makes the codes of a run of d and writes them to one file per
// wrk thread: 1.5 times what the fastest earlier run suggests, at least
// minCodesPerSecond's worth and at most maxCodes.
func (l *exchangeLoad) prepare(o options, d time.Duration) error {
	rate := max(1.5*l.estimate, minCodesPerSecond)
	n := min(int(math.Ceil(rate*d.Seconds()))+2*o.connections, maxCodes)
	start := time.Now()
	codes, err := l.makeCodes(n)
	if err != nil {
		return err
	}
	l.made, l.makeTime = n, time.Since(start)
	per := (n + o.threads - 1) / o.threads
	for t := range o.threads {
		chunk := codes[min(t*per, n):min((t+1)*per, n)]
		if err := os.WriteFile(l.codeFile(t), []byte(strings.Join(chunk, "\n")+"\n"), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// makeCodes returns n fresh codes, form-escaped, from parallel
// dashboard-flow requests.
func (l *exchangeLoad) makeCodes(n int) ([]string, error) {
	userJWT, err := signUserJWT()
	if err != nil {
		return nil, err
	}
	codes := make([]string, n)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for w := range mintWorkers {
		wg.Go(func() {
			for i := w; i < n; i += mintWorkers {
				code, err := l.code(userJWT)
				if err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					return
				}
				codes[i] = url.QueryEscape(code)
			}
		})
	}
	wg.Wait()
	return codes, firstErr
}

// code authorizes the bench client for benchUser and l.scope.
func (l *exchangeLoad) code(userJWT string) (string, error) {
	body, _ := json.Marshal(map[string]string{"client_id": benchClient, "redirect_uri": benchRedirect,
		"response_type": "code", "scope": l.scope, "state": "bench", "nonce": "bench"})
	var auth struct {
		RedirectURL string `json:"redirect_url"`
	}
	if err := postJSONWith(l.client, l.base+"/oauth/authorize", string(body), "application/json",
		map[string]string{"Authorization": "Bearer " + userJWT}, &auth); err != nil {
		return "", err
	}
	u, err := url.Parse(auth.RedirectURL)
	if err != nil || u.Query().Get("code") == "" {
		return "", fmt.Errorf("authorize: no code in %q", auth.RedirectURL)
	}
	return u.Query().Get("code"), nil
}

func (l *exchangeLoad) codeFile(thread int) string {
	return filepath.Join(l.dir, l.name+"-codes-"+strconv.Itoa(thread)+".txt")
}

// writeScript writes the load's wrk script.
func (l *exchangeLoad) writeScript() error {
	l.script = filepath.Join(l.dir, l.name+".lua")
	body := fmt.Sprintf(exchangeScript, filepath.Join(l.dir, l.name+"-codes-"), basicAuth(), url.QueryEscape(benchRedirect))
	return os.WriteFile(l.script, []byte(body), 0o600)
}

// exchangeScript arguments: code file prefix, Authorization header, the
// form-escaped redirect URI. Each thread redeems each of its codes once;
// past the end it starts over, and those requests (reuse, answered 400)
// are counted as exhausted.
const exchangeScript = `local threads = {}
local n = 0

function setup(thread)
	thread:set("codefile", "%[1]s" .. n .. ".txt")
	n = n + 1
	table.insert(threads, thread)
end

function init(args)
	codes = {}
	for line in io.lines(codefile) do
		if line ~= "" then codes[#codes + 1] = line end
	end
	i, ok, bad, exhausted = 0, 0, 0, 0
	headers = {["Authorization"] = "%[2]s", ["Content-Type"] = "application/x-www-form-urlencoded"}
end

function request()
	i = i + 1
	if i > #codes then exhausted = exhausted + 1 end
	local code = codes[(i - 1) %% #codes + 1]
	return wrk.format("POST", "/oauth/token", headers, "grant_type=authorization_code&redirect_uri=%[3]s&code=" .. code)
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
	io.write(string.format("tokengate-exchange: ok=%%d bad=%%d exhausted=%%d\n", o, b, e))
end
`

// parseCounts reads the script's line into r, counts only the 200
// answers in its req/s, and fails when a fresh code was refused.
func (l *exchangeLoad) parseCounts(text string, r *run) error {
	ok, bad, err := scriptCounts("tokengate-exchange", text, r)
	if err != nil {
		return err
	}
	if ok == 0 {
		return fmt.Errorf("no exchange succeeded (%d refused)", bad)
	}
	if bad > r.exhausted {
		return fmt.Errorf("%d answers were not 200 with only %d reused codes (%d made)", bad, r.exhausted, l.made)
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

// check redeems one code from Go and looks at the answer.
func (l *exchangeLoad) check() error {
	userJWT, err := signUserJWT()
	if err != nil {
		return err
	}
	code, err := l.code(userJWT)
	if err != nil {
		return err
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {benchRedirect}}
	var pair struct {
		AccessToken string `json:"access_token"`
		IDToken     string `json:"id_token"`
	}
	if err := postJSONWith(l.client, l.base+"/oauth/token", form.Encode(), "application/x-www-form-urlencoded",
		map[string]string{"Authorization": basicAuth()}, &pair); err != nil {
		return fmt.Errorf("%s check: %w", l.name, err)
	}
	if pair.AccessToken == "" || (pair.IDToken != "") != l.idToken {
		return fmt.Errorf("%s check: access token %v, ID token %v; want an ID token: %v", l.name, pair.AccessToken != "", pair.IDToken != "", l.idToken)
	}
	return nil
}

// status is the exchange variants' extra progress text for one run.
func (l *exchangeLoad) status(r run) string {
	if l == nil {
		return ""
	}
	s := fmt.Sprintf("  (%d codes made in %.1fs", l.made, l.makeTime.Seconds())
	if r.exhausted > 0 {
		s += fmt.Sprintf("; ran out: %d reused, %d refused", r.exhausted, r.non2xx)
	}
	return s + ")"
}

// postJSONWith is postJSON on client.
func postJSONWith(client *http.Client, u, body, contentType string, headers map[string]string, out any) error {
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", contentType)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var raw json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
		return fmt.Errorf("POST %s: %d, body not JSON: %w", u, resp.StatusCode, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST %s: %d %s", u, resp.StatusCode, raw)
	}
	return json.Unmarshal(raw, out)
}
