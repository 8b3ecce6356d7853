'use strict';
// The price board, rendered on the server (react-dom/server) and hydrated in the browser: the
// same component on both sides. Plain createElement, so that Node runs it without a build step.

const React = require('react');
const { useRealtimeQuery, useConnectionStatus } = require('deltacast/react');

const h = React.createElement;
const fmt = (n) => n.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });

function Board({ rows = 50 }) {
  const { data, realtime } = useRealtimeQuery({ topic: 'prices' });
  const status = useConnectionStatus();
  return h(
    'main',
    null,
    h('p', { 'data-testid': 'meta' }, `prices v${realtime.version ?? '-'} · ${status}`),
    h(
      'table',
      null,
      h('tbody', null, ...(data || []).slice(0, rows).map((r) => h('tr', { key: r.id, 'data-id': r.id }, h('td', null, r.id), h('td', null, r.material), h('td', null, r.location), h('td', { className: 'num', 'data-testid': 'price' }, fmt(r.price))))),
    ),
  );
}

module.exports = { Board, fmt };
