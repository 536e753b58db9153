package oauth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
)

// Defaults of the device authorization grant (RFC 8628).
const (
	// DefaultDeviceCodeTTL is how long a device code and its user code
	// live (device_code_ttl).
	DefaultDeviceCodeTTL = 10 * time.Minute
	// DeviceInterval is the polling interval a device is first given
	// (RFC 8628 3.2: 5 seconds when none is said).
	DeviceInterval = 5 * time.Second
)

// User codes (RFC 8628 6.1): eight characters from twenty consonants,
// which hold no words, no digits to confuse with letters, and are easy to
// type on any keyboard; 20^8 is about 2^34.6. They are shown as two
// groups of four, XXXX-XXXX.
const (
	UserCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ"
	userCodeLen      = 8
)

// userCodeKeyPurpose names the key, derived from the server key, under
// which user codes are stored: every instance sharing a store derives the
// same one.
const userCodeKeyPurpose = "device user code v1"

// saveAttempts bounds how often new codes are drawn when the ones drawn are
// taken: with 20^8 user codes, a second attempt is already rare.
const saveAttempts = 5

// The RFC 8628 3.5 errors of the token endpoint, all 400. access_denied
// here is the token endpoint's, not the authorization endpoint's redirect.
var (
	ErrAuthorizationPending = &Error{Code: "authorization_pending", Status: http.StatusBadRequest}
	ErrSlowDown             = &Error{Code: "slow_down", Status: http.StatusBadRequest}
	ErrExpiredToken         = &Error{Code: "expired_token", Status: http.StatusBadRequest}
	ErrDeviceAccessDenied   = &Error{Code: "access_denied", Status: http.StatusBadRequest}
)

// ErrUnknownUserCode is what DeviceGrant.Lookup and Decide return for a
// user code that is malformed, unknown, expired or already decided. The
// verification page tells the user no more than that.
var ErrUnknownUserCode = errors.New("unknown or expired user code")

// DeviceGrant is the device authorization grant (RFC 8628): device
// authorization requests, the verification page's look-ups and decisions,
// and the token endpoint's polls. It builds on the AuthServer's clients,
// scopes, lifetimes, metrics and audit.
type DeviceGrant struct {
	Auth  *AuthServer
	Store DeviceStore
	// TTL is how long device codes live; zero means DefaultDeviceCodeTTL.
	TTL time.Duration
}

// DeviceAuthorizationResponse is the RFC 8628 3.2 response.
type DeviceAuthorizationResponse struct {
	DeviceCode              string `json:"device_code"`
	UserCode                string `json:"user_code"`
	VerificationURI         string `json:"verification_uri"`
	VerificationURIComplete string `json:"verification_uri_complete"`
	ExpiresIn               int64  `json:"expires_in"`
	Interval                int64  `json:"interval"`
}

// DeviceRequest is a pending device authorization as the verification
// page shows it.
type DeviceRequest struct {
	Client *Client
	Scopes []string
	// UserCode is the code, normalized and shown XXXX-XXXX.
	UserCode  string
	ExpiresAt time.Time
}

// Start answers a device authorization request (RFC 8628 3.1, 3.2) of an
// authenticated client: a client whose grant types lack the device grant
// is unauthorized_client; scope is optional, and its absence means every
// scope the client may ask for. verificationURI is the verification page's
// absolute URL.
func (g *DeviceGrant) Start(ctx context.Context, client *Client, scope, verificationURI string) (DeviceAuthorizationResponse, *Error) {
	if client == nil {
		return DeviceAuthorizationResponse{}, ErrInvalidClient
	}
	if !client.AllowsGrant(GrantTypeDeviceCode) {
		return DeviceAuthorizationResponse{}, ErrUnauthorizedClient.WithDescription("this client may not use the device authorization grant")
	}
	scopes, serr := g.scopes(client, scope)
	if serr != nil {
		return DeviceAuthorizationResponse{}, serr
	}
	key, err := g.Auth.DeriveKey(ctx, userCodeKeyPurpose)
	if err != nil {
		g.Auth.logger().Error("reading the server key failed", zap.Error(err))
		return DeviceAuthorizationResponse{}, ErrTemporarilyUnavailable
	}
	now := g.Auth.now()
	ttl := orDefault(g.TTL, DefaultDeviceCodeTTL)
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	for range saveAttempts {
		deviceCode, deviceHash, err := NewToken(KindDevice)
		if err != nil {
			return DeviceAuthorizationResponse{}, ErrServerError
		}
		userCode, err := newUserCode()
		if err != nil {
			return DeviceAuthorizationResponse{}, ErrServerError
		}
		family, err := newFamilyID()
		if err != nil {
			return DeviceAuthorizationResponse{}, ErrServerError
		}
		err = g.Store.SaveDeviceAuthorization(ctx, DeviceAuthorization{
			DeviceCodeHash:   deviceHash,
			UserCodeHash:     hashUserCode(key, userCode),
			ClientID:         client.ID,
			ClientGeneration: client.generation,
			Scopes:           scopes,
			Status:           DevicePending,
			Interval:         DeviceInterval,
			FamilyID:         family,
			CreatedAt:        now,
			ExpiresAt:        now.Add(ttl),
		})
		if errors.Is(err, ErrDeviceCodeTaken) {
			continue
		}
		if err != nil {
			g.Auth.logger().Error("saving a device authorization failed", zap.String("client_id", client.ID), zap.Error(err))
			return DeviceAuthorizationResponse{}, ErrTemporarilyUnavailable
		}
		shown := FormatUserCode(userCode)
		return DeviceAuthorizationResponse{
			DeviceCode:              deviceCode,
			UserCode:                shown,
			VerificationURI:         verificationURI,
			VerificationURIComplete: withUserCode(verificationURI, shown),
			ExpiresIn:               int64(ttl / time.Second),
			Interval:                int64(DeviceInterval / time.Second),
		}, nil
	}
	g.Auth.logger().Error("no free device code after several attempts", zap.String("client_id", client.ID))
	return DeviceAuthorizationResponse{}, ErrServerError
}

// scopes are the requested scopes (RFC 8628 3.1: scope is optional), or,
// when none is given, every declared scope the client may ask for.
func (g *DeviceGrant) scopes(client *Client, scope string) ([]string, *Error) {
	if strings.Trim(scope, " ") != "" {
		return g.Auth.requestedScopes(client, scope)
	}
	var all []string
	for _, s := range g.Auth.Scopes {
		if client.MayRequest(s.Name) {
			all = append(all, s.Name)
		}
	}
	if len(all) == 0 {
		return nil, ErrInvalidScope.WithDescription("this client may ask for no scope")
	}
	return all, nil
}

// Lookup finds the pending device authorization whose user code the user
// typed (in any letter case, with or without the dash, RFC 8628 6.1), for
// the verification page. ErrUnknownUserCode means there is none; any other
// error that the store or the clients could not be read.
func (g *DeviceGrant) Lookup(ctx context.Context, userCode string) (DeviceRequest, error) {
	code, ok := NormalizeUserCode(userCode)
	if !ok {
		return DeviceRequest{}, ErrUnknownUserCode
	}
	key, err := g.Auth.DeriveKey(ctx, userCodeKeyPurpose)
	if err != nil {
		return DeviceRequest{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	a, err := g.Store.PendingDeviceAuthorization(ctx, hashUserCode(key, code), g.Auth.now())
	switch {
	case errors.Is(err, ErrNotFound):
		return DeviceRequest{}, ErrUnknownUserCode
	case err != nil:
		return DeviceRequest{}, err
	}
	c, err := g.Auth.Clients.FindClient(ctx, a.ClientID)
	switch {
	case errors.Is(err, ErrNotFound):
		return DeviceRequest{}, ErrUnknownUserCode
	case err != nil:
		return DeviceRequest{}, err
	}
	if c.generation != a.ClientGeneration || !c.AllowsGrant(GrantTypeDeviceCode) {
		// The client that asked is gone, or no longer has the grant: its
		// polls would fail, so there is nothing to approve.
		return DeviceRequest{}, ErrUnknownUserCode
	}
	return DeviceRequest{Client: c, Scopes: a.Scopes, UserCode: FormatUserCode(code), ExpiresAt: a.ExpiresAt}, nil
}

// Decide records userID's decision on the pending device authorization of
// userCode (RFC 8628 3.3): approving records the user's consent, as an
// authorization does, so the client is among the user's connected apps.
// ErrUnknownUserCode means it was decided, or expired, meanwhile.
func (g *DeviceGrant) Decide(ctx context.Context, userCode, userID string, approve bool) (DeviceRequest, error) {
	code, ok := NormalizeUserCode(userCode)
	if !ok || userID == "" {
		return DeviceRequest{}, ErrUnknownUserCode
	}
	key, err := g.Auth.DeriveKey(ctx, userCodeKeyPurpose)
	if err != nil {
		return DeviceRequest{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	a, err := g.Store.DecideDeviceAuthorization(ctx, hashUserCode(key, code), userID, approve, g.Auth.now())
	switch {
	case errors.Is(err, ErrNotFound):
		return DeviceRequest{}, ErrUnknownUserCode
	case err != nil:
		return DeviceRequest{}, err
	}
	req := DeviceRequest{Scopes: a.Scopes, UserCode: FormatUserCode(code), ExpiresAt: a.ExpiresAt}
	if c, err := g.Auth.Clients.FindClient(ctx, a.ClientID); err == nil {
		req.Client = c
	}
	if !approve {
		g.Auth.audit(ctx, AuditEvent{Message: AuditAuthorizationDenied, UserID: userID, ClientID: a.ClientID, Grant: GrantDeviceCode, Scopes: a.Scopes})
		return req, nil
	}
	// The approval stands without the consent record: a failure here
	// only leaves the client out of the user's connected apps.
	if err := g.Auth.Store.RecordConsent(ctx, userID, a.ClientID, a.Scopes); err != nil {
		g.Auth.logger().Error("recording consent failed", zap.String("client_id", a.ClientID), zap.String("user_id", userID), zap.Error(err))
	}
	g.Auth.audit(ctx, AuditEvent{Message: AuditAuthorizationGranted, UserID: userID, ClientID: a.ClientID, Grant: GrantDeviceCode, Scopes: a.Scopes})
	return req, nil
}

// Poll answers the token endpoint's device_code grant (RFC 8628 3.4, 3.5)
// for an authenticated client: authorization_pending until the user
// decides, slow_down when polled sooner than the interval (which then
// grows by 5 s), access_denied after a denial, expired_token after the
// code's lifetime, and on approval one token response, exactly once;
// every later poll is invalid_grant.
func (g *DeviceGrant) Poll(ctx context.Context, client *Client, deviceCode string) (TokenResponse, *Error) {
	return g.PollFor(ctx, client, deviceCode, TokenExtras{})
}

// PollFor is Poll with the token request's extras: the tokens are issued
// for x.Resource (RFC 8707 2.2), and bound to the DPoP key x.DPoPKey as
// a code exchange binds them (RFC 9449 5).
func (g *DeviceGrant) PollFor(ctx context.Context, client *Client, deviceCode string, x TokenExtras) (TokenResponse, *Error) {
	if client == nil {
		return TokenResponse{}, ErrInvalidClient
	}
	if !client.AllowsGrant(GrantTypeDeviceCode) {
		return TokenResponse{}, ErrUnauthorizedClient.WithDescription("this client may not use the device authorization grant")
	}
	if oerr := checkDPoPRequired(client, x.DPoPKey); oerr != nil {
		return TokenResponse{}, oerr
	}
	if oerr := g.Auth.checkTokenResource(x.Resource); oerr != nil {
		return TokenResponse{}, oerr
	}
	if deviceCode == "" {
		return TokenResponse{}, ErrInvalidRequest.WithDescription("device_code is required")
	}
	badCode := ErrInvalidGrant.WithDescription("the device code is invalid or already used")
	if k, err := ParseToken(deviceCode); err != nil || k != KindDevice {
		return TokenResponse{}, badCode
	}
	s := g.Auth
	now := s.now()
	access, refresh, pair, genErr := s.randomPair(now)
	if genErr != nil {
		return TokenResponse{}, ErrServerError
	}
	pair.Audience = x.Resource
	bindPair(&pair, client, x.DPoPKey, true)
	var (
		failure  *Error
		authTime time.Time
	)
	check := func(a DeviceAuthorization) error {
		authTime = a.DecidedAt
		switch {
		case a.ClientID != client.ID || a.ClientGeneration != client.generation:
			failure = badCode
		case !client.mayRequestAll(a.Scopes):
			failure = ErrInvalidGrant.WithDescription("the device code carries a scope this client may no longer ask for")
		default:
			return nil
		}
		return failure
	}
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	if oerr := s.readyToSign(ctx); oerr != nil {
		return TokenResponse{}, oerr
	}
	if oerr := s.openIDReady(ctx); oerr != nil {
		return TokenResponse{}, oerr
	}
	start := time.Now()
	p, err := g.Store.PollDeviceAuthorization(ctx, HashToken(deviceCode), now, check, pair)
	timeStoreCall(s.metrics(), OpExchange, start)
	if oerr := s.grantStoreError(ctx, err, failure, badCode, client, "device code", "device code poll failed"); oerr != nil {
		return TokenResponse{}, oerr
	}
	switch p.Outcome {
	case DevicePollPending:
		return TokenResponse{}, ErrAuthorizationPending.WithDescription("the user has not decided yet")
	case DevicePollSlowDown:
		return TokenResponse{}, ErrSlowDown.WithDescription("polled too often; wait at least " +
			strconv.FormatInt(int64(p.Interval/time.Second), 10) + " seconds between polls")
	case DevicePollDenied:
		return TokenResponse{}, ErrDeviceAccessDenied.WithDescription("the user denied the request")
	case DevicePollExpired:
		return TokenResponse{}, ErrExpiredToken.WithDescription("the device code has expired; start again")
	case DevicePollUsed:
		return TokenResponse{}, badCode
	case DevicePollIssued:
	default:
		s.logger().Error("device code poll: unexpected outcome", zap.Int("outcome", int(p.Outcome)))
		return TokenResponse{}, ErrServerError
	}
	access, oerr := s.accessTokenText(ctx, issuedAccessToken{
		id: access, userID: p.UserID, clientID: client.ID, scopes: p.Scopes,
		audience: pair.Audience, dpopKey: pair.AccessDPoPKey,
		issuedAt: now, expiresAt: pair.Access.ExpiresAt, authTime: authTime,
	})
	if oerr != nil {
		return TokenResponse{}, oerr
	}
	s.metrics().TokenIssued(GrantDeviceCode)
	s.audit(ctx, AuditEvent{Message: AuditTokenIssued, UserID: p.UserID, ClientID: client.ID, Grant: GrantDeviceCode, Scopes: p.Scopes})
	// With OpenID Connect, the rules of a code exchange: a refresh token
	// only with offline_access, an ID token with openid. A device
	// authorization keeps no IdP claims, nonce or auth time, so its ID
	// tokens say who the user is and no more.
	return s.openIDResponse(ctx, TokenResponse{
		AccessToken:  access,
		TokenType:    tokenType(pair.AccessDPoPKey),
		ExpiresIn:    int64(pair.Access.ExpiresAt.Sub(now).Round(time.Second) / time.Second),
		RefreshToken: refresh,
		Scope:        strings.Join(p.Scopes, " "),
	}, idTokenGrant{userID: p.UserID, clientID: client.ID, scopes: p.Scopes}, now)
}

// NormalizeUserCode returns the user code in s as stored (eight letters of
// UserCodeAlphabet, upper case): letters in either case, the dash and
// white space anywhere ignored (RFC 8628 6.1). ok is false for anything
// else.
func NormalizeUserCode(s string) (string, bool) {
	var b [userCodeLen]byte
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '-' || c == ' ' || c == '\t' || c == '\r' || c == '\n':
			continue
		case c >= 'a' && c <= 'z':
			c -= 'a' - 'A'
		}
		if n == userCodeLen || strings.IndexByte(UserCodeAlphabet, c) < 0 {
			return "", false
		}
		b[n] = c
		n++
	}
	if n != userCodeLen {
		return "", false
	}
	return string(b[:]), true
}

// FormatUserCode shows a normalized user code as XXXX-XXXX.
func FormatUserCode(code string) string {
	if len(code) != userCodeLen {
		return code
	}
	return code[:4] + "-" + code[4:]
}

// newUserCode draws a user code from crypto/rand, each character uniform
// over the alphabet: bytes of 240 and above are drawn again, since 256 is
// no multiple of 20.
func newUserCode() (string, error) {
	var out [userCodeLen]byte
	var buf [2 * userCodeLen]byte
	n := 0
	for n < userCodeLen {
		if _, err := rand.Read(buf[:]); err != nil {
			return "", err
		}
		for _, v := range buf {
			if n == userCodeLen {
				break
			}
			if v < 240 {
				out[n] = UserCodeAlphabet[int(v)%len(UserCodeAlphabet)]
				n++
			}
		}
	}
	return string(out[:]), nil
}

// hashUserCode is what the store keeps of a normalized user code.
func hashUserCode(key []byte, code string) UserCodeHash {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(code))
	var h UserCodeHash
	copy(h[:], m.Sum(nil))
	return h
}

// withUserCode is verificationURI with the user_code query parameter
// (RFC 8628 3.3.1), keeping any query it has.
func withUserCode(verificationURI, shown string) string {
	u, err := url.Parse(verificationURI)
	if err != nil {
		return verificationURI
	}
	q := u.Query()
	q.Set("user_code", shown)
	u.RawQuery = q.Encode()
	return u.String()
}
