'use strict';
// deltacast/testing: an in-process client that speaks the wire protocol
// against a hub (no sockets) and keeps a replica of every topic it follows,
// plus helpers for the manual clock. What a JS test harness needs to drive a
// hub the way real clients would.

const { DeltacastError, codes } = require('./errors');
const { ProtocolClient } = require('./protocol_client');

class TestClient {
  #hub;
  #user;
  #connection = null;
  #autoAck;
  #unacked = new Map(); // topic -> newest version applied on this connection and not acknowledged (stalled)
  #keep;
  #protocol;

  constructor(hub, { user, ack = true, keep = 1000 } = {}) {
    this.#hub = hub;
    this.#user = user;
    this.#autoAck = ack;
    this.#keep = keep;
    this.#protocol = new ProtocolClient({
      // What the protocol client says goes out only while connected.
      send: (text) => this.#connection?.receive(text),
      onApplied: (topic, version) => {
        if (!this.#connection) return;
        if (this.#autoAck) this.#protocol.ack(topic, version);
        else this.#unacked.set(topic, version);
      },
    });
    /** The messages received, parsed, in order: the last `keep` (default 1000). */
    this.messages = [];
    this.connect();
  }

  /** The `err` messages received. */
  get errors() {
    return this.#protocol.errors;
  }

  /** Patches that did not follow the held version (each triggered a re-subscription). */
  get gaps() {
    return this.#protocol.gaps;
  }

  /** Patches that followed the held version but failed to apply (state kept, re-subscribed). */
  get failedPatches() {
    return this.#protocol.failedPatches;
  }

  get connected() {
    return this.#connection !== null;
  }

  /** Opens a connection (the constructor does); after disconnect(), resumes every topic. */
  connect() {
    if (this.#connection) return;
    this.#unacked.clear(); // versions applied on an earlier connection are not acknowledged on this one
    this.#connection = this.#hub.connect({
      send: (frame) => this.#onFrame(frame),
      close: () => {
        this.#connection = null;
      },
      user: this.#user,
    });
    this.#protocol.resubscribeAll();
  }

  /** Stops acknowledging: the hub soon holds this client's updates back (conflation). */
  stall() {
    this.#autoAck = false;
  }

  /**
   * Acknowledges what it applied while stalled (on this connection: an ack is
   * for a version the connection was sent) and acks from now on: held-back
   * topics catch up.
   */
  resume() {
    this.#autoAck = true;
    const unacked = [...this.#unacked];
    this.#unacked.clear();
    if (!this.#connection) return;
    for (const [topic, version] of unacked) this.#protocol.ack(topic, version);
  }

  /** Drops the connection; replicas are kept for resuming. */
  disconnect() {
    this.#connection?.close();
    this.#connection = null;
  }

  subscribe(topic) {
    this.#protocol.subscribe(topic);
  }

  unsubscribe(topic) {
    if (!this.#connection) throw new DeltacastError(codes.CLOSED, 'the test client is disconnected');
    this.#protocol.unsubscribe(topic);
  }

  /** The replica of a topic: { epoch, version, data }, or undefined. */
  get(topic) {
    return this.#protocol.get(topic);
  }

  /** Sends a raw client message (an object is serialized; a string goes as is). */
  send(message) {
    if (!this.#connection) throw new DeltacastError(codes.CLOSED, 'the test client is disconnected');
    this.#connection.receive(typeof message === 'string' ? message : JSON.stringify(message));
  }

  #onFrame(frame) {
    const message = this.#protocol.receive(frame);
    this.messages.push(message);
    if (this.messages.length > this.#keep) this.messages.splice(0, this.messages.length - this.#keep);
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
 * answered and delivered, paced changes included. It moves the clock by the
 * longest pacing window (the largest of pacing.highWindowMs,
 * pacing.normalDebounceMs and pacing.lowIntervalMs: 1000 ms by default), which
 * flushes every change waiting on its lane, then lets the hub handle what the
 * clients answered (acks, re-subscriptions) and delivers that too.
 * `{ pacing: false }`: the clock does not move; paced changes stay pending.
 */
async function settle(hub, { pacing = true } = {}) {
  await hub.advance(0);
  if (pacing) {
    const { highWindowMs, normalDebounceMs, lowIntervalMs } = hub.options.pacing;
    const longest = Math.max(highWindowMs, normalDebounceMs, lowIntervalMs);
    if (longest > 0) await hub.advance(longest);
  }
  await hub.advance(0);
}

/** Manual clock: moves time by `ms` in steps of `step` ms, settling after each. */
async function tick(hub, ms, step = ms) {
  if (!(step > 0)) throw new DeltacastError(codes.INVALID_ARGUMENT, 'step must be positive');
  for (let done = 0; done < ms; done += step) await hub.advance(Math.min(step, ms - done));
}

module.exports = { createTestClient, TestClient, settle, tick };
