'use strict';

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');

const { applyPatch, jsonEqual, validateOperations } = require('../../lib/apply_patch.js');
const { DeltacastError } = require('../../lib/errors.js');

function deepFreeze(value) {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const key of Object.keys(value)) deepFreeze(value[key]);
  }
  return value;
}

/** Asserts that applyPatch(doc, ops) throws a DeltacastError with `code` and the given details. */
function assertFails(doc, ops, code, { index, op, path, message } = {}) {
  let caught;
  try {
    applyPatch(doc, ops);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught, 'applyPatch should have thrown');
  assert.ok(caught instanceof DeltacastError, `expected a DeltacastError, got ${caught}`);
  assert.equal(caught.code, code, caught.message);
  if (index !== undefined) assert.equal(caught.index, index);
  if (op !== undefined) assert.equal(caught.op, op);
  if (path !== undefined) assert.equal(caught.path, path);
  if (message !== undefined) {
    for (const part of [].concat(message)) {
      const shown = JSON.stringify(caught.message);
      assert.ok(caught.message.includes(part), `message ${shown} lacks ${JSON.stringify(part)}`);
    }
  }
  return caught;
}

function table(length) {
  const rows = [];
  for (let i = 0; i < length; i++) rows.push({ id: i, name: `row ${i}`, tags: ['a', 'b'] });
  return { meta: { title: 'rows', owner: { id: 7 } }, rows };
}

describe('add', () => {
  it('adds an object member', () => {
    assert.deepEqual(applyPatch({ a: 1 }, [{ op: 'add', path: '/b', value: 2 }]), { a: 1, b: 2 });
  });

  it('replaces an existing member', () => {
    assert.deepEqual(applyPatch({ a: 1 }, [{ op: 'add', path: '/a', value: 2 }]), { a: 2 });
  });

  it('inserts into an array at an index, at the end, and with "-"', () => {
    const doc = { list: ['x', 'z'] };
    const add = (path, value) => applyPatch(doc, [{ op: 'add', path, value }]);
    assert.deepEqual(add('/list/1', 'y'), { list: ['x', 'y', 'z'] });
    assert.deepEqual(add('/list/0', 'w'), { list: ['w', 'x', 'z'] });
    assert.deepEqual(add('/list/2', 'end'), { list: ['x', 'z', 'end'] });
    assert.deepEqual(add('/list/-', 'end'), { list: ['x', 'z', 'end'] });
    assert.deepEqual(doc, { list: ['x', 'z'] });
  });

  it('treats "-" as an ordinary key on objects', () => {
    assert.deepEqual(applyPatch({}, [{ op: 'add', path: '/-', value: 1 }]), { '-': 1 });
  });

  it('replaces the whole document with path ""', () => {
    assert.deepEqual(applyPatch({ a: 1 }, [{ op: 'add', path: '', value: [1] }]), [1]);
  });

  it('uses the value as given, without cloning it', () => {
    const value = { nested: [1] };
    const result = applyPatch({}, [{ op: 'add', path: '/v', value }]);
    assert.equal(result.v, value);
  });

  it('does not modify an added value when a later op writes into it', () => {
    const value = deepFreeze({ nested: { n: 1 } });
    const result = applyPatch({}, [
      { op: 'add', path: '/v', value },
      { op: 'add', path: '/v/nested/m', value: 2 },
    ]);
    assert.deepEqual(result, { v: { nested: { n: 1, m: 2 } } });
    assert.deepEqual(value, { nested: { n: 1 } });
  });

  it('unescapes ~0 and ~1 in that order', () => {
    const result = applyPatch({}, [
      { op: 'add', path: '/a~1b', value: 1 },
      { op: 'add', path: '/m~0n', value: 2 },
      { op: 'add', path: '/~01', value: 3 },
    ]);
    assert.deepEqual(result, { 'a/b': 1, 'm~n': 2, '~1': 3 });
  });
});

describe('remove', () => {
  it('removes an object member and an array element', () => {
    assert.deepEqual(applyPatch({ a: 1, b: 2 }, [{ op: 'remove', path: '/a' }]), { b: 2 });
    assert.deepEqual(applyPatch([1, 2, 3], [{ op: 'remove', path: '/1' }]), [1, 3]);
  });

  it('applies repeated removes to the current state', () => {
    assert.deepEqual(
      applyPatch([1, 2, 3, 4], [
        { op: 'remove', path: '/1' },
        { op: 'remove', path: '/2' },
      ]),
      [1, 3],
    );
  });

  it('rejects removing the whole document as an invalid patch', () => {
    assertFails({ a: 1 }, [{ op: 'remove', path: '' }], 'DELTACAST_INVALID_PATCH', {
      index: 0,
      op: 'remove',
      path: '',
      message: ['operation 0 (remove)', 'whole document'],
    });
  });
});

describe('replace', () => {
  it('replaces an object member and an array element', () => {
    assert.deepEqual(applyPatch({ a: 1 }, [{ op: 'replace', path: '/a', value: null }]), { a: null });
    assert.deepEqual(applyPatch(['x'], [{ op: 'replace', path: '/0', value: ['y'] }]), [['y']]);
  });

  it('replaces the root, including a scalar root', () => {
    assert.deepEqual(applyPatch({ a: 1 }, [{ op: 'replace', path: '', value: { b: 2 } }]), { b: 2 });
    assert.equal(applyPatch('foo', [{ op: 'replace', path: '', value: 'bar' }]), 'bar');
  });

  it('requires the target to exist', () => {
    assertFails({ a: 1 }, [{ op: 'replace', path: '/b', value: 1 }], 'DELTACAST_PATH_NOT_FOUND', {
      path: '/b',
      message: ['operation 0 (replace)', 'path "/b" not found', 'member "b" does not exist'],
    });
    assertFails([1], [{ op: 'replace', path: '/1', value: 1 }], 'DELTACAST_PATH_NOT_FOUND', {
      message: 'index 1 is out of range (array length 1)',
    });
  });

  it('keeps the member order of the object', () => {
    const result = applyPatch({ a: 1, b: 2, c: 3 }, [{ op: 'replace', path: '/b', value: 9 }]);
    assert.deepEqual(Object.keys(result), ['a', 'b', 'c']);
  });
});

describe('move', () => {
  it('moves an object member', () => {
    const doc = { foo: { bar: 'baz', waldo: 'fred' }, qux: { corge: 'grault' } };
    assert.deepEqual(applyPatch(doc, [{ op: 'move', from: '/foo/waldo', path: '/qux/thud' }]), {
      foo: { bar: 'baz' },
      qux: { corge: 'grault', thud: 'fred' },
    });
  });

  it('moves an array element (remove first, then add)', () => {
    const doc = { foo: ['all', 'grass', 'cows', 'eat'] };
    assert.deepEqual(applyPatch(doc, [{ op: 'move', from: '/foo/1', path: '/foo/3' }]), {
      foo: ['all', 'cows', 'eat', 'grass'],
    });
  });

  it('moving to the same location changes nothing but needs an existing from', () => {
    const doc = { a: { b: 1 } };
    assert.equal(applyPatch(doc, [{ op: 'move', from: '/a', path: '/a' }]), doc);
    assertFails(doc, [{ op: 'move', from: '/x', path: '/x' }], 'DELTACAST_PATH_NOT_FOUND', {
      message: 'from "/x" not found',
    });
  });

  it('moves a subtree to the root', () => {
    assert.deepEqual(applyPatch({ a: { b: 1 }, c: 2 }, [{ op: 'move', from: '/a', path: '' }]), { b: 1 });
  });

  it('rejects moving a value into its own child', () => {
    const ops = [{ op: 'move', from: '/a', path: '/a/b/c' }];
    const err = assertFails({ a: { b: {} } }, ops, 'DELTACAST_INVALID_PATCH', {
      index: 0,
      op: 'move',
      path: '/a/b/c',
      message: 'into its own child',
    });
    assert.ok(err.message.includes('"/a"'));
    assertFails({ a: 1 }, [{ op: 'move', from: '', path: '/a' }], 'DELTACAST_INVALID_PATCH');
  });

  it('does not treat a longer key as a child', () => {
    assert.deepEqual(applyPatch({ a: 1 }, [{ op: 'move', from: '/a', path: '/ab' }]), { ab: 1 });
  });

  it('reports a missing from as from', () => {
    const ops = [{ op: 'move', from: '/a/3', path: '/b' }];
    const err = assertFails({ a: [1] }, ops, 'DELTACAST_PATH_NOT_FOUND', {
      index: 0,
      op: 'move',
      path: '/b',
      message: ['operation 0 (move)', 'from "/a/3" not found', 'index 3 is out of range (array length 1)'],
    });
    assert.equal(err.from, '/a/3');
  });

  it('requires from to be a string', () => {
    assertFails({ a: 1 }, [{ op: 'move', path: '/b' }], 'DELTACAST_INVALID_PATCH', { message: '"from"' });
    assertFails({ a: 1 }, [{ op: 'copy', path: '/b', from: 3 }], 'DELTACAST_INVALID_PATCH', {
      message: '"from"',
    });
  });
});

describe('copy', () => {
  it('copies a value', () => {
    const doc = { baz: [{ qux: 'hello' }], bar: 1 };
    assert.deepEqual(applyPatch(doc, [{ op: 'copy', from: '/baz/0', path: '/boo' }]), {
      baz: [{ qux: 'hello' }],
      bar: 1,
      boo: { qux: 'hello' },
    });
  });

  it('copies the root into a member', () => {
    const result = applyPatch({ a: 1 }, [{ op: 'copy', from: '', path: '/self' }]);
    assert.deepEqual(result, { a: 1, self: { a: 1 } });
  });

  it('keeps the two places independent for later ops', () => {
    const doc = deepFreeze({ a: { list: [1, 2] } });
    const result = applyPatch(doc, [
      { op: 'add', path: '/a/list/-', value: 3 }, // /a and /a/list are now copies owned by the call
      { op: 'copy', from: '/a', path: '/b' },
      { op: 'add', path: '/b/list/-', value: 4 },
      { op: 'replace', path: '/a/list/0', value: 'first' },
    ]);
    assert.deepEqual(result, { a: { list: ['first', 2, 3] }, b: { list: [1, 2, 3, 4] } });
    assert.deepEqual(doc, { a: { list: [1, 2] } });
  });

  it('keeps a copied root independent', () => {
    const result = applyPatch({ a: 1 }, [
      { op: 'add', path: '/b', value: 2 },
      { op: 'copy', from: '', path: '/self' },
      { op: 'add', path: '/self/c', value: 3 },
      { op: 'add', path: '/d', value: 4 },
    ]);
    assert.deepEqual(result, { a: 1, b: 2, self: { a: 1, b: 2, c: 3 }, d: 4 });
  });

  it('requires from to exist', () => {
    const ops = [{ op: 'copy', from: '/baz/1e0', path: '/boo' }];
    assertFails({ baz: [1, 2, 3] }, ops, 'DELTACAST_PATH_NOT_FOUND', {
      message: ['operation 0 (copy)', 'from "/baz/1e0" not found', '"1e0" is not a valid index'],
    });
  });
});

describe('test', () => {
  it('passes on equal values and returns the document itself', () => {
    const doc = { a: { x: [1, { y: 2 }] }, s: 'str' };
    const result = applyPatch(doc, [
      { op: 'test', path: '/a', value: { x: [1, { y: 2 }] } },
      { op: 'test', path: '/s', value: 'str' },
      { op: 'test', path: '', value: { s: 'str', a: { x: [1, { y: 2 }] } } },
    ]);
    assert.equal(result, doc);
  });

  it('fails with DELTACAST_PATCH_TEST_FAILED', () => {
    assertFails({ a: 10 }, [{ op: 'test', path: '/a', value: '10' }], 'DELTACAST_PATCH_TEST_FAILED', {
      index: 0,
      op: 'test',
      path: '/a',
      message: ['operation 0 (test)', 'path "/a"', 'not equal', 'found 10', 'expected "10"'],
    });
  });

  it('fails with PATH_NOT_FOUND on a missing path and on "-"', () => {
    assertFails({ a: 1 }, [{ op: 'test', path: '/b', value: 1 }], 'DELTACAST_PATH_NOT_FOUND');
    assertFails({ a: [1] }, [{ op: 'test', path: '/a/-', value: 1 }], 'DELTACAST_PATH_NOT_FOUND', {
      message: '"-"',
    });
  });

  it('sees the effect of earlier ops', () => {
    assert.deepEqual(
      applyPatch({}, [
        { op: 'add', path: '/a', value: 1 },
        { op: 'test', path: '/a', value: 1 },
      ]),
      { a: 1 },
    );
  });
});

describe('jsonEqual', () => {
  it('compares by JSON value', () => {
    assert.ok(jsonEqual({ a: 1, b: [1, { c: null }] }, { b: [1, { c: null }], a: 1 }));
    assert.ok(jsonEqual(0, -0));
    assert.ok(jsonEqual(null, null));
    assert.ok(jsonEqual('x', 'x'));
    assert.ok(!jsonEqual(1, '1'));
    assert.ok(!jsonEqual(null, {}));
    assert.ok(!jsonEqual([], {}));
    assert.ok(!jsonEqual({ 0: 'a' }, ['a']));
    assert.ok(!jsonEqual([1, 2], [2, 1]));
    assert.ok(!jsonEqual({ a: 1 }, { a: 1, b: 2 }));
    assert.ok(!jsonEqual({ a: 1, b: 2 }, { a: 1 }));
    assert.ok(!jsonEqual({ a: undefined }, { b: undefined }));
    assert.ok(!jsonEqual(true, 1));
  });

  it('ignores prototypes other than array vs object', () => {
    const bare = Object.create(null);
    bare.a = 1;
    assert.ok(jsonEqual(bare, { a: 1 }));
  });

  it('handles very deep values without overflowing the stack', () => {
    let a = 0;
    let b = 0;
    for (let i = 0; i < 100000; i++) {
      a = [a];
      b = [b];
    }
    assert.ok(jsonEqual(a, b));
  });
});

describe('errors', () => {
  it('DELTACAST_INVALID_PATCH for malformed patches', () => {
    assertFails({}, { op: 'add' }, 'DELTACAST_INVALID_PATCH', { message: 'array of operations' });
    assertFails({}, [null], 'DELTACAST_INVALID_PATCH', { index: 0, message: 'operation 0' });
    assertFails({}, [{ op: 'add', path: '/a', value: 1 }, [1]], 'DELTACAST_INVALID_PATCH', { index: 1 });
    assertFails({}, [{ op: 'spam', path: '/a' }], 'DELTACAST_INVALID_PATCH', {
      op: 'spam',
      message: ['unknown "op" "spam"'],
    });
    assertFails({}, [{ path: '/a' }], 'DELTACAST_INVALID_PATCH', { message: 'missing "op"' });
    assertFails({}, [{ op: 'add', value: 1 }], 'DELTACAST_INVALID_PATCH', { message: '"path"' });
    assertFails({}, [{ op: 'remove', path: 3 }], 'DELTACAST_INVALID_PATCH', { message: '"path"' });
    for (const op of ['add', 'replace', 'test']) {
      assertFails([1], [{ op, path: '/0' }], 'DELTACAST_INVALID_PATCH', { op, message: 'missing "value"' });
      assertFails([1], [{ op, path: '/0', value: undefined }], 'DELTACAST_INVALID_PATCH');
    }
  });

  it('validates the whole patch before applying any of it', () => {
    // op 1 would fail on this document, but op 2 is malformed: the malformed op is reported.
    assertFails({}, [
      { op: 'add', path: '/a', value: 1 },
      { op: 'remove', path: '/missing' },
      { op: 'nope', path: '/a' },
    ], 'DELTACAST_INVALID_PATCH', { index: 2 });
  });

  it('DELTACAST_INVALID_POINTER for bad pointers', () => {
    assertFails({}, [{ op: 'add', path: 'a', value: 1 }], 'DELTACAST_INVALID_POINTER', {
      index: 0,
      op: 'add',
      path: 'a',
      message: ['operation 0 (add)', 'invalid path "a"', 'start with "/"'],
    });
    assertFails({}, [{ op: 'add', path: '/a~2', value: 1 }], 'DELTACAST_INVALID_POINTER', { message: '"~"' });
    assertFails({}, [{ op: 'add', path: '/a~', value: 1 }], 'DELTACAST_INVALID_POINTER');
    assertFails({ a: 1 }, [{ op: 'copy', from: 'a', path: '/b' }], 'DELTACAST_INVALID_POINTER', {
      message: 'invalid from "a"',
    });
  });

  it('DELTACAST_PATH_NOT_FOUND with the reason', () => {
    const doc = { rows: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], s: 'text', o: {} };
    const ops = [
      { op: 'test', path: '/s', value: 'text' },
      { op: 'test', path: '/s', value: 'text' },
      { op: 'add', path: '/x', value: 1 },
      { op: 'remove', path: '/rows/12' },
    ];
    assertFails(doc, ops, 'DELTACAST_PATH_NOT_FOUND', {
      index: 3,
      op: 'remove',
      path: '/rows/12',
      message: 'operation 3 (remove): path "/rows/12" not found: index 12 is out of range (array length 10)',
    });
    assertFails(doc, [{ op: 'add', path: '/missing/x', value: 1 }], 'DELTACAST_PATH_NOT_FOUND', {
      message: ['path "/missing/x" not found', 'member "missing" does not exist', 'document root'],
    });
    assertFails(doc, [{ op: 'remove', path: '/o/gone' }], 'DELTACAST_PATH_NOT_FOUND', {
      message: ['member "gone" does not exist', 'object at "/o"'],
    });
    assertFails(doc, [{ op: 'add', path: '/rows/11', value: 1 }], 'DELTACAST_PATH_NOT_FOUND', {
      message: 'index 11 is out of range (array length 10',
    });
    for (const bad of ['01', '-1', '1e0', '+1', ' 1', '0x1', '1.0', '']) {
      assertFails(doc, [{ op: 'replace', path: `/rows/${bad}`, value: 1 }], 'DELTACAST_PATH_NOT_FOUND', {
        message: `"${bad}" is not a valid index into the array at "/rows"`,
      });
    }
    assertFails(doc, [{ op: 'remove', path: '/rows/-' }], 'DELTACAST_PATH_NOT_FOUND', { message: '"-"' });
    assertFails(doc, [{ op: 'replace', path: '/rows/-', value: 1 }], 'DELTACAST_PATH_NOT_FOUND');
    assertFails(doc, [{ op: 'add', path: '/rows/-/x', value: 1 }], 'DELTACAST_PATH_NOT_FOUND');
    assertFails(doc, [{ op: 'add', path: '/s/x', value: 1 }], 'DELTACAST_PATH_NOT_FOUND', {
      message: 'the value at "/s" is a string, not an object or array',
    });
    assertFails(doc, [{ op: 'add', path: '/rows/0/x', value: 1 }], 'DELTACAST_PATH_NOT_FOUND', {
      message: 'the value at "/rows/0" is a number',
    });
    assertFails(5, [{ op: 'add', path: '/a', value: 1 }], 'DELTACAST_PATH_NOT_FOUND', {
      message: 'the value at the document root is a number',
    });
    assertFails([], [{ op: 'add', path: '/a', value: 1 }], 'DELTACAST_PATH_NOT_FOUND');
  });

  it('escapes pointers in messages', () => {
    assertFails({ 'a/b': {} }, [{ op: 'remove', path: '/a~1b/c' }], 'DELTACAST_PATH_NOT_FOUND', {
      message: 'object at "/a~1b"',
    });
  });
});

describe('validateOperations', () => {
  it('accepts a well-formed patch without looking at any document', () => {
    assert.equal(
      validateOperations([
        { op: 'add', path: '/a/-', value: 1 },
        { op: 'remove', path: '/x' },
        { op: 'replace', path: '', value: null },
        { op: 'move', from: '/a', path: '/b' },
        { op: 'copy', from: '', path: '/c' },
        { op: 'test', path: '/~0', value: false },
      ]),
      undefined,
    );
  });

  it('throws the same errors as applyPatch for malformed patches', () => {
    assert.throws(() => validateOperations('x'), { code: 'DELTACAST_INVALID_PATCH' });
    const invalid = { code: 'DELTACAST_INVALID_PATCH' };
    assert.throws(() => validateOperations([{ op: 'add', path: '/a' }]), { ...invalid, index: 0 });
    assert.throws(() => validateOperations([{ op: 'remove', path: '' }]), invalid);
    assert.throws(() => validateOperations([{ op: 'move', from: '/a', path: '/a/0' }]), invalid);
    assert.throws(() => validateOperations([{ op: 'test', path: 'x', value: 1 }]), {
      code: 'DELTACAST_INVALID_POINTER',
    });
  });
});

describe('purity and structural sharing', () => {
  it('works on a deep-frozen input and leaves it unchanged', () => {
    const doc = deepFreeze(table(50));
    const before = JSON.stringify(doc);
    const result = applyPatch(doc, [
      { op: 'add', path: '/rows/-', value: { id: 50 } },
      { op: 'remove', path: '/rows/0' },
      { op: 'replace', path: '/rows/3/name', value: 'renamed' },
      { op: 'add', path: '/rows/4/tags/1', value: 'inserted' },
      { op: 'move', from: '/rows/5', path: '/rows/0' },
      { op: 'copy', from: '/meta/owner', path: '/rows/6/owner' },
      { op: 'test', path: '/meta/title', value: 'rows' },
      { op: 'add', path: '/meta/owner/name', value: 'x' },
    ]);
    assert.equal(JSON.stringify(doc), before);
    assert.equal(result.rows.length, 50);
    assert.deepEqual(result.rows[0], { id: 6, name: 'row 6', tags: ['a', 'b'] });
    assert.equal(result.rows[3].name, 'row 3');
    assert.equal(result.rows[4].name, 'renamed');
    assert.deepEqual(result.rows[5].tags, ['a', 'inserted', 'b']);
    assert.deepEqual(result.rows[6], { id: 7, name: 'row 7', tags: ['a', 'b'], owner: { id: 7 } });
    assert.deepEqual(result.meta.owner, { id: 7, name: 'x' });
    assert.deepEqual(result.rows[49], { id: 50 });
  });

  it('shares every unchanged subtree with the input', () => {
    const doc = table(100);
    const result = applyPatch(doc, [{ op: 'replace', path: '/rows/42/name', value: 'changed' }]);
    assert.notEqual(result, doc);
    assert.notEqual(result.rows, doc.rows);
    assert.notEqual(result.rows[42], doc.rows[42]);
    assert.equal(result.rows[42].tags, doc.rows[42].tags);
    assert.equal(result.meta, doc.meta);
    for (let i = 0; i < 100; i++) if (i !== 42) assert.equal(result.rows[i], doc.rows[i]);
    assert.equal(doc.rows[42].name, 'row 42');
  });

  it('returns the input itself for an empty patch', () => {
    const doc = { a: 1 };
    assert.equal(applyPatch(doc, []), doc);
  });

  it('copies a container once however many ops touch it', () => {
    const doc = deepFreeze(table(10000));
    const ops = [];
    for (let i = 0; i < 1000; i++) {
      ops.push({ op: 'replace', path: `/rows/${i * 10}/name`, value: `new ${i}` });
    }
    const result = applyPatch(doc, ops);
    for (let i = 0; i < 10000; i++) {
      if (i % 10 === 0) {
        assert.equal(result.rows[i].name, `new ${i / 10}`);
        assert.equal(result.rows[i].tags, doc.rows[i].tags);
      } else {
        assert.equal(result.rows[i], doc.rows[i]);
      }
    }
    assert.equal(doc.rows[0].name, 'row 0');
  });

  it('makes one copy per container per call (observed through Array.prototype.slice)', () => {
    const doc = table(10000);
    const original = Array.prototype.slice;
    let slices = 0;
    Array.prototype.slice = function countedSlice(...args) {
      slices++;
      return original.apply(this, args);
    };
    let result;
    try {
      const ops = [];
      for (let i = 0; i < 10; i++) ops.push({ op: 'replace', path: `/rows/${i}/id`, value: -i });
      result = applyPatch(doc, ops);
    } finally {
      Array.prototype.slice = original;
    }
    assert.equal(slices, 1);
    assert.equal(result.rows[9].id, -9);
  });
});

describe('atomicity', () => {
  it('a failure at the end of a long patch throws and leaves the input unchanged', () => {
    const doc = table(1000);
    const before = JSON.stringify(doc);
    const ops = [];
    for (let i = 0; i < 500; i++) ops.push({ op: 'replace', path: `/rows/${i}/name`, value: 'x' });
    ops.push({ op: 'remove', path: '/meta/title' });
    ops.push({ op: 'test', path: '/meta/owner/id', value: 8 });
    assertFails(doc, ops, 'DELTACAST_PATCH_TEST_FAILED', { index: 501 });
    assert.equal(JSON.stringify(doc), before);
  });
});

describe('prototype pollution', () => {
  it('does not follow an inherited __proto__', () => {
    assertFails({}, [{ op: 'add', path: '/__proto__/polluted', value: 1 }], 'DELTACAST_PATH_NOT_FOUND', {
      message: 'member "__proto__" does not exist',
    });
    const notFound = 'DELTACAST_PATH_NOT_FOUND';
    assertFails({}, [{ op: 'add', path: '/constructor/prototype/polluted', value: 1 }], notFound);
    assertFails({ a: {} }, [{ op: 'add', path: '/a/__proto__/polluted', value: 1 }], notFound);
    assertFails({}, [{ op: 'test', path: '/toString', value: 1 }], 'DELTACAST_PATH_NOT_FOUND');
    assertFails({}, [{ op: 'remove', path: '/__proto__' }], 'DELTACAST_PATH_NOT_FOUND');
    assertFails({}, [{ op: 'replace', path: '/hasOwnProperty', value: 1 }], 'DELTACAST_PATH_NOT_FOUND');
    assertFails({}, [{ op: 'copy', from: '/__proto__', path: '/x' }], 'DELTACAST_PATH_NOT_FOUND');
    assert.equal({}.polluted, undefined);
    assert.equal(Object.prototype.polluted, undefined);
  });

  it('adds __proto__ as an own member', () => {
    const result = applyPatch({}, [{ op: 'add', path: '/__proto__', value: { polluted: 1 } }]);
    assert.ok(Object.prototype.hasOwnProperty.call(result, '__proto__'));
    assert.equal(Object.getPrototypeOf(result), Object.prototype);
    assert.equal(result.polluted, undefined);
    assert.deepEqual(Object.keys(result), ['__proto__']);
    assert.equal(JSON.stringify(result), '{"__proto__":{"polluted":1}}');
    assert.equal({}.polluted, undefined);
  });

  it('writes into an own __proto__ member without touching prototypes', () => {
    const doc = JSON.parse('{"__proto__":{"a":1}}');
    const result = applyPatch(doc, [
      { op: 'add', path: '/__proto__/polluted', value: 1 },
      { op: 'test', path: '/__proto__', value: JSON.parse('{"a":1,"polluted":1}') },
      { op: 'copy', from: '/__proto__', path: '/copied' },
      { op: 'replace', path: '/__proto__', value: 2 },
    ]);
    assert.equal(JSON.stringify(result), '{"__proto__":2,"copied":{"a":1,"polluted":1}}');
    assert.equal(Object.getPrototypeOf(result), Object.prototype);
    assert.equal(JSON.stringify(doc), '{"__proto__":{"a":1}}');
    assert.equal({}.polluted, undefined);
    const removed = applyPatch(doc, [{ op: 'remove', path: '/__proto__' }]);
    assert.deepEqual(Object.keys(removed), []);
  });

  it('adds constructor and prototype as ordinary members', () => {
    const result = applyPatch({}, [
      { op: 'add', path: '/constructor', value: {} },
      { op: 'add', path: '/constructor/prototype', value: {} },
      { op: 'add', path: '/constructor/prototype/polluted', value: 1 },
      { op: 'add', path: '/toString', value: 'own' },
    ]);
    assert.equal(JSON.stringify(result), '{"constructor":{"prototype":{"polluted":1}},"toString":"own"}');
    assert.equal({}.polluted, undefined);
    assert.equal(typeof {}.toString, 'function');
  });

  it('keeps null-prototype objects null-prototype', () => {
    const doc = Object.create(null);
    doc.a = 1;
    const result = applyPatch(doc, [{ op: 'add', path: '/__proto__', value: 1 }]);
    assert.equal(Object.getPrototypeOf(result), null);
    assert.deepEqual(Object.keys(result), ['a', '__proto__']);
  });
});
