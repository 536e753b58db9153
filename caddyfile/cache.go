package caddyfile

import (
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/tokengate/caddy-tokengate/module"
	"github.com/tokengate/caddy-tokengate/oauth"
)

// parseCache reads the cache block of the tokengate global option.
func parseCache(d *caddyfile.Dispenser) (*module.CacheConfig, error) {
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	cache := new(module.CacheConfig)
	seen := seenOptions{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		if err := seen.once(d); err != nil {
			return nil, err
		}
		var err error
		switch d.Val() {
		case "max_entries":
			cache.MaxEntries, err = positiveInt(d)
		case "ttl":
			cache.TTL, err = durationArg(d, false)
			if err == nil && time.Duration(cache.TTL) > oauth.MaxCacheTTL {
				err = d.Errf("cache ttl must be at most %v, got %v", oauth.MaxCacheTTL, time.Duration(cache.TTL))
			}
		default:
			return nil, d.Errf("unrecognized cache subdirective %q", d.Val())
		}
		if err != nil {
			return nil, err
		}
	}
	return cache, nil
}
