'use strict';
// JWT identities for deltacast, with `jose`: HS256 (a shared secret) and
// RS256 (a key pair), one verify function for every transport.
//
//   node examples/auth/jwt.js
//
// One node:http server carries three transports, each taking its token where
// that carrier can send one:
//   Socket.IO  io(url, { auth: { token } })                 -> socket.handshake.auth.token
//   ws         new WebSocket(url, ['deltacast', 'token.' + jwt])  (subprotocol)
//              or the cookie `deltacast_token=<jwt>`
//   HTTP       Authorization: Bearer <jwt>                  (polling, long-polling)
// The token's `sub` is the user id, its `roles` claim the roles, and its
// `exp` (seconds) becomes expiresAt (ms): at that time the connection is
// closed with 4003 unless the client sent {"t":"auth","token":<fresher jwt>}.
// The same `authenticate` verifies the refresh.

const http = require('node:http');
const { once } = require('node:events');
const jose = require('jose');
const { Server: SocketIOServer } = require('socket.io');
const { io: connectSocketIO } = require('socket.io-client');
const { WebSocketServer, WebSocket } = require('ws');
const { createHub } = require('../..');
const { attachSocketIO } = require('../../lib/adapters/socket.io.js');
const { attachWebSocketServer } = require('../../lib/adapters/ws.js');
const { httpHandler } = require('../../lib/adapters/http.js');

const ISSUER = 'urn:example:deltacast';

async function keys() {
  const secret = new TextEncoder().encode('an HS256 secret of at least 32 bytes, for the example only');
  const { publicKey, privateKey } = await jose.generateKeyPair('RS256');
  return { secret, publicKey, privateKey };
}

/** Signs a token for `sub` with `roles`, valid for `seconds`, with HS256 or RS256. */
function sign(k, alg, sub, roles, seconds) {
  return new jose.SignJWT({ roles })
    .setProtectedHeader({ alg })
    .setSubject(sub)
    .setIssuer(ISSUER)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + seconds)
    .sign(alg === 'HS256' ? k.secret : k.privateKey);
}

/** The identity a token stands for: { id, roles, expiresAt } (ms); throws when it does not verify. */
function verifier(k) {
  return async function authenticate(token) {
    const { alg } = jose.decodeProtectedHeader(token);
    const key = alg === 'HS256' ? k.secret : alg === 'RS256' ? k.publicKey : null;
    if (key === null) throw Object.assign(new Error(`unsupported alg ${alg}`), { code: 'DELTACAST_UNAUTHORIZED' });
    const { payload } = await jose.jwtVerify(token, key, { issuer: ISSUER, algorithms: [alg] });
    return { id: payload.sub, roles: Array.isArray(payload.roles) ? payload.roles : [], expiresAt: payload.exp * 1000 };
  };
}

/** Collects a carrier's protocol messages; `next(pred)` waits for one (bounded). */
function inbox() {
  const messages = [];
  const waiters = [];
  return {
    push(m) {
      messages.push(m);
      for (const w of waiters.splice(0)) w();
    },
    async next(pred, what, ms = 10_000) {
      const deadline = Date.now() + ms;
      for (;;) {
        const at = messages.findIndex(pred);
        if (at >= 0) return messages.splice(at, 1)[0];
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await new Promise((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 50);
        });
      }
    },
  };
}

async function main() {
  const k = await keys();
  const authenticate = verifier(k);
  const audit = [];
  const hub = createHub({
    permissions: { 'ops/*': ['ops'], 'admin/*': ['admin'] },
    lanes: { '**': 'critical' },
    onAudit: (event) => audit.push(event),
  });
  await hub.publish('ops/status', { state: 'green', n: 0 });

  const server = http.createServer();
  const handler = httpHandler(hub, { prefix: '/rt', authenticate });
  server.on('request', (req, res) => {
    if (req.url.startsWith('/rt/')) handler(req, res);
  });
  const io = new SocketIOServer(server);
  const sio = attachSocketIO(io, hub, { authenticate });
  // ws shares the port with Socket.IO: noServer, upgrades on /ws handed over
  const wss = new WebSocketServer({ noServer: true });
  const ws = attachWebSocketServer(wss, hub, { authenticate });
  server.on('upgrade', (req, sock, head) => {
    if (req.url === '/ws') ws.handleUpgrade(req, sock, head);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const base = `http://127.0.0.1:${server.address().port}`;

  // 1. Socket.IO, HS256, token in `auth`; refreshed before it expires.
  const first = await sign(k, 'HS256', 'alice', ['ops', 'admin'], 3); // exp: 2 to 3 s from now
  const socket = connectSocketIO(base, { auth: { token: first }, transports: ['websocket'] });
  const sioIn = inbox();
  socket.on('deltacast', (m) => sioIn.push(m));
  socket.emit('deltacast', { t: 'sub', topic: 'ops/status' });
  const snap = await sioIn.next((m) => m.t === 'snap', 'the Socket.IO snapshot');
  console.log(`socket.io HS256: snapshot of ${snap.topic} at version ${snap.version}`);
  await new Promise((resolve) => setTimeout(resolve, 500));
  socket.emit('deltacast', { t: 'auth', token: await sign(k, 'HS256', 'alice', ['ops'], 60) });
  await new Promise((resolve) => setTimeout(resolve, 3000)); // past the first token's exp
  await hub.publish('ops/status', { state: 'amber', n: 1 });
  const patch = await sioIn.next((m) => m.t === 'patch', 'a patch after the first token expired');
  console.log(`socket.io HS256: refreshed before expiry, still live at version ${patch.to}`);

  // 2. ws, RS256, token as a subprotocol; not refreshed: closed with 4003.
  const rs = await sign(k, 'RS256', 'bob', ['ops'], 2); // exp: 1 to 2 s from now
  const client = new WebSocket(`${base.replace('http', 'ws')}/ws`, ['deltacast', `token.${rs}`]);
  const wsIn = inbox();
  client.on('message', (data) => wsIn.push(JSON.parse(String(data))));
  await once(client, 'open');
  console.log(`ws RS256 (subprotocol): open, protocol ${client.protocol}`);
  client.send(JSON.stringify({ t: 'sub', topic: 'ops/status' }));
  await wsIn.next((m) => m.t === 'snap', 'the ws snapshot');
  const [code] = await once(client, 'close');
  console.log(`ws RS256 (subprotocol): closed with ${code} when the token expired`);

  // 3. ws with the token in a cookie.
  const cookie = new WebSocket(`${base.replace('http', 'ws')}/ws`, {
    headers: { cookie: `deltacast_token=${await sign(k, 'RS256', 'carol', ['ops'], 60)}` },
  });
  await once(cookie, 'open');
  console.log('ws RS256 (cookie): open');
  cookie.close();

  // 4. HTTP with Authorization: Bearer; without a token: 401.
  const ok = await fetch(`${base}/rt/topics/ops/status`, {
    headers: { authorization: `Bearer ${await sign(k, 'HS256', 'dave', ['ops'], 60)}` },
  });
  const body = await ok.json();
  console.log(`http Bearer: ${ok.status} ${body.t} version ${body.version}`);
  const refused = await fetch(`${base}/rt/topics/ops/status`);
  console.log(`http without a token: ${refused.status} ${(await refused.json()).code}`);

  socket.close();
  sio.close?.();
  ws.close?.();
  io.close();
  await hub.close();
  server.closeAllConnections?.();
  server.close();
  const types = audit.map((e) => `${e.type}${e.closeCode ? `:${e.closeCode}` : ''}`);
  console.log(`audit: ${types.join(' ')}`);
  const tokens = JSON.stringify(audit).includes('eyJ') ? 'a token!' : 'no token';
  console.log(`audit events hold ${tokens}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1); // servers and sockets may still be open
});
