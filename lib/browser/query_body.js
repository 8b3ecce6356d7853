'use strict';
// deltacast/query: a deltacast client feeding a TanStack Query v5 QueryClient (@tanstack/query-core,
// so the React, Vue, Solid and Svelte adapters all work).
//
// Invariants:
//  - The data under a bound key is the client's replica (plus optimistic layers on top): the same
//    object, written at most once per topic per frame (per tick in Node). TanStack's structural
//    sharing is skipped for it (the patch already shares structure; walking 10,000 rows per write
//    is what it would cost), and kept for anything else written there (queryFn results).
//  - A fetch in flight when a write lands is cancelled first, so a refetch that started before a
//    patch never overwrites it.
//  - Bound queries are never stale while their topic is live. Over HTTP (refetch, then poll) only
//    while the socket really failed (an attempt was refused or timed out, none opened since): never
//    while the first attempt, or a reconnection within its connect timeout, is under way, and never
//    for a topic paused on purpose (a hidden tab) while the socket is fine.

const { rowChanges: rowDiff } = require('./core.js');

// The module body takes @tanstack/query-core as a parameter: query.cjs.js passes `require`'s copy,
// query.mjs the ES module's, so an app and deltacast always share one TanStack Query.
module.exports = ({ replaceEqualDeep }) => {

/**
 * The rows a patch changed. When every op stays inside a row (`/i/...`), indices are stable and
 * only those rows are looked at; otherwise rows are compared by key and identity.
 */
function rowChanges(prev, next, ops, key) {
  if (!Array.isArray(prev) || !Array.isArray(next)) return [];
  const touched = new Set();
  for (const op of ops) {
    const s = op.path.split('/');
    if (s.length < 3 || op.from !== undefined) return rowDiff(prev, next, key);
    touched.add(s[1]);
  }
  const out = [];
  for (const i of touched) if (next[i] && next[i] !== prev[i]) out.push({ action: 'update', id: next[i][key], row: next[i] });
  return out;
}

const bindings = new WeakMap(); // QueryClient -> Map(client -> binding)
const written = new WeakMap(); // client -> Map(topic -> the value last written for it)

const failing = new WeakMap(); // client -> { failed, dropped, last }

/**
 * Whether the socket really failed: a connection attempt (every carrier in turn) was refused, closed
 * or timed out (a 'reconnecting' with delayMs that no drop of an open socket announced), and no
 * socket opened since. A drop alone, the first attempt, or a reconnection within its connect
 * timeout is not a failure.
 */
function failed(client) {
  let f = failing.get(client);
  if (!f) {
    failing.set(client, (f = { failed: client.status === 'reconnecting', dropped: false, last: client.status }));
    client.on('status', (s, info) => {
      if (s === 'open') f.failed = false;
      else if (s === 'reconnecting' && info && 'delayMs' in info && !f.dropped) f.failed = true;
      // A socket that was open dropped: its reconnection gets its chance first. (A long-poll that
      // "opened" and dropped is no socket.)
      f.dropped = s === 'reconnecting' && !!info && 'code' in info && f.last === 'open';
      f.last = s;
    });
  }
  return f.failed;
}

/**
 * Whether the topic's data may come over HTTP now: not live and the socket failed. A topic paused
 * by a hidden tab is not live while the socket is fine: it keeps its data until it resumes.
 */
function viaHttp(client, topic) {
  return client.topicStatus(topic).status !== 'live' && failed(client);
}

function lastWritten(client, topic) {
  const m = written.get(client);
  return m && m.get(topic);
}

/**
 * The query options of a topic's queries: its queryFn, structural sharing that passes the
 * binding's own writes through, never stale unless its data may come over HTTP (viaHttp), then
 * refetched every refetchIntervalMs.
 */
function realtimeQueryOptions(client, topic, refetchIntervalMs = 5000) {
  const http = () => viaHttp(client, topic);
  return {
    queryFn: ({ signal }) => fetchTopic(client, topic, signal),
    // Our own writes are the replica, already shared: passed through. Anything else (a queryFn's
    // result) gets TanStack's usual structural sharing.
    structuralSharing: (prev, next) => (next === lastWritten(client, topic) ? next : replaceEqualDeep(prev, next)),
    staleTime: () => (http() ? 0 : Infinity),
    refetchInterval: () => (http() ? refetchIntervalMs : false),
  };
}

function fail(message) {
  const e = new TypeError(message);
  e.code = 'DELTACAST_INVALID_ARGUMENT';
  return e;
}

function defaultSchedule(f) {
  if (typeof globalThis.requestAnimationFrame === 'function') globalThis.requestAnimationFrame(() => f());
  else setTimeout(f, 0);
}

/**
 * The default queryFn of a bound query: when the socket failed (viaHttp), the HTTP handler's
 * snapshot (seeding the replica, so the subscription resumes from it); else the replica's data,
 * or its first data when it has none yet.
 */
function fetchTopic(client, topic, signal) {
  const have = client.get(topic);
  const url = client.pollUrl;
  const http = () => url && typeof fetch === 'function' && viaHttp(client, topic);
  const get = () =>
    fetch(`${url}/topics/${encodeURIComponent(topic)}`, { signal }).then((res) => {
      if (res.status !== 200) throw new Error(`GET ${topic} answered ${res.status}`);
      return res.json().then((m) => {
        if (m.t !== 'snap') throw new Error(`GET ${topic} answered a ${m.t}`);
        client.hydrate(topic, m);
        return (client.get(topic) || m).data; // hydrate() leaves a topic the wire is resuming to the wire
      });
    });
  if (http()) return get();
  if (have) return Promise.resolve(have.data);
  // The replica's first data; or HTTP, if the socket fails meanwhile.
  return new Promise((resolve) => {
    const offs = [
      client.on('change', (t, data) => t === topic && data !== undefined && (done(), resolve(data))),
      client.on('status', () => http() && (done(), resolve(get()))),
    ];
    const done = () => offs.forEach((off) => off());
    if (signal) signal.addEventListener('abort', done);
  });
}

function bindQueryClient(queryClient, client, options) {
  if (!queryClient || typeof queryClient.setQueryData !== 'function') throw fail('bindQueryClient needs a QueryClient');
  if (!client || typeof client.subscribe !== 'function') throw fail('bindQueryClient needs a deltacast client');
  failed(client); // follows the client's status from now on
  if (!options || typeof options.queryKey !== 'function') throw fail('options.queryKey(topic) must be a function');
  const detail = options.detail;
  if (detail !== undefined && typeof detail.queryKey !== 'function') throw fail('options.detail.queryKey(topic, id) must be a function');
  const schedule = options.schedule || defaultSchedule;
  const pollMs = options.refetchIntervalMs === undefined ? 5000 : options.refetchIntervalMs;
  const key = options.arrayKey === undefined ? 'id' : options.arrayKey;
  const only = options.topics ? new Set(options.topics) : undefined;

  const bound = new Map(); // topic -> { key, written, layers }
  const dirty = new Map(); // topic -> Map(id -> change) | null (no detail work)
  const invalid = new Map(); // topic -> 'reset' | 'http' (re-checked at the flush)
  let scheduled = false;
  let closed = false;

  /** The bound state of a topic; `queryKey` overrides options.queryKey(topic) (useRealtimeQuery). */
  function topicOf(topic, queryKey) {
    let b = bound.get(topic);
    if (b && (!queryKey || b.key === queryKey)) return b;
    if (!b) bound.set(topic, (b = { key: undefined, written: undefined, layers: [], defaults: undefined }));
    b.key = queryKey || options.queryKey(topic);
    b.defaults = realtimeQueryOptions(client, topic, pollMs);
    queryClient.setQueryDefaults(b.key, b.defaults);
    return b;
  }

  function later() {
    if (scheduled || closed) return;
    scheduled = true;
    schedule(flush);
  }

  function cancelFetch(queryKey) {
    const q = queryClient.getQueryCache().find({ queryKey, exact: true });
    if (q && q.state.fetchStatus === 'fetching') q.cancel({ revert: true });
  }

  function write(topic) {
    const b = topicOf(topic);
    const snap = client.get(topic);
    let data = snap && snap.data;
    for (const l of b.layers) data = l.update(data);
    if (data === undefined) return;
    b.written = data;
    let w = written.get(client);
    if (!w) written.set(client, (w = new Map()));
    w.set(topic, data);
    const q = queryClient.getQueryCache().find({ queryKey: b.key, exact: true });
    if (q) {
      // A fetch in flight started before this change: it must not land over it.
      if (q.state.fetchStatus === 'fetching') q.cancel({ revert: true });
      // A query built before the defaults were set still carries the options it was built with.
      if (typeof q.options.structuralSharing !== 'function') q.setOptions({ ...q.options, structuralSharing: b.defaults.structuralSharing });
    }
    queryClient.setQueryData(b.key, data);
  }

  function flush() {
    scheduled = false;
    if (closed) return;
    // Invalidations first, coalesced: one per key per flush, however many gaps or resets came. A
    // turn to HTTP is re-checked now (the topic may be live again), and a write below cancels the
    // refetch an invalidation started, so a queryFn's result never lands over a newer replica.
    for (const [topic, reason] of invalid) {
      if (reason === 'reset' || viaHttp(client, topic)) queryClient.invalidateQueries({ queryKey: topicOf(topic).key });
    }
    invalid.clear();
    for (const [topic, rows] of dirty) {
      write(topic);
      if (!rows || !detail) continue;
      for (const [id, ch] of rows) {
        const dk = detail.queryKey(topic, id);
        if (ch.action === 'delete') queryClient.removeQueries({ queryKey: dk, exact: true });
        else {
          cancelFetch(dk);
          queryClient.setQueryData(dk, ch.row);
        }
      }
    }
    dirty.clear();
  }

  const wanted = (topic) => !only || only.has(topic);
  const offs = [
    client.on('change', (topic, data, info) => {
      if (!wanted(topic)) return;
      topicOf(topic);
      let rows = dirty.get(topic);
      if (info.ops && detail) {
        if (!rows) dirty.set(topic, (rows = new Map()));
        for (const ch of rowChanges(info.prev, data, info.ops, key)) rows.set(ch.id, ch);
      } else if (!rows) dirty.set(topic, null);
      // The server's version that contains an optimistic change ends that change's layer.
      const b = bound.get(topic);
      if (b.layers.length && info.version !== undefined) {
        b.layers = b.layers.filter((l) => !l.done(info));
      }
      later();
    }),
    client.on('reset', ({ topic }) => {
      if (!wanted(topic)) return;
      invalid.set(topic, 'reset');
      later();
    }),
    client.on('topic', (topic, state) => {
      if (!wanted(topic)) return;
      // Over HTTP now: refetch (then poll); live again: one write stops the polling.
      if (state === 'live') dirty.has(topic) || dirty.set(topic, null);
      else if (viaHttp(client, topic)) invalid.has(topic) || invalid.set(topic, 'http');
      later();
    }),
    // An attempt failed: the topics that are waiting for the socket go over HTTP.
    client.on('status', () => {
      if (!failed(client)) return;
      for (const topic of bound.keys()) if (wanted(topic) && viaHttp(client, topic)) invalid.has(topic) || invalid.set(topic, 'http');
      later();
    }),
  ];
  const subs = options.topics ? options.topics.map((t) => client.subscribe(t)) : [];
  for (const t of options.topics || []) topicOf(t);

  const binding = { client, bound, topicOf, write };
  let perClient = bindings.get(queryClient);
  if (!perClient) bindings.set(queryClient, (perClient = new Map()));
  perClient.set(client, binding);

  return () => {
    if (closed) return;
    closed = true;
    for (const off of offs) off();
    for (const unsub of subs) unsub();
    if (perClient.get(client) === binding) perClient.delete(client);
  };
}

let seq = 0;

/**
 * Shows `update(data)` at once under the topic's key, keeps it on top of server patches that arrive
 * meanwhile, drops it when the server's version containing it is applied, and rolls back exactly
 * this change if `mutate(id)` rejects. `id` is the change id to publish with (`{ id }`); patch frames
 * carry `ids`. A server that does not send `ids` ends the layer at the first version after
 * `mutate()` resolved (or at the `{ version }` it resolved with).
 */
function optimisticUpdate(queryClient, client, o) {
  const perClient = bindings.get(queryClient);
  const binding = perClient && perClient.get(client);
  if (!binding) return Promise.reject(fail('optimisticUpdate needs bindQueryClient(queryClient, client, ...) first'));
  if (!o || typeof o.topic !== 'string' || typeof o.update !== 'function' || typeof o.mutate !== 'function') {
    return Promise.reject(fail('optimisticUpdate needs { topic, update(data), mutate() }'));
  }
  const b = binding.topicOf(o.topic);
  const id = o.id || `opt-${Date.now().toString(36)}-${++seq}`;
  let settled = false;
  let until; // the version that contains the change, once known
  const start = client.get(o.topic);
  const layer = {
    id,
    update: o.update,
    done(info) {
      if (info.ids && info.ids.includes(id)) return true;
      if (!settled) return false;
      if (until) return info.epoch !== until.epoch || info.version >= until.version;
      return !start || info.epoch !== start.epoch || info.version > start.version;
    },
  };
  b.layers.push(layer);
  binding.write(o.topic);
  return Promise.resolve()
    .then(() => o.mutate(id))
    .then(
      (result) => {
        settled = true;
        if (result && typeof result.version === 'number' && typeof result.epoch === 'string') until = result;
        const now = client.get(o.topic);
        if (now && b.layers.includes(layer) && layer.done(now)) {
          b.layers = b.layers.filter((l) => l !== layer);
          binding.write(o.topic);
        }
        return result;
      },
      (err) => {
        // Exactly this change goes; other layers and the server's patches stay.
        b.layers = b.layers.filter((l) => l !== layer);
        binding.write(o.topic);
        throw err;
      },
    );
}

return { bindQueryClient, optimisticUpdate, fetchTopic, realtimeQueryOptions };
};
