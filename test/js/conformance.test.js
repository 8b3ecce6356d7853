'use strict';

// The RFC 6902 test suite (npm json-patch-test-suite) run against both appliers: the pure-JS
// applyPatch and the native core's applyPatchJson.

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');

const { applyPatch } = require('../../lib/apply_patch.js');
const { DeltacastError } = require('../../lib/errors.js');

const SUITE_FILES = ['tests.json', 'spec_tests.json'];

function deepFreeze(value) {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const key of Object.keys(value)) deepFreeze(value[key]);
  }
  return value;
}

// Loaded once; a load failure (the addon not built yet) fails every native record with that error
// rather than silently skipping them.
let native;
let nativeLoadError;
try {
  native = require('../../lib/native.js');
} catch (err) {
  nativeLoadError = err;
}

function applyJs(doc, patch) {
  const frozen = deepFreeze(structuredClone(doc));
  const before = JSON.stringify(frozen);
  const result = applyPatch(frozen, patch);
  assert.equal(JSON.stringify(frozen), before, 'applyPatch changed its input');
  return result;
}

function applyNative(doc, patch) {
  if (nativeLoadError) throw nativeLoadError;
  return JSON.parse(native.applyPatchJson(JSON.stringify(doc), JSON.stringify(patch)));
}

const appliers = [
  ['js', applyJs],
  ['native', applyNative],
];

const suites = SUITE_FILES.map((file) => ({
  file,
  records: require(`json-patch-test-suite/${file}`),
}));

function isRunnable(record) {
  // Records may be comment-only; those and disabled ones are skipped.
  return record.disabled !== true && 'doc' in record && 'patch' in record;
}

function nameOf(file, position, record) {
  const what = record.comment || record.error || JSON.stringify(record.patch);
  return `${file} #${position}: ${what}`;
}

function checkRecord(name, apply, record) {
  if ('error' in record) {
    let caught;
    try {
      apply(record.doc, record.patch);
    } catch (err) {
      caught = err;
    }
    assert.ok(caught, `expected an error (${record.error}) but the patch applied`);
    assert.equal(typeof caught.code, 'string', `error without a code: ${caught && caught.stack}`);
    const why = `unexpected error code ${caught.code}: ${caught.message}`;
    assert.ok(caught.code.startsWith('DELTACAST_'), why);
    if (name === 'js') assert.ok(caught instanceof DeltacastError);
    return;
  }
  const result = apply(record.doc, record.patch);
  if ('expected' in record) assert.deepEqual(result, record.expected);
}

for (const [name, apply] of appliers) {
  describe(`RFC 6902 conformance (${name})`, () => {
    let ran = 0;
    let skipped = 0;
    for (const { file, records } of suites) {
      records.forEach((record, position) => {
        const title = nameOf(file, position, record);
        if (!isRunnable(record)) {
          skipped++;
          it(title, { skip: record.disabled ? 'disabled in the suite' : 'no doc/patch' }, () => {});
          return;
        }
        ran++;
        it(title, () => checkRecord(name, apply, record));
      });
    }
    it(`summary: ${ran} records run, ${skipped} skipped`, (t) => {
      t.diagnostic(`${name}: ${ran} records run, ${skipped} skipped`);
      console.log(`conformance (${name}): ${ran} records run, ${skipped} skipped`);
      assert.ok(ran > 0);
    });
  });
}
