'use strict';
// A test harness for an app on deltacast: the pattern to copy into your own tests.
//
//   node --test examples/harness/
//
// One hub on the manual clock (time moves only when the test says so), many in-process clients
// from deltacast/testing speaking the real wire protocol (subscribe, acks, resume), and `settle`
// to deliver everything asked so far, paced lanes included. No sockets, no timers, no sleeps:
// every run is the same.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { createHub, jsonEqual } = require('deltacast');
const { createTestClient, settle, tick } = require('deltacast/testing');

/** The app under test: a price board fed by upserts, alerts on the critical lane. */
function createApp(hub) {
  let n = 0;
  return {
    async seed(rows) {
      await hub.publish('prices', Array.from({ length: rows }, (_, i) => ({ id: `p${i}`, price: 100 + i })));
    },
    reprice(id, price) {
      return hub.upsert('prices', id, { id, price });
    },
    alert(title) {
      n++;
      return hub.upsert('alerts', `a${n}`, { id: `a${n}`, title });
    },
  };
}

function setup(options = {}) {
  const hub = createHub({
    clock: 'manual',
    lanes: { prices: 'normal', alerts: 'critical' },
    permissions: { prices: [], alerts: [], 'user/{userId}/**': [] },
    ...options,
  });
  return { hub, app: createApp(hub) };
}

test('100 clients converge on the server state after a burst of changes', async (t) => {
  const { hub, app } = setup();
  t.after(() => hub.close());
  await app.seed(500);
  const clients = Array.from({ length: 100 }, (_, i) => createTestClient(hub, { user: { id: `u${i}` } }));
  for (const c of clients) c.subscribe('prices');
  await settle(hub);

  for (let k = 0; k < 300; k++) app.reprice(`p${(k * 7) % 500}`, 1000 + k);
  await settle(hub); // the normal lane's debounce runs on the manual clock: settle moves it

  const server = hub.get('prices');
  for (const c of clients) {
    const replica = c.get('prices');
    assert.equal(replica.version, server.version);
    assert.ok(jsonEqual(replica.data, server.data));
    assert.equal(c.gaps, 0);
    assert.deepEqual(c.errors, []);
  }
  // 300 changes went out as a few paced frames, not 300 per client
  const patches = clients[0].messages.filter((m) => m.t === 'patch');
  assert.ok(patches.length < 10, `${patches.length} patch frames`);
});

test('a stalled client is conflated, then catches up in one frame when it acks again', async (t) => {
  const { hub, app } = setup({ credit: { maxFrames: 2 } });
  t.after(() => hub.close());
  await app.seed(50);
  const fast = createTestClient(hub);
  const slow = createTestClient(hub);
  fast.subscribe('prices');
  slow.subscribe('prices');
  await settle(hub);
  slow.stall();
  for (let k = 0; k < 20; k++) {
    await app.reprice('p1', 200 + k);
    await tick(hub, 300, 50); // past the normal lane's max wait: one frame per change
  }
  await settle(hub);
  assert.ok(hub.stats().conflated > 0, 'the stalled client was conflated');
  assert.equal(fast.get('prices').version, hub.get('prices').version);
  assert.ok(slow.get('prices').version < hub.get('prices').version);
  slow.resume();
  await settle(hub);
  assert.equal(slow.get('prices').version, hub.get('prices').version);
  assert.ok(jsonEqual(slow.get('prices').data, hub.get('prices').data));
});

test('critical alerts are delivered without waiting for the clock', async (t) => {
  const { hub, app } = setup();
  t.after(() => hub.close());
  await hub.publish('alerts', []);
  const c = createTestClient(hub);
  c.subscribe('alerts');
  await settle(hub);
  await app.alert('Port closure');
  await settle(hub, { pacing: false }); // the clock does not move: critical goes out anyway
  assert.deepEqual(
    c.get('alerts').data.map((a) => a.title),
    ['Port closure'],
  );
});

test("a user's private topic: its owner subscribes, anyone else is refused", async (t) => {
  const { hub } = setup();
  t.after(() => hub.close());
  await hub.publish('user/alice/watchlist', { items: ['p1'] });
  const alice = createTestClient(hub, { user: { id: 'alice' } });
  const bob = createTestClient(hub, { user: { id: 'bob' } });
  alice.subscribe('user/alice/watchlist');
  bob.subscribe('user/alice/watchlist');
  await settle(hub);
  assert.deepEqual(alice.get('user/alice/watchlist').data, { items: ['p1'] });
  assert.equal(bob.get('user/alice/watchlist'), undefined);
  assert.deepEqual(
    bob.errors.map((e) => [e.code, e.topic]),
    [['DELTACAST_FORBIDDEN', 'user/alice/watchlist']],
  );
});

test('a client that reconnects resumes from its version with a patch, not a snapshot', async (t) => {
  const { hub, app } = setup();
  t.after(() => hub.close());
  await app.seed(100);
  const c = createTestClient(hub);
  c.subscribe('prices');
  await settle(hub);
  c.disconnect();
  await app.reprice('p3', 1);
  await app.reprice('p4', 2);
  await settle(hub);
  const before = c.messages.length;
  c.connect();
  c.subscribe('prices');
  await settle(hub);
  const after = c.messages.slice(before).map((m) => m.t);
  assert.ok(after.includes('patch') && !after.includes('snap'), after.join(','));
  assert.ok(jsonEqual(c.get('prices').data, hub.get('prices').data));
});
