package module

import (
	"net/http"
	"strconv"
	"time"
)

// jwksMaxAge bounds how long a relying party may cache the key set: the
// answer's max-age is this or half the rotation period, the shorter. A
// new key is published a whole period before it signs, so a cached set
// holds it in time, with room left for the minute instances take to learn
// of a key another one made; and a key made on the spot (a changed
// signing_alg) is seen within minutes by a party that does not refetch on
// an unknown kid.
const jwksMaxAge = 5 * time.Minute

// serveJWKS answers the key set ID tokens and JWT access tokens are
// verified with (RFC 7517 5): the public half of every key not yet
// retired, with kid, alg and use (docs/oidc.md).
func (e *Endpoints) serveJWKS(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		return writeJSON(w, http.StatusMethodNotAllowed, oauthError{"invalid_request", "method not allowed"})
	}
	_, rotation, _ := e.app.signingSettings()
	maxAge := min(jwksMaxAge, rotation/2)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "public, max-age="+strconv.Itoa(int(maxAge/time.Second)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return nil
	}
	_, err := w.Write(e.app.keyRing().JWKS())
	return err
}
