'use strict';

// One stalled client: what a subscriber that never acks costs.
//
//   node bench/stalled.js            (part of bench/delivery.js, which runs all three)
//   node bench/stalled.js --quick    a smoke run
//
// Other flags: --no-save
// Env: DELTACAST_LIB=path/to/index.js benchmarks another deltacast build;
//      DELTACAST_ADDON=path/to/deltacast.node another addon (lib/native.js).
//
//   stalled    one client that never acks among 1,000 (999 acking counting
//              clients, in-process) while 10,000 updates are published on the
//              default (normal, debounced) lane, manual clock: memory with and
//              without it, frames it was sent. Peer: Socket.IO with one client
//              whose socket stops reading; the server's buffers for it.
//              Each variant in a child process of its own.
//
// Results go to stdout as markdown tables, progress to stderr, and everything
// to bench/results/stalled-<date>.json and .md (-quick or -partial for a
// limited run, so it does not overwrite a full one).
//
// The machine matters more than usual here: clients, server, and the hub's
// core thread all want a CPU, and on 2 hardware threads they take turns.
// Compare ratios within one run, not rates across machines.

const {
  fmtInt,
  progress,
  progressDone,
  nowNs,
  msSince,
  sleep,
  loadDeltacast,
  createHubWithTid,
  releaseHub,
} = require('./common.js');
const {
  TOPIC,
  BOARD_ROWS,
  TICK_FRACTION,
  kib,
  memorySnapshot,
  memoryDelta,
  countingClient,
  emit,
  forkChild,
  runChildSync,
  childChannel,
  withTimeout,
  runBenchmarks,
  start,
} = require('./delivery_common.js');
const http = require('node:http');
const { makeBoard, mutate } = require('./data.js');

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
  const ch = childChannel(forkChild(__filename, 'clients', { proto: 'socket.io', url, count: cfg.healthy + cfg.stalled, stall: cfg.stalled, topic: TOPIC }));
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
    const r = runChildSync(__filename, v.kind, v.config);
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



module.exports = { runStalled };

if (require.main === module) {
  start('stalled.js', () =>
    runBenchmarks({ script: 'stalled.js', results: 'stalled', benchmarks: { stalled: runStalled }, children: { 'stalled-deltacast': stalledDeltacastChild, 'stalled-socket.io': stalledSocketIoChild } }),
  );
}
