'use strict';
// Test fixture for the client tests: real servers on loopback ports, wired by hand to a real hub.
// The WebSocket and Socket.IO wiring is what deltacast/ws and deltacast/socket.io do; the HTTP part
// (SSE at <prefix>/events, long-polling at <prefix>/topics/<topic>) is a minimal stand-in for
// deltacast/http's httpHandler, to be replaced by it. Not part of the package.

const http = require('node:http');
const { WebSocketServer } = require('ws');

const PREFIX = '/dc';

function wire(hub, send, close, server) {
  const conn = hub.connect({
    send: (f) => (server.silent ? true : send(f)),
    close,
  });
  return conn;
}

/** Acks every state frame on behalf of a carrier without an upstream (SSE, long-poll). */
function selfAcking(hub, write, close) {
  let conn;
  const ack = (m) => {
    if (m.t === 'batch') return m.items.forEach(ack);
    if (m.t === 'snap' || m.t === 'patch') {
      const version = m.t === 'snap' ? m.version : m.to;
      queueMicrotask(() => conn && conn.receive(JSON.stringify({ t: 'ack', topic: m.topic, version })));
    }
  };
  conn = hub.connect({
    send(f) {
      write(f);
      ack(JSON.parse(f));
      return true;
    },
    close,
  });
  return conn;
}

/** Parses `a=e1.42&b=e1.7` (the client's Last-Event-ID) into { topic: [epoch, version] }. */
function parsePositions(text) {
  const out = {};
  for (const part of (text || '').split('&')) {
    const m = /^([^=]+)=(.+)\.(\d+)$/.exec(part);
    if (m) out[decodeURIComponent(m[1])] = [decodeURIComponent(m[2]), Number(m[3])];
  }
  return out;
}

function subMessage(topic, pos) {
  const m = { t: 'sub', topic };
  if (pos) (m.epoch = pos[0]), (m.version = pos[1]);
  return JSON.stringify(m);
}

async function handleHttp(hub, server, req, res) {
  const url = new URL(req.url, 'http://x');
  server.requests.push(url.pathname);
  if (server.refuseHttp) return res.writeHead(503).end();
  if (url.pathname === `${PREFIX}/events`) {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
    res.flushHeaders();
    const positions = parsePositions(req.headers['last-event-id']);
    const conn = selfAcking(
      hub,
      (f) => !server.silent && res.write(`data: ${f}\n\n`),
      () => res.end(),
    );
    server.open.add(res);
    res.on('close', () => (server.open.delete(res), conn.close()));
    for (const t of (url.searchParams.get('topics') || '').split(',').filter(Boolean)) {
      conn.receive(subMessage(t, positions[t]));
    }
    return;
  }
  if (url.pathname.startsWith(`${PREFIX}/topics/`)) {
    const topic = decodeURIComponent(url.pathname.slice(PREFIX.length + 8));
    const epoch = url.searchParams.get('epoch');
    const version = epoch === null ? undefined : Number(url.searchParams.get('version'));
    const wait = Number(url.searchParams.get('wait') || 0);
    const cur = await hub.get(topic);
    if (cur && req.headers['if-none-match'] === `"${cur.epoch}.${cur.version}"` && epoch === cur.epoch && version === cur.version && !wait) {
      return res.writeHead(304).end();
    }
    const current = cur ? cur.epoch === epoch && cur.version === version : epoch === null;
    if (current && !wait) return res.writeHead(204).end();
    let timer;
    const conn = selfAcking(
      hub,
      (f) => {
        const m = JSON.parse(f);
        if (m.t === 'ping' || res.headersSent) return;
        const one = m.t === 'batch' ? m.items[0] : m;
        const etag = one.t === 'snap' ? `"${one.epoch}.${one.version}"` : `"${one.epoch}.${one.to}"`;
        res.writeHead(200, { 'content-type': 'application/json', etag }).end(JSON.stringify(one));
        clearTimeout(timer);
        queueMicrotask(() => conn.close());
      },
      () => {},
    );
    server.open.add(res);
    res.on('close', () => (server.open.delete(res), clearTimeout(timer), conn.close()));
    timer = setTimeout(() => !res.headersSent && res.writeHead(204).end(), Math.max(wait, 50));
    conn.receive(subMessage(topic, epoch === null ? undefined : [epoch, version]));
    return;
  }
  res.writeHead(404).end();
}

/**
 * Starts node:http (+ ws upgrades) on a loopback port, wired to `hub`. The returned server can be
 * stopped (every socket dropped) and started again on the same port, can refuse upgrades, refuse
 * HTTP, and go silent (a black hole: sockets stay open, nothing is delivered).
 */
async function startServer(hub, { port = 0 } = {}) {
  const server = {
    hub,
    port,
    refuseUpgrades: false,
    hangUpgrades: false,
    refuseHttp: false,
    silent: false,
    upgrades: 0,
    requests: [],
    received: [], // every client message over ws, parsed, and { t: 'open' } per connection
    open: new Set(),
    sockets: new Set(),
    wsUrl: '',
    pollUrl: '',
    async start() {
      const h = http.createServer((req, res) => handleHttp(hub, server, req, res).catch(() => res.destroy()));
      const wss = new WebSocketServer({ noServer: true });
      h.on('connection', (s) => (server.sockets.add(s), s.on('close', () => server.sockets.delete(s))));
      h.on('upgrade', (req, socket, head) => {
        server.upgrades++;
        if (server.refuseUpgrades) return socket.destroy();
        if (server.hangUpgrades) return; // never answered: the client's connect timeout decides
        wss.handleUpgrade(req, socket, head, (s) => {
          const conn = wire(
            hub,
            (f) => {
              s.send(f);
              return s.bufferedAmount < 1 << 20;
            },
            (code, r) => s.close(code, r),
            server,
          );
          server.received.push({ t: 'open' });
          s.on('message', (d) => {
            server.received.push(JSON.parse(d.toString()));
            conn.receive(d.toString());
          });
          s.on('close', () => conn.close());
        });
      });
      await new Promise((resolve) => h.listen(server.port, '127.0.0.1', resolve));
      server.port = h.address().port;
      server.wsUrl = `ws://127.0.0.1:${server.port}/`;
      server.pollUrl = `http://127.0.0.1:${server.port}${PREFIX}`;
      server.http = h;
      server.wss = wss;
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
      for (const r of server.open) r.destroy();
      for (const s of server.sockets) s.destroy();
      await new Promise((resolve) => h.close(resolve));
      server.wss.close();
    },
  };
  await server.start();
  return server;
}

/** Socket.IO server on its own loopback port, wired to `hub` (the event `deltacast`). */
async function startSocketIO(hub) {
  const { Server } = require('socket.io');
  const h = http.createServer();
  const io = new Server(h, { transports: ['websocket'] });
  io.on('connection', (socket) => {
    const conn = hub.connect({
      send: (f) => (socket.emit('deltacast', JSON.parse(f)), true),
      close: () => socket.disconnect(true),
    });
    socket.on('deltacast', (m) => conn.receive(typeof m === 'string' ? m : JSON.stringify(m)));
    socket.on('disconnect', () => conn.close());
  });
  await new Promise((resolve) => h.listen(0, '127.0.0.1', resolve));
  return {
    io,
    url: `http://127.0.0.1:${h.address().port}`,
    async close() {
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

module.exports = { startServer, startSocketIO, until, recordApplied, fakeTimers, PREFIX };
