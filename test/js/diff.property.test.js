'use strict';

// Property tests of diff / diffJson against three appliers (deltacast's applyPatch, the native
// applyPatchJson and fast-json-patch), on random JSON documents and on realistic pairs: `b` is
// derived from `a` by random edits (rows inserted, deleted, moved, fields changed, types changed),
// plus fully independent pairs.

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const fc = require('fast-check');
const jsonpatch = require('fast-json-patch');

const { diff, diffJson, applyPatch, applyPatchJson } = require('../../lib/index.js');

const NUM_RUNS = 500;
// A fixed seed, so a run is repeatable; DELTACAST_SEED=<integer> tries other cases. A failure
// prints the seed and fast-check's path for replay; the seed is also printed up front.
const SEED = seedFromEnvironment();
const params = { numRuns: NUM_RUNS, seed: SEED };
console.log(`# diff property tests: seed ${SEED} (rerun with DELTACAST_SEED=${SEED})`);

function seedFromEnvironment() {
  const given = process.env.DELTACAST_SEED;
  if (given === undefined || given === '') return 20261130;
  const seed = Number(given);
  if (!Number.isSafeInteger(seed)) throw new Error(`DELTACAST_SEED must be an integer, got ${JSON.stringify(given)}`);
  return seed | 0;
}

/** The JSON-normal form: -0 becomes 0, and a value compares by what JSON carries. */
function normal(value) {
  return JSON.parse(JSON.stringify(value));
}

function hasOwn(object, key) {
  return Object.prototype.hasOwnProperty.call(object, key);
}

function isObject(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** Defines an own data member, even for "__proto__" (plain assignment would set the prototype). */
function setOwn(object, key, value) {
  Object.defineProperty(object, key, { value, writable: true, enumerable: true, configurable: true });
}

/** A deep copy that keeps -0 and own "__proto__" members. */
function clone(value) {
  if (Array.isArray(value)) return value.map(clone);
  if (isObject(value)) {
    const out = {};
    for (const key of Object.keys(value)) setOwn(out, key, clone(value[key]));
    return out;
  }
  return value;
}

// ---------------------------------------------------------------------------------------------
// Arbitraries

const specialChar = fc.constantFrom(
  '/', '~', '"', '\\', '\n', '\t', '\r', '\b', '\f', '\u0000', '\u001f', '\u007f', '\u2028', '\u2029',
  'é', 'ü', '€', '日', '😀', '\ufeff', ' ',
);
const char = fc.oneof(
  { weight: 3, arbitrary: fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 1 }) },
  { weight: 2, arbitrary: specialChar },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 1 }) },
);
const text = fc.string({ unit: char, maxLength: 8 });

const shortKey = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      'id', 'name', 'a', 'b', 'c', 'value', 'rows', 'tags', '', '/', '~', '~0', '~1', '/~', 'a/b', 'm~n',
      '"', 'say "hi"', '\\', '__proto__', 'constructor', 'toString', 'hasOwnProperty', '0', '1', '-',
      ' ', 'é', '😀', '日本', '\u0000',
    ),
  },
  { weight: 1, arbitrary: text },
);
// Long keys (UUIDs, URLs, file paths as keys); '~' and '/' grow as pointer segments.
const longKey = fc.string({ unit: fc.constantFrom('k', '~', '/', 'é'), minLength: 30, maxLength: 60 });
const key = fc.oneof({ weight: 4, arbitrary: shortKey }, { weight: 1, arbitrary: longKey });

const number = fc.oneof(
  fc.integer({ min: -1000, max: 1000 }),
  fc.maxSafeInteger(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.constantFrom(0, -0, 0.1, 0.5, -1.5, 1e21, 1e-7, 5e-324, 1.7976931348623157e308, -Number.MAX_SAFE_INTEGER),
);

const scalar = fc.oneof(fc.constant(null), fc.boolean(), number, text);

// Row ids come from a small space, so independently generated tables share rows.
const rowId = fc.oneof(
  { weight: 3, arbitrary: fc.integer({ min: 0, max: 15 }) },
  { weight: 1, arbitrary: fc.constantFrom('r0', 'r1', 'r2', 'r3', '0', '1', '', 'ü/~') },
);
const idKeyOf = (id) => `${typeof id}:${id}`;

/** Builds an object from entries as own members (Object.fromEntries defines, never sets). */
const objectOf = (entries) => Object.fromEntries(entries);

/** Documents and pairs of documents whose object keys come from `keyArb`. */
function arbitraries(keyArb) {
  const { doc, table } = fc.letrec((tie) => ({
    doc: fc.oneof(
      { maxDepth: 4, depthIdentifier: 'doc' },
      scalar,
      tie('array'),
      tie('object'),
      tie('table'),
    ),
    array: fc.array(tie('doc'), { maxLength: 5, depthIdentifier: 'doc' }),
    object: fc.array(fc.tuple(keyArb, tie('doc')), { maxLength: 5, depthIdentifier: 'doc' }).map(objectOf),
    row: fc
      .tuple(
        rowId,
        fc.record(
          { name: text, qty: number, done: fc.boolean(), tags: fc.array(scalar, { maxLength: 3 }), extra: tie('doc') },
          { requiredKeys: [] },
        ),
      )
      .map(([id, fields]) => ({ id, ...fields })),
    table: fc.oneof(
      { weight: 5, arbitrary: fc.uniqueArray(tie('row'), { maxLength: 12, selector: (row) => idKeyOf(row.id) }) },
      { weight: 1, arbitrary: fc.array(tie('row'), { maxLength: 6 }) }, // duplicate ids allowed
    ),
  }));

  /** Documents, with a bias towards the realistic shape: an object holding keyed tables. */
  const document = fc.oneof(
    { weight: 2, arbitrary: doc },
    { weight: 2, arbitrary: fc.record({ rows: table, meta: doc }) },
    { weight: 1, arbitrary: table },
  );

  // An edit is a bag of random numbers and values; applyEdit interprets it against the current
  // document, so every edit applies whatever the shape.
  const edit = fc.record({
    kind: fc.nat(),
    where: fc.nat(),
    i: fc.nat(),
    j: fc.nat(),
    key: keyArb,
    value: doc,
    id: rowId,
  });

  const derivedPair = fc.tuple(document, fc.array(edit, { maxLength: 6 })).map(([a, edits]) => {
    let b = clone(a);
    for (const e of edits) b = applyEdit(b, e);
    return { a, b };
  });
  const independentPair = fc.tuple(document, document).map(([a, b]) => ({ a, b }));
  const pair = fc.oneof({ weight: 4, arbitrary: derivedPair }, { weight: 1, arbitrary: independentPair });
  return { doc, document, derivedPair, pair };
}

function containersOf(root) {
  const out = [];
  const stack = [root];
  while (stack.length > 0) {
    const node = stack.pop();
    if (node === null || typeof node !== 'object') continue;
    out.push(node);
    for (const child of Array.isArray(node) ? node : Object.values(node)) stack.push(child);
  }
  return out;
}

function isKeyedTable(array) {
  return array.length > 0 && array.every((row) => isObject(row) && hasOwn(row, 'id'));
}

/** A value of another JSON type than `value`, built from it. */
function changeType(value, e) {
  const options = [
    () => null,
    () => [value],
    () => ({ wrapped: value }),
    () => JSON.stringify(value) ?? 'x',
    () => (typeof value === 'number' ? String(value) : e.i),
    () => !value,
    () => e.value,
  ];
  return options[e.j % options.length]();
}

// Generated values are shared with fast-check (which replays them while shrinking), so an edit
// only ever puts a fresh copy of e.value into the document and never mutates it.
function applyEdit(root, edit) {
  const e = { ...edit, value: clone(edit.value) };
  const containers = containersOf(root);
  // One edit in twelve replaces the root (often with another type).
  if (containers.length === 0 || e.kind % 12 === 0) return e.kind % 24 === 0 ? e.value : changeType(root, e);
  const node = containers[e.where % containers.length];
  if (Array.isArray(node)) {
    const n = node.length;
    switch (e.kind % 6) {
      case 0: {
        // insert: a new row into a keyed table, any value elsewhere
        const inserted = isKeyedTable(node) ? { id: e.id, name: 'inserted', extra: e.value } : e.value;
        node.splice(e.i % (n + 1), 0, inserted);
        break;
      }
      case 1:
        if (n > 0) node.splice(e.i % n, 1);
        break;
      case 2:
      case 3:
        if (n > 0) {
          const [moved] = node.splice(e.i % n, 1);
          node.splice(e.j % n, 0, moved);
        }
        break;
      case 4:
        if (n > 0) node[e.i % n] = changeType(node[e.i % n], e);
        break;
      default:
        if (n > 0) node[e.i % n] = e.value;
    }
    return root;
  }
  const keys = Object.keys(node);
  const k = keys.length > 0 ? keys[e.i % keys.length] : undefined;
  switch (e.kind % 6) {
    case 0:
      setOwn(node, e.key, e.value);
      break;
    case 1:
      if (k !== undefined) delete node[k];
      break;
    case 2:
      if (k !== undefined) setOwn(node, k, e.value);
      break;
    case 3:
    case 4:
      if (k !== undefined) setOwn(node, k, changeType(node[k], e));
      break;
    default:
      // rename a member (a row's "id" included: the row then changes identity)
      if (k !== undefined && k !== e.key) {
        const value = node[k];
        delete node[k];
        setOwn(node, e.key, value);
      }
  }
  return root;
}

// Every property runs on documents with all kinds of keys, long ones included; the general size
// law runs on short keys, and long keys get their own size-law property.
const { document, pair } = arbitraries(key);
const shortKeyed = arbitraries(shortKey);

// ---------------------------------------------------------------------------------------------

function assertSizeLaw(a, b) {
  const ops = diff(a, b);
  // Bytes, as the core counts them (a string's UTF-16 length is not its size on the wire).
  const size = Buffer.byteLength(JSON.stringify(ops));
  const snapshot = Buffer.byteLength(JSON.stringify(b));
  // One `replace` of the whole document costs the snapshot plus 37 characters of
  // framing ([{"op":"replace","path":"","value":…}]); the core accepts precise
  // operations up to 32 bytes beyond that.
  assert.ok(size <= snapshot + 37 + 32, `patch of ${size} chars, snapshot of ${snapshot}: ${JSON.stringify(ops)}`);
}

/** True when fast-json-patch refuses the ops by design (it bans __proto__ and constructor/prototype). */
function touchesPrototype(ops) {
  return ops.some((op) =>
    [op.path, op.from].some((p) => typeof p === 'string' && /(^|\/)(__proto__|constructor\/prototype)(\/|$)/.test(p)),
  );
}

describe('diff properties', () => {
  it('the generators produce what they promise', () => {
    // A sanity check of the arbitraries, so the properties below are not vacuous.
    const samples = fc.sample(pair, { numRuns: 2000, seed: 42 });
    const stats = { keyedTable: 0, protoKey: 0, changedRoot: 0, equal: 0, negativeZero: 0, sharedRows: 0 };
    for (const { a, b } of samples) {
      const all = [...containersOf(a), ...containersOf(b)];
      if (all.some((c) => Array.isArray(c) && c.length > 2 && isKeyedTable(c))) stats.keyedTable++;
      if (all.some((c) => isObject(c) && hasOwn(c, '__proto__'))) stats.protoKey++;
      const typeOf = (v) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);
      if (typeOf(a) !== typeOf(b)) stats.changedRoot++;
      if (JSON.stringify(a) === JSON.stringify(b)) stats.equal++;
      if (JSON.stringify(a, (_, v) => (Object.is(v, -0) ? '<-0>' : v)).includes('<-0>')) stats.negativeZero++;
      if (isObject(a) && isObject(b) && Array.isArray(a.rows) && Array.isArray(b.rows)) {
        const idOf = (row) => (isObject(row) ? idKeyOf(row.id) : undefined);
        const ids = new Set(a.rows.map(idOf));
        if (b.rows.some((r) => ids.has(idOf(r))) && JSON.stringify(a.rows) !== JSON.stringify(b.rows)) {
          stats.sharedRows++;
        }
      }
    }
    for (const [name, count] of Object.entries(stats)) {
      assert.ok(count >= 20, `only ${count} of 2000 samples with ${name}`);
    }
    assert.ok(stats.equal < 1000, `${stats.equal} of 2000 pairs are equal`);
  });

  it('applyPatch(a, diff(a, b)) is b, and a is left untouched', () => {
    fc.assert(
      fc.property(pair, ({ a, b }) => {
        const before = JSON.stringify(a);
        const ops = diff(a, b);
        assert.deepStrictEqual(normal(applyPatch(a, ops)), normal(b));
        assert.equal(JSON.stringify(a), before);
      }),
      params,
    );
  });

  it('fast-json-patch applies the same ops to the same result', () => {
    fc.assert(
      fc.property(pair, ({ a, b }) => {
        const ops = diff(a, b);
        fc.pre(!touchesPrototype(ops));
        const result = jsonpatch.applyPatch(jsonpatch.deepClone(a), ops, true, false).newDocument;
        assert.deepStrictEqual(normal(result), normal(b));
      }),
      params,
    );
  });

  it('applyPatchJson(JSON.stringify(a), diff(a, b)) is b', () => {
    fc.assert(
      fc.property(pair, ({ a, b }) => {
        const ops = diff(a, b);
        assert.deepStrictEqual(JSON.parse(applyPatchJson(JSON.stringify(a), ops)), normal(b));
        assert.deepStrictEqual(JSON.parse(applyPatchJson(JSON.stringify(a), JSON.stringify(ops))), normal(b));
      }),
      params,
    );
  });

  it('diff(a, a) is [], also against a copy and with members in another order', () => {
    fc.assert(
      fc.property(document, fc.nat(), (a, seed) => {
        assert.deepStrictEqual(diff(a, a), []);
        assert.deepStrictEqual(diff(a, clone(a)), []);
        assert.deepStrictEqual(diff(a, normal(a)), []);
        assert.deepStrictEqual(diff(a, reorderMembers(a, seed)), []);
      }),
      params,
    );
  });

  it('diffJson of the texts equals diff of the values, for strings and bytes', () => {
    fc.assert(
      fc.property(pair, ({ a, b }) => {
        const expected = diff(a, b);
        const ta = JSON.stringify(a);
        const tb = JSON.stringify(b);
        assert.deepStrictEqual(diffJson(ta, tb), expected);
        assert.deepStrictEqual(diffJson(Buffer.from(ta), new TextEncoder().encode(tb)), expected);
        // Pretty-printed texts may choose other ops (sizes differ), but they must still apply.
        const pretty = diffJson(JSON.stringify(a, null, 2), JSON.stringify(b, null, '\t'));
        assert.deepStrictEqual(normal(applyPatch(a, pretty)), normal(b));
      }),
      params,
    );
  });

  it('the size law: a patch is never much bigger than a snapshot', () => {
    fc.assert(
      fc.property(shortKeyed.pair, ({ a, b }) => assertSizeLaw(a, b)),
      params,
    );
  });

  // A single operation whose path is long (a long key, or '~' and '/' that double as pointer
  // escapes) must still give way to one replace of its container when that is smaller.
  // Regression: diff({ ['k'.repeat(1000)]: 1 }, {}) once came out at 1028 chars.
  it('the size law holds for documents with long keys', () => {
    const smallObject = fc.array(fc.tuple(longKey, scalar), { minLength: 1, maxLength: 3 }).map(objectOf);
    fc.assert(
      fc.property(smallObject, fc.nat(), fc.boolean(), (a, pick, removeIt) => {
        const b = clone(a);
        const keys = Object.keys(b);
        const k = keys[pick % keys.length];
        if (removeIt) delete b[k];
        else setOwn(b, k, [b[k]]);
        assertSizeLaw(a, b);
      }),
      params,
    );
  });
});

/** A copy of `value` whose objects list their members in a shuffled order. */
function reorderMembers(value, seed) {
  if (Array.isArray(value)) return value.map((v, i) => reorderMembers(v, seed + i));
  if (!isObject(value)) return value;
  const keys = Object.keys(value);
  const order = keys.map((k, i) => [((seed + 1) * 2654435761 + i * 40503) % 1000003, k]).sort((x, y) => x[0] - y[0]);
  const out = {};
  for (const [, k] of order) setOwn(out, k, reorderMembers(value[k], seed + 7));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Keyed moves are minimal

/** Length of a longest strictly increasing subsequence (patience sorting). */
function lisLength(sequence) {
  const tails = [];
  for (const x of sequence) {
    let lo = 0;
    let hi = tails.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (tails[mid] < x) lo = mid + 1;
      else hi = mid;
    }
    tails[lo] = x;
  }
  return tails.length;
}

/** A permutation of 0..n-1, from random sort keys (shrinks towards the identity). */
const permutation = fc
  .array(fc.nat({ max: 1000 }), { maxLength: 80 })
  .map((weights) => weights.map((w, i) => [w, i]).sort((x, y) => x[0] - y[0] || x[1] - y[1]).map(([, i]) => i));

describe('keyed moves', () => {
  it('lisLength is right on known cases', () => {
    assert.equal(lisLength([]), 0);
    assert.equal(lisLength([0, 1, 2]), 3);
    assert.equal(lisLength([2, 1, 0]), 1);
    assert.equal(lisLength([3, 0, 1, 4, 2]), 3);
    assert.equal(lisLength([1, 0, 3, 2, 5, 4]), 3);
  });

  it('a permutation of unique-id rows is all moves, at most n - LIS of them', () => {
    fc.assert(
      fc.property(permutation, fc.boolean(), fc.boolean(), (perm, stringIds, nested) => {
        // Rows big enough that a move is always cheaper than replacing the array.
        const makeRow = (i) => ({ id: stringIds ? `row-${i}` : i, payload: `payload of row ${i} `.repeat(6) });
        const before = perm.map((_, i) => makeRow(i));
        const after = perm.map((i) => makeRow(i));
        const a = nested ? { table: { rows: before } } : before;
        const b = nested ? { table: { rows: after } } : after;
        const ops = diff(a, b);
        assert.ok(ops.every((op) => op.op === 'move'), JSON.stringify(ops));
        const bound = perm.length - lisLength(perm);
        assert.ok(ops.length <= bound, `${ops.length} moves for a permutation needing ${bound}: ${perm}`);
        // It is also the least any sequence of single-element moves can do.
        assert.equal(ops.length, bound);
        assert.deepStrictEqual(applyPatch(a, ops), b);
        assert.deepStrictEqual(JSON.parse(applyPatchJson(JSON.stringify(a), ops)), b);
        assert.deepStrictEqual(jsonpatch.applyPatch(jsonpatch.deepClone(a), ops, true, false).newDocument, b);
      }),
      params,
    );
  });

  it('a permutation with rows changed, inserted and removed moves only what it must', () => {
    fc.assert(
      fc.property(
        permutation,
        fc.array(fc.nat(), { maxLength: 5 }),
        fc.array(fc.nat(), { maxLength: 5 }),
        fc.array(fc.nat(), { maxLength: 5 }),
        (perm, changed, removed, inserted) => {
          const makeRow = (i, tag = '') => ({ id: i, payload: `payload of row ${i} `.repeat(6), tag });
          const a = perm.map((_, i) => makeRow(i));
          const gone = new Set(perm.length === 0 ? [] : removed.map((r) => r % perm.length));
          let order = perm.filter((i) => !gone.has(i));
          const b = order.map((i) => makeRow(i, changed.some((c) => c % perm.length === i) ? 'changed' : ''));
          for (const [k, at] of inserted.entries()) b.splice(at % (b.length + 1), 0, makeRow(1000 + k));
          const ops = diff(a, b);
          assert.deepStrictEqual(applyPatch(a, ops), b);
          assert.deepStrictEqual(JSON.parse(applyPatchJson(JSON.stringify(a), ops)), b);
          // When the added rows outweigh the array, one replace of it is the smaller patch.
          if (ops.length === 1 && ops[0].op === 'replace' && ops[0].path === '') return;
          // Moves are bounded by the kept rows' disorder.
          order = order.filter((i) => i < 1000);
          const moves = ops.filter((op) => op.op === 'move').length;
          assert.ok(moves <= order.length - lisLength(order), `${moves} moves for ${order}`);
          assert.equal(ops.filter((op) => op.op === 'remove').length, gone.size);
          assert.equal(ops.filter((op) => op.op === 'add').length, inserted.length);
        },
      ),
      params,
    );
  });
});
