'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const WebSocket = require('ws');
const { QueryClient, QueryObserver } = require('@tanstack/query-core');
const { createHub } = require('../../lib/index.js');
const { createClient } = require('../../lib/browser/client.js');
const { bindQueryClient, optimisticUpdate, realtimeQueryOptions } = require('../../lib/browser/query.js');
const { startServer, until } = require('./client.servers.js');

const fast = { minMs: 10, maxMs: 50, connectTimeoutMs: 2000 };

async function setup(t, hubOptions) {
  const hub = createHub(hubOptions);
  const server = await startServer(hub);
  const client = createClient({ url: server.wsUrl, pollUrl: server.pollUrl, WebSocket, reconnect: fast });
  const queryClient = new QueryClient({ defaultOptions: { queries: { gcTime: Infinity } } }); // no gc timers left behind
  t.after(async () => {
    client.close();
    queryClient.clear();
    await server.stop();
    await hub.close();
  });
  return { hub, server, client, queryClient };
}

test('query: changes land under queryKey(topic) as the replica itself, rows keep identity, detail keys get changed rows only', { timeout: 15000 }, async (t) => {
  const { hub, client, queryClient } = await setup(t);
  const rows = Array.from({ length: 100 }, (_, i) => ({ id: i, v: 0 }));
  await hub.publish('board', rows);
  const unbind = bindQueryClient(queryClient, client, {
    queryKey: (topic) => [topic, 'list'],
    topics: ['board'],
    detail: { queryKey: (topic, id) => [topic, 'detail', id] },
    schedule: (f) => setTimeout(f, 0),
  });
  t.after(unbind);
  await until(() => queryClient.getQueryData(['board', 'list']), 'the first write');
  const first = queryClient.getQueryData(['board', 'list']);
  assert.equal(first, client.get('board').data);
  await hub.upsert('board', 7, { id: 7, v: 1 });
  await until(() => queryClient.getQueryData(['board', 'list'])[7].v === 1, 'the patch');
  const second = queryClient.getQueryData(['board', 'list']);
  assert.equal(second, client.get('board').data, 'no structural-sharing copy: the replica is written as is');
  assert.equal(second[6], first[6], 'unchanged rows keep their identity');
  assert.notEqual(second[7], first[7]);
  assert.deepEqual(queryClient.getQueryData(['board', 'detail', 7]), { id: 7, v: 1 });
  assert.equal(queryClient.getQueryData(['board', 'detail', 6]), undefined, 'only changed rows get detail writes');
  assert.deepEqual(queryClient.getQueryData(['board', 'list']), (await hub.get('board')).data);
});

test('query: at most one setQueryData per topic per flush, however many frames', { timeout: 15000 }, async (t) => {
  const { hub, client, queryClient } = await setup(t);
  await hub.publish('t', { n: 0 });
  const pending = [];
  bindQueryClient(queryClient, client, { queryKey: (topic) => [topic], topics: ['t'], schedule: (f) => pending.push(f) });
  await until(() => client.get('t'), 'snapshot');
  let writes = 0;
  queryClient.getQueryCache().subscribe((e) => e.type === 'updated' && e.action.type === 'success' && writes++);
  const before = client.get('t').version;
  for (let i = 1; i <= 20; i++) await hub.publish('t', { n: i });
  await until(() => client.get('t').data.n === 20, 'all changes applied');
  assert.ok(client.get('t').version > before);
  assert.ok(pending.length >= 1);
  pending.splice(0).forEach((f) => f());
  assert.equal(writes, 1);
  assert.deepEqual(queryClient.getQueryData(['t']), { n: 20 });
});

test('query: a refetch that started before a patch never overwrites it', { timeout: 15000 }, async (t) => {
  const { hub, client, queryClient } = await setup(t);
  await hub.publish('r', { n: 1 });
  bindQueryClient(queryClient, client, { queryKey: (topic) => [topic], topics: ['r'], schedule: (f) => setTimeout(f, 0) });
  await until(() => queryClient.getQueryData(['r']), 'first write');
  let release;
  // A slow fetch that returns what the server had when it started.
  const fetching = queryClient.fetchQuery({
    queryKey: ['r'],
    staleTime: 0,
    queryFn: () => new Promise((resolve) => (release = () => resolve({ n: 1 }))),
  });
  await until(() => release, 'the fetch to start');
  await hub.publish('r', { n: 2 });
  await until(() => queryClient.getQueryData(['r']).n === 2, 'the patch to land');
  release();
  await fetching.catch(() => {});
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(queryClient.getQueryData(['r']), { n: 2 });
});

test('query: gap, epoch change and gone invalidate, coalesced per key', { timeout: 15000 }, async (t) => {
  const { hub, client, queryClient } = await setup(t);
  await hub.publish('g', { n: 1 });
  bindQueryClient(queryClient, client, { queryKey: (topic) => [topic], topics: ['g'], schedule: (f) => setTimeout(f, 0) });
  await until(() => queryClient.getQueryData(['g']), 'first write');
  let invalidations = 0;
  queryClient.getQueryCache().subscribe((e) => e.type === 'updated' && e.action.type === 'invalidate' && invalidations++);
  await hub.delete('g');
  await until(() => invalidations === 1, 'gone invalidates');
  await hub.publish('g', { n: 5 });
  await until(() => client.get('g') && client.get('g').data.n === 5, 'the topic back');
  assert.equal(invalidations, 1);
});

test('query: detail keys follow inserted and deleted rows; an epoch change invalidates', { timeout: 15000 }, async (t) => {
  const { hub, client, queryClient } = await setup(t);
  await hub.publish('rows', [{ id: 'a', v: 1 }]);
  // A replica from another epoch (a server restart without a shared engine): the snapshot resets it.
  client.hydrate('rows', { epoch: 'old-epoch', version: 99, data: [{ id: 'a', v: 0 }] });
  // The app's cache holds the list from the same render (as a dehydrated React Query cache would): the
  // reset invalidates it whether the binding's first write and the new snapshot share a flush or not
  // (a flush invalidates before it writes, and a key not in the cache has nothing to invalidate).
  queryClient.setQueryData(['rows', 'list'], [{ id: 'a', v: 0 }]);
  let invalidations = 0;
  queryClient.getQueryCache().subscribe((e) => e.type === 'updated' && e.action.type === 'invalidate' && invalidations++);
  bindQueryClient(queryClient, client, {
    queryKey: (topic) => [topic, 'list'],
    topics: ['rows'],
    detail: { queryKey: (topic, id) => [topic, 'detail', id] },
    schedule: (f) => setTimeout(f, 0),
  });
  await until(() => client.get('rows').epoch !== 'old-epoch', 'the new epoch');
  await until(() => invalidations === 1, 'the epoch change invalidates');
  await hub.upsert('rows', 'b', { id: 'b', v: 1 });
  await until(() => queryClient.getQueryData(['rows', 'detail', 'b']), 'the inserted row under its detail key');
  await hub.remove('rows', 'b');
  await until(() => queryClient.getQueryCache().find({ queryKey: ['rows', 'detail', 'b'], exact: true }) === undefined, 'the deleted row removed');
  assert.deepEqual(queryClient.getQueryData(['rows', 'list']), (await hub.get('rows')).data);
});

test('query: optimisticUpdate shows at once, rebases on server patches, rolls back exactly on failure', { timeout: 15000 }, async (t) => {
  const { hub, client, queryClient } = await setup(t);
  await hub.publish('o', { a: 0, b: 0, c: 0 });
  bindQueryClient(queryClient, client, { queryKey: (topic) => [topic], topics: ['o'], schedule: (f) => setTimeout(f, 0) });
  await until(() => queryClient.getQueryData(['o']), 'first write');
  let failIt;
  const failing = optimisticUpdate(queryClient, client, {
    topic: 'o',
    update: (d) => ({ ...d, a: 'mine' }),
    mutate: () => new Promise((_, reject) => (failIt = () => reject(new Error('refused')))),
  });
  assert.equal(queryClient.getQueryData(['o']).a, 'mine', 'shown at once');
  const ok = optimisticUpdate(queryClient, client, {
    topic: 'o',
    update: (d) => ({ ...d, c: 'kept' }),
    mutate: () => hub.patch('o', [{ op: 'replace', path: '/c', value: 'kept' }]),
  });
  await hub.patch('o', [{ op: 'replace', path: '/b', value: 1 }]);
  await until(() => queryClient.getQueryData(['o']).b === 1, 'a server patch');
  assert.equal(queryClient.getQueryData(['o']).a, 'mine', 'kept on top of the server patch');
  failIt();
  await assert.rejects(failing, /refused/);
  await ok;
  await until(() => client.get('o').data.c === 'kept', 'the server version with the change');
  await new Promise((r) => setTimeout(r, 10));
  const want = (await hub.get('o')).data;
  assert.deepEqual(queryClient.getQueryData(['o']), want);
  assert.equal(queryClient.getQueryData(['o']).a, 0, 'exactly the failed change rolled back');
});

test('query: a patch frame whose ids include the change id ends the optimistic layer (no double count)', { timeout: 15000 }, async (t) => {
  const { hub, server, client, queryClient } = await setup(t);
  await hub.publish('cnt', { n: 1 });
  bindQueryClient(queryClient, client, { queryKey: (topic) => [topic], topics: ['cnt'], schedule: (f) => setTimeout(f, 0) });
  await until(() => queryClient.getQueryData(['cnt']), 'first write');
  let resolve;
  const pending = optimisticUpdate(queryClient, client, {
    topic: 'cnt',
    id: 'chg-1',
    update: (d) => ({ ...d, n: d.n + 1 }),
    mutate: () => new Promise((r) => (resolve = r)),
  });
  assert.equal(queryClient.getQueryData(['cnt']).n, 2, 'shown at once');
  const held = client.get('cnt');
  // The server's version containing the change, named by its id (ids on patch frames).
  server.inject({ t: 'patch', topic: 'cnt', epoch: held.epoch, from: held.version, to: held.version + 1, ops: [{ op: 'replace', path: '/n', value: 2 }], ids: ['chg-1'] });
  await until(() => client.get('cnt').version === held.version + 1, 'the patch applied');
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(queryClient.getQueryData(['cnt']).n, 2, 'counted once: the layer ended with the version that contains it');
  assert.equal(queryClient.getQueryData(['cnt']), client.get('cnt').data);
  resolve();
  await pending;
});

test('query: while the client is not live, bound queries refetch; once live, polling stops', { timeout: 15000 }, async (t) => {
  const { hub, server, client, queryClient } = await setup(t);
  await hub.publish('p', { n: 1 });
  bindQueryClient(queryClient, client, { queryKey: (topic) => [topic], topics: ['p'], schedule: (f) => setTimeout(f, 0), refetchIntervalMs: 30 });
  let fetches = 0;
  const observer = new QueryObserver(queryClient, { queryKey: ['p'], queryFn: async () => (fetches++, { n: 'fetched' }) });
  const off = observer.subscribe(() => {});
  t.after(off);
  await until(() => queryClient.getQueryData(['p']) && queryClient.getQueryData(['p']).n === 1, 'live data');
  const live = fetches;
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(fetches, live, 'no polling while live');
  server.refuseUpgrades = true;
  server.refuseHttp = true;
  for (const s of server.wss.clients) s.terminate();
  await until(() => fetches >= live + 2, 'refetches while not live');
  server.refuseUpgrades = false;
  server.refuseHttp = false;
  await hub.publish('p', { n: 3 });
  // On the socket, or on the long-poll carrier if its request got through first (ws is probed later).
  await until(() => client.topicStatus('p').status === 'live', 'live again');
  await until(() => queryClient.getQueryData(['p']).n === 3, 'socket data again');
  await new Promise((r) => setTimeout(r, 50));
  const after = fetches;
  await new Promise((r) => setTimeout(r, 120));
  assert.equal(fetches, after, 'polling stopped');
});

// The failure and the recovery can fall into one flush (a busy page, a frame late): the turn to
// HTTP is re-checked at the flush, and the write goes after the invalidations, so the queryFn's
// result (here an app's own REST call) never lands over the newer replica.
test('query: a failure and the recovery in one flush make no refetch over the live replica', { timeout: 15000 }, async (t) => {
  const { hub, server, client, queryClient } = await setup(t);
  await hub.publish('p', { n: 1 });
  let held = null;
  let hold = false;
  bindQueryClient(queryClient, client, { queryKey: (topic) => [topic], topics: ['p'], schedule: (f) => (hold ? (held = f) : setTimeout(f, 0)), refetchIntervalMs: 30 });
  let fetches = 0;
  const observer = new QueryObserver(queryClient, { queryKey: ['p'], queryFn: async () => (fetches++, { n: 'fetched' }) });
  t.after(observer.subscribe(() => {}));
  await until(() => queryClient.getQueryData(['p']) && queryClient.getQueryData(['p']).n === 1, 'live data');
  const before = fetches;
  hold = true;
  let reconnecting = 0;
  client.on('status', (s) => s === 'reconnecting' && reconnecting++);
  server.refuseUpgrades = true;
  server.refuseHttp = true;
  for (const s of server.wss.clients) s.terminate();
  await until(() => held && reconnecting >= 3, 'failed attempts, their flush held');
  server.refuseUpgrades = false;
  server.refuseHttp = false;
  await hub.publish('p', { n: 3 });
  await until(() => client.topicStatus('p').status === 'live' && client.get('p').data.n === 3, 'live again');
  hold = false;
  held();
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(queryClient.getQueryData(['p']), client.get('p').data);
  assert.equal(fetches, before, 'no refetch: the topic was live by the flush');
});

test('query: an epoch reset with an app queryFn keeps the new snapshot (the write cancels the refetch)', { timeout: 15000 }, async (t) => {
  const { hub, client, queryClient } = await setup(t);
  await hub.publish('e', { n: 7 });
  client.hydrate('e', { epoch: 'old-epoch', version: 99, data: { n: 0 } });
  let fetches = 0;
  const observer = new QueryObserver(queryClient, { queryKey: ['e'], queryFn: async () => (fetches++, { n: 'fetched' }) });
  t.after(observer.subscribe(() => {}));
  await until(() => fetches === 1, 'the first fetch');
  bindQueryClient(queryClient, client, { queryKey: (topic) => [topic], topics: ['e'], schedule: (f) => setTimeout(f, 0) });
  await until(() => client.get('e').epoch !== 'old-epoch', 'the new epoch');
  await until(() => fetches === 2, 'the reset invalidates (and refetches)');
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(queryClient.getQueryData(['e']), client.get('e').data);
  assert.equal(queryClient.getQueryData(['e']).n, 7);
});

// --- when a bound query goes over HTTP: only when the socket really failed --------------------

/** A page: a hub with `board`, the real httpHandler and ws adapter, a client, a bound QueryClient. */
async function page(t, clientOptions, before) {
  const hub = createHub();
  const server = await startServer(hub);
  await hub.publish('board', Array.from({ length: 100 }, (_, i) => ({ id: i, v: 0 })));
  if (before) before(server);
  const client = createClient({ url: server.wsUrl, pollUrl: server.pollUrl, WebSocket, reconnect: fast, ...clientOptions });
  const queryClient = new QueryClient({ defaultOptions: { queries: { gcTime: Infinity } } });
  bindQueryClient(queryClient, client, { queryKey: (topic) => [topic], schedule: (f) => setTimeout(f, 0), refetchIntervalMs: 30 });
  // What useRealtimeQuery does on mount: subscribe, and observe the key with the topic's options.
  const unsub = client.subscribe('board');
  const observer = new QueryObserver(queryClient, { queryKey: ['board'], ...realtimeQueryOptions(client, 'board', 30) });
  const off = observer.subscribe(() => {});
  t.after(async () => {
    off();
    unsub();
    client.close();
    queryClient.clear();
    await server.stop();
    await hub.close();
  });
  const gets = () => server.requests.filter((p) => p === '/dc/topics/board').length;
  const data = () => queryClient.getQueryData(['board']);
  return { hub, server, client, gets, data };
}

test('query: a page load whose socket opens within its connect timeout makes no HTTP GET of the topic', { timeout: 15000 }, async (t) => {
  const { hub, client, gets, data } = await page(t);
  assert.equal(client.status, 'connecting');
  await until(() => data() && data().length === 100, 'the snapshot over the socket');
  await hub.publish('board', Array.from({ length: 100 }, (_, i) => ({ id: i, v: i === 0 ? 1 : 0 })));
  await until(() => data()[0].v === 1, 'a patch');
  await new Promise((r) => setTimeout(r, 150)); // five poll intervals
  assert.equal(client.topicStatus('board').status, 'live');
  assert.equal(gets(), 0);
});

// The first HTTP snapshot often lands while the next socket attempt is under way (the backoff here
// is 10-50 ms): it seeds the replica all the same (a socket being opened has sent no position yet),
// which binds the topic, so the next failed attempt polls it.
test('query: a refused socket sends bound queries over HTTP, then polls; a socket again stops it', { timeout: 15000 }, async (t) => {
  const { server, client, gets, data } = await page(t, { fallback: ['ws'] }, (s) => (s.refuseUpgrades = true));
  await until(() => gets() >= 2 && data() && data().length === 100, 'the snapshot over HTTP, then a poll');
  assert.equal(client.status, 'reconnecting');
  server.refuseUpgrades = false;
  await until(() => client.status === 'open' && client.topicStatus('board').status === 'live', 'live');
  await new Promise((r) => setTimeout(r, 50));
  const n = gets();
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(gets(), n, 'polling stopped');
});

test('query: a topic paused by a hidden tab is not fetched over HTTP; it keeps its data and resumes with a patch', { timeout: 15000 }, async (t) => {
  const doc = new EventTarget();
  doc.visibilityState = 'visible';
  const { hub, client, gets, data } = await page(t, { document: doc, window: null, hiddenUnsubscribeMs: 20 });
  await until(() => data() && data().length === 100 && client.topicStatus('board').status === 'live', 'live');
  const kinds = [];
  client.on('change', (topic, _d, info) => topic === 'board' && kinds.push(info.ops ? 'patch' : 'snap'));
  doc.visibilityState = 'hidden';
  doc.dispatchEvent(new Event('visibilitychange'));
  await until(() => client.topicStatus('board').status === 'stale', 'paused');
  assert.equal(client.status, 'open');
  const held = data();
  await hub.publish('board', Array.from({ length: 100 }, (_, i) => ({ id: i, v: i === 5 ? 1 : 0 })));
  await new Promise((r) => setTimeout(r, 150)); // five poll intervals
  assert.equal(gets(), 0);
  assert.equal(data(), held, 'the data it had, untouched');
  doc.visibilityState = 'visible';
  doc.dispatchEvent(new Event('visibilitychange'));
  await until(() => data()[5].v === 1, 'the change, on return');
  assert.deepEqual(kinds, ['patch']);
  assert.equal(gets(), 0);
});
