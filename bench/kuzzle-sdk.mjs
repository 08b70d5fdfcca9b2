// SPDX-License-Identifier: MIT
// The peer a user would otherwise pick: the official kuzzle-sdk doing the same
// Kuzzle cycles (login -> refreshToken -> logout) from Node, measured as this
// process's CPU time, its connect (GET /_publicApi) included as authloop's
// set-up is. Prints one JSON line.
//   node bench/kuzzle-sdk.mjs PORT CA_FILE N
import fs from 'node:fs';
import https from 'node:https';
import { createRequire } from 'node:module';

const [port, caFile, nArg] = process.argv.slice(2);
const n = Number(nArg || 2000);
https.globalAgent.options.ca = fs.readFileSync(caFile);
https.globalAgent.options.keepAlive = true; // the same keep-alive authloop gets
const require = createRequire(new URL('../test/server/package.json', import.meta.url));
const { Kuzzle, Http } = require('kuzzle-sdk');

const cpu0 = process.cpuUsage();
const wall0 = process.hrtime.bigint();
const kuzzle = new Kuzzle(new Http('127.0.0.1', { port: Number(port), ssl: true }), { eventTimeout: 0 });
await kuzzle.connect();
for (let i = 0; i < n; i++) {
  await kuzzle.auth.login('local', { username: 'kuzzle-user', password: 'kuzzle-pass' }, '1h');
  await kuzzle.auth.refreshToken({ expiresIn: '1h' });
  await kuzzle.auth.logout();
}
const cpu = process.cpuUsage(cpu0);
process.stdout.write(`${JSON.stringify({ bench: 'kuzzle-sdk', n,
  cpu_us_per_cycle: Number(((cpu.user + cpu.system) / n).toFixed(1)),
  user_us_per_cycle: Number((cpu.user / n).toFixed(1)),
  sys_us_per_cycle: Number((cpu.system / n).toFixed(1)),
  wall_ms: Math.round(Number(process.hrtime.bigint() - wall0) / 1e6) })}\n`);
kuzzle.disconnect();
