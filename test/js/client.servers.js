'use strict';
// The servers the client tests talk to: the real adapters on loopback ports, over a real hub.
// startServer: one node:http server carrying deltacast/ws (upgrades) and deltacast/http (SSE at
// <prefix>/events, polling and long-polling at <prefix>/topics/<topic>); startSocketIO:
// deltacast/socket.io. What the tests add around them is only the network's behaviour (refused or
// hanging upgrades, refused HTTP, a silent socket, a stop and a restart on the same port) and a
// record of what the clients sent; no protocol logic of their own. Not part of the package.

const http = require('node:http');
const { WebSocketServer, WebSocket } = require('ws');
const { createHub } = require('../../lib/index.js');
const { createClient } = require('../../lib/browser/client.js');
const { attachWebSocketServer } = require('../../lib/adapters/ws.js');
const { httpHandler } = require('../../lib/adapters/http.js');
const { attachSocketIO } = require('../../lib/adapters/socket.io.js');

const PREFIX = '/dc';

/**
 * Starts node:http (+ ws upgrades) on a loopback port, wired to `hub` by the adapters. The returned
 * server can be stopped (every socket dropped, or closed with a code) and started again on the same
 * port, can refuse upgrades, refuse HTTP, and go silent (a black hole: sockets stay open, nothing
 * they are sent is delivered). `httpOptions` go to httpHandler.
 */
async function startServer(hub, { port = 0, httpOptions } = {}) {
  let silent = false;
  const server = {
    hub,
    port,
    refuseUpgrades: false,
    hangUpgrades: false,
    refuseHttp: false,
    upgrades: 0,
    requests: [], // the path of every HTTP request
    headers: [], // and its headers
    received: [], // every client message over ws, parsed, and { t: 'open' } per connection
    open: new Set(), // HTTP responses in progress (event streams, long-polls)
    sockets: new Set(),
    wsUrl: '',
    pollUrl: '',
    get silent() {
      return silent;
    },
    /** Silent: every open socket holds what it is sent (corked); a sleeping machine's network. */
    set silent(value) {
      if (value === silent) return;
      silent = value;
      for (const s of server.sockets) value ? s.cork() : s.uncork();
    },
    async start() {
      const handler = httpHandler(hub, { prefix: PREFIX, ...httpOptions });
      const h = http.createServer((req, res) => {
        server.requests.push(req.url.split('?')[0]);
        server.headers.push(req.headers);
        if (server.refuseHttp) return res.writeHead(503).end();
        server.open.add(res);
        res.on('close', () => server.open.delete(res));
        handler(req, res);
      });
      const wss = new WebSocketServer({ noServer: true });
      const live = attachWebSocketServer(wss, hub);
      h.on('connection', (s) => {
        server.sockets.add(s);
        if (silent) s.cork();
        s.on('close', () => server.sockets.delete(s));
      });
      h.on('upgrade', (req, socket, head) => {
        server.upgrades++;
        if (server.refuseUpgrades) return socket.destroy();
        if (server.hangUpgrades) return; // never answered: the client's connect timeout decides
        live.handleUpgrade(req, socket, head);
      });
      // A listener of our own next to the adapter's: records what the client sent.
      wss.on('connection', (ws) => {
        server.received.push({ t: 'open' });
        ws.on('message', (data) => server.received.push(JSON.parse(data.toString())));
      });
      await new Promise((resolve) => h.listen(server.port, '127.0.0.1', resolve));
      server.port = h.address().port;
      server.wsUrl = `ws://127.0.0.1:${server.port}/`;
      server.pollUrl = `http://127.0.0.1:${server.port}${PREFIX}`;
      server.http = h;
      server.wss = wss;
      server.live = live;
    },
    /** Sends a raw message to every ws client, bypassing the hub. */
    inject(m) {
      for (const c of server.wss.clients) c.send(JSON.stringify(m));
    },
    /** Stops: every socket closed with `code` (and `reason`) when given, else dropped abruptly. */
    async stop({ code, reason } = {}) {
      const h = server.http;
      if (!h) return;
      server.http = undefined;
      for (const c of server.wss.clients) code ? c.close(code, reason || '') : c.terminate();
      if (code) await until(() => server.wss.clients.size === 0, 'the close handshakes', 3000).catch(() => {});
      server.live.close();
      for (const r of server.open) r.destroy();
      for (const s of server.sockets) s.destroy();
      h.closeAllConnections();
      await new Promise((resolve) => h.close(resolve));
      await new Promise((resolve) => server.wss.close(resolve));
    },
  };
  await server.start();
  return server;
}

/** deltacast/socket.io on its own loopback port, over `hub`. */
async function startSocketIO(hub, options) {
  const { Server } = require('socket.io');
  const h = http.createServer();
  const io = new Server(h, { transports: ['websocket'] });
  const attached = attachSocketIO(io, hub, options);
  await new Promise((resolve) => h.listen(0, '127.0.0.1', resolve));
  return {
    io,
    attached,
    url: `http://127.0.0.1:${h.address().port}`,
    async close() {
      attached.close();
      io.disconnectSockets(true);
      await new Promise((resolve) => io.close(() => resolve()));
    },
  };
}

/** Timers a test can stop and move: the client's clock while its process "sleeps". */
function fakeTimers() {
  let now = 1e6;
  let seq = 0;
  const due = new Map();
  let pump;
  let last = Date.now();
  const timers = {
    now: () => now,
    setTimeout(f, ms) {
      due.set(++seq, { at: now + ms, f });
      return seq;
    },
    clearTimeout: (id) => due.delete(id),
    run() {
      for (const [id, t] of [...due].sort((a, b) => a[1].at - b[1].at)) {
        if (t.at > now || !due.has(id)) continue;
        due.delete(id);
        t.f();
      }
    },
    /** Follows real time (every 2 ms) until pause(). */
    resume(jumpMs = 0) {
      now += jumpMs;
      last = Date.now();
      clearInterval(pump);
      pump = setInterval(() => {
        const t = Date.now();
        now += t - last;
        last = t;
        timers.run();
      }, 2);
      timers.run();
    },
    pause: () => clearInterval(pump),
  };
  return timers;
}

/** Resolves when `predicate()` holds; rejects after `ms` with `what`. */
function until(predicate, what, ms = 5000) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const tick = () => {
      let ok = false;
      try {
        ok = predicate();
      } catch {
        ok = false;
      }
      if (ok) return resolve();
      if (Date.now() - started > ms) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(tick, 5);
    };
    tick();
  });
}

/**
 * Records every version a client applied per topic and fails on one applied twice or out of
 * order within an epoch.
 */
function recordApplied(client) {
  const seen = new Map();
  const problems = [];
  client.on('change', (topic, _data, info) => {
    if (info.version === undefined) return;
    const k = `${topic}@${info.epoch}`;
    const prev = seen.get(k);
    if (prev !== undefined && info.version <= prev) problems.push(`${k}: ${info.version} after ${prev}`);
    if (info.from !== undefined && prev !== undefined && info.from !== prev) problems.push(`${k}: patch from ${info.from} on ${prev}`);
    seen.set(k, info.version);
  });
  return problems;
}

/** Reconnection settings that keep the client tests quick. */
const FAST_RECONNECT = { minMs: 10, maxMs: 80, connectTimeoutMs: 2000 };

/**
 * A hub (`hubOptions`) behind startServer (`httpOptions`), and `make(options)`, which creates a
 * client of it (its ws URL, the fast reconnection, `pollUrl` unless `poll` is false, then `client`,
 * then `options`). Everything is closed after the test `t`.
 */
async function setupClients(t, { hubOptions, httpOptions, client, poll = true } = {}) {
  const hub = createHub(hubOptions);
  const server = await startServer(hub, { httpOptions });
  const clients = [];
  const make = (o) => {
    const base = { url: server.wsUrl, WebSocket, reconnect: FAST_RECONNECT };
    if (poll) base.pollUrl = server.pollUrl;
    const c = createClient({ ...base, ...client, ...o });
    clients.push(c);
    return c;
  };
  t.after(async () => {
    for (const c of clients) c.close();
    await server.stop();
    await hub.close();
  });
  return { hub, server, make };
}

module.exports = { startServer, startSocketIO, setupClients, FAST_RECONNECT, until, recordApplied, fakeTimers, PREFIX };
