// SPDX-License-Identifier: MIT
// The peer a user would otherwise pick: the official kuzzle-sdk doing the same
// Kuzzle cycles (login -> refreshToken -> logout) from Node, measured as this
// process's CPU time, its connect (GET /_publicApi) included as authloop's
// set-up is. Prints one JSON line.
//   node bench/kuzzle-sdk.mjs PORT CA_FILE N [CLIENTS]
// CLIENTS absent: one SDK, its refresh at once after the login (as its own code
// does; Kuzzle then answers with the same jwt). CLIENTS given: that many SDKs
// side by side, a user each, each waiting out the second its token was issued
// in before the refresh, as authloop does (bench/cycles.c --clients): the same
// work, the same pauses, the same wake-ups.
import fs from 'node:fs';
import https from 'node:https';
import { createRequire } from 'node:module';
import { setTimeout as sleep } from 'node:timers/promises';

const [port, caFile, nArg, clientsArg] = process.argv.slice(2);
const n = Number(nArg || 2000);
const clients = clientsArg === undefined ? 0 : Number(clientsArg);
const ca = fs.readFileSync(caFile);
https.globalAgent.options.ca = ca;
https.globalAgent.options.keepAlive = true; // the same keep-alive authloop gets
const require = createRequire(new URL('../test/server/package.json', import.meta.url));
const { Kuzzle, Http } = require('kuzzle-sdk');

// the users, as bench/cycles.c makes them (setup, not measured)
if (clients > 0) {
  await new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port: Number(port), path: '/__test/kuzzle-users',
      method: 'POST', ca, headers: { 'content-type': 'application/json' } }, (res) => {
      res.resume();
      res.on('end', resolve);
    });
    req.on('error', reject);
    req.end(JSON.stringify({ prefix: 'cycles', password: 'cycles-pass', count: clients }));
  });
}

const cpu0 = process.cpuUsage();
const wall0 = process.hrtime.bigint();
let started = 0;
async function run(user, password, wait) {
  const kuzzle = new Kuzzle(new Http('127.0.0.1', { port: Number(port), ssl: true }), { eventTimeout: 0 });
  await kuzzle.connect();
  while (started < n) {
    started++;
    await kuzzle.auth.login('local', { username: user, password }, '1h');
    if (wait)
      await sleep(1000);
    await kuzzle.auth.refreshToken({ expiresIn: '1h' });
    await kuzzle.auth.logout();
  }
  kuzzle.disconnect();
}
if (clients > 0) {
  // the first at once, the others spread over a second, as bench/cycles.c
  await Promise.all(Array.from({ length: clients }, (_, i) =>
    sleep((i * 1000) / clients).then(() => run(`cycles-${i}`, 'cycles-pass', true))));
} else {
  await run('kuzzle-user', 'kuzzle-pass', false);
}
const cpu = process.cpuUsage(cpu0);
process.stdout.write(`${JSON.stringify({ bench: clients > 0 ? 'kuzzle-sdk-waits' : 'kuzzle-sdk', n,
  clients: Math.max(clients, 1),
  cpu_us_per_cycle: Number(((cpu.user + cpu.system) / n).toFixed(1)),
  user_us_per_cycle: Number((cpu.user / n).toFixed(1)),
  sys_us_per_cycle: Number((cpu.system / n).toFixed(1)),
  wall_ms: Math.round(Number(process.hrtime.bigint() - wall0) / 1e6) })}\n`);
