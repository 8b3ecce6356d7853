// Type tests for lib/query.d.ts and lib/react.d.ts, and lib/client.d.ts given the DOM's globals
// (tsconfig.dom.json: lib ES2022 + DOM; checked by tsc, never run).
// (The client's own calls are checked without DOM types: client.test-d.ts.)
import { createClient } from '../../lib/client.js';
import type { Client, ClientStatus } from '../../lib/client.js';
import { bindQueryClient, optimisticUpdate } from '../../lib/query.js';
import { useRealtimeQuery, useConnectionStatus, useRealtimeEvents } from '../../lib/react.js';
import { QueryClient } from '@tanstack/query-core';

const client: Client = createClient({ url: 'ws://localhost/rt', pollUrl: 'http://localhost/rt' });
// The browser's own fetch, window and document fit the client's options.
createClient({ pollUrl: '/rt', fetch: globalThis.fetch, window, document });
createClient({ pollUrl: '/rt', fetch: (input, init) => fetch(input, init as RequestInit) });

const queryClient = new QueryClient();
const unbind: () => void = bindQueryClient(queryClient, client, { queryKey: (t) => [t], detail: { queryKey: (t, id) => [t, id] } });
unbind();
void optimisticUpdate<{ n: number }>(queryClient, client, { topic: 'c', update: (d) => ({ n: d.n + 1 }), mutate: async () => undefined });

const q = useRealtimeQuery<Array<{ id: number }>, number>({ topic: 'rows', select: (rows) => rows.length });
const n: number | undefined = q.data;
const stale: boolean = q.realtime.stale;
const cs: ClientStatus = useConnectionStatus();
useRealtimeEvents('rows', (e) => e.id);
void [n, stale, cs];
