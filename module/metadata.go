package module

import "net/http"

func (e *Endpoints) serveMetadata(w http.ResponseWriter, r *http.Request) error {
	return notAvailable(w)
}
