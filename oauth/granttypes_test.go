package oauth

import "testing"

func TestAllowsGrant(t *testing.T) {
	newClient := func(grants ...string) *Client {
		c, err := NewClient(ClientOptions{ID: "c", RedirectURIs: []string{"https://c.example/cb"}, GrantTypes: grants})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	tests := []struct {
		name   string
		client *Client
		grant  string
		want   bool
	}{
		{"default: authorization_code", newClient(), GrantTypeAuthorizationCode, true},
		{"default: refresh_token", newClient(), GrantTypeRefreshToken, true},
		{"default: no device grant", newClient(), GrantTypeDeviceCode, false},
		{"default: no client_credentials", newClient(), GrantTypeClientCredentials, false},
		{"listed device grant", newClient(GrantTypeDeviceCode, GrantTypeRefreshToken), GrantTypeDeviceCode, true},
		{"listed: only those listed", newClient(GrantTypeDeviceCode), GrantTypeAuthorizationCode, false},
		{"stored client's grant types", StoredClient{ID: "s", GrantTypes: []string{GrantTypeDeviceCode}}.Client(), GrantTypeDeviceCode, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.client.AllowsGrant(tt.grant); got != tt.want {
				t.Errorf("AllowsGrant(%q) = %v, want %v", tt.grant, got, tt.want)
			}
		})
	}
}
