// Package caddyfile adapts tokengate's Caddyfile syntax (docs/reference.md)
// to JSON: the tokengate global option, which configures the tokengate app,
// and the tokengate and tokengate_endpoints handler directives.
//
// It checks at adapt time everything a Caddyfile alone can show to be
// wrong (an undeclared scope, a directive with no global block, a bad
// redirect URI), so that `caddy adapt` and `caddy validate` name the
// mistake and its line instead of leaving it to provisioning.
package caddyfile
