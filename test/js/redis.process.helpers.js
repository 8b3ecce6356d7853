'use strict';
// One hub process on Redis for redis.multiprocess.test.js: a deltacast/ws
// server on the engine, driven over stdin/stdout with JSON lines. Does
// nothing unless run as a program (node redis.process.helpers.js '{"url":...}').

const readline = require('node:readline');

async function main() {
  const { WebSocketServer } = require('ws');
  const { createHub, codes } = require('../../lib/index.js');
  const { redisEngine } = require('../../lib/redis.js');
  const { attachWebSocketServer } = require('../../lib/adapters/ws.js');
  const { url, port, name } = JSON.parse(process.argv[2]);
  const engine = redisEngine({ url, maxRetries: 50 });
  const hub = createHub({ engine, pacing: { normalDebounceMs: 5, normalMaxWaitMs: 20 } });
  const wss = new WebSocketServer({ port, host: '127.0.0.1' });
  await new Promise((resolve, reject) => {
    wss.once('listening', resolve);
    wss.once('error', reject);
  });
  attachWebSocketServer(wss, hub);
  const say = (message) => process.stdout.write(`${JSON.stringify(message)}\n`);
  const lines = readline.createInterface({ input: process.stdin });
  lines.on('line', async (line) => {
    const command = JSON.parse(line);
    if (command.cmd === 'publish') {
      const counts = { ok: 0, unchanged: 0, unavailable: 0, conflict: 0, other: [] };
      for (let i = 0; i < command.count; i++) {
        const topic = command.topics[Math.floor(Math.random() * command.topics.length)];
        const id = `r${Math.floor(Math.random() * command.rows)}`;
        try {
          const version = await hub.upsert(topic, id, { id, v: Math.floor(Math.random() * 1e6), by: name });
          counts[version === null ? 'unchanged' : 'ok'] += 1;
        } catch (err) {
          if (err.code === codes.ENGINE_UNAVAILABLE) counts.unavailable += 1;
          else if (err.code === codes.CONFLICT) counts.conflict += 1;
          else counts.other.push(err.message);
        }
        await new Promise((r) => setTimeout(r, command.pauseMs));
      }
      say({ reply: 'publish', ...counts });
    } else if (command.cmd === 'state') {
      say({ reply: 'state', state: Object.fromEntries(command.topics.map((t) => [t, hub.get(t)])), stats: engine.stats() });
    }
  });
  say({ reply: 'ready', port: wss.address().port });
}

if (require.main === module) {
  main().catch((err) => {
    process.stderr.write(`${err.stack}\n`);
    process.exit(1);
  });
}
