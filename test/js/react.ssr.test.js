'use strict';
// deltacast/react and deltacast/client on a server: importing touches no window or document, and
// a server render works without a DOM.
const { test } = require('node:test');
const assert = require('node:assert/strict');

test('react: importing and server-rendering touch no window or document', () => {
  assert.equal(typeof globalThis.window, 'undefined');
  assert.equal(typeof globalThis.document, 'undefined');
  const React = require('react');
  const { renderToString } = require('react-dom/server');
  const { QueryClient, QueryClientProvider } = require('@tanstack/react-query');
  const { createClient } = require('../../lib/browser/client.js');
  const { RealtimeProvider, useRealtimeQuery, useConnectionStatus } = require('../../lib/browser/react.js');
  const client = createClient({ url: 'ws://127.0.0.1:9/', fallback: ['ws'], WebSocket: class {} });
  client.close();
  client.hydrate('t', { epoch: 'e', version: 3, data: { n: 3 } });
  function View() {
    const q = useRealtimeQuery({ topic: 't' });
    const status = useConnectionStatus();
    return React.createElement('i', null, `${status} ${q.data.n} ${q.realtime.version} ${q.realtime.stale}`);
  }
  const h = React.createElement;
  const html = renderToString(
    h(QueryClientProvider, { client: new QueryClient() }, h(RealtimeProvider, { client }, h(View))),
  );
  assert.equal(html, '<i>connecting 3 3 true</i>');
  assert.equal(typeof globalThis.window, 'undefined');
});
