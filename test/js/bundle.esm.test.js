'use strict';
// An app that imports @tanstack/react-query itself and deltacast/react + deltacast/query, all as ES
// modules, bundled by esbuild for the browser: one copy of TanStack Query in the bundle (two copies
// are two QueryClient contexts, and the page fails with "No QueryClient set").
const { test } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const esbuild = require('esbuild');

const root = path.resolve(__dirname, '..', '..');
const pkg = require('../../package.json');

// deltacast/* resolves as the package's `exports` say for `import` (what an installed app gets).
const self = {
  name: 'deltacast-self',
  setup(build) {
    build.onResolve({ filter: /^deltacast\/(client|query|react)$/ }, (args) => {
      const entry = pkg.exports[`./${args.path.slice('deltacast/'.length)}`];
      return { path: path.join(root, entry.import) };
    });
  },
};

test('an ESM app bundles one copy of @tanstack/query-core and @tanstack/react-query', async () => {
  const app = `
    import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
    import { RealtimeProvider, useRealtimeQuery } from 'deltacast/react';
    import { bindQueryClient } from 'deltacast/query';
    export { QueryClient, QueryClientProvider, RealtimeProvider, useRealtimeQuery, bindQueryClient };
  `;
  const result = await esbuild.build({
    stdin: { contents: app, resolveDir: root, sourcefile: 'app.mjs', loader: 'js' },
    bundle: true,
    format: 'esm',
    platform: 'browser',
    write: false,
    metafile: true,
    plugins: [self],
    define: { 'process.env.NODE_ENV': '"production"' },
    logLevel: 'silent',
  });
  const inputs = Object.keys(result.metafile.inputs);
  // Each build of query-core has its own queryClient.{js,cjs} module, react-query its QueryClientProvider.
  const core = inputs.filter((i) => /node_modules\/@tanstack\/query-core\/.*\/queryClient\.c?js$/.test(i));
  const provider = inputs.filter((i) => /node_modules\/@tanstack\/react-query\/.*\/QueryClientProvider\.c?js$/.test(i));
  assert.equal(core.length, 1, `query-core bundled ${core.length} times: ${core.join(', ')}`);
  assert.equal(provider.length, 1, `react-query bundled ${provider.length} times: ${provider.join(', ')}`);
  // And in the code: one useQueryClient, so one context for the provider and deltacast's hooks.
  const text = result.outputFiles[0].text;
  assert.equal(text.split('No QueryClient set').length - 1, 1);
});
