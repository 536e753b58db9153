package module

import (
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"go.uber.org/zap"

	"github.com/tokengate/caddy-tokengate/oauth"
)

// basicRealm is the challenge sent when HTTP Basic client authentication
// fails (RFC 6749 5.2, RFC 7617).
const basicRealm = `Basic realm="tokengate"`

// clientCredentials are the credentials a request presents (RFC 6749 2.3.1).
type clientCredentials struct {
	id, secret string
	// secretGiven is false when no secret (or an empty one) was sent: a
	// public client (RFC 6749 2.1) authenticates with its id alone.
	secretGiven bool
	// basic says HTTP Basic was used, so a failure carries a Basic challenge.
	basic bool
}

// parseClientCredentials reads client_secret_basic (the Authorization
// header, id and secret form-urlencoded before base64 per RFC 6749 2.3.1)
// or client_secret_post (client_id and client_secret in the body). Using
// both is invalid_request (RFC 6749 2.3: "MUST NOT use more than one
// authentication method in each request"); a Basic header that cannot be
// decoded, or another scheme, is invalid_client. A body client_id equal to
// the Basic one is tolerated.
func parseClientCredentials(header []string, p bodyParams) (clientCredentials, *oauth.Error) {
	_, bodySecret := p["client_secret"]
	bodyID, hasBodyID := p["client_id"]
	if len(header) == 0 {
		return clientCredentials{id: bodyID, secret: p["client_secret"], secretGiven: p["client_secret"] != ""}, nil
	}
	if len(header) > 1 {
		return clientCredentials{basic: true}, oauth.ErrInvalidRequest.WithDescription("more than one Authorization header")
	}
	badBasic := oauth.ErrInvalidClient.WithDescription("the Authorization header is not valid HTTP Basic client authentication")
	scheme, rest, _ := strings.Cut(strings.TrimSpace(header[0]), " ")
	if !strings.EqualFold(scheme, "Basic") {
		return clientCredentials{basic: true}, badBasic
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(rest))
	if err != nil {
		return clientCredentials{basic: true}, badBasic
	}
	encID, encSecret, ok := strings.Cut(string(raw), ":")
	if !ok {
		return clientCredentials{basic: true}, badBasic
	}
	id, err1 := url.QueryUnescape(encID)
	secret, err2 := url.QueryUnescape(encSecret)
	if err1 != nil || err2 != nil || id == "" {
		return clientCredentials{basic: true}, badBasic
	}
	creds := clientCredentials{id: id, secret: secret, secretGiven: secret != "", basic: true}
	if bodySecret {
		return creds, oauth.ErrInvalidRequest.WithDescription("client credentials are given both in the Authorization header and in the body")
	}
	if hasBodyID && bodyID != id {
		return creds, oauth.ErrInvalidRequest.WithDescription("client_id in the body differs from the Authorization header")
	}
	return creds, nil
}

// authenticateClient authenticates the client of a token, revocation or
// introspection request (docs/reference.md). On failure it has answered: 401
// invalid_client (with a Basic challenge when Basic was used), 400 for a
// malformed request, or 429 when the remote address has failed too often.
func (e *Endpoints) authenticateClient(w http.ResponseWriter, r *http.Request, p bodyParams) (*oauth.Client, bool) {
	addr := remoteAddr(r)
	limiter := limiterFor(e.app.stateKey)
	if wait, blocked := limiter.blocked(addr); blocked {
		e.app.metrics.rateLimit()
		w.Header().Set("Retry-After", retryAfter(wait))
		_ = writeJSON(w, http.StatusTooManyRequests, oauthError{"temporarily_unavailable", "too many failed client authentications from this address; retry later"})
		return nil, false
	}
	creds, oerr := parseClientCredentials(r.Header["Authorization"], p)
	if oerr == nil {
		var c *oauth.Client
		if c, oerr = e.authenticatedClient(r, creds); oerr == nil {
			return c, true
		}
	}
	if oerr.Code == oauth.ErrInvalidClient.Code {
		limiter.fail(addr)
		e.app.metrics.clientAuthFailure()
		// The id the request named, which may be no client at all; never
		// the secret.
		e.app.audit.Audit(r.Context(), oauth.AuditEvent{Message: oauth.AuditClientAuthFailed, ClientID: creds.id})
		if creds.basic {
			w.Header().Set("WWW-Authenticate", basicRealm)
		}
		// An unknown client and a wrong secret get the same body.
		_ = writeJSON(w, http.StatusUnauthorized, oauthError{Error: "invalid_client"})
		return nil, false
	}
	_ = writeOAuthError(w, oerr)
	return nil, false
}

func (e *Endpoints) authenticatedClient(r *http.Request, creds clientCredentials) (*oauth.Client, *oauth.Error) {
	if creds.id == "" {
		return nil, oauth.ErrInvalidClient
	}
	c, err := e.app.registry.Authenticate(r.Context(), creds.id, creds.secret, creds.secretGiven)
	switch {
	case errors.Is(err, oauth.ErrInvalidClient):
		return nil, oauth.ErrInvalidClient
	case err != nil:
		// A client this instance does not know could not be looked up.
		e.logger.Error("reading the client failed", zap.String("client_id", creds.id), zap.Error(err))
		return nil, oauth.ErrTemporarilyUnavailable
	}
	return c, nil
}

// clientRequest opens a request to an endpoint that clients authenticate to
// (token, revoke, introspect): no-store, POST only, the body's
// parameters, then client authentication. A nil client means the answer has
// been written; err is then what ServeHTTP returns.
func (e *Endpoints) clientRequest(w http.ResponseWriter, r *http.Request) (bodyParams, *oauth.Client, error) {
	setNoStore(w)
	if !postOnly(w, r) {
		return nil, nil, nil
	}
	p, err := readParams(w, r)
	if err != nil {
		return nil, nil, writeParamsError(w, err)
	}
	client, ok := e.authenticateClient(w, r, p)
	if !ok {
		return nil, nil, nil
	}
	return p, client, nil
}
