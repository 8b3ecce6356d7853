'use strict';

/**
 * The one error class deltacast throws. `code` is stable and safe to branch on;
 * `message` is for humans and may change.
 */
class DeltacastError extends Error {
  /**
   * @param {string} code    e.g. 'DELTACAST_INVALID_JSON'
   * @param {string} message what was wrong and where
   * @param {object} [details] extra fields copied onto the error (index, path, ...)
   */
  constructor(code, message, details) {
    super(message);
    this.name = 'DeltacastError';
    this.code = code;
    if (details) Object.assign(this, details);
  }
}

/** Every code deltacast uses, for users who want to switch on them. */
const codes = Object.freeze({
  INVALID_ARGUMENT: 'DELTACAST_INVALID_ARGUMENT',
  INVALID_JSON: 'DELTACAST_INVALID_JSON',
  INVALID_VALUE: 'DELTACAST_INVALID_VALUE',
  INVALID_PATCH: 'DELTACAST_INVALID_PATCH',
  INVALID_POINTER: 'DELTACAST_INVALID_POINTER',
  PATH_NOT_FOUND: 'DELTACAST_PATH_NOT_FOUND',
  PATCH_TEST_FAILED: 'DELTACAST_PATCH_TEST_FAILED',
  TOO_LARGE: 'DELTACAST_TOO_LARGE',
  TOO_DEEP: 'DELTACAST_TOO_DEEP',
  INVALID_TOPIC: 'DELTACAST_INVALID_TOPIC',
  NOT_KEYED_ARRAY: 'DELTACAST_NOT_KEYED_ARRAY',
  CLOSED: 'DELTACAST_CLOSED',
  INTERNAL: 'DELTACAST_INTERNAL',
  TOO_MANY_OPS: 'DELTACAST_TOO_MANY_OPS',
});

/** Turns an error thrown by the addon (a plain Error with a DELTACAST_ code) into a DeltacastError. */
function fromNative(err) {
  if (err && typeof err.code === 'string' && err.code.startsWith('DELTACAST_')) {
    const e = new DeltacastError(err.code, err.message);
    return e;
  }
  return err;
}

module.exports = { DeltacastError, codes, fromNative };
