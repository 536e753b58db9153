package oauth_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"

	"github.com/tokengate/caddy-tokengate/oauth"
	"github.com/tokengate/caddy-tokengate/oauth/sqlstore"
)

// storedE2E is an authorization server whose clients are the static "app"
// and what a ClientAdmin adds to a SQLite store, as the Caddy side wires
// them.
type storedE2E struct {
	*e2e
	store   oauth.Store
	clients *oauth.Clients
	admin   *oauth.ClientAdmin
	audit   *auditRecorder
}

type auditRecorder struct{ events []oauth.AuditEvent }

func (r *auditRecorder) Audit(_ context.Context, e oauth.AuditEvent) { r.events = append(r.events, e) }

func newStoredE2E(t *testing.T) *storedE2E {
	t.Helper()
	s := &storedE2E{audit: &auditRecorder{}}
	s.e2e = newE2E(t, func(srv *oauth.AuthServer) {
		// The SQLite store newE2E opened, as a whole.
		s.store = srv.Store.(*sqlstore.SQLite)
		s.clients = &oauth.Clients{Static: srv.Clients.(oauth.ClientRegistry), Stored: oauth.NewStoredClients(s.store)}
		srv.Clients = s.clients
	})
	s.admin = &oauth.ClientAdmin{Clients: s.clients, Store: s.store, Audit: s.audit}
	return s
}

func (s *storedE2E) add(t *testing.T, spec oauth.ClientSpec) (*oauth.Client, string) {
	t.Helper()
	rec, secret, err := s.admin.Create(context.Background(), spec)
	if err != nil {
		t.Fatalf("Create(%s): %v", spec.ID, err)
	}
	c, err := s.clients.FindClient(context.Background(), rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	return c, secret
}

func (s *storedE2E) codeFor(t *testing.T, clientID, scope string) (string, *oauth.Error) {
	t.Helper()
	code, oerr, _ := s.srv.Authorize(context.Background(), oauth.AuthorizeRequest{
		ClientID: clientID, RedirectURI: redirect, ResponseType: "code", Scope: scope,
		State: "s", CodeChallenge: challenge, CodeChallengeMethod: "S256", UserID: "alice",
	})
	return code, oerr
}

func (s *storedE2E) tokens(t *testing.T, c *oauth.Client, scope string) oauth.TokenResponse {
	t.Helper()
	code, oerr := s.codeFor(t, c.ID, scope)
	if oerr != nil {
		t.Fatalf("Authorize(%s): %v", c.ID, oerr)
	}
	tr, oerr := s.srv.Exchange(context.Background(), c, code, redirect, verifier)
	if oerr != nil {
		t.Fatalf("Exchange(%s): %v", c.ID, oerr)
	}
	return tr
}

func wantOAuthError(t *testing.T, what string, got *oauth.Error, code string) {
	t.Helper()
	if got == nil || got.Code != code {
		t.Errorf("%s = %v, want %s", what, got, code)
	}
}

func TestStoredClientLifecycle(t *testing.T) {
	s := newStoredE2E(t)
	ctx := context.Background()
	c, secret := s.add(t, oauth.ClientSpec{ID: "billing", Name: "Billing", RedirectURIs: []string{redirect},
		Scopes: []string{"chargers:read", "sessions:read"}})
	// a secret of 256 bits and more; only its hash is kept.
	if !strings.HasPrefix(secret, "tgs_") || len(secret) < 4+43 {
		t.Fatalf("secret %q: want tgs_ and 43 base64url characters", secret)
	}
	rec, err := s.store.GetClient(ctx, "billing")
	if sum := sha256.Sum256([]byte(secret)); err != nil || string(rec.SecretHash) != string(sum[:]) {
		t.Fatalf("stored secret hash is not SHA-256 of the secret (%v)", err)
	}
	if _, err := s.clients.Authenticate(ctx, "billing", secret, true); err != nil {
		t.Fatalf("Authenticate with the secret: %v", err)
	}
	for name, pass := range map[string]string{"wrong secret": secret + "x", "no secret": ""} {
		if _, err := s.clients.Authenticate(ctx, "billing", pass, pass != ""); !errors.Is(err, oauth.ErrInvalidClient) {
			t.Errorf("%s: %v, want ErrInvalidClient", name, err)
		}
	}

	tr := s.tokens(t, c, "chargers:read sessions:read")
	// refreshes get at most the new scopes at once.
	if _, err := s.admin.Update(ctx, "billing", oauth.ClientSpec{Name: "Billing 2", RedirectURIs: []string{redirect}, Scopes: []string{"sessions:read"}}); err != nil {
		t.Fatal(err)
	}
	c, _ = s.clients.FindClient(ctx, "billing")
	if c.Name != "Billing 2" {
		t.Errorf("name after Update = %q", c.Name)
	}
	_, oerr := s.srv.Refresh(ctx, c, tr.RefreshToken, "chargers:read")
	wantOAuthError(t, "refresh asking for a scope taken away", oerr, "invalid_scope")
	narrowed, oerr := s.srv.Refresh(ctx, c, tr.RefreshToken, "")
	if oerr != nil || narrowed.Scope != "sessions:read" {
		t.Fatalf("refresh after narrowing = %q, %v; want sessions:read", narrowed.Scope, oerr)
	}

	_, oerr = s.codeFor(t, "billing", "chargers:read")
	wantOAuthError(t, "authorize for a scope taken away", oerr, "invalid_scope")

	// secret rotation: the old secret stops at once.
	fresh, err := s.admin.RotateSecret(ctx, "billing")
	if err != nil || fresh == secret {
		t.Fatalf("RotateSecret = %q, %v", fresh, err)
	}
	if _, err := s.clients.Authenticate(ctx, "billing", secret, true); !errors.Is(err, oauth.ErrInvalidClient) {
		t.Errorf("the old secret after rotation: %v, want ErrInvalidClient", err)
	}
	if c, err = s.clients.Authenticate(ctx, "billing", fresh, true); err != nil {
		t.Fatalf("the new secret: %v", err)
	}

	// codes and refresh tokens stop, access tokens run out.
	pending, _ := s.codeFor(t, "billing", "sessions:read")
	if err := s.admin.Delete(ctx, "billing"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.clients.FindClient(ctx, "billing"); !errors.Is(err, oauth.ErrNotFound) {
		t.Errorf("FindClient after Delete: %v, want ErrNotFound", err)
	}
	_, oerr = s.srv.Refresh(ctx, c, narrowed.RefreshToken, "")
	wantOAuthError(t, "refresh by an instance that still knows the removed client", oerr, "invalid_grant")
	_, oerr = s.srv.Exchange(ctx, c, pending, redirect, verifier)
	wantOAuthError(t, "code exchange after removal", oerr, "invalid_grant")
	if _, err := s.val.Validate(ctx, narrowed.AccessToken); err != nil {
		t.Errorf("access token of a removed client: %v, want it valid until it expires", err)
	}

	// A later client of the same id gets none of it back.
	again, _ := s.add(t, oauth.ClientSpec{ID: "billing", Name: "Billing again", RedirectURIs: []string{redirect}, Scopes: []string{"sessions:read"}})
	_, oerr = s.srv.Refresh(ctx, again, narrowed.RefreshToken, "")
	wantOAuthError(t, "refresh token of the earlier client", oerr, "invalid_grant")
	_, oerr = s.srv.Exchange(ctx, again, pending, redirect, verifier)
	wantOAuthError(t, "code of the earlier client", oerr, "invalid_grant")

	var msgs []string
	for _, e := range s.audit.events {
		msgs = append(msgs, e.Message+" "+e.ClientID)
	}
	want := "client added billing,client updated billing,client secret rotated billing,client removed billing,client added billing"
	if got := strings.Join(msgs, ","); got != want {
		t.Errorf("audit events %q, want %q", got, want)
	}
}

// the static clients' ids cannot be taken, changed or removed,
// and a stored id in use is a conflict.
func TestClientAdminConflicts(t *testing.T) {
	s := newStoredE2E(t)
	ctx := context.Background()
	spec := oauth.ClientSpec{ID: "app", Name: "Taken", RedirectURIs: []string{redirect}}
	if _, _, err := s.admin.Create(ctx, spec); !errors.Is(err, oauth.ErrStaticClient) {
		t.Errorf("Create with a static id: %v, want ErrStaticClient", err)
	}
	if _, err := s.admin.Update(ctx, "app", spec); !errors.Is(err, oauth.ErrStaticClient) {
		t.Errorf("Update of a static client: %v, want ErrStaticClient", err)
	}
	if err := s.admin.Delete(ctx, "app"); !errors.Is(err, oauth.ErrStaticClient) {
		t.Errorf("Delete of a static client: %v, want ErrStaticClient", err)
	}
	if _, err := s.admin.RotateSecret(ctx, "app"); !errors.Is(err, oauth.ErrStaticClient) {
		t.Errorf("RotateSecret of a static client: %v, want ErrStaticClient", err)
	}
	spec.ID = "billing"
	s.add(t, spec)
	if _, _, err := s.admin.Create(ctx, spec); !errors.Is(err, oauth.ErrClientExists) {
		t.Errorf("Create with a stored id: %v, want ErrClientExists", err)
	}
	for name, call := range map[string]func() error{
		"Update": func() error { _, err := s.admin.Update(ctx, "nobody", spec); return err },
		"Delete": func() error { return s.admin.Delete(ctx, "nobody") },
		"Rotate": func() error { _, err := s.admin.RotateSecret(ctx, "nobody"); return err },
	} {
		if err := call(); !errors.Is(err, oauth.ErrNotFound) {
			t.Errorf("%s of an unknown client: %v, want ErrNotFound", name, err)
		}
	}
	// A public client: no secret, none to rotate, PKCE always.
	pub, secret := s.add(t, oauth.ClientSpec{Name: "Mobile", RedirectURIs: []string{redirect}, Public: true})
	if secret != "" || pub.Confidential() || !strings.HasPrefix(pub.ID, "c_") {
		t.Errorf("public client %+v with secret %q: want a generated id and no secret", pub, secret)
	}
	if _, err := s.admin.RotateSecret(ctx, pub.ID); !errors.Is(err, oauth.ErrPublicClient) {
		t.Errorf("RotateSecret of a public client: %v, want ErrPublicClient", err)
	}
	list, err := s.clients.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, l := range list {
		ids = append(ids, l.Client.ID)
	}
	if got := strings.Join(ids, " "); got != "app billing "+pub.ID+" other" {
		t.Errorf("List ids %q, want app, billing, %s, other (sorted, static and stored)", got, pub.ID)
	}
}
