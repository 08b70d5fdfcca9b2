// SPDX-License-Identifier: MIT
// The authloop reference server: HTTPS on loopback, Node.js built-in modules
// and ms (the duration parser Kuzzle itself uses). It speaks the dialects of docs/protocol.md with real credential
// checks and real expiry, plus a test-control API under /__test/
// (docs/test-server.md).
//
//   node test/server/server.mjs --port 0 --state-dir DIR [--token-ttl SECONDS] [--code-ttl SECONDS]
//                               [--host 127.0.0.1] [--stdin-lifeline] [--keep-alive-ms MS]
//                               [--kuzzle-keep-alive] [--plain] [--http2]
//
// Prints one JSON line when ready: {"port": N, "ca": "DIR/ca.pem"}.

import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import path from 'node:path';
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import ms from 'ms';
import { ensureCertificates } from './certs.mjs';

// what the benches ask the stats for (--bench-probe): garbage collection time and
// event-loop delay; off otherwise (its timer would wake the server 100 times a second)
const benchProbe = { gcMs: 0, delay: null };
function startBenchProbe() {
  benchProbe.delay = monitorEventLoopDelay({ resolution: 10 });
  benchProbe.delay.enable();
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) benchProbe.gcMs += e.duration;
  }).observe({ entryTypes: ['gc'] });
}

const MAX_BODY = 64 * 1024;

function parseArgs(argv) {
  const opts = { port: 0, host: '127.0.0.1', stateDir: null, tokenTtl: 3600, codeTtl: 60, lifeline: false, keepAliveMs: 5000,
    kuzzleKeepAlive: false };
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--port') opts.port = Number(next());
    else if (a === '--host') opts.host = next();
    else if (a === '--state-dir') opts.stateDir = next();
    else if (a === '--token-ttl') opts.tokenTtl = Number(next());
    else if (a === '--code-ttl') opts.codeTtl = Number(next()); // benchmarks mint codes ahead
    else if (a === '--stdin-lifeline') opts.lifeline = true;
    else if (a === '--keep-alive-ms') opts.keepAliveMs = Number(next());
    // Kuzzle closes every HTTP connection; benchmarks keep them, to measure authloop, not TLS
    else if (a === '--kuzzle-keep-alive') opts.kuzzleKeepAlive = true;
    else if (a === '--bench-probe') startBenchProbe(); // GC time and loop delay in the stats
    // plain HTTP instead of TLS, for benchmarks that measure the client without TLS
    else if (a === '--plain') opts.plain = true;
    // HTTP/2 (with HTTP/1.1 for clients that do not offer it): gateway routes only
    else if (a === '--http2') opts.http2 = true;
    else throw new Error(`unknown argument ${a}`);
  }
  if (!opts.stateDir) throw new Error('--state-dir DIR is required');
  if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) throw new Error('bad --port');
  if (!(opts.tokenTtl > 0)) throw new Error('bad --token-ttl');
  if (!(opts.codeTtl > 0)) throw new Error('bad --code-ttl');
  return opts;
}

// ---- helpers -------------------------------------------------------------------

const b64url = (buf) => Buffer.from(buf).toString('base64url');
const randomToken = (bytes = 32) => b64url(crypto.randomBytes(bytes));
const nowS = () => Math.floor(Date.now() / 1000);

function signJwt(secret, claims) {
  const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64url(JSON.stringify(claims));
  const sig = crypto.createHmac('sha256', secret).update(`${head}.${body}`).digest();
  return `${head}.${body}.${b64url(sig)}`;
}

// The claims of a jwt signed with secret, or null (a forged or mangled one).
function verifyJwt(secret, jwt) {
  const parts = String(jwt).split('.');
  if (parts.length !== 3) return null;
  const sig = crypto.createHmac('sha256', secret).update(`${parts[0]}.${parts[1]}`).digest();
  const got = Buffer.from(parts[2], 'base64url');
  if (got.length !== sig.length || !crypto.timingSafeEqual(got, sig)) return null;
  try { return JSON.parse(Buffer.from(parts[1], 'base64url').toString()); } catch { return null; }
}

function sendJson(res, status, obj, headers = {}) {
  if (res.destroyed || res.headersSent) return;
  const body = JSON.stringify(obj);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(Object.assign(new Error('body too large'), { status: 413 }));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function parseJsonBody(text) {
  if (text === '') return {};
  try {
    const v = JSON.parse(text);
    return v && typeof v === 'object' && !Array.isArray(v) ? v : null;
  } catch {
    return null;
  }
}

// a Kuzzle route: its requests are read as Kuzzle reads them (Kuzzle.dispatch)
function kz(handler) {
  handler.kuzzle = true;
  return handler;
}

// a path segment as text; a bad %-escape is kept as it came (a name no one has)
function decoded(segment) {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

// a known user by a name from the network: an own key, never Object's
function own(table, name) {
  return typeof name === 'string' && Object.hasOwn(table, name) ? table[name] : undefined;
}

function bearer(req) {
  const m = /^Bearer (\S+)$/.exec(req.headers.authorization || '');
  return m ? m[1] : null;
}

// ---- the gateway dialect --------------------------------------------------------

class Gateway {
  constructor(state) {
    this.s = state;
    this.codes = new Map(); // code -> {userId, expiresAt, ttl}
    this.access = new Map(); // access token -> {userId, expiresAt, refreshToken}
    this.refresh = new Map(); // refresh token -> {userId, ttl, accessToken}
    this.rotated = new Set(); // refresh tokens replaced by rotation
    this.rotate = false;
    this.jtis = new Map(); // iss + jti -> exp (s): pre-auth bearers already used
  }

  // The public key registered for a backend: DIR/clients/<clientId>.pem.
  clientKey(clientId) {
    if (typeof clientId !== 'string' || !/^[A-Za-z0-9._-]{1,128}$/.test(clientId)) return null;
    try {
      return crypto.createPublicKey(fs.readFileSync(path.join(this.s.opts.stateDir, 'clients', `${clientId}.pem`)));
    } catch {
      return null;
    }
  }

  // Checks a pre-auth bearer for real; returns null or [code, name, message].
  checkBearer(req) {
    const bad = (message) => [4010, 'InvalidBearer', message];
    const tok = bearer(req);
    if (!tok) return bad('Missing bearer token');
    const parts = tok.split('.');
    if (parts.length !== 3) return bad('The bearer is not a signed JWT');
    let header;
    let claims;
    try {
      header = JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8'));
      claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
    } catch {
      return bad('The bearer is not a signed JWT');
    }
    if (!claims || typeof claims !== 'object') return bad('The bearer has no claims');
    const wantType = { RS256: 'rsa', ES256: 'ec' }[header.alg];
    if (!wantType) return bad(`Unsupported alg ${header.alg}`);
    const key = this.clientKey(claims.iss);
    if (!key) return bad('Unknown client (iss)');
    if (key.asymmetricKeyType !== wantType) return bad(`alg ${header.alg} does not match the registered key`);
    const ok = crypto.verify('sha256', Buffer.from(`${parts[0]}.${parts[1]}`),
      wantType === 'ec' ? { key, dsaEncoding: 'ieee-p1363' } : key, Buffer.from(parts[2], 'base64url'));
    if (!ok) return bad('Bearer signature is invalid');
    if (claims.aud !== `https://${req.headers.host}`)
      return [4014, 'InvalidAudience', `Bearer audience must be https://${req.headers.host}`];
    const now = Date.now() / 1000;
    if (!Number.isInteger(claims.iat) || !Number.isInteger(claims.exp)) return bad('iat and exp are required');
    if (claims.exp <= now) return [4011, 'BearerExpired', 'Bearer expired'];
    if (claims.iat > now + 60) return [4012, 'BearerNotYetValid', 'Bearer issued in the future'];
    if (claims.exp - claims.iat > 300)
      return [4013, 'BearerLifetimeTooLong', 'Bearer lifetime exceeds 300 seconds'];
    if (typeof claims.jti !== 'string' || claims.jti === '') return bad('jti is required');
    for (const [k, exp] of this.jtis) if (exp < now) this.jtis.delete(k);
    const seen = `${claims.iss}\n${claims.jti}`;
    if (this.jtis.has(seen)) return [4015, 'ReplayedBearer', 'Bearer already used (replayed jti)'];
    this.jtis.set(seen, claims.exp);
    return null;
  }

  preauth(req, res, body) {
    const err = this.checkBearer(req);
    if (err) return Gateway.error(res, 401, ...err);
    if (typeof body.userId !== 'string' || body.userId === '')
      return Gateway.error(res, 400, 4000, 'BadRequest', 'userId is required');
    this.s.stats.preauthAccepted++;
    sendJson(res, 200, { authorizationCode: this.mintCode(body.userId) });
  }

  static error(res, status, code, name, message) {
    sendJson(res, status, { error: { code, name, message } });
  }

  user(userId) {
    return {
      id: userId,
      tenantId: 'tenant-1',
      subscriptionId: `sub-${userId}`,
      name: `User ${userId}`,
      email: `${userId}@example.test`,
      country: 'MY',
      preferredLanguage: 'en',
      referenceId: `ref-${userId}`,
      claims: { role: 'member' },
      couponId: null,
      codeId: null,
    };
  }

  mintCode(userId, ttl) {
    const code = randomToken(24);
    this.codes.set(code, { userId, expiresAt: Date.now() + this.s.opts.codeTtl * 1000, ttl });
    return code;
  }

  issueTokens(userId, refreshToken, ttl) {
    const iat = nowS();
    const u = this.user(userId);
    const base = { sub: userId, iss: 'authloop-reference', iat, exp: iat + ttl };
    const accessToken = signJwt(this.s.secret, { ...base, token_use: 'access', jti: randomToken(12) });
    const idToken = signJwt(this.s.secret, { ...base, token_use: 'id', name: u.name, email: u.email });
    this.access.set(accessToken, { userId, expiresAt: Date.now() + ttl * 1000, refreshToken });
    return { accessToken, idToken, expiresIn: ttl };
  }

  // The access token of a request, if it is live.
  authenticate(req) {
    const tok = bearer(req);
    const entry = tok && this.access.get(tok);
    return entry && entry.expiresAt >= Date.now() ? { tok, entry } : null;
  }

  revokeUser(userId) {
    let n = 0;
    for (const [rt, e] of this.refresh) {
      if (e.userId === userId) {
        this.refresh.delete(rt);
        n++;
      }
    }
    return n;
  }

  login(req, res, body) {
    const code = body.authorizationCode;
    if (typeof code !== 'string' || code === '')
      return Gateway.error(res, 400, 4000, 'BadRequest', 'authorizationCode is required');
    const entry = this.codes.get(code);
    this.codes.delete(code); // one use, whatever happens
    if (!entry || entry.expiresAt < Date.now())
      return Gateway.error(res, 401, 4003, 'InvalidAuthorizationCode',
        'Authorization code is invalid, expired or already used');
    const refreshToken = randomToken(48);
    const ttl = entry.ttl || this.s.opts.tokenTtl;
    const t = this.issueTokens(entry.userId, refreshToken, ttl);
    this.refresh.set(refreshToken, { userId: entry.userId, ttl, accessToken: t.accessToken });
    sendJson(res, 200, { user: this.user(entry.userId), accessToken: t.accessToken, idToken: t.idToken,
      refreshToken, expiresIn: t.expiresIn });
  }

  refreshTokens(req, res, body) {
    const rt = body.refreshToken;
    if (typeof rt !== 'string' || rt === '')
      return Gateway.error(res, 400, 4000, 'BadRequest', 'refreshToken is required');
    const entry = this.refresh.get(rt);
    if (!entry) {
      if (this.rotated.has(rt)) this.s.stats.rotatedReuse++;
      return Gateway.error(res, 401, 4009, 'InvalidRefreshToken', 'Refresh token is invalid or revoked');
    }
    const old = this.access.get(entry.accessToken);
    if (old && old.expiresAt >= Date.now()) this.s.stats.refreshWhileValid++;
    else this.s.stats.refreshAfterExpiry++;
    let next = rt;
    if (this.rotate) {
      next = randomToken(48);
      this.refresh.delete(rt);
      this.rotated.add(rt);
    }
    const t = this.issueTokens(entry.userId, next, entry.ttl);
    this.refresh.set(next, { ...entry, accessToken: t.accessToken });
    sendJson(res, 200, this.rotate ? { ...t, refreshToken: next } : t);
  }

  me(req, res) {
    const a = this.authenticate(req);
    if (!a) return Gateway.error(res, 401, 4001, 'Unauthorized', 'Missing or invalid access token');
    sendJson(res, 200, { user: this.user(a.entry.userId) });
  }

  echo(req, res, body) {
    const a = this.authenticate(req);
    if (!a) return Gateway.error(res, 401, 4001, 'Unauthorized', 'Missing or invalid access token');
    sendJson(res, 200, { userId: a.entry.userId, echo: body });
  }

  logout(req, res) {
    const tok = bearer(req);
    const entry = tok && this.access.get(tok);
    if (!entry || entry.expiresAt < Date.now())
      return Gateway.error(res, 401, 4001, 'Unauthorized', 'Missing or invalid access token');
    this.access.delete(tok);
    this.refresh.delete(entry.refreshToken);
    res.writeHead(204).end();
  }
}

// ---- Kuzzle v2 (auth controller over HTTP) ----------------------------------------
// Modelled on kuzzleio/kuzzle 2.x (v2.56.0 unless noted); docs/test-server.md
// lists each behaviour with the file it comes from.

// lib/kerror/codes/{2-api,3-network,4-plugin,7-security}.json: [status, id, code, message]
const KUZZLE_ERRORS = {
  bad_credentials: [401, 'plugin.strategy.missing_user', 67305492, 'wrong username or password'],
  unknown_strategy: [400, 'security.credentials.unknown_strategy', 117571585, 'Unknown authentication strategy "%s"'],
  invalid_argument: [400, 'api.assert.invalid_argument', 33619970, 'Invalid argument "expiresIn". Expected: a number of milliseconds, or a parsable timespan string'],
  ttl_exceeded: [400, 'security.token.ttl_exceeded', 117506052, 'expiresIn value exceeds maximum allowed value'],
  token_invalid: [401, 'security.token.invalid', 117506049, 'Invalid token.'],
  token_expired: [401, 'security.token.expired', 117506054, 'Token expired'],
  unauthorized: [401, 'security.rights.unauthorized', 117637121, 'Unauthorized: authentication required to execute the action "auth:%s".'],
  refresh_forbidden: [401, 'security.token.refresh_forbidden', 117506056, '%s cannot be refreshed.'],
  not_found: [404, 'network.http.url_not_found', 50397191, 'API URL not found: %s.'],
  bad_body: [400, 'api.assert.body_required', 33619976, 'The request must specify a body.'],
  unsupported_content: [400, 'network.http.unsupported_content', 50397192, 'Invalid request content-type. Expected "application/json", got: "%s".'],
  unsupported_charset: [400, 'network.http.unsupported_charset', 50397193, 'Unsupported request charset. Expected "utf-8", got: "%s".'],
  body_parse_failed: [400, 'network.http.body_parse_failed', 50397196, 'Unable to convert the HTTP body to JSON: %s'],
};
// default.config.ts: server.protocols.http.allowedContentTypes
const KUZZLE_CONTENT_TYPES = ['application/json', 'application/x-www-form-urlencoded', 'multipart/form-data'];
const KUZZLE_GRACE_MS = 1000; // default.config.ts: security.authToken.gracePeriod

// An expiresIn as Kuzzle reads it (tokenRepository.ts parseTimespan, with ms
// 2.1.3): ms or -1; 0 when unparsable (an error there). Absent or empty is
// the default (authController.ts passes it on only when it is truthy).
function kuzzleTimespan(v) {
  if (v === undefined || v === null || v === '') return ms('1h'); // security.authToken.expiresIn
  let n;
  try {
    n = ms(String(v));
  } catch {
    return 0;
  }
  return typeof n === 'number' && Number.isFinite(n) ? n : 0;
}

function versionAtLeast(v, major, minor) {
  const [a, b] = String(v).split('.').map(Number);
  return a > major || (a === major && b >= minor);
}

class Kuzzle {
  constructor(state) {
    this.s = state;
    this.users = {
      'kuzzle-user': { password: 'kuzzle-pass', name: 'Kuzzle User', profileIds: ['default'] },
      'second-user': { password: 'second-pass', name: 'Second User', profileIds: ['default'] },
    };
    this.tokens = new Map(); // jwt -> {kuid, expiresAt (ms or -1), ttl, singleUse, refreshed, graceUntil}
    this.config = this.defaults();
  }

  // what a test may change (POST /__test/kuzzle-config; {} restores these)
  defaults() {
    return { version: '2.56.0', maxTtl: -1, keepAlive: this.s.opts.kuzzleKeepAlive };
  }

  // Every HTTP answer says Connection: close (httpwsProtocol.js httpWriteRequestHeaders).
  headers() {
    return this.config.keepAlive ? {} : { Connection: 'close' };
  }

  reply(req, res, status, { controller = 'auth', action, result = null, error = null, headers = {} } = {}) {
    const body = { requestId: randomToken(12), status, error, controller, action, collection: null,
      index: null, volatile: null, headers: {}, node: 'authloop-reference', result };
    sendJson(res, status, body, { ...this.headers(), ...headers });
  }

  kerror(key, arg) {
    const [status, id, code, message] = KUZZLE_ERRORS[key];
    return { id, code, message: message.replace('%s', arg ?? ''), status, props: arg !== undefined ? [String(arg)] : [] };
  }

  fail(req, res, action, key, arg) {
    const error = this.kerror(key, arg);
    this.reply(req, res, error.status, { action, error });
  }

  // Errors raised before routing are the bare error, not the envelope
  // (httpwsProtocol.js httpSendError).
  bare(res, key, arg) {
    const error = this.kerror(key, arg);
    sendJson(res, error.status, error, this.headers());
  }

  // A request for a Kuzzle route (httpwsProtocol.js httpOnMessageHandler,
  // httpReadData, httpParseContent): a Content-Type, whenever there is one
  // (a body or not), is one of the allowed types exactly (what comes before
  // ';', trimmed, case kept); a charset parameter is utf-8 (any case); an
  // empty body is none; a form body is read as a query string, any other as
  // JSON. Then the route's handler.
  dispatch(req, res, text, handler, url, groups) {
    const header = req.headers['content-type'];
    if (header) {
      const semi = header.indexOf(';');
      const type = (semi !== -1 ? header.slice(0, semi) : header).trim();
      if (!KUZZLE_CONTENT_TYPES.includes(type)) return this.bare(res, 'unsupported_content', type);
    }
    const charset = /charset=([\w-]+)/i.exec(header ?? '');
    if (charset && charset[1].toLowerCase() !== 'utf-8')
      return this.bare(res, 'unsupported_charset', charset[1].toLowerCase());
    let body = {};
    if (text !== '') {
      const type = header || '';
      if (type.includes('multipart/form-data')) body = {};
      else if (type.includes('application/x-www-form-urlencoded')) body = Object.fromEntries(new URLSearchParams(text));
      else {
        try { body = JSON.parse(text); } catch { return this.bare(res, 'body_parse_failed', text.slice(0, 50)); }
      }
      if (!body || typeof body !== 'object' || Array.isArray(body)) body = {};
    }
    handler(req, res, body, url, ...groups);
  }

  notFound(req, res, url) {
    this.reply(req, res, 404, { controller: null, action: null, error: this.kerror('not_found', url.pathname) });
  }

  // tokenRepository.ts generateToken: the ttl checked against maxTTL (-1:
  // none), 0 refused, -1 a token without exp.
  // An API key (apiKey: true) is a token of its own type, "kapikey-" before
  // its jwt (model/security/token.ts APIKEY_PREFIX).
  issue(kuid, ttlMs, { singleUse = false, apiKey = false } = {}) {
    const iat = nowS();
    const claims = { _id: kuid, iat };
    if (ttlMs !== -1) claims.exp = iat + Math.floor(ttlMs / 1000);
    const jwt = `${apiKey ? 'kapikey-' : 'kauth-'}${signJwt(this.s.secret, claims)}`;
    const expiresAt = ttlMs === -1 ? -1 : Date.now() + ttlMs;
    this.tokens.set(jwt, { kuid, expiresAt, ttl: ttlMs, singleUse, refreshed: false, graceUntil: 0,
      type: apiKey ? 'apiKey' : 'authToken' });
    return { _id: kuid, jwt, expiresAt, ttl: ttlMs };
  }

  // tokenRepository.ts verifyToken: the token as any request checks it.
  // jwt.verify first: expired by its own exp, in whole seconds, from the
  // second its exp names ("expired", up to a second or two before
  // expiresAt); then the cache: unknown, gone with its ttl, or a refreshed
  // one past its grace period: "invalid". A single-use token is used up by
  // the check.
  check(tok) {
    const prefix = typeof tok === 'string' && ['kauth-', 'kapikey-'].find((p) => tok.startsWith(p));
    const claims = prefix ? verifyJwt(this.s.secret, tok.slice(prefix.length)) : null;
    if (!claims || !claims._id) return { err: 'token_invalid' };
    if (claims.exp !== undefined && nowS() >= claims.exp) return { err: 'token_expired' };
    const t = this.tokens.get(tok);
    if (!t || (t.expiresAt !== -1 && t.expiresAt < Date.now())) return { err: 'token_invalid' };
    if (t.refreshed && Date.now() > t.graceUntil) {
      this.tokens.delete(tok);
      return { err: 'token_invalid' };
    }
    if (t.singleUse) this.tokens.delete(tok);
    return { t };
  }

  // null after answering an error
  ttlArg(req, res, action, url) {
    const ttl = kuzzleTimespan(url.searchParams.get('expiresIn') ?? undefined);
    const max = this.config.maxTtl;
    if (max > -1 && (ttl > max || ttl === -1)) return this.fail(req, res, action, 'ttl_exceeded'), null;
    if (ttl === 0) return this.fail(req, res, action, 'invalid_argument'), null;
    return ttl;
  }

  login(req, res, body, url, strategy) {
    if (req.headers.authorization) this.s.stats.kuzzleLoginWithAuthorization++;
    if (!['local', 'twostep', 'oauth'].includes(strategy)) return this.fail(req, res, 'login', 'unknown_strategy', strategy);
    const user = own(this.users, body.username);
    if (strategy === 'oauth') {
      // a redirect strategy's first step: passport's status (302), its
      // Location header, and result {headers, statusCode}
      // (authController.ts login, the non-User branch)
      const location = `https://auth.example.test/authorize?client_id=kuzzle&state=${randomToken(8)}`;
      return this.reply(req, res, 302, { action: 'login', result: { headers: { Location: location }, statusCode: 302 },
        headers: { Location: location } });
    }
    if (strategy === 'twostep') {
      // a step of a plugin strategy that ends passport's response without a
      // redirect: the status is its statusCode (200) and the result the
      // response object, {headers, statusCode} (authController.ts login, the
      // non-User branch; passportResponse.ts); the token comes through
      // /__test/kuzzle-token
      if (!user) return this.fail(req, res, 'login', 'bad_credentials');
      return this.reply(req, res, 200, { action: 'login', result: { headers: {}, statusCode: 200 } });
    }
    if (!user || typeof body.password !== 'string' || body.password !== user.password)
      return this.fail(req, res, 'login', 'bad_credentials');
    const ttl = this.ttlArg(req, res, 'login', url);
    if (ttl === null) return;
    this.reply(req, res, 200, { action: 'login', result: this.issue(body.username, ttl) });
  }

  // tokenRepository.ts refresh: a token refreshed once cannot be refreshed
  // again ("invalid"); it keeps working for the grace period, then goes.
  refreshToken(req, res, url) {
    const tok = bearer(req);
    if (!tok) return this.fail(req, res, 'refreshToken', 'unauthorized', 'refreshToken');
    const { t, err } = this.check(tok);
    if (err) return this.fail(req, res, 'refreshToken', err);
    if (t.refreshed) return this.fail(req, res, 'refreshToken', 'token_invalid');
    if (t.type === 'apiKey' || t.ttl < 0)
      return this.fail(req, res, 'refreshToken', 'refresh_forbidden', t.type === 'apiKey' ? 'API Key' : 'Token with infinite TTL');
    const ttl = this.ttlArg(req, res, 'refreshToken', url);
    if (ttl === null) return;
    const result = this.issue(t.kuid, ttl);
    t.refreshed = true;
    t.graceUntil = Date.now() + KUZZLE_GRACE_MS;
    // stored again under its jwt (persistToCache); a token issued within the
    // same second has the same claims, hence the same jwt, and this replaces it
    this.tokens.set(tok, t);
    this.s.stats.kuzzleRefresh++;
    this.reply(req, res, 200, { action: 'refreshToken', result });
  }

  // authController.ts checkToken: {valid, state} or {valid, kuid, expiresAt};
  // it verifies, so it uses up a single-use token
  checkToken(req, res, body) {
    if (typeof body.token !== 'string') return this.fail(req, res, 'checkToken', 'bad_body');
    const { t, err } = this.check(body.token);
    if (err) return this.reply(req, res, 200, { action: 'checkToken',
      result: { valid: false, state: err === 'token_expired' ? 'Token expired' : 'Invalid token.' } });
    this.reply(req, res, 200, { action: 'checkToken', result: { valid: true, kuid: t.kuid, expiresAt: t.expiresAt } });
  }

  logout(req, res, url) {
    const tok = bearer(req);
    if (!tok) return this.fail(req, res, 'logout', 'unauthorized', 'logout');
    const { t, err } = this.check(tok);
    if (err) return this.fail(req, res, 'logout', err);
    if (url.searchParams.has('global')) {
      for (const [jwt, e] of this.tokens) if (e.kuid === t.kuid) this.tokens.delete(jwt);
      this.s.stats.kuzzleGlobalLogout++;
    } else {
      this.tokens.delete(tok);
    }
    this.reply(req, res, 200, { action: 'logout', result: { acknowledged: true } });
  }

  // GET /_me only from 2.4.0; /users/_me in every 2.x (httpRoutes.js)
  me(req, res, url) {
    if (url.pathname === '/_me' && !versionAtLeast(this.config.version, 2, 4)) return this.notFound(req, res, url);
    const tok = bearer(req);
    if (!tok) return this.fail(req, res, 'getCurrentUser', 'unauthorized', 'getCurrentUser');
    const { t, err } = this.check(tok);
    if (err) return this.fail(req, res, 'getCurrentUser', err);
    const u = this.users[t.kuid];
    this.reply(req, res, 200, { action: 'getCurrentUser', result: { _id: t.kuid,
      _source: { profileIds: u.profileIds, name: u.name }, strategies: ['local'] } });
  }

  publicApi(req, res) {
    const r = (verb, u) => ({ http: [{ verb, url: u }] });
    const me = [{ verb: 'GET', url: '/users/_me' }];
    if (versionAtLeast(this.config.version, 2, 4)) me.unshift({ verb: 'GET', url: '/_me' });
    this.reply(req, res, 200, { controller: 'server', action: 'publicApi', result: {
      auth: {
        login: r('POST', '/_login/:strategy'),
        logout: r('POST', '/_logout'),
        refreshToken: r('POST', '/_refreshToken'),
        checkToken: r('POST', '/_checkToken'),
        getCurrentUser: { http: me },
      },
      server: { publicApi: r('GET', '/_publicApi') },
    } });
  }

  // tests: a token for a two-step login, issued "out of band"; revocation;
  // the server's version and limits
  testToken(res, body) {
    if (!own(this.users, body.username)) return sendJson(res, 400, { error: 'unknown user' });
    const ttl = body.ttl === undefined ? 3600000 : body.ttl;
    sendJson(res, 200, this.issue(body.username, ttl, { singleUse: body.singleUse === true, apiKey: body.apiKey === true }));
  }

  revoke(res, body) {
    let n = 0;
    for (const [jwt, e] of this.tokens) if (e.kuid === body.username) this.tokens.delete(jwt), n++;
    sendJson(res, 200, { revoked: n });
  }

  testConfig(res, body) {
    const c = { ...this.defaults(), ...body };
    if (typeof c.version !== 'string' || !/^2\.\d+\.\d+$/.test(c.version) || !Number.isInteger(c.maxTtl) ||
        typeof c.keepAlive !== 'boolean')
      return sendJson(res, 400, { error: 'version "2.x.y", maxTtl an integer, keepAlive a boolean' });
    this.config = c;
    sendJson(res, 200, this.config);
  }
}

// ---- CometChat (Chat SDK REST v3.0) ---------------------------------------------------

const CC_APP = 'app1';
const CC_AUTH_KEY = 'authkey-1';
const CC_NAMES = ['Andrew Joseph', 'George Alan', 'Nancy Grace', 'Susan Marie', 'John Paul'];

class CometChat {
  constructor(state) {
    this.s = state;
    this.users = {};
    CC_NAMES.forEach((name, i) => {
      const uid = `cometchat-uid-${i + 1}`;
      this.users[uid] = { uid, name, avatar: `https://assets.example.test/${uid}.webp`, link: null,
        role: 'default', status: 'offline', statusMessage: '', metadata: {}, tags: [], lastActiveAt: nowS() };
    });
    this.tokens = new Map(); // authToken -> uid
    this.config = { settings: false };
  }

  static error(res, status, code, message) {
    sendJson(res, status, { error: { code, message, details: {} } });
  }

  app(req, res) {
    if (req.headers.appid !== CC_APP) {
      CometChat.error(res, 401, 'ERR_APP_NOT_FOUND', `The app ${req.headers.appid} does not exist.`);
      return false;
    }
    return true;
  }

  authToken(req, res, uid) {
    if (!this.app(req, res)) return;
    if (req.headers.apikey !== CC_AUTH_KEY)
      return CometChat.error(res, 401, 'AUTH_ERR_APIKEY_NOT_FOUND', `The apiKey ${req.headers.apikey} does not exist.`);
    if (!own(this.users, uid))
      return CometChat.error(res, 404, 'ERR_UID_NOT_FOUND', `The UID ${uid} does not exist, please make sure you have created a user with UID ${uid}.`);
    const authToken = `${uid}_${randomToken(20)}`;
    this.tokens.set(authToken, uid);
    sendJson(res, 200, { data: { uid, authToken, createdAt: nowS() } });
  }

  session(req, res) {
    if (!this.app(req, res)) return null;
    const uid = this.tokens.get(req.headers.authtoken);
    if (!uid) {
      CometChat.error(res, 401, 'AUTH_ERR_AUTH_TOKEN_NOT_FOUND',
        `The auth token ${req.headers.authtoken || ''} does not exist. Please make sure you are logged in and have a valid auth token or try login again.`);
      return null;
    }
    return uid;
  }

  updateMe(req, res, body) {
    const uid = this.session(req, res);
    if (!uid) return;
    if (typeof body.deviceId === 'string') this.s.stats.cometchatDevices[body.deviceId] = uid;
    const u = { ...this.users[uid], status: 'online', lastActiveAt: nowS() };
    this.users[uid] = u;
    // CometChat may answer with the app's settings: the SDK sends later calls to
    // the hosts they name (CometChat.js 4.2.0: updateMyDetails, getEndpointData)
    const settings = this.config.settings && {
      ADMIN_API_HOST: `${req.headers.host}/cometchat/settings-admin`,
      CLIENT_API_HOST: this.config.settingsClientHost ?? `${req.headers.host}/cometchat/settings-client`,
      CHAT_API_VERSION: 'v3.0', CHAT_HOST: 'chat.invalid', CHAT_USE_SSL: true,
      ANALYTICS_PING_DISABLED: true, MODE: 'DEFAULT',
    };
    sendJson(res, 200, { data: settings ? { ...u, settings } : u });
  }

  // what a test may change (POST /__test/cometchat-config; {} restores the defaults):
  // settings: answer PUT /me with "settings"; settingsClientHost: the host they name
  testConfig(res, body) {
    this.config = { settings: body.settings === true,
      settingsClientHost: typeof body.settingsClientHost === 'string' ? body.settingsClientHost : undefined };
    sendJson(res, 200, this.config);
  }

  getMe(req, res) {
    const uid = this.session(req, res);
    if (uid) sendJson(res, 200, { data: this.users[uid] });
  }

  deleteMe(req, res) {
    const uid = this.session(req, res);
    if (!uid) return;
    this.tokens.delete(req.headers.authtoken);
    this.users[uid].status = 'offline';
    sendJson(res, 200, { data: { success: true, message: `The user ${uid} has been logged out.` } });
  }

  // the official SDK posts its platform details once per session
  userSessions(req, res) {
    const uid = this.session(req, res);
    if (uid) sendJson(res, 200, { data: { sessionId: randomToken(16) } });
  }

  settings(req, res) {
    if (!this.app(req, res)) return;
    sendJson(res, 200, { data: {} });
  }

  revoke(res, body) {
    let n = 0;
    for (const [tok, uid] of this.tokens) if (uid === body.uid) this.tokens.delete(tok), n++;
    sendJson(res, 200, { revoked: n });
  }
}

// ---- the server --------------------------------------------------------------------

class ReferenceServer {
  constructor(opts) {
    this.opts = opts;
    this.secret = crypto.randomBytes(32);
    this.gateway = new Gateway(this);
    this.kuzzle = new Kuzzle(this);
    this.cometchat = new CometChat(this);
    this.started = Date.now();
    this.stats = { routes: {}, connections: 0, times: {}, refreshWhileValid: 0, refreshAfterExpiry: 0,
      rotatedReuse: 0, preauthAccepted: 0, kuzzleRefresh: 0, kuzzleGlobalLogout: 0,
      inFlight: 0, maxInFlight: 0,
      kuzzleLoginWithAuthorization: 0, cometchatDevices: {} };
    this.faults = new Map(); // route -> [{status, delayMs, drop, body, count}]
    this.aliases = new Map(); // path -> the route it stands for (tests of path options)
    this.requests = []; // the last 500: {method, url, rawHeaders, body}, test control excluded
    this.stats.clientErrors = 0; // requests Node's parser refused (bad header bytes ...)
    this.routes = {
      'POST /auth/pre-auth': (q, r, b) => this.gateway.preauth(q, r, b),
      'POST /auth/login': (q, r, b) => this.gateway.login(q, r, b),
      'POST /auth/refresh': (q, r, b) => this.gateway.refreshTokens(q, r, b),
      'POST /auth/logout': (q, r) => this.gateway.logout(q, r),
      'GET /api/me': (q, r) => this.gateway.me(q, r),
      'POST /api/echo': (q, r, b) => this.gateway.echo(q, r, b),
      'POST /__test/revoke': (q, r, b) => this.testRevoke(r, b),
      'POST /__test/config': (q, r, b) => this.testConfig(r, b),
      'POST /__test/codes': (q, r, b) => this.testCodes(r, b),
      'POST /__test/faults': (q, r, b) => this.testFaults(r, b),
      'POST /__test/reset-stats': (q, r) => {
        Object.assign(this.stats, { connections: 0, maxInFlight: 0, routes: {}, times: {}, clientErrors: 0 });
        this.requests = [];
        sendJson(r, 200, {});
      },
      'GET /__test/requests': (q, r) => sendJson(r, 200, { requests: this.requests }),
      'POST /__test/alias': (q, r, b) => {
        if (typeof b.path !== 'string' || typeof b.route !== 'string' || !b.path.startsWith('/'))
          return Gateway.error(r, 400, 4000, 'BadRequest', 'path and route are required');
        this.aliases.set(b.path, b.route);
        sendJson(r, 200, { aliases: Object.fromEntries(this.aliases) });
      },
      'GET /__test/stats': (q, r) => {
        // for the benches: the server's own CPU, its garbage collections' time and the
        // longest its event loop was held since the last stats call
        const cpu = process.cpuUsage();
        const loopMaxMs = benchProbe.delay ? benchProbe.delay.max / 1e6 : 0;
        if (benchProbe.delay) benchProbe.delay.reset();
        sendJson(r, 200, { ...this.stats, cpuUs: cpu.user + cpu.system, gcMs: Math.round(benchProbe.gcMs),
          loopMaxMs: Math.round(loopMaxMs) });
      },
      'GET /_publicApi': kz((q, r) => this.kuzzle.publicApi(q, r)),
      'POST /_refreshToken': kz((q, r, b, u) => this.kuzzle.refreshToken(q, r, u)),
      'POST /_checkToken': kz((q, r, b) => this.kuzzle.checkToken(q, r, b)),
      'POST /_logout': kz((q, r, b, u) => this.kuzzle.logout(q, r, u)),
      'GET /_me': kz((q, r, b, u) => this.kuzzle.me(q, r, u)),
      'GET /users/_me': kz((q, r, b, u) => this.kuzzle.me(q, r, u)),
      'POST /__test/kuzzle-token': (q, r, b) => this.kuzzle.testToken(r, b),
      'POST /__test/kuzzle-revoke': (q, r, b) => this.kuzzle.revoke(r, b),
      'POST /__test/kuzzle-config': (q, r, b) => this.kuzzle.testConfig(r, b),
      // many users at once, for benchmarks: PREFIX-0 .. PREFIX-(count-1), one password
      // (two logins of one user in the same second get the same jwt, as in Kuzzle)
      'POST /__test/kuzzle-users': (q, r, b) => {
        if (typeof b.prefix !== 'string' || typeof b.password !== 'string' ||
            !Number.isInteger(b.count) || b.count < 1 || b.count > 2000000)
          return Gateway.error(r, 400, 4000, 'BadRequest', 'prefix, password and count (1 .. 2000000) are required');
        for (let i = 0; i < b.count; i++)
          this.kuzzle.users[`${b.prefix}-${i}`] = { password: b.password, name: `${b.prefix} ${i}`, profileIds: ['default'] };
        sendJson(r, 200, { count: b.count });
      },
      'POST /__test/cometchat-revoke': (q, r, b) => this.cometchat.revoke(r, b),
      'POST /__test/cometchat-config': (q, r, b) => this.cometchat.testConfig(r, b),
    };
    // the client API, at the configured host and at the one "settings" names
    for (const host of ['client', 'settings-client']) {
      Object.assign(this.routes, {
        [`PUT /cometchat/${host}/v3.0/me`]: (q, r, b) => this.cometchat.updateMe(q, r, b),
        [`GET /cometchat/${host}/v3.0/me`]: (q, r) => this.cometchat.getMe(q, r),
        [`DELETE /cometchat/${host}/v3.0/me`]: (q, r) => this.cometchat.deleteMe(q, r),
        [`GET /cometchat/${host}/v3.0/settings`]: (q, r) => this.cometchat.settings(q, r),
        [`POST /cometchat/${host}/v3.0/user_sessions`]: (q, r) => this.cometchat.userSessions(q, r),
      });
    }
    // routes with a parameter: [method, pattern, handler(req, res, body, url, ...groups)]
    this.patterns = [
      ['POST', /^\/_login\/([^/]+)$/, kz((q, r, b, u, strategy) => this.kuzzle.login(q, r, b, u, decoded(strategy)))],
      ['POST', /^\/cometchat\/(?:settings-)?admin\/v3\.0\/users\/([^/]+)\/auth_tokens$/,
        (q, r, b, u, uid) => this.cometchat.authToken(q, r, decoded(uid))],
    ];
  }

  testCodes(res, body) {
    if (typeof body.userId !== 'string' || body.userId === '')
      return Gateway.error(res, 400, 4000, 'BadRequest', 'userId is required');
    if (body.tokenTtl !== undefined && !(Number.isInteger(body.tokenTtl) && body.tokenTtl > 0))
      return Gateway.error(res, 400, 4000, 'BadRequest', 'tokenTtl must be a positive integer');
    if (body.count !== undefined) { // many at once, for benchmarks: user ids get a -N suffix
      if (!Number.isInteger(body.count) || body.count < 1 || body.count > 100000)
        return Gateway.error(res, 400, 4000, 'BadRequest', 'count must be 1 .. 100000');
      const codes = [];
      for (let i = 0; i < body.count; i++) codes.push(this.gateway.mintCode(`${body.userId}-${i}`, body.tokenTtl));
      return sendJson(res, 200, { authorizationCodes: codes });
    }
    sendJson(res, 200, { authorizationCode: this.gateway.mintCode(body.userId, body.tokenTtl) });
  }

  testRevoke(res, body) {
    if (typeof body.userId !== 'string') return Gateway.error(res, 400, 4000, 'BadRequest', 'userId is required');
    sendJson(res, 200, { revoked: this.gateway.revokeUser(body.userId) });
  }

  testConfig(res, body) {
    if (body.rotateRefreshTokens !== undefined) this.gateway.rotate = Boolean(body.rotateRefreshTokens);
    sendJson(res, 200, { rotateRefreshTokens: this.gateway.rotate });
  }

  testFaults(res, body) {
    const { route } = body;
    const count = body.count === undefined ? 1 : body.count;
    if (typeof route !== 'string' || !route.startsWith('/') || !Number.isInteger(count) || count < 1)
      return Gateway.error(res, 400, 4000, 'BadRequest', 'route (a path) and a positive count are required');
    if (body.clear) { // drops what is still queued for the route
      this.faults.delete(route);
      return sendJson(res, 200, { cleared: true });
    }
    const f = { count };
    if (body.status !== undefined) f.status = body.status;
    if (body.delayMs !== undefined) f.delayMs = body.delayMs;
    if (body.drop) f.drop = true;
    if (body.lose) f.lose = true; // the route runs; its answer is lost on the way
    if (body.body !== undefined) f.body = String(body.body);
    if (body.retryAfter !== undefined) f.retryAfter = String(body.retryAfter);
    // the hostile ones: cut mid-body, drip it, pad the headers, a gzip bomb, a redirect
    if (body.reset) f.reset = true;
    // sizes and times bounded: one test's fault must not stall the server for all
    const bounded = (v, max) => Number.isInteger(v) && v >= 0 && v <= max;
    for (const [k, max] of [['dripMs', 1000], ['headerBytes', 1 << 20], ['gzipBytes', 1 << 27],
      ['bodyBytes', 1 << 24], ['delayMs', 60000]]) {
      if (body[k] === undefined) continue;
      if (!bounded(body[k], max)) return Gateway.error(res, 400, 4000, 'BadRequest', `${k}: an integer 0 .. ${max}`);
      f[k] = body[k];
    }
    if (body.status !== undefined && !(Number.isInteger(body.status) && body.status >= 100 && body.status <= 599))
      return Gateway.error(res, 400, 4000, 'BadRequest', 'status: 100 .. 599');
    if (body.location !== undefined) f.location = String(body.location);
    if (f.status === undefined && f.delayMs === undefined && !f.drop && !f.lose && f.body === undefined &&
        f.gzipBytes === undefined && f.location === undefined && f.bodyBytes === undefined)
      return Gateway.error(res, 400, 4000, 'BadRequest', 'a fault needs status, delayMs, drop or body');
    if (!this.faults.has(route)) this.faults.set(route, []);
    this.faults.get(route).push(f);
    sendJson(res, 200, { queued: true });
  }

  takeFault(route) {
    const list = this.faults.get(route);
    if (!list || list.length === 0) return null;
    const f = list[0];
    if (--f.count === 0) list.shift();
    return f;
  }

  // Returns true when the fault answered the request itself.
  async applyFault(f, req, res) {
    if (f.lose) return false; // handled by handle(): the route runs, its answer is lost
    if (f.delayMs) await new Promise((r) => setTimeout(r, f.delayMs));
    if (f.drop) {
      req.socket.destroy();
      return true;
    }
    if (f.location !== undefined) { // a redirect, which a client must not follow (with a body, when given)
      const page = Buffer.from(f.body ?? '');
      if (!res.destroyed) {
        res.writeHead(f.status || 302, { Location: f.location, 'Content-Length': page.length,
          ...(f.body !== undefined ? { 'Content-Type': f.contentType ?? 'application/json' } : {}) });
        res.end(page);
      }
      return true;
    }
    if (f.gzipBytes !== undefined) { // f.gzipBytes of zeros, compressed: a small body that is a bomb
      const zlib = await import('node:zlib');
      const bomb = zlib.gzipSync(Buffer.alloc(f.gzipBytes), { level: 9 });
      if (!res.destroyed) {
        res.writeHead(f.status || 200, { 'Content-Type': 'application/json', 'Content-Encoding': 'gzip',
          'Content-Length': bomb.length });
        res.end(bomb);
      }
      return true;
    }
    if (f.body !== undefined || f.bodyBytes !== undefined) {
      const body = f.body !== undefined ? Buffer.from(f.body) : Buffer.alloc(f.bodyBytes, 0x20);
      const headers = { 'Content-Type': f.contentType ?? 'application/json', 'Content-Length': body.length };
      if (f.headerBytes) headers['X-Pad'] = 'p'.repeat(f.headerBytes);
      if (f.retryAfter !== undefined) headers['Retry-After'] = f.retryAfter;
      if (res.destroyed) return true;
      res.writeHead(f.status || 200, headers);
      if (f.reset) { // half the body, then the connection goes
        res.write(body.subarray(0, body.length >> 1));
        setTimeout(() => req.socket.destroy(), 20);
      } else if (f.dripMs) { // a byte at a time
        let i = 0;
        const t = setInterval(() => {
          if (res.destroyed || i >= body.length) { clearInterval(t); if (!res.destroyed) res.end(); return; }
          res.write(body.subarray(i, i + 1));
          i++;
        }, f.dripMs);
      } else {
        res.end(body);
      }
      return true;
    }
    if (f.status !== undefined) {
      if (f.retryAfter !== undefined) res.setHeader('Retry-After', f.retryAfter);
      if (f.headerBytes) res.setHeader('X-Pad', 'p'.repeat(f.headerBytes));
      Gateway.error(res, f.status, f.status * 10, 'InjectedFault', `injected fault: HTTP ${f.status}`);
      return true;
    }
    return false;
  }

  async handle(req, res) {
    const url = new URL(req.url, 'https://localhost');
    let record = null;
    this.stats.routes[url.pathname] = (this.stats.routes[url.pathname] || 0) + 1;
    if (!url.pathname.startsWith('/__test/')) {
      // the header lines exactly as they arrived, for tests of what was sent
      record = { method: req.method, url: req.url, rawHeaders: req.rawHeaders, body: '' };
      this.requests.push(record);
      if (this.requests.length > 500) this.requests.shift();
    }
    // a path given as an option stands for the route it is an alias of
    const route = this.aliases.get(url.pathname) ?? url.pathname;
    if (!route.startsWith('/__test/')) { // requests being served at once (not test control)
      this.stats.maxInFlight = Math.max(this.stats.maxInFlight, ++this.stats.inFlight);
      res.once('close', () => this.stats.inFlight--);
    }
    if (!route.startsWith('/__test/')) {
      const t = (this.stats.times[route] ||= []);
      t.push(Date.now() - this.started); // ms since start, the last 200
      if (t.length > 200) t.shift();
    }
    try {
      const fault = route.startsWith('/__test/') ? null : this.takeFault(route);
      const text = await readBody(req);
      if (record) record.body = text.slice(0, 8192); // what was sent, for the differential tests
      if (fault && (await this.applyFault(fault, req, res))) return;
      if (res.destroyed) return;
      if (fault?.lose && fault.status) { // served as usual, a gateway's answer in its place (a 502 ...)
        const writeHead = res.writeHead.bind(res), end = res.end.bind(res);
        const page = Buffer.from(fault.body ?? '');
        res.writeHead = () => res;
        res.end = () => {
          writeHead(fault.status, { 'Content-Type': fault.contentType ?? 'text/html', 'Content-Length': page.length });
          end(page);
        };
      } else if (fault?.lose) { // served as usual, but the answer never reaches the client
        res.writeHead = () => res;
        res.end = () => req.socket.destroy();
      }
      let handler = this.routes[`${req.method} ${route}`];
      let groups = [];
      for (const [method, re, h] of this.patterns) {
        const m = !handler && method === req.method && re.exec(route);
        if (m) [handler, groups] = [h, m.slice(1)];
      }
      if (!handler) {
        // Kuzzle lives at the root: a path of no other dialect is Kuzzle's
        // unknown route (httpRouter/index.js route: url_not_found)
        if (!/^\/(auth|api|cometchat)\//.test(route)) return this.kuzzle.notFound(req, res, url);
        return Gateway.error(res, 404, 4040, 'NotFound', `no route ${req.method} ${route}`);
      }
      if (handler.kuzzle) return this.kuzzle.dispatch(req, res, text, handler, url, groups);
      const body = parseJsonBody(text);
      if (body === null) return Gateway.error(res, 400, 4000, 'BadRequest', 'the body is not a JSON object');
      handler(req, res, body, url, ...groups);
    } catch (e) {
      Gateway.error(res, e.status || 500, (e.status || 500) * 10, 'Error', e.message);
    }
  }

  listen() {
    const dir = this.opts.stateDir;
    ensureCertificates(dir);
    const handler = (req, res) => this.handle(req, res);
    const tls = {
      key: fs.readFileSync(path.join(dir, 'server.key')),
      cert: fs.readFileSync(path.join(dir, 'server.pem')),
    };
    // HTTP/2 by ALPN (HTTP/1.1 still answered), for the transport's multiplexing
    const server = this.opts.plain ? http.createServer(handler)
      : this.opts.http2 ? http2.createSecureServer({ ...tls, allowHTTP1: true }, handler)
        : https.createServer(tls, handler);
    server.keepAliveTimeout = this.opts.keepAliveMs;
    server.on('connection', () => this.stats.connections++);
    server.on('tlsClientError', () => {}); // an untrusting client hangs up: expected in tests
    server.on('clientError', (err, socket) => {
      // a request the parser refused (llhttp's HPE_* codes); a connection the
      // client reset or that timed out is no request, and is not counted
      if (String(err && err.code).startsWith('HPE_')) this.stats.clientErrors++;
      socket.destroy();
    });
    server.listen(this.opts.port, this.opts.host, () => {
      const ca = path.resolve(dir, 'ca.pem');
      process.stdout.write(`${JSON.stringify({ port: server.address().port, ca })}\n`);
    });
    return server;
  }
}

let opts;
try {
  opts = parseArgs(process.argv);
} catch (e) {
  process.stderr.write(`server.mjs: ${e.message}\n`);
  process.exit(2);
}
const server = new ReferenceServer(opts).listen();
const stop = () => {
  server.close();
  server.closeAllConnections?.();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
if (opts.lifeline) {
  process.stdin.on('end', stop);
  process.stdin.on('error', stop);
  process.stdin.resume();
}
