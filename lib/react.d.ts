// Type declarations for `deltacast/react` (lib/browser/react.js), on @tanstack/react-query v5.
// Nothing here pulls the DOM's types into a project (see query.d.ts).
// Written against @tanstack/query-core's types (the ones @tanstack/react-query re-exports), so that
// these declarations need no React type package.
import type { QueryKey, QueryObserverResult, QueryObserverOptions } from '@tanstack/query-core';
import type { Client, ClientStatus, EntityEvent, TopicStatus } from './client.js';

export interface RealtimeProviderProps {
  client: Client;
  /** Default (topic) => ['deltacast', topic]. */
  queryKey?: (topic: string) => QueryKey;
  detail?: { queryKey(topic: string, id: string | number): QueryKey };
  children?: unknown;
}

/** Must sit inside a QueryClientProvider: binds the client to its QueryClient. */
export declare function RealtimeProvider(props: RealtimeProviderProps): unknown;

export interface RealtimeState {
  status: TopicStatus;
  version: number | undefined;
  updatedAt: number | undefined;
  /** status !== 'live' */
  stale: boolean;
}

export type UseRealtimeQueryOptions<T = unknown, R = T> = Omit<QueryObserverOptions<T, Error, R>, 'queryKey' | 'select'> & {
  topic: string;
  queryKey?: QueryKey;
  select?: (data: T) => R;
  /** Stays subscribed while the page is hidden. */
  critical?: boolean;
};

export declare function useRealtimeQuery<T = unknown, R = T>(options: UseRealtimeQueryOptions<T, R>): QueryObserverResult<R, Error> & { realtime: RealtimeState };
export declare function useConnectionStatus(): ClientStatus;
export declare function useRealtimeEvents(topic: string, handler: (event: EntityEvent) => void): void;
/** React context holding { client, keyFor } (a React Context object). */
export declare const RealtimeContext: unknown;
