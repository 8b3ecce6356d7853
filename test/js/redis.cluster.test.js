'use strict';
// deltacast/redis on a 3-master Redis Cluster on loopback: keys in one slot
// per topic, notifications over sharded pub/sub, a topic's slot resharded.

const test = require('node:test');
const assert = require('node:assert/strict');
const { createCluster } = require('redis');

const { createHub } = require('../../lib/index.js');
const { redisEngine } = require('../../lib/redis.js');
const { redisMissing, startCluster, cli, until } = require('./redis.helpers.js');
const { Replica } = require('./adapter.helpers.js');

const skip = redisMissing();

function clusterClient(cluster, defaults = {}) {
  const client = createCluster({ rootNodes: cluster.nodes.map((n) => ({ url: n.url })), defaults });
  client.on('error', () => {});
  return client;
}

/** Moves `slot` from the master holding it to another one, keys and all. */
function reshard(cluster, slot) {
  const ids = new Map(cluster.nodes.map((n) => [n.port, cli(n.port, 'cluster', 'myid')]));
  const owner = cluster.nodes.find((n) => {
    const slots = cli(n.port, 'cluster', 'countkeysinslot', String(slot));
    const info = cli(n.port, 'cluster', 'nodes');
    return slots !== undefined && info.split('\n').some((line) => line.startsWith(ids.get(n.port)) && ownsSlot(line, slot));
  });
  const target = cluster.nodes.find((n) => n !== owner);
  cli(target.port, 'cluster', 'setslot', String(slot), 'importing', ids.get(owner.port));
  cli(owner.port, 'cluster', 'setslot', String(slot), 'migrating', ids.get(target.port));
  const keys = cli(owner.port, 'cluster', 'getkeysinslot', String(slot), '1000').split('\n').filter(Boolean);
  if (keys.length > 0) cli(owner.port, 'migrate', '127.0.0.1', String(target.port), '', '0', '5000', 'keys', ...keys);
  for (const n of cluster.nodes) cli(n.port, 'cluster', 'setslot', String(slot), 'node', ids.get(target.port));
  return { from: owner.port, to: target.port, keys };
}

/**
 * A 3-master cluster for the test (stopped after it) and makeNode(engineOptions, clientDefaults):
 * a hub on its own cluster client and engine, unpaced (normal lane sent at once).
 */
async function clusterNodes(t) {
  const cluster = await startCluster(3);
  const clients = [];
  const hubs = [];
  t.after(async () => {
    for (const hub of hubs) await hub.close();
    for (const c of clients) await c.close().catch(() => {});
    await cluster.stop();
  });
  const makeNode = async (options = {}, defaults = {}) => {
    const client = clusterClient(cluster, defaults);
    clients.push(client);
    await client.connect();
    const engine = redisEngine({ client, ...options });
    const hub = createHub({ engine, pacing: { normalDebounceMs: 0, normalMaxWaitMs: 0 } });
    hubs.push(hub);
    await engine.ready();
    return { hub, engine };
  };
  return { cluster, makeNode };
}

function ownsSlot(line, slot) {
  return line
    .split(' ')
    .slice(8)
    .some((range) => {
      const [lo, hi] = range.split('-').map(Number);
      return slot >= lo && slot <= (hi ?? lo);
    });
}

test('on a 3-master cluster: one slot per topic, sharded notifications, a resharded slot survived', { skip, timeout: 120000 }, async (t) => {
  const { cluster, makeNode } = await clusterNodes(t);
  const a = await makeNode();
  const b = await makeNode();
  const topics = ['prices', 'orders', 'news:1', 'news:2'];
  for (const topic of topics) await a.hub.publish(topic, { n: 0, topic });
  // every key of a topic in one slot; the topics spread over the masters
  const port = cluster.nodes[0].port;
  const slots = topics.map((topic) => {
    const keys = ['s', 'x', 'id:e'].map((p) => `deltacast:{${topic}}:${p}`).concat(`deltacast:{${topic}}`);
    const each = new Set(keys.map((k) => cli(port, 'cluster', 'keyslot', k)));
    assert.equal(each.size, 1, `${topic}: one slot`);
    return Number([...each][0]);
  });
  const replica = new Replica();
  const connection = b.hub.connect({ send: (frame) => replica.handle(frame) });
  for (const topic of topics) connection.receive(JSON.stringify({ t: 'sub', topic }));
  await until(() => topics.every((topic) => replica.get(topic)?.version === 1), 10000, 'the snapshots on b');
  for (const topic of topics) await a.hub.publish(topic, { n: 1, topic });
  await until(() => topics.every((topic) => replica.get(topic)?.version === 2), 10000, 'sharded notifications on b');
  // Names with `}` (percent-encoded in the tag): one slot each, no CROSSSLOT.
  for (const topic of ['}x', '}', '}{x}', '100%']) {
    const answer = await a.hub.publish(topic, { topic });
    assert.equal(answer?.version, 1, `${topic}: ${JSON.stringify(answer)}`);
    const tag = topic.replace(/%/g, '%25').replace(/\}/g, '%7D');
    const keys = ['s', 'x'].map((p) => `deltacast:{${tag}}:${p}`);
    assert.equal(new Set(keys.map((k) => cli(port, 'cluster', 'keyslot', k))).size, 1, topic);
    assert.equal(cli(port, '-c', 'hexists', keys[0], 'e'), '1', `${topic}: its state is where its tag says`);
  }
  const numsub = cli(port, 'pubsub', 'shardnumsub', 'deltacast:{prices}');
  assert.match(numsub, /deltacast:\{prices\}/);

  // the slot of 'prices' moves to another master, its keys with it
  const moved = reshard(cluster, slots[0]);
  assert.ok(moved.keys.length >= 2, `the keys moved (${moved.keys})`);
  const deadline = Date.now() + 20000;
  let n = 2;
  // changes go on; b follows them (resubscribed on the new master, gaps repaired)
  while (Date.now() < deadline) {
    try {
      await a.hub.publish('prices', { n: n, topic: 'prices' });
      n += 1;
    } catch {
      // a change that met the move: retried
    }
    if (replica.get('prices')?.data.n >= 5) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  await until(() => replica.get('prices')?.data.n === n - 1, 20000, "b follows 'prices' after the move");
  assert.equal(b.hub.get('prices').version, a.hub.get('prices').version);
  assert.equal(replica.gaps, 0);

  // compressed states on the cluster: a node with a window of 5 patches sends its state every 5th change
  const c = await makeNode({ streamMaxCount: 5 });
  for (let i = 2; i < 14; i++) await c.hub.publish('orders', { n: i, topic: 'orders', rows: Array.from({ length: 50 }, (_, j) => ({ id: j, v: i * j })) });
  assert.ok(c.engine.stats().compactions >= 2, `${c.engine.stats().compactions} compactions`);
  const d = await makeNode();
  const late = new Replica();
  d.hub.connect({ send: (frame) => late.handle(frame) }).receive(JSON.stringify({ t: 'sub', topic: 'orders' }));
  await until(() => late.get('orders')?.version === 14, 10000, "a fresh node loads 'orders' from its compressed state");
  assert.equal(d.hub.getJson('orders').json, c.hub.getJson('orders').json);
  await until(() => replica.get('orders')?.version === 14, 10000, "b follows 'orders'");
  assert.equal(b.hub.getJson('orders').json, c.hub.getJson('orders').json);
});

test('on a cluster, a shard subscriber that reconnects reads again what it followed (a change made meanwhile is not lost)', { skip, timeout: 120000 }, async (t) => {
  const { cluster, makeNode } = await clusterNodes(t);
  // b's connections come back 700 ms after they drop: a change made in between is published while b is away
  const a = await makeNode();
  const b = await makeNode({}, { socket: { reconnectStrategy: () => 700 } });
  const topics = ['quiet', 'calm', 'still'];
  for (const topic of topics) await a.hub.publish(topic, { n: 1 });
  const replica = new Replica();
  const connection = b.hub.connect({ send: (frame) => replica.handle(frame) });
  for (const topic of topics) connection.receive(JSON.stringify({ t: 'sub', topic }));
  await until(() => topics.every((topic) => replica.get(topic)?.version === 1), 10000, 'the snapshots on b');
  // every subscriber connection on every master dropped (b's are the only ones)
  for (const node of cluster.nodes) cli(node.port, 'client', 'kill', 'type', 'pubsub');
  for (const topic of topics) await a.hub.publish(topic, { n: 2 });
  // no later change: only reading the topics again after the reconnection brings b to version 2
  await until(() => topics.every((topic) => replica.get(topic)?.version === 2), 20000, 'b current again');
  for (const topic of topics) assert.deepEqual(replica.get(topic).data, { n: 2 });
  for (const topic of topics) assert.equal(b.hub.getJson(topic).json, a.hub.getJson(topic).json);
});

test('on a cluster, a shard subscriber that reconnects reads again only the topics whose slots that shard serves', { skip, timeout: 120000 }, async (t) => {
  const { cluster, makeNode } = await clusterNodes(t);
  const a = await makeNode();
  const b = await makeNode({}, { socket: { reconnectStrategy: () => 700 } });
  // Names whose channels spread over the three masters, some of them with
  // characters the slot's CRC16 reads as UTF-8 or the hash tag encodes.
  const topics = Array.from({ length: 12 }, (_, i) => (i % 3 === 0 ? `ä-${i}` : i % 3 === 1 ? `t%}${i}` : `board/${i}`));
  const slot = (topic) => Number(cli(cluster.nodes[0].port, 'cluster', 'keyslot', `deltacast:{${topic.replace(/%/g, '%25').replace(/\}/g, '%7D')}}`));
  const ids = new Map(cluster.nodes.map((n) => [n.port, cli(n.port, 'cluster', 'myid')]));
  const ownerOf = (topic) =>
    cluster.nodes.find((n) => cli(n.port, 'cluster', 'nodes').split('\n').some((line) => line.startsWith(ids.get(n.port)) && ownsSlot(line, slot(topic))));
  const owners = new Map(topics.map((topic) => [topic, ownerOf(topic)]));
  const shard = cluster.nodes.find((n) => [...owners.values()].filter((o) => o === n).length >= 2);
  assert.ok(shard, 'a master serving at least two of the topics');
  const onShard = topics.filter((topic) => owners.get(topic) === shard);
  assert.ok(onShard.length < topics.length, 'and topics on the other masters');
  for (const topic of topics) await a.hub.publish(topic, { n: 1 });
  const replica = new Replica();
  const connection = b.hub.connect({ send: (frame) => replica.handle(frame) });
  for (const topic of topics) connection.receive(JSON.stringify({ t: 'sub', topic }));
  await until(() => topics.every((topic) => replica.get(topic)?.version === 1), 10000, 'the snapshots on b');
  const repairs = b.engine.stats().repairs;
  // b's subscriber connection on that master drops; those on the others stay
  cli(shard.port, 'client', 'kill', 'type', 'pubsub');
  for (const topic of topics) await a.hub.publish(topic, { n: 2 });
  await until(() => topics.every((topic) => replica.get(topic)?.version === 2), 20000, 'b current again');
  await new Promise((resolve) => setTimeout(resolve, 1500)); // the reconnection (700 ms) and any reads it makes
  assert.equal(b.engine.stats().repairs - repairs, onShard.length, `read again: the ${onShard.length} topics of the master that dropped, no others`);
  for (const topic of topics) assert.equal(b.hub.getJson(topic).json, a.hub.getJson(topic).json);
});
