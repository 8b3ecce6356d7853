'use strict';

const { test } = require('node:test');
const assert = require('node:assert/strict');
const client = require('prom-client');
const { createHub } = require('../../lib/index.js');
const { hubMetrics } = require('../../lib/prometheus.js');
const { createTestClient, settle } = require('../../lib/testing.js');

test('a hub stats() in Prometheus text format, read at scrape time', async (t) => {
  const hub = createHub({ clock: 'manual', lanes: { '**': 'critical' } });
  t.after(() => hub.close());
  const register = new client.Registry();
  const remove = hubMetrics(hub, { register, labels: { hub: 'prices' } });
  await hub.publish('a', { v: 1 });
  await hub.publish('a', { v: 2 });
  await hub.publish('a', { v: 2 });
  await hub.publishJson('a', '{').catch(() => {});
  const subscriber = createTestClient(hub);
  subscriber.subscribe('a');
  await settle(hub);
  const text = await register.metrics();
  assert.match(text, /^deltacast_topics\{hub="prices"\} 1$/m);
  assert.match(text, /^deltacast_changes_total\{hub="prices"\} 2$/m);
  assert.match(text, /^deltacast_unchanged_total\{hub="prices"\} 1$/m);
  assert.match(text, /^deltacast_rejected_total\{hub="prices"\} 1$/m);
  assert.match(text, /^deltacast_connections\{hub="prices"\} 1$/m);
  assert.match(text, /^deltacast_frames_sent_total\{hub="prices"\} 1$/m);
  assert.match(text, /# HELP deltacast_bytes_saved_total /);
  // scraping twice does not double the counters
  assert.match(await register.metrics(), /^deltacast_changes_total\{hub="prices"\} 2$/m);
  remove();
  assert.equal((await register.metrics()).trim(), '');
});
