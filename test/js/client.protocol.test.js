'use strict';
// The client's side of the protocol, on a real ws server and hub: reference-counted subscriptions,
// delayed cumulative acks, gaps, duplicates, failed patches, gone, auth, entity events, hydrate,
// background tabs, online.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { createClient } = require('../../lib/browser/client.js');
const { setupClients, FAST_RECONNECT: fast, until, recordApplied, fakeTimers } = require('./client.servers.js');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const setup = (t, hubOptions) => setupClients(t, { hubOptions, poll: false, client: { fallback: ['ws'] } });
const sent = (server, t, topic) => server.received.filter((m) => m.t === t && (!topic || m.topic === topic));

test('ref-counted subscriptions: two subscribers share one sub; mount/unmount/mount within the linger puts one sub on the wire', { timeout: 15000 }, async (t) => {
  const { hub, server, make } = await setup(t);
  await hub.publish('rc', { n: 1 });
  const client = make({ lingerMs: 100 });
  await until(() => client.status === 'open', 'open');
  // React StrictMode: effect, cleanup, effect again, in one go.
  const first = client.subscribe('rc');
  first();
  const second = client.subscribe('rc');
  const third = client.subscribe('rc', () => {});
  await until(() => client.get('rc'), 'snapshot');
  await sleep(150);
  assert.equal(sent(server, 'sub', 'rc').length, 1);
  second();
  await sleep(150);
  assert.equal(sent(server, 'unsub', 'rc').length, 0, 'one subscriber left');
  third();
  third();
  await until(() => sent(server, 'unsub', 'rc').length === 1, 'the unsub after the linger');
  assert.equal(client.get('rc'), undefined, 'the replica is dropped');
});

test('acks are cumulative and delayed: fewer acks than frames, the last one at the newest version', { timeout: 15000 }, async (t) => {
  const { hub, server, make } = await setup(t);
  await hub.publish('ack', { n: 0 });
  // The client's clock moves only when the test moves it, 2 ms a frame: however slowly the
  // frames come, a run of them falls within one ack delay (on the real clock, frames more than
  // ackDelayMs apart are each acked alone).
  const timers = fakeTimers();
  t.after(() => timers.pause());
  const client = make({ timers });
  const frames = [];
  client.on('change', (topic, _d, info) => topic === 'ack' && frames.push(info.version));
  client.subscribe('ack');
  await until(() => client.get('ack'), 'snapshot');
  for (let i = 1; i <= 64; i++) {
    const { version } = await hub.publish('ack', { n: i }, { lane: 'critical' });
    await until(() => client.get('ack').version === version, `version ${version} applied`);
    timers.resume(i % 8 === 0 ? 30 : 2); // some runs shorter than 16 frames: acked by the delay
    timers.pause();
  }
  const want = (await hub.get('ack')).version;
  await until(() => client.get('ack').version === want, 'all applied');
  await until(() => sent(server, 'ack', 'ack').some((m) => m.version === want), 'the last ack');
  const acks = sent(server, 'ack', 'ack');
  assert.ok(frames.length >= 32, `${frames.length} frames`);
  assert.ok(acks.length < frames.length / 2, `${acks.length} acks for ${frames.length} frames`);
  for (let i = 1; i < acks.length; i++) assert.ok(acks[i].version > acks[i - 1].version, 'increasing');
});

test('gap, duplicate and failing patch: the replica is kept and the topic re-subscribed from its version', { timeout: 15000 }, async (t) => {
  const { hub, server, make } = await setup(t);
  await hub.publish('g', { a: 1 });
  const client = make();
  const problems = recordApplied(client);
  const errors = [];
  const resets = [];
  client.on('error', (e) => errors.push(e));
  client.on('reset', (r) => resets.push(r.reason));
  client.subscribe('g');
  await until(() => client.get('g'), 'snapshot');
  const held = client.get('g');
  // A duplicate snapshot and a duplicate patch: ignored.
  server.inject({ t: 'snap', topic: 'g', epoch: held.epoch, version: held.version, data: { a: 'dup' } });
  server.inject({ t: 'patch', topic: 'g', epoch: held.epoch, from: held.version - 1, to: held.version, ops: [] });
  // A patch that fails to apply.
  server.inject({ t: 'patch', topic: 'g', epoch: held.epoch, from: held.version, to: held.version + 1, ops: [{ op: 'remove', path: '/missing' }] });
  await until(() => errors.length === 1, 'the failed patch reported');
  assert.equal(errors[0].code, 'DELTACAST_PATH_NOT_FOUND');
  assert.deepEqual(client.get('g'), held, 'state kept');
  assert.equal(client.topicStatus('g').status, 'recovering');
  // A gap.
  server.inject({ t: 'patch', topic: 'g', epoch: held.epoch, from: held.version + 5, to: held.version + 6, ops: [] });
  await until(() => resets.length >= 2 && sent(server, 'sub', 'g').length >= 2, 'the gap seen and the re-subscription received');
  await sleep(30); // a second re-subscription would come now
  const subs = sent(server, 'sub', 'g');
  assert.equal(subs.length, 2, 'one re-subscription while recovering');
  assert.deepEqual(subs[1], { t: 'sub', topic: 'g', epoch: held.epoch, version: held.version });
  assert.deepEqual(resets, ['failed', 'gap']);
  await hub.publish('g', { a: 2 });
  const want = await hub.get('g');
  await until(() => client.get('g').version === want.version, 'the next patch applies');
  assert.deepEqual(client.get('g'), want);
  assert.equal(client.topicStatus('g').status, 'live');
  assert.deepEqual(problems, []);
});

test('gone drops the replica; the topic coming back arrives as a snapshot under a new epoch', { timeout: 15000 }, async (t) => {
  const { hub, make } = await setup(t);
  await hub.publish('gone', { n: 1 });
  const client = make();
  const seen = [];
  client.subscribe('gone', (data, info) => seen.push([data, info.gone === true]));
  await until(() => client.get('gone'), 'snapshot');
  await hub.delete('gone');
  await until(() => client.get('gone') === undefined, 'dropped');
  assert.deepEqual(seen.at(-1), [undefined, true]);
  await hub.publish('gone', { n: 2 });
  await until(() => client.get('gone'), 'back');
  assert.deepEqual(client.get('gone'), await hub.get('gone'));
});

test('auth: asked on every (re)connect and sent as {"t":"auth","token"} before the subscriptions', { timeout: 15000 }, async (t) => {
  const { hub, server, make } = await setup(t);
  await hub.publish('au', {});
  let n = 0;
  const client = make({ auth: async () => `token-${++n}` });
  client.subscribe('au');
  await until(() => client.get('au'), 'snapshot');
  for (const s of server.wss.clients) s.terminate();
  await until(() => sent(server, 'auth').length === 2 && client.status === 'open', 'the second connection');
  assert.deepEqual(sent(server, 'auth').map((m) => m.token), ['token-1', 'token-2']);
  const lastOpen = server.received.map((m) => m.t).lastIndexOf('open');
  assert.equal(server.received[lastOpen + 1].t, 'auth', 'auth first');
});

test('auth: a token with expiresAt is asked again 30 s before it expires and sent on the open connection', { timeout: 15000 }, async (t) => {
  const { server, make } = await setup(t);
  const timers = fakeTimers();
  timers.resume();
  t.after(() => timers.pause());
  let n = 0;
  const client = make({ timers, auth: () => ({ token: `token-${++n}`, expiresAt: Date.now() + 60000 }) });
  client.subscribe('x');
  await until(() => sent(server, 'auth').length === 1 && client.status === 'open', 'the first token');
  timers.pause();
  timers.resume(31000);
  await until(() => sent(server, 'auth').length === 2, 'the refreshed token');
  assert.deepEqual(sent(server, 'auth').map((m) => m.token), ['token-1', 'token-2']);
  assert.equal(server.received.filter((m) => m.t === 'open').length, 1, 'on the same connection');
});

test('entity events: insert, update and delete of keyed rows, derived from the patches', { timeout: 15000 }, async (t) => {
  const { hub, make } = await setup(t);
  await hub.publish('rows', [{ id: 'a', v: 1 }, { id: 'b', v: 1 }]);
  const client = make();
  const events = [];
  client.on('event', (e) => events.push(e));
  client.subscribe('rows');
  await until(() => client.get('rows'), 'snapshot');
  await hub.upsert('rows', 'b', { id: 'b', v: 2 });
  await until(() => events.length === 1, 'update');
  await hub.upsert('rows', 'c', { id: 'c', v: 1 });
  await until(() => events.length === 2, 'insert');
  await hub.remove('rows', 'a');
  await until(() => events.length === 3, 'delete');
  assert.deepEqual(events.map((e) => [e.topic, e.action, e.id]), [['rows', 'update', 'b'], ['rows', 'insert', 'c'], ['rows', 'delete', 'a']]);
  assert.deepEqual(events[0].data, { id: 'b', v: 2 });
  assert.deepEqual(events[2].data, { id: 'a', v: 1 });
  assert.equal(events[2].version, client.get('rows').version);
  assert.ok(events.every((e) => typeof e.timestamp === 'number'));
});

test('hydrate: the client resumes from the dehydrated (epoch, version) and receives no snapshot', { timeout: 15000 }, async (t) => {
  const { hub, server, make } = await setup(t);
  await hub.publish('h', { n: 1 });
  const dehydrated = await hub.get('h');
  const client = make();
  const kinds = [];
  client.on('change', (topic, _d, info) => kinds.push(info.hydrated ? 'hydrate' : info.ops ? 'patch' : 'snap'));
  client.hydrate('h', dehydrated);
  client.subscribe('h');
  await until(() => sent(server, 'sub', 'h').length === 1, 'the sub');
  assert.deepEqual(sent(server, 'sub', 'h')[0], { t: 'sub', topic: 'h', epoch: dehydrated.epoch, version: dehydrated.version });
  await hub.publish('h', { n: 2 });
  await until(() => client.get('h').data.n === 2, 'the patch');
  assert.deepEqual(kinds, ['hydrate', 'patch']);
  // An older snapshot does not replace a newer replica.
  client.hydrate('h', dehydrated);
  assert.equal(client.get('h').data.n, 2);
});

test('hydrate while the socket is being opened: the snapshot is held, and the socket subscribes from it when it opens', { timeout: 15000 }, async (t) => {
  const { hub, server, make } = await setup(t);
  await hub.publish('h', { n: 1 });
  server.hangUpgrades = true; // the attempt stays under way until its connect timeout
  const client = make({ reconnect: { ...fast, connectTimeoutMs: 300 } });
  const kinds = [];
  client.on('change', (topic, _d, info) => kinds.push(info.hydrated ? 'hydrate' : info.ops ? 'patch' : 'snap'));
  client.subscribe('h');
  await until(() => server.upgrades === 1, 'the attempt under way');
  // What deltacast/query's fetchTopic does when the socket failed: an HTTP snapshot, hydrated.
  const snap = await hub.get('h');
  client.hydrate('h', snap);
  assert.deepEqual(client.get('h'), { epoch: snap.epoch, version: snap.version, data: { n: 1 } }, 'held: the socket has sent no position yet');
  assert.equal(client.topicStatus('h').status, 'stale');
  server.hangUpgrades = false;
  await until(() => sent(server, 'sub', 'h').length === 1, 'the sub, once a socket opens');
  assert.deepEqual(sent(server, 'sub', 'h')[0], { t: 'sub', topic: 'h', epoch: snap.epoch, version: snap.version });
  await hub.publish('h', { n: 2 });
  await until(() => client.get('h').data.n === 2, 'the patch');
  assert.deepEqual(kinds, ['hydrate', 'patch']);
});

test('background tab: non-critical topics unsubscribe while hidden and resume from their version', { timeout: 15000 }, async (t) => {
  const { hub, server, make } = await setup(t);
  const doc = new EventTarget();
  doc.visibilityState = 'visible';
  await hub.publish('bg', Array.from({ length: 50 }, (_, i) => ({ id: i + 1, v: 0, name: `row ${i}` })));
  await hub.publish('crit', { n: 0 });
  const client = make({ document: doc, window: null, hiddenUnsubscribeMs: 20 });
  const kinds = [];
  client.on('change', (topic, _d, info) => topic === 'bg' && kinds.push(info.ops ? 'patch' : 'snap'));
  client.subscribe('bg');
  client.subscribe('crit', undefined, { critical: true });
  await until(() => client.get('bg') && client.get('crit'), 'snapshots');
  doc.visibilityState = 'hidden';
  doc.dispatchEvent(new Event('visibilitychange'));
  await until(() => sent(server, 'unsub', 'bg').length === 1, 'the unsub while hidden');
  assert.equal(sent(server, 'unsub', 'crit').length, 0, 'critical topics stay');
  assert.equal(client.topicStatus('bg').status, 'stale');
  await hub.upsert('bg', 1, { id: 1, v: 1 });
  await hub.publish('crit', { n: 1 });
  await until(() => client.get('crit').data.n === 1, 'critical keeps flowing');
  assert.equal(client.get('bg').data[0].v, 0);
  doc.visibilityState = 'visible';
  doc.dispatchEvent(new Event('visibilitychange'));
  await until(() => client.get('bg').data[0].v === 1, 'resumed');
  assert.deepEqual(kinds, ['snap', 'patch'], 'a patch, not a snapshot');
  assert.deepEqual(client.get('bg'), await hub.get('bg'));
});

test('online: an immediate attempt instead of waiting out the backoff; close() stops reconnecting', { timeout: 15000 }, async (t) => {
  const { server, make } = await setup(t);
  const win = new EventTarget();
  await server.stop();
  const client = make({ window: win, document: null, reconnect: { minMs: 60000, maxMs: 60000, jitter: 'none', connectTimeoutMs: 2000 } });
  await until(() => client.status === 'reconnecting' && server.upgrades === 0, 'waiting in backoff');
  await server.start();
  win.dispatchEvent(new Event('online'));
  await until(() => client.status === 'open', 'open right away');
  client.close();
  assert.equal(client.status, 'closed');
  const upgrades = server.upgrades;
  win.dispatchEvent(new Event('online'));
  await sleep(50);
  assert.equal(server.upgrades, upgrades, 'no attempt after close()');
  assert.throws(() => client.subscribe('x'), { code: 'DELTACAST_CLOSED' });
});

test('options are validated with DELTACAST_INVALID_ARGUMENT', () => {
  assert.throws(() => createClient(), { code: 'DELTACAST_INVALID_ARGUMENT' });
  assert.throws(() => createClient({}), { code: 'DELTACAST_INVALID_ARGUMENT' });
  assert.throws(() => createClient({ url: 'ws://x', fallback: ['smoke'] }), { code: 'DELTACAST_INVALID_ARGUMENT' });
  assert.throws(() => createClient({ url: 'ws://x', reconnect: { minMs: -1 } }), { code: 'DELTACAST_INVALID_ARGUMENT' });
});

test('a carrier that cannot be made (no WebSocket, no io): the only one closes the client (not retried for ever); with others it is passed over', async (t) => {
  assert.equal(globalThis.WebSocket, undefined, 'Node 20 has no global WebSocket');
  const cases = [
    [{ url: 'ws://127.0.0.1:1' }, /options\.WebSocket/, 'DELTACAST_INVALID_ARGUMENT'],
    [{ url: 'http://127.0.0.1:1', transport: 'socket.io', fallback: ['socket.io'] }, /options\.io/, 'DELTACAST_INVALID_ARGUMENT'],
  ];
  for (const [options, message, code] of cases) {
    const client = createClient(options);
    const errors = [];
    const statuses = [];
    client.on('error', (e) => errors.push(e));
    client.on('status', (s) => statuses.push(s));
    client.subscribe('t');
    await until(() => client.status === 'closed', `closed: ${JSON.stringify(options)}`);
    assert.equal(errors.length, 1, 'reported once');
    assert.match(errors[0].message, message);
    assert.equal(errors[0].code, code);
    assert.ok(!statuses.includes('reconnecting'), 'never retried');
  }
  // A carrier that can be made but not reach its server keeps retrying, as before.
  const unreachable = createClient({ url: 'ws://127.0.0.1:1', WebSocket: require('ws'), fallback: ['ws'], reconnect: { minMs: 1, maxMs: 5 } });
  const statuses = [];
  unreachable.on('status', (s) => statuses.push(s));
  unreachable.on('error', () => {});
  unreachable.subscribe('t');
  await until(() => statuses.filter((s) => s === 'reconnecting').length >= 2, 'two retries');
  assert.notEqual(unreachable.status, 'closed');
  unreachable.close();
  // With a pollUrl as well, the client goes on over SSE and gets the topic.
  const { hub, server } = await setupClients(t, { poll: true });
  await hub.publish('t', { n: 1 });
  const fallback = createClient({ url: server.wsUrl, pollUrl: server.pollUrl, reconnect: fast });
  const errors = [];
  fallback.on('error', (e) => errors.push(e));
  fallback.subscribe('t');
  await until(() => fallback.get('t')?.data?.n === 1, 'the topic over a fallback carrier');
  assert.notEqual(fallback.carrier, 'ws');
  assert.ok(errors.some((e) => /options\.WebSocket/.test(e.message) && e.code === 'DELTACAST_INVALID_ARGUMENT'), 'the ws carrier was reported, with its code');
  fallback.close();
  // A client made for a server render, closed before it ever connects, needs no carrier at all.
  const render = createClient({ url: 'ws://server-render.invalid/' });
  render.close();
  render.hydrate('t', { epoch: 'e', version: 1, data: [1] });
  assert.deepEqual(render.get('t').data, [1]);
});

test('auth: a string is the token; a hook that throws is reported on error, never thrown; other types refused', { timeout: 15000 }, async (t) => {
  const { hub, server, make } = await setup(t);
  await hub.publish('au', {});
  const fixed = make({ auth: 'static-token' });
  fixed.subscribe('au');
  await until(() => fixed.get('au') && sent(server, 'auth').length === 1, 'the snapshot and the token');
  assert.equal(sent(server, 'auth')[0].token, 'static-token');

  const errors = [];
  const broken = make({
    auth: () => {
      throw new Error('token store down');
    },
  });
  broken.on('error', (e) => errors.push(e.message));
  await until(() => errors.includes('token store down'), 'the error from the hook');

  for (const auth of [42, {}, true]) {
    assert.throws(() => make({ auth }), { code: 'DELTACAST_INVALID_ARGUMENT' });
  }
});
