package module

import "net/http"

// notAvailable answers an OAuth endpoint that this version does not serve.
func notAvailable(w http.ResponseWriter) error {
	return writeJSON(w, http.StatusNotImplemented, map[string]string{
		"error":             "unsupported_endpoint",
		"error_description": "OAuth endpoints are not available in this version of tokengate",
	})
}

func (e *Endpoints) serveToken(w http.ResponseWriter, r *http.Request) error  { return notAvailable(w) }
func (e *Endpoints) serveRevoke(w http.ResponseWriter, r *http.Request) error { return notAvailable(w) }
func (e *Endpoints) serveIntrospect(w http.ResponseWriter, r *http.Request) error {
	return notAvailable(w)
}
func (e *Endpoints) serveMetadata(w http.ResponseWriter, r *http.Request) error {
	return notAvailable(w)
}
func (e *Endpoints) serveAuthorize(w http.ResponseWriter, r *http.Request) error {
	return notAvailable(w)
}
