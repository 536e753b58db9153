package oauth_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/tokengate/caddy-tokengate/oauth"
)

// TestRegisteredClientLifecycle: a client that registers itself (RFC
// 7591) is a stored client of source registration that runs the code
// flow; its registration access token, kept only as a hash, reads,
// replaces and removes it (RFC 7592), and nothing else does.
func TestRegisteredClientLifecycle(t *testing.T) {
	s := newStoredE2E(t)
	ctx := context.Background()
	rec, secret, token, err := s.admin.Register(ctx, oauth.ClientSpec{
		RedirectURIs: []string{redirect}, Scopes: []string{"chargers:read"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(token, "tgx_") || !strings.HasPrefix(secret, "tgs_") || !strings.HasPrefix(rec.ID, "c_") {
		t.Fatalf("id %q, secret %.4s..., registration token %.4s...", rec.ID, secret, token)
	}
	if k, err := oauth.ParseToken(token); err != nil || k != oauth.KindRegistration {
		t.Errorf("ParseToken(registration token) = %v, %v", k, err)
	}
	stored, err := s.store.GetClient(ctx, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	h := oauth.HashToken(token)
	if stored.Source != oauth.SourceRegistration || !slices.Equal(stored.RegistrationTokenHash, h[:]) ||
		stored.Name != rec.ID || !slices.Equal(stored.GrantTypes, []string{"authorization_code", "refresh_token"}) {
		t.Errorf("stored %+v: want source registration, the token's hash, the id as name, the default grant types", stored)
	}
	if got := s.audit.events[len(s.audit.events)-1]; got.Message != oauth.AuditClientAdded || got.ClientID != rec.ID {
		t.Errorf("audit %+v, want client added", got)
	}

	// It takes part in the flows as any stored client.
	c, err := s.clients.Authenticate(ctx, rec.ID, secret, true)
	if err != nil || c.Source != oauth.SourceRegistration {
		t.Fatalf("Authenticate: %v, %+v", err, c)
	}
	tr := s.tokens(t, c, "chargers:read")

	// Any wrong token, or a right one for another id, is the same refusal.
	other, _, otherToken, err := s.admin.Register(ctx, oauth.ClientSpec{Name: "Other", RedirectURIs: []string{redirect}, Public: true})
	if err != nil {
		t.Fatal(err)
	}
	personal, _, _ := oauth.NewToken(oauth.KindPersonal)
	unknown, _, _ := oauth.NewToken(oauth.KindRegistration)
	for name, try := range map[string]struct{ id, token string }{
		"no token":                     {rec.ID, ""},
		"malformed":                    {rec.ID, token[:20]},
		"unknown registration token":   {rec.ID, unknown},
		"another kind of token":        {rec.ID, personal},
		"another client's token":       {rec.ID, otherToken},
		"its token for another id":     {other.ID, token},
		"a client that does not exist": {"c_none", token},
		"a client of the config":       {"app", token},
	} {
		if _, err := s.admin.Registered(ctx, try.id, try.token); !errors.Is(err, oauth.ErrInvalidRegistrationToken) {
			t.Errorf("%s: Registered = %v, want ErrInvalidRegistrationToken", name, err)
		}
		if _, err := s.admin.UpdateRegistered(ctx, try.id, try.token, oauth.ClientSpec{Name: "x", RedirectURIs: []string{redirect}}); !errors.Is(err, oauth.ErrInvalidRegistrationToken) {
			t.Errorf("%s: UpdateRegistered = %v", name, err)
		}
		if err := s.admin.DeleteRegistered(ctx, try.id, try.token); !errors.Is(err, oauth.ErrInvalidRegistrationToken) {
			t.Errorf("%s: DeleteRegistered = %v", name, err)
		}
	}
	// A client the admin API added has no registration token at all.
	added, _, err := s.admin.Create(ctx, oauth.ClientSpec{Name: "Added", RedirectURIs: []string{redirect}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.admin.Registered(ctx, added.ID, token); !errors.Is(err, oauth.ErrInvalidRegistrationToken) {
		t.Errorf("an added client: %v", err)
	}

	got, err := s.admin.Registered(ctx, rec.ID, token)
	if err != nil || got.ID != rec.ID || !got.MatchesSecret(secret) || got.MatchesSecret(secret+"x") {
		t.Fatalf("Registered: %+v, %v", got, err)
	}
	updated, err := s.admin.UpdateRegistered(ctx, rec.ID, token, oauth.ClientSpec{
		Name: "Renamed", RedirectURIs: []string{redirect, redirect + "2"}, Scopes: []string{"chargers:read"},
		GrantTypes: []string{"authorization_code"},
	})
	if err != nil || updated.Name != "Renamed" || len(updated.RedirectURIs) != 2 || !slices.Equal(updated.GrantTypes, []string{"authorization_code"}) {
		t.Fatalf("UpdateRegistered: %+v, %v", updated, err)
	}

	// Deleting it stops its refresh tokens, as the admin API's deletion does.
	if err := s.admin.DeleteRegistered(ctx, rec.ID, token); err != nil {
		t.Fatal(err)
	}
	if _, oerr := s.srv.Refresh(ctx, c, tr.RefreshToken, ""); oerr == nil || oerr.Code != "invalid_grant" {
		t.Errorf("refresh after deletion: %v, want invalid_grant", oerr)
	}
	if _, err := s.admin.Registered(ctx, rec.ID, token); !errors.Is(err, oauth.ErrInvalidRegistrationToken) {
		t.Errorf("after deletion: %v", err)
	}
	if got := s.audit.events[len(s.audit.events)-1]; got.Message != oauth.AuditClientRemoved || got.ClientID != rec.ID {
		t.Errorf("audit %+v, want client removed", got)
	}
}
