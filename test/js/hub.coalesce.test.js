'use strict';

// Coalescing (createHub({ pacing: { coalesce: true } })): publish() of an
// immutable value (deep-frozen, or { immutable: true }) on a paced lane is
// held, and serialized once, when the topic's lane flushes. What subscribers
// see, and when, must be what they see without it: a hub coalescing and a
// hub publishing the same values the ordinary way, driven by the same calls
// on a manual clock, deliver the same data at the same moments.
//
// DELTACAST_COALESCE_SEED=<n> replays a run of the model tests.

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const { createHub, codes } = require('../../lib/index.js');
const { mulberry32 } = require('../../bench/data.js');

const SEED = Number(process.env.DELTACAST_COALESCE_SEED ?? 20261201);

function deepFreeze(value) {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const key of Object.keys(value)) deepFreeze(value[key]);
  }
  return value;
}

function open(t, options) {
  const hub = createHub({ clock: 'manual', ...options });
  t.after(() => hub.close());
  return hub;
}

/** A subscriber on `topics`: the data it holds per topic and every frame it got. */
function subscriber(hub, ...topics) {
  const frames = [];
  const data = new Map();
  const connection = hub.connect({
    send(text) {
      const frame = JSON.parse(text);
      frames.push(frame);
      for (const item of frame.t === 'batch' ? frame.items : [frame]) {
        if (item.t === 'snap') data.set(item.topic, item.data);
        else if (item.t === 'patch') data.set(item.topic, applyOps(data.get(item.topic), item.ops));
        else if (item.t === 'gone') data.delete(item.topic);
      }
    },
    acks: false,
  });
  for (const topic of topics) connection.receive(JSON.stringify({ t: 'sub', topic }));
  return { frames, data, connection };
}

function applyOps(doc, ops) {
  const { applyPatch } = require('../../lib/index.js');
  return applyPatch(doc, ops);
}

/** Counts JSON.stringify calls while `body` runs (the identity path serializes each new row with one). */
/** The values JSON.stringify was called with while `body` ran. */
async function countingStringify(body) {
  const original = JSON.stringify;
  const calls = [];
  JSON.stringify = function counted(...args) {
    calls.push(args[0]);
    return original.apply(this, args);
  };
  try {
    await body();
  } finally {
    JSON.stringify = original;
  }
  return calls;
}

describe('coalescing (pacing.coalesce)', () => {
  it('publishes within a window are serialized once, when the lane flushes, and share one version', async (t) => {
    const hub = open(t, { pacing: { coalesce: true } });
    const sub = subscriber(hub, 'board');
    const rows = Array.from({ length: 100 }, (_, i) => ({ id: i, price: i }));
    const first = hub.publish('board', deepFreeze([...rows]));
    await hub.advance(50);
    await first;
    assert.equal(hub.get('board').version, 1);
    const receipts = [];
    let board;
    const serialized = await countingStringify(async () => {
      for (let k = 1; k <= 10; k++) {
        board = [...rows];
        board[7] = { id: 7, price: 1000 + k }; // the same row, replaced ten times
        receipts.push(hub.publish('board', deepFreeze(board)));
      }
      assert.equal(hub.stats().coalesced, 1, 'one topic holds a value');
      assert.equal(hub.get('board').version, 1, 'nothing applied before the flush');
      await hub.advance(49);
      assert.equal(sub.frames.length, 1, 'the snapshot only: the window is still open');
      await hub.advance(1);
    });
    // The row (or, its other members unchanged, its changed member) of the
    // last publish only, once; nothing of the nine before.
    const latest = serialized.filter((v) => v === board[7] || v === 1010);
    const earlier = serialized.filter((v) => (typeof v === 'object' && v !== null && v !== board[7]) || (typeof v === 'number' && v !== 1010));
    assert.equal(latest.length, 1, 'the replaced row was serialized once, not ten times');
    assert.deepEqual(earlier, []);
    // One receipt, shared: a thenable as any call's (made a Promise only when asked).
    assert.ok(receipts.every((r) => r === receipts[0]));
    assert.equal(Object.prototype.toString.call(receipts[0]), '[object Receipt]');
    assert.ok(receipts[0].promise() instanceof Promise);
    assert.equal(receipts[0].promise(), receipts[0].promise());
    const versions = await Promise.all(receipts);
    assert.ok(versions.every((v) => v.version === 2 && v.epoch === versions[0].epoch), JSON.stringify(versions));
    assert.deepEqual(await receipts[0].finally(() => {}), versions[0]);
    assert.deepEqual(hub.get('board'), { ...versions[0], data: board });
    assert.equal(sub.frames.length, 2);
    assert.deepEqual(sub.frames[1].ops, [{ op: 'replace', path: '/7/price', value: 1010 }]);
    assert.deepEqual(sub.data.get('board'), board);
    assert.equal(hub.stats().coalesced, 0);
  });

  /**
   * Drives a plain hub and a coalescing one with the same random calls.
   * `ttl`: TTL rules for both (topics then expire, held or not, and come back
   * with the next publish; a patch of an expired topic fails on both).
   */
  async function model(t, ttl) {
    const rand = mulberry32(SEED);
    const lanes = { 'c/*': 'critical', 'h/*': 'high', 'l/*': 'low' };
    const pacing = { highWindowMs: 16, normalDebounceMs: 50, normalMaxWaitMs: 250, lowIntervalMs: 1000 };
    const plain = open(t, { lanes, pacing, ttl });
    const coalescing = open(t, { lanes, ttl, pacing: { ...pacing, coalesce: true } });
    const topics = ['n/a', 'n/b', 'h/a', 'l/a', 'c/a'];
    const subs = [subscriber(plain, ...topics), subscriber(coalescing, ...topics)];
    const values = new Map(topics.map((topic) => [topic, deepFreeze([{ id: 1, v: 0 }, { id: 2, v: 0 }])]));
    for (const topic of topics) {
      const text = JSON.stringify(values.get(topic));
      await Promise.all([plain.publishJson(topic, text), coalescing.publishJson(topic, text)]);
    }
    let held = 0;
    for (let step = 0; step < 400; step++) {
      const r = rand();
      const topic = topics[Math.floor(rand() * topics.length)];
      if (r < 0.55) {
        const before = values.get(topic);
        const next = [...before];
        const at = Math.floor(rand() * next.length);
        next[at] = { id: next[at].id, v: step };
        if (rand() < 0.15) next.push({ id: 100 + step, v: step });
        values.set(topic, deepFreeze(next));
        const frozenOrTrusted = rand() < 0.5;
        const call = (hub) => (frozenOrTrusted ? hub.publish(topic, next) : hub.publish(topic, [...next], { immutable: true }));
        const [a, b] = [call(plain), call(coalescing)];
        held += coalescing.stats().coalesced > 0 ? 1 : 0;
        b.then(undefined, (err) => assert.fail(`step ${step}: ${err}`)); // settles at the flush: not awaited here
        await a;
      } else if (r < 0.62) {
        // Another kind of call on the topic: a held value goes first.
        const ops = [{ op: 'replace', path: '/0/v', value: -step }];
        const next = [{ ...values.get(topic)[0], v: -step }, ...values.get(topic).slice(1)];
        values.set(topic, deepFreeze(next));
        const [a, b] = await Promise.allSettled([plain.patch(topic, ops), coalescing.patch(topic, ops)]);
        assert.equal(b.status, a.status, `step ${step} (seed ${SEED}): patch of ${topic}: ${a.reason ?? 'applied'} vs ${b.reason ?? 'applied'}`);
        if (ttl === undefined) assert.equal(a.status, 'fulfilled');
      } else if (r < 0.64) {
        const fresh = deepFreeze([{ id: 1, v: step }]);
        values.set(topic, fresh);
        await Promise.all([plain.delete(topic), coalescing.delete(topic)]);
        await Promise.all([plain.publishJson(topic, JSON.stringify(fresh)), coalescing.publishJson(topic, JSON.stringify(fresh))]);
      } else {
        const ms = [0, 1, 5, 15, 16, 30, 49, 50, 100, 300, 1000][Math.floor(rand() * 11)];
        await Promise.all([plain.advance(ms), coalescing.advance(ms)]);
        for (const topic of topics) {
          assert.deepEqual(subs[1].data.get(topic), subs[0].data.get(topic), `step ${step} (seed ${SEED}): ${topic} after advance(${ms})`);
        }
      }
    }
    await Promise.all([plain.advance(2000), coalescing.advance(2000)]);
    for (const topic of topics) {
      assert.deepEqual(subs[1].data.get(topic), subs[0].data.get(topic), topic);
      assert.deepEqual(coalescing.get(topic)?.data, plain.get(topic)?.data, topic);
    }
    assert.ok(held > 50, `the run held values (${held} publishes)`);
    // Frames of held topics go in a flush of their own (after the value came), so
    // messages may be batched differently; what they carry is no more.
    const items = (sub) => sub.frames.reduce((n, f) => n + (f.t === 'batch' ? f.items.length : 1), 0);
    assert.ok(items(subs[1]) <= items(subs[0]), `no more snapshots and patches than without it: ${items(subs[1])} vs ${items(subs[0])}`);
    assert.equal(coalescing.stats().coalesced, 0);
    assert.equal(coalescing.stats().internalErrors, 0);
    if (ttl !== undefined) assert.equal(coalescing.stats().expirations, plain.stats().expirations);
  }

  it('subscribers get the same data at the same moments as without it, on every lane (model test)', async (t) => {
    await model(t, undefined);
  });

  it("the same with TTLs shorter than a lane's flush delay: topics expire while held (model test)", async (t) => {
    await model(t, { 'l/*': 300, 'n/b': 120, 'h/*': 200 });
  });

  it('another call on a held topic applies the held value first, in call order', async (t) => {
    const hub = open(t, { pacing: { coalesce: true } });
    const held = hub.publish('t', deepFreeze([{ id: 1, v: 1 }]));
    const patched = hub.patch('t', [{ op: 'replace', path: '/0/v', value: 2 }]);
    assert.deepEqual(await held, { epoch: (await patched).epoch, version: 1 });
    assert.equal((await patched).version, 2);
    assert.deepEqual(hub.get('t').data, [{ id: 1, v: 2 }]);
    // delete: the held value is applied, then the topic deleted
    const again = hub.publish('t', deepFreeze([{ id: 1, v: 3 }]));
    assert.equal(await hub.delete('t'), true);
    assert.equal((await again).version, 3);
    assert.equal(hub.get('t'), undefined);
    // the flush the held value was paced for still comes, and finds nothing to send
    await hub.advance(1000);
    assert.equal(hub.stats().coalesced, 0);
    assert.equal(hub.stats().internalErrors, 0);
  });

  it('is not used for a change with an id, a critical-lane change, an unfrozen value or a hub without the option', async (t) => {
    const coalescing = open(t, { pacing: { coalesce: true } });
    const plain = open(t, {});
    const frozen = () => deepFreeze([{ id: 1, v: Math.random() }]);
    // Each of these is answered without the clock moving: nothing was held.
    for (const [hub, call] of [
      [coalescing, (h) => h.publish('a', frozen(), { id: 'change-1' })],
      [coalescing, (h) => h.publish('a', frozen(), { lane: 'critical' })],
      [coalescing, (h) => h.publish('a', [{ id: 1, v: 2 }])],
      [plain, (h) => h.publish('a', frozen())],
      [plain, (h) => h.publish('a', [{ id: 1 }], { immutable: true })],
    ]) {
      const version = await call(hub);
      assert.ok(version === null || version.version > 0);
      assert.equal(hub.stats().coalesced, 0);
    }
  });

  it('a topic whose lane is critical is asked for its value at once', async (t) => {
    const hub = open(t, { lanes: { 'alerts/*': 'critical' }, pacing: { coalesce: true } });
    const sub = subscriber(hub, 'alerts/a');
    const version = await hub.publish('alerts/a', deepFreeze({ level: 'red' }));
    assert.equal(version.version, 1, 'answered without advancing the clock');
    assert.deepEqual(sub.data.get('alerts/a'), { level: 'red' });
  });

  it('a held value that cannot be serialized rejects its publishes; the flush and other topics go on', async (t) => {
    const hub = open(t, { pacing: { coalesce: true } });
    const sub = subscriber(hub, 'bad', 'good');
    const bad = hub.publish('bad', deepFreeze({ n: 10n }));
    const good = hub.publish('good', deepFreeze({ n: 1 }));
    const rejected = assert.rejects(bad, { code: codes.INVALID_VALUE });
    await hub.advance(50);
    await rejected;
    assert.equal((await good).version, 1);
    assert.deepEqual(sub.data.get('good'), { n: 1 });
    assert.equal(hub.get('bad'), undefined);
    assert.equal(hub.stats().rejected, 1);
    // The topic is held again, and flushed, as any other.
    const next = hub.publish('bad', deepFreeze({ n: 2 }));
    await hub.advance(50);
    assert.equal((await next).version, 1);
    assert.deepEqual(sub.data.get('bad'), { n: 2 });
  });

  it("a held publish refreshes its topic's TTL as a publish does (it does not expire while held)", async (t) => {
    const hubs = [open(t, { ttl: { '*': 100 } }), open(t, { ttl: { '*': 100 }, pacing: { coalesce: true } })];
    const seen = [];
    for (const hub of hubs) {
      const sub = subscriber(hub, 't');
      await hub.publishJson('t', '{"v":0}');
      await hub.advance(90);
      const receipt = hub.publish('t', deepFreeze({ v: 1 }));
      for (const ms of [10, 40, 10]) await hub.advance(ms);
      assert.equal((await receipt).version, 2);
      seen.push(sub.frames.map((f) => f.t).join(','));
      assert.deepEqual(sub.data.get('t'), { v: 1 });
    }
    assert.deepEqual(seen, ['snap,patch', 'snap,patch'], 'no gone frame: the topic did not expire at 100');
  });

  it('a topic that expires while its value is held sends one gone, at the moment it does without it', async (t) => {
    // The low lane flushes up to 1,000 ms after a publish; the TTL is shorter.
    // Publishes every 100 ms, then silence: stopping at 3,400 ms the topic
    // expires (3,700) before the next flush (4,000) asks for the last value;
    // stopping at 3,900 that flush applies it, and the TTL still counts from
    // the publish (4,200).
    for (const count of [35, 40]) {
      const options = { lanes: { 'l/*': 'low' }, ttl: { 'l/*': 300 } };
      const plain = open(t, options);
      const coalescing = open(t, { ...options, pacing: { coalesce: true } });
      const hubs = [plain, coalescing];
      const subs = [subscriber(plain, 'l/a'), subscriber(coalescing, 'l/a')];
      const receipts = new Set();
      // After every step: the frames that came during it (a patch or a
      // snapshot, whichever is smaller, is a "state"), what the subscriber
      // holds, and whether the store holds 'l/a' and 'l/quiet' (which nobody
      // follows).
      const seen = [[], []];
      const counted = [0, 0];
      const look = (ms) => {
        for (const [i, hub] of hubs.entries()) {
          const frames = subs[i].frames.slice(counted[i]).flatMap((f) => (f.t === 'batch' ? f.items : [f]));
          counted[i] = subs[i].frames.length;
          const kinds = frames.map((f) => (f.t === 'snap' || f.t === 'patch' ? 'state' : f.t)).join('+');
          seen[i].push(`${ms}: ${kinds} ${JSON.stringify(subs[i].data.get('l/a') ?? null)} ${hub.get('l/a') !== undefined} ${hub.get('l/quiet') !== undefined}`);
        }
      };
      let ms = 0;
      for (let k = 1; k <= count + 30; k++) {
        if (k <= count) {
          const value = deepFreeze({ n: k });
          const calls = hubs.flatMap((hub) => [hub.publish('l/a', value), hub.publish('l/quiet', value)]);
          receipts.add(calls[2]);
          await Promise.all(calls.slice(0, 2));
        }
        await Promise.all(hubs.map((hub) => hub.advance(100)));
        ms += 100;
        look(ms);
      }
      assert.deepEqual(seen[1], seen[0], `stopping after ${count}: the same frames, data and topics after every step`);
      const gone = seen[0].filter((line) => line.includes('gone'));
      assert.deepEqual(gone, [count === 35 ? '3700: gone null false false' : '4200: gone null false false']);
      assert.equal(coalescing.get('l/a'), undefined);
      assert.equal(coalescing.get('l/quiet'), undefined);
      // Values published after the last flush go with the topic: their
      // shared receipt resolves null (no version was made of them).
      const settled = await Promise.all(receipts);
      if (count === 35) assert.equal(settled.pop(), null);
      assert.ok(settled.every((v) => v !== null && v.version > 0), JSON.stringify(settled));
      assert.equal(coalescing.stats().coalesced, 0);
      assert.equal(coalescing.stats().internalErrors, 0);
    }
  });

  it('a value held for a new topic whose TTL ends before its flush asks is applied and expired at once, as without it', async (t) => {
    const seen = [];
    for (const coalesce of [false, true]) {
      const hub = open(t, { lanes: { 'h/*': 'high' }, ttl: { 'h/*': 200 }, pacing: { coalesce } });
      const sub = subscriber(hub, 'h/x');
      const receipt = hub.publish('h/x', deepFreeze({ n: 1 })); // no such topic yet; flushed at 16, expired at 200
      await hub.advance(300); // one advance: the expiry is checked before the flushes, which find nothing
      const { version } = await receipt;
      seen.push({ version, frames: sub.frames.map((f) => f.t).join(','), topic: hub.get('h/x') ?? null, expirations: hub.stats().expirations });
    }
    assert.deepEqual(seen[1], seen[0]);
    assert.deepEqual(seen[1], { version: 1, frames: 'gone', topic: null, expirations: 1 });
  });

  const pad = 'x'.repeat(2000);

  /** A hub with room for one topic of `pad` (a second evicts the least recently used), holding `a`, flushed. */
  async function roomForOne(t, coalesce) {
    const hub = open(t, { memory: { maxBytes: 4000 }, pacing: { coalesce } });
    const sub = subscriber(hub, 'a', 'b');
    await hub.publishJson('a', JSON.stringify({ n: 0, pad }));
    await hub.advance(50);
    return { hub, sub };
  }

  it('a topic evicted while its value is held is not brought back by the value', async (t) => {
    const seen = [];
    for (const coalesce of [false, true]) {
      const { hub, sub } = await roomForOne(t, coalesce);
      const held = hub.publish('a', deepFreeze({ n: 1, pad }));
      assert.equal((await hub.publishJson('b', JSON.stringify({ n: 2, pad }))).version, 1);
      await hub.advance(1000);
      assert.equal(hub.stats().evictions, 1);
      assert.equal(hub.get('a'), undefined, 'a was evicted');
      assert.deepEqual(hub.get('b').data, { n: 2, pad }, 'b stays');
      seen.push(sub.frames.flatMap((f) => (f.t === 'batch' ? f.items : [f])).map((f) => `${f.t} ${f.topic}`).join(', '));
      if (coalesce) {
        assert.equal(await held, null);
        assert.equal(hub.stats().coalesced, 0);
      }
    }
    assert.deepEqual(seen, ['snap a, gone a, snap b', 'snap a, gone a, snap b']);
  });

  // Only the first publish of a window writes a Hold; the later ones are told
  // when the flush asks (Redate), with where they fell among the calls: one
  // made before the call that evicted the topic goes with it, one made after
  // brings the topic back, as without coalescing.
  it('publishes of a held topic around the call that evicts it: before it they go with the topic, after it they bring it back', async (t) => {
    for (const after of [false, true]) {
      const seen = [];
      for (const coalesce of [false, true]) {
        const { hub, sub } = await roomForOne(t, coalesce);
        const receipts = [hub.publish('a', deepFreeze({ n: 1, pad }))];
        await hub.advance(10); // the next publish of 'a' is in another turn, at another time
        if (!after) receipts.push(hub.publish('a', deepFreeze({ n: 2, pad })));
        const b = hub.publishJson('b', JSON.stringify({ n: 3, pad }));
        if (after) receipts.push(hub.publish('a', deepFreeze({ n: 2, pad })));
        await b;
        await hub.advance(1000);
        const settled = await Promise.all(receipts);
        seen.push({
          a: hub.get('a')?.data.n ?? null,
          b: hub.get('b')?.data.n ?? null,
          frames: sub.frames.flatMap((f) => (f.t === 'batch' ? f.items : [f])).map((f) => `${f.t} ${f.topic}`).join(', '),
          evictions: hub.stats().evictions,
        });
        // Held together, the coalescing hub's receipts share one answer:
        // null when the value went with the topic (the one difference).
        if (coalesce) assert.ok(settled.every((v) => (after ? v !== null && v.version === 1 : v === null)), JSON.stringify(settled));
        assert.equal(hub.stats().coalesced, 0);
        assert.equal(hub.stats().internalErrors, 0);
      }
      assert.deepEqual(seen[1], seen[0], after ? 'published after the eviction' : 'published before it');
      assert.deepEqual(
        seen[1],
        after
          ? { a: 2, b: null, frames: 'snap a, gone a, gone b, snap a', evictions: 2 }
          : { a: null, b: 3, frames: 'snap a, gone a, snap b', evictions: 1 },
      );
    }
  });

  it('a held value released by another call after its topic expired is dropped, in call order', async (t) => {
    // The low lane's next flush is 1,000 ms after the first; the TTL is 100.
    const results = [];
    for (const coalesce of [false, true]) {
      const hub = open(t, { lanes: { 'l/*': 'low' }, ttl: { 'l/*': 100 }, pacing: { coalesce } });
      const sub = subscriber(hub, 'l/t');
      await hub.publishJson('l/t', '{"v":0}');
      await hub.advance(60);
      const held = hub.publish('l/t', deepFreeze({ v: 1 })); // expires at 160 (not flushed before)
      const advanced = hub.advance(200);
      // Called before the advance's answer: the held value goes first, and is dropped.
      const next = hub.publishJson('l/t', '{"v":2}');
      await advanced;
      await hub.advance(10);
      results.push({
        held: coalesce ? await held : null,
        next: (await next).version,
        data: hub.get('l/t').data,
        frames: sub.frames.flatMap((f) => (f.t === 'batch' ? f.items : [f])).map((f) => f.t).join(','),
      });
    }
    assert.deepEqual(results[1], results[0]);
    assert.deepEqual(results[1], { held: null, next: 1, data: { v: 2 }, frames: 'snap,gone,snap' });
  });

  it('a held value that throws while read rejects with the error publish gives', async (t) => {
    const hub = open(t, { pacing: { coalesce: true } });
    const value = Object.freeze(Object.defineProperty({}, 'n', { enumerable: true, get: () => { throw new Error('boom'); } }));
    const rejected = assert.rejects(hub.publish('g', value), { code: codes.INVALID_VALUE, message: /boom/ });
    await hub.advance(50);
    await rejected;
    await assert.rejects(open(t, {}).publish('g', value), { code: codes.INVALID_VALUE });
  });

  it('a held topic nobody subscribes to is applied at its flush', async (t) => {
    const hub = open(t, { pacing: { coalesce: true } });
    const receipt = hub.publish('quiet', deepFreeze({ n: 1 }));
    await hub.advance(49);
    assert.equal(hub.get('quiet'), undefined);
    await hub.advance(1);
    assert.equal((await receipt).version, 1);
    assert.deepEqual(hub.get('quiet').data, { n: 1 });
  });

  it('a root frozen over rows that are not is not held: a row changed after the publish is not sent', async (t) => {
    for (const coalesce of [false, true]) {
      const hub = open(t, { pacing: { coalesce } });
      const { data } = subscriber(hub, 'a');
      const row = { id: 1, qty: 1 };
      const receipt = hub.publish('a', Object.freeze({ rows: [row] }));
      assert.equal(hub.stats().coalesced, 0);
      row.qty = 2; // after the publish: not published
      await hub.advance(50);
      assert.equal((await receipt).version, 1);
      assert.deepEqual(data.get('a'), { rows: [{ id: 1, qty: 1 }] }, `coalesce: ${coalesce}`);
      assert.deepEqual(hub.get('a').data, { rows: [{ id: 1, qty: 1 }] });
    }
    // Nor a frozen root with toJSON (it is not plain data), nor frozen rows over an object that is not.
    const hub = open(t, { pacing: { coalesce: true } });
    hub.publish('b', Object.freeze({ n: 1, toJSON: () => ({ n: 2 }) }));
    hub.publish('c', Object.freeze([Object.freeze({ id: 1, meta: { n: 1 } })]));
    assert.equal(hub.stats().coalesced, 0);
    hub.publish('d', deepFreeze([{ id: 1, meta: { n: 1 } }]));
    assert.equal(hub.stats().coalesced, 1);
  });

  it("a getter that publishes to its own topic, read by publish's checks or by the flush's serialization, leaves nothing held", { timeout: 10_000 }, async (t) => {
    for (const publishingRead of [1, 2]) {
      const hub = open(t, { pacing: { coalesce: true } });
      const { data } = subscriber(hub, 'a');
      let reads = 0;
      let inner = null;
      const value = Object.freeze({
        x: 1,
        get y() {
          reads += 1;
          if (reads === publishingRead) inner = hub.publish('a', deepFreeze({ x: 2 }));
          return 1;
        },
      });
      const outer = hub.publish('a', value); // read 1: the checks; read 2: the flush
      await hub.advance(50);
      await hub.advance(50);
      assert.ok(inner !== null, `read ${publishingRead} published`);
      const [a, b] = await Promise.all([outer, inner]);
      assert.ok(a.version >= 1 && b.version >= 1);
      assert.deepEqual(data.get('a'), { x: 1, y: 1 }, `read ${publishingRead}: the value published last`);
      assert.equal(hub.stats().coalesced, 0);
      // The topic is held again as usual.
      const later = hub.publish('a', deepFreeze({ x: 3 }));
      assert.equal(hub.stats().coalesced, 1);
      await hub.advance(50);
      assert.equal((await later).version, a.version + 1);
      assert.deepEqual(data.get('a'), { x: 3 });
      assert.equal(hub.stats().coalesced, 0);
    }
  });

  // Released values stay in the hub's map, marked, until a sweep: here
  // 70,000 released against one still held (past 65,536 and eight to one).
  it('values held across a sweep of 70,000 released ones still take later publishes and go at their flush', async (t) => {
    const hub = open(t, {
      pacing: { coalesce: true },
      lanes: { 'n/*': 'high' },
      memory: { maxBytes: 1024 * 1024 * 1024 },
    });
    const { data } = subscriber(hub, 'kept', 'n/7');
    const kept = hub.publish('kept', deepFreeze({ n: 1 })); // normal lane: at 50
    const receipts = [];
    for (let i = 0; i < 70_000; i++) receipts.push(hub.publish(`n/${i}`, deepFreeze({ i }))); // high: at 16
    await hub.advance(16); // the 70,000 go
    assert.equal(hub.stats().coalesced, 1);
    assert.equal((await receipts[69_999]).version, 1);
    assert.deepEqual(data.get('n/7'), { i: 7 });
    // After the sweep: the held one takes a later publish (its receipt), a released one is held anew.
    assert.equal(hub.publish('kept', deepFreeze({ n: 2 })), kept); // moves the debounce to 66
    const again = hub.publish('n/7', deepFreeze({ i: -7 }));
    assert.notEqual(again, receipts[7]);
    assert.equal(hub.stats().coalesced, 2);
    await hub.advance(16);
    assert.equal((await again).version, 2);
    assert.deepEqual(data.get('n/7'), { i: -7 });
    assert.equal(data.get('kept'), undefined);
    await hub.advance(33);
    assert.equal(data.get('kept'), undefined);
    await hub.advance(1);
    assert.equal((await kept).version, 1);
    assert.deepEqual(data.get('kept'), { n: 2 });
    assert.equal(hub.stats().coalesced, 0);
  });

  // The real clock: publishes after the first of a window are dated at the
  // end of their turn and told when the flush asks; publishing every 10 ms
  // keeps moving a 40 ms debounce back until the max wait (200 ms).
  it('on the real clock, a topic published every 10 ms is flushed by its max wait, with the last value', async (t) => {
    const hub = createHub({ pacing: { coalesce: true, normalDebounceMs: 40, normalMaxWaitMs: 200 }, heartbeat: { intervalMs: 0 } });
    t.after(() => hub.close());
    const sub = subscriber(hub, 'r');
    const receipts = new Set();
    const started = Date.now();
    let n = 0;
    while (Date.now() - started < 300) {
      receipts.add(hub.publish('r', deepFreeze({ n: ++n })));
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const answers = await Promise.all(receipts);
    assert.ok(answers.every((a) => a !== null && a.version >= 1), JSON.stringify(answers));
    const versions = new Set(answers.map((a) => a.version));
    assert.ok(receipts.size < n, `publishes in one window share a receipt (${receipts.size} receipts for ${n} publishes)`);
    assert.equal(versions.size, receipts.size, 'one version per flush');
    assert.deepEqual(hub.get('r').data, { n });
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.deepEqual(sub.data.get('r'), { n });
    assert.equal(hub.stats().coalesced, 0);
  });

  // A producer that publishes every turn mostly has a publish since the last
  // Hold when a flush asks: the max wait still flushes while it goes on (a
  // Redate that finds the flush due is answered with the value, never with
  // another Redate: test/native/delivery_test.cc pins the core's side).
  it('on the real clock, a topic published every turn is still flushed by its max wait', async (t) => {
    const hub = createHub({ pacing: { coalesce: true, normalDebounceMs: 30, normalMaxWaitMs: 100 }, heartbeat: { intervalMs: 0 } });
    t.after(() => hub.close());
    const sub = subscriber(hub, 'busy');
    const started = Date.now();
    let n = 0;
    let firstFlushAt = null;
    while (Date.now() - started < 1000) {
      hub.publish('busy', deepFreeze({ n: ++n }));
      if (firstFlushAt === null && sub.data.get('busy') !== undefined) firstFlushAt = Date.now() - started;
      await new Promise((resolve) => setImmediate(resolve));
    }
    assert.ok(firstFlushAt !== null, `no flush in 1,000 ms of publishing every turn (${n} publishes; max wait 100 ms)`);
    const deadline = Date.now() + 5000;
    while (sub.data.get('busy')?.n !== n) {
      assert.ok(Date.now() < deadline, `the last value (${n}) within 5 s of the last publish; holds ${JSON.stringify(sub.data.get('busy'))}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.equal(hub.stats().coalesced, 0);
  });

  it('close() sends held values before the hub stops', async (t) => {
    const hub = createHub({ clock: 'manual', pacing: { coalesce: true } });
    const sub = subscriber(hub, 'b');
    await hub.advance(0);
    const receipt = hub.publish('b', deepFreeze({ n: 1 }));
    await hub.close();
    assert.equal((await receipt).version, 1);
    assert.deepEqual(sub.data.get('b'), { n: 1 });
    void t;
  });

  it('on the real clock, a held publish is answered after the lane flushes', { timeout: 10_000 }, async (t) => {
    const hub = createHub({ pacing: { coalesce: true, normalDebounceMs: 20 } });
    t.after(() => hub.close());
    const sub = subscriber(hub, 'rt');
    const first = hub.publish('rt', deepFreeze({ n: 1 }));
    const second = hub.publish('rt', deepFreeze({ n: 2 }));
    assert.strictEqual(first, second, 'publishes held together share one receipt');
    assert.equal((await first).version, 1);
    assert.deepEqual(hub.get('rt').data, { n: 2 });
    while (sub.data.get('rt')?.n !== 2) await new Promise((resolve) => setTimeout(resolve, 5));
  });

  it('a held publish keeps the process alive until its flush', { timeout: 20_000 }, () => {
    const script = `
      const { createHub } = require(${JSON.stringify(path.resolve(__dirname, '../../lib/index.js'))});
      const hub = createHub({ pacing: { coalesce: true, normalDebounceMs: 200 } });
      hub.publish('t', Object.freeze({ n: 1 })).then((v) => { console.log('answered', v.version, hub.getJson('t').json); return hub.close(); });
    `;
    const child = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 15_000 });
    assert.equal(child.status, 0, child.stderr);
    assert.equal(child.stdout.trim(), 'answered 1 {"n":1}');
  });

  it('pacing.coalesce must be a boolean', () => {
    assert.throws(() => createHub({ pacing: { coalesce: 1 } }), { code: codes.INVALID_ARGUMENT, message: /pacing.coalesce must be a boolean/ });
  });
});
