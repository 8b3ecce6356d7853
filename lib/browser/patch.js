'use strict';
// The browser client's RFC 6902 applier: the semantics of lib/apply_patch.js (the same results; a
// patch that fails there fails here, atomically, with a DELTACAST_ code, not always the same one),
// in a fraction of its bytes, for the client's size budget. Tests hold the two equal (test/js/client.patch.test.js).
//
// Pure: the input is never written. Containers on the path of an op are copied once per call
// (`owned` holds the copies, the only containers ever written), every other subtree is shared, so
// unchanged rows keep their identity. `copy` shares its value and disowns what it holds, so a
// later write under either place copies again.

const OPS = ['add', 'remove', 'replace', 'move', 'copy', 'test'];
const INDEX = /^(0|[1-9]\d*)$/;
const has = (o, k) => Object.prototype.hasOwnProperty.call(o, k);
const isObj = (v) => v !== null && typeof v === 'object';

function fail(code, message) {
  const e = new Error(message);
  e.name = 'DeltacastError';
  e.code = `DELTACAST_${code}`;
  return e;
}

const notFound = (i, s) => fail('PATH_NOT_FOUND', `op ${i}: ${s} not found`);

function pointer(p, i) {
  if (p === '') return [];
  if (p[0] !== '/' || /~([^01]|$)/.test(p)) throw fail('INVALID_POINTER', `op ${i}: bad pointer ${p}`);
  const segs = p.slice(1).split('/');
  return p.includes('~') ? segs.map((s) => s.replace(/~[01]/g, (x) => (x === '~1' ? '/' : '~'))) : segs;
}

// Checks what the ops themselves must satisfy. Malformed details that would fail anyway when
// applied (a move into its own child, removing the root) fail there, with another code.
function compile(op, i) {
  const name = isObj(op) && has(op, 'op') ? op.op : undefined;
  if (!OPS.includes(name) || typeof op.path !== 'string' || !has(op, 'path')) throw fail('INVALID_PATCH', `op ${i}: bad op`);
  const c = { i, name, path: pointer(op.path, i), value: op.value };
  if ((name === 'add' || name === 'replace' || name === 'test') && (!has(op, 'value') || c.value === undefined)) {
    throw fail('INVALID_PATCH', `op ${i}: no value`);
  }
  if (name === 'move' || name === 'copy') {
    if (typeof op.from !== 'string' || !has(op, 'from')) throw fail('INVALID_PATCH', `op ${i}: bad from`);
    c.from = pointer(op.from, i);
  }
  return c;
}

/** The index `s` names in array `a`; `end` (add) admits a.length and "-". */
function index(a, s, end, i) {
  if (end && s === '-') return a.length;
  if (INDEX.test(s) && +s < a.length + (end ? 1 : 0)) return +s;
  throw notFound(i, s);
}

/** The key `s` names in container `node` (an index for arrays), which must exist. */
function child(node, s, i) {
  if (Array.isArray(node)) return index(node, s, false, i);
  if (!isObj(node) || !has(node, s)) throw notFound(i, s);
  return s;
}

function read(root, segs, i) {
  let node = root;
  for (const s of segs) node = node[child(node, s, i)];
  return node;
}

function copyOf(c) {
  if (Array.isArray(c)) return c.slice();
  return Object.getPrototypeOf(c) === null ? Object.assign(Object.create(null), c) : { ...c };
}

function set(o, k, v) {
  if (has(o, k) || !(k in o)) o[k] = v;
  else Object.defineProperty(o, k, { value: v, writable: true, enumerable: true, configurable: true });
}

function jsonEqual(a, b) {
  if (a === b) return true;
  if (!isObj(a) || !isObj(b) || Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  return ka.every((k) => has(b, k) && jsonEqual(a[k], b[k]));
}

function applyPatch(doc, ops) {
  if (!Array.isArray(ops)) throw fail('INVALID_PATCH', 'a patch must be an array of operations');
  const list = ops.map(compile);
  const owned = new Set();
  let root = doc;
  const own = (c) => {
    if (owned.has(c)) return c;
    const d = copyOf(c);
    owned.add(d);
    return d;
  };
  // The writable parent of the last segment, copying the containers on the way.
  const parent = (segs, i) => {
    if (!isObj(root)) throw notFound(i, '');
    let node = (root = own(root));
    for (let k = 0; k < segs.length - 1; k++) {
      const key = child(node, segs[k], i);
      const next = node[key];
      if (!isObj(next)) throw notFound(i, segs[k]);
      const mine = own(next);
      if (mine !== next) node[key] = mine;
      node = mine;
    }
    return node;
  };
  const add = (segs, v, i) => {
    if (!segs.length) return void (root = v);
    const p = parent(segs, i);
    const s = segs[segs.length - 1];
    if (Array.isArray(p)) p.splice(index(p, s, true, i), 0, v);
    else set(p, s, v);
  };
  const remove = (segs, i) => {
    const p = parent(segs, i);
    const key = child(p, segs[segs.length - 1], i);
    const v = p[key];
    if (Array.isArray(p)) p.splice(key, 1);
    else delete p[key];
    return v;
  };
  const disown = (v) => {
    if (!owned.has(v)) return;
    owned.delete(v);
    for (const k of Object.keys(v)) if (isObj(v[k])) disown(v[k]);
  };
  for (const c of list) {
    const { name, path, i } = c;
    if (name === 'add') add(path, c.value, i);
    else if (name === 'remove') remove(path, i);
    else if (name === 'replace') {
      if (!path.length) root = c.value;
      else {
        const p = parent(path, i);
        p[child(p, path[path.length - 1], i)] = c.value;
      }
    } else if (name === 'move') {
      if (c.from.length === path.length && c.from.every((s, k) => s === path[k])) read(root, c.from, i);
      else add(path, remove(c.from, i), i);
    } else if (name === 'copy') {
      const v = read(root, c.from, i);
      disown(v);
      add(path, v, i);
    } else if (!jsonEqual(read(root, path, i), c.value)) {
      throw fail('PATCH_TEST_FAILED', `op ${i}: test failed`);
    }
  }
  return root;
}

module.exports = { applyPatch };
