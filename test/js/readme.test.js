'use strict';
// Every ```js example in README.md runs as written and does what its comments
// say. Each block runs in an async function (so top-level `await` works), with
// `require('deltacast')` and `require('deltacast/testing')` mapped to this
// checkout and a few fixtures for the names an example takes as given
// (`board`, `socket`, ...). Every expression statement's value is recorded, in
// order, so the checks below can hold the comments to their word. A block that
// cannot run at all is preceded by `<!-- readme-test: skip (why) -->`.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { EventEmitter } = require('node:events');
const fs = require('node:fs');
const path = require('node:path');

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

// Servers an example opens: on a free port (port 0 instead of the example's),
// closed after the example.
const opened = [];
function tracked(server) {
  opened.push(server);
  return server;
}
const http = require('node:http');
const trackedHttp = { ...http, createServer: (...args) => tracked(http.createServer(...args)) };
const ws = require('ws');
class TrackedWebSocketServer extends ws.WebSocketServer {
  constructor(options, callback) {
    super(options.port === undefined ? options : { ...options, port: 0, host: '127.0.0.1' }, callback);
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
async function closeOpened() {
  for (const server of opened.splice(0)) {
    if (server instanceof ws.WebSocketServer) for (const client of server.clients) client.terminate();
    if (server instanceof http.Server) server.closeAllConnections();
    await new Promise((resolve) => server.close(() => resolve()));
  }
}

function fakeRequire(name) {
  if (name === 'deltacast') return deltacast;
  if (name === 'deltacast/testing') return testing;
  if (name.startsWith('deltacast/')) return require(`../../lib/adapters/${name.slice('deltacast/'.length)}`);
  if (name === 'http' || name === 'node:http') return trackedHttp;
  if (name === 'ws') return { ...ws, WebSocketServer: TrackedWebSocketServer };
  if (name === 'socket.io') return { ...socketio, Server: TrackedSocketIOServer };
  return require(name);
}

// Names the examples take as given.
function fixtures() {
  const socket = new EventEmitter();
  socket.sent = [];
  socket.send = (frame) => socket.sent.push(JSON.parse(frame));
  const hub = deltacast.createHub({ clock: 'manual', lanes: { '**': 'critical' } });
  return {
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
    // for the transport examples: a Node HTTP server and app, and an identity check
    http: trackedHttp,
    app: (req, res) => res.end(),
    httpServer: trackedHttp.createServer(),
    verify: async () => ({ id: 'alice', roles: [] }),
  };
}

async function run(block, given) {
  const names = Object.keys(given);
  const body = new Function('require', '__results', ...names, `return (async () => {\n${instrument(block.code)}\n})();`);
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
      assert.deepEqual(got, { epoch: published.epoch, version: 4, data: fixtures().b });
      assert.equal(await locals.hub.publish('prices', [], { id: 'evt-991' }), null, 'evt-991 was seen');
      assert.deepEqual(locals.hub.get('orders').data, [{ id: 'o-17', qty: 3 }]);
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
    marker: "require('deltacast/testing')",
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
];

const blocks = examples(readme);

test('README.md has js examples, and every one of them is checked here', () => {
  assert.ok(blocks.length >= 4, `found ${blocks.length} js examples`);
  for (const { marker } of checks) {
    assert.equal(blocks.filter((b) => b.code.includes(marker)).length, 1, `one README example contains ${marker}`);
  }
});

for (const block of blocks) {
  const title = block.code.split('\n')[0].slice(0, 60);
  test(`README example at line ${block.line}: ${title}`, { skip: block.skip && 'marked readme-test: skip' }, async () => {
    const given = fixtures();
    let outcome;
    try {
      outcome = await run(block, given);
    } catch (err) {
      await closeOpened();
      await given.hub.close();
      err.message = `README.md line ${block.line}: ${err.message} (an example that cannot run here needs ` +
        '<!-- readme-test: skip (why) --> above it)';
      throw err;
    }
    const checked = checks.find(({ marker }) => block.code.includes(marker));
    try {
      if (checked) await checked.check(outcome, given);
    } finally {
      await closeOpened();
      await given.hub.close();
    }
  });
}
