package module

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/tokengate/caddy-tokengate/oauth"
)

// The HTTP side of DPoP (RFC 9449, docs/dpop.md): where a proof is read,
// the URI it must name, and how its refusals are answered.

// headerDPoP is the proof's header (RFC 9449 4.1).
const headerDPoP = "Dpop" // as net/http canonicalizes "DPoP"

// errNoProof refuses a bound token sent without a proof (RFC 9449 7.1).
var errNoProof = oauth.ErrInvalidDPoPProof.WithDescription("the request has no DPoP header")

// requestHTU is the htu a DPoP proof for r must name (RFC 9449 4.3 step
// 9), without query and fragment: the scheme and host of the request as
// Caddy received it (https when the connection to Caddy is TLS, the Host
// header or HTTP/2 :authority), then the path the client sent, before any
// rewrite by an earlier handler (uri, handle_path). The verifier compares
// it with the proof's htu after normalizing case and default ports.
func requestHTU(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + requestPath(r)
}

// requestPath is the path of r as the client sent it, escaped as sent.
func requestPath(r *http.Request) string {
	orig, ok := r.Context().Value(caddyhttp.OriginalRequestCtxKey).(http.Request)
	if !ok {
		orig = *r
	}
	// RequestURI is the request target as sent; in origin form (the only
	// one a client uses with a server rather than a proxy) it begins with
	// the path.
	if target := orig.RequestURI; strings.HasPrefix(target, "/") {
		path, _, _ := strings.Cut(target, "?")
		return path
	}
	if orig.URL == nil {
		return "/"
	}
	return orig.URL.EscapedPath()
}

// dpopError is err as the RFC 9449 error it stands for: the verifier's
// refusals are invalid_dpop_proof errors with a description for the
// client already.
func dpopError(err error) *oauth.Error {
	var oerr *oauth.Error
	if errors.As(err, &oerr) {
		return oerr
	}
	return oauth.ErrInvalidDPoPProof
}

// tokenRequestProof verifies the DPoP proof of a token request, if it has
// one (RFC 9449 5): htm POST and htu the token endpoint's URL as the
// client used it, no ath. It returns the thumbprint of the proof's key,
// "" for a request without a proof.
func (a *App) tokenRequestProof(r *http.Request) (string, *oauth.Error) {
	proof, err := oauth.DPoPProof(r.Header[headerDPoP])
	if err != nil {
		return "", dpopError(err)
	}
	if proof == "" {
		return "", nil
	}
	jkt, err := a.state.dpop.Verify(proof, http.MethodPost, requestHTU(r), "", time.Now())
	if err != nil {
		return "", dpopError(err)
	}
	return jkt, nil
}

// checkResourceProof checks the proof of a request to a protected
// resource that presents token, bound to the key with thumbprint jkt
// (RFC 9449 7.1): exactly one DPoP header, a proof for this request's
// method and URI, with the token's ath, signed by that key.
func (a *App) checkResourceProof(r *http.Request, token, jkt string) *oauth.Error {
	proof, err := oauth.DPoPProof(r.Header[headerDPoP])
	if err == nil && proof == "" {
		err = errNoProof
	}
	if err == nil {
		err = a.state.dpop.VerifyBound(proof, r.Method, requestHTU(r), token, jkt, time.Now())
	}
	if err != nil {
		return dpopError(err)
	}
	return nil
}

// denyDPoP answers a request made with the DPoP scheme, or one that
// presents a bound token, with 401 and the DPoP challenge (RFC 9449 7.1):
// code is invalid_dpop_proof when the proof failed, invalid_token when
// the token did. The challenge is exactly docs/reference.md's; the body is
// the guard's 401 body, with what failed in error_description.
func denyDPoP(w http.ResponseWriter, code, description, last string) error {
	body := bodyInvalidToken
	if description != "" {
		b, err := json.Marshal(struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}{"Missing or invalid API token", description})
		if err == nil {
			body = string(b)
		}
	}
	return writeDenial(w, http.StatusUnauthorized, oauth.DPoPChallenge(code, "")+last, body)
}

// denyScopeDPoP is denyScope for a request made with the DPoP scheme: the
// same 403 and body, the challenge in the DPoP scheme (RFC 9449 7.1).
func denyScopeDPoP(w http.ResponseWriter, scope, last string) error {
	challenge := oauth.DPoPChallenge("insufficient_scope", "")
	if scope == "" {
		return writeDenial(w, http.StatusForbidden, challenge+last, bodyNoScopeForVerb)
	}
	return writeDenial(w, http.StatusForbidden, challenge+`, scope="`+scope+`"`+last,
		`{"error":"Insufficient scope","required_scope":"`+scope+`"}`)
}
