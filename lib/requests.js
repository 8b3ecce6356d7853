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
// the calls waiting for them sit in a FIFO (ReceiptQueue).
//
// A change call returns a Receipt: a thenable whose promise is made only when
// somebody asks for it (then/catch/finally, or await). Fire-and-forget
// publishing, the common case for a feed, never pays for a promise. A receipt
// rejected before anybody asked makes its rejected promise at once, so an
// ignored failure is reported as an unhandled rejection, as a promise's would be.

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
});

const encoder = new TextEncoder();
const INITIAL_BYTES = 64 * 1024;
// A batch this big is handed over at once rather than at the end of the job:
// memory for queued requests stays bounded whatever a loop publishes.
const FLUSH_BYTES = 1024 * 1024;
// Strings up to this many UTF-16 units are copied by a JS loop when they are
// ASCII (faster than encodeInto's call overhead for short strings).
const SHORT_STRING = 64;

class RequestWriter {
  #bytes = new Uint8Array(INITIAL_BYTES);
  #view = new DataView(this.#bytes.buffer);
  /** Bytes written so far. */
  length = 0;

  #reserve(extra) {
    const needed = this.length + extra;
    if (needed <= this.#bytes.length) return;
    let size = this.#bytes.length * 2;
    while (size < needed) size *= 2;
    const bigger = new Uint8Array(size);
    bigger.set(this.#bytes.subarray(0, this.length));
    this.#bytes = bigger;
    this.#view = new DataView(bigger.buffer);
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
    this.#reserve(4 + units * 3);
    const bytes = this.#bytes;
    const start = this.length + 4;
    let written = -1;
    if (units <= SHORT_STRING) {
      let at = start;
      for (let i = 0; i < units; i++) {
        const c = text.charCodeAt(i);
        if (c >= 0x80) {
          at = -1;
          break;
        }
        bytes[at++] = c;
      }
      if (at >= 0) written = at - start;
    }
    if (written < 0) written = encoder.encodeInto(text, bytes.subarray(start)).written;
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

  /** A string or a Uint8Array. */
  text(value) {
    if (typeof value === 'string') this.str(value);
    else this.bytes(value);
  }

  /** The records written since the last reset, as a view (valid until the next write). */
  view() {
    return this.#bytes.subarray(0, this.length);
  }

  reset() {
    this.length = 0;
    // A burst may have grown the buffer; do not keep megabytes for ever.
    if (this.#bytes.length > 4 * FLUSH_BYTES) {
      this.#bytes = new Uint8Array(INITIAL_BYTES);
      this.#view = new DataView(this.#bytes.buffer);
    }
  }
}

// What a receipt's answer means to its caller.
const ANSWER_CHANGE = 0; // { epoch, version } or null
const ANSWER_FOUND = 1; // boolean
const ANSWER_NONE = 2; // undefined

const PENDING = 0;
const FULFILLED = 1;
const REJECTED = 2;

/**
 * The answer to one hub call: a thenable (then/catch/finally, usable with
 * await, Promise.all and friends) whose promise is made on first use.
 */
class Receipt {
  #state = PENDING;
  #answer;
  #value; // FULFILLED: the value, made on first use; REJECTED: the error
  #flags = 0;
  #version = 0;
  #epoch = '';
  #promise = null;
  #resolve = null;
  #reject = null;

  constructor(answer) {
    this.#answer = answer;
  }

  static rejected(error) {
    const receipt = new Receipt(ANSWER_NONE);
    receipt._reject(error);
    return receipt;
  }

  /** @internal the core's answer */
  _fulfil(flags, version, epoch) {
    if (this.#state !== PENDING) return;
    this.#state = FULFILLED;
    this.#flags = flags;
    this.#version = version;
    this.#epoch = epoch;
    if (this.#resolve !== null) {
      this.#resolve(this.#result());
      this.#resolve = this.#reject = null;
    }
  }

  /** @internal */
  _reject(error) {
    if (this.#state !== PENDING) return;
    this.#state = REJECTED;
    this.#value = error;
    if (this.#reject !== null) {
      this.#reject(error);
      this.#resolve = this.#reject = null;
    } else {
      // Nobody has asked yet: the promise exists from now on, so a rejection
      // nobody handles is reported like any other.
      this.#promise = Promise.reject(error);
    }
  }

  #result() {
    if (this.#value === undefined) {
      if (this.#answer === ANSWER_CHANGE) {
        this.#value = (this.#flags & 1) !== 0 ? { epoch: this.#epoch, version: this.#version } : null;
      } else if (this.#answer === ANSWER_FOUND) {
        this.#value = (this.#flags & 4) !== 0;
      }
    }
    return this.#value;
  }

  /** The receipt as a real Promise (made once). */
  promise() {
    if (this.#promise === null) {
      if (this.#state === FULFILLED) {
        this.#promise = Promise.resolve(this.#result());
      } else {
        this.#promise = new Promise((resolve, reject) => {
          this.#resolve = resolve;
          this.#reject = reject;
        });
      }
    }
    return this.#promise;
  }

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

/** Receipts waiting for answers, oldest first. */
class ReceiptQueue {
  #items = [];
  #head = 0;

  get size() {
    return this.#items.length - this.#head;
  }

  push(receipt) {
    this.#items.push(receipt);
  }

  shift() {
    if (this.#head >= this.#items.length) return undefined;
    const receipt = this.#items[this.#head];
    this.#items[this.#head++] = undefined;
    if (this.#head >= 1024 && this.#head * 2 >= this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return receipt;
  }

  /** Removes and returns the newest receipts (a batch that never reached the core). */
  popNewest(count) {
    const start = this.#items.length - count;
    const newest = this.#items.slice(start);
    this.#items.length = start;
    return newest;
  }

  drainAll() {
    const all = this.#items.slice(this.#head);
    this.#items = [];
    this.#head = 0;
    return all;
  }
}

module.exports = {
  KIND,
  FLUSH_BYTES,
  RequestWriter,
  Receipt,
  ReceiptQueue,
  ANSWER_CHANGE,
  ANSWER_FOUND,
  ANSWER_NONE,
};
