// Command caddy is Caddy with the standard modules and tokengate built in,
// for the demo and the tests. Production builds use xcaddy (see xcaddy.json).
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/tokengate/caddy-tokengate"
)

func main() {
	caddycmd.Main()
}
