'use strict';
// Fan-out over real sockets, side by side: server CPU and bytes per delivery
// of deltacast/ws and deltacast/socket.io against what a team writes itself.
//
//   node bench/fanout-transports.js            C = 100 and 1000, 200 updates each, 3 rounds
//   node bench/fanout-transports.js --quick    C = 20, 40 updates, 1 round (well under a minute)
//   node bench/fanout-transports.js --clients 100 --updates 200 --interval 20 --rounds 1 --only 'DIY ws,deltacast/ws'
//   node bench/fanout-transports.js --latency  C = 1000, 100 updates/s, deltacast/ws only
//   node bench/fanout-transports.js --breakdown  in process, no sockets: CPU per update
//                     (C = 0) and per delivery (C = 100, 1000) with and without acks
//   --ack-delay <ms>  the clients' delayed ack (default 20, as deltacast/client)
//   --out bench/results/fanout-transports-<date>   also writes <that>.md and <that>.json
//
// Rounds interleave the variants (every variant at one C, then the next
// round), and each ratio to the DIY peer is taken within one round: the
// machine's load changes between rounds, not between the two sides of a
// ratio. The tables give the median over rounds and the spread (min-max).
//
// The board: 1,000 rows; each update changes 1% of them (10 prices). The
// server (this process) makes the successive states; the clients live in a
// child process (C sockets, one process) and tell it when they hold the last
// update. Variants, each getting the same states:
//   DIY ws            fast-json-patch compare(prev, next) once per update, one
//                     shared Buffer sent to every socket
//   DIY Socket.IO     compare once, io.emit('patch', ops)
//   deltacast/ws      hub.publish(next, { immutable: true }) (critical lane: one frame per update),
//                     attachWebSocketServer; clients ack cumulatively every 16
//                     frames or 20 ms; credit, acks and resume on (defaults).
//                     What a user holding successive (immutable) states writes.
//   deltacast/ws patch     hub.patch(ops): one replace per changed row, at its
//                     index (what a user who knows the changed rows writes; one
//                     version and one frame per update, like publish)
//   deltacast/ws upsert    hub.upsert(row) for each changed row, on the high lane
//                     (16 ms window: the 10 upserts go out as one frame; on the
//                     critical lane each upsert is its own version and frame)
//   deltacast/ws+deflate   publish, with permessage-deflate
//   deltacast/socket.io    hub.publish(next, { immutable: true }), attachSocketIO, websocket transport, acks as above
//   deltacast/socket.io patch   hub.patch(ops) as above
// Server CPU per delivery = process.cpuUsage() of this process (JS thread and
// the hub's core thread) from the first update until every client holds the
// last, divided by C x updates. Bytes per delivery: the payload (the frame
// text, or the Socket.IO packet) and the wire (bytes the clients' TCP sockets
// read: WebSocket headers, compression and pings included). Latency: from the
// server's publish to the client's receipt of that update, p50 and p99 over
// every update at every client (the two processes share the machine's clock).

const { fork } = require('node:child_process');
const http = require('node:http');
const { performance } = require('node:perf_hooks');

const CHILD = process.argv[2] === '--child';
// The clients' delayed ack (ms), as deltacast/client's ackDelayMs; --ack-delay sets it.
const ACK_DELAY_MS = Number(process.env.DELTACAST_BENCH_ACK_DELAY_MS || 20);

const { tickerBoard: board, tickerChangedRows: changedRows, nextTickerBoard: nextBoard } = require('./common.js');

// ---- the clients (child process) --------------------------------------------------

function runClients() {
  const { WebSocket } = require('ws');
  const { io } = require('socket.io-client');
  const { performance } = require('node:perf_hooks');
  const now = () => performance.timeOrigin + performance.now(); // comparable across processes
  let clients = [];
  let bytesAtStart = 0;
  const bytesRead = () => clients.reduce((sum, c) => sum + c.bytes(), 0);
  process.on('message', (msg) => {
    if (msg.type === 'connect') connectAll(msg).catch((err) => process.send({ type: 'error', message: String(err.stack) }));
    if (msg.type === 'start') bytesAtStart = bytesRead();
    if (msg.type === 'times') {
      // publish-to-received latency of every update at every client
      const latencies = [];
      for (const c of clients) {
        for (let seq = 1; seq < msg.times.length; seq++) if (c.times[seq] > 0) latencies.push(c.times[seq] - msg.times[seq]);
      }
      latencies.sort((a, b) => a - b);
      const q = (p) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))];
      process.send({ type: 'stats', p50: q(0.5), p99: q(0.99), bytes: msg.bytesEnd - bytesAtStart });
    }
    if (msg.type === 'bytes') process.send({ type: 'bytes', bytes: bytesRead() });
    if (msg.type === 'close') {
      for (const c of clients) c.close();
      clients = [];
      process.send({ type: 'closed' });
    }
  });

  async function connectAll({ variant, url, count, last, step }) {
    let done = 0;
    let ready = 0;
    const deltacast = variant.startsWith('deltacast');
    const make = () => {
      let version = -1;
      let baseline = null; // version of the snapshot: update n is version baseline + n
      let unacked = 0;
      let timer = null;
      let finished = false;
      let sendText;
      const times = new Float64Array(last + 1);
      const reached = (seq) => {
        if (seq >= 1 && seq <= last && times[seq] === 0) times[seq] = now();
        if (!finished && seq >= last) {
          finished = true;
          if (++done === count) process.send({ type: 'done' });
        }
      };
      const ack = () => {
        timer = null;
        unacked = 0;
        sendText(JSON.stringify({ t: 'ack', topic: 'board', version }));
      };
      const onDeltacast = (m) => {
        if (m.t === 'snap') {
          version = m.version;
          if (baseline === null) {
            baseline = m.version;
            ready += 1;
            if (ready === count) process.send({ type: 'ready' });
          }
        } else if (m.t === 'patch') version = m.to;
        else if (m.t === 'batch') {
          for (const item of m.items) onDeltacast(item);
          return;
        } else if (m.t === 'ping') {
          sendText('{"t":"pong"}');
          return;
        } else return;
        if (++unacked >= 16) {
          if (timer) clearTimeout(timer);
          ack();
        } else if (!timer) timer = setTimeout(ack, ACK_DELAY_MS);
        if (baseline !== null) reached(Math.floor((version - baseline) / step));
      };
      const onDiy = (m) => {
        if (m.seq === 0) {
          ready += 1;
          if (ready === count) process.send({ type: 'ready' });
        }
        reached(m.seq);
      };
      if (variant.includes('socket.io') || variant.includes('Socket.IO')) {
        const socket = io(url, { transports: ['websocket'], forceNew: true, reconnection: false });
        sendText = (text) => socket.emit('deltacast', text);
        if (deltacast) {
          socket.on('deltacast', onDeltacast);
          socket.on('connect', () => socket.emit('deltacast', { t: 'sub', topic: 'board' }));
        } else {
          socket.on('patch', onDiy);
          socket.on('connect', () => socket.emit('hello'));
        }
        return { times, close: () => socket.close(), bytes: () => socket.io.engine?.transport?.ws?._socket?.bytesRead ?? 0 };
      }
      const ws = new WebSocket(url, { perMessageDeflate: variant.includes('deflate') });
      sendText = (text) => ws.send(text);
      ws.on('message', (data) => (deltacast ? onDeltacast : onDiy)(JSON.parse(data)));
      ws.on('open', () => ws.send(deltacast ? '{"t":"sub","topic":"board"}' : 'hello'));
      ws.on('error', () => {});
      return { times, close: () => ws.close(), bytes: () => ws._socket?.bytesRead ?? 0 };
    };
    for (let i = 0; i < count; i++) {
      clients.push(make());
      if (i % 50 === 49) await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }
}

// ---- the server (this process) ------------------------------------------------------

async function runVariant(child, variant, count, updates, intervalMs) {
  const { WebSocketServer } = require('ws');
  const { Server } = require('socket.io');
  const { compare } = require('fast-json-patch');
  const { createHub } = require('../lib/index.js');
  const { attachWebSocketServer } = require('../lib/adapters/ws.js');
  const { attachSocketIO } = require('../lib/adapters/socket.io.js');

  const server = http.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = server.address().port;
  let hub = null;
  let publish; // (next, seq) => bytes of one delivery's payload
  let teardown;
  let prev = board();
  let seq = 0;

  if (variant === 'DIY ws') {
    const wss = new WebSocketServer({ server });
    const sockets = new Set();
    const hello = Buffer.from(JSON.stringify({ seq: 0, ops: [] }));
    wss.on('connection', (ws) => {
      sockets.add(ws);
      ws.on('close', () => sockets.delete(ws));
      ws.once('message', () => ws.send(hello));
    });
    publish = (next) => {
      const buf = Buffer.from(JSON.stringify({ seq, ops: compare(prev, next) }));
      for (const ws of sockets) ws.send(buf);
      return buf.length;
    };
    teardown = () => new Promise((resolve) => wss.close(resolve));
  } else if (variant === 'DIY Socket.IO') {
    const ioServer = new Server(server, { transports: ['websocket'] });
    ioServer.on('connection', (socket) => socket.once('hello', () => socket.emit('patch', { seq: 0, ops: [] })));
    publish = (next) => {
      const message = { seq, ops: compare(prev, next) };
      ioServer.emit('patch', message);
      return JSON.stringify(['patch', message]).length + 1;
    };
    teardown = () => new Promise((resolve) => ioServer.close(resolve));
  } else {
    hub = createHub({ lanes: { '**': variant.endsWith('upsert') ? 'high' : 'critical' } });
    await hub.publish('board', prev);
    let detach;
    if (variant.startsWith('deltacast/ws')) {
      const wss = new WebSocketServer({ server });
      const attached = attachWebSocketServer(wss, hub, variant.includes('deflate') ? { perMessageDeflate: true } : undefined);
      detach = async () => {
        attached.close();
        await new Promise((resolve) => wss.close(resolve));
      };
    } else {
      const ioServer = new Server(server, { transports: ['websocket'] });
      const attached = attachSocketIO(ioServer, hub);
      detach = async () => {
        attached.close();
        await new Promise((resolve) => ioServer.close(resolve));
      };
    }
    let before = null;
    if (variant.endsWith('patch')) {
      publish = (next) => {
        const ops = [];
        for (const i of changedRows(seq)) ops.push({ op: 'replace', path: `/${i}`, value: next[i] });
        hub.patch('board', ops);
        return null;
      };
    } else if (variant.endsWith('upsert')) {
      publish = (next) => {
        for (const i of changedRows(seq)) hub.upsert('board', next[i].id, next[i]);
        return null;
      };
    } else {
      publish = (next) => {
        hub.publish('board', next, { immutable: true });
        return null;
      };
    }
    publish.bytes = () => {
      const stats = hub.stats();
      const out = before === null ? null : (stats.bytesSent - before.bytesSent) / (stats.framesSent - before.framesSent);
      before = stats;
      return out;
    };
    teardown = async () => {
      await detach();
      await hub.close();
    };
  }

  const wait = (type) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${variant}: timed out waiting for ${type}`)), 120000);
      const onMessage = (msg) => {
        if (msg.type === 'error') reject(new Error(msg.message));
        if (msg.type !== type) return;
        clearTimeout(timer);
        child.off('message', onMessage);
        resolve();
      };
      child.on('message', onMessage);
    });

  // the next message of `type` from the child, after `ask()`
  const waitFor = (type, ask) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${variant}: timed out waiting for ${type}`)), 120000);
      const onMessage = (msg) => {
        if (msg.type !== type) return;
        clearTimeout(timer);
        child.off('message', onMessage);
        resolve(msg);
      };
      child.on('message', onMessage);
      ask?.();
    });

  const ready = wait('ready');
  child.send({ type: 'connect', variant, url: `${variant.includes('ws') ? 'ws' : 'http'}://127.0.0.1:${port}`, count, last: updates, step: variant.endsWith('upsert') ? 10 : 1 });
  await ready;
  await new Promise((resolve) => setTimeout(resolve, 200)); // let the connection storm settle
  publish.bytes?.();

  child.send({ type: 'start' });
  await waitFor('bytes', () => child.send({ type: 'bytes' })); // a round trip: the child has taken its byte count
  const done = wait('done');
  const times = new Array(updates + 1).fill(0);
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  let bytes = 0;
  // one update every intervalMs, on a fixed schedule (a late update does not delay the next ones)
  const start = performance.now();
  for (seq = 1; seq <= updates; seq++) {
    const next = nextBoard(prev, seq);
    times[seq] = performance.timeOrigin + performance.now();
    bytes = publish(next) ?? bytes;
    prev = next;
    const due = start + seq * intervalMs - performance.now();
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, due)));
  }
  await done;
  const cpu = process.cpuUsage(cpu0);
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  if (publish.bytes) bytes = publish.bytes();
  const bytesEnd = await waitFor('bytes', () => child.send({ type: 'bytes' }));
  const stats = await waitFor('stats', () => child.send({ type: 'times', times, bytesEnd: bytesEnd.bytes }));

  const closed = wait('closed');
  child.send({ type: 'close' });
  await closed;
  await teardown();
  server.closeAllConnections?.();
  await new Promise((resolve) => server.close(resolve));
  const deliveries = count * updates;
  return {
    variant,
    clients: count,
    updates,
    cpuUsPerDelivery: (cpu.user + cpu.system) / deliveries,
    bytesPerDelivery: bytes,
    wireBytesPerDelivery: stats.bytes / deliveries,
    latencyP50Ms: stats.p50,
    latencyP99Ms: stats.p99,
    wallMs,
  };
}

const PEER = {
  'deltacast/ws': 'DIY ws',
  'deltacast/ws patch': 'DIY ws',
  'deltacast/ws upsert': 'DIY ws',
  'deltacast/ws+deflate': 'DIY ws',
  'deltacast/socket.io': 'DIY Socket.IO',
  'deltacast/socket.io patch': 'DIY Socket.IO',
};

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const spread = (xs, digits) => (xs.length > 1 ? ` (${Math.min(...xs).toFixed(digits)}-${Math.max(...xs).toFixed(digits)})` : '');

function table(results, variants, counts) {
  let out =
    '| C | variant | server CPU µs/delivery | CPU vs DIY peer | payload B/delivery | wire B/delivery | latency p50 / p99 ms |\n' +
    '|--:|---|--:|--:|--:|--:|--:|\n';
  for (const count of counts) {
    for (const variant of variants) {
      const runs = results.filter((r) => r.clients === count && r.variant === variant);
      if (runs.length === 0) continue;
      const cpu = runs.map((r) => r.cpuUsPerDelivery);
      const ratios = runs.map((r) => r.ratio).filter((x) => x !== undefined);
      const p50 = median(runs.map((r) => r.latencyP50Ms));
      const p99 = median(runs.map((r) => r.latencyP99Ms));
      out +=
        `| ${count.toLocaleString('en-US')} | ${variant} | ${median(cpu).toFixed(1)}${spread(cpu, 1)} | ` +
        `${ratios.length ? `${median(ratios).toFixed(2)}x${spread(ratios, 2)}` : ''} | ${median(runs.map((r) => r.bytesPerDelivery)).toFixed(0)} | ` +
        `${median(runs.map((r) => r.wireBytesPerDelivery)).toFixed(0)} | ${p50.toFixed(1)} / ${p99.toFixed(1)} |\n`;
    }
  }
  return out;
}

// In process, no sockets: hub.connect with a JS transport that acks every
// frame (from a setImmediate, as an adapter hands client messages over), or
// never (acks: false). Separates the update's own cost (C = 0) from the
// per-delivery cost of the core, take() and the hub's JS. A delivery is one
// client x one update.
async function breakdown(updates) {
  const { createHub } = require('../lib/index.js');
  const line = (text) => process.stdout.write(`${text}\n`);
  line('| API | C | acks | CPU per update (C = 0) or per delivery |\n|---|--:|---|--:|');
  for (const api of ['publish', 'patch', 'upsert']) {
    for (const [count, acks] of [
      [0, false],
      [100, false],
      [100, true],
      [1000, false],
      [1000, true],
    ]) {
      // upserts on the high lane, as in the socket runs: the ten of an update go as one frame
      const hub = createHub({ lanes: { '**': api === 'upsert' ? 'high' : 'critical' } });
      let prev = board();
      await hub.publish('board', prev);
      for (let c = 0; c < count; c++) {
        const connection = hub.connect({
          acks,
          send: (frame) => {
            const to = /"(?:to|version)":(\d+)/.exec(frame);
            if (acks && to !== null) setImmediate(() => connection.receive(`{"t":"ack","topic":"board","version":${to[1]}}`));
            return true;
          },
        });
        connection.receive('{"t":"sub","topic":"board"}');
      }
      await new Promise((resolve) => setTimeout(resolve, 300));
      const cpu0 = process.cpuUsage();
      for (let seq = 1; seq <= updates; seq++) {
        const next = nextBoard(prev, seq);
        if (api === 'publish') hub.publish('board', next, { immutable: true });
        else if (api === 'patch') hub.patch('board', changedRows(seq).map((i) => ({ op: 'replace', path: `/${i}`, value: next[i] })));
        else for (const i of changedRows(seq)) hub.upsert('board', next[i].id, next[i]);
        prev = next;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
      const cpu = process.cpuUsage(cpu0);
      const us = (cpu.user + cpu.system) / (updates * Math.max(count, 1));
      line(`| ${api} | ${count} | ${count === 0 ? '' : acks ? 'every frame' : 'off'} | ${count === 0 ? `${(us / 1000).toFixed(2)} ms` : `${us.toFixed(1)} µs`} |`);
      await hub.close();
    }
  }
  line(`\n${updates} updates, one every 20 ms (the CPU includes the 200 ms after the last); node ${process.version}`);
}

async function main() {
  const args = process.argv.slice(2);
  if (args.includes('--breakdown')) {
    await breakdown(args.includes('--updates') ? Number(args[args.indexOf('--updates') + 1]) : 200);
    return;
  }
  const quick = args.includes('--quick');
  const latency = args.includes('--latency');
  const option = (name, fallback) => {
    const i = args.indexOf(name);
    return i >= 0 ? Number(args[i + 1]) : fallback;
  };
  const counts = args.includes('--clients') ? [option('--clients')] : quick ? [20] : latency ? [1000] : [100, 1000];
  const updates = option('--updates', quick ? 40 : latency ? 300 : 200);
  const intervalMs = option('--interval', latency ? 10 : 20);
  if (args.includes('--ack-delay')) process.env.DELTACAST_BENCH_ACK_DELAY_MS = String(option('--ack-delay'));
  const rounds = option('--rounds', quick || latency ? 1 : 3);
  const all = [
    'DIY ws',
    'deltacast/ws',
    'deltacast/ws patch',
    'deltacast/ws upsert',
    'deltacast/ws+deflate',
    'DIY Socket.IO',
    'deltacast/socket.io',
    'deltacast/socket.io patch',
  ];
  // --only 'deltacast/ws,DIY ws': a subset (for profiling one side)
  const only = args.includes('--only') ? args[args.indexOf('--only') + 1].split(',') : latency ? ['deltacast/ws'] : null;
  const variants = only === null ? all : all.filter((v) => only.includes(v));
  const outBase = args.includes('--out') ? args[args.indexOf('--out') + 1] : null;

  const child = fork(__filename, ['--child'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const results = [];
  try {
    for (let round = 1; round <= rounds; round++) {
      for (const count of counts) {
        const here = [];
        for (const variant of variants) {
          const r = await runVariant(child, variant, count, updates, intervalMs);
          r.round = round;
          here.push(r);
          process.stdout.write(
            `round ${round} ${variant.padEnd(26)} C=${String(count).padStart(5)}  ${r.cpuUsPerDelivery.toFixed(2).padStart(8)} µs/delivery  ` +
              `${r.bytesPerDelivery.toFixed(0).padStart(6)} B payload  ${r.wireBytesPerDelivery.toFixed(0).padStart(6)} B wire  ` +
              `p50 ${r.latencyP50Ms.toFixed(1)} ms  p99 ${r.latencyP99Ms.toFixed(1)} ms  (${(r.wallMs / 1000).toFixed(1)} s)\n`,
          );
        }
        for (const r of here) {
          const base = here.find((x) => x.variant === PEER[r.variant]);
          if (base) r.ratio = r.cpuUsPerDelivery / base.cpuUsPerDelivery;
        }
        results.push(...here);
      }
    }
  } finally {
    child.kill();
  }

  const note =
    `${updates} updates of a 1,000-row board (1% of rows each), one every ${intervalMs} ms; ${rounds} round(s), median (min-max); ` +
    `node ${process.version}; ${require('node:os').cpus().length} CPUs` +
    `${quick ? '; --quick: few clients and updates, indicative only' : ''}`;
  const md = `${table(results, variants, counts)}\n${note}\n`;
  process.stdout.write(`\n${md}`);
  if (outBase !== null) {
    const fs = require('node:fs');
    fs.writeFileSync(`${outBase}.md`, `# node bench/fanout-transports.js ${args.filter((a) => a !== '--out' && a !== outBase).join(' ')}\n\n${md}`);
    fs.writeFileSync(`${outBase}.json`, `${JSON.stringify({ args, updates, intervalMs, rounds, node: process.version, results }, null, 1)}\n`);
  }
}

if (CHILD) runClients();
else
  main().catch((err) => {
    process.stderr.write(`${err.stack}\n`);
    process.exit(1);
  });
