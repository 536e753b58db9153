package module

import (
	"errors"
	"net/http"

	"go.uber.org/zap"

	"github.com/tokengate/caddy-tokengate/oauth"
)

// authenticateAccess validates the access token of a request to a
// protected resource: the check of the guard, and of every endpoint that
// takes an access token as the guard does (userinfo), so that they accept
// and refuse the same tokens alike. It refuses a token in the URL, reads
// the token from the Authorization header, Bearer or DPoP, validates it
// (from the cache when it can), and for a token bound to a DPoP key checks
// the request's proof (RFC 9449 7.1), which costs no store call. The
// scopes are the caller's to check (denyScopeFor answers a lack).
//
// On success it returns the principal and the token's text. Otherwise it
// has answered, 401 or 503 (docs/reference.md, docs/dpop.md), counted the
// validation, and returns ok false with the error the handler returns.
// accessLog writes the access log entry of a request refused for a token
// in its URL.
func (a *App) authenticateAccess(w http.ResponseWriter, r *http.Request, logger, accessLog *zap.Logger, res guardResource) (p oauth.Principal, text string, ok bool, err error) {
	last := res.challengeSuffix
	var scheme oauth.Scheme
	invalid := func(deny error) (oauth.Principal, string, bool, error) {
		a.metrics.validation(validationInvalid)
		return oauth.Principal{}, "", false, deny
	}
	if r.URL.RawQuery != "" && hasQueryToken(r.URL.RawQuery) {
		deny := denyTokenInURL(w, last)
		logRefusedURLToken(accessLog, w, r, http.StatusUnauthorized, len(bodyTokenInURL))
		return invalid(deny)
	}
	text, scheme, err = oauth.AccessToken(r.Header["Authorization"])
	if err != nil {
		if scheme == oauth.SchemeDPoP {
			return invalid(denyDPoP(w, "invalid_token", "", last))
		}
		return invalid(denyUnauthenticated(w, !errors.Is(err, oauth.ErrNoCredentials), last))
	}
	if !a.awaitStart(r.Context()) {
		if ce := logger.Check(zap.WarnLevel, "token store not open yet"); ce != nil {
			ce.Write()
		}
		a.metrics.validation(validationUnavailable)
		return oauth.Principal{}, "", false, denyUnavailable(w)
	}
	p, err = a.state.validator.ValidateWith(r.Context(), text, a.jwtAccess)
	switch {
	case errors.Is(err, oauth.ErrUnavailable):
		a.metrics.validation(validationUnavailable)
		if ce := logger.Check(zap.WarnLevel, "token store unavailable"); ce != nil {
			ce.Write(zap.Error(err))
		}
		return oauth.Principal{}, "", false, denyUnavailable(w)
	case err != nil && scheme == oauth.SchemeDPoP:
		return invalid(denyDPoP(w, "invalid_token", "", last))
	case err != nil:
		return invalid(denyUnauthenticated(w, true, last))
	case res.resource != "" && p.Kind != oauth.KindPersonal && p.Audience != res.resource:
		// A guard of a resource takes only tokens issued for it (RFC 8707,
		// RFC 9068 4); a personal token is the user's own, for every route.
		if scheme == oauth.SchemeDPoP {
			return invalid(denyDPoP(w, "invalid_token", "the access token was not issued for this resource", last))
		}
		return invalid(denyUnauthenticated(w, true, last))
	case p.DPoPKey == "" && scheme == oauth.SchemeDPoP:
		// RFC 9449 7.1 checks a proof against the key the token is bound
		// to; an unbound token has none (docs/decisions.md).
		return invalid(denyDPoP(w, "invalid_token", "the access token is not bound to a DPoP key; send it with the Bearer scheme", last))
	case p.DPoPKey != "" && scheme != oauth.SchemeDPoP:
		// RFC 9449 7.2: a bound token is never taken as a bearer token.
		return invalid(denyDPoP(w, "invalid_token", "the access token is bound to a DPoP key; send it with the DPoP scheme and a DPoP proof", last))
	case p.DPoPKey != "":
		if oerr := a.checkResourceProof(r, text, p.DPoPKey); oerr != nil {
			if ce := logger.Check(zap.DebugLevel, "DPoP proof refused"); ce != nil {
				ce.Write(zap.String("reason", oerr.Description), zap.String("client_id", p.ClientID))
			}
			return invalid(denyDPoP(w, "invalid_dpop_proof", oerr.Description, last))
		}
	}
	return p, text, true, nil
}

// denyScopeFor answers 403 for a principal authenticateAccess accepted
// that lacks scope ("" when the method has no line at all): with the
// Bearer challenge of docs/reference.md, or for a token bound to a DPoP
// key, which came with the DPoP scheme, the DPoP one (RFC 9449 7.1).
func denyScopeFor(w http.ResponseWriter, p *oauth.Principal, scope, last string) error {
	if p.DPoPKey != "" {
		return denyScopeDPoP(w, scope, last)
	}
	return denyScope(w, scope, last)
}

// guardResource is what a guard names of its resource (RFC 9728,
// RFC 8707) for authenticateAccess: the resource URI, whose tokens alone
// it takes, and the resource_metadata parameter its challenges end with
// (with its leading ", "). Both are empty for a guard without resource,
// and for userinfo.
type guardResource struct {
	resource, challengeSuffix string
}
