package module

import (
	"net/url"
	"unicode/utf8"

	"github.com/tokengate/caddy-tokengate/oauth"
)

// maxParamBytes bounds every parameter value the endpoints read, before
// any of it is interpreted.
const maxParamBytes = 8 << 10

// checkParam refuses a parameter whose name or value is not valid UTF-8,
// or whose value is longer than maxParamBytes, with invalid_request naming
// it.
func checkParam(name, value string) *oauth.Error {
	switch {
	case !utf8.ValidString(name):
		return oauth.ErrInvalidRequest.WithDescription("a parameter name is not valid UTF-8")
	case len(value) > maxParamBytes:
		return oauth.ErrInvalidRequest.WithDescription("parameter " + printable(name) + " is longer than 8 KiB")
	case !utf8.ValidString(value):
		return oauth.ErrInvalidRequest.WithDescription("parameter " + printable(name) + " is not valid UTF-8")
	}
	return nil
}

// checkValues applies checkParam to every value of v.
func checkValues(v url.Values) *oauth.Error {
	for name, vals := range v {
		for _, val := range vals {
			if err := checkParam(name, val); err != nil {
				return err
			}
		}
	}
	return nil
}
