'use strict';

// Teardown: how long the event loop stops when a closed hub holding N topics
// is collected (V8 finalizes its native handle on the JS thread).
//
//   node bench/teardown.js [--n=10000,100000,1000000] [--runs=3]
//
// Each N in child processes of its own (--runs of them, the median reported,
// as the floor row is noisy): a hub gets N topics (publishJson of
// a ~40-byte object each, awaited), is closed and dropped; then a full GC
// (gc()), and a 1 ms interval timer records the longest gap between its
// ticks over the next 500 ms (a gap is a time the event loop did not run).
// The same is measured with no hub ever made, the floor of this machine.
// DELTACAST_ADDON=path/to/deltacast.node measures another build's addon.
// Results go to stdout as markdown and to bench/results/teardown-<date>.md
// (teardown-<date>-partial.md with --n or DELTACAST_ADDON, so that such a
// run does not overwrite a full one).

const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

async function child(n) {
  const { createHub } = require('../lib/index.js');
  const tick = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  if (n > 0) {
    let hub = createHub({ heartbeat: { intervalMs: 0 }, memory: { maxBytes: 4 * 1024 * 1024 * 1024 } });
    let last;
    for (let i = 0; i < n; i++) last = hub.publishJson(`t${i}`, `{"p":${i},"rows":[1,2,3],"name":"topic ${i}"}`);
    await last;
    await hub.close();
    hub = null;
    last = null;
  }
  await tick(100);
  let longest = 0;
  let prev = process.hrtime.bigint();
  const timer = setInterval(() => {
    const now = process.hrtime.bigint();
    longest = Math.max(longest, Number(now - prev) / 1e6);
    prev = now;
  }, 1);
  await tick(50);
  longest = 0;
  const t0 = process.hrtime.bigint();
  global.gc();
  const gcMs = Number(process.hrtime.bigint() - t0) / 1e6;
  await tick(500);
  clearInterval(timer);
  return { n, gcMs, longestGapMs: longest };
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

function main() {
  const nArg = process.argv.find((a) => a.startsWith('--n='));
  const runsArg = process.argv.find((a) => a.startsWith('--runs='));
  const ns = nArg ? nArg.slice(4).split(',').map(Number) : [10_000, 100_000, 1_000_000];
  const runs = runsArg ? Number(runsArg.slice(7)) : 3;
  const rows = [];
  for (const n of [0, ...ns]) {
    const samples = [];
    for (let run = 0; run < runs; run++) {
      const out = execFileSync(process.execPath, ['--expose-gc', __filename, '--child', String(n)], { encoding: 'utf8', env: process.env });
      samples.push(JSON.parse(out));
    }
    rows.push({ n, gcMs: median(samples.map((r) => r.gcMs)), longestGapMs: median(samples.map((r) => r.longestGapMs)) });
    process.stderr.write(`teardown: ${n} topics done\n`);
  }
  const addon = process.env.DELTACAST_ADDON ?? 'build/Release/deltacast.node';
  const lines = [
    '## Collecting a closed hub: the longest event-loop gap',
    '',
    `node ${process.version}, addon ${addon}; medians of ${runs} runs, each in a child process. gc() call: the full GC ` +
      'itself (the same without any hub: the floor); longest gap: between the ticks of a 1 ms interval timer over the ' +
      '500 ms after it (finalizers run after the GC).',
    '',
    '| topics | gc() call ms | longest event-loop gap ms |',
    '|--:|--:|--:|',
    ...rows.map((r) => `| ${r.n === 0 ? 'none (no hub)' : r.n.toLocaleString('en-US')} | ${r.gcMs.toFixed(1)} | ${r.longestGapMs.toFixed(1)} |`),
    '',
  ];
  process.stdout.write(lines.join('\n'));
  const date = new Date().toISOString().slice(0, 10);
  const partial = nArg !== undefined || process.env.DELTACAST_ADDON !== undefined ? '-partial' : '';
  fs.writeFileSync(path.join(__dirname, 'results', `teardown-${date}${partial}.md`), lines.join('\n'));
}

if (process.argv[2] === '--child') {
  child(Number(process.argv[3])).then((r) => process.stdout.write(JSON.stringify(r)));
} else {
  main();
}
