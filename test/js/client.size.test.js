'use strict';
// The browser side: lib/browser/** imports no Node built-in and nothing outside lib/browser but the
// shared patch applier (lib/apply_patch.js and the lib/errors.js it throws); and the size budget:
// the client with its ws, SSE and long-poll carriers is at most 6 KB min+gzip (esbuild, minified,
// browser platform), printed next to socket.io-client and centrifuge bundled the same way.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const zlib = require('node:zlib');
const { builtinModules } = require('node:module');
const esbuild = require('esbuild');

const root = path.resolve(__dirname, '..', '..');
const browserDir = path.join(root, 'lib', 'browser');
const BUDGET = 6 * 1024;
const PEERS = ['react', '@tanstack/query-core', '@tanstack/react-query', 'socket.io-client'];
const SHARED = ['lib/apply_patch.js', 'lib/errors.js'];

async function bundle(contents, external = []) {
  const result = await esbuild.build({
    stdin: { contents, resolveDir: root, sourcefile: 'entry.mjs', loader: 'js' },
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    write: false,
    metafile: true,
    external,
    logLevel: 'silent',
  });
  const code = result.outputFiles[0].contents;
  return { min: code.length, gzip: zlib.gzipSync(code, { level: 9 }).length, inputs: Object.keys(result.metafile.inputs) };
}

test('lib/browser imports no Node built-in and nothing outside lib/browser but the applier', async () => {
  const files = fs.readdirSync(browserDir).filter((f) => /\.m?js$/.test(f));
  assert.ok(files.length >= 6);
  const builtins = new Set(builtinModules);
  for (const f of files) {
    const text = fs.readFileSync(path.join(browserDir, f), 'utf8');
    const specifiers = [...text.matchAll(/(?:require\(\s*|\bfrom\s+|\bimport\s*\(\s*|^\s*import\s+)['"]([^'"]+)['"]/gm)].map((m) => m[1]);
    for (const s of specifiers) {
      assert.ok(!s.startsWith('node:') && !builtins.has(s), `${f} imports the Node built-in ${s}`);
      if (s.startsWith('.')) {
        const target = path.relative(root, path.resolve(browserDir, s));
        assert.ok(target.startsWith(`lib${path.sep}browser${path.sep}`) || target === path.join('lib', 'apply_patch.js'), `${f} imports ${s}`);
      } else {
        assert.ok(PEERS.includes(s), `${f} imports ${s}, not a peer dependency`);
      }
    }
  }
  // Transitively, for browsers: only lib/browser and the applier with its error class.
  for (const entry of ['client', 'query', 'react']) {
    const { inputs } = await bundle(`export * from './lib/browser/${entry}.mjs';`, PEERS);
    for (const input of inputs) {
      assert.ok(input.startsWith('lib/browser/') || input === 'entry.mjs' || SHARED.includes(input), `${entry} bundles ${input}`);
    }
  }
});

test('size budget: client with ws, SSE and long-poll carriers <= 6 KB min+gzip', async () => {
  const client = await bundle(`export { createClient } from './lib/browser/core.js';`);
  const full = await bundle(`export { createClient } from './lib/browser/client.js';`);
  const query = await bundle(`export * from './lib/browser/query.js';`, PEERS);
  const sio = await bundle(`export { io } from 'socket.io-client';`);
  const centrifuge = await bundle(`export { Centrifuge } from 'centrifuge';`);
  const row = (name, b) => `  ${name.padEnd(38)} ${String(b.min).padStart(7)} B min ${String(b.gzip).padStart(7)} B min+gzip`;
  process.stdout.write(
    `bundle sizes (esbuild --minify, browser, gzip -9):\n${row('client with ws, SSE, poll (core.js)', client)}\n` +
      `${row('deltacast/client (+ Socket.IO carrier)', full)}\n` +
      `${row('deltacast/query (+client, peers external)', query)}\n${row('socket.io-client (io)', sio)}\n${row('centrifuge (Centrifuge)', centrifuge)}\n`,
  );
  assert.ok(client.gzip <= BUDGET, `the client with ws, SSE and poll is ${client.gzip} B min+gzip, over the ${BUDGET} B budget`);
});
