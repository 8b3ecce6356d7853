'use strict';

// Coalescing against a plain hub, driven alike on a manual clock: cases a
// differential fuzzer found where subscribers did not get the same data at
// the same moments (or a held publish was refused). Each drives both hubs
// and compares what one subscriber got, and when. (Two more it found are
// documented differences, README "Coalescing": a held publish of the value
// the topic already holds moves a debounce, since it is not serialized at
// the publish; and a new topic whose TTL passes between two held publishes
// is created once, with the later value.)

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');

const { createHub } = require('../../lib/index.js');

const row = (id, v) => Object.freeze({ id, v });
const frozen = (value) => Object.freeze(value);

/** Runs `body(hub, advance)` on a plain hub and a coalescing one; returns the frames each subscriber got, each as "ms: kind data". */
async function both(options, topics, body) {
  const seen = [];
  for (const coalesce of [false, true]) {
    const hub = createHub({ clock: 'manual', ...options, pacing: { ...options.pacing, coalesce } });
    const clock = { now: 0 };
    const frames = [];
    const connection = hub.connect({
      send(text) {
        const frame = JSON.parse(text);
        for (const item of frame.t === 'batch' ? frame.items : [frame]) {
          frames.push(`${clock.now}: ${item.t} ${item.topic} ${JSON.stringify(item.data ?? item.ops ?? null)}`);
        }
      },
      acks: false,
    });
    for (const topic of topics) connection.receive(JSON.stringify({ t: 'sub', topic }));
    // Frames that come during advance(ms) are dated at its end.
    const advance = async (ms) => {
      clock.now += ms;
      await hub.advance(ms);
    };
    try {
      seen.push({ frames, result: await body(hub, advance) });
    } finally {
      await hub.close();
    }
  }
  return seen;
}

describe('coalescing matches a plain hub (cases a differential fuzzer found)', () => {
  it('a held value without rows released after a publish sent as a patch is applied, not refused', async () => {
    const [plain, coalescing] = await both({}, ['rows', 'flat'], async (hub, advance) => {
      const a = row(1, 1);
      await hub.publish('rows', frozen([a, row(2, 1)]), { lane: 'critical' });
      await hub.publish('flat', frozen({ n: 0 }), { lane: 'critical' });
      // Held together, released by one flush: 'rows' by identity (a patch), then 'flat' (full text).
      const receipts = [hub.publish('rows', frozen([a, row(2, 2)])), hub.publish('flat', frozen({ n: 1 }))];
      await advance(50);
      const settled = await Promise.allSettled(receipts);
      return settled.map((s) => (s.status === 'fulfilled' ? s.value.version : s.reason.code));
    });
    assert.deepEqual(coalescing.result, plain.result);
    assert.deepEqual(coalescing.frames, plain.frames);
  });

  it('a publish after a delete of a held topic waits for its own flush', async () => {
    const [plain, coalescing] = await both({}, ['t'], async (hub, advance) => {
      hub.publish('t', frozen({ n: 1, o: frozen({}) }));
      const deleted = hub.delete('t'); // applies the held value first
      hub.publish('t', frozen({ n: 2, o: frozen({}) })); // a new topic: flushed at 50
      await deleted;
      await advance(0);
      await advance(50);
    });
    assert.deepEqual(coalescing.frames, plain.frames);
  });

  it('a value held on a critical lane and released early by another call: the later change keeps its own lane', async () => {
    const [plain, coalescing] = await both({ lanes: { 'c/*': 'critical' } }, ['c/a'], async (hub, advance) => {
      hub.publish('c/a', frozen([row(1, 1)]));
      await hub.publishJson('c/a', '[{"id":1,"v":2}]', { lane: 'low' }); // low: after the interval (1,000 ms)
      await advance(0);
      await advance(1000);
    });
    assert.deepEqual(coalescing.frames, plain.frames);
  });

  it('a held value released early by a call that changes nothing does not move the flush', async () => {
    const [plain, coalescing] = await both({}, ['t'], async (hub, advance) => {
      hub.publish('t', frozen([row(1, 1)])); // flush due at 50
      await advance(40);
      assert.equal(await hub.remove('t', 99), null); // no such row
      for (let k = 0; k < 6; k++) await advance(10);
    });
    assert.deepEqual(coalescing.frames, plain.frames);
  });

  it('a held topic published on another lane keeps the debounce of the publishes before it', async () => {
    const [plain, coalescing] = await both({ pacing: { normalDebounceMs: 10 } }, ['t'], async (hub, advance) => {
      hub.publish('t', frozen({ n: 1, o: frozen({}) })); // normal: due at 10
      await advance(5);
      hub.publish('t', frozen({ n: 2, o: frozen({}) })); // normal: moves it to 15
      hub.publish('t', frozen({ n: 3, o: frozen({}) }), { lane: 'high' }); // high: 21, the earlier stays
      for (let k = 0; k < 4; k++) await advance(5);
    });
    assert.deepEqual(coalescing.frames, plain.frames);
  });

  it('a flush that asks for a value released since is answered by that release; a value held after it keeps its own flush', async () => {
    const [plain, coalescing] = await both({}, ['t'], async (hub, advance) => {
      hub.publish('t', frozen({ n: 1, o: frozen({}) })); // due at 50
      const asked = advance(50); // the flush falls due and asks for the value...
      const early = hub.publishJson('t', '{"n":2}'); // ...released by this call before the ask is read
      const later = hub.publish('t', frozen({ n: 3, o: frozen({}) })); // held anew: asked for at 100
      await asked;
      for (let k = 0; k < 3; k++) await advance(25);
      const versions = [(await early).version, (await later).version];
      return { versions, held: hub.stats().coalesced };
    });
    assert.deepEqual(coalescing.result, { versions: [2, 3], held: 0 });
    assert.deepEqual(coalescing.result, plain.result);
    assert.deepEqual(coalescing.frames, plain.frames);
  });
});
