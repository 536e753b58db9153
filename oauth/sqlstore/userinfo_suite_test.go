package sqlstore

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/tokengate/caddy-tokengate/oauth"
)

// testUserinfoClaims checks oauth.UserinfoStore: the claims a grant kept
// are found through each of its access tokens, rotated ones included,
// until the token or its family is revoked; a refresh token, an unknown
// token and a grant without claims answer as the contract says.
func testUserinfoClaims(t *testing.T, s oauth.Store) {
	ctx := context.Background()
	claims := []byte(`{"email":"alice@example.com","name":"Alice"}`)
	c := saveCodeWith(t, s, oauth.GrantContext{Claims: claims})
	pair := newPair(t, grantNow, nil)
	if _, err := s.ExchangeCode(ctx, c.Hash, grantNow, pass, pair); err != nil {
		t.Fatal(err)
	}
	got, err := s.AccessTokenClaims(ctx, pair.Access.Hash)
	if err != nil || !bytes.Equal(got, claims) {
		t.Fatalf("AccessTokenClaims = %s, %v", got, err)
	}
	if _, err := s.AccessTokenClaims(ctx, pair.Refresh.Hash); !errors.Is(err, oauth.ErrNotFound) {
		t.Errorf("a refresh token's hash: %v, want ErrNotFound", err)
	}
	_, unknown := newHash(t, oauth.KindAccess)
	if _, err := s.AccessTokenClaims(ctx, unknown); !errors.Is(err, oauth.ErrNotFound) {
		t.Errorf("unknown token: %v, want ErrNotFound", err)
	}

	next := newPair(t, grantNow, nil)
	if _, err := s.RotateRefresh(ctx, pair.Refresh.Hash, "app", grantNow, 0, func(oauth.RefreshGrant) error { return nil }, next); err != nil {
		t.Fatal(err)
	}
	if got, err := s.AccessTokenClaims(ctx, next.Access.Hash); err != nil || !bytes.Equal(got, claims) {
		t.Errorf("rotated access token: %s, %v", got, err)
	}
	// Revoking one access token hides the claims from it alone; revoking
	// the family from all.
	if _, err := s.RevokeToken(ctx, pair.Access.Hash, "app", grantNow); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AccessTokenClaims(ctx, pair.Access.Hash); !errors.Is(err, oauth.ErrNotFound) {
		t.Errorf("revoked access token: %v, want ErrNotFound", err)
	}
	if _, err := s.AccessTokenClaims(ctx, next.Access.Hash); err != nil {
		t.Errorf("the family's other access token: %v", err)
	}
	if _, err := s.RevokeToken(ctx, next.Refresh.Hash, "app", grantNow); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AccessTokenClaims(ctx, next.Access.Hash); !errors.Is(err, oauth.ErrNotFound) {
		t.Errorf("access token of a revoked family: %v, want ErrNotFound", err)
	}

	bare := saveCodeWith(t, s, oauth.GrantContext{})
	bp := newPair(t, grantNow, nil)
	if _, err := s.ExchangeCode(ctx, bare.Hash, grantNow, pass, bp); err != nil {
		t.Fatal(err)
	}
	if got, err := s.AccessTokenClaims(ctx, bp.Access.Hash); err != nil || got != nil {
		t.Errorf("grant without claims: %q, %v; want nil, nil", got, err)
	}
}
