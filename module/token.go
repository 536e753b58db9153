package module

import (
	"net/http"

	"go.uber.org/zap"

	"github.com/tokengate/caddy-tokengate/oauth"
)

// serveToken is the token endpoint (RFC 6749 3.2): the
// authorization_code grant (RFC 6749 4.1.3, RFC 7636 4.5), the
// refresh_token grant (RFC 6749 6), the client_credentials grant (RFC
// 6749 4.4) and the device_code grant's polls (RFC 8628 3.4). Every answer
// is no-store (RFC 6749 5.1).
// A DPoP proof, on any grant, binds what is issued to its key (RFC 9449 5).
func (e *Endpoints) serveToken(w http.ResponseWriter, r *http.Request) error {
	p, client, err := e.clientRequest(w, r)
	if client == nil {
		return err
	}
	jkt, oerr := e.app.tokenRequestProof(r)
	if oerr != nil {
		if ce := e.logger.Check(zap.DebugLevel, "DPoP proof refused at the token endpoint"); ce != nil {
			ce.Write(zap.String("client_id", client.ID), zap.String("reason", oerr.Description))
		}
		return writeOAuthError(w, oerr)
	}
	extras := oauth.TokenExtras{Resource: p["resource"], DPoPKey: jkt}
	var resp oauth.TokenResponse
	switch grant, given := p["grant_type"]; {
	case !given || grant == "":
		oerr = oauth.ErrInvalidRequest.WithDescription("grant_type is required")
	case grant == "authorization_code":
		resp, oerr = e.app.auth.ExchangeFor(r.Context(), client, p["code"], p["redirect_uri"], p["code_verifier"], extras)
	case grant == "refresh_token":
		resp, oerr = e.app.auth.RefreshFor(r.Context(), client, p["refresh_token"], p["scope"], extras)
	case grant == oauth.GrantTypeClientCredentials:
		resp, oerr = e.app.auth.ClientCredentialsFor(r.Context(), client, p["scope"], extras)
	case grant == oauth.GrantTypeDeviceCode:
		resp, oerr = e.app.device.PollFor(r.Context(), client, p["device_code"], extras)
	default:
		oerr = oauth.ErrUnsupportedGrantType.WithDescription("grant_type must be authorization_code, refresh_token, client_credentials or " + oauth.GrantTypeDeviceCode)
	}
	if oerr != nil {
		return writeOAuthError(w, oerr)
	}
	return writeJSON(w, http.StatusOK, resp)
}
