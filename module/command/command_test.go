package command

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
)

// fakeAdmin plays the tokengate routes of the admin API: it records each
// request and gives the same canned answer to all of them.
type fakeAdmin struct {
	srv *httptest.Server

	mu       sync.Mutex
	status   int
	answer   string
	jsonType bool // answer with Content-Type application/json
	requests []request
}

type request struct {
	method      string
	uri         string // as sent, escapes included
	contentType string
	body        string
}

func newFakeAdmin(t *testing.T) *fakeAdmin {
	t.Helper()
	f := &fakeAdmin{status: http.StatusNoContent}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		defer f.mu.Unlock()
		f.requests = append(f.requests, request{
			method:      r.Method,
			uri:         r.RequestURI,
			contentType: r.Header.Get("Content-Type"),
			body:        string(body),
		})
		if f.jsonType {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(f.status)
		io.WriteString(w, f.answer)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// addr is the fake's address as --address takes it.
func (f *fakeAdmin) addr() string {
	return strings.TrimPrefix(f.srv.URL, "http://")
}

func (f *fakeAdmin) answerWith(status int, answer string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status, f.answer, f.jsonType = status, answer, answer != ""
}

func (f *fakeAdmin) seen() []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]request(nil), f.requests...)
}

// execute runs `caddy <args...>` in process, with the tokengate command
// built from its registration as caddycmd builds it, and returns what was
// printed and the status caddycmd.Main would exit with.
func execute(t *testing.T, args ...string) (stdout, stderr string, exit int) {
	t.Helper()
	reg, ok := caddycmd.Commands()["tokengate"]
	if !ok {
		t.Fatal("the tokengate command is not registered")
	}
	root := &cobra.Command{Use: "caddy", SilenceUsage: true}
	cmd := &cobra.Command{Use: reg.Name + " " + reg.Usage, Short: reg.Short, Long: reg.Long}
	reg.CobraFunc(cmd)
	root.AddCommand(cmd)
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		exit = 1
	}
	return out.String(), errOut.String(), exit
}

// Canned answers in the shapes of the admin API.
const (
	billingClient = `{"client_id":"billing","name":"Billing","redirect_uris":["https://billing.example.com/callback","https://billing.example.com/other"],"scopes":["energy:read","sessions:read"],"public":false,"pkce":"required","source":"store","created_at":"2026-03-01T10:00:00Z"}`
	billingAdded  = `{"client_id":"billing","name":"Billing","redirect_uris":["https://billing.example.com/callback","https://billing.example.com/other"],"scopes":["energy:read","sessions:read"],"public":false,"pkce":"required","source":"store","created_at":"2026-03-01T10:00:00Z","client_secret":"s3cr3t-b1ll1ng"}` + "\n"
	mobileAdded   = `{"client_id":"c_7Qx2","name":"Mobile app","redirect_uris":["http://127.0.0.1/callback"],"scopes":["chargers:read"],"public":true,"pkce":"required","source":"store","created_at":"2026-03-01T10:05:00Z"}` + "\n"
	clientList    = `[{"client_id":"billing","name":"Billing","redirect_uris":["https://billing.example.com/callback"],"scopes":["energy:read","sessions:read"],"public":false,"pkce":"required","source":"store","created_at":"2026-03-01T10:00:00Z"},` +
		`{"client_id":"dashboard","name":"Energy dashboard","redirect_uris":["https://dash.example.com/cb"],"scopes":["chargers:read","sessions:read","energy:read"],"public":true,"pkce":"required","source":"config","created_at":null},` +
		`{"client_id":"evil","name":"a\u001b[31mred\tname","redirect_uris":["https://evil.example/cb"],"scopes":[],"public":false,"pkce":"optional","source":"store","created_at":"2026-03-02T08:00:00Z"}]` + "\n"
	staticClient = `{"client_id":"dashboard","name":"Energy dashboard","redirect_uris":["https://dash.example.com/cb"],"scopes":["chargers:read"],"public":true,"pkce":"required","source":"config","created_at":null}`
)

func errorAnswer(msg string) string {
	b, _ := json.Marshal(map[string]string{"error": msg})
	return string(b) + "\n"
}

func TestSubcommands(t *testing.T) {
	secretNote := secretWarning + "\n"
	for _, tc := range []struct {
		name   string
		args   []string
		status int
		answer string

		// the request expected; no method: none is sent
		method, uri, body string

		stdout, stderr string
		exit           int
	}{
		{
			name:   "client add, confidential: POST with every flag given, client and secret printed, warning once",
			args:   []string{"client", "add", "--id", "billing", "--name", "Billing", "--redirect-uri", "https://billing.example.com/callback", "--redirect-uri", "https://billing.example.com/other", "--scope", "energy:read", "--scope", "sessions:read"},
			status: 201, answer: billingAdded,
			method: "POST", uri: "/tokengate/clients",
			body: `{"client_id":"billing","name":"Billing","redirect_uris":["https://billing.example.com/callback","https://billing.example.com/other"],"scopes":["energy:read","sessions:read"]}`,
			stdout: "" +
				"client_id      billing\n" +
				"name           Billing\n" +
				"type           confidential\n" +
				"pkce           required\n" +
				"source         store\n" +
				"created_at     2026-03-01T10:00:00Z\n" +
				"redirect_uris  https://billing.example.com/callback\n" +
				"               https://billing.example.com/other\n" +
				"scopes         energy:read sessions:read\n" +
				"client_secret  s3cr3t-b1ll1ng\n",
			stderr: secretNote,
		},
		{
			name:   "client add --public without --id or --scope: the server's defaults apply, no secret, no warning",
			args:   []string{"client", "add", "--name", "Mobile app", "--redirect-uri", "http://127.0.0.1/callback", "--public"},
			status: 201, answer: mobileAdded,
			method: "POST", uri: "/tokengate/clients",
			body: `{"name":"Mobile app","redirect_uris":["http://127.0.0.1/callback"],"public":true}`,
			stdout: "" +
				"client_id      c_7Qx2\n" +
				"name           Mobile app\n" +
				"type           public\n" +
				"pkce           required\n" +
				"source         store\n" +
				"created_at     2026-03-01T10:05:00Z\n" +
				"redirect_uris  http://127.0.0.1/callback\n" +
				"scopes         chargers:read\n",
		},
		{
			name:   "client add --pkce-optional sends pkce optional; a redirect URI with a comma stays one URI",
			args:   []string{"client", "add", "--id", "legacy", "--name", "Legacy", "--redirect-uri", "https://legacy.example.com/cb?a=1,2", "--pkce-optional", "--json"},
			status: 201, answer: `{"client_id":"legacy","client_secret":"s3cr3t-l3gacy"}` + "\n",
			method: "POST", uri: "/tokengate/clients",
			body:   `{"client_id":"legacy","name":"Legacy","redirect_uris":["https://legacy.example.com/cb?a=1,2"],"pkce":"optional"}`,
			stdout: `{"client_id":"legacy","client_secret":"s3cr3t-l3gacy"}` + "\n",
			stderr: secretNote,
		},
		{
			name:   "client add --grant-types client_credentials needs no redirect URI; grant types printed",
			args:   []string{"client", "add", "--id", "meter", "--name", "Meter", "--grant-types", "client_credentials", "--scope", "energy:read"},
			status: 201, answer: `{"client_id":"meter","name":"Meter","redirect_uris":[],"scopes":["energy:read"],"public":false,"pkce":"required","grant_types":["client_credentials"],"source":"store","created_at":"2026-03-01T10:00:00Z","client_secret":"s3cr3t-m3t3r"}` + "\n",
			method: "POST", uri: "/tokengate/clients",
			body: `{"client_id":"meter","name":"Meter","scopes":["energy:read"],"grant_types":["client_credentials"]}`,
			stdout: "" +
				"client_id      meter\n" +
				"name           Meter\n" +
				"type           confidential\n" +
				"pkce           required\n" +
				"source         store\n" +
				"created_at     2026-03-01T10:00:00Z\n" +
				"redirect_uris  -\n" +
				"scopes         energy:read\n" +
				"grant_types    client_credentials\n" +
				"client_secret  s3cr3t-m3t3r\n",
			stderr: secretNote,
		},
		{
			name:   "client add --grant-types repeated or comma-separated",
			args:   []string{"client", "add", "--id", "both", "--name", "Both", "--redirect-uri", "https://both.example.com/cb", "--grant-types", "authorization_code,refresh_token", "--grant-types", "client_credentials", "--json"},
			status: 201, answer: `{"client_id":"both"}` + "\n",
			method: "POST", uri: "/tokengate/clients",
			body:   `{"client_id":"both","name":"Both","redirect_uris":["https://both.example.com/cb"],"grant_types":["authorization_code","refresh_token","client_credentials"]}`,
			stdout: `{"client_id":"both"}` + "\n",
		},
		{
			name:   "client add --grant-types with authorization_code and no redirect URI sends nothing",
			args:   []string{"client", "add", "--id", "x", "--name", "X", "--grant-types", "authorization_code"},
			stderr: "Error: --redirect-uri is required unless --grant-types leaves out authorization_code\n",
			exit:   1,
		},
		{
			name:   "client add --json prints the answer as it came, secret included, warning on stderr",
			args:   []string{"client", "add", "--id", "billing", "--name", "Billing", "--redirect-uri", "https://billing.example.com/callback", "--json"},
			status: 201, answer: billingAdded,
			method: "POST", uri: "/tokengate/clients",
			body:   `{"client_id":"billing","name":"Billing","redirect_uris":["https://billing.example.com/callback"]}`,
			stdout: billingAdded,
			stderr: secretNote,
		},
		{
			name:   "client add refused with 400: the API's message, exit 1",
			args:   []string{"client", "add", "--id", "billing", "--name", "Billing", "--redirect-uri", "https://billing.example.com/callback", "--scope", "billing:write"},
			status: 400, answer: errorAnswer(`scope "billing:write" is not declared`),
			method: "POST", uri: "/tokengate/clients",
			body:   `{"client_id":"billing","name":"Billing","redirect_uris":["https://billing.example.com/callback"],"scopes":["billing:write"]}`,
			stderr: `Error: scope "billing:write" is not declared (HTTP 400)` + "\n",
			exit:   1,
		},
		{
			name:   "client add of an id in use: 409",
			args:   []string{"client", "add", "--id", "dashboard", "--name", "Dash", "--redirect-uri", "https://dash.example.com/cb"},
			status: 409, answer: errorAnswer("client dashboard already exists"),
			method: "POST", uri: "/tokengate/clients",
			body:   `{"client_id":"dashboard","name":"Dash","redirect_uris":["https://dash.example.com/cb"]}`,
			stderr: "Error: client dashboard already exists (HTTP 409)\n",
			exit:   1,
		},
		{
			name:   "client add without --redirect-uri sends nothing",
			args:   []string{"client", "add", "--id", "x", "--name", "X"},
			stderr: "Error: --redirect-uri is required unless --grant-types leaves out authorization_code\n",
			exit:   1,
		},
		{
			name:   "client list: one aligned line a client, odd characters of a name escaped",
			args:   []string{"client", "list"},
			status: 200, answer: clientList,
			method: "GET", uri: "/tokengate/clients",
			stdout: "" +
				"ID         NAME                  TYPE          SOURCE  SCOPES\n" +
				"billing    Billing               confidential  store   energy:read sessions:read\n" +
				"dashboard  Energy dashboard      public        config  chargers:read sessions:read energy:read\n" +
				`evil       "a\x1b[31mred\tname"  confidential  store   -` + "\n",
		},
		{
			name:   "client list --json",
			args:   []string{"client", "list", "--json"},
			status: 200, answer: clientList,
			method: "GET", uri: "/tokengate/clients",
			stdout: clientList,
		},
		{
			name:   "client list of none",
			args:   []string{"client", "list"},
			status: 200, answer: "[]\n",
			method: "GET", uri: "/tokengate/clients",
			stderr: "No clients.\n",
		},
		{
			name:   "client get of a static client: no created_at, no secret",
			args:   []string{"client", "get", "dashboard"},
			status: 200, answer: staticClient,
			method: "GET", uri: "/tokengate/clients/dashboard",
			stdout: "" +
				"client_id      dashboard\n" +
				"name           Energy dashboard\n" +
				"type           public\n" +
				"pkce           required\n" +
				"source         config\n" +
				"created_at     -\n" +
				"redirect_uris  https://dash.example.com/cb\n" +
				"scopes         chargers:read\n",
		},
		{
			name:   "client get escapes the id as one path segment",
			args:   []string{"client", "get", "a/b c?d"},
			status: 200, answer: billingClient + "\n",
			method: "GET", uri: "/tokengate/clients/a%2Fb%20c%3Fd",
			stdout: "" +
				"client_id      billing\n" +
				"name           Billing\n" +
				"type           confidential\n" +
				"pkce           required\n" +
				"source         store\n" +
				"created_at     2026-03-01T10:00:00Z\n" +
				"redirect_uris  https://billing.example.com/callback\n" +
				"               https://billing.example.com/other\n" +
				"scopes         energy:read sessions:read\n",
		},
		{
			name:   "client get --json prints the answer, adding the final newline it lacked",
			args:   []string{"client", "get", "billing", "--json"},
			status: 200, answer: billingClient,
			method: "GET", uri: "/tokengate/clients/billing",
			stdout: billingClient + "\n",
		},
		{
			name:   "client get of an unknown id: 404",
			args:   []string{"client", "get", "nope"},
			status: 404, answer: errorAnswer("unknown client nope"),
			method: "GET", uri: "/tokengate/clients/nope",
			stderr: "Error: unknown client nope (HTTP 404)\n",
			exit:   1,
		},
		{
			name:   "client get from a Caddy without the tokengate admin routes: plain-text 404",
			args:   []string{"client", "get", "billing"},
			status: 404, answer: "404 page not found\n",
			method: "GET", uri: "/tokengate/clients/billing",
			stderr: "Error: 404 page not found; does this Caddy have tokengate built in? (HTTP 404)\n",
			exit:   1,
		},
		{
			name:   "client get needs exactly one id",
			args:   []string{"client", "get"},
			stderr: "Error: accepts 1 arg(s), received 0\n",
			exit:   1,
		},
		{
			name:   "client get of an empty id sends nothing",
			args:   []string{"client", "get", ""},
			stderr: "Error: the client id must not be empty\n",
			exit:   1,
		},
		{
			name:   "client remove: DELETE, 204",
			args:   []string{"client", "remove", "billing"},
			status: 204,
			method: "DELETE", uri: "/tokengate/clients/billing",
			stdout: "Removed client billing.\n",
		},
		{
			name:   "client remove --json of a 204 prints nothing",
			args:   []string{"client", "remove", "billing", "--json"},
			status: 204,
			method: "DELETE", uri: "/tokengate/clients/billing",
		},
		{
			name:   "client remove of a static client: 409",
			args:   []string{"client", "remove", "dashboard"},
			status: 409, answer: errorAnswer("client dashboard is defined in the Caddyfile"),
			method: "DELETE", uri: "/tokengate/clients/dashboard",
			stderr: "Error: client dashboard is defined in the Caddyfile (HTTP 409)\n",
			exit:   1,
		},
		{
			name:   "client rotate-secret: POST .../secret, new secret printed",
			args:   []string{"client", "rotate-secret", "billing"},
			status: 200, answer: `{"client_id":"billing","client_secret":"n3w-s3cr3t"}` + "\n",
			method: "POST", uri: "/tokengate/clients/billing/secret",
			stdout: "" +
				"client_id      billing\n" +
				"client_secret  n3w-s3cr3t\n",
			stderr: "The old secret no longer works. " + secretNote,
		},
		{
			name:   "client rotate-secret --json",
			args:   []string{"client", "rotate-secret", "billing", "--json"},
			status: 200, answer: `{"client_id":"billing","client_secret":"n3w-s3cr3t"}` + "\n",
			method: "POST", uri: "/tokengate/clients/billing/secret",
			stdout: `{"client_id":"billing","client_secret":"n3w-s3cr3t"}` + "\n",
			stderr: "The old secret no longer works. " + secretNote,
		},
		{
			name:   "client rotate-secret of a static client: 409",
			args:   []string{"client", "rotate-secret", "dashboard"},
			status: 409, answer: errorAnswer("client dashboard is defined in the Caddyfile"),
			method: "POST", uri: "/tokengate/clients/dashboard/secret",
			stderr: "Error: client dashboard is defined in the Caddyfile (HTTP 409)\n",
			exit:   1,
		},
		{
			name:   "client rotate-secret of an unknown client: 404",
			args:   []string{"client", "rotate-secret", "nope"},
			status: 404, answer: errorAnswer("unknown client nope"),
			method: "POST", uri: "/tokengate/clients/nope/secret",
			stderr: "Error: unknown client nope (HTTP 404)\n",
			exit:   1,
		},
		{
			name:   "personal-token issue: POST, token printed",
			args:   []string{"personal-token", "issue", "--user", "alice"},
			status: 201, answer: `{"token":"tgp_abcdEFGH1234","created_at":"2026-03-01T11:00:00Z"}` + "\n",
			method: "POST", uri: "/tokengate/users/alice/personal-token",
			stdout: "" +
				"user        alice\n" +
				"token       tgp_abcdEFGH1234\n" +
				"created_at  2026-03-01T11:00:00Z\n",
			stderr: "Any earlier personal token of this user no longer works. Store this token now: it is shown only once.\n",
		},
		{
			name:   "personal-token issue --json, user id escaped",
			args:   []string{"personal-token", "issue", "--user", "team/alice", "--json"},
			status: 201, answer: `{"token":"tgp_abcdEFGH1234","created_at":"2026-03-01T11:00:00Z"}` + "\n",
			method: "POST", uri: "/tokengate/users/team%2Falice/personal-token",
			stdout: `{"token":"tgp_abcdEFGH1234","created_at":"2026-03-01T11:00:00Z"}` + "\n",
			stderr: "Any earlier personal token of this user no longer works. Store this token now: it is shown only once.\n",
		},
		{
			name:   "personal-token issue without --user sends nothing",
			args:   []string{"personal-token", "issue"},
			stderr: `Error: required flag(s) "user" not set` + "\n",
			exit:   1,
		},
		{
			name:   "personal-token issue with an empty --user sends nothing",
			args:   []string{"personal-token", "issue", "--user", ""},
			stderr: "Error: --user must not be empty\n",
			exit:   1,
		},
		{
			name:   "personal-token revoke: DELETE, 204",
			args:   []string{"personal-token", "revoke", "--user", "alice"},
			status: 204,
			method: "DELETE", uri: "/tokengate/users/alice/personal-token",
			stdout: "User alice has no active personal token now.\n",
		},
		{
			name:   "user revoke --client: DELETE of the grant",
			args:   []string{"user", "revoke", "--user", "alice", "--client", "billing"},
			status: 204,
			method: "DELETE", uri: "/tokengate/users/alice/grants/billing",
			stdout: "Revoked the grant of user alice to client billing, with every code and token of the user for it.\n",
		},
		{
			name:   "user revoke --client escapes both ids",
			args:   []string{"user", "revoke", "--user", "a b", "--client", "x/y"},
			status: 204,
			method: "DELETE", uri: "/tokengate/users/a%20b/grants/x%2Fy",
			stdout: "Revoked the grant of user a b to client x/y, with every code and token of the user for it.\n",
		},
		{
			name:   "user revoke without --client: DELETE of the user",
			args:   []string{"user", "revoke", "--user", "alice"},
			status: 204,
			method: "DELETE", uri: "/tokengate/users/alice",
			stdout: "Revoked every grant, code and token of user alice, the personal token included.\n",
		},
		{
			name:   "user revoke with an empty --client does not widen to everything",
			args:   []string{"user", "revoke", "--user", "alice", "--client", ""},
			stderr: "Error: --client must not be empty; leave it out to revoke everything of the user\n",
			exit:   1,
		},
		{
			name:   "user revoke of an unknown client's grant: 404",
			args:   []string{"user", "revoke", "--user", "alice", "--client", "nope"},
			status: 404, answer: errorAnswer("unknown client nope"),
			method: "DELETE", uri: "/tokengate/users/alice/grants/nope",
			stderr: "Error: unknown client nope (HTTP 404)\n",
			exit:   1,
		},
		{
			name:   "a mistyped subcommand fails",
			args:   []string{"clinet", "list"},
			stderr: `Error: unknown command "clinet" for "caddy tokengate"` + "\n",
			exit:   1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			admin := newFakeAdmin(t)
			admin.answerWith(tc.status, tc.answer)
			args := append([]string{"tokengate"}, tc.args...)
			args = append(args, "--address", admin.addr())

			stdout, stderr, exit := execute(t, args...)

			if exit != tc.exit {
				t.Errorf("exit status %d, want %d (stderr %q)", exit, tc.exit, stderr)
			}
			if stdout != tc.stdout {
				t.Errorf("stdout:\n%s\nwant:\n%s", stdout, tc.stdout)
			}
			if stderr != tc.stderr {
				t.Errorf("stderr:\n%q\nwant:\n%q", stderr, tc.stderr)
			}
			seen := admin.seen()
			if tc.method == "" {
				if len(seen) != 0 {
					t.Fatalf("sent %+v, want no request", seen)
				}
				return
			}
			if len(seen) != 1 {
				t.Fatalf("sent %d requests (%+v), want 1", len(seen), seen)
			}
			got := seen[0]
			if got.method != tc.method || got.uri != tc.uri {
				t.Errorf("sent %s %s, want %s %s", got.method, got.uri, tc.method, tc.uri)
			}
			if tc.body == "" {
				if got.body != "" {
					t.Errorf("sent body %q, want none", got.body)
				}
				return
			}
			if got.contentType != "application/json" {
				t.Errorf("Content-Type %q, want application/json", got.contentType)
			}
			var gotBody, wantBody any
			if err := json.Unmarshal([]byte(got.body), &gotBody); err != nil {
				t.Fatalf("sent body %q is not JSON: %v", got.body, err)
			}
			if err := json.Unmarshal([]byte(tc.body), &wantBody); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(gotBody, wantBody) {
				t.Errorf("sent body %s, want %s", got.body, tc.body)
			}
		})
	}
}

// The admin address comes from --config (and --adapter) when --address
// is not given, as for `caddy stop`.
func TestAddressFromConfig(t *testing.T) {
	admin := newFakeAdmin(t)
	admin.answerWith(200, "[]\n")
	dir := t.TempDir()

	jsonConfig := filepath.Join(dir, "caddy.json")
	if err := os.WriteFile(jsonConfig, []byte(`{"admin":{"listen":"`+admin.addr()+`"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	caddyfile := filepath.Join(dir, "tokengate.caddyfile")
	if err := os.WriteFile(caddyfile, []byte("{\n\tadmin "+admin.addr()+"\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	for _, args := range [][]string{
		{"--config", jsonConfig},
		{"-c", caddyfile, "-a", "caddyfile"},
	} {
		before := len(admin.seen())
		_, stderr, exit := execute(t, append([]string{"tokengate", "client", "list"}, args...)...)
		if exit != 0 {
			t.Errorf("%v: exit %d, stderr %q", args, exit, stderr)
		}
		if n := len(admin.seen()) - before; n != 1 {
			t.Errorf("%v: the admin endpoint of the config got %d requests, want 1", args, n)
		}
	}
}

func TestUnreachableAdminEndpoint(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	stdout, stderr, exit := execute(t, "tokengate", "client", "list", "--address", addr)
	if exit != 1 {
		t.Errorf("exit %d, want 1", exit)
	}
	if stdout != "" {
		t.Errorf("stdout %q, want nothing", stdout)
	}
	want := "Error: cannot reach Caddy's admin endpoint at " + addr + " (is Caddy running, and is --address or --config right?)"
	if !strings.HasPrefix(stderr, want) {
		t.Errorf("stderr %q, want it to start with %q", stderr, want)
	}
}

// `caddy help tokengate` documents every subcommand and every flag.
func TestHelpNamesEverySubcommandAndFlag(t *testing.T) {
	help, _, exit := execute(t, "help", "tokengate")
	if exit != 0 {
		t.Fatalf("exit %d", exit)
	}

	reg := caddycmd.Commands()["tokengate"]
	tree := &cobra.Command{Use: reg.Name}
	reg.CobraFunc(tree)
	var leaves []*cobra.Command
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		if !c.HasSubCommands() {
			leaves = append(leaves, c)
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(tree)
	if len(leaves) != 8 {
		t.Errorf("%d subcommands, want the 8 of the CLI table", len(leaves))
	}
	for _, leaf := range leaves {
		name := strings.TrimPrefix(leaf.CommandPath(), "tokengate ")
		// The paragraph of the help that starts with the subcommand.
		start := strings.Index(help, "\n  "+name+" ")
		if start < 0 {
			start = strings.Index(help, "\n  "+name+"\n")
		}
		if start < 0 {
			t.Errorf("help does not name %q", name)
			continue
		}
		paragraph := help[start+1:]
		if end := strings.Index(paragraph, "\n\n"); end >= 0 {
			paragraph = paragraph[:end]
		}
		leaf.LocalFlags().VisitAll(func(f *pflag.Flag) {
			if f.Name != "help" && !strings.Contains(paragraph, "--"+f.Name) {
				t.Errorf("help of %q does not name --%s", name, f.Name)
			}
		})
		leaf.InheritedFlags().VisitAll(func(f *pflag.Flag) {
			if !strings.Contains(help, "--"+f.Name) {
				t.Errorf("help does not name --%s", f.Name)
			}
		})
	}
}
