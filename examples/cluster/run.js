'use strict';
// N hub processes on one Redis and a round-robin set of clients: each node
// ticks 1% of a shared 1,000-row board every 20 ms; every client, whichever
// node it is on, ends with Redis's state.
//
//   node examples/cluster/run.js [--nodes=3] [--clients=6] [--seconds=3] [--redis=redis://host:port]
//
// Without --redis it starts a redis-server (Debian's package) on a free
// loopback port and stops it at the end. Exits 1 if a client differs.

const path = require('node:path');
const net = require('node:net');
const readline = require('node:readline');
const { spawn } = require('node:child_process');
const { WebSocket } = require('ws');
const { createClient } = require('redis');
const { ProtocolClient } = require('../../lib/protocol_client.js');
const { applyPatch } = require('../../lib/index.js');

const args = Object.fromEntries(
  process.argv.slice(2).map((a) => {
    const [k, v] = a.replace(/^--/, '').split('=');
    return [k, v ?? true];
  }),
);
const NODES = Number(args.nodes ?? 3);
const CLIENTS = Number(args.clients ?? 6);
const SECONDS = Number(args.seconds ?? 3);
const children = [];

function freePort() {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Spawns a program and resolves with the first stdout line matching `ready`. */
function start(command, argv, ready) {
  const child = spawn(command, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const lines = readline.createInterface({ input: child.stdout });
  return new Promise((resolve, reject) => {
    lines.on('line', (line) => {
      const match = line.match(ready);
      if (match) resolve({ child, match, lines });
      else if (command === process.execPath) console.log(`  [node] ${line}`);
    });
    child.once('exit', (code) => reject(new Error(`${command} exited with ${code}`)));
  });
}

async function main() {
  let url = args.redis;
  if (url === undefined) {
    const port = await freePort();
    await start('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], /Ready to accept connections/);
    url = `redis://127.0.0.1:${port}`;
    console.log(`redis-server on ${url}`);
  }
  const nodes = [];
  for (let i = 0; i < NODES; i++) {
    const argv = [path.join(__dirname, 'node.js'), `--redis=${url}`, '--port=0', `--name=n${i}`, `--seconds=${SECONDS}`];
    if (i === 0) argv.push('--seed'); // the first node publishes the board; the others tick it
    const node = await start(process.execPath, argv, /^listening (\d+)$/);
    node.port = Number(node.match[1]);
    node.done = new Promise((resolve) => node.lines.on('line', (line) => line.startsWith('done ') && resolve(Number(line.slice(5)))));
    nodes.push(node);
    console.log(`node n${i} on ws://127.0.0.1:${node.port}`);
  }
  const clients = [];
  for (let i = 0; i < CLIENTS; i++) {
    const node = i % NODES; // round robin
    const ws = new WebSocket(`ws://127.0.0.1:${nodes[node].port}`);
    const client = new ProtocolClient({ send: (text) => ws.send(text) });
    let bytes = 0;
    ws.on('message', (data) => {
      bytes += data.length;
      client.receive(String(data));
    });
    await new Promise((resolve) => ws.once('open', resolve));
    client.subscribe('board');
    clients.push({ ws, client, node, bytes: () => bytes });
  }
  const changes = await Promise.all(nodes.map((n) => n.done));
  console.log(`changes made by each node: ${changes.join(', ')}`);
  const redis = createClient({ url });
  await redis.connect();
  // Redis's board: the state it holds (at version sv) with the patches of its stream since then
  const [epoch, version, state, sv] = await redis.hmGet('deltacast:{board}:s', ['e', 'v', 's', 'sv']);
  let board = JSON.parse(state);
  for (const entry of await redis.xRange('deltacast:{board}:x', `${Number(sv) + 1}-0`, '+')) board = applyPatch(board, JSON.parse(entry.message.p));
  const truth = JSON.stringify(board);
  // the last notifications may still be on their way: a moment to settle
  const settle = Date.now() + 5000;
  while (Date.now() < settle && !clients.every((c) => c.client.get('board')?.version === Number(version))) {
    await new Promise((r) => setTimeout(r, 20));
  }
  let differ = 0;
  for (const [i, c] of clients.entries()) {
    const held = c.client.get('board');
    const same = held?.epoch === epoch && held?.version === Number(version) && JSON.stringify(held.data) === truth;
    if (!same) differ += 1;
    console.log(
      `client ${i} on node n${c.node}: version ${held?.version}, ${(c.bytes() / 1024).toFixed(0)} KB received, gaps ${c.client.gaps}: ${same ? 'equal to Redis' : 'DIFFERS from Redis'}`,
    );
    c.ws.close();
  }
  await redis.close();
  console.log(differ === 0 ? `all ${CLIENTS} clients equal Redis at version ${version}` : `${differ} clients differ`);
  return differ === 0 ? 0 : 1;
}

main()
  .then((code) => (process.exitCode = code))
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(() => {
    for (const child of children) child.kill('SIGKILL');
  });
