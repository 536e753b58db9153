package module

import (
	"encoding/json"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/tokengate/caddy-tokengate/oauth"
)

// Which paths the grants endpoint serves, and the client id each names
// (docs/reference.md).
func TestGrantPath(t *testing.T) {
	e := &Endpoints{Grants: "/oauth/grants"}
	for _, tc := range []struct {
		target, clientID string
		ok               bool
	}{
		{"/oauth/grants", "", true},
		{"/oauth/grants?x=1", "", true},
		{"/oauth/grants/home-app", "home-app", true},
		{"/oauth/grants/a%20b", "a b", true},
		{"/oauth/grants/a%2Fb", "a/b", true},
		{"/oauth/grants/", "", false},
		{"/oauth/grants/a/b", "", false},
		{"/oauth/grantsx", "", false},
		{"/oauth", "", false},
	} {
		clientID, ok := e.grantPath(httptest.NewRequest("DELETE", tc.target, nil))
		if clientID != tc.clientID || ok != tc.ok {
			t.Errorf("%s: %q, %v; want %q, %v", tc.target, clientID, ok, tc.clientID, tc.ok)
		}
	}
}

// Grant objects: every field present, [] for no grant, times in
// RFC 3339 UTC.
func TestGrantObjects(t *testing.T) {
	empty, _ := json.Marshal(grantObjects(nil))
	if string(empty) != "[]" {
		t.Errorf("no grants = %s, want []", empty)
	}
	at := time.Date(2031, 5, 6, 7, 8, 9, 123456000, time.FixedZone("UTC+2", 2*3600))
	got, _ := json.Marshal(grantObjects([]oauth.UserGrant{{ClientID: "home-app", ClientName: "Home Energy App", GrantedAt: at}}))
	want := `[{"client_id":"home-app","client_name":"Home Energy App","scopes":[],"granted_at":"2031-05-06T05:08:09Z"}]`
	if string(got) != want {
		t.Errorf("grant = %s\nwant    %s", got, want)
	}
}
