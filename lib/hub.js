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
const { toJsonText, checkUtf8Size } = require('./to_native');
const {
  KIND,
  FLUSH_BYTES,
  RequestWriter,
  AnswerBatch,
  Receipt,
  Thenable,
  BatchQueue,
  ANSWER_CHANGE,
  ANSWER_FOUND,
  ANSWER_NONE,
  ANSWER_STATE,
  RELEASE_FLAG,
  HELD_FLAG,
  isDetached,
} = require('./requests');
const { LANES, normalizeOptions, checkAdvance, checkRoles } = require('./options');
const { checkOperationValues, applyPatch } = require('./apply_patch');
const { IdentityCache, identityMode, holdable } = require('./identity');

function invalid(message) {
  return new DeltacastError(codes.INVALID_ARGUMENT, message);
}

/**
 * A topic name as the core takes it (validateTopic in native/src/topic_store.cc;
 * README, "Topic names"): a string of 1 to `maxBytes` UTF-8 bytes
 * (limits.maxTopicLength), without C0 or C1 control characters or DEL, and
 * well formed (a lone surrogate would reach the core as U+FFFD, and two names
 * would collide). Checked here for every call, so that get(), getJson(),
 * delete() and the calls an engine serves refuse a name exactly as the core
 * refuses a change to it: DELTACAST_INVALID_TOPIC.
 */
function checkTopic(topic, maxBytes) {
  if (typeof topic !== 'string') {
    throw new DeltacastError(codes.INVALID_TOPIC, `a topic must be a string, got ${typeof topic}`);
  }
  const n = topic.length;
  if (n === 0) throw new DeltacastError(codes.INVALID_TOPIC, 'a topic name cannot be empty');
  // Every unit is at least one byte: too many units is too many bytes.
  if (n > maxBytes) throw topicTooLong(topic, maxBytes);
  let ascii = true;
  for (let i = 0; i < n; i++) {
    const c = topic.charCodeAt(i);
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) {
      throw new DeltacastError(codes.INVALID_TOPIC, `topic name ${JSON.stringify(topic)} contains a control character`);
    }
    if (c >= 0x80) ascii = false;
  }
  if (ascii) return;
  if (!isWellFormedText(topic)) {
    throw new DeltacastError(codes.INVALID_TOPIC, `topic name ${JSON.stringify(topic)} contains a lone surrogate`);
  }
  if (Buffer.byteLength(topic, 'utf8') > maxBytes) throw topicTooLong(topic, maxBytes);
}

function topicTooLong(topic, maxBytes) {
  const bytes = Buffer.byteLength(topic, 'utf8');
  return new DeltacastError(codes.INVALID_TOPIC, `topic name of ${bytes} bytes is over the limit of ${maxBytes}`);
}

const NO_OPTIONS = Object.freeze(['', 0]);

/** An array, or an object with a member that is an object: what publishing by identity can reuse. */
function hasObjectMembers(value) {
  if (Array.isArray(value)) return true;
  for (const key in value) {
    const member = value[key];
    if (typeof member === 'object' && member !== null) return true;
  }
  return false;
}

/** Whether a string is well-formed UTF-16 (no lone surrogate): it has a UTF-8 form. */
function isWellFormedText(text) {
  return typeof text.isWellFormed === 'function' ? text.isWellFormed() : !/\p{Surrogate}/u.test(text);
}

// TopicStore::replicate's modes (ReplicaMode in native/include/deltacast/topic_store.h), in order.
const REPLICA_MODES = Object.freeze(['state', 'patch', 'absent', 'history']);

// With an engine, a change is made in JS on the engine's current value (JSON
// text, undefined when absent) and sent whole: these make the next value.
const engineEdit = {
  patch(base, ops) {
    const next = applyPatch(base === undefined ? null : JSON.parse(base), ops);
    return next === null && base === undefined ? undefined : toJsonText(next, 'the patched value');
  },
  upsert(base, key, rowId, rowText) {
    if (base === undefined) return `[${rowText}]`;
    const rows = keyedRows(JSON.parse(base), key);
    const at = rows.findIndex((row) => row[key] === rowId);
    const row = JSON.parse(rowText);
    if (at < 0) rows.push(row);
    else rows[at] = row;
    return JSON.stringify(rows);
  },
  remove(base, topic, key, rowId) {
    if (base === undefined) throw new DeltacastError(codes.NOT_KEYED_ARRAY, `topic ${JSON.stringify(topic)} does not exist`);
    const rows = keyedRows(JSON.parse(base), key);
    const at = rows.findIndex((row) => row[key] === rowId);
    if (at < 0) return base;
    rows.splice(at, 1);
    return JSON.stringify(rows);
  },
};

function keyedRows(value, key) {
  const ok = Array.isArray(value) && value.every((row) => row !== null && typeof row === 'object' && (typeof row[key] === 'string' || typeof row[key] === 'number'));
  if (!ok) throw new DeltacastError(codes.NOT_KEYED_ARRAY, `the topic does not hold an array of rows keyed by ${JSON.stringify(key)}`);
  return value;
}

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

// The lane byte of a change on the critical lane (changeOptions: LANES index + 1).
const CRITICAL_LANE = LANES.indexOf('critical') + 1;

// A held value's number (Held.id, the Hold record's heldId, by which the core
// asks for it): its slot in the hub's table plus SLOT_SPAN times a
// generation, so that an ask for a value released since (its slot reused)
// finds nothing. At most SLOT_SPAN values are held at once; past that a
// publish goes at once, as without coalescing.
const SLOT_SPAN = 2 ** 24;
const SLOT_MASK = SLOT_SPAN - 1; // (id & SLOT_MASK: ToInt32 keeps the low 32 bits, of which these are the slot)
const GENERATIONS = 2 ** 29; // 1 to GENERATIONS - 1; SLOT_SPAN * GENERATIONS = 2^53: every id is a safe integer

/**
 * The publishes of one topic held by coalescing (pacing.coalesce) until the
 * topic's lane flushes: the latest value, and the one receipt they share, a
 * thenable as Receipt is (then/catch/finally, promise()), whose Promise is
 * made only when someone asks: once released, it is the receipt of the
 * change the flush made of the value.
 */
class Held extends Thenable {
  topic;
  id = 0; // the number a flush asks for it by (its Hold's heldId): slot + SLOT_SPAN * generation
  live = true; // still held (false: released or rejected; the hub's map may keep it until it sweeps)
  value;
  trusted; // the latest publish said { immutable: true }
  lane; // the most urgent lane byte asked for (0: the topic's own)
  at; // the hub clock at the latest publish (the core dates the change then)
  sentLane = -1; // the lane byte of the latest Hold written (-1: none)
  late = null; // publishes since that Hold: the turn of the latest ({ at }: its end, on the hub clock)
  latePos = 0; // and the bytes of records written before it (Redate's position)
  #receipt = null; // the release's Receipt
  #promise = null; // null, a Promise, or while waiting { promise, resolve, reject }

  constructor(topic, value, trusted, lane, at) {
    super();
    this.topic = topic;
    this.value = value;
    this.trusted = trusted;
    this.lane = lane;
    this.at = at;
  }

  /** The value went as the change `receipt` answers: that answer is this one's. */
  settle(receipt) {
    this.#receipt = receipt;
    const waiting = this.#promise;
    if (waiting === null) return;
    receipt.then(waiting.resolve, waiting.reject);
    this.#promise = waiting.promise;
  }

  /** The value could not go (`error`); reported as a promise's rejection would be if nobody awaits it. */
  reject(error) {
    const waiting = this.#promise;
    if (waiting === null) {
      this.#promise = Promise.reject(error);
    } else if (!(waiting instanceof Promise)) {
      waiting.reject(error);
      this.#promise = waiting.promise;
    }
  }

  /** The receipt as a real Promise (made once). */
  promise() {
    const made = this.#promise;
    if (made instanceof Promise) return made;
    if (made !== null) return made.promise;
    if (this.#receipt !== null) return (this.#promise = this.#receipt.promise());
    const waiting = { promise: null, resolve: null, reject: null };
    waiting.promise = new Promise((resolve, reject) => {
      waiting.resolve = resolve;
      waiting.reject = reject;
    });
    this.#promise = waiting;
    return waiting.promise;
  }
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

/**
 * A client message its transport could not hand over as text (a binary
 * WebSocket frame, extra Socket.IO arguments, another event on an exclusive
 * namespace), given to connection.receive by the adapters: the core charges
 * it to the inbound rate limit like any message and answers `err` with
 * `code` (DELTACAST_INVALID_MESSAGE or DELTACAST_UNKNOWN_MESSAGE).
 * @internal
 */
class RefusedMessage {
  constructor(code, message) {
    if (code !== codes.INVALID_MESSAGE && code !== codes.UNKNOWN_MESSAGE) throw invalid(`a refused message's code must be DELTACAST_INVALID_MESSAGE or DELTACAST_UNKNOWN_MESSAGE, got ${String(code)}`);
    this.code = code;
    this.message = String(message);
  }
}

// What a text message with a lone surrogate becomes (see _receive).
const NOT_UNICODE = Object.freeze(
  new RefusedMessage(codes.INVALID_MESSAGE, 'a text message with a lone surrogate (not well-formed Unicode: it has no UTF-8 form)'),
);

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
  #answersDropped = 0; // err / gone answers not written to a congested connection
  #disposed = false;
  #nextConnection = 1;
  #onAudit; // the onAudit hook, or undefined
  #clockOrigin = 0; // real clock: Date.now() when the hub's clock read 0
  #manualNow = 0; // manual clock: the sum of advance() calls queued
  #engine; // an engine (deltacast/redis) holding topics across processes, or undefined
  #identity = null; // IdentityCache, from the first publish by identity (lib/identity.js)
  #coalesce = false; // pacing.coalesce
  #datesHolds = false; // TTL rules exist: a held value's publish time matters to the identity cache (lib/identity.js)
  // topic -> Held: immutable values waiting for their lane's flush, and some
  // released since (live false: a release marks its Held instead of looking
  // the topic up again to delete it; #forgetHeld sweeps them)
  #coalesced = new Map();
  #slots = []; // slot -> Held (undefined: free): the held values by the number an ask names (#live() of them)
  #serializing = []; // topics whose held value is being serialized (its toJSON or a getter may publish to them)
  #heldChanges = 0; // Helds made or let go so far: a publish whose checks ran a getter looks its topic up again
  #freeSlots = [];
  #generation = 0;
  #wantRounds = 0; // drains in which the core asked for held values
  #heldByIdentity = false; // the last #heldText was made by identity (a patch when identity.patched)
  #handed = 0; // bytes of records handed over so far (the core counts them alike: Redate's position)
  #turn = null; // { at }: the turn of publishes not told to the core (Held.late), dated at its end
  #heldFor = 0; // a refused patch sent again as full text: its request id, whose answer comes first
  #held = []; // the answers that came after it meanwhile: five slots each
  #resendUnsent = false; // that full text is in the writer, not handed over yet

  constructor(options) {
    const normalized = normalizeOptions(options);
    this.#onAudit = normalized.onAudit;
    delete normalized.onAudit; // a function: not for the binding, and not cloneable
    const engine = normalized.engine;
    delete normalized.engine; // likewise
    this.#options = normalized;
    this.#coalesce = normalized.pacing.coalesce;
    this.#datesHolds = normalized.ttl.length > 0;
    this.#clockOrigin = Date.now();
    // The thread-safe function holds its callback for the hub's whole life;
    // through a WeakRef it does not keep the hub itself alive, so an
    // unreferenced hub is collected and its core thread stopped.
    const weak = new WeakRef(this);
    this.#native = new native.NativeHub(JSON.stringify({ ...this.#options, audit: this.#onAudit !== undefined }), () =>
      weak.deref()?._drain(),
    );
    this.#writer = new RequestWriter(stager(this.#native));
    this.#ref = new WeakRef(this);
    liveHubs.add(this.#ref);
    forget.register(this, this.#ref, this.#ref);
    installExitHook();
    if (engine !== undefined) this.#attachEngine(engine);
  }

  /** The options in effect, defaults filled in. */
  get options() {
    const options = structuredClone(this.#options);
    if (this.#onAudit !== undefined) options.onAudit = this.#onAudit;
    if (this.#engine !== undefined) options.engine = this.#engine;
    return options;
  }

  // ---- changes -------------------------------------------------------------------

  publish(topic, value, opts) {
    if (this.#closing) return closedReceipt();
    // Coalescing, a frozen value for a topic held already (so its name was
    // checked) and told on its own lane: a Map lookup and four stores.
    let held; // (looked up once: #hold takes it)
    const heldChanges = this.#heldChanges;
    if (this.#live() !== 0) {
      held = this.#liveHeld(topic);
      if (
        held !== undefined &&
        opts === undefined &&
        held.sentLane === 0 &&
        !this.#datesHolds &&
        identityMode(value, undefined) === 1 &&
        holdable(value, held.value) &&
        this.#heldChanges === heldChanges // (the checks read the value: a getter may have published)
      ) {
        return this.#late(held, value, false);
      }
    }
    let text, options, mode;
    try {
      checkTopic(topic, this.#options.limits.maxTopicLength);
      options = changeOptions(opts);
      mode = identityMode(value, opts);
      if (mode < 0) throw invalid('options.immutable must be a boolean');
      // Coalescing: an immutable value waits for its lane's flush (not with
      // an id: a retried id must find the very change it names).
      if (
        mode > 0 &&
        this.#coalesce &&
        this.#engine === undefined &&
        options[0] === '' &&
        options[1] !== CRITICAL_LANE &&
        (mode === 2 || holdable(value, held?.value ?? this.#identity?.lastRows(topic)))
      ) {
        if (this.#heldChanges !== heldChanges) {
          held = this.#liveHeld(topic); // a getter read above published: the topic may be held since, or not
        }
        const receipt = this.#hold(held, topic, value, mode === 2, options[1]);
        if (receipt !== undefined) return receipt;
      }
      this.#releaseEarly(topic);
      // With an engine the change is made on the engine's state, as full text.
      if (mode > 0 && this.#engine === undefined) text = this.#byIdentity(topic, value, mode === 2);
      text ??= toJsonText(value, 'the value');
    } catch (err) {
      return this.#refused(err);
    }
    if (this.#engine !== undefined) return this.#engine._change(topic, () => text, options[0]);
    if (mode === 0) return this.#queueChange(KIND.publishJson, topic, undefined, text, options);
    const identity = this.#identity;
    const id = this.#nextId;
    const receipt = this.#queueChange(identity.patched ? KIND.patch : KIND.publishJson, topic, undefined, text, options);
    if (this.#nextId !== id) identity.sent(id, options[0], options[1]);
    return receipt;
  }

  /**
   * Coalescing: holds `value` for `topic` until the topic's lane flushes
   * (the core asks for it: _drain's wants), and tells the core's pacing of
   * this publish (a Hold record: no serialization). The publishes held
   * together share one receipt, settled by the change the flush makes.
   */
  #hold(held, topic, value, trusted, lane) {
    if (held !== undefined && lane === held.sentLane && !this.#datesHolds) return this.#late(held, value, trusted);
    // Published from inside the serialization of the value held for the same
    // topic (its toJSON or a getter): published at once, as without
    // coalescing (a Hold now would come before that value's release, which
    // the core would take as answering it too).
    if (this.#serializing.length !== 0 && this.#serializing.includes(topic)) return undefined;
    const at = this.#datesHolds ? this.#clockNow() : 0; // (the core dates the change itself)
    // Publishes since the last Hold are told first: their time paces the flush too.
    if (held !== undefined && held.late !== null) this.#writeRedate(topic, held);
    if (held === undefined) {
      held = new Held(topic, value, trusted, lane, at);
      if (!this.#slot(held)) return undefined; // as many held as there are slots: published at once
      this.#coalesced.set(topic, held);
      this.#heldChanges += 1;
      if (!this.#isBusy) this.#busy(true);
    } else {
      held.value = value;
      held.trusted = trusted;
      held.at = at;
      if (lane !== 0 && (held.lane === 0 || lane < held.lane)) held.lane = lane;
    }
    const w = this.#writer;
    const start = w.length;
    try {
      w.u8(KIND.hold);
      w.str(topic);
      w.u8(lane);
      w.f64(held.id);
    } catch (err) {
      w.rollback(start);
      if (held.sentLane < 0) {
        this.#forgetHeld(held); // never told: nothing will ask for it
        held.value = undefined;
      }
      return this.#refused(err);
    }
    this.#queued();
    held.sentLane = lane;
    held.late = null; // this Hold is later
    return held;
  }

  /**
   * A publish of a topic held already, told on this lane: the core hears of
   * its time only if the flush asks (Redate), which costs one record per
   * window instead of one per publish. (With TTL rules every publish dates
   * the topic's expiry: each is told, by a Hold.)
   */
  #late(held, value, trusted) {
    held.value = value;
    held.trusted = trusted;
    held.late = this.#turn ?? this.#newTurn();
    held.latePos = this.#handed + this.#writer.length;
    return held;
  }

  // The time of a publish not told to the core (Held.late), read once per
  // turn: on the real clock at the turn's end (the core would have dated a
  // Hold when the turn's records reached it, no earlier); on the manual
  // clock at the first such publish, and again after an advance().
  #newTurn() {
    this.#turn = { at: this.#clockNow() };
    queueMicrotask(this.#endTurn);
    return this.#turn;
  }

  #endTurn = () => {
    const turn = this.#turn;
    if (turn === null) return;
    if (this.#options.clock !== 'manual') turn.at = this.#clockNow();
    this.#turn = null;
  };

  /**
   * Tells the core of the publishes of `held` since its last Hold (Redate):
   * when the latest was made and where it falls among the records. False if
   * the record could not be written (memory).
   */
  #writeRedate(topic, held, releaseFollows = false) {
    const ago = Math.min(0xffffffff, Math.max(0, Math.round(this.#clockNow() - held.late.at)));
    try {
      this.#unanswered((w) => {
        w.u8(KIND.redate);
        w.str(topic);
        w.u8(held.sentLane | (releaseFollows ? RELEASE_FLAG : 0));
        w.u32(ago);
        w.f64(held.latePos);
      });
    } catch {
      return false;
    }
    held.late = null;
    return true;
  }

  /** The value held for `topic`, or undefined (none, or its entry is a released one the map keeps). */
  #liveHeld(topic) {
    const held = this.#coalesced.get(topic);
    return held !== undefined && held.live ? held : undefined;
  }

  /** How many values are held: the slots taken. */
  #live() {
    return this.#slots.length - this.#freeSlots.length;
  }

  /** Gives `held` a slot and its number (Held.id); false if every slot is taken. */
  #slot(held) {
    let slot = this.#freeSlots.pop();
    if (slot === undefined) {
      if (this.#slots.length === SLOT_SPAN) return false;
      slot = this.#slots.length;
      this.#slots.push(undefined);
    }
    this.#generation = this.#generation + 1 === GENERATIONS ? 1 : this.#generation + 1; // (never 0: an id is at least 1)
    held.id = slot + SLOT_SPAN * this.#generation;
    this.#slots[slot] = held;
    return true;
  }

  /**
   * `held` is no longer held: an ask for it finds nothing from now on. Its
   * entry stays in the map, marked, until the next Held of its topic
   * replaces it or a sweep: when nothing is held any more (a new map), or
   * when released entries outnumber live ones eight to one (past 65,536).
   */
  #forgetHeld(held) {
    held.live = false;
    this.#heldChanges += 1;
    const slot = held.id & SLOT_MASK;
    this.#slots[slot] = undefined;
    this.#freeSlots.push(slot);
    const live = this.#live();
    const map = this.#coalesced;
    if (live === 0) {
      if (map.size !== 0) this.#coalesced = new Map();
    } else if (map.size > 8 * live + 65536) {
      const kept = new Map();
      for (const [topic, entry] of map) if (entry.live) kept.set(topic, entry);
      this.#coalesced = kept;
    }
  }

  /**
   * The core asked for the held value numbered `id`: publishes since its
   * last Hold are told first; then, if the ask is `due` (the value must come
   * now: Delivery::takeDueWants), the value goes, else the core asks again
   * when the flush is due. A value released since was sent already (a
   * change, or a Release when it could not be), which the core took as the
   * answer: nothing to do.
   */
  #asked(id, due) {
    const held = this.#slots[id & SLOT_MASK];
    if (held === undefined || held.id !== id) return;
    if (held.late !== null && this.#writeRedate(held.topic, held, due) && !due) return;
    this.#releaseHeld(held, true);
  }

  /**
   * Serializes the value `held` and queues it as a change
   * (a patch by identity, or the full text); `asked`: the core asked for it
   * (the change is flagged as the release of its flush; otherwise as a held
   * value released early). The core does not apply it when the topic was
   * removed after the value was published (the value went with it): then
   * the receipt resolves null.
   */
  #releaseHeld(held, asked) {
    const topic = held.topic;
    // Early (another call on the topic, close()): the core first hears of the
    // publishes since the last Hold, which order the value against a removal.
    if (!asked && held.late !== null) this.#writeRedate(topic, held);
    this.#forgetHeld(held);
    let text;
    this.#serializing.push(topic);
    try {
      text = this.#heldText(topic, held);
    } catch (err) {
      this.#serializing.pop();
      held.value = undefined;
      this.#rejectedInJs += 1;
      held.reject(err);
      this.#writeRelease(topic);
      return;
    }
    this.#serializing.pop();
    held.value = undefined; // (the map may keep the Held a while: not the caller's object)
    const identity = this.#identity;
    // (text is a patch only when made by identity: a value without rows is
    // serialized whole, and the flag may be left from an earlier publish)
    const patched = this.#heldByIdentity && identity !== null && identity.patched;
    const options = ['', held.lane | (asked ? RELEASE_FLAG : HELD_FLAG)];
    const id = this.#nextId;
    const receipt = this.#queueChange(patched ? KIND.patch : KIND.publishJson, topic, undefined, text, options);
    if (this.#nextId !== id) {
      identity?.sent(id, '', options[1]);
    } else {
      this.#writeRelease(topic); // refused before it was queued: the flush goes without it
    }
    held.settle(receipt);
  }

  /**
   * The text of a held value: by identity when it has rows to reuse (a flat
   * value is cheaper to serialize whole), else JSON.stringify's, which throws
   * what is wrong with it (a throwing getter met while looking is left to it).
   */
  #heldText(topic, held) {
    let rows = false;
    try {
      rows = hasObjectMembers(held.value);
    } catch {
      // JSON.stringify below meets it too
    }
    const text = rows ? this.#byIdentity(topic, held.value, held.trusted, held.at) : undefined;
    this.#heldByIdentity = text !== undefined;
    return text ?? toJsonText(held.value, 'the value');
  }

  /** Another call on `topic`: a value held for it goes first, as a change of its own. */
  #releaseEarly(topic) {
    if (this.#live() === 0) return;
    const held = this.#liveHeld(topic);
    if (held !== undefined) this.#releaseHeld(held, false);
  }

  /**
   * A held value was let go without a change carrying it (it could not be
   * serialized, or was refused before it was queued): the core holds nothing
   * for the topic any more, and a flush that asked for it goes without it.
   */
  #writeRelease(topic) {
    try {
      this.#unanswered((w) => {
        w.u8(KIND.release);
        w.str(topic);
      });
    } catch {
      // nothing written: the name was written before (its Hold); only memory can fail here
    }
  }

  /**
   * The text of an immutable value from what changed since the last publish,
   * or undefined (JSON.stringify it). `at`: when it was published (held: earlier).
   */
  #byIdentity(topic, value, trusted, at) {
    this.#identity ??= new IdentityCache(this.#options, () => this.#native.evictions());
    try {
      const now = this.#clockNow();
      return this.#identity.prepare(topic, value, trusted, now, at ?? now);
    } catch {
      this.#identity.forget(topic);
      return undefined; // a throwing proxy, say: JSON.stringify says what is wrong, as before
    }
  }

  publishJson(topic, json, opts) {
    if (this.#closing) return closedReceipt();
    let options;
    try {
      checkTopic(topic, this.#options.limits.maxTopicLength);
      options = changeOptions(opts);
      if (typeof json !== 'string' && !(json instanceof Uint8Array)) {
        throw invalid('publishJson takes JSON text: a string or a Uint8Array');
      }
      if (typeof json !== 'string' && isDetached(json)) {
        throw invalid('publishJson was given a Uint8Array whose buffer is detached (transferred)');
      }
    } catch (err) {
      return this.#refused(err);
    }
    if (this.#engine !== undefined) {
      const text = typeof json === 'string' ? json : Buffer.from(json.buffer, json.byteOffset, json.byteLength).toString('utf8');
      return this.#engine._change(topic, () => text, options[0]);
    }
    this.#releaseEarly(topic);
    return this.#queueChange(KIND.publishJson, topic, undefined, json, options);
  }

  patch(topic, ops, opts) {
    if (this.#closing) return closedReceipt();
    let text, options;
    try {
      checkTopic(topic, this.#options.limits.maxTopicLength);
      options = changeOptions(opts);
      if (!Array.isArray(ops)) {
        throw new DeltacastError(codes.INVALID_PATCH, 'a patch must be an array of operations');
      }
      checkOperationValues(ops); // NaN, Infinity, undefined: refused as applyPatch refuses them
      text = toJsonText(ops, 'the patch');
    } catch (err) {
      return this.#refused(err);
    }
    if (this.#engine !== undefined) return this.#engine._change(topic, (base) => engineEdit.patch(base, ops), options[0]);
    this.#releaseEarly(topic);
    return this.#queueChange(KIND.patch, topic, undefined, text, options);
  }

  upsert(topic, rowId, row, opts) {
    if (this.#closing) return closedReceipt();
    let text, options;
    try {
      checkTopic(topic, this.#options.limits.maxTopicLength);
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
    if (this.#engine !== undefined) {
      return this.#engine._change(topic, (base) => engineEdit.upsert(base, this.#options.arrayKey, rowId, text), options[0]);
    }
    this.#releaseEarly(topic);
    return this.#queueChange(KIND.upsert, topic, JSON.stringify(rowId), text, options);
  }

  remove(topic, rowId, opts) {
    if (this.#closing) return closedReceipt();
    let options;
    try {
      checkTopic(topic, this.#options.limits.maxTopicLength);
      options = changeOptions(opts);
      checkRowId(rowId);
      if (this.#options.arrayKey === false) {
        throw invalid('remove needs rows keyed by arrayKey, which is false on this hub');
      }
    } catch (err) {
      return this.#refused(err);
    }
    if (this.#engine !== undefined) {
      return this.#engine._change(topic, (base) => engineEdit.remove(base, topic, this.#options.arrayKey, rowId), options[0]);
    }
    this.#releaseEarly(topic);
    return this.#queueChange(KIND.remove, topic, JSON.stringify(rowId), undefined, options);
  }

  delete(topic) {
    if (this.#closing) return closedReceipt().promise();
    try {
      checkTopic(topic, this.#options.limits.maxTopicLength);
    } catch (err) {
      return this.#refused(err).promise();
    }
    this.#releaseEarly(topic);
    this.#identity?.forget(topic);
    if (this.#engine !== undefined) return this.#engine._delete(topic);
    return this.#localDelete(topic);
  }

  #localDelete(topic) {
    const w = this.#writer;
    const start = this.#begin(KIND.delete);
    try {
      w.str(topic);
    } catch (err) {
      return this.#rolledBack(start, err).promise();
    }
    return this.#answered(ANSWER_FOUND).promise();
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
      throw invalid(
        'connect() takes a transport: { send(frame), close?(code, reason), user?: { id, roles, expiresAt? }, acks?: boolean, kind?: string, authenticate?(token) }',
      );
    }
    if (transport.close !== undefined && typeof transport.close !== 'function') throw invalid('transport.close must be a function');
    const authenticate = transport.authenticate;
    if (authenticate !== undefined && typeof authenticate !== 'function') throw invalid('transport.authenticate must be a function');
    const kind = transport.kind ?? '';
    if (typeof kind !== 'string') throw invalid('transport.kind must be a string (the transport\'s name in audit events)');
    // Read once and checked whole before anything is written: the record is
    // written from these copies, so a getter cannot change them half-way.
    const user = transport.user ?? {};
    if (typeof user !== 'object' || user === null || Array.isArray(user)) throw invalid('transport.user must be an object');
    const userId = user.id ?? '';
    if (typeof userId !== 'string') throw invalid('transport.user.id must be a string');
    const roles = checkRoles(user.roles ?? [], 'transport.user.roles');
    const expiresAt = this.#hubTime(user.expiresAt, 'transport.user.expiresAt');
    if (transport.acks !== undefined && typeof transport.acks !== 'boolean') {
      throw invalid('transport.acks must be a boolean (false: a connection without acks, paced by send() and drained())');
    }
    const id = this.#nextConnection;
    const w = this.#writer;
    const start = w.length;
    try {
      w.u8(KIND.connect);
      w.f64(id);
      w.str(userId);
      w.u32(roles.length);
      for (const role of roles) w.str(role);
      w.u8(transport.acks === false ? 0 : 1);
      w.f64(expiresAt);
      w.str(kind);
    } catch (err) {
      w.rollback(start);
      throw err;
    }
    this.#nextConnection += 1;
    const connection = new Connection(this, id, transport, authenticate);
    this.#connections.set(id, connection);
    this.#queued();
    return connection;
  }

  /**
   * An identity's expiresAt (ms since the epoch; manual clock: ms on the
   * manual clock, which starts at 0) as the core's clock reads it; -1: never.
   */
  #hubTime(expiresAt, where) {
    if (expiresAt === undefined || expiresAt === null) return -1;
    if (typeof expiresAt !== 'number' || !Number.isFinite(expiresAt)) {
      throw invalid(`${where} must be a finite number of ms since the epoch (manual clock: ms on the manual clock)`);
    }
    const at = this.#options.clock === 'manual' ? expiresAt : expiresAt - this.#clockOrigin;
    return Math.min(Math.max(0, Math.ceil(at)), Number.MAX_SAFE_INTEGER);
  }

  /**
   * The hub's clock as JS knows it (the manual clock's queued advances, or
   * Date.now()): the time of an audit event made here (hub.audit), on the
   * clock of the core's events, and of a held publish.
   */
  #clockNow() {
    return this.#options.clock === 'manual' ? this.#manualNow : Date.now();
  }

  /**
   * Reports an audit event the core cannot see: an identity refused by a
   * transport before hub.connect (adapters call it with `{ type: 'refused',
   * transport, code, user? }`). Goes to onAudit with its `time`; no-op
   * without onAudit. Never pass a token.
   */
  audit(event) {
    if (this.#onAudit === undefined) return;
    if (event === null || typeof event !== 'object' || typeof event.type !== 'string') {
      throw invalid('hub.audit() takes an event: { type, transport?, user?, code?, topic? }');
    }
    const out = { type: event.type, time: this.#clockNow(), connection: event.connection, user: event.user ?? '', transport: event.transport ?? '' };
    if (event.topic !== undefined) out.topic = event.topic;
    if (event.code !== undefined) out.code = event.code;
    this.#emitAudit(out);
  }

  #emitAudit(event) {
    try {
      this.#onAudit(event);
    } catch {
      // an audit hook that throws loses its event; the hub goes on
    }
  }

  /** The client sent {"t":"auth"}: the transport's hook verifies the token; the core hears the result (reauth). */
  #verify(id, token) {
    const connection = this.#connections.get(id);
    if (connection === undefined) return;
    const hook = connection._authenticate;
    connection._authChain = connection._authChain.then(async () => {
      let status = 2; // no hook
      let user;
      if (hook !== undefined) {
        try {
          user = await hook(token);
          if (user === null || typeof user !== 'object' || typeof user.id !== 'string') throw invalid('no identity');
          user = { id: user.id, roles: checkRoles(user.roles ?? [], 'roles'), expiresAt: this.#hubTime(user.expiresAt, 'expiresAt') };
          status = 0;
        } catch {
          status = 1; // refused, or an identity that is not one
          user = undefined;
        }
      }
      this.#reauth(id, status, user);
    });
  }

  #reauth(id, status, user) {
    if (this.#closing || !this.#connections.has(id)) return;
    this.#unanswered((w) => {
      w.u8(KIND.reauth);
      w.f64(id);
      w.u8(status);
      w.str(user?.id ?? '');
      const roles = user?.roles ?? [];
      w.u32(roles.length);
      for (const role of roles) w.str(role);
      w.f64(user?.expiresAt ?? -1);
    });
  }

  /** @internal */ _receive(id, message) {
    if (this.#closing || !this.#connections.has(id)) return;
    // A lone surrogate has no UTF-8 form: encoded, it would turn into U+FFFD
    // and the message would name another topic than the one the client sent.
    if (typeof message === 'string' && !isWellFormedText(message)) message = NOT_UNICODE;
    if (this.#engine !== undefined && this.#engine._inbound(id, message)) return; // held until a topic is loaded
    this._receiveNow(id, message);
  }

  /** @internal a client message straight to the core */ _receiveNow(id, message) {
    if (this.#closing || !this.#connections.has(id)) return;
    if (message instanceof RefusedMessage) {
      this.#refuse(id, message);
      return;
    }
    if (typeof message !== 'string' && !(message instanceof Uint8Array)) {
      message = String(message); // the core answers with DELTACAST_INVALID_MESSAGE if it is not JSON
    } else if (typeof message !== 'string' && isDetached(message)) {
      throw invalid('connection.receive was given a Uint8Array whose buffer is detached (transferred)');
    }
    this.#unanswered((w) => {
      w.u8(KIND.receive);
      w.f64(id);
      w.payload(message);
    });
  }

  #refuse(id, refused) {
    this.#unanswered((w) => {
      w.u8(KIND.refuse);
      w.f64(id);
      w.u8(refused.code === codes.INVALID_MESSAGE ? 0 : 1);
      w.str(refused.message);
    });
  }

  /** @internal an answer was not written to a congested connection */ _answerDropped() {
    this.#answersDropped += 1;
  }

  /** @internal */ _congestion(id, congested) {
    if (this.#closing || !this.#connections.has(id)) return;
    this.#unanswered((w) => {
      w.u8(KIND.congestion);
      w.f64(id);
      w.u8(congested ? 1 : 0);
    });
  }

  /** @internal */ _disconnect(id) {
    if (!this.#connections.delete(id)) return;
    this.#engine?._disconnected(id);
    if (this.#closing) return;
    this.#unanswered((w) => {
      w.u8(KIND.disconnect);
      w.f64(id);
    });
  }

  // ---- reading -------------------------------------------------------------------

  /** The current value of a topic: { epoch, version, data }, or undefined. Synchronous. */
  get(topic) {
    checkTopic(topic, this.#options.limits.maxTopicLength);
    if (this.#closing) return undefined;
    const entry = this.#native.get(topic);
    if (entry === undefined) return undefined;
    return { epoch: entry[2], version: entry[1], data: JSON.parse(entry[0]) };
  }

  /** get() as JSON text, for callers that pass it on unparsed (SSR, HTTP). */
  getJson(topic) {
    checkTopic(topic, this.#options.limits.maxTopicLength);
    if (this.#closing) return undefined;
    const entry = this.#native.get(topic);
    if (entry === undefined) return undefined;
    return { epoch: entry[2], version: entry[1], json: entry[0] };
  }

  stats() {
    const stats = this.#native.stats();
    stats.rejected += this.#rejectedInJs - (this.#identity?.resent ?? 0);
    stats.internalErrors += this.#batches.unmatched;
    stats.answersDropped = this.#answersDropped;
    stats.pending = this.#batches.pending + (this.#batch?.count ?? 0);
    stats.closed = this.#closing !== null;
    stats.coalesced = this.#live();
    return stats;
  }

  // ---- time and lifecycle --------------------------------------------------------

  /** Manual clock only: moves time by `ms`; resolves once everything that fell due has run. */
  advance(ms) {
    if (this.#closing) return closedReceipt().promise();
    try {
      if (this.#options.clock !== 'manual') throw invalid("advance() needs a hub created with clock: 'manual'");
      checkAdvance(ms);
    } catch (err) {
      return this.#refused(err).promise();
    }
    const start = this.#begin(KIND.advance);
    try {
      this.#writer.f64(ms);
    } catch (err) {
      return this.#rolledBack(start, err).promise();
    }
    this.#manualNow += ms;
    this.#turn = null; // a publish after this is dated after it
    const answered = this.#answered(ANSWER_NONE).promise();
    if (!this.#coalesce) return answered;
    // Flushes that fell due asked for held values: advance() resolves once
    // those went out too (their changes were queued when the core asked).
    const rounds = this.#wantRounds;
    return answered.then(() => (this.#wantRounds === rounds || this.#closing ? undefined : this.advance(0)));
  }

  /** Stops the core thread once every earlier call has been answered. Idempotent. */
  close() {
    if (this.#closing) return this.#closing;
    let closed;
    if (this.#disposed) {
      closed = Promise.resolve();
    } else {
      // Held values go first, as changes of their own: close() sends every paced change.
      for (const held of [...this.#coalesced.values()]) if (held.live) this.#releaseHeld(held, false);
      this.#begin(KIND.close);
      closed = this.#answered(ANSWER_NONE).promise();
      this.#flush(); // now: nothing may follow the close record
    }
    // Disposed either way: if _dispose() ran first (process exit), close() still resolves.
    if (this.#engine !== undefined) closed = closed.then(() => this.#engine._detach(this));
    this.#closing = closed.then(
      () => this._dispose(),
      () => this._dispose(),
    );
    return this.#closing;
  }

  // ---- engine (deltacast/redis) -----------------------------------------------------

  #attachEngine(engine) {
    try {
      engine._attach(this, this.#engineHooks());
    } catch (err) {
      this._dispose(); // the core thread started above stops
      throw err;
    }
    this.#engine = engine;
  }

  #engineHooks() {
    return {
      // The local store as a replica of the engine's copy (TopicStore::replicate):
      // resolves with the local { epoch, version } afterwards (version 0: absent).
      replicate: (topic, epoch, version, mode, payload) => this.#replicate(topic, epoch, version, mode, payload),
    };
  }

  #replicate(topic, epoch, version, mode, payload) {
    if (this.#closing) return closedReceipt().promise();
    const w = this.#writer;
    const start = this.#begin(KIND.replicate);
    try {
      w.str(topic);
      w.str(epoch);
      w.f64(version);
      w.u8(REPLICA_MODES.indexOf(mode));
      w.payload(payload);
    } catch (err) {
      return this.#rolledBack(start, err).promise();
    }
    return this.#answered(ANSWER_STATE).promise();
  }

  // ---- internals -----------------------------------------------------------------

  /** A call refused by the checks here, before the core. */
  #refused(err) {
    this.#rejectedInJs += 1;
    return Receipt.rejected(err);
  }

  // A record the core answers is written in three steps: #begin (its kind
  // and the id it will be answered with), its fields, then #answered, which
  // makes the receipt and counts the call in the batch. A throw while writing
  // the fields rolls the writer back (#rolledBack): no partial record reaches
  // the core, no receipt is left waiting, and the id is not used.

  /** Writes a record's kind and id; returns where the record starts. */
  #begin(kind) {
    const w = this.#writer;
    const start = w.length;
    w.u8(kind);
    w.u32(this.#nextId);
    return start;
  }

  /** The record begun last is complete: its receipt (answered by the core, in order). */
  #answered(answer) {
    if (!this.#isBusy) this.#busy(true);
    const batch = (this.#batch ??= new AnswerBatch(this.#nextId));
    this.#nextId = nextRequestId(this.#nextId);
    const receipt = new Receipt(answer, batch);
    this.#queued();
    return receipt;
  }

  /**
   * Writes one record the core does not answer (`write(writer)` writes its
   * kind and fields) and queues it; a throw while writing rolls the writer
   * back (no partial record reaches the core) and propagates.
   */
  #unanswered(write) {
    const w = this.#writer;
    const start = w.length;
    try {
      write(w);
    } catch (err) {
      w.rollback(start);
      throw err;
    }
    this.#queued();
  }

  /** Writing a record threw: nothing of it stays; the call fails with what was thrown. */
  #rolledBack(start, err) {
    this.#writer.rollback(start);
    return this.#refused(err);
  }

  #queueChange(kind, topic, key, payload, options) {
    // A text that cannot fit is refused before it is encoded. A patch may
    // carry a whole value inside its operations (TopicStore::patch's limit).
    // Any change to the topic, refused here or not, ends what the identity
    // cache knew of it (a publish by identity has redone its entry in place).
    this.#identity?.forget(topic); // publish() records its own change after this
    const { maxValueBytes } = this.#options.limits;
    try {
      if (kind === KIND.patch) checkUtf8Size(payload, maxValueBytes * 2 + 4096, 'patch: ');
      else checkUtf8Size(payload, maxValueBytes, kind === KIND.upsert ? 'row: ' : '');
    } catch (err) {
      return this.#refused(err);
    }
    const w = this.#writer;
    const start = this.#begin(kind);
    try {
      w.str(topic);
      if (key !== undefined) w.str(key);
      if (payload !== undefined) w.payload(payload);
      w.str(options[0]);
      w.u8(options[1]);
    } catch (err) {
      return this.#rolledBack(start, err);
    }
    return this.#answered(ANSWER_CHANGE);
  }

  /**
   * A record is complete: hand the batch over at the end of this job, or now
   * if it is big (its records and staged payloads: a loop publishing large
   * texts keeps the core thread busy on the first while it encodes the next).
   */
  #queued() {
    if (this.#writer.length + this.#writer.staged >= FLUSH_BYTES) {
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
      this.#handed += w.length;
      if (batch !== null) this.#batches.push(batch);
    } catch (err) {
      // Nothing of the batch ran; its calls fail, the hub goes on.
      const error = err.code?.startsWith('DELTACAST_') ? new DeltacastError(err.code, err.message) : err;
      if (this.#resendUnsent) this.#release(error);
      batch?.failRest(error);
      this.#idleCheck();
    } finally {
      this.#resendUnsent = false;
      w.reset();
    }
  }

  /** Called through the thread-safe function: sends every frame, then settles every answered call. */
  _drain() {
    const [answers, strings, frames, sends, closings, audits, auths, wants, dueWants] = this.#native.take();
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
      this.#engine?._disconnected(closings[i]);
      connection._closedByHub(closings[i + 1], closings[i + 2]);
    }
    // Audit events, in the order the core decided them (seven slots each, binding/hub.cc).
    if (audits !== undefined && audits.length > 0 && this.#onAudit !== undefined) {
      const manual = this.#options.clock === 'manual';
      for (let i = 0; i < audits.length; i += 7) {
        const event = {
          type: audits[i],
          time: manual ? audits[i + 6] : this.#clockOrigin + audits[i + 6],
          connection: String(audits[i + 1]),
          user: audits[i + 2],
          transport: audits[i + 3],
        };
        if (audits[i + 4] !== undefined) event.topic = audits[i + 4];
        const code = audits[i + 5];
        if (typeof code === 'number') event.closeCode = code;
        else if (code !== undefined) event.code = code;
        this.#emitAudit(event);
      }
    }
    // Tokens to verify ({"t":"auth"}), by each connection's authenticate hook.
    if (auths !== undefined) for (let i = 0; i < auths.length; i += 2) this.#verify(auths[i], auths[i + 1]);
    // Flushes asking for held values (coalescing): each goes as a change that
    // releases its flush. Due asks (removed while held: dropped by the core
    // unless a publish since the last Hold came after the removal; or found
    // due by a Redate) get the value at once, whatever was published since.
    if ((wants.length > 0 || dueWants.length > 0) && !this.#disposed) {
      this.#wantRounds += 1;
      for (let i = 0; i < wants.length; i++) this.#asked(wants[i], false);
      for (let i = 0; i < dueWants.length; i++) this.#asked(dueWants[i], true);
    }
    // Answers arrive in the order the requests were queued, each with its
    // request's id (checked: BatchQueue.answer).
    const batches = this.#batches;
    for (let i = 0; i < answers.length; i += 5) {
      const id = answers[i];
      const code = answers[i + 3];
      const text = answers[i + 4]; // >= 0: a packed epoch; < 0: -1 - index into strings
      if (this.#identity !== null) {
        if (code >= 0) this.#answer(id, 0, 0, 0, new DeltacastError(strings[code], strings[-1 - text]));
        else this.#answer(id, answers[i + 1], answers[i + 2], text >= 0 ? text : strings[-1 - text], null);
      } else if (code >= 0) batches.answer(id, 0, 0, 0, new DeltacastError(strings[code], strings[-1 - text]));
      else batches.answer(id, answers[i + 1], answers[i + 2], text >= 0 ? text : strings[-1 - text], null);
    }
    batches.settlePartial();
    this.#idleCheck();
  }

  /**
   * An answer on a hub that publishes by identity. A publish sent as a patch
   * and refused (its topic expired or was evicted meanwhile) goes again as
   * full text under the same id; the answers after it wait for that one's,
   * so every call is still answered in order.
   */
  #answer(id, flags, version, epoch, error) {
    if (this.#heldFor !== 0) {
      if (id !== this.#heldFor) {
        this.#held.push(id, flags, version, epoch, error);
        return;
      }
      this.#heldFor = 0;
    }
    const text = this.#identity.answered(id, flags, error, this.#closing !== null || this.#disposed);
    if (text !== undefined && this.#resend(id, text)) return;
    this.#batches.answer(id, flags, version, epoch, error);
    if (this.#heldFor === 0 && this.#held.length > 0) {
      const held = this.#held;
      this.#held = [];
      for (let i = 0; i < held.length; i += 5) this.#answer(held[i], held[i + 1], held[i + 2], held[i + 3], held[i + 4]);
    }
  }

  #resend(id, text) {
    const entry = this.#identity.resend(id);
    const w = this.#writer;
    const start = w.length;
    try {
      w.u8(KIND.publishJson);
      w.u32(id);
      w.str(entry.topic);
      w.payload(text);
      w.str(entry.changeId);
      w.u8(entry.lane);
    } catch {
      w.rollback(start);
      this.#identity.resent -= 1;
      this.#identity.forget(entry.topic);
      return false;
    }
    this.#heldFor = id;
    this.#resendUnsent = true;
    this.#queued();
    return true;
  }

  /** The full text sent again will not be answered: its call fails with `error`, the answers held go on. */
  #release(error) {
    const id = this.#heldFor;
    if (id === 0) return;
    this.#heldFor = 0;
    this.#identity?.forget(this.#identity.resend(id)?.topic ?? '');
    this.#answer(id, 0, 0, 0, error);
  }

  #idleCheck() {
    if (this.#isBusy && this.#batches.pending === 0 && this.#batch === null && this.#live() === 0) this.#busy(false);
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
    this.#release(closed);
    this.#identity?.clear();
    for (const held of this.#coalesced.values()) if (held.live) held.reject(closed);
    this.#coalesced = new Map();
    this.#slots = [];
    this.#freeSlots = [];
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

  constructor(hub, id, transport, authenticate) {
    this.#hub = hub;
    this.#transport = transport;
    this._authenticate = authenticate;
    this._authChain = Promise.resolve(); // token checks of this connection, one at a time, in order
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
    if (this.#congested && isAnswer(frame)) {
      // The socket is full (send() returned false, not yet drained()): an
      // answer to the client's own messages is dropped, not buffered, so a
      // client that stops reading cannot grow the server's buffer by sending.
      this.#hub._answerDropped();
      return;
    }
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

/**
 * An answer to a client's own message: an `err`, or the `gone` (reason
 * `absent`) answering a resume of a topic that is not there. The core writes
 * both forms (native/src/frames.cc): `{"t":"err",...}`, and a `gone` ending in
 * `"reason":"absent"}` (a removal's `gone` says deleted, expired or evicted).
 */
function isAnswer(frame) {
  return (
    typeof frame === 'string' &&
    (frame.startsWith('{"t":"err",') || (frame.startsWith('{"t":"gone",') && frame.endsWith(',"reason":"absent"}')))
  );
}

// Made outside the Hub constructor on purpose: a closure made there would
// share its context with the thread-safe function's callback, which is a GC
// root, and the native hub would then be reachable for ever (never finalized,
// its thread never stopped).
function stager(nativeHub) {
  return (bytes) => nativeHub.stage(bytes);
}

/** Request ids run from 1 to 2^32 - 1 and wrap (0 is never used). */
function nextRequestId(id) {
  return id === 0xffffffff ? 1 : id + 1;
}

function closedReceipt() {
  return Receipt.rejected(new DeltacastError(codes.CLOSED, 'the hub is closed'));
}

function createHub(options) {
  return new Hub(options);
}

module.exports = { createHub, Hub, Connection, Receipt, RefusedMessage, normalizeOptions };
