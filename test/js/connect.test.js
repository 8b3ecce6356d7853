'use strict';
// hub.connect and deltacast/testing: subscriptions, resume, permissions, bad
// client messages, and convergence of many in-process clients.

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const { createHub, codes } = require('../../lib/index.js');
const { createTestClient, settle, tick } = require('../../lib/testing.js');

// settle() without waiting out pacing windows: for tests that time the clock themselves.
const STILL = { pacing: false };

// n rows; row `tickAt` (if any) gets price 1000 + `price`, every other row its index.
function board(n, tickAt = -1, price = 0) {
  return Array.from({ length: n }, (_, i) => ({
    id: `r${i}`,
    name: `material ${i} with a name long enough to matter`,
    price: i === tickAt ? 1000 + price : i,
  }));
}

// Every topic on the critical lane unless a test says otherwise: a change is
// delivered as soon as it is made, so `settle` is enough.
function manualHub(t, options = {}) {
  const hub = createHub({ clock: 'manual', lanes: { '**': 'critical' }, ...options });
  t.after(() => hub.close());
  return hub;
}

describe('subscriptions', () => {
  it('a subscriber gets a snapshot, then one patch per change', async (t) => {
    const hub = manualHub(t);
    await hub.publish('prices', board(20));
    const client = createTestClient(hub);
    client.subscribe('prices');
    await settle(hub);
    assert.equal(client.messages.length, 1);
    assert.equal(client.messages[0].t, 'snap');
    await hub.publish('prices', board(20, 5, 99));
    await settle(hub);
    assert.equal(client.messages.length, 2);
    assert.deepEqual(client.messages[1].ops, [{ op: 'replace', path: '/5/price', value: 1099 }]);
    assert.deepEqual(client.get('prices'), hub.get('prices'));
  });

  it('every subscriber at the same version gets the same frame text', async (t) => {
    const hub = manualHub(t);
    await hub.publish('t', board(10));
    const frames = [];
    for (let i = 0; i < 5; i++) {
      const connection = hub.connect({ send: (frame) => frames.push(frame) });
      connection.receive('{"t":"sub","topic":"t"}');
    }
    await settle(hub);
    frames.length = 0;
    await hub.publish('t', board(10, 3, 7));
    await settle(hub);
    assert.equal(frames.length, 5);
    assert.equal(new Set(frames).size, 1);
    // the five initial snapshots: encoded once, then served from the cache
    assert.equal(hub.stats().snapshotFramesBuilt, 1);
    assert.equal(hub.stats().snapshotFramesReused, 4);
  });

  it('a subscription made before the topic exists gets its first version', async (t) => {
    const hub = manualHub(t);
    const client = createTestClient(hub);
    client.subscribe('later');
    await settle(hub);
    assert.equal(client.messages.length, 0);
    await hub.publish('later', { ok: true });
    await settle(hub);
    assert.deepEqual(client.get('later').data, { ok: true });
  });

  it('resumes after a reconnect: missed patches from the history, a snapshot when out of it', async (t) => {
    const hub = manualHub(t, { history: { maxCount: 3 } });
    await hub.publish('t', board(30));
    const client = createTestClient(hub);
    client.subscribe('t');
    await settle(hub);
    client.disconnect();
    await hub.publish('t', board(30, 1, 100));
    await hub.publish('t', board(30, 2, 200));
    client.connect();
    await settle(hub);
    const resumed = client.messages.at(-1);
    assert.equal(resumed.t, 'patch');
    assert.equal(resumed.from, 1);
    assert.equal(resumed.to, 3);
    assert.deepEqual(client.get('t'), hub.get('t'));

    client.disconnect();
    for (let i = 0; i < 5; i++) await hub.publish('t', board(30, 4, i));
    client.connect();
    await settle(hub);
    assert.equal(client.messages.at(-1).t, 'snap');
    assert.deepEqual(client.get('t'), hub.get('t'));
  });

  it('a topic that comes back under a new epoch is sent as a snapshot', async (t) => {
    const hub = manualHub(t);
    await hub.publish('t', [1, 2, 3]);
    const client = createTestClient(hub);
    client.subscribe('t');
    await settle(hub);
    const before = client.get('t').epoch;
    await hub.delete('t');
    await hub.publish('t', [4]);
    await settle(hub);
    assert.equal(client.messages.at(-1).t, 'snap');
    assert.notEqual(client.get('t').epoch, before);
    assert.deepEqual(client.get('t').data, [4]);
  });

  it('subscribers hear when their topic is deleted, expires or is evicted; it comes back as a snapshot', async (t) => {
    const hub = manualHub(t, { ttl: { 'tmp/*': 1000 }, memory: { maxBytes: 60 * 1024 } });
    await hub.publish('d', { a: 1 });
    await hub.publish('tmp/x', { b: 1 });
    await hub.publish('old', board(20));
    const client = createTestClient(hub);
    for (const topic of ['d', 'tmp/x', 'old']) client.subscribe(topic);
    await settle(hub, STILL);
    const epoch = client.get('d').epoch;

    assert.equal(await hub.delete('d'), true);
    await settle(hub, STILL);
    assert.deepEqual(client.messages.at(-1), { t: 'gone', topic: 'd', epoch, version: 1, reason: 'deleted' });
    assert.equal(client.get('d'), undefined);

    await hub.advance(1000);
    assert.equal(client.messages.at(-1).reason, 'expired');
    assert.equal(client.get('tmp/x'), undefined);

    // A big new topic pushes the least recently written one out of the budget.
    await hub.publish('fresh', board(200));
    await settle(hub, STILL);
    assert.deepEqual(
      client.messages.filter((m) => m.t === 'gone').map((m) => [m.topic, m.reason]),
      [['d', 'deleted'], ['tmp/x', 'expired'], ['old', 'evicted']],
    );
    assert.equal(hub.stats().goneSent, 3);
    assert.deepEqual(client.errors, []);

    await hub.publish('d', { a: 2 });
    await settle(hub, STILL);
    const back = client.messages.at(-1);
    assert.equal(back.t, 'snap');
    assert.notEqual(back.epoch, epoch);
    assert.deepEqual(client.get('d'), hub.get('d'));
  });

  it('unsubscribe and close stop delivery', async (t) => {
    const hub = manualHub(t);
    await hub.publish('t', board(5));
    const a = createTestClient(hub);
    const b = createTestClient(hub);
    a.subscribe('t');
    b.subscribe('t');
    await settle(hub);
    a.unsubscribe('t');
    b.disconnect();
    await hub.publish('t', board(5, 1, 1));
    await settle(hub);
    assert.equal(a.messages.length, 1);
    assert.equal(b.messages.length, 1);
  });
});

describe('permissions', () => {
  it('refuses what no rule admits, and scopes user topics to their user', async (t) => {
    const hub = manualHub(t, { permissions: { 'public/*': [], 'admin/**': ['admin'], 'user/{userId}/**': [] } });
    await hub.publish('public/a', 1);
    await hub.publish('admin/x', 2);
    await hub.publish('user/alice/orders', 3);
    const alice = createTestClient(hub, { user: { id: 'alice', roles: ['trader'] } });
    const admin = createTestClient(hub, { user: { id: 'root', roles: ['admin'] } });
    for (const topic of ['public/a', 'admin/x', 'user/alice/orders', 'secret']) {
      alice.subscribe(topic);
      admin.subscribe(topic);
    }
    await settle(hub);
    assert.equal(alice.get('public/a').data, 1);
    assert.equal(alice.get('user/alice/orders').data, 3);
    assert.equal(alice.get('admin/x'), undefined);
    assert.deepEqual(alice.errors.map((e) => [e.code, e.topic]).sort(), [
      ['DELTACAST_FORBIDDEN', 'admin/x'],
      ['DELTACAST_FORBIDDEN', 'secret'],
    ]);
    assert.equal(admin.get('admin/x').data, 2);
    assert.equal(admin.get('user/alice/orders'), undefined);
  });

  it('rejects bad permissions and transports at once', (t) => {
    assert.throws(() => createHub({ permissions: { a: 'admin' } }), { code: codes.INVALID_ARGUMENT });
    const hub = manualHub(t);
    assert.throws(() => hub.connect({}), { code: codes.INVALID_ARGUMENT });
    assert.throws(() => hub.connect({ send() {}, user: { roles: 'admin' } }), { code: codes.INVALID_ARGUMENT });
  });
});

describe('bad client messages', () => {
  it('each gets an err frame with a stable code; the connection and the others go on', async (t) => {
    const hub = manualHub(t, { limits: { maxSubscriptions: 2, maxMessageBytes: 1024 } });
    await hub.publish('t', board(5));
    const bad = createTestClient(hub);
    const good = createTestClient(hub);
    good.subscribe('t');
    bad.subscribe('t');
    await settle(hub);
    const cases = [
      ['not json', 'DELTACAST_INVALID_MESSAGE'],
      ['[]', 'DELTACAST_INVALID_MESSAGE'],
      ['{"t":"sub"}', 'DELTACAST_INVALID_MESSAGE'],
      ['{"t":"sub","topic":5}', 'DELTACAST_INVALID_MESSAGE'],
      ['{"t":"sub","topic":""}', 'DELTACAST_INVALID_TOPIC'],
      ['{"t":"fly","topic":"t"}', 'DELTACAST_UNKNOWN_MESSAGE'],
      ['{"t":"sub","topic":"t","epoch":"e"}', 'DELTACAST_INVALID_MESSAGE'],
      ['{"t":"ack","topic":"t","version":42}', 'DELTACAST_INVALID_ACK'],
      ['{"t":"ack","topic":"other","version":1}', 'DELTACAST_INVALID_ACK'],
      [JSON.stringify({ t: 'sub', topic: 't', pad: 'x'.repeat(2000) }), 'DELTACAST_MESSAGE_TOO_LARGE'],
    ];
    for (const [message, code] of cases) {
      bad.send(message);
      await settle(hub);
      assert.equal(bad.errors.at(-1)?.code, code, message.slice(0, 60));
    }
    bad.subscribe('u1');
    bad.subscribe('u2');
    await settle(hub);
    assert.equal(bad.errors.at(-1).code, 'DELTACAST_TOO_MANY_SUBSCRIPTIONS');
    await hub.publish('t', board(5, 2, 50));
    await settle(hub);
    assert.deepEqual(bad.get('t'), hub.get('t'));
    assert.deepEqual(good.get('t'), hub.get('t'));
    assert.equal(good.errors.length, 0);
  });

  it('a transport whose send throws loses its connection, nothing else', async (t) => {
    const hub = manualHub(t);
    await hub.publish('t', [1]);
    let closedWith = null;
    const broken = hub.connect({
      send() {
        throw new Error('socket gone');
      },
      close(code, reason) {
        closedWith = [code, reason];
      },
    });
    broken.receive('{"t":"sub","topic":"t"}');
    const good = createTestClient(hub);
    good.subscribe('t');
    await settle(hub);
    assert.deepEqual(closedWith, [1011, 'transport send failed']);
    await hub.publish('t', [1, 2]);
    await settle(hub);
    assert.deepEqual(good.get('t').data, [1, 2]);
  });
});

describe('protocol details', () => {
  it('members a message type does not use are ignored, whatever they hold', async (t) => {
    const hub = manualHub(t);
    const frames = [];
    const connection = hub.connect({ send: (frame) => frames.push(JSON.parse(frame)) });
    connection.receive('{"t":"pong","topic":5}');
    connection.receive('{"t":"pong","version":"x","epoch":[]}');
    await settle(hub);
    assert.deepEqual(frames, []);
  });

  it('a topic with an escaped lone surrogate is refused, as publish refuses it', async (t) => {
    const hub = manualHub(t);
    await hub.publish('a\uFFFDb', [1]);
    await assert.rejects(hub.publish('a\uD800b', [1]), { code: 'DELTACAST_INVALID_TOPIC' });
    const frames = [];
    const connection = hub.connect({ send: (frame) => frames.push(JSON.parse(frame)) });
    connection.receive(String.raw`{"t":"sub","topic":"a\ud800b"}`);
    connection.receive(String.raw`{"t":"sub","topic":"a\udfffb"}`);
    await settle(hub);
    assert.deepEqual(
      frames.map((f) => [f.t, f.code]),
      [
        ['err', 'DELTACAST_INVALID_TOPIC'],
        ['err', 'DELTACAST_INVALID_TOPIC'],
      ],
    );
    assert.equal(hub.stats().subscriptions, 0);
  });

  it("the hub's calls refuse exactly the topic names the core refuses a subscriber", async (t) => {
    // lib/hub.js checks names itself (get, getJson and delete never reach the
    // core's change path); the core checks them for subscribers. One rule.
    const hub = manualHub(t, { limits: { maxTopicLength: 12 } });
    const names = [
      'ok', 'a/b/c', 'x'.repeat(12), 'x'.repeat(13), 'é'.repeat(6), 'é'.repeat(7), '€€€€', '€€€€x', '😀😀😀', '😀😀😀😀',
      'a\u001fb', 'a\u0020b', 'a~b', 'a\u007fb', 'a\u0080b', 'a\u009fb', 'a\u00a0b', 'a\u2028b', 'a\ufffeb',
      'a\u0000', '\t', ' ', 'a\ud83db', '\ude00', '\ud83d\ude00',
    ];
    // One connection a name: an err frame does not name the topic.
    const coreRefused = new Set();
    for (const name of names) {
      const connection = hub.connect({
        send: (frame) => JSON.parse(frame).code === 'DELTACAST_INVALID_TOPIC' && coreRefused.add(name),
      });
      connection.receive(JSON.stringify({ t: 'sub', topic: name }));
    }
    await settle(hub);
    let refusedCount = 0;
    for (const name of names) {
      let code = null;
      try {
        hub.get(name);
      } catch (err) {
        code = err.code;
      }
      const refused = code !== null;
      refusedCount += refused ? 1 : 0;
      assert.equal(refused, coreRefused.has(name), `${JSON.stringify(name)}: hub.get ${code ?? 'took it'}`);
      if (refused) assert.equal(code, 'DELTACAST_INVALID_TOPIC');
    }
    assert.equal(refusedCount, 12, 'the corpus has names on both sides of every rule');
  });

  it('a text message with a raw lone surrogate is refused, not read as U+FFFD', async (t) => {
    // Encoding it to UTF-8 would have turned the surrogate into U+FFFD: a `sub`
    // of "\ud800" became a subscription to "\ufffd", and got its data.
    const hub = manualHub(t);
    await hub.publish('\ufffd', [1]);
    const frames = [];
    const connection = hub.connect({ send: (frame) => frames.push(JSON.parse(frame)) });
    connection.receive('{"t":"sub","topic":"\ud800"}');
    connection.receive('{"t":"sub","topic":"a\udc00b"}');
    await settle(hub);
    assert.deepEqual(
      frames.map((f) => [f.t, f.code]),
      [
        ['err', 'DELTACAST_INVALID_MESSAGE'],
        ['err', 'DELTACAST_INVALID_MESSAGE'],
      ],
    );
    assert.match(frames[0].message, /lone surrogate/);
    assert.equal(hub.stats().subscriptions, 0);
  });

  it('a version is written as digits only: -0, 1e2 and 100.0 are refused', async (t) => {
    const hub = manualHub(t);
    await hub.publish('t', [1]);
    const frames = [];
    const connection = hub.connect({ send: (frame) => frames.push(JSON.parse(frame)) });
    connection.receive('{"t":"sub","topic":"t"}');
    for (const v of ['-0', '1e0', '1.0']) connection.receive(`{"t":"ack","topic":"t","version":${v}}`);
    connection.receive('{"t":"ack","topic":"t","version":1}');
    await settle(hub);
    assert.deepEqual(
      frames.map((f) => f.code ?? f.t),
      ['snap', 'DELTACAST_INVALID_MESSAGE', 'DELTACAST_INVALID_MESSAGE', 'DELTACAST_INVALID_MESSAGE'],
    );
  });

  it('sub/unsub alternation hands one window, not one snapshot per sub', async (t) => {
    const hub = manualHub(t, { heartbeat: { intervalMs: 0 } });
    await hub.publish('big', 'x'.repeat(4 << 20));
    let handed = 0;
    let frames = 0;
    const connection = hub.connect({
      send(frame) {
        handed += frame.length;
        frames++;
        return false; // a socket that never drains, and a client that never acks
      },
    });
    for (let i = 0; i < 200; i++) {
      connection.receive('{"t":"sub","topic":"big"}');
      connection.receive('{"t":"unsub","topic":"big"}');
    }
    await settle(hub);
    await hub.advance(1000);
    assert.equal(frames, 1);
    assert.ok(handed > 4 << 20 && handed < (4 << 20) + 200, `${handed} bytes handed to send()`);
  });

  it('repeated subs of a topic already in flight hand nothing more to send()', async (t) => {
    const hub = manualHub(t, { heartbeat: { intervalMs: 0 } });
    await hub.publish('big', 'x'.repeat(4 << 20));
    let handed = 0;
    let received = 0;
    const connection = hub.connect({
      send(frame) {
        handed += frame.length;
        return false; // a socket that never drains, and a client that never acks
      },
    });
    const sub = '{"t":"sub","topic":"big"}';
    for (let i = 0; i < 200; i++) {
      connection.receive(sub);
      received += sub.length;
    }
    await settle(hub);
    assert.ok(received < 6000);
    assert.ok(handed > 4 << 20 && handed < (4 << 20) + 200, `${handed} bytes handed to send()`);
  });
});

describe('lanes', () => {
  it('normal: debounced 50 ms after the last change, 250 ms at most; exact to the millisecond', async (t) => {
    const hub = manualHub(t, { lanes: {} });
    await hub.publish('n', board(10));
    const client = createTestClient(hub);
    client.subscribe('n');
    await settle(hub); // the first answer to a subscription does not wait
    assert.equal(client.messages.length, 1);
    await hub.publish('n', board(10, 1, 1));
    await hub.advance(49);
    assert.equal(client.messages.length, 1);
    await hub.advance(1);
    assert.equal(client.messages.length, 2);
    // a change every 40 ms keeps pushing the debounce; the max wait (250 ms) caps it
    for (let i = 0; i < 6; i++) {
      await hub.publish('n', board(10, 2, i));
      await hub.advance(40);
    }
    assert.equal(client.messages.length, 2); // 240 ms since the first change of the stream
    await hub.advance(10);
    assert.equal(client.messages.length, 3);
    assert.deepEqual(client.get('n'), hub.get('n'));
  });

  it('a debounced flush carries the net change of its window as one patch, however many changes it had', async (t) => {
    const hub = manualHub(t, { lanes: {} });
    await hub.publish('n', board(200));
    const client = createTestClient(hub);
    client.subscribe('n');
    await settle(hub);
    // 60 changes in one window (the history holds 32): row 7 ticks every time, row 9 once
    for (let i = 0; i < 60; i++) {
      const rows = board(200, 7, i);
      if (i === 30) rows[9].price = -1;
      if (i > 30) rows[9].price = -1;
      await hub.publish('n', rows);
    }
    await hub.advance(250);
    const last = client.messages.at(-1);
    assert.equal(last.t, 'patch');
    assert.equal(last.from, 1);
    assert.equal(last.to, 61);
    assert.deepEqual(last.ops, [
      { op: 'replace', path: '/7/price', value: 1059 },
      { op: 'replace', path: '/9/price', value: -1 },
    ]);
    assert.deepEqual(client.get('n'), hub.get('n'));
    assert.equal(hub.stats().squashed, 1);
  });

  it('high: one window of 16 ms for every change in it; low: at most once a second', async (t) => {
    const hub = manualHub(t, { lanes: { 'h/*': 'high', 'l/*': 'low' } });
    await hub.publish('h/a', board(10));
    await hub.publish('l/a', board(10));
    const client = createTestClient(hub);
    client.subscribe('h/a');
    client.subscribe('l/a');
    await settle(hub, STILL);
    const base = client.messages.length;
    await hub.publish('h/a', board(10, 1, 1));
    await hub.advance(10);
    await hub.publish('h/a', board(10, 1, 2));
    await hub.advance(5);
    assert.equal(client.messages.length, base);
    await hub.advance(1);
    assert.equal(client.messages.length, base + 1);
    assert.deepEqual(client.get('h/a'), hub.get('h/a'));

    await hub.publish('l/a', board(10, 3, 1));
    await settle(hub, STILL); // the first flush of a low topic is not held back
    assert.equal(client.messages.length, base + 2);
    await hub.publish('l/a', board(10, 3, 2));
    await hub.advance(999);
    assert.equal(client.messages.length, base + 2);
    await hub.advance(1);
    assert.equal(client.messages.length, base + 3);
    assert.deepEqual(client.get('l/a'), hub.get('l/a'));
  });

  it('topics due together reach a connection as one batch; a per-change lane overrides', async (t) => {
    const hub = manualHub(t, { lanes: {} });
    await hub.publish('x', board(10));
    await hub.publish('y', board(10));
    const client = createTestClient(hub);
    client.subscribe('x');
    client.subscribe('y');
    await settle(hub);
    await hub.publish('x', board(10, 1, 5));
    await hub.publish('y', board(10, 1, 6));
    await hub.advance(50);
    const last = client.messages.at(-1);
    assert.equal(last.t, 'batch');
    assert.deepEqual(last.items.map((item) => item.topic), ['x', 'y']);
    assert.deepEqual(client.get('x'), hub.get('x'));
    await hub.publish('x', board(10, 2, 7), { lane: 'critical' });
    await settle(hub);
    assert.deepEqual(client.get('x'), hub.get('x'));
    await assert.rejects(hub.publish('x', 1, { lane: 'urgent' }), { code: codes.INVALID_ARGUMENT });
    assert.throws(() => createHub({ lanes: { a: 'fast' } }), { code: codes.INVALID_ARGUMENT });
  });

  it('the real clock delivers a debounced change on its own', async (t) => {
    const hub = createHub({ pacing: { normalDebounceMs: 5 } });
    t.after(() => hub.close());
    await hub.publish('r', board(10));
    const client = createTestClient(hub);
    client.subscribe('r');
    await hub.publish('r', board(10, 1, 1));
    const deadline = Date.now() + 5000;
    while (client.get('r')?.version !== 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(client.get('r'), hub.get('r'));
  });
});

describe('convergence', () => {
  // Seeds 13 and 15 once caught a client that resumed a topic deleted while it
  // was away and kept its replica (now answered with a gone frame).
  for (const start of [12345, 13, 15]) {
    it(`many clients, random publishes, deletes, stalls, disconnects and reconnects: every replica ends equal to the hub (seed ${start})`, async (t) => {
      await convergenceRun(t, start);
    });
  }
});

async function convergenceRun(t, start) {
  let seed = start;
  const random = () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x80000000;
  };
  const hub = manualHub(t, { history: { maxCount: 4 }, lanes: { a: 'critical', b: 'high' }, credit: { maxFrames: 3 } });
  const topics = ['a', 'b', 'c'];
  const clients = Array.from({ length: 12 }, () => createTestClient(hub));
  for (const client of clients) for (const topic of topics) client.subscribe(topic);
  const state = { a: board(8), b: board(8), c: board(8) };
  for (let step = 0; step < 400; step++) {
    const topic = topics[Math.floor(random() * topics.length)];
    const rows = state[topic].map((row) => (random() < 0.2 ? { ...row, price: Math.floor(random() * 1000) } : row));
    if (random() < 0.1) rows.splice(Math.floor(random() * rows.length), 0, { id: `n${step}`, name: 'new', price: step });
    if (random() < 0.1 && rows.length > 1) rows.splice(Math.floor(random() * rows.length), 1);
    state[topic] = rows;
    // now and then a topic goes (a gone frame) and comes back later under a new epoch
    if (random() < 0.05) await hub.delete(topic);
    else await hub.publish(topic, rows);
    const client = clients[Math.floor(random() * clients.length)];
    const roll = random();
    if (roll < 0.1) {
      if (client.connected) client.disconnect();
      else client.connect();
    } else if (roll < 0.2 && client.connected) {
      if (random() < 0.5) client.stall();
      else client.resume();
    }
    if (random() < 0.3) await hub.advance(Math.floor(random() * 60));
  }
  for (const client of clients) client.connect();
  await hub.advance(300); // every paced flush is due
  for (let round = 0; round < 5; round++) {
    for (const client of clients) client.resume();
    await settle(hub);
  }
  for (const client of clients) {
    for (const topic of topics) assert.deepEqual(client.get(topic), hub.get(topic));
    assert.equal(client.errors.length, 0);
  }
  assert.ok(hub.stats().goneSent > 0, 'the run deleted subscribed topics');
}

describe('liveness and floods', () => {
  it('pings on the heartbeat; a connection silent past the timeout is closed through its transport', async (t) => {
    const hub = manualHub(t, { heartbeat: { intervalMs: 100, timeoutMs: 250 } });
    const live = createTestClient(hub); // answers every ping with a pong
    const frames = [];
    let closed = null;
    hub.connect({ send: (frame) => frames.push(frame), close: (code, reason) => (closed = { code, reason }) });
    await settle(hub, STILL);
    await hub.advance(100);
    assert.deepEqual(frames, ['{"t":"ping"}']);
    await hub.advance(200);
    assert.equal(closed?.code, 4000);
    assert.match(closed.reason, /no message from the client for 300 ms/);
    // In steps, so the client's pongs reach the hub between pings (one jump of
    // 500 ms would run every timer in it before any pong could answer).
    await tick(hub, 500, 50);
    assert.equal(live.connected, true);
    assert.ok(live.messages.filter((m) => m.t === 'ping').length >= 8);
    assert.equal(live.errors.length, 0);
  });

  it('a flood gets one DELTACAST_RATE_LIMITED, then a close; the hub serves the others', async (t) => {
    const hub = manualHub(t, { limits: { messagesPerSecond: 10, messageBurst: 5, rateViolations: 50 } });
    await hub.publish('t', board(5));
    const good = createTestClient(hub);
    good.subscribe('t');
    const frames = [];
    let closed = null;
    const flood = hub.connect({ send: (frame) => frames.push(JSON.parse(frame)), close: (code) => (closed = code) });
    for (let i = 0; i < 60; i++) flood.receive('{"t":"unsub","topic":"t"}');
    await settle(hub);
    assert.deepEqual(
      frames.map((f) => f.code),
      ['DELTACAST_RATE_LIMITED'],
    );
    assert.equal(closed, 1008);
    await hub.publish('t', board(5, 1, 1));
    await settle(hub);
    assert.deepEqual(good.get('t'), hub.get('t'));
  });
});

describe('slow connections', () => {
  it('a stalled client among many: the others keep up, it is conflated, and after acking it holds exactly the current state', async (t) => {
    // normal lane (debounced): conflation applies to every lane but critical
    const hub = manualHub(t, { lanes: {}, credit: { maxFrames: 4 }, heartbeat: { intervalMs: 0 } });
    const topics = ['a', 'b', 'c'];
    for (const topic of topics) await hub.publish(topic, board(20));
    const stalled = createTestClient(hub, { ack: false });
    const others = Array.from({ length: 10 }, () => createTestClient(hub));
    for (const client of [stalled, ...others]) for (const topic of topics) client.subscribe(topic);
    await settle(hub);
    for (let step = 1; step <= 200; step++) {
      await hub.publish(topics[step % 3], board(20, step % 20, step));
      if (step % 10 === 0) await hub.advance(60); // let the debounced flushes go out
    }
    await hub.advance(300);
    for (const client of others) for (const topic of topics) assert.deepEqual(client.get(topic), hub.get(topic));
    // the stalled one got its 3 snapshots and at most one more frame: its window is 4
    assert.ok(stalled.messages.length <= 4, `${stalled.messages.length} messages`);
    const stats = hub.stats();
    assert.ok(stats.conflated > 0);
    assert.equal(stats.connections, 11);
    assert.equal(stats.subscriptions, 33);
    // it acks what it holds: one frame per topic brings it to the current state
    const before = stalled.messages.length;
    for (const topic of topics) stalled.send({ t: 'ack', topic, version: stalled.get(topic).version });
    await settle(hub);
    // the catch-up frames were charged too; acking them lets any topic still dirty through
    for (const topic of topics) stalled.send({ t: 'ack', topic, version: stalled.get(topic).version });
    await settle(hub);
    assert.ok(stalled.messages.length - before <= topics.length, `${stalled.messages.length - before} catch-up frames`);
    for (const topic of topics) assert.deepEqual(stalled.get(topic), hub.get(topic));
    assert.ok(hub.stats().bytesSaved > 0);
  });

  it('a connection over its window past the stall timeout is closed (4001)', async (t) => {
    const hub = manualHub(t, { credit: { maxFrames: 1, stallTimeoutMs: 300 }, heartbeat: { intervalMs: 100 } });
    await hub.publish('t', [1]);
    let closed = null;
    const connection = hub.connect({ send() {}, close: (code) => (closed = code) });
    connection.receive('{"t":"sub","topic":"t"}');
    for (let i = 0; i < 4; i++) {
      connection.receive('{"t":"pong"}');
      await hub.advance(100);
    }
    assert.equal(closed, 4001);
    assert.equal(hub.stats().closedSlow, 1);
  });
});

describe('congested transports', () => {
  it('send() returning false holds non-critical frames back until drained(); then one catch-up per topic', async (t) => {
    const { applyPatch } = require('../../lib/index.js');
    const hub = manualHub(t, { lanes: {}, heartbeat: { intervalMs: 0 } });
    await hub.publish('a', board(20));
    await hub.publish('b', board(20));
    const held = new Map();
    let full = false;
    let received = 0;
    const apply = (message) => {
      if (message.t === 'batch') return message.items.forEach(apply);
      if (message.t === 'snap') held.set(message.topic, { epoch: message.epoch, version: message.version, data: message.data });
      if (message.t === 'patch') {
        const h = held.get(message.topic);
        assert.equal(h.version, message.from);
        held.set(message.topic, { epoch: message.epoch, version: message.to, data: applyPatch(h.data, message.ops) });
      }
      if (message.t !== 'ping') connection.receive(JSON.stringify({ t: 'ack', topic: message.topic, version: held.get(message.topic).version }));
    };
    const connection = hub.connect({
      send(frame) {
        received += 1;
        apply(JSON.parse(frame));
        return !full;
      },
    });
    connection.receive('{"t":"sub","topic":"a"}');
    connection.receive('{"t":"sub","topic":"b"}');
    await settle(hub);
    full = true;
    await hub.publish('a', board(20, 1, 1));
    await hub.advance(50); // this flush is sent, and the socket reports full
    const afterFull = received;
    for (let i = 2; i < 30; i++) {
      await hub.publish(i % 2 ? 'a' : 'b', board(20, i % 20, i));
      await hub.advance(50);
    }
    assert.equal(received, afterFull, 'nothing while congested');
    assert.ok(hub.stats().conflated > 0);
    full = false;
    connection.drained();
    await settle(hub);
    assert.ok(received - afterFull <= 2, `${received - afterFull} catch-up frames`);
    for (const topic of ['a', 'b']) assert.deepEqual(held.get(topic), hub.get(topic));
  });
});

describe('connections without acks', () => {
  // A client that applies what it is sent and never acks; `received` counts
  // state messages (each item of a batch).
  function noAckClient(hub, full = () => false) {
    const { applyPatch } = require('../../lib/index.js');
    const held = new Map();
    const state = { held, received: 0, closed: null };
    const apply = (message) => {
      if (message.t === 'batch') return message.items.forEach(apply);
      if (message.t === 'snap') held.set(message.topic, { epoch: message.epoch, version: message.version, data: message.data });
      if (message.t === 'patch') {
        const h = held.get(message.topic);
        assert.equal(h.version, message.from);
        held.set(message.topic, { epoch: message.epoch, version: message.to, data: applyPatch(h.data, message.ops) });
      }
    };
    state.connection = hub.connect({
      acks: false,
      send(frame) {
        const message = JSON.parse(frame);
        state.received += message.t === 'batch' ? message.items.length : message.t === 'ping' ? 0 : 1;
        apply(message);
        return !full();
      },
      close: (code) => (state.closed = code),
    });
    return state;
  }

  it('frames flow without acks, far past an acking client\'s window, and it is not closed for silence', async (t) => {
    const hub = manualHub(t, { lanes: {}, credit: { maxFrames: 2 }, heartbeat: { intervalMs: 100, timeoutMs: 200 } });
    await hub.publish('a', board(20));
    const client = noAckClient(hub);
    client.connection.receive('{"t":"sub","topic":"a"}');
    await settle(hub);
    for (let i = 1; i <= 20; i++) {
      await hub.publish('a', board(20, i % 20, i));
      await hub.advance(60);
    }
    assert.equal(client.received, 21);
    assert.equal(hub.stats().conflated, 0);
    assert.equal(client.closed, null);
    assert.deepEqual(client.held.get('a'), hub.get('a'));
  });

  it('send() returning false marks topics dirty; drained() sends one catch-up per dirty topic; it converges', async (t) => {
    const hub = manualHub(t, { lanes: {}, heartbeat: { intervalMs: 0 } });
    for (const topic of ['a', 'b', 'c']) await hub.publish(topic, board(20));
    let full = false;
    const client = noAckClient(hub, () => full);
    for (const topic of ['a', 'b', 'c']) client.connection.receive(JSON.stringify({ t: 'sub', topic }));
    await settle(hub);
    full = true;
    await hub.publish('a', board(20, 0, 0));
    await hub.advance(60); // sent; the transport reports itself full
    const afterFull = client.received;
    for (let i = 1; i < 30; i++) {
      await hub.publish(i % 2 ? 'a' : 'b', board(20, i % 20, i));
      await hub.advance(60);
    }
    assert.equal(client.received, afterFull, 'nothing while congested');
    assert.ok(hub.stats().conflated > 0);
    full = false;
    client.connection.drained();
    await settle(hub);
    assert.equal(client.received - afterFull, 2, 'one catch-up for a, one for b, none for c');
    for (const topic of ['a', 'b', 'c']) assert.deepEqual(client.held.get(topic), hub.get(topic));
  });

  it('acks are ignored on such a connection; a malformed one still gets its err', async (t) => {
    const hub = manualHub(t);
    await hub.publish('a', { x: 1 });
    const frames = [];
    const connection = hub.connect({ acks: false, send: (frame) => frames.push(JSON.parse(frame)) });
    connection.receive('{"t":"sub","topic":"a"}');
    connection.receive('{"t":"ack","topic":"a","version":7}');
    connection.receive('{"t":"ack","topic":"a"}');
    await settle(hub);
    assert.deepEqual(frames.map((f) => f.t), ['snap', 'err']);
    assert.equal(frames[1].code, 'DELTACAST_INVALID_MESSAGE');
  });

  it('acks that is not a boolean is refused', (t) => {
    const hub = manualHub(t);
    assert.throws(() => hub.connect({ send() {}, acks: 'no' }), { code: codes.INVALID_ARGUMENT });
    assert.equal(hub.stats().connections, 0);
  });
});

describe('latency histogram', () => {
  it('records publish-to-send time per lane on the hub clock', async (t) => {
    const hub = manualHub(t, { lanes: { 'c/*': 'critical' } });
    await hub.publish('n', board(5));
    await hub.publish('c/x', board(5));
    const client = createTestClient(hub);
    client.subscribe('n');
    client.subscribe('c/x');
    await settle(hub);
    await hub.publish('n', board(5, 1, 1));
    await hub.advance(20);
    await hub.publish('n', board(5, 1, 2)); // the flush carries both: 20 + 50 ms after the first
    await hub.advance(50);
    await hub.publish('c/x', board(5, 1, 3));
    await settle(hub);
    const { latency } = hub.stats();
    const at = (lane, ms) => latency[lane].counts[latency[lane].boundsMs.indexOf(ms)];
    assert.equal(latency.normal.count, 1);
    assert.equal(latency.normal.sumMs, 70);
    assert.equal(at('normal', 100), 1); // 70 ms: in the (50, 100] bucket
    assert.equal(latency.critical.count, 1);
    assert.equal(at('critical', 0), 1);
    assert.equal(latency.low.count, 0);
  });
});

describe('closing the hub', () => {
  it('sends the flushes still scheduled, then closes every transport with 1001', async () => {
    const hub = createHub({ clock: 'manual' }); // normal lane: flushes wait 50 ms
    await hub.publish('t', board(5));
    const frames = [];
    let closed = null;
    const connection = hub.connect({ send: (f) => frames.push(JSON.parse(f)), close: (code, reason) => (closed = [code, reason]) });
    connection.receive('{"t":"sub","topic":"t"}');
    await settle(hub);
    await hub.publish('t', board(5, 1, 1)); // scheduled, not yet sent
    assert.equal(frames.length, 1);
    await hub.close();
    assert.equal(frames.length, 2);
    assert.equal(frames[1].to, 2);
    assert.deepEqual(closed, [1001, 'the hub is closing']);
  });
});

// The same law with more of the hub in play: upserts, per-change lanes, unsub
// and resub, TTL expiry and evictions under a small memory budget.
describe('convergence with everything on', () => {
  const configs = [
    ['a tight window and a short history', { history: { maxCount: 3 }, credit: { maxFrames: 3 } }],
    ['every lane', { lanes: { a: 'critical', b: 'high', c: 'low' }, credit: { maxFrames: 2 }, heartbeat: { intervalMs: 0 } }],
    ['TTL and evictions', { ttl: { 'tmp/*': 100 }, memory: { maxBytes: 6000 }, history: { maxCount: 2 } }],
  ];
  for (const [name, options] of configs) {
    for (const start of [7919, 104729]) {
      it(`${name} (seed ${start}): every replica ends equal to the hub`, async (t) => {
        let seed = start;
        const random = () => {
          seed = (seed * 48271) % 2147483647;
          return seed / 2147483647;
        };
        const tooLarge = (err) => {
          if (err.code !== codes.TOO_LARGE) throw err; // the small budget refuses a big value: allowed
        };
        const hub = createHub({ clock: 'manual', ...options });
        t.after(() => hub.close());
        const topics = ['a', 'b', 'c', 'tmp/d'];
        const clients = Array.from({ length: 8 }, () => createTestClient(hub));
        for (const client of clients) for (const topic of topics) client.subscribe(topic);
        const state = Object.fromEntries(topics.map((topic) => [topic, board(6)]));
        for (let step = 0; step < 300; step++) {
          const topic = topics[Math.floor(random() * topics.length)];
          const rows = state[topic].map((row) => (random() < 0.3 ? { ...row, price: Math.floor(random() * 1000) } : row));
          if (random() < 0.1) rows.splice(Math.floor(random() * rows.length), 0, { id: `n${step}`, name: 'new', price: step });
          if (random() < 0.1 && rows.length > 1) rows.splice(Math.floor(random() * rows.length), 1);
          if (random() < 0.05 && rows.length > 2) rows.push(rows.shift());
          state[topic] = rows;
          const roll = random();
          if (roll < 0.05) await hub.delete(topic);
          else if (roll < 0.15) await hub.upsert(topic, `u${step % 4}`, { name: 'up', price: step }).catch(() => {});
          else if (roll < 0.2) await hub.publish(topic, rows, { lane: ['critical', 'high', 'normal', 'low'][Math.floor(random() * 4)] }).catch(tooLarge);
          else await hub.publish(topic, rows).catch(tooLarge);
          const client = clients[Math.floor(random() * clients.length)];
          const action = random();
          if (action < 0.08) {
            if (client.connected) client.disconnect();
            else client.connect();
          } else if (action < 0.16 && client.connected) {
            if (random() < 0.5) client.stall();
            else client.resume();
          } else if (action < 0.18 && client.connected) {
            client.unsubscribe(topic);
            client.subscribe(topic);
          }
          if (random() < 0.3) await hub.advance(Math.floor(random() * 120));
        }
        for (const client of clients) client.connect();
        await hub.advance(2000);
        for (let round = 0; round < 6; round++) {
          for (const client of clients) client.resume();
          await settle(hub);
          await hub.advance(1000);
        }
        for (const client of clients) {
          for (const topic of topics) assert.deepEqual(client.get(topic), hub.get(topic));
          assert.deepEqual(client.errors, []);
        }
      });
    }
  }
});
