'use strict';
// deltacast/react: hooks on @tanstack/react-query. SSR-safe (nothing touches window or document
// at import or during a server render) and StrictMode-safe (subscriptions live in effects and are
// reference-counted with a linger in the client: mount, unmount, mount puts one `sub` on the wire).

// The module body takes its peers as parameters: react.js passes `require`'s copies, react.mjs the
// ES modules (and query.mjs), so an app and deltacast always share one React Query context.
module.exports = (React, { useQuery, useQueryClient }, { bindQueryClient, realtimeQueryOptions }) => {

const Context = React.createContext(null);
const defaultKey = (topic) => ['deltacast', topic];

function useRealtime() {
  const ctx = React.useContext(Context);
  if (!ctx) throw new Error('deltacast/react hooks must be used inside <RealtimeProvider client={...}>');
  return ctx;
}

/**
 * Binds `client` to the QueryClient of the surrounding QueryClientProvider (bindQueryClient) and
 * gives the hooks below their client. Props: client, queryKey?(topic), detail?.
 */
function RealtimeProvider({ client, queryKey, detail, children }) {
  const queryClient = useQueryClient();
  const keyFor = queryKey || defaultKey;
  // In an effect: nothing happens during a server render, and StrictMode's unmount/remount unbinds
  // and binds again. Hooks below carry their own query options, so they work before it runs.
  React.useEffect(() => bindQueryClient(queryClient, client, { queryKey: keyFor, detail }), [queryClient, client, keyFor, detail]);
  const value = React.useMemo(() => ({ client, keyFor }), [client, keyFor]);
  return React.createElement(Context.Provider, { value }, children);
}

function useTopicState(client, topic) {
  const last = React.useRef(null);
  const subscribe = React.useCallback(
    (onChange) => {
      const offs = [client.on('topic', (t) => t === topic && onChange()), client.on('change', (t) => t === topic && onChange())];
      return () => offs.forEach((off) => off());
    },
    [client, topic],
  );
  const get = () => {
    const s = client.topicStatus(topic);
    const p = last.current;
    if (p && p.status === s.status && p.version === s.version && p.updatedAt === s.updatedAt) return p;
    return (last.current = { status: s.status, version: s.version, updatedAt: s.updatedAt, stale: s.status !== 'live' });
  };
  // What a server render shows, and what hydration expects: only what the dehydrated snapshot
  // carries (its version), never the connection, which the server does not have.
  const serverLast = React.useRef(null);
  const getServer = () => {
    const v = client.topicStatus(topic).version;
    const p = serverLast.current;
    if (p && p.version === v) return p;
    return (serverLast.current = { status: 'stale', version: v, updatedAt: undefined, stale: true });
  };
  return React.useSyncExternalStore(subscribe, get, getServer);
}

/**
 * useQuery on a topic: the query result plus `realtime: { status, version, updatedAt, stale }`.
 * Options: topic, queryKey? (default: the provider's queryKey(topic)), select?, critical?, and
 * any other useQuery option.
 */
function useRealtimeQuery(options) {
  const { topic, queryKey, select, critical, ...rest } = options || {};
  if (typeof topic !== 'string' || topic === '') throw new TypeError('useRealtimeQuery needs { topic }');
  const { client, keyFor } = useRealtime();
  const key = queryKey || keyFor(topic);
  React.useEffect(() => client.subscribe(topic, undefined, { critical }), [client, topic, critical]);
  const realtime = useTopicState(client, topic);
  const held = client.get(topic);
  const result = useQuery({
    ...realtimeQueryOptions(client, topic),
    queryKey: key,
    select,
    ...(held ? { initialData: held.data, initialDataUpdatedAt: held.updatedAt } : {}),
    ...rest,
  });
  return { ...result, realtime };
}

/**
 * The client's status: 'connecting' | 'open' | 'reconnecting' | 'polling' | 'closed'. A server
 * render (and hydration) shows 'connecting'.
 */
function useConnectionStatus() {
  const { client } = useRealtime();
  const subscribe = React.useCallback((onChange) => client.on('status', onChange), [client]);
  return React.useSyncExternalStore(subscribe, () => client.status, () => 'connecting');
}

/** Calls handler({ topic, action, id, data, version, timestamp }) for each row event of `topic`. */
function useRealtimeEvents(topic, handler) {
  const { client } = useRealtime();
  const ref = React.useRef(handler);
  React.useEffect(() => {
    ref.current = handler;
  });
  React.useEffect(() => {
    const unsub = client.subscribe(topic);
    const off = client.on('event', (e) => e.topic === topic && ref.current(e));
    return () => (off(), unsub());
  }, [client, topic]);
}

return { RealtimeProvider, useRealtimeQuery, useConnectionStatus, useRealtimeEvents, RealtimeContext: Context };
};
