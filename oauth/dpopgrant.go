package oauth

import "net/http"

// How the token endpoint binds what it issues to a DPoP key (RFC 9449 5).
// The HTTP side verifies the request's proof and passes the thumbprint of
// its key (RFC 7638) to the grant, empty when the request had none; the
// grant binds the pair to it and answers token_type DPoP.

// The access token types of a token response (RFC 6749 7.1, RFC 9449
// 5), apart from the kinds of token the guard names (TokenTypeOAuth ...).
const (
	accessTypeBearer = "Bearer"
	accessTypeDPoP   = "DPoP"
)

var (
	// errDPoPRequired refuses a token request without a proof from a
	// client that must send one (RFC 9449 5.2): the proof the client
	// promised is missing, so the request is answered as one with an
	// invalid proof.
	errDPoPRequired = &Error{Code: "invalid_dpop_proof", Status: http.StatusBadRequest,
		Description: "this client must send a DPoP proof with every token request"}
	// errFamilyKey refuses a refresh of a bound family without a proof of
	// its key: the refresh token is not valid for this sender (RFC 9449 5).
	errFamilyKey = ErrInvalidGrant.WithDescription("the refresh token is bound to a DPoP key; send a DPoP proof made with that key")
	// errReplayKey refuses a retry within refresh_grace whose proof names
	// another key than the first rotation's, or none where it had one.
	errReplayKey = ErrInvalidGrant.WithDescription("a retry of a refresh must carry a DPoP proof of the same key as the first request, or none if it had none")
)

// checkDPoPRequired applies the client's dpop_bound_access_tokens (RFC
// 9449 5.2) to a request whose proof has key dpopKey.
func checkDPoPRequired(client *Client, dpopKey string) *Error {
	if client.DPoPBoundAccessTokens && dpopKey == "" {
		return errDPoPRequired
	}
	return nil
}

// bindPair binds a pair about to be issued to client for a request whose
// proof has key dpopKey: the access token always (RFC 9449 5); at a code
// exchange (newFamily), the refresh tokens of the new family too, for a
// public client only. A confidential client's refresh tokens are bound to
// it by its authentication already, and binding them to a key as well
// would keep it from changing keys (RFC 9449 5). Rotation keeps a
// family's binding, whatever the request's proof.
func bindPair(pair *IssuedPair, client *Client, dpopKey string, newFamily bool) {
	pair.AccessDPoPKey = dpopKey
	if newFamily && !client.Confidential() {
		pair.FamilyDPoPKey = dpopKey
	}
}

// checkFamilyKey refuses a refresh of a bound family unless the request's
// proof was made with the family's key (RFC 9449 5).
func checkFamilyKey(g RefreshGrant, dpopKey string) *Error {
	if g.DPoPKey != "" && g.DPoPKey != dpopKey {
		return errFamilyKey
	}
	return nil
}

// tokenType is the token_type of an access token bound to dpopKey.
func tokenType(dpopKey string) string {
	if dpopKey != "" {
		return accessTypeDPoP
	}
	return accessTypeBearer
}

// confirmation is the cnf of a token bound to dpopKey (RFC 9449 6.1,
// 6.2): in a JWT access token and in an introspection response; nil for
// none.
func confirmation(dpopKey string) *Confirmation {
	if dpopKey == "" {
		return nil
	}
	return &Confirmation{JKT: dpopKey}
}
