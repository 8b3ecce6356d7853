// Type declarations for `deltacast/http`.
import type { Hub } from '../index.js';

/** The identity a request acts as; passed unchanged to `hub.connect({ user })`. */
export interface HttpUser {
  id?: string;
  roles?: string[];
  /** Milliseconds since 1970 (as Date.now()); a request whose identity has expired is refused with 401. */
  expiresAt?: number;
}

/** The parts of a node:http IncomingMessage the handler reads (Express's req, Fastify's request.raw). */
export interface HttpRequestLike {
  url?: string;
  method?: string;
  headers: Record<string, string | string[] | undefined>;
  socket?: { remoteAddress?: string };
}

/** A node:http ServerResponse (Express's res, Fastify's reply.raw after reply.hijack()). */
export interface HttpResponseLike {
  readonly headersSent: boolean;
  readonly writableEnded: boolean;
  readonly destroyed: boolean;
  readonly writableLength: number;
  writeHead(status: number, headers?: Record<string, string | number>): unknown;
  write(chunk: string): boolean;
  end(chunk?: string): unknown;
  destroy(): unknown;
  on(event: string, listener: (...args: unknown[]) => void): unknown;
}

export interface HttpHandlerOptions {
  /** Path under which the routes live: '' or '/x' (no trailing '/'). Default '/deltacast'. */
  prefix?: string;
  /**
   * The identity of a request, may be async. Return a user, or null/undefined to refuse with
   * 401 DELTACAST_UNAUTHORIZED; a thrown error is a 401 (403 when it has `status: 403`), with its
   * `code` when that is a DELTACAST_* code. Without the hook every request is anonymous (no roles).
   */
  user?: (req: HttpRequestLike) => HttpUser | null | undefined | Promise<HttpUser | null | undefined>;
  /**
   * Verifies a token, may be async: resolves with a user (`expiresAt`: ms since
   * the epoch) or throws to refuse (401, or 403 for DELTACAST_FORBIDDEN).
   * Without a `user` hook it gives each request's identity from
   * `Authorization: Bearer <token>`, else the `deltacast_token` cookie
   * (EventSource sends no headers); no token: 401 DELTACAST_UNAUTHORIZED.
   * SSE has no upstream: a stream ends when its identity expires (4003) and
   * the client reconnects with a fresh token.
   */
  authenticate?: (token: string, req: HttpRequestLike) => HttpUser | null | undefined | Promise<HttpUser | null | undefined>;
  /**
   * Long-poll bound in milliseconds: `wait` above it is treated as this. Default 30000 (30 s);
   * 0 turns long-polling off.
   */
  maxWaitMs?: number;
  /** Topics one event stream may follow (`/events?topics=`); more is 400 DELTACAST_INVALID_QUERY. Default 64. */
  maxTopics?: number;
  /** Longest request URL in bytes (path and query); longer is 414 DELTACAST_URL_TOO_LONG. Default 8192. */
  maxUrlBytes?: number;
  /** Interval of the `:` comment lines sent on an idle event stream, in milliseconds. Default 15000; 0: none. */
  heartbeatMs?: number;
  /** The `retry:` reconnection delay sent to EventSource clients, in milliseconds. Default 2000; 0: none. */
  retryMs?: number;
  /**
   * Token bucket per client with the hub's `limits.messagesPerSecond` and `limits.messageBurst`,
   * each request costing one token; over it: 429 DELTACAST_RATE_LIMITED with Retry-After. Default true.
   */
  rateLimit?: boolean;
  /** The rate-limit key of a request. Default: `u:<user.id>`, else `a:<remote address>`. */
  rateKey?: (req: HttpRequestLike, user: HttpUser | undefined) => string;
}

/**
 * Routes (GET only):
 * - `<prefix>/topics/<topic>?epoch=&version=&wait=`: polling and long-polling.
 * - `<prefix>/events?topics=a,b`: Server-Sent Events.
 * Requests outside the prefix go to `next()` (404 without it).
 */
export type HttpHandler = (req: HttpRequestLike, res: HttpResponseLike, next?: (err?: unknown) => void) => void;

export function httpHandler(hub: Hub, options?: HttpHandlerOptions): HttpHandler;
/** The same function as httpHandler. */
export const pollingHandler: typeof httpHandler;

/** The codes of the JSON error bodies `{ code, message }`. */
export const httpCodes: Readonly<{
  INVALID_QUERY: 'DELTACAST_INVALID_QUERY';
  INVALID_TOPIC: 'DELTACAST_INVALID_TOPIC';
  NOT_FOUND: 'DELTACAST_NOT_FOUND';
  TOPIC_NOT_FOUND: 'DELTACAST_TOPIC_NOT_FOUND';
  METHOD_NOT_ALLOWED: 'DELTACAST_METHOD_NOT_ALLOWED';
  URL_TOO_LONG: 'DELTACAST_URL_TOO_LONG';
  UNAUTHORIZED: 'DELTACAST_UNAUTHORIZED';
  FORBIDDEN: 'DELTACAST_FORBIDDEN';
  RATE_LIMITED: 'DELTACAST_RATE_LIMITED';
  CLOSED: 'DELTACAST_CLOSED';
  INTERNAL: 'DELTACAST_INTERNAL';
}>;
