'use strict';
// Hostile clients over real loopback sockets: messages the adapters answer
// themselves (binary frames, extra Socket.IO arguments) against the inbound
// rate limit, answers to a client that stopped reading its socket, and acks
// for versions never sent.

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const { WebSocket } = require('ws');
const { Server } = require('socket.io');
const { io } = require('socket.io-client');
const { createHub } = require('../../lib/index.js');
const { attachSocketIO } = require('../../lib/adapters/socket.io.js');
const { waitFor, once, Replica, listen, serveWs } = require('./adapter.helpers.js');

const TIMEOUT = { timeout: 60000 };

function hubFor(t, options = {}) {
  const hub = createHub(options);
  t.after(() => hub.close());
  return hub;
}


async function wsClient(t, url) {
  const ws = new WebSocket(url);
  const replica = new Replica();
  let closed = null;
  ws.on('close', (code) => (closed = code));
  ws.on('message', (data) => replica.handle(String(data)));
  ws.on('error', () => {});
  t.after(() => ws.terminate());
  await once(ws, 'open');
  return { ws, replica, closed: () => closed };
}

/** The server side of a client socket. */
function serverSide(wss, client) {
  return [...wss.clients].find((ws) => ws._socket.remotePort === client.ws._socket.localPort);
}

/** Resolves once the client's own socket has written everything it was given. */
function flushed(ws) {
  return waitFor(() => ws.bufferedAmount === 0 && ws._socket.writableLength === 0, 'the client writing its frames', 30000);
}

describe('hostile clients', () => {
  it('ws: binary frames count against the inbound rate (1008 for a flood of them, as for text)', TIMEOUT, async (t) => {
    const hub = hubFor(t, { limits: { messagesPerSecond: 1, messageBurst: 1, rateViolations: 3 } });
    const { url } = await serveWs(t, hub);
    const flooding = await wsClient(t, url);
    for (let i = 0; i < 50; i++) flooding.ws.send(Buffer.alloc(0), { binary: true });
    // the same flood of text messages ({"t":"unsub"}) is closed with 1008 after 1 + 3 messages
    await waitFor(() => flooding.closed() !== null || flooding.replica.errors.length >= 50, 'a close or 50 answers');
    assert.equal(flooding.closed(), 1008, `answered ${flooding.replica.errors.length} binary frames with an err each, never closed`);
  });

  it('Socket.IO: extra arguments count against the inbound rate (closed 1008 for a flood of them)', TIMEOUT, async (t) => {
    const hub = hubFor(t, { limits: { messagesPerSecond: 1, messageBurst: 1, rateViolations: 3 } });
    const server = await listen();
    const ioServer = new Server(server);
    const attached = attachSocketIO(ioServer, hub);
    t.after(async () => {
      attached.close();
      await new Promise((resolve) => ioServer.close(resolve));
    });
    const socket = io(`http://127.0.0.1:${server.address().port}`, { transports: ['websocket'], forceNew: true, reconnection: false });
    t.after(() => socket.close());
    const replica = new Replica();
    socket.on('deltacast', (message) => replica.handle(message));
    await once(socket, 'connect');
    for (let i = 0; i < 50; i++) socket.emit('deltacast', { t: 'pong' }, i);
    await waitFor(() => replica.count('close') > 0 || replica.errors.length >= 50, 'a close or 50 answers');
    assert.equal(replica.messages.find((m) => m.t === 'close')?.code, 1008, `answered ${replica.errors.length} messages with an err each, never closed`);
  });

  it('ws: a client that stops reading and sends binary frames: server memory for it stays bounded', TIMEOUT, async (t) => {
    const maxBufferedBytes = 64 * 1024;
    const hub = hubFor(t, { limits: { messagesPerSecond: 100, messageBurst: 100, rateViolations: 10 } });
    const { wss, url } = await serveWs(t, hub, { maxBufferedBytes });
    const paused = await wsClient(t, url);
    const server = serverSide(wss, paused);
    paused.ws._socket.pause();
    // 60,000 empty binary frames: 360 KB from the client
    for (let i = 0; i < 60000; i++) paused.ws.send(Buffer.alloc(0), { binary: true });
    await flushed(paused.ws);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const bound = maxBufferedBytes + 1024;
    assert.ok(server.bufferedAmount <= bound, `the server buffers ${server.bufferedAmount} bytes for the paused client (bound ${bound})`);
    // the core answered them as it answers any message: over the rate, closed 1008
    // (counted on the core thread; the socket is closed when JS drains that decision)
    await waitFor(() => hub.stats().closedFlooding > 0, 'the flood closed');
    assert.equal(hub.stats().closedFlooding, 1);
    await waitFor(() => server.readyState !== WebSocket.OPEN, 'the server closing the socket');
  });

  it('ws: a client that stops reading and resumes absent topics: the `gone` echoes it is sent stay bounded', TIMEOUT, async (t) => {
    const maxBufferedBytes = 64 * 1024;
    const hub = hubFor(t, { credit: { stallTimeoutMs: 1500 } });
    const { wss, url } = await serveWs(t, hub, { maxBufferedBytes });
    const paused = await wsClient(t, url);
    const server = serverSide(wss, paused);
    paused.ws._socket.pause();
    // 300 subs (within the burst of 1000), each naming a 60 KB epoch that its `gone` echoes: 18 MB
    const epoch = 'e'.repeat(60000);
    for (let i = 0; i < 300; i++) paused.ws.send(JSON.stringify({ t: 'sub', topic: `absent/${i}`, epoch, version: 1 }));
    await flushed(paused.ws);
    // (18 MB for the core to read: seconds under ASan)
    await waitFor(() => hub.stats().goneSent === 300 || paused.closed() !== null, 'the answers', 30000);
    // the answers not written are counted, and a reader that does not drain is closed 4001 after stallTimeoutMs
    // (what the kernel's socket buffers took before the socket reported full was written; counted
    // when JS drains the answers, after the core counted them sent)
    await waitFor(() => hub.stats().answersDropped > 0, 'answers dropped (answersDropped > 0)');
    await new Promise((resolve) => setTimeout(resolve, 300));
    // the socket's threshold plus a frame or two, as for state frames (README, deltacast/ws, Congestion)
    const bound = maxBufferedBytes + 2 * 64 * 1024;
    assert.ok(server.bufferedAmount <= bound, `the server buffers ${server.bufferedAmount} bytes for the paused client (bound ${bound})`);
    await waitFor(() => hub.stats().closedSlow === 1, 'the stalled reader closed (4001)', 10000);
  });

  it('answers (err, gone absent) to a connection whose socket is full are dropped and counted; state frames and removal gone are not', async (t) => {
    const hub = hubFor(t, { credit: { stallTimeoutMs: 60000 } });
    await hub.publish('here', { v: 1 });
    const written = [];
    let full = false;
    const connection = hub.connect({ send: (frame) => (written.push(JSON.parse(frame)), !full) });
    connection.receive(JSON.stringify({ t: 'sub', topic: 'here' }));
    connection.receive(JSON.stringify({ t: 'sub', topic: 'doomed' }));
    await waitFor(() => written.some((f) => f.t === 'snap'), 'the snapshot');
    await hub.publish('doomed', { v: 1 });
    await waitFor(() => written.length === 2, 'the snapshot of doomed');
    full = true;
    connection.receive(JSON.stringify({ t: 'ack', topic: 'nowhere', version: 1 })); // written: it reports the socket full
    await waitFor(() => written.length === 3, 'the first answer');
    for (let i = 0; i < 100; i++) connection.receive(JSON.stringify({ t: 'ack', topic: 'nowhere', version: 1 }));
    connection.receive(JSON.stringify({ t: 'sub', topic: 'absent', epoch: 'e'.repeat(1000), version: 3 }));
    await hub.delete('doomed');
    await waitFor(() => hub.stats().answersDropped === 101, `101 answers dropped (${hub.stats().answersDropped})`);
    await waitFor(() => written.some((f) => f.t === 'gone' && f.reason === 'deleted'), 'the removal written');
    assert.equal(written.filter((f) => f.t === 'err').length, 1);
    assert.equal(written.filter((f) => f.t === 'gone').length, 1);
    // drained: answers are written again
    full = false;
    connection.drained();
    connection.receive(JSON.stringify({ t: 'ack', topic: 'nowhere', version: 1 }));
    await waitFor(() => written.filter((f) => f.t === 'err').length === 2, 'an answer after the drain');
    assert.equal(hub.stats().answersDropped, 101);
  });

  it('an ack for a version never sent is DELTACAST_INVALID_ACK, also after a sub that claimed that version', async (t) => {
    const hub = hubFor(t);
    await hub.publish('small', { v: 1, s: 'ok' });
    const frames = [];
    const connection = hub.connect({ send: (frame) => frames.push(JSON.parse(frame)) });
    connection.receive(JSON.stringify({ t: 'sub', topic: 'small', epoch: 'not-the-epoch', version: 9007199254740992 }));
    await waitFor(() => frames.some((f) => f.t === 'snap'), 'the snapshot');
    assert.equal(frames[0].version, 1); // the client was sent version 1, and nothing newer
    connection.receive(JSON.stringify({ t: 'ack', topic: 'small', version: 999999 }));
    await waitFor(() => frames.length > 1, 'an answer to the ack').catch(() => {});
    assert.deepEqual(
      frames.slice(1).map((f) => f.code),
      ['DELTACAST_INVALID_ACK'],
      'version 999999 was never sent (docs/protocol.md: DELTACAST_INVALID_ACK, "for a version never sent")',
    );
  });
});
