'use strict';
// Helpers shared by the benchmark programs.

const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const v8 = require('node:v8');
const vm = require('node:vm');

// A full GC between measurements, so one variant's garbage is not collected
// on the next one's clock. `node bench/x.js` runs without --expose-gc, so
// expose it here.
const gc = (() => {
  if (typeof global.gc === 'function') return global.gc;
  try {
    v8.setFlagsFromString('--expose-gc');
    return vm.runInNewContext('gc');
  } catch {
    return () => {};
  }
})();

function packageVersion(name) {
  try {
    const file = path.join(__dirname, '..', 'node_modules', name, 'package.json');
    return JSON.parse(fs.readFileSync(file, 'utf8')).version;
  } catch {
    return '?';
  }
}

function gitCommit() {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: __dirname, stdio: ['ignore', 'pipe', 'ignore'] })
      .toString()
      .trim();
  } catch {
    return null;
  }
}

function median(sorted) {
  const m = sorted.length >> 1;
  return sorted.length % 2 ? sorted[m] : (sorted[m - 1] + sorted[m]) / 2;
}

function quantile(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

function medianOf(values) {
  return median([...values].sort((x, y) => x - y));
}

// CPU time of every thread of this process, in nanoseconds, from
// /proc/self/task/<tid>/schedstat (Linux): the total is what
// process.cpuUsage() says; the split shows which thread spent it. Null
// elsewhere.
function threadCpuNs() {
  let tids;
  try {
    tids = fs.readdirSync('/proc/self/task');
  } catch {
    return null;
  }
  const out = new Map();
  for (const tid of tids) {
    try {
      out.set(Number(tid), Number(fs.readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ')[0]));
    } catch {
      // the thread ended between readdir and read
    }
  }
  return out;
}

function threadIds() {
  try {
    return new Set(fs.readdirSync('/proc/self/task').map(Number));
  } catch {
    return new Set();
  }
}

/**
 * CPU each thread spent since `before` (a threadCpuNs() reading), in ms:
 * { jsMs, coreMs, otherMs }, or {} where per-thread times are not available.
 * The JS thread is the one whose id is the pid; `coreTid` is the hub's.
 */
function threadSplit(before, coreTid) {
  const after = threadCpuNs();
  if (!before || !after) return {};
  let total = 0;
  let js = 0;
  let core = 0;
  for (const [tid, ns] of after) {
    const delta = ns - (before.get(tid) ?? 0);
    total += delta;
    if (tid === process.pid) js += delta;
    else if (tid === coreTid) core += delta;
  }
  return { jsMs: js / 1e6, coreMs: core / 1e6, otherMs: (total - js - core) / 1e6 };
}

module.exports = { gc, packageVersion, gitCommit, median, quantile, medianOf, threadCpuNs, threadIds, threadSplit };
