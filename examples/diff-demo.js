#!/usr/bin/env node
'use strict';
// A live price board in the terminal: every tick a few prices move, a row is
// listed or delisted now and then; deltacast computes the patch, a replica
// applies it, and each line shows what went over the wire compared with
// sending the whole board.
//
//   node examples/diff-demo.js               runs until Ctrl-C
//   node examples/diff-demo.js --ticks=5     stops after 5 ticks
//   node examples/diff-demo.js --rows=10000 --interval=200

const { diffJson, applyPatch, jsonEqual } = require('..');
const { makeBoard, mutate } = require('../bench/data.js');

const args = Object.fromEntries(
  process.argv.slice(2).map((arg) => {
    const [key, value] = arg.replace(/^--/, '').split('=');
    return [key, Number(value)];
  }),
);
const rows = args.rows || 1000;
const interval = args.interval || 500;
const ticks = args.ticks || Infinity;

let board = makeBoard(rows, 1);
let text = JSON.stringify(board);
let replica = JSON.parse(text); // what a subscriber holds
let tick = 0;
let patchBytes = 0;
let snapshotBytes = 0;

const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
console.log(`deltacast demo: a board of ${rows} rows (${kb(text.length)}), a tick every ${interval} ms; Ctrl-C to stop\n`);

const timer = setInterval(() => {
  tick += 1;
  const next = mutate(board, {
    fraction: 0.01,
    insertMid: tick % 3 === 0,
    deleteOne: tick % 3 === 0,
    moveOne: tick % 5 === 0,
    seed: tick + 1,
  });
  const nextText = JSON.stringify(next);
  const started = process.hrtime.bigint();
  const ops = diffJson(text, nextText);
  const micros = Number(process.hrtime.bigint() - started) / 1000;
  const wire = JSON.stringify(ops).length;
  replica = applyPatch(replica, ops);
  if (!jsonEqual(replica, next)) {
    console.error(`tick ${tick}: the replica diverged from the board`);
    process.exit(1);
  }
  patchBytes += wire;
  snapshotBytes += nextText.length;
  const kinds = {};
  for (const op of ops) kinds[op.op] = (kinds[op.op] || 0) + 1;
  console.log(
    `tick ${String(tick).padStart(3)}: ${String(ops.length).padStart(3)} ops ` +
      `(${Object.entries(kinds).map(([k, v]) => `${v} ${k}`).join(', ')}), ` +
      `${kb(wire)} instead of ${kb(nextText.length)} (${Math.round(nextText.length / wire)}x smaller), ` +
      `diff ${micros.toFixed(0)} µs, replica in sync`,
  );
  board = next;
  text = nextText;
  if (tick >= ticks) stop();
}, interval);

function stop() {
  clearInterval(timer);
  console.log(`\n${tick} ticks: ${kb(patchBytes)} of patches instead of ${kb(snapshotBytes)} of snapshots`);
}
process.on('SIGINT', () => {
  stop();
  process.exit(0);
});
