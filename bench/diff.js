'use strict';

// Side-by-side diff benchmark: deltacast against the JSON diff libraries a
// Node user would otherwise reach for, in one run, on the same inputs.
//
//   npm run bench                     # every scenario (N = 100, 1000, 10000)
//   node bench/diff.js --n=1000       # one size (comma-separate for several)
//   node bench/diff.js --quick        # shorter cells, fewer pairs, N <= 1000
//
// Other flags: --kind=values,insdel,move  --min-ms=300  --pairs=20  --no-save
// Env: DELTACAST_LIB=path/to/index.js benchmarks another deltacast build.
//
// Every library diffs the same K (a, b) pairs of price boards (bench/data.js).
// The pairs are kept as JSON texts and parsed into fresh objects for each
// library before its timing starts, so no library diffs objects another one
// has already walked (shared hidden classes, warmed caches, identical
// references that short-circuit a comparison). Results go to stdout as
// markdown tables, progress to stderr, and everything to
// bench/results/diff-<date>.json. See bench/README.md for the columns.

const {
  gc,
  packageVersion,
  gitCommit,
  median,
  quantile,
  medianOf,
  usageError,
  eachFlag,
  namesOf,
  fmtMs,
  progress,
  progressDone,
} = require('./common.js');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const zlib = require('node:zlib');

const { SCENARIOS, KINDS, makePair } = require('./data.js');

// ---- command line -----------------------------------------------------------

function parseArgs(argv) {
  const opts = { n: null, quick: false, minMs: null, pairs: null, kinds: null, save: true };
  const usage = 'node bench/diff.js [--n=100,1000,10000] [--quick] [--kind=values,insdel,move] [--min-ms=300] [--pairs=20] [--no-save]';
  eachFlag(argv, usage, (flag, value) => {
    switch (flag) {
      case '--n':
        opts.n = value.split(',').map((s) => Number(s.trim()));
        break;
      case '--quick':
        opts.quick = true;
        break;
      case '--min-ms':
        opts.minMs = Number(value);
        break;
      case '--pairs':
        opts.pairs = Number(value);
        break;
      case '--kind':
        opts.kinds = namesOf(value, Object.keys(KINDS), '--kind');
        break;
      case '--no-save':
        opts.save = false;
        break;
      default:
        return false;
    }
    return true;
  });
  if (opts.minMs === null) opts.minMs = opts.quick ? 100 : 300;
  return opts;
}

// ---- helpers ----------------------------------------------------------------

function fmtBytes(bytes) {
  return bytes.toLocaleString('en-US');
}

// microdiff ships no patch function. This is the smallest applier its format
// needs: CREATE/CHANGE set a key; REMOVE deletes a key, and on an array (where
// microdiff only removes trailing indices, in ascending order) truncates.
function applyMicrodiff(doc, changes) {
  for (const change of changes) {
    let parent = doc;
    for (let i = 0; i < change.path.length - 1; i++) parent = parent[change.path[i]];
    const key = change.path[change.path.length - 1];
    if (change.type === 'REMOVE') {
      if (Array.isArray(parent)) parent.length = Math.min(parent.length, key);
      else delete parent[key];
    } else {
      parent[key] = change.value;
    }
  }
  return doc;
}

// ---- the libraries ----------------------------------------------------------
//
// A driver: `input` says whether `run` takes parsed objects or JSON texts;
// `format` says how its result is checked ('rfc6902' through fast-json-patch's
// applyPatch with validation, 'jsondiffpatch' through its own patch,
// 'microdiff' through applyMicrodiff above).

async function loadDrivers() {
  const fjp = require('fast-json-patch');
  const microdiff = (await import('microdiff')).default;
  const jsondiffpatch = await import('jsondiffpatch');
  const jsonpatchFormatter = await import('jsondiffpatch/formatters/jsonpatch');
  const jdp = jsondiffpatch.create({ objectHash: (o, i) => o.id ?? '$$index:' + i });

  // DELTACAST_LIB points the benchmark at another build (a path to a module
  // with the same exports); the default is this checkout's lib/.
  const deltacastPath = process.env.DELTACAST_LIB ? path.resolve(process.env.DELTACAST_LIB) : '../lib/index.js';
  let deltacast = null;
  let deltacastMissing = null;
  try {
    deltacast = require(deltacastPath);
    if (typeof deltacast.diff !== 'function' || typeof deltacast.diffJson !== 'function') {
      deltacastMissing = `${deltacastPath} does not export diff and diffJson yet`;
      deltacast = null;
    }
  } catch (err) {
    deltacastMissing = `${err.code ?? err.name}: ${err.message.split('\n')[0]}`;
  }
  const diffOptions = { arrayKey: 'id' };

  const drivers = [
    {
      name: 'deltacast diff (objects)',
      input: 'objects',
      format: 'rfc6902',
      missing: deltacastMissing,
      run: deltacast && ((p) => deltacast.diff(p.a, p.b, diffOptions)),
    },
    {
      name: 'deltacast diffJson (texts)',
      input: 'texts',
      format: 'rfc6902',
      missing: deltacastMissing,
      run: deltacast && ((p) => deltacast.diffJson(p.aText, p.bText, diffOptions)),
    },
    {
      // Not a library: the part of `deltacast diff (objects)` spent in JS
      // before the native call, so the two deltacast rows can be told apart.
      name: '(ref) JSON.stringify a + b',
      reference: true,
      input: 'objects',
      format: 'none',
      run: (p) => JSON.stringify(p.a).length + JSON.stringify(p.b).length,
    },
    {
      name: 'fast-json-patch compare',
      baseline: true,
      input: 'objects',
      format: 'rfc6902',
      run: (p) => fjp.compare(p.a, p.b),
    },
    {
      name: 'microdiff',
      input: 'objects',
      format: 'microdiff',
      run: (p) => microdiff(p.a, p.b),
    },
    {
      name: 'jsondiffpatch (delta)',
      input: 'objects',
      format: 'jsondiffpatch',
      run: (p) => jdp.diff(p.a, p.b),
    },
    {
      name: 'jsondiffpatch → RFC 6902',
      input: 'objects',
      format: 'rfc6902',
      run: (p) => {
        const delta = jdp.diff(p.a, p.b);
        return delta === undefined ? [] : jsonpatchFormatter.format(delta);
      },
    },
  ];

  // The result is checked as it would arrive over the wire: serialized and
  // parsed again, so an applier cannot alias or mutate the differ's inputs.
  function check(format, aText, bText, result) {
    result = result === undefined ? undefined : JSON.parse(JSON.stringify(result));
    const a = JSON.parse(aText);
    const b = JSON.parse(bText);
    let out;
    if (format === 'rfc6902') {
      out = fjp.applyPatch(a, result, /* validate */ true).newDocument;
    } else if (format === 'jsondiffpatch') {
      out = result === undefined ? a : jdp.patch(a, result);
    } else {
      out = applyMicrodiff(a, result);
    }
    assert.deepStrictEqual(out, b);
  }

  const versions = {
    'fast-json-patch': packageVersion('fast-json-patch'),
    microdiff: packageVersion('microdiff'),
    jsondiffpatch: packageVersion('jsondiffpatch'),
  };
  return { drivers, check, versions, deltacastMissing, deltacastPath };
}

// ---- one cell: one library on one scenario ----------------------------------

function prepareInputs(driver, texts) {
  if (driver.input === 'texts') return texts;
  return texts.map((t) => ({ a: JSON.parse(t.aText), b: JSON.parse(t.bText) }));
}

function countOps(format, result) {
  if (format === 'jsondiffpatch') return null;
  return Array.isArray(result) ? result.length : null;
}

function measureCell(driver, texts, check, opts) {
  const cell = { library: driver.name, format: driver.format, input: driver.input };
  if (!driver.run) {
    cell.available = false;
    cell.error = driver.missing;
    return cell;
  }
  cell.available = true;

  // Correctness and sizes, on every pair, with inputs of their own.
  if (driver.format === 'none') return timeCell(driver, texts, opts, cell);
  const bytes = [];
  const deflated = [];
  const ops = [];
  let passed = 0;
  const failures = [];
  let lastResult;
  for (let k = 0; k < texts.length; k++) {
    const [input] = prepareInputs(driver, [texts[k]]);
    let result;
    try {
      result = driver.run(input);
    } catch (err) {
      cell.available = false;
      cell.error = `threw: ${err.code ? err.code + ' ' : ''}${err.message.split('\n')[0]}`;
      return cell;
    }
    lastResult = result;
    const wire = JSON.stringify(result ?? null);
    bytes.push(Buffer.byteLength(wire));
    deflated.push(zlib.deflateRawSync(wire).length);
    ops.push(countOps(driver.format, result));
    try {
      check(driver.format, texts[k].aText, texts[k].bText, result);
      passed++;
    } catch (err) {
      if (failures.length < 3) failures.push(`pair ${k}: ${err.message.split('\n')[0]}`);
    }
  }
  cell.checked = texts.length;
  cell.passed = passed;
  cell.correct = passed === texts.length;
  if (failures.length) cell.failures = failures;
  cell.patchBytes = Math.round(medianOf(bytes));
  cell.deflatedBytes = Math.round(medianOf(deflated));
  cell.ops = ops[0] === null ? null : Math.round(medianOf(ops));
  if (driver.format === 'rfc6902') {
    cell.opKinds = {};
    for (const op of lastResult ?? []) cell.opKinds[op.op] = (cell.opKinds[op.op] ?? 0) + 1;
  }

  return timeCell(driver, texts, opts, cell);
}

// Timing: fresh inputs, a warm-up, then per-op samples until minMs.
function timeCell(driver, texts, opts, cell) {
  let inputs = prepareInputs(driver, texts);
  gc();
  let sink = 0;
  const warmUntil = process.hrtime.bigint() + BigInt(Math.round(opts.minMs * 0.2 * 1e6));
  let i = 0;
  do {
    const r = driver.run(inputs[i++ % inputs.length]);
    sink += r ? 1 : 0;
  } while (i < Math.min(inputs.length, 3) || process.hrtime.bigint() < warmUntil);

  // At least minMs and max(K, 10) samples; a library slow enough that this
  // would take over 10 x minMs stops at 5 samples past 10 x minMs.
  const samples = [];
  const minSamples = Math.max(inputs.length, 10);
  const start = process.hrtime.bigint();
  const end = start + BigInt(Math.round(opts.minMs * 1e6));
  const longEnd = start + BigInt(Math.round(opts.minMs * 10 * 1e6));
  i = 0;
  for (;;) {
    const input = inputs[i++ % inputs.length];
    const t0 = process.hrtime.bigint();
    const r = driver.run(input);
    const t1 = process.hrtime.bigint();
    sink += r ? 1 : 0;
    samples.push(Number(t1 - t0) / 1e6);
    if (t1 >= end && (samples.length >= minSamples || (samples.length >= 5 && t1 >= longEnd))) break;
  }
  inputs = null;
  samples.sort((x, y) => x - y);
  cell.samples = samples.length;
  cell.medianMs = median(samples);
  cell.p10Ms = quantile(samples, 0.1);
  cell.p90Ms = quantile(samples, 0.9);
  cell.sink = sink; // keeps the results observable
  return cell;
}

// ---- tables -----------------------------------------------------------------

function correctMark(cell) {
  if (!cell.available) return '';
  const mark = cell.correct ? '✓' : `✗ ${cell.checked - cell.passed}/${cell.checked} failed`;
  return cell.format === 'microdiff' ? `${mark}¹` : mark;
}

function printTable(n, scenarioResults) {
  const lines = [];
  lines.push(`## N = ${n.toLocaleString('en-US')} rows`);
  lines.push('');
  lines.push('| scenario | library | time ms | ratio vs fast-json-patch | patch bytes | deflated bytes | correct |');
  lines.push('|---|---|--:|--:|--:|--:|:-:|');
  const notes = [];
  for (const s of scenarioResults) {
    const base = s.results.find((c) => c.baseline && c.available);
    s.results.forEach((c, idx) => {
      const scenario = idx === 0 ? `${s.pct}% ticks, ${s.kind} (${(s.bBytes / 1024).toFixed(0)} KiB)` : '';
      if (!c.available) {
        const why = c.error && c.error.startsWith('threw') ? 'error' : 'not built';
        lines.push(`| ${scenario} | ${c.library} | ${why} | | | | |`);
        if (c.error && !notes.includes(`${c.library}: ${c.error}`)) notes.push(`${c.library}: ${c.error}`);
        return;
      }
      const ratio = base ? `${(c.medianMs / base.medianMs).toFixed(2)}×` : '';
      if (c.format === 'none') {
        lines.push(`| ${scenario} | ${c.library} | ${fmtMs(c.medianMs)} | ${ratio} | | | — |`);
        return;
      }
      lines.push(`| ${scenario} | ${c.library} | ${fmtMs(c.medianMs)} | ${ratio} | ${fmtBytes(c.patchBytes)} | ` +
        `${fmtBytes(c.deflatedBytes)} | ${correctMark(c)} |`);
      for (const f of c.failures ?? []) notes.push(`${c.library} (${s.name}) ${f}`);
    });
  }
  lines.push('');
  if (scenarioResults.some((s) => s.results.some((c) => c.format === 'microdiff' && c.available))) {
    lines.push('¹ microdiff has no patch function; checked with the minimal applier in bench/diff.js.');
  }
  for (const note of notes) lines.push(`- ${note}`);
  if (notes.length) lines.push('');
  console.log(lines.join('\n'));
}

// ---- type changes -----------------------------------------------------------
//
// RFC 6902 differs from a plain key walk when a value changes between object
// and array: {} and [] have the same (no) keys, {"0": x} and [x] the same
// key. A correct diff has to replace the value.

const TYPE_CHANGE_CASES = [
  {
    name: 'object → array at depth',
    a: { board: { rows: { 0: { id: 'r1', price: 1 } }, meta: { v: 1 } } },
    b: { board: { rows: [{ id: 'r1', price: 1 }], meta: { v: 1 } } },
  },
  {
    name: 'array → object at depth',
    a: { board: { rows: [{ id: 'r1', price: 1 }], meta: { v: 1 } } },
    b: { board: { rows: { 0: { id: 'r1', price: 1 } }, meta: { v: 1 } } },
  },
  {
    name: 'empty object → empty array at depth',
    a: { board: { rows: {}, tags: [] } },
    b: { board: { rows: [], tags: {} } },
  },
  {
    name: 'object → array at the root',
    a: { 0: { id: 'r1' }, 1: { id: 'r2' } },
    b: [{ id: 'r1' }, { id: 'r2' }],
  },
  {
    name: 'array → object at the root',
    a: [{ id: 'r1' }, { id: 'r2' }],
    b: { 0: { id: 'r1' }, 1: { id: 'r2' } },
  },
  {
    name: 'object → array at the root, other keys',
    a: { rows: [{ id: 'r1' }], v: 1 },
    b: [{ id: 'r1' }],
  },
  {
    name: 'empty array → empty object at the root',
    a: [],
    b: {},
  },
];

function runTypeChanges(allDrivers, check) {
  const drivers = allDrivers.filter((d) => !d.reference);
  const rows = [];
  for (const tc of TYPE_CHANGE_CASES) {
    const texts = { aText: JSON.stringify(tc.a), bText: JSON.stringify(tc.b) };
    const row = { case: tc.name, a: texts.aText, b: texts.bText, results: {} };
    for (const driver of drivers) {
      if (!driver.run) {
        row.results[driver.name] = { status: 'not built' };
        continue;
      }
      const [input] = prepareInputs(driver, [texts]);
      let result;
      try {
        result = driver.run(input);
      } catch (err) {
        row.results[driver.name] = { status: 'threw', error: err.message.split('\n')[0] };
        continue;
      }
      try {
        check(driver.format, texts.aText, texts.bText, result);
        row.results[driver.name] = { status: 'ok', patch: result ?? null };
      } catch (err) {
        row.results[driver.name] = { status: 'wrong', patch: result ?? null, error: err.message.split('\n')[0] };
      }
    }
    rows.push(row);
  }

  const names = drivers.map((d) => d.name);
  const lines = ['## Type changes (object ↔ array)', ''];
  lines.push('Does applying the library\'s own output to `a` give `b`? (RFC 6902 outputs are applied with ' +
    'fast-json-patch `applyPatch(…, validate = true)`.)', '');
  lines.push(`| case | ${names.join(' | ')} |`);
  lines.push(`|---|${names.map(() => ':-:').join('|')}|`);
  const mark = { ok: '✓', wrong: '✗', threw: '✗ threw', 'not built': 'not built' };
  for (const row of rows) {
    lines.push(`| ${row.case} | ${names.map((n) => mark[row.results[n].status]).join(' | ')} |`);
  }
  lines.push('');
  for (const row of rows) {
    for (const n of names) {
      const r = row.results[n];
      if (r.status === 'wrong' || r.status === 'threw') {
        const patch = r.patch === undefined ? '' : ` produced ${JSON.stringify(r.patch)}`;
        lines.push(`- ${row.case}, ${n}:${patch}${r.status === 'threw' ? ` threw ${r.error}` : ''}`);
      }
    }
  }
  lines.push('');
  console.log(lines.join('\n'));
  return rows;
}

// ---- main -------------------------------------------------------------------

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const { drivers, check, versions, deltacastMissing, deltacastPath } = await loadDrivers();

  let scenarios = SCENARIOS;
  if (opts.n) scenarios = scenarios.filter((s) => opts.n.includes(s.n));
  else if (opts.quick) scenarios = scenarios.filter((s) => s.n <= 1000);
  if (opts.kinds) scenarios = scenarios.filter((s) => opts.kinds.includes(s.kind));
  if (!scenarios.length) throw usageError('no scenario matches the options');

  const env = {
    date: new Date().toISOString(),
    node: process.version,
    v8: process.versions.v8,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    cpu: `${os.cpus()[0]?.model ?? '?'} (${os.cpus().length} threads)`,
    commit: gitCommit(),
    versions,
    deltacast: deltacastMissing ? `not built (${deltacastMissing})` : `loaded from ${deltacastPath}`,
    addon: process.env.DELTACAST_ADDON || null,
    loadAverage: os.loadavg().map((x) => Number(x.toFixed(2))),
  };

  console.log('# deltacast diff benchmark\n');
  console.log(`${env.date} · node ${env.node} · ${env.cpu} · ${env.platform}${env.commit ? ` · commit ${env.commit}` : ''}`);
  console.log(`fast-json-patch ${versions['fast-json-patch']} · microdiff ${versions.microdiff} · ` +
    `jsondiffpatch ${versions.jsondiffpatch} (objectHash by id) · deltacast: ${env.deltacast}` +
    `${env.addon ? ` (addon ${env.addon})` : ''}`);
  console.log(`load average at start: ${env.loadAverage.join(', ')} ` +
    `(on ${os.cpus().length} threads; a busy machine makes every column but the bytes noisy)`);
  console.log(`time = median per diff over ≥ ${opts.minMs} ms of samples, cycling through K distinct pairs; ` +
    'bytes = median over the K pairs\n');

  // JIT warm-up: without it the first scenario measures baseline-compiled
  // code for every library (and the later ones optimized code).
  {
    const warm = SCENARIOS.find((s) => s.n === 100 && s.kind === 'move' && s.pct === 10);
    const texts = [0, 1, 2].map((k) => {
      const { a, b } = makePair(warm, 100 + k);
      return { aText: JSON.stringify(a), bText: JSON.stringify(b) };
    });
    for (const driver of drivers) {
      if (!driver.run) continue;
      progress(`warm-up: ${driver.name}`);
      try {
        measureCell(driver, texts, check, { minMs: Math.min(200, opts.minMs) });
      } catch {
        // measureCell reports failures in its result; a throw here shows again later
      }
    }
  }

  const results = [];
  const sizes = [...new Set(scenarios.map((s) => s.n))];
  for (const n of sizes) {
    const perN = [];
    const pairs = opts.pairs ?? (opts.quick ? 5 : n >= 10000 ? 6 : 20);
    for (const scenario of scenarios.filter((s) => s.n === n)) {
      progress(`${scenario.name}: generating ${pairs} pairs`);
      const texts = [];
      for (let k = 0; k < pairs; k++) {
        const { a, b } = makePair(scenario, k);
        texts.push({ aText: JSON.stringify(a), bText: JSON.stringify(b) });
      }
      const entry = {
        name: scenario.name,
        n: scenario.n,
        pct: scenario.pct,
        kind: scenario.kind,
        label: scenario.label,
        pairs,
        aBytes: Buffer.byteLength(texts[0].aText),
        bBytes: Buffer.byteLength(texts[0].bText),
        results: [],
      };
      for (const driver of drivers) {
        progress(`${scenario.name}: ${driver.name}`);
        const cell = measureCell(driver, texts, check, opts);
        if (driver.baseline) cell.baseline = true;
        entry.results.push(cell);
      }
      const base = entry.results.find((c) => c.baseline && c.available);
      for (const c of entry.results) if (base && c.medianMs !== undefined) c.ratioVsBaseline = c.medianMs / base.medianMs;
      perN.push(entry);
      results.push(entry);
      gc();
    }
    progressDone();
    printTable(n, perN);
  }

  const typeChanges = runTypeChanges(drivers, check);

  if (opts.save) {
    const dir = path.join(__dirname, 'results');
    fs.mkdirSync(dir, { recursive: true });
    const day = env.date.slice(0, 10);
    const limited = opts.n || opts.quick || opts.kinds || opts.pairs || opts.minMs !== 300;
    const suffix = limited ? `-${opts.quick ? 'quick' : 'partial'}` : '';
    const file = path.join(dir, `diff-${day}${suffix}.json`);
    const out = { env, options: opts, scenarios: results, typeChanges };
    fs.writeFileSync(file, JSON.stringify(out, null, 2) + '\n');
    console.log(`results written to ${path.relative(process.cwd(), file)}`);
  }
}

main().catch((err) => {
  progressDone();
  console.error(err.usage ? `bench/diff.js: ${err.message}` : err.stack || err.message);
  process.exitCode = 1;
});
