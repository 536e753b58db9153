package integration

import (
	"net/http"
	"net/url"
	"sync"
	"testing"

	"golang.org/x/oauth2"
)

const racers = 20

// race sends the same token request racers times at once and returns the
// answers.
func race(t *testing.T, g *gateway, form url.Values) []response {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: racers}}
	defer client.CloseIdleConnections()
	headers := append(basicAuth("home-app", homeSecret), "Content-Type", "application/x-www-form-urlencoded")
	out := make([]response, racers)
	errs := make([]error, racers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			out[i], errs[i] = send(client, "POST", g.base+"/oauth/token", form.Encode(), headers...)
		}()
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func okAnswers(t *testing.T, rs []response) []map[string]any {
	t.Helper()
	var ok []map[string]any
	for _, r := range rs {
		switch r.status {
		case 200:
			ok = append(ok, r.decode(t))
		case 400:
			if e := r.decode(t)["error"]; e != "invalid_grant" {
				t.Errorf("a losing request got %v", e)
			}
		default:
			t.Errorf("status %d: %s", r.status, r.body)
		}
	}
	return ok
}

// TestOAuthRaces: N requests racing with one code or one refresh token
// (docs/reference.md): exactly one wins, and the refresh losers count as reuse.
func TestOAuthRaces(t *testing.T) {
	forEachStore(t, func(t *testing.T, database string) {
		g := startGateway(t, database, oauthClients)
		chargers := g.base + "/functions/v1/api/chargers"

		verifier := oauth2.GenerateVerifier()
		code := authorizeJSON(t, g, "user-race", "home-app", homeRedirect, "chargers:read", verifier)
		ok := okAnswers(t, race(t, g, url.Values{"grant_type": {"authorization_code"}, "code": {code},
			"redirect_uri": {homeRedirect}, "code_verifier": {verifier}}))
		if len(ok) != 1 {
			t.Fatalf("%d of %d code exchanges succeeded", len(ok), racers)
		}

		// The losers replayed a consumed code, which revokes what it produced
		// (RFC 6749 4.1.2).
		if r := do(t, "GET", chargers, "", "Authorization", "Bearer "+ok[0]["access_token"].(string)); r.status != 401 {
			t.Errorf("the code race winner's access token: %d", r.status)
		}

		verifier = oauth2.GenerateVerifier()
		code = authorizeJSON(t, g, "user-race", "home-app", homeRedirect, "chargers:read", verifier)
		_, refresh := exchangeCode(t, g, code, verifier)
		ok = okAnswers(t, race(t, g, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}))
		if len(ok) != 1 {
			t.Fatalf("%d of %d refreshes succeeded", len(ok), racers)
		}
		if r := do(t, "GET", chargers, "", "Authorization", "Bearer "+ok[0]["access_token"].(string)); r.status != 401 {
			t.Errorf("the winner's access token after the reuse: %d", r.status)
		}
		r := tokenRequest(t, g, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {ok[0]["refresh_token"].(string)}}, basicAuth("home-app", homeSecret)...)
		expectOAuthError(t, r, 400, "invalid_grant")
	})
}

// TestOAuthRefreshGraceRace: with refresh_grace, parallel refreshes all get
// the same new pair, and it works.
func TestOAuthRefreshGraceRace(t *testing.T) {
	forEachStore(t, func(t *testing.T, database string) {
		g := startGateway(t, database, oauthClients+"\n\t\trefresh_grace 30s")
		verifier := oauth2.GenerateVerifier()
		code := authorizeJSON(t, g, "user-grace", "home-app", homeRedirect, "chargers:read", verifier)
		_, refresh := exchangeCode(t, g, code, verifier)

		ok := okAnswers(t, race(t, g, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}))
		if len(ok) != racers {
			t.Fatalf("%d of %d refreshes within the grace succeeded", len(ok), racers)
		}
		for _, m := range ok[1:] {
			if m["access_token"] != ok[0]["access_token"] || m["refresh_token"] != ok[0]["refresh_token"] {
				t.Fatal("refreshes within the grace got different pairs")
			}
		}
		if r := do(t, "GET", g.base+"/functions/v1/api/chargers", "", "Authorization", "Bearer "+ok[0]["access_token"].(string)); r.status != 200 {
			t.Errorf("the shared pair's access token: %d", r.status)
		}
	})
}
