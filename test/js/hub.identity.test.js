'use strict';

// hub.publish() of immutable states by identity (lib/identity.js): a frozen
// root array, or { immutable: true }. Only rows not seen before are
// serialized; what reaches the core is a patch of replaced rows or the full
// text. The result must be the old one byte for byte: a hub publishing by
// identity and a hub publishing the same values the old way (JSON.stringify
// of an unfrozen copy) give the same answers, the same stored text and the
// same frames, through random immutable edits, frozen and not, with in-place
// mutations, deletes, upserts, duplicate ids, TTL expiry and eviction in
// between.
//
// DELTACAST_IDENTITY_SEED=<n> and DELTACAST_IDENTITY_STEPS=<n> replay or stretch a run.

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const v8 = require('node:v8');
const vm = require('node:vm');

const { createHub, codes } = require('../../lib/index.js');
const { IdentityCache } = require('../../lib/identity.js');
const { makeBoard, mutate, mulberry32 } = require('../../bench/data.js');

const SEED = Number(process.env.DELTACAST_IDENTITY_SEED ?? 20261130);
const STEPS = Number(process.env.DELTACAST_IDENTITY_STEPS ?? 600);
const TTL_MS = 50;


function deepFreeze(value) {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const key of Object.keys(value)) deepFreeze(value[key]);
  }
  return value;
}

// Counts the publishes that went to the core as a patch, and those of them
// with ops on a row's members (rows replaced by copies with a member changed).
let patchesSent = 0;
let memberPatches = 0;
const prepare = IdentityCache.prototype.prepare;
IdentityCache.prototype.prepare = function countingPrepare(...args) {
  const text = prepare.apply(this, args);
  if (this.patched) patchesSent += 1;
  if (this.patched && /"path":"\/\d+\//.test(text)) memberPatches += 1;
  return text;
};

/** A connection that records every frame, its epochs replaced by the hub's own names (E0, E1, ...). */
function recorder(hub, topics) {
  const frames = [];
  const connection = hub.connect({ send: (frame) => frames.push(frame), acks: false });
  for (const topic of topics) connection.receive(JSON.stringify({ t: 'sub', topic }));
  return frames;
}

/** Epochs differ between hubs: each is named by its order of appearance. */
function normalizer() {
  const names = new Map();
  return (epoch) => {
    if (!names.has(epoch)) names.set(epoch, `E${names.size}`);
    return names.get(epoch);
  };
}

function normalizeFrames(frames, name) {
  return frames.map((frame) => frame.replace(/"(e|epoch)":"([^"]*)"/g, (_, key, epoch) => `"${key}":"${name(epoch)}"`));
}

async function outcome(receipt, name) {
  try {
    const result = await receipt;
    return result === null ? null : { epoch: name(result.epoch), version: result.version };
  } catch (err) {
    return { code: err.code, message: err.message };
  }
}

const WEIRD = ['', 'plain', 'é😀', 'quote"back\\slash', 'ctl\u0001\u001f\u007f', 'line\u2028sep', '\ud800lone', 'tab\tnl\n', '</script>'];
const KEYS = ['a/b', 'm~n', '~1', '/', 'q"k\\', 'é😀', '\ud800', ''];
const NUMBERS = [0, -0, 1.5, -2, 1e21, 1e-7, 2 ** 53 + 2, NaN, Infinity, -Infinity, 123456789.125];

describe('hub.publish by identity', () => {
  it('equals publishing the old way byte for byte (property test over random immutable edits)', { timeout: 120_000 }, async () => {
    const rand = mulberry32(SEED);
    const pick = (list) => list[Math.floor(rand() * list.length)];
    const options = { clock: 'manual', lanes: { '**': 'critical' }, ttl: { 'ttl/*': TTL_MS } };
    const topics = ['board', 'ttl/board', 'other', 'doc'];
    const plain = createHub(options);
    const byIdentity = createHub(options);
    const plainFrames = recorder(plain, topics);
    const identityFrames = recorder(byIdentity, topics);
    const namePlain = normalizer();
    const nameIdentity = normalizer();
    let nextId = 0;

    const row = (frozen) => {
      const r = { id: nextId % 7 === 3 ? nextId : `r${nextId}`, price: pick(NUMBERS), name: pick(WEIRD) };
      nextId += 1;
      const extra = rand();
      if (extra < 0.15) r.gone = undefined;
      else if (extra < 0.25) r.fn = () => 1;
      else if (extra < 0.4) r.list = [pick(NUMBERS), undefined, null, pick(WEIRD), () => 2, { x: pick(WEIRD) }];
      else if (extra < 0.5) r.nested = { a: { b: [pick(NUMBERS)] } };
      else if (extra < 0.55) r.when = new Date(1_700_000_000_000 + nextId); // toJSON: serialized every time
      if (rand() < 0.2) r[pick(KEYS)] = pick(NUMBERS); // a key a JSON pointer must escape
      return frozen ? deepFreeze(r) : r;
    };
    // How the state of a topic is published: frozen (deep), frozen root with
    // unfrozen rows (mutated in place at times), or unfrozen with { immutable: true }.
    const states = new Map();
    const modes = new Map();
    const fresh = (topic) => {
      const mode = pick(['frozen', 'frozen', 'shallow', 'immutable']);
      modes.set(topic, mode);
      const n = 1 + Math.floor(rand() * 12);
      const rows = Array.from({ length: n }, () => row(mode === 'frozen'));
      if (rand() < 0.1) rows.push(pick([null, 7, 'text', -0]));
      return rows;
    };
    const edit = (topic, rows) => {
      const mode = modes.get(topic);
      const next = rows.slice();
      let kind = rand();
      if (kind < 0.4 && next.length > 0) {
        // Ticks: rows replaced by copies with a member or two changed (sent
        // member by member when frozen), or gone, or of another kind.
        for (let k = 0; k < 1 + Math.floor(rand() * 3); k++) {
          const i = Math.floor(rand() * next.length);
          const old = next[i];
          if (old === null || typeof old !== 'object' || Array.isArray(old) || old instanceof Date) continue;
          const copy = { ...old };
          const keys = Object.keys(copy);
          for (let m = rand() < 0.75 ? 1 : 0; m < 2; m++) {
            copy[pick(keys)] = pick([pick(NUMBERS), pick(NUMBERS), pick(WEIRD), undefined, () => 3, { x: pick(WEIRD) }, [pick(NUMBERS), null]]);
          }
          next[i] = mode === 'frozen' ? deepFreeze(copy) : copy;
        }
        return next;
      }
      kind = (kind - 0.4) / 0.6;
      if (kind < 0.5 && next.length > 0) {
        for (let k = 0; k < 1 + Math.floor(rand() * 3); k++) next[Math.floor(rand() * next.length)] = row(mode === 'frozen');
      } else if (kind < 0.6 && next.length > 0) {
        const i = Math.floor(rand() * next.length);
        if (next[i] !== null && typeof next[i] === 'object' && !(next[i] instanceof Date)) next[i] = { ...next[i] }; // same text, new object
        if (mode === 'frozen') deepFreeze(next[i]);
      } else if (kind < 0.7) {
        next.splice(Math.floor(rand() * (next.length + 1)), 0, row(mode === 'frozen'));
      } else if (kind < 0.78 && next.length > 1) {
        next.splice(Math.floor(rand() * next.length), 1);
      } else if (kind < 0.85 && next.length > 1) {
        const [moved] = next.splice(Math.floor(rand() * next.length), 1);
        next.splice(Math.floor(rand() * next.length), 0, moved);
      } else if (kind < 0.95 && mode === 'shallow') {
        // A row mutated in place and published again: it must be seen.
        const r = next.find((x) => x !== null && typeof x === 'object' && !Object.isFrozen(x));
        if (r !== undefined) r.price = pick(NUMBERS);
        return Object.freeze(rows); // the same root, frozen already
      }
      return next;
    };
    // 'doc' holds an object around the rows (another shape than a root array).
    const wrap = (rows) => ({
      title: pick(WEIRD),
      rows,
      byId: Object.fromEntries(rows.filter((r) => r !== null && typeof r === 'object' && 'id' in r).map((r) => [r.id, r])),
      count: rows.length,
      skip: undefined,
      method: () => 1,
      list: [undefined, () => 2, Symbol('s'), -0, { id: 'nested' }, { id: 'n2' }],
    });
    const publishBoth = (topic, rows, opts) => {
      const mode = modes.get(topic);
      let value = rows;
      if (topic === 'doc') {
        value = wrap(rows);
        if (mode !== 'immutable') Object.freeze(value.byId);
      }
      if (mode !== 'immutable') Object.freeze(value);
      const identityOpts = mode === 'immutable' ? { ...opts, immutable: true } : opts;
      return [
        outcome(plain.publish(topic, Array.isArray(value) ? Array.from(value) : { ...value }, opts), namePlain),
        outcome(byIdentity.publish(topic, value, identityOpts), nameIdentity),
      ];
    };

    patchesSent = 0;
    memberPatches = 0;
    for (let step = 0; step < STEPS; step++) {
      const topic = pick(topics);
      const action = rand();
      const pending = [];
      if (action < 0.65 || !states.has(topic)) {
        // One to three publishes of this topic in the same turn.
        const count = rand() < 0.8 ? 1 : 2 + Math.floor(rand() * 2);
        for (let k = 0; k < count; k++) {
          const before = states.get(topic);
          const value = before === undefined || rand() < 0.03 ? fresh(topic) : rand() < 0.05 ? before : edit(topic, before);
          states.set(topic, value);
          const opts = rand() < 0.15 ? { id: `c${Math.floor(rand() * 20)}` } : rand() < 0.1 ? { lane: 'high' } : undefined;
          pending.push(...publishBoth(topic, value, opts));
        }
      } else if (action < 0.72) {
        pending.push(plain.delete(topic).then((found) => ({ found })), byIdentity.delete(topic).then((found) => ({ found })));
        states.delete(topic);
      } else if (action < 0.8) {
        // A change by another call: the next publish by identity must not build on the old text.
        const up = { id: `u${step}`, price: step };
        pending.push(outcome(plain.upsert(topic, up.id, up), namePlain), outcome(byIdentity.upsert(topic, up.id, up), nameIdentity));
      } else if (action < 0.85) {
        const text = JSON.stringify([{ id: 'j', step }]);
        pending.push(outcome(plain.publishJson(topic, text), namePlain), outcome(byIdentity.publishJson(topic, text), nameIdentity));
      } else {
        // Time passes: ttl/board expires, change ids leave the dedup window.
        const ms = pick([1, 10, TTL_MS + 1]);
        pending.push(plain.advance(ms), byIdentity.advance(ms));
      }
      const results = await Promise.all(pending);
      for (let k = 0; k < results.length; k += 2) {
        assert.deepEqual(results[k + 1], results[k], `step ${step} (seed ${SEED}): answers differ`);
      }
      await Promise.all([plain.advance(0), byIdentity.advance(0)]);
      for (const t of topics) {
        assert.equal(byIdentity.getJson(t)?.json, plain.getJson(t)?.json, `step ${step} (seed ${SEED}): ${t} differs`);
      }
    }
    await Promise.all([plain.advance(1000), byIdentity.advance(1000)]);
    assert.deepEqual(normalizeFrames(identityFrames, nameIdentity), normalizeFrames(plainFrames, namePlain));
    assert.ok(plainFrames.length > STEPS / 2, `frames were delivered (${plainFrames.length})`);
    assert.ok(patchesSent > STEPS / 10, `patches were sent (${patchesSent})`);
    assert.ok(memberPatches > 0, `patches with member ops were sent (${memberPatches})`);
    const stats = [plain.stats(), byIdentity.stats()];
    assert.equal(stats[1].rejected, stats[0].rejected);
    assert.equal(stats[1].changes, stats[0].changes);
    await Promise.all([plain.close(), byIdentity.close()]);
  });

  it('sends a patch for a frozen board with 1% of rows replaced, and the board is the one published', async () => {
    const hub = createHub();
    let board = deepFreeze(makeBoard(1000));
    await hub.publish('board', board);
    patchesSent = 0;
    for (let i = 0; i < 5; i++) {
      board = deepFreeze(mutate(board, { fraction: 0.01, seed: i }));
      const result = await hub.publish('board', board);
      assert.equal(result.version, i + 2);
      assert.equal(hub.getJson('board').json, JSON.stringify(board));
    }
    assert.equal(patchesSent, 5);
    // A price tick changes three members of a row: sent as their ops, not the row's text.
    const ticked = deepFreeze(mutate(board, { fraction: 0.002, seed: 99 }));
    const cache = new IdentityCache(hub.options);
    cache.prepare('b', board, false, 0);
    cache.sent(1, '', 0);
    cache.answered(1, 1, null, false); // flags 1: the publish made a version
    const ops = JSON.parse(cache.prepare('b', ticked, false, 0));
    assert.equal(cache.patched, true);
    const changedAt = ticked.flatMap((row, i) => (row === board[i] ? [] : [i]));
    assert.equal(changedAt.length, 2);
    assert.deepEqual(
      ops.map((op) => op.path),
      changedAt.flatMap((i) => ['price', 'change24h', 'updatedAt'].map((key) => `/${i}/${key}`)),
    );
    assert.deepEqual(ops.map((op) => op.value), changedAt.flatMap((i) => [ticked[i].price, ticked[i].change24h, ticked[i].updatedAt]));
    // Publishes in one turn: the first may go as a patch, the others go in full, each its own version.
    const a = deepFreeze(mutate(board, { seed: 10 }));
    const b = deepFreeze(mutate(a, { seed: 11, insertMid: true }));
    const answers = await Promise.all([hub.publish('board', a), hub.publish('board', b), hub.publish('board', b)]);
    assert.deepEqual(answers.map((x) => x?.version ?? null), [7, 8, null]);
    assert.equal(hub.getJson('board').json, JSON.stringify(b));
    await hub.close();
  });

  it('sees a row mutated in place unless the caller said immutable: true', async () => {
    const hub = createHub();
    const rows = [{ id: 'a', n: 1 }, deepFreeze({ id: 'b', n: 1 })];
    const root = Object.freeze(rows.slice()); // frozen root, the first row not frozen
    await hub.publish('t', root);
    rows[0].n = 2; // the same row object, mutated
    assert.equal((await hub.publish('t', root))?.version, 2);
    assert.deepEqual(hub.get('t').data, [{ id: 'a', n: 2 }, { id: 'b', n: 1 }]);
    // Shallowly frozen rows are not trusted either: their children may change.
    const inner = { n: 1 };
    const shallow = Object.freeze([Object.freeze({ id: 'c', inner })]);
    await hub.publish('s', shallow);
    inner.n = 5;
    assert.equal((await hub.publish('s', shallow))?.version, 2);
    assert.deepEqual(hub.get('s').data, [{ id: 'c', inner: { n: 5 } }]);
    // { immutable: true } is the caller's promise: a mutation in place breaks it and goes unseen.
    const trusted = [{ id: 'x', n: 1 }];
    await hub.publish('u', trusted, { immutable: true });
    trusted[0].n = 2;
    const next = [trusted[0]];
    assert.equal(await hub.publish('u', next, { immutable: true }), null);
    assert.deepEqual(hub.get('u').data, [{ id: 'x', n: 1 }]);
    // Without the promise the same value is serialized as it is.
    assert.equal((await hub.publish('u', next))?.version, 2);
    assert.deepEqual(hub.get('u').data, [{ id: 'x', n: 2 }]);
    await hub.close();
  });

  it('publishes a topic that expired or was evicted meanwhile in full, answering calls in order', async () => {
    // Expired: the hub knows the TTL, and a topic idle that long goes in full.
    const hub = createHub({ clock: 'manual', ttl: { 'tmp/*': 10 } });
    let board = deepFreeze(makeBoard(50));
    const first = await hub.publish('tmp/a', board);
    await hub.advance(20);
    assert.equal(hub.get('tmp/a'), undefined);
    board = deepFreeze(mutate(board, { fraction: 0.1, seed: 1 }));
    patchesSent = 0;
    const again = await hub.publish('tmp/a', board);
    assert.equal(patchesSent, 0);
    assert.equal(again.version, 1);
    assert.notEqual(again.epoch, first.epoch);
    assert.equal(hub.getJson('tmp/a').json, JSON.stringify(board));

    // Evicted (the memory budget) in an earlier turn: the hub reads the
    // core's eviction count, and the next publish goes in full.
    const small = createHub({ memory: { maxBytes: 450_000 } });
    let rows = deepFreeze(makeBoard(100));
    const before = await small.publish('rows', rows);
    await small.publishJson('big', JSON.stringify(makeBoard(500, 2))); // evicts 'rows'
    assert.equal(small.get('rows'), undefined);
    rows = deepFreeze(mutate(rows, { seed: 3 }));
    patchesSent = 0;
    const fresh = await small.publish('rows', rows);
    assert.equal(patchesSent, 0);
    assert.equal(fresh.version, 1);
    assert.notEqual(fresh.epoch, before.epoch);
    assert.equal(small.getJson('rows').json, JSON.stringify(rows));
    await small.delete('big');

    // (That publish may have evicted 'big': any eviction since a publish was
    // sent makes the next one go in full. With room again, patches resume.)
    await small.publish('rows', (rows = deepFreeze(mutate(rows, { seed: 4 }))));
    patchesSent = 0;
    await small.publish('rows', (rows = deepFreeze(mutate(rows, { seed: 5 }))));
    assert.equal(patchesSent, 1);
    assert.equal(small.getJson('rows').json, JSON.stringify(rows));

    // Evicted by a call of the same turn, queued before the publish: the
    // patch is refused by the core and sent again in full under the same
    // call; the calls after it keep their order.
    rows = deepFreeze(mutate(rows, { seed: 6 }));
    patchesSent = 0;
    const order = [];
    const answers = await Promise.all(
      [
        small.publishJson('big', JSON.stringify(makeBoard(500, 3))), // evicts 'rows' (least recently used)
        small.publish('rows', rows),
        small.publish('other', [1]),
        small.publish('other', [2]),
      ].map((receipt, i) =>
        receipt.then((answer) => {
          order.push(i);
          return answer;
        }),
      ),
    );
    assert.equal(patchesSent, 1);
    assert.deepEqual(order, [0, 1, 2, 3]);
    assert.equal(answers[1].version, 1);
    assert.notEqual(answers[1].epoch, fresh.epoch, 'made anew');
    assert.deepEqual(answers.slice(2).map((x) => x.version), [1, 2]);
    assert.equal(small.getJson('rows').json, JSON.stringify(rows));
    assert.equal(small.stats().rejected, 0, 'the refused patch is not counted as a refused call');
    await Promise.all([hub.close(), small.close()]);
  });

  it('after an eviction, the next publish and the calls queued behind it act as without identity', async () => {
    // The topic was evicted in an earlier turn; the publish goes in full
    // (the hub reads the core's eviction count), so the calls after it in
    // the same turn find it made, as with a plain publish.
    const run = async (frozen, follow) => {
      const hub = createHub({ clock: 'manual', lanes: { '**': 'critical' }, memory: { maxBytes: 4000 }, ttl: { '*': 100 } });
      const value = (v) => (frozen ? deepFreeze(v) : JSON.parse(JSON.stringify(v)));
      const a = value([{ id: 'a', p: 1 }, { id: 'b', p: 1 }]);
      await hub.publish('t', a);
      await hub.publishJson('big', JSON.stringify(['x'.repeat(3400)])); // evicts 't'
      assert.equal(hub.get('t'), undefined);
      await hub.delete('big');
      const b = frozen ? deepFreeze([a[0], { id: 'b', p: 2 }]) : value([a[0], { id: 'b', p: 2 }]);
      const answers = await Promise.all([hub.publish('t', b), follow(hub)]);
      const out = { answers: answers.map((x) => x?.version ?? x), t: hub.getJson('t')?.json ?? null, stats: hub.stats() };
      await hub.close();
      return { answers: out.answers, t: out.t, expirations: out.stats.expirations, evictions: out.stats.evictions };
    };
    const follows = {
      'advance past the TTL': (hub) => hub.advance(150),
      'a publish that evicts it': (hub) => hub.publishJson('big2', JSON.stringify(['y'.repeat(3400)])).then((r) => r.version),
      'an upsert into it': (hub) => hub.upsert('t', 'c', { id: 'c' }).then((r) => r.version),
    };
    for (const [name, follow] of Object.entries(follows)) {
      assert.deepEqual(await run(true, follow), await run(false, follow), name);
    }
  });

  it('refuses and serializes unusual values exactly as before', async () => {
    const hub = createHub();
    const plainHub = createHub();
    const bad = await hub.publish('t', [], { immutable: 'yes' }).catch((err) => err);
    assert.equal(bad.code, codes.INVALID_ARGUMENT);
    const cyclic = { id: 'c' };
    cyclic.self = cyclic;
    const cases = [
      Object.freeze([cyclic]),
      Object.freeze([{ id: 'b', big: 1n }]),
      Object.freeze([{ id: 'k', toJSON: (key) => `key:${key}` }]), // toJSON sees its index as key in the array
      Object.freeze([{ id: 'd', when: new Date(0) }]),
      Object.freeze([Object.freeze(Object.create({ inherited: 1 }, { id: { value: 'p', enumerable: true } }))]),
      Object.freeze([Object.freeze(new String('boxed'))]),
      Object.freeze(Object.assign([1, 2], { toJSON: () => 'array toJSON' })),
      // An iterator of its own: the rows are read by index, as JSON.stringify reads them.
      Object.freeze(Object.assign([{ id: 'i' }, 2], { [Symbol.iterator]: () => [{ id: 'other' }][Symbol.iterator]() })),
      Object.freeze(Object.assign(new Array(3), { 0: { id: 'h' }, 2: 3 })), // a hole: null
      Object.freeze([
        Object.freeze({
          id: 'g',
          get now() {
            return 'getter';
          },
        }),
      ]),
    ];
    // A root object: its text is built from its members' (rows' texts reused).
    const root = Object.freeze({ rows: Object.freeze([Object.freeze({ id: 1 })]) });
    await hub.publish('o', root);
    await hub.publish('o', { ...root, more: true }, { immutable: true });
    assert.equal(hub.getJson('o').json, '{"rows":[{"id":1}],"more":true}');
    for (const value of cases) {
      const [mine, theirs] = await Promise.all([
        hub.publish('t', value).then(
          () => hub.getJson('t').json,
          (err) => `${err.code}: ${err.message}`,
        ),
        plainHub.publish('t', Array.prototype.slice.call(value)).then(
          () => plainHub.getJson('t').json,
          (err) => `${err.code}: ${err.message}`,
        ),
      ]);
      // The copy (not frozen: published the old way) drops an array's own toJSON: compare with JSON.stringify for that one.
      if (typeof value.toJSON === 'function') assert.equal(mine, `"array toJSON"`);
      else assert.equal(mine, theirs);
    }
    await Promise.all([hub.close(), plainHub.close()]);
  });

  it('a publish refused as too large leaves nothing of its rows for the next full text', async () => {
    const hub = createHub({ limits: { maxValueBytes: 200 } });
    const a = deepFreeze([{ id: 'a', p: 1 }, { id: 'b', p: 1 }, { id: 'c', p: 1 }]);
    await hub.publish('t', a);
    // Same length, rows 0 and 2 replaced: its full text is over the limit.
    const tooLarge = deepFreeze([{ id: 'a', p: 'stale' }, a[1], { id: 'c', p: 'x'.repeat(250) }]);
    await assert.rejects(hub.publish('t', tooLarge), { code: codes.TOO_LARGE });
    // Back to a's rows, c ticked twice in one turn: the second goes as full text.
    const b = deepFreeze([a[0], a[1], { id: 'c', p: 2 }]);
    const c = deepFreeze([a[0], a[1], { id: 'c', p: 3 }]);
    const answers = await Promise.all([hub.publish('t', b), hub.publish('t', c)]);
    assert.deepEqual(answers.map((x) => x.version), [2, 3]);
    assert.equal(hub.getJson('t').json, JSON.stringify(c));
    await hub.close();
  });

  it('an unchanged value republished after its topic was evicted makes the topic again', async () => {
    const pad = 'x'.repeat(2000);
    const value = deepFreeze([{ id: 'a', pad }]);
    const answers = [];
    for (const frozen of [false, true]) {
      const hub = createHub({ memory: { maxBytes: 4000 } });
      const publish = () => hub.publish('a', frozen ? value : JSON.parse(JSON.stringify(value)));
      const first = await publish();
      await hub.publishJson('b', JSON.stringify({ pad })); // evicts 'a'
      assert.equal(hub.get('a'), undefined);
      const again = await publish();
      assert.notEqual(again, null, 'the value is published again');
      assert.notEqual(again.epoch, first.epoch);
      answers.push(again.version);
      assert.equal(hub.getJson('a').json, JSON.stringify(value));
      // Unchanged while the topic is there: no version, as before.
      assert.equal(await publish(), null);
      await hub.close();
    }
    assert.deepEqual(answers, [1, 1]);
  });

  it('a value equal to the stored one but for key order: later patches build on the text the core kept', async () => {
    const plain = createHub();
    const byIdentity = createHub();
    const a = deepFreeze([{ a: 1, b: 2 }, ...Array.from({ length: 9 }, (_, i) => ({ id: i, n: 1 }))]);
    const reordered = deepFreeze([{ b: 2, a: 1 }, ...a.slice(1)]); // no change to the core: it keeps its text
    const ticked = deepFreeze(reordered.map((row, i) => (i === 5 ? { ...row, n: 2 } : row))); // a real change
    for (const value of [a, reordered, ticked]) {
      const [p, i] = await Promise.all([plain.publish('t', JSON.parse(JSON.stringify(value))), byIdentity.publish('t', value)]);
      assert.equal(i?.version, p?.version);
      assert.equal(byIdentity.getJson('t').json, plain.getJson('t').json);
    }
    assert.equal(plain.getJson('t').json, JSON.stringify(ticked));
    await Promise.all([plain.close(), byIdentity.close()]);
  });

  it('a publish made from a getter while a value is read goes first, and the value read after it is the one stored', async () => {
    const hub = createHub();
    const a = deepFreeze([{ id: 'a', p: 1 }, { id: 'b', p: 1 }, { id: 'c', p: 1 }, { id: 'd', p: 1 }]);
    await hub.publish('t', a);
    const inner = deepFreeze([{ id: 'a', q: 'inner' }, a[1], a[2], { id: 'd', q: 'inner' }]);
    let innerReceipt = null;
    const getter = Object.freeze({
      id: 'b',
      get p() {
        innerReceipt ??= hub.publish('t', inner);
        return 'outer';
      },
    });
    const outer = Object.freeze([a[0], getter, a[2], a[3]]);
    const outerReceipt = hub.publish('t', outer);
    assert.deepEqual([(await innerReceipt).version, (await outerReceipt).version], [2, 3]);
    assert.equal(hub.getJson('t').json, JSON.stringify(outer));
    const next = deepFreeze([a[0], a[1], a[2], { id: 'd', p: 2 }]);
    await Promise.all([hub.publish('t', deepFreeze([a[0], a[1], a[2], { id: 'd', p: 3 }])), hub.publish('t', next)]);
    assert.equal(hub.getJson('t').json, JSON.stringify(next));
    await hub.close();
  });

  it('any call on the topic made from a getter while a value is serialized by identity leaves the value published last', async () => {
    // A row with a getter is serialized by JSON.stringify while the identity
    // cache redoes the topic's entry; a publishJson, delete, upsert, patch or
    // publish from that getter goes first, and the outer value, which goes
    // after it, must not be sent as a patch against the text before it.
    // Random immutable edits (inserts, removals, replacements), with and
    // without coalescing; every awaited receipt is checked against get().
    const rand = mulberry32(SEED + 7);
    const pick = (n) => Math.floor(rand() * n);
    let checked = 0;
    for (const coalesce of [false, true]) {
      for (let run = 0; run < 60; run++) {
        const hub = createHub({ heartbeat: { intervalMs: 0 }, pacing: { coalesce, normalDebounceMs: 2, normalMaxWaitMs: 10 } });
        let armed = null; // run once, from the next getter read
        const row = (id, v, withGetter) => {
          if (!withGetter) return Object.freeze({ id, v });
          return Object.freeze(
            Object.defineProperties({}, {
              id: { enumerable: true, value: id },
              v: {
                enumerable: true,
                get() {
                  const call = armed;
                  armed = null;
                  call?.();
                  return v;
                },
              },
            }),
          );
        };
        let current = Object.freeze(Array.from({ length: 5 + pick(30) }, (_, i) => row(i, i, rand() < 0.2)));
        await hub.publish('t', current);
        for (let step = 0; step < 6; step++) {
          const next = current.slice();
          for (let e = 1 + pick(3); e > 0; e--) {
            const k = pick(5);
            if (k === 0 && next.length > 1) next.splice(pick(next.length), 1);
            else if (k === 1) next.splice(pick(next.length + 1), 0, row(`n${step}.${e}`, 'new', rand() < 0.3));
            else if (next.length > 0) {
              const i = pick(next.length);
              next[i] = row(next[i].id, `s${step}.${e}`, rand() < 0.3);
            }
          }
          const other = current.map((r) => ({ id: r.id, v: 'inner' }));
          const key = String(current[0]?.id ?? 0);
          armed = [
            () => hub.publishJson('t', JSON.stringify(other)),
            () => hub.delete('t'),
            () => hub.upsert('t', key, { id: key, v: 'upserted' }),
            () => hub.patch('t', [{ op: 'add', path: '/-', value: { id: 'patched' } }]),
            () => hub.publish('t', deepFreeze(other)),
          ][pick(5)];
          current = Object.freeze(next);
          const receipt = hub.publish('t', current);
          armed = null;
          if (step === 5 || rand() < 0.5) {
            await receipt;
            assert.equal(hub.getJson('t')?.json, JSON.stringify(current), `coalesce ${coalesce}, run ${run}, step ${step}`);
            checked += 1;
          }
        }
        await hub.close();
      }
    }
    assert.ok(checked >= 120, `checked ${checked} states`);
  });

  it('stores only values a proxy over a frozen object holds, whatever order or iterator its traps give each time', async () => {
    // A non-extensible target fixes the set of its keys, not their order, nor
    // what an inherited property (Symbol.iterator) reads as.
    const swapOn = (target, call) => {
      let calls = 0;
      return new Proxy(target, {
        ownKeys(t) {
          const keys = Reflect.ownKeys(t);
          return calls++ === call ? [keys[0], keys[2], keys[1], ...keys.slice(3)] : keys;
        },
      });
    };
    for (let call = 0; call < 6; call++) {
      const hub = createHub();
      const board = deepFreeze([{ id: 'a', p: 1, q: 2, r: 0, s: 0, t: 0 }, { id: 'b' }]);
      await hub.publish('t', board);
      // A tick of one member, as a proxy: p and q are 1 and 2 in whatever order.
      await hub.publish('t', Object.freeze([swapOn(deepFreeze({ ...board[0], t: 1 }), call), board[1]]));
      assert.deepEqual(JSON.parse(hub.getJson('t').json), [{ id: 'a', p: 1, q: 2, r: 0, s: 0, t: 1 }, { id: 'b' }], `swapped on call ${call}`);
      await hub.publish('o', swapOn(deepFreeze({ id: 'o', a: 1, b: 2, rows: [{ id: 1 }, { id: 2 }] }), call));
      assert.deepEqual(JSON.parse(hub.getJson('o').json), { id: 'o', a: 1, b: 2, rows: [{ id: 1 }, { id: 2 }] }, `swapped on call ${call}`);
      await hub.close();
    }
    const hub = createHub();
    let asked = 0;
    const rows = new Proxy(deepFreeze([{ id: 1 }, { id: 2 }]), {
      get(t, key, receiver) {
        if (key === Symbol.iterator && asked++ === 1) return [{ id: 'not in the array' }][Symbol.iterator].bind([{ id: 'not in the array' }]);
        return Reflect.get(t, key, receiver);
      },
    });
    await hub.publish('t', rows);
    assert.equal(hub.getJson('t').json, '[{"id":1},{"id":2}]');
    await hub.close();
  });

  it('keeps no published value once its topic is deleted, nor after close', { timeout: 30_000 }, async () => {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc');
    const hub = createHub();
    let board = deepFreeze(makeBoard(20));
    const held = new WeakRef(board);
    await hub.publish('t', board);
    await hub.publish('t2', (board = deepFreeze(mutate(board, { fraction: 0.5 }))));
    // The hub keeps the rows of a live topic (in an array of its own), not its root.
    const held2 = new WeakRef(board[0]);
    board = null;
    await hub.delete('t');
    await new Promise((resolve) => setImmediate(resolve));
    gc();
    assert.equal(held.deref(), undefined, 'the value of a deleted topic is not kept');
    assert.notEqual(held2.deref(), undefined, 'the value of a live topic is kept');
    await hub.close();
    await new Promise((resolve) => setImmediate(resolve));
    gc();
    assert.equal(held2.deref(), undefined, 'nothing is kept after close');
  });
});
