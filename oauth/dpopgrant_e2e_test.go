package oauth_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tokengate/caddy-tokengate/oauth"
)

// Thumbprints of two DPoP keys. The authorization server only compares
// them: the proofs behind them are verified by the HTTP side.
const (
	keyA = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
	keyB = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
)

const (
	publicRedirect = "https://other.example/cb"
	strictRedirect = "https://strict.example/cb"
)

// dpopE2E is an e2e with a third client, "strict", confidential and
// registered with dpop_bound_access_tokens.
type dpopE2E struct {
	*e2e
	strict *oauth.Client
}

func newDPoPE2E(t *testing.T, configure func(s *oauth.AuthServer)) *dpopE2E {
	t.Helper()
	strict, err := oauth.NewClient(oauth.ClientOptions{
		ID: "strict", Secret: "s3cret", RedirectURIs: []string{strictRedirect}, DPoPBoundAccessTokens: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	e := newE2E(t, configure)
	reg, err := oauth.NewClientRegistry(e.app, e.other, strict)
	if err != nil {
		t.Fatal(err)
	}
	e.srv.Clients = reg
	return &dpopE2E{e2e: e, strict: strict}
}

// code authorizes alice for client at its redirect URI.
func (e *dpopE2E) code(t *testing.T, client *oauth.Client) string {
	t.Helper()
	code, oerr, _ := e.srv.Authorize(context.Background(), oauth.AuthorizeRequest{
		ClientID: client.ID, RedirectURI: client.RedirectURIs[0], ResponseType: "code", Scope: "sessions:read",
		State: "st", CodeChallenge: challenge, CodeChallengeMethod: "S256", UserID: "alice",
	})
	if oerr != nil {
		t.Fatalf("Authorize: %v", oerr)
	}
	return code
}

func (e *dpopE2E) exchange(t *testing.T, client *oauth.Client, key string) oauth.TokenResponse {
	t.Helper()
	tr, oerr := e.srv.ExchangeFor(context.Background(), client, e.code(t, client), client.RedirectURIs[0], verifier, oauth.TokenExtras{DPoPKey: key})
	if oerr != nil {
		t.Fatalf("ExchangeFor(key %q): %v", key, oerr)
	}
	return tr
}

func (e *dpopE2E) refreshWith(t *testing.T, client *oauth.Client, rt, key string) oauth.TokenResponse {
	t.Helper()
	tr, oerr := e.srv.RefreshFor(context.Background(), client, rt, "", oauth.TokenExtras{DPoPKey: key})
	if oerr != nil {
		t.Fatalf("RefreshFor(key %q): %v", key, oerr)
	}
	return tr
}

// boundTo checks the token type of a response and the key its access
// token is bound to, as the validator (and so the guard) reads it.
func (e *dpopE2E) boundTo(t *testing.T, what string, tr oauth.TokenResponse, key string) {
	t.Helper()
	want := "Bearer"
	if key != "" {
		want = "DPoP"
	}
	if tr.TokenType != want {
		t.Errorf("%s: token_type %q, want %q", what, tr.TokenType, want)
	}
	if p := e.valid(t, tr.AccessToken); p.DPoPKey != key {
		t.Errorf("%s: access token bound to %q, want %q", what, p.DPoPKey, key)
	}
}

// TestE2EDPoPConfidentialClient: RFC 9449 5, a proof binds the access
// token; a confidential client's refresh tokens stay unbound, so each
// refresh binds its access token to the key of its own proof, or to none.
func TestE2EDPoPConfidentialClient(t *testing.T) {
	e := newDPoPE2E(t, nil)
	tr := e.exchange(t, e.app, keyA)
	e.boundTo(t, "code exchange with a proof", tr, keyA)
	if tr.RefreshToken == "" {
		t.Fatal("no refresh token")
	}

	tr = e.refreshWith(t, e.app, tr.RefreshToken, "")
	e.boundTo(t, "refresh without a proof", tr, "")
	tr = e.refreshWith(t, e.app, tr.RefreshToken, keyB)
	e.boundTo(t, "refresh with another key", tr, keyB)

	tr = e.exchange(t, e.app, "")
	e.boundTo(t, "code exchange without a proof", tr, "")
	e.noSecretsLogged(t, tr.AccessToken, tr.RefreshToken)
}

// TestE2EDPoPPublicClientFamily: RFC 9449 5, a public client's refresh
// tokens are bound at the code exchange; each refresh needs a proof of
// that key, and a refusal consumes nothing.
func TestE2EDPoPPublicClientFamily(t *testing.T) {
	e := newDPoPE2E(t, nil)
	ctx := context.Background()
	tr := e.exchange(t, e.other, keyA)
	e.boundTo(t, "code exchange", tr, keyA)

	for _, c := range []struct{ name, key string }{
		{"RFC 9449 5 refresh without a proof", ""},
		{"RFC 9449 5 refresh with a proof of another key", keyB},
	} {
		_, oerr := e.srv.RefreshFor(ctx, e.other, tr.RefreshToken, "", oauth.TokenExtras{DPoPKey: c.key})
		wantErr(t, c.name, oerr, "invalid_grant")
	}
	// The refusals did not count as reuse: the token still rotates.
	next := e.refreshWith(t, e.other, tr.RefreshToken, keyA)
	e.boundTo(t, "refresh with the family's key", next, keyA)
	e.valid(t, tr.AccessToken)

	// The binding stays with the family.
	_, oerr := e.srv.RefreshFor(ctx, e.other, next.RefreshToken, "", oauth.TokenExtras{DPoPKey: ""})
	wantErr(t, "RFC 9449 5 rotated token refreshed without a proof", oerr, "invalid_grant")
	e.boundTo(t, "second refresh", e.refreshWith(t, e.other, next.RefreshToken, keyA), keyA)
}

// TestE2EDPoPPublicClientUnboundFamily: a family begun without a proof
// stays unbound; a later refresh with a proof binds its access token only.
func TestE2EDPoPPublicClientUnboundFamily(t *testing.T) {
	e := newDPoPE2E(t, nil)
	tr := e.exchange(t, e.other, "")
	e.boundTo(t, "code exchange without a proof", tr, "")
	tr = e.refreshWith(t, e.other, tr.RefreshToken, keyA)
	e.boundTo(t, "refresh with a proof", tr, keyA)
	tr = e.refreshWith(t, e.other, tr.RefreshToken, "")
	e.boundTo(t, "refresh without a proof", tr, "")
}

// TestE2EDPoPRequired: RFC 9449 5.2, a client registered with
// dpop_bound_access_tokens gets nothing without a proof, and the code or
// refresh token refused is still good for a request with one.
func TestE2EDPoPRequired(t *testing.T) {
	e := newDPoPE2E(t, nil)
	ctx := context.Background()
	code := e.code(t, e.strict)
	_, oerr := e.srv.Exchange(ctx, e.strict, code, strictRedirect, verifier)
	wantErr(t, "RFC 9449 5.2 code exchange without a proof", oerr, "invalid_dpop_proof")
	if oerr.Status != 400 {
		t.Errorf("status %d, want 400", oerr.Status)
	}
	tr, oerr := e.srv.ExchangeFor(ctx, e.strict, code, strictRedirect, verifier, oauth.TokenExtras{DPoPKey: keyA})
	if oerr != nil {
		t.Fatalf("the code was consumed by the refused exchange: %v", oerr)
	}
	e.boundTo(t, "code exchange with a proof", tr, keyA)

	_, oerr = e.srv.Refresh(ctx, e.strict, tr.RefreshToken, "")
	wantErr(t, "RFC 9449 5.2 refresh without a proof", oerr, "invalid_dpop_proof")
	e.boundTo(t, "refresh with a proof", e.refreshWith(t, e.strict, tr.RefreshToken, keyB), keyB)
}

// TestE2EDPoPGraceRetry: within refresh_grace a retry gets the pair of
// the first rotation only under the same binding: a proof of the same
// key, or none when the first had none.
func TestE2EDPoPGraceRetry(t *testing.T) {
	e := newDPoPE2E(t, func(s *oauth.AuthServer) { s.RefreshGrace = time.Minute })
	ctx := context.Background()
	for _, first := range []string{keyA, ""} {
		tr := e.exchange(t, e.app, "")
		rotated := e.refreshWith(t, e.app, tr.RefreshToken, first)
		for _, retry := range []string{keyA, keyB, ""} {
			got, oerr := e.srv.RefreshFor(ctx, e.app, tr.RefreshToken, "", oauth.TokenExtras{DPoPKey: retry})
			if retry != first {
				wantErr(t, "retry under another binding", oerr, "invalid_grant")
				continue
			}
			if oerr != nil || got.AccessToken != rotated.AccessToken || got.TokenType != rotated.TokenType {
				t.Fatalf("retry with key %q after a rotation with key %q: %+v, %v", retry, first, got.TokenType, oerr)
			}
		}
		// The refused retries revoked nothing.
		e.boundTo(t, "the rotated pair", rotated, first)
	}
}

// TestE2EDPoPIntrospection: RFC 9449 6.2, a bound access token's
// introspection names its key in cnf and its token_type is DPoP.
func TestE2EDPoPIntrospection(t *testing.T) {
	e := newDPoPE2E(t, nil)
	ctx := context.Background()
	bound := e.exchange(t, e.app, keyA)
	in, oerr := e.srv.Introspect(ctx, e.app, bound.AccessToken)
	if oerr != nil {
		t.Fatal(oerr)
	}
	body, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if !in.Active || in.TokenType != "DPoP" || !strings.Contains(string(body), `"cnf":{"jkt":"`+keyA+`"}`) {
		t.Errorf("bound access token: %s", body)
	}

	unbound := e.exchange(t, e.app, "")
	for _, tok := range []string{unbound.AccessToken, bound.RefreshToken} {
		in, oerr = e.srv.Introspect(ctx, e.app, tok)
		if oerr != nil {
			t.Fatal(oerr)
		}
		body, _ := json.Marshal(in)
		if !in.Active || in.TokenType != "Bearer" || strings.Contains(string(body), "cnf") {
			t.Errorf("unbound token: %s", body)
		}
	}
}

// TestE2EDPoPClientCredentials: RFC 9449 5 on the client_credentials
// grant: a proof binds the client's token, which introspection names;
// without one it is a bearer token, and dpop required refuses that.
func TestE2EDPoPClientCredentials(t *testing.T) {
	m := newMachineE2E(t)
	ctx := context.Background()
	tr, oerr := m.srv.ClientCredentialsDPoP(ctx, m.machine, "energy:read", keyA)
	if oerr != nil {
		t.Fatal(oerr)
	}
	if tr.TokenType != "DPoP" || tr.RefreshToken != "" {
		t.Errorf("response %+v; want DPoP and no refresh token", tr)
	}
	if p := m.valid(t, tr.AccessToken); p.DPoPKey != keyA || p.ClientID != "machine" {
		t.Errorf("principal %+v; want bound to %s", p, keyA)
	}
	in, oerr := m.srv.Introspect(ctx, m.machine, tr.AccessToken)
	if oerr != nil || in.TokenType != "DPoP" || in.Cnf == nil || in.Cnf.JKT != keyA {
		t.Errorf("introspection %+v, %v", in, oerr)
	}
	if tr := m.clientToken(t, "energy:read"); tr.TokenType != "Bearer" || m.valid(t, tr.AccessToken).DPoPKey != "" {
		t.Errorf("without a proof: %+v", tr)
	}

	strict, err := oauth.NewClient(oauth.ClientOptions{ID: "strict-machine", Secret: machineSecret,
		GrantTypes: []string{oauth.GrantTypeClientCredentials}, DPoPBoundAccessTokens: true})
	if err != nil {
		t.Fatal(err)
	}
	m.srv.Clients.(oauth.ClientRegistry)["strict-machine"] = strict
	_, oerr = m.srv.ClientCredentials(ctx, strict, "energy:read")
	wantErr(t, "RFC 9449 5.2 client_credentials without a proof", oerr, "invalid_dpop_proof")
	if tr, oerr := m.srv.ClientCredentialsDPoP(ctx, strict, "energy:read", keyB); oerr != nil || tr.TokenType != "DPoP" {
		t.Errorf("with a proof: %+v, %v", tr, oerr)
	}
}
