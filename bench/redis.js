'use strict';
// Scale-out on Redis, side by side, on one redis-server started here (free
// loopback port, no persistence) and the same machine for every variant:
//
//   node bench/redis.js            300 updates per latency variant, 2,000 for throughput
//   node bench/redis.js --quick    100 and 500 (well under a minute)
//   --out bench/results/redis-<date>   also writes <that>.md and <that>.json
//
// The board: 1,000 rows; each update changes 1% of them (10 prices).
//
// 1. Publish-to-delivery latency, one update at a time (the next is published
//    once the last arrived), p50/p99 over every update, a ws client on the
//    receiving node:
//    deltacast in-process     hub.publish(next) on the hub the client is on
//    deltacast across nodes   hub A publishes (Redis engine), the client is on hub B
//    Socket.IO redis-adapter, patch / state      io A emits fast-json-patch
//                             compare(prev, next) / the whole board, the client is on io B
//    Socket.IO redis-streams-adapter, patch / state   likewise
//    and one Redis round trip (PING) for the target: across nodes p99 under
//    2x in-process p99 plus a round trip.
// 2. Updates per second of one publisher, each awaited (a topic's changes are
//    serial), through Redis and in process; and 4 topics at once.
// 3. Redis per update (INFO deltas over the latency runs): bytes in (what
//    publishers sent), bytes out (notifications and replies), commands; against
//    the bytes of the patch (the target: bytes in within 1.2x of them). Per
//    change: the latency runs (shorter than a stream window: no compaction);
//    amortized: one publisher over 3 stream windows of the default caps
//    (2,700 updates: 3 compactions, each state sent counted with the updates
//    it covers), bytes in over the whole run.
//
// Latency variants and the throughput pair run interleaved in each round; the
// tables give the median over rounds.

const fs = require('node:fs');
const net = require('node:net');
const http = require('node:http');
const { spawn } = require('node:child_process');
const { performance } = require('node:perf_hooks');
const { WebSocketServer, WebSocket } = require('ws');
const { createClient } = require('redis');
const { Server } = require('socket.io');
const ioClient = require('socket.io-client');
const { createAdapter: pubsubAdapter } = require('@socket.io/redis-adapter');
const { createAdapter: streamsAdapter } = require('@socket.io/redis-streams-adapter');
const fastJsonPatch = require('fast-json-patch');

const { createHub, diff } = require('../lib/index.js');
const { redisEngine } = require('../lib/redis.js');
const { attachWebSocketServer } = require('../lib/adapters/ws.js');

const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const out = argv.includes('--out') ? argv[argv.indexOf('--out') + 1] : undefined;
const UPDATES = quick ? 100 : 300;
const THROUGHPUT = quick ? 500 : 2000;
const ROUNDS = quick ? 1 : 3;
// the engine's default streamMaxCount (1,000): its state goes at 90% of it
const WINDOW = 900;
const AMORTIZED = 3 * WINDOW;

const { tickerBoard: board, nextTickerBoard } = require('./common.js');

/** Successive states, each from the previous (10 rows change). */
function states(n) {
  const list = [board()];
  for (let u = 1; u <= n; u++) list.push(nextTickerBoard(list[u - 1], u));
  return list;
}

function freePort() {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function startRedis() {
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((resolve, reject) => {
    child.on('error', reject);
    let text = '';
    child.stdout.on('data', (d) => {
      text += d;
      if (text.includes('Ready to accept connections')) resolve();
    });
  });
  return { url: `redis://127.0.0.1:${port}`, stop: () => child.kill('SIGKILL') };
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function summary(samples) {
  const sorted = [...samples].sort((a, b) => a - b);
  return { p50: percentile(sorted, 50), p99: percentile(sorted, 99) };
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** Redis INFO numbers: bytes in and out, commands. */
async function redisCounters(redis) {
  const stats = await redis.info('stats');
  const get = (name) => Number(new RegExp(`${name}:(\\d+)`).exec(stats)[1]);
  return { in: get('total_net_input_bytes'), out: get('total_net_output_bytes'), commands: get('total_commands_processed') };
}

function listen(server) {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server.address().port)));
}

// ---- variants: each returns { publish(u), received: (u) => Promise, close() } ------

async function deltacastVariant(url, crossNode) {
  const lanes = { '**': 'critical' };
  const engines = [];
  const make = async () => {
    if (url === undefined) return createHub({ lanes });
    const engine = redisEngine({ url });
    engines.push(engine);
    const hub = createHub({ engine, lanes });
    await engine.ready();
    return hub;
  };
  const publisher = await make();
  const receiver = crossNode ? await make() : publisher;
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await new Promise((r) => wss.once('listening', r));
  attachWebSocketServer(wss, receiver);
  await publisher.publish('board', board());
  const ws = new WebSocket(`ws://127.0.0.1:${wss.address().port}`);
  const waiters = new Map();
  let base = 0;
  ws.on('message', (data) => {
    const m = JSON.parse(String(data));
    for (const item of m.t === 'batch' ? m.items : [m]) {
      if (item.t === 'snap') base = item.version;
      const version = item.t === 'patch' ? item.to : item.version;
      waiters.get(version - base)?.();
      ws.send(JSON.stringify({ t: 'ack', topic: 'board', version }));
    }
  });
  await new Promise((r) => ws.once('open', r));
  const snap = new Promise((r) => waiters.set(0, r));
  ws.send(JSON.stringify({ t: 'sub', topic: 'board' }));
  await snap;
  return {
    compactions: () => engines.reduce((sum, e) => sum + e.stats().compactions, 0),
    publish: (state) => publisher.publish('board', state),
    received: (u) => new Promise((r) => waiters.set(u, r)),
    async close() {
      ws.close();
      await new Promise((r) => wss.close(r));
      await publisher.close();
      if (receiver !== publisher) await receiver.close();
    },
  };
}

async function socketIoVariant(url, kind, send) {
  const clients = [];
  const make = async () => {
    const server = http.createServer();
    let adapter;
    if (kind === 'pubsub') {
      const pub = createClient({ url });
      const sub = pub.duplicate();
      await Promise.all([pub.connect(), sub.connect()]);
      clients.push(pub, sub);
      adapter = pubsubAdapter(pub, sub);
    } else {
      const client = createClient({ url });
      await client.connect();
      clients.push(client);
      adapter = streamsAdapter(client);
    }
    const io = new Server(server, { adapter, transports: ['websocket'] });
    const port = await listen(server);
    return { io, server, port };
  };
  const a = await make();
  const b = await make();
  const socket = ioClient(`http://127.0.0.1:${b.port}`, { transports: ['websocket'] });
  await new Promise((r) => socket.once('connect', r));
  await new Promise((r) => setTimeout(r, 200)); // the adapters find each other
  const waiters = new Map();
  socket.on('u', (u) => waiters.get(u)?.());
  let previous = board();
  return {
    publish(state, u) {
      const payload = send === 'patch' ? fastJsonPatch.compare(previous, state) : state;
      previous = state;
      a.io.emit('u', u, payload);
    },
    received: (u) => new Promise((r) => waiters.set(u, r)),
    async close() {
      socket.close();
      a.io.close();
      b.io.close();
      for (const c of clients) await c.close().catch(() => {});
    },
  };
}

async function latencyRun(redis, make, list) {
  await redis.flushAll(); // each run starts its topic afresh (a stream window is 900 updates: none compacts)
  const variant = await make();
  const before = await redisCounters(redis);
  const samples = [];
  for (let u = 1; u < list.length; u++) {
    const arrived = variant.received(u);
    const t0 = performance.now();
    const receipt = variant.publish(list[u], u);
    await arrived;
    samples.push(performance.now() - t0);
    await receipt;
  }
  const after = await redisCounters(redis);
  const compactions = variant.compactions?.() ?? 0;
  await variant.close();
  const n = list.length - 1;
  return {
    ...summary(samples),
    compactions,
    bytesIn: (after.in - before.in) / n,
    bytesOut: (after.out - before.out) / n,
    commands: (after.commands - before.commands) / n,
  };
}

async function throughput(url, topics, list) {
  const lanes = { '**': 'critical' };
  let hub;
  if (url === undefined) {
    hub = createHub({ lanes });
  } else {
    const engine = redisEngine({ url });
    hub = createHub({ engine, lanes });
    await engine.ready();
  }
  const names = Array.from({ length: topics }, (_, i) => `tp:${i}:${Math.random()}`);
  for (const t of names) await hub.publish(t, list[0]);
  const t0 = performance.now();
  await Promise.all(
    names.map(async (t) => {
      for (let u = 1; u < list.length; u++) await hub.publish(t, list[u]);
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  await hub.close();
  return ((list.length - 1) * topics) / seconds;
}

/** Redis bytes in per update over `list` (several stream windows): the compactions included. */
async function amortizedBytes(url, redis, list) {
  await redis.flushAll(); // from version 1: compactions at 901, 1801, 2701
  const engine = redisEngine({ url });
  const hub = createHub({ engine });
  await engine.ready();
  await hub.publish('board', list[0]);
  const before = await redisCounters(redis);
  for (let u = 1; u < list.length; u++) await hub.publish('board', list[u]);
  const after = await redisCounters(redis);
  const { compactions } = engine.stats();
  await hub.close();
  const n = list.length - 1;
  return { bytesIn: (after.in - before.in) / n, commands: (after.commands - before.commands) / n, compactions };
}

async function main() {
  const server = await startRedis();
  const redis = createClient({ url: server.url });
  await redis.connect();
  try {
    const list = states(UPDATES);
    const patchBytes = list.slice(1).reduce((sum, s, i) => sum + JSON.stringify(diff(list[i], s)).length, 0) / UPDATES;
    const stateBytes = JSON.stringify(list[0]).length;
    const variants = [
      ['deltacast in-process (ws client)', () => deltacastVariant(undefined, false)],
      ['deltacast across nodes via Redis (ws client on the other node)', () => deltacastVariant(server.url, true)],
      ['Socket.IO redis-adapter, fast-json-patch patch', () => socketIoVariant(server.url, 'pubsub', 'patch')],
      ['Socket.IO redis-adapter, full state', () => socketIoVariant(server.url, 'pubsub', 'state')],
      ['Socket.IO redis-streams-adapter, fast-json-patch patch', () => socketIoVariant(server.url, 'streams', 'patch')],
      ['Socket.IO redis-streams-adapter, full state', () => socketIoVariant(server.url, 'streams', 'state')],
    ];
    const results = Object.fromEntries(variants.map(([name]) => [name, []]));
    const rtts = [];
    const rates = { 'in process, 1 topic': [], 'via Redis, 1 topic': [], 'in process, 4 topics': [], 'via Redis, 4 topics': [] };
    const tlist = states(Math.max(THROUGHPUT, AMORTIZED));
    const alist = tlist.slice(0, AMORTIZED + 1);
    const amortizedPatch = alist.slice(1).reduce((sum, s, i) => sum + JSON.stringify(diff(alist[i], s)).length, 0) / AMORTIZED;
    const amortized = [];
    for (let round = 0; round < ROUNDS; round++) {
      for (const [name, make] of variants) {
        results[name].push(await latencyRun(redis, make, list));
        process.stderr.write(`round ${round + 1}: ${name} done\n`);
      }
      const pings = [];
      for (let i = 0; i < 300; i++) {
        const t0 = performance.now();
        await redis.ping();
        pings.push(performance.now() - t0);
      }
      rtts.push(summary(pings));
      amortized.push(await amortizedBytes(server.url, redis, alist));
      process.stderr.write(`round ${round + 1}: amortized bytes done\n`);
      rates['in process, 1 topic'].push(await throughput(undefined, 1, tlist.slice(0, THROUGHPUT + 1)));
      rates['via Redis, 1 topic'].push(await throughput(server.url, 1, tlist.slice(0, THROUGHPUT + 1)));
      rates['in process, 4 topics'].push(await throughput(undefined, 4, tlist.slice(0, Math.floor(THROUGHPUT / 4) + 1)));
      rates['via Redis, 4 topics'].push(await throughput(server.url, 4, tlist.slice(0, Math.floor(THROUGHPUT / 4) + 1)));
      process.stderr.write(`round ${round + 1}: throughput done\n`);
    }
    const lines = [];
    const md = (s) => lines.push(s);
    md(`# bench/redis.js (${new Date().toISOString().slice(0, 10)}, ${ROUNDS} round(s), ${UPDATES} updates per latency run)`);
    md('');
    md(`Board: 1,000 rows, ${stateBytes} bytes; each update changes 10 rows: the patch is ${patchBytes.toFixed(0)} bytes on average.`);
    md('');
    md('| variant | p50 ms | p99 ms | Redis bytes in / update | x patch | Redis bytes out / update | Redis commands / update |');
    md('|---|---|---|---|---|---|---|');
    const table = {};
    for (const [name] of variants) {
      const r = results[name];
      const row = {
        p50: median(r.map((x) => x.p50)),
        p99: median(r.map((x) => x.p99)),
        bytesIn: median(r.map((x) => x.bytesIn)),
        bytesOut: median(r.map((x) => x.bytesOut)),
        commands: median(r.map((x) => x.commands)),
      };
      table[name] = row;
      md(`| ${name} | ${row.p50.toFixed(2)} | ${row.p99.toFixed(2)} | ${row.bytesIn.toFixed(0)} | ${(row.bytesIn / patchBytes).toFixed(2)} | ${row.bytesOut.toFixed(0)} | ${row.commands.toFixed(1)} |`);
    }
    const rtt = { p50: median(rtts.map((r) => r.p50)), p99: median(rtts.map((r) => r.p99)) };
    const inproc = table[variants[0][0]];
    const cross = table[variants[1][0]];
    md('');
    md(`One Redis round trip (PING): p50 ${rtt.p50.toFixed(3)} ms, p99 ${rtt.p99.toFixed(3)} ms.`);
    md(
      `Across nodes p99 ${cross.p99.toFixed(2)} ms against the target 2 x in-process p99 + one round trip = ${(2 * inproc.p99 + rtt.p99).toFixed(2)} ms: ${cross.p99 < 2 * inproc.p99 + rtt.p99 ? 'met' : 'NOT met'}.`,
    );
    const crossCompactions = results[variants[1][0]].reduce((sum, r) => sum + r.compactions, 0);
    const am = { bytesIn: median(amortized.map((x) => x.bytesIn)), commands: median(amortized.map((x) => x.commands)), compactions: median(amortized.map((x) => x.compactions)) };
    md('');
    md('| deltacast across nodes, Redis bytes in per update | updates | compactions | patch bytes | Redis bytes in | x patch | commands |');
    md('|---|---|---|---|---|---|---|');
    md(
      `| per change (the latency runs) | ${UPDATES} | ${crossCompactions} | ${patchBytes.toFixed(0)} | ${cross.bytesIn.toFixed(0)} | ${(cross.bytesIn / patchBytes).toFixed(2)} | ${cross.commands.toFixed(2)} |`,
    );
    md(
      `| amortized (one run over 3 stream windows, every compaction counted) | ${AMORTIZED} | ${am.compactions} | ${amortizedPatch.toFixed(0)} | ${am.bytesIn.toFixed(0)} | ${(am.bytesIn / amortizedPatch).toFixed(2)} | ${am.commands.toFixed(2)} |`,
    );
    md('');
    md(`Redis bytes in per update, amortized, ${(am.bytesIn / amortizedPatch).toFixed(2)}x the patch bytes (target 1.2x): ${am.bytesIn <= 1.2 * amortizedPatch ? 'met' : 'NOT met'}.`);
    md('');
    md('| updates per second, each awaited | median | ratio to in process |');
    md('|---|---|---|');
    const rate = Object.fromEntries(Object.entries(rates).map(([k, v]) => [k, median(v)]));
    for (const [name, value] of Object.entries(rate)) {
      const peer = name.includes('1 topic') ? rate['in process, 1 topic'] : rate['in process, 4 topics'];
      md(`| ${name} | ${value.toFixed(0)} | ${(value / peer).toFixed(2)} |`);
    }
    const text = lines.join('\n');
    console.log(text);
    if (out !== undefined) {
      fs.writeFileSync(`${out}.md`, `${text}\n`);
      fs.writeFileSync(`${out}.json`, `${JSON.stringify({ patchBytes, stateBytes, table, amortized: { ...am, patchBytes: amortizedPatch, updates: AMORTIZED }, rtt, rate, raw: { results, rtts, rates, amortized } }, null, 2)}\n`);
    }
  } finally {
    await redis.close().catch(() => {});
    server.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
