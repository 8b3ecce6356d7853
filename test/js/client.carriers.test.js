'use strict';
// Wire agreement: every carrier of deltacast/client against the real adapters (deltacast/ws,
// deltacast/socket.io, deltacast/http) on one hub. The formats checked here are the ones
// docs/protocol.md defines: SSE's Last-Event-ID, the retry hint on a hub restart, polling's
// ETag/404/long-poll, connections without acks.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const WebSocket = require('ws');
const { io } = require('socket.io-client');
const { createHub } = require('../../lib/index.js');
const { createClient } = require('../../lib/browser/client.js');
const { setupClients, startServer, startSocketIO, until, recordApplied } = require('./client.servers.js');


const setup = (t, { hubOptions, httpOptions } = {}) => setupClients(t, { hubOptions: { lanes: { '**': 'critical' }, ...hubOptions }, httpOptions });

async function converged(client, hub, topic) {
  const want = hub.get(topic);
  await until(() => client.get(topic)?.version === want.version && client.get(topic)?.epoch === want.epoch, `${topic} at ${want.version}`, 8000);
  assert.deepEqual(client.get(topic), want);
}

test('SSE: the client resumes with Last-Event-ID in the server\'s format and gets a patch, not a snapshot', { timeout: 30000 }, async (t) => {
  const { hub, server, make } = await setup(t);
  const rows = Array.from({ length: 20 }, (_, id) => ({ id, name: `row ${id}`, v: 0 }));
  await hub.publish('a', rows);
  await hub.publish('b', { n: 0 });
  const client = make({ fallback: ['sse'] });
  const problems = recordApplied(client);
  const frames = [];
  client.on('change', (topic, data, info) => frames.push({ topic, from: info.from, version: info.version }));
  client.subscribe('a');
  client.subscribe('b');
  await converged(client, hub, 'a');
  await converged(client, hub, 'b');
  // the stream drops; while it is down, `a` changes
  server.refuseHttp = true;
  for (const r of server.open) r.destroy();
  await until(() => client.status === 'reconnecting', 'the drop');
  const held = client.get('a');
  await hub.upsert('a', 1, { id: 1, name: 'row 1', v: 1 });
  frames.length = 0;
  const before = server.headers.length;
  server.refuseHttp = false;
  await converged(client, hub, 'a');
  const reopened = server.headers.slice(before).filter((h, i) => server.requests[before + i] === '/dc/events').at(-1);
  const topics = ['a', 'b'].map((topic) => `${client.get(topic).epoch}:${topic === 'a' ? held.version : client.get(topic).version}`);
  assert.equal(reopened['last-event-id'], topics.join(','), 'one <epoch>:<version> per topic, in the order of topics=');
  assert.deepEqual(frames, [{ topic: 'a', from: held.version, version: held.version + 1 }], 'a patch for a, nothing for b');
  assert.deepEqual(problems, []);
});

test('SSE and polling: connections without acks, so more than a credit window flows with no upstream', { timeout: 30000 }, async (t) => {
  const { hub, make } = await setup(t, { hubOptions: { credit: { maxFrames: 4, stallTimeoutMs: 600000 } } });
  await hub.publish('c', { n: 0 });
  for (const carrier of ['sse', 'poll']) {
    const client = make({ fallback: [carrier], pollWaitMs: 1000 });
    const problems = recordApplied(client);
    client.subscribe('c');
    await converged(client, hub, 'c');
    for (let i = 1; i <= 20; i++) {
      await hub.publish('c', { n: i, carrier });
      await converged(client, hub, 'c'); // one frame at a time: 20 frames, window 4, no acks
    }
    assert.equal(client.carrier, carrier);
    assert.deepEqual(problems, []);
    client.close();
  }
  await until(() => hub.stats().connections === 0, 'the connections to close');
});

test('polling: a topic that does not exist yet is waited for (404, then a long-poll), the carrier stays up', { timeout: 30000 }, async (t) => {
  const { hub, server, make } = await setup(t);
  const client = make({ fallback: ['poll'], pollWaitMs: 5000 });
  const statuses = [];
  client.on('status', (s) => statuses.push(s));
  client.subscribe('later');
  await until(() => server.requests.filter((p) => p === '/dc/topics/later').length >= 2, 'the 404 and the long-poll after it');
  await hub.publish('later', { here: true });
  await converged(client, hub, 'later');
  assert.deepEqual(statuses, ['polling'], 'never reconnecting');
  // the long-polls carry the ETag of the last 200
  await hub.publish('later', { here: 2 });
  await converged(client, hub, 'later');
  const tagged = server.headers.filter((h) => h['if-none-match'] !== undefined).map((h) => h['if-none-match']);
  assert.ok(tagged.length > 0 && tagged.every((tag) => /^"[^":]+:\d+"$/.test(tag)), `ETags sent back as given: ${tagged}`);
});

test('SSE: the server\'s heartbeat comments keep the stream alive for the client\'s watchdog', { timeout: 30000 }, async (t) => {
  const { hub, server, make } = await setup(t, { httpOptions: { heartbeatMs: 20 } });
  await hub.publish('q', { n: 0 });
  const client = make({ fallback: ['sse'], heartbeat: { intervalMs: 300, graceMs: 200 } });
  client.subscribe('q');
  await converged(client, hub, 'q');
  await new Promise((resolve) => setTimeout(resolve, 2000)); // four watchdog periods without a message
  assert.equal(client.status, 'polling');
  assert.equal(server.requests.filter((p) => p === '/dc/events').length, 1, 'one stream, never reopened');
});

test('a hub restart: every carrier gets the server\'s retry hint and spreads its return over it', { timeout: 30000 }, async (t) => {
  // random() = 0.5: a backoff of 0.5 × minMs without a hint, 0.5 × the hint's window with it
  const reconnect = { minMs: 10, maxMs: 80, connectTimeoutMs: 2000, restartMs: 0 };
  for (const carrier of ['ws', 'sse', 'socket.io']) {
    const hub = createHub({ lanes: { '**': 'critical' } });
    const sio = carrier === 'socket.io' ? await startSocketIO(hub) : null;
    const server = sio === null ? await startServer(hub) : null;
    const client = createClient({
      url: sio ? sio.url : server.wsUrl,
      pollUrl: server?.pollUrl,
      transport: carrier === 'socket.io' ? 'socket.io' : undefined,
      fallback: [carrier],
      WebSocket,
      io,
      random: () => 0.5,
      reconnect,
    });
    t.after(async () => {
      client.close();
      await (sio ? sio.close() : server.stop());
      await hub.close();
    });
    const delays = [];
    const closeCodes = [];
    client.on('status', (s, info) => {
      if ('code' in info) closeCodes.push(info.code);
      if (s === 'reconnecting' && info.delayMs !== undefined) delays.push(info.delayMs);
    });
    await hub.publish('r', { n: 1 });
    client.subscribe('r');
    await until(() => client.get('r'), `the snapshot over ${carrier}`);
    await hub.close();
    await until(() => delays.length > 0, `the drop over ${carrier}`);
    client.close();
    assert.equal(delays[0], 5000, `${carrier}: the return is drawn over the server's 10 s window`);
    // info.code is a WebSocket close code (client.d.ts), or absent: never Socket.IO's details object
    for (const code of closeCodes) assert.ok(code === undefined || Number.isInteger(code), `${carrier}: info.code ${JSON.stringify(code)}`);
    if (carrier === 'ws') assert.ok(closeCodes.length > 0, 'the ws carrier reports its close code');
  }
});

test('socket.io carrier: a transport that drops reports no close code (info.code is a WebSocket close code or absent)', { timeout: 15000 }, async (t) => {
  const hub = createHub();
  const sio = await startSocketIO(hub);
  const client = createClient({ url: sio.url, transport: 'socket.io', fallback: ['socket.io'], io, reconnect: { minMs: 10, maxMs: 50, restartMs: 0 } });
  t.after(async () => {
    client.close();
    await sio.close();
    await hub.close();
  });
  const infos = [];
  client.on('status', (s, info) => infos.push([s, info]));
  await hub.publish('r', { n: 1 });
  client.subscribe('r');
  await until(() => client.get('r'), 'the snapshot');
  // The TCP connection cut under engine.io: socket.io-client's disconnect carries (reason, details).
  for (const engineClient of Object.values(sio.io.engine.clients)) engineClient.transport.socket._socket.destroy();
  await until(() => infos.some(([s]) => s === 'reconnecting'), 'the drop');
  for (const [s, info] of infos) assert.ok(info.code === undefined || Number.isInteger(info.code), `${s}: info.code ${JSON.stringify(info.code)}`);
});

test('network loss: ws dropped, upgrades refused, SSE, then ws again, while a keyed board is upserted on the normal lane and hydrated from HTTP snapshots: no gap', { timeout: 60000 }, async (t) => {
  const { hub, server, make } = await setup(t, { hubOptions: { lanes: { prices: 'normal' } } });
  const rows = Array.from({ length: 2000 }, (_, id) => ({ id, price: 100, v: 0 }));
  await hub.publish('prices', rows);
  await hub.publish('other', { n: 0 });
  const client = make({ probeMs: 200 });
  // What deltacast/query's fetchTopic does while a topic is not live: the HTTP snapshot, hydrated.
  const hydrated = [];
  const snapshots = (async () => {
    while (hydrated.length < 1000 && client.status !== 'closed') {
      await new Promise((resolve) => setTimeout(resolve, 3));
      if (client.topicStatus('prices').status === 'live') continue;
      const res = await fetch(`${server.pollUrl}/topics/prices`).catch(() => null);
      if (res?.status !== 200) continue;
      const m = await res.json();
      if (client.topicStatus('prices').status !== 'live') client.hydrate('prices', m), hydrated.push(m.version);
    }
  })();
  const problems = recordApplied(client);
  const resets = [];
  client.on('reset', (r) => resets.push(r));
  const statuses = [];
  client.on('status', (s) => statuses.push(s));
  client.subscribe('other');
  client.subscribe('prices');
  await converged(client, hub, 'prices');
  let running = true;
  let n = 0;
  const writer = (async () => {
    while (running) {
      const id = n++ % rows.length;
      await hub.upsert('prices', id, { id, price: 100 + (n % 50), v: n });
      if (n % 20 === 0) await new Promise((resolve) => setTimeout(resolve, 1));
    }
  })();
  try {
    await until(() => client.carrier === 'ws', 'ws');
    server.refuseUpgrades = true;
    for (const c of server.wss.clients) c.terminate();
    await until(() => client.carrier === 'sse', 'the SSE fallback', 8000);
    const during = client.get('prices').version;
    await until(() => client.get('prices').version > during + 20, 'updates over SSE', 8000);
    server.refuseUpgrades = false;
    await until(() => client.carrier === 'ws', 'back on ws', 8000);
    const back = client.get('prices').version;
    await until(() => client.get('prices').version > back + 50, 'updates over ws again', 8000);
  } finally {
    running = false;
    await writer;
    hydrated.length = 1000;
    await snapshots;
  }
  await converged(client, hub, 'prices');
  assert.deepEqual(resets, [], 'no gap, no new epoch, no failed patch');
  assert.deepEqual(problems, []);
  assert.ok(statuses.includes('polling') && statuses.at(-1) === 'open', statuses.join(','));
});

test('hydrate() while a carrier resumes the topic from its version leaves the replica to the wire: no gap', { timeout: 30000 }, async (t) => {
  const { hub, make } = await setup(t, { hubOptions: { lanes: { board: 'normal' } } });
  await hub.publish('board', Array.from({ length: 50 }, (_, id) => ({ id, v: 0 })));
  for (const carrier of ['sse', 'ws']) {
    const client = make({ fallback: [carrier] });
    const resets = [];
    client.on('reset', (r) => resets.push(r));
    client.subscribe('board');
    await converged(client, hub, 'board');
    // a newer snapshot (an HTTP GET) lands before the stream's patch for the same change
    await hub.upsert('board', 1, { id: 1, v: 1 });
    client.hydrate('board', hub.get('board'));
    for (let i = 2; i < 10; i++) await hub.upsert('board', i, { id: i, v: i });
    await converged(client, hub, 'board');
    assert.deepEqual(resets, [], `${carrier}: no gap`);
    client.close();
  }
});
