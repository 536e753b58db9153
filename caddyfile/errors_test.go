package caddyfile

import (
	"strings"
	"testing"
)

// globalBlock is a valid global option block, for cases whose mistake is
// in a site block.
const globalBlock = `{
	tokengate {
		issuer https://api.example.com
		scope chargers:read
		scope chargers:write
		scope sessions:read
	}
}
`

// site wraps directive lines in a site block after globalBlock.
func site(lines string) string {
	return globalBlock + "\n:8080 {\n" + lines + "\n}\n"
}

// global wraps option lines in a tokengate global block.
func global(lines string) string {
	return "{\n\ttokengate {\n" + lines + "\n\t}\n}\n"
}

// TestAdaptErrors checks that `caddy adapt` refuses each invalid config
// with a message naming the culprit.
func TestAdaptErrors(t *testing.T) {
	for _, tc := range []struct {
		name, caddyfile, want string
	}{
		// An undeclared scope is a config error wherever it is named.
		{"undeclared scope in client", global(`
		issuer https://api.example.com
		scope chargers:read
		client app {
			redirect_uri https://app.example.com/cb
			scopes chargers:read energy:write
		}`), `client "app" names undeclared scope "energy:write"`},
		{"undeclared scope inline in directive", site(`tokengate chargers:delete`),
			`undeclared scope "chargers:delete", at Caddyfile:11`},
		{"undeclared scope in directive block", site(`tokengate {
		GET chargers:read
		POST chargers:delete
	}`), `tokengate directive (POST) names undeclared scope "chargers:delete", at Caddyfile:13`},
		{"undeclared scope in personal_token_scopes", global(`
		issuer https://api.example.com
		scope chargers:read
		personal_token_scopes chargers:read energy:read`),
			`personal_token_scopes names undeclared scope "energy:read"`},

		// Client rules.
		{"client without redirect_uri", global(`
		issuer https://api.example.com
		client app {
			name "App"
		}`), `client "app" has no redirect_uri`},
		{"client without block", global(`
		issuer https://api.example.com
		client app`), `client "app" has no redirect_uri`},
		{"non-loopback http redirect_uri (RFC 8252 8.3)", global(`
		issuer https://api.example.com
		client app {
			redirect_uri http://app.example.com/cb
		}`), `redirect_uri "http://app.example.com/cb" uses http with a host that is not loopback`},
		{"unknown grant type", global(`
		issuer https://api.example.com
		client app {
			secret s
			redirect_uri https://app.example.com/cb
			grant_types authorization_code password
		}`), `client "app": unknown grant type "password"`},
		{"RFC 6749 4.4 client_credentials on a public client", global(`
		issuer https://api.example.com
		client machine {
			grant_types client_credentials
		}`), `client "machine": grant type client_credentials needs a confidential client`},
		{"grant_types without a value", global(`
		issuer https://api.example.com
		client machine {
			secret s
			grant_types
		}`), `wrong argument count or unexpected line ending after 'grant_types'`},
		{"grant_types twice", global(`
		issuer https://api.example.com
		client machine {
			secret s
			grant_types client_credentials
			grant_types client_credentials
		}`), `grant_types`},
		{"pkce optional on a public client", global(`
		issuer https://api.example.com
		client app {
			redirect_uri https://app.example.com/cb
			pkce optional
		}`), `client "app" is public (no secret), so pkce cannot be optional`},
		{"pkce bad value", global(`
		issuer https://api.example.com
		client app {
			redirect_uri https://app.example.com/cb
			pkce sometimes
		}`), `pkce must be optional or required, not "sometimes"`},
		{"dpop bad value (RFC 9449 5.2)", global(`
		issuer https://api.example.com
		client app {
			redirect_uri https://app.example.com/cb
			dpop always
		}`), `client "app": dpop must be required or optional, not "always"`},
		{"dpop twice", global(`
		issuer https://api.example.com
		client app {
			redirect_uri https://app.example.com/cb
			dpop required
			dpop optional
		}`), `dpop is given more than once`},
		{"duplicate client id", global(`
		issuer https://api.example.com
		client app {
			redirect_uri https://app.example.com/cb
		}
		client app {
			redirect_uri https://app.example.com/cb2
		}`), `duplicate client "app", at Caddyfile:8`},
		{"secret and secret_hash", global(`
		issuer https://api.example.com
		client app {
			secret s3cret
			secret_hash sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
			redirect_uri https://app.example.com/cb
		}`), `client "app" has both secret and secret_hash`},
		{"redirect_uri without argument", global(`
		issuer https://api.example.com
		client app {
			redirect_uri
		}`), `wrong argument count`},

		// Directives need the global block.
		{"tokengate directive without global block", ":8080 {\n\ttokengate\n}\n",
			"tokengate directive needs the tokengate global option block"},
		{"tokengate_endpoints without global block", ":8080 {\n\ttokengate_endpoints\n}\n",
			"tokengate_endpoints directive needs the tokengate global option block"},

		// Methods are written in upper case, each once.
		{"lower-case method", site(`tokengate {
		get chargers:read
	}`), `method "get" must be written in upper case: GET`},
		{"mixed-case method", site(`tokengate {
		Post chargers:write
	}`), `method "Post" must be written in upper case: POST`},
		{"method listed twice", site(`tokengate {
		GET chargers:read
		POST chargers:write
		GET sessions:read
	}`), `method GET is listed twice, at Caddyfile:14`},
		{"star listed twice", site(`tokengate {
		* chargers:read
		* sessions:read
	}`), `method * is listed twice`},
		{"method without scope", site(`tokengate {
		GET
	}`), `wrong argument count or unexpected line ending after 'GET'`},
		{"inline scopes and rule lines", site(`tokengate sessions:read {
		POST chargers:write
	}`), `the POST line cannot follow scopes given on the directive's line`},
		{"forward_authorization with an argument", site(`tokengate {
		forward_authorization yes
	}`), `wrong argument count`},
		{"forward_authorization and upstream_jwt", site(`tokengate {
		forward_authorization
		upstream_jwt {
			secret s3cret
		}
	}`), `forward_authorization and upstream_jwt cannot be used together`},

		// Unknown subdirectives are named.
		{"unknown global subdirective", global(`
		issuer https://api.example.com
		isuer https://api.example.com`), `unrecognized tokengate subdirective "isuer", at Caddyfile:5`},
		{"unknown users subdirective", global(`
		issuer https://api.example.com
		users {
			jwt_secret s3cret
			jwt_secrets s3cret
		}`), `unrecognized users subdirective "jwt_secrets"`},
		{"unknown client subdirective", global(`
		issuer https://api.example.com
		client app {
			redirect_uris https://app.example.com/cb
		}`), `unrecognized client subdirective "redirect_uris"`},
		{"unknown cache subdirective", global(`
		issuer https://api.example.com
		cache {
			size 10
		}`), `unrecognized cache subdirective "size"`},
		{"unknown guard subdirective", site(`tokengate {
		forward_auth
	}`), `unrecognized tokengate subdirective "forward_auth"`},
		{"lower-case word that is not a method", site(`tokengate {
		forward
	}`), `unrecognized tokengate subdirective "forward" (an HTTP method is written in upper case)`},
		// Resource identifiers (RFC 9728 1.2, RFC 8707 2).
		{"resource not absolute", site(`tokengate {
		resource /chargers
	}`), `resource "/chargers" is not an absolute URI`},
		{"resource with a fragment", site(`tokengate {
		resource https://api.example.com/chargers#x
	}`), `resource "https://api.example.com/chargers#x" must not have a fragment`},
		{"resource with a query", site(`tokengate {
		resource https://api.example.com/chargers?v=1
	}`), `resource "https://api.example.com/chargers?v=1" must not have a query`},
		{"resource over http, not loopback", site(`tokengate {
		resource http://api.example.com/chargers
	}`), `resource "http://api.example.com/chargers" must use https (http is allowed for loopback hosts only)`},
		{"resource of another scheme", site(`tokengate {
		resource urn:example:chargers
	}`), `resource "urn:example:chargers" is not an absolute URI`},
		{"resource with a quote", site(`tokengate {
		resource "https://api.example.com/a\"b"
	}`), `has a character a URI cannot hold unescaped`},
		{"resource without argument", site(`tokengate {
		resource
	}`), `wrong argument count`},
		{"resource twice", site(`tokengate {
		resource https://api.example.com/a
		resource https://api.example.com/b
	}`), `resource is given more than once`},
		{"unknown upstream_jwt subdirective", site(`tokengate {
		upstream_jwt {
			secret s3cret
			algorithm HS512
		}
	}`), `unrecognized upstream_jwt subdirective "algorithm"`},
		{"unknown endpoints subdirective", site(`tokengate_endpoints {
		metadata /meta
	}`), `unrecognized tokengate_endpoints subdirective "metadata"`},

		// Dynamic client registration (RFC 7591).
		{"registration path without the global option", site(`tokengate_endpoints {
		registration /oauth/register
	}`), `the registration path /oauth/register needs the global option registration open, or registration token <initial access token>`},
		{"registration without argument", global(`
		issuer https://api.example.com
		registration`), `registration must be followed by open, or by token and the initial access token`},
		{"registration of another kind", global(`
		issuer https://api.example.com
		registration closed`), `registration must be followed by open, or by token and the initial access token`},
		{"registration token without the token", global(`
		issuer https://api.example.com
		registration token`), `registration token needs the initial access token`},
		{"registration twice", global(`
		issuer https://api.example.com
		registration open
		registration token abc`), `registration is given more than once`},
		{"endpoint under the registration path", "{\n\ttokengate {\n\t\tissuer https://api.example.com\n\t\tregistration open\n\t}\n}\n:8080 {\n\ttokengate_endpoints {\n\t\tregistration /oauth/register\n\t\ttoken /oauth/register/token\n\t}\n}\n",
			`token path /oauth/register/token is under the registration path /oauth/register`},

		// Issuer (RFC 8414 2).
		{"missing issuer", global(`
		scope chargers:read`), `issuer is required`},
		{"http issuer not loopback", global(`
		issuer http://api.example.com`), `must use https (http is allowed for loopback hosts only)`},
		{"issuer without argument", global(`
		issuer`), `wrong argument count`},
		{"issuer with a block", global(`
		issuer https://api.example.com {
			x y
		}`), `issuer does not take a block`},

		// Values.
		{"bad duration", global(`
		issuer https://api.example.com
		code_ttl 10x`), `code_ttl: invalid duration "10x"`},
		{"zero access_token_ttl", global(`
		issuer https://api.example.com
		access_token_ttl 0s`), `access_token_ttl must be greater than zero`},
		{"zero device_code_ttl", global(`
		issuer https://api.example.com
		device_code_ttl 0s`), `device_code_ttl must be greater than zero`},
		{"negative refresh_max_age", global(`
		issuer https://api.example.com
		refresh_max_age -1h`), `refresh_max_age must not be negative`},
		{"zero max_clients_per_user", global(`
		issuer https://api.example.com
		max_clients_per_user 0`), `max_clients_per_user must be a positive integer, got "0"`},
		{"max_clients_per_user not a number", global(`
		issuer https://api.example.com
		max_clients_per_user ten`), `max_clients_per_user must be a positive integer, got "ten"`},
		{"max_clients_per_user twice", global(`
		issuer https://api.example.com
		max_clients_per_user 1
		max_clients_per_user 2`), `max_clients_per_user is given more than once`},
		{"zero cache max_entries", global(`
		issuer https://api.example.com
		cache {
			max_entries 0
		}`), `max_entries must be a positive integer, got "0"`},
		{"cache ttl beyond 30 days", global(`
		issuer https://api.example.com
		cache {
			ttl 31d
		}`), `cache ttl must be at most 720h0m0s, got 744h0m0s`},
		// OpenID Connect and JWT access tokens.
		{"openid scope without the openid option", global(`
		issuer https://api.example.com
		client app {
			redirect_uri https://app.example.com/cb
			scopes openid
		}`), `client "app" names undeclared scope "openid"`},
		{"openid with an argument", global(`
		issuer https://api.example.com
		openid on`), `wrong argument count`},
		{"openid signing_alg HS256", global(`
		issuer https://api.example.com
		openid {
			signing_alg HS256
		}`), `signing_alg must be RS256 or ES256, not "HS256"`},
		{"openid key_rotation below a minute", global(`
		issuer https://api.example.com
		openid {
			key_rotation 30s
		}`), `openid key_rotation must be at least 1m0s, got 30s`},
		{"openid zero id_token_ttl", global(`
		issuer https://api.example.com
		openid {
			id_token_ttl 0
		}`), `id_token_ttl must be greater than zero`},
		{"openid claim of no offered scope (OpenID Connect Core 5.4)", global(`
		issuer https://api.example.com
		openid {
			claims email phone_number
		}`), `openid claims: "phone_number" is not a claim of the profile or email scope`},
		{"openid claim listed twice", global(`
		issuer https://api.example.com
		openid {
			claims email name email
		}`), `openid claims: "email" is listed twice`},
		{"openid sub-option twice", global(`
		issuer https://api.example.com
		openid {
			id_token_ttl 1h
			id_token_ttl 2h
		}`), `id_token_ttl is given more than once`},
		{"unknown openid sub-option", global(`
		issuer https://api.example.com
		openid {
			userinfo_signing_alg RS256
		}`), `unrecognized openid subdirective "userinfo_signing_alg"`},
		{"unknown access_token_format", global(`
		issuer https://api.example.com
		access_token_format paseto`), `access_token_format must be opaque or jwt, not "paseto"`},
		{"access_token_audience with opaque tokens", global(`
		issuer https://api.example.com
		access_token_audience https://api.example.com/v1`), `access_token_audience is the aud of JWT access tokens; it needs access_token_format jwt`},
		{"access_token_audience not absolute", global(`
		issuer https://api.example.com
		access_token_format jwt
		access_token_audience /functions/v1`), `access_token_audience "/functions/v1" is not an absolute URI`},
		{"unknown database driver", global(`
		issuer https://api.example.com
		database mysql root@/tokengate`), `unknown driver "mysql" (want sqlite or postgres)`},
		{"postgres without DSN", global(`
		issuer https://api.example.com
		database postgres`), `database postgres needs a DSN`},
		{"users without a key", global(`
		issuer https://api.example.com
		users {
			audience authenticated
		}`), `users needs jwt_secret or jwks_url`},
		{"scope declared twice", global(`
		issuer https://api.example.com
		scope chargers:read
		scope chargers:read "again"`), `scope "chargers:read" declared twice, at Caddyfile:6`},
		{"scope with three arguments", global(`
		issuer https://api.example.com
		scope chargers:read Charger status`), `wrong argument count`},

		// Every option at most once.
		{"duplicate global option", global(`
		issuer https://api.example.com
		issuer https://other.example.com`), `issuer is given more than once, at Caddyfile:5`},
		{"duplicate client option", global(`
		issuer https://api.example.com
		client app {
			redirect_uri https://app.example.com/cb
			secret a
			secret b
		}`), `secret is given more than once`},
		{"duplicate users option", global(`
		issuer https://api.example.com
		users {
			jwt_secret a
			jwt_secret b
		}`), `jwt_secret is given more than once`},
		{"tokengate global option twice", "{\n\ttokengate {\n\t\tissuer https://a.example.com\n\t}\n\ttokengate {\n\t\tissuer https://b.example.com\n\t}\n}\n",
			`the tokengate global option is given more than once`},
		{"duplicate forward_authorization", site(`tokengate {
		forward_authorization
		forward_authorization
	}`), `forward_authorization is given more than once`},
		{"duplicate endpoints path option", site(`tokengate_endpoints {
		token /a
		token /b
	}`), `token is given more than once`},

		// upstream_jwt (docs/reference.md).
		{"upstream_jwt without secret", site(`tokengate {
		upstream_jwt {
			ttl 60s
		}
	}`), `upstream_jwt needs a secret`},
		{"upstream_jwt without block", site(`tokengate {
		upstream_jwt
	}`), `upstream_jwt needs a secret`},
		{"upstream_jwt reserved claim", site(`tokengate {
		upstream_jwt {
			secret s3cret
			claim sub admin
		}
	}`), `claim "sub" is set by tokengate and cannot be overridden`},
		{"upstream_jwt claim twice", site(`tokengate {
		upstream_jwt {
			secret s3cret
			claim role a
			claim role b
		}
	}`), `claim "role" is given more than once`},
		{"upstream_jwt claim without value", site(`tokengate {
		upstream_jwt {
			secret s3cret
			claim role
		}
	}`), `wrong argument count`},

		// tokengate_endpoints (docs/reference.md).
		{"endpoints path without leading slash", site(`tokengate_endpoints {
		token oauth/token
	}`), `token path "oauth/token" must start with /`},
		{"endpoints argument", site(`tokengate_endpoints oauth`), `wrong argument count`},
		{"endpoints on one path", site(`tokengate_endpoints {
		revoke /oauth/token
	}`), `token and revoke both use the path /oauth/token`},
		{"endpoint on the metadata path", site(`tokengate_endpoints {
		api_token /.well-known/oauth-authorization-server
	}`), `api_token and metadata both use the path /.well-known/oauth-authorization-server`},
		{"jwks on the discovery path", site(`tokengate_endpoints {
		jwks /.well-known/openid-configuration
	}`), `jwks and openid_configuration both use the path /.well-known/openid-configuration`},
		{"userinfo on the token path", site(`tokengate_endpoints {
		userinfo /oauth/token
	}`), `token and userinfo both use the path /oauth/token`},
		{"endpoints grants on another's path", site(`tokengate_endpoints {
		grants /api-token
	}`), `api_token and grants both use the path /api-token`},
		{"device page on the device authorization path", site(`tokengate_endpoints {
		device /oauth/device_authorization
	}`), `device_authorization and device both use the path /oauth/device_authorization`},
		{"endpoint under the grants path", site(`tokengate_endpoints {
		grants /oauth
	}`), `authorize path /oauth/authorize is under the grants path /oauth, which serves /oauth/<client_id>`},
		{"clients path without leading slash", site(`tokengate_endpoints {
		clients oauth/clients
	}`), `clients path "oauth/clients" must start with /`},
		{"clients on another's path", site(`tokengate_endpoints {
		clients /oauth/grants
	}`), `grants and clients both use the path /oauth/grants`},
		{"clients under the grants path", site(`tokengate_endpoints {
		clients /oauth/grants/clients
	}`), `clients path /oauth/grants/clients is under the grants path /oauth/grants, which serves /oauth/grants/<client_id>`},
		{"endpoint under the clients path", site(`tokengate_endpoints {
		clients /oauth
	}`), `authorize path /oauth/authorize is under the clients path /oauth, which serves /oauth/<client_id>`},
		{"clients path without argument", site(`tokengate_endpoints {
		clients
	}`), `wrong argument count`},
		{"grants path twice", site(`tokengate_endpoints {
		grants /a
		grants /b
	}`), `grants is given more than once`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := adapt(t, tc.caddyfile)
			if err == nil {
				t.Fatalf("adapted without error; want one containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q\ndoes not contain %q", err, tc.want)
			}
		})
	}
}
