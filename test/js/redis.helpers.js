'use strict';
// Real redis-server processes for the deltacast/redis tests: each on a free
// loopback port, no persistence, stopped by the test that started it.

const { spawn, spawnSync } = require('node:child_process');
const net = require('node:net');

// Redis's own programs run without the sanitizer runtime the ASan test run
// preloads into node (LD_PRELOAD is inherited): they are not what is tested,
// and an interposed allocator under redis-server is one more way to fail.
const env = { ...process.env };
delete env.LD_PRELOAD;
delete env.ASAN_OPTIONS;
delete env.UBSAN_OPTIONS;

/** Why the Redis tests cannot run here, or undefined (redis-server is on PATH). */
function redisMissing() {
  const r = spawnSync('redis-server', ['--version'], { encoding: 'utf8', timeout: 30000, env });
  if (r.error) return 'redis-server is not installed (bash scripts/setup-system.sh installs it): the Redis tests are skipped';
  const c = spawnSync('redis-cli', ['--version'], { encoding: 'utf8', timeout: 30000, env });
  if (c.error) return 'redis-cli is not installed (Debian: redis-tools, with redis-server): the Redis tests are skipped';
  return undefined;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Starts redis-server on `port` and resolves once it accepts connections. */
function launch(port, extra = []) {
  return new Promise((resolve, reject) => {
    const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...extra], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env,
    });
    let output = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`redis-server on port ${port} did not start:\n${output}`));
    }, 10000);
    child.stdout.on('data', (chunk) => {
      output += chunk;
      if (output.includes('Ready to accept connections')) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-server on port ${port} exited with ${code}:\n${output}`));
    });
  });
}

function stopChild(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

/** A redis-server on a free loopback port: { port, url, stop(), restart() }. */
async function startRedis(extra = []) {
  const port = await freePort();
  let child = await launch(port, extra);
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    /** Kills it (SIGKILL: what a crash looks like to the clients). */
    async stop() {
      await stopChild(child);
    },
    /** Kills it and starts a new one, empty, on the same port. */
    async restart() {
      await stopChild(child);
      child = await launch(port, extra);
    },
    async start() {
      child = await launch(port, extra);
    },
  };
}

/**
 * A Redis Cluster of `masters` masters on loopback: { nodes: [{ port, url }], stop() }.
 */
async function startCluster(masters = 3) {
  const nodes = [];
  try {
    for (let i = 0; i < masters; i++) {
      const port = await freePort();
      const dir = require('node:fs').mkdtempSync(require('node:path').join(require('node:os').tmpdir(), 'deltacast-cluster-'));
      const child = await launch(port, ['--cluster-enabled', 'yes', '--cluster-config-file', `${dir}/nodes.conf`, '--dir', dir]);
      nodes.push({ port, url: `redis://127.0.0.1:${port}`, child, dir });
    }
    const create = spawnSync('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-yes'], {
      encoding: 'utf8',
      timeout: 30000,
      env,
    });
    if (create.status !== 0) throw new Error(`redis-cli --cluster create failed:\n${create.stdout}${create.stderr}`);
    // Wait until every node agrees the cluster is up.
    for (let tries = 0; ; tries++) {
      const states = nodes.map((n) => spawnSync('redis-cli', ['-p', String(n.port), 'cluster', 'info'], { encoding: 'utf8', timeout: 30000, env }).stdout);
      if (states.every((s) => s.includes('cluster_state:ok'))) break;
      if (tries > 100) throw new Error('the cluster did not reach cluster_state:ok');
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (err) {
    for (const node of nodes) await stopChild(node.child);
    throw err;
  }
  return {
    nodes,
    async stop() {
      for (const node of nodes) await stopChild(node.child);
      for (const node of nodes) require('node:fs').rmSync(node.dir, { recursive: true, force: true });
    },
  };
}

/** redis-cli against a port: its stdout, trimmed. */
function cli(port, ...args) {
  const r = spawnSync('redis-cli', ['-p', String(port), ...args], { encoding: 'utf8', timeout: 30000, env });
  if (r.status !== 0) throw new Error(`redis-cli ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
}

/** Polls `check` until it returns truthy (or throws after `ms`). */
async function until(check, ms = 5000, what = 'the condition') {
  const end = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * Runs `body({ server, redis, track, node })` against a fresh redis-server:
 * `redis` is a node-redis client on it; `node(engineOptions?, hubOptions?)`
 * makes a hub on its own engine (ready) and `track({ hub })` adopts one made
 * otherwise. After the test: every such hub is closed, then the client, then
 * the server.
 */
async function withRedis(t, body) {
  const { createClient } = require('redis');
  const { createHub } = require('../../lib/index.js');
  const { redisEngine } = require('../../lib/redis.js');
  const server = await startRedis();
  const redis = createClient({ url: server.url });
  redis.on('error', () => {});
  await redis.connect();
  const hubs = [];
  t.after(async () => {
    for (const hub of hubs) await hub.close();
    await redis.close().catch(() => {});
    await server.stop();
  });
  const track = (n) => (hubs.push(n.hub), n);
  const node = async (engineOptions = {}, hubOptions = {}) => {
    const engine = redisEngine({ url: server.url, ...engineOptions });
    const hub = createHub({ engine, ...hubOptions });
    hubs.push(hub);
    await engine.ready();
    return { hub, engine };
  };
  await body({ server, redis, track, node });
}

module.exports = { redisMissing, startRedis, startCluster, cli, until, freePort, withRedis };
