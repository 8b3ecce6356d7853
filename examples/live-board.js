#!/usr/bin/env node
'use strict';
// A live price board in the terminal, through a deltacast hub: every tick a
// few prices move, and now and then a row is listed, delisted or moved. The
// hub diffs each new board against the one it holds; a subscriber (an
// in-process client speaking the wire protocol) applies the patches it is
// sent. Each line shows what went over the wire next to the size of the board.
//
//   node examples/live-board.js               runs until Ctrl-C
//   node examples/live-board.js --ticks=5     stops after 5 ticks
//   node examples/live-board.js --rows=10000 --interval=200

const { createHub, jsonEqual } = require('..');
const { createTestClient, settle } = require('../lib/testing.js');
const { makeBoard, mutate } = require('../bench/data.js');
const { stopOnSignal } = require('./stop-on-signal.js');

const args = Object.fromEntries(
  process.argv.slice(2).map((arg) => {
    const [key, value] = arg.replace(/^--/, '').split('=');
    return [key, Number(value)];
  }),
);
const rows = args.rows || 1000;
const interval = args.interval || 500;
const ticks = args.ticks || Infinity;

const kb = (n) => `${(n / 1024).toFixed(1)} KB`;

async function main() {
  // manual clock: the demo sets the pace; critical lane: each tick goes out at once
  const hub = createHub({ clock: 'manual', lanes: { '**': 'critical' } });
  let board = makeBoard(rows, 1);
  await hub.publish('prices', board);
  const client = createTestClient(hub);
  client.subscribe('prices');
  await settle(hub);
  const boardBytes = Buffer.byteLength(JSON.stringify(board));
  console.log(`deltacast demo: a board of ${rows} rows (${kb(boardBytes)}), a tick every ${interval} ms; Ctrl-C to stop\n`);

  let tick = 0;
  let wireBytes = 0;
  let snapshotBytes = 0;
  let sent = hub.stats().bytesSent;
  // One tick at a time: the next is scheduled when this one is done, so a
  // slow tick never overlaps the next (setInterval would start it anyway).
  let timer = null;
  let stopped = false;
  const next = () => {
    if (!stopped) timer = setTimeout(step, interval);
  };
  const step = async () => {
    tick += 1;
    board = mutate(board, {
      fraction: 0.01,
      insertMid: tick % 3 === 0,
      deleteOne: tick % 3 === 0,
      moveOne: tick % 5 === 0,
      seed: tick + 1,
    });
    const started = process.hrtime.bigint();
    const version = await hub.publish('prices', board).catch((err) => (stopped ? null : Promise.reject(err)));
    if (stopped) return; // Ctrl-C while this tick was in flight: the hub is closing
    await settle(hub);
    if (stopped) return;
    const micros = Number(process.hrtime.bigint() - started) / 1000;
    // this tick's patch: the newest message may be a ping (the heartbeat runs on the hub's manual clock too)
    const frame = client.messages.findLast((m) => m.t === 'patch');
    const wire = hub.stats().bytesSent - sent;
    sent = hub.stats().bytesSent;
    const size = Buffer.byteLength(JSON.stringify(board));
    if (!version || frame?.to !== version.version || !jsonEqual(client.get('prices').data, board)) {
      console.error(`tick ${tick}: the subscriber's replica diverged from the board`);
      process.exit(1);
    }
    wireBytes += wire;
    snapshotBytes += size;
    const kinds = {};
    for (const op of frame.ops) kinds[op.op] = (kinds[op.op] || 0) + 1;
    console.log(
      `tick ${String(tick).padStart(3)}: v${version.version}, ${String(frame.ops.length).padStart(3)} ops ` +
        `(${Object.entries(kinds).map(([k, v]) => `${v} ${k}`).join(', ')}), ` +
        `${kb(wire)} instead of ${kb(size)} (${Math.round(size / wire)}x smaller), ` +
        `publish to delivered ${(micros / 1000).toFixed(2)} ms, replica in sync`,
    );
    if (tick >= ticks) {
      stopped = true;
      console.log(`\n${tick} ticks: ${kb(wireBytes)} of patches instead of ${kb(snapshotBytes)} of snapshots`);
      await hub.close();
      return;
    }
    next();
  };
  next();
  stopOnSignal(async () => {
    stopped = true;
    clearTimeout(timer);
    console.log(`\n${tick} ticks: ${kb(wireBytes)} of patches instead of ${kb(snapshotBytes)} of snapshots`);
    await hub.close();
  });
}

main();
