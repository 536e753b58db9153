package module

import "net/http"

func (e *Endpoints) serveRevoke(w http.ResponseWriter, r *http.Request) error { return notAvailable(w) }
