// Type declarations for `deltacast/query` (lib/browser/query.js), on @tanstack/query-core v5.
// AbortSignal is the global one, which @tanstack/query-core's own declarations need too (lib
// "dom", or @types/node); nothing here pulls the DOM's types into a project.
import type { QueryClient, QueryKey } from '@tanstack/query-core';
import type { Client } from './client.js';

export interface BindOptions {
  /** The key a topic's data lands under. */
  queryKey(topic: string): QueryKey;
  /** Subscribe to and bind these topics; without it, every topic the client carries is bound. */
  topics?: string[];
  /** For keyed rows: each changed row is also written under detail.queryKey(topic, id). */
  detail?: { queryKey(topic: string, id: string | number): QueryKey };
  /**
   * Refetch interval (ms, default 5000) of bound queries over HTTP, which happens only while their
   * topic is not live and the socket really failed (an attempt refused, closed or past
   * reconnect.connectTimeoutMs, none opened since): never during the first attempt or a reconnection
   * after a drop, never for a topic paused by a hidden tab while the socket is fine.
   */
  refetchIntervalMs?: number;
  /** The key of keyed rows (default 'id'). */
  arrayKey?: string;
  /** When writes happen (default requestAnimationFrame, else setTimeout 0). */
  schedule?: (flush: () => void) => void;
}

/** Returns the unbind function. Throws a TypeError with code DELTACAST_INVALID_ARGUMENT for bad arguments. */
export declare function bindQueryClient(queryClient: QueryClient, client: Client, options: BindOptions): () => void;

export interface OptimisticOptions<T = unknown> {
  topic: string;
  update(data: T): T;
  /** Receives the change id to publish with ({ id }); may resolve with the { epoch, version } published. */
  mutate(id: string): Promise<unknown>;
  /** The change id (default: generated). */
  id?: string;
}

export declare function optimisticUpdate<T = unknown>(queryClient: QueryClient, client: Client, options: OptimisticOptions<T>): Promise<unknown>;

/** The query options bound topics get (queryFn, structuralSharing, staleTime, refetchInterval). */
export declare function realtimeQueryOptions(client: Client, topic: string, refetchIntervalMs?: number): {
  queryFn: (context: { signal: AbortSignal }) => Promise<unknown>;
  structuralSharing: (prev: unknown, next: unknown) => unknown;
  staleTime: () => number;
  refetchInterval: () => number | false;
};

/**
 * The default queryFn: the HTTP handler's snapshot (GET {pollUrl}/topics/{topic}, seeding the
 * replica) when the topic is not live and the socket really failed; else the replica's data, or its
 * first data once it arrives (or the HTTP snapshot, if the connection attempt fails meanwhile).
 */
export declare function fetchTopic(client: Client, topic: string, signal?: AbortSignal): Promise<unknown>;
