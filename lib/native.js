'use strict';
// Loads the native addon built by `npm install` (scripts/build.js).
// DELTACAST_ADDON=/path/to/deltacast.node picks another build (the sanitizer
// build in CI, for instance).

const path = require('node:path');
const { DeltacastError, fromNative } = require('./errors');

const root = path.resolve(__dirname, '..');
const candidates = process.env.DELTACAST_ADDON
  ? [path.resolve(process.env.DELTACAST_ADDON)]
  : [path.join(root, 'build', 'Release', 'deltacast.node'), path.join(root, 'build', 'Debug', 'deltacast.node')];

function load() {
  const failures = [];
  for (const file of candidates) {
    try {
      return require(file);
    } catch (err) {
      failures.push(`${file}: ${err.message.split('\n')[0]}`);
    }
  }
  throw new DeltacastError(
    'DELTACAST_NOT_BUILT',
    'the deltacast native addon could not be loaded; build it with `npm run build` ' +
      '(or reinstall deltacast). Tried:\n  ' + failures.join('\n  '),
  );
}

const addon = load();

/** Calls into the addon, turning its errors into DeltacastErrors. */
function call(fn, ...args) {
  try {
    return fn(...args);
  } catch (err) {
    throw fromNative(err);
  }
}

module.exports = {
  diffJson: (a, b, arrayKey) => call(addon.diffJson, a, b, arrayKey),
  /** diffJson on libuv's thread pool: a promise of the patch text, rejected with a DeltacastError. */
  diffJsonAsync: (a, b, arrayKey) =>
    call(addon.diffJsonAsync, a, b, arrayKey).catch((err) => {
      throw fromNative(err);
    }),
  applyPatchJson: (doc, ops, maxOps) => call(addon.applyPatchJson, doc, ops, maxOps),
  NativeHub: addon.NativeHub,
};
