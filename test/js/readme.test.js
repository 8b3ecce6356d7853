'use strict';
// Every ```js example in README.md runs as written and does what its comments
// say. Each block runs in an async function (so top-level `await` works), its
// `import` lines turned into `require`s, `deltacast/*` resolved through this
// package's own `exports`, and fixtures for the names an example takes as given
// (`board`, `socket`, `fastify`, `getToken`, `render`, `queryClient`, ...).
// The client examples' `example.com` URLs point at a real local server (the
// ws and HTTP adapters on one port). Every expression statement's value is
// recorded, in order, so the checks below can hold the comments to their word.
// Everything an example opens (servers on any port are moved to port 0, hubs,
// clients) is closed after it, and each example has a timeout: the file can
// neither hang nor leak into the next example. An example that uses
// `deltacast/redis` gets a redis-server of its own on a free port (its
// `redis://127.0.0.1:6379` points there), and is skipped, saying why, where
// redis-server is not installed. A block that cannot run here at all is
// preceded by `<!-- readme-test: skip (why) -->`.

const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const { EventEmitter } = require('node:events');
const fs = require('node:fs');
const path = require('node:path');

const { redisMissing, startRedis, cli } = require('./redis.helpers.js');

const root = path.resolve(__dirname, '..', '..');
const deltacast = require(root);
const testing = require(path.join(root, 'lib', 'testing.js'));
const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');

/** The ```js blocks: { line, code, skip } (line: 1-based, of the fence). */
function examples(text) {
  const out = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].trim() !== '```js') continue;
    let end = i + 1;
    while (end < lines.length && lines[end].trim() !== '```') end++;
    let before = i - 1;
    while (before >= 0 && lines[before].trim() === '') before--;
    const skip = before >= 0 && /^<!--\s*readme-test:\s*skip\b/.test(lines[before].trim());
    out.push({ line: i + 1, code: lines.slice(i + 1, end).join('\n'), skip });
    i = end;
  }
  return out;
}

/**
 * The block as the body of an async function: expression statements record
 * their value in `__results`, and the function returns the names it declares.
 */
function instrument(code) {
  const declared = [];
  const body = code.split('\n').map((line) => {
    const single = line.match(/^const (\w+)\s*=/);
    if (single) declared.push(single[1]);
    const destructured = line.match(/^const \{([^}]+)\}\s*=/);
    if (destructured) declared.push(...destructured[1].split(',').map((name) => name.trim().split(':').pop().trim()));
    if (/^(const|let|var|\/\/|\/\*)\b/.test(line) || line.startsWith('//') || line.trim() === '') return line;
    const statement = line.match(/^((?:await )?[A-Za-z_$][^;]*);(\s*\/\/.*)?$/);
    return statement ? `__results.push(${statement[1]});${statement[2] ?? ''}` : line;
  });
  return `${body.join('\n')}\nreturn { ${declared.join(', ')} };`;
}

// Everything an example opens is closed after it: servers (every listen() in
// this process is moved to port 0 on 127.0.0.1, whoever calls it: node:http,
// Express, Fastify, ws), Socket.IO servers, hubs and deltacast clients.
const net = require('node:net');
const http = require('node:http');
const opened = [];
function tracked(resource) {
  opened.push(resource);
  return resource;
}
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  tracked(this);
  if (typeof args[0] === 'number' && args[0] !== 0) args[0] = 0;
  else if (args[0] !== null && typeof args[0] === 'object' && args[0].port) args[0] = { ...args[0], port: 0, host: '127.0.0.1' };
  return listen.apply(this, args);
};
const ws = require('ws');
class TrackedWebSocketServer extends ws.WebSocketServer {
  constructor(options, callback) {
    super(options, callback);
    tracked(this);
  }
}
const socketio = require('socket.io');
class TrackedSocketIOServer extends socketio.Server {
  constructor(...args) {
    super(...args);
    tracked(this);
  }
}
const clientModule = require('deltacast/client');
const trackedClient = { ...clientModule, createClient: (options) => tracked(clientModule.createClient(options)) };
const trackedDeltacast = { ...deltacast, createHub: (options) => tracked(deltacast.createHub(options)) };

async function closeOne(resource) {
  if (resource instanceof ws.WebSocketServer) {
    for (const client of resource.clients) client.terminate();
    await new Promise((resolve) => resource.close(() => resolve()));
  } else if (resource instanceof socketio.Server) {
    await new Promise((resolve) => resource.close(() => resolve()));
  } else if (resource instanceof net.Server) {
    if (resource instanceof http.Server) resource.closeAllConnections();
    if (resource.listening) await new Promise((resolve) => resource.close(() => resolve()));
  } else if (typeof resource.close === 'function') {
    await resource.close(); // hubs, deltacast clients, Fastify apps
  }
}
async function closeOpened() {
  // last opened first: clients before the servers they talk to, servers before their hubs
  for (const resource of opened.splice(0).reverse()) await closeOne(resource);
}

// `import` lines become `require`s (the examples for the browser are written as ESM).
function esm(code) {
  return code
    .replace(/^import \{([^}]+)\} from ('[^']+');/gm, (_, names, from) => `const {${names.replace(/ as /g, ': ')}} = require(${from});`)
    .replace(/^import \* as (\w+) from ('[^']+');/gm, 'const $1 = require($2);')
    .replace(/^import (\w+) from ('[^']+');/gm, 'const $1 = require($2);');
}

// `deltacast/...` resolves through this package's own `exports` (a self-reference):
// the same files an installed package would give.
function fakeRequire(name) {
  if (name === 'deltacast') return trackedDeltacast;
  if (name === 'deltacast/client') return trackedClient;
  if (name === 'deltacast/testing') return testing;
  if (name === 'ws') return { ...ws, WebSocketServer: TrackedWebSocketServer };
  if (name === 'socket.io') return { ...socketio, Server: TrackedSocketIOServer };
  return require(name);
}

/** Resolves once `predicate()` holds (the test's timeout bounds the wait). */
async function until(predicate) {
  while (!predicate()) await new Promise((resolve) => setTimeout(resolve, 5));
}

async function listening(server) {
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server.address().port;
}

/**
 * The server the client examples talk to (for `https://example.com/rt` and
 * `wss://example.com/rt`): deltacast/http under /rt (Bearer token checked) and
 * deltacast/ws on /rt, on one port, over a hub that sends every change at once.
 */
async function liveServer() {
  const { httpHandler } = require('deltacast/http');
  const { attachWebSocketServer } = require('deltacast/ws');
  const hub = tracked(deltacast.createHub({ lanes: { '**': 'critical' } }));
  const handler = httpHandler(hub, {
    prefix: '/rt',
    user: (req) => (req.headers.authorization === 'Bearer token-1' ? { id: 'alice' } : null),
  });
  const server = http.createServer(handler);
  const wss = tracked(new ws.WebSocketServer({ noServer: true }));
  const live = attachWebSocketServer(wss, hub);
  server.on('upgrade', (req, socket, head) => live.handleUpgrade(req, socket, head));
  const port = await listening(server);
  return { hub, port, ws: `ws://127.0.0.1:${port}`, http: `http://127.0.0.1:${port}` };
}

/** Whether an example uses deltacast/redis (and so needs a redis-server). */
function usesRedis(code) {
  return /(from |require\()'deltacast\/redis'/.test(code);
}

// Names the examples take as given. The fixtures an example needs are made for it alone.
async function fixtures(code = '') {
  const socket = new EventEmitter();
  socket.sent = [];
  socket.send = (frame) => socket.sent.push(JSON.parse(frame));
  const hub = tracked(deltacast.createHub({ clock: 'manual', lanes: { '**': 'critical' } }));
  const given = {
    board: [
      { id: 'a', name: 'Copper cathode', price: 8410 },
      { id: 'b', name: 'Zinc SHG', price: 2650 },
    ],
    textFromUpstream: '[{"id":"a","name":"Copper cathode","price":8410},{"id":"b","name":"Zinc SHG","price":2675}]',
    sameBoardAgain: [
      { id: 'a', name: 'Copper cathode', price: 8420 },
      { id: 'b', name: 'Zinc SHG', price: 2675 },
    ],
    b: [{ id: 'a', name: 'Copper cathode', price: 8400 }],
    socket,
    hub,
    // for the transport examples: a Node HTTP server and app, and identity checks
    app: (req, res) => res.end(),
    httpServer: http.createServer(),
    verify: async () => ({ id: 'alice', roles: [] }),
    verifySession: async (authorization) => (authorization === 'Bearer s-1' ? { id: 'alice', roles: [] } : null),
  };
  if (usesRedis(code)) {
    // opened after the fixture hub and before the example: stopped after the example's hubs
    const server = await startRedis();
    tracked({ close: () => server.stop() });
    given.redis = server;
  }
  if (/\bfastify\./.test(code)) {
    given.fastify = tracked(require('fastify')());
    given.httpHandler = require('deltacast/http').httpHandler;
  }
  if (code.includes('example.com') || /\bqueryClient\b/.test(code)) {
    const live = await liveServer();
    given.live = live;
    // the page's own functions
    given.getToken = async () => 'token-1';
    given.expiresAt = Date.now() + 3600e3;
    given.rendered = [];
    given.render = (rows) => given.rendered.push(rows);
    given.banners = [];
    given.banner = (status) => given.banners.push(status);
    given.toasts = [];
    given.toast = (event) => given.toasts.push(event);
  }
  if (/\bqueryClient\b/.test(code)) {
    const { QueryClient } = require('@tanstack/query-core');
    given.queryClient = new QueryClient();
    await given.live.hub.publish('projects', [
      { id: 'p1', name: 'Apollo' },
      { id: 'p2', name: 'Gemini' },
    ]);
    given.client = tracked(clientModule.createClient({ url: given.live.ws, WebSocket: ws.WebSocket }));
    given.client.subscribe('projects');
    await until(() => given.client.get('projects') !== undefined);
    given.id = 'p1';
    given.name = 'Apollo 11';
    given.api = {
      rename: (id, name, changeId) => {
        const rows = given.live.hub.get('projects').data.map((r) => (r.id === id ? { ...r, name } : r));
        return given.live.hub.publish('projects', rows, { id: changeId });
      },
    };
  }
  return given;
}

async function run(block, given) {
  const names = Object.keys(given);
  let code = esm(block.code);
  // The client examples name a public server: they talk to the local one.
  if (given.live) code = code.replace(/wss:\/\/example\.com/g, given.live.ws).replace(/https:\/\/example\.com/g, given.live.http);
  // The Redis examples name a local default Redis: they talk to the test's own.
  if (given.redis) code = code.replace(/redis:\/\/127\.0\.0\.1:6379/g, given.redis.url);
  const body = new Function('require', '__results', ...names, `return (async () => {\n${instrument(code)}\n})();`);
  const results = [];
  const locals = await body(fakeRequire, results, ...names.map((name) => given[name]));
  return { results, locals };
}

// What each example's comments promise, by a line that identifies the example.
const checks = [
  {
    marker: 'const ops = diff(before, after);',
    async check({ locals, results }) {
      assert.deepEqual(JSON.parse(JSON.stringify(locals.ops)), [
        { op: 'add', path: '/rows/0', value: { id: 'c', name: 'Tin 99.85%', price: 25500 } },
        { op: 'replace', path: '/rows/2/price', value: 2675 },
      ]);
      assert.equal(results.at(-1), true, 'unchanged rows are shared');
      assert.equal(locals.before.rows.length, 2, 'before is untouched');
      assert.equal(locals.next.rows.length, 3);
    },
  },
  {
    marker: 'const hub = createHub({ ttl:',
    async check({ locals, results }) {
      const [published, fromText, upserted, removed, patched, same, deduped, got] = results;
      assert.equal(published.version, 1);
      assert.equal(fromText.version, 2);
      assert.equal(upserted.version, 1);
      assert.equal(removed, null, 'removing a row that is not there changes nothing');
      assert.equal(patched.version, 3);
      assert.equal(same, null, 'nothing changed, nothing bumped');
      assert.equal(deduped.version, 4);
      assert.deepEqual(got, { epoch: published.epoch, version: 4, data: (await fixtures()).b });
      assert.equal(await locals.hub.publish('prices', [], { id: 'evt-991' }), null, 'evt-991 was seen');
      assert.deepEqual(locals.hub.get('orders').data, [{ id: 'o-17', qty: 3 }]);
      // every change call that changes nothing resolves null (Rules: versions and epochs)
      assert.equal(await locals.hub.upsert('orders', 'o-17', { qty: 3 }), null);
      assert.equal(await locals.hub.patch('prices', [{ op: 'replace', path: '/0/price', value: 8400 }]), null);
      assert.equal(await locals.hub.publishJson('prices', JSON.stringify(locals.hub.get('prices').data)), null);
      assert.equal(locals.hub.get('prices').version, 4);
      await locals.hub.close();
    },
  },
  {
    marker: 'const connection = hub.connect(',
    async check({ locals }, { hub, socket }) {
      await hub.publish('prices', { v: 1 });
      socket.emit('message', '{"t":"sub","topic":"prices"}');
      await hub.advance(0);
      assert.equal(socket.sent.length, 1);
      assert.equal(socket.sent[0].t, 'snap');
      assert.deepEqual(socket.sent[0].data, { v: 1 });
      await hub.publish('prices', { v: 2 });
      await hub.advance(0);
      assert.equal(socket.sent[1].t, 'patch');
      assert.equal(socket.sent[1].to, 2);
      assert.equal(hub.stats().connections, 1);
      socket.emit('close');
      await hub.advance(0);
      assert.equal(hub.stats().connections, 0);
      assert.equal(typeof locals.connection.receive, 'function');
    },
  },
  {
    marker: "from 'deltacast/testing'",
    async check({ locals, results }, { board }) {
      // results: subscribe, publish, settle, get (right after settle), disconnect + connect
      const replica = results[3];
      assert.deepEqual(replica?.data, board, 'after settle(hub) the client holds the published state');
      assert.equal(replica.version, 1);
      const { hub, client } = locals;
      assert.equal(client.connected, true);
      await hub.publish('prices', [...board, { id: 'c', price: 1 }]);
      await testing.settle(hub);
      assert.deepEqual(client.get('prices'), hub.get('prices'), 'the resumed client follows changes');
      await hub.close();
    },
  },
  {
    marker: "app.use(\n  httpHandler(hub, {\n    prefix: '/live'",
    async check(outcome, given) {
      const server = opened.find((r) => r instanceof http.Server && r.listening);
      assert.ok(server, 'app.listen() opened a server');
      const base = `http://127.0.0.1:${server.address().port}`;
      const hub = opened.find((r) => r !== given.hub && typeof r.publish === 'function');
      await hub.publish('prices/eu', { copper: 8410 });
      const auth = { authorization: 'Bearer s-1' };
      const res = await fetch(`${base}/live/topics/prices/eu`, { headers: auth });
      assert.equal(res.status, 200);
      assert.deepEqual((await res.json()).data, { copper: 8410 });
      assert.equal((await fetch(`${base}/live/topics/prices/eu`)).status, 401, 'the user hook is asked');
      assert.equal((await fetch(`${base}/live/topics/admin/x`, { headers: auth })).status, 403, 'permissions apply');
      assert.equal((await fetch(`${base}/elsewhere`)).status, 404, 'outside the prefix: next()');
      const events = await fetch(`${base}/live/events?topics=prices/eu,prices/us`, { headers: auth });
      assert.equal(events.status, 200);
      assert.match(events.headers.get('content-type'), /^text\/event-stream/);
      const reader = events.body.pipeThrough(new TextDecoderStream()).getReader();
      let text = '';
      while (!text.includes('"t":"snap"')) text += (await reader.read()).value;
      await reader.cancel();
    },
  },
  {
    marker: "fastify.all('/deltacast/*'",
    async check(outcome, { fastify, hub }) {
      await hub.publish('prices', { copper: 8410 });
      const base = await fastify.listen({ port: 0, host: '127.0.0.1' });
      const res = await fetch(`${base}/deltacast/topics/prices`);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('etag'), `"${hub.get('prices').epoch}:1"`);
      assert.deepEqual((await res.json()).data, { copper: 8410 });
      const events = await fetch(`${base}/deltacast/events?topics=prices`);
      const reader = events.body.pipeThrough(new TextDecoderStream()).getReader();
      let text = '';
      while (!text.includes('"t":"snap"')) text += (await reader.read()).value;
      assert.match(text, new RegExp(`id: ${hub.get('prices').epoch}:1\n`));
      await reader.cancel();
    },
  },
  {
    marker: "import { createClient } from 'deltacast/client';",
    async check({ locals }, given) {
      const { client } = locals;
      const rows = [{ id: 'o-1', qty: 3 }];
      await given.live.hub.publish('orders', rows);
      await until(() => given.rendered.length > 0);
      assert.deepEqual(given.rendered.at(-1), rows);
      assert.equal(client.carrier, 'ws');
      assert.ok(given.banners.includes('open'));
      assert.equal(client.topicStatus('orders').status, 'live');
      await given.live.hub.publish('orders', [...rows, { id: 'o-2', qty: 1 }]);
      await until(() => given.toasts.length > 0);
      assert.deepEqual(given.toasts.map(({ action, id }) => [action, id]), [['insert', 'o-2']]);
      locals.unsubscribe();
    },
  },
  {
    marker: "import { bindQueryClient, optimisticUpdate } from 'deltacast/query';",
    async check({ locals }, given) {
      const want = given.live.hub.get('projects');
      assert.equal(want.data[0].name, 'Apollo 11', 'mutate published the change');
      // the change landed in the cache from the server, and the optimistic layer is gone
      await until(() => given.client.get('projects')?.version === want.version);
      await until(() => given.queryClient.getQueryData(['projects', 'list']) === given.client.get('projects').data);
      assert.deepEqual(given.queryClient.getQueryData(['projects', 'list']), want.data);
      locals.unbind();
    },
  },
  {
    marker: 'const paused = hub.connect(',
    async check({ locals, results }) {
      // results: receive, sent.length, closed, close
      assert.equal(results[1], 257, 'every critical change was sent until past four windows of 64 frames');
      assert.deepEqual(results[2], [4001]);
      const frames = locals.sent.map((frame) => JSON.parse(frame));
      assert.equal(frames[0].t, 'snap');
      assert.equal(frames[0].version, 1);
      for (const [i, frame] of frames.slice(1).entries()) {
        assert.equal(frame.t, 'patch');
        assert.equal(frame.to, i + 2, 'one frame per version: nothing conflated');
      }
    },
  },
  {
    marker: 'const apiKeys = new Map(',
    async check({ locals }) {
      await locals.hub.publish('prices', { copper: 8410 });
      const url = `ws://127.0.0.1:${locals.wss.address().port}`;
      // the key of the example's table: admitted, served
      const admitted = new ws.WebSocket(url, { headers: { authorization: 'Bearer k-3f9a2c' } });
      const messages = [];
      admitted.on('message', (data) => messages.push(JSON.parse(data)));
      await new Promise((resolve, reject) => admitted.once('open', resolve).once('error', reject));
      admitted.send('{"t":"sub","topic":"prices"}');
      await until(() => messages.some((m) => m.t === 'snap'));
      assert.deepEqual(messages.find((m) => m.t === 'snap').data, { copper: 8410 });
      admitted.terminate();
      // any other key, or none: refused before the upgrade, 401 DELTACAST_UNAUTHORIZED
      for (const headers of [{ authorization: 'Bearer k-0' }, {}]) {
        const refused = new ws.WebSocket(url, { headers });
        const { status, body } = await new Promise((resolve, reject) => {
          refused.once('unexpected-response', (req, res) => {
            let text = '';
            res.on('data', (chunk) => (text += chunk));
            res.on('end', () => resolve({ status: res.statusCode, body: JSON.parse(text) }));
          });
          refused.once('open', () => reject(new Error('an unknown key was admitted')));
          refused.once('error', reject);
        });
        assert.equal(status, 401);
        assert.equal(body.code, 'DELTACAST_UNAUTHORIZED');
        refused.terminate();
      }
    },
  },
  {
    marker: "const engine = redisEngine({ url: 'redis://127.0.0.1:6379' });",
    async check({ locals, results }, given) {
      // results: ready, publish, upsert, upsert, publish, publish, get, close
      const [, first, upserted, unchanged, back, repeated, got] = results;
      assert.equal(typeof first.epoch, 'string');
      assert.deepEqual(first, { epoch: first.epoch, version: 1 });
      assert.deepEqual(upserted, { epoch: first.epoch, version: 2 });
      assert.equal(unchanged, null, 'nothing changed: null');
      assert.deepEqual(back, { epoch: first.epoch, version: 3 });
      assert.equal(repeated, null, 'evt-9 was seen');
      assert.deepEqual(got, { epoch: first.epoch, version: 3, data: locals.rows });
      assert.equal(locals.engine.stats().changes, 3);

      // Another node on the same Redis: evt-9 is seen there too; an unchanged
      // value on a topic its clients do not follow resolves null after one
      // read of what Redis has since its copy (no change script is run).
      const { redisEngine } = require('deltacast/redis');
      const engine = redisEngine({ url: given.redis.url });
      const other = tracked(deltacast.createHub({ engine }));
      await engine.ready();
      assert.equal(await other.publish('prices', [{ id: 'x' }], { id: 'evt-9' }), null);
      const calls = (command) => Number(new RegExp(`^cmdstat_${command}:calls=(\\d+)`, 'm').exec(cli(given.redis.port, 'INFO', 'commandstats'))?.[1] ?? 0);
      const before = { fcall: calls('fcall'), evalsha: calls('evalsha') };
      assert.equal(await other.publish('prices', locals.rows, { id: 'evt-10' }), null, 'the value Redis holds: nothing changed');
      assert.equal(calls('fcall'), before.fcall, 'no change script');
      assert.equal(calls('evalsha'), before.evalsha + 1, 'one read (READ)');
      assert.deepEqual(await other.publish('prices', [], { id: 'evt-10' }), { epoch: first.epoch, version: 4 }, 'evt-10 was not recorded');
      await other.close();
    },
  },
];

const blocks = examples(readme);

// Strings that look like codes and are not: an environment variable
// (lib/native.js), the name of success and the unreachable fallback of
// errorCodeName (native/src/status.cc); no error ever carries them.
const notCodes = new Set(['DELTACAST_ADDON', 'DELTACAST_OK', 'DELTACAST_UNKNOWN']);

function sources(dir) {
  return fs.readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && /\.(c|cc|h|js|mjs|cjs|ts|mts)$/.test(entry.name))
    .map((entry) => path.join(entry.parentPath ?? entry.path, entry.name));
}

test('every DELTACAST_ code in lib/ and native/ is in codes (lib/errors.js) and in the README codes table', () => {
  const { codes } = deltacast;
  const table = new Set(Object.values(codes));
  assert.equal(table.size, Object.keys(codes).length, 'no code twice in codes');
  for (const [name, code] of Object.entries(codes)) assert.equal(code, `DELTACAST_${name}`);
  const section = readme.slice(readme.indexOf('### Errors'), readme.indexOf('### Limits'));
  const documented = new Set([...section.matchAll(/^\| `(DELTACAST_[A-Z_]+)` \|/gm)].map((m) => m[1]));
  const used = new Map();
  for (const dir of ['lib', 'native/src', 'native/include', 'binding']) {
    for (const file of sources(path.join(root, dir))) {
      for (const [code] of fs.readFileSync(file, 'utf8').matchAll(/DELTACAST_[A-Z_]+/g)) {
        if (!notCodes.has(code) && !used.has(code)) used.set(code, path.relative(root, file));
      }
    }
  }
  assert.ok(used.size >= 25, `found ${used.size} codes`);
  for (const [code, file] of used) {
    assert.ok(table.has(code), `${code} (${file}) is missing from codes in lib/errors.js`);
  }
  for (const code of table) assert.ok(documented.has(code), `${code} is missing from the README codes table`);
  for (const code of documented) assert.ok(table.has(code), `the README documents ${code}, which codes does not have`);
});

test('README.md has js examples, and every one of them is checked here', () => {
  assert.ok(blocks.length >= 4, `found ${blocks.length} js examples`);
  for (const { marker } of checks) {
    assert.equal(blocks.filter((b) => b.code.includes(marker)).length, 1, `one README example contains ${marker}`);
  }
});

for (const block of blocks) {
  const title = block.code.split('\n')[0].slice(0, 60);
  const options = { skip: (block.skip && 'marked readme-test: skip') || (usesRedis(block.code) && redisMissing()), timeout: 20000 };
  test(`README example at line ${block.line}: ${title}`, options, async () => {
    // a browser has a WebSocket; Node has one from 22 on
    const hadWebSocket = 'WebSocket' in globalThis;
    if (!hadWebSocket) globalThis.WebSocket = ws.WebSocket;
    try {
      const given = await fixtures(block.code);
      let outcome;
      try {
        outcome = await run(block, given);
      } catch (err) {
        err.message = `README.md line ${block.line}: ${err.message} (an example that cannot run here needs ` +
          '<!-- readme-test: skip (why) --> above it)';
        throw err;
      }
      const checked = checks.find(({ marker }) => block.code.includes(marker));
      if (checked) await checked.check(outcome, given);
    } finally {
      await closeOpened();
      if (!hadWebSocket) delete globalThis.WebSocket;
    }
  });
}

// Whatever a failing or timed-out test left open.
after(closeOpened);
