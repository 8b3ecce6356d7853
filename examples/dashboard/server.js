#!/usr/bin/env node
'use strict';
// The deltacast supply-chain dashboard: one Node server on one port.
//
//   npm start                      http://localhost:3000
//   PORT=8080 npm start            another port
//   HOST=0.0.0.0 npm start         other machines too (prints localhost and this machine's addresses)
//
// node:http serves the page (a React app bundled by esbuild at start, in memory: nothing is
// fetched at run time), the demo API (login, watchlist, network loss) and deltacast/http (SSE and
// long-polling under /deltacast); its 'upgrade' event hands /ws to a `noServer` ws server and
// Socket.IO takes /socket.io/. All of them serve one in-memory hub fed by simulator.js.

const http = require('node:http');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const fs = require('node:fs');
const crypto = require('node:crypto');
const { WebSocketServer } = require('ws');
const { Server: SocketIOServer } = require('socket.io');
const { SignJWT, jwtVerify } = require('jose');
const { createHub } = require('deltacast');
const { attachWebSocketServer } = require('deltacast/ws');
const { attachSocketIO } = require('deltacast/socket.io');
const { stopOnSignal } = require('../stop-on-signal.js');
const { httpHandler } = require('deltacast/http');
const { startSimulator } = require('./simulator.js');
const { bundle } = require('./bundle.js');

const USERS = {
  alice: { id: 'alice', name: 'Alice (buyer, EU)', watchlist: ['p0001', 'p0003', 'p0027'] },
  bob: { id: 'bob', name: 'Bob (planner, APAC)', watchlist: ['p0152', 'p0160', 'p0178'] },
};
const COOKIE = 'dc_session';

function parseCookies(header) {
  const out = {};
  for (const part of String(header || '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0) out[part.slice(0, i).trim()] = decodeURIComponent(part.slice(i + 1).trim());
  }
  return out;
}

/**
 * Starts the dashboard. Options: port (default 3000; 0: any), host, rows (5000), changesPerSecond
 * (300), failRate (0.2: the share of watchlist/alert calls that fail on purpose), random, lossSeconds
 * (default for the network-loss control, 8), secret (HS256 key). Resolves with { url, port, hub,
 * simulator, failNext(), close() }; rejects with the listen error (EADDRINUSE, ...).
 */
async function startDashboard(options = {}) {
  const o = { port: 3000, rows: 5000, changesPerSecond: 300, failRate: 0.2, random: Math.random, lossSeconds: 8, ...options };
  const secret = o.secret ? new TextEncoder().encode(o.secret) : crypto.randomBytes(32);
  const [script, page] = await Promise.all([bundle(path.join(__dirname, 'app.jsx')), fs.promises.readFile(path.join(__dirname, 'index.html'), 'utf8')]);

  const hub = createHub({
    lanes: {
      prices: 'normal',
      suppliers: 'low',
      shipments: 'high',
      'market/*': 'normal',
      'forecast/*': 'normal',
      alerts: 'critical',
      stats: 'low',
      'user/**': 'critical',
    },
    // Public feeds for everyone; a watchlist only for its own user.
    permissions: {
      prices: [],
      suppliers: [],
      shipments: [],
      'market/*': [],
      'forecast/*': [],
      alerts: [],
      stats: [],
      'user/{userId}/watchlist': [],
    },
    // the price board's snapshot is about 1.2 MB: let one through the credit window
    credit: { maxBytes: 8 * 1024 * 1024 },
    // a few hundred changes a second: keep ~15 s of them, so that a client back from a network
    // loss resumes with patches rather than a new snapshot
    history: { maxCount: 4096, maxBytes: 4 * 1024 * 1024 },
  });
  for (const u of Object.values(USERS)) {
    await hub.publish(`user/${u.id}/watchlist`, { user: u.id, items: u.watchlist.map((id) => ({ id, addedAt: Date.now() })), read: [] });
  }
  const simulator = startSimulator(hub, { rows: o.rows, changesPerSecond: o.changesPerSecond });
  await simulator.ready;

  // ---- identity: a signed cookie (HS256 JWT), the same on every carrier -------------------------
  async function identify(cookieHeader) {
    const token = parseCookies(cookieHeader)[COOKIE];
    if (!token) return { roles: [] }; // anonymous: the public feeds only
    try {
      const { payload } = await jwtVerify(token, secret, { algorithms: ['HS256'] });
      return { id: payload.sub, roles: ['user'], expiresAt: payload.exp * 1000 };
    } catch {
      return { roles: [] };
    }
  }

  // ---- the simulated network loss -----------------------------------------------------------
  let lossUntil = 0;
  const lossActive = () => Date.now() < lossUntil;

  const wss = new WebSocketServer({ noServer: true });
  const wsAttachment = attachWebSocketServer(wss, hub, { user: (req) => identify(req.headers.cookie) });

  const server = http.createServer();
  const io = new SocketIOServer(server, {
    serveClient: false,
    destroyUpgrade: false,
    allowRequest: (req, cb) => cb(lossActive() ? 'network loss (simulated)' : null, !lossActive()),
  });
  const ioAttachment = attachSocketIO(io, hub, { user: (socket) => identify(socket.handshake.headers.cookie) });
  const pollHandler = httpHandler(hub, { prefix: '/deltacast', user: (req) => identify(req.headers.cookie), retryMs: 1000 });

  server.on('upgrade', (req, socket, head) => {
    const { pathname } = new URL(req.url, 'http://x');
    if (pathname.startsWith('/socket.io/')) return; // Socket.IO's own listener
    if (pathname !== '/ws' || lossActive()) {
      socket.end(`HTTP/1.1 ${lossActive() ? '503 Service Unavailable' : '404 Not Found'}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      return;
    }
    wsAttachment.handleUpgrade(req, socket, head);
  });

  let failNext = 0;
  const json = (res, status, body, headers = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers });
    res.end(JSON.stringify(body));
  };
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms).unref());

  /** A watchlist change: fails one call in five (failRate) after a short delay, so that the rollback shows. */
  async function watchlistChange(req, res, url, change) {
    const me = await identify(req.headers.cookie);
    if (!me.id) return json(res, 401, { code: 'DEMO_UNAUTHORIZED', message: 'log in first' });
    const id = url.searchParams.get('id');
    if (!id || id.length > 64) return json(res, 400, { code: 'DEMO_BAD_REQUEST', message: 'id is required' });
    await sleep(o.actionDelayMs ?? 400);
    if (failNext > 0 || o.random() < o.failRate) {
      if (failNext > 0) failNext--;
      return json(res, 503, { code: 'DEMO_FAILURE', message: 'the server failed this call on purpose (one call in five does)' });
    }
    const topic = `user/${me.id}/watchlist`;
    const current = hub.get(topic).data;
    const changeId = String(req.headers['x-change-id'] || '').slice(0, 128) || undefined;
    const version = await hub.publish(topic, change(current, id), changeId ? { id: changeId } : {});
    json(res, 200, version || hub.get(topic));
  }

  server.on('request', (req, res) => {
    const url = new URL(req.url, 'http://x');
    const p = url.pathname;
    if (p.startsWith('/socket.io/')) return; // answered by Socket.IO
    if (p === '/deltacast' || p.startsWith('/deltacast/')) return pollHandler(req, res);
    if (req.method === 'GET' && (p === '/' || p === '/index.html')) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      return res.end(page);
    }
    if (p === '/favicon.ico') return res.writeHead(204).end();
    if (req.method === 'GET' && p === '/app.js') {
      res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'no-store' });
      return res.end(script);
    }
    if (p === '/api/me') {
      return identify(req.headers.cookie).then((me) => json(res, 200, { user: me.id ? USERS[me.id] : null, users: Object.values(USERS), lossUntil }));
    }
    if (req.method !== 'POST') return json(res, 404, { code: 'DEMO_NOT_FOUND', message: `no route ${req.method} ${p}` });
    if (p === '/api/login') {
      const user = USERS[url.searchParams.get('user')];
      if (!user) return json(res, 400, { code: 'DEMO_BAD_REQUEST', message: 'user must be alice or bob' });
      return new SignJWT({ name: user.name })
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject(user.id)
        .setIssuedAt()
        .setExpirationTime('12h')
        .sign(secret)
        .then((token) => json(res, 200, { user }, { 'set-cookie': `${COOKIE}=${token}; Path=/; HttpOnly; SameSite=Lax` }));
    }
    if (p === '/api/network-loss') {
      const seconds = Math.min(60, Math.max(1, Number(url.searchParams.get('seconds')) || o.lossSeconds));
      lossUntil = Date.now() + seconds * 1000;
      // Drop every full-duplex socket; upgrades are refused until lossUntil, so the clients fall
      // back to SSE (then long-polling), resume from their versions, and return when it is over.
      for (const ws of wss.clients) ws.terminate();
      io.disconnectSockets(true);
      return json(res, 200, { lossUntil, seconds });
    }
    if (p === '/api/watchlist/add') {
      return watchlistChange(req, res, url, (d, id) => (d.items.some((i) => i.id === id) ? d : { ...d, items: [...d.items, { id, addedAt: Date.now() }] }));
    }
    if (p === '/api/watchlist/remove') {
      return watchlistChange(req, res, url, (d, id) => ({ ...d, items: d.items.filter((i) => i.id !== id) }));
    }
    if (p === '/api/alerts/read') {
      return watchlistChange(req, res, url, (d, id) => (d.read.includes(id) ? d : { ...d, read: [...d.read.slice(-99), id] }));
    }
    json(res, 404, { code: 'DEMO_NOT_FOUND', message: `no route ${req.method} ${p}` });
  });

  await new Promise((resolve, reject) => {
    const onError = (err) => {
      simulator.stop();
      hub.close().catch(() => {});
      io.close();
      reject(err);
    };
    server.once('error', onError);
    server.listen(o.port, o.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const port = server.address().port;

  let closing = null;
  return {
    url: `http://localhost:${port}`,
    port,
    hub,
    simulator,
    /** The next `n` watchlist/alert calls fail (tests, demos). */
    failNext: (n = 1) => void (failNext = n),
    close() {
      if (closing) return closing;
      simulator.stop();
      wsAttachment.close();
      ioAttachment.close();
      for (const ws of wss.clients) ws.terminate();
      closing = Promise.all([
        new Promise((r) => io.close(() => r())),
        new Promise((r) => {
          server.close(() => r());
          server.closeAllConnections();
        }),
      ]).then(() => hub.close());
      return closing;
    },
  };
}

/**
 * The lines `npm start` prints once it listens on host:port. A specific host is printed as itself
 * (127.0.0.1 as localhost, IPv6 in brackets). A wildcard host (0.0.0.0, ::) is no address a browser
 * can open: Local is localhost, Network each non-internal address of `interfaces` that the socket
 * takes connections on (0.0.0.0: IPv4 only; ::, dual-stack: IPv4 and IPv6, link-local left out as
 * its URL would need a zone), IPv4 first.
 */
function servingLines(host, port, interfaces = os.networkInterfaces()) {
  const v6 = net.isIPv6(host) && !host.includes('%');
  if (host !== '0.0.0.0' && !(v6 && new URL(`http://[${host}]`).hostname === '[::]')) {
    const shown = host === '127.0.0.1' || host === 'localhost' ? 'localhost' : host.includes(':') ? `[${host}]` : host;
    return [`deltacast dashboard: serving http://${shown}:${port} (Ctrl-C to stop)`];
  }
  const addresses = Object.values(interfaces)
    .flat()
    .filter((a) => a && !a.internal)
    .map((a) => ({ address: a.address, v4: a.family === 'IPv4' || a.family === 4 })) // a number on Node 18.0-18.3
    .filter((a) => a.v4 || (v6 && !/^fe[89ab]/i.test(a.address)));
  addresses.sort((a, b) => b.v4 - a.v4);
  return [
    'deltacast dashboard: serving on every interface (Ctrl-C to stop)',
    `  Local:   http://localhost:${port}`,
    ...addresses.map((a) => `  Network: http://${a.v4 ? a.address : `[${a.address}]`}:${port}`),
  ];
}

async function main() {
  const port = process.env.PORT === undefined || process.env.PORT === '' ? 3000 : Number(process.env.PORT);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`deltacast dashboard: PORT must be a port number (0 to 65535), not "${process.env.PORT}"`);
    process.exit(1);
  }
  const host = process.env.HOST || '127.0.0.1';
  let dash;
  try {
    // DASHBOARD_SECRET keeps the login cookies valid across restarts (default: a new key each start)
    // HOST: the interface to listen on; loopback unless told otherwise (the demo's logins take no password)
    dash = await startDashboard({ port, host, secret: process.env.DASHBOARD_SECRET || undefined });
  } catch (err) {
    if (err && err.code === 'EADDRINUSE') {
      console.error(`deltacast dashboard: port ${port} is already in use. Stop whatever uses it, or pick another port: PORT=${port + 1} npm start`);
    } else if (err && ['ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL', 'EINVAL'].includes(err.code)) {
      console.error(`deltacast dashboard: cannot listen on HOST=${host} (${err.code}). HOST must be an address of this machine: 127.0.0.1 (the default), ::1, 0.0.0.0 (every interface) or one of its own`);
    } else if (err && err.code === 'DELTACAST_NOT_BUILT') {
      console.error(`deltacast dashboard: the native addon is not built. Run: npm install (or npm run build)\n${err.message}`);
    } else {
      console.error('deltacast dashboard: could not start:', err && err.stack ? err.stack : err);
    }
    process.exit(1);
  }
  stopOnSignal(async () => {
    await dash.close().catch(() => {});
    console.log('deltacast dashboard: stopped');
  });
  // only now: whoever reads this line may press Ctrl-C at once
  console.log(servingLines(host, dash.port).join('\n'));
}

if (require.main === module) main();

module.exports = { startDashboard, USERS, servingLines };
