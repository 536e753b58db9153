package oauth

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
)

// The scopes OpenID Connect defines (OpenID Connect Core 3.1.2.1, 5.4, 11).
const (
	ScopeOpenID        = "openid"
	ScopeProfile       = "profile"
	ScopeEmail         = "email"
	ScopeOfflineAccess = "offline_access"
)

// The authorization errors of OpenID Connect Core 3.1.2.6 that tokengate
// answers: prompt=none when the user would have to sign in, or consent.
var (
	ErrLoginRequired   = &Error{Code: "login_required", Status: http.StatusBadRequest}
	ErrConsentRequired = &Error{Code: "consent_required", Status: http.StatusBadRequest}
)

// claimKind is the JSON type OpenID Connect Core 5.1 gives a claim.
type claimKind byte

const (
	claimString claimKind = iota
	claimBool
	claimNumber
)

// standardClaims are the claims that may be copied from the user's IdP
// JWT, each with the scope that releases it (OpenID Connect Core 5.4) and
// its type (5.1), in the order of 5.1. The address and phone scopes are
// not offered, nor their claims.
var standardClaims = [...]struct {
	name, scope string
	kind        claimKind
}{
	{"name", ScopeProfile, claimString},
	{"given_name", ScopeProfile, claimString},
	{"family_name", ScopeProfile, claimString},
	{"middle_name", ScopeProfile, claimString},
	{"nickname", ScopeProfile, claimString},
	{"preferred_username", ScopeProfile, claimString},
	{"profile", ScopeProfile, claimString},
	{"picture", ScopeProfile, claimString},
	{"website", ScopeProfile, claimString},
	{"email", ScopeEmail, claimString},
	{"email_verified", ScopeEmail, claimBool},
	{"gender", ScopeProfile, claimString},
	{"birthdate", ScopeProfile, claimString},
	{"zoneinfo", ScopeProfile, claimString},
	{"locale", ScopeProfile, claimString},
	{"updated_at", ScopeProfile, claimNumber},
}

// StandardClaimNames returns the names of the claims that may be copied
// from the user's IdP JWT, in the order of OpenID Connect Core 5.1.
func StandardClaimNames() []string {
	names := make([]string, 0, len(standardClaims))
	for _, c := range standardClaims {
		names = append(names, c.name)
	}
	return names
}

// ClaimScope returns the scope that releases claim (OpenID Connect Core
// 5.4), or "" for a claim that is never copied.
func ClaimScope(claim string) string {
	for _, c := range standardClaims {
		if c.name == claim {
			return c.scope
		}
	}
	return ""
}

// claimMetadata is where an IdP that keeps profile data apart puts it
// (Supabase Auth: user_metadata): a claim missing at the top level of the
// JWT is looked for there.
const claimMetadata = "user_metadata"

// PickClaims returns, as a JSON object, the claims of the user's IdP JWT
// that allowed names and that the requested scope (space-separated)
// releases, each only when it has the type OpenID Connect Core 5.1 gives
// it; nil when there is none, or when openid was not asked for. It is
// what an authorization keeps for the ID tokens and userinfo answers of
// its grant.
func PickClaims(idp map[string]any, allowed []string, scope string) []byte {
	requested := strings.Fields(scope)
	if len(idp) == 0 || !slices.Contains(requested, ScopeOpenID) {
		return nil
	}
	meta, _ := idp[claimMetadata].(map[string]any)
	out := map[string]any{}
	for _, c := range standardClaims {
		if !slices.Contains(allowed, c.name) || !slices.Contains(requested, c.scope) {
			continue
		}
		v, ok := idp[c.name]
		if !ok {
			v, ok = meta[c.name]
		}
		if ok && c.kind.fits(v) {
			out[c.name] = v
		}
	}
	if len(out) == 0 {
		return nil
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil // only JSON values decoded from the JWT are in out
	}
	return b
}

func (k claimKind) fits(v any) bool {
	switch v := v.(type) {
	case string:
		return k == claimString && v != ""
	case bool:
		return k == claimBool
	case float64, json.Number:
		return k == claimNumber
	}
	return false
}

// ReleasedClaims returns the stored claims of a grant that scopes
// release, to put in an ID token or a userinfo answer; nil for none. A
// stored value that is not a JSON object counts as none.
func ReleasedClaims(stored []byte, scopes []string) map[string]any {
	if len(stored) == 0 {
		return nil
	}
	var all map[string]any
	if err := json.Unmarshal(stored, &all); err != nil {
		return nil
	}
	out := make(map[string]any, len(all))
	for name, v := range all {
		if s := ClaimScope(name); s != "" && slices.Contains(scopes, s) {
			out[name] = v
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// UserinfoStore reads what the userinfo endpoint answers with.
type UserinfoStore interface {
	// AccessTokenClaims returns the IdP claims kept with the grant of the
	// live access token with hash h, nil when it kept none, or
	// ErrNotFound.
	AccessTokenClaims(ctx context.Context, h TokenHash) ([]byte, error)
}
