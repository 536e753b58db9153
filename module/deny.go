package module

import (
	"net/http"
)

// The guard's answers (docs/reference.md). The JSON bodies are fixed, byte
// for byte; scope names are RFC 6749 3.3 scope-tokens, which contain no '"' or
// '\', so they need no escaping inside the JSON strings or the challenge.
const (
	realm              = `Bearer realm="tokengate"`
	bodyInvalidToken   = `{"error":"Missing or invalid API token"}`
	bodyTokenInURL     = `{"error":"Missing or invalid API token","error_description":"Tokens in the URL are not accepted; send Authorization: Bearer <token>"}`
	bodyUnavailable    = `{"error":"Token validation temporarily unavailable"}`
	bodyNoScopeForVerb = `{"error":"Insufficient scope"}`
	// retryAfterSeconds is what a client waits before trying again when
	// the store is down.
	retryAfterSeconds = "5"
)

// The deny functions below take last the challenge's closing parameters,
// which the challenge ends with: the guard's resource_metadata (RFC 9728
// 5.1) with its leading ", ", or "" for a guard that names no resource.

// denyUnauthenticated answers 401. invalid says whether credentials were
// sent: RFC 6750 3.1 leaves the error out when the request had none.
func denyUnauthenticated(w http.ResponseWriter, invalid bool, last string) error {
	challenge := realm
	if invalid {
		challenge = realm + `, error="invalid_token"`
	}
	return writeDenial(w, http.StatusUnauthorized, challenge+last, bodyInvalidToken)
}

func denyTokenInURL(w http.ResponseWriter, last string) error {
	return writeDenial(w, http.StatusUnauthorized, realm+`, error="invalid_request"`+last, bodyTokenInURL)
}

// denyScope answers 403; scope is the first missing scope, or empty when the
// method has no line at all.
func denyScope(w http.ResponseWriter, scope, last string) error {
	if scope == "" {
		return writeDenial(w, http.StatusForbidden, realm+`, error="insufficient_scope"`+last, bodyNoScopeForVerb)
	}
	return writeDenial(w, http.StatusForbidden,
		realm+`, error="insufficient_scope", scope="`+scope+`"`+last,
		`{"error":"Insufficient scope","required_scope":"`+scope+`"}`)
}

func denyUnavailable(w http.ResponseWriter) error {
	w.Header().Set("Retry-After", retryAfterSeconds)
	return writeDenial(w, http.StatusServiceUnavailable, "", bodyUnavailable)
}

// writeDenial writes the answer itself rather than returning a
// caddyhttp.Error, because the JSON body is part of the contract and
// Caddy's default error handling would send an empty one.
func writeDenial(w http.ResponseWriter, status int, challenge, body string) error {
	h := w.Header()
	if challenge != "" {
		h.Set("WWW-Authenticate", challenge)
	}
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, err := w.Write([]byte(body))
	return err
}
