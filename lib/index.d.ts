// Type declarations for `deltacast` (CommonJS and ESM entry points).

/** The stable codes carried by DeltacastError#code. */
export type DeltacastErrorCode =
  | 'DELTACAST_INVALID_ARGUMENT'
  | 'DELTACAST_INVALID_JSON'
  | 'DELTACAST_INVALID_VALUE'
  | 'DELTACAST_INVALID_PATCH'
  | 'DELTACAST_INVALID_POINTER'
  | 'DELTACAST_PATH_NOT_FOUND'
  | 'DELTACAST_PATCH_TEST_FAILED'
  | 'DELTACAST_TOO_LARGE'
  | 'DELTACAST_TOO_DEEP'
  | 'DELTACAST_INVALID_TOPIC'
  | 'DELTACAST_NOT_KEYED_ARRAY'
  | 'DELTACAST_CLOSED'
  | 'DELTACAST_INTERNAL'
  | 'DELTACAST_TOO_MANY_OPS'
  | 'DELTACAST_NOT_BUILT'
  | 'DELTACAST_ENGINE_UNAVAILABLE'
  | 'DELTACAST_CONFLICT'
  | 'DELTACAST_INVALID_MESSAGE'
  | 'DELTACAST_UNKNOWN_MESSAGE'
  | 'DELTACAST_MESSAGE_TOO_LARGE'
  | 'DELTACAST_INVALID_ACK'
  | 'DELTACAST_FORBIDDEN'
  | 'DELTACAST_TOO_MANY_SUBSCRIPTIONS'
  | 'DELTACAST_RATE_LIMITED'
  | 'DELTACAST_UNAUTHORIZED'
  | 'DELTACAST_INVALID_QUERY'
  | 'DELTACAST_NOT_FOUND'
  | 'DELTACAST_TOPIC_NOT_FOUND'
  | 'DELTACAST_METHOD_NOT_ALLOWED'
  | 'DELTACAST_URL_TOO_LONG'
  | 'DELTACAST_SOCKETIO_INTERNALS';

/** Every error deltacast throws. Branch on `code`; `message` is for humans. */
export class DeltacastError extends Error {
  constructor(code: DeltacastErrorCode, message: string, details?: object);
  readonly name: 'DeltacastError';
  readonly code: DeltacastErrorCode;
  /** applyPatch: the position of the failing operation in the patch. */
  readonly index?: number;
  /** applyPatch: the failing operation's `op`. */
  readonly op?: string;
  /** applyPatch: the failing operation's `path`. */
  readonly path?: string;
  /** applyPatch: the failing operation's `from` (move, copy). */
  readonly from?: string;
}

export const codes: {
  readonly INVALID_ARGUMENT: 'DELTACAST_INVALID_ARGUMENT';
  readonly INVALID_JSON: 'DELTACAST_INVALID_JSON';
  readonly INVALID_VALUE: 'DELTACAST_INVALID_VALUE';
  readonly INVALID_PATCH: 'DELTACAST_INVALID_PATCH';
  readonly INVALID_POINTER: 'DELTACAST_INVALID_POINTER';
  readonly PATH_NOT_FOUND: 'DELTACAST_PATH_NOT_FOUND';
  readonly PATCH_TEST_FAILED: 'DELTACAST_PATCH_TEST_FAILED';
  readonly TOO_LARGE: 'DELTACAST_TOO_LARGE';
  readonly TOO_DEEP: 'DELTACAST_TOO_DEEP';
  readonly INVALID_TOPIC: 'DELTACAST_INVALID_TOPIC';
  readonly NOT_KEYED_ARRAY: 'DELTACAST_NOT_KEYED_ARRAY';
  readonly CLOSED: 'DELTACAST_CLOSED';
  readonly INTERNAL: 'DELTACAST_INTERNAL';
  /** A patch with more operations than limits.maxPatchOps (default 10000). */
  readonly TOO_MANY_OPS: 'DELTACAST_TOO_MANY_OPS';
  readonly NOT_BUILT: 'DELTACAST_NOT_BUILT';
  readonly ENGINE_UNAVAILABLE: 'DELTACAST_ENGINE_UNAVAILABLE';
  readonly CONFLICT: 'DELTACAST_CONFLICT';
  readonly INVALID_MESSAGE: 'DELTACAST_INVALID_MESSAGE';
  readonly UNKNOWN_MESSAGE: 'DELTACAST_UNKNOWN_MESSAGE';
  readonly MESSAGE_TOO_LARGE: 'DELTACAST_MESSAGE_TOO_LARGE';
  readonly INVALID_ACK: 'DELTACAST_INVALID_ACK';
  readonly FORBIDDEN: 'DELTACAST_FORBIDDEN';
  readonly TOO_MANY_SUBSCRIPTIONS: 'DELTACAST_TOO_MANY_SUBSCRIPTIONS';
  readonly RATE_LIMITED: 'DELTACAST_RATE_LIMITED';
  readonly UNAUTHORIZED: 'DELTACAST_UNAUTHORIZED';
  readonly INVALID_QUERY: 'DELTACAST_INVALID_QUERY';
  readonly NOT_FOUND: 'DELTACAST_NOT_FOUND';
  readonly TOPIC_NOT_FOUND: 'DELTACAST_TOPIC_NOT_FOUND';
  readonly METHOD_NOT_ALLOWED: 'DELTACAST_METHOD_NOT_ALLOWED';
  readonly URL_TOO_LONG: 'DELTACAST_URL_TOO_LONG';
  readonly SOCKETIO_INTERNALS: 'DELTACAST_SOCKETIO_INTERNALS';
};

/** RFC 6902 operations. Paths are RFC 6901 JSON Pointers. */
export type AddOperation<V = unknown> = { op: 'add'; path: string; value: V };
export type RemoveOperation = { op: 'remove'; path: string };
export type ReplaceOperation<V = unknown> = { op: 'replace'; path: string; value: V };
export type MoveOperation = { op: 'move'; from: string; path: string };
export type CopyOperation = { op: 'copy'; from: string; path: string };
export type TestOperation<V = unknown> = { op: 'test'; path: string; value: V };
export type Operation =
  | AddOperation
  | RemoveOperation
  | ReplaceOperation
  | MoveOperation
  | CopyOperation
  | TestOperation;

export interface DiffOptions {
  /**
   * Arrays whose elements are all objects carrying this member (with a string
   * or number value) are matched by it: an inserted, removed or moved row costs
   * one operation. Default "id"; false compares arrays by position/LCS only.
   */
  arrayKey?: string | false;
  /**
   * 'ops' (default): the operations as JS values (JSON.parse of the patch, so
   * a number beyond double precision comes back rounded). 'json': the patch
   * as JSON text, every value copied from `b` as written.
   */
  output?: 'ops' | 'json';
}

/** applyPatchJson's options. */
export interface ApplyPatchJsonOptions {
  /** Operations in one patch; more: DELTACAST_TOO_MANY_OPS. Default 10000. */
  maxPatchOps?: number;
}

/** JSON text as the core takes it: a string, or UTF-8 bytes (Buffer, Uint8Array). */
export type JsonText = string | Uint8Array;

/**
 * RFC 6902 operations that turn `a` into `b`, sequentially applicable.
 * Both values are serialized with JSON.stringify (toJSON is honoured; nested
 * undefined and functions are omitted as JSON.stringify omits them). Throws
 * DELTACAST_INVALID_VALUE for cycles, BigInt, or a top-level value JSON cannot
 * carry. Runs synchronously on the calling thread.
 */
export function diff(a: unknown, b: unknown, options: DiffOptions & { output: 'json' }): string;
export function diff(a: unknown, b: unknown, options?: DiffOptions): Operation[];

/**
 * diff() for documents already held as JSON text; nothing is parsed in JS.
 * With { output: 'json' } the patch is returned as JSON text, so nothing is
 * rounded on the text path. Whitespace in either text changes nothing: values
 * in the patch are minified, and the patch is that of the compact texts.
 */
export function diffJson(a: JsonText, b: JsonText, options: DiffOptions & { output: 'json' }): string;
export function diffJson(a: JsonText, b: JsonText, options?: DiffOptions): Operation[];

/**
 * diffJson() off the event loop: both texts are copied, then parsed and
 * diffed on a thread of libuv's pool (UV_THREADPOOL_SIZE, 4 by default), so a
 * large document does not hold up the event loop (diffJson of a 221 KB board
 * takes about 2 ms). Resolves to what diffJson returns; rejects with the
 * DeltacastError diffJson throws (DELTACAST_INVALID_JSON with a byte offset,
 * DELTACAST_TOO_DEEP, DELTACAST_TOO_LARGE, DELTACAST_INVALID_ARGUMENT).
 */
export function diffJsonAsync(a: JsonText, b: JsonText, options: DiffOptions & { output: 'json' }): Promise<string>;
export function diffJsonAsync(a: JsonText, b: JsonText, options?: DiffOptions): Promise<Operation[]>;

/**
 * Applies a patch and returns the new document. Pure: `doc` is untouched, and
 * the result shares every unchanged subtree with it (treat both as immutable).
 * Atomic: a failing operation throws a DeltacastError and nothing is returned.
 * A patch value JSON cannot carry (NaN, Infinity, a BigInt, undefined, a
 * function, a symbol, a cycle) is refused with DELTACAST_INVALID_VALUE, as
 * applyPatchJson refuses it.
 */
export function applyPatch<T>(doc: T, ops: readonly Operation[]): T;

/**
 * Applies a patch to a document held as JSON text, natively, and returns the
 * new text. Every value the patch does not touch keeps its text byte for byte
 * (1e400 stays 1e400); values the patch carries are written as given. Throws
 * DELTACAST_TOO_MANY_OPS above options.maxPatchOps operations (default
 * 10000), DELTACAST_TOO_LARGE / DELTACAST_TOO_DEEP as soon as the document
 * would pass 64 MiB or 512 levels while applying, DELTACAST_INVALID_JSON for
 * an object naming a member twice, DELTACAST_INVALID_VALUE as applyPatch.
 */
export function applyPatchJson(
  doc: JsonText,
  ops: readonly Operation[] | JsonText,
  options?: ApplyPatchJsonOptions,
): string;

/** JSON equality: numbers by value, objects regardless of member order. */
export function jsonEqual(a: unknown, b: unknown): boolean;

// ---- the hub ----------------------------------------------------------------------

/**
 * createHub options (the schema is lib/options.js; the README has the table).
 * Every count is an integer; every time is in milliseconds, from 0 (or 1) to
 * 2^31 - 1. An unknown name or a value out of bounds throws
 * DELTACAST_INVALID_ARGUMENT naming the option's path; nothing is replaced.
 */
export interface HubOptions {
  /** 'manual': time moves only with hub.advance(ms). Default 'real'. */
  clock?: 'real' | 'manual';
  /** The key of rows in arrays (diff matching, upsert/remove). Default 'id'; false: none. */
  arrayKey?: string | false;
  limits?: {
    /**
     * Bytes of one value's JSON text (DELTACAST_TOO_LARGE). Default 64 MiB; 1 to
     * 256 MiB (so that a snapshot frame stays under the longest frame, 2^29 - 24 bytes).
     */
    maxValueBytes?: number;
    /** Nesting depth of a value (DELTACAST_TOO_DEEP). Default 512; 1 to 4096. */
    maxDepth?: number;
    /** Bytes of a topic name (DELTACAST_INVALID_TOPIC). Default 256; 1 to 65536. */
    maxTopicLength?: number;
    /**
     * Operations in one hub.patch; more: DELTACAST_TOO_MANY_OPS, nothing
     * applied. Default 10000; 1 to 1,000,000. maxValueBytes and maxDepth hold
     * while a patch applies (DELTACAST_TOO_LARGE / DELTACAST_TOO_DEEP before the
     * operation that would pass them builds anything).
     */
    maxPatchOps?: number;
    /** Subscriptions per connection. Default 1000; at least 1. */
    maxSubscriptions?: number;
    /** Bytes of one client message. Default 64 KiB; 64 to 2^32 - 2. */
    maxMessageBytes?: number;
    /** Inbound messages per second per connection (token bucket). Default 100; at least 1. */
    messagesPerSecond?: number;
    /** Burst of the inbound bucket. Default 1000; at least 1. */
    messageBurst?: number;
    /** Messages refused in a row before the connection is closed (1008). Default 100; at least 1. */
    rateViolations?: number;
  };
  /**
   * A ping every intervalMs (0: none); a connection silent for timeoutMs is
   * closed (4000). Defaults 25000 / 60000 ms; at most 2^31 - 1 ms.
   */
  heartbeat?: { intervalMs?: number; timeoutMs?: number };
  /**
   * Credit window: state frames (maxFrames, default 64) and their bytes
   * (maxBytes, default 1 MiB) sent and not acknowledged; over it a connection
   * is conflated, and closed after stallTimeoutMs (default 30000 ms, at most 2^31 - 1).
   */
  credit?: { maxFrames?: number; maxBytes?: number; stallTimeoutMs?: number };
  /** The store's budget; least recently used topics are evicted above it. Default 256 MiB; 0: none. */
  memory?: { maxBytes?: number };
  /** Patches kept per topic for resume. Defaults: 32 patches, 256 KiB. */
  history?: { maxCount?: number; maxBytes?: number };
  /** Change ids remembered for deduplication. Defaults: 10,000 ids, windowMs 60000 (at most 2^31 - 1). */
  dedup?: { maxCount?: number; windowMs?: number };
  /** Topic pattern -> ms (1 to 2^31 - 1) without a publish after which the topic is deleted. First match wins. */
  ttl?: Record<string, number>;
  /**
   * Topic pattern -> roles that may subscribe ([] admits anyone; "{userId}" in a
   * pattern matches only the connecting user's id). None given: every topic is
   * open to every connection. Once given, a topic no rule admits is refused.
   */
  permissions?: Record<string, string[]>;
  /** Topic pattern -> lane (first match wins; default 'normal'). */
  lanes?: Record<string, Lane>;
  /**
   * Lane timings in ms (each 0 to 2^31 - 1). Defaults: highWindowMs 16;
   * normalDebounceMs 50, normalMaxWaitMs 250; lowIntervalMs 1000.
   *
   * `coalesce` (default false): hub.publish() of an immutable value (a
   * deep-frozen root, or `{ immutable: true }`) on a paced lane is held, not
   * serialized; when the topic's lane flushes, the latest held value is
   * serialized once (by identity) and applied, and the flush goes out. The
   * publishes held together resolve with that one version (one shared
   * promise). Not held: a change with an `id`, `lane: 'critical'`, any other
   * value, a hub with an engine. Until the flush, get() returns the state
   * before them, and another call on the topic (publishJson, patch, upsert,
   * remove, delete, a publish not held) applies the held value first, as a
   * change of its own. close() applies every held value. README, "Coalescing".
   */
  pacing?: { highWindowMs?: number; normalDebounceMs?: number; normalMaxWaitMs?: number; lowIntervalMs?: number; coalesce?: boolean };
  /** Real clock: how often TTLs and the dedup window are checked. Default 1000 ms; 1 to 2^31 - 1. */
  sweepIntervalMs?: number;
  /**
   * hub.close() (close code 1001: a restart, a deploy): every adapter first
   * sends clients `{"t":"retry","ms":restartRetryMs}`, and they spread their
   * return over that window (docs/protocol.md, Closing). Default 10000 ms; 0
   * to 2^31 - 1; 0: no hint (deltacast/client then waits up to its own
   * reconnect.restartMs). A short window suits development.
   */
  restartRetryMs?: number;
  /**
   * Called with one AuditEvent per connect, refusal (adapters, hub.audit),
   * sub, forbidden sub, auth refresh (ok or failed), expiry and close, in the
   * order the core decided them. No event holds a token. An exception it
   * throws loses that event only. Not a function: DELTACAST_INVALID_ARGUMENT.
   */
  onAudit?: (event: AuditEvent) => void;
  /**
   * Where topics live across processes: redisEngine() from 'deltacast/redis'.
   * Default: this process only. With an engine, changes go through it
   * (rejecting with DELTACAST_ENGINE_UNAVAILABLE or DELTACAST_CONFLICT) and
   * get()/getJson() read this node's replica. One engine per hub.
   */
  engine?: Engine;
}

/** An engine for createHub({ engine }); its members are internal. */
export interface Engine {
  readonly _engine?: never;
}

/** One audit event (HubOptions.onAudit). */
export interface AuditEvent {
  type: 'connect' | 'refused' | 'sub' | 'forbidden' | 'auth' | 'auth-failed' | 'expired' | 'close' | (string & {});
  /**
   * ms: real clock, ms since the epoch (the hub's steady clock from its
   * start); manual clock, the manual clock's ms.
   */
  time: number;
  /** The connection's id (Connection.id); undefined for a refusal before one existed. */
  connection: string | undefined;
  /** The user id ('' anonymous). */
  user: string;
  /** The transport's name (Transport.kind): 'ws', 'socket.io', 'sse', 'poll', or yours. */
  transport: string;
  /** sub, forbidden: the topic. */
  topic?: string;
  /** forbidden, auth-failed, refused: a DELTACAST_* code (DELTACAST_FORBIDDEN, DELTACAST_UNAUTHORIZED). */
  code?: string;
  /** close by the hub, expired: the close code (4003 for an expiry). A transport's own close has none. */
  closeCode?: number;
}

/** What Transport.authenticate resolves with: the refreshed identity. */
export interface Identity {
  id: string;
  roles?: string[];
  /** ms since the epoch (manual clock: ms on the manual clock); none: never expires. */
  expiresAt?: number;
}

export type Lane = 'critical' | 'high' | 'normal' | 'low';

export interface PublishOptions {
  /** A change id: the same id again within the dedup window changes nothing (resolves null). */
  id?: string;
  /** This change's lane, instead of the topic's. */
  lane?: Lane;
  /**
   * hub.publish only. `true`: the caller promises that every object it
   * publishes is never mutated afterwards (a new state is a new object, its
   * unchanged parts the same objects as before, as Immer, Redux Toolkit,
   * Zustand and React state make them). Rows (the objects in a root array,
   * or in arrays and objects of objects under a root object) that were
   * serialized before are then not serialized again; for a root array only
   * the changed rows cross to the core. A row mutated in place breaks the
   * promise and may go unseen. Without it, a frozen root (Object.isFrozen;
   * Immer and Redux Toolkit deep-freeze their states) gets the same
   * treatment for rows that are deeply frozen, plain and without accessors;
   * anything else is serialized every time. The stored
   * text, versions, answers and frames are those of publishing the same value
   * the old way. Not a boolean: DELTACAST_INVALID_ARGUMENT.
   */
  immutable?: boolean;
}

export interface Version {
  epoch: string;
  version: number;
}

export interface Snapshot<T = unknown> extends Version {
  data: T;
}

export interface JsonSnapshot extends Version {
  json: string;
}

export interface LatencyHistogram {
  /** Upper bounds of the buckets, in ms; counts has one more entry (above the last bound). */
  boundsMs: number[];
  counts: number[];
  count: number;
  sumMs: number;
}

export interface HubStats {
  topics: number;
  /** Bytes all topics count against `memory.maxBytes`: texts, tapes, names, fixed overhead, and the memory of each history ring (64-byte slots). */
  bytes: number;
  memoryBudget: number;
  changes: number;
  unchanged: number;
  duplicates: number;
  rejected: number;
  evictions: number;
  expirations: number;
  /** Bytes of the patches held in history rings (the patches themselves; `bytes` counts the rings' memory). */
  historyBytes: number;
  /** Faults inside the hub, caught and survived (each answered on the call it hit). Should stay 0. */
  internalErrors: number;
  pending: number;
  closed: boolean;
  /** Topics with publishes held by coalescing (pacing.coalesce), waiting for their lane's flush. */
  coalesced: number;
  connections: number;
  subscriptions: number;
  framesSent: number;
  bytesSent: number;
  bytesSaved: number;
  conflated: number;
  closedSlow: number;
  closedSilent: number;
  closedFlooding: number;
  /** Snapshot frames encoded, and sent again from the per-topic cache. */
  snapshotFramesBuilt: number;
  snapshotFramesReused: number;
  /** Patch frames made by one diff over several changes (a paced flush, a catch-up). */
  squashed: number;
  /** `gone` frames sent: subscribers told their topic was deleted, expired or evicted. */
  goneSent: number;
  /**
   * Answers (`err`, and `gone` with reason `absent`) not written to a
   * connection whose transport reported itself full (send() returned false,
   * not yet drained()): counted in `framesSent`, dropped before the transport.
   */
  answersDropped: number;
  /** Publish-to-send latency per lane, on the hub's clock. */
  latency: Record<Lane, LatencyHistogram>;
}

/**
 * What a change call returns: a promise-like whose promise is made only when
 * it is asked for (then/catch/finally, await). A call nobody awaits costs no
 * promise; a failure nobody handles is still reported as an unhandled
 * rejection. Structurally a Promise; `instanceof Promise` is false.
 */
export interface Receipt<T> extends Promise<T> {
  /** The same answer as a real Promise (made once). */
  promise(): Promise<T>;
}

export interface Hub {
  /**
   * Resolves with the new version, or null when nothing changed (or the id was a duplicate).
   * With pacing.coalesce, a publish that is held resolves when its lane flushes, with the
   * version of that flush (the publishes held with it return the same receipt), or null when its topic
   * was removed (TTL, eviction) before the flush: the held value went with it.
   */
  publish(topic: string, value: unknown, options?: PublishOptions): Receipt<Version | null>;
  publishJson(topic: string, json: JsonText, options?: PublishOptions): Receipt<Version | null>;
  patch(topic: string, ops: readonly Operation[], options?: PublishOptions): Receipt<Version | null>;
  upsert(topic: string, id: string | number, row: object, options?: PublishOptions): Receipt<Version | null>;
  remove(topic: string, id: string | number, options?: PublishOptions): Receipt<Version | null>;
  /**
   * The topic's current state, or undefined when there is none. Throws
   * DELTACAST_INVALID_TOPIC for a name no change could use (empty, over
   * limits.maxTopicLength UTF-8 bytes, a C0/C1 control character or DEL, a
   * lone surrogate, not a string), as every call does.
   */
  get<T = unknown>(topic: string): Snapshot<T> | undefined;
  /** get() with the state as JSON text; same errors. */
  getJson(topic: string): JsonSnapshot | undefined;
  /** Resolves true if there was such a topic; rejects with DELTACAST_INVALID_TOPIC as get() throws. */
  delete(topic: string): Promise<boolean>;
  stats(): HubStats;
  /** Manual clock only: 0 to 2^31 - 1 ms (else DELTACAST_INVALID_ARGUMENT); the clock saturates at 2^62 ms. */
  advance(ms: number): Promise<void>;
  close(): Promise<void>;
  /** A subscriber over any transport; see docs/protocol.md for the messages. */
  connect(transport: Transport): Connection;
  /**
   * Reports an audit event the core does not see (an identity an adapter
   * refused: `{ type: 'refused', transport, code }`) to onAudit, with its
   * time. No-op without onAudit. Never pass a token.
   */
  audit(event: { type: string; transport?: string; user?: string; code?: string; topic?: string; connection?: string }): void;
  readonly options: Required<
    Omit<HubOptions, 'limits' | 'memory' | 'history' | 'dedup' | 'ttl' | 'permissions' | 'lanes' | 'pacing' | 'heartbeat' | 'credit' | 'onAudit' | 'engine'>
  > & {
    onAudit?: (event: AuditEvent) => void;
    engine?: Engine;
    heartbeat: Required<NonNullable<HubOptions['heartbeat']>>;
    credit: Required<NonNullable<HubOptions['credit']>>;
    permissions: { pattern: string; roles: string[] }[];
    lanes: { pattern: string; lane: Lane }[];
    pacing: Required<NonNullable<HubOptions['pacing']>>;
    limits: Required<NonNullable<HubOptions['limits']>>;
    memory: Required<NonNullable<HubOptions['memory']>>;
    history: Required<NonNullable<HubOptions['history']>>;
    dedup: Required<NonNullable<HubOptions['dedup']>>;
    ttl: { pattern: string; ms: number }[];
  };
}

export interface Transport {
  /** Called with each server message (a JSON string). */
  send(frame: string): boolean | void;
  close?(code: number, reason: string): void;
  /**
   * Who the connection acts as. expiresAt: ms since the epoch (with clock:
   * 'manual', ms on the manual clock, which starts at 0 and moves with
   * hub.advance); at that time, unless a refresh moved it, the connection is
   * closed with 4003. Not a finite number: DELTACAST_INVALID_ARGUMENT.
   */
  user?: { id?: string; roles?: string[]; expiresAt?: number };
  /** The transport's name in audit events ('ws', 'socket.io', 'sse', 'poll'). Default ''. */
  kind?: string;
  /**
   * Verifies the token of a client's {"t":"auth","token"} (a refresh). Its
   * identity must keep the user id (another id: err DELTACAST_FORBIDDEN, closed
   * 4003); its roles replace the old ones (subscriptions they no longer admit
   * end with err DELTACAST_FORBIDDEN) and its expiresAt the old expiry. A throw,
   * a rejection or no identity: err DELTACAST_UNAUTHORIZED, and the old identity
   * stays until it expires. None given: every refresh is DELTACAST_UNAUTHORIZED.
   * A connection's refreshes are verified one at a time, in order.
   */
  authenticate?(token: string): Identity | Promise<Identity>;
  /**
   * Default true. false: a connection without acks (a carrier with no
   * upstream, such as SSE, or one that paces itself). Its credit is the
   * transport's backpressure alone: non-critical frames stop when send()
   * returns false and each held-back topic gets one catch-up frame at
   * drained(). There is no ack window; `ack` messages are checked for form and
   * ignored; it is never closed for silence (pings are still sent). Congested
   * for `credit.stallTimeoutMs`, or handed critical frames past four windows
   * while congested: closed 4001. Not a boolean: DELTACAST_INVALID_ARGUMENT.
   */
  acks?: boolean;
}

export interface Connection {
  readonly id: string;
  /** A client message (JSON text). A Uint8Array whose buffer is detached throws DELTACAST_INVALID_ARGUMENT. */
  receive(message: string | Uint8Array): void;
  /** The transport is gone. Idempotent. */
  close(): void;
  /** After send() returned false: the socket has drained; held-back topics catch up. */
  drained(): void;
}

export function createHub(options?: HubOptions): Hub;

declare const deltacast: {
  createHub: typeof createHub;
  diff: typeof diff;
  diffJson: typeof diffJson;
  diffJsonAsync: typeof diffJsonAsync;
  applyPatch: typeof applyPatch;
  applyPatchJson: typeof applyPatchJson;
  jsonEqual: typeof jsonEqual;
  DeltacastError: typeof DeltacastError;
  codes: typeof codes;
};
export default deltacast;
