// SPDX-License-Identifier: MIT
// cognito-local, a Cognito Identity Provider API emulator no one here wrote,
// started the way its own bin/start.js does it (createDefaultServer) but over
// TLS with the test certificates, then set up through its own API:
//   - a user pool,
//   - app clients: "public" (no secret, tokens of 1 hour), "secret" (with a
//     client secret) and "short" (access and id tokens of SHORT seconds),
//   - users alice / bob with permanent passwords.
//
//   node test/peers/cognito.mjs --state-dir DIR [--stdin-lifeline] [--short SECONDS]
//
// Prints one JSON line when ready: {"port", "ca", "pool", "public", "secret",
// "secret_value", "short"}. Its state lives in DIR/.cognito (cognito-local's
// data directory is relative to the working directory).

import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { createRequire } from 'node:module';
import { ensureCertificates } from '../server/certs.mjs';
import { peerOptions, stopWith } from './peer.mjs';

const require = createRequire(import.meta.url);

const opts = peerOptions('cognito.mjs', { short: 5 });

const dir = path.resolve(opts.stateDir);
ensureCertificates(dir);
const ca = fs.readFileSync(path.join(dir, 'ca.pem'));
fs.mkdirSync(path.join(dir, '.cognito'), { recursive: true });
// cognito-local's configuration file, merged over its defaults
fs.writeFileSync(path.join(dir, '.cognito', 'config.json'), JSON.stringify({
  UserPoolDefaults: { UsernameAttributes: [] }, // plain user names, not e-mail addresses
  ServerConfig: {
    hostname: '127.0.0.1',
    port: 0,
    https: true,
    cert: path.join(dir, 'server.pem'),
    key: path.join(dir, 'server.key'),
  },
}));
process.chdir(dir);

process.env.AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE = '1'; // its Lambda client's notice

// its logger: quiet (pino, as bin/start.js makes it)
const pino = require('pino');
const { createDefaultServer } = require('cognito-local/lib/server/defaults.js');
const logger = pino({ level: 'silent' });
const server = await (await createDefaultServer(logger)).start();
const port = server.address().port;

// its own API, over TLS, as any client calls it
function call(op, body) {
  const data = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = https.request({
      host: '127.0.0.1', port, path: '/', method: 'POST', ca,
      headers: {
        'Content-Type': 'application/x-amz-json-1.1',
        'X-Amz-Target': `AWSCognitoIdentityProviderService.${op}`,
        'Content-Length': Buffer.byteLength(data),
      },
    }, (res) => {
      let text = '';
      res.on('data', (c) => { text += c; });
      res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(text))
        : reject(new Error(`${op}: ${res.statusCode} ${text}`))));
    });
    req.on('error', reject);
    req.end(data);
  });
}

const pool = (await call('CreateUserPool', { PoolName: 'authloop' })).UserPool.Id;
const client = async (name, extra) => (await call('CreateUserPoolClient', {
  UserPoolId: pool, ClientName: name, ...extra,
})).UserPoolClient;
const pub = await client('public', {
  AccessTokenValidity: 1, IdTokenValidity: 1,
  TokenValidityUnits: { AccessToken: 'hours', IdToken: 'hours' },
});
const secret = await client('secret', { GenerateSecret: true });
const short = await client('short', {
  AccessTokenValidity: opts.short, IdTokenValidity: opts.short,
  TokenValidityUnits: { AccessToken: 'seconds', IdToken: 'seconds' },
});
for (const [user, password] of [['alice', 'alice-password-1'], ['bob', 'bob-password-1']]) {
  await call('AdminCreateUser', {
    UserPoolId: pool, Username: user, MessageAction: 'SUPPRESS',
    UserAttributes: [{ Name: 'email', Value: `${user}@example.com` }],
  });
  await call('AdminSetUserPassword', {
    UserPoolId: pool, Username: user, Password: password, Permanent: true,
  });
}

process.stdout.write(`${JSON.stringify({
  port, ca: path.join(dir, 'ca.pem'), pool, public: pub.ClientId, secret: secret.ClientId,
  secret_value: secret.ClientSecret, short: short.ClientId,
})}\n`);

stopWith(server, opts.lifeline);
