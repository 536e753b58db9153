package module

import (
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/tokengate/caddy-tokengate/oauth"
)

// newClientRegistry builds the OAuth clients from the config, secrets
// expanded. It needs no store, so a bad client fails provisioning.
func (a *App) newClientRegistry(repl *caddy.Replacer) (oauth.ClientRegistry, error) {
	all := a.scopeNames()
	clients := make([]*oauth.Client, 0, len(a.Clients))
	for _, c := range a.Clients {
		secret, err := expandPlaceholders(repl, fmt.Sprintf("client %q secret", c.ID), c.Secret)
		if err != nil {
			return nil, err
		}
		allowed := c.Scopes
		if len(allowed) == 0 {
			allowed = all
		}
		client, err := oauth.NewClient(oauth.ClientOptions{
			ID:           c.ID,
			Name:         c.Name,
			Secret:       secret,
			SecretHash:   c.SecretHash,
			RedirectURIs: c.RedirectURIs,
			Scopes:       allowed,
			PKCEOptional: c.PKCE == "optional",
			GrantTypes:   c.GrantTypes,

			DPoPBoundAccessTokens: c.DPoPBoundAccessTokens,
		})
		if err != nil {
			return nil, fmt.Errorf("client %q: %w", c.ID, err)
		}
		clients = append(clients, client)
	}
	return oauth.NewClientRegistry(clients...)
}

// newAuthServer builds the OAuth authorization server on the shared store
// and validator, so codes and tokens survive reloads.
func (a *App) newAuthServer(state *sharedState) *oauth.AuthServer {
	declared := a.allScopes()
	scopes := make([]oauth.Scope, 0, len(declared))
	for _, s := range declared {
		scopes = append(scopes, oauth.Scope{Name: s.Name, Description: s.Description})
	}
	var openID *oauth.OpenIDProvider
	if a.OpenID != nil {
		openID = &oauth.OpenIDProvider{Ring: a.keyRing(), Issuer: a.Issuer, IDTokenTTL: time.Duration(a.OpenID.IDTokenTTL)}
	}
	return &oauth.AuthServer{
		Store:         state.store,
		Validator:     state.validator,
		Clients:       a.registry,
		Scopes:        scopes,
		CodeTTL:       time.Duration(a.CodeTTL),
		AccessTTL:     time.Duration(a.AccessTokenTTL),
		RefreshTTL:    time.Duration(a.RefreshTokenTTL),
		RefreshMaxAge: time.Duration(a.RefreshMaxAge),
		RefreshGrace:  time.Duration(a.RefreshGrace),
		Logger:        a.logger,
		Metrics:       a.metrics,
		Audit:         a.audit,
		UserGrants:    state.store,
		OpenID:        openID,
		ClientTokens:  state.store,
		KnownResource: a.knownResource,

		AccessTokenFormat: a.accessTokenFormat(),
		JWTAccess:         a.jwtAccess,
	}
}
