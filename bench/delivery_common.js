'use strict';

// What the delivery benchmarks (bench/fanout.js, bench/stalled.js,
// bench/debounce.js; bench/delivery.js runs all three) share: the command
// line, the board states, a counting subscriber, the child processes that hold
// socket clients (whose deltacast client is lib/protocol_client.js), and the
// main that prints the header and saves results.

const {
  gc,
  packageVersion,
  gitCommit,
  usageError,
  eachFlag,
  namesOf,
  progressDone,
  nowNs,
  msSince,
  sleep,
  nextTurn,
  loadDeltacast,
} = require('./common.js');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const util = require('node:util');
const { spawnSync, fork } = require('node:child_process');

const { ProtocolClient } = require('../lib/protocol_client.js');
const { makeBoard, mutate } = require('./data.js');

const TOPIC = 'prices';
const BOARD_ROWS = 1000;
const TICK_FRACTION = 0.01;

// ---- command line -----------------------------------------------------------

function parseArgs(argv, script, benchmarks) {
  const opts = { quick: false, only: null, clients: null, save: true, child: null, config: null, variants: null };
  const only = benchmarks.length > 1 ? ` [--only=${benchmarks.join(',')}]` : '';
  const clients = benchmarks.includes('fanout') ? ' [--clients=100,1000]' : '';
  const variants = benchmarks.includes('debounce') ? ' [--variants=deltacast-coalesce,hand-written-frozen]' : '';
  const usage = `node bench/${script} [--quick]${only}${clients}${variants} [--no-save]`;
  eachFlag(argv, usage, (flag, value) => {
    switch (flag) {
      case '--quick':
        opts.quick = true;
        break;
      case '--only':
        if (benchmarks.length < 2) return false;
        opts.only = namesOf(value, benchmarks, '--only');
        break;
      case '--clients':
        if (!benchmarks.includes('fanout')) return false;
        opts.clients = value.split(',').map((s) => Number(s.trim()));
        for (const c of opts.clients) if (!Number.isInteger(c) || c < 2) throw usageError(`--clients takes counts ≥ 2, got ${c}`);
        break;
      case '--variants': // debounce: only these rows (an A/B of one row against another build)
        if (!benchmarks.includes('debounce')) return false;
        opts.variants = value.split(',').map((s) => s.trim());
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

// `script` is the benchmark file that knows the child `kind` (its main passes
// --child=<kind> to runBenchmarks).
function forkChild(script, kind, config) {
  return fork(script, [`--child=${kind}`, `--config=${JSON.stringify(config)}`], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: process.env,
  });
}

// Runs `node <script> --child=<kind>` to completion; its last stdout line is
// its result (JSON).
function runChildSync(script, kind, config, { timeoutMs = 10 * 60 * 1000 } = {}) {
  const t0 = nowNs();
  const child = spawnSync(process.execPath, ['--expose-gc', script, `--child=${kind}`, `--config=${JSON.stringify(config)}`], {
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
    const c = { ws, stalled, frames: 0, bytes: 0, done: false };
    c.pause = () => ws._socket.pause();
    // Acks are cumulative ("applied up to"), so a client delays them the way
    // TCP does: one ack per ACK_EVERY frames (a quarter of the hub's default
    // window of 64), or ACK_DELAY_MS after a frame when fewer came.
    c.ackVersion = 0;
    c.unackedFrames = 0;
    c.flushAck = () => {
      if (c.unackedFrames === 0) return;
      c.unackedFrames = 0;
      if (ws.readyState === WebSocket.OPEN) c.protocol.ack(cfg.topic, c.ackVersion);
    };
    // The protocol itself (replica, gaps, patches that fail, pings) is the
    // shared client of lib/protocol_client.js, with the applier under test.
    c.protocol = new ProtocolClient({
      send: (text) => {
        if (ws.readyState === WebSocket.OPEN) ws.send(text);
      },
      applyPatch,
      onApplied: (_topic, version) => {
        c.ackVersion = version;
        c.unackedFrames += 1;
        if (c.unackedFrames >= ACK_EVERY) {
          c.flushAck();
        } else if (!acksDue.has(c)) {
          acksDue.add(c);
          if (acksDue.size === 1) setTimeout(flushAcks, ACK_DELAY_MS);
        }
      },
    });
    Object.defineProperties(c, {
      version: { get: () => c.protocol.get(cfg.topic)?.version ?? 0 },
      data: { get: () => c.protocol.get(cfg.topic)?.data },
      gaps: { get: () => c.protocol.gaps + c.protocol.failedPatches },
      errors: { get: () => c.protocol.errors.length },
    });
    ws.on('open', () => c.protocol.subscribe(cfg.topic));
    ws.on('message', (buf) => {
      c.frames += 1;
      c.bytes += buf.length;
      c.protocol.receive(buf.toString());
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

// ---- main ---------------------------------------------------------------------

/**
 * The main of a benchmark program. `script`: its file name in bench/;
 * `benchmarks`: { name: run(opts, deltacast) } in order; `children`: { kind:
 * async (config) => result } for `--child=<kind>` (clientsChild is always
 * there). Results go to bench/results/<results>-<date>.json and .md.
 */
async function runBenchmarks({ script, results, benchmarks, children = {} }) {
  const names = Object.keys(benchmarks);
  const opts = parseArgs(process.argv.slice(2), script, names);
  if (opts.child) {
    if (opts.child === 'clients') {
      await clientsChild(opts.config);
      return;
    }
    const child = children[opts.child];
    if (!child) throw usageError(`unknown --child ${opts.child}`);
    const r = await child(opts.config);
    process.stdout.write(JSON.stringify(r) + '\n');
    process.exit(0);
  }
  const deltacast = loadDeltacast();
  const only = opts.only ?? names;
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

  emit(`# deltacast ${results} benchmark\n`);
  emit(`${env.date} · node ${env.node} · ${env.cpu}, ${env.memory} · ${env.platform}${env.commit ? ` · commit ${env.commit}` : ''}`);
  emit(Object.entries(versions).map(([k, v]) => `${k} ${v}`).join(' · ') + ` · deltacast: ${env.deltacast}` +
    `${env.addon ? ` (addon ${env.addon})` : ''}`);
  emit(`load average at start: ${env.loadAverage.join(', ')} (on ${os.cpus().length} threads: the server, the hub's core ` +
    'thread and the client processes share them, so a busy machine shows in every column)');
  emit(`${opts.quick ? 'quick run: fewer updates, clients and calls · ' : ''}benchmarks: ${only.join(', ')}\n`);

  const out = { env, options: { ...opts, child: undefined, config: undefined } };
  for (const name of only) out[name] = await benchmarks[name](opts, deltacast);

  if (opts.save) {
    const dir = path.join(__dirname, 'results');
    fs.mkdirSync(dir, { recursive: true });
    const day = env.date.slice(0, 10);
    const limited = opts.quick || opts.only || opts.variants || process.argv.some((a) => a.startsWith('--clients='));
    const suffix = limited ? `-${opts.quick ? 'quick' : 'partial'}` : '';
    const file = path.join(dir, `${results}-${day}${suffix}`);
    fs.writeFileSync(`${file}.json`, JSON.stringify(out, null, 2) + '\n');
    fs.writeFileSync(`${file}.md`, MD.join('\n') + '\n');
    console.log(`results written to ${path.relative(process.cwd(), file)}.json and .md`);
  }
  // Hubs and sockets are closed; nothing should hold the loop, but do not wait on a straggler.
  process.exit(0);
}

/** Runs main() and turns a failure into a message and exit code 1. */
function start(script, main) {
  main().catch((err) => {
    progressDone();
    console.error(err.usage ? `bench/${script}: ${err.message}` : err.stack || err.message);
    process.exit(1);
  });
}

module.exports = {
  TOPIC,
  BOARD_ROWS,
  TICK_FRACTION,
  kib,
  memorySnapshot,
  memoryDelta,
  until,
  boardStates,
  frameVersions,
  countingClient,
  emit,
  forkChild,
  runChildSync,
  clientsChild,
  childChannel,
  withTimeout,
  runBenchmarks,
  start,
};
