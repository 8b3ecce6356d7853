'use strict';
// deltacast/http: polling, long-polling and Server-Sent Events over node:http,
// Express and Fastify (through reply.hijack()).
//
// Every request is a hub connection (hub.connect), so the core decides what a
// client gets (snap, patch, gone, nothing), checks permissions and validates
// topics exactly as it does for sockets. After the client's `sub` messages the
// adapter sends one message the core always refuses (an unknown type): its
// `err` comes after every answer to the subs, since the core handles a
// connection's messages in order and answers a `sub` at once. So once that
// `err` is back, the frames before it are the complete answer, and "nothing
// before it" means the client is current.

const { DeltacastError, codes } = require('../errors');
const { retryFrame, bearerToken, cookieToken, identityHook, auditRefusal } = require('./shared');

/** The codes of the JSON error bodies (from the one table in lib/errors.js). */
const httpCodes = Object.freeze({
  INVALID_QUERY: codes.INVALID_QUERY,
  INVALID_TOPIC: codes.INVALID_TOPIC,
  NOT_FOUND: codes.NOT_FOUND,
  TOPIC_NOT_FOUND: codes.TOPIC_NOT_FOUND,
  METHOD_NOT_ALLOWED: codes.METHOD_NOT_ALLOWED,
  URL_TOO_LONG: codes.URL_TOO_LONG,
  UNAUTHORIZED: codes.UNAUTHORIZED,
  FORBIDDEN: codes.FORBIDDEN,
  RATE_LIMITED: codes.RATE_LIMITED,
  CLOSED: codes.CLOSED,
  INTERNAL: codes.INTERNAL,
});

const DEFAULTS = Object.freeze({
  prefix: '/deltacast',
  maxWaitMs: 30000,
  maxTopics: 64,
  maxUrlBytes: 8192,
  heartbeatMs: 15000,
  retryMs: 2000,
  rateLimitClients: 10000,
});

const PROBE = '{"t":"deltacast.http.end-of-answer"}';
const PROBE_CODE = 'DELTACAST_UNKNOWN_MESSAGE';
const MAX_VERSION = 2 ** 53;
const MAX_EPOCH_LENGTH = 64;
// An epoch in a query, an ETag or a Last-Event-ID: printable ASCII without
// the separators of those formats (",", ":", '"') or spaces.
const EPOCH = /^[!#-+\--9;-~]{1,64}$/;
const VERSION = /^(0|[1-9][0-9]{0,15})$/;

/** A decimal version from 0 to 2^53 (compared exactly: Number() would round 2^53 + 1 down). */
function isVersion(text) {
  return VERSION.test(text) && BigInt(text) <= BigInt(MAX_VERSION);
}

// status for the codes the core answers a `sub` with
const STATUS_OF = {
  DELTACAST_FORBIDDEN: 403,
  DELTACAST_INVALID_TOPIC: 400,
  DELTACAST_INVALID_MESSAGE: 400,
  DELTACAST_MESSAGE_TOO_LARGE: 400,
  DELTACAST_TOO_MANY_SUBSCRIPTIONS: 400,
  DELTACAST_RATE_LIMITED: 429,
};

class HttpError extends DeltacastError {
  constructor(status, code, message, headers) {
    super(code, message);
    this.status = status;
    this.headers = headers;
  }
}

function invalidOption(message) {
  return new DeltacastError('DELTACAST_INVALID_ARGUMENT', message);
}

function optionCount(options, name, min, max) {
  const value = options[name] ?? DEFAULTS[name];
  if (!Number.isInteger(value) || value < min || value > max) {
    throw invalidOption(`options.${name} must be an integer from ${min} to ${max}, got ${String(value)}`);
  }
  return value;
}

function normalize(hub, options) {
  if (hub === null || typeof hub !== 'object' || typeof hub.connect !== 'function') {
    throw invalidOption('httpHandler(hub, options?) takes a hub made by createHub()');
  }
  options ??= {};
  if (typeof options !== 'object') throw invalidOption('httpHandler options must be an object');
  const allowed = ['prefix', 'maxWaitMs', 'maxTopics', 'maxUrlBytes', 'heartbeatMs', 'retryMs', 'user', 'authenticate', 'rateLimit', 'rateKey'];
  for (const key of Object.keys(options)) {
    if (!allowed.includes(key)) throw invalidOption(`unknown option ${key} (expected one of: ${allowed.join(', ')})`);
  }
  const prefix = options.prefix ?? DEFAULTS.prefix;
  if (typeof prefix !== 'string' || (prefix !== '' && (!prefix.startsWith('/') || prefix.endsWith('/')))) {
    throw invalidOption(`options.prefix must be '' or a path starting with '/' and not ending with '/', got ${String(prefix)}`);
  }
  if (options.user !== undefined && typeof options.user !== 'function') throw invalidOption('options.user must be a function (req) => user');
  if (options.authenticate !== undefined && typeof options.authenticate !== 'function') {
    throw invalidOption('options.authenticate must be a function (token, req) => user');
  }
  if (options.rateKey !== undefined && typeof options.rateKey !== 'function') {
    throw invalidOption('options.rateKey must be a function (req, user) => string');
  }
  const rateLimit = options.rateLimit ?? true;
  if (rateLimit !== true && rateLimit !== false) throw invalidOption('options.rateLimit must be true or false');
  const limits = hub.options?.limits ?? {};
  return {
    prefix,
    maxWaitMs: optionCount(options, 'maxWaitMs', 0, 24 * 3600 * 1000),
    maxTopics: optionCount(options, 'maxTopics', 1, 100000),
    maxUrlBytes: optionCount(options, 'maxUrlBytes', 64, 1 << 20),
    heartbeatMs: optionCount(options, 'heartbeatMs', 0, 24 * 3600 * 1000),
    retryMs: optionCount(options, 'retryMs', 0, 24 * 3600 * 1000),
    // user(req), or authenticate(token, req) with `Authorization: Bearer <token>` (or the deltacast_token cookie: EventSource sends no headers)
    user: identityHook(options, (req) => bearerToken(req) ?? cookieToken(req)),
    rateKey: options.rateKey ?? ((req, user) => (user && typeof user.id === 'string' ? `u:${user.id}` : `a:${req.socket?.remoteAddress}`)),
    cache: { frame: null, moves: null, data: null, id: null, event: null },
    rate: rateLimit ? { perSecond: limits.messagesPerSecond ?? 100, burst: limits.messageBurst ?? 1000 } : null,
  };
}

// ---- requests -------------------------------------------------------------------------

function decode(text, plusIsSpace, code, what) {
  try {
    return decodeURIComponent(plusIsSpace ? text.replace(/\+/g, ' ') : text);
  } catch {
    throw new HttpError(400, code, `${what} is not valid percent-encoded UTF-8`);
  }
}

/** The query as a Map of raw (still encoded) values; a name given twice is an error. */
function parseQuery(query) {
  const params = new Map();
  if (query === '') return params;
  for (const part of query.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const name = decode(eq < 0 ? part : part.slice(0, eq), true, httpCodes.INVALID_QUERY, 'a query parameter name');
    if (params.has(name)) throw new HttpError(400, httpCodes.INVALID_QUERY, `the query parameter ${name} is given twice`);
    params.set(name, eq < 0 ? '' : part.slice(eq + 1));
  }
  return params;
}

function queryValue(params, name) {
  const raw = params.get(name);
  return raw === undefined ? undefined : decode(raw, true, httpCodes.INVALID_QUERY, `the query parameter ${name}`);
}

/** Decodes a topic once and refuses what the core would read differently (lone surrogates). */
function checkedTopic(text) {
  const topic = decode(text, false, httpCodes.INVALID_TOPIC, 'the topic');
  // (isWellFormed: Node 20; the pattern for Node 18)
  if (typeof topic.isWellFormed === 'function' ? !topic.isWellFormed() : /\p{Surrogate}/u.test(topic)) throw new HttpError(400, httpCodes.INVALID_TOPIC, 'the topic contains a lone surrogate');
  if (topic === '') throw new HttpError(400, httpCodes.INVALID_TOPIC, 'a topic name cannot be empty');
  return topic;
}

function parseVersion(text, where) {
  if (!isVersion(text)) {
    throw new HttpError(400, httpCodes.INVALID_QUERY, `${where} must be an integer from 0 to 2^53, got ${JSON.stringify(text)}`);
  }
  return Number(text);
}

function parseEpoch(text, where) {
  if (!EPOCH.test(text)) {
    throw new HttpError(
      400,
      httpCodes.INVALID_QUERY,
      `${where} must be 1 to ${MAX_EPOCH_LENGTH} printable ASCII characters without spaces, quotes, ',' or ':'`,
    );
  }
  return text;
}

/** `"<epoch>:<version>"` (or W/"..."): the point it names, or null. */
function parseTag(tag) {
  const m = /^(?:W\/)?"([^":]{1,64}):([0-9]{1,16})"$/.exec(tag.trim());
  if (m === null || !EPOCH.test(m[1]) || !isVersion(m[2])) return null;
  return { epoch: m[1], version: Number(m[2]) };
}

function ifNoneMatch(req) {
  const header = req.headers['if-none-match'];
  if (typeof header !== 'string' || header === '') return null;
  if (header.trim() === '*') return { any: true, tags: [] };
  const tags = [];
  for (const tag of header.split(',')) {
    const point = parseTag(tag);
    if (point !== null) tags.push(point);
  }
  return { any: false, tags };
}

function etag(epoch, version) {
  return `"${epoch}:${version}"`;
}

function sendJson(res, status, body, headers) {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
    ...headers,
  });
  res.end(text);
}

function sendError(res, err) {
  if (err instanceof HttpError) {
    sendJson(res, err.status, { code: err.code, message: err.message }, err.headers);
  } else if (err instanceof DeltacastError && err.code === httpCodes.CLOSED) {
    sendJson(res, 503, { code: err.code, message: err.message });
  } else {
    sendJson(res, 500, { code: httpCodes.INTERNAL, message: 'internal error' });
  }
}

// ---- identity and rate ----------------------------------------------------------------

async function identify(config, req, hub, transport) {
  if (config.user === undefined) return undefined;
  try {
    return await identifyWith(config, req);
  } catch (err) {
    if (err instanceof HttpError && err.status < 500) auditRefusal(hub, transport, err);
    throw err;
  }
}

async function identifyWith(config, req) {
  let user;
  try {
    user = await config.user(req);
  } catch (err) {
    const status = err?.status === 403 || err?.statusCode === 403 ? 403 : 401;
    const code = typeof err?.code === 'string' && err.code.startsWith('DELTACAST_') ? err.code : status === 403 ? httpCodes.FORBIDDEN : httpCodes.UNAUTHORIZED;
    throw new HttpError(status, code, typeof err?.message === 'string' && err.message !== '' ? err.message : 'the identity was refused');
  }
  if (user === null || user === undefined || user === false) {
    throw new HttpError(401, httpCodes.UNAUTHORIZED, 'no identity: the request carries no valid credentials');
  }
  if (typeof user !== 'object') throw new HttpError(500, httpCodes.INTERNAL, 'the user hook must return an object { id, roles, expiresAt? }');
  if (user.expiresAt !== undefined && !(typeof user.expiresAt === 'number' && user.expiresAt > Date.now())) {
    throw new HttpError(401, httpCodes.UNAUTHORIZED, 'the identity has expired');
  }
  return user;
}

/** Token buckets per client key, with the hub's limits; the least recently used go first. */
class RateLimiter {
  #buckets = new Map();
  #perSecond;
  #burst;
  #max;
  constructor({ perSecond, burst }, max) {
    this.#perSecond = perSecond;
    this.#burst = burst;
    this.#max = max;
  }
  take(key) {
    const now = Date.now();
    let bucket = this.#buckets.get(key);
    if (bucket === undefined) {
      bucket = { tokens: this.#burst, at: now };
      if (this.#buckets.size >= this.#max) this.#buckets.delete(this.#buckets.keys().next().value);
    } else {
      this.#buckets.delete(key); // re-inserted: most recently used last
      bucket.tokens = Math.min(this.#burst, bucket.tokens + ((now - bucket.at) * this.#perSecond) / 1000);
      bucket.at = now;
    }
    this.#buckets.set(key, bucket);
    if (bucket.tokens < 1) return Math.ceil((1 - bucket.tokens) / this.#perSecond);
    bucket.tokens -= 1;
    return 0;
  }
}

// ---- one hub connection per request ---------------------------------------------------

/**
 * Opens a hub connection for `topics`, subscribes (resuming where `points`
 * say) and resolves with the frames of the answer, or rejects with an
 * HttpError when the core refused a subscription. Frames after the answer go
 * to `onFrame`.
 */
function open(hub, user, acks, subs) {
  let answered = false;
  let answer = [];
  let resolve, reject;
  const done = new Promise((res, rej) => {
    resolve = res;
    reject = rej;
  });
  const session = {
    connection: null,
    onFrame: null, // frames after the answer
    early: [], // frames after the answer, before listen()
    onClose: null,
    closed: false,
    done,
    listen(onFrame) {
      session.onFrame = onFrame;
      const early = session.early;
      session.early = [];
      for (const frame of early) {
        if (session.onFrame !== onFrame || session.closed) break;
        onFrame(frame);
      }
    },
    close() {
      if (session.closed) return;
      session.closed = true;
      session.connection.close();
      // Closed before the answer (the client went away): no frame will come.
      if (!answered) {
        answered = true;
        reject(new HttpError(499, httpCodes.CLOSED, 'the request was closed before the answer'));
      }
    },
  };
  const transport = {
    send(frame) {
      if (!answered) {
        if (frame.startsWith('{"t":"err"')) {
          const err = JSON.parse(frame);
          if (err.code === PROBE_CODE) {
            answered = true;
            resolve(answer);
            answer = null;
            return true;
          }
          const status = STATUS_OF[err.code];
          if (status !== undefined) {
            answered = true;
            reject(new HttpError(status, err.code, err.message));
            return true;
          }
        } else if (frame === '{"t":"ping"}') {
          session.connection?.receive('{"t":"pong"}');
          return true;
        }
        answer.push(frame);
        return true;
      }
      if (frame === '{"t":"ping"}') {
        // The request is open, so the client is there: answer for it.
        session.connection?.receive('{"t":"pong"}');
        return true;
      }
      // Frames that come before the request has read the answer wait for listen().
      if (session.onFrame === null) {
        session.early.push(frame);
        return true;
      }
      return session.onFrame(frame);
    },
    close(code, reason) {
      session.closed = true;
      if (!answered) {
        answered = true;
        reject(code === 1001 ? new DeltacastError(httpCodes.CLOSED, 'the hub is closing') : new HttpError(503, httpCodes.CLOSED, reason));
      }
      session.onClose?.(code, reason);
    },
  };
  if (user !== undefined) transport.user = user;
  if (!acks) transport.acks = false;
  transport.kind = acks ? 'poll' : 'sse'; // audit events' transport
  session.connection = hub.connect(transport);
  for (const sub of subs) session.connection.receive(JSON.stringify(sub));
  session.connection.receive(PROBE);
  done.catch(() => session.close());
  return session;
}

/**
 * open() for the request answered on `res`: resolves with { session, frames, finish } once the
 * answer's frames came. finish() runs `stop` (the request's own timers) and closes the session; the
 * response's `close` calls it. Rejects as session.done does, after finish().
 */
async function openFor(res, stop, hub, user, acks, subs) {
  const session = open(hub, user, acks, subs);
  const finish = () => {
    stop();
    session.close();
  };
  res.on('close', finish);
  try {
    return { session, frames: await session.done, finish };
  } catch (err) {
    finish();
    throw err;
  }
}

// The state a frame of `topic` leaves the client in: [epoch, version] or null (gone).
function frameState(message) {
  if (message.t === 'snap') return [message.epoch, message.version];
  if (message.t === 'patch') return [message.epoch, message.to];
  if (message.t === 'gone') return null;
  return undefined;
}

// ---- polling --------------------------------------------------------------------------

async function poll(hub, config, req, res, topicText, params, user) {
  const topic = checkedTopic(topicText);
  const epochText = queryValue(params, 'epoch');
  const versionText = queryValue(params, 'version');
  const waitText = queryValue(params, 'wait');
  if ((epochText === undefined) !== (versionText === undefined)) {
    throw new HttpError(400, httpCodes.INVALID_QUERY, 'epoch and version go together');
  }
  let point = null;
  if (epochText !== undefined) point = { epoch: parseEpoch(epochText, 'epoch'), version: parseVersion(versionText, 'version') };
  let wait = 0;
  if (waitText !== undefined) {
    if (!/^[0-9]+$/.test(waitText)) throw new HttpError(400, httpCodes.INVALID_QUERY, `wait must be an integer number of milliseconds, got ${JSON.stringify(waitText)}`);
    wait = Math.min(Number(waitText), config.maxWaitMs);
  }
  const match = ifNoneMatch(req);
  // Without a query, a client with a cached representation resumes from its ETag;
  // it wants a full representation (a snap) whenever it is not current.
  const full = point === null;
  if (full && match !== null && match.tags.length > 0) point = match.tags[0];
  const sub = { t: 'sub', topic };
  if (point !== null) {
    sub.epoch = point.epoch;
    sub.version = point.version;
  }
  let timer = null;
  const { session, frames, finish } = await openFor(res, () => timer !== null && clearTimeout(timer), hub, user, true, [sub]);
  if (session.closed) return finish();

  const reply = (frame) => {
    finish();
    if (res.writableEnded || res.destroyed) return;
    if (frame === null) {
      // nothing newer than what the client holds
      if (point === null) {
        sendJson(res, 404, { code: httpCodes.TOPIC_NOT_FOUND, message: `the topic ${JSON.stringify(topic)} does not exist` });
        return;
      }
      const tag = etag(point.epoch, point.version);
      const notModified = match !== null && (match.any || match.tags.some((t) => t.epoch === point.epoch && t.version === point.version));
      res.writeHead(notModified ? 304 : 204, { ETag: tag, 'Cache-Control': 'no-cache' });
      res.end();
      return;
    }
    const state = frameState(infoOf(frame));
    if (state === null || state === undefined) {
      if (state === null && full) {
        sendJson(res, 404, { code: httpCodes.TOPIC_NOT_FOUND, message: `the topic ${JSON.stringify(topic)} does not exist` });
      } else {
        res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(frame), 'Cache-Control': 'no-store' });
        res.end(frame);
      }
      return;
    }
    const tag = etag(state[0], state[1]);
    if (match !== null && (match.any || match.tags.some((t) => t.epoch === state[0] && t.version === state[1]))) {
      res.writeHead(304, { ETag: tag, 'Cache-Control': 'no-cache' });
      res.end();
      return;
    }
    res.writeHead(200, {
      'Content-Type': 'application/json; charset=utf-8',
      'Content-Length': Buffer.byteLength(frame),
      'Cache-Control': 'no-cache',
      ETag: tag,
    });
    res.end(frame);
  };

  // A change may come as a batch; this connection follows one topic, so it holds one item.
  const single = (frame) => {
    if (!frame.startsWith('{"t":"batch"')) return frame;
    const items = JSON.parse(frame).items.filter((item) => item.topic === topic);
    return items.length === 1 ? JSON.stringify(items[0]) : null;
  };
  // A full representation is wanted but the core resumed with a patch: ask for a snapshot.
  const resnap = () => {
    session.listen((frame) => {
      if (frame.startsWith('{"t":"snap"')) reply(frame);
      return true;
    });
    session.connection.receive(JSON.stringify({ t: 'unsub', topic }));
    session.connection.receive(JSON.stringify({ t: 'sub', topic }));
  };
  const answer = (frame) => {
    const one = single(frame);
    if (one === null || (full && one.startsWith('{"t":"patch"'))) {
      resnap();
    } else {
      reply(one);
    }
    return true;
  };

  const state = frames.find((frame) => !frame.startsWith('{"t":"err"'));
  if (state !== undefined) {
    answer(state);
    return;
  }
  if (wait === 0) {
    reply(null);
    return;
  }
  // Long-poll: the next frame of the topic is the answer; at the timeout, "nothing newer".
  session.onClose = () => {
    if (!res.headersSent) sendJson(res, 503, { code: httpCodes.CLOSED, message: 'the hub is closing' });
  };
  timer = setTimeout(() => {
    timer = null;
    reply(null);
  }, wait);
  session.listen((frame) => (frame.startsWith('{"t":"err"') ? true : answer(frame)));
}

// ---- Server-Sent Events ---------------------------------------------------------------

/**
 * Last-Event-ID: one entry per topic of the request's `topics`, in order,
 * joined by ",": `<epoch>:<version>` for a topic the client holds, empty
 * otherwise. Anything else (another topic count, a malformed entry) is
 * ignored: the client gets snapshots.
 */
function parseEventId(header, count) {
  if (typeof header !== 'string' || header === '') return null;
  const entries = header.split(',');
  if (entries.length !== count) return null;
  const points = [];
  for (const entry of entries) {
    if (entry === '') {
      points.push(null);
      continue;
    }
    const colon = entry.lastIndexOf(':');
    const epoch = entry.slice(0, colon);
    const version = entry.slice(colon + 1);
    if (colon < 1 || !EPOCH.test(epoch) || !isVersion(version)) return null;
    points.push({ epoch, version: Number(version) });
  }
  return points;
}

async function events(hub, config, req, res, params, user) {
  const raw = params.get('topics');
  if (raw === undefined || raw === '') throw new HttpError(400, httpCodes.INVALID_QUERY, 'events needs ?topics=a,b (percent-encode a "," inside a name)');
  const parts = raw.split(',');
  if (parts.length > config.maxTopics) {
    throw new HttpError(400, httpCodes.INVALID_QUERY, `at most ${config.maxTopics} topics per event stream, got ${parts.length}`);
  }
  const topics = parts.map((part) => checkedTopic(part.replace(/\+/g, ' ')));
  const index = new Map();
  topics.forEach((topic, i) => {
    if (index.has(topic)) throw new HttpError(400, httpCodes.INVALID_QUERY, `the topic ${JSON.stringify(topic)} is given twice`);
    index.set(topic, i);
  });
  const points = parseEventId(req.headers['last-event-id'], topics.length) ?? topics.map(() => null);
  const held = points.map((p) => (p === null ? '' : `${p.epoch}:${p.version}`));
  const subs = topics.map((topic, i) => (points[i] === null ? { t: 'sub', topic } : { t: 'sub', topic, epoch: points[i].epoch, version: points[i].version }));

  let heartbeat = null;
  const stop = () => {
    if (heartbeat !== null) clearInterval(heartbeat);
    heartbeat = null;
  };
  const { session, frames, finish } = await openFor(res, stop, hub, user, false, subs);
  if (session.closed || res.destroyed) return finish();

  // One event per protocol message; frames that move a topic carry the new id.
  // Every connection is handed the same frame string: what can be shared (the
  // frame's state, its data lines, the encoded event) is computed once.
  const cache = config.cache;
  const event = (frame) => {
    if (frame !== cache.frame) {
      cache.frame = frame;
      // [topic, the id entry it leaves] for each snap, patch or gone in the frame
      const messages = frame.startsWith('{"t":"batch"') ? JSON.parse(frame).items : [infoOf(frame)];
      cache.moves = [];
      for (const message of messages) {
        const state = frameState(message);
        if (state !== undefined) cache.moves.push(message.topic, state === null ? '' : `${state[0]}:${state[1]}`);
      }
      // Frames are minified JSON; a raw line break could only be JSON whitespace.
      cache.data = frame.includes('\n') || frame.includes('\r') ? frame.split(/\r\n|\r|\n/).join('\ndata: ') : frame;
      cache.id = null;
      cache.event = null;
    }
    let moved = false;
    const moves = cache.moves;
    for (let m = 0; m < moves.length; m += 2) {
      const i = index.get(moves[m]);
      if (i === undefined) continue;
      held[i] = moves[m + 1];
      moved = true;
    }
    const id = !moved ? '' : held.length === 1 ? held[0] : held.join(',');
    if (cache.event === null || cache.id !== id) {
      cache.id = id;
      cache.event = Buffer.from(moved ? `id: ${id}\ndata: ${cache.data}\n\n` : `data: ${cache.data}\n\n`);
    }
    return cache.event;
  };
  const write = (frame) => {
    if (res.destroyed || res.writableEnded) return true;
    return res.write(event(frame));
  };

  res.writeHead(200, {
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-cache',
    'X-Accel-Buffering': 'no',
  });
  // If the answer alone fills the socket, the next write returns false and
  // holds the core back until 'drain'.
  res.write(config.retryMs > 0 ? `retry: ${config.retryMs}\n\n` : ':\n\n');
  for (const frame of frames) res.write(event(frame));
  session.listen(write);
  session.onClose = (code) => {
    finish();
    if (res.writableEnded) return;
    // the hub is closing: the clients' return is spread (docs/protocol.md, Closing)
    const retry = retryFrame(hub);
    if (code === 1001 && retry !== '') res.write(`data: ${retry}\n\n`);
    res.end();
  };
  res.on('drain', () => session.connection.drained());
  if (config.heartbeatMs > 0) {
    heartbeat = setInterval(() => {
      if (!res.destroyed && !res.writableEnded && res.writableLength === 0) res.write(':\n\n');
    }, config.heartbeatMs);
    heartbeat.unref?.();
  }
}

/** A frame's type, topic and state: read from the fixed prefix of snap, patch and gone frames, else parsed. */
function infoOf(frame) {
  const head = frame.slice(0, 12);
  if (head === '{"t":"snap",' || head === '{"t":"patch"' || head === '{"t":"gone",') return peek(frame);
  return JSON.parse(frame);
}

/** The topic and state fields of a snap, patch or gone frame, read from its fixed prefix. */
function peek(frame) {
  // {"t":"snap","topic":"...","epoch":"...","version":N,...}
  // {"t":"patch","topic":"...","epoch":"...","from":N,"to":M,...}
  // {"t":"gone","topic":"...",...}
  const t = frame.slice(6, frame.indexOf('"', 6));
  const start = frame.indexOf('"topic":') + 8;
  let end = start + 1;
  while (frame[end] !== '"') end += frame[end] === '\\' ? 2 : 1;
  const topic = JSON.parse(frame.slice(start, end + 1));
  if (t === 'gone') return { t, topic };
  const epochStart = frame.indexOf('"', end + 10) + 1; // after ,"epoch":
  const epochEnd = frame.indexOf('"', epochStart);
  const epoch = frame.slice(epochStart, epochEnd);
  const key = t === 'snap' ? ',"version":' : ',"to":';
  const numberStart = frame.indexOf(key, epochEnd) + key.length;
  let numberEnd = numberStart;
  while (frame.charCodeAt(numberEnd) >= 48 && frame.charCodeAt(numberEnd) <= 57) numberEnd += 1;
  const n = Number(frame.slice(numberStart, numberEnd));
  return t === 'snap' ? { t, topic, epoch, version: n } : { t, topic, epoch, to: n };
}

// ---- the handler ----------------------------------------------------------------------

/**
 * `(req, res, next?)` for node:http, Express and Fastify (request.raw,
 * reply.raw after reply.hijack()). See the README for routes, options and
 * limits.
 */
function httpHandler(hub, options) {
  const config = normalize(hub, options);
  const limiter = config.rate === null ? null : new RateLimiter(config.rate, DEFAULTS.rateLimitClients);
  const prefix = config.prefix;

  async function route(req, res, path, query) {
    const rest = path.slice(prefix.length);
    let kind, topicText;
    if (rest === '/events') {
      kind = 'events';
    } else if (rest.startsWith('/topics/') && rest.length > 8) {
      kind = 'topic';
      topicText = rest.slice(8);
    } else {
      throw new HttpError(404, httpCodes.NOT_FOUND, `no such deltacast resource: ${rest === '' ? '/' : rest} (expected /topics/<topic> or /events)`);
    }
    if (req.method !== 'GET') {
      throw new HttpError(405, httpCodes.METHOD_NOT_ALLOWED, `${req.method} is not allowed here (GET only)`, { Allow: 'GET' });
    }
    const params = parseQuery(query);
    const user = await identify(config, req, hub, kind === 'events' ? 'sse' : 'poll');
    if (limiter !== null) {
      const retry = limiter.take(config.rateKey(req, user));
      if (retry > 0) {
        throw new HttpError(429, httpCodes.RATE_LIMITED, `over ${config.rate.perSecond} requests a second`, {
          'Retry-After': String(retry),
        });
      }
    }
    if (res.destroyed) return;
    if (kind === 'events') await events(hub, config, req, res, params, user);
    else await poll(hub, config, req, res, topicText, params, user);
  }

  return function deltacastHttp(req, res, next) {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    if (!(path.startsWith(prefix) && path[prefix.length] === '/')) {
      if (typeof next === 'function') {
        next();
      } else {
        sendJson(res, 404, { code: httpCodes.NOT_FOUND, message: `no such resource: ${path}` });
      }
      return;
    }
    if (Buffer.byteLength(url) > config.maxUrlBytes) {
      sendJson(res, 414, { code: httpCodes.URL_TOO_LONG, message: `the URL is over ${config.maxUrlBytes} bytes` });
      return;
    }
    route(req, res, path, q < 0 ? '' : url.slice(q + 1)).catch((err) => {
      if (!res.destroyed && !res.writableEnded) sendError(res, err);
    });
  };
}

module.exports = { httpHandler, pollingHandler: httpHandler, httpCodes };
