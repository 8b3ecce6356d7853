'use strict';
/* global window -- the callbacks of page.evaluate run in the browser */
// examples/ssr in chromium: the server's markup is hydrated, and the page goes live from the
// dehydrated (epoch, version) with patches only: no `snap` frame after hydration.

const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { skip, launch, until } = require('./helpers.js');

describe('examples/ssr in chromium', { skip, timeout: 90_000 }, () => {
  let ssr;
  let browser;
  before(async () => {
    const { startSsr } = require('../../examples/ssr/server.js');
    ssr = await startSsr({ port: 0 });
    browser = await launch();
  });
  after(async () => {
    if (browser) await browser.close();
    if (ssr) await ssr.close();
  });

  test('the page hydrates the server render and resumes with patches, no snapshot frame', async () => {
    const page = await browser.newPage();
    const frames = [];
    const problems = [];
    page.on('websocket', (ws) => ws.on('framereceived', (f) => frames.push(String(f.payload))));
    page.on('console', (m) => m.type() === 'error' && problems.push(m.text()));
    page.on('pageerror', (e) => problems.push(e.message));
    await page.goto(ssr.url, { timeout: 15_000 });
    const rendered = await page.evaluate(() => window.__DELTACAST__.prices.version);
    await until(() => page.evaluate(() => window.__client.status === 'open'), 'the client open');
    await until(() => page.evaluate((v) => window.__client.get('prices').version > v, rendered), 'a newer version than the server render', 10_000);
    await until(async () => (await page.textContent('[data-testid=meta]')).includes('open'), 'the hydrated page to show the live status');
    assert.ok(frames.length > 0);
    assert.ok(frames.some((f) => f.includes('"t":"patch"')), 'patches arrived');
    assert.deepEqual(
      frames.filter((f) => f.includes('"t":"snap"')),
      [],
      'no snapshot frame after hydration',
    );
    assert.deepEqual(problems, [], 'no hydration mismatch, no error');
  });
});
