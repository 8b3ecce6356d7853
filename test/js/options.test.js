'use strict';
// The createHub options schema (lib/options.js): every option is validated
// against it, the binding trusts what it is given, and the README and the
// type declarations name every option the schema has.

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const { createHub, codes } = require('../../lib/index.js');
const { SCHEMA, MAX_TIME_MS, normalizeOptions, optionPaths, optionsTable } = require('../../lib/options.js');
const native = require('../../lib/native.js');

const root = path.resolve(__dirname, '../..');

/** The options object that sets `path` ('limits.maxDepth' or 'sweepIntervalMs') to `value`. */
function setting(optionPath, value) {
  const [name, field] = optionPath.split('.');
  return field === undefined ? { [name]: value } : { [name]: { [field]: value } };
}

function assertRefused(options, parts) {
  assert.throws(
    () => createHub(options),
    (err) => {
      assert.equal(err.name, 'DeltacastError');
      assert.equal(err.code, codes.INVALID_ARGUMENT);
      for (const part of parts) assert.ok(err.message.includes(part), `${JSON.stringify(err.message)} names ${part}`);
      return true;
    },
    JSON.stringify(options),
  );
}

const integers = optionPaths().filter(([, spec]) => spec.type === 'integer');

describe('the options schema', () => {
  it('every option has a default, bounds (integers) and a line of documentation', () => {
    for (const [optionPath, spec] of optionPaths()) {
      assert.equal(typeof spec.doc, 'string', optionPath);
      assert.ok(spec.doc.length > 5, optionPath);
      if (spec.type === 'integer') {
        assert.ok(Number.isInteger(spec.default) && spec.default >= spec.min && spec.default <= spec.max, optionPath);
        if (spec.unit === 'ms') assert.equal(spec.max, MAX_TIME_MS, `${optionPath} is bounded like every time`);
      }
    }
    assert.equal(MAX_TIME_MS, 2 ** 31 - 1);
  });

  it('no options: every default, in the shape the binding reads', () => {
    const options = normalizeOptions(undefined);
    for (const [optionPath, spec] of integers) {
      const [name, field] = optionPath.split('.');
      assert.equal(field === undefined ? options[name] : options[name][field], spec.default, optionPath);
    }
    assert.equal(options.clock, 'real');
    assert.equal(options.arrayKey, 'id');
    assert.deepEqual([options.ttl, options.permissions, options.lanes], [[], [], []]);
    assert.equal(options.limits.maxPatchOps, 10000);
    assert.deepEqual(Object.keys(options), Object.keys(SCHEMA));
  });

  it('hub.options shows what is in effect, and is a copy', (t) => {
    const hub = createHub({ clock: 'manual', limits: { maxPatchOps: 5 }, heartbeat: { intervalMs: 0 } });
    t.after(() => hub.close());
    const options = hub.options;
    assert.equal(options.limits.maxPatchOps, 5);
    assert.equal(options.heartbeat.intervalMs, 0);
    assert.equal(options.heartbeat.timeoutMs, SCHEMA.heartbeat.fields.timeoutMs.default);
    options.limits.maxPatchOps = 7;
    assert.equal(hub.options.limits.maxPatchOps, 5);
  });

  it('every integer option: the bounds are accepted, one past them and non-integers refused, naming the path', (t) => {
    for (const [optionPath, spec] of integers) {
      for (const value of [spec.min, spec.max]) {
        const hub = createHub({ clock: 'manual', ...setting(optionPath, value) });
        t.after(() => hub.close());
      }
      const bad = [spec.min - 1, spec.max + 1, 1.5, '1', null, NaN, Infinity];
      if (spec.max < Number.MAX_SAFE_INTEGER) bad.push(spec.max * 10);
      for (const value of bad) assertRefused(setting(optionPath, value), [optionPath]);
    }
  });

  it('time options far beyond the clock (1e13 ms) are refused', () => {
    for (const [optionPath, spec] of integers.filter(([, s]) => s.unit === 'ms')) {
      assertRefused(setting(optionPath, 1e13), [optionPath, String(MAX_TIME_MS)]);
      assert.equal(spec.max, MAX_TIME_MS);
    }
    assertRefused({ ttl: { 'tmp/*': 1e13 } }, ["ttl['tmp/*']"]);
    assertRefused({ ttl: { 'tmp/*': MAX_TIME_MS + 1 } }, ["ttl['tmp/*']"]);
  });

  it('unknown names are refused at every level, naming the path', () => {
    assertRefused({ bogus: 1 }, ['bogus']);
    for (const [name, spec] of Object.entries(SCHEMA)) {
      if (spec.type === 'section') assertRefused({ [name]: { bogus: 1 } }, [`${name}.bogus`]);
    }
  });

  it('bad values of the other options are refused, naming the option', () => {
    const cases = [
      [{ clock: 'fast' }, ['clock']],
      [{ arrayKey: '' }, ['arrayKey']],
      [{ arrayKey: 1 }, ['arrayKey']],
      [{ limits: [] }, ['limits']],
      [{ heartbeat: 5 }, ['heartbeat']],
      [{ credit: null }, ['credit']],
      [{ ttl: [] }, ['ttl']],
      [{ permissions: { a: 'admin' } }, ["permissions['a']"]],
      [{ permissions: { a: [1] } }, ["permissions['a'][0]"]],
      // eslint-disable-next-line no-sparse-arrays
      [{ permissions: { a: [, 'admin'] } }, ["permissions['a'][0]"]],
      [{ lanes: { a: 'fast' } }, ["lanes['a']"]],
      [{ lanes: ['critical'] }, ['lanes']],
      [[], ['options']],
    ];
    for (const [options, parts] of cases) assertRefused(options, parts);
  });

  it('hub.advance(ms) takes 0 to 2^31 - 1 and refuses more; the clock survives repeated maximal advances', async (t) => {
    const hub = createHub({ clock: 'manual', ttl: { 'tmp/*': 1000 } });
    t.after(() => hub.close());
    for (const ms of [MAX_TIME_MS + 1, 2 ** 53 - 1, 1e13]) {
      await assert.rejects(hub.advance(ms), (err) => err.code === codes.INVALID_ARGUMENT && /ms/.test(err.message));
    }
    await hub.publish('tmp/a', 1);
    for (let i = 0; i < 50; i++) await hub.advance(MAX_TIME_MS);
    assert.equal(hub.get('tmp/a'), undefined);
    assert.equal((await hub.publish('tmp/b', 1)).version, 1);
    assert.equal(hub.stats().internalErrors, 0);
  });
});

describe('the binding trusts the options it is given', () => {
  it('a missing or mistyped field is DELTACAST_INTERNAL naming it, never a default', () => {
    const full = normalizeOptions({});
    const cases = [
      ['sweepIntervalMs', (o) => delete o.sweepIntervalMs],
      ['maxPatchOps', (o) => delete o.limits.maxPatchOps],
      ['intervalMs', (o) => (o.heartbeat.intervalMs = '5')],
      ['limits', (o) => delete o.limits],
      ['stallTimeoutMs', (o) => (o.credit.stallTimeoutMs = 1e13)],
      ['clock', (o) => (o.clock = 'fast')],
    ];
    for (const [name, spoil] of cases) {
      const options = structuredClone(full);
      spoil(options);
      assert.throws(
        () => new native.NativeHub(JSON.stringify(options), () => {}),
        (err) => err.code === codes.INTERNAL && err.message.includes(name),
        name,
      );
    }
  });
});

describe('the docs name every option of the schema', () => {
  it('the README options table is the schema table', () => {
    const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
    assert.ok(readme.includes(optionsTable()), 'README.md holds optionsTable() verbatim (regenerate it from lib/options.js)');
  });

  it('lib/index.d.ts HubOptions declares every option, in its section', () => {
    const dts = fs.readFileSync(path.join(root, 'lib/index.d.ts'), 'utf8');
    const start = dts.indexOf('export interface HubOptions {');
    const body = dts.slice(start, dts.indexOf('\n}\n', start));
    // Comments out, so that a name only mentioned in a comment does not count.
    const code = body.replace(/\/\*\*[\s\S]*?\*\//g, '');
    for (const [name, spec] of Object.entries(SCHEMA)) {
      const at = code.search(new RegExp(`\\n  ${name}\\?:`));
      assert.ok(at >= 0, `HubOptions declares ${name}`);
      if (spec.type !== 'section') continue;
      // `name?: { ... };` on one line, or over several up to the closing `  };`
      const line = code.slice(at + 1, code.indexOf('\n', at + 1));
      const end = line.includes('}') ? at + 1 + line.length : code.indexOf('\n  };', at);
      const declared = new Set(
        [...code.slice(at, end).matchAll(/(\w+)\?:/g)].map((m) => m[1]).filter((field) => field !== name),
      );
      assert.deepEqual([...declared].sort(), Object.keys(spec.fields).sort(), `HubOptions.${name}`);
    }
  });
});
