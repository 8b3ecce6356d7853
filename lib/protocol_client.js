'use strict';
// The client side of the wire protocol (docs/protocol.md), without a
// transport: it is handed the server's frames (`receive`) and says what to send
// through `send(text)`. It keeps a replica of every topic it follows, never
// applies a patch that does not follow the version it holds, applies patches
// atomically, and re-subscribes from its version when a patch does not follow
// or does not apply. deltacast/testing and the delivery benchmarks use it.

const { applyPatch: defaultApplyPatch } = require('./apply_patch');

class ProtocolClient {
  #send;
  #applyPatch;
  #onApplied;
  /** topic -> { epoch, version, data } */
  #replicas = new Map();
  #subscribed = new Set();
  /** topic -> `${epoch}:${from}` of the last patch that failed to apply */
  #failed = new Map();

  /**
   * @param {object} options
   * @param {(text: string) => void} options.send  sends one client message
   * @param {(topic: string, version: number) => void} [options.onApplied]  after each snapshot or
   *   patch is applied (default: sends an `ack` for it)
   * @param {(doc: unknown, ops: unknown[]) => unknown} [options.applyPatch]  the patch applier
   *   (default: deltacast's pure `applyPatch`)
   */
  constructor({ send, onApplied, applyPatch = defaultApplyPatch }) {
    this.#send = send;
    this.#applyPatch = applyPatch;
    this.#onApplied = onApplied ?? ((topic, version) => this.ack(topic, version));
    /** Patches that did not follow the held version (each triggered a re-subscription). */
    this.gaps = 0;
    /** Patches that followed the held version but did not apply (state kept, re-subscribed). */
    this.failedPatches = 0;
    /** The `err` messages received. */
    this.errors = [];
  }

  /** The replica of a topic: { epoch, version, data }, or undefined. */
  get(topic) {
    return this.#replicas.get(topic);
  }

  /** The topics subscribed to, in order of subscription. */
  get topics() {
    return [...this.#subscribed];
  }

  /** Subscribes (again): from the version held, if any. */
  subscribe(topic) {
    this.#subscribed.add(topic);
    this.#sub(topic);
  }

  unsubscribe(topic) {
    this.#subscribed.delete(topic);
    this.#send(JSON.stringify({ t: 'unsub', topic }));
  }

  /** Re-subscribes every topic from the version held (after a reconnect). */
  resubscribeAll() {
    for (const topic of this.#subscribed) this.#sub(topic);
  }

  ack(topic, version) {
    this.#send(`{"t":"ack","topic":${JSON.stringify(topic)},"version":${version}}`);
  }

  /**
   * One frame from the server: JSON text, or the message already parsed.
   * Returns the parsed message.
   */
  receive(frame) {
    const message = typeof frame === 'string' ? JSON.parse(frame) : frame;
    if (message.t === 'batch') {
      for (const item of message.items) this.#apply(item);
    } else {
      this.#apply(message);
    }
    return message;
  }

  #sub(topic) {
    const held = this.#replicas.get(topic);
    // After the same patch failed twice, ask for a snapshot instead of the patch again.
    const fresh = held === undefined || this.#failed.get(topic)?.endsWith('!');
    this.#send(JSON.stringify(fresh ? { t: 'sub', topic } : { t: 'sub', topic, epoch: held.epoch, version: held.version }));
  }

  #apply(message) {
    switch (message.t) {
      case 'snap':
        this.#failed.delete(message.topic);
        this.#replicas.set(message.topic, { epoch: message.epoch, version: message.version, data: message.data });
        this.#onApplied(message.topic, message.version);
        return;
      case 'patch': {
        const held = this.#replicas.get(message.topic);
        if (!held || held.epoch !== message.epoch || held.version !== message.from) {
          // Not a patch for what we hold: never apply it; resume from what we have.
          this.gaps += 1;
          if (this.#subscribed.has(message.topic)) this.#sub(message.topic);
          return;
        }
        let data;
        try {
          data = this.#applyPatch(held.data, message.ops);
        } catch {
          // Atomic: the state held stays as it was. Re-subscribe from it; if the
          // server sends the same patch again and it fails again, ask for a snapshot.
          this.failedPatches += 1;
          const at = `${message.epoch}:${message.from}`;
          const before = this.#failed.get(message.topic);
          this.#failed.set(message.topic, before === at || before === `${at}!` ? `${at}!` : at);
          if (this.#subscribed.has(message.topic)) this.#sub(message.topic);
          return;
        }
        this.#failed.delete(message.topic);
        this.#replicas.set(message.topic, { epoch: message.epoch, version: message.to, data });
        this.#onApplied(message.topic, message.to);
        return;
      }
      case 'gone':
        // The topic left the server: nothing to hold. The subscription stays;
        // if the topic comes back it arrives as a snapshot.
        this.#failed.delete(message.topic);
        this.#replicas.delete(message.topic);
        return;
      case 'err':
        this.errors.push(message);
        return;
      case 'ping':
        this.#send('{"t":"pong"}');
        return;
      default:
        this.errors.push({ t: 'err', code: 'UNEXPECTED_MESSAGE', message: JSON.stringify(message) });
    }
  }
}

module.exports = { ProtocolClient };
