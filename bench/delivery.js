'use strict';

// Delivery benchmarks: what it costs to get a board's changes to many
// subscribers with deltacast, next to what a Node user would otherwise write.
// This runs the three of them in one go; each is also a program of its own:
//
//   bench/fanout.js    a 1,000-row board, 1% of the rows changing per update,
//                      fanned out to 100 and 1,000 clients (in-process, and over
//                      ws on loopback), against ws and Socket.IO broadcasts
//   bench/stalled.js   one client that never acks among 1,000 while 10,000
//                      updates go out, against a Socket.IO socket that stops reading
//   bench/debounce.js  100,000 topics each published 10 times, against a
//                      hand-written debouncer and lodash.debounce
//
//   node bench/delivery.js                  # all three (about 10 minutes on 2 threads)
//   node bench/delivery.js --quick          # fewer updates, clients and calls: a smoke run (< 1 minute)
//   node bench/delivery.js --only=fanout,stalled,debounce
//
// Other flags: --clients=100,1000 (fan-out sizes)  --no-save
// Env: DELTACAST_LIB=path/to/index.js benchmarks another deltacast build;
//      DELTACAST_ADDON=path/to/deltacast.node another addon (lib/native.js).
//
// Results go to stdout as markdown tables, progress to stderr, and everything
// to bench/results/delivery-<date>.json and .md (-quick or -partial for a
// limited run, so it does not overwrite a full one). The header of each file
// says how its benchmark is measured.

const { runBenchmarks, start } = require('./delivery_common.js');
const { runFanout } = require('./fanout.js');
const { runStalled } = require('./stalled.js');
const { runDebounce } = require('./debounce.js');

start('delivery.js', () =>
  runBenchmarks({
    script: 'delivery.js',
    results: 'delivery',
    benchmarks: { fanout: runFanout, stalled: runStalled, debounce: runDebounce },
  }),
);
