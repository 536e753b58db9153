package oauth_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/tokengate/caddy-tokengate/oauth"
)

// tokensFor runs the code flow for alice and the public client other.
func (e *e2e) tokensFor(t *testing.T, scope string) oauth.TokenResponse {
	t.Helper()
	ctx := context.Background()
	code, oerr, _ := e.srv.Authorize(ctx, oauth.AuthorizeRequest{
		ClientID: "other", RedirectURI: "https://other.example/cb", ResponseType: "code", Scope: scope,
		State: "st", CodeChallenge: challenge, CodeChallengeMethod: "S256", UserID: "alice",
	})
	if oerr != nil {
		t.Fatalf("Authorize other: %v", oerr)
	}
	tr, oerr := e.srv.Exchange(ctx, e.other, code, "https://other.example/cb", verifier)
	if oerr != nil {
		t.Fatalf("Exchange other: %v", oerr)
	}
	return tr
}

func (e *e2e) grants(t *testing.T, user string) []oauth.UserGrant {
	t.Helper()
	gs, err := e.srv.ListGrants(context.Background(), user)
	if err != nil {
		t.Fatalf("ListGrants(%s): %v", user, err)
	}
	return gs
}

// auditCount is how many audit lines with msg name user (and client, when
// given).
func (e *e2e) auditCount(msg, user, client string) int {
	n := 0
	for _, entry := range e.logs.FilterMessage(msg).All() {
		f := entry.ContextMap()
		if f["user_id"] == user && (client == "" || f["client_id"] == client) {
			n++
		}
	}
	return n
}

// a user's grants are the consents, named after their clients;
// a client no longer known is named by its id.
func TestE2EListGrants(t *testing.T) {
	e := newE2E(t, func(s *oauth.AuthServer) {
		named, err := oauth.NewClient(oauth.ClientOptions{ID: "app", Name: "Home Energy App", Secret: "s3cret", RedirectURIs: []string{redirect}})
		if err != nil {
			t.Fatal(err)
		}
		s.Clients.(oauth.ClientRegistry)["app"] = named
	})
	if gs := e.grants(t, "alice"); len(gs) != 0 {
		t.Fatalf("before any authorization: %+v", gs)
	}
	before := time.Now().Add(-time.Millisecond)
	e.tokens(t, "chargers:read sessions:read")
	e.tokensFor(t, "energy:read")
	if err := e.store.RecordConsent(context.Background(), "alice", "gone", []string{"chargers:read"}); err != nil {
		t.Fatal(err)
	}
	gs := e.grants(t, "alice")
	want := []oauth.UserGrant{
		{ClientID: "app", ClientName: "Home Energy App", Scopes: []string{"chargers:read", "sessions:read"}},
		{ClientID: "gone", ClientName: "gone", Scopes: []string{"chargers:read"}},
		{ClientID: "other", ClientName: "other", Scopes: []string{"energy:read"}},
	}
	if len(gs) != len(want) {
		t.Fatalf("grants = %+v, want %+v", gs, want)
	}
	for i, g := range gs {
		w := want[i]
		if g.ClientID != w.ClientID || g.ClientName != w.ClientName || !slices.Equal(g.Scopes, w.Scopes) {
			t.Errorf("grant %d = %+v, want %+v", i, g, w)
		}
		if g.GrantedAt.Before(before) || g.GrantedAt.After(time.Now()) {
			t.Errorf("grant %s granted at %v, want during the test", g.ClientID, g.GrantedAt)
		}
	}
	if gs := e.grants(t, "bob"); len(gs) != 0 {
		t.Errorf("bob's grants = %+v, want none", gs)
	}
}

// revoking a grant ends the consent and every token of the user
// for that client at once, cached ones included, and leaves the user's
// other grants alone.
func TestE2ERevokeGrant(t *testing.T) {
	e := newE2E(t, nil)
	ctx := context.Background()
	first := e.tokens(t, "chargers:read")
	second := e.tokens(t, "sessions:read")
	rotated := e.refresh(t, second.RefreshToken, "")
	kept := e.tokensFor(t, "energy:read")
	for _, tr := range []oauth.TokenResponse{first, second, rotated, kept} {
		e.valid(t, tr.AccessToken) // cached from here
	}

	if err := e.srv.RevokeGrant(ctx, "alice", "app"); err != nil {
		t.Fatalf("RevokeGrant: %v", err)
	}
	for _, tr := range []oauth.TokenResponse{first, second, rotated} {
		e.refused(t, "access token of a revoked grant", tr.AccessToken)
		_, oerr := e.srv.Refresh(ctx, e.app, tr.RefreshToken, "")
		wantErr(t, "refresh token of a revoked grant", oerr, "invalid_grant")
	}
	e.valid(t, kept.AccessToken)
	if _, oerr := e.srv.Refresh(ctx, e.other, kept.RefreshToken, ""); oerr != nil {
		t.Errorf("refresh token of the grant left alone: %v", oerr)
	}
	if gs := e.grants(t, "alice"); len(gs) != 1 || gs[0].ClientID != "other" {
		t.Errorf("grants after revoking app = %+v, want other's alone", gs)
	}
	if need, _ := e.srv.NeedsConsent(ctx, "alice", "app", []string{"chargers:read"}); !need {
		t.Error("after revoking, the next authorization must ask for consent again")
	}
	if n := e.auditCount(oauth.AuditGrantRevoked, "alice", "app"); n != 1 {
		t.Errorf("%d %q audit lines, want 1", n, oauth.AuditGrantRevoked)
	}

	// Nothing left to revoke, or a client never authorized: no error, and
	// no audit line for what did not happen.
	for _, client := range []string{"app", "unknown"} {
		if err := e.srv.RevokeGrant(ctx, "alice", client); err != nil {
			t.Errorf("RevokeGrant(%s) with nothing to revoke: %v", client, err)
		}
	}
	if n := e.logs.FilterMessage(oauth.AuditGrantRevoked).Len(); n != 1 {
		t.Errorf("%d %q audit lines after revoking nothing, want still 1", n, oauth.AuditGrantRevoked)
	}
	e.noSecretsLogged(t, first.AccessToken, first.RefreshToken, second.RefreshToken, rotated.RefreshToken, kept.RefreshToken)
}

// revoking a user ends every grant and the personal token, and
// leaves other users alone.
func TestE2ERevokeUser(t *testing.T) {
	e := newE2E(t, nil)
	ctx := context.Background()
	personal := &oauth.PersonalTokens{Store: e.store, Validator: e.val, Scopes: []string{"chargers:read"}}
	app := e.tokens(t, "chargers:read")
	other := e.tokensFor(t, "energy:read")
	pt, _, err := personal.Issue(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	bobPT, _, err := personal.Issue(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{app.AccessToken, other.AccessToken, pt, bobPT} {
		e.valid(t, tok)
	}

	if err := e.srv.RevokeUser(ctx, "alice"); err != nil {
		t.Fatalf("RevokeUser: %v", err)
	}
	for _, tok := range []string{app.AccessToken, other.AccessToken, pt} {
		e.refused(t, "token of a revoked user", tok)
	}
	_, oerr := e.srv.Refresh(ctx, e.app, app.RefreshToken, "")
	wantErr(t, "refresh token of a revoked user", oerr, "invalid_grant")
	_, oerr = e.srv.Refresh(ctx, e.other, other.RefreshToken, "")
	wantErr(t, "refresh token of a revoked user", oerr, "invalid_grant")
	if gs := e.grants(t, "alice"); len(gs) != 0 {
		t.Errorf("grants after revoking the user = %+v", gs)
	}
	if _, active, err := personal.Status(ctx, "alice"); err != nil || active {
		t.Errorf("personal token after revoking the user: active=%v, %v", active, err)
	}
	e.valid(t, bobPT)
	if n := e.auditCount(oauth.AuditUserRevoked, "alice", ""); n != 1 {
		t.Errorf("%d %q audit lines, want 1", n, oauth.AuditUserRevoked)
	}
	// The user may sign in and authorize again.
	e.valid(t, e.tokens(t, "chargers:read").AccessToken)
	e.noSecretsLogged(t, app.AccessToken, app.RefreshToken, other.RefreshToken, pt, bobPT)
}

// downUserGrants is a UserGrantStore that cannot be reached.
type downUserGrants struct{}

var errGrantsDown = errors.New("store down")

func (downUserGrants) Consents(context.Context, string) ([]oauth.Consent, error) {
	return nil, errGrantsDown
}

func (downUserGrants) RevokeClientGrant(context.Context, string, string, time.Time) ([]oauth.TokenHash, bool, error) {
	return nil, false, errGrantsDown
}

func (downUserGrants) RevokeUser(context.Context, string, time.Time) ([]oauth.TokenHash, bool, error) {
	return nil, false, errGrantsDown
}

// A store that cannot answer is an error, never an empty list or a quiet
// success, and no audit line claims a revocation.
func TestE2EUserGrantsStoreDown(t *testing.T) {
	for name, store := range map[string]oauth.UserGrantStore{"down": downUserGrants{}, "none": nil} {
		t.Run(name, func(t *testing.T) {
			e := newE2E(t, func(s *oauth.AuthServer) { s.UserGrants = store })
			ctx := context.Background()
			if gs, err := e.srv.ListGrants(ctx, "alice"); err == nil {
				t.Errorf("ListGrants = %+v, want an error", gs)
			}
			if err := e.srv.RevokeGrant(ctx, "alice", "app"); err == nil {
				t.Error("RevokeGrant: want an error")
			}
			if err := e.srv.RevokeUser(ctx, "alice"); err == nil {
				t.Error("RevokeUser: want an error")
			}
			for _, msg := range []string{oauth.AuditGrantRevoked, oauth.AuditUserRevoked} {
				if n := e.logs.FilterMessage(msg).Len(); n != 0 {
					t.Errorf("%d %q audit lines for a failed revocation", n, msg)
				}
			}
		})
	}
}
