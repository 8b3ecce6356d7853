'use strict';
// What the carrier adapters (socket.io.js, ws.js) share: option checks, the
// identity hook, refusals, and the per-frame encoding cache. No protocol logic:
// every client message goes to Connection.receive and the core answers it.

const { DeltacastError, codes } = require('../errors');
const { RefusedMessage } = require('../hub');
const { SCHEMA } = require('../options');

/** The codes the adapters add to the core's (refusals on connect, bad carrier input); from lib/errors.js. */
const adapterCodes = Object.freeze({
  UNAUTHORIZED: codes.UNAUTHORIZED, // no identity, or the user hook refused it (HTTP 401)
  FORBIDDEN: codes.FORBIDDEN, // the identity is known and not admitted (HTTP 403)
  INVALID_MESSAGE: codes.INVALID_MESSAGE, // a binary frame, extra arguments, a value that is not a message
  UNKNOWN_MESSAGE: codes.UNKNOWN_MESSAGE, // an event other than the protocol's on an exclusive namespace
  CLOSED: codes.CLOSED, // the adapter was detached (HTTP 503 on a ws upgrade)
});

const retryFrames = new WeakMap(); // hub -> its retry frame

/**
 * The hub is closing (close code 1001: a restart, a deploy): before the close, every adapter sends
 * {"t":"retry","ms":<the hub's restartRetryMs>} so that clients spread their return uniformly
 * over that window instead of all coming back at once (docs/protocol.md, Closing). '' when the
 * option is 0: no hint, the clients use their own (deltacast/client: reconnect.restartMs).
 */
function retryFrame(hub) {
  let frame = retryFrames.get(hub);
  if (frame === undefined) {
    const ms = hub.options?.restartRetryMs ?? SCHEMA.restartRetryMs.default;
    frame = ms > 0 ? JSON.stringify({ t: 'retry', ms }) : '';
    retryFrames.set(hub, frame);
  }
  return frame;
}

function invalid(message) {
  return new DeltacastError(codes.INVALID_ARGUMENT, message);
}

function checkOptions(options, allowed, where) {
  if (options === undefined || options === null) return {};
  if (typeof options !== 'object') throw invalid(`${where} options must be an object`);
  for (const key of Object.keys(options)) {
    if (!allowed.includes(key)) throw invalid(`unknown option ${key} for ${where} (expected one of: ${allowed.join(', ')})`);
  }
  return options;
}

function positiveInteger(value, fallback, where) {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1) throw invalid(`${where} must be a positive integer, got ${String(value)}`);
  return value;
}

function checkHub(hub) {
  if (hub === null || typeof hub !== 'object' || typeof hub.connect !== 'function') {
    throw invalid('the second argument must be a hub (createHub())');
  }
}

/** A refusal: `code`, an HTTP status (401/403/503) and a message safe to show the client. */
class Refusal {
  constructor(code, status, message) {
    this.code = code;
    this.status = status;
    this.message = message;
  }

  /** The JSON body of an HTTP refusal, and the `data` of a Socket.IO connect_error. */
  get body() {
    return { code: this.code, message: this.message };
  }
}

/**
 * What a user hook's failure becomes. An error carrying a DELTACAST_ code keeps
 * its code and message (status: `err.status` when 401 or 403, else 403 for
 * DELTACAST_FORBIDDEN and 401 otherwise); any other error is a bug or a
 * library's message and is not shown to the client.
 */
function refusalFrom(err) {
  if (err instanceof Refusal) return err;
  const code = err && typeof err.code === 'string' && err.code.startsWith('DELTACAST_') ? err.code : null;
  if (code === null) return new Refusal(adapterCodes.UNAUTHORIZED, 401, 'the identity was refused');
  const status = err.status === 401 || err.status === 403 ? err.status : code === adapterCodes.FORBIDDEN ? 403 : 401;
  return new Refusal(code, status, String(err.message || 'the identity was refused'));
}

/**
 * Checks what a user hook returned (or socket.data.user): `{ id?, roles?,
 * expiresAt? }`, passed on to hub.connect unchanged. null/undefined/false from a
 * hook: no identity, refused. Returns the identity or throws a Refusal.
 */
function checkIdentity(user, fromHook) {
  if (user === undefined || user === null || user === false) {
    if (fromHook) throw new Refusal(adapterCodes.UNAUTHORIZED, 401, 'no identity');
    return undefined;
  }
  const bad = (what) => new Refusal(adapterCodes.UNAUTHORIZED, 401, `the identity is malformed: ${what}`);
  if (typeof user !== 'object') throw bad('not an object');
  if (user.id !== undefined && typeof user.id !== 'string') throw bad('id must be a string');
  if (user.roles !== undefined && (!Array.isArray(user.roles) || user.roles.some((role) => typeof role !== 'string'))) {
    throw bad('roles must be an array of strings');
  }
  return user;
}

/** Runs a user hook (sync or async); resolves with the identity or rejects with a Refusal. */
async function resolveIdentity(hook, argument) {
  let user;
  try {
    user = await hook(argument);
  } catch (err) {
    throw refusalFrom(err);
  }
  return checkIdentity(user, true);
}

// ---- tokens ----------------------------------------------------------------------
// Where each carrier finds a token (for options.authenticate): an HTTP
// request's `Authorization: Bearer <token>`; a WebSocket upgrade's
// subprotocol `token.<token>` (offered after `deltacast`:
// `Sec-WebSocket-Protocol: deltacast, token.<jwt>`) or, failing that, its
// `deltacast_token` cookie; Socket.IO's `socket.handshake.auth.token`.

/** `Authorization: Bearer <token>`, or undefined. */
function bearerToken(req) {
  const header = req?.headers?.authorization;
  if (typeof header !== 'string') return undefined;
  const match = /^Bearer[ ]+(\S+)\s*$/i.exec(header);
  return match === null ? undefined : match[1];
}

/** The `deltacast_token` cookie, or undefined. */
function cookieToken(req) {
  const header = req?.headers?.cookie;
  if (typeof header !== 'string') return undefined;
  for (const part of header.split(';')) {
    const at = part.indexOf('=');
    if (at > 0 && part.slice(0, at).trim() === 'deltacast_token') {
      try {
        return decodeURIComponent(part.slice(at + 1).trim()) || undefined;
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

/** A WebSocket upgrade's token: subprotocol `token.<token>`, else the cookie. */
function upgradeToken(req) {
  const header = req?.headers?.['sec-websocket-protocol'];
  if (typeof header === 'string') {
    for (const protocol of header.split(',')) {
      const name = protocol.trim();
      if (name.startsWith('token.') && name.length > 6) return name.slice(6);
    }
  }
  return cookieToken(req);
}

/**
 * The identity hook of an adapter: options.user(ctx) when given; otherwise,
 * with options.authenticate, the carrier's token (tokenOf(ctx)) verified by
 * authenticate(token, ctx) (no token: refused 401). Neither: undefined.
 */
function identityHook(options, tokenOf) {
  if (options.user !== undefined) return options.user;
  const authenticate = options.authenticate;
  if (authenticate === undefined) return undefined;
  return (ctx) => {
    const token = tokenOf(ctx);
    if (token === undefined) throw new Refusal(adapterCodes.UNAUTHORIZED, 401, 'no token');
    return authenticate(token, ctx);
  };
}

/** Checks options.authenticate; returns the hub.connect `authenticate` for a carrier context, or undefined. */
function refreshHook(options, ctx) {
  const authenticate = options.authenticate;
  return authenticate === undefined ? undefined : (token) => authenticate(token, ctx);
}

function checkAuthenticate(options) {
  if (options.authenticate !== undefined && typeof options.authenticate !== 'function') {
    throw invalid('options.authenticate must be a function (token, ctx) => identity');
  }
}

/** Tells the hub's onAudit of an identity refused before hub.connect (never with a token). */
function auditRefusal(hub, transport, refusal) {
  try {
    hub.audit?.({ type: 'refused', transport, code: refusal?.code });
  } catch {
    // auditing never stops a refusal
  }
}

/** An `err` frame from the adapter itself (bad carrier input the core never sees). */
function errFrame(code, message) {
  return JSON.stringify({ t: 'err', code, message });
}

/** At most `chars` characters of a client-given name, for a refusal's message. */
function clip(text, chars = 64) {
  return text.length <= chars ? text : `${text.slice(0, chars)}...`;
}

/**
 * Encode once: the hub hands every connection that gets the same frame the
 * same string (one `take()` delivers them in one synchronous run), so what a
 * carrier makes of a frame (a packet, a Buffer, a WebSocket frame) is made on
 * the first socket and found by the others here. The cache lives for that
 * run: it is emptied on the next microtask, so it never holds more than one
 * delivery's distinct frames. A Map keyed by the string: V8 caches a string's
 * hash, and a key that is the same string object compares at once.
 */
class FrameCache {
  #entries = new Map();
  #clearQueued = false;
  #make;
  #clear = () => {
    this.#clearQueued = false;
    this.#entries.clear();
  };

  constructor(make) {
    this.#make = make;
  }

  get(frame) {
    let entry = this.#entries.get(frame);
    if (entry === undefined) {
      entry = this.#make(frame);
      this.#entries.set(frame, entry);
      if (!this.#clearQueued) {
        this.#clearQueued = true;
        queueMicrotask(this.#clear);
      }
    }
    return entry;
  }
}

/**
 * Client messages, handed to the hub together once per event-loop turn.
 * Every socket's data arrives in its own I/O callback, and the hub hands
 * what it queued to its core thread at the end of each (a microtask): one
 * hand-off and one wake-up of the core thread per message (about 30 µs
 * measured for a lone ack). Messages read in one poll phase are instead
 * passed on from one setImmediate, so the acks of many sockets cross to
 * the core in one batch. Order per connection is kept.
 */
class Inbound {
  #queue = [];
  #scheduled = false;
  #run = () => {
    const queue = this.#queue;
    this.#queue = [];
    this.#scheduled = false;
    for (let i = 0; i < queue.length; i += 2) queue[i].receive(queue[i + 1]);
  };

  push(connection, message) {
    this.#queue.push(connection, message);
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#run);
    }
  }
}

let warned = new Set();
/** One process warning per kind (a fallback taken because an internal is missing). */
function warnOnce(code, message) {
  if (warned.has(code)) return;
  warned.add(code);
  process.emitWarning(message, { type: 'DeltacastWarning', code });
}

/** Tests only: lets a warning be emitted again. */
function resetWarnings() {
  warned = new Set();
}

module.exports = {
  adapterCodes,
  retryFrame,
  checkOptions,
  positiveInteger,
  checkHub,
  invalid,
  Refusal,
  refusalFrom,
  checkIdentity,
  resolveIdentity,
  bearerToken,
  cookieToken,
  upgradeToken,
  identityHook,
  refreshHook,
  checkAuthenticate,
  auditRefusal,
  errFrame,
  RefusedMessage,
  clip,
  FrameCache,
  Inbound,
  warnOnce,
  resetWarnings,
};
