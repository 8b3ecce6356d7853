'use strict';
// Numbers, values JSON cannot carry, duplicate member names, row keys and the
// patch limits (issue 8, sections 2, 3 and 6).

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const { createHub, applyPatch, applyPatchJson, diff, diffJson, codes } = require('../../lib/index.js');
const { settle, tick } = require('../../lib/testing.js');

function manualHub(t, options = {}) {
  const hub = createHub({ clock: 'manual', ...options });
  t.after(() => hub.close());
  return hub;
}

/** A connection that records every frame as text and subscribes to `topic`. */
function subscriber(hub, topic) {
  const frames = [];
  const connection = hub.connect({ send: (frame) => frames.push(frame) });
  connection.receive(JSON.stringify({ t: 'sub', topic }));
  return { frames, connection };
}

// Numbers a double cannot hold, and texts a double would rewrite.
const NUMBERS = ['1e400', '-1e400', '1e-400', '18446744073709551616', '123456789012345678901234567890', '1.0', '1E2', '-0'];

describe('numbers keep their text', () => {
  it('applyPatchJson writes every untouched number back byte for byte', () => {
    for (const n of NUMBERS) {
      const doc = `{"v":${n},"w":[${n}]}`;
      assert.equal(applyPatchJson(doc, []), doc);
      assert.equal(applyPatchJson(doc, '[]'), doc);
      assert.equal(applyPatchJson(doc, [{ op: 'add', path: '/x', value: 1 }]), `{"v":${n},"w":[${n}],"x":1}`);
      assert.equal(applyPatchJson(doc, '[{"op":"move","from":"/v","path":"/m"}]'), `{"w":[${n}],"m":${n}}`);
    }
    // values the patch carries are written as the patch gives them
    assert.equal(applyPatchJson('{}', '[{"op":"add","path":"/v","value":123456789012345678901234567890}]'),
      '{"v":123456789012345678901234567890}');
    // test compares numbers by value
    assert.equal(applyPatchJson('{"v":1.0}', '[{"op":"test","path":"/v","value":1}]'), '{"v":1.0}');
  });

  it('hub.patch sends only the change and keeps untouched numbers for every subscriber', async (t) => {
    const hub = manualHub(t);
    const doc = '{"big":1e400,"tiny":1e-400,"u":18446744073709551616,"long":123456789012345678901234567890,"w":1}';
    await hub.publishJson('n', doc);
    const early = subscriber(hub, 'n');
    await settle(hub);
    await tick(hub, 1000);
    early.frames.length = 0;
    const receipt = await hub.patch('n', [{ op: 'replace', path: '/w', value: 2 }]);
    assert.equal(receipt.version, 2);
    await tick(hub, 1000);
    assert.equal(early.frames.length, 1);
    const frame = JSON.parse(early.frames[0]);
    assert.equal(frame.t, 'patch');
    assert.deepEqual(frame.ops, [{ op: 'replace', path: '/w', value: 2 }]);
    const expected = doc.replace('"w":1', '"w":2');
    assert.equal(hub.getJson('n').json, expected);
    // a late subscriber gets the same text
    const late = subscriber(hub, 'n');
    await tick(hub, 1000);
    assert.ok(late.frames.some((f) => f.includes(expected)), late.frames.join('\n'));
  });

  it('upsert and remove keep the other rows\' numbers', async (t) => {
    const hub = manualHub(t);
    await hub.publishJson('r', '[{"id":1,"x":1e400},{"id":2,"x":18446744073709551616}]');
    await hub.upsert('r', 3, { id: 3 });
    await hub.remove('r', 2);
    assert.equal(hub.getJson('r').json, '[{"id":1,"x":1e400},{"id":3}]');
  });

  it('diffJson can return the patch as JSON text, so nothing is rounded', () => {
    const a = '{"v":1}';
    const b = '{"v":123456789012345678901234567890}';
    assert.equal(diffJson(a, b, { output: 'json' }), '[{"op":"replace","path":"/v","value":123456789012345678901234567890}]');
    assert.equal(diffJson(a, b)[0].value, 1.2345678901234568e29); // as JS values: rounded, as documented
    assert.equal(applyPatchJson(a, diffJson(a, b, { output: 'json' })), b);
    assert.equal(diff({ v: 1 }, { v: 2 }, { output: 'json' }), '[{"op":"replace","path":"/v","value":2}]');
    assert.deepEqual(diffJson(a, b, { output: 'ops' }), diffJson(a, b));
    assert.throws(() => diffJson(a, b, { output: 'text' }), { code: codes.INVALID_ARGUMENT });
  });
});

describe('values JSON cannot carry: one rule for both appliers', () => {
  const cycle = {};
  cycle.self = cycle;
  const cases = [
    ['NaN', NaN],
    ['Infinity', Infinity],
    ['-Infinity inside', { a: [1, -Infinity] }],
    ['undefined inside', { a: undefined }],
    ['a BigInt', 1n],
    ['a function', { f() {} }],
    ['a symbol', [Symbol('s')]],
    ['a cycle', cycle],
  ];
  for (const [name, value] of cases) {
    it(`${name} is refused with DELTACAST_INVALID_VALUE by applyPatch and applyPatchJson`, () => {
      for (const op of ['add', 'replace', 'test']) {
        const ops = [{ op, path: '/v', value }];
        assert.throws(() => applyPatch({ v: 0 }, ops), { code: codes.INVALID_VALUE }, `applyPatch ${op}`);
        assert.throws(() => applyPatchJson('{"v":0}', ops), { code: codes.INVALID_VALUE }, `applyPatchJson ${op}`);
      }
    });
  }

  it('hub.patch refuses them too, and the topic keeps its value', async (t) => {
    const hub = manualHub(t);
    await hub.publish('v', { v: 0 });
    await assert.rejects(hub.patch('v', [{ op: 'replace', path: '/v', value: NaN }]), { code: codes.INVALID_VALUE });
    await assert.rejects(hub.patch('v', [{ op: 'add', path: '/w', value: { x: [Infinity] } }]), { code: codes.INVALID_VALUE });
    assert.deepEqual(hub.get('v').data, { v: 0 });
  });

  it('values JSON can carry pass both appliers alike', () => {
    const shared = { s: 1 };
    const ops = [{ op: 'add', path: '/v', value: { a: [shared, shared, null, 0, 1.5, 'x', true] } }];
    assert.deepEqual(applyPatch({}, ops), JSON.parse(applyPatchJson('{}', ops)));
  });
});

describe('duplicate member names are refused everywhere', () => {
  it('publishJson, diffJson, applyPatchJson and patch values refuse them with DELTACAST_INVALID_JSON', async (t) => {
    const hub = manualHub(t);
    await assert.rejects(hub.publishJson('d', '{"a":1,"a":2}'), { code: codes.INVALID_JSON });
    assert.throws(() => diffJson('{"a":1,"a":2}', '{}'), { code: codes.INVALID_JSON });
    assert.throws(() => diffJson('{}', '{"a":1,"\\u0061":2}'), { code: codes.INVALID_JSON });
    assert.throws(() => applyPatchJson('{"a":1,"a":2}', []), { code: codes.INVALID_JSON });
    assert.throws(() => applyPatchJson('{}', '[{"op":"add","path":"/x","value":{"b":1,"b":1}}]'), { code: codes.INVALID_JSON });
    await hub.publishJson('d', '{"a":0}');
    await assert.rejects(hub.publishJson('d', '{"a":0,"x":{"b":1,"b":1}}'), { code: codes.INVALID_JSON });
    await assert.rejects(hub.upsert('d', 1, JSON.parse('{"id":1}')), { code: codes.NOT_KEYED_ARRAY });
    assert.equal(hub.getJson('d').json, '{"a":0}');
  });

  it('a client message that names a member twice is refused with an err frame', async (t) => {
    const hub = manualHub(t);
    await hub.publish('a', { v: 1 });
    const frames = [];
    const connection = hub.connect({ send: (frame) => frames.push(JSON.parse(frame)) });
    connection.receive('{"t":"sub","topic":"b","topic":"a"}');
    await tick(hub, 1000);
    assert.deepEqual(frames.map((f) => [f.t, f.code]), [['err', 'DELTACAST_INVALID_MESSAGE']]);
    assert.match(frames[0].message, /duplicate member name/);
  });

  it('every frame the hub sends applies, with the JS applier, to the version the subscriber holds', async (t) => {
    const hub = manualHub(t);
    const { frames } = subscriber(hub, 'p');
    const publishes = ['{"a":1,"a":2}', '{"a":1}', '{"a":1,"a":3}', '{"a":5}', '{"b":{"c":1,"c":2}}', '{"a":6,"b":[1]}'];
    const outcomes = [];
    for (const text of publishes) {
      outcomes.push(await hub.publishJson('p', text).then(() => 'ok', (err) => err.code));
      await tick(hub, 1000);
    }
    assert.deepEqual(outcomes, [codes.INVALID_JSON, 'ok', codes.INVALID_JSON, 'ok', codes.INVALID_JSON, 'ok']);
    let held;
    let version = 0;
    for (const text of frames) {
      const frame = JSON.parse(text);
      if (frame.t === 'snap') {
        held = frame.data;
        version = frame.version;
      } else if (frame.t === 'patch') {
        assert.equal(frame.from ?? version, version, text);
        held = applyPatch(held, frame.ops); // throws if a subscriber could not apply it
        version = frame.to ?? frame.version;
      }
    }
    assert.deepEqual(held, { a: 6, b: [1] });
    assert.equal(version, 3);
  });
});

describe('patch limits hold while applying', () => {
  it('copy doubling on hub.patch fails with DELTACAST_TOO_LARGE before it builds the result', async (t) => {
    const hub = manualHub(t, { limits: { maxValueBytes: 1 << 20 } });
    await hub.publish('big', { pad: 'x'.repeat(1000) });
    const ops = Array.from({ length: 60 }, (_, i) => ({ op: 'copy', from: '', path: `/c${i}` }));
    await assert.rejects(hub.patch('big', ops), (err) => {
      assert.equal(err.code, codes.TOO_LARGE);
      assert.match(err.message, /operation 10 \(copy\)/);
      return true;
    });
    assert.equal(hub.get('big').version, 1);
  });

  it('maxDepth holds while applying', async (t) => {
    const hub = manualHub(t, { limits: { maxDepth: 8 } });
    await hub.publish('deep', []);
    const ops = Array.from({ length: 10 }, () => ({ op: 'copy', from: '', path: '/-' }));
    await assert.rejects(hub.patch('deep', ops), { code: codes.TOO_DEEP });
    assert.deepEqual(hub.get('deep').data, []);
  });

  it('limits.maxPatchOps refuses longer patches with DELTACAST_TOO_MANY_OPS', async (t) => {
    const hub = manualHub(t, { limits: { maxPatchOps: 3 } });
    await hub.publish('o', {});
    const ops = (n) => Array.from({ length: n }, (_, i) => ({ op: 'add', path: `/k${i}`, value: i }));
    assert.equal((await hub.patch('o', ops(3))).version, 2);
    await assert.rejects(hub.patch('o', ops(4)), { code: codes.TOO_MANY_OPS });
    assert.equal(hub.get('o').version, 2);
    assert.throws(() => createHub({ limits: { maxPatchOps: 0 } }), { code: codes.INVALID_ARGUMENT });
    // the default is 10000
    const other = manualHub(t);
    await other.publish('o', {});
    await assert.rejects(other.patch('o', ops(10001)), { code: codes.TOO_MANY_OPS });
    assert.equal((await other.patch('o', ops(10000))).version, 2);
  });

  it('applyPatchJson takes maxPatchOps as an option (default 10000)', () => {
    const ops = (n) => Array.from({ length: n }, (_, i) => ({ op: 'add', path: `/k${i}`, value: i }));
    assert.throws(() => applyPatchJson('{}', ops(10001)), { code: codes.TOO_MANY_OPS });
    assert.throws(() => applyPatchJson('{}', ops(3), { maxPatchOps: 2 }), { code: codes.TOO_MANY_OPS });
    assert.equal(applyPatchJson('{}', ops(2), { maxPatchOps: 2 }), '{"k0":0,"k1":1}');
    assert.throws(() => applyPatchJson('{}', ops(2), { maxPatchOps: 0 }), { code: codes.INVALID_ARGUMENT });
    assert.throws(() => applyPatchJson('{}', ops(2), { maxPatchOps: 1.5 }), { code: codes.INVALID_ARGUMENT });
  });
});

describe('row keys: one definition for upsert, remove and diff', () => {
  it('1 and 1.0 are one row; 2^53 and 2^53 + 1 are two; "1" and 1 are two', async (t) => {
    const hub = manualHub(t);
    await hub.publishJson('rows', '[{"id":1,"v":1},{"id":9007199254740992,"v":2}]');
    await hub.publishJson('rows', '[{"id":1.0,"v":1},{"id":9007199254740992,"v":2}]');
    await hub.upsert('rows', 1, { id: 1, v: 3 });
    assert.equal(hub.getJson('rows').json, '[{"id":1,"v":3},{"id":9007199254740992,"v":2}]');
    // upsert by a key a double cannot tell from 2^53: publishJson of the text, then remove by text key
    await hub.publishJson('rows', '[{"id":1,"v":3},{"id":9007199254740992,"v":2},{"id":9007199254740993,"v":4}]');
    assert.equal(hub.get('rows').data.length, 3);
    await hub.upsert('rows', '1', { id: '1', v: 5 });
    assert.equal(hub.get('rows').data.length, 4);
    // the diff pairs rows exactly as upsert does
    assert.deepEqual(diffJson('[{"id":1,"v":1},{"id":2}]', '[{"id":2},{"id":1.0,"v":1}]'), [{ op: 'move', from: '/0', path: '/1' }]);
  });
});
