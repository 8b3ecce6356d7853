// Type declarations for `deltacast/ws`.
import type { Hub } from '../index.js';
import type { Attachment, Identity, IdentityResult, codes } from './shared.js';

export type { Attachment, Identity, IdentityResult };
export { codes };

/** The HTTP upgrade request the `user` hook reads (structural: node:http's IncomingMessage). */
export interface UpgradeRequest {
  readonly url?: string;
  readonly headers: Record<string, string | string[] | undefined>;
}

/** A `ws` WebSocketServer (structural). */
export interface WebSocketServerLike {
  readonly options: object;
  handleUpgrade(req: any, socket: any, head: any, callback: (ws: any, req: any) => void): void;
  emit(event: string, ...args: any[]): boolean;
  on(event: string, listener: (...args: any[]) => void): unknown;
  off(event: string, listener: (...args: any[]) => void): unknown;
}

export interface AttachWebSocketServerOptions {
  /**
   * The identity of an upgrade request (may be async), checked in the
   * server's `verifyClient` (chained after the app's own) before the
   * upgrade. A refusal is an HTTP 401 or 403 response with a JSON body
   * `{ code, message }`. Without this hook connections are anonymous.
   */
  user?(req: UpgradeRequest): IdentityResult | Promise<IdentityResult>;
  /**
   * Verifies a token, may be async: resolves with `{ id, roles?, expiresAt? }`
   * (expiresAt in ms since the epoch: the connection closes with 4003 then,
   * unless refreshed) or throws to refuse. Without a `user` hook it gives the
   * identity on connect from the upgrade's subprotocol `token.<token>` (offer `deltacast` first: `Sec-WebSocket-Protocol: deltacast, token.<jwt>`), else its `deltacast_token` cookie (no token: refused
   * DELTACAST_UNAUTHORIZED); with or without one, it verifies the client's
   * refreshes, `{"t":"auth","token"}`.
   */
  authenticate?(token: string, req: UpgradeRequest): IdentityResult | Promise<IdentityResult>;
  /**
   * Congestion: `send` reports the socket full when its `bufferedAmount`
   * (bytes written and not yet flushed to the kernel) would pass this;
   * non-critical topics then wait (conflated) until the buffer is flushed.
   * Default 1 MiB (bytes).
   */
  maxBufferedBytes?: number;
  /**
   * The largest client frame, in bytes; a larger one closes the socket with
   * 1009. Default: the hub's `limits.maxMessageBytes` (64 KiB). Set on the
   * server's options (`wss.options.maxPayload`).
   */
  maxPayload?: number;
  /**
   * permessage-deflate: when given, set on the server's options; otherwise
   * the server's own setting stands (ws's default: off). Compression costs
   * server CPU per socket and per frame (frames are then not framed once).
   */
  perMessageDeflate?: boolean | object;
}

export interface WebSocketAttachment extends Attachment {
  /**
   * For a `noServer` server: hands an HTTP upgrade over (identity checked
   * first; a refusal answers the upgrade with 401/403). Call it from your
   * http.Server's `'upgrade'` event.
   */
  handleUpgrade(req: any, socket: any, head: any): void;
}

/**
 * Serves the hub's protocol on a `ws` server: one message per text frame.
 * A binary frame is answered with `err` `DELTACAST_INVALID_MESSAGE`; the
 * core's codes for everything else (docs/protocol.md). The hub's close codes
 * are the WebSocket close codes (4000 silent, 4001 stalled, 4003 identity
 * expired, 1008 flooding, 1011 send failed, 1001 hub closing); ws adds 1009
 * (frame over `maxPayload`) and 1007 (invalid UTF-8). `close()` detaches:
 * upgrades are refused with 503 `DELTACAST_CLOSED`, open sockets are closed
 * with 1001; the server itself stays up.
 */
export function attachWebSocketServer(wss: WebSocketServerLike, hub: Hub, options?: AttachWebSocketServerOptions): WebSocketAttachment;

declare const adapter: { attachWebSocketServer: typeof attachWebSocketServer; codes: typeof codes };
export default adapter;
