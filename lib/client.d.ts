// Type declarations for `deltacast/client` (lib/browser/client.js): browsers and Node 18+, no
// native code, no Node built-ins, no runtime dependencies. No DOM types either: what the client
// takes from its environment (fetch, window, document) is typed by the members it uses, so a
// Node project needs no "dom" lib to use it.

export type Carrier = 'ws' | 'socket.io' | 'sse' | 'poll';
export type ClientStatus = 'connecting' | 'open' | 'reconnecting' | 'polling' | 'closed';
/** live: current with the server; recovering: re-subscribing after a gap or a failed patch; stale: no link to the server (data as of updatedAt). */
export type TopicStatus = 'live' | 'recovering' | 'stale';

export interface Snapshot<T = unknown> {
  epoch: string;
  version: number;
  data: T;
}

/** What accompanies each change: the version reached and, for a patch, where it came from. */
export interface ChangeInfo {
  epoch?: string;
  version?: number;
  /** The version the patch applied to (patches only). */
  from?: number;
  /** The RFC 6902 operations applied (patches only). */
  ops?: Array<{ op: string; path: string; from?: string; value?: unknown }>;
  /** The publishers' change ids the patch contains, when the server sends them. */
  ids?: string[];
  /** The data before the change. */
  prev?: unknown;
  /** The topic left the server (`gone`): data is undefined. */
  gone?: boolean;
  /** The change came from hydrate(). */
  hydrated?: boolean;
}

export interface EntityEvent<Row = unknown> {
  topic: string;
  action: 'insert' | 'update' | 'delete';
  id: string | number;
  /** The row after the change (before it, for a delete). */
  data: Row;
  version: number;
  /** ms since the epoch, when the client applied the patch. */
  timestamp: number;
}

/** What the client reads of a fetch() response: body is a web ReadableStream of bytes (SSE). */
export interface FetchResponse {
  readonly ok: boolean;
  readonly status: number;
  readonly headers: { get(name: string): string | null };
  readonly body: unknown;
  text(): Promise<string>;
  json(): Promise<unknown>;
}

/** An event target the client listens to (the DOM's window and document fit). */
export interface EventTargetLike {
  addEventListener(type: string, listener: () => void): void;
  removeEventListener(type: string, listener: () => void): void;
}

export interface ClientOptions {
  /** ws(s):// for the WebSocket carrier, http(s):// for Socket.IO. */
  url?: string;
  /** The preferred full-duplex carrier (default 'ws'); the fallback order starts with it. */
  transport?: 'ws' | 'socket.io';
  /** HTTP base of deltacast/http: SSE at <pollUrl>/events, long-polling at <pollUrl>/topics/<topic>. */
  pollUrl?: string;
  /** Carriers in order of preference (default ['ws', 'sse', 'poll']; sse/poll need pollUrl). */
  fallback?: Carrier[];
  /** For Node < 22 and tests: `require('ws')`. */
  WebSocket?: unknown;
  /** `io` from socket.io-client, for the Socket.IO carrier (an optional peer dependency). */
  io?: (url: string, options?: object) => unknown;
  /** Extra options for io() (the client forces transports: ['websocket'], reconnection: false). */
  ioOptions?: object;
  /**
   * fetch for SSE and long-polling (default globalThis.fetch; the DOM's and Node 18+'s fit). Called
   * as fetch(url, { method, headers, body?, signal }).
   */
  fetch?(input: string, init?: object): Promise<FetchResponse>;
  /**
   * A fixed token, or a hook asked on every (re)connect (a throw or rejection is reported on
   * `error`); when it returns { token, expiresAt } (ms since the epoch),
   * again 30 s before expiresAt; sent as {"t":"auth","token"} (SSE/poll: Authorization: Bearer).
   */
  auth?: string | (() => string | { token: string; expiresAt?: number } | Promise<string | { token: string; expiresAt?: number }>);
  /**
   * Full-jitter exponential backoff: attempt n waits random() * min(maxMs, minMs * factor^n).
   * Defaults: minMs 500, maxMs 20000, factor 2, jitter 'full', connectTimeoutMs 10000 (an attempt
   * not open by then fails), restartMs 10000 (close codes 1001/1012/1013 without a hint spread the
   * return over this window). A server hint (close reason "retry=<ms>" or a {"t":"retry","ms"}
   * frame) spreads the return uniformly over its window.
   */
  reconnect?: { minMs?: number; maxMs?: number; factor?: number; jitter?: 'full' | 'equal' | 'none'; connectTimeoutMs?: number; restartMs?: number };
  /** The server's ping interval and the grace after it: no message for intervalMs + graceMs = dead (defaults 25000, 10000). */
  heartbeat?: { intervalMs?: number; graceMs?: number };
  /** How long an unsubscribed topic stays on the wire, for a quick re-subscribe (default 1000 ms). */
  lingerMs?: number;
  /** Non-critical topics are unsubscribed after the page has been hidden this long (default 10000 ms). */
  hiddenUnsubscribeMs?: number;
  /** On a fallback carrier, how often to try the preferred one again (default 30000 ms). */
  probeMs?: number;
  /** Ack after this many frames (default 16) or ackDelayMs (default 20) after the first unacked one. */
  ackFrames?: number;
  ackDelayMs?: number;
  /** Long-poll wait the client asks for (default 25000 ms). */
  pollWaitMs?: number;
  /** The key of keyed rows, for entity events (default 'id'). */
  arrayKey?: string;
  /**
   * Environment hooks (default globalThis.window / globalThis.document; null turns them off): the
   * client listens for window's 'online' (reconnect now) and document's 'visibilitychange'.
   */
  window?: EventTargetLike | null;
  document?: (EventTargetLike & { readonly visibilityState?: string }) | null;
  /** The client's clock and timers (tests). */
  timers?: { setTimeout(f: () => void, ms: number): unknown; clearTimeout(id: unknown): void; now(): number };
  /** The random source of the backoff draws (tests). */
  random?: () => number;
}

export interface Client {
  readonly status: ClientStatus;
  /** The carrier in use, when open. */
  readonly carrier: Carrier | undefined;
  readonly pollUrl: string | undefined;
  /**
   * Reference-counted: the first subscriber puts one `sub` on the wire, the last one's
   * unsubscribe an `unsub` after lingerMs. `critical` topics stay subscribed in background tabs.
   */
  subscribe(topic: string, onChange?: (data: unknown, info: ChangeInfo) => void, options?: { critical?: boolean }): () => void;
  get(topic: string): Snapshot | undefined;
  topicStatus(topic: string): { status: TopicStatus; epoch?: string; version?: number; updatedAt?: number };
  /**
   * `info.code`: the WebSocket close code (RFC 6455 section 7.4) when the ws
   * carrier dropped; absent for the other carriers.
   */
  on(event: 'status', listener: (status: ClientStatus, info: { carrier?: Carrier; attempt?: number; delayMs?: number; code?: number }) => void): () => void;
  on(event: 'error', listener: (error: Error & { code?: string; topic?: string }) => void): () => void;
  on(event: 'change', listener: (topic: string, data: unknown, info: ChangeInfo) => void): () => void;
  on(event: 'event', listener: (event: EntityEvent) => void): () => void;
  on(event: 'topic', listener: (topic: string, status: TopicStatus) => void): () => void;
  on(event: 'reset', listener: (reset: { topic: string; reason: 'gap' | 'epoch' | 'gone' | 'failed' }) => void): () => void;
  /**
   * SSR hand-off: holds the snapshot; the subscription resumes from its (epoch, version), no snapshot
   * sent. Ignored when the replica is newer, or when the topic is subscribed and a carrier is open
   * or an SSE/long-poll request is under way (the wire resumes the replica from its own version). A
   * socket being opened has sent nothing yet: the snapshot is held and the socket resumes from it.
   */
  hydrate(topic: string, snapshot: Snapshot): void;
  /** Idempotent; no reconnection after it. */
  close(): void;
}

/** Throws a TypeError with code DELTACAST_INVALID_ARGUMENT for bad options. */
export declare function createClient(options: ClientOptions): Client;
