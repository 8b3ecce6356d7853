'use strict';

// HTTP transports benchmark: server CPU per delivery of deltacast/http's
// Server-Sent Events and long-polling, next to a hand-written SSE broadcast.
//
//   node bench/http-transports.js                # C = 1,000 clients, 100 updates per variant
//   node bench/http-transports.js --quick        # C = 100, 20 updates: a smoke run
//   node bench/http-transports.js --clients=500 --updates=50 --no-save
//
// A 1,000-row board (bench/data.js), 1% of the rows ticking per update, one
// update every 100 ms. The server runs in this process; the C clients live in
// 2 child processes (they do not share the server's CPU accounting), and each
// parses every message and applies every patch (lib/apply_patch.js).
//
// Variants:
// - sse        deltacast/http `GET /deltacast/events?topics=board`: hub
//              connections without acks, paced by the response's backpressure.
// - long-poll  deltacast/http `GET /deltacast/topics/board?epoch=&version=&wait=30000`
//              in a loop: one request per answer. A client that asks again
//              after the next update gets one patch for both, so it may
//              receive fewer messages than there were updates.
// - diy-sse    the peer a team would write: fast-json-patch `compare(prev,
//              next)` once per update, one shared Buffer
//              (`data: {"t":"patch",...}\n\n`) written to every response.
//
// Measured: the server process's CPU (user + system, every thread, so the
// hub's core thread too) from the first update until every client holds the
// last version, divided by the messages the clients received (deliveries).
// Results go to stdout as a markdown table and to
// bench/results/http-transports-<date>.json (-quick for a quick run).

const { fork } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { packageVersion, gitCommit, usageError, eachFlag, fmtUs, fmtInt, progress, progressDone, sleep } = require('./common.js');
const { makeBoard, mutate } = require('./data.js');

const TOPIC = 'board';
const ROWS = 1000;
const FRACTION = 0.01;
const INTERVAL_MS = 100;
const CHILDREN = 2;
const VARIANTS = ['sse', 'long-poll', 'diy-sse'];

function parseArgs(argv) {
  const opts = { quick: false, clients: null, updates: null, save: true, child: null };
  const usage = 'node bench/http-transports.js [--quick] [--clients=N] [--updates=N] [--no-save]';
  eachFlag(argv, usage, (flag, value) => {
    switch (flag) {
      case '--quick':
        opts.quick = true;
        break;
      case '--clients':
        opts.clients = Number(value);
        if (!Number.isInteger(opts.clients) || opts.clients < CHILDREN) throw usageError(`--clients takes a count ≥ ${CHILDREN}`);
        break;
      case '--updates':
        opts.updates = Number(value);
        if (!Number.isInteger(opts.updates) || opts.updates < 1) throw usageError('--updates takes a count ≥ 1');
        break;
      case '--no-save':
        opts.save = false;
        break;
      case '--child': // internal
        opts.child = JSON.parse(value);
        break;
      default:
        return false;
    }
    return true;
  });
  opts.clients ??= opts.quick ? 100 : 1000;
  opts.updates ??= opts.quick ? 20 : 100;
  return opts;
}

// ---- clients (child processes) --------------------------------------------------------

function runClients({ mode, url, count }) {
  const { applyPatch } = require('../lib/apply_patch.js');
  const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
  const clients = [];
  let target = Infinity;
  let ready = 0;
  let reported = false;
  const check = () => {
    if (!reported && clients.every((c) => c.version >= target)) {
      reported = true;
      process.send({
        done: true,
        deliveries: clients.reduce((n, c) => n + c.deliveries, 0),
        bytes: clients.reduce((n, c) => n + c.bytes, 0),
      });
    }
  };
  // bytes: the message texts received after the first snapshot
  const apply = (client, message, length) => {
    if (message.t === 'snap') {
      client.data = message.data;
      client.epoch = message.epoch;
      client.version = message.version;
      if (!client.ready) {
        client.ready = true;
        if (++ready === count) process.send({ ready: true });
        return;
      }
    } else if (message.t === 'patch') {
      if (message.from !== client.version) throw new Error(`patch from ${message.from} to a client at ${client.version}`);
      client.data = applyPatch(client.data, message.ops);
      client.version = message.to;
    } else {
      return;
    }
    client.deliveries += 1;
    client.bytes += length;
    if (client.version >= target) check();
  };
  const sse = (client) => {
    http.get(url, { agent }, (res) => {
      res.setEncoding('utf8');
      let buffer = '';
      res.on('data', (chunk) => {
        buffer += chunk;
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const at = block.indexOf('data: ');
          if (at >= 0) {
            const text = block.slice(at + 6).replace(/\ndata: /g, '\n');
            apply(client, JSON.parse(text), text.length);
          }
        }
      });
    });
  };
  const poll = (client) => {
    const query = client.epoch === undefined ? '' : `?epoch=${client.epoch}&version=${client.version}&wait=30000`;
    http.get(url + query, { agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => {
        if (res.statusCode === 200) apply(client, JSON.parse(body), body.length);
        if (client.version < target || target === Infinity) poll(client);
      });
    });
  };
  for (let i = 0; i < count; i++) {
    const client = { version: -1, epoch: undefined, data: null, deliveries: 0, bytes: 0, ready: false };
    clients.push(client);
    if (mode === 'long-poll') poll(client);
    else sse(client);
  }
  process.on('message', (m) => {
    if (m.target !== undefined) {
      target = m.target;
      check();
    }
    if (m.exit) process.exit(0);
  });
}

// ---- servers --------------------------------------------------------------------------

async function startServer(variant, board) {
  if (variant === 'diy-sse') {
    const { compare } = require('fast-json-patch');
    const streams = new Set();
    let current = board;
    let version = 1;
    const server = http.createServer((req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
      res.write(`data: ${JSON.stringify({ t: 'snap', topic: TOPIC, epoch: 'diy', version, data: current })}\n\n`);
      streams.add(res);
      res.on('close', () => streams.delete(res));
    });
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    return {
      url: `http://127.0.0.1:${server.address().port}/events`,
      publish(next) {
        const ops = compare(current, next);
        current = next;
        version += 1;
        const frame = Buffer.from(`data: ${JSON.stringify({ t: 'patch', topic: TOPIC, epoch: 'diy', from: version - 1, to: version, ops })}\n\n`);
        for (const res of streams) res.write(frame);
        return Promise.resolve(version);
      },
      async close() {
        for (const res of streams) res.destroy();
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
      },
    };
  }
  const { createHub } = require('../lib/index.js');
  const { httpHandler } = require('../lib/adapters/http.js');
  const hub = createHub({ lanes: { '**': 'high' }, limits: { messageBurst: 1e9, messagesPerSecond: 1e9 } });
  await hub.publish(TOPIC, board);
  const server = http.createServer(httpHandler(hub, { rateLimit: false }));
  server.maxConnections = Infinity;
  await new Promise((resolve) => server.listen(0, '127.0.0.1', 4096, resolve));
  const base = `http://127.0.0.1:${server.address().port}/deltacast`;
  return {
    url: variant === 'sse' ? `${base}/events?topics=${TOPIC}` : `${base}/topics/${TOPIC}`,
    async publish(next) {
      return (await hub.publish(TOPIC, next)).version;
    },
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await hub.close();
    },
  };
}

function channel(child) {
  const queue = [];
  const waiters = [];
  child.on('message', (m) => (waiters.length > 0 ? waiters.shift()(m) : queue.push(m)));
  child.on('exit', (code) => {
    if (code !== 0) for (const w of waiters.splice(0)) w({ error: `client process exited with ${code}` });
  });
  return () => (queue.length > 0 ? Promise.resolve(queue.shift()) : new Promise((resolve) => waiters.push(resolve)));
}

async function runVariant(variant, opts) {
  let board = makeBoard(ROWS, 1);
  const boards = [];
  for (let i = 0; i < opts.updates; i++) boards.push((board = mutate(board, { fraction: FRACTION, seed: 100 + i })));
  const server = await startServer(variant, makeBoard(ROWS, 1));
  const per = Math.ceil(opts.clients / CHILDREN);
  const children = [];
  for (let i = 0; i < CHILDREN; i++) {
    const count = Math.min(per, opts.clients - i * per);
    const child = fork(__filename, [`--child=${JSON.stringify({ mode: variant, url: server.url, count })}`], { stdio: 'inherit' });
    children.push({ child, next: channel(child) });
  }
  for (const c of children) {
    const m = await c.next();
    if (!m.ready) throw new Error(m.error ?? 'a client process failed');
  }
  await sleep(200);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let version = null;
  for (const next of boards) {
    version = server.publish(next);
    await sleep(INTERVAL_MS);
  }
  const target = await version;
  for (const c of children) c.child.send({ target });
  let deliveries = 0;
  let bytes = 0;
  for (const c of children) {
    const m = await c.next();
    if (!m.done) throw new Error(m.error ?? 'a client process failed');
    deliveries += m.deliveries;
    bytes += m.bytes;
  }
  const cpu = process.cpuUsage(cpu0);
  const wallMs = performance.now() - t0;
  for (const c of children) c.child.send({ exit: true });
  await server.close();
  const cpuUs = cpu.user + cpu.system;
  return { variant, clients: opts.clients, updates: opts.updates, deliveries, bytes, wallMs, cpuUs, cpuUsPerDelivery: cpuUs / deliveries };
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.child !== null) return runClients(opts.child);
  const results = [];
  for (const variant of VARIANTS) {
    progress(`${variant}: ${opts.clients} clients, ${opts.updates} updates`);
    results.push(await runVariant(variant, opts));
  }
  progressDone();
  const lines = [
    `HTTP transports, ${ROWS}-row board, ${FRACTION * 100}% of rows per update, one update per ${INTERVAL_MS} ms, C = ${opts.clients}`,
    '',
    '| variant | deliveries | server CPU per delivery | message bytes per delivery | server CPU total |',
    '|---|--:|--:|--:|--:|',
  ];
  for (const r of results) {
    lines.push(`| ${r.variant} | ${fmtInt(r.deliveries)} | ${fmtUs(r.cpuUsPerDelivery)} µs | ${fmtInt(r.bytes / r.deliveries)} | ${fmtInt(r.cpuUs / 1000)} ms |`);
  }
  console.log(lines.join('\n'));
  if (opts.save) {
    const date = new Date().toISOString().slice(0, 10);
    const file = path.join(__dirname, 'results', `http-transports-${date}${opts.quick ? '-quick' : ''}.json`);
    const meta = { commit: gitCommit(), node: process.version, fastJsonPatch: packageVersion('fast-json-patch'), date: new Date().toISOString() };
    fs.writeFileSync(file, `${JSON.stringify({ meta, opts: { clients: opts.clients, updates: opts.updates }, results }, null, 2)}\n`);
    fs.writeFileSync(file.replace(/\.json$/, '.md'), `${lines.join('\n')}\n`);
  }
}

main().catch((err) => {
  console.error(err.usage ? err.message : err);
  process.exit(err.usage ? 2 : 1);
});
