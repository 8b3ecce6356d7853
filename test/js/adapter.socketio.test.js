'use strict';
// deltacast/socket.io over real loopback sockets: a Socket.IO server and the
// stock socket.io-client speaking the protocol by hand, over both engine.io
// transports (websocket and polling).

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const { Server } = require('socket.io');
const { io } = require('socket.io-client');
const { createHub, DeltacastError } = require('../../lib/index.js');
const { attachSocketIO } = require('../../lib/adapters/socket.io.js');
const { resetWarnings } = require('../../lib/adapters/shared.js');
const { waitFor, once, Replica, listen, board } = require('./adapter.helpers.js');

const TIMEOUT = { timeout: 60000 };
const TRANSPORTS = ['websocket', 'polling'];

function hubFor(t, options = {}) {
  const hub = createHub({ lanes: { '**': 'critical' }, ...options });
  t.after(() => hub.close());
  return hub;
}

/**
 * A Socket.IO server on a free port; `setup(io)` runs before attaching (the
 * app's own middlewares). The protocol rides on namespace `nsp`.
 */
async function serve(t, hub, { options, nsp = '/', setup, port = 0 } = {}) {
  const server = await listen(undefined, port);
  const ioServer = new Server(server);
  const namespace = ioServer.of(nsp);
  setup?.(ioServer, namespace);
  const attached = attachSocketIO(nsp === '/' ? ioServer : namespace, hub, options);
  let closed = false;
  const stop = async () => {
    if (closed) return;
    closed = true;
    attached.close();
    await new Promise((resolve) => ioServer.close(resolve));
  };
  t.after(stop);
  return { ioServer, namespace, attached, stop, url: `http://127.0.0.1:${server.address().port}${nsp === '/' ? '' : nsp}` };
}

/** A socket.io-client socket with a Replica; closed after the test. */
function client(t, url, transport, options = {}) {
  const socket = io(url, { transports: [transport], forceNew: true, reconnection: false, ...options });
  const replica = new Replica();
  const kinds = [];
  socket.on('deltacast', (message) => {
    kinds.push(typeof message);
    replica.handle(message);
  });
  t.after(() => socket.close());
  const connected = new Promise((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('connect_error', reject);
  });
  const send = (message) => socket.emit('deltacast', message);
  return { socket, replica, kinds, send, connected };
}

/** The connect_error of a socket the server refuses. */
function refused(url, transport, options = {}) {
  const socket = io(url, { transports: [transport], forceNew: true, reconnection: false, ...options });
  return new Promise((resolve, reject) => {
    socket.once('connect', () => reject(new Error('connected')));
    socket.once('connect_error', (err) => {
      socket.close();
      resolve(err);
    });
  });
}

for (const transport of TRANSPORTS) {
  describe(`deltacast/socket.io over ${transport}`, () => {
    it('subscribe -> snap, publish -> patch, each a plain object as the single argument', TIMEOUT, async (t) => {
      const hub = hubFor(t);
      await hub.publish('board', board(10));
      const { url, attached } = await serve(t, hub);
      const a = client(t, url, transport);
      await a.connected;
      a.send({ t: 'sub', topic: 'board' });
      await waitFor(() => a.replica.get('board'), 'the snapshot');
      assert.equal(attached.connections, 1);
      await hub.publish('board', board(10, 1, [3]));
      await waitFor(() => a.replica.get('board').version === 2, 'the patch');
      assert.deepEqual(
        a.replica.messages.map((m) => m.t),
        ['snap', 'patch'],
      );
      assert.deepEqual(a.kinds, ['object', 'object']);
      assert.deepEqual(a.replica.messages[1].ops, [{ op: 'replace', path: '/3/price', value: 1003 }]);
      assert.deepEqual(a.replica.get('board').data, hub.get('board').data);
      // a message given as JSON text is accepted too
      a.send(JSON.stringify({ t: 'unsub', topic: 'board' }));
      await waitFor(() => hub.stats().subscriptions === 0, 'the unsub');
    });

    it('encodes a frame once: every socket is written the same packet with the same options', TIMEOUT, async (t) => {
      const hub = hubFor(t);
      await hub.publish('board', board(10));
      const { url, namespace } = await serve(t, hub, { nsp: '/live' });
      const clients = [client(t, url, transport), client(t, url, transport), client(t, url, transport)];
      for (const c of clients) await c.connected;
      for (const c of clients) c.send({ t: 'sub', topic: 'board' });
      await waitFor(() => clients.every((c) => c.replica.get('board')), 'the snapshots');
      const written = [];
      for (const socket of namespace.sockets.values()) {
        const conn = socket.client.conn;
        const write = conn.write;
        conn.write = function (data, opts, cb) {
          written.push({ data, opts });
          return write.call(this, data, opts, cb);
        };
        t.after(() => (conn.write = write));
      }
      await hub.publish('board', board(10, 1, [4]));
      await waitFor(() => clients.every((c) => c.replica.get('board').version === 2), 'the patches');
      assert.equal(written.length, 3);
      assert.ok(written.every((w) => w.data === written[0].data && w.opts === written[0].opts), 'one packet for all');
      assert.match(written[0].data, /^2\/live,\["deltacast",\{"t":"patch"/);
      assert.equal(written[0].opts.preEncoded, true);
      if (transport === 'websocket') {
        // the WebSocket frame, header and payload in one Buffer: one socket.write per socket
        assert.equal(written[0].opts.wsPreEncodedFrame.length, 1);
        const frame = written[0].opts.wsPreEncodedFrame[0];
        assert.match(frame.toString('utf8', (frame[1] & 0x7f) === 126 ? 4 : 2), /^42\/live,\["deltacast",/);
      }
    });

    it('resumes from (epoch, version): the missed patch, not a snapshot', TIMEOUT, async (t) => {
      const hub = hubFor(t);
      await hub.publish('board', board(10));
      const { url } = await serve(t, hub);
      const a = client(t, url, transport);
      await a.connected;
      a.send({ t: 'sub', topic: 'board' });
      await waitFor(() => a.replica.get('board'), 'the snapshot');
      a.socket.close();
      await waitFor(() => hub.stats().connections === 0, 'the disconnect');
      await hub.publish('board', board(10, 1, [2]));
      const b = client(t, url, transport);
      await b.connected;
      b.replica.topics.set('board', a.replica.get('board'));
      b.send(b.replica.resume('board'));
      await waitFor(() => b.replica.get('board').version === 2, 'the resumed patch');
      assert.deepEqual(
        b.replica.messages.map((m) => m.t),
        ['patch'],
      );
    });

    it('identity: a user hook refusing is a connect_error with the code', TIMEOUT, async (t) => {
      const hub = hubFor(t);
      const seen = [];
      const { url, attached } = await serve(t, hub, {
        options: {
          user: async (socket) => {
            const token = socket.handshake.auth.token;
            if (token === 'banned') throw new DeltacastError('DELTACAST_FORBIDDEN', 'this account is suspended');
            if (token === 'bug') throw new Error('database password in a stack trace');
            if (token !== 'good') return null;
            const user = { id: 'u1', roles: [], expiresAt: Date.now() + 60000 };
            seen.push(user);
            return user;
          },
        },
      });
      const none = await refused(url, transport);
      assert.deepEqual(none.data, { code: 'DELTACAST_UNAUTHORIZED', message: 'no identity' });
      const banned = await refused(url, transport, { auth: { token: 'banned' } });
      assert.deepEqual(banned.data, { code: 'DELTACAST_FORBIDDEN', message: 'this account is suspended' });
      const bug = await refused(url, transport, { auth: { token: 'bug' } });
      assert.equal(bug.data.code, 'DELTACAST_UNAUTHORIZED');
      assert.doesNotMatch(bug.data.message, /password/);
      assert.equal(attached.connections, 0);
      // the identity reaches hub.connect as the hook returned it (expiresAt included)
      const users = [];
      const connect = hub.connect.bind(hub);
      hub.connect = (transport) => {
        users.push(transport.user);
        return connect(transport);
      };
      const good = client(t, url, transport, { auth: { token: 'good' } });
      await good.connected;
      await waitFor(() => attached.connections === 1, 'the accepted connection');
      assert.equal(seen.length, 1);
      assert.deepEqual(users, seen);
      assert.equal(users[0], seen[0]);
    });

    it("permissions: socket.data.user from the app's middleware decides", TIMEOUT, async (t) => {
      const hub = hubFor(t, { permissions: { 'public/**': [], 'admin/**': ['admin'] } });
      await hub.publish('admin/x', { secret: 1 });
      await hub.publish('public/x', { open: 1 });
      const { url } = await serve(t, hub, {
        setup: (ioServer) =>
          ioServer.use((socket, next) => {
            socket.data.user = { id: 'u', roles: socket.handshake.auth.admin ? ['admin'] : [] };
            next();
          }),
      });
      const reader = client(t, url, transport);
      await reader.connected;
      reader.send({ t: 'sub', topic: 'admin/x' });
      reader.send({ t: 'sub', topic: 'public/x' });
      await waitFor(() => reader.replica.errors.length === 1 && reader.replica.get('public/x'), 'the refusal and the open topic');
      assert.equal(reader.replica.errors[0].code, 'DELTACAST_FORBIDDEN');
      assert.equal(reader.replica.get('admin/x'), undefined);
      const admin = client(t, url, transport, { auth: { admin: true } });
      await admin.connected;
      admin.send({ t: 'sub', topic: 'admin/x' });
      await waitFor(() => admin.replica.get('admin/x'), 'the admin snapshot');
    });

    it("bad input gets err with a code and hurts nobody; the app's own events and rooms are untouched", TIMEOUT, async (t) => {
      const hub = hubFor(t, { limits: { maxMessageBytes: 1024 } });
      await hub.publish('board', board(10));
      const appEvents = [];
      const { url, ioServer } = await serve(t, hub, {
        setup: (ioServer) =>
          ioServer.on('connection', (socket) => {
            socket.join('room-a');
            socket.on('chat', (text, ack) => {
              appEvents.push(text);
              ack?.('got it');
            });
          }),
      });
      const bystander = client(t, url, transport);
      const bad = client(t, url, transport);
      await bystander.connected;
      await bad.connected;
      bystander.send({ t: 'sub', topic: 'board' });
      bad.send({ t: 'sub', topic: 'board' });
      await waitFor(() => bystander.replica.get('board') && bad.replica.get('board'), 'the snapshots');

      bad.send('{"t":"sub",'); // not JSON
      bad.send({ t: 'nope' }); // unknown message
      bad.send(JSON.stringify({ t: 'sub', topic: 'x'.repeat(2000) })); // over maxMessageBytes
      bad.send({ t: 'sub', topic: 'x'.repeat(2000) }); // the same as an object
      bad.socket.emit('deltacast', { t: 'sub', topic: 'board' }, 'extra'); // extra argument
      bad.socket.emit('deltacast', { t: 'sub', topic: 'board' }, () => {}); // an ack callback
      bad.socket.emit('deltacast'); // no argument
      bad.send(Buffer.from('{"t":"sub","topic":"board"}')); // binary
      bad.send(42); // not a message
      await waitFor(() => bad.replica.errors.length === 9, 'nine err messages');
      assert.deepEqual(bad.replica.errors.map((e) => e.code).sort(), [
        'DELTACAST_INVALID_MESSAGE',
        'DELTACAST_INVALID_MESSAGE',
        'DELTACAST_INVALID_MESSAGE',
        'DELTACAST_INVALID_MESSAGE',
        'DELTACAST_INVALID_MESSAGE',
        'DELTACAST_INVALID_MESSAGE',
        'DELTACAST_MESSAGE_TOO_LARGE',
        'DELTACAST_MESSAGE_TOO_LARGE',
        'DELTACAST_UNKNOWN_MESSAGE',
      ]);

      // the app's event, its acknowledgement and its room still work
      const answer = await bad.socket.timeout(5000).emitWithAck('chat', 'hello');
      assert.equal(answer, 'got it');
      assert.deepEqual(appEvents, ['hello']);
      const inRoom = new Promise((resolve) => bystander.socket.once('room-news', resolve));
      ioServer.to('room-a').emit('room-news', 'x');
      assert.equal(await inRoom, 'x');

      await hub.publish('board', board(10, 1, [1]));
      await waitFor(() => bad.replica.get('board').version === 2 && bystander.replica.get('board').version === 2, 'the patch');
      assert.deepEqual(bystander.replica.errors, []);
      assert.deepEqual(bystander.replica.get('board').data, hub.get('board').data);
    });

    it('exclusive namespace: any other event is answered with err DELTACAST_UNKNOWN_MESSAGE', TIMEOUT, async (t) => {
      const hub = hubFor(t);
      const { url } = await serve(t, hub, { nsp: '/dc', options: { exclusive: true } });
      const a = client(t, url, transport);
      await a.connected;
      a.socket.emit('deltacats', { t: 'sub', topic: 'x' });
      await waitFor(() => a.replica.errors.length === 1, 'the err');
      assert.equal(a.replica.errors[0].code, 'DELTACAST_UNKNOWN_MESSAGE');
      assert.match(a.replica.errors[0].message, /deltacats/);
    });

    it('the hub closing the connection: a close message with the code, then a disconnect', TIMEOUT, async (t) => {
      const hub = createHub({ lanes: { '**': 'critical' } });
      const { url, attached } = await serve(t, hub);
      const a = client(t, url, transport);
      await a.connected;
      await waitFor(() => attached.connections === 1, 'the connection');
      const disconnected = new Promise((resolve) => a.socket.once('disconnect', resolve));
      await hub.close();
      assert.equal(await disconnected, 'io server disconnect');
      const close = a.replica.messages.find((m) => m.t === 'close');
      assert.equal(close.code, 1001);
      // a hub restart: the retry hint comes first (docs/protocol.md, Closing)
      assert.deepEqual(a.replica.messages.at(-2), { t: 'retry', ms: 10000 });
      assert.equal(a.replica.messages.at(-1), close);
      assert.equal(attached.connections, 0);
    });
  });
}

describe('deltacast/socket.io', () => {
  it('falls back to socket.emit, with one warning, when the engine internals are missing', TIMEOUT, async (t) => {
    resetWarnings();
    const hub = hubFor(t);
    await hub.publish('board', board(5));
    const warnings = [];
    const onWarning = (warning) => warnings.push(warning);
    process.on('warning', onWarning);
    t.after(() => process.off('warning', onWarning));
    const { url } = await serve(t, hub, {
      // as if another Socket.IO version: the socket's client has no writeToEngine
      // (its own methods still work, bound to the real client)
      setup: (ioServer) =>
        ioServer.on('connection', (socket) => {
          const real = socket.client;
          socket.client = new Proxy(real, {
            get: (target, key) => {
              if (key === 'writeToEngine') return undefined;
              const value = Reflect.get(target, key);
              return typeof value === 'function' ? value.bind(target) : value;
            },
          });
        }),
    });
    const a = client(t, url, 'websocket');
    const b = client(t, url, 'websocket');
    await a.connected;
    await b.connected;
    a.send({ t: 'sub', topic: 'board' });
    b.send({ t: 'sub', topic: 'board' });
    await hub.publish('board', board(5, 1, [1]));
    await waitFor(() => a.replica.get('board')?.version === 2 && b.replica.get('board')?.version === 2, 'the frames');
    assert.deepEqual(a.kinds, ['object']);
    await waitFor(() => warnings.length > 0, 'the warning');
    assert.equal(warnings.filter((w) => w.code === 'DELTACAST_SOCKETIO_INTERNALS').length, 1);
  });

  it('a client that stops reading: its engine.io buffer stays bounded, others keep receiving, it converges after', TIMEOUT, async (t) => {
    const maxBufferedPackets = 16;
    const hub = hubFor(t, {
      lanes: { '**': 'high' },
      pacing: { highWindowMs: 0 },
      credit: { maxFrames: 1000000, maxBytes: 1000000000, stallTimeoutMs: 600000 },
      // pings while the client is stuck: they are sent regardless of congestion
      heartbeat: { intervalMs: 200, timeoutMs: 600000 },
    });
    await hub.publish('big', { n: 0, pad: '' });
    const { url, namespace } = await serve(t, hub, { options: { maxBufferedPackets } });
    const slow = client(t, url, 'websocket');
    await slow.connected;
    const fast = client(t, url, 'websocket');
    await fast.connected;
    slow.send({ t: 'sub', topic: 'big' });
    fast.send({ t: 'sub', topic: 'big' });
    await waitFor(() => slow.replica.get('big') && fast.replica.get('big'), 'the snapshots');
    const serverSide = namespace.sockets.get(slow.socket.id).client.conn;
    slow.socket.io.engine.transport.ws._socket.pause();

    // What the engine buffers: state frames (snap, patch, batch), the hub's
    // pings and engine.io's own ping packets. Only state frames are held back
    // by congestion; pings go out regardless, one per interval.
    const isPing = (packet) => packet.type !== 'message' || String(packet.data).startsWith('2["deltacast",{"t":"ping"}');
    const updates = 10000;
    let maxStateFrames = 0;
    let maxPings = 0;
    let maxBytes = 0;
    for (let i = 1; i <= updates; i++) {
      await hub.publish('big', { n: i, pad: String(i % 10).repeat(2048) });
      const pings = serverSide.writeBuffer.filter(isPing).length;
      maxPings = Math.max(maxPings, pings);
      maxStateFrames = Math.max(maxStateFrames, serverSide.writeBuffer.length - pings);
      maxBytes = Math.max(maxBytes, serverSide.transport.socket.bufferedAmount);
      if (i % 1000 === 0) await new Promise((resolve) => setTimeout(resolve, 250)); // let pings come
    }
    await waitFor(() => fast.replica.get('big')?.data.n === updates, 'the fast client at the last update', 30000);
    // The documented bound (README, deltacast/socket.io, Congestion):
    // maxBufferedPackets state frames, plus the write that crossed the
    // threshold (send() reports congestion after writing it), plus the frames
    // the core produced before that report reached its thread (it crosses
    // asynchronously, with the next hand-off). Here one publish is outstanding
    // at a time, one topic, flushed at once: at most one such frame (the next
    // publish is handed over after the report). The transport's socket: one
    // flushed buffer of those (frames of about 2 KB).
    const bound = maxBufferedPackets + 1 + 1;
    assert.ok(maxPings > 0, 'pings were buffered meanwhile');
    assert.ok(maxStateFrames <= bound, `${maxStateFrames} state frames buffered (bound ${bound})`);
    assert.ok(maxBytes <= bound * 4096, `${maxBytes} bytes buffered in the transport`);
    assert.ok(hub.stats().conflated > 0, 'the core held frames back for the paused client');
    assert.equal(fast.replica.gaps, 0);

    slow.socket.io.engine.transport.ws._socket.resume();
    await waitFor(() => slow.replica.get('big')?.data.n === updates, 'the paused client converging', 30000);
    assert.equal(slow.replica.gaps, 0);
    assert.deepEqual(slow.replica.get('big'), { ...hub.get('big') });
  });

  it('server stopped and restarted mid-stream: a client resubscribing with its (epoch, version) catches up', TIMEOUT, async (t) => {
    const hub = hubFor(t);
    await hub.publish('board', board(20));
    const first = await serve(t, hub);
    const port = Number(new URL(first.url).port);
    const a = client(t, first.url, 'websocket');
    await a.connected;
    a.send({ t: 'sub', topic: 'board' });
    for (let i = 1; i <= 5; i++) await hub.publish('board', board(20, i, [i]));
    await waitFor(() => a.replica.get('board')?.version === 6, 'the stream');
    const gone = once(a.socket, 'disconnect');
    await first.stop();
    await gone;
    for (let i = 6; i <= 10; i++) await hub.publish('board', board(20, i, [i]));

    const second = await serve(t, hub, { port });
    for (const transport of TRANSPORTS) {
      const again = client(t, second.url, transport);
      await again.connected;
      again.replica.topics.set('board', a.replica.get('board'));
      again.send(again.replica.resume('board'));
      await waitFor(() => again.replica.get('board').version === 11, `the catch-up over ${transport}`);
      assert.deepEqual(
        again.replica.messages.map((m) => m.t),
        ['patch'],
      );
      assert.deepEqual(again.replica.get('board').data, hub.get('board').data);
    }
  });

  it('a parent namespace (io.of(regex)): each child namespace gets its own packets', TIMEOUT, async (t) => {
    const hub = hubFor(t);
    await hub.publish('t', { v: 1 });
    const server = await listen();
    const ioServer = new Server(server);
    const attached = attachSocketIO(ioServer.of(/^\/team-\w+$/), hub);
    t.after(async () => {
      attached.close();
      await new Promise((resolve) => ioServer.close(resolve));
    });
    const base = `http://127.0.0.1:${server.address().port}`;
    const red = client(t, `${base}/team-red`, 'websocket');
    const blue = client(t, `${base}/team-blue`, 'polling');
    await red.connected;
    await blue.connected;
    red.send({ t: 'sub', topic: 't' });
    blue.send({ t: 'sub', topic: 't' });
    await hub.publish('t', { v: 2 });
    await waitFor(() => red.replica.get('t')?.version === 2 && blue.replica.get('t')?.version === 2, 'both namespaces');
    assert.equal(attached.connections, 2);
  });

  it('a client that never acks gets {"t":"close","code":4001} before its disconnect', { timeout: 15000 }, async (t) => {
    const hub = hubFor(t, { credit: { maxFrames: 2, maxBytes: 1000000, stallTimeoutMs: 50 } });
    await hub.publish('t', { n: 0 });
    const { url } = await serve(t, hub);
    const a = client(t, url, 'websocket');
    await a.connected;
    const disconnected = new Promise((resolve) => a.socket.once('disconnect', resolve));
    a.send({ t: 'sub', topic: 't' });
    await waitFor(() => a.replica.get('t'), 'the snapshot');
    for (let i = 1; i <= 12; i++) await hub.publish('t', { n: i }); // past four windows without an ack
    assert.equal(await disconnected, 'io server disconnect');
    const close = a.replica.messages.find((m) => m.t === 'close');
    assert.equal(close.code, 4001);
  });

  it('the entry points: deltacast/socket.io by package name, CommonJS and ESM', async () => {
    const cjs = require('deltacast/socket.io');
    assert.equal(cjs.attachSocketIO, attachSocketIO);
    const esm = await import('deltacast/socket.io');
    assert.equal(esm.attachSocketIO, attachSocketIO);
    assert.equal(esm.default.attachSocketIO, attachSocketIO);
  });

  it('rejects what is not a Socket.IO server or namespace, or a hub', () => {
    assert.throws(() => attachSocketIO({}, {}), { code: 'DELTACAST_INVALID_ARGUMENT' });
    const ioServer = new Server();
    assert.throws(() => attachSocketIO(ioServer, {}), { code: 'DELTACAST_INVALID_ARGUMENT' });
    assert.throws(() => attachSocketIO(ioServer, { connect() {} }, { events: 'x' }), { code: 'DELTACAST_INVALID_ARGUMENT' });
    assert.throws(() => attachSocketIO(ioServer, { connect() {} }, { event: '' }), { code: 'DELTACAST_INVALID_ARGUMENT' });
  });
});
