#!/usr/bin/env node
'use strict';
// Server-side rendering with deltacast: the page arrives with the price board already in it,
// rendered from `hub.get` by react-dom/server, and goes live without a snapshot frame: the
// server dehydrates the snapshot's (epoch, version, data) into the page, the browser's client
// takes it with `hydrate()`, and its subscription resumes from that version (patches only).
//
//   node examples/ssr/server.js          http://localhost:3001 (PORT= picks another)

const http = require('node:http');
const path = require('node:path');
const React = require('react');
const { renderToString } = require('react-dom/server');
const { QueryClient, QueryClientProvider } = require('@tanstack/react-query');
const { WebSocketServer } = require('ws');
const { createHub } = require('deltacast');
const { attachWebSocketServer } = require('deltacast/ws');
const { httpHandler } = require('deltacast/http');
const { createClient } = require('deltacast/client');
const { RealtimeProvider } = require('deltacast/react');
const { bundle } = require('../dashboard/bundle.js');
const { makePrices, prng } = require('../dashboard/simulator.js');
const { Board } = require('./board.js');
const { stopOnSignal } = require('../stop-on-signal.js');

const h = React.createElement;
// JSON inside <script>: no "</script>", no U+2028/2029 surprises.
const safeJson = (v) => JSON.stringify(v).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');

/** Renders the board from the hub's current state; returns { html, state }. */
function render(hub) {
  const snapshot = hub.get('prices');
  // A client that never connects (closed at once): it only holds the snapshot for the render.
  const client = createClient({ url: 'ws://server-render.invalid/', fallback: ['ws'], window: null, document: null });
  client.close();
  client.hydrate('prices', snapshot);
  const html = renderToString(h(QueryClientProvider, { client: new QueryClient() }, h(RealtimeProvider, { client }, h(Board))));
  return { html, state: { prices: snapshot } };
}

/** Starts the example: resolves with { url, port, hub, close() }. Options: port (default 3001; 0: any). */
async function startSsr({ port = 3001, changesPerSecond = 50 } = {}) {
  // a longer history than the default: the page's resume from its rendered version is a patch
  const hub = createHub({ history: { maxCount: 2048, maxBytes: 2 * 1024 * 1024 } });
  const rnd = prng(11);
  const rows = makePrices(200, rnd, Date.now());
  await hub.publish('prices', rows);
  const timer = setInterval(() => {
    for (let k = 0; k < changesPerSecond / 10; k++) {
      const i = Math.floor(rnd() * rows.length);
      rows[i] = { ...rows[i], price: Math.round(rows[i].price * (1 + (rnd() - 0.5) * 0.004) * 100) / 100, ts: Date.now() };
      hub.upsert('prices', rows[i].id, rows[i]).catch(() => {});
    }
  }, 100);
  const script = await bundle(path.join(__dirname, 'client.jsx'));

  const wss = new WebSocketServer({ noServer: true });
  const ws = attachWebSocketServer(wss, hub);
  const poll = httpHandler(hub, { prefix: '/deltacast' });
  const server = http.createServer((req, res) => {
    const p = new URL(req.url, 'http://x').pathname;
    if (p.startsWith('/deltacast')) return poll(req, res);
    if (p === '/app.js') {
      res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' });
      return res.end(script);
    }
    if (p === '/favicon.ico') return res.writeHead(204).end();
    if (p !== '/') return res.writeHead(404).end();
    const { html, state } = render(hub);
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(
      `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>deltacast SSR</title>` +
        `<style>body{font:13px system-ui,sans-serif;margin:16px}td{padding:2px 8px;border-bottom:1px solid #eee}.num{text-align:right}</style></head>` +
        `<body><div id="root">${html}</div><script>window.__DELTACAST__=${safeJson(state)}</script><script src="/app.js"></script></body></html>`,
    );
  });
  server.on('upgrade', (req, socket, head) => {
    if (new URL(req.url, 'http://x').pathname === '/ws') ws.handleUpgrade(req, socket, head);
    else socket.destroy();
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, () => (server.off('error', reject), resolve()));
  });
  const actual = server.address().port;
  return {
    url: `http://localhost:${actual}`,
    port: actual,
    hub,
    async close() {
      clearInterval(timer);
      ws.close();
      await new Promise((r) => {
        server.close(() => r());
        server.closeAllConnections();
      });
      await hub.close();
    },
  };
}

if (require.main === module) {
  const port = process.env.PORT ? Number(process.env.PORT) : 3001;
  startSsr({ port }).then(
    (s) => {
      stopOnSignal(() => s.close());
      console.log(`deltacast SSR example: serving ${s.url} (Ctrl-C to stop)`);
    },
    (err) => {
      console.error(err.code === 'EADDRINUSE' ? `deltacast SSR example: port ${port} is already in use; set PORT= to pick another` : err);
      process.exit(1);
    },
  );
}

module.exports = { startSsr, render };
