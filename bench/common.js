'use strict';
// Helpers shared by the benchmark programs.

const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { performance } = require('node:perf_hooks');
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


// ---- command line -------------------------------------------------------------

function usageError(message) {
  return Object.assign(new Error(message), { usage: true });
}

// Calls handle(flag, value) for each --flag or --flag=value argument; handle
// returns false for a flag it does not know. --help prints `usage` and exits.
function eachFlag(argv, usage, handle) {
  for (const arg of argv) {
    const eq = arg.indexOf('=');
    const flag = eq < 0 ? arg : arg.slice(0, eq);
    const value = eq < 0 ? '' : arg.slice(eq + 1);
    if (flag === '--help') {
      console.log(`usage: ${usage}`);
      process.exit(0);
    }
    if (handle(flag, value) === false) throw usageError(`unknown argument ${arg} (try --help)`);
  }
}

// A comma-separated list of names, each one of `allowed`.
function namesOf(value, allowed, flag) {
  const names = value.split(',').map((s) => s.trim());
  for (const name of names) if (!allowed.includes(name)) throw usageError(`unknown ${flag} ${name} (${allowed.join(', ')})`);
  return names;
}

// ---- output -------------------------------------------------------------------

function fmtMs(ms) {
  if (ms >= 100) return ms.toFixed(0);
  if (ms >= 10) return ms.toFixed(1);
  if (ms >= 1) return ms.toFixed(2);
  return ms.toFixed(3);
}

const fmtUs = fmtMs; // the same significant digits, another unit

function fmtRatio(x) {
  if (!Number.isFinite(x)) return '—';
  if (x >= 100) return `${x.toFixed(0)}×`;
  return `${x >= 10 ? x.toFixed(1) : x.toFixed(2)}×`;
}

function fmtInt(x) {
  return Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '—';
}

function progress(msg) {
  if (process.stderr.isTTY) process.stderr.write(`\r\x1b[K${msg}`);
  else process.stderr.write(`${msg}\n`);
}

function progressDone() {
  if (process.stderr.isTTY) process.stderr.write('\r\x1b[K');
}

// ---- time ---------------------------------------------------------------------

const nowNs = () => process.hrtime.bigint();
const msSince = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

// A stopwatch over one timed region: wall, process CPU (all threads), event
// loop utilization, and the split between the JS thread, the hub's core
// thread and the rest.
function startClock() {
  const threads = threadCpuNs();
  const cpu = process.cpuUsage();
  const elu = performance.eventLoopUtilization();
  const t0 = nowNs();
  return { threads, cpu, elu, t0 };
}

function stopClock(clock, coreTid) {
  const t1 = nowNs();
  const cpu = process.cpuUsage(clock.cpu);
  const elu = performance.eventLoopUtilization(clock.elu);
  const out = {
    wallMs: Number(t1 - clock.t0) / 1e6,
    cpuMs: (cpu.user + cpu.system) / 1000,
    eluActiveMs: elu.active,
    elu: elu.utilization,
  };
  return Object.assign(out, threadSplit(clock.threads, coreTid));
}

// A full GC, then a short pause: V8 sweeps on its helper threads after gc()
// returns, and that work belongs to whatever made the garbage, not to the
// next timed region.
async function settleHeap(ms = 30) {
  gc();
  await sleep(ms);
}

// ---- deltacast ----------------------------------------------------------------

// The deltacast under test: lib/ here, or DELTACAST_LIB=path/to/index.js.
function loadDeltacast() {
  const libPath = process.env.DELTACAST_LIB ? path.resolve(process.env.DELTACAST_LIB) : path.join(__dirname, '..', 'lib', 'index.js');
  try {
    const lib = require(libPath);
    if (typeof lib.createHub !== 'function') return { missing: `${libPath} does not export createHub`, libPath };
    const dir = path.dirname(libPath);
    return {
      lib,
      libPath,
      testing: require(path.join(dir, 'testing.js')),
      applyPatch: require(path.join(dir, 'apply_patch.js')).applyPatch,
    };
  } catch (err) {
    return { missing: `${err.code ?? err.name}: ${err.message.split('\n')[0]}`, libPath };
  }
}

// Every hub a benchmark creates stays referenced from here until the process
// ends. Before b97ff3a a hub reachable only from the async function awaiting
// one of its calls could be collected mid-call (its core thread stopped, the
// promise never settled, and node exited with code 0); holding the hubs here
// keeps DELTACAST_LIB runs of such builds from ending that way.
const HUBS = new Set();

// A hub and the id of its core thread (the one thread createHub starts), so
// the CPU split can name it.
function createHubWithTid(deltacast, options) {
  const before = threadIds();
  const hub = deltacast.createHub(options);
  HUBS.add(hub);
  const started = [...threadIds()].filter((t) => !before.has(t));
  return { hub, coreTid: started.length === 1 ? started[0] : null };
}

// The benchmark is done with `hub` (closed): it may be collected.
function releaseHub(hub) {
  HUBS.delete(hub);
}

// ---- the 1,000-row ticker board of the socket and Redis benches -------------------

/** The first state: 1,000 rows `{ id, name, price, qty }`. */
function tickerBoard() {
  const rows = [];
  for (let i = 0; i < 1000; i++) rows.push({ id: `r${i}`, name: `material ${i}`, price: 100 + i, qty: i % 17 });
  return rows;
}

/** The indexes of the 10 rows (1%) update `tick` changes, rotating over the board. */
function tickerChangedRows(tick) {
  const out = [];
  for (let k = 0; k < 10; k++) out.push((tick * 97 + k * 101) % 1000);
  return out;
}

/** The state after update `tick`: a new array, the changed rows new objects, the rest shared. */
function nextTickerBoard(prev, tick) {
  const rows = prev.slice();
  tickerChangedRows(tick).forEach((i, k) => {
    rows[i] = { ...rows[i], price: 100 + tick * 10 + k };
  });
  return rows;
}

module.exports = {
  tickerBoard,
  tickerChangedRows,
  nextTickerBoard,
  gc,
  packageVersion,
  gitCommit,
  median,
  quantile,
  medianOf,
  threadCpuNs,
  threadIds,
  threadSplit,
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
  sleep,
  nextTurn,
  startClock,
  stopClock,
  settleHeap,
  loadDeltacast,
  createHubWithTid,
  releaseHub,
};
