'use strict';
// Bundles a React page for the browser with esbuild, in memory, at start: no build step, no CDN,
// nothing fetched at run time. Used by the dashboard and the SSR example.

const path = require('node:path');

const lib = path.join(__dirname, '..', '..', 'lib', 'browser');

const resolveOnce = {
  name: 'deltacast-browser',
  setup(build) {
    // deltacast's browser entry points, straight from lib/browser (what the package exports).
    build.onResolve({ filter: /^deltacast\/(client|query|react)$/ }, (args) => ({ path: path.join(lib, `${args.path.slice(10)}.js`) }));
    // deltacast/react and deltacast/query are CommonJS inside (their .mjs entries wrap the .js):
    // they `require` TanStack Query, which resolves to its CommonJS build, while the app's
    // `import` would get the ES module build: two copies, two React contexts ("No QueryClient
    // set"). One copy for both: the build `require` resolves to.
    build.onResolve({ filter: /^@tanstack\/(react-query|query-core)$/ }, (args) => ({ path: require.resolve(args.path) }));
  },
};

/** Resolves with the bundled JavaScript of `entry` (a .jsx file) as a string. */
async function bundle(entry) {
  const esbuild = require('esbuild');
  const out = await esbuild.build({
    entryPoints: [entry],
    bundle: true,
    write: false,
    format: 'iife',
    platform: 'browser',
    target: ['es2020'],
    jsx: 'automatic',
    minify: true,
    legalComments: 'none',
    define: { 'process.env.NODE_ENV': '"production"' },
    plugins: [resolveOnce],
    logLevel: 'silent',
  });
  return out.outputFiles[0].text;
}

module.exports = { bundle };
