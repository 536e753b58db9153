package module

import (
	"net/http"
	"slices"
	"testing"
)

// TestRequiredScopes checks the method lines' order: the request's own method,
// then for HEAD the GET line, then "*"; no line at all is refused.
func TestRequiredScopes(t *testing.T) {
	block := map[string][]string{
		"GET":  {"chargers:read"},
		"POST": {"chargers:write", "chargers:read"},
		"*":    {"energy:read"},
	}
	getOnly := map[string][]string{"GET": {"chargers:read"}}
	cases := []struct {
		name    string
		methods map[string][]string
		method  string
		want    []string
		ok      bool
	}{
		{"SPEC 1 own method line", block, "POST", []string{"chargers:write", "chargers:read"}, true},
		{"SPEC 1 HEAD falls back to GET", block, "HEAD", []string{"chargers:read"}, true},
		{"SPEC 1 star covers unlisted methods", block, "DELETE", []string{"energy:read"}, true},
		{"SPEC 1 HEAD without GET line uses star", map[string][]string{"*": {"energy:read"}}, "HEAD", []string{"energy:read"}, true},
		{"SPEC 1 method with no line is refused", getOnly, "POST", nil, false},
		{"SPEC 1 HEAD with GET line only", getOnly, "HEAD", []string{"chargers:read"}, true},
		{"SPEC 1 bare tokengate needs no scope", nil, "PATCH", nil, true},
		{"methods are case-sensitive", getOnly, "get", nil, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := &Guard{Methods: c.methods}
			got, ok := g.requiredScopes(c.method)
			if ok != c.ok || !slices.Equal(got, c.want) {
				t.Errorf("requiredScopes(%s) = %v, %v; want %v, %v", c.method, got, ok, c.want, c.ok)
			}
		})
	}
}

// TestStripIdentityHeaders: the guard removes client copies of the identity
// headers in any letter case or with "_" for "-", and nothing else.
func TestStripIdentityHeaders(t *testing.T) {
	h := http.Header{
		"X-Authenticated-Userid":     {"a"},
		"x-authenticated-scope":      {"b"},
		"X_Authenticated_Client_Id":  {"c"},
		"X-AUTHENTICATED-TOKEN-TYPE": {"d"},
		"X-Authenticated_Userid":     {"e"},
		"X-Authenticated-User":       {"keep"},
		"X-Authenticated-Userids":    {"keep"},
		"Authorization":              {"keep"},
		"X-Request-Id":               {"keep"},
	}
	stripIdentityHeaders(h)
	want := []string{"Authorization", "X-Authenticated-User", "X-Authenticated-Userids", "X-Request-Id"}
	var got []string
	for k := range h {
		got = append(got, k)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("left %v, want %v", got, want)
	}
}

// TestHasQueryToken: the guard refuses token and access_token query
// parameters, present with or without a value, even percent-encoded.
func TestHasQueryToken(t *testing.T) {
	for _, c := range []struct {
		query string
		want  bool
	}{
		{"token=abc", true},
		{"access_token=abc", true},
		{"a=1&token", true},
		{"token=", true},
		{"%74oken=x", true},
		{"a=%zz&token=x", true}, // unparsable elsewhere in the query
		{"a=%zz&tokens=x", false},
		{"Token=x", false}, // query names are case-sensitive
		{"mytoken=x&access=1", false},
		{"page=2", false},
	} {
		if got := hasQueryToken(c.query); got != c.want {
			t.Errorf("hasQueryToken(%q) = %v, want %v", c.query, got, c.want)
		}
	}
}

// TestIsCORSPreflight: only OPTIONS with Origin and
// Access-Control-Request-Method passes without a token.
func TestIsCORSPreflight(t *testing.T) {
	mk := func(method string, headers ...string) *http.Request {
		r, _ := http.NewRequest(method, "http://x/", nil)
		for i := 0; i+1 < len(headers); i += 2 {
			r.Header.Set(headers[i], headers[i+1])
		}
		return r
	}
	for _, c := range []struct {
		name string
		r    *http.Request
		want bool
	}{
		{"preflight", mk("OPTIONS", "Origin", "https://a", "Access-Control-Request-Method", "GET"), true},
		{"OPTIONS without request method", mk("OPTIONS", "Origin", "https://a"), false},
		{"OPTIONS without origin", mk("OPTIONS", "Access-Control-Request-Method", "GET"), false},
		{"GET with CORS headers", mk("GET", "Origin", "https://a", "Access-Control-Request-Method", "GET"), false},
	} {
		if got := isCORSPreflight(c.r); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
