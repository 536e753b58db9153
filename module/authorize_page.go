package module

import "net/http"

func (e *Endpoints) serveAuthorizePage(w http.ResponseWriter, r *http.Request) error {
	return notAvailable(w)
}

func (e *Endpoints) serveConsentDecision(w http.ResponseWriter, r *http.Request) error {
	return notAvailable(w)
}
