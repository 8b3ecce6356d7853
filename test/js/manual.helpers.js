'use strict';
// Helpers for tests of a hub on the manual clock. Not part of the package.
const assert = require('node:assert/strict');

/**
 * Runs the core (advance(0), then a turn of the event loop) until `done()`
 * holds: token checks and other hooks go through JS and back. Fails after 50
 * rounds instead of hanging.
 */
async function until(hub, done, what) {
  for (let i = 0; i < 50; i++) {
    if (done()) return;
    await hub.advance(0);
    await new Promise((resolve) => setImmediate(resolve));
  }
  assert.fail(`timed out waiting for ${what}`);
}

module.exports = { until };
