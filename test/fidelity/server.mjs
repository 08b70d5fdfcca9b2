// SPDX-License-Identifier: MIT
// Starts the reference server for a fidelity test and stops it afterwards.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

export async function startServer() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'authloop-fidelity-'));
  const child = spawn(process.execPath, [path.join(here, '..', 'server', 'server.mjs'), '--port', '0',
    '--state-dir', dir, '--stdin-lifeline'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const line = await new Promise((resolve, reject) => {
    readline.createInterface({ input: child.stdout }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
  const { port, ca } = JSON.parse(line);
  // node's https requests (the SDKs') trust this server's throwaway CA
  https.globalAgent.options.ca = fs.readFileSync(ca);
  return {
    port,
    ca,
    // POST to the server's test-control API (docs/test-server.md)
    control(route, body) {
      return new Promise((resolve, reject) => {
        const req = https.request({ host: '127.0.0.1', port, path: route, method: 'POST',
          headers: { 'Content-Type': 'application/json' } }, (res) => {
          res.resume();
          res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`${route}: ${res.statusCode}`))));
        });
        req.on('error', reject);
        req.end(JSON.stringify(body));
      });
    },
    // GET a test-control route's JSON
    get(route) {
      return new Promise((resolve, reject) => {
        https.get({ host: '127.0.0.1', port, path: route }, (res) => {
          let text = '';
          res.on('data', (c) => { text += c; });
          res.on('end', () => resolve(JSON.parse(text)));
        }).on('error', reject);
      });
    },
    stop() {
      child.stdin.end();
      return new Promise((resolve) => child.once('exit', () => {
        fs.rmSync(dir, { recursive: true, force: true });
        resolve();
      }));
    },
  };
}

// Only loopback: a fidelity test must never reach anything else.
export function loopbackOnly(url) {
  const host = new URL(url).hostname;
  if (host !== '127.0.0.1' && host !== 'localhost' && host !== '[::1]')
    throw new Error(`refused: ${url} is not on this machine`);
}
