'use strict';
// Three hub processes on one Redis, clients spread across them, random
// publishes from every node; a node killed and restarted mid-run, Redis
// restarted once, clients reconnecting to other nodes. At the end every
// replica equals Redis's state, and no client applied a version step twice or
// skipped one without a resync (a snapshot).

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const readline = require('node:readline');
const { spawn } = require('node:child_process');
const { WebSocket } = require('ws');
const zlib = require('node:zlib');
const { createClient, RESP_TYPES } = require('redis');

const { applyPatch } = require('../../lib/index.js');
const { redisMissing, startRedis, freePort, until } = require('./redis.helpers.js');

const skip = redisMissing();
const TOPICS = ['board:a', 'board:b', 'board:c'];
const NODE = path.join(__dirname, 'redis.process.helpers.js');

/** A hub process: { port, send(command) -> Promise<reply>, kill() }. */
async function startNode(url, port, name) {
  const child = spawn(process.execPath, [NODE, JSON.stringify({ url, port, name })], { stdio: ['pipe', 'pipe', 'inherit'] });
  const waiting = [];
  readline.createInterface({ input: child.stdout }).on('line', (line) => {
    const message = JSON.parse(line);
    const at = waiting.findIndex((w) => w.reply === message.reply);
    if (at >= 0) waiting.splice(at, 1)[0].resolve(message);
  });
  const expect = (reply, ms = 30000) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`node ${name}: no '${reply}' within ${ms} ms`)), ms);
      const exited = () => {
        clearTimeout(timer);
        reject(new Error(`node ${name} exited before '${reply}'`));
      };
      child.once('exit', exited);
      waiting.push({
        reply,
        resolve: (m) => {
          clearTimeout(timer);
          child.off('exit', exited);
          resolve(m);
        },
      });
    });
  const ready = await expect('ready');
  return {
    name,
    port: ready.port,
    child,
    command(command, reply = command.cmd) {
      const answer = expect(reply, 60000);
      child.stdin.write(`${JSON.stringify(command)}\n`);
      return answer;
    },
    kill() {
      return new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      });
    },
  };
}

/**
 * A client that follows every topic, checks each step it applies, and moves
 * to another node when its connection drops (resuming from what it holds).
 */
class Client {
  held = new Map(); // topic -> { epoch, version, data }
  violations = [];
  snaps = 0;
  patches = 0;
  moves = 0;
  #closed = false;

  constructor(ports, first) {
    this.ports = ports; // a function: the current ports of the nodes
    this.at = first;
  }

  connect() {
    if (this.#closed) return;
    const port = this.ports()[this.at % this.ports().length];
    const ws = new WebSocket(`ws://127.0.0.1:${port}`);
    this.ws = ws;
    ws.on('open', () => {
      for (const topic of TOPICS) {
        const h = this.held.get(topic);
        ws.send(JSON.stringify(h ? { t: 'sub', topic, epoch: h.epoch, version: h.version } : { t: 'sub', topic }));
      }
    });
    ws.on('message', (data) => this.#handle(JSON.parse(String(data))));
    ws.on('error', () => {});
    ws.on('close', () => {
      if (this.#closed) return;
      this.moves += 1;
      this.at += 1; // another node
      setTimeout(() => this.connect(), 20);
    });
  }

  #handle(message) {
    if (message.t === 'batch') {
      for (const item of message.items) this.#handle(item);
      return;
    }
    const h = this.held.get(message.topic);
    if (message.t === 'snap') {
      // a resync: allowed at any time, but never back in the same epoch
      if (h && h.epoch === message.epoch && message.version < h.version) {
        this.violations.push(`snap back from ${h.version} to ${message.version} on ${message.topic}`);
      }
      this.snaps += 1;
      this.held.set(message.topic, { epoch: message.epoch, version: message.version, data: message.data });
    } else if (message.t === 'patch') {
      if (!h || h.epoch !== message.epoch || h.version !== message.from) {
        this.violations.push(`patch ${message.from}->${message.to} on ${message.topic} held ${h?.epoch}:${h?.version}`);
        return;
      }
      this.patches += 1;
      this.held.set(message.topic, { epoch: message.epoch, version: message.to, data: applyPatch(h.data, message.ops) });
    }
    if (message.t === 'snap' || message.t === 'patch') {
      this.ws?.send(JSON.stringify({ t: 'ack', topic: message.topic, version: this.held.get(message.topic).version }));
    }
  }

  close() {
    this.#closed = true;
    this.ws?.close();
  }
}

test('three hub processes on one Redis: a node and Redis restarted mid-run, every replica ends equal to Redis', { skip, timeout: 180000 }, async (t) => {
  const redisServer = await startRedis();
  const redis = createClient({ url: redisServer.url });
  redis.on('error', () => {});
  await redis.connect();
  const nodes = [];
  const clients = [];
  t.after(async () => {
    for (const c of clients) c.close();
    for (const n of nodes) await n.kill();
    await redis.close().catch(() => {});
    await redisServer.stop();
  });
  const ports = [await freePort(), await freePort(), await freePort()];
  for (let i = 0; i < 3; i++) nodes.push(await startNode(redisServer.url, ports[i], `n${i}`));
  const livePorts = () => ports;
  for (let i = 0; i < 9; i++) {
    const client = new Client(livePorts, i % 3);
    clients.push(client);
    client.connect();
  }
  const publish = { cmd: 'publish', topics: TOPICS, rows: 30, count: 120, pauseMs: 3 };
  const runs = nodes.map((n) => n.command(publish).catch((err) => ({ died: err.message })));
  // mid-run: node 1 is killed (its clients move), then restarted; Redis restarts once
  await new Promise((r) => setTimeout(r, 150));
  await nodes[1].kill();
  await new Promise((r) => setTimeout(r, 150));
  nodes[1] = await startNode(redisServer.url, ports[1], 'n1-again');
  const rerun = nodes[1].command(publish);
  await new Promise((r) => setTimeout(r, 100));
  await redisServer.stop();
  await new Promise((r) => setTimeout(r, 200));
  await redisServer.start();
  const results = [...(await Promise.all(runs)), await rerun];
  const ok = results.reduce((sum, r) => sum + (r.ok ?? 0), 0);
  assert.ok(ok > 100, `changes went through (${JSON.stringify(results)})`);
  for (const r of results) assert.deepEqual(r.other ?? [], [], 'no error other than unavailable or conflict');
  assert.ok(results.some((r) => r.unavailable > 0), 'some changes met Redis down');
  // one more round after everything is back, so every topic exists in the restarted Redis
  await until(() => redis.isReady, 20000, 'the test client reconnected');
  // (rounds until each topic has a version in it: the nodes' own Redis
  // connections may come back a little after the test's, and a round picks
  // topics at random)
  const deadline = Date.now() + 30000;
  for (;;) {
    await Promise.all(nodes.map((n) => n.command({ ...publish, count: 30 })));
    const present = await Promise.all(TOPICS.map((topic) => redis.hGet(`deltacast:{${topic}}:s`, 'e')));
    if (present.every((e) => e !== null)) break;
    assert.ok(Date.now() < deadline, `every topic is in Redis within 30 s (missing: ${TOPICS.filter((_, i) => present[i] === null)})`);
    await new Promise((r) => setTimeout(r, 100));
  }

  // quiesce: every node and every client at Redis's version of every topic
  const inRedis = async () => {
    const out = {};
    for (const topic of TOPICS) {
      // the state Redis holds (at sv) with its stream's patches since then applied
      const [epoch, version, , sv] = await redis.hmGet(`deltacast:{${topic}}:s`, ['e', 'v', 's', 'sv']);
      if (epoch === null) continue;
      // a compacted state is `~` and its Brotli compression (binary), a created one JSON text
      const stored = await redis.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer }).hGet(`deltacast:{${topic}}:s`, 's');
      let data = JSON.parse(stored[0] === 0x7e ? String(zlib.brotliDecompressSync(stored.subarray(1))) : String(stored));
      const patches = await redis.xRange(`deltacast:{${topic}}:x`, `${Number(sv) + 1}-0`, '+');
      assert.equal(patches.length, Number(version) - Number(sv), 'the stream holds every patch since the state');
      for (const entry of patches) data = applyPatch(data, JSON.parse(entry.message.p));
      out[topic] = { epoch, version: Number(version), data };
    }
    return out;
  };
  // and one fresh client on each node, so that each node follows every topic
  for (let i = 0; i < 3; i++) {
    const client = new Client(livePorts, i);
    clients.push(client);
    client.connect();
  }
  const truth = await inRedis();
  for (const topic of TOPICS) assert.ok(truth[topic], `${topic} is in Redis`);
  await until(
    () => clients.every((c) => TOPICS.every((topic) => c.held.get(topic)?.version === truth[topic].version && c.held.get(topic)?.epoch === truth[topic].epoch)),
    30000,
    'every client at Redis versions',
  );
  for (const client of clients) {
    assert.deepEqual(client.violations, [], 'no step applied twice or skipped without a snapshot');
    for (const topic of TOPICS) assert.deepEqual(client.held.get(topic), truth[topic], `a client's ${topic}`);
  }
  for (const node of nodes) {
    const { state } = await node.command({ cmd: 'state', topics: TOPICS });
    for (const topic of TOPICS) assert.deepEqual(state[topic], truth[topic], `node ${node.name}'s ${topic}`);
  }
  assert.ok(clients.some((c) => c.moves > 0), 'clients moved to other nodes');
  assert.ok(clients.reduce((s, c) => s + c.patches, 0) > clients.reduce((s, c) => s + c.snaps, 0), 'mostly patches');
  assert.deepEqual(await inRedis(), truth, 'Redis did not move meanwhile');
});
