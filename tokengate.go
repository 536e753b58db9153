// Package tokengate is a Caddy v2 plugin that makes Caddy the OAuth2
// authorization server and the bearer-token gateway of an existing HTTP
// API: it serves the OAuth2 endpoints and personal API tokens, checks
// each request's bearer token and scopes, and hands authorized requests
// to reverse_proxy with the caller's identity attached.
//
// Build it into Caddy with xcaddy:
//
//	xcaddy build --with github.com/tokengate/caddy-tokengate
//
// Importing this package registers the tokengate app, the tokengate and
// tokengate_endpoints HTTP handlers, and their Caddyfile syntax.
package tokengate

import (
	_ "github.com/tokengate/caddy-tokengate/caddyfile"
	_ "github.com/tokengate/caddy-tokengate/module"
	_ "github.com/tokengate/caddy-tokengate/module/command"
)
