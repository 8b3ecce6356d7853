'use strict';
// The client against real servers (ws, SSE, long-poll over node:http; Socket.IO), wired to a real
// hub: drops, restarts, refused upgrades, sleep/wake, reconnect storms. Every test ends with each
// replica equal to hub.get and no version applied twice.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const WebSocket = require('ws');
const { io } = require('socket.io-client');
const { createHub } = require('../../lib/index.js');
const { QueryClient } = require('@tanstack/query-core');
const { createClient } = require('../../lib/browser/client.js');
const { bindQueryClient } = require('../../lib/browser/query.js');
const { setupClients, FAST_RECONNECT: fast, startServer, startSocketIO, until, recordApplied, fakeTimers } = require('./client.servers.js');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const setup = (t, { hubOptions, client } = {}) => setupClients(t, { hubOptions, client });

/** Publishes `n` changes to `topic`, one every `everyMs`. */
async function feed(hub, topic, n, everyMs = 2, start = 0) {
  for (let i = start; i < start + n; i++) {
    await hub.upsert(topic, i % 10, { id: i % 10, v: i });
    if (everyMs) await sleep(everyMs);
  }
}

async function settled(client, hub, topics) {
  for (const topic of topics) {
    const want = await hub.get(topic);
    await until(() => {
      const have = client.get(topic);
      return have && have.epoch === want.epoch && have.version === want.version;
    }, `${topic} at version ${want.version} (client ${client.carrier}, status ${client.status})`, 8000);
    assert.deepEqual(client.get(topic), want);
  }
}

test('ws: kill and restart the server mid-stream; resume from the held version', { timeout: 30000 }, async (t) => {
  const { hub, server, make } = await setup(t);
  await hub.publish('a', []);
  await hub.publish('b', { x: 0 });
  const client = make({ fallback: ['ws'] });
  const queryClient = new QueryClient({ defaultOptions: { queries: { gcTime: Infinity } } });
  t.after(() => queryClient.clear());
  bindQueryClient(queryClient, client, { queryKey: (topic) => ['rt', topic], schedule: (f) => setTimeout(f, 0) });
  const problems = recordApplied(client);
  client.subscribe('a');
  client.subscribe('b');
  await until(() => client.get('a') && client.get('b'), 'snapshots');
  const streaming = feed(hub, 'a', 60);
  await sleep(30);
  await server.stop();
  await hub.publish('b', { x: 1 });
  await sleep(50);
  await server.start();
  await streaming;
  await settled(client, hub, ['a', 'b']);
  assert.deepEqual(problems, []);
  await sleep(10);
  for (const topic of ['a', 'b']) assert.deepEqual(queryClient.getQueryData(['rt', topic]), (await hub.get(topic)).data, `QueryClient ${topic}`);
  // The reconnection resumed both topics at once, each with its position.
  const opens = server.received.filter((m) => m.t === 'open').length;
  assert.ok(opens >= 2);
  const lastOpen = server.received.map((m) => m.t).lastIndexOf('open');
  const resumed = server.received.slice(lastOpen + 1).filter((m) => m.t === 'sub');
  assert.deepEqual(resumed.map((m) => m.topic).sort(), ['a', 'b']);
  assert.ok(resumed.every((m) => typeof m.epoch === 'string' && Number.isInteger(m.version)));
});

test('ws: dropped sockets reconnect; subscriptions are neither duplicated nor lost', { timeout: 30000 }, async (t) => {
  const { hub, server, make } = await setup(t);
  await hub.publish('d', []);
  const client = make({ fallback: ['ws'] });
  const problems = recordApplied(client);
  client.subscribe('d');
  await until(() => client.get('d'), 'snapshot');
  const streaming = feed(hub, 'd', 60);
  for (let i = 0; i < 4; i++) {
    await sleep(15);
    for (const s of server.wss.clients) s.terminate();
  }
  await streaming;
  await settled(client, hub, ['d']);
  assert.deepEqual(problems, []);
  // Each connection carried exactly one sub for the topic.
  let subs = 0;
  for (const m of server.received) {
    if (m.t === 'open') {
      assert.ok(subs <= 1, 'one sub per connection');
      subs = 0;
    } else if (m.t === 'sub') subs++;
  }
});

test('refused upgrades: falls back to SSE, then probes and returns to ws without losing or repeating a version', { timeout: 30000 }, async (t) => {
  const { hub, server, make } = await setup(t);
  await hub.publish('f', []);
  server.refuseUpgrades = true;
  const client = make({ probeMs: 100 });
  const problems = recordApplied(client);
  const carriers = [];
  client.on('status', (s) => carriers.push(`${s}:${client.carrier}`));
  client.subscribe('f');
  await until(() => client.carrier === 'sse' && client.get('f'), 'the SSE fallback');
  assert.equal(client.status, 'polling');
  await feed(hub, 'f', 20);
  await settled(client, hub, ['f']);
  server.refuseUpgrades = false;
  const streaming = feed(hub, 'f', 40, 3, 20);
  await until(() => client.carrier === 'ws', 'the return to ws');
  assert.equal(client.status, 'open');
  await streaming;
  await settled(client, hub, ['f']);
  assert.deepEqual(problems, []);
});

test('the fallback carrier dying while a probe of the better one hangs: the client still reconnects', { timeout: 30000 }, async (t) => {
  const { hub, server, make } = await setup(t);
  await hub.publish('pr', { n: 0 });
  server.refuseUpgrades = true;
  const client = make({ probeMs: 30, reconnect: { ...fast, connectTimeoutMs: 20000 } });
  client.subscribe('pr');
  await until(() => client.carrier === 'sse' && client.get('pr'), 'the SSE fallback');
  server.refuseUpgrades = false;
  server.hangUpgrades = true;
  const upgrades = server.upgrades;
  await until(() => server.upgrades > upgrades, 'a probe in flight');
  server.hangUpgrades = false;
  server.refuseUpgrades = true;
  for (const r of server.open) r.destroy();
  await hub.publish('pr', { n: 1 });
  await until(() => client.get('pr').data.n === 1, 'reconnected over SSE with the probe still hanging');
  assert.equal(client.carrier, 'sse');
});

test('refused upgrades and no SSE: long-polling carries the topics, then back to ws', { timeout: 30000 }, async (t) => {
  const { hub, server, make } = await setup(t);
  await hub.publish('p1', { n: 0 });
  await hub.publish('p2', []);
  server.refuseUpgrades = true;
  const client = make({ fallback: ['ws', 'poll'], probeMs: 150, pollWaitMs: 200 });
  const problems = recordApplied(client);
  client.subscribe('p1');
  client.subscribe('p2');
  await until(() => client.carrier === 'poll' && client.get('p1') && client.get('p2'), 'the poll fallback');
  await hub.publish('p1', { n: 1 });
  await feed(hub, 'p2', 15, 5);
  await settled(client, hub, ['p1', 'p2']);
  assert.ok(server.requests.some((p) => p.startsWith('/dc/topics/p2')));
  server.refuseUpgrades = false;
  await until(() => client.carrier === 'ws', 'the return to ws');
  await feed(hub, 'p2', 10, 2, 15);
  await settled(client, hub, ['p1', 'p2']);
  assert.deepEqual(problems, []);
});

test('SSE only: resumes with the replicas\' positions after the stream drops', { timeout: 30000 }, async (t) => {
  const { hub, server, make } = await setup(t);
  await hub.publish('s', []);
  const client = make({ fallback: ['sse'] });
  const problems = recordApplied(client);
  client.subscribe('s');
  await until(() => client.get('s'), 'snapshot');
  const streaming = feed(hub, 's', 40, 3);
  await sleep(40);
  for (const r of server.open) r.destroy();
  await streaming;
  await settled(client, hub, ['s']);
  assert.deepEqual(problems, []);
});

test('Socket.IO carrier: messages as plain objects on the event deltacast, resume after a drop', { timeout: 30000 }, async (t) => {
  const hub = createHub();
  const sio = await startSocketIO(hub);
  const client = createClient({ url: sio.url, transport: 'socket.io', fallback: ['socket.io'], io, reconnect: fast });
  t.after(async () => {
    client.close();
    await sio.close();
    await hub.close();
  });
  const problems = recordApplied(client);
  await hub.publish('io', []);
  client.subscribe('io');
  await until(() => client.get('io') && client.status === 'open', 'snapshot over Socket.IO');
  const streaming = feed(hub, 'io', 40, 2);
  await sleep(30);
  sio.io.disconnectSockets(true);
  await streaming;
  await settled(client, hub, ['io']);
  assert.equal(client.carrier, 'socket.io');
  assert.deepEqual(problems, []);
});

test('sleep/wake: a silent socket is found dead by the watchdog when the timers resume', { timeout: 30000 }, async (t) => {
  const { hub, server, make } = await setup(t);
  const timers = fakeTimers();
  timers.resume();
  t.after(() => timers.pause());
  await hub.publish('w', { n: 0 });
  const client = make({ fallback: ['ws'], timers, heartbeat: { intervalMs: 1000, graceMs: 500 } });
  const problems = recordApplied(client);
  client.subscribe('w');
  await until(() => client.get('w'), 'snapshot');
  // The machine sleeps: the client's timers stop and the connection goes silent (no close event).
  timers.pause();
  server.silent = true;
  await hub.publish('w', { n: 1 });
  await sleep(50);
  assert.equal(client.get('w').data.n, 0);
  assert.equal(client.status, 'open', 'nothing noticed while asleep');
  server.silent = false;
  // Wake: the clock jumps; the watchdog sees no message for longer than interval + grace.
  timers.resume(60000);
  await settled(client, hub, ['w']);
  assert.ok(server.received.filter((m) => m.t === 'open').length >= 2, 'reconnected');
  assert.deepEqual(problems, []);
});

test('watchdog judges by message arrival: late timers with pings arriving do not kill the socket', { timeout: 30000 }, async (t) => {
  const { server, make } = await setup(t, { hubOptions: { heartbeat: { intervalMs: 20, timeoutMs: 60000 } } });
  const timers = fakeTimers();
  timers.resume();
  t.after(() => timers.pause());
  const client = make({ fallback: ['ws'], timers, heartbeat: { intervalMs: 20, graceMs: 30 } });
  client.subscribe('x');
  await until(() => client.status === 'open', 'open');
  // A throttled background tab: timers run late (here: not at all for 300 ms) while messages
  // (the server's pings) keep arriving.
  timers.pause();
  await sleep(300);
  timers.resume();
  await sleep(30);
  assert.equal(client.status, 'open');
  assert.equal(server.received.filter((m) => m.t === 'open').length, 1, 'no reconnection');
  assert.ok(server.received.some((m) => m.t === 'pong'), 'pings answered');
});

test('reconnect storm: 1,000 clients dropped by a restart with a retry hint spread their returns', { timeout: 60000 }, async (t) => {
  const hub = createHub();
  const server = await startServer(hub);
  const N = 1000;
  const clients = [];
  const delays = [];
  t.after(async () => {
    for (const c of clients) c.close();
    await server.stop();
    await hub.close();
  });
  for (let i = 0; i < N; i++) {
    const c = createClient({ url: server.wsUrl, fallback: ['ws'], WebSocket, reconnect: { minMs: 500, maxMs: 20000, connectTimeoutMs: 20000 } });
    c.on('status', (s, info) => s === 'reconnecting' && info.delayMs !== undefined && delays.push(info.delayMs));
    clients.push(c);
  }
  await until(() => clients.every((c) => c.status === 'open'), 'all connected', 30000);
  await server.stop({ code: 1012, reason: 'retry=30000' });
  await until(() => delays.length === N, 'every client drew its delay', 10000);
  // Close before anyone comes back: the draws are what is checked, not wall-clock arrivals.
  for (const c of clients) c.close();
  const perSecond = new Map();
  for (const d of delays) perSecond.set(Math.floor(d / 1000), (perSecond.get(Math.floor(d / 1000)) || 0) + 1);
  const worst = Math.max(...perSecond.values());
  // Uniform over 30 s is ~33 a second; all within the first 500 ms backoff would be 1,000.
  assert.ok(worst <= 100, `at most 10% of the clients in any one second (worst: ${worst})`);
  assert.ok(Math.max(...delays) > 20000, 'the hint window is used');
});
