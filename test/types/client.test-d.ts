// Type tests for lib/client.d.ts in a project without DOM types (tsconfig.json: lib ES2022 only,
// no @types/node), as a Node service or test harness has it (checked by tsc, never run).
import { createClient } from '../../lib/client.js';
import type { Client, ClientStatus, EntityEvent, FetchResponse } from '../../lib/client.js';

const client: Client = createClient({ url: 'ws://localhost/rt', pollUrl: 'http://localhost/rt', fallback: ['ws', 'sse', 'poll'] });
const off: () => void = client.subscribe('prices', (data, info) => info.version);
off();
const status: ClientStatus = client.status;
client.on('event', (e: EntityEvent) => e.action === 'insert');
client.on('status', (s) => s === 'open');
client.hydrate('prices', { epoch: 'e1', version: 3, data: [] });
// @ts-expect-error: not a carrier
createClient({ url: 'ws://x', fallback: ['smoke'] });

// A fetch of one's own (a recording stub in a test harness, say), typed by what the client reads.
const recorded: string[] = [];
const response: FetchResponse = { ok: true, status: 200, headers: { get: () => null }, body: null, text: async () => '[]', json: async () => [] };
createClient({
  pollUrl: 'http://localhost/rt',
  fallback: ['poll'],
  fetch: async (url, init) => {
    recorded.push(url, JSON.stringify(init));
    return response;
  },
  window: null,
  document: { visibilityState: 'visible', addEventListener: () => undefined, removeEventListener: () => undefined },
});
// @ts-expect-error: a response without status
createClient({ fetch: async () => ({ ok: true }) });
// @ts-expect-error: the DOM is not in this project: no global fetch to pass
createClient({ fetch });
void status;
