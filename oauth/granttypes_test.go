package oauth

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

func TestAllowsGrant(t *testing.T) {
	tests := []struct {
		name       string
		grantTypes []string
		allowed    []string
	}{
		{"RFC 7591 2 default", nil, []string{GrantTypeAuthorizationCode, GrantTypeRefreshToken}},
		{"client_credentials only", []string{GrantTypeClientCredentials}, []string{GrantTypeClientCredentials}},
		{"code without refresh", []string{GrantTypeAuthorizationCode}, []string{GrantTypeAuthorizationCode}},
		{"all", KnownGrantTypes(), KnownGrantTypes()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Client{ID: "c", GrantTypes: tt.grantTypes}
			for _, g := range append(KnownGrantTypes(), "password", "") {
				if got, want := c.AllowsGrant(g), slices.Contains(tt.allowed, g); got != want {
					t.Errorf("AllowsGrant(%q) = %v, want %v", g, got, want)
				}
			}
		})
	}
}

func TestCheckGrantTypes(t *testing.T) {
	tests := []struct {
		name       string
		grantTypes []string
		public     bool
		wantErr    string // "" for none; else a part of the message
	}{
		{"default", nil, true, ""},
		{"every known grant, confidential", KnownGrantTypes(), false, ""},
		{"device grant, public", []string{GrantTypeDeviceCode}, true, ""},
		{"unknown name is named", []string{GrantTypeAuthorizationCode, "password"}, false, `"password"`},
		{"RFC 6749 4.4 client_credentials needs a confidential client", []string{GrantTypeClientCredentials}, true, "confidential"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckGrantTypes(tt.grantTypes, tt.public)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("CheckGrantTypes = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("CheckGrantTypes = %v, want an error mentioning %s", err, tt.wantErr)
			}
		})
	}
}

func TestNewClientGrantTypes(t *testing.T) {
	const uri = "https://app.example/cb"
	tests := []struct {
		name    string
		opts    ClientOptions
		want    []string // grant types of the client built
		wantErr string   // part of the error; "" for none
	}{
		{"default", ClientOptions{ID: "a", RedirectURIs: []string{uri}}, DefaultGrantTypes(), ""},
		{"repeats dropped", ClientOptions{ID: "a", Secret: "s", GrantTypes: []string{"client_credentials", "client_credentials"}},
			[]string{GrantTypeClientCredentials}, ""},
		{"client_credentials needs no redirect URI", ClientOptions{ID: "a", Secret: "s", GrantTypes: []string{"client_credentials"}},
			[]string{GrantTypeClientCredentials}, ""},
		{"the code flow needs a redirect URI", ClientOptions{ID: "a", Secret: "s", GrantTypes: []string{"client_credentials", "authorization_code"}},
			nil, "no redirect URI"},
		{"the default needs a redirect URI", ClientOptions{ID: "a"}, nil, "no redirect URI"},
		{"unknown grant type", ClientOptions{ID: "a", RedirectURIs: []string{uri}, GrantTypes: []string{"implicit"}}, nil, `"implicit"`},
		{"client_credentials on a public client", ClientOptions{ID: "a", GrantTypes: []string{"client_credentials"}}, nil, "confidential"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewClient(tt.opts)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("NewClient = %v, want an error mentioning %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewClient: %v", err)
			}
			if !slices.Equal(c.GrantTypes, tt.want) {
				t.Errorf("GrantTypes = %v, want %v", c.GrantTypes, tt.want)
			}
		})
	}
}

func TestStoredClientGrantTypes(t *testing.T) {
	rec := StoredClient{ID: "m", SecretHash: make([]byte, 32), GrantTypes: []string{GrantTypeClientCredentials}}
	if c := rec.Client(); !c.AllowsGrant(GrantTypeClientCredentials) || c.AllowsGrant(GrantTypeAuthorizationCode) {
		t.Errorf("stored client_credentials client: GrantTypes = %v", c.GrantTypes)
	}
	// A record without grant types (none stored) has the default ones.
	rec.GrantTypes = nil
	if c := rec.Client(); !slices.Equal(c.GrantTypes, DefaultGrantTypes()) {
		t.Errorf("stored client without grant types: GrantTypes = %v, want the default", c.GrantTypes)
	}
}

func TestPrincipalTokenType(t *testing.T) {
	tests := []struct {
		name         string
		p            Principal
		typ, subject string
	}{
		{"access token of a user", Principal{UserID: "alice", ClientID: "app", Kind: KindAccess}, TokenTypeOAuth, "alice"},
		{"RFC 6749 4.4 client token", Principal{ClientID: "machine", Kind: KindAccess}, TokenTypeClient, "machine"},
		{"personal token", Principal{UserID: "alice", Kind: KindPersonal}, TokenTypePersonal, "alice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.TokenType(); got != tt.typ {
				t.Errorf("TokenType = %q, want %q", got, tt.typ)
			}
			if got := tt.p.Subject(); got != tt.subject {
				t.Errorf("Subject = %q, want %q", got, tt.subject)
			}
		})
	}
}

// RFC 6749 4.4.3: a response without a refresh token has no
// refresh_token member at all.
func TestTokenResponseWithoutRefreshToken(t *testing.T) {
	b, err := json.Marshal(TokenResponse{AccessToken: "a", TokenType: "Bearer", ExpiresIn: 3600, Scope: "x"})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if _, ok := m["refresh_token"]; ok {
		t.Errorf("token response %s has refresh_token", b)
	}
	for _, k := range []string{"access_token", "token_type", "expires_in", "scope"} {
		if _, ok := m[k]; !ok {
			t.Errorf("token response %s lacks %s", b, k)
		}
	}
}
