// Type tests for lib/index.d.ts, checked by `tsc -p tsconfig.json` (part of `npm run lint`).
// Nothing here runs: each line either must type-check, or carries `@ts-expect-error`
// and must NOT type-check (tsc fails if such a line stops being an error).

import { diff, applyPatch, diffJson, applyPatchJson, DeltacastError } from '../../lib/index.js';
import type { Operation } from '../../lib/index.js';

/** True only when X and Y are the same type (not merely assignable). */
type Equal<X, Y> = (<T>() => T extends X ? 1 : 2) extends <T>() => T extends Y ? 1 : 2 ? true : false;
function expectTrue<_T extends true>(): void {}

const before = { user: { name: 'Ada', tags: ['admin'] }, items: [{ id: 1, qty: 2 }] };
const after = { user: { name: 'Grace', tags: [] as string[] }, items: [{ id: 1, qty: 3 }] };

// ---- diff ---------------------------------------------------------------------------
const ops = diff(before, after);
expectTrue<Equal<typeof ops, Operation[]>>();
diff(before, after, {});
diff(before, after, { arrayKey: 'id' });
diff(before, after, { arrayKey: false });
diff(1, 'anything goes: a and b are unknown');
diff(null, [1, 2, 3]);

// @ts-expect-error arrayKey is a property name or false, not a number
diff(before, after, { arrayKey: 42 });
// @ts-expect-error arrayKey: true means nothing; only false turns keyed matching off
diff(before, after, { arrayKey: true });

// ---- Operation: the six RFC 6902 operations, told apart by `op` ----------------------
for (const op of ops) {
  const path: string = op.path;
  switch (op.op) {
    case 'add':
    case 'replace':
    case 'test': {
      const value: unknown = op.value;
      void value;
      break;
    }
    case 'move':
    case 'copy': {
      const from: string = op.from;
      void from;
      break;
    }
    case 'remove':
      break;
    default: {
      // Fails to compile if Operation gains or loses a member.
      const exhaustive: never = op;
      void exhaustive;
    }
  }
  void path;
}

const handWritten: Operation[] = [
  { op: 'add', path: '/user/tags/-', value: 'owner' },
  { op: 'remove', path: '/items/0' },
  { op: 'replace', path: '/user/name', value: 'Grace' },
  { op: 'move', from: '/user/name', path: '/name' },
  { op: 'copy', from: '/items/0', path: '/first' },
  { op: 'test', path: '/user/name', value: 'Ada' },
];

// ---- applyPatch: returns the document's own type --------------------------------------
const patched = applyPatch(before, ops);
expectTrue<Equal<typeof patched, typeof before>>();
const name: string = patched.user.name;
void name;
applyPatch(before, handWritten);
const frozen: readonly Operation[] = Object.freeze([...handWritten]);
applyPatch({ a: 1 }, frozen);
applyPatch<unknown>(JSON.parse('{}'), []);

// @ts-expect-error 'merge' is not an RFC 6902 operation
applyPatch(before, [{ op: 'merge', path: '/user', value: {} }]);
// @ts-expect-error move needs `from`
applyPatch(before, [{ op: 'move', path: '/user' }]);
// @ts-expect-error the patch is an array of operations, not one operation
applyPatch(before, { op: 'remove', path: '/user' });

// ---- diffJson / applyPatchJson: JSON text or its UTF-8 bytes ------------------------------
const bytesA = new Uint8Array([0x7b, 0x7d]); // {}
const bytesB = new Uint8Array([0x5b, 0x5d]); // []
const jsonOps = diffJson('{"a":1}', '{"a":2}');
expectTrue<Equal<typeof jsonOps, Operation[]>>();
diffJson(bytesA, bytesB);
diffJson('{"items":[{"id":1}]}', bytesB, { arrayKey: 'id' });
diffJson('{}', '{}', { arrayKey: false });

const text = applyPatchJson('{"a":1}', jsonOps);
expectTrue<Equal<typeof text, string>>();
applyPatchJson(bytesA, frozen);
applyPatchJson('{"a":1}', JSON.stringify(handWritten));

// @ts-expect-error diffJson takes JSON text or bytes; use diff() for values
diffJson({ a: 1 }, { a: 2 });
// @ts-expect-error arrayKey is a property name or false
diffJson('{}', '{}', { arrayKey: 42 });
// @ts-expect-error applyPatchJson returns JSON text, not a parsed value
const parsed: { a: number } = applyPatchJson('{"a":1}', '[]');
void parsed;

// ---- DeltacastError ---------------------------------------------------------------------
try {
  applyPatchJson('not json', '[]');
} catch (err) {
  if (err instanceof DeltacastError) {
    const asError: Error = err;
    const code: string = err.code;
    const message: string = err.message;
    void asError;
    void code;
    void message;
  }
}

// ---- the hub --------------------------------------------------------------------------
import { createHub } from '../../lib/index.js';
import type { Hub, Version, Snapshot } from '../../lib/index.js';

const hub: Hub = createHub({ clock: 'manual', ttl: { 'tmp/*': 60_000 }, memory: { maxBytes: 1 << 20 } });
async function useHub(): Promise<void> {
  const v: Version | null = await hub.publish('prices', { rows: [] });
  void v;
  // A receipt is structurally a Promise, and gives a real one on request.
  const asPromise: Promise<Version | null> = hub.publish('prices', { rows: [1] });
  const real: Promise<Version | null> = hub.publish('prices', { rows: [2] }).promise();
  await Promise.all([asPromise, real]);
  await hub.publishJson('prices', '{"rows":[]}', { id: 'evt-1' });
  await hub.upsert('rows', 'a1', { price: 1 });
  await hub.remove('rows', 7);
  await hub.patch('prices', [{ op: 'add', path: '/rows/-', value: { id: 1 } }]);
  const snap: Snapshot<{ rows: unknown[] }> | undefined = hub.get<{ rows: unknown[] }>('prices');
  void snap;
  const found: boolean = await hub.delete('prices');
  void found;
  await hub.advance(10);
  const topics: number = hub.stats().topics;
  void topics;
  await hub.close();
  const coalescing = createHub({ clock: 'manual', pacing: { coalesce: true, normalDebounceMs: 20 } });
  const held: Promise<Version | null> = coalescing.publish('board', Object.freeze([{ id: 1 }]));
  const waiting: number = coalescing.stats().coalesced;
  void [held, waiting];
}
void useHub;
// @ts-expect-error coalesce is a boolean
createHub({ pacing: { coalesce: 'yes' } });
// @ts-expect-error clock is 'real' or 'manual'
createHub({ clock: 'fake' });
// @ts-expect-error ttl maps patterns to milliseconds
createHub({ ttl: [['tmp/*', 1]] });

// ---- identity and audit ---------------------------------------------------------------
import type { AuditEvent, Identity } from '../../lib/index.js';
const auditHub = createHub({ onAudit: (event: AuditEvent) => void event.closeCode });
// @ts-expect-error onAudit is a function
createHub({ onAudit: 'log' });
auditHub.connect({
  send: () => true,
  kind: 'ws',
  user: { id: 'u1', roles: ['ops'], expiresAt: Date.now() + 60_000 },
  authenticate: async (token: string): Promise<Identity> => ({ id: token, roles: [] }),
});
auditHub.audit({ type: 'refused', transport: 'ws', code: 'DELTACAST_UNAUTHORIZED' });
