package oauth

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"
)

func mustClient(t *testing.T, o ClientOptions) *Client {
	t.Helper()
	c, err := NewClient(o)
	if err != nil {
		t.Fatalf("NewClient(%s): %v", o.ID, err)
	}
	return c
}

func TestNewClient(t *testing.T) {
	sum := sha256.Sum256([]byte("s3cret"))
	tests := []struct {
		name    string
		o       ClientOptions
		wantErr bool
		conf    bool
	}{
		{"public", ClientOptions{ID: "p", RedirectURIs: []string{"https://a/cb"}}, false, false},
		{"plain secret", ClientOptions{ID: "c", Secret: "s3cret", RedirectURIs: []string{"https://a/cb"}}, false, true},
		{"secret hash", ClientOptions{ID: "c", SecretHash: "sha256:" + hex.EncodeToString(sum[:]), RedirectURIs: []string{"https://a/cb"}}, false, true},
		{"bad secret hash", ClientOptions{ID: "c", SecretHash: "sha256:abcd", RedirectURIs: []string{"https://a/cb"}}, true, false},
		{"hash without prefix", ClientOptions{ID: "c", SecretHash: hex.EncodeToString(sum[:]), RedirectURIs: []string{"https://a/cb"}}, true, false},
		{"both secret and hash", ClientOptions{ID: "c", Secret: "x", SecretHash: "sha256:" + hex.EncodeToString(sum[:]), RedirectURIs: []string{"https://a/cb"}}, true, false},
		{"seed 004 pkce optional needs confidential", ClientOptions{ID: "p", PKCEOptional: true, RedirectURIs: []string{"https://a/cb"}}, true, false},
		{"no redirect uri", ClientOptions{ID: "p"}, true, false},
		{"no id", ClientOptions{RedirectURIs: []string{"https://a/cb"}}, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewClient(tt.o)
			if tt.wantErr {
				if err == nil {
					t.Fatal("NewClient succeeded, want an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Confidential() != tt.conf {
				t.Errorf("Confidential = %v, want %v", c.Confidential(), tt.conf)
			}
			if c.Name != tt.o.ID {
				t.Errorf("Name = %q, want the id", c.Name)
			}
		})
	}
	sum2 := sha256.Sum256([]byte("s3cret"))
	byHash := mustClient(t, ClientOptions{ID: "h", SecretHash: "sha256:" + hex.EncodeToString(sum2[:]), RedirectURIs: []string{"https://a/cb"}})
	reg, _ := NewClientRegistry(byHash)
	if _, err := reg.Authenticate("h", "s3cret", true); err != nil {
		t.Errorf("secret against its sha256 hash: %v", err)
	}
}

func TestClientRegistryDuplicate(t *testing.T) {
	a := mustClient(t, ClientOptions{ID: "a", RedirectURIs: []string{"https://a/cb"}})
	if _, err := NewClientRegistry(a, a); err == nil {
		t.Fatal("duplicate client id accepted")
	}
}

func TestAuthenticate(t *testing.T) {
	reg, err := NewClientRegistry(
		mustClient(t, ClientOptions{ID: "conf", Secret: "s3cret", RedirectURIs: []string{"https://a/cb"}}),
		mustClient(t, ClientOptions{ID: "pub", RedirectURIs: []string{"https://a/cb"}}),
	)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		id        string
		secret    string
		presented bool
		ok        bool
	}{
		{"RFC 6749 2.3.1 right secret", "conf", "s3cret", true, true},
		{"wrong secret", "conf", "s3cret!", true, false},
		{"confidential without secret", "conf", "", false, false},
		{"confidential with empty secret", "conf", "", true, false},
		{"unknown client", "nobody", "s3cret", true, false},
		{"unknown client without secret", "nobody", "", false, false},
		{"public client sends only client_id", "pub", "", false, true},
		{"public client sending a secret", "pub", "x", true, false},
		{"public client sending an empty secret", "pub", "", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := reg.Authenticate(tt.id, tt.secret, tt.presented)
			if tt.ok {
				if err != nil || c == nil || c.ID != tt.id {
					t.Fatalf("Authenticate = %v, %v; want client %s", c, err, tt.id)
				}
				return
			}
			if c != nil || !errors.Is(err, ErrInvalidClient) {
				t.Fatalf("Authenticate = %v, %v; want invalid_client", c, err)
			}
			if ErrInvalidClient.Status != 401 {
				t.Errorf("invalid_client status = %d, want 401", ErrInvalidClient.Status)
			}
		})
	}
}

func TestMatchRedirectURI(t *testing.T) {
	c := mustClient(t, ClientOptions{ID: "c", RedirectURIs: []string{
		"https://app.example/cb?x=1",
		"http://127.0.0.1:8080/callback",
		"http://[::1]/cb",
		"http://localhost:3000/cb",
	}})
	tests := []struct {
		name string
		uri  string
		want bool
	}{
		{"RFC 6749 3.1.2.3 exact", "https://app.example/cb?x=1", true},
		{"RFC 9700 2.1 no prefix match", "https://app.example/cb?x=1&y=2", false},
		{"RFC 9700 2.1 trailing slash", "https://app.example/cb/?x=1", false},
		{"RFC 9700 2.1 case differs", "https://APP.example/cb?x=1", false},
		{"RFC 9700 2.1 other port on https", "https://app.example:444/cb?x=1", false},
		{"RFC 8252 7.3 loopback port", "http://127.0.0.1:51234/callback", true},
		{"RFC 8252 7.3 loopback without port", "http://127.0.0.1/callback", true},
		{"RFC 8252 7.3 loopback path must match", "http://127.0.0.1:51234/other", false},
		{"RFC 8252 7.3 IPv6 loopback port", "http://[::1]:9999/cb", true},
		{"RFC 8252 7.3 loopback v4 for v6 registration", "http://127.0.0.1:9999/cb", false},
		{"RFC 8252 7.3 https loopback not relaxed", "https://127.0.0.1:51234/callback", false},
		{"RFC 8252 8.3 localhost is not loopback IP", "http://localhost:3001/cb", false},
		{"RFC 8252 7.3 bad port", "http://127.0.0.1:80x/callback", false},
		{"RFC 8252 7.3 userinfo trick", "http://127.0.0.1:1@evil.example/callback", false},
		{"loopback prefix host", "http://127.0.0.10:8080/callback", false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := c.MatchRedirectURI(tt.uri); got != tt.want {
				t.Errorf("MatchRedirectURI(%q) = %v, want %v", tt.uri, got, tt.want)
			}
		})
	}
}
