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
  | 'DELTACAST_NOT_BUILT';

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
export function diff(a: unknown, b: unknown, options?: DiffOptions): Operation[];

/** diff() for documents already held as JSON text; nothing is parsed in JS. */
export function diffJson(a: JsonText, b: JsonText, options?: DiffOptions): Operation[];

/**
 * Applies a patch and returns the new document. Pure: `doc` is untouched, and
 * the result shares every unchanged subtree with it (treat both as immutable).
 * Atomic: a failing operation throws a DeltacastError and nothing is returned.
 */
export function applyPatch<T>(doc: T, ops: readonly Operation[]): T;

/** Applies a patch to a document held as JSON text, natively, and returns the new text. */
export function applyPatchJson(doc: JsonText, ops: readonly Operation[] | JsonText): string;

/** JSON equality: numbers by value, objects regardless of member order. */
export function jsonEqual(a: unknown, b: unknown): boolean;

// ---- the hub ----------------------------------------------------------------------

export interface HubOptions {
  /** 'manual': time moves only with hub.advance(ms). Default 'real'. */
  clock?: 'real' | 'manual';
  /** The key of rows in arrays (diff matching, upsert/remove). Default 'id'; false: none. */
  arrayKey?: string | false;
  limits?: {
    /** Bytes of one value's JSON text. Default 64 MiB. */
    maxValueBytes?: number;
    /** Nesting depth of a value. Default 512. */
    maxDepth?: number;
    /** Bytes of a topic name. Default 256. */
    maxTopicLength?: number;
    /** Subscriptions per connection. Default 1000. */
    maxSubscriptions?: number;
    /** Bytes of one client message. Default 64 KiB. */
    maxMessageBytes?: number;
    /** Inbound messages per second per connection (token bucket). Default 100. */
    messagesPerSecond?: number;
    /** Burst of the inbound bucket. Default 1000. */
    messageBurst?: number;
    /** Messages refused in a row before the connection is closed (1008). Default 100. */
    rateViolations?: number;
  };
  /** A ping every intervalMs (0: none); a connection silent for timeoutMs is closed (4000). Defaults 25 s / 60 s. */
  heartbeat?: { intervalMs?: number; timeoutMs?: number };
  /** The store's budget; least recently used topics are evicted above it. Default 256 MiB; 0: none. */
  memory?: { maxBytes?: number };
  /** Patches kept per topic for resume. Defaults: 32 patches, 256 KiB. */
  history?: { maxCount?: number; maxBytes?: number };
  /** Change ids remembered for deduplication. Defaults: 10,000 ids, 60 s. */
  dedup?: { maxCount?: number; windowMs?: number };
  /** Topic pattern -> ms without a publish after which the topic is deleted. First match wins. */
  ttl?: Record<string, number>;
  /**
   * Topic pattern -> roles that may subscribe ([] admits anyone; "{userId}" in a
   * pattern matches only the connecting user's id). None given: every topic is
   * open to every connection. Once given, a topic no rule admits is refused.
   */
  permissions?: Record<string, string[]>;
  /** Topic pattern -> lane (first match wins; default 'normal'). */
  lanes?: Record<string, Lane>;
  /** Lane timings. Defaults: high window 16 ms; normal debounce 50 ms, max wait 250 ms; low interval 1000 ms. */
  pacing?: { highWindowMs?: number; normalDebounceMs?: number; normalMaxWaitMs?: number; lowIntervalMs?: number };
  /** Real clock: how often TTLs and the dedup window are checked. Default 1000 ms. */
  sweepIntervalMs?: number;
}

export type Lane = 'critical' | 'high' | 'normal' | 'low';

export interface PublishOptions {
  /** A change id: the same id again within the dedup window changes nothing (resolves null). */
  id?: string;
  /** This change's lane, instead of the topic's. */
  lane?: Lane;
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
  bytes: number;
  memoryBudget: number;
  changes: number;
  unchanged: number;
  duplicates: number;
  rejected: number;
  evictions: number;
  expirations: number;
  historyBytes: number;
  pending: number;
  closed: boolean;
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
  /** Resolves with the new version, or null when nothing changed (or the id was a duplicate). */
  publish(topic: string, value: unknown, options?: PublishOptions): Receipt<Version | null>;
  publishJson(topic: string, json: JsonText, options?: PublishOptions): Receipt<Version | null>;
  patch(topic: string, ops: readonly Operation[], options?: PublishOptions): Receipt<Version | null>;
  upsert(topic: string, id: string | number, row: object, options?: PublishOptions): Receipt<Version | null>;
  remove(topic: string, id: string | number, options?: PublishOptions): Receipt<Version | null>;
  get<T = unknown>(topic: string): Snapshot<T> | undefined;
  getJson(topic: string): JsonSnapshot | undefined;
  delete(topic: string): Promise<boolean>;
  stats(): HubStats;
  /** Manual clock only. */
  advance(ms: number): Promise<void>;
  close(): Promise<void>;
  /** A subscriber over any transport; see docs/protocol.md for the messages. */
  connect(transport: Transport): Connection;
  readonly options: Required<
    Omit<HubOptions, 'limits' | 'memory' | 'history' | 'dedup' | 'ttl' | 'permissions' | 'lanes' | 'pacing' | 'heartbeat'>
  > & {
    heartbeat: Required<NonNullable<HubOptions['heartbeat']>>;
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
  user?: { id?: string; roles?: string[] };
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
  /** A client message (JSON text). */
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
  applyPatch: typeof applyPatch;
  applyPatchJson: typeof applyPatchJson;
  jsonEqual: typeof jsonEqual;
  DeltacastError: typeof DeltacastError;
  codes: typeof codes;
};
export default deltacast;
