'use strict';
// The Redis examples run as a newcomer would run them: examples/cluster (it
// starts its own redis-server), and the README's one-node program (node.mjs,
// in "deltacast/redis") saved as a file of a project that depends on deltacast,
// started as two processes on one redis-server, with a client on each.

const test = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync, spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { WebSocket } = require('ws');
const { createClient } = require('deltacast/client');
const { redisMissing, startRedis, until } = require('./redis.helpers.js');

const root = path.resolve(__dirname, '..', '..');

test('examples/cluster/run.js: 3 nodes, round-robin clients, every client ends equal to Redis', { skip: redisMissing(), timeout: 90000 }, () => {
  const out = execFileSync(process.execPath, ['examples/cluster/run.js', '--nodes=3', '--clients=6', '--seconds=1'], {
    cwd: root,
    encoding: 'utf8',
    timeout: 80000,
  });
  const lines = out.split('\n').filter((line) => /^client \d+ on node n\d/.test(line));
  assert.equal(lines.length, 6, out);
  for (const [i, line] of lines.entries()) {
    assert.match(line, new RegExp(`^client ${i} on node n${i % 3}: `));
    assert.match(line, /gaps 0: equal to Redis$/);
  }
  const [, a, b, c] = out.match(/changes made by each node: (\d+), (\d+), (\d+)/);
  assert.ok(Number(a) > 0 && Number(b) > 0 && Number(c) > 0, 'every node published');
  assert.match(out, /all 6 clients equal Redis at version \d+/);
});

/** The README's ```js block that begins with `firstLine`, as written. */
function readmeBlock(firstLine) {
  const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
  const blocks = [...readme.matchAll(/^```js\n([\s\S]*?)^```$/gm)].map((m) => m[1]);
  const found = blocks.filter((code) => code.startsWith(firstLine));
  assert.equal(found.length, 1, `one README example begins with ${firstLine}`);
  return found[0];
}

/** A project holding `file` (text) with deltacast and ws installed (links to this package and its ws). */
function project(t, file, text) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'deltacast-readme-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.mkdirSync(path.join(dir, 'node_modules'));
  fs.symlinkSync(root, path.join(dir, 'node_modules', 'deltacast'), 'dir');
  fs.symlinkSync(fs.realpathSync(path.join(root, 'node_modules', 'ws')), path.join(dir, 'node_modules', 'ws'), 'dir');
  fs.writeFileSync(path.join(dir, file), text);
  return dir;
}

/**
 * `node node.mjs` in `dir` with `env`: { child, name, port, exited } once it
 * prints its `<name>: serving ws://localhost:<port>` line. Killed after the test.
 */
async function startNode(t, dir, env) {
  const child = spawn(process.execPath, ['node.mjs'], { cwd: dir, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let out = '';
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal, out })));
  child.stdout.on('data', (chunk) => (out += chunk));
  child.stderr.on('data', (chunk) => (out += chunk));
  const serving = await Promise.race([
    until(() => out.match(/^(\S+): serving ws:\/\/localhost:(\d+)$/m), 20000, 'the node to serve'),
    exited.then(({ code }) => {
      throw new Error(`node.mjs exited with ${code} before serving:\n${out}`);
    }),
  ]);
  return { child, name: serving[1], port: Number(serving[2]), exited };
}

/** How a node's process ended: { code, signal, out }; throws if it is still running after `ms`. */
function exitOf(node, ms = 10000) {
  let timer;
  const late = new Promise((resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`node.mjs did not exit within ${ms} ms of SIGTERM`)), ms);
  });
  return Promise.race([node.exited, late]).finally(() => clearTimeout(timer));
}

/** A deltacast/client on a node, following `nodes`: { client, ids(), statuses }. */
function follow(t, port) {
  const client = createClient({ url: `ws://127.0.0.1:${port}`, WebSocket });
  t.after(() => client.close());
  let rows;
  client.subscribe('nodes', (data) => (rows = data));
  const statuses = [];
  client.on('status', (status, info) => statuses.push([status, info.code]));
  return { client, statuses, ids: () => (rows === undefined ? undefined : rows.map((row) => row.id).sort().join(' ')) };
}

test("README's node.mjs (deltacast/redis with deltacast/ws): two processes on one Redis, a client on each", { skip: redisMissing(), timeout: 60000 }, async (t) => {
  const redis = await startRedis();
  t.after(() => redis.stop());
  const dir = project(t, 'node.mjs', readmeBlock('// node.mjs: one hub process.'));
  const env = { REDIS_URL: redis.url, PORT: '0' };

  const a = await startNode(t, dir, env);
  assert.equal(a.name, `${os.hostname()}:${a.port}`);
  const onA = follow(t, a.port);
  await until(() => onA.ids() === a.name, 10000, "node a's row on a's client");

  // b's row reaches a's client: b made the change, Redis ordered it, a delivered it
  const b = await startNode(t, dir, env);
  assert.notEqual(b.port, a.port);
  const both = [a.name, b.name].sort().join(' ');
  await until(() => onA.ids() === both, 10000, "node b's row on a's client");
  const onB = follow(t, b.port);
  await until(() => onB.ids() === both, 10000, 'both rows on b\'s client');
  assert.deepEqual(onA.client.get('nodes'), onB.client.get('nodes'), 'one state, one version, on both nodes');

  // SIGTERM: a removes its row, closes its clients with 1001 and exits
  a.child.kill('SIGTERM');
  const gone = await exitOf(a);
  assert.equal(gone.code, 0, gone.out);
  await until(() => onB.ids() === b.name, 10000, "a's row gone from b's client");
  await until(() => onA.statuses.some(([status, code]) => status === 'reconnecting' && code === 1001), 10000, "a's client told to come back (1001)");
  onA.client.close();

  b.child.kill('SIGTERM');
  const last = await exitOf(b);
  assert.equal(last.code, 0, last.out);
});
