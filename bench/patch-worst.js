'use strict';

// What the worst patch request costs: the time the native applier (the code
// hub.patch runs on the core thread) takes for the patches that do the most
// work per operation, at limits.maxPatchOps operations (default 10,000).
//
//   node bench/patch-worst.js           # every case
//   node bench/patch-worst.js --quick   # smaller documents
//
// Each case is timed once after one warm-up run (they take milliseconds to
// seconds; the figure is the order of magnitude, not a precise mean) and
// printed as a markdown table: the case, its document and patch sizes, the
// time, and the outcome (ok or the error code).

const { applyPatchJson } = require('../lib/index.js');

const quick = process.argv.includes('--quick');
const MAX_OPS = 10000;

function time(doc, ops, options) {
  let outcome = 'ok';
  const run = () => {
    try {
      applyPatchJson(doc, ops, options);
      outcome = 'ok';
    } catch (err) {
      outcome = err.code ?? String(err);
    }
  };
  run();
  const start = process.hrtime.bigint();
  run();
  return { ms: Number(process.hrtime.bigint() - start) / 1e6, outcome };
}

function opsText(count, make) {
  const parts = new Array(count);
  for (let i = 0; i < count; i++) parts[i] = JSON.stringify(make(i));
  return `[${parts.join(',')}]`;
}

const arrayLength = quick ? 100_000 : 1_000_000;
const bigArray = `{"a":[${new Array(arrayLength).fill(0).join(',')}]}`;
const objectSize = quick ? 20_000 : 100_000;
const bigObject = `{"o":{${Array.from({ length: objectSize }, (_, i) => `"k${i}":${i}`).join(',')}}}`;
const pad = `{"pad":"${'x'.repeat(1000)}"}`;
const subtree = `{"big":[${Array.from({ length: quick ? 20_000 : 200_000 }, (_, i) => `{"id":${i},"v":"row"}`).join(',')}],"x":0}`;

// Near the default limit (64 MiB): about 30 MiB of rows (--quick: 3 MiB).
const hugeRows = quick ? 100_000 : 1_000_000;
const huge = `{"big":[${Array.from({ length: hugeRows }, (_, i) => `{"id":${i},"name":"row ${i}","v":1}`).join(',')}],"x":0}`;

const cases = [
  ['10,000 adds to one object', '{}', opsText(MAX_OPS, (i) => ({ op: 'add', path: `/k${i}`, value: i }))],
  ['40,000 adds to one object (maxPatchOps 40,000)', '{}', opsText(40000, (i) => ({ op: 'add', path: `/k${i}`, value: i })), { maxPatchOps: 40000 }],
  ['10,000 replaces in a large object', bigObject, opsText(MAX_OPS, (i) => ({ op: 'replace', path: `/o/k${i * 7 % objectSize}`, value: -i }))],
  ['10,000 removes from the front of a large object', bigObject, opsText(MAX_OPS, (i) => ({ op: 'remove', path: `/o/k${i}` }))],
  ['10,000 inserts at the front of a large array', bigArray, opsText(MAX_OPS, () => ({ op: 'add', path: '/a/0', value: 1 }))],
  ['10,000 removes from the front of a large array', bigArray, opsText(MAX_OPS, () => ({ op: 'remove', path: '/a/0' }))],
  ['10,000 copies of a large subtree onto one member', subtree, opsText(MAX_OPS, () => ({ op: 'copy', from: '/big', path: '/x' }))],
  ['10,000 moves of a large subtree back and forth', subtree, opsText(MAX_OPS, (i) => (i % 2 === 0 ? { op: 'move', from: '/big', path: '/y' } : { op: 'move', from: '/y', path: '/big' }))],
  ['empty patch on a large document (parse and write it)', huge, '[]'],
  ['10,000 copies of most of a large document onto one member', huge, opsText(MAX_OPS, () => ({ op: 'copy', from: '/big', path: '/x' }))],
  ['10,000 moves of most of a large document back and forth', huge, opsText(MAX_OPS, (i) => (i % 2 === 0 ? { op: 'move', from: '/big', path: '/y' } : { op: 'move', from: '/y', path: '/big' }))],
  ['60 copies of the document into itself (doubling)', pad, opsText(60, (i) => ({ op: 'copy', from: '', path: `/c${i}` }))],
];

const rows = ['| case | document | patch | time | outcome |', '|---|---:|---:|---:|---|'];
for (const [name, doc, ops, options] of cases) {
  const { ms, outcome } = time(doc, ops, options);
  const kib = (text) => {
    const bytes = Buffer.byteLength(text);
    return bytes >= 1 << 20 ? `${(bytes / (1 << 20)).toFixed(1)} MiB` : `${(bytes / 1024).toFixed(0)} KiB`;
  };
  rows.push(`| ${name} | ${kib(doc)} | ${kib(ops)} | ${ms.toFixed(1)} ms | ${outcome} |`);
  process.stderr.write(`${name}: ${ms.toFixed(1)} ms (${outcome})\n`);
}
process.stdout.write(`${rows.join('\n')}\n`);
