// SPDX-License-Identifier: MIT
// A throwaway CA and a server certificate for 127.0.0.1, made once per state
// directory: the reference server and the third-party peers (test/peers) all
// serve TLS with them, and the tests trust DIR/ca.pem.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export function ensureCertificates(dir) {
  const ca = path.join(dir, 'ca.pem');
  if (fs.existsSync(ca)) return;
  fs.mkdirSync(dir, { recursive: true });
  const tmp = fs.mkdtempSync(path.join(dir, '.certs-'));
  const f = (n) => path.join(tmp, n);
  const ssl = (...args) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  ssl('req', '-x509', ...ec, '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '3650',
    '-subj', '/CN=authloop test CA', '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  ssl('req', ...ec, '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=localhost');
  fs.writeFileSync(f('ext.cnf'), 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\n' +
    'extendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n');
  ssl('x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'),
    '-CAcreateserial', '-out', f('server.pem'), '-days', '825', '-extfile', f('ext.cnf'));
  for (const n of ['server.key', 'server.pem', 'ca.key']) fs.renameSync(f(n), path.join(dir, n));
  fs.renameSync(f('ca.pem'), ca); // last: its presence means the set is complete
  fs.rmSync(tmp, { recursive: true, force: true });
}
