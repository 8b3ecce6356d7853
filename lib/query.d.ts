/// <reference lib="dom" />
// Type declarations for `deltacast/query` (lib/browser/query.js), on @tanstack/query-core v5.
import type { QueryClient, QueryKey } from '@tanstack/query-core';
import type { Client } from './client.js';

export interface BindOptions {
  /** The key a topic's data lands under. */
  queryKey(topic: string): QueryKey;
  /** Subscribe to and bind these topics; without it, every topic the client carries is bound. */
  topics?: string[];
  /** For keyed rows: each changed row is also written under detail.queryKey(topic, id). */
  detail?: { queryKey(topic: string, id: string | number): QueryKey };
  /** Refetch interval of bound queries while their topic is not live (default 5000 ms). */
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

export declare function fetchTopic(client: Client, topic: string, signal?: AbortSignal): Promise<unknown>;
