// An OpenID Connect relying party built on openid-client, a strict,
// certified implementation written elsewhere, run against tokengate by
// integration/interop_oidc_test.go. It uses openid-client as its
// documentation shows, with no workaround: the only option set is
// allowInsecureRequests, since the test server is plain http on loopback.
//
// Inputs, from the environment:
//   INTEROP_ISSUER         the OpenID Provider's issuer identifier
//   INTEROP_CLIENT_ID      a confidential client
//   INTEROP_CLIENT_SECRET  its secret
//   INTEROP_AUTH_METHOD    client_secret_post (default) or client_secret_basic
//   INTEROP_REDIRECT_URI   a redirect URI registered for the client
//   INTEROP_SCOPE          the scope to ask for (with openid and offline_access)
//
// Protocol: one JSON line {"authorization_url": ...} on stdout; then the
// callback URL (the redirect URI with the authorization response) is read
// as one line from stdin; then one JSON line with the summary on stdout.
// Tokens never appear in the output, only their first characters. Any
// failure, including every validation error openid-client raises, ends
// the process with a non-zero status and the error on stderr.

import * as client from 'openid-client'
import { createInterface } from 'node:readline'

function config() {
  const names = ['issuer', 'client_id', 'client_secret', 'auth_method', 'redirect_uri', 'scope']
  const cfg = {}
  for (const n of names) {
    cfg[n] = process.env[`INTEROP_${n.toUpperCase()}`]
  }
  cfg.auth_method ||= 'client_secret_post'
  for (const n of names) {
    if (!cfg[n]) {
      throw new Error(`missing input ${n} (env INTEROP_${n.toUpperCase()})`)
    }
  }
  return cfg
}

function prefix(token) {
  return typeof token === 'string' ? token.slice(0, 8) : null
}

function readLine() {
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: process.stdin })
    let done = false
    rl.once('line', (line) => {
      done = true
      rl.close()
      resolve(line.trim())
    })
    rl.once('close', () => {
      if (!done) reject(new Error('stdin closed before the callback URL arrived'))
    })
  })
}

// What the ID token says, without the token itself.
function idTokenSummary(claims) {
  return {
    iss: claims.iss,
    sub: claims.sub,
    aud: claims.aud,
    azp: claims.azp ?? null,
    auth_time: claims.auth_time ?? null,
    nonce: claims.nonce ?? null,
    has_at_hash: typeof claims.at_hash === 'string',
    email: claims.email ?? null,
    email_verified: claims.email_verified ?? null,
    name: claims.name ?? null,
    iat: claims.iat,
    exp: claims.exp,
  }
}

// The OAuth error code of a refused request, or a rethrow.
function errorCode(err) {
  if (err instanceof client.ResponseBodyError) {
    return err.error
  }
  if (err instanceof client.WWWAuthenticateChallengeError) {
    const error = err.cause.map((c) => c.parameters.error).find((e) => e) ?? 'none'
    return `${err.status} ${error}`
  }
  throw err
}

async function main() {
  const cfg = config()
  const summary = { auth_method: cfg.auth_method }

  let auth
  switch (cfg.auth_method) {
    case 'client_secret_post':
      auth = client.ClientSecretPost(cfg.client_secret)
      break
    case 'client_secret_basic':
      auth = client.ClientSecretBasic(cfg.client_secret)
      break
    default:
      throw new Error(`unknown auth_method ${cfg.auth_method}`)
  }

  // OpenID Connect Discovery 1.0: the issuer must be exactly the one asked
  // for.
  const oidc = await client.discovery(new URL(cfg.issuer), cfg.client_id, undefined, auth, {
    execute: [client.allowInsecureRequests],
  })
  summary.discovery = 'ok'

  const codeVerifier = client.randomPKCECodeVerifier()
  const state = client.randomState()
  const nonce = client.randomNonce()
  const authorizationUrl = client.buildAuthorizationUrl(oidc, {
    redirect_uri: cfg.redirect_uri,
    scope: cfg.scope,
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  })
  process.stdout.write(JSON.stringify({ authorization_url: authorizationUrl.href }) + '\n')

  // The authorization response (state, iss) and the ID token (signature
  // by the JWKS, iss, aud, exp, iat, nonce) are checked here.
  const callback = new URL(await readLine())
  const tokens = await client.authorizationCodeGrant(oidc, callback, {
    pkceCodeVerifier: codeVerifier,
    expectedState: state,
    expectedNonce: nonce,
  })
  const claims = tokens.claims()
  summary.exchange = {
    status: 'ok',
    token_type: tokens.token_type,
    scope: tokens.scope ?? null,
    access_token_prefix: prefix(tokens.access_token),
    refresh_token_prefix: prefix(tokens.refresh_token),
    id_token: idTokenSummary(claims),
    nonce_matches: claims.nonce === nonce,
  }

  const info = await client.fetchUserInfo(oidc, tokens.access_token, claims.sub)
  summary.userinfo = { sub: info.sub, email: info.email ?? null, name: info.name ?? null }

  const refreshed = await client.refreshTokenGrant(oidc, tokens.refresh_token)
  const refreshedClaims = refreshed.claims()
  summary.refresh = {
    status: 'ok',
    access_token_prefix: prefix(refreshed.access_token),
    refresh_token_prefix: prefix(refreshed.refresh_token),
    new_access_token: refreshed.access_token !== tokens.access_token,
    new_refresh_token: !!refreshed.refresh_token && refreshed.refresh_token !== tokens.refresh_token,
    id_token: refreshedClaims ? idTokenSummary(refreshedClaims) : null,
  }
  const refreshedInfo = await client.fetchUserInfo(oidc, refreshed.access_token, claims.sub)
  summary.userinfo_after_refresh = { sub: refreshedInfo.sub }

  // RFC 7009: the refresh token, with its whole grant.
  await client.tokenRevocation(oidc, refreshed.refresh_token, { token_type_hint: 'refresh_token' })
  summary.revoke = 'ok'
  try {
    await client.refreshTokenGrant(oidc, refreshed.refresh_token)
    summary.refresh_after_revoke = 'ok'
  } catch (err) {
    summary.refresh_after_revoke = errorCode(err)
  }
  try {
    await client.fetchUserInfo(oidc, refreshed.access_token, claims.sub)
    summary.userinfo_after_revoke = 'ok'
  } catch (err) {
    summary.userinfo_after_revoke = errorCode(err)
  }

  process.stdout.write(JSON.stringify(summary) + '\n')
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
