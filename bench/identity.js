'use strict';

// Publishing immutable states by identity: event-loop time of hub.publish()
// of a board whose unchanged rows are the very objects published last time,
// against JSON.stringify of the whole board and against the old full path,
// in one run.
//
//   node bench/identity.js             # N = 1,000 and 10,000 rows (about a minute)
//   node bench/identity.js --quick     # fewer iterations: a smoke run
//   node bench/identity.js --n=1000 --no-save
//   node bench/identity.js --coalesce-only   # only the coalescing table
//
// Env: DELTACAST_ADDON=path/to/deltacast.node another addon (lib/native.js).
//
// States: a chain of boards from bench/data.js, each made from the one before
// by mutate() (a new array; 1% of rows replaced by new objects, the rest
// shared), as Immer or Redux Toolkit make them. Variants, each on its own
// topic, publishing the same chain in order:
//   old path   hub.publish(topic, Array.from(board)): an unfrozen root, so
//              JSON.stringify of the whole board, as before identity publishing
//   frozen     hub.publish(topic, board), every object deep-frozen (Immer and
//              Redux Toolkit auto-freeze)
//   immutable  hub.publish(topic, board, { immutable: true }), nothing frozen
// Also with an insertion and a removal besides the 1% (rows shift),
// back-to-back (several publishes of the topic per turn: the core has not
// answered the previous one, so the full text goes, joined from the rows'
// cached texts), and the board as Redux Toolkit's entity adapter holds it,
// { ids, entities } (a root object: full text built from the rows' texts).
//
// Timed, per call: from right before hub.publish() until after the microtask
// that hands the request buffer to the core thread (as bench/hub.js times
// event-loop cost). JSON.stringify of the same boards is timed right after,
// in a loop of its own (see run()); the ratio is the median call over the
// median JSON.stringify. "event loop" is the loop's whole active time per
// publish (eventLoopUtilization over the run: the answer's handling and the
// awaits included).

const { gc, gitCommit, median, usageError, eachFlag, fmtUs, fmtRatio, progress, progressDone, nowNs, settleHeap, startClock, stopClock, createHubWithTid } =
  require('./common.js');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { performance } = require('node:perf_hooks');

const { createHub } = require('../lib/index.js');
const { makeBoard, mutate } = require('./data.js');

function parseArgs(argv) {
  const opts = { quick: false, n: [1000, 10000], save: true, coalesceOnly: false };
  eachFlag(argv, 'node bench/identity.js [--quick] [--n=1000,10000] [--coalesce-only] [--no-save]', (flag, value) => {
    if (flag === '--quick') opts.quick = true;
    else if (flag === '--coalesce-only') opts.coalesceOnly = true;
    else if (flag === '--no-save') opts.save = false;
    else if (flag === '--n') {
      opts.n = value.split(',').map(Number);
      if (opts.n.some((n) => !Number.isInteger(n) || n < 10)) throw usageError('--n takes sizes of at least 10 rows');
    } else return false;
    return true;
  });
  return opts;
}

function deepFreeze(value) {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const key of Object.keys(value)) deepFreeze(value[key]);
  }
  return value;
}

/** A board as Redux Toolkit's entity adapter holds it: { ids, entities } (ids kept while they are the same). */
function entities(board, before) {
  const sameIds = before !== undefined && before.ids.length === board.length && board.every((row, i) => row.id === before.ids[i]);
  return { ids: sameIds ? before.ids : board.map((row) => row.id), entities: Object.fromEntries(board.map((row) => [row.id, row])) };
}

/** count + 1 boards, each from the one before; frozen or not; as arrays or as { ids, entities }. */
function chain(n, count, { frozen, shift, shape }) {
  let board = makeBoard(n, 4242);
  let state = shape === 'entities' ? entities(board) : board;
  if (frozen) deepFreeze(state);
  const states = [state];
  for (let i = 0; i < count; i++) {
    board = mutate(board, { fraction: 0.01, insertMid: shift, deleteOne: shift, seed: 100 + i });
    state = shape === 'entities' ? entities(board, state) : board;
    if (frozen) deepFreeze(state);
    states.push(state);
  }
  return states;
}

const handedOver = () => new Promise((resolve) => queueMicrotask(resolve));

/**
 * Publishes states[1..] in order (states[0] first, untimed); `perTurn` calls
 * per turn before awaiting them. Then JSON.stringify of the same states, in
 * a loop of its own: timed between the calls, the 0.2-2 MB of garbage each
 * makes is collected during the next call and lands on its clock (about
 * 0.1 ms at 1,000 rows). Returns the median µs of a call and of a
 * JSON.stringify, and the event loop's active ms per call.
 */
async function run(hub, topic, states, publish, perTurn) {
  await publish(hub, topic, states[0]);
  const calls = [];
  const elu0 = performance.eventLoopUtilization();
  for (let i = 1; i < states.length; i += perTurn) {
    const pending = [];
    for (let k = 0; k < perTurn && i + k < states.length; k++) {
      const c0 = nowNs();
      pending.push(publish(hub, topic, states[i + k]));
      await handedOver();
      calls.push(Number(nowNs() - c0) / 1000);
    }
    await Promise.all(pending);
  }
  const elu = performance.eventLoopUtilization(elu0);
  const refs = [];
  let sink = 0;
  for (let i = 1; i < states.length; i++) {
    const r0 = nowNs();
    sink += JSON.stringify(states[i]).length;
    refs.push(Number(nowNs() - r0) / 1000);
  }
  const sorted = (a) => a.sort((x, y) => x - y);
  return { callUs: median(sorted(calls)), refUs: median(sorted(refs)), loopMs: elu.active / calls.length, sink };
}

const VARIANTS = [
  {
    key: 'old',
    name: 'old path: publish(topic, unfrozen copy)',
    frozen: true,
    publish: (h, t, b) => h.publish(t, Array.isArray(b) ? Array.from(b) : { ...b }),
  },
  { key: 'frozen', name: 'publish(topic, frozen board)', frozen: true, publish: (h, t, b) => h.publish(t, b) },
  { key: 'immutable', name: 'publish(topic, board, { immutable: true })', frozen: false, publish: (h, t, b) => h.publish(t, b, { immutable: true }) },
];

const SCENARIOS = [
  { key: '1pct', label: '1% of rows replaced', shift: false, perTurn: 1 },
  { key: '1pct-insdel', label: '1% replaced + 1 inserted + 1 removed', shift: true, perTurn: 1 },
  { key: '1pct-b2b', label: '1% replaced, 4 publishes per turn', shift: false, perTurn: 4 },
  { key: '1pct-entities', label: '1% replaced, as { ids, entities } (another shape: full text)', shift: false, perTurn: 1, shape: 'entities' },
];

/**
 * Coalescing (pacing.coalesce) against publishing by identity: a frozen board
 * published 10 times per normal-lane window (manual clock: ten publishes, each
 * in a turn of its own, then advance(50)), as a store publishing on every
 * dispatch does. One subscriber. JS-thread and core-thread CPU over the run,
 * per publish; both hubs end at the same state (checked).
 */
async function coalescing(n, windows) {
  const states = chain(n, windows * 10, { frozen: true, shift: false });
  const lib = { createHub };
  const out = { windows };
  for (const [key, coalesce] of [['plain', false], ['coalesce', true]]) {
    const { hub, coreTid } = createHubWithTid(lib, { clock: 'manual', pacing: { coalesce } });
    hub.connect({ send() {}, acks: false }).receive('{"t":"sub","topic":"board"}');
    const first = hub.publish('board', states[0]);
    await hub.advance(50);
    await first;
    await settleHeap();
    const clock = startClock();
    let last;
    for (let w = 0; w < windows; w++) {
      for (let k = 1; k <= 10; k++) {
        last = hub.publish('board', states[w * 10 + k]);
        // Each publish in a turn of its own. Without coalescing each is
        // awaited, so that the next goes as a patch (by identity, its best
        // case); a held one is answered at the flush.
        if (coalesce) await new Promise((resolve) => setImmediate(resolve));
        else await last;
      }
      await hub.advance(50);
    }
    await last;
    const m = stopClock(clock, coreTid);
    const held = hub.getJson('board');
    if (held.json !== JSON.stringify(states[windows * 10])) throw new Error(`coalescing bench: ${key} ended at another state`);
    out[key] = { jsUs: (m.jsMs * 1000) / (windows * 10), coreUs: (m.coreMs * 1000) / (windows * 10), versions: held.version };
    await hub.close();
    gc();
  }
  return out;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const results = [];
  const lines = [];
  for (const n of opts.n) {
    const count = opts.quick ? (n >= 10000 ? 40 : 200) : n >= 10000 ? 200 : 1000;
    for (const scenario of opts.coalesceOnly ? [] : SCENARIOS) {
      const frozenStates = chain(n, count, { frozen: true, shift: scenario.shift, shape: scenario.shape });
      const plainStates = chain(n, count, { frozen: false, shift: scenario.shift, shape: scenario.shape });
      const rows = [];
      for (const variant of VARIANTS) {
        progress(`N=${n} ${scenario.key}: ${variant.key}`);
        const hub = createHub();
        const states = variant.frozen ? frozenStates : plainStates;
        // Warm up on the first tenth, then time the rest on a topic of its own.
        const warm = Math.max(10, count >> 3);
        await run(hub, `warm-${variant.key}`, states.slice(0, warm), variant.publish, scenario.perTurn);
        await settleHeap();
        const r = await run(hub, `board-${variant.key}`, states, variant.publish, scenario.perTurn);
        await hub.close();
        rows.push({ ...variant, ...r });
        gc();
      }
      const old = rows.find((r) => r.key === 'old');
      for (const r of rows) {
        results.push({
          n,
          scenario: scenario.key,
          variant: r.key,
          callUs: r.callUs,
          stringifyUs: r.refUs,
          ratioToStringify: r.callUs / r.refUs,
          ratioToOld: r.callUs / old.callUs,
          loopUsPerCall: r.loopMs * 1000,
        });
      }
      lines.push(`\n### N = ${n.toLocaleString('en-US')} rows, ${scenario.label}\n`);
      lines.push('| call | µs (median) | JSON.stringify µs | × JSON.stringify | × old path | event loop µs/call |');
      lines.push('|---|---:|---:|---:|---:|---:|');
      for (const r of rows) {
        lines.push(
          `| ${r.name} | ${fmtUs(r.callUs)} | ${fmtUs(r.refUs)} | ${fmtRatio(r.callUs / r.refUs)} | ` +
            `${fmtRatio(r.callUs / old.callUs)} | ${fmtUs(r.loopMs * 1000)} |`,
        );
      }
    }
  }
  for (const n of opts.n) {
    progress(`N=${n}: coalescing`);
    const c = await coalescing(n, opts.quick ? 20 : 100);
    results.push({ n, scenario: 'coalesce', ...c });
    lines.push(`\n### N = ${n.toLocaleString('en-US')} rows, 10 publishes of a frozen board (1% replaced each) per 50 ms window, ${c.windows} windows\n`);
    lines.push('| hub | JS thread µs per publish | core thread µs per publish | versions |');
    lines.push('|---|---:|---:|---:|');
    lines.push(`| publish by identity (createHub()) | ${fmtUs(c.plain.jsUs)} | ${fmtUs(c.plain.coreUs)} | ${c.plain.versions} |`);
    lines.push(`| coalescing (pacing.coalesce: one serialization per flush) | ${fmtUs(c.coalesce.jsUs)} | ${fmtUs(c.coalesce.coreUs)} | ${c.coalesce.versions} |`);
    lines.push(`| ratio | ${fmtRatio(c.coalesce.jsUs / c.plain.jsUs)} | ${fmtRatio(c.coalesce.coreUs / c.plain.coreUs)} | |`);
  }
  progressDone();
  const report =
    '## Publishing immutable states by identity (event-loop time)\n\n' +
    `node ${process.version}, load average ${os.loadavg()[0].toFixed(1)} on ${os.cpus().length} CPUs at the end of the run. ` +
    'µs: median per call, from before hub.publish() until after the hand-over microtask; JSON.stringify of the same ' +
    'boards timed in a loop of its own right after. "event loop µs/call": eventLoopUtilization active time over the ' +
    'run per publish, the answers\' handling and the awaits included.\n' +
    lines.join('\n');
  console.log(report);
  if (opts.save) {
    const date = new Date().toISOString().slice(0, 10);
    const stem = path.join(__dirname, 'results', `identity-${date}${opts.quick ? '-quick' : ''}${opts.coalesceOnly ? '-coalesce' : ''}`);
    fs.mkdirSync(path.dirname(stem), { recursive: true });
    fs.writeFileSync(`${stem}.json`, JSON.stringify({ date, commit: gitCommit(), node: process.version, quick: opts.quick, results }, null, 2) + '\n');
    fs.writeFileSync(`${stem}.md`, report + '\n');
    console.log(`\n(saved to ${path.relative(process.cwd(), stem)}.json and .md)`);
  }
}

main().catch((err) => {
  console.error(err.usage ? err.message : err);
  process.exitCode = 1;
});
