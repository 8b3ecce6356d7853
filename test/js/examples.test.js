'use strict';
// Every program in examples/ runs here, the way a newcomer would run it.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const path = require('node:path');

const root = path.resolve(__dirname, '..', '..');

test('examples/live-board.js: a subscriber of a hub keeps its replica in sync tick after tick', () => {
  // 40 ticks: past the first heartbeat ping on the hub's manual clock (it once stopped the demo at tick 24)
  const out = execFileSync(process.execPath, ['examples/live-board.js', '--ticks=40', '--interval=1'], {
    cwd: root,
    encoding: 'utf8',
    timeout: 30_000,
  });
  const ticks = out.split('\n').filter((line) => /^tick +\d+:/.test(line));
  assert.equal(ticks.length, 40, out);
  for (const line of ticks) {
    assert.match(line, /replica in sync$/);
    const [, smaller] = line.match(/\((\d+)x smaller\)/);
    assert.ok(Number(smaller) > 20, `a 1% tick should be far smaller than the board: ${line}`);
  }
  // tick 3 lists one row and delists another: one add, one remove
  assert.match(ticks[2], /1 remove, 1 add/);
  assert.match(out, /40 ticks: [\d.]+ KB of patches instead of [\d.]+ KB of snapshots/);
});

test('examples/auth/jwt.js: JWT (HS256, RS256) over Socket.IO, ws and HTTP; a refresh before expiry, an expiry closing with 4003', () => {
  const out = execFileSync(process.execPath, ['examples/auth/jwt.js'], { cwd: root, encoding: 'utf8', timeout: 60_000 });
  assert.match(out, /socket\.io HS256: snapshot of ops\/status at version 1\n/);
  assert.match(out, /socket\.io HS256: refreshed before expiry, still live at version 2\n/);
  assert.match(out, /ws RS256 \(subprotocol\): open, protocol deltacast\n/);
  assert.match(out, /ws RS256 \(subprotocol\): closed with 4003 when the token expired\n/);
  assert.match(out, /ws RS256 \(cookie\): open\n/);
  assert.match(out, /http Bearer: 200 snap version 2\n/);
  assert.match(out, /http without a token: 401 DELTACAST_UNAUTHORIZED\n/);
  assert.match(out, /audit: connect sub auth .*expired:4003 close:4003 .*refused/);
  assert.match(out, /audit events hold no token\n/);
});
