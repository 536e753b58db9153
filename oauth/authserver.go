package oauth

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Scope is a declared scope and the description the consent page shows.
type Scope struct {
	Name        string
	Description string
}

// Defaults for the AuthServer lifetimes.
const (
	DefaultCodeTTL    = 10 * time.Minute
	DefaultAccessTTL  = time.Hour
	DefaultRefreshTTL = 30 * 24 * time.Hour
)

// storeTimeout bounds every store call the AuthServer makes
// (docs/operations.md).
const storeTimeout = 5 * time.Second

// AuthServer is the OAuth 2.0 authorization server: it issues codes,
// exchanges them, rotates refresh tokens, revokes and introspects. It
// speaks no HTTP; the endpoints handler translates requests into calls.
type AuthServer struct {
	Store     GrantStore
	Validator *Validator
	Clients   ClientFinder
	// Scopes are all the scopes that exist.
	Scopes []Scope
	// Lifetimes; zero means the defaults above. RefreshMaxAge (zero: no
	// limit) bounds a family's life from its authorization. RefreshGrace
	// is the refresh_grace option.
	CodeTTL, AccessTTL, RefreshTTL, RefreshMaxAge, RefreshGrace time.Duration
	Logger                                                      *zap.Logger
	// Metrics and Audit hear of tokens issued, reuse detected and store
	// calls made; nil means none.
	Metrics Metrics
	Audit   Auditor
	Now     func() time.Time

	// UserGrants lists and ends users' grants (ListGrants, RevokeGrant
	// and RevokeUser, usergrants.go); without it they fail.
	UserGrants UserGrantStore
	// ClientTokens keeps the tokens of the client_credentials grant
	// (clientcredentials.go); without it that grant fails.
	ClientTokens ClientTokenStore
	// KnownResource reports whether a resource indicator (RFC 8707) names
	// a resource this server issues tokens for; nil means none does, and
	// every resource parameter is invalid_target.
	KnownResource func(resource string) bool

	// OpenID, when set, adds ID tokens and the offline_access rule to
	// the token responses (openid.go); nil for a plain OAuth server.
	OpenID *OpenIDProvider

	// AccessTokenFormat is the form of the access tokens issued; with
	// AccessTokenJWT they are signed under JWTAccess (RFC 9068).
	AccessTokenFormat AccessTokenFormat
	// JWTAccess lets Revoke and Introspect read JWT access tokens, and
	// signs them with AccessTokenJWT; nil for none.
	JWTAccess *JWTAccessTokens

	keyMu sync.Mutex
	key   []byte
}

// AuthorizeRequest is an authorization request (RFC 6749 4.1.1) on behalf
// of an authenticated user.
type AuthorizeRequest struct {
	ClientID            string
	RedirectURI         string
	ResponseType        string
	Scope               string
	State               string
	CodeChallenge       string
	CodeChallengeMethod string
	UserID              string

	// Nonce (OpenID Connect Core 3.1.2.1), the user's claims from the
	// IdP's JWT (a JSON object) and the resource indicators (RFC 8707)
	// are kept with the code; checking them is the caller's.
	Nonce     string
	Claims    []byte
	Resources []string
}

// TokenResponse is a successful access token response (RFC 6749 5.1),
// with the ID token of OpenID Connect Core 3.1.3.3. RefreshToken is left
// out of the JSON when there is none (RFC 6749 4.4.3: client_credentials
// issues none; OpenID Connect Core 11: a grant without offline_access
// gets none).
type TokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope"`
	IDToken      string `json:"id_token,omitempty"`
}

// Introspection is an RFC 7662 2.2 introspection response.
type Introspection struct {
	Active    bool   `json:"active"`
	Scope     string `json:"scope,omitempty"`
	ClientID  string `json:"client_id,omitempty"`
	Sub       string `json:"sub,omitempty"`
	Exp       int64  `json:"exp,omitempty"`
	Iat       int64  `json:"iat,omitempty"`
	TokenType string `json:"token_type,omitempty"`
	// Aud is the resource the access token was issued for (RFC 8707, RFC
	// 7662 2.2); absent for none.
	Aud string `json:"aud,omitempty"`
	// Cnf names the DPoP key a bound access token is bound to (RFC 9449
	// 6.2); nil for an unbound token.
	Cnf *Confirmation `json:"cnf,omitempty"`
}

// Authorize validates an authorization request in a fixed order and, when
// it is good, records the user's consent and returns a new code. When err
// is set, redirectable says whether the error may be sent to the redirect
// URI (RFC 6749 4.1.2.1): never when the client or the redirect URI is bad.
func (s *AuthServer) Authorize(ctx context.Context, r AuthorizeRequest) (code string, err *Error, redirectable bool) {
	c, scopes, err, redirectable := s.ValidateAuthorize(ctx, r)
	if err != nil {
		return "", err, redirectable
	}
	r.Resources, _ = s.checkResources(r.Resources)
	if r.UserID == "" {
		return "", ErrAccessDenied.WithDescription("no user"), true
	}

	text, h, genErr := NewToken(KindCode)
	if genErr != nil {
		return "", ErrServerError, true
	}
	family, genErr := newFamilyID()
	if genErr != nil {
		return "", ErrServerError, true
	}
	now := s.now()
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	if e := s.Store.RecordConsent(ctx, r.UserID, c.ID, scopes); e != nil {
		s.logger().Error("recording consent failed", zap.String("client_id", c.ID), zap.String("user_id", r.UserID), zap.Error(e))
		return "", ErrTemporarilyUnavailable, true
	}
	e := s.Store.SaveCode(ctx, Code{
		Hash:        h,
		ClientID:    c.ID,
		UserID:      r.UserID,
		RedirectURI: r.RedirectURI,
		Scopes:      scopes,
		Challenge:   r.CodeChallenge,
		FamilyID:    family,
		ExpiresAt:   now.Add(orDefault(s.CodeTTL, DefaultCodeTTL)),

		ClientGeneration: c.generation,
		GrantContext: GrantContext{
			Nonce: r.Nonce, AuthTime: now, Claims: r.Claims, Resources: r.Resources,
		},
	})
	if e != nil {
		s.logger().Error("saving authorization code failed", zap.String("client_id", c.ID), zap.String("user_id", r.UserID), zap.Error(e))
		return "", ErrTemporarilyUnavailable, true
	}
	s.audit(ctx, AuditEvent{Message: AuditAuthorizationGranted, UserID: r.UserID, ClientID: c.ID, Scopes: scopes})
	return text, nil, false
}

// requestedScopes parses a scope parameter (RFC 6749 3.3): every scope must
// be declared and allowed for the client, and at least one is needed.
func (s *AuthServer) requestedScopes(c *Client, scope string) ([]string, *Error) {
	if tooManyScopes(scope) {
		return nil, errTooManyScopes
	}
	var out []string
	for _, sc := range strings.Split(scope, " ") {
		if sc == "" || slices.Contains(out, sc) {
			continue
		}
		if !s.declared(sc) || !c.MayRequest(sc) {
			return nil, ErrInvalidScope.WithDescription("scope " + quoteScope(sc) + " is unknown or not allowed for this client")
		}
		out = append(out, sc)
	}
	if len(out) == 0 {
		return nil, ErrInvalidScope.WithDescription("scope is required")
	}
	return out, nil
}

// quoteScope keeps a client-supplied scope printable and short in an
// error description.
func quoteScope(sc string) string {
	if len(sc) > 64 {
		sc = sc[:64]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x21 || r > 0x7e || r == '"' || r == '\\' {
			return '?'
		}
		return r
	}, sc)
}

func (s *AuthServer) declared(name string) bool {
	for _, sc := range s.Scopes {
		if sc.Name == name {
			return true
		}
	}
	return false
}

// NeedsConsent reports whether userID has yet to consent to some of scopes
// for clientID: consent is asked for new scopes only.
func (s *AuthServer) NeedsConsent(ctx context.Context, userID, clientID string, scopes []string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	granted, err := s.Store.GrantedScopes(ctx, userID, clientID)
	if err != nil {
		return false, err
	}
	for _, sc := range scopes {
		if !slices.Contains(granted, sc) {
			return true, nil
		}
	}
	return false, nil
}

// TokenExtras are what a token request may add to its grant: the
// resource parameter (RFC 8707 2.2), empty for none, and the thumbprint of
// the key of the request's valid DPoP proof (RFC 9449 5), empty for none.
type TokenExtras struct {
	Resource string
	DPoPKey  string
}

// Exchange is ExchangeFor with no extras.
func (s *AuthServer) Exchange(ctx context.Context, client *Client, code, redirectURI, verifier string) (TokenResponse, *Error) {
	return s.ExchangeFor(ctx, client, code, redirectURI, verifier, TokenExtras{})
}

// ExchangeFor redeems an authorization code for a token pair (RFC 6749 4.1.3,
// RFC 7636 4.6) for an authenticated client. Every failure of the code
// itself is invalid_grant and leaves the code unconsumed; a second exchange
// of a consumed code revokes what the first one issued (RFC 6749 4.1.2).
// The access token is issued for x.Resource, or for the authorization's
// only resource; x.DPoPKey binds the pair (bindPair).
func (s *AuthServer) ExchangeFor(ctx context.Context, client *Client, code, redirectURI, verifier string, x TokenExtras) (TokenResponse, *Error) {
	resource, dpopKey := x.Resource, x.DPoPKey
	if client == nil {
		return TokenResponse{}, ErrInvalidClient
	}
	if !client.AllowsGrant(GrantTypeAuthorizationCode) {
		return TokenResponse{}, ErrUnauthorizedClient.WithDescription("this client may not use authorization_code")
	}
	if oerr := checkDPoPRequired(client, dpopKey); oerr != nil {
		return TokenResponse{}, oerr
	}
	if code == "" {
		return TokenResponse{}, ErrInvalidRequest.WithDescription("code is required")
	}
	badCode := ErrInvalidGrant.WithDescription("the authorization code is invalid, expired or already used")
	if k, err := ParseToken(code); err != nil || k != KindCode {
		return TokenResponse{}, badCode
	}
	if oerr := s.checkTokenResource(resource); oerr != nil {
		return TokenResponse{}, oerr
	}
	now := s.now()
	access, refresh, pair, genErr := s.randomPair(now)
	if genErr != nil {
		return TokenResponse{}, ErrServerError
	}
	pair.Audience = resource
	bindPair(&pair, client, dpopKey, true)
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	if oerr := s.readyToSign(ctx); oerr != nil {
		return TokenResponse{}, oerr
	}
	var (
		failure  *Error
		audience string
	)
	check := func(c Code) error {
		switch {
		case c.ClientID != client.ID || c.ClientGeneration != client.generation:
			// Another client, or an earlier one of the same id.
			failure = badCode
		case !client.mayRequestAll(c.Scopes):
			// The client's scopes were narrowed since the code was issued.
			failure = ErrInvalidGrant.WithDescription("the authorization code carries a scope this client may no longer ask for")
		case c.RedirectURI != redirectURI:
			failure = ErrInvalidGrant.WithDescription("redirect_uri does not match the authorization request")
		case c.Challenge == "" && verifier != "":
			// RFC 9700 4.8.2: a verifier for a code issued without a
			// challenge is a downgrade attempt.
			failure = ErrInvalidGrant.WithDescription("code_verifier given for a code issued without code_challenge")
		case c.Challenge != "" && !VerifyPKCE(c.Challenge, verifier):
			failure = ErrInvalidGrant.WithDescription("code_verifier does not match the code_challenge")
		default:
			var oerr *Error
			if audience, oerr = audienceFor(c.Resources, resource); oerr != nil {
				failure = oerr
			} else if audience != pair.Audience {
				failure = errAudienceChosen
			} else {
				return nil
			}
		}
		return failure
	}
	if oerr := s.openIDReady(ctx); oerr != nil {
		return TokenResponse{}, oerr
	}
	start := time.Now()
	c, err := s.Store.ExchangeCode(ctx, HashToken(code), now, check, pair)
	if errors.Is(err, errAudienceChosen) {
		// Nothing was consumed: once more, for the grant's resource.
		pair.Audience = audience
		c, err = s.Store.ExchangeCode(ctx, HashToken(code), now, check, pair)
	}
	timeStoreCall(s.metrics(), OpExchange, start)
	if oerr := s.grantStoreError(ctx, err, failure, badCode, client, "authorization code", "code exchange failed"); oerr != nil {
		return TokenResponse{}, oerr
	}
	access, oerr := s.accessTokenText(ctx, issuedAccessToken{
		id: access, userID: c.UserID, clientID: c.ClientID, scopes: c.Scopes,
		audience: pair.Audience, dpopKey: pair.AccessDPoPKey,
		issuedAt: now, expiresAt: pair.Access.ExpiresAt, authTime: c.AuthTime,
	})
	if oerr != nil {
		return TokenResponse{}, oerr
	}
	s.metrics().TokenIssued(GrantAuthorizationCode)
	s.audit(ctx, AuditEvent{Message: AuditTokenIssued, UserID: c.UserID, ClientID: c.ClientID, Grant: GrantAuthorizationCode, Scopes: c.Scopes})
	if !client.AllowsGrant(GrantTypeRefreshToken) {
		// The pair is stored as every pair is, but a client that may not
		// refresh is not given the refresh token: nobody holds it.
		refresh = ""
	}
	return s.openIDResponse(ctx, TokenResponse{
		AccessToken:  access,
		TokenType:    tokenType(dpopKey),
		ExpiresIn:    int64(pair.Access.ExpiresAt.Sub(now).Round(time.Second) / time.Second),
		RefreshToken: refresh,
		Scope:        strings.Join(c.Scopes, " "),
	}, idTokenGrant{userID: c.UserID, clientID: c.ClientID, scopes: c.Scopes, GrantContext: c.GrantContext}, now)
}

// Refresh is RefreshFor with no extras.
func (s *AuthServer) Refresh(ctx context.Context, client *Client, refreshToken, scope string) (TokenResponse, *Error) {
	return s.RefreshFor(ctx, client, refreshToken, scope, TokenExtras{})
}

// RefreshFor rotates a refresh token (RFC 6749 6): the presented
// token is consumed and a new pair returned, derived from it so that a retry
// within RefreshGrace gets the same pair. A narrower scope gives a narrower
// pair; a wider one is invalid_scope and consumes nothing. Presenting a
// rotated token after the grace revokes the whole family (RFC 9700 4.14.2).
// The new access token is issued for x.Resource, which must be one of the
// grant's resources, or for the grant's only one; x.DPoPKey binds it, and
// must be the key the family is bound to, if any (RFC 9449 5).
func (s *AuthServer) RefreshFor(ctx context.Context, client *Client, refreshToken, scope string, x TokenExtras) (TokenResponse, *Error) {
	resource, dpopKey := x.Resource, x.DPoPKey
	if client == nil {
		return TokenResponse{}, ErrInvalidClient
	}
	if !client.AllowsGrant(GrantTypeRefreshToken) {
		return TokenResponse{}, ErrUnauthorizedClient.WithDescription("this client may not use refresh_token")
	}
	if oerr := checkDPoPRequired(client, dpopKey); oerr != nil {
		return TokenResponse{}, oerr
	}
	if refreshToken == "" {
		return TokenResponse{}, ErrInvalidRequest.WithDescription("refresh_token is required")
	}
	badToken := ErrInvalidGrant.WithDescription("the refresh token is invalid, expired or revoked")
	if k, err := ParseToken(refreshToken); err != nil || k != KindRefresh {
		return TokenResponse{}, badToken
	}
	if tooManyScopes(scope) {
		return TokenResponse{}, errTooManyScopes
	}
	if oerr := s.checkTokenResource(resource); oerr != nil {
		return TokenResponse{}, oerr
	}
	var requested []string
	for _, sc := range strings.Split(scope, " ") {
		if sc != "" && !slices.Contains(requested, sc) {
			requested = append(requested, sc)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	key, err := s.serverKey(ctx)
	if err != nil {
		s.logger().Error("reading the server key failed", zap.Error(err))
		return TokenResponse{}, ErrTemporarilyUnavailable
	}
	if oerr := s.readyToSign(ctx); oerr != nil {
		return TokenResponse{}, oerr
	}
	now := s.now()
	access, refresh := DeriveRotatedPair(key, refreshToken)
	if s.AccessTokenFormat == AccessTokenJWT {
		access = DeriveRotatedJWTID(key, refreshToken)
	}
	pair := IssuedPair{
		Access:       IssuedToken{Hash: HashToken(access), ExpiresAt: now.Add(orDefault(s.AccessTTL, DefaultAccessTTL))},
		Refresh:      IssuedToken{Hash: HashToken(refresh), ExpiresAt: now.Add(orDefault(s.RefreshTTL, DefaultRefreshTTL))},
		IssuedAt:     now,
		Scopes:       requested,
		MaxFamilyAge: s.RefreshMaxAge,
		Audience:     resource,
	}
	bindPair(&pair, client, dpopKey, false)
	var (
		failure  *Error
		narrowed []string
		grant    RefreshGrant
		audience string
	)
	check := func(g RefreshGrant) error {
		failure, narrowed, grant = nil, nil, g
		if g.ClientGeneration != client.generation {
			// A family of an earlier client of the same id.
			failure = badToken
			return failure
		}
		if failure = checkFamilyKey(g, dpopKey); failure != nil {
			return failure
		}
		for _, sc := range requested {
			if !slices.Contains(g.Scopes, sc) {
				failure = ErrInvalidScope.WithDescription("scope exceeds the scope originally granted")
				return failure
			}
			if !client.MayRequest(sc) {
				failure = ErrInvalidScope.WithDescription("scope " + quoteScope(sc) + " is no longer allowed for this client")
				return failure
			}
		}
		if s.RefreshMaxAge > 0 && now.Sub(g.FamilyCreatedAt) > s.RefreshMaxAge {
			failure = badToken
			return failure
		}
		var oerr *Error
		if audience, oerr = audienceFor(g.Resources, resource); oerr != nil {
			failure = oerr
			return failure
		}
		if audience != pair.Audience {
			failure = errAudienceChosen
			return failure
		}
		if len(requested) == 0 && !client.mayRequestAll(g.Scopes) {
			// The client's scopes were narrowed since the grant: the new
			// pair gets what is left of it.
			if narrowed = client.allowedOf(g.Scopes); len(narrowed) == 0 {
				failure = ErrInvalidGrant.WithDescription("this client may no longer ask for any of the scopes granted")
				return failure
			}
			failure = errScopesNarrowed
			return failure
		}
		return nil
	}
	if oerr := s.openIDReady(ctx); oerr != nil {
		return TokenResponse{}, oerr
	}
	start := time.Now()
	rot, err := s.Store.RotateRefresh(ctx, HashToken(refreshToken), client.ID, now, s.RefreshGrace, check, pair)
	// Nothing was consumed when the check asks for another pair: what is
	// left of the scopes, explicitly, or the grant's audience. Each is
	// settled once, so three tries are enough.
	for range 2 {
		switch {
		case errors.Is(err, errScopesNarrowed):
			requested, pair.Scopes = narrowed, narrowed
		case errors.Is(err, errAudienceChosen):
			pair.Audience = audience
		default:
			continue
		}
		rot, err = s.Store.RotateRefresh(ctx, HashToken(refreshToken), client.ID, now, s.RefreshGrace, check, pair)
	}
	timeStoreCall(s.metrics(), OpRefresh, start)
	if oerr := s.grantStoreError(ctx, err, failure, badToken, client, "refresh token", "refresh failed"); oerr != nil {
		return TokenResponse{}, oerr
	}
	if rot.Replay && rot.AccessDPoPKey != dpopKey {
		// Nothing was written: the retry is refused, the pair stays as
		// the first rotation issued it.
		return TokenResponse{}, errReplayKey
	}
	if rot.Replay {
		// The same pair as the first time: no new token was issued.
		s.logger().Debug("refresh token presented again within grace",
			zap.String("client_id", client.ID), zap.String("user_id", rot.UserID), zap.String("family_id", rot.FamilyID))
	} else {
		s.metrics().TokenIssued(GrantRefreshToken)
		s.audit(ctx, AuditEvent{Message: AuditTokenRefreshed, UserID: rot.UserID, ClientID: client.ID, Grant: GrantRefreshToken, Scopes: rot.Scopes})
	}
	expiresIn := int64(rot.AccessExpiresAt.Sub(now).Round(time.Second) / time.Second)
	if expiresIn < 0 {
		expiresIn = 0
	}
	// Signed from the token as stored, so that a replay signs the same
	// claims as the first answer did.
	access, oerr := s.accessTokenText(ctx, issuedAccessToken{
		id: access, userID: rot.UserID, clientID: client.ID, scopes: rot.Scopes,
		audience: rot.AccessAudience, dpopKey: rot.AccessDPoPKey,
		issuedAt: rot.AccessIssuedAt, expiresAt: rot.AccessExpiresAt, authTime: grant.AuthTime,
	})
	if oerr != nil {
		return TokenResponse{}, oerr
	}
	// OpenID Connect Core 12.2: the grant's sub, aud, azp and auth_time,
	// a new iat, and no nonce (the family keeps none).
	return s.openIDResponse(ctx, TokenResponse{
		AccessToken:  access,
		TokenType:    tokenType(dpopKey),
		ExpiresIn:    expiresIn,
		RefreshToken: refresh,
		Scope:        strings.Join(rot.Scopes, " "),
	}, idTokenGrant{userID: rot.UserID, clientID: client.ID, scopes: rot.Scopes, GrantContext: grant.GrantContext}, now)
}

// errScopesNarrowed is the refresh check's signal that the grant holds
// scopes its client may no longer ask for; it never reaches the client.
var errScopesNarrowed = ErrInvalidScope.WithDescription("the client's scopes were narrowed")

// Revoke implements RFC 7009 2.1 for an authenticated client: an access
// token is revoked alone, a refresh token with its whole family; an unknown
// or malformed token, or one of another client, is silently left alone
// (RFC 7009 2.2). token_type_hint is only a hint (2.1), and the token's own
// prefix says what it is, so it is ignored. A store failure is
// temporarily_unavailable, never a false success.
func (s *AuthServer) Revoke(ctx context.Context, client *Client, token, hint string) *Error {
	if client == nil {
		return ErrInvalidClient
	}
	if token == "" {
		return ErrInvalidRequest.WithDescription("token is required")
	}
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	k, h, oerr := s.tokenHash(ctx, token)
	if oerr != nil || (k != KindAccess && k != KindRefresh) {
		return oerr
	}
	start := time.Now()
	revoked, err := s.Store.RevokeToken(ctx, h, client.ID, s.now())
	timeStoreCall(s.metrics(), OpRevoke, start)
	if err != nil {
		s.logger().Error("revocation failed", zap.String("client_id", client.ID), zap.Error(err))
		return ErrTemporarilyUnavailable
	}
	s.forget(revoked)
	if len(revoked) > 0 || k == KindRefresh {
		s.audit(ctx, AuditEvent{Message: AuditTokenRevoked, ClientID: client.ID})
	}
	return nil
}

// Introspect implements RFC 7662 2.1 for an authenticated client, which
// only sees its own tokens as active (docs/reference.md).
func (s *AuthServer) Introspect(ctx context.Context, client *Client, token string) (Introspection, *Error) {
	if client == nil {
		return Introspection{}, ErrInvalidClient
	}
	if token == "" {
		return Introspection{}, ErrInvalidRequest.WithDescription("token is required")
	}
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	k, h, oerr := s.tokenHash(ctx, token)
	if oerr != nil || (k != KindAccess && k != KindRefresh) {
		return Introspection{}, oerr
	}
	info, err := s.Store.IntrospectToken(ctx, h)
	switch {
	case errors.Is(err, ErrNotFound):
		return Introspection{}, nil
	case err != nil:
		s.logger().Error("introspection failed", zap.String("client_id", client.ID), zap.Error(err))
		return Introspection{}, ErrTemporarilyUnavailable
	}
	if info.Kind != k || info.ClientID != client.ID || !s.now().Before(info.ExpiresAt) {
		return Introspection{}, nil
	}
	sub := info.UserID
	if sub == "" {
		// A client token (RFC 6749 4.4) stands for the client itself.
		sub = info.ClientID
	}
	return Introspection{
		Active:    true,
		Scope:     strings.Join(info.Scopes, " "),
		ClientID:  info.ClientID,
		Sub:       sub,
		Exp:       info.ExpiresAt.Unix(),
		Iat:       info.IssuedAt.Unix(),
		TokenType: tokenType(info.DPoPKey),
		Cnf:       confirmation(info.DPoPKey),
		Aud:       info.Audience,
	}, nil
}

// grantStoreError turns the store's answer to a code exchange or a refresh
// rotation into the client's error, nil when the store succeeded: the
// check's own refusal (failure), an unknown grant (bad), reuse of a grant
// already used (its family is revoked: forget its tokens, log it, answer
// bad), or an outage (RFC 6749 5.2 temporarily_unavailable).
func (s *AuthServer) grantStoreError(ctx context.Context, err error, failure, bad *Error, client *Client, grant, outage string) *Error {
	var reuse *ReuseError
	switch {
	case err == nil:
		return nil
	case failure != nil && errors.Is(err, failure):
		return failure
	case errors.Is(err, ErrNotFound):
		return bad
	case errors.As(err, &reuse):
		s.forget(reuse.Revoked)
		if grant == "refresh token" {
			s.metrics().RefreshReuse()
			s.audit(ctx, AuditEvent{Message: AuditRefreshReuse, UserID: reuse.UserID, ClientID: reuse.ClientID, Grant: GrantRefreshToken, Warning: true})
		} else {
			s.logger().Warn(grant+" reused; family revoked",
				zap.String("client_id", reuse.ClientID), zap.String("user_id", reuse.UserID),
				zap.String("family_id", reuse.FamilyID), zap.String("presented_by", client.ID))
		}
		return bad
	case errors.Is(err, context.Canceled):
		// The client hung up before the store was reached: nothing was
		// written, nobody is left to answer, and it is not an outage.
		s.logger().Debug(outage+": request canceled", zap.String("client_id", client.ID))
		return ErrTemporarilyUnavailable
	default:
		s.logger().Error(outage, zap.String("client_id", client.ID), zap.Error(err))
		return ErrTemporarilyUnavailable
	}
}

// randomPair returns a fresh random pair, for a code exchange. With JWT
// access tokens, access is the id the JWT will wrap.
func (s *AuthServer) randomPair(now time.Time) (access, refresh string, pair IssuedPair, err error) {
	access, ah, err := NewToken(s.accessKind())
	if err != nil {
		return "", "", IssuedPair{}, err
	}
	refresh, rh, err := NewToken(KindRefresh)
	if err != nil {
		return "", "", IssuedPair{}, err
	}
	pair = IssuedPair{
		Access:       IssuedToken{Hash: ah, ExpiresAt: now.Add(orDefault(s.AccessTTL, DefaultAccessTTL))},
		Refresh:      IssuedToken{Hash: rh, ExpiresAt: now.Add(orDefault(s.RefreshTTL, DefaultRefreshTTL))},
		IssuedAt:     now,
		MaxFamilyAge: s.RefreshMaxAge,
	}
	pair.Refresh.ExpiresAt = pair.RefreshExpiry(now)
	return access, refresh, pair, nil
}

// serverKey reads the store's server key once and keeps it.
func (s *AuthServer) serverKey(ctx context.Context) ([]byte, error) {
	s.keyMu.Lock()
	defer s.keyMu.Unlock()
	if s.key != nil {
		return s.key, nil
	}
	key, err := s.Store.ServerKey(ctx)
	if err != nil {
		return nil, err
	}
	if len(key) < 32 {
		return nil, errors.New("oauth: server key too short")
	}
	s.key = key
	return key, nil
}

func (s *AuthServer) forget(hashes []TokenHash) {
	if s.Validator == nil {
		return
	}
	for _, h := range hashes {
		s.Validator.Forget(h)
	}
}

func (s *AuthServer) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

func (s *AuthServer) metrics() Metrics { return metricsOrNone(s.Metrics) }

func (s *AuthServer) audit(ctx context.Context, e AuditEvent) {
	auditorOrNone(s.Audit).Audit(ctx, e)
}

func (s *AuthServer) logger() *zap.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return zap.NewNop()
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// newFamilyID names a refresh family: random, so it reveals nothing, and
// safe to log.
func newFamilyID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}
