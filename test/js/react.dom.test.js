'use strict';
// deltacast/react in a DOM (jsdom) under StrictMode, against a real ws server and hub; and the SSR
// hand-off: markup rendered on the server from hub.get, hydrated in the browser without a snapshot.
const { JSDOM } = require('jsdom');

const dom = new JSDOM('<!doctype html><html><body></body></html>', { url: 'http://localhost/' });
globalThis.window = dom.window;
globalThis.document = dom.window.document;
for (const name of ['navigator', 'HTMLElement', 'HTMLIFrameElement', 'Node', 'Element', 'Text', 'MutationObserver']) {
  if (!(name in globalThis)) Object.defineProperty(globalThis, name, { value: dom.window[name], configurable: true, writable: true });
}

const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const WebSocket = require('ws');
const React = require('react');
const { createRoot, hydrateRoot } = require('react-dom/client');
const { renderToString } = require('react-dom/server');
const { QueryClient, QueryClientProvider } = require('@tanstack/react-query');
const { createHub } = require('../../lib/index.js');
const { createClient } = require('../../lib/browser/client.js');
const { RealtimeProvider, useRealtimeQuery, useConnectionStatus, useRealtimeEvents } = require('../../lib/browser/react.js');
const { startServer, until } = require('./client.servers.js');

const h = React.createElement;
after(() => dom.window.close());
const fast = { minMs: 10, maxMs: 80, connectTimeoutMs: 2000 };

function Board({ events }) {
  const q = useRealtimeQuery({ topic: 'board', select: (rows) => rows.map((r) => `${r.id}:${r.v}`).join(',') });
  const status = useConnectionStatus();
  useRealtimeEvents('board', (e) => events.push(`${e.action}:${e.id}`));
  return h('p', { id: 'out' }, `${status}|${q.realtime.status}|${q.data === undefined ? 'none' : q.data}`);
}

function App({ client, queryClient, events }) {
  return h(
    React.StrictMode,
    null,
    h(QueryClientProvider, { client: queryClient }, h(RealtimeProvider, { client }, h(Board, { events }))),
  );
}

async function setup(t) {
  const hub = createHub();
  const server = await startServer(hub);
  const queryClient = new QueryClient({ defaultOptions: { queries: { gcTime: Infinity } } }); // no gc timers left behind
  const clients = [];
  const unmount = [];
  t.after(async () => {
    for (const f of unmount) f();
    for (const c of clients) c.close();
    queryClient.clear();
    await server.stop();
    await hub.close();
  });
  const make = () => {
    const c = createClient({ url: server.wsUrl, fallback: ['ws'], WebSocket, reconnect: fast, lingerMs: 200 });
    clients.push(c);
    return c;
  };
  return { hub, server, queryClient, make, unmount };
}

const text = (container) => container.querySelector('#out') && container.querySelector('#out').textContent;

test('react: StrictMode puts exactly one sub on the wire; hooks follow patches, status and row events', { timeout: 20000 }, async (t) => {
  const { hub, server, queryClient, make, unmount } = await setup(t);
  await hub.publish('board', [{ id: 1, v: 0 }, { id: 2, v: 0 }]);
  const client = make();
  const events = [];
  const container = dom.window.document.createElement('div');
  dom.window.document.body.appendChild(container);
  const root = createRoot(container);
  unmount.push(() => root.unmount());
  queryClient.setDefaultOptions({ queries: { retry: false } });
  root.render(h(App, { client, queryClient, events }));
  await until(() => text(container) === 'open|live|1:0,2:0', `the snapshot rendered (got ${text(container)})`);
  await hub.upsert('board', 2, { id: 2, v: 5 });
  await until(() => text(container) === 'open|live|1:0,2:5', 'the patch rendered');
  assert.deepEqual(events, ['update:2']);
  await new Promise((r) => setTimeout(r, 300)); // past the linger
  const subs = server.received.filter((m) => m.t === 'sub' && m.topic === 'board');
  assert.equal(subs.length, 1, 'one sub under StrictMode (two hooks on the topic, effects run twice)');
  assert.equal(server.received.filter((m) => m.t === 'unsub').length, 0);
  // The socket dies: the query no longer shows itself as live.
  server.refuseUpgrades = true;
  for (const s of server.wss.clients) s.terminate();
  await until(() => text(container).startsWith('reconnecting|stale|'), `stale while down (got ${text(container)})`);
  server.refuseUpgrades = false;
  await until(() => text(container) === 'open|live|1:0,2:5', 'live again');
  assert.deepEqual(queryClient.getQueryData(['deltacast', 'board']), (await hub.get('board')).data);
});

test('react: SSR hand-off renders from hub.get on the server, hydrates in the browser, and no snap follows', { timeout: 20000 }, async (t) => {
  const { hub, server, queryClient, make, unmount } = await setup(t);
  await hub.publish('board', [{ id: 1, v: 7 }]);
  // Server side: the render reads the snapshot; what is dehydrated is { epoch, version, data }.
  const dehydrated = await hub.get('board');
  const serverClient = createClient({ url: 'ws://127.0.0.1:9/', fallback: ['ws'], WebSocket: class {} });
  serverClient.close();
  serverClient.hydrate('board', dehydrated);
  const serverQueries = new QueryClient();
  const html = renderToString(h(App, { client: serverClient, queryClient: serverQueries, events: [] }));
  serverQueries.clear();
  assert.match(html, /1:7/);
  // Browser side.
  const client = make();
  const kinds = [];
  client.on('change', (_t, _d, info) => kinds.push(info.hydrated ? 'hydrate' : info.ops ? 'patch' : 'snap'));
  client.hydrate('board', JSON.parse(JSON.stringify(dehydrated)));
  const container = dom.window.document.createElement('div');
  container.innerHTML = html;
  dom.window.document.body.appendChild(container);
  const before = container.querySelector('#out');
  let root;
  const recoverable = [];
  unmount.push(() => root && root.unmount());
  root = hydrateRoot(container, h(App, { client, queryClient, events: [] }), { onRecoverableError: (e) => recoverable.push(e) });
  await until(() => server.received.some((m) => m.t === 'sub'), 'the sub (effects ran: hydrated)');
  assert.deepEqual(recoverable, [], 'no hydration mismatch');
  assert.equal(container.querySelector('#out'), before, 'hydrated in place');
  const sub = server.received.find((m) => m.t === 'sub');
  assert.deepEqual(sub, { t: 'sub', topic: 'board', epoch: dehydrated.epoch, version: dehydrated.version });
  await hub.upsert('board', 1, { id: 1, v: 8 });
  await until(() => /1:8/.test(text(container)), 'the patch rendered');
  assert.deepEqual(kinds, ['hydrate', 'patch'], 'no snapshot after hydration');
});
