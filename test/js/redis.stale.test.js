'use strict';
// deltacast/redis: a change decided on a node's copy of a topic that another
// node changed since (the node's clients do not follow it, or its
// notifications were cut) is confirmed against Redis before it resolves null.
// Real redis-server processes on free loopback ports, two or three hubs each
// with its own engine.

const test = require('node:test');
const assert = require('node:assert/strict');

const { redisMissing, until, withRedis } = require('./redis.helpers.js');
const { Replica } = require('./adapter.helpers.js');

const skip = redisMissing();
const TIMEOUT = 60000;

/** Two nodes; `a` made `t` ({ n: 1 }, version 1, `first`) and a client of `a` follows it (`replica`). */
async function followedPair(node) {
  const a = await node();
  const b = await node();
  const first = await a.hub.publish('t', { n: 1 });
  const replica = follow(a, 't');
  await until(() => replica.get('t')?.version === 1 && a.engine.stats().liveTopics === 1, 10000, 'a follows t');
  return { a, b, first, replica };
}

/** A client of `n` following `topic`: its replica. */
function follow(n, topic) {
  const replica = new Replica();
  const connection = n.hub.connect({ send: (frame) => replica.handle(frame) });
  connection.receive(JSON.stringify({ t: 'sub', topic }));
  replica.connection = connection;
  return replica;
}

/** What a node that never saw the topic reads from Redis: { epoch, version, data }. */
async function fresh(node, topic, version) {
  const c = await node();
  follow(c, topic);
  await until(() => c.hub.get(topic)?.version === version, 10000, `a fresh node reads ${topic} at ${version}`);
  return c.hub.get(topic);
}

/** Redis's count of calls of a command (INFO commandstats). */
async function calls(redis, command) {
  const match = new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(await redis.info('commandstats'));
  return match === null ? 0 : Number(match[1]);
}

// A sets the topic, B changes it, A sets it back: A's copy (A's clients do
// not follow the topic) still holds A's first value, so the last change looks
// like nothing to A; it is made.
const cases = [
  {
    name: 'publish',
    first: (h) => h.publish('t', { n: 1 }),
    other: (h) => h.publish('t', { n: 2 }),
    again: (h) => h.publish('t', { n: 1 }),
    expected: { n: 1 },
  },
  {
    name: 'publishJson',
    first: (h) => h.publishJson('t', '{"n":1}'),
    other: (h) => h.publishJson('t', '{"n":2}'),
    again: (h) => h.publishJson('t', '{"n":1}'),
    expected: { n: 1 },
  },
  {
    name: 'upsert',
    first: (h) => h.publish('t', [{ id: 'a', n: 1 }]),
    other: (h) => h.upsert('t', 'a', { id: 'a', n: 2 }),
    again: (h) => h.upsert('t', 'a', { id: 'a', n: 1 }),
    expected: [{ id: 'a', n: 1 }],
  },
  {
    name: 'remove (the row is only in Redis\'s newer state)',
    first: (h) => h.publish('t', [{ id: 'a', n: 1 }]),
    other: (h) => h.upsert('t', 'b', { id: 'b', n: 2 }),
    again: (h) => h.remove('t', 'b'),
    expected: [{ id: 'a', n: 1 }],
  },
  {
    name: 'patch',
    first: (h) => h.publish('t', { n: 1 }),
    other: (h) => h.publish('t', { n: 2 }),
    again: (h) => h.patch('t', [{ op: 'replace', path: '/n', value: 1 }]),
    expected: { n: 1 },
  },
  {
    name: 'patch of a path only Redis\'s newer state has',
    first: (h) => h.publish('t', { n: 1 }),
    other: (h) => h.publish('t', { n: 1, x: 2 }),
    again: (h) => h.patch('t', [{ op: 'remove', path: '/x' }]),
    expected: { n: 1 },
  },
];

for (const c of cases) {
  test(`${c.name} on a stale copy that equals the new value is made, not answered null`, { skip, timeout: TIMEOUT }, async (t) => {
    await withRedis(t, async ({ node }) => {
      const a = await node();
      const b = await node();
      const first = await c.first(a.hub);
      assert.deepEqual(first, { epoch: first.epoch, version: 1 });
      assert.deepEqual(await c.other(b.hub), { epoch: first.epoch, version: 2 });
      const changes = a.engine.stats().changes;
      assert.deepEqual(await c.again(a.hub), { epoch: first.epoch, version: 3 });
      assert.equal(a.engine.stats().changes, changes + 1);
      assert.deepEqual(a.hub.get('t'), { epoch: first.epoch, version: 3, data: c.expected });
      assert.deepEqual(await fresh(node, 't', 3), { epoch: first.epoch, version: 3, data: c.expected });
    });
  });
}

test('a topic another node deleted: a value equal to the stale copy makes it again, a remove finds it gone', { skip, timeout: TIMEOUT }, async (t) => {
  await withRedis(t, async ({ node, redis }) => {
    const a = await node();
    const b = await node();
    const first = await a.hub.publish('t', [{ id: 'a', n: 1 }]);
    assert.equal(await b.hub.delete('t'), true);
    const made = await a.hub.publish('t', [{ id: 'a', n: 1 }]);
    assert.equal(made.version, 1);
    assert.notEqual(made.epoch, first.epoch, 'a new epoch');
    assert.deepEqual(await fresh(node, 't', 1), { epoch: made.epoch, version: 1, data: [{ id: 'a', n: 1 }] });
    // deleted again: a's copy still holds the row; a remove of a row it lacks is on a topic that is gone
    assert.equal(await b.hub.delete('t'), true);
    await assert.rejects(a.hub.remove('t', 'zz'), { code: 'DELTACAST_NOT_KEYED_ARRAY' });
    assert.equal(a.hub.get('t'), undefined, "a's copy caught up: gone");
    assert.equal(await redis.exists('deltacast:{t}:s'), 0);
  });
});

test('a value equal to Redis\'s newer state, made from a stale copy, resolves null and the copy catches up', { skip, timeout: TIMEOUT }, async (t) => {
  await withRedis(t, async ({ node, redis }) => {
    const a = await node();
    const b = await node();
    const first = await a.hub.publish('t', { n: 1 });
    await b.hub.publish('t', { n: 2 });
    const before = a.engine.stats();
    // a's patch from its copy ({n:1} -> {n:2}) goes to CHANGE, which answers
    // stale; on Redis's state, read then, nothing changes
    assert.equal(await a.hub.publish('t', { n: 2 }, { id: 'e1' }), null);
    assert.equal(a.engine.stats().retries, before.retries + 1);
    assert.equal(a.engine.stats().changes, before.changes);
    assert.deepEqual(a.hub.get('t'), { epoch: first.epoch, version: 2, data: { n: 2 } });
    // the id of a change that changed nothing is not recorded
    assert.equal(await redis.exists('deltacast:{t}:id:e1'), 0);
    assert.deepEqual(await b.hub.publish('t', { n: 3 }, { id: 'e1' }), { epoch: first.epoch, version: 3 });
  });
});

test('an { id } on a change confirmed against Redis is recorded once it is made', { skip, timeout: TIMEOUT }, async (t) => {
  await withRedis(t, async ({ node, redis }) => {
    const a = await node();
    const b = await node();
    const first = await a.hub.publish('t', { n: 1 });
    await b.hub.publish('t', { n: 2 });
    assert.deepEqual(await a.hub.publish('t', { n: 1 }, { id: 'e2' }), { epoch: first.epoch, version: 3 });
    assert.equal(await redis.exists('deltacast:{t}:id:e2'), 1);
    assert.equal(await b.hub.publish('t', { n: 9 }, { id: 'e2' }), null, 'a repeated id, from the other node');
    assert.equal(await a.hub.publish('t', { n: 9 }, { id: 'e2' }), null, 'a repeated id, from the same node');
    assert.deepEqual((await fresh(node, 't', 3)).data, { n: 1 });
  });
});

test('an unchanged publish on a topic no client follows resolves null after one short read, without the CHANGE script', { skip, timeout: TIMEOUT }, async (t) => {
  await withRedis(t, async ({ node, redis }) => {
    const a = await node();
    const big = Array.from({ length: 2000 }, (_, i) => ({ id: i, label: `row ${i}` }));
    const first = await a.hub.publish('t', big);
    const before = { ...a.engine.stats(), fcall: await calls(redis, 'fcall'), evalsha: await calls(redis, 'evalsha') };
    const bytesBefore = Number(/total_net_output_bytes:(\d+)/.exec(await redis.info('stats'))[1]);
    assert.equal(await a.hub.publish('t', big), null);
    assert.equal(await a.hub.publish('t', big, { id: 'e3' }), null);
    const bytesAfter = Number(/total_net_output_bytes:(\d+)/.exec(await redis.info('stats'))[1]);
    const after = a.engine.stats();
    assert.equal(after.changes, before.changes, 'no change made');
    assert.equal(await calls(redis, 'fcall'), before.fcall, 'CHANGE did not run');
    assert.equal(after.repairs, before.repairs + 2, 'one confirmation read each');
    // the reads are EVALSHA of READ (the two `INFO` here add nothing to it)
    assert.equal(await calls(redis, 'evalsha'), before.evalsha + 2);
    // a copy that is Redis's reads a short reply, not the state (about 50 KB here)
    assert.ok(bytesAfter - bytesBefore < 8000, `${bytesAfter - bytesBefore} bytes out of Redis`);
    assert.equal(await redis.exists('deltacast:{t}:id:e3'), 0);
    assert.deepEqual(a.hub.get('t'), { epoch: first.epoch, version: 1, data: big });
  });
});

test('a followed topic decides on its copy: no round trip for an unchanged value, none before a change', { skip, timeout: TIMEOUT }, async (t) => {
  await withRedis(t, async ({ node, redis }) => {
    const { a, b, first, replica } = await followedPair(node);
    let before = { ...a.engine.stats(), fcall: await calls(redis, 'fcall'), evalsha: await calls(redis, 'evalsha') };
    assert.equal(await a.hub.publish('t', { n: 1 }), null);
    assert.equal(await a.hub.patch('t', [{ op: 'replace', path: '/n', value: 1 }]), null);
    assert.equal(a.engine.stats().repairs, before.repairs, 'no read');
    assert.equal(await calls(redis, 'fcall'), before.fcall);
    assert.equal(await calls(redis, 'evalsha'), before.evalsha);
    // b's change reaches a's copy by notification; a's next change goes straight to CHANGE
    await b.hub.publish('t', { n: 2 });
    await until(() => a.hub.get('t')?.version === 2, 10000, "a's copy at 2");
    before = { ...a.engine.stats(), evalsha: await calls(redis, 'evalsha') };
    assert.deepEqual(await a.hub.publish('t', { n: 1 }), { epoch: first.epoch, version: 3 });
    assert.equal(a.engine.stats().repairs, before.repairs, 'no read');
    assert.equal(a.engine.stats().retries, before.retries, 'no stale base');
    assert.equal(await calls(redis, 'evalsha'), before.evalsha);
    await until(() => replica.get('t')?.version === 3, 10000, 'the client at 3');
    assert.deepEqual(replica.get('t').data, { n: 1 });
  });
});

test('a followed topic whose notifications are cut (subscriber reconnecting) is confirmed against Redis', { skip, timeout: TIMEOUT }, async (t) => {
  await withRedis(t, async ({ node, redis }) => {
    const { a, b, first, replica } = await followedPair(node);
    // new connections refused: a's subscriber, killed, stays down until this is undone
    const maxclients = (await redis.configGet('maxclients')).maxclients;
    await redis.configSet('maxclients', '1');
    t.after(() => redis.configSet('maxclients', maxclients).catch(() => {}));
    assert.ok(Number(await redis.sendCommand(['CLIENT', 'KILL', 'TYPE', 'pubsub'])) >= 1);
    await b.hub.publish('t', { n: 2 }); // a hears nothing of it
    assert.equal(a.hub.get('t').version, 1);
    assert.deepEqual(await a.hub.publish('t', { n: 1 }), { epoch: first.epoch, version: 3 });
    await redis.configSet('maxclients', maxclients);
    await until(() => replica.get('t')?.version === 3, 10000, 'the client at 3 once a resubscribed');
    assert.deepEqual(replica.get('t').data, { n: 1 });
    assert.deepEqual(await fresh(node, 't', 3), { epoch: first.epoch, version: 3, data: { n: 1 } });
  });
});
