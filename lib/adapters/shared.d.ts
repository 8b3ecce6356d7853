// Types shared by deltacast/socket.io and deltacast/ws.

/**
 * Who a connection belongs to, as a `user` hook returns it: passed to
 * `hub.connect({ user })` unchanged. `roles` are matched against the hub's
 * `permissions`; `expiresAt` (ms since the epoch) is carried through for the
 * hub's token-expiry handling.
 */
export interface Identity {
  id?: string;
  roles?: string[];
  expiresAt?: number;
  [extra: string]: unknown;
}

/**
 * What a `user` hook returns (or resolves with). `null`, `undefined` or
 * `false`: no identity, refused with `DELTACAST_UNAUTHORIZED` (401). To refuse
 * with another code, throw an error whose `code` starts with `DELTACAST_`
 * (e.g. `DELTACAST_FORBIDDEN`, 403; `status` 401 or 403 picks the HTTP
 * status); its message is shown to the client. Any other error is refused as
 * `DELTACAST_UNAUTHORIZED` with a generic message.
 */
export type IdentityResult = Identity | null | undefined | false;

/** The returned handle of an adapter. */
export interface Attachment {
  /** Open deltacast connections. */
  readonly connections: number;
  /** Detaches (see each adapter). Idempotent. */
  close(): void;
}

/** The core's error codes plus those the adapters use. */
export declare const codes: Readonly<{
  UNAUTHORIZED: 'DELTACAST_UNAUTHORIZED';
  FORBIDDEN: 'DELTACAST_FORBIDDEN';
  INVALID_MESSAGE: 'DELTACAST_INVALID_MESSAGE';
  UNKNOWN_MESSAGE: 'DELTACAST_UNKNOWN_MESSAGE';
  CLOSED: 'DELTACAST_CLOSED';
  [name: string]: string;
}>;
