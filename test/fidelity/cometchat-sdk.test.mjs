// SPDX-License-Identifier: MIT
// The official CometChat JavaScript SDK (a browser bundle, run under a small
// shim) against the reference server, with its admin and client host
// overrides: the server speaks CometChat's dialect as the SDK expects it.
import assert from 'node:assert/strict';
import https from 'node:https';
import { after, before, test } from 'node:test';
import { startServer } from './server.mjs';
import { startCometChat } from './browser-shim.mjs';

let server;
let CometChat;
let host;

before(async () => {
  server = await startServer();
  ({ CometChat, host } = await startCometChat(server, 'us'));
});

after(() => server.stop());

test('login with uid and auth key: auth token from the admin API, then PUT /me', async () => {
  const before = globalThis.requests.length;
  const user = await CometChat.login('cometchat-uid-1', 'authkey-1');
  assert.equal(user.getUid(), 'cometchat-uid-1');
  assert.equal(user.getName(), 'Andrew Joseph');
  assert.match(user.getAuthToken(), /^cometchat-uid-1_/);
  const sent = globalThis.requests.slice(before).map((r) => `${r.method} ${new URL(r.url).pathname}`);
  assert.deepEqual(sent, ['POST /cometchat/admin/v3.0/users/cometchat-uid-1/auth_tokens',
    'PUT /cometchat/client/v3.0/me']);
  const logged = await CometChat.getLoggedinUser();
  assert.equal(logged.getUid(), 'cometchat-uid-1');
  // a few seconds after a login the SDK posts its platform details; it must
  // find the session alive (it does not handle the rejection otherwise)
  await globalThis.requestSeen('/user_sessions');
});

test('logout: DELETE /me, and the token is gone on the server', async () => {
  const token = (await CometChat.getLoggedinUser()).getAuthToken();
  await CometChat.logout();
  assert.equal(await CometChat.getLoggedinUser(), null);
  const status = await new Promise((resolve) => {
    https.request(`https://${host('client')}/me`, { method: 'GET', headers: { appid: 'app1', authtoken: token } },
      (res) => { res.resume(); resolve(res.statusCode); }).end();
  });
  assert.equal(status, 401);
});

test('login with an auth token minted by a backend', async () => {
  const minted = await new Promise((resolve, reject) => {
    const req = https.request(`https://${host('admin')}/users/cometchat-uid-2/auth_tokens`, {
      method: 'POST', headers: { appid: 'app1', apikey: 'authkey-1', 'content-type': 'application/json' },
    }, (res) => {
      let text = '';
      res.on('data', (c) => { text += c; });
      res.on('end', () => resolve(JSON.parse(text).data.authToken));
    });
    req.on('error', reject);
    req.end('{}');
  });
  const user = await CometChat.login(minted);
  assert.equal(user.getUid(), 'cometchat-uid-2');
  await globalThis.requestSeen('/user_sessions');
  await CometChat.logout();
});

test('a failed login: unknown uid, and a wrong auth key', async () => {
  await assert.rejects(CometChat.login('cometchat-uid-9', 'authkey-1'), (e) => e.code === 'ERR_UID_NOT_FOUND');
  await assert.rejects(CometChat.login('cometchat-uid-1', 'wrong-key'), (e) => e.code === 'AUTH_ERR_APIKEY_NOT_FOUND');
  await assert.rejects(CometChat.login('not-a-token'), (e) => e.code === 'AUTH_ERR_AUTH_TOKEN_NOT_FOUND');
  assert.equal(await CometChat.getLoggedinUser(), null);
});

test('nothing left this machine', () => {
  for (const r of globalThis.requests) assert.equal(new URL(r.url).hostname, '127.0.0.1');
});
