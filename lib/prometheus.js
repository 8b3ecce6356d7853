'use strict';
// deltacast/prometheus: a hub's stats() as prom-client metrics.
//
//   const client = require('prom-client');
//   const { hubMetrics } = require('deltacast/prometheus');
//   hubMetrics(hub, { register: client.register });
//   app.get('/metrics', async (req, res) => res.type('text/plain').send(await client.register.metrics()));
//
// Values are read from hub.stats() when the registry is scraped; nothing runs
// in between. prom-client is a peer: install it yourself.

const { DeltacastError, codes } = require('./errors');

const GAUGES = {
  topics: 'Topics held by the store',
  bytes: 'Bytes the store counts against its memory budget',
  memoryBudget: 'The store memory budget in bytes (0: none)',
  historyBytes: 'Bytes of patches kept for resuming clients',
  connections: 'Open connections',
  subscriptions: 'Subscriptions across all connections',
  pending: 'Hub calls not yet answered',
};

const COUNTERS = {
  changes: 'Accepted changes (new versions)',
  unchanged: 'Changes that changed nothing',
  duplicates: 'Changes dropped by the change-id dedup window',
  rejected: 'Changes refused with an error',
  evictions: 'Topics evicted by the memory budget',
  expirations: 'Topics deleted by TTL',
  framesSent: 'Frames handed to transports',
  bytesSent: 'Bytes of frames handed to transports',
  bytesSaved: 'Snapshot bytes minus patch bytes, for every patch sent',
  conflated: 'Updates held back from connections over their credit window',
  closedSlow: 'Connections closed for staying over their credit window',
  closedSilent: 'Connections closed by the heartbeat timeout',
  closedFlooding: 'Connections closed for flooding',
  snapshotFramesBuilt: 'Snapshot frames encoded',
  snapshotFramesReused: 'Snapshot frames sent again from the per-topic cache',
  squashed: 'Patch frames made by one diff over several changes',
  answersDropped: 'Answers (err, gone absent) not written to congested connections',
};

function snake(name) {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/**
 * Registers the hub's metrics in `register` (a prom-client Registry; default:
 * prom-client's global one). Returns a function that removes them.
 */
function hubMetrics(hub, { register, prefix = 'deltacast_', labels = {} } = {}) {
  let client;
  try {
    client = require('prom-client');
  } catch {
    throw new DeltacastError(codes.INVALID_ARGUMENT, 'deltacast/prometheus needs prom-client: npm install prom-client');
  }
  const registry = register ?? client.register;
  const labelNames = Object.keys(labels);
  const names = [];
  for (const [key, help] of Object.entries(GAUGES)) {
    const name = `${prefix}${snake(key)}`;
    names.push(name);
    new client.Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.set(labels, hub.stats()[key]);
      },
    });
  }
  for (const [key, help] of Object.entries(COUNTERS)) {
    const name = `${prefix}${snake(key)}_total`;
    names.push(name);
    new client.Counter({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        // The hub keeps the running total; the metric mirrors it.
        this.reset();
        this.inc(labels, hub.stats()[key]);
      },
    });
  }
  return () => {
    for (const name of names) registry.removeSingleMetric(name);
  };
}

module.exports = { hubMetrics };
