'use strict';
// deltacast/testing: an in-process client that speaks the wire protocol
// against a hub (no sockets) and keeps a replica of every topic it follows,
// plus helpers for the manual clock. What a JS test harness needs to drive a
// hub the way real clients would.

const { applyPatch } = require('./apply_patch');
const { DeltacastError, codes } = require('./errors');

class TestClient {
  #hub;
  #user;
  #connection = null;
  #autoAck;
  /** topic -> { epoch, version, data } */
  #replicas = new Map();
  #subscribed = new Set();

  #keep;

  constructor(hub, { user, ack = true, keep = 1000 } = {}) {
    this.#hub = hub;
    this.#user = user;
    this.#autoAck = ack;
    this.#keep = keep;
    /** The messages received, parsed, in order: the last `keep` (default 1000). */
    this.messages = [];
    /** The `err` messages received. */
    this.errors = [];
    /** Patches that did not follow the held version (each triggered a re-subscription). */
    this.gaps = 0;
    this.connect();
  }

  get connected() {
    return this.#connection !== null;
  }

  /** Opens a connection (the constructor does); after disconnect(), resumes every topic. */
  connect() {
    if (this.#connection) return;
    this.#connection = this.#hub.connect({
      send: (frame) => this.#onFrame(frame),
      close: () => {
        this.#connection = null;
      },
      user: this.#user,
    });
    for (const topic of this.#subscribed) this.#sub(topic);
  }

  /** Stops acknowledging: the hub soon holds this client's updates back (conflation). */
  stall() {
    this.#autoAck = false;
  }

  /** Acknowledges everything held and acks from now on: held-back topics catch up. */
  resume() {
    this.#autoAck = true;
    if (!this.#connection) return;
    for (const [topic, held] of this.#replicas) {
      if (this.#subscribed.has(topic)) this.send({ t: 'ack', topic, version: held.version });
    }
  }

  /** Drops the connection; replicas are kept for resuming. */
  disconnect() {
    this.#connection?.close();
    this.#connection = null;
  }

  subscribe(topic) {
    this.#subscribed.add(topic);
    if (this.#connection) this.#sub(topic);
  }

  unsubscribe(topic) {
    this.#subscribed.delete(topic);
    this.send({ t: 'unsub', topic });
  }

  /** The replica of a topic: { epoch, version, data }, or undefined. */
  get(topic) {
    return this.#replicas.get(topic);
  }

  /** Sends a raw client message (an object is serialized; a string goes as is). */
  send(message) {
    if (!this.#connection) throw new DeltacastError(codes.CLOSED, 'the test client is disconnected');
    this.#connection.receive(typeof message === 'string' ? message : JSON.stringify(message));
  }

  #sub(topic) {
    const held = this.#replicas.get(topic);
    this.send(held ? { t: 'sub', topic, epoch: held.epoch, version: held.version } : { t: 'sub', topic });
  }

  #onFrame(frame) {
    const message = JSON.parse(frame);
    this.messages.push(message);
    if (this.messages.length > this.#keep) this.messages.splice(0, this.messages.length - this.#keep);
    const items = message.t === 'batch' ? message.items : [message];
    for (const item of items) this.#apply(item);
  }

  #apply(message) {
    switch (message.t) {
      case 'snap':
        this.#replicas.set(message.topic, { epoch: message.epoch, version: message.version, data: message.data });
        this.#ack(message.topic, message.version);
        return;
      case 'patch': {
        const held = this.#replicas.get(message.topic);
        if (!held || held.epoch !== message.epoch || held.version !== message.from) {
          // Not a patch for what we hold: never apply it; resume from what we have.
          this.gaps += 1;
          if (this.#connection && this.#subscribed.has(message.topic)) this.#sub(message.topic);
          return;
        }
        const data = applyPatch(held.data, message.ops);
        this.#replicas.set(message.topic, { epoch: message.epoch, version: message.to, data });
        this.#ack(message.topic, message.to);
        return;
      }
      case 'gone':
        // The topic left the hub (deleted, expired, evicted): nothing to hold.
        // The subscription stays; if the topic comes back it arrives as a snapshot.
        this.#replicas.delete(message.topic);
        return;
      case 'err':
        this.errors.push(message);
        return;
      case 'ping':
        if (this.#connection) this.send({ t: 'pong' });
        return;
      default:
        this.errors.push({ t: 'err', code: 'UNEXPECTED_MESSAGE', message: JSON.stringify(message) });
    }
  }

  #ack(topic, version) {
    if (this.#autoAck && this.#connection) this.send({ t: 'ack', topic, version });
  }
}

/**
 * An in-process client of `hub`; `{ user, ack }` as for a real connection.
 * ack (default true) acknowledges what it applies, as a real client must for
 * its credit window to reopen; `ack: false` makes a client that stalls.
 */
function createTestClient(hub, options) {
  return new TestClient(hub, options);
}

/**
 * Manual clock: resolves once everything already asked of the hub has been
 * answered and its frames delivered (hub.advance(0)).
 */
function settle(hub) {
  return hub.advance(0);
}

/** Manual clock: moves time by `ms` in steps of `step` ms, settling after each. */
async function tick(hub, ms, step = ms) {
  if (!(step > 0)) throw new DeltacastError(codes.INVALID_ARGUMENT, 'step must be positive');
  for (let done = 0; done < ms; done += step) await hub.advance(Math.min(step, ms - done));
}

module.exports = { createTestClient, TestClient, settle, tick };
