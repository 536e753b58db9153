package oauth_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokengate/caddy-tokengate/oauth"
)

// grantCounter is an oauth.Metrics that counts token responses by grant.
type grantCounter struct {
	mu     sync.Mutex
	issued map[oauth.Grant]int
}

func (g *grantCounter) CacheHit()                              {}
func (g *grantCounter) CacheMiss()                             {}
func (g *grantCounter) RefreshReuse()                          {}
func (g *grantCounter) StoreCall(oauth.StoreOp, time.Duration) {}
func (g *grantCounter) TokenIssued(grant oauth.Grant) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.issued == nil {
		g.issued = map[oauth.Grant]int{}
	}
	g.issued[grant]++
}

func (g *grantCounter) count(grant oauth.Grant) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.issued[grant]
}

// machineE2E is an authorization server with client tokens: the static
// clients of newE2E ("app", confidential, default grant types; "other",
// public) plus "machine" (confidential, client_credentials only, every
// scope) and "codeonly" (authorization_code without refresh_token), over
// declared scopes that include two OpenID Connect ones.
type machineE2E struct {
	*e2e
	machine, codeonly *oauth.Client
	metrics           *grantCounter
}

const machineSecret = "machine-s3cret"

func newMachineE2E(t *testing.T) *machineE2E {
	t.Helper()
	m := &machineE2E{metrics: &grantCounter{}}
	var err error
	m.machine, err = oauth.NewClient(oauth.ClientOptions{ID: "machine", Secret: machineSecret,
		GrantTypes: []string{oauth.GrantTypeClientCredentials}})
	if err != nil {
		t.Fatal(err)
	}
	m.codeonly, err = oauth.NewClient(oauth.ClientOptions{ID: "codeonly", Secret: "c", RedirectURIs: []string{redirect},
		GrantTypes: []string{oauth.GrantTypeAuthorizationCode}})
	if err != nil {
		t.Fatal(err)
	}
	m.e2e = newE2E(t, func(srv *oauth.AuthServer) {
		reg := srv.Clients.(oauth.ClientRegistry)
		reg["machine"], reg["codeonly"] = m.machine, m.codeonly
		srv.ClientTokens = srv.Store.(oauth.ClientTokenStore)
		srv.Metrics = m.metrics
		srv.Scopes = []oauth.Scope{
			{Name: "chargers:read"}, {Name: "openid"}, {Name: "sessions:read"}, {Name: "profile"}, {Name: "energy:read"},
		}
	})
	return m
}

func (m *machineE2E) clientToken(t *testing.T, scope string) oauth.TokenResponse {
	t.Helper()
	tr, oerr := m.srv.ClientCredentials(context.Background(), m.machine, scope)
	if oerr != nil {
		t.Fatalf("ClientCredentials(%q): %v", scope, oerr)
	}
	return tr
}

func TestE2EClientCredentials(t *testing.T) {
	m := newMachineE2E(t)
	ctx := context.Background()

	// RFC 6749 4.4.3: an access token, Bearer, its lifetime and scope, and
	// no refresh token; with no scope asked for, every scope the client may
	// ask for, in declared order, the OpenID Connect ones left out.
	tr := m.clientToken(t, "")
	if k, err := oauth.ParseToken(tr.AccessToken); err != nil || k != oauth.KindAccess {
		t.Fatalf("access_token %q is not a tga_ access token", oauth.TokenHint(tr.AccessToken))
	}
	if tr.TokenType != "Bearer" || tr.ExpiresIn != 3600 || tr.RefreshToken != "" {
		t.Errorf("response = %+v; want Bearer, 3600 s, no refresh token", tr)
	}
	if tr.Scope != "chargers:read sessions:read energy:read" {
		t.Errorf("default scope = %q, want the declared non-OIDC scopes in order", tr.Scope)
	}
	body, _ := json.Marshal(tr)
	if strings.Contains(string(body), "refresh_token") {
		t.Errorf("token response %s names a refresh token", body)
	}
	if n := m.metrics.count(oauth.GrantClientCredentials); n != 1 {
		t.Errorf("TokenIssued(client_credentials) counted %d times, want 1", n)
	}

	// The token stands for the client itself.
	p := m.valid(t, tr.AccessToken)
	if p.UserID != "" || p.ClientID != "machine" || p.TokenType() != oauth.TokenTypeClient || p.Subject() != "machine" {
		t.Errorf("principal = %+v (type %s, subject %s); want no user, client machine, type client", p, p.TokenType(), p.Subject())
	}
	// RFC 7662 2.2: introspection's sub is the client.
	info, oerr := m.srv.Introspect(ctx, m.machine, tr.AccessToken)
	if oerr != nil || !info.Active || info.Sub != "machine" || info.ClientID != "machine" || info.Scope != tr.Scope {
		t.Errorf("Introspect = %+v, %v; want active, sub and client_id machine", info, oerr)
	}
	if info, _ := m.srv.Introspect(ctx, m.app, tr.AccessToken); info.Active {
		t.Error("another client sees the client token as active")
	}

	// A narrower scope; one the client may not ask for, an unknown one, or
	// an OpenID Connect one: invalid_scope.
	if tr := m.clientToken(t, "energy:read"); tr.Scope != "energy:read" {
		t.Errorf("scope energy:read gave %q", tr.Scope)
	}
	for _, scope := range []string{"nope", "openid", "energy:read profile"} {
		_, oerr := m.srv.ClientCredentials(ctx, m.machine, scope)
		wantErr(t, "RFC 6749 4.4.2 scope "+scope, oerr, "invalid_scope")
	}

	// RFC 7009 2.1: the client revokes it; it stops at once.
	if oerr := m.srv.Revoke(ctx, m.machine, tr.AccessToken, ""); oerr != nil {
		t.Fatal(oerr)
	}
	m.refused(t, "after revocation", tr.AccessToken)
	if info, _ := m.srv.Introspect(ctx, m.machine, tr.AccessToken); info.Active {
		t.Error("a revoked client token is active")
	}

	// The audit line names the client and the grant, no user.
	var found bool
	for _, entry := range m.logs.FilterMessage(oauth.AuditTokenIssued).All() {
		f := entry.ContextMap()
		if f["grant"] == "client_credentials" && f["client_id"] == "machine" && f["user_id"] == "" {
			found = true
		}
	}
	if !found {
		t.Error("no audit line for the client_credentials token")
	}
	m.noSecretsLogged(t, tr.AccessToken, machineSecret)
}

func TestE2EClientCredentialsRestrictedScopes(t *testing.T) {
	m := newMachineE2E(t)
	narrow, err := oauth.NewClient(oauth.ClientOptions{ID: "narrow", Secret: "n",
		Scopes: []string{"energy:read", "openid", "chargers:read"}, GrantTypes: []string{oauth.GrantTypeClientCredentials}})
	if err != nil {
		t.Fatal(err)
	}
	oidcOnly, err := oauth.NewClient(oauth.ClientOptions{ID: "oidc-only", Secret: "o",
		Scopes: []string{"openid"}, GrantTypes: []string{oauth.GrantTypeClientCredentials}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// Declared order, not the client's.
	tr, oerr := m.srv.ClientCredentials(ctx, narrow, "")
	if oerr != nil || tr.Scope != "chargers:read energy:read" {
		t.Errorf("default scope of a restricted client = %q, %v; want chargers:read energy:read", tr.Scope, oerr)
	}
	_, oerr = m.srv.ClientCredentials(ctx, narrow, "sessions:read")
	wantErr(t, "a scope the client may not ask for", oerr, "invalid_scope")
	_, oerr = m.srv.ClientCredentials(ctx, oidcOnly, "")
	wantErr(t, "a client with only OpenID Connect scopes", oerr, "invalid_scope")
}

// RFC 6749 5.2 unauthorized_client: a grant the client's grant types do
// not allow, and client_credentials for a public client.
func TestE2EGrantTypesEnforced(t *testing.T) {
	m := newMachineE2E(t)
	ctx := context.Background()

	_, oerr := m.srv.ClientCredentials(ctx, m.app, "")
	wantErr(t, "client_credentials for a client without that grant", oerr, "unauthorized_client")
	_, oerr = m.srv.ClientCredentials(ctx, m.other, "")
	wantErr(t, "RFC 6749 4.4 client_credentials for a public client", oerr, "unauthorized_client")

	// A client_credentials client may not use the code flow or refresh.
	_, oerr = m.srv.Exchange(ctx, m.machine, m.authorize(t, "chargers:read"), redirect, verifier)
	wantErr(t, "authorization_code for a client without it", oerr, "unauthorized_client")
	rt := m.tokens(t, "chargers:read").RefreshToken
	_, oerr = m.srv.Refresh(ctx, m.machine, rt, "")
	wantErr(t, "refresh_token for a client without it", oerr, "unauthorized_client")
	_, _, oerr, _ = m.srv.ValidateAuthorize(ctx, oauth.AuthorizeRequest{ClientID: "machine", RedirectURI: redirect, ResponseType: "code"})
	// The machine client has no redirect URI, so the request cannot even
	// be sent back to it.
	wantErr(t, "authorize for a client without redirect URI", oerr, "invalid_request")

	// A client with authorization_code but not refresh_token gets no
	// refresh token, and may not refresh.
	code, oerr, _ := m.srv.Authorize(ctx, oauth.AuthorizeRequest{
		ClientID: "codeonly", RedirectURI: redirect, ResponseType: "code", Scope: "chargers:read",
		State: "st", CodeChallenge: challenge, CodeChallengeMethod: "S256", UserID: "alice",
	})
	if oerr != nil {
		t.Fatal(oerr)
	}
	tr, oerr := m.srv.Exchange(ctx, m.codeonly, code, redirect, verifier)
	if oerr != nil {
		t.Fatal(oerr)
	}
	if tr.RefreshToken != "" || tr.AccessToken == "" {
		t.Errorf("exchange for a client without refresh_token = %+v; want an access token only", tr)
	}
	m.valid(t, tr.AccessToken)
	_, oerr = m.srv.Refresh(ctx, m.codeonly, rt, "")
	wantErr(t, "refresh_token for codeonly", oerr, "unauthorized_client")
}

// RFC 6749 4.1.2.1 unauthorized_client at authorize, for a client with a
// redirect URI but not the code flow.
func TestE2EAuthorizeNeedsCodeGrant(t *testing.T) {
	ccWithRedirect, err := oauth.NewClient(oauth.ClientOptions{ID: "cc", Secret: "c", RedirectURIs: []string{redirect},
		GrantTypes: []string{oauth.GrantTypeClientCredentials}})
	if err != nil {
		t.Fatal(err)
	}
	e := newE2E(t, func(srv *oauth.AuthServer) { srv.Clients.(oauth.ClientRegistry)["cc"] = ccWithRedirect })
	_, oerr, redirectable := e.srv.Authorize(context.Background(), oauth.AuthorizeRequest{
		ClientID: "cc", RedirectURI: redirect, ResponseType: "code", Scope: "chargers:read",
		State: "st", CodeChallenge: challenge, CodeChallengeMethod: "S256", UserID: "alice",
	})
	wantErr(t, "authorize for a client_credentials client", oerr, "unauthorized_client")
	if !redirectable {
		t.Error("unauthorized_client at authorize is not sent to the redirect URI")
	}
}

// Removing a stored client stops its own tokens at once, on this instance
// too (its validation cache forgets them), and a later client of the same
// id does not bring them back. Its users' access tokens run out.
func TestE2EClientCredentialsStoredClientRemoved(t *testing.T) {
	s := newStoredE2E(t)
	s.srv.ClientTokens = s.store
	s.admin.Tokens, s.admin.Validator = s.store, s.val
	ctx := context.Background()
	c, secret := s.add(t, oauth.ClientSpec{ID: "robot", Name: "Robot", RedirectURIs: []string{redirect},
		GrantTypes: []string{oauth.GrantTypeClientCredentials, oauth.GrantTypeAuthorizationCode}})
	if !slices.Equal(c.GrantTypes, []string{oauth.GrantTypeClientCredentials, oauth.GrantTypeAuthorizationCode}) {
		t.Fatalf("stored client grant types = %v", c.GrantTypes)
	}
	authed, err := s.clients.Authenticate(ctx, "robot", secret, true)
	if err != nil {
		t.Fatal(err)
	}
	tr, oerr := s.srv.ClientCredentials(ctx, authed, "chargers:read")
	if oerr != nil {
		t.Fatal(oerr)
	}
	user := s.tokens(t, c, "chargers:read")
	if user.RefreshToken != "" {
		t.Error("a client without refresh_token got a refresh token")
	}
	s.valid(t, tr.AccessToken) // cached now
	if err := s.admin.Delete(ctx, "robot"); err != nil {
		t.Fatal(err)
	}
	s.refused(t, "client token after the client's removal", tr.AccessToken)
	s.valid(t, user.AccessToken)

	// Same id again: the old token stays dead, and the old client (of the
	// earlier generation) gets no new one.
	s.add(t, oauth.ClientSpec{ID: "robot", Name: "Robot", GrantTypes: []string{oauth.GrantTypeClientCredentials}})
	s.refused(t, "client token after a new client of the same id", tr.AccessToken)
	_, oerr = s.srv.ClientCredentials(ctx, authed, "")
	wantErr(t, "client_credentials for the removed generation", oerr, "invalid_client")
}

// A stored client's grant types change with PUT: client_credentials taken
// away is unauthorized_client from then on.
func TestE2EStoredClientGrantTypesUpdated(t *testing.T) {
	s := newStoredE2E(t)
	s.srv.ClientTokens = s.store
	ctx := context.Background()
	_, secret := s.add(t, oauth.ClientSpec{ID: "robot", Name: "Robot", GrantTypes: []string{oauth.GrantTypeClientCredentials}})
	authed, err := s.clients.Authenticate(ctx, "robot", secret, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, oerr := s.srv.ClientCredentials(ctx, authed, ""); oerr != nil {
		t.Fatal(oerr)
	}
	rec, err := s.admin.Update(ctx, "robot", oauth.ClientSpec{Name: "Robot", RedirectURIs: []string{redirect}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rec.GrantTypes, oauth.DefaultGrantTypes()) {
		t.Errorf("PUT without grant types left %v, want the default", rec.GrantTypes)
	}
	authed, err = s.clients.Authenticate(ctx, "robot", secret, true)
	if err != nil {
		t.Fatal(err)
	}
	_, oerr := s.srv.ClientCredentials(ctx, authed, "")
	wantErr(t, "client_credentials after it was taken away", oerr, "unauthorized_client")
}

// No user's revocation reaches a client token: the empty user id, which
// marks client tokens in the store, is refused.
func TestE2EClientTokenOutOfUsersReach(t *testing.T) {
	m := newMachineE2E(t)
	ctx := context.Background()
	tr := m.clientToken(t, "")
	if err := m.srv.RevokeUser(ctx, ""); err == nil {
		t.Error("RevokeUser with no user id succeeded")
	}
	if err := m.srv.RevokeGrant(ctx, "", "machine"); err == nil {
		t.Error("RevokeGrant with no user id succeeded")
	}
	if err := m.srv.RevokeUser(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	m.valid(t, tr.AccessToken)
}

// TestE2EClientCredentialsResource: a client token may be asked for one
// resource (RFC 8707 2.2), which becomes its audience; a resource no guard
// names is invalid_target and issues nothing.
func TestE2EClientCredentialsResource(t *testing.T) {
	const chargersAPI = "https://api.example.com/chargers"
	m := newMachineE2E(t)
	m.srv.KnownResource = func(r string) bool { return r == chargersAPI }
	ctx := context.Background()

	tr, oerr := m.srv.ClientCredentialsFor(ctx, m.machine, "chargers:read", oauth.TokenExtras{Resource: chargersAPI})
	if oerr != nil {
		t.Fatalf("ClientCredentialsFor: %v", oerr)
	}
	p, err := m.srv.Validator.Validate(ctx, tr.AccessToken)
	if err != nil || p.Audience != chargersAPI || p.ClientID != "machine" || p.UserID != "" {
		t.Errorf("principal = %+v, %v; want audience %s", p, err, chargersAPI)
	}
	before := m.metrics.count(oauth.GrantClientCredentials)
	if _, oerr := m.srv.ClientCredentialsFor(ctx, m.machine, "", oauth.TokenExtras{Resource: "https://elsewhere.example/api"}); oerr == nil || oerr.Code != "invalid_target" {
		t.Errorf("unknown resource: %v, want invalid_target", oerr)
	}
	if got := m.metrics.count(oauth.GrantClientCredentials); got != before {
		t.Errorf("a refused request issued %d tokens", got-before)
	}
}
