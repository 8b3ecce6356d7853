'use strict';
// keySlot (lib/key_slot.js) against a real Redis's CLUSTER KEYSLOT: hash tags,
// empty and unclosed ones, several braces, multi-byte UTF-8, and the channel
// names deltacast/redis makes (a topic's `}` and `%` percent-encoded).

const test = require('node:test');
const assert = require('node:assert/strict');

const { keySlot } = require('../../lib/key_slot.js');
const { redisMissing, startRedis, cli } = require('./redis.helpers.js');

const skip = redisMissing();

test('keySlot gives the slot CLUSTER KEYSLOT gives', { skip, timeout: 60000 }, async (t) => {
  const dir = require('node:fs').mkdtempSync(require('node:path').join(require('node:os').tmpdir(), 'deltacast-keyslot-'));
  const redis = await startRedis(['--cluster-enabled', 'yes', '--cluster-config-file', `${dir}/nodes.conf`, '--dir', dir]);
  t.after(() => redis.stop());
  const keys = [
    '',
    '123456789',
    'prices',
    '{user1000}.following',
    'foo{}{bar}',
    'foo{{bar}}zap',
    'foo{bar}{zap}',
    'a{}b',
    'a{}}b', // cluster-key-slot 1.1.2 says 0
    '{}}',
    '{',
    '}{',
    'a{b',
    '日本{語}',
    'x{😀}y',
    'dc:{news%7D%25}:n',
  ];
  // And random ones over an alphabet heavy in braces.
  const alphabet = ['a', '{', '}', 'é', '日', '😀', '%', 'z', ':'];
  let seed = 7;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  for (let i = 0; i < 300; i++) {
    let key = '';
    for (let k = Math.floor(next() * 12); k > 0; k--) key += alphabet[Math.floor(next() * alphabet.length)];
    keys.push(key);
  }
  for (const key of keys) {
    assert.equal(keySlot(key), Number(cli(redis.port, 'cluster', 'keyslot', key)), JSON.stringify(key));
  }
});
