package oauth

import (
	"encoding/json"
	"net/http"
)

// Error is an OAuth 2.0 error response (RFC 6749 4.1.2.1 and 5.2). Code and
// Description are sent to the client, so Description never carries a token,
// code or secret; debug detail goes to the log instead.
type Error struct {
	// Code is the RFC 6749 error code, such as "invalid_grant".
	Code string
	// Description is the human-readable error_description; may be empty.
	Description string
	// Status is the HTTP status the token endpoint answers with.
	Status int
}

// Error implements error.
func (e *Error) Error() string {
	if e.Description == "" {
		return e.Code
	}
	return e.Code + ": " + e.Description
}

// WithDescription returns a copy of e with description d.
func (e *Error) WithDescription(d string) *Error {
	c := *e
	c.Description = d
	return &c
}

// The RFC 6749 error codes. Use WithDescription for a specific message;
// never modify these values.
var (
	ErrInvalidRequest          = &Error{Code: "invalid_request", Status: http.StatusBadRequest}
	ErrInvalidClient           = &Error{Code: "invalid_client", Status: http.StatusUnauthorized}
	ErrInvalidGrant            = &Error{Code: "invalid_grant", Status: http.StatusBadRequest}
	ErrUnauthorizedClient      = &Error{Code: "unauthorized_client", Status: http.StatusBadRequest}
	ErrUnsupportedGrantType    = &Error{Code: "unsupported_grant_type", Status: http.StatusBadRequest}
	ErrInvalidScope            = &Error{Code: "invalid_scope", Status: http.StatusBadRequest}
	ErrUnsupportedResponseType = &Error{Code: "unsupported_response_type", Status: http.StatusBadRequest}
	ErrAccessDenied            = &Error{Code: "access_denied", Status: http.StatusForbidden}
	ErrServerError             = &Error{Code: "server_error", Status: http.StatusInternalServerError}
	// ErrTemporarilyUnavailable is what a store failure becomes: the client
	// may retry, and never gets a token or a false success (docs/operations.md).
	ErrTemporarilyUnavailable = &Error{Code: "temporarily_unavailable", Status: http.StatusServiceUnavailable}
)

// MarshalJSON writes the RFC 6749 5.2 body: {"error":...,"error_description":...},
// the description left out when empty. Status is not part of the body.
func (e *Error) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Error       string `json:"error"`
		Description string `json:"error_description,omitempty"`
	}{e.Code, e.Description})
}
