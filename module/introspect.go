package module

import "net/http"

func (e *Endpoints) serveIntrospect(w http.ResponseWriter, r *http.Request) error {
	return notAvailable(w)
}
