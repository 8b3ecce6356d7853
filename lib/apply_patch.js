'use strict';

/**
 * RFC 6902 JSON Patch application on plain JS values, in pure JS.
 *
 * applyPatch(doc, ops) never mutates `doc`. It copies only the containers on the path of each
 * operation (path copying) and shares every other subtree with `doc`, so the result of a patch that
 * touches one row of a 10,000-row table costs one array copy and one row copy, not a deep clone.
 *
 * Invariants that make in-place writes safe:
 *  - `owned` holds the containers this call created. Only owned containers are ever written to;
 *    anything else (the input, values taken from the ops) is copied first, and then the copy is
 *    owned. A container is therefore copied at most once per call, however many ops touch it.
 *  - An owned container sits at exactly one place in the working tree, and its parent is owned
 *    (copies are only ever stored into owned parents). `copy` is the one op that could put a value
 *    at two places; it first drops the copied subtree's owned containers from `owned` (see
 *    `disown`), so a later write under either place copies again instead of changing both.
 *
 * The result is meant to be treated as immutable: it shares subtrees with the input, with the
 * `value`s given in the ops (used as given, not cloned), and, after `copy`, with itself.
 */

const { DeltacastError, codes } = require('./errors.js');

const OPERATION_NAMES = new Set(['add', 'remove', 'replace', 'move', 'copy', 'test']);
const ARRAY_INDEX = /^(?:0|[1-9][0-9]*)$/;

function hasOwn(object, key) {
  return Object.prototype.hasOwnProperty.call(object, key);
}

function isContainer(value) {
  return value !== null && typeof value === 'object';
}

function describeType(value) {
  if (value === null) return 'null';
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  return `a ${typeof value}`;
}

/** A short human description of a value for error messages; never walks a whole container. */
function preview(value) {
  if (Array.isArray(value)) return `an array of ${value.length} element(s)`;
  if (isContainer(value)) return `an object with ${Object.keys(value).length} member(s)`;
  if (value === undefined) return 'undefined';
  let text;
  try {
    text = JSON.stringify(value);
  } catch {
    text = undefined;
  }
  if (text === undefined) text = String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function escapeSegment(segment) {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1');
}

/** The pointer made of the first `count` segments, for error messages. */
function formatPointer(segments, count) {
  let pointer = '';
  for (let i = 0; i < count; i++) pointer += `/${escapeSegment(segments[i])}`;
  return pointer;
}

function locationOf(segments, count) {
  return count === 0 ? 'the document root' : `"${formatPointer(segments, count)}"`;
}

function operationLabel(index, name) {
  return typeof name === 'string' ? `operation ${index} (${name})` : `operation ${index}`;
}

function detailsOf(compiled) {
  const details = { index: compiled.index, op: compiled.name, path: compiled.path };
  if (compiled.from !== undefined) details.from = compiled.from;
  return details;
}

function invalidPatch(index, op, message) {
  const details = { index, op: undefined, path: undefined };
  if (isContainer(op)) {
    details.op = hasOwn(op, 'op') ? op.op : undefined;
    details.path = hasOwn(op, 'path') ? op.path : undefined;
  }
  return new DeltacastError(codes.INVALID_PATCH, `${operationLabel(index, details.op)}: ${message}`, details);
}

/**
 * PATH_NOT_FOUND for the pointer in `field` ('path' or 'from') of `compiled`.
 * `reason` says which step failed.
 */
function notFound(compiled, field, reason) {
  const pointer = field === 'from' ? compiled.from : compiled.path;
  return new DeltacastError(
    codes.PATH_NOT_FOUND,
    `${operationLabel(compiled.index, compiled.name)}: ${field} "${pointer}" not found: ${reason}`,
    detailsOf(compiled),
  );
}

function missingMember(compiled, field, segments, position) {
  const where = locationOf(segments, position);
  return notFound(compiled, field, `member "${segments[position]}" does not exist in the object at ${where}`);
}

function invalidPointer(pointer, index, name, field, path, why) {
  return new DeltacastError(
    codes.INVALID_POINTER,
    `${operationLabel(index, name)}: invalid ${field} "${pointer}": ${why}`,
    { index, op: name, path },
  );
}

/**
 * Splits a JSON pointer (RFC 6901) into unescaped reference tokens.
 * Throws DELTACAST_INVALID_POINTER for a pointer that is not "" and does not start with "/", and for
 * a "~" not followed by "0" or "1".
 */
function parsePointer(pointer, index, name, field, path) {
  if (pointer === '') return [];
  if (pointer[0] !== '/') {
    throw invalidPointer(pointer, index, name, field, path, 'a JSON pointer must be empty or start with "/"');
  }
  const segments = pointer.slice(1).split('/');
  if (pointer.indexOf('~') === -1) return segments;
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i];
    if (segment.indexOf('~') === -1) continue;
    if (/~(?![01])/.test(segment)) {
      throw invalidPointer(pointer, index, name, field, path,
        '"~" must be followed by "0" or "1" (write "~0" for "~" and "~1" for "/")');
    }
    // One pass, so "~01" becomes "~1" and not "/".
    segments[i] = segment.replace(/~[01]/g, (escape) => (escape === '~1' ? '/' : '~'));
  }
  return segments;
}

function readOwn(object, key) {
  return hasOwn(object, key) ? object[key] : undefined;
}

/** Checks one operation's shape and parses its pointers. */
function compileOperation(op, index) {
  if (!isContainer(op) || Array.isArray(op)) {
    throw invalidPatch(index, op, `must be an object with "op" and "path", got ${describeType(op)}`);
  }
  const name = readOwn(op, 'op');
  if (typeof name !== 'string' || !OPERATION_NAMES.has(name)) {
    const problem =
      name === undefined ? 'missing "op"' : `unknown "op" ${JSON.stringify(name) ?? String(name)}`;
    throw invalidPatch(index, op, `${problem}; expected one of add, remove, replace, move, copy, test`);
  }
  const path = readOwn(op, 'path');
  if (typeof path !== 'string') {
    throw invalidPatch(index, op, `"path" must be a string (a JSON pointer), got ${describeType(path)}`);
  }
  const compiled = {
    index,
    name,
    path,
    pathSegments: parsePointer(path, index, name, 'path', path),
    from: undefined,
    fromSegments: undefined,
    value: undefined,
  };
  if (name === 'add' || name === 'replace' || name === 'test') {
    // An own `value` that is undefined counts as missing: it cannot come from JSON and would put a
    // non-JSON value into the document.
    const value = readOwn(op, 'value');
    if (value === undefined) throw invalidPatch(index, op, `missing "value" (required for ${name})`);
    checkJsonValue(value, compiled);
    compiled.value = value;
  } else if (name === 'move' || name === 'copy') {
    const from = readOwn(op, 'from');
    if (typeof from !== 'string') {
      throw invalidPatch(index, op, `"from" must be a string (a JSON pointer), got ${describeType(from)}`);
    }
    compiled.from = from;
    compiled.fromSegments = parsePointer(from, index, name, 'from', path);
    if (name === 'move' && isProperPrefix(compiled.fromSegments, compiled.pathSegments)) {
      throw invalidPatch(index, op, `cannot move "${from}" into its own child "${path}"`);
    }
  } else if (name === 'remove' && compiled.pathSegments.length === 0) {
    // Decision: removing the root is rejected as an invalid patch, whatever the document. It would
    // leave no document at all, and it is wrong regardless of the document's contents, so it is a
    // property of the patch (found by validateOperations) rather than a missing path.
    throw invalidPatch(index, op, 'cannot remove the whole document (path "")');
  }
  return compiled;
}

/**
 * The one rule of both appliers (applyPatch here, applyPatchJson and hub.patch natively, which see
 * the patch as JSON text): a patch value must be something JSON can carry. A number that is not
 * finite (NaN, Infinity), a BigInt, undefined, a function or a symbol anywhere inside it, or a cycle,
 * is refused with DELTACAST_INVALID_VALUE instead of being kept (here) or written as null (by
 * JSON.stringify on the way to the core). Shared subtrees are checked once.
 */
function nonJsonType(item) {
  if (item === undefined) return 'undefined';
  return typeof item === 'bigint' ? 'a BigInt' : `a ${typeof item}`;
}

function checkJsonValue(value, compiled) {
  const refuse = (what, key) => {
    const at = key === null ? segments : [...segments, key];
    return new DeltacastError(
      codes.INVALID_VALUE,
      `the patch's ${operationLabel(compiled.index, compiled.name)}: "value" holds ${what} at ` +
        `${at.length === 0 ? 'its root' : `"${formatPointer(at, at.length)}"`}, which JSON cannot carry`,
      { index: compiled.index, op: compiled.name, path: compiled.path },
    );
  };
  const onPath = new Set();
  const done = new Set();
  const segments = [];
  // Entries: [value, key] to enter (key: its segment, null for the root), or EXIT to leave the
  // container on top of the path.
  const EXIT = {};
  const stack = [[value, null]];
  while (stack.length > 0) {
    const entry = stack.pop();
    if (entry === EXIT) {
      const container = stack.pop();
      onPath.delete(container);
      done.add(container);
      segments.pop();
      continue;
    }
    const [item, key] = entry;
    switch (typeof item) {
      case 'string':
      case 'boolean':
        continue;
      case 'number':
        if (!Number.isFinite(item)) throw refuse(String(item), key);
        continue;
      case 'object':
        break;
      default:
        throw refuse(nonJsonType(item), key);
    }
    if (item === null || done.has(item)) continue;
    if (onPath.has(item)) throw refuse('a cycle', key);
    onPath.add(item);
    if (key !== null) segments.push(key);
    stack.push(item, EXIT);
    if (Array.isArray(item)) {
      for (let i = item.length - 1; i >= 0; i--) stack.push([item[i], String(i)]);
    } else {
      const keys = Object.keys(item);
      for (let i = keys.length - 1; i >= 0; i--) stack.push([item[keys[i]], keys[i]]);
    }
  }
}

function isProperPrefix(prefix, segments) {
  if (prefix.length >= segments.length) return false;
  for (let i = 0; i < prefix.length; i++) if (prefix[i] !== segments[i]) return false;
  return true;
}

function sameSegments(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function compileOperations(ops) {
  if (!Array.isArray(ops)) {
    throw new DeltacastError(
      codes.INVALID_PATCH,
      `a patch must be an array of operations, got ${describeType(ops)}`,
    );
  }
  const compiled = new Array(ops.length);
  for (let i = 0; i < ops.length; i++) compiled[i] = compileOperation(ops[i], i);
  return compiled;
}

/**
 * Checks that `ops` is a well-formed RFC 6902 patch without applying it: an array of objects with a
 * known `op`, string pointers that parse, `value` where required, `from` for move/copy, no move into
 * its own child, no removal of the root. Throws DeltacastError (DELTACAST_INVALID_PATCH or
 * DELTACAST_INVALID_POINTER); returns undefined. Whether paths exist depends on the document and is
 * only checked by applyPatch.
 */
function validateOperations(ops) {
  compileOperations(ops);
}

/**
 * applyPatchJson's check of a patch given as JS values, before it is serialized: the values of
 * add/replace/test must be values JSON can carry (see checkJsonValue). Shapes are left to the core.
 */
function checkOperationValues(ops) {
  if (!Array.isArray(ops)) return;
  for (let index = 0; index < ops.length; index++) {
    const op = ops[index];
    if (!isContainer(op) || !hasOwn(op, 'value')) continue;
    const name = readOwn(op, 'op');
    const path = readOwn(op, 'path');
    checkJsonValue(op.value, { index, name: typeof name === 'string' ? name : undefined, path });
  }
}

// ---------------------------------------------------------------------------------------------
// Reading and writing the working tree

/**
 * The array index `segment` names in `array`. `allowEnd` (add only) admits `array.length` and "-".
 */
function arrayIndex(compiled, field, array, segments, position, allowEnd) {
  const segment = segments[position];
  // The common case first: a short run of digits, no leading zero, in range.
  const length = segment.length;
  if (length > 0 && length <= 9 && (length === 1 || segment.charCodeAt(0) !== 48)) {
    let index = 0;
    let i = 0;
    for (; i < length; i++) {
      const digit = segment.charCodeAt(i) - 48;
      if (digit < 0 || digit > 9) break;
      index = index * 10 + digit;
    }
    if (i === length && index < (allowEnd ? array.length + 1 : array.length)) return index;
  }
  const where = `the array at ${locationOf(segments, position)}`;
  if (segment === '-') {
    if (allowEnd) return array.length;
    throw notFound(
      compiled,
      field,
      `"-" (past the end of ${where}) names no element; it is only valid as the last segment of an add path`,
    );
  }
  if (!ARRAY_INDEX.test(segment)) {
    throw notFound(
      compiled,
      field,
      `"${segment}" is not a valid index into ${where} (indexes are 0 or digits without a leading zero)`,
    );
  }
  const index = Number(segment);
  const limit = allowEnd ? array.length : array.length - 1;
  if (index > limit) {
    throw notFound(
      compiled,
      field,
      `index ${segment} is out of range (array length ${array.length}` +
        (allowEnd ? `; add accepts 0..${array.length} or "-")` : ')'),
    );
  }
  return index;
}

/** The value at segments[position] inside `container`, which must exist. */
function childOf(compiled, field, container, segments, position) {
  if (Array.isArray(container)) {
    return container[arrayIndex(compiled, field, container, segments, position, false)];
  }
  const key = segments[position];
  if (!hasOwn(container, key)) {
    throw missingMember(compiled, field, segments, position);
  }
  return container[key];
}

function requireContainer(compiled, field, value, segments, position) {
  if (!isContainer(value)) {
    throw notFound(
      compiled,
      field,
      `the value at ${locationOf(segments, position)} is ${describeType(value)}, not an object or array`,
    );
  }
}

/** Reads the value at `segments` without copying anything. */
function valueAt(root, compiled, field, segments) {
  let node = root;
  for (let i = 0; i < segments.length; i++) {
    requireContainer(compiled, field, node, segments, i);
    node = childOf(compiled, field, node, segments, i);
  }
  return node;
}

function shallowCopy(container) {
  if (Array.isArray(container)) return container.slice();
  // Spread defines own data properties (CreateDataProperty), so an own "__proto__" member stays an
  // own member and no prototype setter runs. Null-prototype objects keep a null prototype; with no
  // prototype there is no "__proto__" setter for Object.assign to hit.
  if (Object.getPrototypeOf(container) === null) return Object.assign(Object.create(null), container);
  return { ...container };
}

function own(state, container) {
  if (state.owned.has(container)) return container;
  const copy = shallowCopy(container);
  state.owned.add(copy);
  return copy;
}

/**
 * The owned (writable) container at the first `count` segments, copying each container on the way
 * that this call does not own yet and storing the copy into its (owned) parent.
 */
function writableContainerAt(state, compiled, field, segments, count) {
  requireContainer(compiled, field, state.root, segments, 0);
  let node = own(state, state.root);
  state.root = node;
  for (let i = 0; i < count; i++) {
    let key;
    if (Array.isArray(node)) {
      key = arrayIndex(compiled, field, node, segments, i, false);
    } else {
      key = segments[i];
      if (!hasOwn(node, key)) {
        throw missingMember(compiled, field, segments, i);
      }
    }
    const child = node[key];
    requireContainer(compiled, field, child, segments, i + 1);
    const writable = own(state, child);
    // `key` is an existing own data property of a container we created, so plain assignment
    // writes that property (even for "__proto__").
    if (writable !== child) node[key] = writable;
    node = writable;
  }
  return node;
}

/** Sets an object member as an own data property, never through an inherited setter. */
function setMember(object, key, value) {
  if (hasOwn(object, key) || !(key in object)) {
    object[key] = value;
  } else {
    // An inherited key: "__proto__" (an accessor on Object.prototype) or a key that a hardened or
    // polluted prototype made non-writable. Define it so it becomes an own member.
    Object.defineProperty(object, key, { value, writable: true, enumerable: true, configurable: true });
  }
}

function addAt(state, compiled, segments, value) {
  if (segments.length === 0) {
    state.root = value;
    return;
  }
  const last = segments.length - 1;
  const parent = writableContainerAt(state, compiled, 'path', segments, last);
  if (Array.isArray(parent)) {
    const index = arrayIndex(compiled, 'path', parent, segments, last, true);
    if (index === parent.length) parent.push(value);
    else parent.splice(index, 0, value);
  } else {
    setMember(parent, segments[last], value);
  }
}

function removeAt(state, compiled, field, segments) {
  const last = segments.length - 1;
  const parent = writableContainerAt(state, compiled, field, segments, last);
  if (Array.isArray(parent)) {
    const index = arrayIndex(compiled, field, parent, segments, last, false);
    return parent.splice(index, 1)[0];
  }
  const key = segments[last];
  if (!hasOwn(parent, key)) {
    throw missingMember(compiled, field, segments, last);
  }
  const value = parent[key];
  delete parent[key];
  return value;
}

function replaceAt(state, compiled, segments, value) {
  if (segments.length === 0) {
    state.root = value;
    return;
  }
  const last = segments.length - 1;
  const parent = writableContainerAt(state, compiled, 'path', segments, last);
  if (Array.isArray(parent)) {
    parent[arrayIndex(compiled, 'path', parent, segments, last, false)] = value;
    return;
  }
  const key = segments[last];
  if (!hasOwn(parent, key)) {
    throw missingMember(compiled, 'path', segments, last);
  }
  parent[key] = value;
}

/**
 * Makes every owned container inside `value` unowned again, so that the next write under it copies.
 * Used by `copy`, which puts `value` at a second place. By the invariant above, owned containers
 * only sit inside owned containers, so the walk stops at the first unowned one; it visits only
 * containers this call already copied, so it costs no more than those copies did.
 */
function disown(state, value) {
  if (!isContainer(value) || !state.owned.has(value)) return;
  const stack = [value];
  while (stack.length > 0) {
    const node = stack.pop();
    state.owned.delete(node);
    if (Array.isArray(node)) {
      for (let i = 0; i < node.length; i++) {
        const child = node[i];
        if (isContainer(child) && state.owned.has(child)) stack.push(child);
      }
    } else {
      for (const key of Object.keys(node)) {
        const child = node[key];
        if (isContainer(child) && state.owned.has(child)) stack.push(child);
      }
    }
  }
}

function applyOperation(state, compiled) {
  switch (compiled.name) {
    case 'add':
      addAt(state, compiled, compiled.pathSegments, compiled.value);
      return;
    case 'remove':
      removeAt(state, compiled, 'path', compiled.pathSegments);
      return;
    case 'replace':
      replaceAt(state, compiled, compiled.pathSegments, compiled.value);
      return;
    case 'move': {
      if (sameSegments(compiled.fromSegments, compiled.pathSegments)) {
        // A move onto itself changes nothing, but "from" must still exist (RFC 6902 4.4).
        valueAt(state.root, compiled, 'from', compiled.fromSegments);
        return;
      }
      // fromSegments is non-empty here: "" is a proper prefix of every other path, which
      // compileOperation rejects. The moved value keeps its ownership: it leaves one place and
      // lands in exactly one other.
      const value = removeAt(state, compiled, 'from', compiled.fromSegments);
      addAt(state, compiled, compiled.pathSegments, value);
      return;
    }
    case 'copy': {
      // Decision: copy shares the value instead of deep-cloning it (O(1) instead of O(size)).
      // Sharing is safe because this function only writes into containers it owns, and `disown`
      // makes sure no owned container ends up at two places; values at two places are copied on
      // the next write under either of them, so later ops cannot change both through one path.
      const value = valueAt(state.root, compiled, 'from', compiled.fromSegments);
      disown(state, value);
      addAt(state, compiled, compiled.pathSegments, value);
      return;
    }
    case 'test': {
      const actual = valueAt(state.root, compiled, 'path', compiled.pathSegments);
      if (!jsonEqual(actual, compiled.value)) {
        throw new DeltacastError(
          codes.PATCH_TEST_FAILED,
          `${operationLabel(compiled.index, 'test')}: value at path "${compiled.path}" is not equal ` +
            `to the expected value (found ${preview(actual)}, expected ${preview(compiled.value)})`,
          detailsOf(compiled),
        );
      }
      return;
    }
    default:
      throw new Error(`unreachable: operation ${compiled.name}`);
  }
}

/**
 * Applies RFC 6902 operations to `doc` and returns the result. `doc` is never modified; the result
 * shares every subtree the patch did not touch with `doc` (an empty or test-only patch returns `doc`
 * itself) and holds the ops' `value`s as given, without cloning them. Treat the result as
 * immutable.
 *
 * Atomic: if any operation fails, throws DeltacastError (details: index, op, path, and from for
 * move/copy) and nothing is returned. The whole patch is validated before anything is applied.
 */
function applyPatch(doc, ops) {
  const compiled = compileOperations(ops);
  const state = { root: doc, owned: new Set() };
  for (let i = 0; i < compiled.length; i++) applyOperation(state, compiled[i]);
  return state.root;
}

/**
 * JSON equality: numbers by value, objects by their own enumerable keys regardless of order, arrays
 * element by element. Arrays never equal plain objects; prototypes are otherwise ignored.
 * Iterative, so deep documents cannot overflow the stack.
 */
function jsonEqual(a, b) {
  const stack = [a, b];
  while (stack.length > 0) {
    const right = stack.pop();
    const left = stack.pop();
    if (left === right) continue;
    if (!isContainer(left) || !isContainer(right)) return false;
    const leftIsArray = Array.isArray(left);
    if (leftIsArray !== Array.isArray(right)) return false;
    if (leftIsArray) {
      if (left.length !== right.length) return false;
      for (let i = 0; i < left.length; i++) stack.push(left[i], right[i]);
    } else {
      const keys = Object.keys(left);
      if (keys.length !== Object.keys(right).length) return false;
      for (const key of keys) {
        if (!hasOwn(right, key)) return false;
        stack.push(left[key], right[key]);
      }
    }
  }
  return true;
}

module.exports = { applyPatch, jsonEqual, validateOperations, checkOperationValues, escapeSegment };
