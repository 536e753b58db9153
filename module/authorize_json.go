package module

import "net/http"

func (e *Endpoints) serveAuthorizeJSON(w http.ResponseWriter, r *http.Request) error {
	return notAvailable(w)
}
