// Type declarations for `deltacast/socket.io`.
import type { Hub } from '../index.js';
import type { Attachment, Identity, IdentityResult, codes } from './shared.js';

export type { Attachment, Identity, IdentityResult };
export { codes };

/** The parts of a Socket.IO `Socket` the `user` hook typically reads (structural: no dependency on socket.io's types). */
export interface SocketLike {
  readonly id: string;
  readonly handshake: { headers: Record<string, string | string[] | undefined>; auth: Record<string, unknown>; query: unknown };
  data: any;
}

/** A Socket.IO `Server` or `Namespace` (structural). */
export interface SocketIOServerOrNamespace {
  use(fn: (socket: any, next: (err?: Error) => void) => void): unknown;
  on(event: string, listener: (...args: any[]) => void): unknown;
}

export interface AttachSocketIOOptions {
  /** The event the protocol rides on. Default `'deltacast'`. */
  event?: string;
  /**
   * The identity of a socket, checked in a namespace middleware before the
   * socket connects (may be async). A refusal is a `connect_error` on the
   * client whose `data` is `{ code, message }` (`DELTACAST_UNAUTHORIZED`, or
   * the code of the error thrown). Without this hook the identity is
   * `socket.data.user`, set by the app's own `io.use` middleware (none:
   * an anonymous connection).
   */
  user?(socket: SocketLike): IdentityResult | Promise<IdentityResult>;
  /**
   * Verifies a token, may be async: resolves with `{ id, roles?, expiresAt? }`
   * (expiresAt in ms since the epoch: the connection closes with 4003 then,
   * unless refreshed) or throws to refuse. Without a `user` hook it gives the
   * identity on connect from `socket.handshake.auth.token` (`io(url, { auth: { token } })`) (no token: refused
   * DELTACAST_UNAUTHORIZED); with or without one, it verifies the client's
   * refreshes, `{"t":"auth","token"}`.
   */
  authenticate?(token: string, socket: SocketLike): IdentityResult | Promise<IdentityResult>;
  /**
   * Congestion: `send` reports the socket full when its engine.io write
   * buffer (packets not yet handed to the transport) holds more than this
   * many packets; non-critical topics then wait (conflated) until engine.io
   * flushes it. Default 64 (packets).
   */
  maxBufferedPackets?: number;
  /**
   * The namespace carries only the protocol event: any other event a client
   * emits is answered with `err` `DELTACAST_UNKNOWN_MESSAGE`, and `close()`
   * disconnects the sockets. Default false (the app's own events are left to
   * the app).
   */
  exclusive?: boolean;
}

/**
 * Serves the hub's protocol on a Socket.IO server or namespace: each message
 * is the single argument of the event (a plain object; a JSON string is
 * accepted). Bad input is answered with `err`: extra arguments, a binary
 * argument or a value JSON cannot carry `DELTACAST_INVALID_MESSAGE`; the
 * core's codes for everything else (docs/protocol.md). Messages are limited
 * by the hub's `limits.maxMessageBytes` (over: `DELTACAST_MESSAGE_TOO_LARGE`)
 * and, before that, by engine.io's `maxHttpBufferSize` (over: engine.io
 * closes the socket). When the hub closes a connection the client gets
 * `{"t":"close","code","reason"}` and the socket is disconnected.
 * `close()` detaches: new sockets are not connected to the hub, open ones
 * get a `close` message (1001) and their hub connections are closed.
 */
export function attachSocketIO(ioOrNamespace: SocketIOServerOrNamespace, hub: Hub, options?: AttachSocketIOOptions): Attachment;

declare const adapter: { attachSocketIO: typeof attachSocketIO; codes: typeof codes };
export default adapter;
