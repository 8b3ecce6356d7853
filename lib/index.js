'use strict';

const native = require('./native');
const { applyPatch, jsonEqual } = require('./apply_patch');
const { DeltacastError, codes } = require('./errors');
const { createHub } = require('./hub');
const { Utf8Scratch, toJsonText } = require('./to_native');

// Two scratches: diff hands both documents over in one call.
const scratchA = new Utf8Scratch();
const scratchB = new Utf8Scratch();
const utf8A = (text) => (typeof text === 'string' ? scratchA.view(text) : text);
const utf8B = (text) => (typeof text === 'string' ? scratchB.view(text) : text);

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
  const ops = native.diffJson(utf8A(toJsonText(a, 'the first value')), utf8B(toJsonText(b, 'the second value')), key);
  return JSON.parse(ops);
}

/** diff() for values already held as JSON text (string or UTF-8 bytes): nothing is parsed in JS. */
function diffJson(a, b, options) {
  const key = arrayKeyOption(options);
  if (!isJsonText(a) || !isJsonText(b)) {
    throw new DeltacastError(codes.INVALID_ARGUMENT, 'diffJson takes two JSON texts (strings or Uint8Arrays)');
  }
  return JSON.parse(native.diffJson(utf8A(a), utf8B(b), key));
}

/**
 * Applies a patch to a document held as JSON text, natively; returns the new
 * text. `ops` may be an array of operations or its JSON text.
 */
function applyPatchJson(doc, ops) {
  if (!isJsonText(doc)) {
    throw new DeltacastError(codes.INVALID_ARGUMENT, 'applyPatchJson takes the document as JSON text (string or Uint8Array)');
  }
  const opsText = isJsonText(ops) ? ops : toJsonText(ops, 'the patch');
  return native.applyPatchJson(utf8A(doc), utf8B(opsText));
}

module.exports = {
  createHub,
  diff,
  diffJson,
  applyPatch,
  applyPatchJson,
  jsonEqual,
  DeltacastError,
  codes,
};
// `import deltacast from 'deltacast'` from TypeScript or bundlers that read CommonJS.
module.exports.default = module.exports;
