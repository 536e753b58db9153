package integration

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestPersonalTokenLifecycle walks a personal token's life: activate, use,
// read, rotate, deactivate, each change taking effect on the next request.
func TestPersonalTokenLifecycle(t *testing.T) {
	forEachStore(t, func(t *testing.T, database string) {
		g := startGateway(t, database, "")
		personalTokenLifecycle(t, g)
	})
}

func personalTokenLifecycle(t *testing.T, g *gateway) {
	user := "user-lifecycle"
	jwtAuth := []string{"Authorization", "Bearer " + userJWT(t, user)}
	endpoint := g.base + "/api-token"
	sessions := g.base + "/functions/v1/api/sessions"

	r := do(t, "GET", endpoint, "", jwtAuth...)
	if r.status != 200 || r.body != `{"active":false}` {
		t.Fatalf("GET before activation: %d %s", r.status, r.body)
	}
	checkNoStore(t, r)

	r = do(t, "POST", endpoint, "", jwtAuth...)
	if r.status != 201 {
		t.Fatalf("POST: %d %s", r.status, r.body)
	}
	checkNoStore(t, r)
	created := r.decode(t)
	first, _ := created["token"].(string)
	if !strings.HasPrefix(first, "tgp_") {
		t.Fatalf("token %q has no tgp_ prefix", first)
	}
	if _, err := time.Parse(time.RFC3339, created["created_at"].(string)); err != nil {
		t.Errorf("created_at: %v", err)
	}

	r = do(t, "GET", endpoint, "", jwtAuth...)
	status := r.decode(t)
	if status["active"] != true || status["hint"] != first[:8] || status["last_used_at"] != nil {
		t.Errorf("GET after activation: %s", r.body)
	}
	if strings.Contains(r.body, first) {
		t.Errorf("GET shows the token again: %s", r.body)
	}

	if r := do(t, "GET", sessions, "", "Authorization", "Bearer "+first); r.status != 200 {
		t.Fatalf("first token: %d %s", r.status, r.body)
	}
	if got := g.sessions.last(t).Header.Get("X-Authenticated-Userid"); got != user {
		t.Errorf("backend saw user %q", got)
	}
	// last_used_at is written off the request path, from a queue flushed
	// about once a second; no bound is promised.
	eventually(t, readyTimeout, "last_used_at set after a use", func() bool {
		s := do(t, "GET", endpoint, "", jwtAuth...).decode(t)
		v, ok := s["last_used_at"].(string)
		if !ok {
			return false
		}
		_, err := time.Parse(time.RFC3339, v)
		return err == nil
	})

	// Rotate: the old token is refused on the very next request.
	r = do(t, "POST", endpoint, "", jwtAuth...)
	second, _ := r.decode(t)["token"].(string)
	if r.status != 201 || second == first {
		t.Fatalf("rotate: %d %s", r.status, r.body)
	}
	if r := do(t, "GET", sessions, "", "Authorization", "Bearer "+first); r.status != 401 {
		t.Errorf("rotated token still accepted: %d", r.status)
	}
	if r := do(t, "GET", sessions, "", "Authorization", "Bearer "+second); r.status != 200 {
		t.Errorf("new token refused: %d %s", r.status, r.body)
	}

	// Deactivate.
	r = do(t, "DELETE", endpoint, "", jwtAuth...)
	if r.status != 204 || r.body != "" {
		t.Fatalf("DELETE: %d %q", r.status, r.body)
	}
	checkNoStore(t, r)
	if r := do(t, "GET", sessions, "", "Authorization", "Bearer "+second); r.status != 401 {
		t.Errorf("deactivated token still accepted: %d", r.status)
	}
	if r := do(t, "GET", endpoint, "", jwtAuth...); r.body != `{"active":false}` {
		t.Errorf("GET after DELETE: %s", r.body)
	}
}

// TestPersonalTokenConcurrentRotation: concurrent calls to api_token leave
// exactly one active token.
func TestPersonalTokenConcurrentRotation(t *testing.T) {
	forEachStore(t, func(t *testing.T, database string) {
		g := startGateway(t, database, "")
		auth := []string{"Authorization", "Bearer " + userJWT(t, "user-race")}
		const n = 10
		tokens := make([]string, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				// send and t.Error: t.Fatal must not be called from
				// another goroutine than the test's.
				r, err := send(http.DefaultClient, "POST", g.base+"/api-token", "", auth...)
				if err != nil || r.status != 201 {
					t.Errorf("POST: %d %s %v", r.status, r.body, err)
					return
				}
				var created struct {
					Token string `json:"token"`
				}
				if err := json.Unmarshal([]byte(r.body), &created); err != nil || created.Token == "" {
					t.Errorf("POST: no token in %s", r.body)
					return
				}
				tokens[i] = created.Token
			}()
		}
		close(start)
		wg.Wait()
		if t.Failed() {
			return
		}
		working := 0
		for _, tok := range tokens {
			if do(t, "GET", g.base+"/functions/v1/api/sessions", "", "Authorization", "Bearer "+tok).status == 200 {
				working++
			}
		}
		if working != 1 {
			t.Errorf("%d of %d concurrently issued tokens work, want exactly 1", working, n)
		}
	})
}

// TestPersonalTokenEndpointRefusals: the endpoint needs a valid user JWT and
// answers only GET, POST and DELETE.
func TestPersonalTokenEndpointRefusals(t *testing.T) {
	g := startGateway(t, "sqlite "+t.TempDir()+"/tg.db", "")
	endpoint := g.base + "/api-token"
	expired := expiredUserJWT(t, "user-x")
	for _, c := range []struct {
		name    string
		method  string
		headers []string
		status  int
	}{
		{"no JWT", "POST", nil, 401},
		{"expired JWT", "POST", []string{"Authorization", "Bearer " + expired}, 401},
		{"JWT signed with another secret", "POST", []string{"Authorization", "Bearer " + foreignJWT(t, "user-x")}, 401},
		{"API token instead of JWT", "POST", []string{"Authorization", "Bearer " + g.personalToken(t, "user-y")}, 401},
		{"PUT", "PUT", []string{"Authorization", "Bearer " + userJWT(t, "user-x")}, 405},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := do(t, c.method, endpoint, "", c.headers...)
			if r.status != c.status {
				t.Fatalf("got %d %s, want %d", r.status, r.body, c.status)
			}
			if r.status == 401 && r.decode(t)["error"] != "unauthorized" {
				t.Errorf("body %s", r.body)
			}
			if strings.Contains(r.body, expired) {
				t.Errorf("the JWT is echoed back")
			}
			checkNoStore(t, r)
		})
	}
}

func checkNoStore(t *testing.T, r response) {
	t.Helper()
	if r.header.Get("Cache-Control") != "no-store" || r.header.Get("Pragma") != "no-cache" {
		t.Errorf("missing no-store headers: %v", r.header)
	}
}

// TestPersonalTokenChunkedBodyOverLimit: request bodies are limited to
// 64 KiB. A POST whose body has no Content-Length (chunked) and runs past
// the limit gets 413 and does not rotate the token.
func TestPersonalTokenChunkedBodyOverLimit(t *testing.T) {
	g := startGateway(t, "sqlite "+t.TempDir()+"/tg.db", "")
	user := "user-chunked"
	old := g.personalToken(t, user)
	jwtAuth := []string{"Authorization", "Bearer " + userJWT(t, user)}
	before := do(t, "GET", g.base+"/api-token", "", jwtAuth...)

	// io.MultiReader hides the length, so the request goes out chunked.
	body := io.MultiReader(strings.NewReader(strings.Repeat("x", 70<<10)))
	req, err := http.NewRequest("POST", g.base+"/api-token", body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = -1
	req.Header.Set("Authorization", "Bearer "+userJWT(t, user))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked 70 KiB POST: %d, want 413", resp.StatusCode)
	}
	if strings.Contains(string(b), "tgp_") {
		t.Fatal("the refusal carries a token")
	}
	if r := do(t, "GET", g.base+"/functions/v1/api/sessions", "", "Authorization", "Bearer "+old); r.status != 200 {
		t.Fatalf("the old token after the refused POST: %d %s", r.status, r.body)
	}
	if after := do(t, "GET", g.base+"/api-token", "", jwtAuth...); after.body != before.body {
		t.Errorf("token status changed: %s, was %s", after.body, before.body)
	}
}
