'use strict';

// Debounce: 100,000 topics each published 10 times.
//
//   node bench/debounce.js            (part of bench/delivery.js, which runs all three)
//   node bench/debounce.js --quick    a smoke run
//
// Other flags: --no-save; --variants=deltacast-coalesce,hand-written-frozen runs
// only those rows (with DELTACAST_LIB, an A/B of one row against another build)
// Env: DELTACAST_LIB=path/to/index.js benchmarks another deltacast build;
//      DELTACAST_ADDON=path/to/deltacast.node another addon (lib/native.js).
//
//   debounce  100,000 topics each published 10 times (1,000,000 calls):
//              deltacast hub.publish on the default normal lane, against a
//              hand-written debouncer (one Map of pending values, one
//              setTimeout per window) and one lodash.debounce per key. JS-thread
//              CPU, heap per key, and deltacast's cost per call, split.
//              Each variant in a child process of its own.
//
//
// Results go to stdout as markdown tables, progress to stderr, and everything
// to bench/results/debounce-<date>.json and .md (-quick or -partial for a
// limited run, so it does not overwrite a full one).
//
// The machine matters more than usual here: clients, server, and the hub's
// core thread all want a CPU, and on 2 hardware threads they take turns.
// Compare ratios within one run, not rates across machines.

const {
  fmtMs,
  fmtUs,
  fmtRatio,
  fmtInt,
  progress,
  progressDone,
  nowNs,
  msSince,
  sleep,
  nextTurn,
  startClock,
  stopClock,
  loadDeltacast,
  createHubWithTid,
} = require('./common.js');
const {
  memorySnapshot,
  memoryDelta,
  until,
  emit,
  runChildSync,
  runBenchmarks,
  start,
} = require('./delivery_common.js');

// ---- 3. debounce: 100,000 topics, 10 changes each ---------------------------
//
// Every variant runs the same driver: 10 rounds over 100,000 topics, a fresh
// small object per call ({ p, seq }), in chunks of 1,000 calls with a
// setImmediate between chunks (a feed arriving in network reads). What each
// variant does with a call:
//   deltacast         hub.publish(topic, value) on a default hub (normal lane:
//                     50 ms debounce, 250 ms max wait); the promise is not
//                     awaited. One subscriber connection (counting, no acks) on
//                     1,000 of the topics, or none.
//   hand-written      pending.set(topic, value); one setTimeout(flush, 50) per
//                     window. flush(): latest.set for every pending topic,
//                     JSON.stringify + send for the subscribed ones.
//   hand-written, frozen  the same, given Object.freeze(value): the peer of the
//                     coalescing row, which needs frozen values (an app on
//                     Immer or Redux Toolkit has them already) and freezes
//                     each in its call.
//   hand-written, store  the frozen one, keeping each topic's latest JSON
//                     text instead of its value (every flushed topic is
//                     serialized, the subscribed ones sent that text): the
//                     least a store that serves late joiners, resumes and
//                     reads from text does, as deltacast's hub does.
//   lodash.debounce   one debounce(fn, 50, { maxWait: 250 }) per topic, made on
//                     first use and kept in a Map; fn does what flush() does
//                     for one topic.
// Clock: from the first call until every call is answered and the last window
// has flushed (the 400 ms after the last call are included; idle costs no CPU).

async function debounceDriver(cfg, call) {
  const topics = new Array(cfg.topics);
  for (let i = 0; i < cfg.topics; i++) topics[i] = `t${i}`;
  const chunk = 1000;
  let syncNs = 0n;
  for (let r = 0; r < cfg.rounds; r++) {
    for (let start = 0; start < cfg.topics; start += chunk) {
      const end = Math.min(cfg.topics, start + chunk);
      const t0 = nowNs();
      for (let i = start; i < end; i++) call(topics[i], { p: 100 + (i % 97) + r / 100, seq: r });
      syncNs += nowNs() - t0;
      await nextTurn();
    }
  }
  return { syncMs: Number(syncNs) / 1e6, topics };
}

// The seq of a topic's latest value, kept as the value or as its JSON text.
function lastSeq(kept) {
  return typeof kept === 'string' ? JSON.parse(kept).seq : kept?.seq;
}

async function debounceChild(cfg) {
  const subscribed = [];
  for (let i = 0; i < cfg.topics; i += cfg.topics / cfg.subscribedTopics) subscribed.push(`t${i}`);
  const subscribedSet = new Set(subscribed);
  let sentBytes = 0;
  let sent = 0;
  const send = (topic, text) => {
    sent += 1;
    sentBytes += text.length;
  };
  const out = { variant: cfg.variant, topics: cfg.topics, rounds: cfg.rounds, calls: cfg.topics * cfg.rounds };

  const windowMs = cfg.windowMs;
  if (cfg.variant === 'deltacast' || cfg.variant === 'deltacast-nosub' || cfg.variant === 'deltacast-coalesce') {
    const coalesce = cfg.variant === 'deltacast-coalesce';
    const deltacast = loadDeltacast();
    if (!deltacast.lib) return { ...out, error: deltacast.missing };
    const { hub, coreTid } = createHubWithTid(deltacast.lib, {
      heartbeat: { intervalMs: 0 },
      pacing: { normalDebounceMs: windowMs, normalMaxWaitMs: windowMs * 5, coalesce },
      // 100,000 topics with their histories pass the default 256 MiB budget: nothing may be evicted here.
      memory: { maxBytes: 1024 * 1024 * 1024 },
      limits: { messagesPerSecond: 1_000_000, messageBurst: 1_000_000 }, // 1,000 subs at once
    });
    let sub = null;
    if (cfg.variant !== 'deltacast-nosub') {
      sub = hub.connect({
        send(frame) {
          sent += 1;
          sentBytes += frame.length;
        },
      });
      for (const t of subscribed) sub.receive(`{"t":"sub","topic":"${t}"}`);
    }
    await sleep(50);
    const before = memorySnapshot();
    const clock = startClock();
    let lastCall = null;
    // Coalescing holds immutable values: each is frozen (as Immer or Redux Toolkit leave them).
    const { syncMs } = await debounceDriver(
      cfg,
      coalesce
        ? (topic, value) => {
            lastCall = hub.publish(topic, Object.freeze(value));
          }
        : (topic, value) => {
            lastCall = hub.publish(topic, value);
          },
    );
    const loopMs = msSince(clock.t0);
    // The core answers in order: the last call's answer comes last. (Polling
    // hub.stats() with setImmediate would spin the JS thread meanwhile.)
    await lastCall;
    if (coalesce) await until(() => hub.stats().pending === 0 && hub.stats().coalesced === 0, 60_000);
    if (hub.stats().pending !== 0) throw new Error('calls still pending after the last was answered');
    const answeredMs = msSince(clock.t0);
    await sleep(windowMs * 5 + 150);
    const m = stopClock(clock, coreTid);
    const after = memorySnapshot();
    const stats = hub.stats();
    const last = hub.get(`t${cfg.topics - 1}`);
    Object.assign(out, m, {
      syncMs,
      loopMs,
      answeredMs,
      before,
      after,
      delta: memoryDelta(before, after),
      framesSent: sent,
      bytesSent: sentBytes,
      stats: { topics: stats.topics, changes: stats.changes, bytes: stats.bytes, framesSent: stats.framesSent, conflated: stats.conflated },
      // Coalescing makes one change per flush: at most one per call.
      correct:
        stats.topics === cfg.topics &&
        (coalesce ? stats.changes <= cfg.topics * cfg.rounds : stats.changes === cfg.topics * cfg.rounds) &&
        last?.data?.seq === cfg.rounds - 1,
    });
    if (cfg.variant === 'deltacast') out.breakdown = await publishBreakdown(deltacast, hub, cfg);
    await hub.close();
    return out;
  }

  const latest = new Map();
  let driverCall;
  let holders = null;
  if (cfg.variant === 'hand-written' || cfg.variant === 'hand-written-frozen' || cfg.variant === 'hand-written-store') {
    let pending = new Map();
    let timer = null;
    // The store variant keeps every topic's latest JSON text, as a hub does
    // for late joiners, resumes and reads: each flushed topic is serialized.
    const texts = cfg.variant === 'hand-written-store' ? latest : null;
    const flush = () => {
      timer = null;
      const batch = pending;
      pending = new Map();
      if (texts !== null) {
        for (const [topic, value] of batch) {
          const text = JSON.stringify(value);
          texts.set(topic, text);
          if (subscribedSet.has(topic)) send(topic, text);
        }
        return;
      }
      for (const [topic, value] of batch) {
        latest.set(topic, value);
        if (subscribedSet.has(topic)) send(topic, JSON.stringify(value));
      }
    };
    driverCall = (topic, value) => {
      pending.set(topic, value);
      if (timer === null) timer = setTimeout(flush, windowMs);
    };
    // The state an app using Immer or Redux Toolkit publishes is frozen
    // already: the coalescing row freezes each value in its call, and so does
    // its peer.
    if (cfg.variant !== 'hand-written') {
      const call = driverCall;
      driverCall = (topic, value) => call(topic, Object.freeze(value));
    }
  } else {
    const debounce = require('lodash.debounce');
    holders = new Map();
    driverCall = (topic, value) => {
      let fn = holders.get(topic);
      if (fn === undefined) {
        fn = debounce((v) => {
          latest.set(topic, v);
          if (subscribedSet.has(topic)) send(topic, JSON.stringify(v));
        }, windowMs, { maxWait: windowMs * 5 });
        holders.set(topic, fn);
      }
      fn(value);
    };
  }
  await sleep(50);
  const before = memorySnapshot();
  const clock = startClock();
  const { syncMs } = await debounceDriver(cfg, driverCall);
  const loopMs = msSince(clock.t0);
  await sleep(windowMs * 5 + 150);
  const m = stopClock(clock, null);
  const after = memorySnapshot();
  Object.assign(out, m, {
    syncMs,
    loopMs,
    answeredMs: loopMs,
    before,
    after,
    delta: memoryDelta(before, after),
    framesSent: sent,
    bytesSent: sentBytes,
    correct: latest.size === cfg.topics && lastSeq(latest.get(`t${cfg.topics - 1}`)) === cfg.rounds - 1,
  });
  if (holders) out.holders = holders.size;
  return out;
}

// The synchronous cost of one hub.publish(topic, value), taken apart: each
// piece timed over `calls` calls in chunks of 1,000 (between chunks, the hub's
// answers are drained as in the run).
async function publishBreakdown(deltacast, hub, cfg) {
  const calls = cfg.breakdownCalls;
  const topics = Array.from({ length: 1000 }, (_, i) => `b${i}`);
  const values = Array.from({ length: 1000 }, (_, i) => ({ p: 100 + (i % 97), seq: 0 }));
  const texts = values.map((v) => JSON.stringify(v));
  let sink = 0;
  // The hub hands a chunk's calls over in a microtask queued by the first
  // call; one queued after the chunk runs after it.
  const handedOver = () => new Promise((resolve) => queueMicrotask(resolve));
  const time = async (fn, { handOver = false } = {}) => {
    // warm-up, then the timed pass; every chunk publishes new values (and their texts)
    for (let i = 0; i < 1000; i++) fn(i);
    await nextTurn();
    let ns = 0n;
    for (let done = 0; done < calls; done += 1000) {
      for (let i = 0; i < 1000; i++) {
        values[i].seq += 1;
        texts[i] = JSON.stringify(values[i]);
      }
      if (handOver) {
        // only the crossing of the chunk queued just before
        for (let i = 0; i < 1000; i++) fn(i);
        const t0 = nowNs();
        await handedOver();
        ns += nowNs() - t0;
      } else {
        const t0 = nowNs();
        for (let i = 0; i < 1000; i++) fn(i);
        ns += nowNs() - t0;
      }
      await nextTurn();
    }
    await until(() => hub.stats().pending === 0, 60_000);
    return Number(ns) / calls / 1000; // µs per call
  };
  const pieces = [
    ['JSON.stringify(value)', (i) => { sink += JSON.stringify(values[i]).length; }],
    ['topic.isWellFormed() (checkTopic)', (i) => { sink += topics[i].isWellFormed() ? 1 : 0; }],
    ['hub.publishJson(topic, text), text already made: the record and the receipt', (i) => hub.publishJson(topics[i], texts[i])],
    ['hub.publish(topic, value): the whole call', (i) => hub.publish(topics[i], values[i])],
    ['the hand-over (one N-API call per 1,000 calls, the copy of their records) ÷ 1,000', (i) => hub.publish(topics[i], values[i]), { handOver: true }],
  ];
  // Three passes over the pieces, interleaved; the median of each. The core
  // thread works on the other hardware thread meanwhile, which slows this one.
  const samples = pieces.map(() => []);
  for (let pass = 0; pass < 3; pass++) {
    for (let k = 0; k < pieces.length; k++) samples[k].push(await time(pieces[k][1], pieces[k][2]));
  }
  const rows = pieces.map(([what], k) => [what, [...samples[k]].sort((a, b) => a - b)[1], samples[k]]);
  return { calls, passes: 3, rows: rows.map(([what, us, all]) => ({ what, us, passes: all })), sink };
}

async function runDebounce(opts) {
  const cfg = {
    topics: opts.quick ? 20_000 : 100_000,
    rounds: 10,
    subscribedTopics: opts.quick ? 200 : 1000,
    breakdownCalls: opts.quick ? 30_000 : 100_000,
  };
  const variants = (windowMs) => [
    { variant: 'deltacast', label: `deltacast hub.publish, 1 subscriber on ${cfg.subscribedTopics.toLocaleString('en-US')} topics` },
    { variant: 'deltacast-nosub', label: 'deltacast hub.publish, no subscriber' },
    {
      variant: 'deltacast-coalesce',
      label: 'deltacast hub.publish of frozen values, pacing.coalesce, 1 subscriber (as the first row)',
    },
    { variant: 'hand-written', label: 'hand-written: Map of pending + one setTimeout per window' },
    {
      variant: 'hand-written-frozen',
      label: 'hand-written, given the same frozen values as the coalescing row (the peer of that row)',
    },
    {
      variant: 'hand-written-store',
      label: 'hand-written, frozen values, keeping every topic\'s JSON text (serialized at its flush, as a store does)',
    },
    { variant: 'lodash', label: `lodash.debounce per key (${windowMs} ms, maxWait ${windowMs * 5} ms)` },
  ];
  // The default window (50 ms: each topic comes back about every 100 ms, so
  // about one publish per flush), then a window that holds all ten rounds
  // (each topic's 10 publishes within one window: what coalescing is for).
  const runs = [];
  for (const windowMs of opts.quick ? [50, 2000] : [50, 3000]) {
    const results = [];
    for (const v of variants(windowMs).filter((v) => !opts.variants || opts.variants.includes(v.variant))) {
      progress(`debounce (${windowMs} ms window): ${v.label} (child process)`);
      const r = runChildSync(__filename, 'debounce', { ...cfg, windowMs, variant: v.variant });
      r.label = v.label;
      results.push(r);
    }
    runs.push({ ...cfg, windowMs, variants: results });
  }
  progressDone();
  for (const run of runs) printDebounce(run);
  return { ...cfg, variants: runs[0].variants, windows: runs };
}

function printDebounce(out) {
  const lines = [];
  const calls = out.topics * out.rounds;
  lines.push(`## 3. ${out.topics.toLocaleString('en-US')} topics × ${out.rounds} changes = ${calls.toLocaleString('en-US')} calls, ` +
    `${out.windowMs} ms window (normal lane: normalDebounceMs ${out.windowMs}, normalMaxWaitMs ${out.windowMs * 5}; ` +
    'a child process each)');
  lines.push('');
  lines.push('| variant | JS thread CPU ms | in the calls ms | rest of the JS thread ms | µs/call (JS thread) | ratio vs best hand-written | ' +
    'core thread ms | all threads CPU ms | wall: calls / answered / flushed ms | ELU active ms | heap Δ B/key | rss Δ B/key | sent | ✓ |');
  lines.push('|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|:-:|');
  const peers = out.variants.filter((r) => !r.error && (r.variant === 'hand-written' || r.variant === 'lodash'));
  const frozenPeer = out.variants.find((r) => !r.error && r.variant === 'hand-written-frozen');
  const best = peers.length ? peers.reduce((a, b) => (a.jsMs <= b.jsMs ? a : b)) : null;
  for (const r of out.variants) {
    if (r.error) {
      lines.push(`| ${r.label} | error: ${r.error} | | | | | | | | | | | | |`);
      continue;
    }
    const core = r.variant.startsWith('deltacast') ? fmtMs(r.coreMs) : '';
    lines.push(`| ${r.label} | ${fmtMs(r.jsMs)} | ${fmtMs(r.syncMs)} | ${fmtMs(r.jsMs - r.syncMs)} | ${fmtUs((r.jsMs * 1000) / calls)} | ` +
      `${best ? fmtRatio(r.jsMs / best.jsMs) : '—'} | ${core} | ${fmtMs(r.cpuMs)} | ` +
      `${fmtMs(r.loopMs)} / ${fmtMs(r.answeredMs)} / ${fmtMs(r.wallMs)} | ${fmtMs(r.eluActiveMs)} | ` +
      `${fmtInt(r.delta.heapUsed / out.topics)} | ${fmtInt(r.delta.rss / out.topics)} | ${fmtInt(r.framesSent)} | ${r.correct ? '✓' : '✗'} |`);
  }
  lines.push('');
  lines.push('JS thread CPU: the main thread\'s CPU time (/proc/self/task/<pid>/schedstat) from the first call until the last ' +
    'window has flushed. "in the calls": hrtime around each chunk of 1,000 calls (the value objects are made there too, ' +
    'the same for every variant); "rest": timers, flushes, GC on the main thread, and for deltacast the drains that settle ' +
    'the promises. ratio = this row ÷ the best hand-written row (below 1× is less JS-thread time). Wall: when the last ' +
    'call returned / when every call was answered / + 5 windows + 150 ms for the last flush. heap Δ and rss Δ: after − before, ' +
    'after full GCs, with every topic\'s latest value held (deltacast holds it in the core, off the JS heap). ' +
    '"sent": frames (deltacast) or JSON.stringify + send (peers) for the subscribed topics.');
  const dc = out.variants.find((r) => r.variant === 'deltacast' && !r.error);
  if (dc && best) {
    lines.push(`- target (deltacast's JS-thread CPU ≤ the best hand-written JS, ${best.label.split(':')[0]} ${fmtMs(best.jsMs)} ms): ` +
      `deltacast ${fmtMs(dc.jsMs)} ms (${fmtRatio(dc.jsMs / best.jsMs)}) → ${dc.jsMs <= best.jsMs ? 'met' : 'NOT met'}`);
    lines.push(`- deltacast also spends ${fmtMs(dc.coreMs)} ms on its core thread; its store counts ` +
      `${fmtInt(dc.stats.bytes / dc.stats.topics)} B per topic (hub.stats().bytes), the process's rss grew by ` +
      `${fmtInt(dc.delta.rss / out.topics)} B per topic`);
  }
  const co = out.variants.find((r) => r.variant === 'deltacast-coalesce' && !r.error);
  if (co) {
    const peer = frozenPeer ?? best;
    if (peer) {
      lines.push(`- with pacing.coalesce (frozen values, serialized once per flush): ${fmtMs(co.jsMs)} ms, ` +
        `${fmtRatio(co.jsMs / peer.jsMs)} its peer (${peer.label.split(' (')[0]}, ${fmtMs(peer.jsMs)} ms); ` +
        `${fmtInt(co.stats.changes)} changes for ${fmtInt(calls)} calls, core thread ${fmtMs(co.coreMs)} ms → ` +
        `${co.jsMs <= peer.jsMs ? 'met' : 'NOT met'}`);
    }
    const store = out.variants.find((r) => r.variant === 'hand-written-store' && !r.error);
    if (store && frozenPeer) {
      lines.push(`- keeping every topic's text (the hand-written store row) costs ${fmtRatio(store.jsMs / frozenPeer.jsMs)} the ` +
        `frozen hand-written row; coalescing is ${fmtRatio(co.jsMs / store.jsMs)} that store`);
    }
  }
  lines.push('');
  if (dc?.breakdown) {
    lines.push(`### Where a hub.publish call spends its JS-thread time (${dc.breakdown.calls.toLocaleString('en-US')} calls each, ` +
      'sync part, median of 3 passes)');
    lines.push('');
    lines.push('| piece | µs per call |');
    lines.push('|---|--:|');
    for (const row of dc.breakdown.rows) lines.push(`| ${row.what} | ${fmtUs(row.us)} |`);
    const settle = (dc.jsMs - dc.syncMs) * 1000 / calls;
    lines.push(`| the rest, per call: JS-thread time outside the calls in the run above ÷ calls (hand-overs, drains, GC) | ${fmtUs(settle)} |`);
    lines.push('');
    lines.push('The pieces are timed on their own, 1,000 calls at a time, with small values ({ p, seq }) on 1,000 topics; ' +
      'they overlap (publish includes stringify and isWellFormed). A call writes a record into the hub\'s request buffer ' +
      'and returns a receipt; the records of a chunk cross to the core thread together, in a microtask at the end of ' +
      'the chunk (the hand-over row).');
    lines.push('');
  }
  emit(lines);
}



module.exports = { runDebounce, debounceChild };

if (require.main === module) {
  start('debounce.js', () =>
    runBenchmarks({ script: 'debounce.js', results: 'debounce', benchmarks: { debounce: runDebounce }, children: { debounce: debounceChild } }),
  );
}
