// An OAuth 2.0 client built on oauth4webapi, an independent and strict
// implementation, run against tokengate by integration/interop_test.go.
//
// Inputs, from the environment (a JSON object given as the first argument
// overrides them, with the same names in lower case without the prefix):
//   INTEROP_ISSUER         the authorization server's issuer identifier
//   INTEROP_CLIENT_ID      a confidential client
//   INTEROP_CLIENT_SECRET  its secret
//   INTEROP_AUTH_METHOD    client_secret_post (default) or client_secret_basic
//   INTEROP_REDIRECT_URI   a redirect URI registered for the client
//   INTEROP_SCOPE          the scope to ask for
//   INTEROP_API_URL        a guarded API route the scope gives access to
//
// Protocol: one JSON line {"authorization_url": ...} on stdout; then the
// callback URL (the redirect URI with the authorization response) is read
// as one line from stdin; then one JSON line with the summary on stdout.
// Tokens never appear in the output, only their first characters.
// Any failure, including every validation error oauth4webapi raises, ends
// the process with a non-zero status and the error on stderr.

import * as oauth from 'oauth4webapi'
import { createInterface } from 'node:readline'

const insecure = { [oauth.allowInsecureRequests]: true }

function config() {
  const names = ['issuer', 'client_id', 'client_secret', 'auth_method', 'redirect_uri', 'scope', 'api_url']
  const cfg = {}
  for (const n of names) {
    cfg[n] = process.env[`INTEROP_${n.toUpperCase()}`]
  }
  if (process.argv[2]) {
    Object.assign(cfg, JSON.parse(process.argv[2]))
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

async function callAPI(url, accessToken) {
  const res = await fetch(url, { headers: { Authorization: `Bearer ${accessToken}` } })
  await res.arrayBuffer()
  return res.status
}

// The error code of a token endpoint error response, or a rethrow.
function oauthErrorCode(err) {
  if (err instanceof oauth.ResponseBodyError) {
    return err.error
  }
  throw err
}

async function main() {
  const cfg = config()
  const issuer = new URL(cfg.issuer)
  const summary = { auth_method: cfg.auth_method }

  // RFC 8414 metadata; processDiscoveryResponse checks that its issuer is
  // exactly the one asked for.
  const as = await oauth.processDiscoveryResponse(
    issuer,
    await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }),
  )
  summary.discovery = 'ok'

  const client = { client_id: cfg.client_id }
  let clientAuth
  switch (cfg.auth_method) {
    case 'client_secret_post':
      clientAuth = oauth.ClientSecretPost(cfg.client_secret)
      break
    case 'client_secret_basic':
      clientAuth = oauth.ClientSecretBasic(cfg.client_secret)
      break
    default:
      throw new Error(`unknown auth_method ${cfg.auth_method}`)
  }

  const codeVerifier = oauth.generateRandomCodeVerifier()
  const codeChallenge = await oauth.calculatePKCECodeChallenge(codeVerifier)
  const state = oauth.generateRandomState()

  const authorizationUrl = new URL(as.authorization_endpoint)
  authorizationUrl.searchParams.set('client_id', client.client_id)
  authorizationUrl.searchParams.set('redirect_uri', cfg.redirect_uri)
  authorizationUrl.searchParams.set('response_type', 'code')
  authorizationUrl.searchParams.set('scope', cfg.scope)
  authorizationUrl.searchParams.set('state', state)
  authorizationUrl.searchParams.set('code_challenge', codeChallenge)
  authorizationUrl.searchParams.set('code_challenge_method', 'S256')
  process.stdout.write(JSON.stringify({ authorization_url: authorizationUrl.href }) + '\n')

  const callback = new URL(await readLine())
  // state, and iss against the metadata's issuer (RFC 9207 2.4).
  const params = oauth.validateAuthResponse(as, client, callback, state)
  summary.auth_response = 'ok'
  summary.iss_in_response = callback.searchParams.get('iss') === as.issuer

  const first = await oauth.processAuthorizationCodeResponse(
    as,
    client,
    await oauth.authorizationCodeGrantRequest(as, client, clientAuth, params, cfg.redirect_uri, codeVerifier, insecure),
  )
  summary.exchange = {
    status: 'ok',
    token_type: first.token_type,
    expires_in: first.expires_in,
    scope: first.scope ?? null,
    access_token_prefix: prefix(first.access_token),
    refresh_token_prefix: prefix(first.refresh_token),
  }
  if (!first.refresh_token) {
    throw new Error('the token response has no refresh_token')
  }
  summary.api_status = await callAPI(cfg.api_url, first.access_token)

  const active = await oauth.processIntrospectionResponse(
    as,
    client,
    await oauth.introspectionRequest(as, client, clientAuth, first.access_token, insecure),
  )
  summary.introspection = {
    active: active.active,
    client_id: active.client_id ?? null,
    scope: active.scope ?? null,
    token_type: active.token_type ?? null,
  }

  const second = await oauth.processRefreshTokenResponse(
    as,
    client,
    await oauth.refreshTokenGrantRequest(as, client, clientAuth, first.refresh_token, insecure),
  )
  summary.refresh = {
    status: 'ok',
    token_type: second.token_type,
    expires_in: second.expires_in,
    scope: second.scope ?? null,
    access_token_prefix: prefix(second.access_token),
    refresh_token_prefix: prefix(second.refresh_token),
    new_access_token: second.access_token !== first.access_token,
    new_refresh_token: !!second.refresh_token && second.refresh_token !== first.refresh_token,
  }
  if (!second.refresh_token) {
    throw new Error('the refresh response has no refresh_token')
  }
  summary.api_status_after_refresh = await callAPI(cfg.api_url, second.access_token)

  // RFC 7009: the access token, then the refresh token (its whole family).
  await oauth.processRevocationResponse(
    await oauth.revocationRequest(as, client, clientAuth, second.access_token, {
      additionalParameters: { token_type_hint: 'access_token' },
      ...insecure,
    }),
  )
  summary.revoke_access = 'ok'
  summary.api_status_after_revoke = await callAPI(cfg.api_url, second.access_token)

  const inactive = await oauth.processIntrospectionResponse(
    as,
    client,
    await oauth.introspectionRequest(as, client, clientAuth, second.access_token, insecure),
  )
  summary.introspection_after_revoke = { active: inactive.active }

  await oauth.processRevocationResponse(
    await oauth.revocationRequest(as, client, clientAuth, second.refresh_token, {
      additionalParameters: { token_type_hint: 'refresh_token' },
      ...insecure,
    }),
  )
  summary.revoke_refresh = 'ok'
  try {
    await oauth.processRefreshTokenResponse(
      as,
      client,
      await oauth.refreshTokenGrantRequest(as, client, clientAuth, second.refresh_token, insecure),
    )
    summary.refresh_after_revoke = 'ok'
  } catch (err) {
    summary.refresh_after_revoke = oauthErrorCode(err)
  }
  summary.api_status_first_after_revoke = await callAPI(cfg.api_url, first.access_token)

  process.stdout.write(JSON.stringify(summary) + '\n')
}

// Keeps whole tokens out of error messages.
function redact(key, value) {
  if (typeof value === 'string' && /(^|_)(access_token|refresh_token|token|code)$/.test(key)) {
    return `${prefix(value)}...`
  }
  return value
}

function describe(err) {
  let msg = `${err?.name ?? 'Error'}: ${err?.message ?? err}`
  if (err?.code) msg += ` [${err.code}]`
  if (err instanceof oauth.ResponseBodyError) {
    msg += ` (HTTP ${err.status}, error ${err.error}, body ${JSON.stringify(err.cause, redact)})`
  } else if (err?.cause !== undefined) {
    let cause = err.cause
    if (cause instanceof Response) {
      cause = { status: cause.status, headers: Object.fromEntries(cause.headers) }
    } else if (cause instanceof URLSearchParams) {
      cause = Object.fromEntries(cause)
    }
    try {
      msg += ` (cause ${JSON.stringify(cause, redact)})`
    } catch {
      msg += ` (cause ${String(cause)})`
    }
  }
  return msg
}

main().catch((err) => {
  process.stderr.write(describe(err) + '\n')
  process.exit(1)
})
