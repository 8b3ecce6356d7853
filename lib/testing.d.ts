// Type declarations for `deltacast/testing`.
import type { Hub, Version } from './index.js';

export interface TestClientOptions {
  user?: { id?: string; roles?: string[] };
  /** Send an `ack` after applying each snapshot or patch (default true); false: a client that stalls. */
  ack?: boolean;
  /** How many received messages `messages` keeps (the latest). Default 1000. */
  keep?: number;
}

export interface Replica<T = unknown> extends Version {
  data: T;
}

export class TestClient {
  /** The messages received, parsed, in order: the latest `keep`. */
  readonly messages: Array<{ t: string; [field: string]: unknown }>;
  /** The `err` messages received. */
  readonly errors: Array<{ t: 'err'; code: string; message: string; topic?: string }>;
  /** Patches that did not follow the held version (each triggered a re-subscription). */
  readonly gaps: number;
  /**
   * Patches that followed the held version but did not apply. The client keeps
   * its state and re-subscribes from its version; when the same patch fails
   * again, it asks for a snapshot instead.
   */
  readonly failedPatches: number;
  readonly connected: boolean;
  /** Stops acknowledging (the hub conflates this client). */
  stall(): void;
  /** Acks what it applied while stalled on this connection, and acks from now on. */
  resume(): void;
  connect(): void;
  disconnect(): void;
  subscribe(topic: string): void;
  unsubscribe(topic: string): void;
  get<T = unknown>(topic: string): Replica<T> | undefined;
  send(message: object | string): void;
}

export function createTestClient(hub: Hub, options?: TestClientOptions): TestClient;
export interface SettleOptions {
  /**
   * Wait out the pacing windows (default true): the manual clock moves by the
   * largest of `pacing.highWindowMs`, `pacing.normalDebounceMs` and
   * `pacing.lowIntervalMs` (1000 ms by default), so changes on every lane are
   * delivered. false: the clock does not move and paced changes stay pending.
   */
  pacing?: boolean;
}

/**
 * Manual clock: resolves once everything asked so far is answered and
 * delivered, paced changes included (the clock moves by the longest pacing
 * window; see SettleOptions), and the clients' answers to it are handled.
 * Rejects with DELTACAST_INVALID_ARGUMENT on a hub with a real clock.
 */
export function settle(hub: Hub, options?: SettleOptions): Promise<void>;
/** Manual clock: moves time by `ms` in steps of `step`. */
export function tick(hub: Hub, ms: number, step?: number): Promise<void>;
