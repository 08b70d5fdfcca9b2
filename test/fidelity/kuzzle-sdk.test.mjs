// SPDX-License-Identifier: MIT
// The official Kuzzle JavaScript SDK (Http protocol) against the reference
// server: the server speaks Kuzzle's dialect as the SDK expects it.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createRequire } from 'node:module';
import { startServer } from './server.mjs';

const require = createRequire(new URL('../server/package.json', import.meta.url));
const { Kuzzle, Http } = require('kuzzle-sdk');

let server;
let kuzzle;
const attempts = [];

before(async () => {
  server = await startServer();
  // eventTimeout 0: the SDK otherwise drops a loginAttempt within 200 ms of the last
  kuzzle = new Kuzzle(new Http('127.0.0.1', { port: server.port, ssl: true }), { eventTimeout: 0 });
  kuzzle.on('loginAttempt', (e) => attempts.push(e));
  await kuzzle.connect(); // GET /_publicApi builds the SDK's routes
});

after(async () => {
  kuzzle.disconnect();
  await server.stop();
});

test('login with the local strategy and expiresIn', async () => {
  const jwt = await kuzzle.auth.login('local', { username: 'kuzzle-user', password: 'kuzzle-pass' }, '1h');
  assert.match(jwt, /^kauth-/);
  assert.equal(kuzzle.auth.authenticationToken.userId, 'kuzzle-user');
  assert.ok(kuzzle.auth.authenticationToken.expiresAt > Date.now() / 1000 + 3500);
  assert.deepEqual(attempts.at(-1), { success: true });
});

test('checkToken and getCurrentUser', async () => {
  const check = await kuzzle.auth.checkToken();
  assert.equal(check.valid, true);
  assert.equal(check.kuid, 'kuzzle-user');
  const me = await kuzzle.auth.getCurrentUser();
  assert.equal(me._id, 'kuzzle-user');
  assert.deepEqual(me.content.profileIds, ['default']);
});

test('refreshToken gives a new token with the asked lifetime', async () => {
  const before = kuzzle.auth.authenticationToken.encodedJwt;
  const r = await kuzzle.auth.refreshToken({ expiresIn: '30m' });
  assert.notEqual(r.jwt, before);
  assert.equal(kuzzle.auth.authenticationToken.encodedJwt, r.jwt);
  assert.equal(r.ttl, 30 * 60 * 1000);
  assert.equal(r._id, 'kuzzle-user');
});

test('logout', async () => {
  const token = kuzzle.auth.authenticationToken.encodedJwt;
  await kuzzle.auth.logout();
  assert.equal(kuzzle.auth.authenticationToken, null);
  const check = await kuzzle.auth.checkToken(token);
  assert.equal(check.valid, false);
  assert.equal(check.state, 'Invalid token.');
});

test('a failed login: bad credentials, loginAttempt {success: false}', async () => {
  await assert.rejects(
    kuzzle.auth.login('local', { username: 'kuzzle-user', password: 'nope' }),
    (e) => e.id === 'plugin.strategy.missing_user' && e.status === 401 && e.code === 67305492,
  );
  assert.equal(attempts.at(-1).success, false);
  assert.equal(attempts.at(-1).error, 'wrong username or password');
});

test('unknown strategy and bad expiresIn are refused as Kuzzle refuses them', async () => {
  await assert.rejects(kuzzle.auth.login('nosuch', {}),
    (e) => e.id === 'security.credentials.unknown_strategy' && e.status === 400);
  await assert.rejects(kuzzle.auth.login('local', { username: 'kuzzle-user', password: 'kuzzle-pass' }, 'soon'),
    (e) => e.id === 'api.assert.invalid_argument' && e.status === 400);
  // the default maxTTL is -1, unlimited (default.config.ts); a deployment sets one
  await server.control('/__test/kuzzle-config', { maxTtl: 24 * 3600 * 1000 });
  await assert.rejects(kuzzle.auth.login('local', { username: 'kuzzle-user', password: 'kuzzle-pass' }, '30d'),
    (e) => e.id === 'security.token.ttl_exceeded');
  await server.control('/__test/kuzzle-config', {});
});
