package oauth

import (
	"encoding/json"
	"testing"
)

func TestErrorJSON(t *testing.T) {
	tests := []struct {
		name string
		err  *Error
		want string
	}{
		{"RFC 6749 5.2 with description", ErrInvalidGrant.WithDescription("code expired"), `{"error":"invalid_grant","error_description":"code expired"}`},
		{"RFC 6749 5.2 without description", ErrInvalidClient, `{"error":"invalid_client"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.err)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tt.want {
				t.Errorf("JSON = %s, want %s", b, tt.want)
			}
		})
	}
}

func TestErrorStatuses(t *testing.T) {
	tests := []struct {
		err    *Error
		code   string
		status int
	}{
		{ErrInvalidRequest, "invalid_request", 400},
		{ErrInvalidClient, "invalid_client", 401}, // RFC 6749 5.2
		{ErrInvalidGrant, "invalid_grant", 400},
		{ErrUnauthorizedClient, "unauthorized_client", 400},
		{ErrUnsupportedGrantType, "unsupported_grant_type", 400},
		{ErrInvalidScope, "invalid_scope", 400},
		{ErrUnsupportedResponseType, "unsupported_response_type", 400},
		{ErrServerError, "server_error", 500},
		{ErrTemporarilyUnavailable, "temporarily_unavailable", 503}, // a store outage (docs/operations.md)
	}
	for _, tt := range tests {
		if tt.err.Code != tt.code || tt.err.Status != tt.status {
			t.Errorf("%s = %d, want %s %d", tt.err.Code, tt.err.Status, tt.code, tt.status)
		}
	}
	// WithDescription copies; the shared value is untouched.
	_ = ErrInvalidGrant.WithDescription("x")
	if ErrInvalidGrant.Description != "" {
		t.Error("WithDescription modified the shared error")
	}
}
