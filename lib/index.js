'use strict';

const native = require('./native');
const { applyPatch, jsonEqual, checkOperationValues } = require('./apply_patch');
const { DeltacastError, codes } = require('./errors');
const { createHub } = require('./hub');
const { Utf8Scratch, toJsonText, checkUtf8Size } = require('./to_native');

// Two scratches: diff hands both documents over in one call.
const scratchA = new Utf8Scratch();
const scratchB = new Utf8Scratch();

// The core's limit on one JSON text (ParseLimits::maxBytes, json_tape.h).
const MAX_TEXT_BYTES = 64 * 1024 * 1024;

/** A string's UTF-8, bytes as they are (DELTACAST_TOO_LARGE at once for a text that cannot fit: checkUtf8Size). */
function utf8(scratch, text, name) {
  checkUtf8Size(text, MAX_TEXT_BYTES, `${name}: `);
  return typeof text === 'string' ? scratch.view(text) : text;
}
const utf8A = (text, name) => utf8(scratchA, text, name);
const utf8B = (text, name) => utf8(scratchB, text, name);

/** The arrayKey option as the core takes it: '' turns keyed matching off. */
function arrayKeyOption(options) {
  if (options === undefined || options === null) return 'id';
  if (typeof options !== 'object') {
    throw new DeltacastError(codes.INVALID_ARGUMENT, 'options must be an object');
  }
  const key = options.arrayKey;
  if (key === undefined) return 'id';
  if (key === false) return '';
  if (typeof key !== 'string' || key === '') {
    throw new DeltacastError(codes.INVALID_ARGUMENT, 'options.arrayKey must be a non-empty string or false');
  }
  return key;
}

/** The output option of diff/diffJson: 'ops' (JS values, the default) or 'json' (the patch as JSON text). */
function outputOption(options) {
  const output = options === undefined || options === null ? undefined : options.output;
  if (output === undefined || output === 'ops') return 'ops';
  if (output === 'json') return 'json';
  throw new DeltacastError(codes.INVALID_ARGUMENT, `options.output must be 'ops' or 'json', got ${String(output)}`);
}

const DEFAULT_MAX_PATCH_OPS = 10000;

/** applyPatchJson's options: { maxPatchOps } (operations per patch, DELTACAST_TOO_MANY_OPS above). */
function maxPatchOpsOption(options) {
  if (options === undefined || options === null) return DEFAULT_MAX_PATCH_OPS;
  if (typeof options !== 'object') throw new DeltacastError(codes.INVALID_ARGUMENT, 'options must be an object');
  const max = options.maxPatchOps;
  if (max === undefined) return DEFAULT_MAX_PATCH_OPS;
  if (!Number.isInteger(max) || max < 1 || max > 0xffffffff) {
    throw new DeltacastError(codes.INVALID_ARGUMENT, `options.maxPatchOps must be an integer from 1 to ${0xffffffff}, got ${String(max)}`);
  }
  return max;
}

function isJsonText(value) {
  return typeof value === 'string' || value instanceof Uint8Array;
}

/**
 * RFC 6902 operations that turn `a` into `b` (see index.d.ts).
 * Both values are serialized once with JSON.stringify (toJSON and all) and
 * diffed by the native core.
 */
function diff(a, b, options) {
  const key = arrayKeyOption(options);
  const output = outputOption(options);
  const ops = native.diffJson(utf8A(toJsonText(a, 'the first value'), 'first document'), utf8B(toJsonText(b, 'the second value'), 'second document'), key);
  return output === 'json' ? ops : JSON.parse(ops);
}

/**
 * diff() for values already held as JSON text (string or UTF-8 bytes). With { output: 'json' } the
 * patch comes back as JSON text, values copied from `b` as written (nothing rounded to a double).
 */
function diffJson(a, b, options) {
  const key = arrayKeyOption(options);
  const output = outputOption(options);
  if (!isJsonText(a) || !isJsonText(b)) {
    throw new DeltacastError(codes.INVALID_ARGUMENT, 'diffJson takes two JSON texts (strings or Uint8Arrays)');
  }
  const ops = native.diffJson(utf8A(a, 'first document'), utf8B(b, 'second document'), key);
  return output === 'json' ? ops : JSON.parse(ops);
}

/**
 * diffJson() off the event loop: the texts are copied, then parsed and diffed
 * on a thread of libuv's pool. Resolves as diffJson returns; rejects with the
 * DeltacastError diffJson would throw (argument errors too).
 */
async function diffJsonAsync(a, b, options) {
  const key = arrayKeyOption(options);
  const output = outputOption(options);
  if (!isJsonText(a) || !isJsonText(b)) {
    throw new DeltacastError(codes.INVALID_ARGUMENT, 'diffJsonAsync takes two JSON texts (strings or Uint8Arrays)');
  }
  // The scratch views are copied before the call returns.
  const ops = await native.diffJsonAsync(utf8A(a, 'first document'), utf8B(b, 'second document'), key);
  return output === 'json' ? ops : JSON.parse(ops);
}

/**
 * Applies a patch to a document held as JSON text, natively; returns the new
 * text. `ops` may be an array of operations or its JSON text. Every value the
 * patch does not touch keeps its text byte for byte. Patch values JSON cannot
 * carry (NaN, Infinity, undefined, ...) are refused as applyPatch refuses them.
 */
function applyPatchJson(doc, ops, options) {
  const maxOps = maxPatchOpsOption(options);
  if (!isJsonText(doc)) {
    throw new DeltacastError(codes.INVALID_ARGUMENT, 'applyPatchJson takes the document as JSON text (string or Uint8Array)');
  }
  let opsText = ops;
  if (!isJsonText(ops)) {
    checkOperationValues(ops);
    opsText = toJsonText(ops, 'the patch');
  }
  return native.applyPatchJson(utf8A(doc, 'document'), utf8B(opsText, 'patch'), maxOps);
}

module.exports = {
  createHub,
  diff,
  diffJson,
  diffJsonAsync,
  applyPatch,
  applyPatchJson,
  jsonEqual,
  DeltacastError,
  codes,
};
// `import deltacast from 'deltacast'` from TypeScript or bundlers that read CommonJS.
module.exports.default = module.exports;
