'use strict';
// createHub(): the topic store, on the core's own thread.
//
// The JS side only validates arguments, serializes what needs serializing
// (once) and queues a request record; the records of one job cross to the
// core together (lib/requests.js). Every change call returns a Receipt (a
// thenable) settled when the core has handled it. The core answers in
// batches through one thread-safe function: `_drain` takes every answer and
// every frame at once.

const native = require('./native');
const { DeltacastError, codes } = require('./errors');
const { toJsonText } = require('./to_native');
const { KIND, FLUSH_BYTES, RequestWriter, AnswerBatch, Receipt, BatchQueue, ANSWER_CHANGE, ANSWER_FOUND, ANSWER_NONE } = require('./requests');

const DEFAULTS = Object.freeze({
  clock: 'real',
  arrayKey: 'id',
  limits: Object.freeze({
    maxValueBytes: 64 * 1024 * 1024,
    maxDepth: 512,
    maxTopicLength: 256,
    maxSubscriptions: 1000,
    maxMessageBytes: 64 * 1024,
    messagesPerSecond: 100,
    messageBurst: 1000,
    rateViolations: 100,
  }),
  heartbeat: Object.freeze({ intervalMs: 25000, timeoutMs: 60000 }),
  credit: Object.freeze({ maxFrames: 64, maxBytes: 1024 * 1024, stallTimeoutMs: 30000 }),
  memory: Object.freeze({ maxBytes: 256 * 1024 * 1024 }),
  history: Object.freeze({ maxCount: 32, maxBytes: 256 * 1024 }),
  dedup: Object.freeze({ maxCount: 10000, windowMs: 60000 }),
  pacing: Object.freeze({ highWindowMs: 16, normalDebounceMs: 50, normalMaxWaitMs: 250, lowIntervalMs: 1000 }),
  sweepIntervalMs: 1000,
});

const LANES = ['critical', 'high', 'normal', 'low'];

function invalid(message) {
  return new DeltacastError(codes.INVALID_ARGUMENT, message);
}

function checkKeys(object, allowed, where) {
  for (const key of Object.keys(object)) {
    if (!allowed.includes(key)) throw invalid(`unknown option ${where}${key} (expected one of: ${allowed.join(', ')})`);
  }
}

function count(value, where, { min = 0, max = Number.MAX_SAFE_INTEGER } = {}) {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw invalid(`${where} must be an integer from ${min} to ${max}, got ${String(value)}`);
  }
  return value;
}

function section(options, name, fields) {
  const given = options[name];
  if (given === undefined) return { ...DEFAULTS[name] };
  if (given === null || typeof given !== 'object') throw invalid(`${name} must be an object`);
  checkKeys(given, Object.keys(DEFAULTS[name]), `${name}.`);
  const out = { ...DEFAULTS[name] };
  for (const [field, bounds] of Object.entries(fields)) {
    if (given[field] !== undefined) out[field] = count(given[field], `${name}.${field}`, bounds);
  }
  return out;
}

/** Validates createHub options and flattens them into what the core reads. */
function normalizeOptions(options) {
  options ??= {};
  if (typeof options !== 'object') throw invalid('createHub options must be an object');
  checkKeys(
    options,
    [
      'clock',
      'arrayKey',
      'limits',
      'memory',
      'history',
      'dedup',
      'ttl',
      'permissions',
      'lanes',
      'pacing',
      'heartbeat',
      'credit',
      'sweepIntervalMs',
    ],
    '',
  );
  const clock = options.clock ?? DEFAULTS.clock;
  if (clock !== 'real' && clock !== 'manual') throw invalid(`clock must be 'real' or 'manual', got ${String(clock)}`);
  const arrayKey = options.arrayKey ?? DEFAULTS.arrayKey;
  if (arrayKey !== false && (typeof arrayKey !== 'string' || arrayKey === '')) {
    throw invalid('arrayKey must be a non-empty string or false');
  }
  const limits = section(options, 'limits', {
    maxValueBytes: { min: 1, max: 0xfffffffe },
    maxDepth: { min: 1, max: 4096 },
    maxTopicLength: { min: 1, max: 65536 },
    maxSubscriptions: { min: 1 },
    maxMessageBytes: { min: 64, max: 0xfffffffe },
    messagesPerSecond: { min: 1 },
    messageBurst: { min: 1 },
    rateViolations: { min: 1 },
  });
  // heartbeat.intervalMs 0 turns heartbeats off
  const heartbeat = section(options, 'heartbeat', { intervalMs: { min: 0 }, timeoutMs: { min: 1 } });
  const credit = section(options, 'credit', { maxFrames: { min: 1 }, maxBytes: { min: 1 }, stallTimeoutMs: { min: 1 } });
  const memory = section(options, 'memory', { maxBytes: { min: 0 } });
  const history = section(options, 'history', { maxCount: { min: 0 }, maxBytes: { min: 0 } });
  const dedup = section(options, 'dedup', { maxCount: { min: 0 }, windowMs: { min: 0 } });
  const pacing = section(options, 'pacing', {
    highWindowMs: { min: 0 },
    normalDebounceMs: { min: 0 },
    normalMaxWaitMs: { min: 0 },
    lowIntervalMs: { min: 0 },
  });
  // lanes: { pattern: 'critical' | 'high' | 'normal' | 'low' }; first match wins, default normal.
  const lanes = [];
  if (options.lanes !== undefined) {
    if (options.lanes === null || typeof options.lanes !== 'object' || Array.isArray(options.lanes)) {
      throw invalid("lanes must be an object of topic pattern -> lane, e.g. { 'alerts/**': 'critical' }");
    }
    for (const [pattern, lane] of Object.entries(options.lanes)) {
      if (!LANES.includes(lane)) throw invalid(`lanes['${pattern}'] must be one of ${LANES.join(', ')}`);
      lanes.push({ pattern, lane });
    }
  }
  const ttl = [];
  if (options.ttl !== undefined) {
    if (options.ttl === null || typeof options.ttl !== 'object' || Array.isArray(options.ttl)) {
      throw invalid("ttl must be an object of topic pattern -> milliseconds, e.g. { 'tmp/*': 60000 }");
    }
    for (const [pattern, ms] of Object.entries(options.ttl)) {
      ttl.push({ pattern, ms: count(ms, `ttl['${pattern}']`, { min: 1 }) });
    }
  }
  const sweepIntervalMs = count(options.sweepIntervalMs ?? DEFAULTS.sweepIntervalMs, 'sweepIntervalMs', { min: 1 });
  // permissions: { pattern: [roles] }; [] admits anyone. None given: every topic is open.
  const permissions = [];
  if (options.permissions !== undefined) {
    if (options.permissions === null || typeof options.permissions !== 'object' || Array.isArray(options.permissions)) {
      throw invalid("permissions must be an object of topic pattern -> roles, e.g. { 'prices/*': [], 'admin/**': ['admin'] }");
    }
    for (const [pattern, roles] of Object.entries(options.permissions)) {
      if (!Array.isArray(roles) || roles.some((role) => typeof role !== 'string')) {
        throw invalid(`permissions['${pattern}'] must be an array of role names ([] admits anyone)`);
      }
      permissions.push({ pattern, roles: [...roles] });
    }
  }
  return {
    clock,
    arrayKey,
    limits,
    memory,
    history,
    dedup,
    ttl,
    permissions,
    lanes,
    pacing,
    heartbeat,
    credit,
    sweepIntervalMs,
    // what the binding reads
    core: {
      clock,
      arrayKey,
      maxValueBytes: limits.maxValueBytes,
      maxDepth: limits.maxDepth,
      maxTopicLength: limits.maxTopicLength,
      memoryBytes: memory.maxBytes,
      historyCount: history.maxCount,
      historyBytes: history.maxBytes,
      dedupCount: dedup.maxCount,
      dedupWindowMs: dedup.windowMs,
      ttl,
      access: permissions,
      lanes,
      ...pacing,
      maxSubscriptions: limits.maxSubscriptions,
      maxMessageBytes: limits.maxMessageBytes,
      messagesPerSecond: limits.messagesPerSecond,
      messageBurst: limits.messageBurst,
      rateViolations: limits.rateViolations,
      heartbeatIntervalMs: heartbeat.intervalMs,
      heartbeatTimeoutMs: heartbeat.timeoutMs,
      creditFrames: credit.maxFrames,
      creditBytes: credit.maxBytes,
      stallTimeoutMs: credit.stallTimeoutMs,
      sweepIntervalMs,
    },
  };
}

function checkTopic(topic) {
  if (typeof topic !== 'string') {
    throw new DeltacastError(codes.INVALID_TOPIC, `a topic must be a string, got ${typeof topic}`);
  }
  // A lone surrogate would reach the core as U+FFFD, and two names would collide.
  if (typeof topic.isWellFormed === 'function' ? !topic.isWellFormed() : /\p{Surrogate}/u.test(topic)) {
    throw new DeltacastError(codes.INVALID_TOPIC, `topic name ${JSON.stringify(topic)} contains a lone surrogate`);
  }
}

const NO_OPTIONS = Object.freeze(['', 0]);

/** Publish options as the core takes them: [changeId, lane number (0: the topic's lane)]. */
function changeOptions(opts) {
  if (opts === undefined || opts === null) return NO_OPTIONS;
  if (typeof opts !== 'object') throw invalid('publish options must be an object');
  let changeId = '';
  if (opts.id !== undefined) {
    if (typeof opts.id !== 'string' || opts.id === '') throw invalid('options.id must be a non-empty string');
    changeId = opts.id;
  }
  let lane = 0;
  if (opts.lane !== undefined) {
    lane = LANES.indexOf(opts.lane) + 1;
    if (lane === 0) throw invalid(`options.lane must be one of ${LANES.join(', ')}`);
  }
  return [changeId, lane];
}

function checkRowId(id) {
  if (typeof id === 'string' || (typeof id === 'number' && Number.isFinite(id))) return id;
  throw invalid(`a row id must be a string or a finite number, got ${typeof id === 'number' ? id : typeof id}`);
}

// Hubs with calls in flight are held strongly: otherwise a hub whose caller
// is awaiting it is reachable only through a cycle (hub -> pending promise ->
// the awaiting code -> hub), and the collector would take it mid-call.
const busyHubs = new Set();

// Hubs still open, closed on process exit (which skips environment cleanup
// hooks in the main thread): a hub's core thread must not outlive the process.
const liveHubs = new Set();
const forget = new FinalizationRegistry((ref) => liveHubs.delete(ref));
let exitHookInstalled = false;
function installExitHook() {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const ref of liveHubs) ref.deref()?._dispose();
  });
}

class Hub {
  #native;
  #options;
  #writer; // records not yet handed to the core
  #batch = null; // the answers those records will get (AnswerBatch)
  #flushQueued = false;
  #batches = new BatchQueue(); // handed over, waiting for answers, in order
  #isBusy = false;
  #nextId = 1;
  #closing = null;
  #ref;
  #rejectedInJs = 0; // calls refused by the argument checks here, before the core
  #connections = new Map(); // connection id -> Connection
  #disposed = false;
  #nextConnection = 1;

  constructor(options) {
    this.#options = normalizeOptions(options);
    // The thread-safe function holds its callback for the hub's whole life;
    // through a WeakRef it does not keep the hub itself alive, so an
    // unreferenced hub is collected and its core thread stopped.
    const weak = new WeakRef(this);
    this.#native = new native.NativeHub(JSON.stringify(this.#options.core), () => weak.deref()?._drain());
    this.#writer = new RequestWriter(stager(this.#native));
    this.#ref = new WeakRef(this);
    liveHubs.add(this.#ref);
    forget.register(this, this.#ref, this.#ref);
    installExitHook();
  }

  /** The options in effect, defaults filled in. */
  get options() {
    const options = { ...this.#options };
    delete options.core;
    return options;
  }

  // ---- changes -------------------------------------------------------------------

  publish(topic, value, opts) {
    if (this.#closing) return closedReceipt();
    let text, options;
    try {
      checkTopic(topic);
      options = changeOptions(opts);
      text = toJsonText(value, 'the value');
    } catch (err) {
      return this.#refused(err);
    }
    return this.#queueChange(KIND.publishJson, topic, undefined, text, options);
  }

  publishJson(topic, json, opts) {
    if (this.#closing) return closedReceipt();
    let options;
    try {
      checkTopic(topic);
      options = changeOptions(opts);
      if (typeof json !== 'string' && !(json instanceof Uint8Array)) {
        throw invalid('publishJson takes JSON text: a string or a Uint8Array');
      }
    } catch (err) {
      return this.#refused(err);
    }
    return this.#queueChange(KIND.publishJson, topic, undefined, json, options);
  }

  patch(topic, ops, opts) {
    if (this.#closing) return closedReceipt();
    let text, options;
    try {
      checkTopic(topic);
      options = changeOptions(opts);
      if (!Array.isArray(ops)) {
        throw new DeltacastError(codes.INVALID_PATCH, 'a patch must be an array of operations');
      }
      text = toJsonText(ops, 'the patch');
    } catch (err) {
      return this.#refused(err);
    }
    return this.#queueChange(KIND.patch, topic, undefined, text, options);
  }

  upsert(topic, rowId, row, opts) {
    if (this.#closing) return closedReceipt();
    let text, options;
    try {
      checkTopic(topic);
      options = changeOptions(opts);
      checkRowId(rowId);
      const key = this.#options.arrayKey;
      if (key === false) throw invalid('upsert needs rows keyed by arrayKey, which is false on this hub');
      if (row === null || typeof row !== 'object' || Array.isArray(row)) {
        throw invalid('a row must be a plain object');
      }
      if (row[key] === undefined) {
        text = toJsonText({ [key]: rowId, ...row }, 'the row');
      } else if (row[key] !== rowId) {
        throw invalid(`the row's ${key} (${JSON.stringify(row[key])}) differs from the id given (${JSON.stringify(rowId)})`);
      } else {
        text = toJsonText(row, 'the row');
      }
    } catch (err) {
      return this.#refused(err);
    }
    return this.#queueChange(KIND.upsert, topic, JSON.stringify(rowId), text, options);
  }

  remove(topic, rowId, opts) {
    if (this.#closing) return closedReceipt();
    let options;
    try {
      checkTopic(topic);
      options = changeOptions(opts);
      checkRowId(rowId);
      if (this.#options.arrayKey === false) {
        throw invalid('remove needs rows keyed by arrayKey, which is false on this hub');
      }
    } catch (err) {
      return this.#refused(err);
    }
    return this.#queueChange(KIND.remove, topic, JSON.stringify(rowId), undefined, options);
  }

  delete(topic) {
    if (this.#closing) return closedReceipt().promise();
    try {
      checkTopic(topic);
    } catch (err) {
      return this.#refused(err).promise();
    }
    const receipt = this.#answered(KIND.delete, ANSWER_FOUND);
    this.#writer.str(topic);
    this.#queued();
    return receipt.promise();
  }

  // ---- connections ---------------------------------------------------------------

  /**
   * A subscriber, over any transport: `send(frame)` is called with each
   * server message (a JSON string); the returned Connection takes the
   * client's messages with receive(text).
   */
  connect(transport) {
    if (this.#closing) throw new DeltacastError(codes.CLOSED, 'the hub is closed');
    if (transport === null || typeof transport !== 'object' || typeof transport.send !== 'function') {
      throw invalid('connect() takes a transport: { send(frame), close?(code, reason), user?: { id, roles }, acks?: boolean }');
    }
    if (transport.close !== undefined && typeof transport.close !== 'function') throw invalid('transport.close must be a function');
    const user = transport.user ?? {};
    if (typeof user !== 'object' || user === null) throw invalid('transport.user must be an object');
    if (user.id !== undefined && typeof user.id !== 'string') throw invalid('transport.user.id must be a string');
    const roles = user.roles ?? [];
    if (!Array.isArray(roles) || roles.some((role) => typeof role !== 'string')) {
      throw invalid('transport.user.roles must be an array of strings');
    }
    if (transport.acks !== undefined && typeof transport.acks !== 'boolean') {
      throw invalid('transport.acks must be a boolean (false: a connection without acks, paced by send() and drained())');
    }
    const id = this.#nextConnection++;
    const connection = new Connection(this, id, transport);
    this.#connections.set(id, connection);
    const w = this.#writer;
    w.u8(KIND.connect);
    w.f64(id);
    w.str(user.id ?? '');
    w.u32(roles.length);
    for (const role of roles) w.str(role);
    w.u8(transport.acks === false ? 0 : 1);
    this.#queued();
    return connection;
  }

  /** @internal */ _receive(id, message) {
    if (this.#closing || !this.#connections.has(id)) return;
    if (typeof message !== 'string' && !(message instanceof Uint8Array)) {
      message = String(message); // the core answers with DELTACAST_INVALID_MESSAGE if it is not JSON
    }
    const w = this.#writer;
    w.u8(KIND.receive);
    w.f64(id);
    w.payload(message);
    this.#queued();
  }

  /** @internal */ _congestion(id, congested) {
    if (this.#closing || !this.#connections.has(id)) return;
    const w = this.#writer;
    w.u8(KIND.congestion);
    w.f64(id);
    w.u8(congested ? 1 : 0);
    this.#queued();
  }

  /** @internal */ _disconnect(id) {
    if (!this.#connections.delete(id)) return;
    if (this.#closing) return;
    const w = this.#writer;
    w.u8(KIND.disconnect);
    w.f64(id);
    this.#queued();
  }

  // ---- reading -------------------------------------------------------------------

  /** The current value of a topic: { epoch, version, data }, or undefined. Synchronous. */
  get(topic) {
    checkTopic(topic);
    if (this.#closing) return undefined;
    const entry = this.#native.get(topic);
    if (entry === undefined) return undefined;
    return { epoch: entry[2], version: entry[1], data: JSON.parse(entry[0]) };
  }

  /** get() as JSON text, for callers that pass it on unparsed (SSR, HTTP). */
  getJson(topic) {
    checkTopic(topic);
    if (this.#closing) return undefined;
    const entry = this.#native.get(topic);
    if (entry === undefined) return undefined;
    return { epoch: entry[2], version: entry[1], json: entry[0] };
  }

  stats() {
    const stats = this.#native.stats();
    stats.rejected += this.#rejectedInJs;
    stats.pending = this.#batches.pending + (this.#batch?.count ?? 0);
    stats.closed = this.#closing !== null;
    return stats;
  }

  // ---- time and lifecycle --------------------------------------------------------

  /** Manual clock only: moves time by `ms`; resolves once everything that fell due has run. */
  advance(ms) {
    if (this.#closing) return closedReceipt().promise();
    try {
      if (this.#options.clock !== 'manual') throw invalid("advance() needs a hub created with clock: 'manual'");
      count(ms, 'ms');
    } catch (err) {
      return this.#refused(err).promise();
    }
    const receipt = this.#answered(KIND.advance, ANSWER_NONE);
    this.#writer.f64(ms);
    this.#queued();
    return receipt.promise();
  }

  /** Stops the core thread once every earlier call has been answered. Idempotent. */
  close() {
    if (this.#closing) return this.#closing;
    let closed;
    if (this.#disposed) {
      closed = Promise.resolve();
    } else {
      closed = this.#answered(KIND.close, ANSWER_NONE).promise();
      this.#flush(); // now: nothing may follow the close record
    }
    // Disposed either way: if _dispose() ran first (process exit), close() still resolves.
    this.#closing = closed.then(
      () => this._dispose(),
      () => this._dispose(),
    );
    return this.#closing;
  }

  // ---- internals -----------------------------------------------------------------

  /** A call refused by the checks here, before the core. */
  #refused(err) {
    this.#rejectedInJs += 1;
    return Receipt.rejected(err);
  }

  /** Starts a record that the core will answer: its kind and id. */
  #answered(kind, answer) {
    if (!this.#isBusy) this.#busy(true);
    const receipt = new Receipt(answer, (this.#batch ??= new AnswerBatch()));
    const w = this.#writer;
    w.u8(kind);
    w.u32(this.#nextId);
    this.#nextId = this.#nextId === 0xffffffff ? 1 : this.#nextId + 1;
    return receipt;
  }

  #queueChange(kind, topic, key, payload, options) {
    const receipt = this.#answered(kind, ANSWER_CHANGE);
    const w = this.#writer;
    w.str(topic);
    if (key !== undefined) w.str(key);
    if (payload !== undefined) w.payload(payload);
    w.str(options[0]);
    w.u8(options[1]);
    this.#queued();
    return receipt;
  }

  /** A record is complete: hand the batch over at the end of this job, or now if it is big. */
  #queued() {
    if (this.#writer.length >= FLUSH_BYTES) {
      this.#flush();
    } else if (!this.#flushQueued) {
      this.#flushQueued = true;
      queueMicrotask(this.#flushSoon);
    }
  }

  #flushSoon = () => {
    this.#flushQueued = false;
    this.#flush();
  };

  #flush() {
    const w = this.#writer;
    if (w.length === 0 || this.#disposed) return;
    const batch = this.#batch;
    this.#batch = null;
    batch?.seal();
    try {
      this.#native.submit(w.view());
      if (batch !== null) this.#batches.push(batch);
    } catch (err) {
      // Nothing of the batch ran; its calls fail, the hub goes on.
      batch?.failRest(err.code?.startsWith('DELTACAST_') ? new DeltacastError(err.code, err.message) : err);
      this.#idleCheck();
    } finally {
      w.reset();
    }
  }

  /** Called through the thread-safe function: sends every frame, then settles every answered call. */
  _drain() {
    const [answers, strings, frames, sends, closings] = this.#native.take();
    // Frames first: a call's frames were produced before its answer, so a
    // caller awaiting the call (advance(0) in tests) finds them sent.
    for (let i = 0; i < sends.length; i += 2) {
      this.#connections.get(sends[i])?._send(frames[sends[i + 1]]);
    }
    // Connections the core closed (heartbeat timeout, flood): after their last frames.
    for (let i = 0; i < closings.length; i += 3) {
      const connection = this.#connections.get(closings[i]);
      if (connection === undefined) continue;
      this.#connections.delete(closings[i]);
      connection._closedByHub(closings[i + 1], closings[i + 2]);
    }
    // Answers arrive in the order the requests were queued.
    const batches = this.#batches;
    for (let i = 0; i < answers.length; i += 5) {
      const code = answers[i + 3];
      const text = answers[i + 4]; // >= 0: a packed epoch; < 0: -1 - index into strings
      const answered =
        code >= 0
          ? batches.answer(0, 0, 0, new DeltacastError(strings[code], strings[-1 - text]))
          : batches.answer(answers[i + 1], answers[i + 2], text >= 0 ? text : strings[-1 - text], null);
      if (!answered) break;
    }
    batches.settlePartial();
    this.#idleCheck();
  }

  #idleCheck() {
    if (this.#isBusy && this.#batches.pending === 0 && this.#batch === null) this.#busy(false);
  }

  // While calls are pending the thread-safe function keeps the event loop
  // alive and the hub is held strongly; when idle, neither.
  #busy(busy) {
    this.#isBusy = busy;
    if (busy) {
      busyHubs.add(this);
      this.#native.ref();
    } else {
      busyHubs.delete(this);
      this.#native.unref();
    }
  }

  /** Stops the core thread now (process exit, tests). Pending calls are rejected. */
  _dispose() {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#closing ??= Promise.resolve();
    // What the core already answered is settled as answered, not as CLOSED.
    this._drain();
    this.#native.dispose();
    liveHubs.delete(this.#ref);
    forget.unregister(this.#ref);
    this.#writer.reset();
    const closed = new DeltacastError(codes.CLOSED, 'the hub was closed before answering');
    for (const batch of this.#batches.drainAll()) batch.failRest(closed);
    if (this.#batch !== null) {
      this.#batch.seal();
      this.#batch.failRest(closed);
      this.#batch = null;
    }
    busyHubs.delete(this);
    // Transports hear that the hub is going away (1001, as a WebSocket server does).
    for (const connection of this.#connections.values()) connection._closedByHub(1001, 'the hub is closing');
    this.#connections.clear();
  }
}

/** One subscriber's end of the hub (hub.connect()). */
class Connection {
  #hub;
  #transport;
  #open = true;
  #congested = false;

  constructor(hub, id, transport) {
    this.#hub = hub;
    this.#transport = transport;
    Object.defineProperty(this, 'id', { value: String(id), enumerable: true });
    this._numericId = id;
  }

  /** A message from the client (JSON text). Malformed ones are answered with an `err` frame. */
  receive(message) {
    if (this.#open) this.#hub._receive(this._numericId, message);
  }

  /**
   * The transport's socket has drained after send() returned false (for ws:
   * the 'drain' event of the underlying socket). Frames held back meanwhile go
   * out as one catch-up frame per topic.
   */
  drained() {
    if (!this.#open || !this.#congested) return;
    this.#congested = false;
    this.#hub._congestion(this._numericId, false);
  }

  /** The transport is gone: drops the connection's subscriptions. Idempotent. */
  close() {
    if (!this.#open) return;
    this.#open = false;
    this.#hub._disconnect(this._numericId);
  }

  /** @internal */ _closedByHub(code, reason) {
    if (!this.#open) return;
    this.#open = false;
    try {
      this.#transport.close?.(code, reason);
    } catch {
      // the transport is going away anyway
    }
  }

  /** @internal */ _send(frame) {
    if (!this.#open) return;
    try {
      // false: the socket is congested; non-critical frames wait for drained()
      if (this.#transport.send(frame) === false && !this.#congested) {
        this.#congested = true;
        this.#hub._congestion(this._numericId, true);
      }
    } catch {
      // A throwing transport is a broken one: it loses its connection, and the
      // hub and the other connections go on.
      this.close();
      try {
        this.#transport.close?.(1011, 'transport send failed');
      } catch {
        // nothing more to do
      }
    }
  }
}

// Made outside the Hub constructor on purpose: a closure made there would
// share its context with the thread-safe function's callback, which is a GC
// root, and the native hub would then be reachable for ever (never finalized,
// its thread never stopped).
function stager(nativeHub) {
  return (bytes) => nativeHub.stage(bytes);
}

function closedReceipt() {
  return Receipt.rejected(new DeltacastError(codes.CLOSED, 'the hub is closed'));
}

function createHub(options) {
  return new Hub(options);
}

module.exports = { createHub, Hub, Connection, Receipt, normalizeOptions };
