'use strict';
// deltacast/ws over real loopback sockets: a ws server (standalone and
// noServer behind an http.Server) and ws clients speaking the protocol by hand.

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const { WebSocketServer, WebSocket } = require('ws');
const { createHub, DeltacastError } = require('../../lib/index.js');
const { attachWebSocketServer } = require('../../lib/adapters/ws.js');
const { waitFor, once, Replica, listen, board, serveWs } = require('./adapter.helpers.js');

const TIMEOUT = { timeout: 60000 };

function hubFor(t, options = {}) {
  const hub = createHub({ lanes: { '**': 'critical' }, ...options });
  t.after(() => hub.close());
  return hub;
}

/** A standalone ws server on a free port, attached; closed after the test. */
const serve = serveWs;

/** A ws client with a Replica; closed after the test. */
async function client(t, url, options = {}) {
  const ws = new WebSocket(url, options);
  const replica = new Replica();
  const closed = new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: String(reason) })));
  ws.on('message', (data, isBinary) => {
    assert.equal(isBinary, false, 'the server sends text frames');
    replica.handle(String(data));
  });
  ws.on('error', () => {});
  t.after(() => ws.terminate());
  await once(ws, 'open');
  const send = (message) => ws.send(typeof message === 'string' ? message : JSON.stringify(message));
  return { ws, replica, send, closed };
}

/** The HTTP answer to an upgrade that is refused. */
function refusedUpgrade(url, headers = {}) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.on('open', () => reject(new Error('the upgrade was accepted')));
    ws.on('error', () => {});
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode, type: res.headers['content-type'], body: JSON.parse(body) }));
    });
  });
}

describe('deltacast/ws', () => {
  it('subscribe -> snap, publish -> patch, each as one text frame', TIMEOUT, async (t) => {
    const hub = hubFor(t);
    await hub.publish('board', board(10));
    const { url, attached } = await serve(t, hub);
    const a = await client(t, url);
    a.send({ t: 'sub', topic: 'board' });
    await waitFor(() => a.replica.get('board'), 'the snapshot');
    assert.equal(a.replica.messages[0].t, 'snap');
    assert.equal(attached.connections, 1);
    await hub.publish('board', board(10, 1, [3]));
    await waitFor(() => a.replica.get('board')?.version === 2, 'the patch');
    assert.equal(a.replica.messages[1].t, 'patch');
    assert.deepEqual(a.replica.messages[1].ops, [{ op: 'replace', path: '/3/price', value: 1003 }]);
    assert.deepEqual(a.replica.get('board').data, hub.get('board').data);
  });

  it('encodes a frame once: every socket is written the same bytes', TIMEOUT, async (t) => {
    const hub = hubFor(t);
    await hub.publish('board', board(10));
    const { url, wss } = await serve(t, hub);
    const clients = [await client(t, url), await client(t, url), await client(t, url)];
    for (const c of clients) c.send({ t: 'sub', topic: 'board' });
    await waitFor(() => clients.every((c) => c.replica.get('board')), 'the snapshots');
    // what each server socket hands to its TCP socket
    const written = [];
    for (const ws of wss.clients) {
      const socket = ws._socket;
      const write = socket.write;
      socket.write = function (chunk, ...rest) {
        written.push(chunk);
        return write.call(this, chunk, ...rest);
      };
      t.after(() => (socket.write = write));
    }
    await hub.publish('board', board(10, 1, [4]));
    await waitFor(() => clients.every((c) => c.replica.get('board').version === 2), 'the patches');
    // per socket: one write of the whole WebSocket frame (header and payload
    // joined), the same Buffer for all sockets
    assert.equal(written.length, 3, 'one write per socket');
    assert.ok(written.every((chunk) => chunk === written[0]), 'one Buffer for all sockets');
    assert.equal(written[0][0], 0x81, 'a final text frame');
    assert.match(written[0].toString('utf8', (written[0][1] & 0x7f) === 126 ? 4 : 2), /^\{"t":"patch"/);
  });

  it('resumes from (epoch, version): the missed patch, not a snapshot', TIMEOUT, async (t) => {
    const hub = hubFor(t);
    await hub.publish('board', board(10));
    const { url } = await serve(t, hub);
    const a = await client(t, url);
    a.send({ t: 'sub', topic: 'board' });
    await waitFor(() => a.replica.get('board'), 'the snapshot');
    a.ws.close();
    await a.closed;
    await hub.publish('board', board(10, 1, [2]));
    const b = await client(t, url);
    b.replica.topics.set('board', a.replica.get('board'));
    b.send(b.replica.resume('board'));
    await waitFor(() => b.replica.get('board').version === 2, 'the resumed patch');
    assert.deepEqual(
      b.replica.messages.map((m) => m.t),
      ['patch'],
    );
    assert.deepEqual(b.replica.get('board').data, hub.get('board').data);
  });

  it('a user hook refusing the identity answers the upgrade with 401/403 and a JSON body', TIMEOUT, async (t) => {
    const hub = hubFor(t);
    const { url, attached } = await serve(t, hub, {
      user: async (req) => {
        const token = req.headers['x-token'];
        if (token === 'banned') throw new DeltacastError('DELTACAST_FORBIDDEN', 'this account is suspended');
        if (token === 'bug') throw new Error('database password in a stack trace');
        return token === 'good' ? { id: 'u1', roles: ['reader'], expiresAt: Date.now() + 60000 } : null;
      },
    });
    assert.deepEqual(await refusedUpgrade(url), {
      status: 401,
      type: 'application/json',
      body: { code: 'DELTACAST_UNAUTHORIZED', message: 'no identity' },
    });
    const forbidden = await refusedUpgrade(url, { 'x-token': 'banned' });
    assert.equal(forbidden.status, 403);
    assert.deepEqual(forbidden.body, { code: 'DELTACAST_FORBIDDEN', message: 'this account is suspended' });
    const bug = await refusedUpgrade(url, { 'x-token': 'bug' });
    assert.equal(bug.status, 401);
    assert.equal(bug.body.code, 'DELTACAST_UNAUTHORIZED');
    assert.doesNotMatch(bug.body.message, /password/);
    assert.equal(attached.connections, 0);
    // the identity reaches hub.connect as the hook returned it (expiresAt included)
    const users = [];
    const connect = hub.connect.bind(hub);
    hub.connect = (transport) => {
      users.push(transport.user);
      return connect(transport);
    };
    const good = await client(t, url, { headers: { 'x-token': 'good' } });
    good.send({ t: 'sub', topic: 'x' });
    await waitFor(() => attached.connections === 1, 'the accepted connection');
    assert.equal(users.length, 1);
    assert.deepEqual(Object.keys(users[0]), ['id', 'roles', 'expiresAt']);
    assert.equal(users[0].id, 'u1');
    assert.equal(typeof users[0].expiresAt, 'number');
  });

  it('permissions: the identity from the hook decides which topics a socket may subscribe to', TIMEOUT, async (t) => {
    const hub = hubFor(t, { permissions: { 'public/**': [], 'admin/**': ['admin'] } });
    await hub.publish('admin/x', { secret: 1 });
    await hub.publish('public/x', { open: 1 });
    const { url } = await serve(t, hub, { user: (req) => ({ id: 'u', roles: req.headers['x-role'] ? [req.headers['x-role']] : [] }) });
    const reader = await client(t, url);
    reader.send({ t: 'sub', topic: 'admin/x' });
    reader.send({ t: 'sub', topic: 'public/x' });
    await waitFor(() => reader.replica.errors.length === 1 && reader.replica.get('public/x'), 'the refusal and the open topic');
    assert.equal(reader.replica.errors[0].code, 'DELTACAST_FORBIDDEN');
    assert.equal(reader.replica.get('admin/x'), undefined);
    const admin = await client(t, url, { headers: { 'x-role': 'admin' } });
    admin.send({ t: 'sub', topic: 'admin/x' });
    await waitFor(() => admin.replica.get('admin/x'), 'the admin snapshot');
    assert.deepEqual(admin.replica.get('admin/x').data, { secret: 1 });
  });

  it('bad input: binary frames, non-JSON, oversized frames get an err or a close code and hurt nobody else', TIMEOUT, async (t) => {
    const hub = hubFor(t, { limits: { maxMessageBytes: 1024 } });
    await hub.publish('board', board(10));
    const { url } = await serve(t, hub);
    const bystander = await client(t, url);
    bystander.send({ t: 'sub', topic: 'board' });
    const bad = await client(t, url);
    bad.send({ t: 'sub', topic: 'board' });
    await waitFor(() => bystander.replica.get('board') && bad.replica.get('board'), 'the snapshots');

    bad.ws.send(Buffer.from('{"t":"sub","topic":"board"}'), { binary: true });
    bad.send('{"t":"sub",');
    bad.send('not json at all');
    bad.send({ t: 'nope' });
    await waitFor(() => bad.replica.errors.length === 4, 'four err frames');
    assert.deepEqual(
      bad.replica.errors.map((e) => e.code),
      ['DELTACAST_INVALID_MESSAGE', 'DELTACAST_INVALID_MESSAGE', 'DELTACAST_INVALID_MESSAGE', 'DELTACAST_UNKNOWN_MESSAGE'],
    );
    assert.match(bad.replica.errors[0].message, /binary/);

    // still served after its errors
    await hub.publish('board', board(10, 1, [1]));
    await waitFor(() => bad.replica.get('board').version === 2 && bystander.replica.get('board').version === 2, 'the patch');

    // over maxPayload (= limits.maxMessageBytes): ws closes with 1009
    bad.send(JSON.stringify({ t: 'sub', topic: 'x'.repeat(2000) }));
    assert.equal((await bad.closed).code, 1009);
    await hub.publish('board', board(10, 2, [1]));
    await waitFor(() => bystander.replica.get('board').version === 3, 'the bystander keeps receiving');
    assert.deepEqual(bystander.replica.errors, []);
    assert.deepEqual(bystander.replica.get('board').data, hub.get('board').data);
  });

  it('close codes from the hub pass through (1001 when the hub closes, after a retry hint)', TIMEOUT, async (t) => {
    const hub = createHub({ lanes: { '**': 'critical' } });
    const { url, attached } = await serve(t, hub);
    const a = await client(t, url);
    a.send({ t: 'sub', topic: 'x' });
    await waitFor(() => attached.connections === 1, 'the connection');
    await hub.close();
    const closed = await a.closed;
    assert.equal(closed.code, 1001);
    assert.match(closed.reason, /closing/);
    assert.deepEqual(a.replica.messages.at(-1), { t: 'retry', ms: 10000 }, 'the last message before the close');
  });

  it('restartRetryMs sets the retry hint; 0 sends none', TIMEOUT, async (t) => {
    for (const [restartRetryMs, last] of [[750, { t: 'retry', ms: 750 }], [0, null]]) {
      const hub = createHub({ lanes: { '**': 'critical' }, restartRetryMs });
      const { url, attached } = await serve(t, hub);
      const a = await client(t, url);
      a.send({ t: 'sub', topic: 'x' });
      await waitFor(() => attached.connections === 1, 'the connection');
      await hub.close();
      assert.equal((await a.closed).code, 1001);
      const retries = a.replica.messages.filter((m) => m.t === 'retry');
      assert.deepEqual(retries, last === null ? [] : [last]);
      if (last !== null) assert.deepEqual(a.replica.messages.at(-1), last);
    }
  });

  it('a silent client is closed with 4000 (heartbeat timeout)', TIMEOUT, async (t) => {
    const hub = hubFor(t, { heartbeat: { intervalMs: 20, timeoutMs: 100 } });
    const { url } = await serve(t, hub);
    const a = await client(t, url);
    const closed = await a.closed;
    assert.equal(closed.code, 4000);
  });

  it('close codes from the core pass through: 4001 for a client that never acks, 1008 for a flood', { timeout: 15000 }, async (t) => {
    const hub = hubFor(t, {
      credit: { maxFrames: 2, maxBytes: 1000000, stallTimeoutMs: 50 },
      limits: { messagesPerSecond: 1, messageBurst: 1, rateViolations: 3 },
    });
    await hub.publish('t', { n: 0 });
    const { url } = await serve(t, hub);
    const stalled = await client(t, url);
    stalled.send({ t: 'sub', topic: 't' });
    await waitFor(() => stalled.replica.get('t'), 'the snapshot');
    // critical frames past four windows (8) without an ack
    for (let i = 1; i <= 12; i++) await hub.publish('t', { n: i });
    assert.equal((await stalled.closed).code, 4001);

    const flooding = await client(t, url);
    for (let i = 0; i < 10; i++) flooding.send({ t: 'unsub', topic: 't' });
    assert.equal((await flooding.closed).code, 1008);
  });

  it("the app's own verifyClient runs first; its refusal stands", TIMEOUT, async (t) => {
    const hub = hubFor(t);
    const calls = [];
    const { url } = await serve(
      t,
      hub,
      {
        user: (req) => {
          calls.push('user');
          return { id: String(req.headers['x-user']) };
        },
      },
      {
        verifyClient: (info, cb) => {
          calls.push('app');
          if (info.req.headers['x-user'] === 'blocked') cb(false, 429, 'slow down');
          else cb(true);
        },
      },
    );
    const res = await new Promise((resolve) => {
      const ws = new WebSocket(url, { headers: { 'x-user': 'blocked' } });
      ws.on('error', () => {});
      ws.on('unexpected-response', (_req, response) => resolve(response.statusCode));
    });
    assert.equal(res, 429);
    assert.deepEqual(calls, ['app']);
    const ok = await client(t, url, { headers: { 'x-user': 'fine' } });
    assert.equal(ok.ws.readyState, WebSocket.OPEN);
    assert.deepEqual(calls, ['app', 'app', 'user']);
  });

  it('the entry points: deltacast/ws by package name, CommonJS and ESM', async () => {
    const cjs = require('deltacast/ws');
    assert.equal(cjs.attachWebSocketServer, attachWebSocketServer);
    const esm = await import('deltacast/ws');
    assert.equal(esm.attachWebSocketServer, attachWebSocketServer);
    assert.equal(esm.codes.UNAUTHORIZED, 'DELTACAST_UNAUTHORIZED');
  });

  it('noServer: handleUpgrade shares an http.Server port, identity checked first', TIMEOUT, async (t) => {
    const hub = hubFor(t);
    await hub.publish('t', { v: 1 });
    const server = http.createServer((_req, res) => res.end('plain http'));
    const wss = new WebSocketServer({ noServer: true });
    const attached = attachWebSocketServer(wss, hub, { user: (req) => (new URL(req.url, 'http://x').searchParams.get('u') ? { id: 'u' } : null) });
    server.on('upgrade', (req, socket, head) => {
      if (req.url.startsWith('/live')) attached.handleUpgrade(req, socket, head);
      else socket.destroy();
    });
    await listen(server);
    t.after(async () => {
      attached.close();
      await new Promise((resolve) => wss.close(resolve));
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    });
    const base = `ws://127.0.0.1:${server.address().port}`;
    assert.equal((await refusedUpgrade(`${base}/live`)).status, 401);
    const a = await client(t, `${base}/live?u=1`);
    a.send({ t: 'sub', topic: 't' });
    await waitFor(() => a.replica.get('t'), 'the snapshot');
    const res = await fetch(`http://127.0.0.1:${server.address().port}/`);
    assert.equal(await res.text(), 'plain http');
  });

  it('close() detaches: sockets get 1001, upgrades get 503, the server stays up', TIMEOUT, async (t) => {
    const hub = hubFor(t);
    const { url, attached } = await serve(t, hub);
    const a = await client(t, url);
    await waitFor(() => attached.connections === 1, 'the connection');
    attached.close();
    assert.equal((await a.closed).code, 1001);
    assert.equal(attached.connections, 0);
    const refused = await refusedUpgrade(url);
    assert.equal(refused.status, 503);
    assert.equal(refused.body.code, 'DELTACAST_CLOSED');
    // stats() counts what the core thread has handled: the close crosses to it
    // asynchronously (on a loaded machine, after the refused upgrade above)
    await waitFor(() => hub.stats().connections === 0, 'the core to drop the connection');
  });

  it('permessage-deflate is off unless asked for, and works when on', TIMEOUT, async (t) => {
    const hub = hubFor(t);
    await hub.publish('board', board(50));
    const plain = await serve(t, hub);
    const a = await client(t, plain.url);
    assert.equal(a.ws.extensions, '');
    const deflating = await serve(t, hub, { perMessageDeflate: true });
    const b = await client(t, deflating.url);
    assert.match(b.ws.extensions, /permessage-deflate/);
    b.send({ t: 'sub', topic: 'board' });
    await waitFor(() => b.replica.get('board'), 'the compressed snapshot');
    await hub.publish('board', board(50, 1, [7]));
    await waitFor(() => b.replica.get('board').version === 2, 'the compressed patch');
    assert.deepEqual(b.replica.get('board').data, hub.get('board').data);
  });

  it('a client that stops reading: server memory for it stays bounded, others keep receiving, it converges after', TIMEOUT, async (t) => {
    const maxBufferedBytes = 64 * 1024;
    // credit out of the way: the socket's own buffer is what must bound it
    const hub = hubFor(t, {
      lanes: { '**': 'high' },
      pacing: { highWindowMs: 0 },
      credit: { maxFrames: 1000000, maxBytes: 1000000000, stallTimeoutMs: 600000 },
    });
    await hub.publish('big', { n: 0, pad: '' });
    const { url, wss } = await serve(t, hub, { maxBufferedBytes });
    const slow = await client(t, url);
    const fast = await client(t, url);
    slow.send({ t: 'sub', topic: 'big' });
    fast.send({ t: 'sub', topic: 'big' });
    await waitFor(() => slow.replica.get('big') && fast.replica.get('big'), 'the snapshots');
    const [slowServerSide] = [...wss.clients].filter((ws) => ws._socket.remotePort === slow.ws._socket.localPort);
    slow.ws._socket.pause();

    const updates = 10000;
    let maxBuffered = 0;
    const largestFrame = 4096; // a patch replacing the 2 KB pad, or a snapshot of it
    for (let i = 1; i <= updates; i++) {
      // every update differs in 2 KB: 20 MB in all, more than loopback's kernel buffers
      const pad = String(i % 10).repeat(2048);
      await hub.publish('big', { n: i, pad });
      maxBuffered = Math.max(maxBuffered, slowServerSide.bufferedAmount);
    }
    await waitFor(() => fast.replica.get('big')?.data.n === updates, 'the fast client at the last update', 30000);
    maxBuffered = Math.max(maxBuffered, slowServerSide.bufferedAmount);
    // bounded by the threshold, plus the frame that crossed it, plus the frame
    // the core may have produced before the congestion report reached its
    // thread (one publish outstanding at a time here; README, deltacast/ws,
    // Congestion); the kernel holds the rest
    const bound = maxBufferedBytes + 2 * largestFrame;
    assert.ok(maxBuffered <= bound, `buffered ${maxBuffered} bytes for the paused client (bound ${bound})`);
    assert.ok(hub.stats().conflated > 0, 'the core held frames back for the paused client');
    assert.equal(fast.replica.gaps, 0);

    slow.ws._socket.resume();
    await waitFor(() => slow.replica.get('big')?.data.n === updates, 'the paused client converging', 30000);
    assert.equal(slow.replica.gaps, 0);
    assert.deepEqual(slow.replica.get('big'), { ...hub.get('big') });
  });

  it('server stopped and restarted mid-stream: a client resubscribing with its (epoch, version) catches up', TIMEOUT, async (t) => {
    const hub = hubFor(t);
    await hub.publish('board', board(20));
    let { wss, attached } = await serve(t, hub);
    const port = wss.address().port;
    const a = await client(t, `ws://127.0.0.1:${port}`);
    a.send({ t: 'sub', topic: 'board' });
    await waitFor(() => a.replica.get('board'), 'the snapshot');
    for (let i = 1; i <= 5; i++) await hub.publish('board', board(20, i, [i]));
    await waitFor(() => a.replica.get('board').version === 6, 'the stream');

    // the server goes away mid-stream; publishing goes on
    attached.close();
    await new Promise((resolve) => wss.close(resolve));
    await a.closed;
    for (let i = 6; i <= 10; i++) await hub.publish('board', board(20, i, [i]));

    // the same port again, a new server
    wss = new WebSocketServer({ port, host: '127.0.0.1' });
    await once(wss, 'listening');
    attached = attachWebSocketServer(wss, hub);
    t.after(async () => {
      attached.close();
      await new Promise((resolve) => wss.close(resolve));
    });
    const again = await client(t, `ws://127.0.0.1:${port}`);
    again.replica.topics.set('board', a.replica.get('board'));
    again.send(again.replica.resume('board'));
    await waitFor(() => again.replica.get('board').version === 11, 'the catch-up');
    assert.deepEqual(
      again.replica.messages.map((m) => m.t),
      ['patch'],
    );
    assert.deepEqual(again.replica.get('board').data, hub.get('board').data);

    // and after a restart of the hub itself (no shared engine): a new epoch, so a snapshot
    const hub2 = hubFor(t);
    await hub2.publish('board', hub.get('board').data);
    const wss2 = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await once(wss2, 'listening');
    const attached2 = attachWebSocketServer(wss2, hub2);
    t.after(async () => {
      attached2.close();
      await new Promise((resolve) => wss2.close(resolve));
    });
    const third = await client(t, `ws://127.0.0.1:${wss2.address().port}`);
    third.replica.topics.set('board', again.replica.get('board'));
    third.send(third.replica.resume('board'));
    await waitFor(() => third.replica.messages.length === 1, 'the snapshot of the new epoch');
    assert.equal(third.replica.messages[0].t, 'snap');
    assert.notEqual(third.replica.get('board').epoch, again.replica.get('board').epoch);
  });

  it('rejects what is not a ws server or a hub', () => {
    assert.throws(() => attachWebSocketServer({}, {}), { code: 'DELTACAST_INVALID_ARGUMENT' });
    const wss = new WebSocketServer({ noServer: true });
    assert.throws(() => attachWebSocketServer(wss, {}), { code: 'DELTACAST_INVALID_ARGUMENT' });
    assert.throws(() => attachWebSocketServer(wss, { connect() {} }, { nope: 1 }), { code: 'DELTACAST_INVALID_ARGUMENT' });
    assert.throws(() => attachWebSocketServer(wss, { connect() {} }, { maxBufferedBytes: 0 }), { code: 'DELTACAST_INVALID_ARGUMENT' });
  });
});
