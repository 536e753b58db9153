package module

import (
	"fmt"
	"strings"

	"github.com/caddyserver/caddy/v2"
)

// expandPlaceholders expands the {env.*} and {file.*} placeholders of the
// config value named where. A placeholder that comes out empty is
// an error naming it: an unset variable must not silently become an empty
// secret, DSN or issuer, nor fall back to a default. Any other placeholder
// is an error that does not repeat its text, which in a secret could be
// part of the secret.
func expandPlaceholders(repl *caddy.Replacer, where, value string) (string, error) {
	return repl.ReplaceFunc(value, func(key string, val any) (any, error) {
		if caddy.ToString(val) != "" {
			return val, nil
		}
		switch {
		case strings.HasPrefix(key, "env."):
			return nil, fmt.Errorf("%s: placeholder {%s} is empty", where, key)
		case strings.HasPrefix(key, "file."):
			return nil, fmt.Errorf("%s: placeholder {%s} is empty (or the file cannot be read)", where, key)
		}
		return nil, fmt.Errorf(`%s: has a placeholder that is not recognized or is empty (only {env.*} and {file.*} are expanded; write \{ for a literal brace)`, where)
	})
}

// hasPlaceholder reports whether a config value has a placeholder, which
// is expanded only when the app is provisioned, so that adapt-time checks
// of the value must wait until then.
func hasPlaceholder(value string) bool {
	return strings.ContainsRune(value, '{')
}
