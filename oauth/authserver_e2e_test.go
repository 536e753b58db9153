package oauth_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/tokengate/caddy-tokengate/oauth"
	"github.com/tokengate/caddy-tokengate/oauth/sqlstore"
)

// RFC 7636 Appendix B.
const (
	verifier  = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
	redirect  = "https://app.example/cb"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type e2e struct {
	srv   *oauth.AuthServer
	store *sqlstore.SQLite
	val   *oauth.Validator
	clk   *clock
	logs  *observer.ObservedLogs
	app   *oauth.Client
	other *oauth.Client
}

func newE2E(t *testing.T, configure func(s *oauth.AuthServer)) *e2e {
	t.Helper()
	store, err := sqlstore.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "tokengate.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	val, err := oauth.NewValidator(store, oauth.CacheConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(val.Close)
	app, err := oauth.NewClient(oauth.ClientOptions{ID: "app", Secret: "s3cret", RedirectURIs: []string{redirect}})
	if err != nil {
		t.Fatal(err)
	}
	other, err := oauth.NewClient(oauth.ClientOptions{ID: "other", RedirectURIs: []string{"https://other.example/cb"}})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := oauth.NewClientRegistry(app, other)
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.InfoLevel)
	// The validator checks expiry against the wall clock, so the test
	// clock starts there.
	clk := &clock{t: time.Now().UTC().Truncate(time.Microsecond)}
	srv := &oauth.AuthServer{
		Store:      store,
		UserGrants: store,
		Validator:  val,
		Clients:    reg,
		Scopes: []oauth.Scope{
			{Name: "chargers:read"}, {Name: "sessions:read"}, {Name: "energy:read"},
		},
		Logger: zap.New(core),
		Audit:  auditToLog{zap.New(core)},
		Now:    clk.Now,
	}
	if configure != nil {
		configure(srv)
	}
	return &e2e{srv: srv, store: store, val: val, clk: clk, logs: logs, app: app, other: other}
}

func (e *e2e) authorize(t *testing.T, scope string) string {
	t.Helper()
	code, oerr, _ := e.srv.Authorize(context.Background(), oauth.AuthorizeRequest{
		ClientID: "app", RedirectURI: redirect, ResponseType: "code", Scope: scope,
		State: "st", CodeChallenge: challenge, CodeChallengeMethod: "S256", UserID: "alice",
	})
	if oerr != nil {
		t.Fatalf("Authorize: %v", oerr)
	}
	return code
}

func (e *e2e) tokens(t *testing.T, scope string) oauth.TokenResponse {
	t.Helper()
	tr, oerr := e.srv.Exchange(context.Background(), e.app, e.authorize(t, scope), redirect, verifier)
	if oerr != nil {
		t.Fatalf("Exchange: %v", oerr)
	}
	return tr
}

func (e *e2e) refresh(t *testing.T, rt, scope string) oauth.TokenResponse {
	t.Helper()
	tr, oerr := e.srv.Refresh(context.Background(), e.app, rt, scope)
	if oerr != nil {
		t.Fatalf("Refresh: %v", oerr)
	}
	return tr
}

func (e *e2e) valid(t *testing.T, access string) oauth.Principal {
	t.Helper()
	p, err := e.val.Validate(context.Background(), access)
	if err != nil {
		t.Fatalf("Validate: %v", err)
	}
	return p
}

func (e *e2e) refused(t *testing.T, what, access string) {
	t.Helper()
	if p, err := e.val.Validate(context.Background(), access); !errors.Is(err, oauth.ErrInvalidToken) {
		t.Fatalf("%s: Validate = %+v, %v; want ErrInvalidToken", what, p, err)
	}
}

func wantErr(t *testing.T, what string, got *oauth.Error, code string) {
	t.Helper()
	if got == nil || got.Code != code {
		t.Fatalf("%s = %v, want %s", what, got, code)
	}
}

// noSecretsLogged checks the rule that no token, code or secret is
// ever logged, in messages or fields.
func (e *e2e) noSecretsLogged(t *testing.T, secrets ...string) {
	t.Helper()
	for _, entry := range e.logs.All() {
		text := entry.Message
		for k, v := range entry.ContextMap() {
			text += " " + k + "=" + strings.ReplaceAll(strings.TrimSpace(fmtAny(v)), "\n", " ")
		}
		for _, s := range append(secrets, "s3cret", verifier) {
			if s != "" && strings.Contains(text, s) {
				t.Fatalf("log line %q contains a secret", entry.Message)
			}
		}
	}
}

func fmtAny(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case []any:
		var parts []string
		for _, x := range v {
			parts = append(parts, fmtAny(x))
		}
		return strings.Join(parts, " ")
	case error:
		return v.Error()
	}
	return ""
}

func TestE2ECodeFlow(t *testing.T) {
	e := newE2E(t, nil)
	ctx := context.Background()
	code := e.authorize(t, "chargers:read sessions:read")

	// RFC 6749 4.1.3 / RFC 7636 4.6: every failure is invalid_grant and
	// leaves the code usable.
	failures := []struct {
		name                     string
		client                   *oauth.Client
		redirect, code, verifier string
	}{
		{"RFC 7636 4.6 wrong verifier", e.app, redirect, code, strings.Replace(verifier, "d", "e", 1)},
		{"RFC 7636 4.1 malformed verifier", e.app, redirect, code, "short"},
		{"RFC 7636 4.6 missing verifier", e.app, redirect, code, ""},
		{"RFC 6749 4.1.3 other redirect_uri", e.app, redirect + "/x", code, verifier},
		{"RFC 6749 4.1.3 code of another client", e.other, redirect, code, verifier},
		{"RFC 6749 4.1.3 unknown code", e.app, redirect, e.authorizeOther(t), verifier},
	}
	for _, f := range failures {
		_, oerr := e.srv.Exchange(ctx, f.client, f.code, f.redirect, f.verifier)
		wantErr(t, f.name, oerr, "invalid_grant")
	}

	tr, oerr := e.srv.Exchange(ctx, e.app, code, redirect, verifier)
	if oerr != nil {
		t.Fatalf("Exchange: %v", oerr)
	}
	if tr.TokenType != "Bearer" || tr.ExpiresIn != 3600 || tr.Scope != "chargers:read sessions:read" {
		t.Errorf("token response = %+v", tr)
	}
	if !strings.HasPrefix(tr.AccessToken, "tga_") || !strings.HasPrefix(tr.RefreshToken, "tgr_") {
		t.Errorf("token prefixes: %q %q", tr.AccessToken[:4], tr.RefreshToken[:4])
	}
	p := e.valid(t, tr.AccessToken)
	if p.UserID != "alice" || p.ClientID != "app" || p.Kind != oauth.KindAccess || p.ScopeString() != tr.Scope {
		t.Errorf("principal = %+v", p)
	}
	// A refresh token is not a bearer token.
	e.refused(t, "refresh token as bearer", tr.RefreshToken)

	// RFC 6749 4.1.2: a second exchange is refused and revokes the tokens
	// the first one produced, also the cached ones.
	_, oerr = e.srv.Exchange(ctx, e.app, code, redirect, verifier)
	wantErr(t, "RFC 6749 4.1.2 code reuse", oerr, "invalid_grant")
	e.refused(t, "RFC 6749 4.1.2 code reuse revokes family", tr.AccessToken)
	_, oerr = e.srv.Refresh(ctx, e.app, tr.RefreshToken, "")
	wantErr(t, "refresh of a revoked family", oerr, "invalid_grant")
	if e.logs.FilterMessage("authorization code reused; family revoked").FilterFieldKey("family_id").Len() != 1 {
		t.Error("code reuse was not logged with its family")
	}
	e.noSecretsLogged(t, code, tr.AccessToken, tr.RefreshToken)
}

// authorizeOther returns a valid code text never stored.
func (e *e2e) authorizeOther(t *testing.T) string {
	t.Helper()
	text, _, err := oauth.NewToken(oauth.KindCode)
	if err != nil {
		t.Fatal(err)
	}
	return text
}

func TestE2ECodeExpires(t *testing.T) {
	e := newE2E(t, nil)
	code := e.authorize(t, "chargers:read")
	e.clk.Advance(10 * time.Minute)
	_, oerr := e.srv.Exchange(context.Background(), e.app, code, redirect, verifier)
	wantErr(t, "code_ttl 10m", oerr, "invalid_grant")
}

func TestE2EConcurrentExchange(t *testing.T) {
	e := newE2E(t, nil)
	code := e.authorize(t, "chargers:read")
	const n = 20
	errs := make([]*oauth.Error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			_, errs[i] = e.srv.Exchange(context.Background(), e.app, code, redirect, verifier)
		})
	}
	close(start)
	wg.Wait()
	ok := 0
	for _, oerr := range errs {
		if oerr == nil {
			ok++
		} else if oerr.Code != "invalid_grant" {
			t.Errorf("loser got %v, want invalid_grant", oerr)
		}
	}
	if ok != 1 {
		t.Fatalf("the contract: %d of %d racing exchanges succeeded, want 1", ok, n)
	}
}

func TestE2ERefresh(t *testing.T) {
	e := newE2E(t, nil)
	ctx := context.Background()
	first := e.tokens(t, "chargers:read sessions:read")
	e.valid(t, first.AccessToken) // cached from here on

	// RFC 6749 6: a wider scope is invalid_scope and consumes nothing.
	_, oerr := e.srv.Refresh(ctx, e.app, first.RefreshToken, "chargers:read energy:read")
	wantErr(t, "RFC 6749 6 wider scope", oerr, "invalid_scope")
	// Another client's refresh token is invalid_grant.
	_, oerr = e.srv.Refresh(ctx, e.other, first.RefreshToken, "")
	wantErr(t, "another client", oerr, "invalid_grant")

	e.clk.Advance(time.Minute)
	second := e.refresh(t, first.RefreshToken, "sessions:read")
	if second.Scope != "sessions:read" || second.AccessToken == first.AccessToken || second.RefreshToken == first.RefreshToken {
		t.Errorf("RFC 6749 6 narrower refresh = %+v", second)
	}
	if p := e.valid(t, second.AccessToken); p.ScopeString() != "sessions:read" {
		t.Errorf("narrowed access token scopes = %q", p.ScopeString())
	}
	// Access tokens issued before stay valid.
	e.valid(t, first.AccessToken)

	third := e.refresh(t, second.RefreshToken, "")
	if third.Scope != "sessions:read" {
		t.Errorf("refresh without scope keeps the narrowed scope, got %q", third.Scope)
	}
	e.valid(t, third.AccessToken)

	// RFC 9700 4.14.2: the rotated token presented again revokes the whole
	// family, cached access tokens included.
	_, oerr = e.srv.Refresh(ctx, e.app, first.RefreshToken, "")
	wantErr(t, "RFC 9700 4.14.2 refresh reuse", oerr, "invalid_grant")
	for _, at := range []string{first.AccessToken, second.AccessToken, third.AccessToken} {
		e.refused(t, "RFC 9700 4.14.2 family revoked", at)
	}
	_, oerr = e.srv.Refresh(ctx, e.app, third.RefreshToken, "")
	wantErr(t, "latest refresh token of a revoked family", oerr, "invalid_grant")
	if e.logs.FilterMessage(oauth.AuditRefreshReuse).FilterField(zap.String("user_id", "alice")).Len() != 1 {
		t.Errorf("refresh reuse was not audited once with its user: %v", e.logs.FilterMessage(oauth.AuditRefreshReuse).All())
	}
	e.noSecretsLogged(t, first.AccessToken, first.RefreshToken, second.AccessToken, second.RefreshToken, third.RefreshToken)
}

func TestE2ERefreshGrace(t *testing.T) {
	e := newE2E(t, func(s *oauth.AuthServer) { s.RefreshGrace = 30 * time.Second })
	first := e.tokens(t, "chargers:read")
	a := e.refresh(t, first.RefreshToken, "")
	e.clk.Advance(20 * time.Second)
	b := e.refresh(t, first.RefreshToken, "")
	if a.AccessToken != b.AccessToken || a.RefreshToken != b.RefreshToken || a.Scope != b.Scope {
		t.Fatal("refresh_grace: a retry within the grace did not return the same pair")
	}
	if b.ExpiresIn != a.ExpiresIn-20 {
		t.Errorf("replayed expires_in = %d, want %d", b.ExpiresIn, a.ExpiresIn-20)
	}
	e.valid(t, b.AccessToken)
	// The new refresh token works as usual.
	c := e.refresh(t, a.RefreshToken, "")
	e.clk.Advance(11 * time.Second)
	// Past the grace the first token is reuse.
	_, oerr := e.srv.Refresh(context.Background(), e.app, first.RefreshToken, "")
	wantErr(t, "RFC 9700 4.14.2 reuse after grace", oerr, "invalid_grant")
	e.refused(t, "family revoked after grace", c.AccessToken)
}

func TestE2ERefreshMaxAge(t *testing.T) {
	e := newE2E(t, func(s *oauth.AuthServer) { s.RefreshMaxAge = time.Hour })
	first := e.tokens(t, "chargers:read")
	start := e.clk.Now()
	if in, _ := e.srv.Introspect(context.Background(), e.app, first.RefreshToken); in.Exp != start.Add(time.Hour).Unix() {
		t.Errorf("first refresh token exp = %d, want the family's max age %d", in.Exp, start.Add(time.Hour).Unix())
	}
	e.clk.Advance(30 * time.Minute)
	second := e.refresh(t, first.RefreshToken, "")
	if in, _ := e.srv.Introspect(context.Background(), e.app, second.RefreshToken); in.Exp != start.Add(time.Hour).Unix() {
		t.Errorf("rotated refresh token exp = %d, want the family's max age %d", in.Exp, start.Add(time.Hour).Unix())
	}
	e.clk.Advance(31 * time.Minute)
	_, oerr := e.srv.Refresh(context.Background(), e.app, second.RefreshToken, "")
	wantErr(t, "refresh_max_age from the authorization", oerr, "invalid_grant")
}

func TestE2ERevokeAndIntrospect(t *testing.T) {
	e := newE2E(t, nil)
	ctx := context.Background()
	tr := e.tokens(t, "chargers:read sessions:read")
	e.valid(t, tr.AccessToken)

	in, oerr := e.srv.Introspect(ctx, e.app, tr.AccessToken)
	if oerr != nil || !in.Active || in.ClientID != "app" || in.Sub != "alice" || in.Scope != tr.Scope ||
		in.TokenType != "Bearer" || in.Exp != e.clk.Now().Add(time.Hour).Unix() || in.Iat != e.clk.Now().Unix() {
		t.Errorf("RFC 7662 2.2 introspection = %+v, %v", in, oerr)
	}
	if in, _ := e.srv.Introspect(ctx, e.app, tr.RefreshToken); !in.Active {
		t.Error("RFC 7662 refresh token not active")
	}
	if in, _ := e.srv.Introspect(ctx, e.other, tr.AccessToken); in.Active {
		t.Error("another client sees the token active")
	}

	// Another client's revocation is a silent no-op.
	if oerr := e.srv.Revoke(ctx, e.other, tr.RefreshToken, "refresh_token"); oerr != nil {
		t.Fatalf("revoke by another client = %v, want success", oerr)
	}
	e.valid(t, tr.AccessToken)

	if oerr := e.srv.Revoke(ctx, e.app, tr.AccessToken, "access_token"); oerr != nil {
		t.Fatal(oerr)
	}
	e.refused(t, "RFC 7009 2.1 revoked access token", tr.AccessToken)
	if in, _ := e.srv.Introspect(ctx, e.app, tr.AccessToken); in.Active {
		t.Error("revoked access token introspects active")
	}
	// The refresh token still works after its access token was revoked.
	next := e.refresh(t, tr.RefreshToken, "")
	e.valid(t, next.AccessToken)

	// Revoking a refresh token revokes its family (the hint is ignored).
	if oerr := e.srv.Revoke(ctx, e.app, next.RefreshToken, "access_token"); oerr != nil {
		t.Fatal(oerr)
	}
	e.refused(t, "RFC 7009 2.1 family of a revoked refresh token", next.AccessToken)
	_, oerr = e.srv.Refresh(ctx, e.app, next.RefreshToken, "")
	wantErr(t, "revoked refresh token", oerr, "invalid_grant")

	// RFC 7009 2.2: unknown tokens are a success.
	unknown, _, _ := oauth.NewToken(oauth.KindAccess)
	if oerr := e.srv.Revoke(ctx, e.app, unknown, ""); oerr != nil {
		t.Errorf("unknown token = %v, want success", oerr)
	}
	e.noSecretsLogged(t, tr.AccessToken, tr.RefreshToken, next.AccessToken, next.RefreshToken)
}

func TestE2EConsent(t *testing.T) {
	e := newE2E(t, nil)
	ctx := context.Background()
	if need, err := e.srv.NeedsConsent(ctx, "alice", "app", []string{"chargers:read"}); err != nil || !need {
		t.Fatalf("before authorizing: %v, %v", need, err)
	}
	e.authorize(t, "chargers:read")
	if need, _ := e.srv.NeedsConsent(ctx, "alice", "app", []string{"chargers:read"}); need {
		t.Error("seed 004: consent not recorded by Authorize")
	}
	if need, _ := e.srv.NeedsConsent(ctx, "alice", "app", []string{"chargers:read", "energy:read"}); !need {
		t.Error("seed 004: new scope must need consent")
	}
}

// BenchmarkE2EExchangeAndRefresh measures the token endpoint's work over
// SQLite: one code exchange and one rotation per iteration.
func BenchmarkE2EExchangeAndRefresh(b *testing.B) {
	store, err := sqlstore.OpenSQLite(context.Background(), filepath.Join(b.TempDir(), "tokengate.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	app, _ := oauth.NewClient(oauth.ClientOptions{ID: "app", Secret: "s3cret", RedirectURIs: []string{redirect}})
	reg, _ := oauth.NewClientRegistry(app)
	srv := &oauth.AuthServer{Store: store, Clients: reg, Scopes: []oauth.Scope{{Name: "chargers:read"}}}
	ctx := context.Background()
	for b.Loop() {
		code, oerr, _ := srv.Authorize(ctx, oauth.AuthorizeRequest{
			ClientID: "app", RedirectURI: redirect, ResponseType: "code", Scope: "chargers:read",
			State: "s", CodeChallenge: challenge, CodeChallengeMethod: "S256", UserID: "alice",
		})
		if oerr != nil {
			b.Fatal(oerr)
		}
		tr, oerr := srv.Exchange(ctx, app, code, redirect, verifier)
		if oerr != nil {
			b.Fatal(oerr)
		}
		if _, oerr := srv.Refresh(ctx, app, tr.RefreshToken, ""); oerr != nil {
			b.Fatal(oerr)
		}
	}
}

// auditToLog writes audit events to a logger, so that the tests that read
// the log also see them.
type auditToLog struct{ logger *zap.Logger }

func (a auditToLog) Audit(_ context.Context, e oauth.AuditEvent) {
	a.logger.Info(e.Message, zap.String("user_id", e.UserID), zap.String("client_id", e.ClientID),
		zap.String("grant", string(e.Grant)), zap.Strings("scope", e.Scopes))
}
