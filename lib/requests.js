'use strict';
// The hand-over from the JS thread to the core, batched.
//
// Crossing into the addon costs about a microsecond a call once arguments are
// converted and a request is posted to another thread; a feed making a
// million calls would spend a second of its event loop on that alone. So the
// hub writes each request as a record into one byte buffer (RequestWriter)
// and hands the whole buffer over once, at the end of the current job (a
// microtask), or sooner when it grows past FLUSH_BYTES. The record format is
// documented in native/include/deltacast/request.h.
//
// Answers come back in order (the core runs requests one after another), so
// the batches waiting for them sit in a FIFO (BatchQueue).
//
// A change call returns a Receipt: a thenable whose promise is made only when
// somebody asks for it (then/catch/finally, or await). Fire-and-forget
// publishing, the common case for a feed, never pays for a promise. A receipt
// rejected before anybody asked makes its rejected promise at once, so an
// ignored failure is reported as an unhandled rejection, as a promise's would be.

// Record kinds: the order of RequestKind in native/include/deltacast/request.h.
const KIND = Object.freeze({
  publishJson: 0,
  patch: 1,
  upsert: 2,
  remove: 3,
  delete: 4,
  advance: 5,
  close: 6,
  connect: 7,
  disconnect: 8,
  receive: 9,
  congestion: 10,
  reauth: 11,
  replicate: 12,
  refuse: 13,
  hold: 14,
  release: 15,
  redate: 16,
});

// On a change's lane byte: the change releases the topic's held value, asked
// for by its flush; or carries it before the flush asked (request.h). Either
// is not applied when the topic was removed after the value was published.
const RELEASE_FLAG = 0x80;
const HELD_FLAG = 0x40;

const { DeltacastError, codes } = require('./errors');

const encoder = new TextEncoder();
const INITIAL_BYTES = 64 * 1024;
// A batch this big is handed over at once rather than at the end of the job:
// memory for queued requests stays bounded whatever a loop publishes.
const FLUSH_BYTES = 1024 * 1024;
// Strings up to this many UTF-16 units are copied by a JS loop when they are
// ASCII (faster than encodeInto's call overhead for short strings).
const SHORT_STRING = 64;
// Payloads from this many bytes (or UTF-16 units) on are staged: handed to the
// addon on their own, copied once, instead of being copied into the buffer
// and out of it again.
const STAGE_FROM = 64 * 1024;
// A payload length that names a staged payload instead (kStagedPayload).
const STAGED = 0xffffffff;

/** A view whose ArrayBuffer was transferred or detached (its bytes are gone). */
function isDetached(view) {
  const buffer = view.buffer;
  if (typeof buffer.detached === 'boolean') return buffer.detached;
  // Before ArrayBuffer.prototype.detached: a detached buffer cannot be viewed.
  try {
    new Uint8Array(buffer, 0, 0);
    return false;
  } catch {
    return true;
  }
}

function allocate(size) {
  const buffer = Buffer.allocUnsafeSlow(size);
  return new Uint8Array(buffer.buffer, buffer.byteOffset, size);
}

class RequestWriter {
  #stage;
  /** @type {Uint8Array | null} UTF-8 of staged strings, reused (see #encodeStaged). */
  #staging = null;
  #stagedBytes = 0;
  #bytes;
  /** Bytes staged (strings and byte arrays) since the last reset. */
  staged = 0;
  #view;
  /** Bytes written so far. */
  length = 0;

  /** `stage(bytes: Uint8Array) -> index`: hands a large payload over on its own. */
  constructor(stage) {
    this.#stage = stage;
    this.#use(allocate(INITIAL_BYTES));
  }

  #use(bytes) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /**
   * Room for `extra` bytes after the first `kept` (default: the records
   * written so far). A string being encoded keeps what it encoded already
   * past `length`: those bytes are copied too.
   */
  #reserve(extra, kept = this.length) {
    const needed = kept + extra;
    if (needed <= this.#bytes.length) return;
    let size = this.#bytes.length * 2;
    while (size < needed) size *= 2;
    // Not zero-filled: every byte is written before it is read.
    const bigger = allocate(size);
    bigger.set(this.#bytes.subarray(0, kept));
    this.#use(bigger);
  }

  u8(value) {
    this.#reserve(1);
    this.#bytes[this.length++] = value;
  }

  u32(value) {
    this.#reserve(4);
    this.#view.setUint32(this.length, value, true);
    this.length += 4;
  }

  f64(value) {
    this.#reserve(8);
    this.#view.setFloat64(this.length, value, true);
    this.length += 8;
  }

  /** A length-prefixed UTF-8 string. */
  str(text) {
    const units = text.length;
    const start = this.length + 4;
    if (units <= SHORT_STRING) {
      this.#reserve(4 + units * 3);
      const bytes = this.#bytes;
      let at = start;
      for (let i = 0; i < units; i++) {
        const c = text.charCodeAt(i);
        if (c >= 0x80) {
          at = -1;
          break;
        }
        bytes[at++] = c;
      }
      if (at < 0) at = start + encoder.encodeInto(text, bytes.subarray(start)).written;
      this.#view.setUint32(this.length, at - start, true);
      this.length = at;
      return;
    }
    // Room for one byte a unit (exact for ASCII); if the text needs more,
    // grow and encode the rest (encodeInto never splits a surrogate pair).
    this.#reserve(4 + units);
    let { read, written } = encoder.encodeInto(text, this.#bytes.subarray(start));
    while (read < units) {
      const rest = text.substring(read);
      this.#reserve(rest.length * 3, start + written); // the record so far and the bytes encoded
      const more = encoder.encodeInto(rest, this.#bytes.subarray(start + written));
      read += more.read;
      written += more.written;
    }
    this.#view.setUint32(this.length, written, true);
    this.length = start + written;
  }

  /** A length-prefixed byte string (a Uint8Array copied as it is). */
  bytes(data) {
    this.#reserve(4 + data.length);
    this.#view.setUint32(this.length, data.length, true);
    this.#bytes.set(data, this.length + 4);
    this.length += 4 + data.length;
  }

  /** A payload (a string or a Uint8Array): inline, or staged when large. */
  payload(value) {
    if (value.length < STAGE_FROM) {
      if (typeof value === 'string') this.str(value);
      else this.bytes(value);
      return;
    }
    const bytes = typeof value === 'string' ? this.#encodeStaged(value) : value;
    const index = this.#stage(bytes);
    this.staged += bytes.length;
    this.u32(STAGED);
    this.u32(index);
  }

  /**
   * A large string as UTF-8, in a buffer kept from one staged payload to the
   * next (the addon copies the bytes before stage() returns): no fresh
   * allocation, and no page faults on it, for every large publish. Room for
   * one byte a unit first (exact for ASCII, what JSON.stringify mostly
   * makes); grown only when the text needs more.
   */
  #encodeStaged(text) {
    const units = text.length;
    let buffer = this.#staging;
    if (buffer === null || buffer.length < units) {
      buffer = this.#staging = allocate(units + (units >> 4));
    }
    let { read, written } = encoder.encodeInto(text, buffer);
    while (read < units) {
      const bigger = allocate(written + (units - read) * 3);
      bigger.set(buffer.subarray(0, written));
      buffer = this.#staging = bigger;
      const more = encoder.encodeInto(text.substring(read), buffer.subarray(written));
      read += more.read;
      written += more.written;
    }
    this.#stagedBytes += written;
    return buffer.subarray(0, written);
  }

  /**
   * Forgets everything written from `start` on (a record whose writing threw):
   * the core never sees a partial record. A payload staged meanwhile stays
   * with the addon unnamed by any record, and goes with the next submit.
   */
  rollback(start) {
    this.length = start;
  }

  /** The records written since the last reset, as a view (valid until the next write). */
  view() {
    return this.#bytes.subarray(0, this.length);
  }

  reset() {
    // A big value grew the buffer: keep it while batches still need a good
    // part of it, give it back after one that did not. The same for the
    // staging buffer of large strings.
    if (this.#bytes.length > 4 * FLUSH_BYTES && this.length * 8 < this.#bytes.length) {
      this.#use(allocate(INITIAL_BYTES));
    }
    if (this.#staging !== null && this.#stagedBytes * 8 < this.#staging.length) this.#staging = null;
    this.#stagedBytes = 0;
    this.staged = 0;
    this.length = 0;
  }
}

// What a receipt's answer means to its caller.
const ANSWER_CHANGE = 0; // { epoch, version } or null
const ANSWER_FOUND = 1; // boolean
const ANSWER_NONE = 2; // undefined
const ANSWER_STATE = 3; // { epoch, version } always (a replica's local state; version 0: absent)

/**
 * The answers to the calls of one handed-over buffer, in call order. The
 * receipts point here (the queue of batches does not point at receipts), so
 * a receipt its caller dropped is garbage at once, however far behind the
 * core is; only receipts somebody awaits are listed (`waiting`).
 */
class AnswerBatch {
  firstId; // the request id of the first call; the others follow (nextRequestId)
  count = 0; // calls in the batch
  received = 0; // answers so far (they may come in several drains)
  answers = null; // Float64Array, three slots a call: flags, version, packed epoch (NaN: see texts)
  texts = null; // Map index -> epoch string that did not pack
  errors = null; // Map index -> { error, promise }
  waiting = null; // receipts awaited before their answer came

  constructor(firstId = 0) {
    this.firstId = firstId;
  }

  /** The request id of the next call to be answered. */
  get expectedId() {
    return ((this.firstId - 1 + this.received) % 0xffffffff) + 1;
  }

  seal() {
    if (this.count > 0) this.answers = new Float64Array(this.count * 3);
  }

  /** Records the next answer; an error nobody awaits is reported as an unhandled rejection. */
  add(flags, version, epoch, error) {
    const index = this.received++;
    if (error !== null) {
      this.errors ??= new Map();
      // Made now, so that a rejection nobody handles is reported as a promise's would be.
      this.errors.set(index, { error, promise: this.#awaited(index) ? null : Promise.reject(error) });
      return;
    }
    const slot = index * 3;
    this.answers[slot] = flags;
    this.answers[slot + 1] = version;
    if (typeof epoch === 'number') {
      this.answers[slot + 2] = epoch;
    } else {
      this.answers[slot + 2] = NaN;
      this.texts ??= new Map();
      this.texts.set(index, epoch);
    }
  }

  #awaited(index) {
    if (this.waiting === null) return false;
    for (const receipt of this.waiting) if (receipt._index === index) return true;
    return false;
  }

  /** Settles the awaited receipts whose answers are in. */
  settleWaiting() {
    if (this.waiting === null) return;
    const still = [];
    for (const receipt of this.waiting) {
      if (receipt._index < this.received) receipt._settle();
      else still.push(receipt);
    }
    this.waiting = still.length > 0 ? still : null;
  }

  /** The calls not answered yet fail with `error` (the hub is gone). */
  failRest(error) {
    while (this.received < this.count) this.add(0, 0, 0, error);
    this.settleWaiting();
  }
}

/**
 * then/catch/finally over `this.promise()`, and the tag: what a call's
 * Receipt and the receipt coalesced publishes share (lib/hub.js Held) have in
 * common.
 */
class Thenable {
  then(onFulfilled, onRejected) {
    return this.promise().then(onFulfilled, onRejected);
  }

  catch(onRejected) {
    return this.promise().catch(onRejected);
  }

  finally(onFinally) {
    return this.promise().finally(onFinally);
  }

  get [Symbol.toStringTag]() {
    return 'Receipt';
  }
}

/**
 * The answer to one hub call: a thenable (then/catch/finally, usable with
 * await, Promise.all and friends) whose promise is made on first use.
 * Three fields: a million may be alive at once.
 */
class Receipt extends Thenable {
  #batch;
  #bits; // index * 4 + answer
  #promise = null; // null, a Promise, or while pending { promise, resolve, reject }

  constructor(answer, batch) {
    super();
    this.#batch = batch;
    this.#bits = batch.count++ * 4 + answer;
  }

  static rejected(error) {
    const batch = new AnswerBatch();
    const receipt = new Receipt(ANSWER_NONE, batch);
    batch.seal();
    batch.add(0, 0, 0, error);
    return receipt;
  }

  /** @internal this call's place in its batch */
  get _index() {
    return Math.floor(this.#bits / 4);
  }

  /** @internal the answer is in: resolve or reject the promise made while waiting */
  _settle() {
    const deferred = this.#promise;
    this.#promise = deferred.promise;
    const failure = this.#batch.errors?.get(this._index);
    if (failure !== undefined) {
      failure.promise = deferred.promise;
      deferred.reject(failure.error);
    } else {
      deferred.resolve(this.#result());
    }
  }

  #result() {
    const batch = this.#batch;
    const index = this._index;
    const answer = this.#bits & 3;
    if (answer === ANSWER_NONE) return undefined;
    const flags = batch.answers[index * 3];
    if (answer === ANSWER_FOUND) return (flags & 4) !== 0;
    if ((flags & 1) === 0 && answer !== ANSWER_STATE) return null;
    const packed = batch.answers[index * 3 + 2];
    const epoch = Number.isNaN(packed) ? batch.texts.get(index) : packed.toString(16);
    return { epoch, version: batch.answers[index * 3 + 1] };
  }

  /** The receipt as a real Promise (made once). */
  promise() {
    const held = this.#promise;
    if (held instanceof Promise) return held;
    if (held !== null) return held.promise;
    if (this._index < this.#batch.received) {
      const failure = this.#batch.errors?.get(this._index);
      if (failure !== undefined) {
        failure.promise ??= Promise.reject(failure.error);
        this.#promise = failure.promise;
      } else {
        this.#promise = Promise.resolve(this.#result());
      }
      return this.#promise;
    }
    const deferred = { promise: null, resolve: null, reject: null };
    deferred.promise = new Promise((resolve, reject) => {
      deferred.resolve = resolve;
      deferred.reject = reject;
    });
    this.#promise = deferred;
    (this.#batch.waiting ??= []).push(this);
    return deferred.promise;
  }
}

/** Batches waiting for answers, oldest first. */
class BatchQueue {
  #items = [];
  #head = 0;
  /** Calls not answered yet, over every batch. */
  pending = 0;

  get head() {
    return this.#head < this.#items.length ? this.#items[this.#head] : undefined;
  }

  push(batch) {
    this.#items.push(batch);
    this.pending += batch.count;
  }

  /** Answers that matched no call waiting (each one a fault of the core, counted in stats().internalErrors). */
  unmatched = 0;

  /**
   * The answer to request `id`. Answers come in call order, so it is the
   * oldest call's; an id that is not means the core lost the answers of the
   * calls before it, which then fail with DELTACAST_INTERNAL rather than
   * take later calls' answers. An answer no call waits for is dropped and
   * counted. A batch fully answered leaves the queue and settles its
   * awaited receipts.
   */
  answer(id, flags, version, epoch, error) {
    if (!this.#waitsFor(id)) {
      this.unmatched += 1;
      return false;
    }
    for (;;) {
      const batch = this.head;
      if (batch.expectedId === id) {
        this.#add(batch, flags, version, epoch, error);
        return true;
      }
      this.unmatched += 1;
      this.#add(batch, 0, 0, 0, new DeltacastError(codes.INTERNAL, `the hub lost the answer to request ${batch.expectedId}`));
    }
  }

  #add(batch, flags, version, epoch, error) {
    batch.add(flags, version, epoch, error);
    this.pending -= 1;
    if (batch.received === batch.count) {
      this.#shift();
      batch.settleWaiting();
    }
  }

  /** Whether a call not answered yet has request id `id`. */
  #waitsFor(id) {
    for (let i = this.#head; i < this.#items.length; i++) {
      const batch = this.#items[i];
      const offset = (id - batch.firstId + 0xffffffff) % 0xffffffff; // wraps as the ids do
      if (offset >= batch.received && offset < batch.count) return true;
    }
    return false;
  }

  /** After a drain: the receipts awaited in a batch answered only in part. */
  settlePartial() {
    this.head?.settleWaiting();
  }

  #shift() {
    this.#items[this.#head++] = undefined;
    if (this.#head >= 64 && this.#head * 2 >= this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
  }

  drainAll() {
    const all = this.#items.slice(this.#head);
    this.#items = [];
    this.#head = 0;
    this.pending = 0;
    return all;
  }
}

module.exports = {
  Thenable,
  KIND,
  FLUSH_BYTES,
  isDetached,
  RequestWriter,
  AnswerBatch,
  Receipt,
  BatchQueue,
  ANSWER_CHANGE,
  ANSWER_FOUND,
  RELEASE_FLAG,
  HELD_FLAG,
  ANSWER_NONE,
  ANSWER_STATE,
};
