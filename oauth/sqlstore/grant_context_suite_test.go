package sqlstore

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"time"

	"github.com/tokengate/caddy-tokengate/oauth"
)

// testGrantContext checks that what an authorization carries beyond its
// scopes (nonce, auth time, IdP claims, resources, DPoP keys) comes back
// from the code, is kept by the family through rotation, and that each
// access token keeps its own audience and DPoP key.
func testGrantContext(t *testing.T, s oauth.Store) {
	ctx := context.Background()
	authTime := grantNow.Add(-time.Minute)
	claims := []byte(`{"email":"alice@example.com","email_verified":true,"name":"Alice"}`)
	resources := []string{"https://api.example.com/chargers", "https://api.example.com/energy"}
	c := saveCodeWith(t, s, oauth.GrantContext{
		Nonce: "n-0S6_WzA2Mj", AuthTime: authTime, Claims: claims, Resources: resources,
		DPoPKey: "ignored-on-codes",
	})

	pair := newPair(t, grantNow, nil)
	pair.Audience, pair.AccessDPoPKey, pair.FamilyDPoPKey = resources[0], "jkt-access", "jkt-family"
	got, err := s.ExchangeCode(ctx, c.Hash, grantNow, pass, pair)
	if err != nil {
		t.Fatalf("ExchangeCode: %v", err)
	}
	if got.Nonce != "n-0S6_WzA2Mj" || !bytes.Equal(got.Claims, claims) || !slices.Equal(got.Resources, resources) || got.DPoPKey != "" {
		t.Errorf("exchanged code context = %+v", got.GrantContext)
	}
	assertUTC(t, "code AuthTime", got.AuthTime, authTime)

	p := mustAccess(t, s, pair.Access.Hash)
	if p.Audience != resources[0] || p.DPoPKey != "jkt-access" {
		t.Errorf("access principal audience %q, DPoP key %q", p.Audience, p.DPoPKey)
	}
	info, err := s.IntrospectToken(ctx, pair.Access.Hash)
	if err != nil || info.Audience != resources[0] || info.DPoPKey != "jkt-access" {
		t.Errorf("IntrospectToken = %+v, %v", info, err)
	}

	var seen oauth.RefreshGrant
	next := newPair(t, grantNow, nil)
	next.Audience, next.AccessDPoPKey = resources[1], "jkt-rotated"
	rot, err := s.RotateRefresh(ctx, pair.Refresh.Hash, "app", grantNow, 0, func(g oauth.RefreshGrant) error {
		seen = g
		return nil
	}, next)
	if err != nil {
		t.Fatalf("RotateRefresh: %v", err)
	}
	if rot.AccessDPoPKey != "jkt-rotated" {
		t.Errorf("rotation's access DPoP key %q", rot.AccessDPoPKey)
	}
	// A retry within the grace reports the key of the pair stored.
	retry := next
	retry.AccessDPoPKey = "jkt-other"
	rot, err = s.RotateRefresh(ctx, pair.Refresh.Hash, "app", grantNow.Add(time.Second), time.Minute, passGrant, retry)
	if err != nil || !rot.Replay || rot.AccessDPoPKey != "jkt-rotated" {
		t.Errorf("replay = %+v, %v; want the stored pair's key jkt-rotated", rot, err)
	}
	if seen.Nonce != "" || !bytes.Equal(seen.Claims, claims) || !slices.Equal(seen.Resources, resources) || seen.DPoPKey != "jkt-family" {
		t.Errorf("family context = %+v", seen.GrantContext)
	}
	assertUTC(t, "family AuthTime", seen.AuthTime, authTime)
	if p := mustAccess(t, s, next.Access.Hash); p.Audience != resources[1] || p.DPoPKey != "jkt-rotated" {
		t.Errorf("rotated access principal audience %q, DPoP key %q", p.Audience, p.DPoPKey)
	}

	// A code without any of it reads back empty: no auth time, no claims.
	bare := saveCodeWith(t, s, oauth.GrantContext{})
	got, err = s.ExchangeCode(ctx, bare.Hash, grantNow, pass, newPair(t, grantNow, nil))
	if err != nil {
		t.Fatal(err)
	}
	if !got.AuthTime.IsZero() || len(got.Claims) != 0 || len(got.Resources) != 0 || got.Nonce != "" {
		t.Errorf("bare code context = %+v", got.GrantContext)
	}
}

func saveCodeWith(t *testing.T, s oauth.Store, g oauth.GrantContext) oauth.Code {
	t.Helper()
	_, h := newHash(t, oauth.KindCode)
	family, _ := newHash(t, oauth.KindCode)
	c := oauth.Code{
		Hash: h, ClientID: "app", UserID: "alice", RedirectURI: "https://app.example/cb",
		Scopes: []string{"openid"}, FamilyID: "family-" + family[4:20], ExpiresAt: grantNow.Add(10 * time.Minute),
		GrantContext: g,
	}
	if err := s.SaveCode(context.Background(), c); err != nil {
		t.Fatalf("SaveCode: %v", err)
	}
	return c
}
