// SPDX-License-Identifier: MIT
// Talks to the reference server's test-control API (docs/test-server.md).
//   node test/server/ctl.mjs --url URL --ca CA_FILE code USER_ID [TOKEN_TTL_S] -> prints a one-time code
//   node test/server/ctl.mjs --url URL --ca CA_FILE fault '{"route": ...}' -> queues a fault
//   node test/server/ctl.mjs --url URL --ca CA_FILE stats          -> prints the counters
import fs from 'node:fs';
import https from 'node:https';

const args = process.argv.slice(2);
const opt = (name) => {
  const i = args.indexOf(name);
  if (i < 0 || i + 1 >= args.length) throw new Error(`${name} is required`);
  const v = args[i + 1];
  args.splice(i, 2);
  return v;
};

function call(url, ca, method, path, body) {
  return new Promise((resolve, reject) => {
    const req = https.request(new URL(path, url), { method, ca, headers: { 'Content-Type': 'application/json' } },
      (res) => {
        let text = '';
        res.on('data', (c) => { text += c; });
        res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(text))
          : reject(new Error(`${path}: HTTP ${res.statusCode} ${text}`))));
      });
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

try {
  const url = opt('--url');
  const ca = fs.readFileSync(opt('--ca'));
  const [cmd, arg, ttl] = args;
  if (cmd === 'code' && arg) {
    const body = ttl ? { userId: arg, tokenTtl: Number(ttl) } : { userId: arg };
    const r = await call(url, ca, 'POST', '/__test/codes', body);
    process.stdout.write(`${r.authorizationCode}\n`);
  } else if (cmd === 'fault' && arg) {
    await call(url, ca, 'POST', '/__test/faults', JSON.parse(arg));
  } else if (cmd === 'stats') {
    process.stdout.write(`${JSON.stringify(await call(url, ca, 'GET', '/__test/stats'))}\n`);
  } else {
    throw new Error('usage: ctl.mjs --url URL --ca CA (code USER_ID [TOKEN_TTL_S] | fault JSON | stats)');
  }
} catch (e) {
  process.stderr.write(`ctl.mjs: ${e.message}\n`);
  process.exit(1);
}
