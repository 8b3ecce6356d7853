'use strict';

// Lifecycle of createHub() hubs, each case in a child process so that a hang, a crash or a
// leaked thread shows up as what it is: an idle hub lets the process exit, process.exit() and
// uncaught errors during activity exit with their own code, hubs in worker threads survive
// terminate(), and a hub nobody references is collected together with its core thread.

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const LIB = path.resolve(__dirname, '..', '..', 'lib', 'index.js');
const TIMEOUT_MS = 20_000;

/**
 * Runs `code` in a child `node -e` (the package is `deltacast` inside it); returns
 * { status, signal, stdout, stderr, ms }. Fails the test on a timeout.
 */
function run(code, { args = [], timeout = TIMEOUT_MS } = {}) {
  const script = `'use strict';\nconst deltacast = require(${JSON.stringify(LIB)});\n${code}`;
  const started = Date.now();
  const child = spawnSync(process.execPath, [...args, '-e', script], {
    encoding: 'utf8',
    timeout,
    killSignal: 'SIGKILL',
  });
  const ms = Date.now() - started;
  const report =
    `status ${child.status}, signal ${child.signal}, ${ms} ms\n` +
    `--- stdout\n${child.stdout}\n--- stderr\n${child.stderr}`;
  assert.ok(!(child.error && child.error.code === 'ETIMEDOUT'), `the child hung (killed after ${timeout} ms)\n${report}`);
  assert.equal(child.error, undefined, `spawn failed: ${child.error}`);
  return { status: child.status, signal: child.signal, stdout: child.stdout, stderr: child.stderr, ms, report };
}

/** Asserts a clean exit with `status` (no signal, no native crash output). */
function assertExit(result, status) {
  assert.equal(result.signal, null, `killed by a signal\n${result.report}`);
  assert.equal(result.status, status, `wrong exit status\n${result.report}`);
  const crash = /Segmentation fault|Aborted|FATAL ERROR|Assertion failed|terminate called|core dumped/i;
  assert.doesNotMatch(result.stderr, crash, result.report);
}

// Reads this process's thread count (Linux).
const THREADS_FN = `
function threads() {
  const status = require('node:fs').readFileSync('/proc/self/status', 'utf8');
  return Number(/^Threads:\\s+(\\d+)/m.exec(status)[1]);
}`;

const hasProcStatus = (() => {
  try {
    require('node:fs').readFileSync('/proc/self/status', 'utf8');
    return true;
  } catch {
    return false;
  }
})();

describe('process exit', () => {
  it('a script that publishes and never closes its hub exits by itself with code 0', () => {
    for (const clock of ['real', 'manual']) {
      const result = run(`
        const hub = deltacast.createHub({ clock: '${clock}', ttl: { 'tmp/*': 60000 }, sweepIntervalMs: 1 });
        hub.publish('tmp/a', { n: 1 }).then((r) => console.log('published', r.version));
        hub.publish('b', [1, 2, 3]).then((r) => console.log('published', r.version));
      `);
      assertExit(result, 0);
      assert.equal(result.stdout, 'published 1\npublished 1\n', result.report);
      assert.ok(result.ms < 10_000, `took ${result.ms} ms to exit\n${result.report}`);
    }
  });

  it('un-awaited calls are all answered before an idle exit', () => {
    const result = run(`
      const hub = deltacast.createHub();
      let answered = 0;
      for (let i = 0; i < 5000; i++) hub.publish('t' + (i % 10), { i }).then(() => answered++);
      hub.upsert('rows', 1, {}).then(() => answered++);
      hub.publishJson('bad', '{').catch(() => answered++);
      process.on('exit', () => console.log('answered', answered));
    `);
    assertExit(result, 0);
    assert.equal(result.stdout, 'answered 5002\n', result.report);
  });

  it('a hub that was created and never used does not keep the process alive', () => {
    const result = run(`
      deltacast.createHub();
      deltacast.createHub({ clock: 'manual' });
      console.log('done');
    `);
    assertExit(result, 0);
    assert.equal(result.stdout, 'done\n');
  });

  it('a closed hub and an open one: exits 0', () => {
    const result = run(`
      (async () => {
        const a = deltacast.createHub();
        const b = deltacast.createHub();
        await a.publish('x', 1);
        await b.publish('x', 1);
        await a.close();
        console.log('closed');
      })();
    `);
    assertExit(result, 0);
    assert.equal(result.stdout, 'closed\n');
  });

  it('process.exit(3) in the middle of 10,000 un-awaited publishes exits with code 3', () => {
    const variants = {
      'on the first answer': `
        let first = true;
        for (let i = 0; i < 10000; i++) {
          hubs[i % 2].publish('t' + (i % 100), { i, pad: 'x'.repeat(i % 500) }).then(() => {
            if (first) { first = false; process.exit(3); }
          });
        }`,
      'synchronously after the calls': `
        for (let i = 0; i < 10000; i++) hubs[i % 2].publish('t' + (i % 100), { i });
        process.exit(3);`,
      'from a timer while answers stream in': `
        for (let i = 0; i < 10000; i++) hubs[i % 2].publish('t' + (i % 100), { i, pad: 'x'.repeat(i % 500) });
        setTimeout(() => process.exit(3), 1);`,
      'from setImmediate, with patches, upserts and an advance in flight': `
        for (let i = 0; i < 10000; i++) {
          if (i % 3 === 0) hubs[0].upsert('rows', i % 50, { i });
          else if (i % 3 === 1) hubs[1].patch('doc', [{ op: 'add', path: '', value: { i } }]);
          else hubs[1].publish('t' + (i % 100), { i });
        }
        hubs[1].advance(5);
        setImmediate(() => process.exit(3));`,
    };
    for (const [name, code] of Object.entries(variants)) {
      const result = run(`
        const hubs = [deltacast.createHub(), deltacast.createHub({ clock: 'manual', ttl: { '*': 1 } })];
        process.on('unhandledRejection', (err) => { console.error('unhandled', err); });
        ${code}
      `);
      assertExit(result, 3);
      assert.doesNotMatch(result.stderr, /unhandled/, `${name}\n${result.report}`);
    }
  });

  it('an uncaught exception with a live hub exits with code 1', () => {
    const result = run(`
      const hub = deltacast.createHub();
      for (let i = 0; i < 1000; i++) hub.publish('t', { i });
      hub.publish('t', 'x').then(() => { throw new Error('boom after an answer'); });
    `);
    assertExit(result, 1);
    assert.match(result.stderr, /boom after an answer/);

    const sync = run(`
      const hub = deltacast.createHub();
      hub.publish('t', 1);
      throw new Error('boom at once');
    `);
    assertExit(sync, 1);
    assert.match(sync.stderr, /boom at once/);
  });

  it('an unhandled rejection from a hub call exits with code 1 and names the code', () => {
    const result = run(`
      const hub = deltacast.createHub();
      for (let i = 0; i < 100; i++) hub.publish('t', { i });
      hub.publishJson('t', '{not json');
    `);
    assertExit(result, 1);
    assert.match(result.stderr, /DELTACAST_INVALID_JSON/);
  });
});

describe('worker threads', () => {
  it('hubs in several workers: results are right, terminate() while busy, a worker exits on its own; main exits 0', () => {
    const result = run(`
      const { Worker } = require('node:worker_threads');
      const busy = \`
        const { createHub } = require(${JSON.stringify(LIB)});
        const { parentPort, workerData } = require('node:worker_threads');
        const hub = createHub({ ttl: { 'tmp/*': 5 }, sweepIntervalMs: 1 });
        (async () => {
          const first = await hub.publish('w', workerData);
          await hub.upsert('rows', workerData, { n: 1 });
          const row = hub.get('rows').data;
          parentPort.postMessage({ version: first.version, data: hub.get('w').data, row });
          for (let i = 0; ; i++) {
            const calls = [];
            for (let k = 0; k < 200; k++) calls.push(hub.publish('t' + (k % 7), { i, k }), hub.publish('tmp/' + k, k));
            await Promise.all(calls);
          }
        })();
      \`;
      const quiet = \`
        const { createHub } = require(${JSON.stringify(LIB)});
        const { parentPort } = require('node:worker_threads');
        const hub = createHub();
        (async () => {
          for (let i = 0; i < 100; i++) await hub.publish('q', { i });
          parentPort.postMessage({ version: hub.get('q').version });
        })();
      \`;
      const exits = [];
      function start(source, workerData) {
        const worker = new Worker(source, { eval: true, workerData });
        const exited = new Promise((resolve) => worker.once('exit', resolve));
        const first = new Promise((resolve, reject) => {
          worker.once('message', resolve);
          worker.once('error', reject);
        });
        return { worker, exited, first };
      }
      (async () => {
        const workers = [1, 2, 3, 4].map((n) => start(busy, n));
        const quietOne = start(quiet);
        const firsts = await Promise.all(workers.map((w) => w.first));
        firsts.forEach((m, i) => {
          if (m.version !== 1 || m.data !== i + 1 || m.row.length !== 1 || m.row[0].id !== i + 1) {
            throw new Error('wrong result in worker ' + i + ': ' + JSON.stringify(m));
          }
        });
        if ((await quietOne.first).version !== 100) throw new Error('quiet worker');
        await new Promise((resolve) => setTimeout(resolve, 50));
        const codes = await Promise.all(workers.map((w) => w.worker.terminate()));
        const busyExits = await Promise.all(workers.map((w) => w.exited));
        const quietExit = await quietOne.exited;
        console.log(JSON.stringify({ codes, busyExits, quietExit }));
      })().catch((err) => { console.error(err); process.exitCode = 2; });
    `);
    assertExit(result, 0);
    assert.deepEqual(JSON.parse(result.stdout), { codes: [1, 1, 1, 1], busyExits: [1, 1, 1, 1], quietExit: 0 }, result.report);
  });

  it('terminate() right after creating hubs and firing calls, many times over', () => {
    const result = run(`
      const { Worker } = require('node:worker_threads');
      const source = \`
        const { createHub } = require(${JSON.stringify(LIB)});
        const hubs = [createHub(), createHub({ clock: 'manual' })];
        for (let i = 0; i < 2000; i++) hubs[i % 2].publish('t' + (i % 10), { i });
        require('node:worker_threads').parentPort.postMessage('started');
      \`;
      (async () => {
        for (let round = 0; round < 10; round++) {
          const workers = [];
          for (let k = 0; k < 4; k++) {
            const worker = new Worker(source, { eval: true });
            workers.push(worker);
          }
          // Half are terminated as soon as they run, half once they said they started.
          await Promise.all(workers.map((worker, k) => k % 2
            ? new Promise((resolve) => worker.once('message', resolve)).then(() => worker.terminate())
            : new Promise((resolve) => worker.once('online', resolve)).then(() => worker.terminate())));
        }
        console.log('ok');
      })().catch((err) => { console.error(err); process.exitCode = 2; });
    `);
    assertExit(result, 0);
    assert.equal(result.stdout, 'ok\n');
  });

  it('process.exit() inside a worker during activity ends that worker with its code', () => {
    const result = run(`
      const { Worker } = require('node:worker_threads');
      const source = \`
        const { createHub } = require(${JSON.stringify(LIB)});
        const hub = createHub();
        let n = 0;
        for (let i = 0; i < 5000; i++) hub.publish('t' + (i % 10), { i }).then(() => { if (++n === 100) process.exit(5); });
      \`;
      const worker = new Worker(source, { eval: true });
      worker.once('exit', (code) => console.log('worker exit', code));
    `);
    assertExit(result, 0);
    assert.equal(result.stdout, 'worker exit 5\n');
  });
});

describe('garbage collection', { skip: !hasProcStatus && 'needs /proc/self/status' }, () => {
  it('hubs nobody references are collected and their core threads stop', () => {
    const result = run(
      `
      ${THREADS_FN}
      const settle = () => new Promise((resolve) => setImmediate(resolve));
      async function collect(rounds) {
        for (let i = 0; i < rounds; i++) {
          global.gc();
          await settle();
        }
      }
      (async () => {
        // Warm up: load the addon, start the platform's own threads.
        await deltacast.createHub().publish('warm', 1);
        await collect(5);
        await new Promise((resolve) => setTimeout(resolve, 20));
        await collect(5);
        const baseline = threads();
        let peak = baseline;
        for (let i = 0; i < 50; i++) {
          const hub = deltacast.createHub(i % 2 ? { clock: 'manual' } : {});
          await hub.publish('t', { i });
          peak = Math.max(peak, threads());
        }
        let after = threads();
        for (let round = 0; round < 50 && after > baseline + 2; round++) {
          await collect(3);
          await new Promise((resolve) => setTimeout(resolve, 10));
          after = threads();
        }
        console.log(JSON.stringify({ baseline, peak, after, resources: process.getActiveResourcesInfo() }));
      })();
    `,
      { args: ['--expose-gc'] },
    );
    assertExit(result, 0);
    const { baseline, peak, after, resources } = JSON.parse(result.stdout);
    assert.ok(peak >= baseline + 10, `hubs should have started threads: ${result.stdout}`);
    assert.ok(after <= baseline + 2, `core threads of collected hubs are still running: ${result.stdout}`);
    assert.ok(!resources.includes('Timeout'), result.stdout);
    assert.ok(result.ms < 15_000, `took ${result.ms} ms`);
  });

  it('close() stops the core thread at once', () => {
    const result = run(`
      ${THREADS_FN}
      (async () => {
        const before = threads();
        const hubs = [];
        for (let i = 0; i < 10; i++) hubs.push(deltacast.createHub());
        await Promise.all(hubs.map((hub) => hub.publish('t', 1)));
        const open = threads();
        await Promise.all(hubs.map((hub) => hub.close()));
        console.log(JSON.stringify({ before, open, closed: threads(), hubs: hubs.length }));
      })();
    `);
    assertExit(result, 0);
    const { before, open, closed } = JSON.parse(result.stdout);
    assert.equal(open - before, 10, result.stdout);
    assert.equal(closed, before, result.stdout);
  });

  it('a hub dropped with calls still pending: the process neither crashes nor hangs', () => {
    const result = run(
      `
      (async () => {
        for (let i = 0; i < 20; i++) {
          const hub = deltacast.createHub();
          for (let k = 0; k < 100; k++) hub.publish('t', { k });
        }
        for (let i = 0; i < 5; i++) {
          global.gc();
          await new Promise((resolve) => setImmediate(resolve));
        }
        console.log('done');
      })();
    `,
      { args: ['--expose-gc'] },
    );
    assertExit(result, 0);
    assert.equal(result.stdout, 'done\n');
  });

  // Regression: a pending call must keep its hub alive. An async function that owns a hub and
  // awaits its calls is reachable only through the promise the hub will settle (hub -> #pending
  // -> resolve -> continuation -> hub): without a strong reference while busy, a major GC
  // collected that cycle mid-loop, the core thread stopped, and the process exited 0 with main()
  // never finished.
  it('an async function awaiting its own hub in a loop is not collected mid-await', () => {
    const result = run(
      `
      let i = 0;
      async function main() {
        const hub = deltacast.createHub();
        for (; i < 20000; i++) await hub.publish('t', { i });
        console.log('done');
      }
      process.on('exit', () => console.log('publishes: ' + i));
      main();
      setTimeout(() => global.gc(), 20);
    `,
      { args: ['--expose-gc'] },
    );
    assertExit(result, 0);
    assert.equal(result.stdout, 'done\npublishes: 20000\n', result.report);
  });

  // Regression, same cause as above: the only path from the core's answer back to the caller's
  // promise goes through the Hub object (#pending), which nothing else references once the caller
  // dropped the hub.
  it('a promise of a dropped hub still settles (the hub stays alive while calls are pending)', () => {
    const result = run(
      `
      const big = JSON.stringify(Array.from({ length: 100000 }, (_, i) => ({ id: i, name: 'row' + i })));
      function publishOnce() {
        const hub = deltacast.createHub();
        return hub.publishJson('big', big); // the hub is not referenced after this
      }
      let settled = 'no';
      process.on('exit', () => console.log('settled: ' + settled));
      const pending = publishOnce();
      setImmediate(() => global.gc());
      pending.then((r) => { settled = 'version ' + r.version; }, (err) => { settled = err.code; });
    `,
      { args: ['--expose-gc'] },
    );
    assertExit(result, 0);
    assert.equal(result.stdout, 'settled: version 1\n', result.report);
  });
});

describe('receipts', () => {
  it('a failure nobody awaits is reported as an unhandled rejection, with its code', () => {
    const result = run(`
      const hub = deltacast.createHub();
      process.on('unhandledRejection', (err) => {
        console.log('unhandled', err.code);
        hub.close().then(() => process.exit(0));
      });
      hub.publishJson('t', '{bad');   // not awaited`);
    assertExit(result, 0);
    assert.match(result.stdout, /^unhandled DELTACAST_INVALID_JSON$/m, result.report);
  });

  it('a receipt awaited after its failure was answered gets it (and Node says it was handled late)', () => {
    const result = run(`
      const hub = deltacast.createHub({ clock: 'manual' });
      const events = [];
      process.on('unhandledRejection', (err) => events.push('unhandled ' + err.code));
      process.on('rejectionHandled', () => events.push('handled late'));
      (async () => {
        const receipt = hub.publishJson('t', '{bad');
        await hub.advance(0);                                   // answered by now
        await new Promise((resolve) => setTimeout(resolve, 20)); // past the unhandled check
        try { await receipt; } catch (err) { events.push('caught ' + err.code); }
        await new Promise((resolve) => setTimeout(resolve, 20));
        console.log(events.join(', '));
        await hub.close();
      })();`);
    assertExit(result, 0);
    assert.match(result.stdout, /unhandled DELTACAST_INVALID_JSON, caught DELTACAST_INVALID_JSON, handled late/, result.report);
  });

  it('a publish loop without awaits keeps nothing alive per call once answered', () => {
    const result = run(`
      const hub = deltacast.createHub({ heartbeat: { intervalMs: 0 } });
      (async () => {
        let last;
        for (let r = 0; r < 20; r++) {
          for (let i = 0; i < 5000; i++) last = hub.publish('t' + i, { r, i });
          await new Promise((resolve) => setImmediate(resolve));
        }
        await last;
        global.gc();
        const heap = process.memoryUsage().heapUsed;
        console.log(JSON.stringify({ pending: hub.stats().pending, heapMiB: heap / 1048576, changes: hub.stats().changes }));
        await hub.close();
      })();`, { args: ['--expose-gc'] });
    assertExit(result, 0);
    const out = JSON.parse(result.stdout.trim().split('\n').at(-1));
    assert.equal(out.pending, 0);
    assert.equal(out.changes, 100_000);
    // 100,000 receipts and their texts would be tens of MiB if anything held them.
    assert.ok(out.heapMiB < 20, `heap after GC: ${out.heapMiB} MiB`);
  });
});
