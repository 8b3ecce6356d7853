'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const WebSocket = require('ws');
const { createHub } = require('../../lib/index.js');
const { createClient } = require('../../lib/browser/client.js');
const { startServer, until, recordApplied } = require('./client.servers.js');

const fast = { minMs: 10, maxMs: 50, connectTimeoutMs: 2000 };

test('ws: snapshot, patches, acks, and every replica equals hub.get', { timeout: 15000 }, async (t) => {
  const hub = createHub();
  const server = await startServer(hub);
  t.after(async () => {
    client.close();
    await server.stop();
    await hub.close();
  });
  await hub.publish('board', [{ id: 1, v: 0 }, { id: 2, v: 0 }]);
  const client = createClient({ url: server.wsUrl, WebSocket, reconnect: fast });
  const problems = recordApplied(client);
  client.subscribe('board');
  await until(() => client.get('board'), 'the snapshot');
  for (let i = 1; i <= 50; i++) await hub.upsert('board', 1 + (i % 2), { id: 1 + (i % 2), v: i });
  const want = await hub.get('board');
  await until(() => client.get('board').version === want.version, 'the last version');
  assert.deepEqual(client.get('board'), want);
  assert.deepEqual(problems, []);
  assert.equal(client.status, 'open');
  assert.equal(client.topicStatus('board').status, 'live');
});
