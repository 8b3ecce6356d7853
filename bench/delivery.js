'use strict';

// Delivery benchmark: what it costs to get a board's changes to many
// subscribers with deltacast, next to what a Node user would otherwise write,
// in one run.
//
//   node bench/delivery.js                  # all three benchmarks (about 10 minutes on 2 threads)
//   node bench/delivery.js --quick          # fewer updates, clients and calls: a smoke run (< 1 minute)
//   node bench/delivery.js --only=fanout,stalled,debounce
//
// Other flags: --clients=100,1000 (fan-out sizes)  --no-save
// Env: DELTACAST_LIB=path/to/index.js benchmarks another deltacast build;
//      DELTACAST_ADDON=path/to/deltacast.node another addon (lib/native.js).
//
// 1. fanout    a price board (bench/data.js, N = 1,000 rows, 1% of the rows
//              tick at every update) published to C clients, C = 100 and
//              1,000. Rows:
//              - deltacast in-process, deltacast/testing clients (they parse,
//                apply and ack every frame in this process, so their work is
//                on the clock too);
//              - deltacast in-process, counting clients (raw hub.connect that
//                counts frames and acks each with a minimal parse): what the
//                hub itself costs;
//              - deltacast over ws on loopback, the hub wired to a `ws`
//                WebSocketServer by hand; the clients live in 2 child
//                processes (so they do not share the server's event loop) and
//                parse, apply (lib/apply_patch.js) and ack every frame;
//              - peers, same setup: ws broadcast of the whole board (one
//                JSON.stringify and one Buffer per update, sent to every
//                socket) and Socket.IO io.emit of the whole board; their
//                clients JSON.parse every message.
//              Clock: from the first publish until every client holds the last
//              version; every client's state is then checked against the hub's.
// 2. stalled   one client that never acks among 1,000 (999 acking counting
//              clients, in-process) while 10,000 updates are published on the
//              default (normal, debounced) lane, manual clock: memory with and
//              without it, frames it was sent. Peer: Socket.IO with one client
//              whose socket stops reading; the server's buffers for it.
//              Each variant in a child process of its own.
// 3. debounce  100,000 topics each published 10 times (1,000,000 calls):
//              deltacast hub.publish on the default normal lane, against a
//              hand-written debouncer (one Map of pending values, one
//              setTimeout per window) and one lodash.debounce per key. JS-thread
//              CPU, heap per key, and deltacast's cost per call, split.
//              Each variant in a child process of its own.
//
// Results go to stdout as markdown tables, progress to stderr, and everything
// to bench/results/delivery-<date>.json and .md (-quick or -partial for a
// limited run, so it does not overwrite a full one).
//
// The machine matters more than usual here: clients, server, and the hub's
// core thread all want a CPU, and on 2 hardware threads they take turns.
// Compare ratios within one run, not rates across machines.

const {
  gc,
  packageVersion,
  gitCommit,
  usageError,
  eachFlag,
  namesOf,
  fmtMs,
  fmtUs,
  fmtRatio,
  fmtInt,
  progress,
  progressDone,
  nowNs,
  msSince,
  sleep,
  nextTurn,
  startClock,
  stopClock,
  settleHeap,
  loadDeltacast,
  createHubWithTid,
  releaseHub,
} = require('./common.js');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const http = require('node:http');
const util = require('node:util');
const { spawnSync, fork } = require('node:child_process');

const { makeBoard, mutate } = require('./data.js');

const BENCHMARKS = ['fanout', 'stalled', 'debounce'];
const TOPIC = 'prices';
const BOARD_ROWS = 1000;
const TICK_FRACTION = 0.01;

// ---- command line -----------------------------------------------------------

function parseArgs(argv) {
  const opts = { quick: false, only: null, clients: null, save: true, child: null, config: null };
  const usage = 'node bench/delivery.js [--quick] [--only=fanout,stalled,debounce] [--clients=100,1000] [--no-save]';
  eachFlag(argv, usage, (flag, value) => {
    switch (flag) {
      case '--quick':
        opts.quick = true;
        break;
      case '--only':
        opts.only = namesOf(value, BENCHMARKS, '--only');
        break;
      case '--clients':
        opts.clients = value.split(',').map((s) => Number(s.trim()));
        for (const c of opts.clients) if (!Number.isInteger(c) || c < 2) throw usageError(`--clients takes counts ≥ 2, got ${c}`);
        break;
      case '--no-save':
        opts.save = false;
        break;
      case '--child': // internal: a child process of this benchmark
        opts.child = value;
        break;
      case '--config':
        opts.config = JSON.parse(value);
        break;
      default:
        return false;
    }
    return true;
  });
  opts.clients ??= opts.quick ? [100, 500] : [100, 1000];
  return opts;
}

// ---- helpers ----------------------------------------------------------------

function kib(bytes) {
  return `${(bytes / 1024).toFixed(bytes >= 10240 ? 0 : 1)} KiB`;
}

function memorySnapshot() {
  gc();
  gc();
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers };
}

function memoryDelta(before, after) {
  const out = {};
  for (const key of Object.keys(before)) out[key] = after[key] - before[key];
  return out;
}

// Waits until check() is true, polling on setImmediate; false on timeout.
async function until(check, timeoutMs) {
  const t0 = Date.now();
  while (!check()) {
    if (Date.now() - t0 > timeoutMs) return false;
    await nextTurn();
  }
  return true;
}

// Successive states of a board: 1% of the rows tick at every step (values
// only, as a price feed does between structural changes). Objects, sharing
// unchanged rows with the state before, as a server would hold them.
function boardStates(n, k) {
  const states = [makeBoard(n, 4242)];
  for (let i = 1; i <= k; i++) states.push(mutate(states[i - 1], { fraction: TICK_FRACTION, seed: 9000 + i }));
  return states;
}

// The version a deltacast frame brings a topic to, read without parsing the
// frame: the core writes `"version":` (snap) and `"to":` (patch) before
// `data` / `ops`. A batch is parsed. Returns [[topic, version], ...].
function frameVersions(frame) {
  if (frame.startsWith('{"t":"patch"')) {
    const at = frame.indexOf(',"to":');
    return [[null, parseInt(frame.slice(at + 6, at + 26), 10)]];
  }
  if (frame.startsWith('{"t":"snap"')) {
    const at = frame.indexOf(',"version":');
    return [[null, parseInt(frame.slice(at + 11, at + 31), 10)]];
  }
  if (frame.startsWith('{"t":"batch"')) {
    return JSON.parse(frame).items.filter((m) => m.t === 'snap' || m.t === 'patch')
      .map((m) => [m.topic, m.t === 'snap' ? m.version : m.to]);
  }
  return [];
}

// An in-process subscriber that only counts what it is sent and, if acking,
// acks every frame (a string concatenation, no JSON.stringify): the least a
// client can do. `topic` fills in for frames that do not name it cheaply.
function countingClient(hub, topics, { ack = true } = {}) {
  const client = { frames: 0, bytes: 0, snaps: 0, version: 0, connection: null, closed: null };
  const connection = hub.connect({
    send(frame) {
      client.frames += 1;
      client.bytes += frame.length;
      if (frame.startsWith('{"t":"snap"')) client.snaps += 1;
      if (frame === '{"t":"ping"}') {
        connection.receive('{"t":"pong"}');
        return;
      }
      for (const [named, version] of frameVersions(frame)) {
        const topic = named ?? topics[0];
        client.version = version;
        if (ack) connection.receive(`{"t":"ack","topic":${JSON.stringify(topic)},"version":${version}}`);
      }
    },
    close(code, reason) {
      client.closed = { code, reason };
    },
  });
  client.connection = connection;
  for (const topic of topics) connection.receive(`{"t":"sub","topic":${JSON.stringify(topic)}}`);
  return client;
}

// Markdown lines go to stdout and into the .md file.
const MD = [];
function emit(lines) {
  const text = Array.isArray(lines) ? lines.join('\n') : lines;
  MD.push(text);
  console.log(text);
}

// ---- child processes ---------------------------------------------------------

function forkChild(kind, config) {
  return fork(__filename, [`--child=${kind}`, `--config=${JSON.stringify(config)}`], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: process.env,
  });
}

// Runs `node bench/delivery.js --child=<kind>` to completion; its last stdout
// line is its result (JSON).
function runChildSync(kind, config, { timeoutMs = 10 * 60 * 1000 } = {}) {
  const t0 = nowNs();
  const child = spawnSync(process.execPath, ['--expose-gc', __filename, `--child=${kind}`, `--config=${JSON.stringify(config)}`], {
    encoding: 'utf8',
    env: process.env,
    maxBuffer: 64 << 20,
    timeout: timeoutMs,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const last = (child.stdout || '').trim().split('\n').pop();
  let r;
  try {
    r = JSON.parse(last);
  } catch {
    r = { error: `child exited with ${child.status ?? child.signal}` };
  }
  r.childWallMs = msSince(t0);
  return r;
}

// A child holding `count` clients of one protocol. It reports 'ready' once
// every client holds the first state, then, after 'go' with the target
// version, 'done' once every (non-stalled) client holds that version, with
// the CPU it spent in between; 'verify' with the expected JSON text checks
// every client's state against it.
//   proto 'deltacast': ws client; parses each frame, applies patches with
//                      deltacast's applyPatch, acks the newest version it
//                      applied every 16 frames, or 20 ms after a frame.
//   proto 'ws':        ws client; JSON.parse of every message ({version, data}).
//   proto 'socket.io': socket.io-client (websocket transport); socket.io parses.
// `stall` clients stop reading their socket after the first state.
async function clientsChild(cfg) {
  const WebSocket = require('ws');
  const deltacast = cfg.proto === 'deltacast' ? loadDeltacast() : null;
  const applyPatch = deltacast?.applyPatch;
  const ioClient = cfg.proto === 'socket.io' ? require('socket.io-client').io : null;
  const clients = [];
  let target = Infinity;
  let cpu0 = null;
  let ready = false;
  let doneCount = 0;
  let reported = false;
  const healthyCount = cfg.count - (cfg.stall ?? 0);

  const report = (m) => process.send(m);
  const checkReady = () => {
    if (ready || clients.length < cfg.count || clients.some((c) => c.version === 0)) return;
    ready = true;
    for (const c of clients) if (c.stalled) c.pause();
    report({
      type: 'ready',
      version: clients[0].version,
      stalledIds: clients.filter((c) => c.stalled).map((c) => c.id),
    });
  };
  const reached = (c) => {
    if (c.done || c.stalled || c.version < target) return;
    c.done = true;
    doneCount += 1;
    if (doneCount === healthyCount && !reported) {
      reported = true;
      const cpu = process.cpuUsage(cpu0);
      report({
        type: 'done',
        cpuMs: (cpu.user + cpu.system) / 1000,
        frames: clients.reduce((s, x) => s + x.frames, 0),
        bytes: clients.reduce((s, x) => s + x.bytes, 0),
        gaps: clients.reduce((s, x) => s + x.gaps, 0),
        errors: clients.reduce((s, x) => s + x.errors, 0),
      });
    }
  };
  const onClosed = (c, code, reason) => {
    if (c.closing) return;
    report({ type: 'closed', code, reason: String(reason ?? '') });
  };

  // Clients with a delayed ack due, sent together by one timer.
  const ACK_EVERY = 16;
  const ACK_DELAY_MS = 20;
  let acksDue = new Set();
  const flushAcks = () => {
    const due = acksDue;
    acksDue = new Set();
    for (const c of due) c.flushAck();
  };

  function deltacastClient(stalled) {
    const ws = new WebSocket(cfg.url, { perMessageDeflate: false });
    const c = { ws, stalled, version: 0, epoch: null, data: undefined, frames: 0, bytes: 0, gaps: 0, errors: 0, done: false };
    c.pause = () => ws._socket.pause();
    // Acks are cumulative ("applied up to"), so a client delays them the way
    // TCP does: one ack per ACK_EVERY frames (a quarter of the hub's default
    // window of 64), or ACK_DELAY_MS after a frame when fewer came.
    c.ackVersion = 0;
    c.unackedFrames = 0;
    c.flushAck = () => {
      if (c.unackedFrames === 0) return;
      c.unackedFrames = 0;
      if (ws.readyState === WebSocket.OPEN) ws.send(`{"t":"ack","topic":${JSON.stringify(cfg.topic)},"version":${c.ackVersion}}`);
    };
    const ack = (version) => {
      c.ackVersion = version;
      c.unackedFrames += 1;
      if (c.unackedFrames >= ACK_EVERY) {
        c.flushAck();
      } else if (!acksDue.has(c)) {
        acksDue.add(c);
        if (acksDue.size === 1) setTimeout(flushAcks, ACK_DELAY_MS);
      }
    };
    const apply = (m) => {
      if (m.t === 'snap') {
        c.epoch = m.epoch;
        c.version = m.version;
        c.data = m.data;
        ack(m.version);
      } else if (m.t === 'patch') {
        if (m.epoch !== c.epoch || m.from !== c.version) {
          c.gaps += 1;
          ws.send(JSON.stringify({ t: 'sub', topic: cfg.topic, epoch: c.epoch, version: c.version }));
          return;
        }
        c.data = applyPatch(c.data, m.ops);
        c.version = m.to;
        ack(m.to);
      } else if (m.t === 'ping') {
        ws.send('{"t":"pong"}');
      } else if (m.t === 'err') {
        c.errors += 1;
      }
    };
    ws.on('open', () => ws.send(JSON.stringify({ t: 'sub', topic: cfg.topic })));
    ws.on('message', (buf) => {
      c.frames += 1;
      c.bytes += buf.length;
      const m = JSON.parse(buf.toString());
      if (m.t === 'batch') for (const item of m.items) apply(item);
      else apply(m);
      if (!ready) checkReady();
      else reached(c);
    });
    ws.on('close', (code, reason) => onClosed(c, code, reason));
    ws.on('error', () => {});
    return c;
  }

  function wsClient(stalled) {
    const ws = new WebSocket(cfg.url, { perMessageDeflate: false });
    const c = { ws, stalled, version: 0, data: undefined, frames: 0, bytes: 0, gaps: 0, errors: 0, done: false };
    c.pause = () => ws._socket.pause();
    ws.on('message', (buf) => {
      c.frames += 1;
      c.bytes += buf.length;
      const m = JSON.parse(buf);
      if (m.version !== c.version + 1 && c.version !== 0) c.gaps += 1;
      c.version = m.version;
      c.data = m.data;
      if (!ready) checkReady();
      else reached(c);
    });
    ws.on('close', (code, reason) => onClosed(c, code, reason));
    ws.on('error', () => {});
    return c;
  }

  function socketIoClient(stalled) {
    const s = ioClient(cfg.url, { transports: ['websocket'], forceNew: true, reconnection: false });
    const c = { s, stalled, version: 0, data: undefined, frames: 0, bytes: 0, gaps: 0, errors: 0, done: false, id: null };
    c.pause = () => s.io.engine.transport.ws._socket.pause();
    s.on('connect', () => {
      c.id = s.id;
    });
    s.on('state', (m) => {
      c.frames += 1;
      if (m.version !== c.version + 1 && c.version !== 0) c.gaps += 1;
      c.version = m.version;
      c.data = m.data;
      if (!ready) checkReady();
      else reached(c);
    });
    s.on('disconnect', (reason) => onClosed(c, 0, reason));
    return c;
  }

  process.on('message', (m) => {
    if (m.type === 'go') {
      target = m.target;
      cpu0 = process.cpuUsage();
      for (const c of clients) reached(c);
    } else if (m.type === 'verify') {
      const expected = JSON.parse(m.json);
      let bad = 0;
      for (const c of clients) if (!c.stalled && !util.isDeepStrictEqual(c.data, expected)) bad += 1;
      report({ type: 'verified', checked: healthyCount, bad });
    } else if (m.type === 'exit') {
      for (const c of clients) {
        c.closing = true;
        if (c.ws) c.ws.terminate();
        if (c.s) c.s.disconnect();
      }
      setTimeout(() => process.exit(0), 50);
    }
  });

  // Connect in waves of 50, so the server's accept backlog never overflows.
  const make = cfg.proto === 'deltacast' ? deltacastClient : cfg.proto === 'ws' ? wsClient : socketIoClient;
  for (let i = 0; i < cfg.count; i += 50) {
    const wave = [];
    for (let j = i; j < Math.min(cfg.count, i + 50); j++) {
      const c = make(j < (cfg.stall ?? 0));
      clients.push(c);
      wave.push(new Promise((resolve) => {
        if (c.ws) c.ws.once('open', resolve);
        else c.s.once('connect', resolve);
      }));
    }
    await Promise.all(wave);
  }
  checkReady();
}

// Messages from a forked child, as an async queue.
function childChannel(child) {
  const queue = [];
  const waiters = [];
  let exited = null;
  child.on('message', (m) => {
    const w = waiters.findIndex((x) => x.type === m.type || m.type === 'closed');
    if (w >= 0) waiters.splice(w, 1)[0].resolve(m);
    else queue.push(m);
  });
  child.on('exit', (code, signal) => {
    exited = { code, signal };
    for (const w of waiters.splice(0)) w.resolve({ type: 'exited', code, signal });
  });
  return {
    child,
    next(type) {
      const i = queue.findIndex((m) => m.type === type || m.type === 'closed');
      if (i >= 0) return Promise.resolve(queue.splice(i, 1)[0]);
      if (exited) return Promise.resolve({ type: 'exited', ...exited });
      return new Promise((resolve) => waiters.push({ type, resolve }));
    },
    send(m) {
      if (!exited && child.connected) child.send(m);
    },
    async stop() {
      if (exited) return;
      this.send({ type: 'exit' });
      const ok = await Promise.race([new Promise((r) => child.once('exit', () => r(true))), sleep(5000).then(() => false)]);
      if (!ok && !exited) child.kill('SIGKILL');
    },
  };
}

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((resolve) => {
      timer = setTimeout(() => resolve({ type: 'timeout', what }), ms);
    }),
  ]);
}

// ---- 1. fan-out -------------------------------------------------------------

const FANOUT_HUB_OPTIONS = {
  clock: 'real',
  lanes: { '**': 'critical' },
  heartbeat: { intervalMs: 0 },
  // Every client acks every frame: at a few hundred updates a second that is
  // over the default inbound limit (100 messages/s, burst 200), and the
  // refused acks would come back as DELTACAST_RATE_LIMITED errors.
  limits: { messagesPerSecond: 1_000_000, messageBurst: 1_000_000 },
};

function fanoutPlan(quick, clients) {
  // Full-state peers send 224 KiB per delivery: fewer updates, same rate measure.
  return {
    dcUpdates: quick ? 50 : 200,
    peerUpdates: quick ? (clients >= 500 ? 3 : 10) : clients >= 1000 ? 10 : 40,
    timeoutMs: quick ? 60_000 : 240_000,
  };
}

async function fanoutInProcess(deltacast, kind, clientCount, updates, states, timeoutMs) {
  const { hub, coreTid } = createHubWithTid(deltacast.lib, FANOUT_HUB_OPTIONS);
  await hub.publish(TOPIC, states[0]);
  const v0 = hub.get(TOPIC).version;
  const clients = [];
  for (let i = 0; i < clientCount; i++) {
    if (kind === 'testing') {
      const c = deltacast.testing.createTestClient(hub);
      c.subscribe(TOPIC);
      clients.push(c);
    } else {
      clients.push(countingClient(hub, [TOPIC], { ack: kind === 'counting' }));
    }
  }
  const versionOf = kind === 'testing' ? (c) => c.get(TOPIC)?.version ?? 0 : (c) => c.version;
  // TestClient keeps every message it received; the benchmark drops them so
  // the heap holds replicas, not a log.
  const dropLogs = () => {
    if (kind === 'testing') for (const c of clients) c.messages.length = 0;
  };
  await until(() => clients.every((c) => versionOf(c) === v0), timeoutMs);
  dropLogs();
  await settleHeap();
  const stats0 = hub.stats();
  const clock = startClock();
  for (let k = 1; k <= updates; k++) {
    await hub.publish(TOPIC, states[k]);
    dropLogs();
  }
  const target = v0 + updates;
  const finished = await until(() => clients.every((c) => versionOf(c) >= target), timeoutMs);
  const m = stopClock(clock, coreTid);
  const stats1 = hub.stats();
  const expected = hub.get(TOPIC).data;
  let correct;
  if (kind === 'testing') {
    const bad = clients.filter((c) => c.get(TOPIC)?.version !== target || !util.isDeepStrictEqual(c.get(TOPIC).data, expected));
    correct = { checked: clients.length, bad: bad.length, gaps: clients.reduce((s, c) => s + c.gaps, 0),
      errors: clients.reduce((s, c) => s + c.errors.length, 0) };
  } else {
    correct = { versionsOnly: true, checked: clients.length, bad: clients.filter((c) => c.version !== target).length };
  }
  await hub.close();
  releaseHub(hub);
  const names = {
    testing: ['deltacast-inprocess-testclient', 'deltacast in-process, deltacast/testing clients (parse + apply + ack, same process)'],
    counting: ['deltacast-inprocess-counting', 'deltacast in-process, counting clients (ack only): the hub alone'],
    'counting-noack': ['deltacast-inprocess-noack', '(ref) deltacast in-process, counting clients that never ack: the hub without acks'],
  };
  return {
    key: names[kind][0],
    name: names[kind][1],
    deltacast: true,
    reference: kind === 'counting-noack',
    transport: 'in-process',
    clients: clientCount,
    updates,
    deliveries: updates * clientCount,
    finished,
    ...m,
    clientCpuMs: null,
    framesSent: stats1.framesSent - stats0.framesSent,
    payloadBytes: stats1.bytesSent - stats0.bytesSent,
    tcpBytes: null,
    closedSlow: stats1.closedSlow - stats0.closedSlow,
    correct,
  };
}

async function fanoutSockets(deltacast, proto, clientCount, updates, states, timeoutMs) {
  const { WebSocketServer } = require('ws');
  const server = http.createServer();
  const sockets = new Set();
  server.on('connection', (s) => sockets.add(s));
  let hub = null;
  let coreTid = null;
  let wss = null;
  let io = null;
  let v0 = 1;
  let currentBuf = null;
  let current = { version: 1, data: states[0] };
  if (proto === 'deltacast') {
    ({ hub, coreTid } = createHubWithTid(deltacast.lib, FANOUT_HUB_OPTIONS));
    await hub.publish(TOPIC, states[0]);
    v0 = hub.get(TOPIC).version;
    wss = new WebSocketServer({ server, perMessageDeflate: false });
    // The wiring a user writes today (no adapter yet): one hub connection per socket.
    wss.on('connection', (socket) => {
      const c = hub.connect({ send: (f) => socket.send(f), close: (code, r) => socket.close(code, r) });
      socket.on('message', (m) => c.receive(m.toString()));
      socket.on('close', () => c.close());
    });
  } else if (proto === 'ws') {
    wss = new WebSocketServer({ server, perMessageDeflate: false });
    currentBuf = Buffer.from(JSON.stringify(current));
    wss.on('connection', (socket) => socket.send(currentBuf));
  } else {
    const { Server } = require('socket.io');
    io = new Server(server, { transports: ['websocket'], serveClient: false, perMessageDeflate: false });
    io.on('connection', (socket) => socket.emit('state', current));
  }
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = proto === 'socket.io' ? `http://127.0.0.1:${server.address().port}` : `ws://127.0.0.1:${server.address().port}`;

  const childCount = Math.min(2, clientCount);
  const channels = [];
  for (let i = 0; i < childCount; i++) {
    const count = Math.floor(clientCount / childCount) + (i < clientCount % childCount ? 1 : 0);
    channels.push(childChannel(forkChild('clients', { proto, url, count, topic: TOPIC })));
  }
  const result = {
    key: proto === 'deltacast' ? 'deltacast-ws' : proto === 'ws' ? 'ws-full' : 'socket.io-full',
    name: proto === 'deltacast' ? 'deltacast over ws (loopback), clients parse + apply + ack'
      : proto === 'ws' ? 'ws broadcast of the whole board (one shared Buffer), clients JSON.parse'
        : 'Socket.IO io.emit of the whole board, clients parse (socket.io-client)',
    deltacast: proto === 'deltacast',
    transport: 'loopback',
    clients: clientCount,
    updates,
    deliveries: updates * clientCount,
    finished: false,
  };
  const fail = async (what) => {
    result.error = what;
    for (const ch of channels) await ch.stop();
  };
  try {
    const readies = await withTimeout(Promise.all(channels.map((ch) => ch.next('ready'))), timeoutMs, 'connecting');
    if (readies.type === 'timeout' || readies.some((r) => r.type !== 'ready')) {
      await fail(`clients did not get ready: ${JSON.stringify(readies.type === 'timeout' ? readies : readies.find((r) => r.type !== 'ready'))}`);
      return result;
    }
    const target = v0 + updates;
    await settleHeap();
    const stats0 = hub?.stats();
    const tcp0 = [...sockets].reduce((s, x) => s + x.bytesWritten, 0);
    const dones = Promise.all(channels.map((ch) => ch.next('done')));
    for (const ch of channels) ch.send({ type: 'go', target });
    const clock = startClock();
    for (let k = 1; k <= updates; k++) {
      if (proto === 'deltacast') {
        await hub.publish(TOPIC, states[k]);
      } else if (proto === 'ws') {
        current = { version: v0 + k, data: states[k] };
        currentBuf = Buffer.from(JSON.stringify(current));
        for (const socket of wss.clients) socket.send(currentBuf);
        await nextTurn();
      } else {
        current = { version: v0 + k, data: states[k] };
        io.emit('state', current);
        await nextTurn();
      }
    }
    const done = await withTimeout(dones, timeoutMs, 'delivering');
    const m = stopClock(clock, coreTid);
    if (done.type === 'timeout' || done.some((d) => d.type !== 'done')) {
      await fail(`not every client reached the last version: ${JSON.stringify(done.type === 'timeout' ? done : done.find((d) => d.type !== 'done'))}`);
      return result;
    }
    Object.assign(result, m);
    result.finished = true;
    result.clientCpuMs = done.reduce((s, d) => s + d.cpuMs, 0);
    result.tcpBytes = [...sockets].reduce((s, x) => s + x.bytesWritten, 0) - tcp0;
    if (hub) {
      const stats1 = hub.stats();
      result.framesSent = stats1.framesSent - stats0.framesSent;
      result.payloadBytes = stats1.bytesSent - stats0.bytesSent;
      result.closedSlow = stats1.closedSlow - stats0.closedSlow;
    } else {
      // every message is one whole state of (nearly) the same size
      result.framesSent = done.reduce((s, d) => s + d.frames, 0);
      result.payloadBytes = Buffer.byteLength(JSON.stringify(current)) * result.deliveries;
    }
    // Check every client's state against the server's.
    const json = hub ? hub.getJson(TOPIC).json : JSON.stringify(states[updates]);
    const verified = await Promise.all(channels.map((ch) => {
      const p = ch.next('verified');
      ch.send({ type: 'verify', json });
      return p;
    }));
    result.correct = {
      checked: verified.reduce((s, v) => s + (v.checked ?? 0), 0),
      bad: verified.reduce((s, v) => s + (v.bad ?? 0), 0),
      gaps: done.reduce((s, d) => s + d.gaps, 0),
      errors: done.reduce((s, d) => s + d.errors, 0),
    };
    for (const ch of channels) await ch.stop();
    return result;
  } finally {
    for (const ch of channels) await ch.stop();
    if (io) await new Promise((resolve) => io.close(() => resolve()));
    if (wss) {
      for (const s of wss.clients) s.terminate();
      await new Promise((resolve) => wss.close(() => resolve()));
    }
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(() => resolve()));
    if (hub) {
      await hub.close();
      releaseHub(hub);
    }
    gc();
  }
}

async function runFanout(opts, deltacast) {
  const results = [];
  for (const clientCount of opts.clients) {
    const plan = fanoutPlan(opts.quick, clientCount);
    progress(`fanout C=${clientCount}: generating ${Math.max(plan.dcUpdates, plan.peerUpdates) + 1} board states`);
    const states = boardStates(BOARD_ROWS, Math.max(plan.dcUpdates, plan.peerUpdates));
    const entry = {
      clients: clientCount,
      rows: BOARD_ROWS,
      stateBytes: Buffer.byteLength(JSON.stringify(states[0])),
      patchBytes: null,
      plan,
      results: [],
    };
    const steps = [];
    if (deltacast.lib) {
      steps.push(['deltacast in-process (testing clients)', () => fanoutInProcess(deltacast, 'testing', clientCount, plan.dcUpdates, states, plan.timeoutMs)]);
      steps.push(['deltacast in-process (counting clients)', () => fanoutInProcess(deltacast, 'counting', clientCount, plan.dcUpdates, states, plan.timeoutMs)]);
      // (With the critical lane a client more than 4 × 64 frames behind is closed; the updates stay under that.)
      steps.push(['(ref) deltacast in-process (counting clients, no acks)', () => fanoutInProcess(deltacast, 'counting-noack', clientCount, plan.dcUpdates, states, plan.timeoutMs)]);
      steps.push(['deltacast over ws', () => fanoutSockets(deltacast, 'deltacast', clientCount, plan.dcUpdates, states, plan.timeoutMs)]);
    }
    steps.push(['ws full-state broadcast', () => fanoutSockets(deltacast, 'ws', clientCount, plan.peerUpdates, states, plan.timeoutMs)]);
    steps.push(['Socket.IO full-state broadcast', () => fanoutSockets(deltacast, 'socket.io', clientCount, plan.peerUpdates, states, plan.timeoutMs)]);
    // Every step runs `repeats` times, interleaved (so a noisy minute hits
    // every variant alike); each row is the run with the median rate, and
    // carries all the rates.
    const repeats = opts.quick ? 1 : 3;
    const runs = steps.map(() => []);
    for (let rep = 0; rep < repeats; rep++) {
      for (let k = 0; k < steps.length; k++) {
        const [label, run] = steps[k];
        progress(`fanout C=${clientCount}: ${label}${repeats > 1 ? ` (run ${rep + 1} of ${repeats})` : ''}`);
        await settleHeap();
        const r = await run();
        r.deliveriesPerSec = r.finished ? r.deliveries / (r.wallMs / 1000) : NaN;
        runs[k].push(r);
      }
    }
    for (const list of runs) {
      const finished = list.filter((r) => r.finished).sort((a, b) => a.deliveriesPerSec - b.deliveriesPerSec);
      const r = finished.length ? finished[Math.floor((finished.length - 1) / 2)] : list[0];
      r.rates = list.map((x) => x.deliveriesPerSec);
      results.push(r);
      entry.results.push(r);
    }
    progressDone();
    const peers = entry.results.filter((r) => !r.deltacast && r.finished);
    const best = peers.length ? peers.reduce((a, b) => (a.deliveriesPerSec >= b.deliveriesPerSec ? a : b)) : null;
    entry.bestPeer = best?.key ?? null;
    for (const r of entry.results) r.ratioVsBestPeer = best ? r.deliveriesPerSec / best.deliveriesPerSec : NaN;
    const dcOne = entry.results.find((r) => r.key === 'deltacast-inprocess-counting');
    if (dcOne?.framesSent) entry.patchBytes = dcOne.payloadBytes / dcOne.framesSent;
    printFanout(entry, deltacast);
    results.push(entry);
  }
  return results.filter((r) => r.results);
}

function printFanout(entry, deltacast) {
  const lines = [];
  lines.push(`## 1. Fan-out: N = ${entry.rows.toLocaleString('en-US')} rows (${kib(entry.stateBytes)} a state), ` +
    `1% of the rows change per update, C = ${entry.clients.toLocaleString('en-US')} clients`);
  lines.push('');
  lines.push('| variant | updates × clients | wall s | deliveries/s | ratio vs best full-state | server CPU µs/delivery | ' +
    'JS thread µs | core thread µs | client CPU µs/delivery | payload B/delivery | TCP B/delivery | every client exact |');
  lines.push('|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|:-:|');
  for (const r of entry.results) {
    if (!r.finished) {
      lines.push(`| ${r.name} | ${r.updates} × ${r.clients} | ✗ | | | | | | | | | ✗ ${r.error ?? 'timed out'} |`);
      continue;
    }
    const d = r.deliveries;
    const per = (x) => (x === undefined || x === null ? '' : fmtUs((x * 1000) / d));
    const perB = (x) => (x === undefined || x === null ? '' : fmtInt(x / d));
    const c = r.correct;
    let ok;
    if (c.versionsOnly) ok = c.bad === 0 ? '✓ (version only: counting clients hold no state)' : `✗ ${c.bad} behind`;
    else ok = c.bad === 0 ? `✓ ${c.checked}/${c.checked}` : `✗ ${c.bad} of ${c.checked} differ`;
    if (c.gaps) ok += ` (gaps ${c.gaps})`;
    if (c.errors) ok += ` (err frames ${c.errors})`;
    if (r.closedSlow) ok += ` (closed slow ${r.closedSlow})`;
    const core = r.deltacast ? per(r.coreMs) : '';
    lines.push(`| ${r.name} | ${r.updates} × ${r.clients} | ${(r.wallMs / 1000).toFixed(2)} | ${fmtInt(r.deliveriesPerSec)} | ` +
      `${fmtRatio(r.ratioVsBestPeer)} | ${per(r.cpuMs)} | ${per(r.jsMs)} | ${core} | ${per(r.clientCpuMs)} | ` +
      `${perB(r.payloadBytes)} | ${perB(r.tcpBytes)} | ${ok} |`);
  }
  if (!deltacast.lib) lines.push(`| deltacast | not built: ${deltacast.missing} | | | | | | | | | | |`);
  lines.push('');
  lines.push('A delivery is one update reaching one client (updates × clients). Wall: from the first publish until every client ' +
    'holds the last version. deliveries/s = deliveries ÷ wall. Server CPU = process.cpuUsage() of the server process over ' +
    'that time (all its threads; for the in-process rows it includes the clients); the JS / core thread columns split it ' +
    '(from /proc/self/task/*/schedstat). Client CPU: the client child processes (2, each with half the clients), ' +
    'process.cpuUsage() from "go" to "all at the last version". Payload: the frames\' bytes as handed to the transport ' +
    '(deltacast: hub.stats().bytesSent); TCP: bytesWritten of the server\'s sockets, WebSocket framing included. ' +
    'No compression anywhere (permessage-deflate off). Full-state peers publish fewer updates (224 KiB each); the ' +
    'rate is what is compared. The deltacast hub: lanes { \'**\': \'critical\' }, heartbeats off, inbound rate limit ' +
    'raised (in-process clients ack every frame; ws clients every 16 frames or 20 ms). Each variant ran ' +
    `${entry.results[0]?.rates?.length ?? 1} time(s), interleaved; a row is its run with the median rate.`);
  const rates = entry.results.filter((r) => r.rates?.length > 1);
  if (rates.length) {
    lines.push('- deliveries/s of every run: ' + rates.map((r) => `${r.name.split(',')[0]}: ${r.rates.map(fmtInt).join(' / ')}`).join('; '));
  }
  const dcWs = entry.results.find((r) => r.key === 'deltacast-ws' && r.finished);
  const dcIn = entry.results.find((r) => r.key === 'deltacast-inprocess-testclient' && r.finished);
  if (entry.bestPeer) {
    const best = entry.results.find((r) => r.key === entry.bestPeer);
    lines.push(`- best full-state broadcast: ${best.name.split(',')[0]} (${fmtInt(best.deliveriesPerSec)} deliveries/s)`);
  }
  if (dcWs && entry.bestPeer) {
    const exact = dcWs.correct.bad === 0;
    lines.push(`- target (≥ 30× the deliveries/s of the best full-state broadcast, every client exact), deltacast over ws: ` +
      `${fmtRatio(dcWs.ratioVsBestPeer)}, ${exact ? 'exact' : 'NOT exact'} → ${dcWs.ratioVsBestPeer >= 30 && exact ? 'met' : 'NOT met'}` +
      (dcIn ? ` (in-process with testing clients: ${fmtRatio(dcIn.ratioVsBestPeer)})` : ''));
  }
  if (dcWs && entry.bestPeer) {
    const best = entry.results.find((r) => r.key === entry.bestPeer);
    const us = (r) => (r.cpuMs * 1000) / r.deliveries;
    const cl = (r) => (r.clientCpuMs * 1000) / r.deliveries;
    lines.push(`- CPU per delivery, server process: deltacast over ws ${fmtUs(us(dcWs))} µs, ${best.name.split(' ')[0]} ` +
      `${fmtUs(us(best))} µs (${fmtRatio(us(best) / us(dcWs))} less for deltacast); clients: ${fmtUs(cl(dcWs))} µs against ` +
      `${fmtUs(cl(best))} µs (${fmtRatio(cl(best) / cl(dcWs))}). On this machine the clients and the server share ` +
      `${os.cpus().length} hardware threads, so deliveries/s follows the sum of the two.`);
  }
  if (entry.patchBytes) {
    lines.push(`- one update as a deltacast patch frame: ${fmtInt(entry.patchBytes)} B, against ${fmtInt(entry.stateBytes)} B for the whole board ` +
      `(${fmtRatio(entry.stateBytes / entry.patchBytes)} fewer bytes)`);
  }
  lines.push('');
  emit(lines);
}

// ---- 2. one stalled client ---------------------------------------------------
//
// deltacast, in a child process per variant: a manual-clock hub on the default
// lanes (everything normal: debounced, 50 ms quiet / 250 ms max wait), 999
// acking counting clients, and `stalled` clients that never ack. One update
// (1% of the rows) every `tickMs` of the manual clock. Memory is measured
// after a warm-up (the healthy clients only) and again at the end, both after
// full GCs; the stalled clients connect right after the first measurement, so
// everything they cost falls between the two. Heartbeats are off: with them
// on, a client over its credit window for stallTimeoutMs (30 s) is closed,
// which would end the experiment.

async function stalledDeltacastChild(cfg) {
  const deltacast = loadDeltacast();
  if (!deltacast.lib) return { error: deltacast.missing };
  const { hub } = createHubWithTid(deltacast.lib, { clock: 'manual', heartbeat: { intervalMs: 0 } });
  let board = makeBoard(BOARD_ROWS, 4242);
  let seed = 9000;
  await hub.publish(TOPIC, board);
  const healthy = [];
  for (let i = 0; i < cfg.healthy; i++) healthy.push(countingClient(hub, [TOPIC]));
  await hub.advance(0);
  const step = async () => {
    board = mutate(board, { fraction: TICK_FRACTION, seed: ++seed });
    hub.publish(TOPIC, board);
    await hub.advance(cfg.tickMs);
  };
  for (let i = 0; i < cfg.warmup; i++) await step();
  await hub.advance(1000);
  const snapshotBytes = hub.getJson(TOPIC).json.length;
  const before = memorySnapshot();
  const stats0 = hub.stats();
  const stalled = [];
  for (let i = 0; i < cfg.stalled; i++) stalled.push(countingClient(hub, [TOPIC], { ack: false }));
  await hub.advance(0);
  let peakRss = process.memoryUsage().rss;
  const t0 = nowNs();
  for (let u = 0; u < cfg.updates; u++) {
    await step();
    if (u % 500 === 0) peakRss = Math.max(peakRss, process.memoryUsage().rss);
  }
  await hub.advance(1000);
  const wallMs = msSince(t0);
  const after = memorySnapshot();
  const stats1 = hub.stats();
  const version = hub.get(TOPIC).version;
  const out = {
    variant: 'deltacast',
    healthy: cfg.healthy,
    stalled: cfg.stalled,
    updates: cfg.updates,
    tickMs: cfg.tickMs,
    snapshotBytes,
    wallMs,
    before,
    after,
    delta: memoryDelta(before, after),
    peakRss,
    stats: {
      framesSent: stats1.framesSent - stats0.framesSent,
      bytesSent: stats1.bytesSent - stats0.bytesSent,
      conflated: stats1.conflated - stats0.conflated,
      closedSlow: stats1.closedSlow - stats0.closedSlow,
      historyBytes: stats1.historyBytes,
      connections: stats1.connections,
    },
    healthyAtLast: healthy.filter((c) => c.version === version).length,
    healthyFramesEach: healthy.length ? healthy[0].frames : 0,
    stalledClients: stalled.map((c) => ({ frames: c.frames, snaps: c.snaps, bytes: c.bytes, lastVersion: c.version, closed: c.closed })),
    version,
  };
  await hub.close();
  return out;
}

// Socket.IO: the server in this child process, the clients in a child of
// their own (`healthy` that parse every message, `stalled` whose socket stops
// reading after the first state). One whole-board io.emit every intervalMs
// (real time); the stalled socket's server-side buffers are sampled as it goes.
async function stalledSocketIoChild(cfg) {
  const { Server } = require('socket.io');
  const server = http.createServer();
  const io = new Server(server, { transports: ['websocket'], serveClient: false, perMessageDeflate: false });
  let board = makeBoard(BOARD_ROWS, 4242);
  let seed = 9000;
  let current = { version: 1, data: board };
  io.on('connection', (socket) => socket.emit('state', current));
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${server.address().port}`;
  const ch = childChannel(forkChild('clients', { proto: 'socket.io', url, count: cfg.healthy + cfg.stalled, stall: cfg.stalled, topic: TOPIC }));
  const ready = await ch.next('ready');
  if (ready.type !== 'ready') return { error: `clients: ${JSON.stringify(ready)}` };
  const stalledSockets = ready.stalledIds.map((id) => io.of('/').sockets.get(id)).filter(Boolean);
  const buffered = () => {
    let packets = 0;
    let packetBytes = 0;
    let wsBuffered = 0;
    let socketBuffered = 0;
    for (const s of stalledSockets) {
      for (const p of s.conn.writeBuffer) {
        packets += 1;
        if (typeof p.data === 'string') packetBytes += Buffer.byteLength(p.data);
        else if (p.data) packetBytes += p.data.length;
      }
      const ws = s.conn.transport?.socket;
      if (ws) {
        wsBuffered += ws.bufferedAmount ?? 0;
        socketBuffered += ws._socket?.writableLength ?? 0;
      }
    }
    return { packets, packetBytes, wsBuffered, socketBuffered };
  };
  // A few states first, so both variants start from warmed-up code and buffers.
  const publish = () => {
    board = mutate(board, { fraction: TICK_FRACTION, seed: ++seed });
    current = { version: current.version + 1, data: board };
    io.emit('state', current);
  };
  for (let i = 0; i < 5; i++) {
    publish();
    await sleep(cfg.intervalMs);
  }
  await sleep(200);
  const before = memorySnapshot();
  const buffered0 = buffered();
  const samples = [];
  const dones = ch.next('done');
  ch.send({ type: 'go', target: current.version + cfg.messages });
  for (let m = 1; m <= cfg.messages; m++) {
    publish();
    await sleep(cfg.intervalMs);
    if (m % Math.max(1, Math.floor(cfg.messages / 8)) === 0 || m === cfg.messages) {
      samples.push({ messages: m, ...buffered(), heapUsed: process.memoryUsage().heapUsed, rss: process.memoryUsage().rss });
    }
  }
  const done = await withTimeout(dones, 120_000, 'healthy clients');
  const end = buffered();
  const after = memorySnapshot();
  const messageBytes = Buffer.byteLength(JSON.stringify(current));
  await ch.stop();
  io.close();
  return {
    variant: 'socket.io',
    healthy: cfg.healthy,
    stalled: cfg.stalled,
    messages: cfg.messages,
    intervalMs: cfg.intervalMs,
    messageBytes,
    pingIntervalMs: io.engine.opts.pingInterval,
    pingTimeoutMs: io.engine.opts.pingTimeout,
    before,
    after,
    delta: memoryDelta(before, after),
    buffered0,
    end,
    samples,
    healthyDone: done.type === 'done',
    stalledConnected: stalledSockets.filter((s) => s.connected).length,
  };
}

const STALLED_MANY = 100;

// What one flush of the normal lane sends a subscriber after k changes in
// one debounce window: the core concatenates the steps kept in the topic's
// history (history.maxCount, 32 by default), or sends a snapshot.
async function flushSizes(deltacast) {
  const rows = [];
  for (const k of [1, 10, 25, 32, 33, 50, 100]) {
    const { hub } = createHubWithTid(deltacast.lib, { clock: 'manual', heartbeat: { intervalMs: 0 } });
    let board = makeBoard(BOARD_ROWS, 4242);
    const first = board;
    await hub.publish(TOPIC, board);
    const frames = [];
    const c = hub.connect({ send: (f) => frames.push(f) });
    c.receive(`{"t":"sub","topic":"${TOPIC}"}`);
    await hub.advance(0);
    c.receive(`{"t":"ack","topic":"${TOPIC}","version":${hub.get(TOPIC).version}}`);
    for (let i = 1; i <= k; i++) {
      board = mutate(board, { fraction: TICK_FRACTION, seed: 9000 + i });
      hub.publish(TOPIC, board);
    }
    await hub.advance(300);
    const sent = frames.slice(1);
    const netOps = deltacast.lib.diff(first, board);
    rows.push({
      changes: k,
      frames: sent.length,
      kind: sent.map((f) => (f.startsWith('{"t":"snap"') ? 'snap' : f.startsWith('{"t":"patch"') ? 'patch' : 'other')).join('+'),
      bytes: sent.reduce((sum, f) => sum + f.length, 0),
      netDiffBytes: JSON.stringify(netOps).length,
      snapshotBytes: hub.getJson(TOPIC).json.length,
    });
    await hub.close();
    releaseHub(hub);
  }
  return rows;
}

async function runStalled(opts) {
  const updates = opts.quick ? 2000 : 10_000;
  const base = { healthy: 999, updates, tickMs: 10, warmup: opts.quick ? 100 : 300 };
  // The no-stall run twice: how far two identical child processes differ is
  // the noise floor of the one-client difference. 100 stalled clients divide
  // that noise by 100.
  const variants = [
    { label: 'deltacast, 999 acking + 0 stalled', kind: 'stalled-deltacast', config: { ...base, stalled: 0 } },
    { label: 'deltacast, 999 acking + 0 stalled (again)', kind: 'stalled-deltacast', config: { ...base, stalled: 0 } },
    { label: 'deltacast, 999 acking + 1 stalled', kind: 'stalled-deltacast', config: { ...base, stalled: 1 } },
    { label: 'deltacast, 999 acking + 100 stalled', kind: 'stalled-deltacast', config: { ...base, stalled: STALLED_MANY } },
  ];
  const sioBase = { healthy: 5, messages: opts.quick ? 100 : 400, intervalMs: 10 };
  variants.push({ label: 'Socket.IO, 5 healthy + 0 stalled', kind: 'stalled-socket.io', config: { ...sioBase, stalled: 0 } });
  variants.push({ label: 'Socket.IO, 5 healthy + 1 stalled', kind: 'stalled-socket.io', config: { ...sioBase, stalled: 1 } });
  const results = [];
  const deltacast = loadDeltacast();
  let flushes = null;
  if (deltacast.lib) {
    progress('stalled: what a normal-lane flush carries');
    flushes = await flushSizes(deltacast);
  }
  for (const v of variants) {
    progress(`stalled: ${v.label} (child process)`);
    const r = runChildSync(v.kind, v.config);
    r.label = v.label;
    results.push(r);
  }
  progressDone();
  const out = { updates, tickMs: base.tickMs, variants: results, flushes };
  printStalled(out);
  return out;
}

function printStalled(out) {
  const lines = [];
  const dc = out.variants.filter((r) => r.variant === 'deltacast');
  const sio = out.variants.filter((r) => r.variant === 'socket.io');
  const base = dc.filter((r) => r.stalled === 0 && !r.error);
  const baseRss = base.length ? base.reduce((s, r) => s + r.delta.rss, 0) / base.length : NaN;
  const baseHeap = base.length ? base.reduce((s, r) => s + r.delta.heapUsed + r.delta.external, 0) / base.length : NaN;
  lines.push(`## 2. One stalled client among 1,000: ${out.updates.toLocaleString('en-US')} updates, N = 1,000 rows`);
  lines.push('');
  lines.push('### deltacast (manual clock, default normal lane; one update every ' + `${out.tickMs} ms of the clock)`);
  lines.push('');
  lines.push('| variant | heapUsed Δ | external Δ | rss Δ | rss Δ − no-stall mean | frames sent to each stalled client (snapshots) | ' +
    'bytes sent to each stalled client | conflated | frames each healthy client got | healthy at last version |');
  lines.push('|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|');
  for (const r of dc) {
    if (r.error) {
      lines.push(`| ${r.label} | error: ${r.error} | | | | | | | | |`);
      continue;
    }
    const st = r.stalledClients;
    const frames = st.length ? `${Math.max(...st.map((c) => c.frames))} (${Math.max(...st.map((c) => c.snaps))})` : '—';
    const bytes = st.length ? kib(Math.max(...st.map((c) => c.bytes))) : '—';
    lines.push(`| ${r.label} | ${kib(r.delta.heapUsed)} | ${kib(r.delta.external)} | ${kib(r.delta.rss)} | ` +
      `${kib(r.delta.rss - baseRss)} | ${frames} | ${bytes} | ${fmtInt(r.stats.conflated)} | ${fmtInt(r.healthyFramesEach)} | ` +
      `${r.healthyAtLast}/${r.healthy} |`);
  }
  lines.push('');
  lines.push('Δ = after the updates minus before them, both after full GCs, in a child process per row; the stalled clients ' +
    'connect between the two. The healthy clients are in-process counting clients that ack every frame; the stalled ones ' +
    'never ack and keep nothing, so what memory they add is the hub\'s. "bytes sent" is what a socket would have to ' +
    'buffer for a client that stopped reading; the credit window (64 frames or 1 MiB, whichever comes first) bounds it. ' +
    'Heartbeats are off (with them on, the stall timeout, 30 s, would close the stalled client).');
  const dc1 = dc.find((r) => r.stalled === 1 && !r.error);
  const dcMany = dc.find((r) => r.stalled === STALLED_MANY && !r.error);
  if (base.length && dc1) {
    const snap = dc1.snapshotBytes;
    const noise = base.length > 1 ? Math.abs(base[0].delta.rss - base[1].delta.rss) : NaN;
    const one = dc1.delta.rss - baseRss;
    const oneHeap = dc1.delta.heapUsed + dc1.delta.external - baseHeap;
    const each = dcMany ? (dcMany.delta.rss - baseRss) / STALLED_MANY : NaN;
    const eachHeap = dcMany ? (dcMany.delta.heapUsed + dcMany.delta.external - baseHeap) / STALLED_MANY : NaN;
    const spread = Math.max(...dc.filter((r) => !r.error).map((r) => Math.abs(r.delta.rss - baseRss)));
    lines.push(`- memory per stalled client, from ${STALLED_MANY} of them: rss ${kib(each)}, JS heap + external ${kib(eachHeap)}. ` +
      `From the one-client run: rss ${kib(one)}, JS heap + external ${kib(oneHeap)}. The rows' rss Δ spread over ` +
      `±${kib(spread)} around the no-stall mean (the two identical no-stall runs differ by ${kib(noise)}): rss cannot ` +
      `resolve one client; ${STALLED_MANY} clients bring the resolution to about ±${kib(spread / STALLED_MANY)} each. ` +
      `The JS heap does not move. A snapshot is ${kib(snap)}.`);
    lines.push(`- target (deltacast's memory for the stalled client < 2 × one snapshot = ${kib(2 * snap)}): ` +
      `${kib(Number.isFinite(each) ? each : one)} → ${(Number.isFinite(each) ? each : one) < 2 * snap ? 'met' : 'NOT met'}` +
      (Number.isFinite(each) ? ` (judged on the ${STALLED_MANY}-client slope; the one-client difference is within the noise)` : ''));
    const st = dc1.stalledClients[0];
    lines.push(`- frames the stalled client was sent: ${st.frames} (${st.snaps} snapshot), ${kib(st.bytes)} in all ` +
      `(≤ 64 + snapshots: ${st.frames <= 64 + st.snaps ? 'yes' : 'NO'}); after that the hub conflated ${fmtInt(dc1.stats.conflated)} ` +
      `flushes for it${dc1.stats.closedSlow ? `; closed slow: ${dc1.stats.closedSlow}` : ''}. Over a real socket those ` +
      `${kib(st.bytes)} would wait in its send buffer: the window stops the growth, but the 1 MiB byte limit lets more than ` +
      `2 snapshots' worth through.`);
  }
  lines.push('');
  if (out.flushes) {
    lines.push('What one normal-lane flush sends a subscriber after k changes within one debounce window (the same board, ' +
      '1% of the rows per change), next to the net diff from the first to the last state:');
    lines.push('');
    lines.push('| changes in the window | frame sent | frame bytes | net diff (ops) bytes | snapshot bytes |');
    lines.push('|--:|---|--:|--:|--:|');
    for (const f of out.flushes) {
      lines.push(`| ${f.changes} | ${f.kind} | ${fmtInt(f.bytes)} | ${fmtInt(f.netDiffBytes)} | ${fmtInt(f.snapshotBytes)} |`);
    }
    lines.push('');
    lines.push('A flush over several changes sends the net change: one diff from the state the subscriber was last ' +
      'brought to, so its ops are the net diff\'s and the frame adds only the envelope (about 77 bytes), however many ' +
      'changes the window held, including more than the history keeps (history.maxCount, 32). At one change every ' +
      '10 ms (the run above) a 250 ms window holds 25.');
    lines.push('');
  }
  if (sio.length) {
    const s0 = sio.find((r) => r.stalled === 0);
    const s1 = sio.find((r) => r.stalled === 1);
    lines.push(`### Socket.IO (whole board per io.emit, one every ${s1?.intervalMs ?? '?'} ms of real time)`);
    lines.push('');
    lines.push('| variant | messages | heapUsed Δ | external Δ | rss Δ | stalled socket: engine.io writeBuffer (packets) | ' +
      'ws bufferedAmount | net socket writableLength | healthy clients done |');
    lines.push('|---|--:|--:|--:|--:|--:|--:|--:|:-:|');
    for (const r of sio) {
      if (r.error) {
        lines.push(`| ${r.label} | error: ${r.error} | | | | | | | |`);
        continue;
      }
      const e = r.end;
      lines.push(`| ${r.label} | ${r.messages} | ${kib(r.delta.heapUsed)} | ${kib(r.delta.external)} | ${kib(r.delta.rss)} | ` +
        `${r.stalled ? `${kib(e.packetBytes)} (${e.packets})` : '—'} | ${r.stalled ? kib(e.wsBuffered) : '—'} | ` +
        `${r.stalled ? kib(e.socketBuffered) : '—'} | ${r.healthyDone ? '✓' : '✗'} |`);
    }
    lines.push('');
    if (s1 && !s1.error) {
      lines.push('The stalled socket\'s server-side buffers, sampled as messages go out:');
      lines.push('');
      lines.push('| messages sent | writeBuffer packets | writeBuffer bytes | ws bufferedAmount | heapUsed | rss |');
      lines.push('|--:|--:|--:|--:|--:|--:|');
      for (const s of s1.samples) {
        lines.push(`| ${s.messages} | ${s.packets} | ${kib(s.packetBytes)} | ${kib(s.wsBuffered)} | ` +
          `${(s.heapUsed / 1048576).toFixed(1)} MiB | ${(s.rss / 1048576).toFixed(1)} MiB |`);
      }
      lines.push('');
      const last = s1.samples[s1.samples.length - 1];
      const held = (x) => x.packetBytes + x.wsBuffered;
      // the slope once the kernel's socket buffers are full (the second half of the samples)
      const first = s1.samples[Math.floor(s1.samples.length / 2) - 1] ?? s1.samples[0];
      const slope = (held(last) - held(first)) / (last.messages - first.messages);
      const heartbeatMessages = ((s1.pingIntervalMs + s1.pingTimeoutMs) / s1.intervalMs);
      const heapOver = s0 && !s0.error ? (s1.delta.heapUsed + s1.delta.external) - (s0.delta.heapUsed + s0.delta.external) : NaN;
      lines.push(`- the server holds ${kib(held(last))} for the stalled socket after ${last.messages} messages ` +
        `(writeBuffer + ws), growing by ${kib(slope)} per message (a message is ${kib(s1.messageBytes)}), without bound: ` +
        `${fmtInt((slope * out.updates) / 1048576)} MiB at ${out.updates.toLocaleString('en-US')} updates. What stops it is ` +
        `engine.io's heartbeat (pingInterval ${s1.pingIntervalMs / 1000} s + pingTimeout ${s1.pingTimeoutMs / 1000} s), ` +
        `which at one message every ${s1.intervalMs} ms closes the client after about ${fmtInt(heartbeatMessages)} messages, ` +
        `${fmtInt((slope * heartbeatMessages) / 1048576)} MiB.`);
      lines.push(`- JS heap + external, with − without the stalled client: ${kib(heapOver)} after full GCs, ` +
        `${kib(heapOver / Math.max(1, s1.end.packets))} per packet queued: each holds the message text and its ` +
        'pre-encoded WebSocket frame (a Buffer), so a queued message costs about twice its size');
      const dc1 = dc.find((r) => r.stalled === 1 && !r.error);
      if (dc1) {
        const dcBytes = dc1.stalledClients[0].bytes;
        lines.push(`- per stalled client, deltacast sent ${kib(dcBytes)} in all and then stopped; Socket.IO queued ` +
          `${kib(held(last))} after ${last.messages} messages and keeps going`);
      }
    }
    lines.push('');
  }
  emit(lines);
}

// ---- 3. debounce: 100,000 topics, 10 changes each ---------------------------
//
// Every variant runs the same driver: 10 rounds over 100,000 topics, a fresh
// small object per call ({ p, seq }), in chunks of 1,000 calls with a
// setImmediate between chunks (a feed arriving in network reads). What each
// variant does with a call:
//   deltacast         hub.publish(topic, value) on a default hub (normal lane:
//                     50 ms debounce, 250 ms max wait); the promise is not
//                     awaited. One subscriber connection (counting, no acks) on
//                     1,000 of the topics, or none.
//   hand-written      pending.set(topic, value); one setTimeout(flush, 50) per
//                     window. flush(): latest.set for every pending topic,
//                     JSON.stringify + send for the subscribed ones.
//   lodash.debounce   one debounce(fn, 50, { maxWait: 250 }) per topic, made on
//                     first use and kept in a Map; fn does what flush() does
//                     for one topic.
// Clock: from the first call until every call is answered and the last window
// has flushed (the 400 ms after the last call are included; idle costs no CPU).

async function debounceDriver(cfg, call) {
  const topics = new Array(cfg.topics);
  for (let i = 0; i < cfg.topics; i++) topics[i] = `t${i}`;
  const chunk = 1000;
  let syncNs = 0n;
  for (let r = 0; r < cfg.rounds; r++) {
    for (let start = 0; start < cfg.topics; start += chunk) {
      const end = Math.min(cfg.topics, start + chunk);
      const t0 = nowNs();
      for (let i = start; i < end; i++) call(topics[i], { p: 100 + (i % 97) + r / 100, seq: r });
      syncNs += nowNs() - t0;
      await nextTurn();
    }
  }
  return { syncMs: Number(syncNs) / 1e6, topics };
}

async function debounceChild(cfg) {
  const subscribed = [];
  for (let i = 0; i < cfg.topics; i += cfg.topics / cfg.subscribedTopics) subscribed.push(`t${i}`);
  const subscribedSet = new Set(subscribed);
  let sentBytes = 0;
  let sent = 0;
  const send = (topic, text) => {
    sent += 1;
    sentBytes += text.length;
  };
  const out = { variant: cfg.variant, topics: cfg.topics, rounds: cfg.rounds, calls: cfg.topics * cfg.rounds };

  if (cfg.variant === 'deltacast' || cfg.variant === 'deltacast-nosub') {
    const deltacast = loadDeltacast();
    if (!deltacast.lib) return { ...out, error: deltacast.missing };
    const { hub, coreTid } = createHubWithTid(deltacast.lib, {
      heartbeat: { intervalMs: 0 },
      limits: { messagesPerSecond: 1_000_000, messageBurst: 1_000_000 }, // 1,000 subs at once
    });
    let sub = null;
    if (cfg.variant === 'deltacast') {
      sub = hub.connect({
        send(frame) {
          sent += 1;
          sentBytes += frame.length;
        },
      });
      for (const t of subscribed) sub.receive(`{"t":"sub","topic":"${t}"}`);
    }
    await sleep(50);
    const before = memorySnapshot();
    const clock = startClock();
    let lastCall = null;
    const { syncMs } = await debounceDriver(cfg, (topic, value) => {
      lastCall = hub.publish(topic, value);
    });
    const loopMs = msSince(clock.t0);
    // The core answers in order: the last call's answer comes last. (Polling
    // hub.stats() with setImmediate would spin the JS thread meanwhile.)
    await lastCall;
    if (hub.stats().pending !== 0) throw new Error('calls still pending after the last was answered');
    const answeredMs = msSince(clock.t0);
    await sleep(400);
    const m = stopClock(clock, coreTid);
    const after = memorySnapshot();
    const stats = hub.stats();
    const last = hub.get(`t${cfg.topics - 1}`);
    Object.assign(out, m, {
      syncMs,
      loopMs,
      answeredMs,
      before,
      after,
      delta: memoryDelta(before, after),
      framesSent: sent,
      bytesSent: sentBytes,
      stats: { topics: stats.topics, changes: stats.changes, bytes: stats.bytes, framesSent: stats.framesSent, conflated: stats.conflated },
      correct: stats.topics === cfg.topics && stats.changes === cfg.topics * cfg.rounds && last?.data?.seq === cfg.rounds - 1,
    });
    if (cfg.variant === 'deltacast') out.breakdown = await publishBreakdown(deltacast, hub, cfg);
    await hub.close();
    return out;
  }

  const latest = new Map();
  let driverCall;
  let holders = null;
  if (cfg.variant === 'hand-written') {
    let pending = new Map();
    let timer = null;
    const flush = () => {
      timer = null;
      const batch = pending;
      pending = new Map();
      for (const [topic, value] of batch) {
        latest.set(topic, value);
        if (subscribedSet.has(topic)) send(topic, JSON.stringify(value));
      }
    };
    driverCall = (topic, value) => {
      pending.set(topic, value);
      if (timer === null) timer = setTimeout(flush, 50);
    };
  } else {
    const debounce = require('lodash.debounce');
    holders = new Map();
    driverCall = (topic, value) => {
      let fn = holders.get(topic);
      if (fn === undefined) {
        fn = debounce((v) => {
          latest.set(topic, v);
          if (subscribedSet.has(topic)) send(topic, JSON.stringify(v));
        }, 50, { maxWait: 250 });
        holders.set(topic, fn);
      }
      fn(value);
    };
  }
  await sleep(50);
  const before = memorySnapshot();
  const clock = startClock();
  const { syncMs } = await debounceDriver(cfg, driverCall);
  const loopMs = msSince(clock.t0);
  await sleep(400);
  const m = stopClock(clock, null);
  const after = memorySnapshot();
  Object.assign(out, m, {
    syncMs,
    loopMs,
    answeredMs: loopMs,
    before,
    after,
    delta: memoryDelta(before, after),
    framesSent: sent,
    bytesSent: sentBytes,
    correct: latest.size === cfg.topics && latest.get(`t${cfg.topics - 1}`)?.seq === cfg.rounds - 1,
  });
  if (holders) out.holders = holders.size;
  return out;
}

// The synchronous cost of one hub.publish(topic, value), taken apart: each
// piece timed over `calls` calls in chunks of 1,000 (between chunks, the hub's
// answers are drained as in the run).
async function publishBreakdown(deltacast, hub, cfg) {
  const calls = cfg.breakdownCalls;
  const topics = Array.from({ length: 1000 }, (_, i) => `b${i}`);
  const values = Array.from({ length: 1000 }, (_, i) => ({ p: 100 + (i % 97), seq: 0 }));
  const texts = values.map((v) => JSON.stringify(v));
  let sink = 0;
  // The hub hands a chunk's calls over in a microtask queued by the first
  // call; one queued after the chunk runs after it.
  const handedOver = () => new Promise((resolve) => queueMicrotask(resolve));
  const time = async (fn, { handOver = false } = {}) => {
    // warm-up, then the timed pass; every chunk publishes new values (and their texts)
    for (let i = 0; i < 1000; i++) fn(i);
    await nextTurn();
    let ns = 0n;
    for (let done = 0; done < calls; done += 1000) {
      for (let i = 0; i < 1000; i++) {
        values[i].seq += 1;
        texts[i] = JSON.stringify(values[i]);
      }
      if (handOver) {
        // only the crossing of the chunk queued just before
        for (let i = 0; i < 1000; i++) fn(i);
        const t0 = nowNs();
        await handedOver();
        ns += nowNs() - t0;
      } else {
        const t0 = nowNs();
        for (let i = 0; i < 1000; i++) fn(i);
        ns += nowNs() - t0;
      }
      await nextTurn();
    }
    await until(() => hub.stats().pending === 0, 60_000);
    return Number(ns) / calls / 1000; // µs per call
  };
  const pieces = [
    ['JSON.stringify(value)', (i) => { sink += JSON.stringify(values[i]).length; }],
    ['topic.isWellFormed() (checkTopic)', (i) => { sink += topics[i].isWellFormed() ? 1 : 0; }],
    ['hub.publishJson(topic, text), text already made: the record and the receipt', (i) => hub.publishJson(topics[i], texts[i])],
    ['hub.publish(topic, value): the whole call', (i) => hub.publish(topics[i], values[i])],
    ['the hand-over (one N-API call per 1,000 calls, the copy of their records) ÷ 1,000', (i) => hub.publish(topics[i], values[i]), { handOver: true }],
  ];
  // Three passes over the pieces, interleaved; the median of each. The core
  // thread works on the other hardware thread meanwhile, which slows this one.
  const samples = pieces.map(() => []);
  for (let pass = 0; pass < 3; pass++) {
    for (let k = 0; k < pieces.length; k++) samples[k].push(await time(pieces[k][1], pieces[k][2]));
  }
  const rows = pieces.map(([what], k) => [what, [...samples[k]].sort((a, b) => a - b)[1], samples[k]]);
  return { calls, passes: 3, rows: rows.map(([what, us, all]) => ({ what, us, passes: all })), sink };
}

async function runDebounce(opts) {
  const cfg = {
    topics: opts.quick ? 20_000 : 100_000,
    rounds: 10,
    subscribedTopics: opts.quick ? 200 : 1000,
    breakdownCalls: opts.quick ? 30_000 : 100_000,
  };
  const variants = [
    { variant: 'deltacast', label: `deltacast hub.publish, 1 subscriber on ${cfg.subscribedTopics.toLocaleString('en-US')} topics` },
    { variant: 'deltacast-nosub', label: 'deltacast hub.publish, no subscriber' },
    { variant: 'hand-written', label: 'hand-written: Map of pending + one setTimeout per window' },
    { variant: 'lodash', label: 'lodash.debounce per key (50 ms, maxWait 250 ms)' },
  ];
  const results = [];
  for (const v of variants) {
    progress(`debounce: ${v.label} (child process)`);
    const r = runChildSync('debounce', { ...cfg, variant: v.variant });
    r.label = v.label;
    results.push(r);
  }
  progressDone();
  const out = { ...cfg, variants: results };
  printDebounce(out);
  return out;
}

function printDebounce(out) {
  const lines = [];
  const calls = out.topics * out.rounds;
  lines.push(`## 3. ${out.topics.toLocaleString('en-US')} topics × ${out.rounds} changes = ${calls.toLocaleString('en-US')} calls ` +
    '(a child process each)');
  lines.push('');
  lines.push('| variant | JS thread CPU ms | in the calls ms | rest of the JS thread ms | µs/call (JS thread) | ratio vs best hand-written | ' +
    'core thread ms | all threads CPU ms | wall: calls / answered / flushed ms | ELU active ms | heap Δ B/key | rss Δ B/key | sent | ✓ |');
  lines.push('|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|:-:|');
  const peers = out.variants.filter((r) => !r.error && (r.variant === 'hand-written' || r.variant === 'lodash'));
  const best = peers.length ? peers.reduce((a, b) => (a.jsMs <= b.jsMs ? a : b)) : null;
  for (const r of out.variants) {
    if (r.error) {
      lines.push(`| ${r.label} | error: ${r.error} | | | | | | | | | | | | |`);
      continue;
    }
    const core = r.variant.startsWith('deltacast') ? fmtMs(r.coreMs) : '';
    lines.push(`| ${r.label} | ${fmtMs(r.jsMs)} | ${fmtMs(r.syncMs)} | ${fmtMs(r.jsMs - r.syncMs)} | ${fmtUs((r.jsMs * 1000) / calls)} | ` +
      `${best ? fmtRatio(r.jsMs / best.jsMs) : '—'} | ${core} | ${fmtMs(r.cpuMs)} | ` +
      `${fmtMs(r.loopMs)} / ${fmtMs(r.answeredMs)} / ${fmtMs(r.wallMs)} | ${fmtMs(r.eluActiveMs)} | ` +
      `${fmtInt(r.delta.heapUsed / out.topics)} | ${fmtInt(r.delta.rss / out.topics)} | ${fmtInt(r.framesSent)} | ${r.correct ? '✓' : '✗'} |`);
  }
  lines.push('');
  lines.push('JS thread CPU: the main thread\'s CPU time (/proc/self/task/<pid>/schedstat) from the first call until the last ' +
    'window has flushed. "in the calls": hrtime around each chunk of 1,000 calls (the value objects are made there too, ' +
    'the same for every variant); "rest": timers, flushes, GC on the main thread, and for deltacast the drains that settle ' +
    'the promises. ratio = this row ÷ the best hand-written row (below 1× is less JS-thread time). Wall: when the last ' +
    'call returned / when every call was answered / + 400 ms for the last window. heap Δ and rss Δ: after − before, ' +
    'after full GCs, with every topic\'s latest value held (deltacast holds it in the core, off the JS heap). ' +
    '"sent": frames (deltacast) or JSON.stringify + send (peers) for the subscribed topics.');
  const dc = out.variants.find((r) => r.variant === 'deltacast' && !r.error);
  if (dc && best) {
    lines.push(`- target (deltacast's JS-thread CPU ≤ the best hand-written JS, ${best.label.split(':')[0]} ${fmtMs(best.jsMs)} ms): ` +
      `deltacast ${fmtMs(dc.jsMs)} ms (${fmtRatio(dc.jsMs / best.jsMs)}) → ${dc.jsMs <= best.jsMs ? 'met' : 'NOT met'}`);
    lines.push(`- deltacast also spends ${fmtMs(dc.coreMs)} ms on its core thread; its store counts ` +
      `${fmtInt(dc.stats.bytes / dc.stats.topics)} B per topic (hub.stats().bytes), the process's rss grew by ` +
      `${fmtInt(dc.delta.rss / out.topics)} B per topic`);
  }
  lines.push('');
  if (dc?.breakdown) {
    lines.push(`### Where a hub.publish call spends its JS-thread time (${dc.breakdown.calls.toLocaleString('en-US')} calls each, ` +
      'sync part, median of 3 passes)');
    lines.push('');
    lines.push('| piece | µs per call |');
    lines.push('|---|--:|');
    for (const row of dc.breakdown.rows) lines.push(`| ${row.what} | ${fmtUs(row.us)} |`);
    const settle = (dc.jsMs - dc.syncMs) * 1000 / calls;
    lines.push(`| the rest, per call: JS-thread time outside the calls in the run above ÷ calls (hand-overs, drains, GC) | ${fmtUs(settle)} |`);
    lines.push('');
    lines.push('The pieces are timed on their own, 1,000 calls at a time, with small values ({ p, seq }) on 1,000 topics; ' +
      'they overlap (publish includes stringify and isWellFormed). A call writes a record into the hub\'s request buffer ' +
      'and returns a receipt; the records of a chunk cross to the core thread together, in a microtask at the end of ' +
      'the chunk (the hand-over row).');
    lines.push('');
  }
  emit(lines);
}

// ---- main -------------------------------------------------------------------

async function childMain(opts) {
  if (opts.child === 'clients') {
    await clientsChild(opts.config);
    return;
  }
  let r;
  if (opts.child === 'stalled-deltacast') r = await stalledDeltacastChild(opts.config);
  else if (opts.child === 'stalled-socket.io') r = await stalledSocketIoChild(opts.config);
  else if (opts.child === 'debounce') r = await debounceChild(opts.config);
  else throw usageError(`unknown --child ${opts.child}`);
  process.stdout.write(JSON.stringify(r) + '\n');
  process.exit(0);
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.child) {
    await childMain(opts);
    return;
  }
  const deltacast = loadDeltacast();
  const only = opts.only ?? BENCHMARKS;
  const versions = {
    ws: packageVersion('ws'),
    'socket.io': packageVersion('socket.io'),
    'socket.io-client': packageVersion('socket.io-client'),
    'lodash.debounce': packageVersion('lodash.debounce'),
  };
  const env = {
    date: new Date().toISOString(),
    node: process.version,
    v8: process.versions.v8,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    cpu: `${os.cpus()[0]?.model ?? '?'} (${os.cpus().length} threads)`,
    memory: `${(os.totalmem() / 2 ** 30).toFixed(0)} GiB`,
    commit: gitCommit(),
    versions,
    deltacast: deltacast.lib ? `loaded from ${path.relative(process.cwd(), deltacast.libPath)}` : `not built (${deltacast.missing})`,
    addon: process.env.DELTACAST_ADDON || null,
    loadAverage: os.loadavg().map((x) => Number(x.toFixed(2))),
  };

  emit('# deltacast delivery benchmark\n');
  emit(`${env.date} · node ${env.node} · ${env.cpu}, ${env.memory} · ${env.platform}${env.commit ? ` · commit ${env.commit}` : ''}`);
  emit(Object.entries(versions).map(([k, v]) => `${k} ${v}`).join(' · ') + ` · deltacast: ${env.deltacast}` +
    `${env.addon ? ` (addon ${env.addon})` : ''}`);
  emit(`load average at start: ${env.loadAverage.join(', ')} (on ${os.cpus().length} threads: the server, the hub's core ` +
    'thread and the client processes share them, so a busy machine shows in every column)');
  emit(`${opts.quick ? 'quick run: fewer updates, clients and calls · ' : ''}benchmarks: ${only.join(', ')}\n`);

  const out = { env, options: { ...opts, child: undefined, config: undefined } };
  if (only.includes('fanout')) out.fanout = await runFanout(opts, deltacast);
  if (only.includes('stalled')) out.stalled = await runStalled(opts);
  if (only.includes('debounce')) out.debounce = await runDebounce(opts);

  if (opts.save) {
    const dir = path.join(__dirname, 'results');
    fs.mkdirSync(dir, { recursive: true });
    const day = env.date.slice(0, 10);
    const limited = opts.quick || opts.only || process.argv.some((a) => a.startsWith('--clients='));
    const suffix = limited ? `-${opts.quick ? 'quick' : 'partial'}` : '';
    const file = path.join(dir, `delivery-${day}${suffix}`);
    fs.writeFileSync(`${file}.json`, JSON.stringify(out, null, 2) + '\n');
    fs.writeFileSync(`${file}.md`, MD.join('\n') + '\n');
    console.log(`results written to ${path.relative(process.cwd(), file)}.json and .md`);
  }
  // Hubs and sockets are closed; nothing should hold the loop, but do not wait on a straggler.
  process.exit(0);
}

main().catch((err) => {
  progressDone();
  console.error(err.usage ? `bench/delivery.js: ${err.message}` : err.stack || err.message);
  process.exit(1);
});
