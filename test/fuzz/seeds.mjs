// SPDX-License-Identifier: MIT
// Captures real answers from the reference server as fuzz seeds: one file per answer,
// the first byte the status index of fuzz_answers (200 201 204 302 400 401 403 404 429 500 503).
import https from 'node:https';
import fs from 'node:fs';
const [port, ca, out] = process.argv.slice(2);
const idx = { 200: 0, 201: 1, 204: 2, 302: 3, 400: 4, 401: 5, 403: 6, 404: 7, 429: 8, 500: 9, 503: 10 };
const req = (method, path, body, headers = {}) => new Promise((res, rej) => {
  const r = https.request({ host: '127.0.0.1', port, path, method, ca: fs.readFileSync(ca),
    headers: { 'Content-Type': 'application/json', ...headers } }, (resp) => {
    const chunks = []; resp.on('data', (c) => chunks.push(c));
    resp.on('end', () => res({ status: resp.statusCode, body: Buffer.concat(chunks) }));
  });
  r.on('error', rej); if (body !== undefined) r.write(typeof body === 'string' ? body : JSON.stringify(body)); r.end();
});
let n = 0;
const save = (dir, a) => { fs.writeFileSync(`${out}/${dir}/seed-${String(n++).padStart(3, '0')}`, Buffer.concat([Buffer.from([idx[a.status] ?? 0]), a.body])); return a; };
const j = (a) => JSON.parse(a.body.toString());
const code = j(await req('POST', '/__test/codes', { userId: 'fuzz' })).authorizationCode;
const login = save('answers', await req('POST', '/auth/login', { authorizationCode: code }));
const t = j(login);
save('answers', await req('POST', '/auth/login', { authorizationCode: 'bad' }));
save('answers', await req('POST', '/auth/refresh', { refreshToken: t.refreshToken }));
save('answers', await req('POST', '/auth/refresh', { refreshToken: 'nope' }));
save('answers', await req('GET', '/api/me', undefined, { Authorization: `Bearer ${t.accessToken}` }));
const kl = save('answers', await req('POST', '/_login/local?expiresIn=1h', { username: 'kuzzle-user', password: 'kuzzle-pass' }));
const kj = j(kl).result.jwt;
save('answers', await req('POST', '/_login/local', { username: 'kuzzle-user', password: 'x' }));
save('answers', await req('POST', '/_login/nosuch', {}));
save('answers', await req('POST', '/_login/twostep', { username: 'kuzzle-user' }));
save('answers', await req('GET', '/_me', undefined, { Authorization: `Bearer ${kj}` }));
save('answers', await req('POST', '/_checkToken', { token: kj }));
save('answers', await req('POST', '/_checkToken', { token: 'x' }));
save('answers', await req('POST', '/_refreshToken', undefined, { Authorization: `Bearer ${kj}` }));
save('answers', await req('POST', '/_refreshToken', undefined, { Authorization: 'Bearer nope' }));
save('answers', await req('POST', '/_logout', undefined, { Authorization: 'Bearer nope' }));
const cc = { appId: 'app1', apiKey: 'authkey-1' };
const at = save('answers', await req('POST', '/cometchat/admin/v3.0/users/cometchat-uid-1/auth_tokens', { platform: 'c' }, cc));
save('answers', await req('POST', '/cometchat/admin/v3.0/users/nobody/auth_tokens', { platform: 'c' }, cc));
const tok = j(at).data.authToken;
save('answers', await req('PUT', '/cometchat/client/v3.0/me', { platform: 'c' }, { appId: 'app1', authToken: tok }));
save('answers', await req('PUT', '/cometchat/client/v3.0/me', { platform: 'c' }, { appId: 'app1', authToken: 'nope' }));
save('answers', await req('DELETE', '/cometchat/client/v3.0/me', undefined, { appId: 'app1', authToken: tok }));
// the same answers as a login sequence for fuzz_login: kind byte, then [status][len lo][len hi][body]...
const chunk = (a) => { const b = a.body; return Buffer.concat([Buffer.from([idx[a.status] ?? 0, b.length & 255, b.length >> 8]), b]); };
const code2 = j(await req('POST', '/__test/codes', { userId: 'fuzz2' })).authorizationCode;
fs.writeFileSync(`${out}/login/gateway`, Buffer.concat([Buffer.from([0]), chunk(await req('POST', '/auth/login', { authorizationCode: code2 }))]));
const k2 = await req('POST', '/_login/local', { username: 'kuzzle-user', password: 'kuzzle-pass' });
fs.writeFileSync(`${out}/login/kuzzle`, Buffer.concat([Buffer.from([1]), chunk(k2), chunk(await req('GET', '/_me', undefined, { Authorization: `Bearer ${j(k2).result.jwt}` }))]));
const kt = j(await req('POST', '/__test/kuzzle-token', { username: 'kuzzle-user' })).jwt;
fs.writeFileSync(`${out}/login/kuzzle-two-step`, Buffer.concat([Buffer.from([2]), chunk(await req('POST', '/_checkToken', { token: kt })), chunk(await req('GET', '/_me', undefined, { Authorization: `Bearer ${kt}` }))]));
const at2 = await req('POST', '/cometchat/admin/v3.0/users/cometchat-uid-2/auth_tokens', { platform: 'c' }, cc);
fs.writeFileSync(`${out}/login/cometchat`, Buffer.concat([Buffer.from([3]), chunk(at2), chunk(await req('PUT', '/cometchat/client/v3.0/me', { platform: 'c' }, { appId: 'app1', authToken: j(at2).data.authToken }))]));
// JWT claims as seeds
fs.writeFileSync(`${out}/jwt/access`, Buffer.from(t.accessToken.split('.')[1], 'base64url'));
fs.writeFileSync(`${out}/jwt/kuzzle`, Buffer.from(kj.slice(6).split('.')[1], 'base64url'));
console.log(`seeds: ${n} answers`);
