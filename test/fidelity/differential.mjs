// SPDX-License-Identifier: MIT
// The differential tests' shared half: run authloop (authloop_ops) for the
// same steps an official SDK took, read what the reference server received
// from each, and compare request by request. A difference fails the test
// unless docs/protocol.md lists it, with its reason, under "Differences from
// the official SDKs"; a listed difference that no longer happens fails too.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

// Every header is compared but the HTTP client's own: framing, connection
// and the client's name (docs/protocol.md says why).
const TRANSPORT = ['host', 'content-length', 'transfer-encoding', 'connection', 'user-agent',
  'accept-encoding', 'expect'];

// Values that differ by nature between two runs become their kind, numbered
// in the order they first appear in the run: a token sent where another one
// of the same run was due shows as a difference. Times stay a kind.
function shaper() {
  const seen = new Map();
  const named = (kind) => (v) => {
    if (!seen.has(v)) seen.set(v, `<${kind}#${[...seen.values()].filter((n) => n.startsWith(`<${kind}#`)).length + 1}>`);
    return seen.get(v);
  };
  return (v) => v
    .replace(/kauth-[A-Za-z0-9_.-]+/g, named('jwt'))
    .replace(/cometchat-uid-\d+_[A-Za-z0-9_-]+/g, named('authToken'))
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, named('uuid'))
    .replace(/(?<![0-9])1\d{12}(?![0-9])/g, '<ms>');
}

function flatten(value, prefix, out, shape) {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const k of Object.keys(value)) flatten(value[k], prefix ? `${prefix}.${k}` : k, out, shape);
    if (!Object.keys(value).length) out[prefix] = '{}';
  } else if (typeof value === 'string') {
    out[prefix] = JSON.stringify(shape(value));
  } else if (Array.isArray(value)) {
    out[prefix] = JSON.stringify(value.map((v) => (typeof v === 'string' ? shape(v) : v)));
  } else {
    out[prefix] = JSON.stringify(value); // numbers, booleans, null: their value
  }
  return out;
}

// One request as the comparison sees it (shape: the run's, see shaper).
export function normalize(req, shape) {
  const url = new URL(req.url, 'https://server');
  const headers = {};
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i].toLowerCase();
    if (TRANSPORT.includes(name)) continue;
    const v = JSON.stringify(shape(req.rawHeaders[i + 1]));
    headers[name] = name in headers ? `${headers[name]} + ${v}` : v; // a repeated header shows
  }
  let body = {};
  if (req.body) {
    try {
      body = flatten(JSON.parse(req.body), '', {}, shape);
    } catch {
      body = { '(text)': JSON.stringify(shape(req.body)) };
    }
  }
  const query = {};
  for (const [k, v] of url.searchParams) { // a repeated parameter shows every value
    const j = JSON.stringify(shape(v));
    query[k] = k in query ? `${query[k]} + ${j}` : j;
  }
  return { route: `${req.method} ${url.pathname}`, headers, query, body };
}

// Longest common subsequence of routes: requests are paired in order; the
// rest are extra on one side. same(x, y): the SDK's route x and authloop's y
// are one operation (a route of the SDK's that authloop sends elsewhere).
function align(a, b, same) {
  const n = a.length, m = b.length;
  const L = Array.from({ length: n + 1 }, () => new Array(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--)
    for (let j = m - 1; j >= 0; j--)
      L[i][j] = same(a[i].route, b[j].route) ? L[i + 1][j + 1] + 1 : Math.max(L[i + 1][j], L[i][j + 1]);
  const pairs = [];
  let i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && same(a[i].route, b[j].route)) pairs.push([a[i++], b[j++]]);
    else if (j >= m || (i < n && L[i + 1][j] >= L[i][j + 1])) pairs.push([a[i++], null]);
    else pairs.push([null, b[j++]]);
  }
  return pairs;
}

// Differences between the SDK's requests and authloop's, each
// {key: "ROUTE: field", detail}.
// routes: {SDK route: authloop route} for one operation sent to two paths.
export function compare(sdk, authloop, routes = {}) {
  const diffs = [];
  const same = (x, y) => x === y || routes[x] === y;
  const one = (list) => { const shape = shaper(); return list.map((r) => normalize(r, shape)); };
  for (const [s, a] of align(one(sdk), one(authloop), same)) {
    if (!a) { diffs.push({ key: `${s.route}: only the SDK sends it`, detail: '' }); continue; }
    if (!s) { diffs.push({ key: `${a.route}: only authloop sends it`, detail: '' }); continue; }
    if (s.route !== a.route) diffs.push({ key: `${s.route}: sent to ${a.route}`, detail: '' });
    for (const part of ['headers', 'query', 'body']) {
      const names = new Set([...Object.keys(s[part]), ...Object.keys(a[part])]);
      for (const k of names) {
        if (s[part][k] === a[part][k]) continue;
        const label = part === 'headers' ? `header ${k}` : `${part === 'query' ? 'query' : 'body'} ${k}`;
        diffs.push({ key: `${s.route}: ${label}`, detail: `SDK ${s[part][k] ?? '(none)'}, authloop ${a[part][k] ?? '(none)'}` });
      }
    }
  }
  return diffs;
}

// The accepted differences: rows "| dialect | scenario | difference | reason |"
// of the section "Differences from the official SDKs" in docs/protocol.md.
export function accepted(dialect) {
  const doc = fs.readFileSync(path.join(here, '..', '..', 'docs', 'protocol.md'), 'utf8');
  const section = doc.split(/^## Differences from the official SDKs$/m)[1]?.split(/^## /m)[0] ?? '';
  const rows = [];
  for (const line of section.split('\n')) {
    const cells = line.split('|').slice(1, -1).map((c) => c.trim().replace(/^`|`$/g, ''));
    if (cells.length !== 4 || cells[0] !== dialect) continue;
    if (!cells[3]) throw new Error(`docs/protocol.md: "${cells[2]}" has no reason`);
    rows.push({ scenario: cells[1], key: cells[2], used: false });
  }
  return rows;
}

// A listed difference: its "*" stands for any text, "\*" for a star.
const glob = (pattern) => new RegExp(`^${pattern.split(/(?<!\\)\*/).map((p) => p.replace(/\\\*/g, '*')
  .replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);

// A difference as the table lists it: what differs, and both values
// ("header accept (SDK (none), authloop */*)"), so that a listed difference
// with other values is a new one.
const shown = (d) => (d.detail ? `${d.key} (${d.detail})` : d.key);

// Fails on a difference not listed for this scenario ("*": every scenario).
export function check(dialect, scenario, diffs, list) {
  const unlisted = [];
  for (const d of diffs) {
    const row = list.find((r) => glob(r.key).test(shown(d)) && (r.scenario === '*' || r.scenario === scenario));
    if (row) row.used = true;
    else unlisted.push(shown(d));
  }
  if (unlisted.length)
    throw new Error(`${dialect} "${scenario}": differences from the SDK not in docs/protocol.md:\n  ${unlisted.join('\n  ')}`);
}

export function unused(list) {
  return list.filter((r) => !r.used).map((r) => `${r.scenario}: ${r.key}`);
}

// What the server received since the last reset, the SDK's analytics left out.
export async function received(server) {
  const { requests } = await server.get('/__test/requests');
  return requests.filter((r) => !new URL(r.url, 'https://server').pathname.endsWith('/user_sessions'));
}

export async function reset(server) {
  await server.control('/__test/reset-stats', {});
}

// authloop_ops with these options and steps: its outcome lines.
export function runAuthloop(server, options, ops) {
  const exe = process.env.AUTHLOOP_OPS;
  if (!exe) throw new Error('AUTHLOOP_OPS is not set (meson sets it)');
  const args = ['--ca', server.ca];
  for (const [k, v] of Object.entries(options)) args.push(`--${k}`, v);
  return new Promise((resolve, reject) => {
    const child = spawn(exe, [...args, ...ops], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    child.stdout.on('data', (c) => { out += c; });
    child.stderr.on('data', (c) => { err += c; });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`authloop_ops exited ${code}: ${err}`));
      resolve(out.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)));
    });
  });
}
