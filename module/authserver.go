package module

import (
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/tokengate/caddy-tokengate/oauth"
)

// newAuthServer builds the OAuth authorization server from the config:
// clients (secrets expanded), declared scopes and lifetimes. The store and
// validator are the shared ones, so codes and tokens survive reloads.
func (a *App) newAuthServer(repl *caddy.Replacer) (*oauth.AuthServer, error) {
	scopes := make([]oauth.Scope, 0, len(a.Scopes))
	all := make([]string, 0, len(a.Scopes))
	for _, s := range a.Scopes {
		scopes = append(scopes, oauth.Scope{Name: s.Name, Description: s.Description})
		all = append(all, s.Name)
	}
	clients := make([]*oauth.Client, 0, len(a.Clients))
	for _, c := range a.Clients {
		secret, err := repl.ReplaceOrErr(c.Secret, true, true)
		if err != nil {
			return nil, fmt.Errorf("client %q secret: %w", c.ID, err)
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
		})
		if err != nil {
			return nil, fmt.Errorf("client %q: %w", c.ID, err)
		}
		clients = append(clients, client)
	}
	registry, err := oauth.NewClientRegistry(clients...)
	if err != nil {
		return nil, err
	}
	return &oauth.AuthServer{
		Store:         a.state.store,
		Validator:     a.state.validator,
		Clients:       registry,
		Scopes:        scopes,
		CodeTTL:       time.Duration(a.CodeTTL),
		AccessTTL:     time.Duration(a.AccessTokenTTL),
		RefreshTTL:    time.Duration(a.RefreshTokenTTL),
		RefreshMaxAge: time.Duration(a.RefreshMaxAge),
		RefreshGrace:  time.Duration(a.RefreshGrace),
		Logger:        a.logger,
		Metrics:       a.metrics,
		Audit:         a.audit,
	}, nil
}
