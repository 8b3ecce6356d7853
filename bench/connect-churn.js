'use strict';
// Memory per connect/close cycle: `node bench/connect-churn.js [--cycles=1000000]`.
//
// A hub with heartbeats on (every connection has a timer in the core) and one
// topic. Each cycle connects, subscribes, lets the snapshot go out, and closes.
// RSS is read after a warm-up of half the cycles and again at the end; the
// difference divided by the remaining cycles is what a cycle leaves behind.
// Before the timer queue held one entry per id, each closed connection left
// its heartbeat entry until it fired (25 s later, never with the manual
// clock): about 30-60 bytes a cycle.
//
// The manual clock is used so that no timer ever fires: what stays is what the
// data structures keep, not what the clock happened to clean up.

const { createHub } = require('../lib/index.js');
const { gc } = require('./common.js');

function argument(name, fallback) {
  const found = process.argv.find((a) => a.startsWith(`--${name}=`));
  return found ? Number(found.slice(name.length + 3)) : fallback;
}

async function main() {
  const cycles = argument('cycles', 1_000_000);
  const hub = createHub({ clock: 'manual', lanes: { '**': 'critical' } });
  await hub.publish('t', { ok: true });
  const transport = { send() {} };
  const sub = '{"t":"sub","topic":"t"}';
  const rss = () => {
    gc();
    return process.memoryUsage().rss;
  };
  const chunk = 10_000;
  const warmup = Math.max(chunk, Math.floor(cycles / 2 / chunk) * chunk); // allocators and the JS heap settle first
  let start = 0;
  for (let done = 0; done < cycles; ) {
    for (let i = 0; i < chunk; i++) {
      const connection = hub.connect(transport);
      connection.receive(sub);
      connection.close();
    }
    done += chunk;
    await hub.advance(0); // one round trip: the core has handled the chunk
    if (done === warmup) start = rss();
    if (done % (cycles / 10) === 0) {
      const m = process.memoryUsage();
      const mib = (n) => (n / 1048576).toFixed(1);
      process.stdout.write(`${done} cycles: rss ${mib(m.rss)} MiB, JS heap ${mib(m.heapUsed)} MiB, external ${mib(m.external)} MiB\n`);
    }
  }
  const end = rss();
  const stats = hub.stats();
  await hub.close();
  const perCycle = (end - start) / (cycles - warmup);
  process.stdout.write(
    `\n${cycles} connect/sub/close cycles: RSS ${(start / 1048576).toFixed(1)} MiB after ${warmup}, ` +
      `${(end / 1048576).toFixed(1)} MiB at the end: ${perCycle.toFixed(2)} bytes per cycle ` +
      `(connections left: ${stats.connections}, subscriptions: ${stats.subscriptions})\n`,
  );
}

main().catch((error) => {
  process.stderr.write(`${error.stack}\n`);
  process.exit(1);
});
