'use strict';
// JS values and strings on their way to the addon.
//
// toJsonText: JSON.stringify with deltacast's errors.
//
// Utf8Scratch: handing a JS string to the addon as UTF-8. N-API's string conversion
// (napi_get_value_string_utf8) measures the string, then transcodes it, at
// about 1 GB/s here; TextEncoder#encodeInto runs V8's SIMD path and is an
// order of magnitude faster. So strings go over as a view of a reusable
// scratch buffer, which the addon copies (or reads) before returning.

const { DeltacastError, codes } = require('./errors');

const encoder = new TextEncoder();

/** Serializes a value for the core; a value JSON cannot carry is a DELTACAST_INVALID_VALUE. */
function toJsonText(value, what) {
  let text;
  try {
    text = JSON.stringify(value);
  } catch (err) {
    // V8's messages say which property closes a cycle, or that a BigInt was met.
    throw new DeltacastError(codes.INVALID_VALUE, `${what} cannot be represented as JSON: ${err.message}`);
  }
  if (text === undefined) {
    throw new DeltacastError(codes.INVALID_VALUE, `${what} cannot be represented as JSON: it is ${describe(value)}`);
  }
  return text;
}

function describe(value) {
  if (value === undefined) return 'undefined';
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'symbol') return 'a symbol';
  return typeof value;
}

// Strings up to this many UTF-16 units use the scratch buffer; larger ones get
// a one-off buffer, so a single huge value does not pin memory for ever.
const SCRATCH_LIMIT = 4 * 1024 * 1024;

class Utf8Scratch {
  #buffer = new Uint8Array(64 * 1024);

  /** A view of `text` as UTF-8, valid until the next call on this scratch. */
  view(text) {
    const worstCase = text.length * 3;
    if (worstCase > SCRATCH_LIMIT) {
      // One-off, uninitialized: encodeInto fills it (Buffer.from(text) would
      // take the slow N-API-like path, 3-4x slower).
      const buffer = Buffer.allocUnsafeSlow(worstCase);
      return buffer.subarray(0, encoder.encodeInto(text, buffer).written);
    }
    if (worstCase > this.#buffer.length) {
      this.#buffer = new Uint8Array(Math.min(SCRATCH_LIMIT, Math.max(worstCase, this.#buffer.length * 2)));
    }
    const { written } = encoder.encodeInto(text, this.#buffer);
    return this.#buffer.subarray(0, written);
  }
}

/**
 * Refuses, with DELTACAST_TOO_LARGE worded as the core words it, a JSON text
 * that cannot fit `maxBytes`, before it is encoded or copied: a string of
 * more UTF-16 units (its UTF-8 is at least as long; encoding 70 Mi units
 * takes about 0.2 s), or a Uint8Array of more bytes (copying 64 MiB for the
 * core takes about 60 ms). `what`: the core's prefix for the text
 * ('first document: ', 'row: ', or '').
 */
function checkUtf8Size(text, maxBytes, what) {
  if (typeof text === 'string') {
    if (text.length > maxBytes) {
      throw new DeltacastError(codes.TOO_LARGE, `${what}JSON text of at least ${text.length} bytes is over the limit of ${maxBytes} bytes`);
    }
  } else if (text instanceof Uint8Array && text.byteLength > maxBytes) {
    throw new DeltacastError(codes.TOO_LARGE, `${what}JSON text of ${text.byteLength} bytes is over the limit of ${maxBytes} bytes`);
  }
}

module.exports = { Utf8Scratch, toJsonText, checkUtf8Size };
