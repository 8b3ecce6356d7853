'use strict';
// The README's usage example runs as written and does what its comments say.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');

const root = path.resolve(__dirname, '..', '..');

test('the README example computes the patch its comments show', () => {
  const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
  const usage = readme.slice(readme.indexOf('## Using it'));
  const code = usage.match(/```js\n([\s\S]*?)```/)[1];
  const context = {
    require: (name) => (name === 'deltacast' ? require(root) : require(name)),
  };
  vm.createContext(context);
  vm.runInContext(`${code.replace(/^const /gm, 'var ')}\nvar shared = next.rows[1] === before.rows[0];`, context);
  assert.deepEqual(JSON.parse(JSON.stringify(context.ops)), [
    { op: 'add', path: '/rows/0', value: { id: 'c', name: 'Tin 99.85%', price: 25500 } },
    { op: 'replace', path: '/rows/2/price', value: 2675 },
  ]);
  assert.equal(context.shared, true);
  assert.equal(context.before.rows.length, 2, 'before is untouched');
});
