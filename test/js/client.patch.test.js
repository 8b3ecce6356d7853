'use strict';
// The browser client's compact applier (lib/browser/patch.js) against the package's applyPatch
// (lib/apply_patch.js): the RFC 6902 suite, and random documents and patches on which the two must
// give equal results or both fail (with a DELTACAST_ code). Plus: the input untouched, unchanged subtrees shared.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const fc = require('fast-check');
const { applyPatch: shared } = require('../../lib/apply_patch.js');
const { applyPatch: compact } = require('../../lib/browser/patch.js');

function outcome(apply, doc, ops) {
  const before = JSON.stringify(doc);
  try {
    const result = apply(doc, ops);
    assert.equal(JSON.stringify(doc), before, 'the input was changed');
    return { ok: JSON.stringify(result) };
  } catch (e) {
    assert.equal(typeof e.code, 'string', `an error without a code: ${e.stack}`);
    assert.match(e.code, /^DELTACAST_/);
    return { failed: true };
  }
}

test('compact applier: the RFC 6902 test suite, with the same outcome as applyPatch', () => {
  let n = 0;
  for (const file of ['tests.json', 'spec_tests.json']) {
    for (const r of require(`json-patch-test-suite/${file}`)) {
      if (r.disabled || !('doc' in r) || !('patch' in r)) continue;
      n++;
      const got = outcome(compact, structuredClone(r.doc), r.patch);
      assert.deepEqual(got, outcome(shared, structuredClone(r.doc), r.patch), r.comment || JSON.stringify(r.patch));
      if ('error' in r) assert.ok(got.failed, `expected an error: ${r.error}`);
      else if ('expected' in r) assert.deepEqual(JSON.parse(got.ok), r.expected);
    }
  }
  assert.ok(n > 90, `${n} records`);
});

const segment = fc.constantFrom('a', 'b', 'id', '0', '1', '2', '-', '01', '~0', '~1', '~', '~2', '', '__proto__', 'x/y');
const pointer = fc.oneof(fc.constant(''), fc.array(segment, { minLength: 1, maxLength: 3 }).map((s) => '/' + s.join('/')), fc.constantFrom('a', 'a/b'));
const value = fc.jsonValue({ maxDepth: 2 });
const op = fc.oneof(
  fc.record({ op: fc.constantFrom('add', 'replace', 'test'), path: pointer, value }),
  fc.record({ op: fc.constant('remove'), path: pointer }),
  fc.record({ op: fc.constantFrom('move', 'copy'), from: pointer, path: pointer }),
  fc.record({ op: fc.constantFrom('add', 'nope'), path: fc.oneof(pointer, fc.constant(3)) }),
);
const doc = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.dictionary(fc.constantFrom('a', 'b', 'id', '0', '1', '~', 'x/y'), fc.jsonValue({ maxDepth: 2 })),
  fc.array(fc.record({ id: fc.nat(5), a: fc.jsonValue({ maxDepth: 1 }) }), { maxLength: 4 }),
);

test('compact applier: random documents and patches give the outcome of applyPatch', () => {
  fc.assert(
    fc.property(doc, fc.array(op, { maxLength: 4 }), (d, ops) => {
      assert.deepEqual(outcome(compact, d, ops), outcome(shared, d, ops));
    }),
    { numRuns: 3000 },
  );
});

test('compact applier: unchanged rows keep their identity, copies do not alias', () => {
  const rows = Array.from({ length: 100 }, (_, i) => ({ id: i, v: 0 }));
  const next = compact(rows, [{ op: 'replace', path: '/5/v', value: 1 }, { op: 'replace', path: '/5/w', value: 2 }].slice(0, 1));
  assert.notEqual(next, rows);
  assert.equal(next[4], rows[4]);
  assert.notEqual(next[5], rows[5]);
  const d = compact({ a: { x: 1 } }, [
    { op: 'add', path: '/a/y', value: 2 },
    { op: 'copy', from: '/a', path: '/b' },
    { op: 'replace', path: '/b/x', value: 9 },
  ]);
  assert.deepEqual(d, { a: { x: 1, y: 2 }, b: { x: 9, y: 2 } });
});
