package caddyfile

import (
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"

	"github.com/tokengate/caddy-tokengate/module"
)

func init() {
	httpcaddyfile.RegisterGlobalOption("tokengate", parseGlobal)
}

// parseGlobal configures the tokengate app from the global option block.
// Syntax:
//
//	tokengate {
//		issuer <url>
//		database sqlite [<path>]
//		database postgres <dsn>
//		users {
//			jwt_secret <secret>
//			jwks_url   <url>
//			issuer     <iss>
//			audience   <aud>
//			user_claim <claim>
//			cookie     <name>
//			login_url  <url>
//		}
//		scope <name> [<description>]
//		client <id> {
//			name         <display name>
//			secret       <secret>
//			secret_hash  sha256:<hex>
//			redirect_uri <uri...>
//			scopes       <scope...>
//			pkce         optional|required
//			grant_types  <type...>
//			dpop         optional|required
//		}
//		code_ttl          <duration>
//		access_token_ttl  <duration>
//		refresh_token_ttl <duration>
//		refresh_max_age   <duration>
//		refresh_grace     <duration>
//		device_code_ttl   <duration>
//		personal_token_scopes <scope...>
//		max_clients_per_user  <n>
//		registration open|token <initial access token>
//		cache {
//			max_entries <n>
//			ttl         <duration>
//		}
//		openid [{
//			signing_alg  RS256|ES256
//			id_token_ttl <duration>
//			key_rotation <duration>
//			claims       <claim...>
//		}]
//		access_token_format   opaque|jwt
//		access_token_audience <uri>
//	}
//
// scope, client and a client's redirect_uri may be repeated; every other
// option is given at most once. Placeholders such as {env.X} are kept as
// written and expanded when the app is provisioned.
func parseGlobal(d *caddyfile.Dispenser, existing any) (any, error) {
	if existing != nil {
		d.Next()
		return nil, d.Err("the tokengate global option is given more than once")
	}
	app, err := parseApp(d)
	if err != nil {
		return nil, err
	}
	// The same checks caddy run makes, so that caddy adapt already fails
	// on a config that could never start.
	if err := app.Validate(); err != nil {
		return nil, err
	}
	return httpcaddyfile.App{
		Name:  "tokengate",
		Value: caddyconfig.JSON(app, nil),
	}, nil
}

// parseApp reads the tokengate global option into an App, checking each
// line on its own; checks across lines are App.Validate's.
func parseApp(d *caddyfile.Dispenser) (*module.App, error) {
	d.Next() // consume option name
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	app := new(module.App)
	seen := seenOptions{}
	for d.NextBlock(0) {
		opt := d.Val()
		if opt != "scope" && opt != "client" {
			if err := seen.once(d); err != nil {
				return nil, err
			}
		}
		var err error
		switch opt {
		case "issuer":
			app.Issuer, err = oneArg(d)
		case "database":
			app.Database, err = parseDatabase(d)
		case "users":
			app.Users, err = parseUsers(d)
		case "scope":
			err = parseScope(d, app)
		case "client":
			err = parseClient(d, app)
		case "code_ttl":
			app.CodeTTL, err = durationArg(d, false)
		case "access_token_ttl":
			app.AccessTokenTTL, err = durationArg(d, false)
		case "refresh_token_ttl":
			app.RefreshTokenTTL, err = durationArg(d, false)
		case "refresh_max_age":
			app.RefreshMaxAge, err = durationArg(d, true)
		case "refresh_grace":
			app.RefreshGrace, err = durationArg(d, true)
		case "device_code_ttl":
			app.DeviceCodeTTL, err = durationArg(d, false)
		case "personal_token_scopes":
			app.PersonalTokenScopes, err = someArgs(d)
		case "max_clients_per_user":
			var n int64
			if n, err = positiveInt(d); err == nil {
				app.MaxClientsPerUser = int(n)
			}
		case "cache":
			app.Cache, err = parseCache(d)
		case "openid":
			app.OpenID, err = parseOpenID(d)
		case "access_token_format":
			app.AccessTokenFormat, err = parseAccessTokenFormat(d)
		case "access_token_audience":
			app.AccessTokenAudience, err = oneArg(d)
		case "registration":
			app.Registration, err = parseRegistration(d)
		default:
			return nil, d.Errf("unrecognized tokengate subdirective %q", opt)
		}
		if err != nil {
			return nil, err
		}
	}
	return app, nil
}

// parseDatabase reads "database sqlite [<path>]" or "database postgres <dsn>".
func parseDatabase(d *caddyfile.Dispenser) (*module.DatabaseConfig, error) {
	args := d.RemainingArgs()
	if len(args) == 0 || len(args) > 2 {
		return nil, d.ArgErr()
	}
	db := &module.DatabaseConfig{Driver: args[0]}
	switch db.Driver {
	case "sqlite":
		if len(args) == 2 {
			db.Path = args[1]
		}
	case "postgres":
		if len(args) != 2 {
			return nil, d.Errf("database postgres needs a DSN, such as {env.TOKENGATE_POSTGRES_DSN}")
		}
		db.DSN = args[1]
	default:
		return nil, d.Errf("database: unknown driver %q (want sqlite or postgres)", db.Driver)
	}
	return db, noBlock(d, "database")
}

// parseScope reads "scope <name> [<description>]".
func parseScope(d *caddyfile.Dispenser, app *module.App) error {
	args := d.RemainingArgs()
	if len(args) == 0 || len(args) > 2 {
		return d.ArgErr()
	}
	s := module.ScopeConfig{Name: args[0]}
	if len(args) == 2 {
		s.Description = args[1]
	}
	for _, other := range app.Scopes {
		if other.Name == s.Name {
			return d.Errf("scope %q declared twice", s.Name)
		}
	}
	app.Scopes = append(app.Scopes, s)
	return noBlock(d, "scope")
}

// parseRegistration reads "registration open" or "registration token
// <initial access token>" (RFC 7591 3).
func parseRegistration(d *caddyfile.Dispenser) (*module.RegistrationConfig, error) {
	args := d.RemainingArgs()
	var r module.RegistrationConfig
	switch {
	case len(args) == 1 && args[0] == "open":
		r.Open = true
	case len(args) == 2 && args[0] == "token":
		r.InitialAccessToken = args[1]
	case len(args) >= 1 && args[0] == "token":
		return nil, d.Errf("registration token needs the initial access token, such as {env.TOKENGATE_REGISTRATION_TOKEN}")
	default:
		return nil, d.Errf("registration must be followed by open, or by token and the initial access token")
	}
	return &r, noBlock(d, "registration")
}
