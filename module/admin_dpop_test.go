package module

import (
	"context"
	"strings"
	"testing"
)

// TestAdminClientDPoPRule: RFC 9449 5.2, the admin API's
// dpop_bound_access_tokens is stored, shown in the client object only
// when true, taken by the token endpoint at once, and, as every field of
// a PUT, false when a PUT leaves it out.
func TestAdminClientDPoPRule(t *testing.T) {
	env := newAdminEnv(t)
	const body = `{"client_id":"strict","name":"Strict","redirect_uris":["https://strict.example.com/cb"]`
	bound := func(want bool) {
		t.Helper()
		got := adminCall(t, env.api, "GET", "/tokengate/clients/strict", "")
		if v, present := got.object(t)["dpop_bound_access_tokens"]; got.status != 200 || present != want || (want && v != true) {
			t.Errorf("GET: %d %s; want dpop_bound_access_tokens present: %v", got.status, got.body, want)
		}
		c, err := env.app.registry.FindClient(context.Background(), "strict")
		if err != nil || c.DPoPBoundAccessTokens != want {
			t.Errorf("the token endpoint's client: %+v, %v; want DPoPBoundAccessTokens %v", c, err, want)
		}
	}

	if got := adminCall(t, env.api, "POST", "/tokengate/clients", body+`,"dpop_bound_access_tokens":true}`); got.status != 201 ||
		!strings.Contains(got.body, `"dpop_bound_access_tokens":true`) {
		t.Fatalf("POST: %d %s", got.status, got.body)
	}
	bound(true)
	if got := adminCall(t, env.api, "PUT", "/tokengate/clients/strict", body+`}`); got.status != 200 {
		t.Fatalf("PUT: %d %s", got.status, got.body)
	}
	bound(false)
	if got := adminCall(t, env.api, "PUT", "/tokengate/clients/strict", body+`,"dpop_bound_access_tokens":true}`); got.status != 200 {
		t.Fatalf("PUT: %d %s", got.status, got.body)
	}
	bound(true)
	if got := adminCall(t, env.api, "PUT", "/tokengate/clients/strict", body+`,"dpop_bound_access_tokens":"yes"}`); got.status != 400 {
		t.Errorf("PUT with a string: %d %s, want 400", got.status, got.body)
	}
	bound(true)
}

// TestSelfClientsDPoPRule: a user's own client takes
// dpop_bound_access_tokens as the admin API does (RFC 9449 5.2).
func TestSelfClientsDPoPRule(t *testing.T) {
	env := newSelfEnv(t)
	obj, _ := env.create(t, "alice", `{"name":"Strict","redirect_uris":["https://strict.example/cb"],"dpop_bound_access_tokens":true}`)
	id, _ := obj["client_id"].(string)
	if obj["dpop_bound_access_tokens"] != true {
		t.Fatalf("POST answer %v", obj)
	}
	c, err := env.app.registry.FindClient(context.Background(), id)
	if err != nil || !c.DPoPBoundAccessTokens {
		t.Fatalf("the token endpoint's client: %+v, %v", c, err)
	}
	got := env.call(t, "alice", "PUT", "/oauth/clients/"+id, `{"name":"Strict","redirect_uris":["https://strict.example/cb"]}`)
	if got.status != 200 || strings.Contains(got.body, "dpop_bound_access_tokens") {
		t.Fatalf("PUT without it: %d %s", got.status, got.body)
	}
	if c, err := env.app.registry.FindClient(context.Background(), id); err != nil || c.DPoPBoundAccessTokens {
		t.Errorf("after the PUT: %+v, %v", c, err)
	}
}
