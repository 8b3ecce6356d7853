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

// The exact code each error record must give, on both appliers, by file and position in the suite.
// The suite only says "an error"; these say which one a caller can switch on.
const NOT_FOUND = 'DELTACAST_PATH_NOT_FOUND';
const TEST_FAILED = 'DELTACAST_PATCH_TEST_FAILED';
const INVALID_PATCH = 'DELTACAST_INVALID_PATCH';
const EXPECTED_CODES = {
  'tests.json #15': NOT_FOUND, // Out of bounds (upper)
  'tests.json #16': NOT_FOUND, // Out of bounds (lower)
  'tests.json #25': NOT_FOUND, // index is greater than number of items in array
  'tests.json #27': NOT_FOUND, // test op shouldn't get array element 1 ("/1e0")
  'tests.json #28': NOT_FOUND, // Object operation on array target
  'tests.json #51': TEST_FAILED, // test op should fail
  'tests.json #62': NOT_FOUND, // remove op shouldn't remove from array with bad number
  'tests.json #65': NOT_FOUND, // remove op shouldn't remove from array with bad number
  'tests.json #66': NOT_FOUND, // replace op shouldn't replace in array with bad number
  'tests.json #67': NOT_FOUND, // copy op shouldn't work with bad number
  'tests.json #68': NOT_FOUND, // move op shouldn't work with bad number
  'tests.json #69': NOT_FOUND, // add op shouldn't add to array with bad number
  'tests.json #70': INVALID_PATCH, // missing 'value' parameter
  'tests.json #71': INVALID_PATCH, // missing 'value' parameter
  'tests.json #72': INVALID_PATCH, // missing 'value' parameter
  'tests.json #73': INVALID_PATCH, // missing 'value' parameter
  'tests.json #74': INVALID_PATCH, // missing 'from' parameter
  'tests.json #75': INVALID_PATCH, // missing 'from' parameter
  'tests.json #77': INVALID_PATCH, // Unrecognized op 'spam'
  'spec_tests.json #0': NOT_FOUND, // path /a does not exist -- missing objects are not created recursively
  'spec_tests.json #9': TEST_FAILED, // string not equivalent
  'spec_tests.json #12': NOT_FOUND, // add to a non-existent target
  'spec_tests.json #15': TEST_FAILED, // number is not equal to string
};

function isRunnable(record) {
  // Records may be comment-only; those and disabled ones are skipped.
  return record.disabled !== true && 'doc' in record && 'patch' in record;
}

function nameOf(file, position, record) {
  const what = record.comment || record.error || JSON.stringify(record.patch);
  return `${file} #${position}: ${what}`;
}

function checkRecord(name, apply, record, key) {
  if ('error' in record) {
    const expected = EXPECTED_CODES[key];
    assert.ok(expected, `no expected code for the error record ${key} (${record.error}): add it to EXPECTED_CODES`);
    let caught;
    try {
      apply(record.doc, record.patch);
    } catch (err) {
      caught = err;
    }
    assert.ok(caught, `expected an error (${record.error}) but the patch applied`);
    assert.equal(typeof caught.code, 'string', `error without a code: ${caught && caught.stack}`);
    assert.equal(caught.code, expected, `${record.error}: got ${caught.code} (${caught.message})`);
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
        it(title, () => checkRecord(name, apply, record, `${file} #${position}`));
      });
    }
    it('every expected code belongs to a runnable error record', () => {
      for (const key of Object.keys(EXPECTED_CODES)) {
        const [file, position] = key.split(' #');
        const record = suites.find((suite) => suite.file === file).records[Number(position)];
        assert.ok(record && isRunnable(record) && 'error' in record, `${key} is not a runnable error record`);
      }
    });
    it(`summary: ${ran} records run, ${skipped} skipped`, (t) => {
      t.diagnostic(`${name}: ${ran} records run, ${skipped} skipped`);
      console.log(`conformance (${name}): ${ran} records run, ${skipped} skipped`);
      assert.ok(ran > 0);
    });
  });
}
