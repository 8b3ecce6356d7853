'use strict';
// Bundles a React page for the browser with esbuild, in memory, at start: no build step, no CDN,
// nothing fetched at run time. Used by the dashboard and the SSR example.

const path = require('node:path');

const lib = path.join(__dirname, '..', '..', 'lib', 'browser');

const resolveOnce = {
  name: 'deltacast-browser',
  setup(build) {
    // deltacast's ES module entry points, straight from lib/browser (what the package exports for
    // `import`): they import React and TanStack Query as the app does, so one copy of each.
    build.onResolve({ filter: /^deltacast\/(client|query|react)$/ }, (args) => ({ path: path.join(lib, `${args.path.slice(10)}.mjs`) }));
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
