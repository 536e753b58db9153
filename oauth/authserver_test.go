package oauth

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// recordingGrantStore is a GrantStore for the AuthServer's own decisions:
// it keeps codes and consents and can be made to fail. Exchange and
// rotation are tested against the real stores (authserver_sqlite_test.go,
// sqlstore's grant suite).
type recordingGrantStore struct {
	fail     bool
	codes    []Code
	consents map[string][]string
	calls    int
}

var errStoreDown = errors.New("store down")

func (s *recordingGrantStore) SaveCode(ctx context.Context, c Code) error {
	s.calls++
	if s.fail {
		return errStoreDown
	}
	s.codes = append(s.codes, c)
	return nil
}

func (s *recordingGrantStore) ExchangeCode(context.Context, TokenHash, time.Time, func(Code) error, IssuedPair) (Code, error) {
	s.calls++
	return Code{}, errStoreDown
}

func (s *recordingGrantStore) RotateRefresh(context.Context, TokenHash, string, time.Time, time.Duration, func(RefreshGrant) error, IssuedPair) (Rotation, error) {
	s.calls++
	return Rotation{}, errStoreDown
}

func (s *recordingGrantStore) RevokeToken(context.Context, TokenHash, string, time.Time) ([]TokenHash, error) {
	s.calls++
	return nil, errStoreDown
}

func (s *recordingGrantStore) IntrospectToken(context.Context, TokenHash) (TokenInfo, error) {
	s.calls++
	return TokenInfo{}, errStoreDown
}

func (s *recordingGrantStore) GrantedScopes(ctx context.Context, userID, clientID string) ([]string, error) {
	s.calls++
	if s.fail {
		return nil, errStoreDown
	}
	return s.consents[userID+"\x00"+clientID], nil
}

func (s *recordingGrantStore) RecordConsent(ctx context.Context, userID, clientID string, scopes []string) error {
	s.calls++
	if s.fail {
		return errStoreDown
	}
	if s.consents == nil {
		s.consents = map[string][]string{}
	}
	k := userID + "\x00" + clientID
	for _, sc := range scopes {
		if !slices.Contains(s.consents[k], sc) {
			s.consents[k] = append(s.consents[k], sc)
		}
	}
	return nil
}

func (s *recordingGrantStore) ServerKey(context.Context) ([]byte, error) {
	s.calls++
	return nil, errStoreDown
}

func (s *recordingGrantStore) PurgeExpired(context.Context, time.Time) (int, error) {
	s.calls++
	return 0, errStoreDown
}

var _ GrantStore = (*recordingGrantStore)(nil)

var testScopes = []Scope{
	{"chargers:read", "See your chargers"},
	{"chargers:write", "Register chargers"},
	{"sessions:read", "See your charging sessions"},
	{"energy:read", "See your energy statistics"},
}

func newTestAuthServer(t *testing.T, store GrantStore) *AuthServer {
	t.Helper()
	reg, err := NewClientRegistry(
		mustClient(t, ClientOptions{ID: "spa", RedirectURIs: []string{"https://spa.example/cb"}, Scopes: []string{"chargers:read", "sessions:read"}}),
		mustClient(t, ClientOptions{ID: "server", Secret: "s3cret", PKCEOptional: true, RedirectURIs: []string{"https://server.example/cb"}}),
		mustClient(t, ClientOptions{ID: "strict", Secret: "s3cret", RedirectURIs: []string{"https://strict.example/cb"}}),
	)
	if err != nil {
		t.Fatal(err)
	}
	return &AuthServer{Store: store, Clients: reg, Scopes: testScopes}
}

func TestAuthorizeValidationOrder(t *testing.T) {
	good := AuthorizeRequest{
		ClientID:            "spa",
		RedirectURI:         "https://spa.example/cb",
		ResponseType:        "code",
		Scope:               "chargers:read sessions:read",
		State:               "xyz",
		CodeChallenge:       rfcChallenge,
		CodeChallengeMethod: "S256",
		UserID:              "alice",
	}
	with := func(f func(r *AuthorizeRequest)) AuthorizeRequest {
		r := good
		f(&r)
		return r
	}
	tests := []struct {
		name         string
		req          AuthorizeRequest
		code         string // "" for success
		redirectable bool
	}{
		{"seed 000 good request", good, "", false},
		{"unknown client", with(func(r *AuthorizeRequest) { r.ClientID = "nobody"; r.ResponseType = "token" }), "invalid_request", false},
		{"unregistered redirect_uri wins over everything after", with(func(r *AuthorizeRequest) {
			r.RedirectURI = "https://evil.example/cb"
			r.ResponseType = "token"
			r.State = ""
		}), "invalid_request", false},
		{"RFC 6749 3.1.2.3 missing redirect_uri", with(func(r *AuthorizeRequest) { r.RedirectURI = "" }), "invalid_request", false},
		{"RFC 6749 4.1.2.1 unsupported response_type before scope", with(func(r *AuthorizeRequest) { r.ResponseType = "token"; r.Scope = "bogus" }), "unsupported_response_type", true},
		{"RFC 6749 4.1.2.1 missing response_type", with(func(r *AuthorizeRequest) { r.ResponseType = "" }), "invalid_request", true},
		{"unknown scope before state", with(func(r *AuthorizeRequest) { r.Scope = "chargers:read bogus"; r.State = "" }), "invalid_scope", true},
		{"scope not allowed for client", with(func(r *AuthorizeRequest) { r.Scope = "energy:read" }), "invalid_scope", true},
		{"RFC 6749 3.3 empty scope", with(func(r *AuthorizeRequest) { r.Scope = "" }), "invalid_scope", true},
		{"missing state before PKCE", with(func(r *AuthorizeRequest) { r.State = ""; r.CodeChallenge = "" }), "invalid_request", true},
		{"RFC 7636 4.4.1 missing challenge", with(func(r *AuthorizeRequest) { r.CodeChallenge = ""; r.CodeChallengeMethod = "" }), "invalid_request", true},
		{"malformed challenge", with(func(r *AuthorizeRequest) { r.CodeChallenge = "short" }), "invalid_request", true},
		{"plain method", with(func(r *AuthorizeRequest) { r.CodeChallengeMethod = "plain" }), "invalid_request", true},
		{"absent method", with(func(r *AuthorizeRequest) { r.CodeChallengeMethod = "" }), "invalid_request", true},
		{"method without challenge", with(func(r *AuthorizeRequest) { r.CodeChallenge = "" }), "invalid_request", true},
		{"seed 004 confidential pkce optional may omit PKCE", with(func(r *AuthorizeRequest) {
			r.ClientID, r.RedirectURI, r.CodeChallenge, r.CodeChallengeMethod = "server", "https://server.example/cb", "", ""
		}), "", false},
		{"seed 004 confidential pkce optional still checks a given challenge", with(func(r *AuthorizeRequest) {
			r.ClientID, r.RedirectURI, r.CodeChallengeMethod = "server", "https://server.example/cb", ""
		}), "invalid_request", true},
		{"confidential pkce required", with(func(r *AuthorizeRequest) {
			r.ClientID, r.RedirectURI, r.CodeChallenge, r.CodeChallengeMethod = "strict", "https://strict.example/cb", "", ""
		}), "invalid_request", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := &recordingGrantStore{}
			s := newTestAuthServer(t, store)
			code, oerr, redirectable := s.Authorize(context.Background(), tt.req)
			if tt.code == "" {
				if oerr != nil {
					t.Fatalf("Authorize: %v", oerr)
				}
				if k, err := ParseToken(code); err != nil || k != KindCode {
					t.Fatalf("code %q is not a tgc_ token", code)
				}
				if len(store.codes) != 1 || store.codes[0].Hash != HashToken(code) {
					t.Fatalf("stored codes = %+v, want the hash of the returned code", store.codes)
				}
				c := store.codes[0]
				if c.ClientID != tt.req.ClientID || c.UserID != "alice" || c.RedirectURI != tt.req.RedirectURI ||
					c.Challenge != tt.req.CodeChallenge || c.FamilyID == "" || strings.Join(c.Scopes, " ") != tt.req.Scope {
					t.Errorf("stored code = %+v", c)
				}
				if got := store.consents["alice\x00"+tt.req.ClientID]; strings.Join(got, " ") != tt.req.Scope {
					t.Errorf("consent = %q, want %q", got, tt.req.Scope)
				}
				return
			}
			if oerr == nil || oerr.Code != tt.code || redirectable != tt.redirectable {
				t.Fatalf("Authorize = %v, redirectable %v; want %s, redirectable %v", oerr, redirectable, tt.code, tt.redirectable)
			}
			if code != "" || store.calls != 0 {
				t.Errorf("a refused request returned code %q and made %d store calls", code, store.calls)
			}
		})
	}
}

func TestAuthorizeDuplicateScopesCollapse(t *testing.T) {
	store := &recordingGrantStore{}
	s := newTestAuthServer(t, store)
	_, oerr, _ := s.Authorize(context.Background(), AuthorizeRequest{
		ClientID: "spa", RedirectURI: "https://spa.example/cb", ResponseType: "code",
		Scope: "sessions:read  sessions:read chargers:read", State: "s",
		CodeChallenge: rfcChallenge, CodeChallengeMethod: "S256", UserID: "alice",
	})
	if oerr != nil {
		t.Fatal(oerr)
	}
	if got := store.codes[0].Scopes; !slices.Equal(got, []string{"sessions:read", "chargers:read"}) {
		t.Errorf("scopes = %q", got)
	}
}

func TestNeedsConsent(t *testing.T) {
	store := &recordingGrantStore{}
	s := newTestAuthServer(t, store)
	ctx := context.Background()
	if need, err := s.NeedsConsent(ctx, "alice", "spa", []string{"chargers:read"}); err != nil || !need {
		t.Fatalf("before consent: %v, %v; want true", need, err)
	}
	_ = store.RecordConsent(ctx, "alice", "spa", []string{"chargers:read"})
	if need, _ := s.NeedsConsent(ctx, "alice", "spa", []string{"chargers:read"}); need {
		t.Error("seed 004: consented scopes asked again")
	}
	if need, _ := s.NeedsConsent(ctx, "alice", "spa", []string{"chargers:read", "sessions:read"}); !need {
		t.Error("seed 004: a new scope needs consent")
	}
	store.fail = true
	if _, err := s.NeedsConsent(ctx, "alice", "spa", []string{"chargers:read"}); err == nil {
		t.Error("store failure not reported")
	}
}

// While the store is unreachable nothing is issued and nothing is
// reported done; every answer is 503 temporarily_unavailable.
func TestAuthServerStoreDown(t *testing.T) {
	store := &recordingGrantStore{fail: true}
	s := newTestAuthServer(t, store)
	ctx := context.Background()
	spa := findClient(t, s, "spa")
	code, _, _ := NewToken(KindCode)
	access, _, _ := NewToken(KindAccess)
	refresh, _, _ := NewToken(KindRefresh)

	_, aerr, _ := s.Authorize(ctx, AuthorizeRequest{
		ClientID: "spa", RedirectURI: "https://spa.example/cb", ResponseType: "code", Scope: "chargers:read",
		State: "s", CodeChallenge: rfcChallenge, CodeChallengeMethod: "S256", UserID: "alice",
	})
	_, eerr := s.Exchange(ctx, spa, code, "https://spa.example/cb", rfcVerifier)
	_, rerr := s.Refresh(ctx, spa, refresh, "")
	verr := s.Revoke(ctx, spa, access, "")
	_, ierr := s.Introspect(ctx, spa, access)
	for name, e := range map[string]*Error{"Authorize": aerr, "Exchange": eerr, "Refresh": rerr, "Revoke": verr, "Introspect": ierr} {
		if e == nil || e.Code != "temporarily_unavailable" || e.Status != 503 {
			t.Errorf("%s with the store down = %v, want 503 temporarily_unavailable", name, e)
		}
	}
}

// Malformed input is refused before the store is asked, and RFC 7009 2.2
// makes revoking an unknown or malformed token a success.
func TestAuthServerMalformedTokens(t *testing.T) {
	store := &recordingGrantStore{fail: true}
	s := newTestAuthServer(t, store)
	ctx := context.Background()
	spa := findClient(t, s, "spa")
	access, _, _ := NewToken(KindAccess)
	personal, _, _ := NewToken(KindPersonal)

	if _, e := s.Exchange(ctx, spa, "", "https://spa.example/cb", rfcVerifier); e == nil || e.Code != "invalid_request" {
		t.Errorf("RFC 6749 4.1.3 missing code = %v, want invalid_request", e)
	}
	if _, e := s.Exchange(ctx, spa, access, "https://spa.example/cb", rfcVerifier); e == nil || e.Code != "invalid_grant" {
		t.Errorf("access token as code = %v, want invalid_grant", e)
	}
	if _, e := s.Refresh(ctx, spa, access, ""); e == nil || e.Code != "invalid_grant" {
		t.Errorf("access token as refresh token = %v, want invalid_grant", e)
	}
	if _, e := s.Refresh(ctx, spa, "", ""); e == nil || e.Code != "invalid_request" {
		t.Errorf("RFC 6749 6 missing refresh_token = %v, want invalid_request", e)
	}
	if e := s.Revoke(ctx, spa, "garbage", ""); e != nil {
		t.Errorf("RFC 7009 2.2 malformed token = %v, want success", e)
	}
	if e := s.Revoke(ctx, spa, personal, "access_token"); e != nil {
		t.Errorf("RFC 7009 2.2 personal token = %v, want success", e)
	}
	if e := s.Revoke(ctx, spa, "", ""); e == nil || e.Code != "invalid_request" {
		t.Errorf("RFC 7009 2.1 missing token = %v, want invalid_request", e)
	}
	if got, e := s.Introspect(ctx, spa, "garbage"); e != nil || got.Active {
		t.Errorf("RFC 7662 2.2 malformed token = %+v, %v; want inactive", got, e)
	}
	if store.calls != 0 {
		t.Errorf("%d store calls for malformed input", store.calls)
	}
}

func TestDeriveRotatedPair(t *testing.T) {
	key := []byte(strings.Repeat("k", 32))
	r1, _, _ := NewToken(KindRefresh)
	r2, _, _ := NewToken(KindRefresh)
	a1, n1 := DeriveRotatedPair(key, r1)
	a1again, n1again := DeriveRotatedPair(key, r1)
	a2, n2 := DeriveRotatedPair(key, r2)
	a3, _ := DeriveRotatedPair([]byte(strings.Repeat("j", 32)), r1)
	if a1 != a1again || n1 != n1again {
		t.Error("refresh_grace: derivation is not deterministic")
	}
	if a1 == a2 || n1 == n2 || a1 == a3 || a1 == n1 {
		t.Error("derived tokens collide across inputs, keys or kinds")
	}
	for text, want := range map[string]Kind{a1: KindAccess, n1: KindRefresh} {
		if k, err := ParseToken(text); err != nil || k != want {
			t.Errorf("derived %s token does not parse: %v, %v", want, k, err)
		}
	}
}

// findClient returns the client id of s, failing the test when there is
// none.
func findClient(t *testing.T, s *AuthServer, id string) *Client {
	t.Helper()
	c, err := s.Clients.FindClient(context.Background(), id)
	if err != nil {
		t.Fatalf("FindClient(%s): %v", id, err)
	}
	return c
}

func TestDeriveRotatedJWTID(t *testing.T) {
	key := []byte(strings.Repeat("k", 32))
	r1, _, _ := NewToken(KindRefresh)
	r2, _, _ := NewToken(KindRefresh)
	id := DeriveRotatedJWTID(key, r1)
	if k, err := ParseToken(id); err != nil || k != KindJWTID {
		t.Fatalf("derived jti %q: kind %v, %v; want a tgj_ token", id, k, err)
	}
	if DeriveRotatedJWTID(key, r1) != id {
		t.Error("refresh_grace: the jti of a rotation is not derived again alike")
	}
	if DeriveRotatedJWTID(key, r2) == id || DeriveRotatedJWTID([]byte(strings.Repeat("j", 32)), r1) == id {
		t.Error("derived jti collides across refresh tokens or keys")
	}
	// The jti is seen by every backend that reads the JWT: it must not
	// share its random body with the opaque access token of the same
	// rotation, which would then be a prefix change away.
	access, _ := DeriveRotatedPair(key, r1)
	if access[4:47] == id[4:47] {
		t.Error("the jti and the opaque access token of one rotation share their body")
	}
}
