package module

import "net/http"

func (e *Endpoints) serveToken(w http.ResponseWriter, r *http.Request) error { return notAvailable(w) }
