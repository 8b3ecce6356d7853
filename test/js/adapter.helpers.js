'use strict';
// Shared by adapter.socketio.test.js and adapter.ws.test.js: a protocol
// client's replica (no deltacast client: the messages are handled by hand),
// waiting with a deadline, and servers on free loopback ports.

const http = require('node:http');
const { applyPatch } = require('../../lib/index.js');

/** Resolves once `check()` is true; rejects after `ms` with `what` (never hangs). */
function waitFor(check, what, ms = 10000) {
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + ms;
    const poll = () => {
      let ok = false;
      try {
        ok = check();
      } catch (err) {
        reject(err);
        return;
      }
      if (ok) resolve();
      else if (Date.now() > deadline) reject(new Error(`timed out waiting for ${what}`));
      else setTimeout(poll, 5);
    };
    poll();
  });
}

/** Resolves with the first event `name` of `emitter`, or rejects after `ms`. */
function once(emitter, name, ms = 10000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for '${name}'`)), ms);
    emitter.once(name, (...args) => {
      clearTimeout(timer);
      resolve(args.length > 1 ? args : args[0]);
    });
  });
}

/** What a protocol client holds: topics applied from snap/patch/batch, and every message. */
class Replica {
  messages = [];
  errors = [];
  topics = new Map(); // topic -> { epoch, version, data }
  gaps = 0;

  handle(message) {
    if (typeof message === 'string') message = JSON.parse(message);
    this.messages.push(message);
    if (message.t === 'batch') {
      for (const item of message.items) this.#apply(item);
    } else {
      this.#apply(message);
    }
  }

  #apply(message) {
    if (message.t === 'err') this.errors.push(message);
    else if (message.t === 'snap') this.topics.set(message.topic, { epoch: message.epoch, version: message.version, data: message.data });
    else if (message.t === 'patch') {
      const held = this.topics.get(message.topic);
      if (held === undefined || held.epoch !== message.epoch || held.version !== message.from) {
        this.gaps += 1;
        return;
      }
      this.topics.set(message.topic, { epoch: message.epoch, version: message.to, data: applyPatch(held.data, message.ops) });
    }
  }

  get(topic) {
    return this.topics.get(topic);
  }

  /** The sub message resuming `topic` from what is held. */
  resume(topic) {
    const held = this.topics.get(topic);
    return held === undefined ? { t: 'sub', topic } : { t: 'sub', topic, epoch: held.epoch, version: held.version };
  }

  count(type) {
    return this.messages.filter((m) => m.t === type).length;
  }
}

/** An http.Server on a free loopback port (or `port`). */
async function listen(server = http.createServer(), port = 0) {
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}

/** n rows; `changed` rows (indices) get `tag` in their price. */
function board(n, tag = 0, changed = []) {
  const rows = Array.from({ length: n }, (_, i) => ({ id: `r${i}`, name: `row ${i}`, price: i }));
  for (const i of changed) rows[i].price = i + 1000 * tag;
  return rows;
}

/** A standalone ws server on a free port with deltacast attached; closed (clients terminated) after the test. */
async function serveWs(t, hub, options, serverOptions = {}) {
  const { WebSocketServer } = require('ws');
  const { attachWebSocketServer } = require('../../lib/adapters/ws.js');
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', ...serverOptions });
  await once(wss, 'listening');
  const attached = attachWebSocketServer(wss, hub, options);
  t.after(async () => {
    attached.close();
    for (const client of wss.clients) client.terminate();
    await new Promise((resolve) => wss.close(resolve));
  });
  return { wss, attached, url: `ws://127.0.0.1:${wss.address().port}` };
}

module.exports = { waitFor, once, Replica, listen, board, serveWs };
