// SPDX-License-Identifier: MIT
// Just enough of a browser for CometChat's JavaScript SDK (a browser bundle)
// to run in Node: window, an in-memory localStorage/sessionStorage, navigator,
// and a fetch that only reaches this machine and trusts the test CA.
import fs from 'node:fs';
import https from 'node:https';
import { loopbackOnly } from './server.mjs';

class MemoryStorage {
  constructor() { this.m = new Map(); }
  get length() { return this.m.size; }
  key(i) { return [...this.m.keys()][i] ?? null; }
  getItem(k) { return this.m.has(k) ? this.m.get(k) : null; }
  setItem(k, v) { this.m.set(k, String(v)); }
  removeItem(k) { this.m.delete(k); }
  clear() { this.m.clear(); }
}

export function installBrowserShim(caFile) {
  const ca = fs.readFileSync(caFile);
  const g = globalThis;
  g.window = g;
  g.self = g;
  g.localStorage = new MemoryStorage();
  g.sessionStorage = new MemoryStorage();
  if (!g.navigator) g.navigator = { userAgent: 'node', language: 'en' };
  g.document = { hasFocus: () => true, addEventListener() {}, removeEventListener() {},
    visibilityState: 'visible', querySelector: () => null, querySelectorAll: () => [] };
  g.location = { hostname: 'localhost', host: 'localhost', origin: 'https://localhost', href: 'https://localhost/',
    protocol: 'https:', pathname: '/' };
  g.screen = { width: 1280, height: 800 };
  g.matchMedia = () => ({ matches: false, addListener() {}, removeListener() {} });
  g.addEventListener = () => {};
  g.removeEventListener = () => {};
  g.requests = [];
  const waiting = [];
  // resolves when a request whose path ends with `suffix` has been answered
  g.requestSeen = (suffix) => new Promise((resolve) => waiting.push({ suffix, resolve }));
  const answered = (url) => {
    for (let i = waiting.length - 1; i >= 0; i--)
      if (new URL(url).pathname.endsWith(waiting[i].suffix)) waiting.splice(i, 1)[0].resolve();
  };
  g.fetch = (url, init = {}) => {
    loopbackOnly(String(url));
    g.requests.push({ method: init.method || 'GET', url: String(url), headers: { ...(init.headers || {}) } });
    return new Promise((resolve, reject) => {
      const req = https.request(url, { method: init.method || 'GET', headers: init.headers, ca }, (res) => {
        let text = '';
        res.on('data', (c) => { text += c; });
        res.on('end', () => setImmediate(answered, String(url)) && resolve({
          ok: res.statusCode < 400,
          status: res.statusCode,
          json: async () => JSON.parse(text),
          text: async () => text,
        }));
      });
      req.on('error', reject);
      if (init.body !== undefined && init.body !== null) req.write(init.body);
      req.end();
    });
  };
}

// The official CometChat SDK, started in this process under the shim against
// the reference server's CometChat hosts (app1, region as given): { CometChat, host }.
export async function startCometChat(server, region) {
  installBrowserShim(server.ca);
  const { createRequire } = await import('node:module');
  const require = createRequire(new URL('../server/package.json', import.meta.url));
  const { CometChat } = require('@cometchat/chat-sdk-javascript');
  const host = (api) => `127.0.0.1:${server.port}/cometchat/${api}/v3.0`;
  const settings = new CometChat.AppSettingsBuilder()
    .setRegion(region)
    .overrideAdminHost(host('admin'))
    .overrideClientHost(host('client'))
    .autoEstablishSocketConnection(false) // no websocket
    .build();
  await CometChat.init('app1', settings);
  return { CometChat, host };
}
