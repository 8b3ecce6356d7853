'use strict';
// A workload for `valgrind --leak-check=full node scripts/leak-check.js`:
// hubs created, used, closed, dropped unclosed; diff/patch on good and bad
// input. CI greps valgrind's report for leaks whose stack passes through
// deltacast code (scripts/leak-check.sh).

const { createHub, diffJson, applyPatchJson } = require('..');

async function main() {
  for (let round = 0; round < 3; round++) {
    const hub = createHub({ clock: 'manual', ttl: { 'tmp/*': 10 }, memory: { maxBytes: 20000 } });
    for (let i = 0; i < 50; i++) {
      await hub.publish(`tmp/${i % 7}`, { i, rows: [{ id: 1, v: i }, { id: 2, v: -i }] });
      await hub.upsert('rows', i % 5, { v: i });
      await hub.publishJson('bad', '{"oops"').catch(() => {});
      await hub.patch('rows', [{ op: 'test', path: '/0/v', value: -1 }]).catch(() => {});
    }
    await hub.remove('rows', 1);
    // subscribers: snapshots, shared and squashed patch frames, batches, conflation,
    // gone frames (TTL, budget, delete), errors, closes
    const frames = [];
    const a = hub.connect({ send: (f) => frames.push(f) });
    const b = hub.connect({ send: (f) => frames.push(f), close() {} });
    a.receive('{"t":"sub","topic":"rows"}');
    b.receive('{"t":"sub","topic":"rows"}');
    b.receive('{"t":"sub","topic":"tmp/1"}');
    a.receive('not json');
    for (let i = 0; i < 100; i++) await hub.upsert('rows', i % 3, { v: i * 7 });
    await hub.advance(60);
    a.receive('{"t":"ack","topic":"rows","version":1}');
    a.close();
    await hub.advance(100);
    hub.get('rows');
    await hub.delete('rows'); // a gone frame to b
    for (let i = 0; i < 40; i++) b.receive(`{"t":"ack","topic":"rows","version":${i}}`);
    await hub.close();
  }
  // dropped without close: torn down by the exit hook
  const dropped = createHub();
  await dropped.publish('x', { a: 1 });
  for (let i = 0; i < 100; i++) {
    diffJson(`{"a":[${i},2,3]}`, `{"a":[1,2,${i}],"b":{"c":"\\ud800"}}`);
    try {
      diffJson('{', '1');
    } catch {
      // expected
    }
    applyPatchJson('{"a":[1,2]}', [{ op: 'move', from: '/a/0', path: '/b' }]);
    try {
      applyPatchJson('{"a":1}', [{ op: 'add', path: '/x', value: 1 }, { op: 'test', path: '/a', value: 2 }]);
    } catch {
      // expected
    }
  }
  console.log('leak-check workload done');
}

main();
