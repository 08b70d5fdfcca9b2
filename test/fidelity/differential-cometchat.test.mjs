// SPDX-License-Identifier: MIT
// authloop beside the official CometChat JavaScript SDK 4.2.0 (a browser
// bundle under a small shim): the same steps against one recording server,
// compared request by request (differential.mjs).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import https from 'node:https';
import { after, before, test } from 'node:test';
import { startServer } from './server.mjs';
import { startCometChat } from './browser-shim.mjs';
import { accepted, check, compare, received, reset, runAuthloop, unused } from './differential.mjs';

let server;
let CometChat;
const list = accepted('cometchat');
let host;

before(async () => {
  server = await startServer();
  ({ CometChat, host } = await startCometChat(server, 'eu'));
});

after(() => server.stop());

const options = () => ({ provider: 'cometchat', app: 'app1', base: `https://${host('client')}`,
  admin: `https://${host('admin')}` });

async function both(scenario, sdkSteps, ops, extra = {}) {
  await reset(server);
  await sdkSteps();
  const sdk = await received(server);
  await reset(server);
  const outcomes = await runAuthloop(server, { ...options(), ...extra },
    typeof ops === 'function' ? await ops() : ops);
  const mine = await received(server);
  check('cometchat', scenario, compare(sdk, mine), list);
  return outcomes;
}

function post(path, headers, body) {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port: server.port, path, method: 'POST',
      headers: { 'content-type': 'application/json', ...headers } }, (res) => {
      let text = '';
      res.on('data', (c) => { text += c; });
      res.on('end', () => resolve(JSON.parse(text)));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

// A few seconds after a login the SDK posts its platform details; it must
// find the session alive (it leaves the rejection unhandled otherwise). Not
// an operation: left out of the comparison.
const analytics = () => globalThis.requestSeen('/user_sessions');

// an auth token minted by a backend, out of band
const mint = async (uid) => (await post(`/cometchat/admin/v3.0/users/${uid}/auth_tokens`,
  { appid: 'app1', apikey: 'authkey-1' }, {})).data.authToken;

test('login with uid and auth key, logout', async () => {
  const outcomes = await both('key login, logout', async () => {
    await CometChat.login('cometchat-uid-1', 'authkey-1');
    await analytics();
    await CometChat.logout();
  }, ['key:cometchat-uid-1:authkey-1', 'logout']);
  assert.deepEqual(outcomes.map((o) => [o.event, o.success]), [['loginAttempt', true], ['logout', true]]);
});

test('login with an auth token, logout', async () => {
  const outcomes = await both('token login, logout', async () => {
    await CometChat.login(await mint('cometchat-uid-2'));
    await analytics();
    await CometChat.logout();
  }, async () => [`token:${await mint('cometchat-uid-2')}`, 'logout']);
  assert.deepEqual(outcomes.map((o) => [o.event, o.success]), [['loginAttempt', true], ['logout', true]]);
});

test('failed logins: an unknown uid, a wrong key, an unknown token', async () => {
  const outcomes = await both('failed logins', async () => {
    await assert.rejects(CometChat.login('cometchat-uid-9', 'authkey-1'));
    await assert.rejects(CometChat.login('cometchat-uid-1', 'wrong-key'));
    await assert.rejects(CometChat.login('not-a-token'));
  }, ['key:cometchat-uid-9:authkey-1', 'key:cometchat-uid-1:wrong-key', 'token:not-a-token']);
  assert.deepEqual(outcomes.map((o) => o.serverCode),
    ['ERR_UID_NOT_FOUND', 'AUTH_ERR_APIKEY_NOT_FOUND', 'AUTH_ERR_AUTH_TOKEN_NOT_FOUND']);
});

test('the hosts the settings name, until the logout', async () => {
  await server.control('/__test/cometchat-config', { settings: true });
  try {
    const outcomes = await both('settings hosts', async () => {
      await CometChat.login('cometchat-uid-3', 'authkey-1');
      await analytics();
      await CometChat.logout();
    }, ['key:cometchat-uid-3:authkey-1', 'logout']);
    assert.deepEqual(outcomes.map((o) => [o.event, o.success]), [['loginAttempt', true], ['logout', true]]);
  } finally {
    await server.control('/__test/cometchat-config', {});
  }
});

test('with a session file: the device id of the installation', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'authloop-differential-'));
  try {
    const outcomes = await both('key login with a session file', async () => {
      await CometChat.login('cometchat-uid-5', 'authkey-1');
      await analytics();
      await CometChat.logout();
    }, ['key:cometchat-uid-5:authkey-1', 'logout'], { session: path.join(dir, 'session') });
    assert.deepEqual(outcomes.map((o) => [o.event, o.success]), [['loginAttempt', true], ['logout', true]]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('every listed difference still happens', () => {
  assert.deepEqual(unused(list), []);
});
