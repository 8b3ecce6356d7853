'use strict';
// deltacast/redis against real redis-server processes on free loopback ports.

const test = require('node:test');
const assert = require('node:assert/strict');
const { WebSocketServer, WebSocket } = require('ws');
const { RESP_TYPES } = require('redis');
const zlib = require('node:zlib');
const { promisify } = require('node:util');

const { createHub, codes, diff, applyPatch } = require('../../lib/index.js');
const { redisEngine } = require('../../lib/redis.js');
const { attachWebSocketServer } = require('../../lib/adapters/ws.js');
const { redisMissing, cli, until, withRedis } = require('./redis.helpers.js');
const { waitFor, once, Replica, board } = require('./adapter.helpers.js');

const skip = redisMissing();
const assertVersion = (answer, version) => assert.equal(answer?.version, version, JSON.stringify(answer));
const TIMEOUT = 60000;

/** A hub on the engine; `subscriber()` connects an in-process client that follows topics. */
async function node(url, engineOptions = {}, hubOptions = {}) {
  const engine = redisEngine({ url, ...engineOptions });
  const hub = createHub({ engine, ...hubOptions });
  await engine.ready();
  return {
    hub,
    engine,
    subscriber(...topics) {
      const replica = new Replica();
      const connection = hub.connect({ send: (frame) => replica.handle(frame) });
      for (const topic of topics) connection.receive(JSON.stringify({ t: 'sub', topic }));
      replica.connection = connection;
      return replica;
    },
  };
}

/**
 * Redis's copy of a topic: { epoch, version, data } or undefined: the state it
 * holds (at version sv) with the patches of its stream since then applied.
 */
async function inRedis(redis, topic, prefix = 'deltacast') {
  const [epoch, version, sv] = await redis.hmGet(`${prefix}:{${topic}}:s`, ['e', 'v', 'sv']);
  if (epoch === null) return undefined;
  let data = JSON.parse(await unpack(await storedState(redis, topic, prefix)));
  const patches = await redis.xRange(`${prefix}:{${topic}}:x`, `${Number(sv) + 1}-0`, '+');
  assert.equal(patches.length, Number(version) - Number(sv), 'the stream holds every patch since the state');
  for (const entry of patches) data = applyPatch(data, JSON.parse(entry.message.p));
  return { epoch, version: Number(version), data };
}

/** A topic as its keys hold it inside {} (lib/redis.js hashTag: % and } percent-encoded). */
function hashTagged(topic) {
  return topic.replace(/%/g, '%25').replace(/\}/g, '%7D');
}

/** The state field of a topic's hash, as bytes. */
function storedState(redis, topic, prefix = 'deltacast') {
  return redis.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer }).hGet(`${prefix}:{${topic}}:s`, 's');
}

/** A stored state's JSON text: COMPACT stores `~` then its Brotli compression (binary); a creation, JSON text. */
async function unpack(stored) {
  if (stored[0] !== 0x7e) return String(stored);
  return String(await promisify(zlib.brotliDecompress)(stored.subarray(1)));
}

test('redisEngine refuses bad options with DELTACAST_INVALID_ARGUMENT', () => {
  assert.throws(() => redisEngine({}), { code: codes.INVALID_ARGUMENT });
  assert.throws(() => redisEngine({ url: 'redis://x', client: {} }), { code: codes.INVALID_ARGUMENT });
  assert.throws(() => redisEngine({ url: 'redis://x', prefix: 'a{b' }), { code: codes.INVALID_ARGUMENT });
  assert.throws(() => redisEngine({ url: 'redis://x', streamMaxCount: 0 }), { code: codes.INVALID_ARGUMENT });
  assert.throws(() => redisEngine({ url: 'redis://x', nope: 1 }), { code: codes.INVALID_ARGUMENT });
  assert.throws(() => createHub({ engine: {} }), { code: codes.INVALID_ARGUMENT });
});

test('an engine serves one hub', { skip, timeout: TIMEOUT }, async (t) => {
  await withRedis(t, async ({ server, track }) => {
    const a = track(await node(server.url));
    assert.throws(() => createHub({ engine: a.engine }), { code: codes.INVALID_ARGUMENT });
    assert.equal((await a.hub.publish('one', { n: 1 })).version, 1);
  });
});

test('one change is one atomic step: state, version, stream entry, notification with the patch, one slot', { skip, timeout: TIMEOUT }, async (t) => {
  await withRedis(t, async ({ server, redis, track }) => {
    const a = track(await node(server.url));
    const heard = [];
    const listener = redis.duplicate();
    listener.on('error', () => {});
    await listener.connect();
    t.after(() => listener.close().catch(() => {}));
    await listener.subscribe('deltacast:{prices}', (message) => heard.push(message));

    const first = await a.hub.publish('prices', { rows: board(3) });
    assert.equal(first.version, 1);
    const second = await a.hub.upsert('prices', 'r9', { id: 'r9', price: 9 }).catch((err) => err);
    assert.equal(second.code, codes.NOT_KEYED_ARRAY); // the topic holds an object
    const third = await a.hub.patch('prices', [{ op: 'replace', path: '/rows/1/price', value: 42 }]);
    assert.deepEqual(third, { epoch: first.epoch, version: 2 });

    const stored = await inRedis(redis, 'prices');
    assert.deepEqual(stored, { epoch: first.epoch, version: 2, data: { rows: board(3).map((r) => (r.id === 'r1' ? { ...r, price: 42 } : r)) } });
    const stream = await redis.xRange('deltacast:{prices}:x', '-', '+');
    assert.deepEqual(
      stream.map((e) => [e.id, JSON.parse(e.message.p)]),
      [['2-0', [{ op: 'replace', path: '/rows/1/price', value: 42 }]]],
    );
    await waitFor(() => heard.length === 2, 'two notifications');
    assert.equal(heard[1], `${first.epoch}\n2\n[{"op":"replace","path":"/rows/1/price","value":42}]`);
    assert.ok(!heard[1].includes('row 0'), 'the notification carries the patch, not the document');
    // every key of a topic in one slot
    const slots = ['deltacast:{prices}:s', 'deltacast:{prices}:x', 'deltacast:{prices}:id:x', 'deltacast:{prices}'].map((k) => cli(server.port, 'cluster', 'keyslot', k));
    assert.equal(new Set(slots).size, 1);
    // the local replica is Redis's copy
    assert.deepEqual(a.hub.get('prices'), stored);
  });
});

test('the stream is capped by count and bytes', { skip, timeout: TIMEOUT }, async (t) => {
  await withRedis(t, async ({ server, redis, track }) => {
    const a = track(await node(server.url, { streamMaxCount: 5, streamMaxBytes: 400 }));
    for (let i = 0; i < 20; i++) await a.hub.publish('t', { n: i });
    assert.equal(await redis.xLen('deltacast:{t}:x'), 5);
    const ids = (await redis.xRange('deltacast:{t}:x', '-', '+')).map((e) => e.id);
    assert.deepEqual(ids, ['16-0', '17-0', '18-0', '19-0', '20-0']);
    const big = 'x'.repeat(150);
    for (let i = 0; i < 5; i++) await a.hub.publish('t', { n: i, big: big + i });
    const entries = await redis.xRange('deltacast:{t}:x', '-', '+');
    const bytes = entries.reduce((sum, e) => sum + e.message.p.length, 0);
    assert.ok(bytes <= 400 && entries.length >= 1, `${entries.length} entries, ${bytes} bytes`);
    assert.equal(Number(await redis.hGet('deltacast:{t}:s', 'b')), bytes);
  });
});

test('concurrent publishers on one topic from two nodes: versions unique, states consistent', { skip, timeout: TIMEOUT }, async (t) => {
  await withRedis(t, async ({ server, redis, track }) => {
    const a = track(await node(server.url, { maxRetries: 1000 }));
    const b = track(await node(server.url, { maxRetries: 1000 }));
    await a.hub.publish('rows', []);
    const ra = a.subscriber('rows');
    const rb = b.subscriber('rows');
    const calls = [];
    for (let i = 0; i < 40; i++) {
      calls.push(a.hub.upsert('rows', `a${i}`, { id: `a${i}`, n: i }));
      calls.push(b.hub.upsert('rows', `b${i}`, { id: `b${i}`, n: i }));
    }
    const answers = await Promise.all(calls);
    const versions = answers.map((v) => v.version);
    assert.equal(new Set(versions).size, 80, 'no two changes got one version');
    assert.deepEqual([...versions].sort((x, y) => x - y), Array.from({ length: 80 }, (_, i) => i + 2));
    const stored = await inRedis(redis, 'rows');
    assert.equal(stored.version, 81);
    assert.equal(stored.data.length, 80);
    await waitFor(() => a.hub.get('rows')?.version === 81 && b.hub.get('rows')?.version === 81, 'both replicas at 81');
    assert.deepEqual(a.hub.get('rows'), stored);
    assert.deepEqual(b.hub.get('rows'), stored);
    await waitFor(() => ra.get('rows')?.version === 81 && rb.get('rows')?.version === 81, 'both subscribers at 81');
    assert.deepEqual(ra.get('rows'), stored);
    assert.deepEqual(rb.get('rows'), stored);
    assert.ok(a.engine.stats().retries + b.engine.stats().retries > 0, 'the stale bases were retried');
  });
});

test('large states are diffed off the event loop: concurrent publishers of a 150 KB board from two nodes stay consistent', { skip, timeout: TIMEOUT }, async (t) => {
  await withRedis(t, async ({ server, redis, track }) => {
    const a = track(await node(server.url, { maxRetries: 1000 }));
    const b = track(await node(server.url, { maxRetries: 1000 }));
    const rows = (tag) => Array.from({ length: 1500 }, (_, i) => ({ id: `r${i}`, price: i / 100, note: `${tag}-${'x'.repeat(60)}` }));
    let value = rows('start');
    assert.ok(JSON.stringify(value).length * 2 >= 128 * 1024, 'the texts together are over the pool threshold');
    await a.hub.publish('big', value);
    a.subscriber('big'); // both nodes follow the topic, so both copies are kept current
    const rb = b.subscriber('big');
    const calls = [];
    const values = [];
    for (let i = 0; i < 12; i++) {
      value = value.map((row, j) => (j % 100 === i ? { ...row, price: row.price + 1, note: `n${i}` } : row));
      values.push(value);
      calls.push((i % 2 ? a : b).hub.publish('big', value));
    }
    const answers = await Promise.all(calls);
    assert.ok(answers.every((answer) => answer !== null), 'every board differs from the one before it on its node');
    assert.equal(new Set(answers.map((answer) => answer.version)).size, 12, 'no two changes got one version');
    // The nodes race: the change Redis took last (the highest version) is the state.
    const last = answers.reduce((best, answer, i) => (answer.version > answers[best].version ? i : best), 0);
    const stored = await inRedis(redis, 'big');
    assert.equal(stored.version, answers[last].version);
    assert.deepEqual(stored.data, values[last], 'Redis holds the board of the last version');
    await waitFor(() => a.hub.get('big')?.version === stored.version && b.hub.get('big')?.version === stored.version, 'both replicas current');
    assert.deepEqual(a.hub.get('big'), stored);
    assert.deepEqual(b.hub.get('big'), stored);
    await waitFor(() => rb.get('big')?.version === stored.version, 'the subscriber is current');
    assert.deepEqual(rb.get('big').data, values[last]);
    // a bad text is refused before Redis is asked, as for a small one
    await assert.rejects(a.hub.publishJson('big', `[${'1,'.repeat(70000)}]`), { code: codes.INVALID_JSON });
    assert.equal((await inRedis(redis, 'big')).version, stored.version);
  });
});

test('a topic name no change could use is refused before Redis is asked', { skip, timeout: TIMEOUT }, async (t) => {
  await withRedis(t, async ({ server, redis, track }) => {
    const a = track(await node(server.url, {}, { limits: { maxTopicLength: 16 } }));
    await a.hub.publish('kept', { n: 1 });
    const before = await redis.keys('*');
    for (const topic of ['', 'x'.repeat(17), 'a\nb', 'a\u0085b', 'a\ud800b']) {
      for (const call of [
        () => a.hub.publish(topic, { n: 2 }),
        () => a.hub.publishJson(topic, '{"n":2}'),
        () => a.hub.patch(topic, [{ op: 'add', path: '/n', value: 2 }]),
        () => a.hub.upsert(topic, 1, { id: 1 }),
        () => a.hub.remove(topic, 1),
        () => a.hub.delete(topic),
      ]) {
        await assert.rejects(call(), { code: codes.INVALID_TOPIC }, JSON.stringify(topic));
      }
      assert.throws(() => a.hub.get(topic), { code: codes.INVALID_TOPIC });
    }
    assert.deepEqual((await redis.keys('*')).sort(), before.sort(), 'Redis holds the keys it held');
    assert.deepEqual(a.hub.get('kept').data, { n: 1 });
  });
});

test('topic names with } or % keep keys of their own (no topic names another topic\'s key)', { skip, timeout: TIMEOUT }, async (t) => {
  await withRedis(t, async ({ server, redis, track }) => {
    const a = track(await node(server.url));
    // `b}:id:z` and `b` with the change id `z}:s` once named the same key.
    assertVersion(await a.hub.publish('b}:id:z', { n: 1 }), 1);
    assertVersion(await a.hub.publish('b', { n: 2 }, { id: 'z}:s' }), 1);
    assertVersion(await a.hub.publish('c', { n: 3 }, { id: 'q}:s' }), 1);
    assertVersion(await a.hub.publish('c}:id:q', { n: 4 }), 1);
    for (const topic of ['%', '%7D', '}', '}x', 'a}b{c', '{}']) assertVersion(await a.hub.publish(topic, { topic }), 1);
    const b = track(await node(server.url));
    const expected = { 'b}:id:z': { n: 1 }, b: { n: 2 }, c: { n: 3 }, 'c}:id:q': { n: 4 } };
    for (const topic of ['%', '%7D', '}', '}x', 'a}b{c', '{}']) expected[topic] = { topic };
    for (const [topic, data] of Object.entries(expected)) {
      assert.deepEqual((await inRedis(redis, hashTagged(topic))).data, data, topic);
      const replica = b.subscriber(topic);
      await waitFor(() => replica.get(topic) !== undefined, `${topic} on another node`);
      assert.deepEqual(replica.get(topic).data, data, topic);
    }
  });
});

test('a base stale more than maxRetries times fails with DELTACAST_CONFLICT and changes nothing', { skip, timeout: TIMEOUT }, async (t) => {
  await withRedis(t, async ({ server, redis, track }) => {
    const a = track(await node(server.url, { maxRetries: 0 }));
    const b = track(await node(server.url));
    await a.hub.publish('c', { n: 0 });
    await b.hub.publish('c', { n: 1 }); // a's cache is now stale (a does not follow the topic)
    const err = await a.hub.publish('c', { n: 2 }).catch((e) => e);
    assert.equal(err.code, codes.CONFLICT);
    assert.deepEqual((await inRedis(redis, 'c')).data, { n: 1 });
    // the failed attempt brought a's cache up to date: the next one goes through
    assert.equal((await a.hub.publish('c', { n: 2 })).version, 3);
  });
});

test('a node that never saw a topic patches and upserts it on Redis\'s state', { skip, timeout: TIMEOUT }, async (t) => {
  await withRedis(t, async ({ server, redis, track }) => {
    const a = track(await node(server.url));
    const b = track(await node(server.url));
    await a.hub.publish('fresh', [{ id: 1, n: 1 }]);
    assert.equal(b.hub.get('fresh'), undefined);
    assert.equal((await b.hub.patch('fresh', [{ op: 'replace', path: '/0/n', value: 2 }])).version, 2);
    await a.hub.publish('fresh', [{ id: 1, n: 3 }]); // b's copy is stale now
    assert.equal((await b.hub.patch('fresh', [{ op: 'add', path: '/-', value: { id: 2, n: 1 } }])).version, 4);
    assert.deepEqual((await inRedis(redis, 'fresh')).data, [{ id: 1, n: 3 }, { id: 2, n: 1 }]);
    assert.equal((await b.hub.remove('fresh', 1)).version, 5);
    const err = await b.hub.patch('fresh', [{ op: 'remove', path: '/7' }]).catch((e) => e);
    assert.equal(err.code, codes.PATH_NOT_FOUND);
    assert.deepEqual((await inRedis(redis, 'fresh')).data, [{ id: 2, n: 1 }]);
  });
});

test('a publisher id is a change made once, across nodes', { skip, timeout: TIMEOUT }, async (t) => {
  await withRedis(t, async ({ server, redis, track }) => {
    const a = track(await node(server.url));
    const b = track(await node(server.url));
    assert.equal((await a.hub.publish('d', { n: 1 }, { id: 'evt-1' })).version, 1);
    assert.equal(await b.hub.publish('d', { n: 2 }, { id: 'evt-1' }), null);
    assert.equal(await a.hub.publish('d', { n: 3 }, { id: 'evt-1' }), null);
    assert.deepEqual((await inRedis(redis, 'd')).data, { n: 1 });
    const ttl = await redis.pTTL('deltacast:{d}:id:evt-1');
    assert.ok(ttl > 0 && ttl <= 60000, `the id has a TTL (${ttl} ms)`);
    assert.equal((await a.hub.publish('d', { n: 3 }, { id: 'evt-2' })).version, 2);
  });
});

test('delete removes the keys and every replica; subscribers hear gone', { skip, timeout: TIMEOUT }, async (t) => {
  await withRedis(t, async ({ server, redis, track }) => {
    const a = track(await node(server.url));
    const b = track(await node(server.url));
    await a.hub.publish('g', { n: 1 });
    const rb = b.subscriber('g');
    await waitFor(() => rb.get('g') !== undefined, 'the snapshot on b');
    assert.equal(await a.hub.delete('g'), true);
    assert.equal(await a.hub.delete('g'), false);
    assert.equal(await redis.exists(['deltacast:{g}:s', 'deltacast:{g}:x']), 0);
    await waitFor(() => rb.count('gone') === 1, 'gone on b');
    assert.equal(b.hub.get('g'), undefined);
  });
});

test('a client resumes on another node with a patch', { skip, timeout: TIMEOUT }, async (t) => {
  await withRedis(t, async ({ server, track }) => {
    const servers = [];
    t.after(async () => {
      for (const s of servers) await new Promise((r) => s.close(() => r()));
    });
    async function wsNode() {
      const n = track(await node(server.url));
      const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
      await once(wss, 'listening');
      attachWebSocketServer(wss, n.hub);
      servers.push(wss);
      return { ...n, url: `ws://127.0.0.1:${wss.address().port}` };
    }
    async function client(url) {
      const ws = new WebSocket(url);
      const replica = new Replica();
      ws.on('message', (data) => replica.handle(String(data)));
      await once(ws, 'open');
      return { ws, replica };
    }
    const a = await wsNode();
    const b = await wsNode();
    let rows = board(200);
    await a.hub.publish('board', rows);
    const first = await client(a.url);
    first.ws.send(JSON.stringify({ t: 'sub', topic: 'board' }));
    await waitFor(() => first.replica.get('board')?.version === 1, 'the snapshot from a');
    first.ws.close();
    await once(first.ws, 'close');
    // changes while the client is away, from both nodes
    for (let i = 0; i < 5; i++) {
      rows = rows.map((r, j) => (j === i ? { ...r, price: r.price + 100 } : r));
      await (i % 2 ? a : b).hub.publish('board', rows);
    }
    // b has never followed the topic: it loads it (state and last patches) once, however many resume
    const second = await client(b.url);
    second.replica.topics.set('board', first.replica.get('board'));
    const others = await Promise.all([client(b.url), client(b.url)]);
    for (const other of others) other.replica.topics.set('board', first.replica.get('board'));
    for (const c of [second, ...others]) c.ws.send(JSON.stringify(c.replica.resume('board')));
    for (const c of [second, ...others]) {
      await waitFor(() => c.replica.get('board')?.version === 6, 'the resumed replica at 6');
      assert.equal(c.replica.count('snap'), 0, 'resumed with a patch, not a snapshot');
      assert.equal(c.replica.count('patch'), 1);
      assert.deepEqual(c.replica.get('board').data, rows);
      c.ws.close();
    }
    assert.equal(b.engine.stats().loads, 1, 'three clients resuming one topic caused one load');
  });
});

test('a lost notification is a gap, repaired from the stream', { skip, timeout: TIMEOUT }, async (t) => {
  await withRedis(t, async ({ server, redis, track }) => {
    const a = track(await node(server.url));
    const b = track(await node(server.url));
    const rows = board(50);
    await a.hub.publish('gap', rows);
    const rb = b.subscriber('gap');
    await waitFor(() => rb.get('gap')?.version === 1, 'b follows');
    // Another writer's change whose notification b never hears (written as the Lua step writes it, minus PUBLISH)
    const next = rows.map((r) => (r.id === 'r1' ? { ...r, price: 7 } : r));
    await redis.xAdd('deltacast:{gap}:x', '2-0', { p: JSON.stringify(diff(rows, next)) });
    await redis.hSet('deltacast:{gap}:s', { v: 2 });
    assert.equal(b.hub.get('gap').version, 1, 'b did not hear of version 2');
    await a.hub.upsert('gap', 'r2', { id: 'r2', name: 'row 2', price: 8 });
    await waitFor(() => b.hub.get('gap')?.version === 3, 'b repaired up to 3');
    assert.ok(b.engine.stats().gaps >= 1);
    assert.deepEqual(b.hub.get('gap'), await inRedis(redis, 'gap'));
    await waitFor(() => rb.get('gap')?.version === 3, 'the subscriber at 3');
    assert.equal(rb.count('snap'), 1, 'repaired with patches, no new snapshot');
    assert.deepEqual(rb.get('gap').data, (await inRedis(redis, 'gap')).data);
  });
});

test('Redis down: changes fail fast with DELTACAST_ENGINE_UNAVAILABLE, subscribers keep their state, all resyncs when it returns', { skip, timeout: TIMEOUT }, async (t) => {
  await withRedis(t, async ({ server, redis, track }) => {
    const a = track(await node(server.url));
    const b = track(await node(server.url));
    await a.hub.publish('live', { n: 1 });
    const rb = b.subscriber('live');
    await waitFor(() => rb.get('live')?.version === 1, 'b follows');
    await server.stop();
    const started = Date.now();
    let err;
    for (;;) {
      err = await a.hub.publish('live', { n: 2 }).catch((e) => e);
      if (err?.code === codes.ENGINE_UNAVAILABLE || Date.now() - started > 5000) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(err.code, codes.ENGINE_UNAVAILABLE);
    const failing = Date.now();
    const again = await b.hub.publish('live', { n: 3 }).catch((e) => e);
    assert.equal(again.code, codes.ENGINE_UNAVAILABLE);
    assert.ok(Date.now() - failing < 1000, 'a change fails at once while Redis is down');
    assert.deepEqual(b.hub.get('live').data, { n: 1 }, 'the replica keeps its last state');
    assert.deepEqual(rb.get('live').data, { n: 1 });
    // Redis returns (empty: no persistence here); the nodes reconnect and resubscribe
    await server.start();
    await waitFor(() => redis.isReady, 'the test client back', 20000);
    let back;
    const deadline = Date.now() + 20000;
    while (Date.now() < deadline) {
      back = await a.hub.publish('live', { n: 4 }).catch((e) => e);
      if (!(back instanceof Error)) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(!(back instanceof Error), `a publishes again (${back?.message})`);
    await waitFor(() => rb.get('live')?.data?.n === 4, 'b hears the topic again', 20000);
    assert.deepEqual(b.hub.get('live'), await inRedis(redis, 'live'));
  });
});

test('a change sends Redis its patch; the state goes, compressed, once per stream window', { skip, timeout: TIMEOUT }, async (t) => {
  await withRedis(t, async ({ server, redis, track }) => {
    // a window of 60 patches: the state goes at 90% of it (54 patches since the state held)
    const a = track(await node(server.url, { streamMaxCount: 60, streamMaxBytes: 1 << 30 }));
    let rows = board(1000);
    await a.hub.publish('big', rows);
    const stateBytes = (await redis.hGet('deltacast:{big}:s', 's')).length;
    const info = async () => Number(/total_net_input_bytes:(\d+)/.exec(await redis.info('stats'))[1]);
    const before = await info();
    let patchBytes = 0;
    for (let i = 0; i < 50; i++) {
      const next = rows.map((r, j) => (j % 100 === i ? { ...r, price: r.price + 1 } : r));
      patchBytes += JSON.stringify(diff(rows, next)).length;
      rows = next;
      await a.hub.publish('big', rows);
    }
    const sent = (await info()) - before;
    assert.equal(a.engine.stats().compactions, 0);
    assert.equal(await redis.hGet('deltacast:{big}:s', 'sv'), '1', 'the state Redis holds is still version 1');
    assert.ok(sent < stateBytes, `50 changes sent ${sent} bytes, less than one state (${stateBytes})`);
    assert.ok(sent < patchBytes * 1.3, `${sent} bytes for ${patchBytes} bytes of patches`);
    for (let i = 0; i < 30; i++) {
      rows = rows.map((r) => ({ ...r, price: r.price + 1 }));
      await a.hub.publish('big', rows);
    }
    assert.equal(a.engine.stats().compactions, 1, 'the state went once, at 54 patches since version 1');
    assert.equal(await redis.hGet('deltacast:{big}:s', 'sv'), '55');
    const stored = await storedState(redis, 'big');
    assert.ok(stored[0] === 0x7e && stored.length * 4 < stateBytes, `the state stored compressed: ${stored.length} bytes for ${stateBytes}`);
    // a node loading the topic now gets the state and the patches since
    const b = track(await node(server.url));
    const rb = b.subscriber('big');
    await waitFor(() => rb.get('big')?.version === 81, 'b loaded version 81');
    assert.deepEqual(rb.get('big').data, rows);
    assert.deepEqual(await inRedis(redis, 'big'), a.hub.get('big'));
  });
});

test('after several compactions a loading node holds the same bytes, and a client resumes with patches across one', { skip, timeout: TIMEOUT }, async (t) => {
  await withRedis(t, async ({ server, redis, track }) => {
    const options = { streamMaxCount: 20, streamMaxBytes: 1 << 30 };
    const a = track(await node(server.url, options));
    const b = track(await node(server.url, options));
    let rows = board(300);
    const history = [undefined, rows]; // version -> value
    await a.hub.publish('t', rows);
    const rb = b.subscriber('t'); // follows every change live
    await waitFor(() => rb.get('t')?.version === 1, 'b follows t');
    for (let i = 0; i < 100; i++) {
      rows = rows.map((r, j) => (j === (i * 7) % 300 ? { ...r, price: r.price + i, name: `${r.name}.` } : r));
      history.push(rows);
      await (i % 3 === 2 ? b : a).hub.publish('t', rows);
    }
    const compactions = a.engine.stats().compactions + b.engine.stats().compactions;
    assert.ok(compactions >= 4, `${compactions} compactions for 100 changes in a window of 20`);
    const sv = Number(await redis.hGet('deltacast:{t}:s', 'sv'));
    assert.ok(sv > 80, `the state Redis holds is recent (${sv})`);
    assert.equal((await storedState(redis, 't'))[0], 0x7e, 'stored compressed');
    await waitFor(() => b.hub.getJson('t')?.version === 101, 'b at 101');
    // c has never followed t: it loads the compressed state and the patches since
    const c = track(await node(server.url, options));
    const rc = c.subscriber('t');
    await waitFor(() => rc.get('t')?.version === 101, 'c loaded version 101');
    const text = a.hub.getJson('t').json;
    assert.equal(c.hub.getJson('t').json, text, 'the loaded state is byte-identical to the publisher');
    assert.equal(b.hub.getJson('t').json, text, 'and to the node that followed live');
    assert.deepEqual(rc.get('t').data, rows);
    assert.deepEqual(await inRedis(redis, 't'), a.hub.get('t'));
    // a client that left before the last compaction resumes on a fresh node with patches
    const from = sv - 5;
    const d = track(await node(server.url, options));
    const replica = new Replica();
    replica.topics.set('t', { epoch: a.hub.get('t').epoch, version: from, data: history[from] });
    const connection = d.hub.connect({ send: (frame) => replica.handle(frame) });
    connection.receive(JSON.stringify(replica.resume('t')));
    await waitFor(() => replica.get('t')?.version === 101, 'the resumed replica at 101');
    assert.equal(replica.count('snap'), 0, `resumed from ${from} (the state is at ${sv}) with patches, not a snapshot`);
    assert.ok(replica.count('patch') >= 1);
    assert.equal(replica.gaps, 0);
    assert.deepEqual(replica.get('t').data, rows);
  });
});

test("a node follows a topic's channel while local clients follow it; a connection's messages keep their order", { skip, timeout: TIMEOUT }, async (t) => {
  await withRedis(t, async ({ server, redis, track }) => {
    const a = track(await node(server.url));
    const b = track(await node(server.url));
    await a.hub.publish('x', { n: 1 });
    const numsub = async () => Number((await redis.sendCommand(['PUBSUB', 'NUMSUB', 'deltacast:{x}']))[1]);
    // sub (held while x loads), then a malformed message: its err comes after the snapshot
    const first = b.subscriber('x');
    first.connection.receive('{"t":');
    const second = b.subscriber('x');
    await waitFor(() => first.get('x') && second.get('x') && first.errors.length === 1, 'both snapshots and the err');
    assert.deepEqual(
      first.messages.map((m) => m.t),
      ['snap', 'err'],
    );
    assert.equal(b.engine.stats().loads, 1, 'one load for two subscribers');
    assert.equal(await numsub(), 1);
    assert.equal(b.engine.stats().liveTopics, 1);
    first.connection.receive(JSON.stringify({ t: 'unsub', topic: 'x' }));
    await a.hub.publish('x', { n: 2 });
    await waitFor(() => second.get('x')?.version === 2, 'the second still follows');
    assert.equal(await numsub(), 1);
    second.connection.close();
    await until(async () => (await numsub()) === 0, 10000, 'the node left the channel');
    assert.equal(b.engine.stats().liveTopics, 0);
  });
});

test("ttlMs: a topic's keys expire in Redis after its last change", { skip, timeout: TIMEOUT }, async (t) => {
  await withRedis(t, async ({ server, redis, track }) => {
    const a = track(await node(server.url, { ttlMs: 300 }));
    await a.hub.publish('short', { n: 1 });
    await a.hub.publish('short', { n: 2 });
    for (const key of ['deltacast:{short}:s', 'deltacast:{short}:x']) {
      const ttl = await redis.pTTL(key);
      assert.ok(ttl > 0 && ttl <= 300, `${key} expires (${ttl} ms)`);
    }
    await until(async () => (await redis.exists(['deltacast:{short}:s', 'deltacast:{short}:x'])) === 0, 5000, 'the keys expired');
    // the next change makes the topic again, under a new epoch
    const again = await a.hub.publish('short', { n: 3 });
    assert.equal(again.version, 1);
  });
});

test("a node's subscription connection killed: it resubscribes and reads what it missed", { skip, timeout: TIMEOUT }, async (t) => {
  await withRedis(t, async ({ server, redis, track }) => {
    const a = track(await node(server.url));
    const b = track(await node(server.url));
    let rows = board(100);
    await a.hub.publish('k', rows);
    const rb = b.subscriber('k');
    await waitFor(() => rb.get('k')?.version === 1, 'b follows');
    const repairs = b.engine.stats().repairs;
    assert.ok(Number(await redis.sendCommand(['CLIENT', 'KILL', 'TYPE', 'pubsub'])) >= 1);
    for (let i = 0; i < 3; i++) {
      rows = rows.map((r, j) => (j === i ? { ...r, price: -1 } : r));
      await a.hub.publish('k', rows);
    }
    await until(() => rb.get('k')?.version === 4, 10000, 'b at version 4');
    assert.deepEqual(rb.get('k').data, rows);
    assert.deepEqual(b.hub.get('k'), await inRedis(redis, 'k'));
    assert.ok(b.engine.stats().repairs > repairs, 'it read the topic again');
    // and it hears later changes
    await a.hub.publish('k', board(100));
    await until(() => rb.get('k')?.version === 5, 10000, 'b at version 5');
  });
});
