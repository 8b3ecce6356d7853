'use strict';

// Hub benchmark: what createHub() costs a Node process, next to what a Node
// user would otherwise write, in one run.
//
//   node bench/hub.js                 # all four benchmarks
//   node bench/hub.js --quick         # fewer steps and iterations: a smoke run (< 1 minute)
//   node bench/hub.js --only=sustained,event-loop,topics
//   node bench/hub.js --only=change-cost   # just the four change-cost rows (section 0), about two minutes
//
// Other flags: --n=1000,10000 (board sizes for sustained and event-loop)
//              --topics=1000000 (for the topics benchmark)  --no-save
// Env: DELTACAST_LIB=path/to/index.js benchmarks another deltacast build;
//      DELTACAST_ADDON=path/to/deltacast.node another addon (lib/native.js).
//
// 0. change-cost the four paths where a producer should pay for the change,
//                not the document, each next to its peer (see section 0
//                below for how each is measured).
// 1. sustained   successive states of a price board (bench/data.js) published
//                with publishJson, one after the other (await each) and
//                pipelined (fire all, await all), against fast-json-patch
//                compare(prev, next) on the same states as fresh objects.
//                Wall and CPU time per update; CPU is process.cpuUsage(), so
//                it includes the hub's core thread and V8's helper threads.
// 2. event-loop  time spent synchronously on the JS thread inside
//                hub.publish(topic, board) and hub.upsert(topic, id, row),
//                against JSON.stringify of the same value.
// 3. topics      1,000,000 small topics held: full GC pause and memory, each
//                variant in a child process of its own (node --expose-gc
//                bench/hub.js --child=<variant>), against lru-cache and a Map.
//
// Results go to stdout as markdown tables, progress to stderr, and everything
// to bench/results/hub-<date>.json (hub-<date>-quick.json or -partial.json
// for a limited run, so it does not overwrite a full one).
//
// On a machine whose two hardware threads share a core (SMT), the pipelined
// runs keep both threads busy at once and each runs slower: CPU per update
// goes up while wall time goes down. Compare ratios within one run.

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
  fmtUs,
  fmtRatio,
  fmtInt,
  progress,
  progressDone,
  nowNs,
  msSince,
  startClock,
  stopClock,
  settleHeap,
  loadDeltacast,
  createHubWithTid,
  threadCpuNs,
  threadSplit,
} = require('./common.js');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const util = require('node:util');
const { spawnSync } = require('node:child_process');

const { makeBoard, mutate } = require('./data.js');

const BENCHMARKS = ['change-cost', 'sustained', 'event-loop', 'topics'];
const CHILD_VARIANTS = ['empty', 'deltacast', 'lru-cache', 'map'];

// ---- command line -----------------------------------------------------------

function parseArgs(argv) {
  const opts = { quick: false, only: null, child: null, n: null, topics: null, save: true };
  const usage = 'node bench/hub.js [--quick] [--only=change-cost,sustained,event-loop,topics] [--n=1000,10000] [--topics=1000000] [--no-save]';
  eachFlag(argv, usage, (flag, value) => {
    switch (flag) {
      case '--quick':
        opts.quick = true;
        break;
      case '--only':
        opts.only = namesOf(value, BENCHMARKS, '--only');
        break;
      case '--child':
        opts.child = namesOf(value, CHILD_VARIANTS, '--child')[0];
        break;
      case '--n':
        opts.n = value.split(',').map((s) => Number(s.trim()));
        for (const n of opts.n) if (!Number.isInteger(n) || n < 10) throw usageError(`--n takes board sizes ≥ 10, got ${n}`);
        break;
      case '--topics':
        opts.topics = Number(value);
        if (!Number.isInteger(opts.topics) || opts.topics < 1) throw usageError('--topics takes a positive integer');
        break;
      case '--no-save':
        opts.save = false;
        break;
      default:
        return false;
    }
    return true;
  });
  opts.n ??= [1000, 10000];
  opts.topics ??= 1_000_000;
  return opts;
}

// ---- helpers ----------------------------------------------------------------

function summarize(samples) {
  const sorted = [...samples].sort((x, y) => x - y);
  return { samples: sorted.length, median: median(sorted), p10: quantile(sorted, 0.1), p90: quantile(sorted, 0.9) };
}

function mib(bytes) {
  return (bytes / (1024 * 1024)).toFixed(1);
}

// ---- 0. change cost: the four rows of "publishing pays for the change" -------
//
// One quick run (--only=change-cost) puts each path next to its peer:
//
// a. publish(object) of an immutable board: 1,000 rows, deep-frozen; each
//    step replaces 1% of the rows by new frozen objects and shares the rest
//    (as Redux, Immer or Zustand do). Event-loop time of hub.publish (from
//    before the call until after the microtask that hands it to the core
//    thread, as in 2.) against JSON.stringify of the same state, timed in the
//    same iteration, in alternating order. Ratio of the medians. Also the
//    floor under any publish made on its own: the same loop with a 7-byte
//    publishJson in place of the board's publish (the hand-over wakes the
//    sleeping core thread: a cross-CPU wake-up, tens of µs on a VM).
// b. upsert of one row (a price tick) into a 10,000-row topic against the
//    same into a 1,000-row topic: CPU of all threads (process.cpuUsage())
//    over a run of upserts fired in batches of 100 (each batch awaited),
//    divided by the upserts. Ratio of the two.
// c. publishJson sustained on the 10,000-row board with churn (the states of
//    1., 2.2 MB of text each), sequential (await each) and pipelined (fire
//    all, await all): GB/s of text over wall time, and the CPU of all
//    threads against fast-json-patch compare(prev, next) on the same states
//    as fresh objects (parsed before the clock starts: compare only).
// d. tiny topics: 100,000 topics of `{"v":<n>,"s":"ok"}` exist; 1,000,000
//    publishJson calls update them round-robin, fire-and-forget in chunks of
//    10,000 (only each chunk's last receipt is awaited: answers come in
//    order). Core-thread time per publish is the CPU time of the hub's
//    thread (/proc/self/task/<tid>/schedstat, the thread createHub starts)
//    over the run, ÷ calls; JS-side time per publish is the CPU time of the
//    JS thread (tid = pid) over the same run, ÷ calls: the calls, the
//    hand-over and the draining of the answers. Also: how long the last
//    answer trails the last call (wall).
//
// Targets (printed with each row): a ≤ 0.1×, b ≤ 2×, c ≥ 0.5 GB/s and ≥ 3×
// fast-json-patch, d core ≤ JS.

function deepFreeze(value) {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const key of Object.keys(value)) deepFreeze(value[key]);
    Object.freeze(value);
  }
  return value;
}

async function changeCostPublish(opts, deltacast) {
  const n = 1000;
  const iterations = opts.quick ? 200 : 1000;
  const { hub } = createHubWithTid(deltacast.lib, { clock: 'manual' });
  let state = deepFreeze(makeBoard(n, 4242));
  const topic = 'frozen-board';
  await hub.publish(topic, state);
  let seed = 1;
  const prepare = () => {
    state = deepFreeze(mutate(state, { fraction: 0.01, seed: 5000 + seed++ }));
    return state;
  };
  const cell = { name: 'publish', awaited: true, prepare, ref: (s) => JSON.stringify(s), call: (s) => hub.publish(topic, s) };
  await timeLoop(Math.max(20, iterations >> 3), cell);
  await settleHeap();
  const r = await timeLoop(iterations, cell);
  const held = hub.getJson(topic);
  const correct = held !== undefined && held.json === JSON.stringify(state);
  // The floor under any publish made on its own: handing a request to the
  // core thread when it sleeps (a wake-up across threads). The same loop with
  // a 7-byte publishJson in place of the board's publish.
  const floorCell = { name: 'floor', awaited: true, ref: () => JSON.stringify(state), call: (i) => hub.publishJson('floor', `{"v":${i}}`) };
  await timeLoop(Math.max(20, iterations >> 3), floorCell);
  const floor = await timeLoop(iterations, floorCell);
  await hub.close();
  return {
    n,
    iterations,
    publishUs: r.call.median,
    stringifyUs: r.ref.median,
    ratio: r.call.median / r.ref.median,
    floorUs: floor.call.median,
    correct,
  };
}

async function changeCostUpsert(opts, deltacast) {
  const out = [];
  const upserts = opts.quick ? 2000 : 10000;
  for (const n of [1000, 10000]) {
    const board = makeBoard(n, 777);
    const { hub } = createHubWithTid(deltacast.lib, { clock: 'manual' });
    const topic = `rows-${n}`;
    await hub.publishJson(topic, JSON.stringify(board));
    const rows = [];
    for (let j = 0; j < 64; j++) rows.push(JSON.parse(JSON.stringify(board[Math.floor(((j + 0.5) / 64) * n)])));
    const run = async (count) => {
      let last;
      for (let i = 0; i < count; i++) {
        const row = rows[i % rows.length];
        row.price = Math.round(row.price * 100 + 1) / 100;
        last = hub.upsert(topic, row.id, row);
        if (i % 100 === 99) await last;
      }
      await last;
    };
    await run(200);
    await settleHeap();
    const clock = startClock();
    await run(upserts);
    const m = stopClock(clock);
    const held = hub.get(topic);
    await hub.close();
    out.push({ n, upserts, cpuUsPerUpsert: (m.cpuMs * 1000) / upserts, wallUsPerUpsert: (m.wallMs * 1000) / upserts,
      correct: held?.data?.length === n });
  }
  return { rows: out, ratio: out[1].cpuUsPerUpsert / out[0].cpuUsPerUpsert };
}

async function changeCostSustained(opts, deltacast) {
  const fjp = require('fast-json-patch');
  const n = 10000;
  const k = opts.quick ? 12 : 30;
  const rounds = opts.quick ? 3 : 5;
  const texts = boardStates(n, k);
  let bytes = 0;
  for (let i = 1; i <= k; i++) bytes += Buffer.byteLength(texts[i]);
  const { hub, coreTid } = createHubWithTid(deltacast.lib, { clock: 'manual' });
  const modes = {
    sequential: async (topic) => {
      for (let i = 1; i <= k; i++) await hub.publishJson(topic, texts[i]);
    },
    pipelined: async (topic) => {
      const all = [];
      for (let i = 1; i <= k; i++) all.push(hub.publishJson(topic, texts[i]));
      await Promise.all(all);
    },
  };
  const samples = { sequential: [], pipelined: [], fjp: [] };
  let correct = true;
  let seq = 0;
  for (let round = -1; round < rounds; round++) {
    for (const [mode, run] of Object.entries(modes)) {
      const topic = `sustained-${seq++}`;
      await hub.publishJson(topic, texts[0]);
      await settleHeap();
      const clock = startClock();
      await run(topic);
      const m = stopClock(clock, coreTid);
      const held = hub.getJson(topic);
      correct &&= held !== undefined && held.json === texts[k] && held.version === k + 1;
      await hub.delete(topic);
      if (round >= 0) samples[mode].push(m);
    }
    const objects = texts.map((t) => JSON.parse(t));
    await settleHeap();
    const clock = startClock();
    let ops = 0;
    for (let i = 1; i <= k; i++) ops += fjp.compare(objects[i - 1], objects[i]).length;
    const m = stopClock(clock);
    m.ops = ops;
    if (round >= 0) samples.fjp.push(m);
  }
  await hub.close();
  const fjpCpu = medianOf(samples.fjp.map((m) => m.cpuMs));
  const row = (mode) => {
    const ms = samples[mode];
    const wallMs = medianOf(ms.map((m) => m.wallMs));
    const cpuMs = medianOf(ms.map((m) => m.cpuMs));
    return {
      mode,
      gbPerSecond: bytes / (wallMs * 1e6),
      msPerUpdate: wallMs / k,
      cpuMsPerUpdate: cpuMs / k,
      coreMsPerUpdate: medianOf(ms.map((m) => m.coreMs ?? NaN)) / k,
      jsMsPerUpdate: medianOf(ms.map((m) => m.jsMs ?? NaN)) / k,
      speedupCpu: fjpCpu / cpuMs,
    };
  };
  return { n, steps: k, rounds, stateBytes: Buffer.byteLength(texts[k]), fjpCpuMsPerUpdate: fjpCpu / k,
    rows: [row('sequential'), row('pipelined')], correct };
}

async function changeCostTiny(opts, deltacast) {
  const topics = 100_000;
  const calls = opts.quick ? 300_000 : 1_000_000;
  const chunk = 10_000;
  const { hub, coreTid } = createHubWithTid(deltacast.lib, { clock: 'manual' });
  const run = async (count, offset) => {
    let lastCallNs = 0n;
    for (let start = 0; start < count; start += chunk) {
      let last;
      const end = Math.min(count, start + chunk);
      for (let i = start; i < end; i++) last = hub.publishJson(`t${i % topics}`, `{"v":${offset + i},"s":"ok"}`);
      lastCallNs = nowNs();
      await last;
    }
    return lastCallNs;
  };
  await run(topics, 0); // creates them
  await run(topics, topics); // warm-up
  await settleHeap();
  const threads = threadCpuNs();
  const t0 = nowNs();
  const lastCall = await run(calls, 2 * topics);
  const t1 = nowNs();
  const split = threadSplit(threads, coreTid);
  const sample = hub.get(`t${(calls - 1) % topics}`);
  const stats = hub.stats();
  await hub.close();
  return {
    topics,
    calls,
    coreThreadFound: coreTid != null,
    coreUsPerPublish: (split.coreMs * 1000) / calls,
    jsUsPerPublish: (split.jsMs * 1000) / calls,
    wallUsPerPublish: Number(t1 - t0) / 1000 / calls,
    lastAnswerTrailsMs: Number(t1 - lastCall) / 1e6,
    ratio: split.coreMs / split.jsMs,
    correct: sample?.data?.v === 2 * topics + calls - 1 && stats.topics === topics,
  };
}

async function runChangeCost(opts, deltacast) {
  if (!deltacast.lib) {
    console.log(`## 0. Change cost\n\ndeltacast not built: ${deltacast.missing}\n`);
    return { skipped: deltacast.missing };
  }
  progress('change cost: publish(object) of a frozen board');
  const publish = await changeCostPublish(opts, deltacast);
  gc();
  progress('change cost: upsert at 1,000 and 10,000 rows');
  const upsert = await changeCostUpsert(opts, deltacast);
  gc();
  progress('change cost: publishJson sustained, 10,000 rows');
  const sustained = await changeCostSustained(opts, deltacast);
  gc();
  progress('change cost: tiny topics');
  const tiny = await changeCostTiny(opts, deltacast);
  progressDone();
  const out = { publish, upsert, sustained, tiny };
  printChangeCost(out);
  return out;
}

function printChangeCost({ publish, upsert, sustained, tiny }) {
  const met = (ok) => (ok ? 'met' : 'NOT met');
  const check = (ok) => (ok ? '' : ' ✗ check failed');
  const [seq, pipe] = sustained.rows;
  const worstGb = Math.min(seq.gbPerSecond, pipe.gbPerSecond);
  const worstSpeedup = Math.min(seq.speedupCpu, pipe.speedupCpu);
  const [u1, u10] = upsert.rows;
  const lines = [];
  lines.push('## 0. Change cost: each path next to its peer');
  lines.push('');
  lines.push('| path | deltacast | peer | ratio | target |');
  lines.push('|---|--:|--:|--:|---|');
  lines.push(`| publish(object) of a frozen ${publish.n.toLocaleString('en-US')}-row board, 1% of rows replaced: event-loop µs ` +
    `(median of ${publish.iterations}) | ${fmtUs(publish.publishUs)} | JSON.stringify(board) ${fmtUs(publish.stringifyUs)} | ` +
    `${fmtRatio(publish.ratio)} | ≤ 0.1× → ${met(publish.ratio <= 0.1)}${check(publish.correct)} |`);
  lines.push(`| upsert of one row, CPU of all threads µs per upsert (${fmtInt(u10.upserts)} upserts) | ` +
    `10,000 rows: ${fmtUs(u10.cpuUsPerUpsert)} | 1,000 rows: ${fmtUs(u1.cpuUsPerUpsert)} | ${fmtRatio(upsert.ratio)} | ` +
    `≤ 2× → ${met(upsert.ratio <= 2)}${check(u1.correct && u10.correct)} |`);
  for (const r of sustained.rows) {
    lines.push(`| publishJson sustained, ${sustained.n.toLocaleString('en-US')} rows (${(sustained.stateBytes / 1024).toFixed(0)} KiB a state), ` +
      `${r.mode}: GB/s of text (wall); CPU ms per update (all threads; core ${fmtMs(r.coreMsPerUpdate)}, JS ${fmtMs(r.jsMsPerUpdate)}) | ` +
      `${r.gbPerSecond.toFixed(2)} GB/s; ${fmtMs(r.cpuMsPerUpdate)} ms | fast-json-patch compare ${fmtMs(sustained.fjpCpuMsPerUpdate)} ms | ` +
      `${fmtRatio(r.speedupCpu)} faster | ≥ 0.5 GB/s and ≥ 3× |`);
  }
  lines.push(`| tiny topics (${fmtInt(tiny.topics)} topics, ${fmtInt(tiny.calls)} publishJson): core-thread µs per publish | ` +
    `${fmtUs(tiny.coreUsPerPublish)} | JS thread ${fmtUs(tiny.jsUsPerPublish)} | ${fmtRatio(tiny.ratio)} | ` +
    `≤ 1× → ${met(tiny.ratio <= 1)}${check(tiny.correct && tiny.coreThreadFound)} |`);
  lines.push('');
  lines.push(`- publishJson sustained: worst ${worstGb.toFixed(2)} GB/s, worst ${fmtRatio(worstSpeedup)} fast-json-patch → ` +
    `${met(worstGb >= 0.5 && worstSpeedup >= 3)}${check(sustained.correct)}`);
  lines.push(`- publish(object): the floor under any publish made on its own (a 7-byte publishJson in the same loop: ` +
    `the hand-over wakes the core thread) is ${fmtUs(publish.floorUs)} µs; above it the board's publish costs ` +
    `${fmtUs(publish.publishUs - publish.floorUs)} µs, ${fmtRatio((publish.publishUs - publish.floorUs) / publish.stringifyUs)} JSON.stringify`);
  lines.push(`- tiny topics: ${fmtUs(tiny.wallUsPerPublish)} µs wall per publish; the last answer came ${fmtMs(tiny.lastAnswerTrailsMs)} ms ` +
    'after the last call');
  lines.push('- how each row is measured: the header of bench/hub.js (section 0).');
  lines.push('');
  console.log(lines.join('\n'));
}

// ---- 1. sustained publishJson ----------------------------------------------
//
// K successive states of one board: 1% of the rows tick at every step, and
// every third step also inserts one row, deletes one and moves one. The same
// states, as JSON texts, for deltacast; as fresh JSON.parse objects (parsed
// again for each round, before its timing starts) for the object rows.

function boardStates(n, k) {
  const states = [makeBoard(n, 4242)];
  for (let i = 1; i <= k; i++) {
    const structural = i % 3 === 0;
    states.push(mutate(states[i - 1], {
      fraction: 0.01,
      insertMid: structural,
      deleteOne: structural,
      moveOne: structural,
      seed: 9000 + i,
    }));
  }
  return states.map((s) => JSON.stringify(s));
}

function sustainedDrivers(deltacast, fjp) {
  return [
    {
      name: 'deltacast publishJson, sequential (await each)',
      key: 'deltacast-seq',
      input: 'texts',
      hub: true,
      async run(ctx, topic, texts) {
        for (let i = 1; i < texts.length; i++) await ctx.hub.publishJson(topic, texts[i]);
      },
    },
    {
      name: 'deltacast publishJson, pipelined (fire all, await all)',
      key: 'deltacast-pipe',
      input: 'texts',
      hub: true,
      async run(ctx, topic, texts) {
        const all = new Array(texts.length - 1);
        for (let i = 1; i < texts.length; i++) all[i - 1] = ctx.hub.publishJson(topic, texts[i]);
        await Promise.all(all);
      },
    },
    {
      // Not asked of publishJson, but what a publisher holding objects pays:
      // JSON.stringify on the JS thread, then the same path.
      name: '(ref) deltacast publish(object), pipelined',
      key: 'deltacast-publish-pipe',
      input: 'objects',
      hub: true,
      reference: true,
      async run(ctx, topic, objects) {
        const all = new Array(objects.length - 1);
        for (let i = 1; i < objects.length; i++) all[i - 1] = ctx.hub.publish(topic, objects[i]);
        await Promise.all(all);
      },
    },
    {
      name: 'fast-json-patch compare(prev, next)',
      key: 'fjp',
      input: 'objects',
      baseline: true,
      async run(ctx, topic, objects) {
        let ops = 0;
        for (let i = 1; i < objects.length; i++) ops += fjp.compare(objects[i - 1], objects[i]).length;
        ctx.sink += ops;
      },
    },
  ].filter((d) => !d.hub || deltacast.lib);
}

async function runSustained(opts, deltacast) {
  const fjp = require('fast-json-patch');
  const results = [];
  for (const n of opts.n) {
    const k = opts.quick ? (n >= 10000 ? 12 : 60) : n >= 10000 ? 40 : 200;
    const rounds = opts.quick ? 3 : n >= 10000 ? 7 : 9;
    progress(`sustained N=${n}: generating ${k + 1} states`);
    const texts = boardStates(n, k);
    const drivers = sustainedDrivers(deltacast, fjp);
    let hubCtx = null;
    if (deltacast.lib) hubCtx = createHubWithTid(deltacast.lib, { clock: 'manual' });
    const ctx = { hub: hubCtx?.hub, sink: 0 };
    const perDriver = new Map(drivers.map((d) => [d.key, []]));
    let topicSeq = 0;

    // Round -1 is a warm-up (JIT, allocator, the hub's first topics).
    for (let round = -1; round < rounds; round++) {
      for (const driver of drivers) {
        progress(`sustained N=${n}: ${round < 0 ? 'warm-up' : `round ${round + 1}/${rounds}`}: ${driver.name}`);
        const input = driver.input === 'texts' ? texts : texts.map((t) => JSON.parse(t));
        const topic = `board-${n}-${topicSeq++}`;
        if (driver.hub) {
          // The first state creates the topic; the K steps after it are timed.
          if (driver.input === 'texts') await ctx.hub.publishJson(topic, input[0]);
          else await ctx.hub.publish(topic, input[0]);
        }
        await settleHeap();
        const clock = startClock();
        await driver.run(ctx, topic, input);
        const m = stopClock(clock, hubCtx?.coreTid);
        if (driver.hub) {
          const held = ctx.hub.getJson(topic);
          m.correct = held !== undefined && held.json === texts[texts.length - 1] && held.version === texts.length;
          await ctx.hub.delete(topic);
        }
        if (round >= 0) perDriver.get(driver.key).push(m);
      }
    }
    if (ctx.hub) await ctx.hub.close();

    const entry = { n, steps: k, rounds, stateBytes: Buffer.byteLength(texts[k]), coreThreadFound: hubCtx?.coreTid != null, rows: [] };
    for (const driver of drivers) {
      const ms = perDriver.get(driver.key);
      const per = (field) => (ms[0][field] === undefined ? undefined : medianOf(ms.map((m) => m[field] / k)));
      entry.rows.push({
        library: driver.name,
        key: driver.key,
        baseline: !!driver.baseline,
        reference: !!driver.reference,
        wallMsPerUpdate: per('wallMs'),
        cpuMsPerUpdate: per('cpuMs'),
        jsThreadMsPerUpdate: per('jsMs'),
        coreThreadMsPerUpdate: driver.hub ? per('coreMs') : undefined,
        otherThreadsMsPerUpdate: per('otherMs'),
        correct: driver.hub ? ms.every((m) => m.correct) : undefined,
        rounds: ms,
      });
    }
    const base = entry.rows.find((r) => r.baseline);
    for (const r of entry.rows) {
      r.speedupWall = base.wallMsPerUpdate / r.wallMsPerUpdate;
      r.speedupCpu = base.cpuMsPerUpdate / r.cpuMsPerUpdate;
    }
    progressDone();
    printSustained(entry, deltacast);
    results.push(entry);
    gc();
  }
  return results;
}

function printSustained(entry, deltacast) {
  const lines = [];
  lines.push(`## 1. Sustained publishJson: N = ${entry.n.toLocaleString('en-US')} rows ` +
    `(${(entry.stateBytes / 1024).toFixed(0)} KiB a state), ${entry.steps} steps × ${entry.rounds} rounds`);
  lines.push('');
  lines.push('| library / mode | wall ms/update | speed-up, wall | CPU ms/update (all threads) | speed-up, CPU | ' +
    'JS thread ms | core thread ms | other threads ms |');
  lines.push('|---|--:|--:|--:|--:|--:|--:|--:|');
  const opt = (x) => (x === undefined ? '' : fmtMs(x));
  for (const r of entry.rows) {
    lines.push(`| ${r.library} | ${fmtMs(r.wallMsPerUpdate)} | ${fmtRatio(r.speedupWall)} | ${fmtMs(r.cpuMsPerUpdate)} | ` +
      `${fmtRatio(r.speedupCpu)} | ${opt(r.jsThreadMsPerUpdate)} | ${opt(r.coreThreadMsPerUpdate)} | ${opt(r.otherThreadsMsPerUpdate)} |`);
  }
  if (!deltacast.lib) lines.push(`| deltacast | not built | | | | | | |`);
  lines.push('');
  lines.push('speed-up = fast-json-patch ÷ this row (above 1× is faster than fast-json-patch). ' +
    'Medians over the rounds of (round time ÷ steps). CPU = process.cpuUsage() user + system over the round; ' +
    'the thread columns split it (from /proc/self/task/*/schedstat): "other" is V8\'s GC and compiler threads and libuv. ' +
    'Pipelined, the JS and core threads run at the same time, so wall time drops below CPU time.');
  const hubRows = entry.rows.filter((r) => r.key === 'deltacast-seq' || r.key === 'deltacast-pipe');
  if (hubRows.length) {
    const worst = Math.min(...hubRows.map((r) => r.speedupCpu));
    lines.push(`- target (deltacast ≥ 3× faster than fast-json-patch compare, CPU of all threads): ` +
      hubRows.map((r) => `${r.key === 'deltacast-seq' ? 'sequential' : 'pipelined'} ${fmtRatio(r.speedupCpu)}`).join(', ') +
      ` → ${worst >= 3 ? 'met' : 'NOT met'}`);
    const bad = entry.rows.filter((r) => r.correct === false);
    lines.push(`- the hub's value after the last step equals the last state, at version K + 1: ` +
      (bad.length ? `✗ (${bad.map((r) => r.library).join('; ')})` : '✓'));
  } else {
    lines.push(`- deltacast not built: ${deltacast.missing}`);
  }
  if (!entry.coreThreadFound) lines.push('- the core thread could not be told apart: its time is under "other threads"');
  lines.push('');
  console.log(lines.join('\n'));
}

// ---- 2. event-loop time -----------------------------------------------------
//
// Only the event-loop part of each call is timed: process.hrtime.bigint()
// right before the call and right after the microtask that hands the call
// over to the hub's thread (one await of a microtask, about a microsecond). In the same
// iteration, and in alternating order, the loop also times JSON.stringify of
// the same value, so the call and its reference see the same machine state
// (an idle CPU is slow for a while after it wakes). Two modes: "awaited"
// settles every call before the next (the core thread is idle when the call
// is made), "back-to-back" fires batches of 50 and then awaits them (the
// core thread is busy on the other core meanwhile).

// The hub hands the calls of one job to its thread in a microtask queued by
// the first call; a microtask queued after the call runs after that one, so
// awaiting it puts the hand-over (the copy into the addon) on the clock too.
const handedOver = () => new Promise((resolve) => queueMicrotask(resolve));

async function timeLoop(iterations, { prepare = (i) => i, ref, call, awaited, refFirst = false, batch = 50 }) {
  const callUs = new Array(iterations);
  const refUs = new Array(iterations);
  const settleMs = [];
  let pending = [];
  let batchStart = 0n;
  let sink = 0;
  for (let i = 0; i < iterations; i++) {
    const arg = prepare(i);
    let refOut;
    let p;
    if (!awaited && pending.length === 0) batchStart = nowNs();
    if (refFirst || i % 2 === 0) {
      const r0 = nowNs();
      refOut = ref(arg);
      const r1 = nowNs();
      p = call(arg, refOut);
      await handedOver();
      const c1 = nowNs();
      refUs[i] = Number(r1 - r0) / 1000;
      callUs[i] = Number(c1 - r1) / 1000;
    } else {
      const c0 = nowNs();
      p = call(arg);
      await handedOver();
      const c1 = nowNs();
      refOut = ref(arg);
      const r1 = nowNs();
      callUs[i] = Number(c1 - c0) / 1000;
      refUs[i] = Number(r1 - c1) / 1000;
    }
    sink += refOut.length;
    if (awaited) {
      await p;
    } else {
      pending.push(p);
      if (pending.length === batch || i === iterations - 1) {
        const count = pending.length;
        await Promise.all(pending);
        settleMs.push(msSince(batchStart) / count);
        pending = [];
      }
    }
  }
  const out = { call: summarize(callUs), ref: summarize(refUs), sink };
  if (!awaited) out.settledMsPerCall = medianOf(settleMs);
  return out;
}

async function runCells(label, cells, iterations, warm) {
  const rows = [];
  for (const cell of cells) {
    progress(`${label}: ${cell.name}`);
    await timeLoop(warm, cell);
    await settleHeap();
    const r = await timeLoop(iterations, cell);
    rows.push({
      call: cell.name,
      key: cell.key,
      reference: !!cell.reference,
      awaited: cell.awaited,
      ...r.call,
      refMedian: r.ref.median,
      ratio: r.call.median / r.ref.median,
      settledMsPerCall: r.settledMsPerCall,
      refSummary: r.ref,
    });
  }
  return rows;
}

async function runEventLoop(opts, deltacast) {
  if (!deltacast.lib) {
    console.log(`## 2. Event-loop time\n\ndeltacast not built: ${deltacast.missing}\n`);
    return { skipped: deltacast.missing };
  }
  const out = { publish: [], upsert: [] };

  // publish(topic, board) against JSON.stringify(board)
  for (const n of opts.n) {
    const iterations = opts.quick ? (n >= 10000 ? 30 : 150) : n >= 10000 ? 300 : 1500;
    progress(`event-loop publish N=${n}: preparing`);
    const texts = boardStates(n, 5);
    const boards = texts.map((t) => JSON.parse(t));
    const bytes = texts.map((t) => Buffer.from(t)); // also flattens the texts
    const S = boards.length;
    const { hub } = createHubWithTid(deltacast.lib, { clock: 'manual' });
    const topic = `board-${n}`;
    await hub.publishJson(topic, texts[0]);
    const stringify = (i) => JSON.stringify(boards[i % S]);
    const cells = [
      { name: 'hub.publish(topic, board), awaited', key: 'publish-awaited', awaited: true,
        ref: stringify, call: (i) => hub.publish(topic, boards[i % S]) },
      { name: 'hub.publish(topic, board), back-to-back', key: 'publish-b2b', awaited: false,
        ref: stringify, call: (i) => hub.publish(topic, boards[i % S]) },
      { name: '(ref) hub.publishJson(topic, text): text fresh from JSON.stringify (a rope), awaited',
        key: 'publishJson-fresh', reference: true, awaited: true, refFirst: true,
        ref: stringify, call: (i, text) => hub.publishJson(topic, text) },
      { name: '(ref) hub.publishJson(topic, text): text already flat, awaited', key: 'publishJson-flat',
        reference: true, awaited: true, ref: stringify, call: (i) => hub.publishJson(topic, texts[i % S]) },
      { name: '(ref) hub.publishJson(topic, Uint8Array), awaited', key: 'publishJson-bytes', reference: true,
        awaited: true, ref: stringify, call: (i) => hub.publishJson(topic, bytes[i % S]) },
    ];
    const rows = await runCells(`event-loop publish N=${n}`, cells, iterations, Math.max(10, iterations >> 3));
    await hub.close();
    out.publish.push({ n, stateBytes: Buffer.byteLength(texts[0]), iterations, rows });
    gc();
  }
  progressDone();
  printPublishSync(out.publish);

  // upsert(topic, id, row) against JSON.stringify(row), for topics of
  // 1,000 and 10,000 rows.
  const iterations = opts.quick ? 300 : 2000;
  for (const n of opts.n) {
    progress(`event-loop upsert N=${n}: preparing`);
    const board = makeBoard(n, 777);
    const { hub } = createHubWithTid(deltacast.lib, { clock: 'manual' });
    const topic = `rows-${n}`;
    await hub.publishJson(topic, JSON.stringify(board));
    // 64 rows spread over the board, as fresh objects; each call raises the
    // row's price by one cent, so every upsert is a change.
    const rows = [];
    for (let j = 0; j < 64; j++) rows.push(JSON.parse(JSON.stringify(board[Math.floor(((j + 0.5) / 64) * n)])));
    const prepare = (i) => {
      const row = rows[i % rows.length];
      row.price = Math.round(row.price * 100 + 1) / 100;
      return row;
    };
    const cells = [
      { name: 'hub.upsert(topic, id, row), awaited', key: 'upsert-awaited', awaited: true, prepare,
        ref: (row) => JSON.stringify(row), call: (row) => hub.upsert(topic, row.id, row) },
      { name: 'hub.upsert(topic, id, row), back-to-back', key: 'upsert-b2b', awaited: false, prepare,
        ref: (row) => JSON.stringify(row), call: (row) => hub.upsert(topic, row.id, row) },
    ];
    const result = await runCells(`event-loop upsert N=${n}`, cells, iterations, 100);
    const held = hub.getJson(topic);
    await hub.close();
    out.upsert.push({ n, rowBytes: Buffer.byteLength(JSON.stringify(rows[0])), iterations, version: held?.version, rows: result });
    gc();
  }
  progressDone();
  printUpsertSync(out.upsert);
  return out;
}

function printPublishSync(entries) {
  const lines = [];
  lines.push('## 2a. Event-loop time of hub.publish(topic, board)');
  lines.push('');
  lines.push('| board | call | sync ms (median) | p10 | p90 | JSON.stringify(board) ms, same loop | ratio to JSON.stringify |');
  lines.push('|---|---|--:|--:|--:|--:|--:|');
  for (const e of entries) {
    e.rows.forEach((r, idx) => {
      const label = idx === 0 ? `N = ${e.n.toLocaleString('en-US')} (${(e.stateBytes / 1024).toFixed(0)} KiB), ${e.iterations} calls` : '';
      lines.push(`| ${label} | ${r.call} | ${fmtMs(r.median / 1000)} | ${fmtMs(r.p10 / 1000)} | ${fmtMs(r.p90 / 1000)} | ` +
        `${fmtMs(r.refMedian / 1000)} | ${fmtRatio(r.ratio)} |`);
    });
  }
  lines.push('');
  lines.push('Only the event-loop part of a call is timed (hrtime from before the call until after the microtask that hands it to the core thread). ' +
    'Each iteration also times JSON.stringify of the same board, so every ratio has its own baseline. ' +
    '"awaited": each call settles before the next; "back-to-back": batches of 50 calls, then await them all. ' +
    'The (ref) rows split publish: JSON.stringify returns a rope (a cons string) for a large output, and V8 flattens it ' +
    '(one more copy, in the JS heap) when the binding reads it; the binding then copies the flat text out as UTF-8.');
  for (const e of entries) {
    const aw = e.rows.find((r) => r.key === 'publish-awaited');
    const b2b = e.rows.find((r) => r.key === 'publish-b2b');
    const worst = Math.max(aw.ratio, b2b.ratio);
    lines.push(`- target (publish ≤ 1.1 × JSON.stringify), N = ${e.n.toLocaleString('en-US')}: awaited ${fmtRatio(aw.ratio)}, ` +
      `back-to-back ${fmtRatio(b2b.ratio)} → ${worst <= 1.1 ? 'met' : 'NOT met'}`);
  }
  lines.push('');
  console.log(lines.join('\n'));
}

function printUpsertSync(entries) {
  const lines = [];
  lines.push('## 2b. Event-loop time of hub.upsert(topic, id, row)');
  lines.push('');
  lines.push('| topic | call | sync µs (median) | p10 | p90 | JSON.stringify(row) µs, same loop | ratio to JSON.stringify | ' +
    'settled, ms per call |');
  lines.push('|---|---|--:|--:|--:|--:|--:|--:|');
  for (const e of entries) {
    e.rows.forEach((r, idx) => {
      const label = idx === 0 ? `${e.n.toLocaleString('en-US')} rows (a row: ${e.rowBytes} B), ${e.iterations} calls` : '';
      const settled = r.settledMsPerCall === undefined ? '' : fmtMs(r.settledMsPerCall);
      lines.push(`| ${label} | ${r.call} | ${fmtUs(r.median)} | ${fmtUs(r.p10)} | ${fmtUs(r.p90)} | ${fmtUs(r.refMedian)} | ` +
        `${fmtRatio(r.ratio)} | ${settled} |`);
    });
  }
  lines.push('');
  lines.push('"settled, ms per call" (back-to-back only): the wall time from the first call of a batch of 50 until all 50 ' +
    'settled, ÷ 50, which is what the core thread spends on one upsert. An awaited call finds the core thread idle, ' +
    'and waking it is part of the call.');
  if (entries.length >= 2) {
    const small = entries[0];
    const large = entries[entries.length - 1];
    const pick = (e, key) => e.rows.find((r) => r.key === key);
    for (const key of ['upsert-awaited', 'upsert-b2b']) {
      lines.push(`- JS-thread time, ${large.n.toLocaleString('en-US')} rows ÷ ${small.n.toLocaleString('en-US')} rows ` +
        `(${key === 'upsert-awaited' ? 'awaited' : 'back-to-back'}): ${fmtRatio(pick(large, key).median / pick(small, key).median)}`);
    }
    const sa = pick(small, 'upsert-b2b').settledMsPerCall;
    const sb = pick(large, 'upsert-b2b').settledMsPerCall;
    lines.push(`- core-thread time per upsert: ${fmtMs(sa)} ms at ${small.n.toLocaleString('en-US')} rows, ` +
      `${fmtMs(sb)} ms at ${large.n.toLocaleString('en-US')} rows (${fmtRatio(sb / sa)})`);
  }
  lines.push('');
  console.log(lines.join('\n'));
}

// ---- 3. one million small topics --------------------------------------------
//
// Each variant runs in a child process of its own, so their heaps and
// allocators do not mix. The child measures a full GC pause (gc() timed with
// hrtime, median of 5 after 2 unmeasured ones) and process.memoryUsage()
// before and after loading the topics, and prints one JSON line.

function measureGc() {
  gc();
  gc();
  const pauses = [];
  for (let i = 0; i < 5; i++) {
    const t0 = nowNs();
    gc();
    pauses.push(msSince(t0));
  }
  return { pauseMs: medianOf(pauses), pausesMs: pauses, memory: process.memoryUsage() };
}

async function runChild(variant, topics) {
  const out = { variant, topics };
  let keep = null; // what the variant holds, alive until measured
  if (variant === 'deltacast') {
    const deltacast = loadDeltacast();
    if (!deltacast.lib) {
      out.error = deltacast.missing;
      return out;
    }
    const { hub } = createHubWithTid(deltacast.lib, { clock: 'manual', memory: { maxBytes: 0 } });
    keep = hub;
    out.before = measureGc();
    const t0 = nowNs();
    const chunk = 10_000;
    for (let start = 0; start < topics; start += chunk) {
      const end = Math.min(topics, start + chunk);
      const all = new Array(end - start);
      for (let i = start; i < end; i++) all[i - start] = hub.publishJson(`t${i}`, `{"v":${i},"s":"ok"}`);
      await Promise.all(all);
    }
    out.loadMs = msSince(t0);
    out.stats = hub.stats();
    out.after = measureGc();
    const sample = hub.get(`t${topics - 1}`);
    out.correct = out.stats.topics === topics && sample?.data?.v === topics - 1;
  } else if (variant === 'lru-cache') {
    const { LRUCache } = require('lru-cache');
    out.version = packageVersion('lru-cache');
    out.before = measureGc();
    const t0 = nowNs();
    const cache = new LRUCache({ max: 2_000_000 });
    for (let i = 0; i < topics; i++) cache.set(`t${i}`, { v: i, s: 'ok' });
    out.loadMs = msSince(t0);
    keep = cache;
    out.after = measureGc();
    out.correct = cache.size === topics && cache.get(`t${topics - 1}`)?.v === topics - 1;
  } else if (variant === 'map') {
    out.before = measureGc();
    const t0 = nowNs();
    const map = new Map();
    for (let i = 0; i < topics; i++) map.set(`t${i}`, { v: i, s: 'ok' });
    out.loadMs = msSince(t0);
    keep = map;
    out.after = measureGc();
    out.correct = map.size === topics && map.get(`t${topics - 1}`)?.v === topics - 1;
  } else {
    out.before = measureGc();
    out.after = out.before;
    out.correct = true;
  }
  out.keepType = keep === null ? null : keep.constructor.name;
  return out;
}

function runTopics(opts) {
  const topics = opts.topics;
  const results = [];
  for (const variant of CHILD_VARIANTS) {
    progress(`topics: ${variant} (${topics.toLocaleString('en-US')} topics, child process)`);
    const t0 = nowNs();
    const child = spawnSync(process.execPath, ['--expose-gc', __filename, `--child=${variant}`, `--topics=${topics}`], {
      encoding: 'utf8',
      env: process.env,
      maxBuffer: 16 << 20,
      timeout: 10 * 60 * 1000,
    });
    const wallMs = msSince(t0);
    const last = (child.stdout || '').trim().split('\n').pop();
    let r;
    try {
      r = JSON.parse(last);
    } catch {
      r = { variant, error: `child exited with ${child.status ?? child.signal}: ${(child.stderr || '').trim().split('\n').slice(-3).join(' / ')}` };
    }
    r.childWallMs = wallMs;
    results.push(r);
  }
  progressDone();
  const empty = results.find((r) => r.variant === 'empty' && !r.error);
  for (const r of results) {
    if (r.error) continue;
    r.heapUsedDelta = r.after.memory.heapUsed - r.before.memory.heapUsed;
    r.rssDelta = r.after.memory.rss - r.before.memory.rss;
    r.externalDelta = r.after.memory.external - r.before.memory.external;
    r.pauseOverEmptyMs = empty ? r.after.pauseMs - empty.after.pauseMs : undefined;
    if (r.variant !== 'empty') {
      r.rssPerTopic = r.rssDelta / topics;
      r.heapPerTopic = r.heapUsedDelta / topics;
      if (r.stats) r.storeBytesPerTopic = r.stats.bytes / r.stats.topics;
    }
  }
  printTopics(results, topics);
  return { topics, variants: results };
}

function printTopics(results, topics) {
  const lines = [];
  lines.push(`## 3. ${topics.toLocaleString('en-US')} small topics held (a child process each)`);
  lines.push('');
  lines.push('| variant | load s | full GC pause ms (median of 5) | pause − empty heap ms | heapUsed Δ MiB | rss Δ MiB | ' +
    'bytes/topic, store\'s count | rss Δ/topic B | heapUsed Δ/topic B |');
  lines.push('|---|--:|--:|--:|--:|--:|--:|--:|--:|');
  const names = {
    empty: 'empty heap (baseline)',
    deltacast: 'deltacast createHub, memory.maxBytes 0',
    'lru-cache': 'lru-cache LRUCache({ max: 2,000,000 })',
    map: '(ref) Map',
  };
  for (const r of results) {
    const name = names[r.variant] + (r.version ? ` ${r.version}` : '');
    if (r.error) {
      lines.push(`| ${name} | error | | | | | | | |`);
      continue;
    }
    if (r.variant === 'empty') {
      lines.push(`| ${name} | | ${fmtMs(r.after.pauseMs)} | 0 | (heapUsed ${mib(r.after.memory.heapUsed)}) | ` +
        `(rss ${mib(r.after.memory.rss)}) | | | |`);
      continue;
    }
    const store = r.storeBytesPerTopic === undefined ? '' : fmtInt(r.storeBytesPerTopic);
    lines.push(`| ${name} | ${(r.loadMs / 1000).toFixed(2)} | ${fmtMs(r.after.pauseMs)} | ` +
      `${r.pauseOverEmptyMs === undefined ? '' : fmtMs(r.pauseOverEmptyMs)} | ${mib(r.heapUsedDelta)} | ${mib(r.rssDelta)} | ` +
      `${store} | ${fmtInt(r.rssPerTopic)} | ${fmtInt(r.heapPerTopic)} |${r.correct ? '' : ' ✗ check failed'}`);
  }
  lines.push('');
  lines.push('Values: `{"v":<i>,"s":"ok"}` under topic `t<i>`; deltacast gets JSON text (publishJson, 10,000 calls in flight ' +
    'at a time), the JS stores get the object. Δ = after loading (and 2 full GCs) minus before, in the same child. ' +
    '"load s" is the time to load all topics.');
  const dc = results.find((r) => r.variant === 'deltacast' && !r.error);
  const lru = results.find((r) => r.variant === 'lru-cache' && !r.error);
  if (dc && dc.pauseOverEmptyMs !== undefined) {
    lines.push(`- target (deltacast's full GC pause ≤ empty heap's + 5 ms): +${fmtMs(dc.pauseOverEmptyMs)} ms → ` +
      `${dc.pauseOverEmptyMs <= 5 ? 'met' : 'NOT met'}` + (lru ? ` (lru-cache: +${fmtMs(lru.pauseOverEmptyMs)} ms)` : ''));
  }
  if (dc && lru) {
    lines.push(`- bytes per topic: deltacast ${fmtInt(dc.storeBytesPerTopic)} as the store counts them, ` +
      `${fmtInt(dc.rssPerTopic)} in rss; lru-cache ${fmtInt(lru.heapPerTopic)} in the JS heap, ${fmtInt(lru.rssPerTopic)} in rss`);
  }
  lines.push('');
  console.log(lines.join('\n'));
}

// ---- main -------------------------------------------------------------------

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.child) {
    const r = await runChild(opts.child, opts.topics);
    process.stdout.write(JSON.stringify(r) + '\n');
    process.exit(0); // the hub's exit hook stops its thread; no need to free a million topics one by one
  }

  const deltacast = loadDeltacast();
  const only = opts.only ?? BENCHMARKS;
  const versions = { 'fast-json-patch': packageVersion('fast-json-patch'), 'lru-cache': packageVersion('lru-cache') };
  const env = {
    date: new Date().toISOString(),
    node: process.version,
    v8: process.versions.v8,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    cpu: `${os.cpus()[0]?.model ?? '?'} (${os.cpus().length} threads)`,
    commit: gitCommit(),
    versions,
    deltacast: deltacast.lib ? `loaded from ${path.relative(process.cwd(), deltacast.libPath)}` : `not built (${deltacast.missing})`,
    addon: process.env.DELTACAST_ADDON || null,
    loadAverage: os.loadavg().map((x) => Number(x.toFixed(2))),
  };

  // Everything printed to stdout is also kept, for the .md next to the .json.
  const printed = [];
  const log = console.log;
  console.log = (...args) => {
    printed.push(util.format(...args));
    log(...args);
  };

  console.log('# deltacast hub benchmark\n');
  console.log(`${env.date} · node ${env.node} · ${env.cpu} · ${env.platform}${env.commit ? ` · commit ${env.commit}` : ''}`);
  console.log(`fast-json-patch ${versions['fast-json-patch']} · lru-cache ${versions['lru-cache']} · deltacast: ${env.deltacast}` +
    `${env.addon ? ` (addon ${env.addon})` : ''}`);
  console.log(`load average at start: ${env.loadAverage.join(', ')} ` +
    `(on ${os.cpus().length} threads; the hub's core thread needs one of them, so a busy machine shows in every time column)`);
  console.log(`${opts.quick ? 'quick run: fewer steps, rounds and calls · ' : ''}benchmarks: ${only.join(', ')}\n`);

  const out = { env, options: opts };
  if (only.includes('change-cost')) out.changeCost = await runChangeCost(opts, deltacast);
  if (only.includes('sustained')) out.sustained = await runSustained(opts, deltacast);
  if (only.includes('event-loop')) out.eventLoop = await runEventLoop(opts, deltacast);
  if (only.includes('topics')) out.topics = runTopics(opts);

  if (opts.save) {
    const dir = path.join(__dirname, 'results');
    fs.mkdirSync(dir, { recursive: true });
    const day = env.date.slice(0, 10);
    const limited = opts.quick || opts.only || process.argv.some((a) => a.startsWith('--n=') || a.startsWith('--topics='));
    const suffix = limited ? `-${opts.quick ? 'quick' : 'partial'}` : '';
    const file = path.join(dir, `hub-${day}${suffix}.json`);
    fs.writeFileSync(file, JSON.stringify(out, null, 2) + '\n');
    fs.writeFileSync(file.replace(/\.json$/, '.md'), printed.join('\n') + '\n');
    console.log(`results written to ${path.relative(process.cwd(), file)} and .md`);
  }
}

main().catch((err) => {
  progressDone();
  console.error(err.usage ? `bench/hub.js: ${err.message}` : err.stack || err.message);
  process.exitCode = 1;
});
