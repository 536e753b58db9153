package oauth_test

import (
	"context"
	"strings"
	"testing"

	"github.com/tokengate/caddy-tokengate/oauth"
)

const (
	chargersAPI = "https://api.example.com/chargers"
	energyAPI   = "https://api.example.com/energy"
	issuerID    = "https://api.example.com"
)

// newResourceE2E knows two resources and the issuer (RFC 8707 2).
func newResourceE2E(t *testing.T) *e2e {
	return newE2E(t, func(s *oauth.AuthServer) {
		s.KnownResource = func(r string) bool { return r == chargersAPI || r == energyAPI || r == issuerID }
	})
}

func (e *e2e) authorizeFor(t *testing.T, resources ...string) (string, *oauth.Error, bool) {
	t.Helper()
	return e.srv.Authorize(context.Background(), oauth.AuthorizeRequest{
		ClientID: "app", RedirectURI: redirect, ResponseType: "code", Scope: "chargers:read",
		State: "st", CodeChallenge: challenge, CodeChallengeMethod: "S256", UserID: "alice",
		Resources: resources,
	})
}

// audienceOf introspects an access token and returns its aud.
func (e *e2e) audienceOf(t *testing.T, access string) string {
	t.Helper()
	in, oerr := e.srv.Introspect(context.Background(), e.app, access)
	if oerr != nil || !in.Active {
		t.Fatalf("Introspect: %+v %v", in, oerr)
	}
	if p, err := e.val.Validate(context.Background(), access); err != nil || p.Audience != in.Aud {
		t.Fatalf("Validate: audience %q, %v; introspection says %q", p.Audience, err, in.Aud)
	}
	return in.Aud
}

// TestAuthorizeResources: resource indicators must be absolute URIs
// without fragment that name a resource of this server, else
// invalid_target, which may go to the client (RFC 8707 2); several may
// be given.
func TestAuthorizeResources(t *testing.T) {
	e := newResourceE2E(t)
	for _, c := range []struct {
		name      string
		resources []string
		want      string
	}{
		{"RFC 8707 2 one resource", []string{chargersAPI}, ""},
		{"RFC 8707 2 several resources", []string{chargersAPI, energyAPI}, ""},
		{"the issuer", []string{issuerID}, ""},
		{"the same twice", []string{chargersAPI, chargersAPI}, ""},
		{"RFC 8707 2 unknown resource", []string{"https://api.example.com/other"}, "is not a resource of this server"},
		{"RFC 8707 2 relative URI", []string{"/chargers"}, "is not an absolute URI"},
		{"RFC 8707 2 fragment", []string{chargersAPI + "#x"}, "must not have a fragment"},
		{"one good, one unknown", []string{chargersAPI, "https://evil.example/"}, "is not a resource of this server"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, oerr, redirectable := e.authorizeFor(t, c.resources...)
			switch {
			case c.want == "" && oerr != nil:
				t.Errorf("refused: %v", oerr)
			case c.want != "" && (oerr == nil || oerr.Code != "invalid_target" || !strings.Contains(oerr.Description, c.want) || !redirectable):
				t.Errorf("got %v (redirectable %v), want a redirectable invalid_target with %q", oerr, redirectable, c.want)
			}
		})
	}
	noneKnown := newE2E(t, nil)
	if _, oerr, _ := noneKnown.authorizeFor(t, chargersAPI); oerr == nil || oerr.Code != "invalid_target" {
		t.Errorf("a server that knows no resource: %v", oerr)
	}
}

// TestResourceAudience: the access token's audience is the resource the
// token request names, which must be one of the authorization's; with
// none named, the authorization's only one, or none (RFC 8707 2.2). A
// refresh may narrow to one of the grant's resources.
func TestResourceAudience(t *testing.T) {
	e := newResourceE2E(t)
	ctx := context.Background()
	exchange := func(t *testing.T, resource string, resources ...string) (oauth.TokenResponse, *oauth.Error) {
		t.Helper()
		code, oerr, _ := e.authorizeFor(t, resources...)
		if oerr != nil {
			t.Fatal(oerr)
		}
		return e.srv.ExchangeFor(ctx, e.app, code, redirect, verifier, oauth.TokenExtras{Resource: resource})
	}
	for _, c := range []struct {
		name      string
		granted   []string
		requested string
		audience  string
		err       string
	}{
		{"no resource at all", nil, "", "", ""},
		{"the grant's only resource", []string{chargersAPI}, "", chargersAPI, ""},
		{"the one asked for", []string{chargersAPI, energyAPI}, energyAPI, energyAPI, ""},
		{"the one asked for, the grant's only", []string{chargersAPI}, chargersAPI, chargersAPI, ""},
		{"several granted, none asked for", []string{chargersAPI, energyAPI}, "", "", "several resources"},
		{"one not granted", []string{chargersAPI}, energyAPI, "", "was not part of the authorization"},
		{"one asked for on a grant of none", nil, chargersAPI, "", "was not part of the authorization"},
		{"an unknown one", []string{chargersAPI}, "https://evil.example/", "", "is not a resource of this server"},
	} {
		t.Run(c.name, func(t *testing.T) {
			tr, oerr := exchange(t, c.requested, c.granted...)
			if c.err != "" {
				if oerr == nil || oerr.Code != "invalid_target" || !strings.Contains(oerr.Description, c.err) {
					t.Fatalf("got %v, want invalid_target with %q", oerr, c.err)
				}
				return
			}
			if oerr != nil {
				t.Fatal(oerr)
			}
			if got := e.audienceOf(t, tr.AccessToken); got != c.audience {
				t.Errorf("audience %q, want %q", got, c.audience)
			}
		})
	}

	// A refused exchange leaves the code for a good one.
	code, _, _ := e.authorizeFor(t, chargersAPI)
	if _, oerr := e.srv.ExchangeFor(ctx, e.app, code, redirect, verifier, oauth.TokenExtras{Resource: energyAPI}); oerr == nil {
		t.Fatal("exchange for a resource not granted succeeded")
	}
	tr, oerr := e.srv.ExchangeFor(ctx, e.app, code, redirect, verifier, oauth.TokenExtras{Resource: ""})
	if oerr != nil {
		t.Fatalf("the code was consumed by the refused exchange: %v", oerr)
	}

	// Refresh: narrowing to one of the grant's resources.
	tr, oerr = exchange(t, chargersAPI, chargersAPI, energyAPI)
	if oerr != nil {
		t.Fatal(oerr)
	}
	if _, oerr := e.srv.RefreshFor(ctx, e.app, tr.RefreshToken, "", oauth.TokenExtras{Resource: "https://api.example.com"}); oerr == nil || oerr.Code != "invalid_target" {
		t.Errorf("refresh for the issuer, not granted: %v", oerr)
	}
	if _, oerr := e.srv.RefreshFor(ctx, e.app, tr.RefreshToken, "", oauth.TokenExtras{Resource: ""}); oerr == nil || oerr.Code != "invalid_target" {
		t.Errorf("refresh of a grant of two resources naming none: %v", oerr)
	}
	next, oerr := e.srv.RefreshFor(ctx, e.app, tr.RefreshToken, "", oauth.TokenExtras{Resource: energyAPI})
	if oerr != nil {
		t.Fatalf("refresh for energy (the refused refreshes must not consume the token): %v", oerr)
	}
	if got := e.audienceOf(t, next.AccessToken); got != energyAPI {
		t.Errorf("refreshed audience %q", got)
	}
	// A grant of one resource keeps it on a refresh that names none,
	// also with a narrower scope.
	tr, _ = exchange(t, "", chargersAPI)
	next, oerr = e.srv.RefreshFor(ctx, e.app, tr.RefreshToken, "chargers:read", oauth.TokenExtras{Resource: ""})
	if oerr != nil || e.audienceOf(t, next.AccessToken) != chargersAPI {
		t.Errorf("refresh of a one-resource grant: %v", oerr)
	}
	// The plain Refresh is RefreshFor with no resource.
	if again, oerr := e.srv.Refresh(ctx, e.app, next.RefreshToken, ""); oerr != nil || e.audienceOf(t, again.AccessToken) != chargersAPI {
		t.Errorf("Refresh: %v", oerr)
	}
}
