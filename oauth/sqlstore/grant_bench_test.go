package sqlstore

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/tokengate/caddy-tokengate/oauth"
)

// Token endpoint grants through oauth.AuthServer on a real store: what an
// authorization_code or refresh_token request costs once the request is
// parsed, from client authentication to the token response.
//
//	go test -run '^$' -bench 'ExchangeCode|Refresh' -benchmem ./oauth/sqlstore/

// The client of the grant benchmarks: confidential, PKCE required (the
// default), as the token endpoint authenticates it.
const (
	benchClientID     = "bench-app"
	benchClientSecret = "bench-secret"
	benchRedirectURI  = "https://app.example/cb"
	benchUserID       = "00000000-0000-4000-8000-000000000001"
	// benchVerifier is the code_verifier of RFC 7636 appendix B.
	benchVerifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
)

// newBenchAuthServer returns an AuthServer over a fresh store opened by open,
// with the benchmark client registered.
func newBenchAuthServer(b *testing.B, open benchOpen) *oauth.AuthServer {
	b.Helper()
	store, ok := open(b).(oauth.GrantStore)
	if !ok {
		b.Fatal("store is not an oauth.GrantStore")
	}
	c, err := oauth.NewClient(oauth.ClientOptions{
		ID:           benchClientID,
		Secret:       benchClientSecret,
		RedirectURIs: []string{benchRedirectURI},
	})
	if err != nil {
		b.Fatal(err)
	}
	reg, err := oauth.NewClientRegistry(c)
	if err != nil {
		b.Fatal(err)
	}
	return &oauth.AuthServer{
		Store:   store,
		Clients: &oauth.Clients{Static: reg},
		Scopes: []oauth.Scope{
			{Name: "chargers:read"},
			{Name: "sessions:read"},
		},
	}
}

// benchAuthorize issues one authorization code with an S256 challenge for
// benchVerifier.
func benchAuthorize(b *testing.B, srv *oauth.AuthServer) string {
	b.Helper()
	code, oerr, _ := srv.Authorize(context.Background(), oauth.AuthorizeRequest{
		ClientID:            benchClientID,
		RedirectURI:         benchRedirectURI,
		ResponseType:        "code",
		Scope:               "chargers:read sessions:read",
		State:               "bench",
		CodeChallenge:       oauth.S256Challenge(benchVerifier),
		CodeChallengeMethod: oauth.PKCEMethodS256,
		UserID:              benchUserID,
	})
	if oerr != nil {
		b.Fatalf("Authorize: %v", oerr)
	}
	return code
}

// benchAuthenticate authenticates the benchmark client as the token
// endpoint does.
func benchAuthenticate(b *testing.B, srv *oauth.AuthServer) *oauth.Client {
	b.Helper()
	c, err := srv.Clients.(*oauth.Clients).Authenticate(context.Background(), benchClientID, benchClientSecret, true)
	if err != nil {
		b.Fatalf("Authenticate: %v", err)
	}
	return c
}

// benchExchangeCode exchanges b.N codes, all issued before the timer starts.
func benchExchangeCode(b *testing.B, open benchOpen) {
	srv := newBenchAuthServer(b, open)
	codes := make([]string, b.N)
	for i := range codes {
		codes[i] = benchAuthorize(b, srv)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c := benchAuthenticate(b, srv)
		resp, oerr := srv.Exchange(ctx, c, codes[i], benchRedirectURI, benchVerifier)
		if oerr != nil || resp.AccessToken == "" || resp.RefreshToken == "" {
			b.Fatalf("Exchange: %+v, %v", resp, oerr)
		}
	}
}

// BenchmarkExchangeCodeSQLite is one authorization code exchange, with
// client authentication and PKCE, on SQLite.
func BenchmarkExchangeCodeSQLite(b *testing.B) { benchExchangeCode(b, openSQLiteForBench) }

// BenchmarkExchangeCodePostgres is one authorization code exchange, with
// client authentication and PKCE, on PostgreSQL (skipped without PostgreSQL
// unless TOKENGATE_REQUIRE_POSTGRES=1).
func BenchmarkExchangeCodePostgres(b *testing.B) { benchExchangeCode(b, openPostgresForBench) }

// startRefreshChain exchanges a new code and returns the family's refresh
// token.
func startRefreshChain(b *testing.B, srv *oauth.AuthServer) string {
	b.Helper()
	tr, oerr := srv.Exchange(context.Background(), benchAuthenticate(b, srv), benchAuthorize(b, srv), benchRedirectURI, benchVerifier)
	if oerr != nil {
		b.Fatalf("Exchange: %v", oerr)
	}
	return tr.RefreshToken
}

// rotate authenticates the client, as the token endpoint does, and
// rotates refresh, returning the new refresh token.
func rotate(srv *oauth.AuthServer, refresh string) (string, error) {
	c, err := srv.Clients.(*oauth.Clients).Authenticate(context.Background(), benchClientID, benchClientSecret, true)
	if err != nil {
		return "", err
	}
	resp, oerr := srv.Refresh(context.Background(), c, refresh, "")
	if oerr != nil {
		return "", oerr
	}
	if resp.AccessToken == "" || resp.RefreshToken == refresh {
		return "", fmt.Errorf("refresh answered %+v", resp)
	}
	return resp.RefreshToken, nil
}

// newRefreshBench returns an AuthServer on a store from open, after one
// rotation outside the timed part: the first also reads the server key,
// which the AuthServer then keeps.
func newRefreshBench(b *testing.B, open benchOpen) *oauth.AuthServer {
	srv := newBenchAuthServer(b, open)
	if _, err := rotate(srv, startRefreshChain(b, srv)); err != nil {
		b.Fatalf("Refresh: %v", err)
	}
	return srv
}

// benchRefresh rotates one family's refresh token in a chain: each
// iteration presents the refresh token the previous one returned.
func benchRefresh(b *testing.B, open benchOpen) {
	srv := newRefreshBench(b, open)
	refresh := startRefreshChain(b, srv)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if refresh, err = rotate(srv, refresh); err != nil {
			b.Fatalf("Refresh: %v", err)
		}
	}
}

// BenchmarkRefreshSQLite is one refresh token rotation, with client
// authentication, on SQLite.
func BenchmarkRefreshSQLite(b *testing.B) { benchRefresh(b, openSQLiteForBench) }

// BenchmarkRefreshPostgres is one refresh token rotation, with client
// authentication, on PostgreSQL (skipped without PostgreSQL unless
// TOKENGATE_REQUIRE_POSTGRES=1).
func BenchmarkRefreshPostgres(b *testing.B) { benchRefresh(b, openPostgresForBench) }

// benchRefreshParallel measures refresh rotations from concurrent clients,
// as the token endpoint sees them under load: each goroutine rotates a
// chain of its own. On SQLite, concurrent rotations share commits.
func benchRefreshParallel(b *testing.B, open benchOpen) {
	srv := newRefreshBench(b, open)
	const parallelism = 16 // 32 goroutines on 2 cores, like concurrent connections
	b.SetParallelism(parallelism)
	chains := make(chan string, parallelism*runtime.GOMAXPROCS(0))
	for range cap(chains) {
		chains <- startRefreshChain(b, srv)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		refresh := <-chains
		for pb.Next() {
			var err error
			if refresh, err = rotate(srv, refresh); err != nil {
				b.Errorf("Refresh: %v", err)
				return
			}
		}
	})
}

// BenchmarkRefreshParallelSQLite measures concurrent rotations on SQLite.
func BenchmarkRefreshParallelSQLite(b *testing.B) { benchRefreshParallel(b, openSQLiteForBench) }

// BenchmarkRefreshParallelPostgres measures concurrent rotations on
// PostgreSQL.
func BenchmarkRefreshParallelPostgres(b *testing.B) { benchRefreshParallel(b, openPostgresForBench) }

// grownTokens is how many token rows BenchmarkRefreshParallelSQLiteGrown
// starts with: about what the load benchmark's store holds after a few
// rounds, when the token indexes no longer fit SQLite's page cache.
const grownTokens = 400_000

// openGrownSQLiteForBench opens a SQLite store already holding
// grownTokens tokens in grownTokens/2 families, written directly.
func openGrownSQLiteForBench(b *testing.B) benchStore {
	b.Helper()
	s := openSQLiteForBench(b).(*SQLite)
	ctx := context.Background()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Rollback()
	now := time.Now()
	for i := range grownTokens / 2 {
		family := fmt.Sprintf("grown-%08d", i)
		if _, err := tx.ExecContext(ctx, `INSERT INTO oauth_families (family_id, client_id, user_id, created_at) VALUES (?, ?, ?, ?)`,
			family, benchClientID, benchUserID, now.UnixMicro()); err != nil {
			b.Fatal(err)
		}
		for _, kind := range []string{"a", "r"} {
			h := oauth.HashToken(fmt.Sprintf("%s-%s", family, kind))
			if _, err := tx.ExecContext(ctx, `
				INSERT INTO oauth_tokens (token_hash, kind, family_id, client_id, user_id, scopes, issued_at, expires_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
				h[:], kind, family, benchClientID, benchUserID, "chargers:read", now.UnixMicro(), now.Add(time.Hour).UnixMicro()); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkRefreshParallelSQLiteGrown measures concurrent rotations on a
// SQLite store that already holds grownTokens tokens.
func BenchmarkRefreshParallelSQLiteGrown(b *testing.B) {
	benchRefreshParallel(b, openGrownSQLiteForBench)
}
