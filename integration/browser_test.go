package integration

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/websocket"
)

// chromiumPath is Debian's Chromium (package chromium).
const chromiumPath = "/usr/bin/chromium"

// TestBrowserConsentFlow drives the browser flow (GET authorize, consent)
// in a real headless Chromium over the Chrome DevTools Protocol: the user's
// session cookie is set, the authorize URL opened, the consent page
// rendered (and captured), Approve clicked, and the browser must land on
// the client's redirect URI with a code and the state.
//
// Without Chromium the test skips, unless TOKENGATE_REQUIRE_BROWSER=1.
// Screenshots go to the test's temporary directory and, when
// TOKENGATE_ARTIFACTS_DIR is set, are copied there.
func TestBrowserConsentFlow(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("TOKENGATE_REQUIRE_BROWSER") == "1" {
			t.Fatalf("TOKENGATE_REQUIRE_BROWSER=1 but %s is missing: apt-get install -y chromium", chromiumPath)
		}
		t.Skipf("%s is missing (apt-get install -y chromium); set TOKENGATE_REQUIRE_BROWSER=1 to fail instead", chromiumPath)
	}

	f := startBrowserFlow(t, "sqlite "+t.TempDir()+"/tg.db", true)

	// The client's redirect target, recording what arrives.
	arrived := make(chan url.Values, 4)
	client := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/callback" {
			http.NotFound(w, r)
			return
		}
		arrived <- r.URL.Query()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, "<!DOCTYPE html><title>Signed in</title><p>Back at the app.</p>")
	}))
	t.Cleanup(client.Close)
	callback := client.URL + "/callback"

	browser := startChromium(t)
	page := browser.page(t)
	// One deadline for the whole flow: a generous one, as Chromium renders
	// slowly on a loaded machine and the flow ends as soon as it is done.
	ctx, cancel := context.WithTimeout(context.Background(), browserFlowTimeout)
	defer cancel()

	page.call(ctx, t, "Network.setCookie", map[string]any{
		"name": browserUserCookie, "value": userJWT(t, "browser-user"), "url": f.base + "/",
		"httpOnly": true, "sameSite": "Lax",
	}, nil)

	_, challenge := browserPKCE("browser")
	state := "browser-state-<&>"
	q := browserAuthorizeQuery(callback, "chargers:read sessions:read energy:read", state, challenge)
	authorizeURL := f.base + "/oauth/authorize?" + q.Encode()

	artifacts := t.TempDir()
	for _, vp := range []struct {
		name          string
		width, height int
		mobile        bool
	}{
		{"desktop", 1280, 860, false},
		{"mobile", 390, 844, true},
	} {
		page.call(ctx, t, "Emulation.setDeviceMetricsOverride", map[string]any{
			"width": vp.width, "height": vp.height, "deviceScaleFactor": 1, "mobile": vp.mobile,
		}, nil)
		page.call(ctx, t, "Page.navigate", map[string]any{"url": authorizeURL}, nil)
		page.waitFor(ctx, t, "the consent page", `document.readyState === "complete" && !!document.querySelector("button[value=approve]")`)

		// The nonce'd <style> applied: the CSP let it through.
		var radius string
		page.eval(ctx, t, `getComputedStyle(document.querySelector("main")).borderRadius`, &radius)
		if radius != "16px" {
			t.Errorf("%s: the page's style was not applied (border-radius %q): blocked by the CSP?", vp.name, radius)
		}
		var text string
		page.eval(ctx, t, `document.body.innerText`, &text)
		for _, want := range []string{"Home Energy App", "Charger status and active sessions", "Charging session history", "Energy statistics and aggregates", "Approve", "Deny"} {
			if !strings.Contains(text, want) {
				t.Errorf("%s: the rendered page lacks %q:\n%s", vp.name, want, text)
			}
		}
		var fits bool
		page.eval(ctx, t, `document.documentElement.scrollWidth <= window.innerWidth`, &fits)
		if !fits {
			t.Errorf("%s: the page scrolls sideways at width %d", vp.name, vp.width)
		}

		var shot struct {
			Data string `json:"data"`
		}
		page.call(ctx, t, "Page.captureScreenshot", map[string]any{"format": "png"}, &shot)
		png, err := base64.StdEncoding.DecodeString(shot.Data)
		if err != nil || len(png) < 8 || string(png[1:4]) != "PNG" {
			t.Fatalf("%s: the screenshot is not a PNG (%v)", vp.name, err)
		}
		saveBrowserArtifact(t, artifacts, "consent-page-"+vp.name+".png", png)
	}

	var clicked bool
	page.eval(ctx, t, `(() => { const b = document.querySelector("button[value=approve]"); if (!b) return false; b.click(); return true; })()`, &clicked)
	if !clicked {
		t.Fatal("no Approve button to click")
	}
	var got url.Values
	select {
	case got = <-arrived:
	case <-ctx.Done():
		t.Fatal("the browser never arrived at the client's redirect URI")
	}
	if code := got.Get("code"); !regexp.MustCompile(`^tgc_[A-Za-z0-9_-]+$`).MatchString(code) {
		t.Errorf("redirect query %v: no code", got)
	}
	if got.Get("state") != state || got.Get("iss") != f.base || got.Get("error") != "" {
		t.Errorf("redirect query %v: want state %q and iss %q", got, state, f.base)
	}
	page.waitFor(ctx, t, "the client's page", fmt.Sprintf(`location.href.startsWith(%q) && document.readyState === "complete"`, callback+"?"))
	var shot struct {
		Data string `json:"data"`
	}
	page.call(ctx, t, "Page.captureScreenshot", map[string]any{"format": "png"}, &shot)
	if png, err := base64.StdEncoding.DecodeString(shot.Data); err == nil {
		saveBrowserArtifact(t, artifacts, "after-approve.png", png)
	}

	// Consent is remembered: the same request goes straight to the client.
	page.call(ctx, t, "Page.navigate", map[string]any{"url": authorizeURL}, nil)
	select {
	case got = <-arrived:
		if !strings.HasPrefix(got.Get("code"), "tgc_") || got.Get("state") != state {
			t.Errorf("second visit: redirect query %v", got)
		}
	case <-ctx.Done():
		t.Fatal("the second visit did not go straight to the client")
	}

	// A new scope: the consent page again, the earlier ones marked.
	q.Set("scope", q.Get("scope")+" chargers:write")
	page.call(ctx, t, "Page.navigate", map[string]any{"url": f.base + "/oauth/authorize?" + q.Encode()}, nil)
	page.waitFor(ctx, t, "the consent page for a new scope", `document.readyState === "complete" && !!document.querySelector("button[value=approve]")`)
	var marked int
	page.eval(ctx, t, `document.querySelectorAll(".tag").length`, &marked)
	if marked != 3 {
		t.Errorf("%d scopes marked as already allowed, want 3", marked)
	}
	page.call(ctx, t, "Page.captureScreenshot", map[string]any{"format": "png"}, &shot)
	if png, err := base64.StdEncoding.DecodeString(shot.Data); err == nil {
		saveBrowserArtifact(t, artifacts, "consent-page-new-scope.png", png)
	}
}

// saveBrowserArtifact writes a file to dir and, when TOKENGATE_ARTIFACTS_DIR is
// set, copies it there.
func saveBrowserArtifact(t *testing.T, dir, name string, data []byte) {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("saved %s", path)
	if out := os.Getenv("TOKENGATE_ARTIFACTS_DIR"); out != "" {
		if err := os.MkdirAll(out, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(out, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("copied to %s", filepath.Join(out, name))
	}
}

// Deadlines of the browser test. They bound waits for Chromium, not how
// fast it is: a loaded machine starts and renders slowly, and every wait
// ends as soon as what it waits for has happened.
const (
	browserFlowTimeout  = 3 * time.Minute
	browserStartTimeout = 60 * time.Second
	// browserExitTimeout bounds removing the profile of a killed browser
	// while its helpers finish exiting.
	browserExitTimeout = 30 * time.Second
)

// chromium is a running headless Chromium.
type chromium struct {
	devtools string // http://127.0.0.1:<port>
}

// removeProfile removes a stopped browser's profile directory, retrying
// while helper processes that were killed with it finish exiting.
func removeProfile(t *testing.T, dir string) {
	deadline := time.Now().Add(browserExitTimeout)
	for {
		err := os.RemoveAll(dir)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("removing the browser profile: %v", err)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startChromium starts headless Chromium with a fresh profile and the
// DevTools endpoint on a free loopback port, which it reads from stderr.
func startChromium(t *testing.T) *chromium {
	t.Helper()
	profile, err := os.MkdirTemp("", "tokengate-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(chromiumPath,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-extensions", "--disable-dev-shm-usage", "--no-default-browser-check",
		"--user-data-dir="+profile,
		"--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
		"--remote-allow-origins="+cdpOrigin,
		"about:blank")
	// A process group of its own: Chromium's helper processes (zygote,
	// renderers) write into the profile too, and must stop with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(profile)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
		removeProfile(t, profile)
	})
	found := make(chan string, 1)
	var log strings.Builder
	var logMu sync.Mutex
	go func() {
		sc := bufio.NewScanner(stderr)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			logMu.Lock()
			log.WriteString(line + "\n")
			logMu.Unlock()
			if ws, ok := strings.CutPrefix(line, "DevTools listening on "); ok && !sent {
				found <- strings.TrimSpace(ws)
				sent = true
			}
		}
	}()
	select {
	case ws := <-found:
		u, err := url.Parse(ws)
		if err != nil {
			t.Fatalf("DevTools URL %q: %v", ws, err)
		}
		return &chromium{devtools: "http://" + u.Host}
	case <-time.After(browserStartTimeout):
		logMu.Lock()
		defer logMu.Unlock()
		t.Fatalf("Chromium did not print its DevTools URL within %v; stderr:\n%s", browserStartTimeout, log.String())
	}
	return nil
}

// cdpOrigin is the Origin the DevTools WebSocket client sends, which
// Chromium must be told to allow (--remote-allow-origins).
const cdpOrigin = "http://127.0.0.1"

// page connects to the browser's first page target.
func (c *chromium) page(t *testing.T) *cdpConn {
	t.Helper()
	var targets []struct {
		Type, URL            string
		WebSocketDebuggerURL string `json:"webSocketDebuggerUrl"`
	}
	deadline := time.Now().Add(browserStartTimeout)
	for {
		resp, err := http.Get(c.devtools + "/json/list")
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&targets)
			resp.Body.Close()
		}
		for _, tg := range targets {
			if tg.Type == "page" && tg.WebSocketDebuggerURL != "" {
				conn, err := dialCDP(tg.WebSocketDebuggerURL)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(conn.close)
				return conn
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no page target at %s/json/list (%v)", c.devtools, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// cdpConn is a minimal Chrome DevTools Protocol client: commands and their
// replies, matched by id; events are ignored.
type cdpConn struct {
	ws      *websocket.Conn
	mu      sync.Mutex
	nextID  int
	pending map[int]chan cdpReply
	done    chan struct{}
	err     error
}

type cdpReply struct {
	ID     int             `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func dialCDP(wsURL string) (*cdpConn, error) {
	cfg, err := websocket.NewConfig(wsURL, cdpOrigin)
	if err != nil {
		return nil, err
	}
	ws, err := websocket.DialConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to DevTools at %s: %w", wsURL, err)
	}
	ws.MaxPayloadBytes = 64 << 20
	c := &cdpConn{ws: ws, pending: map[int]chan cdpReply{}, done: make(chan struct{})}
	go c.read()
	return c, nil
}

func (c *cdpConn) read() {
	defer close(c.done)
	for {
		var msg []byte
		if err := websocket.Message.Receive(c.ws, &msg); err != nil {
			c.mu.Lock()
			c.err = err
			c.mu.Unlock()
			return
		}
		var r cdpReply
		if json.Unmarshal(msg, &r) != nil || r.ID == 0 {
			continue // an event
		}
		c.mu.Lock()
		ch := c.pending[r.ID]
		delete(c.pending, r.ID)
		c.mu.Unlock()
		if ch != nil {
			ch <- r
		}
	}
}

func (c *cdpConn) close() { c.ws.Close() }

// call sends one command and decodes its result into out (when not nil).
func (c *cdpConn) call(ctx context.Context, t *testing.T, method string, params any, out any) {
	t.Helper()
	if err := c.send(ctx, method, params, out); err != nil {
		t.Fatal(err)
	}
}

func (c *cdpConn) send(ctx context.Context, method string, params any, out any) error {
	c.mu.Lock()
	c.nextID++
	id := c.nextID
	ch := make(chan cdpReply, 1)
	c.pending[id] = ch
	c.mu.Unlock()
	msg, err := json.Marshal(map[string]any{"id": id, "method": method, "params": params})
	if err != nil {
		return err
	}
	if err := websocket.Message.Send(c.ws, string(msg)); err != nil {
		return fmt.Errorf("CDP %s: %w", method, err)
	}
	select {
	case r := <-ch:
		if r.Error != nil {
			return fmt.Errorf("CDP %s: %d %s", method, r.Error.Code, r.Error.Message)
		}
		if out != nil {
			return json.Unmarshal(r.Result, out)
		}
		return nil
	case <-c.done:
		return fmt.Errorf("CDP %s: connection closed: %v", method, c.err)
	case <-ctx.Done():
		return fmt.Errorf("CDP %s: %w", method, ctx.Err())
	}
}

// eval evaluates a JavaScript expression in the page and decodes its value
// into out.
func (c *cdpConn) eval(ctx context.Context, t *testing.T, expr string, out any) {
	t.Helper()
	if err := c.evalErr(ctx, expr, out); err != nil {
		t.Fatal(err)
	}
}

func (c *cdpConn) evalErr(ctx context.Context, expr string, out any) error {
	var res struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	if err := c.send(ctx, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true}, &res); err != nil {
		return err
	}
	if res.ExceptionDetails != nil {
		return fmt.Errorf("evaluating %s: %s", expr, res.ExceptionDetails.Text)
	}
	if out == nil || len(res.Result.Value) == 0 {
		return nil
	}
	return json.Unmarshal(res.Result.Value, out)
}

// waitFor polls a JavaScript condition until it is true. Evaluation
// errors while a navigation replaces the page are retried.
func (c *cdpConn) waitFor(ctx context.Context, t *testing.T, what, cond string) {
	t.Helper()
	var last error
	for {
		var ok bool
		err := c.evalErr(ctx, "(() => { try { return !!("+cond+"); } catch (e) { return false; } })()", &ok)
		if err == nil && ok {
			return
		}
		if err != nil {
			last = err
		}
		if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
			// Where the page is, for the message; a browser that no
			// longer answers must not hold the test here.
			hctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			var href string
			_ = c.evalErr(hctx, "location.href", &href)
			cancel()
			t.Fatalf("waiting for %s: timed out at %s (%v)", what, href, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
