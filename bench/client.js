'use strict';
// The client side, in one run:
//
//   node bench/client.js            # full (about half a minute)
//   node bench/client.js --quick    # fewer updates
//
// 1. Into a QueryClient: a 10,000-row board (bench/data.js), 1% of the rows changing per update.
//    - binding: the patch frame (JSON text, as it arrives) is parsed, applied to the client's
//      replica, and bindQueryClient writes it with setQueryData (structural sharing skipped: the
//      patch already shares the unchanged rows);
//    - full snapshot: the whole board (JSON text, as a snapshot-per-update feed sends it) is parsed
//      and written with setQueryData under TanStack's default structural sharing.
//    CPU per update (process.cpuUsage, median of rounds), and whether unchanged rows kept their
//    identity in the cache.
// 2. Per applied patch (the same 1% patches, parsed ops): the client's applier (lib/browser/patch.js)
//    and the package's applyPatch (lib/apply_patch.js), both pure, against fast-json-patch's
//    applyPatch(doc, ops, false, false) (non-mutating: it clones the document first).
// 3. Bundle bytes, min+gzip, esbuild --minify for browsers: the client against socket.io-client and
//    centrifuge.

const zlib = require('node:zlib');
const { QueryClient } = require('@tanstack/query-core');
const fjp = require('fast-json-patch');
const esbuild = require('esbuild');
const { diff } = require('../lib/index.js');
const { createClient } = require('../lib/browser/client.js');
const { bindQueryClient } = require('../lib/browser/query.js');
const { applyPatch: compactApply } = require('../lib/browser/patch.js');
const { applyPatch: sharedApply } = require('../lib/apply_patch.js');
const { makeBoard, mutate } = require('./data.js');
const { gc, medianOf, packageVersion } = require('./common.js');

const quick = process.argv.includes('--quick');
const ROWS = 10000;
const UPDATES = quick ? 20 : 60;
const ROUNDS = quick ? 3 : 5;

function cpuMs(f) {
  gc();
  const t = process.cpuUsage();
  f();
  const d = process.cpuUsage(t);
  return (d.user + d.system) / 1000;
}

/** A WebSocket stand-in: the client opens on it, and the bench pushes frames into it. */
function fakeSocket() {
  const sockets = [];
  class FakeWebSocket {
    constructor() {
      this.readyState = 1;
      sockets.push(this);
      queueMicrotask(() => this.onopen && this.onopen());
    }
    send() {}
    close() {}
  }
  return { FakeWebSocket, sockets };
}

async function intoQueryClient() {
  const boards = [makeBoard(ROWS, 7)];
  for (let i = 0; i < UPDATES; i++) boards.push(mutate(boards[i], { fraction: 0.01, seed: 100 + i }));
  const snapTexts = boards.map((b) => JSON.stringify(b));
  const frames = [];
  for (let i = 1; i < boards.length; i++) {
    frames.push(JSON.stringify({ t: 'patch', topic: 'board', epoch: 'e1', from: i, to: i + 1, ops: diff(boards[i - 1], boards[i]) }));
  }
  const bindingRuns = [];
  const fullRuns = [];
  let identityBinding = true;
  let identityFull = true;
  for (let r = 0; r < ROUNDS; r++) {
    // Binding.
    {
      const { FakeWebSocket, sockets } = fakeSocket();
      const client = createClient({ url: 'ws://bench', WebSocket: FakeWebSocket, fallback: ['ws'], window: null, document: null, heartbeat: { intervalMs: 1e9 } });
      const queryClient = new QueryClient({ defaultOptions: { queries: { gcTime: Infinity } } });
      const pending = [];
      bindQueryClient(queryClient, client, { queryKey: (t) => ['rt', t], topics: ['board'], schedule: (f) => pending.push(f) });
      await new Promise((r2) => setTimeout(r2, 5));
      const ws = sockets[0];
      ws.onmessage({ data: JSON.stringify({ t: 'snap', topic: 'board', epoch: 'e1', version: 1, data: boards[0] }) });
      pending.splice(0).forEach((f) => f());
      let before = queryClient.getQueryData(['rt', 'board']);
      let total = 0;
      for (let i = 0; i < frames.length; i++) {
        total += cpuMs(() => {
          ws.onmessage({ data: frames[i] });
          pending.splice(0).forEach((f) => f());
        });
        const now = queryClient.getQueryData(['rt', 'board']);
        for (let k = 0; k < ROWS; k += 97) if (boards[i + 1][k] === boards[i][k] && now[k] !== before[k]) identityBinding = false;
        before = now;
      }
      bindingRuns.push(total / frames.length);
      const want = JSON.stringify(boards.at(-1));
      if (JSON.stringify(queryClient.getQueryData(['rt', 'board'])) !== want) throw new Error('binding: the cache differs from the last board');
      client.close();
      queryClient.clear();
    }
    // Full snapshot with default structural sharing.
    {
      const queryClient = new QueryClient({ defaultOptions: { queries: { gcTime: Infinity } } });
      queryClient.setQueryData(['full'], JSON.parse(snapTexts[0]));
      let before = queryClient.getQueryData(['full']);
      let total = 0;
      for (let i = 1; i < snapTexts.length; i++) {
        total += cpuMs(() => queryClient.setQueryData(['full'], JSON.parse(snapTexts[i])));
        const now = queryClient.getQueryData(['full']);
        for (let k = 0; k < ROWS; k += 97) if (boards[i][k] === boards[i - 1][k] && now[k] !== before[k]) identityFull = false;
        before = now;
      }
      fullRuns.push(total / (snapTexts.length - 1));
      queryClient.clear();
    }
  }
  return { binding: medianOf(bindingRuns), full: medianOf(fullRuns), identityBinding, identityFull };
}

function perPatch() {
  const boards = [makeBoard(ROWS, 11)];
  for (let i = 0; i < UPDATES; i++) boards.push(mutate(boards[i], { fraction: 0.01, seed: 300 + i }));
  const patches = boards.slice(1).map((b, i) => diff(boards[i], b));
  const out = {};
  for (const [name, apply] of [
    ['deltacast client (lib/browser/patch.js)', compactApply],
    ['deltacast applyPatch (lib/apply_patch.js)', sharedApply],
    ['fast-json-patch applyPatch, non-mutating', (doc, ops) => fjp.applyPatch(doc, ops, false, false).newDocument],
  ]) {
    const runs = [];
    for (let r = 0; r < ROUNDS; r++) {
      let doc = JSON.parse(JSON.stringify(boards[0]));
      runs.push(cpuMs(() => {
        for (const ops of patches) doc = apply(doc, ops);
      }) / patches.length);
      if (JSON.stringify(doc) !== JSON.stringify(boards.at(-1))) throw new Error(`${name}: wrong result`);
    }
    out[name] = medianOf(runs);
  }
  return out;
}

async function bundleBytes(contents, external) {
  const r = await esbuild.build({
    stdin: { contents, resolveDir: require('node:path').join(__dirname, '..'), loader: 'js' },
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    write: false,
    external,
    logLevel: 'silent',
  });
  const code = r.outputFiles[0].contents;
  return { min: code.length, gzip: zlib.gzipSync(code, { level: 9 }).length };
}

(async () => {
  const fmt = (ms) => `${ms < 0.1 ? ms.toFixed(4) : ms.toFixed(3)} ms`;
  process.stderr.write(`client bench: ${ROWS} rows, 1% changing, ${UPDATES} updates x ${ROUNDS} rounds${quick ? ' (quick)' : ''}\n`);
  const q = await intoQueryClient();
  console.log(`\n### Into a QueryClient (@tanstack/query-core ${packageVersion('@tanstack/query-core')}), ${ROWS} rows, 1% changing, CPU per update\n`);
  console.log('| path | CPU per update | unchanged rows keep identity |\n|---|---:|---|');
  console.log(`| deltacast/query binding (parse patch, apply, setQueryData) | ${fmt(q.binding)} | ${q.identityBinding ? 'yes' : 'NO'} |`);
  console.log(`| setQueryData(parsed full snapshot), default structural sharing | ${fmt(q.full)} | ${q.identityFull ? 'yes' : 'NO'} |`);
  console.log(`\nbinding is ${(q.full / q.binding).toFixed(1)}x less CPU per update (target >= 20x)`);
  const p = perPatch();
  console.log(`\n### Per applied patch (${ROWS} rows, 1% changing; ops already parsed)\n`);
  console.log('| applier | CPU per patch |\n|---|---:|');
  for (const [name, ms] of Object.entries(p)) console.log(`| ${name} | ${fmt(ms)} |`);
  console.log(`\n### Bundle bytes (esbuild --minify, browser, gzip -9)\n`);
  console.log('| bundle | min | min+gzip |\n|---|---:|---:|');
  for (const [name, src] of [
    ['deltacast client: ws, SSE, poll (core.js)', "export { createClient } from './lib/browser/core.js'"],
    ['deltacast/client (+ Socket.IO carrier)', "export { createClient } from './lib/browser/client.js'"],
    [`socket.io-client ${packageVersion('socket.io-client')} (io)`, "export { io } from 'socket.io-client'"],
    [`centrifuge ${packageVersion('centrifuge')} (Centrifuge)`, "export { Centrifuge } from 'centrifuge'"],
  ]) {
    const b = await bundleBytes(src, []);
    console.log(`| ${name} | ${b.min} | ${b.gzip} |`);
  }
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
