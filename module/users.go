package module

import (
	"github.com/caddyserver/caddy/v2"

	"github.com/tokengate/caddy-tokengate/oauth"
)

// newUserVerifier builds the end-user JWT verifier from the users block.
func newUserVerifier(cfg *UsersConfig, repl *caddy.Replacer) (*oauth.UserVerifier, error) {
	secret, err := expandPlaceholders(repl, "users jwt_secret", cfg.JWTSecret)
	if err != nil {
		return nil, err
	}
	jwksURL, err := expandPlaceholders(repl, "users jwks_url", cfg.JWKSURL)
	if err != nil {
		return nil, err
	}
	vc := oauth.UserVerifierConfig{
		JWKSURL:   jwksURL,
		Issuer:    repl.ReplaceKnown(cfg.Issuer, ""),
		Audience:  repl.ReplaceKnown(cfg.Audience, ""),
		UserClaim: cfg.UserClaim,
	}
	if secret != "" {
		vc.HS256Secret = []byte(secret)
	}
	return oauth.NewUserVerifier(vc)
}
