// Package integration holds tokengate's end-to-end tests: a real Caddy with
// the plugin, loaded from a Caddyfile, real HTTP, backends that record what
// they received, and real SQLite and PostgreSQL stores.
package integration
