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

/**
 * Every code deltacast uses, in one table, for users who want to switch on
 * them: errors thrown, `err` frames, HTTP refusal bodies, process warnings.
 * (A test checks that every DELTACAST_ code string in lib/ and native/ is
 * here and in the README's table.)
 */
const codes = Object.freeze({
  // thrown by the API (DeltacastError)
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
  NOT_BUILT: 'DELTACAST_NOT_BUILT',
  // a hub with an engine (deltacast/redis)
  ENGINE_UNAVAILABLE: 'DELTACAST_ENGINE_UNAVAILABLE',
  CONFLICT: 'DELTACAST_CONFLICT',
  // `err` frames answering a client message (docs/protocol.md)
  INVALID_MESSAGE: 'DELTACAST_INVALID_MESSAGE',
  UNKNOWN_MESSAGE: 'DELTACAST_UNKNOWN_MESSAGE',
  MESSAGE_TOO_LARGE: 'DELTACAST_MESSAGE_TOO_LARGE',
  INVALID_ACK: 'DELTACAST_INVALID_ACK',
  FORBIDDEN: 'DELTACAST_FORBIDDEN',
  TOO_MANY_SUBSCRIPTIONS: 'DELTACAST_TOO_MANY_SUBSCRIPTIONS',
  RATE_LIMITED: 'DELTACAST_RATE_LIMITED',
  // refusals by the adapters (an upgrade, a connect_error, an HTTP answer)
  UNAUTHORIZED: 'DELTACAST_UNAUTHORIZED',
  INVALID_QUERY: 'DELTACAST_INVALID_QUERY',
  NOT_FOUND: 'DELTACAST_NOT_FOUND',
  TOPIC_NOT_FOUND: 'DELTACAST_TOPIC_NOT_FOUND',
  METHOD_NOT_ALLOWED: 'DELTACAST_METHOD_NOT_ALLOWED',
  URL_TOO_LONG: 'DELTACAST_URL_TOO_LONG',
  // a process warning (deltacast/socket.io without the internals it writes through)
  SOCKETIO_INTERNALS: 'DELTACAST_SOCKETIO_INTERNALS',
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
