package module

import (
	"strings"

	"github.com/tokengate/caddy-tokengate/oauth"
)

// prompt is the prompt parameter of an authorization request (OpenID
// Connect Core 3.1.2.1), honoured when openid is on.
type prompt struct {
	// none: no page at all; a code only when the user is signed in and has
	// consented already.
	none bool
	// consent: the consent page even when the user has consented already.
	// prompt=login asks for it too (docs/decisions.md).
	consent bool
}

// readPrompt reads the prompt parameter from its values (none, one, or
// more for a parameter given twice). select_account has nothing to choose
// (the user is the one of the IdP JWT) and unknown values are ignored, as
// OpenID Connect Core 3.1.2.1 allows. none with any other value is
// invalid_request (3.1.2.1). Without openid the parameter is not read.
func (a *App) readPrompt(values []string) (prompt, *oauth.Error) {
	if a.OpenID == nil || len(values) == 0 {
		return prompt{}, nil
	}
	if len(values) > 1 {
		return prompt{}, oauth.ErrInvalidRequest.WithDescription("prompt is given more than once")
	}
	var p prompt
	words := strings.Fields(values[0])
	for _, w := range words {
		switch w {
		case "none":
			p.none = true
		case "consent", "login":
			p.consent = true
		}
	}
	if p.none && len(words) > 1 {
		return prompt{}, oauth.ErrInvalidRequest.WithDescription("prompt none cannot be combined with other values")
	}
	return p, nil
}

// userClaims returns the claims of the user's IdP JWT that an
// authorization for scope keeps for its ID tokens and userinfo answers:
// those the openid option's claims list names and the scope releases; nil
// without openid.
func (a *App) userClaims(u oauth.VerifiedUser, scope string) []byte {
	if a.OpenID == nil {
		return nil
	}
	return oauth.PickClaims(u.Claims, a.OpenID.Claims, scope)
}
