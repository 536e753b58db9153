package oauth

import (
	"net/url"
	"slices"
	"strings"
)

// ErrInvalidTarget: a resource indicator that is malformed, names no
// resource of this server, or was not part of the grant (RFC 8707 2).
var ErrInvalidTarget = &Error{Code: "invalid_target", Status: 400}

// checkResources checks the resource indicators of a request (RFC 8707
// 2): each an absolute URI without fragment, naming a resource this
// server issues tokens for. It returns them without repeats, in order.
func (s *AuthServer) checkResources(resources []string) ([]string, *Error) {
	var out []string
	for _, r := range resources {
		u, err := url.Parse(r)
		if err != nil || !u.IsAbs() || u.Host == "" {
			return nil, ErrInvalidTarget.WithDescription("resource " + quoteScope(r) + " is not an absolute URI")
		}
		if strings.Contains(r, "#") {
			return nil, ErrInvalidTarget.WithDescription("resource " + quoteScope(r) + " must not have a fragment")
		}
		if s.KnownResource == nil || !s.KnownResource(r) {
			return nil, ErrInvalidTarget.WithDescription("resource " + quoteScope(r) + " is not a resource of this server")
		}
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out, nil
}

// audienceFor is the audience of an access token issued on a grant of
// the resources granted, for the resource the token request asks for
// (RFC 8707 2.2): that one, which must be one of the grant's; with none
// asked, the grant's only resource, or none when the grant has none. A
// grant of several resources needs the request to pick one.
func audienceFor(granted []string, requested string) (string, *Error) {
	switch {
	case requested != "":
		if !slices.Contains(granted, requested) {
			return "", ErrInvalidTarget.WithDescription("resource " + quoteScope(requested) + " was not part of the authorization")
		}
		return requested, nil
	case len(granted) == 0:
		return "", nil
	case len(granted) == 1:
		return granted[0], nil
	}
	return "", ErrInvalidTarget.WithDescription("the authorization names several resources; ask for one with the resource parameter")
}

// errAudienceChosen is a grant check's signal that the pair must be
// issued for another audience than the one it was built with, which only
// the grant tells; nothing is consumed, and the caller tries again. It
// never reaches the client.
var errAudienceChosen = ErrInvalidTarget.WithDescription("the audience is the grant's")

// checkTokenResource checks the resource parameter of a token request,
// empty for none.
func (s *AuthServer) checkTokenResource(resource string) *Error {
	if resource == "" {
		return nil
	}
	_, err := s.checkResources([]string{resource})
	return err
}
