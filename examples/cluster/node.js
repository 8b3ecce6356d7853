'use strict';
// One hub process of examples/cluster: a deltacast/ws server on a Redis
// engine, and a feed that ticks prices on the shared 1,000-row board.
//
//   node examples/cluster/node.js --redis=redis://127.0.0.1:6379 --port=0 --name=n0 [--seed] [--seconds=3]
//
// Prints `listening <port>` once it serves, `done <changes>` when its feed stops.

const { WebSocketServer } = require('ws');
const { createHub } = require('../../lib/index.js');
const { redisEngine } = require('../../lib/redis.js');
const { attachWebSocketServer } = require('../../lib/adapters/ws.js');

const args = Object.fromEntries(
  process.argv.slice(2).map((a) => {
    const [k, v] = a.replace(/^--/, '').split('=');
    return [k, v ?? true];
  }),
);
const ROWS = 1000;

async function main() {
  const engine = redisEngine({ url: args.redis });
  const hub = createHub({ engine });
  await engine.ready();
  const wss = new WebSocketServer({ port: Number(args.port ?? 0), host: '127.0.0.1' });
  await new Promise((resolve) => wss.once('listening', resolve));
  attachWebSocketServer(wss, hub);
  if (args.seed) {
    const rows = Array.from({ length: ROWS }, (_, i) => ({ id: `r${i}`, name: `row ${i}`, price: 100 }));
    await hub.publish('board', rows);
  }
  console.log(`listening ${wss.address().port}`);
  // the feed: 1% of the rows change per tick, from every node
  const end = Date.now() + Number(args.seconds ?? 3) * 1000;
  let changes = 0;
  while (Date.now() < end) {
    const ops = [];
    for (let k = 0; k < ROWS / 100; k++) {
      const i = Math.floor(Math.random() * ROWS);
      ops.push({ op: 'replace', path: `/${i}/price`, value: Math.round(Math.random() * 10000) / 100 });
    }
    try {
      if ((await hub.patch('board', ops)) !== null) changes += 1;
    } catch (err) {
      console.log(`change refused: ${err.code}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  console.log(`done ${changes}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
