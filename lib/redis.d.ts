// deltacast/redis: hub processes on one Redis (or Redis Cluster) act as one hub.
import type { Engine } from './index';

export interface RedisEngineOptions {
  /** A redis:// or rediss:// URL: the engine makes (and closes) its node-redis client. One of url or client. */
  url?: string;
  /**
   * A node-redis 5 client or cluster (createClient / createCluster from 'redis'), connected or not;
   * the engine duplicates it for pub/sub and never closes it. One of url or client.
   * Tip: `disableOfflineQueue: true` makes changes fail at once while Redis is down.
   */
  client?: unknown;
  /** The first part of every key and channel: `<prefix>:{<topic>}:s`. Default 'deltacast'; no braces. */
  prefix?: string;
  /** Notifications over sharded pub/sub (SPUBLISH/SSUBSCRIBE). Default: true on a cluster, false otherwise. */
  sharded?: boolean;
  /** Patches kept per topic in its Redis stream (count). Default 1000. */
  streamMaxCount?: number;
  /** And bytes of patches kept per topic in its stream. Default 1 MiB. */
  streamMaxBytes?: number;
  /** ms without a change after which Redis drops a topic's keys; 0 (default): never. */
  ttlMs?: number;
  /** ms a publisher's `{ id }` is remembered per topic (idempotency). Default 60000. */
  idTtlMs?: number;
  /** Retries of a change whose base another node changed first, before DELTACAST_CONFLICT. Default 8. */
  maxRetries?: number;
  /** Patches a node reads back when it loads a topic (clients resuming there get patches). Default 32. */
  historyCount?: number;
}

export interface RedisEngineStats {
  changes: number;
  /** States sent to Redis, compressed (one per stream window: at 90% of streamMaxCount or streamMaxBytes of patches since the last). */
  compactions: number;
  conflicts: number;
  retries: number;
  loads: number;
  repairs: number;
  notifications: number;
  gaps: number;
  liveTopics: number;
}

export interface RedisEngine extends Engine {
  /** Resolves once Redis was reached the first time (before that, changes reject with DELTACAST_ENGINE_UNAVAILABLE). */
  ready(): Promise<void>;
  stats(): RedisEngineStats;
}

/**
 * The Redis engine for createHub({ engine }): one engine per hub. Bad options throw
 * DELTACAST_INVALID_ARGUMENT; changes reject with DELTACAST_ENGINE_UNAVAILABLE (Redis unreachable)
 * or DELTACAST_CONFLICT (base stale maxRetries times).
 */
export function redisEngine(options: RedisEngineOptions): RedisEngine;
export const RedisEngine: new (options: RedisEngineOptions) => RedisEngine;
