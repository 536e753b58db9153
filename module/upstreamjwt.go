package module

import (
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/golang-jwt/jwt/v5"

	"github.com/tokengate/caddy-tokengate/oauth"
)

// reservedClaims are set by the guard itself; an extra claim may not
// override them, or a config typo could forge a subject or an expiry.
var reservedClaims = map[string]bool{
	"sub": true, "scope": true, "client_id": true, "exp": true, "iat": true, "iss": true, "aud": true, "nbf": true,
}

// upstreamSigner mints the JWT the upstream_jwt option sends upstream.
type upstreamSigner struct {
	key      []byte
	ttl      time.Duration
	issuer   string
	audience string
	claims   map[string]string
	now      func() time.Time
}

func newUpstreamSigner(cfg *UpstreamJWT, issuer string) (*upstreamSigner, error) {
	repl := caddy.NewReplacer()
	secret, err := expandPlaceholders(repl, "secret", cfg.Secret)
	if err != nil {
		return nil, err
	}
	if secret == "" {
		return nil, fmt.Errorf("secret is required")
	}
	for name := range cfg.Claims {
		if reservedClaims[name] {
			return nil, fmt.Errorf("claim %q is set by tokengate and cannot be overridden", name)
		}
	}
	ttl := time.Duration(cfg.TTL)
	if ttl <= 0 {
		ttl = 60 * time.Second
	}
	return &upstreamSigner{
		key:      []byte(secret),
		ttl:      ttl,
		issuer:   issuer,
		audience: cfg.Audience,
		claims:   cfg.Claims,
		now:      time.Now,
	}, nil
}

// sign returns an HS256 JWT naming the principal (docs/reference.md).
func (s *upstreamSigner) sign(p *oauth.Principal) (string, error) {
	now := s.now()
	claims := jwt.MapClaims{
		"sub":       p.Subject(),
		"scope":     p.ScopeString(),
		"client_id": p.ClientID,
		"iat":       now.Unix(),
		"exp":       now.Add(s.ttl).Unix(),
		"iss":       s.issuer,
	}
	if s.audience != "" {
		claims["aud"] = s.audience
	}
	for k, v := range s.claims {
		claims[k] = v
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(s.key)
}
