'use strict';

// Fan-out benchmark: a board's changes to many subscribers.
//
//   node bench/fanout.js            (part of bench/delivery.js, which runs all three)
//   node bench/fanout.js --quick    a smoke run
//
// Other flags: --no-save --clients=100,1000 (fan-out sizes)
// Env: DELTACAST_LIB=path/to/index.js benchmarks another deltacast build;
//      DELTACAST_ADDON=path/to/deltacast.node another addon (lib/native.js).
//
//   fanout     a price board (bench/data.js, N = 1,000 rows, 1% of the rows
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
//                processes (so they do not share the server's event loop),
//                each the protocol client of lib/protocol_client.js: it
//                parses and applies every frame and acks cumulatively;
//              - peers, same setup: ws broadcast of the whole board (one
//                JSON.stringify and one Buffer per update, sent to every
//                socket) and Socket.IO io.emit of the whole board; their
//                clients JSON.parse every message.
//              Clock: from the first publish until every client holds the last
//              version; every client's state is then checked against the hub's.
//
// Results go to stdout as markdown tables, progress to stderr, and everything
// to bench/results/fanout-<date>.json and .md (-quick or -partial for a
// limited run, so it does not overwrite a full one).
//
// The machine matters more than usual here: clients, server, and the hub's
// core thread all want a CPU, and on 2 hardware threads they take turns.
// Compare ratios within one run, not rates across machines.

const {
  gc,
  fmtUs,
  fmtRatio,
  fmtInt,
  progress,
  progressDone,
  nextTurn,
  startClock,
  stopClock,
  settleHeap,
  createHubWithTid,
  releaseHub,
} = require('./common.js');
const {
  TOPIC,
  BOARD_ROWS,
  kib,
  until,
  boardStates,
  countingClient,
  emit,
  forkChild,
  childChannel,
  withTimeout,
  runBenchmarks,
  start,
} = require('./delivery_common.js');
const os = require('node:os');
const http = require('node:http');
const util = require('node:util');

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
    channels.push(childChannel(forkChild(__filename, 'clients', { proto, url, count, topic: TOPIC })));
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



module.exports = { runFanout };

if (require.main === module) {
  start('fanout.js', () =>
    runBenchmarks({ script: 'fanout.js', results: 'fanout', benchmarks: { fanout: runFanout } }),
  );
}
