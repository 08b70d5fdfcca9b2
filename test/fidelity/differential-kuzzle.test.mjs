// SPDX-License-Identifier: MIT
// authloop beside the official Kuzzle SDK (kuzzle-sdk, Http protocol): the
// same steps against one recording server, compared request by request
// (differential.mjs). An authloop login is the SDK's login followed by
// getCurrentUser: authloop fetches the user so that authloop_current_user()
// answers (docs/protocol.md).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createRequire } from 'node:module';
import { startServer } from './server.mjs';
import { accepted, check, compare, received, reset, runAuthloop, unused } from './differential.mjs';

const require = createRequire(new URL('../server/package.json', import.meta.url));
const { Kuzzle, Http } = require('kuzzle-sdk');

let server;
let kuzzle;
const list = accepted('kuzzle');

before(async () => {
  server = await startServer();
  kuzzle = new Kuzzle(new Http('127.0.0.1', { port: server.port, ssl: true }), { eventTimeout: 0 });
  await kuzzle.connect(); // GET /_publicApi: the SDK's set-up, not an operation
});

after(async () => {
  kuzzle.disconnect();
  await server.stop();
});

const base = () => ({ provider: 'kuzzle', base: `https://127.0.0.1:${server.port}` });

// The SDK's steps, then authloop's, each from a reset log; the differences.
async function both(scenario, sdkSteps, ops, options = {}) {
  await reset(server);
  await sdkSteps();
  const sdk = await received(server);
  await reset(server);
  const outcomes = await runAuthloop(server, { ...base(), ...options },
    typeof ops === 'function' ? await ops() : ops);
  const mine = await received(server);
  // getCurrentUser: the SDK's /_me, authloop's /users/_me (docs/protocol.md)
  check('kuzzle', scenario, compare(sdk, mine, { 'GET /_me': 'GET /users/_me' }), list);
  return outcomes;
}

async function mint(username, extra = {}) {
  const r = await new Promise((resolve, reject) => {
    const body = JSON.stringify({ username, ...extra });
    const req = require('node:https').request({ host: '127.0.0.1', port: server.port, path: '/__test/kuzzle-token',
      method: 'POST', headers: { 'Content-Type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (c) => { text += c; });
      res.on('end', () => resolve(JSON.parse(text)));
    });
    req.on('error', reject);
    req.end(body);
  });
  return r.jwt ?? r.result?.jwt;
}

test('local login, refresh, logout', async () => {
  const outcomes = await both('local login, refresh, logout', async () => {
    await kuzzle.auth.login('local', { username: 'kuzzle-user', password: 'kuzzle-pass' }, '1h');
    await kuzzle.auth.getCurrentUser();
    // a refresh in the second the token was issued gets the same jwt back
    // (iat in whole seconds), which the server then keeps as refreshed, to
    // die after its grace period (tokenRepository.ts refresh); authloop
    // waits for the next second by itself, an application of the SDK must:
    // then both log out with the refreshed token, jwt#2
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await kuzzle.auth.refreshToken();
    await kuzzle.auth.logout();
  }, ['local:kuzzle-user:kuzzle-pass:1h', 'refresh', 'logout']);
  assert.deepEqual(outcomes.map((o) => [o.event, o.success]),
    [['loginAttempt', true], ['refresh', true], ['logout', true]]);
});

// option userinfo -1: authloop's login is the SDK's one request, without
// getCurrentUser; the rest of the session as above
test('local login without getCurrentUser (userinfo -1), refresh, logout', async () => {
  const outcomes = await both('local login without getCurrentUser (userinfo -1), refresh, logout',
    async () => {
      await kuzzle.auth.login('local', { username: 'kuzzle-user', password: 'kuzzle-pass' }, '1h');
      await new Promise((resolve) => setTimeout(resolve, 1100));
      await kuzzle.auth.refreshToken();
      await kuzzle.auth.logout();
    }, ['local:kuzzle-user:kuzzle-pass:1h', 'refresh', 'logout'], { userinfo: '-1' });
  assert.deepEqual(outcomes.map((o) => [o.event, o.success]),
    [['loginAttempt', true], ['refresh', true], ['logout', true]]);
});

test('a failed login', async () => {
  const outcomes = await both('a failed login', async () => {
    await assert.rejects(kuzzle.auth.login('local', { username: 'kuzzle-user', password: 'nope' }));
  }, ['local:kuzzle-user:nope']);
  assert.equal(outcomes[0].success, false);
  assert.equal(outcomes[0].error, 'ECREDENTIALS');
  assert.equal(outcomes[0].serverCode, 'plugin.strategy.missing_user');
});

test('a two-step strategy completed with a token', async () => {
  const outcomes = await both('two-step login', async () => {
    // the SDK cannot hold a login without a jwt (it fails decoding null):
    // the request it sent is what is compared; the app then sets the token
    await kuzzle.auth.login('twostep', { username: 'kuzzle-user' }).catch(() => {});
    kuzzle.auth.authenticationToken = await mint('kuzzle-user');
    await kuzzle.auth.getCurrentUser();
    await kuzzle.auth.logout();
  }, async () => ['strategy:twostep:{"username":"kuzzle-user"}', `settoken:${await mint('kuzzle-user')}`, 'logout']);
  assert.deepEqual(outcomes.map((o) => [o.event, o.success]),
    [['awaitingToken', true], ['loginAttempt', true], ['logout', true]]);
});

test('a redirect strategy completed with a token', async () => {
  const outcomes = await both('redirect login', async () => {
    // the SDK has no redirect flow: its login fails on the 302, which is the
    // request authloop must send alike; the app then sets the token
    await kuzzle.auth.login('oauth', {}).catch(() => {});
    kuzzle.auth.authenticationToken = await mint('kuzzle-user');
    await kuzzle.auth.getCurrentUser();
  }, async () => ['strategy:oauth:{}', `settoken:${await mint('kuzzle-user')}`]);
  assert.equal(outcomes[0].event, 'awaitingToken');
  assert.match(outcomes[0].serverCode, /^https:\/\/auth\.example\.test\/authorize\?/); // the redirect
  assert.equal(outcomes[1].success, true);
  kuzzle.auth.authenticationToken = null;
});

test('every listed difference still happens', () => {
  assert.deepEqual(unused(list), []);
});
