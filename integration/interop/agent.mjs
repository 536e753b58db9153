// A generic client that knows nothing but an API's URL, as an AI agent
// or an MCP client does, built on openid-client: run against tokengate by
// integration/agents_test.go.
//
// Inputs, from the environment:
//   INTEROP_API_URL       the guarded API, which is also its resource identifier
//   INTEROP_REDIRECT_URI  a loopback redirect URI to register
//
// It calls the API without a token, follows resource_metadata in the 401
// to the protected resource metadata (RFC 9728, checked by oauth4webapi),
// registers itself with openid-client's own discovery and dynamic client
// registration (RFC 8414, RFC 7591), then runs the code flow with PKCE
// for the resource (RFC 8707) and calls the API.
//
// Protocol: one JSON line {"authorization_url": ...} on stdout; then the
// callback URL is read as one line from stdin; then one JSON line with
// the summary on stdout. Tokens never appear in the output, only their
// first characters. Any failure ends the process with a non-zero status
// and the error on stderr.

import * as client from 'openid-client'
import * as oauth from 'oauth4webapi'
import { createInterface } from 'node:readline'

function input(name) {
  const v = process.env[`INTEROP_${name}`]
  if (!v) throw new Error(`missing input INTEROP_${name}`)
  return v
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

const rpc = JSON.stringify({ jsonrpc: '2.0', method: 'initialize', id: 1 })

async function main() {
  const api = new URL(input('API_URL'))
  const redirectUri = input('REDIRECT_URI')
  const summary = {}

  // 1. Without a token: 401, and where to learn more (RFC 9728 5.1).
  const refused = await fetch(api, { method: 'POST', body: rpc, headers: { 'content-type': 'application/json' } })
  await refused.arrayBuffer()
  summary.unauthenticated_status = refused.status
  const challenge = refused.headers.get('www-authenticate') ?? ''
  const m = /resource_metadata="([^"]+)"/.exec(challenge)
  if (!m) throw new Error(`no resource_metadata in WWW-Authenticate: ${challenge}`)
  summary.resource_metadata = m[1]

  // 2. The protected resource metadata; oauth4webapi checks that its
  // resource is the API we called (RFC 9728 3.3).
  const rs = await oauth.processResourceDiscoveryResponse(api, await fetch(m[1]))
  summary.resource = rs.resource
  summary.scopes_supported = rs.scopes_supported ?? null
  const issuer = new URL(rs.authorization_servers[0])

  // 3. Discovery and registration, openid-client's own.
  const config = await client.dynamicClientRegistration(
    issuer,
    {
      client_name: 'openid-client agent',
      redirect_uris: [redirectUri],
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      scope: rs.scopes_supported.join(' '),
    },
    client.None(),
    { algorithm: 'oauth2', execute: [client.allowInsecureRequests] },
  )
  const registered = config.clientMetadata()
  summary.registration = {
    client_id: registered.client_id,
    token_endpoint_auth_method: registered.token_endpoint_auth_method,
    has_registration_access_token: typeof registered.registration_access_token === 'string',
    registration_client_uri: registered.registration_client_uri,
  }
  summary.registration_endpoint = config.serverMetadata().registration_endpoint

  // 4. Code flow with PKCE, for the resource.
  const verifier = client.randomPKCECodeVerifier()
  const state = client.randomState()
  const authorizationUrl = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: rs.scopes_supported.join(' '),
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    resource: rs.resource,
  })
  process.stdout.write(JSON.stringify({ authorization_url: authorizationUrl.href }) + '\n')
  const callback = new URL(await readLine())
  const tokens = await client.authorizationCodeGrant(
    config,
    callback,
    { pkceCodeVerifier: verifier, expectedState: state },
    { resource: rs.resource },
  )
  summary.token = { token_type: tokens.token_type, scope: tokens.scope ?? null, access_token_prefix: prefix(tokens.access_token) }

  // 5. The API, with the token.
  const ok = await client.fetchProtectedResource(config, tokens.access_token, api, 'POST', rpc, new Headers({ 'content-type': 'application/json' }))
  await ok.arrayBuffer()
  summary.api_status = ok.status

  // 6. A refresh for the same resource, and the API again.
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token, { resource: rs.resource })
  const again = await client.fetchProtectedResource(config, refreshed.access_token, api, 'POST', rpc, new Headers({ 'content-type': 'application/json' }))
  await again.arrayBuffer()
  summary.api_status_after_refresh = again.status

  // 7. Its registration, read back with the registration access token
  // (RFC 7592 2.1).
  const read = await fetch(registered.registration_client_uri, {
    headers: { authorization: `Bearer ${registered.registration_access_token}` },
  })
  const readBody = await read.json()
  summary.registration_read = { status: read.status, client_id: readBody.client_id ?? null, client_name: readBody.client_name ?? null }

  process.stdout.write(JSON.stringify(summary) + '\n')
}

function describe(err) {
  let msg = `${err?.name ?? 'Error'}: ${err?.message ?? err}`
  if (err?.code) msg += ` [${err.code}]`
  if (err?.error) msg += ` (error ${err.error}: ${err.error_description ?? ''})`
  if (err?.status) msg += ` (HTTP ${err.status})`
  return msg
}

main().catch((err) => {
  process.stderr.write(describe(err) + '\n')
  process.exit(1)
})
