package integration

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/tokengate/caddy-tokengate/internal/pgtest"
)

// seenWithin is eventually with clientChangeBound, logging how long the
// change took to be seen, counted from the call's return.
func seenWithin(t *testing.T, what string, cond func() bool) {
	t.Helper()
	start := time.Now()
	eventually(t, clientChangeBound, what, cond)
	t.Logf("%s: seen after %v", what, time.Since(start).Round(time.Millisecond))
}

// clientChangeBound is what the contract promises: a change of a stored client
// takes effect on every instance sharing the database within 1 s.
const clientChangeBound = time.Second

// node is one instance: its site and its admin endpoint.
type node struct {
	name  string
	base  string
	admin adminAPI
}

// authorizeStatus runs the JSON authorize step on n for the stored client
// billing and returns the status: 200 once n knows the client with that
// redirect URI, 400 while it does not.
func (n node) authorizeStatus(t *testing.T, redirectURI string) int {
	t.Helper()
	body := jsonBody(t, map[string]string{
		"client_id": "billing", "redirect_uri": redirectURI, "response_type": "code", "scope": "chargers:read",
		"state": "s", "code_challenge": oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier()), "code_challenge_method": "S256",
	})
	return do(t, "POST", n.base+"/oauth/authorize", body,
		"Authorization", "Bearer "+userJWT(t, "user-nodes"), "Content-Type", "application/json").status
}

// revokeStatus authenticates to n's revoke endpoint as billing with secret
// and returns the status: 200 for a secret n accepts, 401 for one it does
// not.
func (n node) revokeStatus(t *testing.T, secret string) int {
	t.Helper()
	return do(t, "POST", n.base+"/oauth/revoke", url.Values{"token": {"unknown"}}.Encode(),
		append(basicAuth("billing", secret), "Content-Type", "application/x-www-form-urlencoded")...).status
}

// TestAdminClientsAcrossInstances: two instances on one PostgreSQL
// database, the one of this test process and a caddy process of its own.
// Each change of a stored client made through either one's admin API is
// seen by the other within clientChangeBound of the call's return: a new
// client (read through on its first use), then a changed one, a new
// secret and a removal (each one that the other instance already knew,
// so only the change notice can tell it).
func TestAdminClientsAcrossInstances(t *testing.T) {
	dsn := pgtest.Start(t)
	g, adminURL := startGatewayWithAdmin(t, "postgres "+dsn, oauthClients)
	proc := startCaddyProcess(t, func(port, adminPort int) string {
		// This process's config on other ports.
		return strings.Replace(g.config(port), "admin "+strings.TrimPrefix(adminURL, "http://"), fmt.Sprintf("admin 127.0.0.1:%d", adminPort), 1)
	})
	a := node{"this process", g.base, adminAPI{adminURL}}
	b := node{"the caddy process", proc.base, adminAPI{proc.admin}}
	const newRedirect = "https://billing.example.com/new-callback"

	// Added through b, known to a.
	secret := b.admin.addClient(t, billingBody)
	seenWithin(t, "a client added through "+b.name+" authorizes on "+a.name, func() bool {
		return a.authorizeStatus(t, billingRedirect) == 200
	})
	for _, n := range []node{a, b} {
		if got := n.revokeStatus(t, secret); got != 200 {
			t.Fatalf("%s: billing's secret gets %d, want 200", n.name, got)
		}
		if got := n.authorizeStatus(t, newRedirect); got != 400 {
			t.Fatalf("%s: a redirect URI not yet registered gets %d, want 400", n.name, got)
		}
	}

	// Changed through a, seen by b.
	r := a.admin.call(t, "PUT", "/tokengate/clients/billing",
		`{"name":"Billing","redirect_uris":["`+newRedirect+`"],"scopes":["chargers:read"]}`)
	if r.status != 200 {
		t.Fatalf("PUT through %s: %d %s", a.name, r.status, r.body)
	}
	seenWithin(t, "the new redirect URI on "+b.name, func() bool {
		return b.authorizeStatus(t, newRedirect) == 200
	})
	if got := b.authorizeStatus(t, billingRedirect); got != 400 {
		t.Errorf("%s: the redirect URI taken away gets %d, want 400", b.name, got)
	}

	// A new secret through b: the old one stops on a. Polling with the old
	// secret fails once at most, which the failure limit allows.
	r = b.admin.call(t, "POST", "/tokengate/clients/billing/secret", "")
	newSecret, _ := r.decode(t)["client_secret"].(string)
	if r.status != 200 || newSecret == "" {
		t.Fatalf("rotate through %s: %d %s", b.name, r.status, r.body)
	}
	seenWithin(t, "the old secret refused on "+a.name, func() bool {
		return a.revokeStatus(t, secret) == 401
	})
	if got := a.revokeStatus(t, newSecret); got != 200 {
		t.Errorf("%s: the new secret gets %d, want 200", a.name, got)
	}

	// Removed through a: b forgets it.
	if r := a.admin.call(t, "DELETE", "/tokengate/clients/billing", ""); r.status != 204 {
		t.Fatalf("DELETE through %s: %d %s", a.name, r.status, r.body)
	}
	seenWithin(t, "the removed client unknown on "+b.name, func() bool {
		return b.authorizeStatus(t, newRedirect) == 400
	})
	if r := b.admin.call(t, "GET", "/tokengate/clients/billing", ""); r.status != 404 {
		t.Errorf("%s: GET the removed client: %d, want 404", b.name, r.status)
	}
}
