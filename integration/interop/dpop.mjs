// A public OAuth 2.0 client using DPoP (RFC 9449) through oauth4webapi, an
// independent and strict implementation, run against tokengate by
// integration/interop_dpop_test.go.
//
// Inputs, from the environment (a JSON object given as the first argument
// overrides them, with the same names in lower case without the prefix):
//   INTEROP_ISSUER         the authorization server's issuer identifier
//   INTEROP_CLIENT_ID      a public client
//   INTEROP_REDIRECT_URI   a redirect URI registered for the client
//   INTEROP_SCOPE          the scope to ask for
//   INTEROP_API_URL        a guarded API route the scope gives access to
//   INTEROP_ALG            the DPoP key's JWS algorithm: ES256 (default)
//                          or RS256
//
// Protocol, as client.mjs's: one JSON line {"authorization_url": ...} on
// stdout; then the callback URL is read as one line from stdin; then one
// JSON line with the summary on stdout. Tokens never appear in the
// output, only their first characters. A refusal the flow expects is
// recorded in the summary; any other failure, including every validation
// error oauth4webapi raises, ends the process with a non-zero status and
// the error on stderr.

import * as oauth from 'oauth4webapi'
import { createInterface } from 'node:readline'

const insecure = { [oauth.allowInsecureRequests]: true }

function config() {
  const names = ['issuer', 'client_id', 'redirect_uri', 'scope', 'api_url', 'alg']
  const cfg = {}
  for (const n of names) {
    cfg[n] = process.env[`INTEROP_${n.toUpperCase()}`]
  }
  if (process.argv[2]) {
    Object.assign(cfg, JSON.parse(process.argv[2]))
  }
  cfg.alg ||= 'ES256'
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

function tokens(t) {
  return {
    token_type: t.token_type,
    expires_in: t.expires_in,
    scope: t.scope ?? null,
    access_token_prefix: prefix(t.access_token),
    refresh_token_prefix: prefix(t.refresh_token),
  }
}

// A protected resource request with a DPoP proof: the status, or the
// challenge oauth4webapi read from a refusal.
async function callAPI(url, accessToken, DPoP) {
  try {
    const res = await oauth.protectedResourceRequest(accessToken, 'GET', url, new Headers(), null, { DPoP, ...insecure })
    await res.arrayBuffer()
    return { status: res.status }
  } catch (err) {
    if (err instanceof oauth.WWWAuthenticateChallengeError) {
      await err.response.arrayBuffer()
      return {
        status: err.status,
        challenges: err.cause.map((c) => ({ scheme: c.scheme, error: c.parameters.error ?? null, algs: c.parameters.algs ?? null })),
      }
    }
    throw err
  }
}

// A token request oauth4webapi sends and reads: the response, or the
// error code of a refusal.
async function tokenRequest(request) {
  try {
    return { ok: await request() }
  } catch (err) {
    if (err instanceof oauth.ResponseBodyError) {
      return { error: err.error, status: err.status }
    }
    throw err
  }
}

async function main() {
  const cfg = config()
  const issuer = new URL(cfg.issuer)
  const api = new URL(cfg.api_url)
  const summary = { alg: cfg.alg }

  const as = await oauth.processDiscoveryResponse(
    issuer,
    await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }),
  )
  summary.dpop_signing_alg_values_supported = as.dpop_signing_alg_values_supported ?? null

  const client = { client_id: cfg.client_id }
  const clientAuth = oauth.None()
  const DPoP = oauth.DPoP(client, await oauth.generateKeyPair(cfg.alg))
  const jkt = await DPoP.calculateThumbprint()
  // Another key of the same client: its proofs are valid, but for no
  // token or refresh token of this flow.
  const otherDPoP = oauth.DPoP(client, await oauth.generateKeyPair(cfg.alg))

  const codeVerifier = oauth.generateRandomCodeVerifier()
  const state = oauth.generateRandomState()
  const authorizationUrl = new URL(as.authorization_endpoint)
  authorizationUrl.searchParams.set('client_id', client.client_id)
  authorizationUrl.searchParams.set('redirect_uri', cfg.redirect_uri)
  authorizationUrl.searchParams.set('response_type', 'code')
  authorizationUrl.searchParams.set('scope', cfg.scope)
  authorizationUrl.searchParams.set('state', state)
  authorizationUrl.searchParams.set('code_challenge', await oauth.calculatePKCECodeChallenge(codeVerifier))
  authorizationUrl.searchParams.set('code_challenge_method', 'S256')
  process.stdout.write(JSON.stringify({ authorization_url: authorizationUrl.href }) + '\n')

  const params = oauth.validateAuthResponse(as, client, new URL(await readLine()), state)

  // RFC 9449 5: the code exchange with a proof.
  const first = await oauth.processAuthorizationCodeResponse(
    as,
    client,
    await oauth.authorizationCodeGrantRequest(as, client, clientAuth, params, cfg.redirect_uri, codeVerifier, {
      DPoP,
      ...insecure,
    }),
  )
  summary.exchange = tokens(first)
  if (!first.refresh_token) {
    throw new Error('the token response has no refresh_token')
  }

  // RFC 9449 7: the bound token with a proof of its key, of another key,
  // and as a bearer token.
  summary.api = await callAPI(api, first.access_token, DPoP)
  summary.api_other_key = await callAPI(api, first.access_token, otherDPoP)
  const bearer = await fetch(api, { headers: { Authorization: `Bearer ${first.access_token}` } })
  await bearer.arrayBuffer()
  summary.api_as_bearer = { status: bearer.status, www_authenticate: bearer.headers.get('www-authenticate') }

  // RFC 9449 6.2: introspection names the key.
  const intro = await oauth.processIntrospectionResponse(
    as,
    client,
    await oauth.introspectionRequest(as, client, clientAuth, first.access_token, insecure),
  )
  summary.introspection = {
    active: intro.active,
    token_type: intro.token_type ?? null,
    cnf_jkt_is_key: intro.cnf?.jkt === jkt,
  }

  // RFC 9449 5: the public client's refresh token is bound to the key.
  const refreshWith = (options) => () =>
    oauth.refreshTokenGrantRequest(as, client, clientAuth, first.refresh_token, { ...options, ...insecure })
      .then((res) => oauth.processRefreshTokenResponse(as, client, res))
  summary.refresh_without_proof = await tokenRequest(refreshWith({}))
  summary.refresh_other_key = await tokenRequest(refreshWith({ DPoP: otherDPoP }))
  const second = (await tokenRequest(refreshWith({ DPoP }))).ok
  if (!second) {
    throw new Error('the refresh with the bound key was refused')
  }
  summary.refresh = { ...tokens(second), new_access_token: second.access_token !== first.access_token }
  summary.api_after_refresh = await callAPI(api, second.access_token, DPoP)

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
