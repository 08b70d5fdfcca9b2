// SPDX-License-Identifier: MIT
// oidc-provider (panva, OpenID Certified), configured as a test OP over TLS
// with the test certificates:
//   - clients: "confidential" (client_secret_basic), "public" (none: PKCE,
//     native), "short" (confidential; access and id tokens of SHORT seconds),
//     "es256" (id tokens signed ES256), "expiring" (device codes of 3 s);
//   - device flow, revocation, introspection, refresh token rotation on every
//     use (a reused refresh token is refused, and its grant revoked);
//   - accounts alice and bob;
//   - interactions of our own (login and consent forms, no browser), which a
//     scripted "user" drives through the OP's real endpoints:
//       POST /__user/device    {"user_code", "login", "deny"}: enters the code
//                              at the verification URI, logs in, consents
//                              (with "after_first_poll": once the code is polled)
//       POST /__user/authorize {"url", "login", "deny"}: follows an
//                              authorization URL to the redirect it ends in:
//                              {"location"}
//   - clients "tamper-MODE" whose id tokens are all rewritten one way: a bad
//     "signature", another "aud", "iss" or "sub", "expired", signed by an
//     "unknown-kid", alg "none", "hs256" keyed with the OP's public key;
//   - test control: POST /__test/introspect {"token"} (as "confidential"),
//     POST /__test/revoke {"token", "client_id"}, POST /__test/tamper {"mode"}
//     rewrites the id_token of every token answer that way ("" off),
//     POST /__test/policy {"p"}: a policy router in front of the OP: every
//     endpoint in the discovery document names the policy in its query
//     ("?p=NAME"; RFC 6749 3.1 and 3.2 let an endpoint have a query), and a
//     request to one of them without it, or with it twice, is refused 400
//     before the OP sees it ("" off). The discovery document stays where
//     OpenID Connect Discovery 4 puts it, at the issuer,
//     POST /__test/unavailable {"count"}: the token endpoint's next COUNT
//     requests are answered 503 before the OP sees them,
//     GET /__test/stats: {"token_requests", "jwks_requests", "discovery_requests", "reuse", "polls":
//     {client: [ms of each device-code poll]}}; client "slow"'s first poll of
//     each code is answered slow_down (a rate policy in front of the OP), and
//     client "flaky"'s 503 (a server in trouble); client "unknown-lifetime"'s
//     token answers have no expires_in.
//
//   node test/peers/oidc.mjs --state-dir DIR [--stdin-lifeline] [--short SECONDS]
//
// Prints one JSON line when ready: {"port", "ca", "issuer", "secret"}.

import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import Provider from 'oidc-provider';
import { ensureCertificates } from '../server/certs.mjs';
import { peerOptions, stopWith } from './peer.mjs';

const opts = peerOptions('oidc.mjs', { short: 6 });
// stdout carries the ready line only (the suite closes it after reading);
// the provider's notices go to stderr
console.log = console.info = (...args) => process.stderr.write(`${args.join(' ')}\n`);

const dir = path.resolve(opts.stateDir);
ensureCertificates(dir);
const ca = fs.readFileSync(path.join(dir, 'ca.pem'));
const SECRET = 'confidential-secret-0123456789';
// the last is the GTK sample's own scheme (its browser sign-in, test/gtk)
const REDIRECTS = ['http://127.0.0.1/callback', 'com.example.authloop:/callback', 'org.authloop.loginsample:/callback'];
const TAMPER_MODES = ['signature', 'aud', 'iss', 'expired', 'unknown-kid', 'none', 'hs256', 'sub', 'nonce'];

// ---- keys: the OP's (RS256 and ES256), and one it does not publish --------------
const pair = (type, o, kid, alg) => {
  const k = crypto.generateKeyPairSync(type, o);
  return { kid, alg, priv: k.privateKey, jwk: { ...k.privateKey.export({ format: 'jwk' }), kid, alg, use: 'sig' } };
};
const rsa = pair('rsa', { modulusLength: 2048 }, 'rsa-1', 'RS256');
const ec = pair('ec', { namedCurve: 'P-256' }, 'ec-1', 'ES256');
const stranger = pair('rsa', { modulusLength: 2048 }, 'not-published', 'RS256');

// ---- the server, then the provider with its issuer ------------------------------
const stats = { token_requests: 0, jwks_requests: 0, discovery_requests: 0, reuse: 0, polls: {} };
const slowed = new Set(); // device codes of client "slow" told slow_down once
const afterPoll = new Map(); // user code -> a scripted user who acts once its code is polled
const normal = (code) => String(code).replace(/[^0-9a-z]/gi, '').toUpperCase();
let tamper = '';
let policy = ''; // POST /__test/policy
let unavailable = 0; // POST /__test/unavailable: the token endpoint's next N requests
const policyPaths = new Set(); // the endpoints' paths discovery gave out with it
let handler = null;
const server = https.createServer({
  key: fs.readFileSync(path.join(dir, 'server.key')),
  cert: fs.readFileSync(path.join(dir, 'server.pem')),
}, (req, res) => handler(req, res));
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const port = server.address().port;
const issuer = `https://127.0.0.1:${port}`;

const accounts = {
  alice: { sub: 'alice', name: 'Alice Liddell', email: 'alice@example.test', email_verified: true },
  bob: { sub: 'bob', name: 'Bob', email: 'bob@example.test', email_verified: false },
};
const grants = ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code'];
const shortTtl = (ctx, token, client) => (client && client.clientId === 'short' ? opts.short : 3600);

const provider = new Provider(issuer, {
  clients: [
    { client_id: 'confidential', client_secret: SECRET, grant_types: grants, redirect_uris: REDIRECTS.slice(0, 1),
      response_types: ['code'], token_endpoint_auth_method: 'client_secret_basic', application_type: 'native' },
    { client_id: 'public', grant_types: grants, redirect_uris: REDIRECTS, response_types: ['code'],
      token_endpoint_auth_method: 'none', application_type: 'native' },
    { client_id: 'short', client_secret: SECRET, grant_types: grants, redirect_uris: REDIRECTS.slice(0, 1),
      response_types: ['code'], token_endpoint_auth_method: 'client_secret_basic', application_type: 'native' },
    { client_id: 'es256', grant_types: grants, redirect_uris: REDIRECTS, response_types: ['code'],
      token_endpoint_auth_method: 'none', application_type: 'native', id_token_signed_response_alg: 'ES256' },
    { client_id: 'expiring', grant_types: grants, redirect_uris: REDIRECTS, response_types: ['code'],
      token_endpoint_auth_method: 'none', application_type: 'native' },
    { client_id: 'slow', grant_types: grants, redirect_uris: REDIRECTS, response_types: ['code'],
      token_endpoint_auth_method: 'none', application_type: 'native' },
    { client_id: 'unknown-lifetime', grant_types: grants, redirect_uris: REDIRECTS, response_types: ['code'],
      token_endpoint_auth_method: 'none', application_type: 'native' },
    { client_id: 'flaky', grant_types: grants, redirect_uris: REDIRECTS, response_types: ['code'],
      token_endpoint_auth_method: 'none', application_type: 'native' },
    // "tamper-MODE": every id token it gets is rewritten that way
    ...TAMPER_MODES.map((mode) => ({ client_id: `tamper-${mode}`, grant_types: grants, redirect_uris: REDIRECTS,
      response_types: ['code'], token_endpoint_auth_method: 'none', application_type: 'native' })),
  ],
  // the scopes' claims in the id token too (OpenID Connect Core 5.4 lets an
  // OP put them there; the user object is the id token's claims)
  conformIdTokenClaims: false,
  jwks: { keys: [rsa.jwk, ec.jwk] },
  findAccount: async (ctx, id) => (accounts[id] ? { accountId: id, claims: async () => accounts[id] } : undefined),
  claims: { openid: ['sub'], profile: ['name'], email: ['email', 'email_verified'] },
  scopes: ['openid', 'offline_access', 'profile', 'email'],
  features: {
    devInteractions: { enabled: false },
    deviceFlow: { enabled: true },
    revocation: { enabled: true },
    introspection: { enabled: true, allowedPolicy: async () => true },
    rpInitiatedLogout: { enabled: true },
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  rotateRefreshToken: () => true,
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  ttl: {
    AccessToken: shortTtl,
    IdToken: shortTtl,
    DeviceCode: (ctx, token, client) => (client && client.clientId === 'expiring' ? 3 : 600),
    Grant: 3600,
    Interaction: 600,
    Session: 3600,
    RefreshToken: 86400,
    AuthorizationCode: 60,
  },
  pkce: { required: () => true },
  cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
});

// ---- id_token tampering (test control) ------------------------------------------
const b64 = (b) => Buffer.from(b).toString('base64url');
function resign(token, change, key = rsa, headerChange = {}) {
  const [h, p] = token.split('.');
  const header = { ...JSON.parse(Buffer.from(h, 'base64url')), ...headerChange };
  const body = { ...JSON.parse(Buffer.from(p, 'base64url')), ...change };
  if (!headerChange.alg) {
    header.alg = key.alg;
    header.kid = key.kid;
  }
  const input = `${b64(JSON.stringify(header))}.${b64(JSON.stringify(body))}`;
  let sig;
  if (header.alg === 'none') sig = Buffer.alloc(0);
  else if (header.alg === 'HS256') sig = crypto.createHmac('sha256', rsa.priv.export({ format: 'pem', type: 'pkcs1' }).toString()).update(input).digest();
  else if (key.alg === 'ES256') sig = crypto.sign('sha256', Buffer.from(input), { key: key.priv, dsaEncoding: 'ieee-p1363' });
  else sig = crypto.sign('sha256', Buffer.from(input), key.priv);
  return `${input}.${b64(sig)}`;
}
function tampered(token, mode) {
  switch (mode) {
    case 'signature': { const [h, p, s] = token.split('.'); return `${h}.${p}.${s.startsWith('A') ? 'B' : 'A'}${s.slice(1)}`; }
    case 'aud': return resign(token, { aud: 'someone-else' });
    case 'nonce': return resign(token, { nonce: 'not-the-one-sent' });
    case 'iss': return resign(token, { iss: 'https://evil.example' });
    case 'sub': return resign(token, { sub: 'mallory' });
    case 'expired': return resign(token, { iat: Math.floor(Date.now() / 1000) - 7200, exp: Math.floor(Date.now() / 1000) - 3600 });
    case 'unknown-kid': return resign(token, {}, stranger);
    case 'none': return resign(token, {}, rsa, { alg: 'none', kid: undefined });
    case 'hs256': return resign(token, {}, rsa, { alg: 'HS256', kid: rsa.kid });
    default: return token;
  }
}
provider.use(async (ctx, next) => {
  await next();
  // the policy router's discovery: each endpoint with the policy in its query
  if (policy && ctx.path === '/.well-known/openid-configuration' && ctx.status === 200 && ctx.body) {
    const doc = { ...ctx.body };
    for (const [k, v] of Object.entries(doc)) {
      if ((k.endsWith('_endpoint') || k === 'jwks_uri') && typeof v === 'string') {
        policyPaths.add(new URL(v).pathname);
        doc[k] = `${v}?p=${policy}`;
      }
    }
    ctx.body = doc;
  }
});
provider.use(async (ctx, next) => {
  if (ctx.path === '/token') stats.token_requests++;
  if (ctx.path === '/jwks') stats.jwks_requests++;
  if (ctx.path === '/.well-known/openid-configuration') stats.discovery_requests++;
  await next();
  // the device answers say "interval": 1 (RFC 8628 3.2 lets an OP choose it;
  // oidc-provider sends none, which means 5 s): the suite's logins wait 1 s
  if (ctx.path === '/device/auth' && ctx.status === 200 && ctx.body && typeof ctx.body === 'object') {
    ctx.body = { ...ctx.body, interval: 1 };
  }
  const client = ctx.oidc && ctx.oidc.client && ctx.oidc.client.clientId;
  if (ctx.path === '/token' && client && ctx.oidc.params && ctx.oidc.params.device_code) {
    (stats.polls[client] ||= []).push(Date.now()); // when each poll came
    if (afterPoll.size) { // a user waiting for this code's first poll goes now
      const code = await provider.DeviceCode.find(ctx.oidc.params.device_code, { ignoreExpiration: true });
      const act = code && afterPoll.get(normal(code.userCode));
      if (act) {
        afterPoll.delete(normal(code.userCode));
        setImmediate(act);
      }
    }
    // a rate policy in front of the OP: client "slow"'s first poll of a code
    // is told slow_down (RFC 8628 3.5) instead of authorization_pending
    if (client === 'slow' && ctx.status === 400 && ctx.body && ctx.body.error === 'authorization_pending' &&
        !slowed.has(ctx.oidc.params.device_code)) {
      slowed.add(ctx.oidc.params.device_code);
      ctx.body = { error: 'slow_down', error_description: 'you are polling too quickly' };
    }
    // and client "flaky"'s first poll meets a server in trouble: 503
    if (client === 'flaky' && ctx.status === 400 && ctx.body && ctx.body.error === 'authorization_pending' &&
        !slowed.has(ctx.oidc.params.device_code)) {
      slowed.add(ctx.oidc.params.device_code);
      ctx.status = 503;
      ctx.body = { error: 'temporarily_unavailable', error_description: 'try again later' };
    }
  }
  // client "unknown-lifetime": its token answers say no expires_in (RFC 6749
  // 5.1 only recommends it), and its access tokens are opaque
  if (ctx.path === '/token' && client === 'unknown-lifetime' && ctx.body && typeof ctx.body === 'object' &&
      ctx.body.access_token) {
    const { expires_in: _, ...rest } = ctx.body;
    ctx.body = rest;
  }
  const mode = tamper || (client && client.startsWith('tamper-') ? client.slice(7) : '');
  if (ctx.path === '/token' && mode && ctx.body && typeof ctx.body === 'object' && ctx.body.id_token) {
    ctx.body = { ...ctx.body, id_token: tampered(ctx.body.id_token, mode) };
  }
  if (ctx.path === '/token' && ctx.status === 400 && ctx.body && /already used|consumed/i.test(ctx.body.error_description || '')) stats.reuse++;
});

// ---- our interactions: login and consent, as forms -------------------------------
// usable in a browser too (scripts/oidc-demo.sh): a visible field for the
// login, a button for each form
const form = (id, action, fields, button) => `<form id="${id}" method="post" action="${action}">${
  Object.entries(fields).map(([k, v]) => `<input type="text" name="${k}" value="${v}" placeholder="alice or bob"/>`).join('')
}<button type="submit">${button}</button></form>`;

async function body(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  return Buffer.concat(chunks).toString();
}

async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (req.method === 'GET') {
    res.setHeader('Content-Type', 'text/html');
    if (details.prompt.name === 'login') res.end(form('login', `/interaction/${uid}/login`, { login: '' }, 'Sign in'));
    else res.end(form('confirm', `/interaction/${uid}/confirm`, {}, 'Allow') + form('abort', `/interaction/${uid}/abort`, {}, 'Deny'));
    return;
  }
  const params = new URLSearchParams(await body(req));
  if (action === 'login') {
    const login = params.get('login');
    const result = accounts[login] ? { login: { accountId: login } } : { error: 'access_denied', error_description: 'no such user' };
    await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
  } else if (action === 'confirm') {
    const { prompt: { details: d }, params: p, session: { accountId } } = details;
    const grant = details.grantId ? await provider.Grant.find(details.grantId) : new provider.Grant({ accountId, clientId: p.client_id });
    if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
    if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
    if (d.missingResourceScopes) for (const [i, s] of Object.entries(d.missingResourceScopes)) grant.addResourceScope(i, s.join(' '));
    const grantId = await grant.save();
    await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  } else {
    await provider.interactionFinished(req, res, { error: 'access_denied', error_description: 'the user said no' }, { mergeWithLastSubmission: false });
  }
}

// ---- the scripted user: a cookie jar, forms, redirects ---------------------------
function browser() {
  const jar = new Map();
  const request = (method, url, data) => new Promise((resolve, reject) => {
    const u = new URL(url, issuer);
    const headers = { Cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') };
    if (data !== undefined) headers['Content-Type'] = 'application/x-www-form-urlencoded';
    const r = https.request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method, ca, headers }, (resp) => {
      for (const c of resp.headers['set-cookie'] || []) {
        const [pair] = c.split(';');
        const at = pair.indexOf('=');
        jar.set(pair.slice(0, at), pair.slice(at + 1));
      }
      let text = '';
      resp.on('data', (d) => { text += d; });
      resp.on('end', () => resolve({ status: resp.statusCode, location: resp.headers.location, text }));
    });
    r.on('error', reject);
    r.end(data === undefined ? undefined : new URLSearchParams(data).toString());
  });
  // Follows redirects until one leaves the OP (the app's redirect URI) or a page comes.
  async function go(method, url, data) {
    let r = await request(method, url, data);
    for (let hops = 0; r.location && hops < 20; hops++) {
      const next = new URL(r.location, url);
      if (next.origin !== issuer) return { location: r.location };
      url = next.href;
      r = await request('GET', url);
    }
    return { page: r.text, status: r.status, url };
  }
  // The form with that id (or the first) on a page: its action and hidden fields.
  function formOf(page, id) {
    const re = /<form([^>]*)>([\s\S]*?)<\/form>/g;
    for (let m; (m = re.exec(page));) {
      const attrs = m[1];
      const fid = /id="([^"]*)"/.exec(attrs)?.[1];
      if (id && fid !== id) continue;
      const action = /action="([^"]*)"/.exec(attrs)?.[1];
      const fields = {};
      for (const i of m[2].matchAll(/<input[^>]*name="([^"]*)"[^>]*value="([^"]*)"[^>]*>/g)) fields[i[1]] = i[2];
      for (const i of m[2].matchAll(/<input[^>]*name="([^"]*)"(?![^>]*value=)[^>]*>/g)) fields[i[1]] ??= '';
      return { action, fields };
    }
    return null;
  }
  return { go, formOf };
}

// Drives the pages of an interaction until it leaves the OP or ends on a page
// without a form of ours (the device flow's success or error page).
async function user({ start, login, deny, userCode }) {
  const b = browser();
  let r = await b.go('GET', new URL(start, issuer).href);
  for (let steps = 0; steps < 12 && r.page !== undefined; steps++) {
    const f = b.formOf(r.page, 'op.deviceInputForm') || b.formOf(r.page, 'op.deviceConfirmForm') ||
      b.formOf(r.page, 'login') || b.formOf(r.page, deny ? 'abort' : 'confirm');
    if (!f) return { page: r.page };
    if ('user_code' in f.fields && userCode) f.fields.user_code = userCode;
    if ('login' in f.fields) f.fields.login = login;
    if (deny && /deviceConfirmForm/.test(r.page) && f.fields.abort === undefined && !('user_code' in f.fields)) f.fields.abort = 'yes';
    r = await b.go('POST', new URL(f.action, r.url).href, f.fields);
  }
  return r.location ? { location: r.location } : { page: r.page };
}

async function call(urlPath, fields, auth) {
  return new Promise((resolve, reject) => {
    const headers = { 'Content-Type': 'application/x-www-form-urlencoded' };
    if (auth) headers.Authorization = `Basic ${Buffer.from(auth).toString('base64')}`;
    const p = policy ? `?p=${policy}` : '';
    const r = https.request({ host: '127.0.0.1', port, path: urlPath + p, method: 'POST', ca, headers }, (resp) => {
      let text = '';
      resp.on('data', (d) => { text += d; });
      resp.on('end', () => resolve({ status: resp.statusCode, json: text ? JSON.parse(text) : null }));
    });
    r.on('error', reject);
    r.end(new URLSearchParams(fields).toString());
  });
}

const callback = provider.callback();
const send = (res, status, obj) => {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(obj));
};
handler = async (req, res) => {
  try {
    const u = new URL(req.url, issuer);
    const m = /^\/interaction\/([^/]+)(?:\/(login|confirm|abort))?$/.exec(u.pathname);
    if (m) return await interaction(req, res, m[1], m[2]);
    if (u.pathname.startsWith('/__user/') || u.pathname.startsWith('/__test/')) {
      const args = req.method === 'POST' ? JSON.parse((await body(req)) || '{}') : {};
      switch (u.pathname) {
        case '/__user/device':
          if (args.after_first_poll) { // answered now; the user acts after the code's first poll
            afterPoll.set(normal(args.user_code), () => user({ start: '/device', login: args.login, deny: args.deny, userCode: args.user_code }));
            return send(res, 200, { page: 'later' });
          }
          return send(res, 200, await user({ start: '/device', login: args.login, deny: args.deny, userCode: args.user_code }));
        case '/__user/authorize':
          return send(res, 200, await user({ start: args.url, login: args.login, deny: args.deny }));
        case '/__test/introspect':
          return send(res, 200, (await call('/token/introspection', { token: args.token }, `confidential:${SECRET}`)).json);
        case '/__test/revoke': {
          const auth = args.client_id === 'confidential' || args.client_id === 'short' ? `${args.client_id}:${SECRET}` : undefined;
          const fields = auth ? { token: args.token } : { token: args.token, client_id: args.client_id };
          return send(res, 200, { status: (await call('/token/revocation', fields, auth)).status });
        }
        case '/__test/tamper':
          tamper = args.mode || '';
          return send(res, 200, { tamper });
        case '/__test/unavailable':
          unavailable = Number(args.count) || 0;
          return send(res, 200, { unavailable });
        case '/__test/policy':
          policy = args.p || '';
          policyPaths.clear();
          return send(res, 200, { policy });
        case '/__test/stats':
          return send(res, 200, stats);
        default:
          return send(res, 404, { error: 'no such control' });
      }
    }
    if (unavailable > 0 && u.pathname === '/token') {
      // a proxy in front of the OP in trouble: the OP never sees the request
      unavailable--;
      stats.unavailable = (stats.unavailable || 0) + 1;
      req.resume();
      return send(res, 503, { error: 'temporarily_unavailable', error_description: 'try again later' });
    }
    if (policy && policyPaths.has(u.pathname)) {
      // the router takes its own parameter; the OP behind it never sees it
      const named = u.searchParams.getAll('p');
      if (named.length !== 1 || named[0] !== policy) {
        stats.policy_refused = (stats.policy_refused || 0) + 1;
        return send(res, 400, { error: 'invalid_request', error_description: 'the request names no policy' });
      }
      u.searchParams.delete('p');
      req.url = u.pathname + u.search;
      stats.policy_named = (stats.policy_named || 0) + 1;
    }
    return callback(req, res);
  } catch (e) {
    return send(res, 500, { error: 'server_error', error_description: String(e && e.stack || e) });
  }
};

process.stdout.write(`${JSON.stringify({ port, ca: path.join(dir, 'ca.pem'), issuer, secret: SECRET })}\n`);

stopWith(server, opts.lifeline);
