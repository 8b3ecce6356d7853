'use strict';
// examples/cluster runs as a newcomer would run it (it starts its own redis-server).

const test = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const path = require('node:path');
const { redisMissing } = require('./redis.helpers.js');

const root = path.resolve(__dirname, '..', '..');

test('examples/cluster/run.js: 3 nodes, round-robin clients, every client ends equal to Redis', { skip: redisMissing(), timeout: 90000 }, () => {
  const out = execFileSync(process.execPath, ['examples/cluster/run.js', '--nodes=3', '--clients=6', '--seconds=1'], {
    cwd: root,
    encoding: 'utf8',
    timeout: 80000,
  });
  const lines = out.split('\n').filter((line) => /^client \d+ on node n\d/.test(line));
  assert.equal(lines.length, 6, out);
  for (const [i, line] of lines.entries()) {
    assert.match(line, new RegExp(`^client ${i} on node n${i % 3}: `));
    assert.match(line, /gaps 0: equal to Redis$/);
  }
  const [, a, b, c] = out.match(/changes made by each node: (\d+), (\d+), (\d+)/);
  assert.ok(Number(a) > 0 && Number(b) > 0 && Number(c) > 0, 'every node published');
  assert.match(out, /all 6 clients equal Redis at version \d+/);
});
