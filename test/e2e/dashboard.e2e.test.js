'use strict';
/* global window, document, MutationObserver -- the callbacks of page.evaluate run in the browser */
// The dashboard (examples/dashboard) in a real browser: chromium, headless, driven by
// playwright-core, against the server started in this process (so the test can read the hub).

const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { skip, launch, screenshot, until } = require('./helpers.js');

const SECRET = 'e2e-only-secret-of-32-bytes-or-more!';
const fmt = (n) => n.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });

describe('examples/dashboard in chromium', { skip, timeout: 180_000 }, () => {
  let dash;
  let browser;
  let alice; // the page of the first context, logged in as alice (the default)
  const wsFrames = []; // every WebSocket frame alice's page receives: { at, prices }

  before(async () => {
    const { startDashboard } = require('../../examples/dashboard/server.js');
    dash = await startDashboard({ port: 0, failRate: 0, actionDelayMs: 300, secret: SECRET });
    browser = await launch();
  });
  after(async () => {
    if (browser) await browser.close();
    if (dash) await dash.close();
  });

  /** The rendered price rows: [{ id, price }] (only the visible ones exist: the table is virtualized). */
  const rendered = (page) =>
    page.$$eval('[data-testid=price-row]', (rows) => rows.map((r) => ({ id: r.dataset.id, price: r.querySelector('[data-testid=price]').textContent })));
  const status = (page) => page.getAttribute('[data-testid=status]', 'data-status');
  const version = (page) => page.evaluate(() => window.__dashboard.client.get('prices')?.version);

  /** Pauses the feeds, waits until the page holds the hub's version, compares what it shows. */
  async function sameAsServer(page) {
    dash.simulator.pause();
    try {
      // changes already asked for are still being applied: wait for the hub to be idle
      await until(() => dash.hub.stats().pending === 0, 'the hub to apply the last changes');
      await new Promise((r) => setTimeout(r, 100));
      const held = dash.hub.get('prices');
      await until(async () => (await version(page)) === held.version, `the page to reach prices v${held.version}`, 20_000);
      const res = await fetch(`${dash.url}/deltacast/topics/prices`);
      const served = await res.json();
      assert.equal(served.version, held.version);
      const byId = new Map(served.data.map((r) => [r.id, r]));
      await until(async () => {
        const rows = await rendered(page);
        return rows.length > 10 && rows.every((r) => fmt(byId.get(r.id).price) === r.price);
      }, 'the rendered prices to equal GET /deltacast/topics/prices');
      const rows = await rendered(page);
      for (const r of rows) assert.equal(r.price, fmt(byId.get(r.id).price), r.id);
      return rows.length;
    } finally {
      dash.simulator.resume();
    }
  }

  test('the page loads: skeletons, then rows (only the visible ones), status open, cells that change', async () => {
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    alice = await context.newPage();
    // Records, from the first DOM node on, whether skeletons showed before the first price row.
    await alice.addInitScript(() => {
      window.__seen = [];
      new MutationObserver(() => {
        const s = document.querySelector('[data-testid=skeleton]') ? 'skeleton' : null;
        const r = document.querySelector('[data-testid=price-row]') ? 'rows' : null;
        for (const x of [s, r]) if (x && !window.__seen.includes(x)) window.__seen.push(x);
      }).observe(document, { childList: true, subtree: true });
    });
    const errors = [];
    alice.on('pageerror', (e) => errors.push(e));
    alice.on('websocket', (ws) => ws.on('framereceived', (f) => wsFrames.push({ at: Date.now(), prices: String(f.payload).includes('"topic":"prices"') })));
    await alice.goto(`${dash.url}/?hiddenMs=1000`, { timeout: 15_000 });
    await alice.waitForSelector('[data-testid=price-row]', { timeout: 15_000 });
    assert.deepEqual(await alice.evaluate(() => window.__seen.slice(0, 2)), ['skeleton', 'rows']);
    await until(async () => (await status(alice)) === 'open', 'status open');
    const rows = await rendered(alice);
    assert.ok(rows.length > 10 && rows.length < 60, `a virtualized table renders the visible rows only, not 5,000: ${rows.length}`);
    // prices change within a second or two (hundreds of changes a second over 5,000 rows)
    const before = await version(alice);
    await until(async () => (await version(alice)) > before, 'a newer prices version', 3_000);
    await alice.evaluate(() => document.querySelector('[data-testid=board]').scrollTo(0, 28 * 2000));
    await until(async () => (await rendered(alice)).some((r) => r.id === 'p2001'), 'scrolled rows to render');
    await alice.evaluate(() => document.querySelector('[data-testid=board]').scrollTo(0, 0));
    await until(async () => (await rendered(alice)).some((r) => r.id === 'p0001'), 'the first rows again');
    // a visible row changes on the server: its price cell shows the new value, highlighted
    const row = dash.hub.get('prices').data.find((r) => r.id === 'p0005');
    const price = Math.round((row.price + 1.01) * 100) / 100;
    await dash.hub.upsert('prices', 'p0005', { ...row, price, trend: [...row.trend.slice(1), price], ts: Date.now() });
    const cell = '[data-testid=price-row][data-id="p0005"] [data-testid=price]';
    await until(async () => (await alice.textContent(cell)) === fmt(price), 'the new price shown', 5_000);
    assert.match(await alice.getAttribute(cell, 'class'), /\bflash-up\b/);
    await until(async () => Number(await alice.textContent('[data-testid=rate]')) > 0, 'updates per second shown');
    await until(async () => /ms$/.test(await alice.textContent('[data-testid=latency]')), 'the latency shown');
    await sameAsServer(alice);
    await screenshot(alice, 'dashboard');
    assert.deepEqual(errors, []);
  });

  test('the same page over Socket.IO (?transport=socket.io)', async () => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await page.goto(`${dash.url}/?transport=socket.io`, { timeout: 15_000 });
      await page.waitForSelector('[data-testid=price-row]', { timeout: 15_000 });
      await until(async () => (await status(page)) === 'open', 'status open');
      assert.equal(await page.evaluate(() => window.__dashboard.client.carrier), 'socket.io');
      const v = await version(page);
      await until(async () => (await version(page)) > v, 'updates over Socket.IO', 10_000);
    } finally {
      await context.close();
    }
  });

  test('a critical alert arrives as a toast', async () => {
    await dash.simulator.alert({ severity: 'critical', title: 'E2E port closure' });
    const toast = await alice.waitForSelector('[data-testid=toast]:has-text("E2E port closure")', { timeout: 5_000 });
    assert.equal(await toast.getAttribute('data-kind'), 'critical');
  });

  test('network loss: reconnecting/polling banner, then open again with the server\'s data and no version skipped', async () => {
    // Every prices change the page applies, from now on: patches must follow each other.
    await alice.evaluate(() => {
      window.__changes = [];
      window.__resets = [];
      const c = window.__dashboard.client;
      c.on('change', (t, d, info) => t === 'prices' && window.__changes.push({ from: info.from, version: info.version, epoch: info.epoch }));
      c.on('reset', (r) => window.__resets.push(r));
      window.__statuses = [];
      c.on('status', (s) => window.__statuses.push(s));
    });
    await alice.click('[data-testid=network-loss]');
    const banner = await alice.waitForSelector('[data-testid=banner]', { timeout: 5_000 });
    assert.match(await banner.getAttribute('data-status'), /^(reconnecting|polling)$/);
    // the sockets are refused for 8 s: the client falls back to SSE ('polling') and keeps updating
    await until(async () => (await status(alice)) === 'polling', 'status polling (SSE fallback)', 8_000);
    assert.match(await alice.textContent('[data-testid=banner]'), /Server-Sent Events|long-polling/);
    const during = await version(alice);
    await until(async () => (await version(alice)) > during, 'updates while polling', 5_000);
    await screenshot(alice, 'dashboard-polling');
    // back on the WebSocket once the upgrades are accepted again (probe every 2 s)
    await until(async () => (await status(alice)) === 'open', 'status open again', 20_000, 100);
    assert.equal(await alice.$('[data-testid=banner]'), null);
    await sameAsServer(alice);
    const { changes, resets, statuses } = await alice.evaluate(() => ({ changes: window.__changes, resets: window.__resets, statuses: window.__statuses }));
    assert.ok(statuses.includes('reconnecting') && statuses.includes('polling') && statuses.at(-1) === 'open', statuses.join(','));
    assert.deepEqual(resets, [], 'no gap, no new epoch, no failed patch');
    assert.ok(changes.length >= 3, `${changes.length} changes`);
    for (let i = 1; i < changes.length; i++) {
      const [a, b] = [changes[i - 1], changes[i]];
      assert.equal(b.epoch, a.epoch);
      if (b.from !== undefined) assert.equal(b.from, a.version, `patch ${b.from}->${b.version} after v${a.version}`);
      else assert.ok(b.version > a.version, `a snapshot v${b.version} after v${a.version}`);
    }
  });

  test('two users: each sees their own watchlist and is refused the other\'s', async () => {
    const ids = (page) => page.$$eval('[data-testid=watchlist] li[data-id]', (li) => li.map((l) => l.dataset.id));
    await until(async () => (await ids(alice)).includes('p0001'), "alice's watchlist");
    assert.deepEqual((await ids(alice)).slice(0, 3), ['p0001', 'p0003', 'p0027']);
    await alice.click('[data-testid=peek]');
    await until(async () => /refused: DELTACAST_FORBIDDEN/.test((await alice.textContent('[data-testid=peek-result]')) || ''), "alice refused bob's watchlist");

    const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    try {
      const bob = await context.newPage();
      await bob.goto(dash.url, { timeout: 15_000 });
      await bob.click('[data-testid=login-bob]', { timeout: 15_000 });
      await until(async () => (await ids(bob).catch(() => [])).includes('p0152'), "bob's watchlist", 15_000);
      assert.deepEqual((await ids(bob)).slice(0, 3), ['p0152', 'p0160', 'p0178']);
      assert.ok(!(await ids(bob)).includes('p0001'));
      await bob.click('[data-testid=peek]');
      await until(async () => /refused: DELTACAST_FORBIDDEN/.test((await bob.textContent('[data-testid=peek-result]')) || ''), "bob refused alice's watchlist");
      // and over plain HTTP, with bob's cookie: 403 for alice's topic
      const res = await bob.evaluate(() => fetch('/deltacast/topics/user%2Falice%2Fwatchlist').then(async (r) => ({ status: r.status, body: await r.json() })));
      assert.equal(res.status, 403);
      assert.equal(res.body.code, 'DELTACAST_FORBIDDEN');
    } finally {
      await context.close();
    }
  });

  test('an optimistic add shows at once and rolls back when the server call fails', async () => {
    const item = (page, id) => page.$(`[data-testid=watchlist] li[data-id="${id}"]`);
    await alice.evaluate(() => document.querySelector('[data-testid=board]').scrollTo(0, 0));
    const row = '[data-testid=price-row][data-id="p0002"] [data-testid=watch]';
    await alice.waitForSelector(row, { timeout: 5_000 });
    assert.equal(await item(alice, 'p0002'), null);
    dash.failNext(1);
    await alice.click(row);
    const pending = await alice.waitForSelector('[data-testid=watchlist] li[data-id="p0002"][data-pending=true]', { timeout: 2_000 });
    assert.ok(pending, 'shown before the server answered');
    await alice.waitForSelector('[data-testid=toast][data-kind=rollback]', { timeout: 5_000 });
    await until(async () => (await item(alice, 'p0002')) === null, 'the rolled-back item gone');
    assert.ok(!dash.hub.get('user/alice/watchlist').data.items.some((i) => i.id === 'p0002'));
    // the same action succeeding: it stays, confirmed by the server's version
    await alice.click(row);
    await alice.waitForSelector('[data-testid=watchlist] li[data-id="p0002"]:not([data-pending])', { timeout: 5_000 });
    assert.ok(dash.hub.get('user/alice/watchlist').data.items.some((i) => i.id === 'p0002'));
    await screenshot(alice, 'dashboard-watchlist');
  });

  test('a hidden tab pauses its non-critical topics and catches up with a patch when shown again', async () => {
    const setVisibility = (state) =>
      alice.evaluate((s) => {
        Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => s });
        document.dispatchEvent(new Event('visibilitychange'));
      }, state);
    const topicState = (topic) => alice.evaluate((t) => window.__dashboard.client.topicStatus(t).status, topic);
    await setVisibility('hidden');
    // after hiddenMs (1 s here): prices unsubscribed (stale), the critical topics stay live
    await until(async () => (await topicState('prices')) === 'stale', 'prices paused', 10_000);
    assert.equal(await topicState('alerts'), 'live');
    assert.equal(await topicState('user/alice/watchlist'), 'live');
    await new Promise((r) => setTimeout(r, 300)); // frames already on their way
    const t0 = Date.now();
    const hiddenAt = await version(alice);
    await until(() => dash.hub.get('prices').version > hiddenAt + 20, 'the server to move on', 10_000);
    await new Promise((r) => setTimeout(r, 500));
    const t1 = Date.now();
    assert.deepEqual(
      wsFrames.filter((f) => f.prices && f.at >= t0 && f.at <= t1),
      [],
      'no prices frame on the socket while hidden',
    );
    // (deltacast/query refetches a topic that stops being live over HTTP once, so the version
    // held may have moved since hiddenAt: the catch-up starts from whatever the page holds.)
    const held = await version(alice);
    await alice.evaluate(() => {
      window.__caughtUp = [];
      window.__dashboard.client.on('change', (t, d, info) => t === 'prices' && window.__caughtUp.push({ from: info.from, version: info.version }));
    });
    await setVisibility('visible');
    await until(async () => (await topicState('prices')) === 'live', 'prices live again');
    await until(() => alice.evaluate(() => window.__caughtUp.length > 0), 'the catch-up frame', 10_000);
    const first = await alice.evaluate(() => window.__caughtUp[0]);
    assert.equal(first.from, held, `a patch from the version held while hidden (v${held}), not a snapshot: ${JSON.stringify(first)}`);
    await sameAsServer(alice);
  });

  test('the server restarted under the page: it comes back without a reload', async () => {
    await alice.evaluate(() => (window.__sameDocument = true));
    const port = dash.port;
    const oldEpoch = dash.hub.get('prices').epoch;
    await dash.close();
    dash = null;
    await until(async () => /^(reconnecting|connecting)$/.test(await status(alice)), 'the page to notice', 10_000);
    await until(async () => (await alice.$('[data-testid=banner]')) !== null, 'the banner');
    const { startDashboard } = require('../../examples/dashboard/server.js');
    dash = await startDashboard({ port, failRate: 0, actionDelayMs: 300, secret: SECRET });
    assert.notEqual(dash.hub.get('prices').epoch, oldEpoch, 'a new hub: a new epoch');
    await until(async () => (await status(alice)) === 'open', 'status open again', 30_000, 100);
    assert.equal(await alice.evaluate(() => window.__sameDocument), true, 'no reload');
    await until(() => alice.evaluate((e) => window.__dashboard.client.get('prices')?.epoch === e, dash.hub.get('prices').epoch), 'the new epoch');
    await sameAsServer(alice);
    // the cookie still holds (same key): alice's watchlist is live again
    await until(() => alice.evaluate(() => window.__dashboard.client.topicStatus('user/alice/watchlist').status === 'live'), "alice's watchlist live");
  });
});
