'use strict';
// Publishing immutable states by identity.
//
// An immutable state (Immer, Redux Toolkit, Zustand, React state) is a new
// root whose unchanged rows are the very objects published last time. For
// such a value hub.publish() serializes only the rows it has not seen: the
// hub keeps, per topic, the last published root array and each row's JSON
// text, and sends the core either
//   - a `patch` when the core is known to hold exactly the last text (its
//     answer came back, nothing else touched the topic since, it cannot have
//     expired): `replace` for each row whose text changed, `remove` and `add`
//     for rows gone and new (rows matched by identity, a moved row is both),
//     as long as they are at most half the rows and limits.maxPatchOps, or
//   - the full text, joined from the rows' texts (cached or new).
// Other shapes (a root object, say { ids, entities }) go as full text built
// from the texts of the rows found inside (containers whose first members
// are objects are opened, two levels deep; anything else is a row).
// Either way the core stores the very text JSON.stringify(value) would give
// (its patch applier writes strings and numbers as JSON.stringify does), and
// makes the diff and the frames from it as for any publish: the result is
// byte for byte the old one (test/js/hub.identity.test.js). A patch the core
// refuses (the topic was evicted meanwhile, say) is sent again as full text
// under the same request id by the hub, answers after it held back meanwhile.
//
// One version per publish: publishes of a topic within one turn are not
// merged (that would drop versions, and frames of paced lanes carry them);
// while the previous one is unanswered, the next goes as full text, joined
// from cached row texts. (Coalescing, pacing.coalesce, is the opt-in that
// merges them: lib/hub.js holds the value until the lane's flush asks for it,
// and prepares it here once.)
//
// A row's text is reused only if the row is known not to have changed since
// it was serialized: it is deeply frozen (checked: every object in it frozen,
// plain, without accessors or toJSON; Immer and Redux Toolkit deep-freeze
// their states), or the caller published with { immutable: true } (its
// promise that objects it published are never mutated). Anything else is
// serialized as before, so a row mutated in place is always seen.
//
// What is kept: per topic the rows of the last root array (which the caller
// holds anyway; in an ordinary array of the hub's: see elementsOf) and their
// texts, at most MAX_TOPICS topics and MAX_CHARS characters of text (nor
// more than the hub's memory budget), least recently published
// dropped first, and topics idle longer than the shortest TTL dropped at the
// next publish; plus WeakMaps from row objects to their texts, which live
// only as long as the rows. hub.delete, any other change to the topic and
// close drop a topic's entry.

// The topics and the text kept at most; beyond, least recently published first.
const MAX_TOPICS = 65536;
const MAX_CHARS = 256 * 1024 * 1024;
// A patch is sent when at most this share of the rows changed (else the full text).
const PATCH_SHARE = 0.5;
// Nesting checked by deepFrozen; deeper rows are serialized every time.
const MAX_CHECK_DEPTH = 64;

// How a row's text may be reused when the same object comes again.
const REUSE_NEVER = 0;
const REUSE_FROZEN = 1; // deeply frozen: always
const REUSE_TRUSTED = 2; // published with { immutable: true }: by such publishes only

const EMPTY = Object.freeze([]);
// How far ahead a row is looked for when rows were inserted or removed.
const LOOKAHEAD = 8;

const { isProxy } = require('node:util').types;
const { escapeSegment } = require('./apply_patch');

const arrayValues = Array.prototype[Symbol.iterator];
const ArrayIteratorPrototype = Object.getPrototypeOf([][Symbol.iterator]());
const arrayIteratorNext = ArrayIteratorPrototype.next;

/**
 * The elements of a plain array, as a new ordinary array (holes as
 * undefined, which JSON.stringify writes as null too). Node 20's V8 reads
 * the elements of a frozen array (Immer and Redux Toolkit freeze theirs) about
 * five times slower than an ordinary array's in optimized code, and slice()
 * copies them slowly too; a spread copies them in one builtin (measured here:
 * 0.5 µs for 1,000 elements, where one pass of reads took 10 µs). When
 * the array iterator is not the built-in one (a spread would run user code), a loop;
 * for a proxy too (its get trap may answer the check and the spread differently).
 */
function elementsOf(array) {
  if (!isProxy(array) && array[Symbol.iterator] === arrayValues && ArrayIteratorPrototype.next === arrayIteratorNext) return [...array];
  const n = array.length;
  const out = new Array(n);
  for (let i = 0; i < n; i++) out[i] = array[i];
  return out;
}

/** k in 1..LOOKAHEAD when list[from + k] is `row` (within `end`), else 0. */
function distance(list, from, end, row) {
  const last = Math.min(end - 1, from + LOOKAHEAD);
  for (let k = from + 1; k <= last; k++) if (list[k] === row) return k - from;
  return 0;
}

/**
 * Whether rows changed in place look shifted (an insertion and a removal, or
 * a move, in an array of the same length): a changed row's text is the very
 * string of a neighbour's previous text. `changed`: the indices whose text
 * changed, ascending; `olds`: their previous texts. Then the identity walk (#ops) makes
 * fewer ops than a replace of every shifted row.
 */
function shifted(changed, olds, texts) {
  const last = texts.length - 1;
  // The previous text of row j: olds[k] when j is changed[k], else its text now.
  const previous = (j, k) => (k >= 0 && k < changed.length && changed[k] === j ? olds[k] : texts[j]);
  for (let k = 0; k < changed.length; k++) {
    const i = changed[k];
    const text = texts[i];
    if (text === null) continue; // patched member by member: checked by identity to be no neighbour (#memberOps)
    if ((i > 0 && text === previous(i - 1, k - 1)) || (i < last && text === previous(i + 1, k + 1))) return true;
  }
  return false;
}

/** The texts before this publish, from the texts now and the previous texts `olds` of the rows at `changed`. */
function previousTexts(texts, changed, olds) {
  const out = texts.slice();
  for (let k = 0; k < changed.length; k++) out[changed[k]] = olds[k];
  return out;
}

/**
 * The ops of the rows at `changed`: a replace of the row (its new text in
 * `texts`), or the row's member ops (`memberOps[k]`, each op led by a comma)
 * where #memberOps made them.
 */
function replaceOps(changed, texts, memberOps) {
  let ops = '';
  for (let k = 0; k < changed.length; k++) {
    const i = changed[k];
    const members = memberOps === null ? undefined : memberOps[k];
    ops += members !== undefined ? members : ',{"op":"replace","path":"/' + i + '","value":' + texts[i] + '}';
  }
  return '[' + ops.slice(1) + ']';
}

/**
 * Fills in the texts a publish left to be made when needed (null: rows
 * patched member by member, deeply frozen, so their text made now is the one
 * the core holds). `rows[i]` is the row of `texts[i]`.
 */
function fillTexts(rows, texts) {
  for (let i = 0; i < texts.length; i++) if (texts[i] === null) texts[i] = JSON.stringify(rows[i]);
}

// A topic whose rows were mostly not reusable goes the old way this many publishes.
const OPAQUE_SKIP = 16;
// Object keys kept quoted (then the cache starts afresh).
const MAX_QUOTES = 65536;
// Objects with more keys are serialized whole, not opened (see #containerText).
const MAX_OPENED_KEYS = 1000;
// How deep below the root containers of rows are looked into (other shapes than a root array).
const MAX_OPENED = 2;

/** Whether the first two members (first one for an array) are objects: rows, as in { entities: { a: {...}, b: {...} } }. */
function holdsRows(members, isArray) {
  const first = members[0];
  if (typeof first !== 'object' || first === null) return false;
  if (isArray && members.length === 1) return true;
  const second = members[1];
  return typeof second === 'object' && second !== null;
}

/** JSON.stringify of a plain object (it has no toJSON of its own), or BAIL. */
function wholeText(value) {
  try {
    return JSON.stringify(value);
  } catch {
    return BAIL;
  }
}

/** Not a value the identity path takes as it is (the caller serializes it the old way). */
const BAIL = Symbol('bail');

const verified = new WeakSet(); // objects found deeply frozen, plain, without accessors
const NOTHING = []; // holdable without a previous value (not frozen: the same elements kind as a board)
const holdableData = new WeakSet(); // objects found frozen and plain all through by frozenData (members read)

/** `map`'s text for `key`, made by `make()` the first time; at most MAX_QUOTES kept (then it starts afresh). */
function cached(map, key, make) {
  let text = map.get(key);
  if (text === undefined) {
    if (map.size >= MAX_QUOTES) map.clear();
    text = make();
    map.set(key, text);
  }
  return text;
}

/** A member JSON.stringify writes as a value in an object (not left out, not a BigInt). */
function writable(value) {
  const type = typeof value;
  return value !== undefined && type !== 'function' && type !== 'symbol' && type !== 'bigint';
}

/** A plain object or array (what JSON.stringify writes the same alone or inside a parent). */
function isPlain(value) {
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null && !(proto === Array.prototype && Array.isArray(value))) return false;
  return !('toJSON' in value);
}

/**
 * Whether `value` (a plain object or array) and everything in it is frozen,
 * plain and made of data properties only: its JSON text cannot change.
 */
function deepFrozen(value, depth) {
  if (verified.has(value)) return true;
  if (depth > MAX_CHECK_DEPTH || !Object.isFrozen(value)) return false;
  // Enumerable string keys are all JSON.stringify reads (Object.keys: a
  // quarter of the cost of getOwnPropertyDescriptors here).
  const keys = Object.keys(value);
  for (let i = 0; i < keys.length; i++) {
    const descriptor = Object.getOwnPropertyDescriptor(value, keys[i]);
    if (descriptor.get !== undefined || descriptor.set !== undefined) return false;
    const member = descriptor.value;
    if (typeof member === 'object' && member !== null && !(isPlain(member) && deepFrozen(member, depth + 1))) return false;
  }
  // A row (depth 0) is remembered with its text (#frozenTexts), and not met
  // here again; what is inside it may be shared with other rows.
  if (depth > 0) verified.add(value);
  return true;
}

class Entry {
  topic;
  rows = null; // the elements of the root array last published (an ordinary array of ours)
  texts = null; // the JSON text of each of its rows; null: not made yet (fillTexts)
  reuse = null; // Uint8Array: REUSE_* of each row
  chars = 0; // the length of the full text (a row patched member by member counted at its previous length)
  confirmed = false; // the core holds exactly this text (answered, nothing else on the topic since)
  request = 0; // the request id of the last publish, while unanswered
  patched = false; // that publish went as a patch
  unchanged = false; // a patch that changes nothing (a test of a row)
  changeId = ''; // its options, for sending it again as full text
  lane = 0;
  at = 0; // when it was published (hub clock, ms)
  evictions = 0; // the core's eviction count when it was sent

  constructor(topic) {
    this.topic = topic;
  }

  fullText() {
    fillTexts(this.rows, this.texts);
    return '[' + this.texts.join(',') + ']';
  }
}

class IdentityCache {
  #topics = new Map(); // topic -> Entry, least recently published first
  #pending = new Map(); // request id -> Entry
  #frozenTexts = new WeakMap(); // deeply frozen row -> its text
  #trustedTexts = new WeakMap(); // row published with { immutable: true } -> its text
  #chars = 0;
  #maxPatchOps;
  #maxChars;
  #minTtl; // the shortest TTL (ms) of any rule, 0: none
  #staged = null; // the entry prepare() made, installed by sent()
  /** Whether the text prepare() returned last is a patch. */
  patched = false;
  /** Publishes answered with an error and sent again as full text (the core counted them as rejected). */
  resent = 0;

  #evictions; // () -> topics the core's memory budget evicted so far

  /** `evictions`: reads the core's eviction count (NativeHub.evictions); none if omitted. */
  constructor(options, evictions = () => 0) {
    this.#evictions = evictions;
    this.#maxPatchOps = options.limits.maxPatchOps;
    // The core holds no more than its budget: text beyond it here would be of evicted topics.
    this.#maxChars = options.memory.maxBytes > 0 ? Math.min(options.memory.maxBytes, MAX_CHARS) : MAX_CHARS;
    this.#minTtl = options.ttl.reduce((min, rule) => (min === 0 ? rule.ms : Math.min(min, rule.ms)), 0);
    // A topic last published this long ago may have expired by the time a
    // patch reaches the core: it goes in full. The manual clock moves only
    // with the requests, so the core's time is known exactly; the real
    // clock leaves half the TTL for the hand-over.
    this.#fresh = options.clock === 'manual' ? this.#minTtl : this.#minTtl / 2;
  }

  #fresh;

  /**
   * The payload for publishing `value` on `topic`: a patch or the full text
   * (`patched` says which), or undefined when the value is not a plain
   * object or array of plain rows (the caller serializes it as before). `trusted`: the caller
   * published with { immutable: true }. `now`: the hub clock (ms); `at`: when
   * the value was published (a value held by coalescing: earlier; the core
   * counts the topic's TTL from then).
   */
  prepare(topic, value, trusted, now, at = now) {
    // Reading the value can run the caller's code (a getter, a toJSON inside a
    // row, a proxy's traps); a publish made from there goes the old way, so the
    // entry this prepare is redoing in place is left to it alone (the publish
    // forgets the topic: this one then goes as full text).
    if (this.#preparing) {
      this.patched = false;
      return undefined;
    }
    this.#preparing = true;
    try {
      return this.#prepare(topic, value, trusted, now, at);
    } finally {
      this.#preparing = false;
    }
  }

  #preparing = false;

  #prepare(topic, value, trusted, now, at) {
    this.#staged = null;
    this.#stagedUnchanged = false;
    this.patched = false;
    if (!isPlain(value)) return undefined;
    const skip = this.#opaque.get(topic);
    if (skip !== undefined) {
      // Its rows could not be reused lately: JSON.stringify is cheaper; try again now and then.
      if (skip > 1) this.#opaque.set(topic, skip - 1);
      else this.#opaque.delete(topic);
      return undefined;
    }
    const before = this.#stringified;
    if (!Array.isArray(value)) {
      // Other shapes: the full text, built from the texts of the rows found inside.
      const text = this.#containerText(value, trusted, 0);
      this.#judge(topic, this.#stringified - before, this.#opened);
      return text === BAIL ? undefined : text;
    }
    const rows = elementsOf(value);
    const n = rows.length;
    const entry = this.#topics.get(topic);
    const prev = entry?.rows ?? EMPTY;
    const prevTexts = entry?.texts ?? EMPTY;
    const prevReuse = entry?.reuse ?? EMPTY;
    const m = prev.length;
    let texts;
    let reuse;
    let chars;
    let changed = null; // same length: the indices whose text changed
    let olds = null; // and their previous texts (null: not made)
    let memberOps = null; // and their member ops, where made (#memberOps)
    let opCount = 0; // the ops of the rows at `changed`
    if (m === n && entry !== undefined) {
      // The common case, a few rows replaced: the rows not known unchanged
      // are redone in the entry's own arrays (no copy of a thousand texts).
      // The entry is never used again: this publish replaces it (sent(), after
      // #queueChange's forget(); the hub's catch forgets it too), and one that
      // bails out forgets it here.
      texts = prevTexts;
      reuse = prevReuse;
      chars = entry.chars;
      changed = [];
      olds = [];
      for (let i = 0; i < n; i++) {
        const row = rows[i];
        const old = prev[i];
        if (row === old && (reuse[i] === REUSE_FROZEN || (trusted && reuse[i] === REUSE_TRUSTED))) continue;
        // A deeply frozen row replaced by a new one that differs in a few
        // members (a price tick): those members' ops, the row's text made
        // only when a full text needs it. Not for a neighbour's row: a shift.
        if (reuse[i] === REUSE_FROZEN && row !== old && (i === 0 || row !== prev[i - 1]) && (i === n - 1 || row !== prev[i + 1])) {
          const ops = this.#memberOps(old, row, i);
          if (ops !== undefined) {
            if (ops.length > 0) {
              memberOps ??= [];
              memberOps[changed.length] = ops;
              opCount += this.#memberOpCount;
              olds.push(texts[i]);
              texts[i] = null;
              changed.push(i);
            } else if (texts[i] !== null) {
              this.#frozenTexts.set(row, texts[i]); // the same text
            }
            continue; // reuse[i] stays REUSE_FROZEN
          }
        }
        const text = this.#rowText(row, trusted);
        if (text === BAIL) {
          this.forget(topic);
          return undefined;
        }
        reuse[i] = this.#reuseOf;
        if (text !== texts[i]) {
          chars += texts[i] === null ? 0 : text.length - texts[i].length;
          olds.push(texts[i]);
          texts[i] = text;
          changed.push(i);
          opCount += 1;
        }
      }
    } else {
      const shift = m - n; // a row kept after insertions or removals is found at index + shift
      texts = new Array(n);
      reuse = new Uint8Array(n);
      chars = n + 1;
      for (let i = 0; i < n; i++) {
        const row = rows[i];
        // The same object at the same index, or at the same distance from the end.
        const at = row === prev[i] ? i : row === prev[i + shift] ? i + shift : -1;
        if (at >= 0 && (prevReuse[at] === REUSE_FROZEN || (trusted && prevReuse[at] === REUSE_TRUSTED))) {
          texts[i] = prevTexts[at] ?? (prevTexts[at] = JSON.stringify(row)); // (not made yet: row is prev[at])
          reuse[i] = prevReuse[at];
        } else {
          const text = this.#rowText(row, trusted);
          if (text === BAIL) return undefined;
          texts[i] = text;
          reuse[i] = this.#reuseOf;
        }
        chars += texts[i].length;
      }
    }
    if (entry !== undefined) this.#judge(topic, this.#stringified - before, n);
    const next = new Entry(topic);
    next.rows = rows;
    next.texts = texts;
    next.reuse = reuse;
    this.#staged = next;
    this.#stagedChars = chars;
    this.#stagedAt = at;
    // A patch needs the core to hold the text: not after an eviction since
    // the last publish was sent (the core does not say which topics it
    // evicted; any eviction sends the next publish of each topic in full).
    const evictions = this.#evictions(); // (read once per publish: an N-API call)
    this.#stagedEvictions = evictions;
    if (
      entry !== undefined &&
      entry.confirmed &&
      entry.request === 0 &&
      (this.#minTtl === 0 || now - entry.at < this.#fresh) &&
      entry.evictions === evictions
    ) {
      const replaced =
        changed !== null && opCount <= this.#maxPatchOps && changed.length <= n * PATCH_SHARE && !shifted(changed, olds, texts);
      if (replaced) {
        this.patched = true;
        return changed.length === 0 ? this.#unchanged(rows, texts) : replaceOps(changed, texts, memberOps);
      }
      let before = prevTexts;
      if (changed !== null) {
        fillTexts(rows, texts);
        for (let k = 0; k < olds.length; k++) olds[k] ??= JSON.stringify(prev[changed[k]]);
        before = previousTexts(texts, changed, olds);
      }
      fillTexts(prev, before);
      const ops = this.#ops(prev, before, rows, texts);
      if (ops !== undefined) {
        this.patched = true;
        return ops === '[]' ? this.#unchanged(rows, texts) : ops;
      }
    }
    return next.fullText();
  }

  /**
   * The RFC 6902 ops turning the array `prev` (rows' texts `prevTexts`) into
   * `next` (`texts`), rows matched by identity: replace for a row whose text
   * changed, remove and add for rows gone and new (a moved row is both), or
   * undefined when they would be more than PATCH_SHARE of the rows or
   * maxPatchOps. Written as text; each op's path is an index into the array
   * as the ops before it left it.
   */
  #ops(prev, prevTexts, next, texts) {
    const m = prev.length;
    const n = next.length;
    const limit = Math.min(this.#maxPatchOps, Math.floor(Math.max(m, n) * PATCH_SHARE));
    let ops = '';
    let count = 0;
    let i = 0; // in prev
    let j = 0; // in next, and in the array being patched: its first j rows are next's
    while (i < m || j < n) {
      if (count > limit) return undefined;
      if (i < m && j < n && next[j] === prev[i]) {
        if (texts[j] !== prevTexts[i]) {
          ops += ',{"op":"replace","path":"/' + j + '","value":' + texts[j] + '}';
          count += 1;
        }
        i += 1;
        j += 1;
        continue;
      }
      // Rows removed before the next row (found a little further in prev), or
      // rows inserted before the previous row (found a little further in next).
      const removed = i < m && j < n ? distance(prev, i, m, next[j]) : j < n ? 0 : m - i;
      const inserted = i < m && j < n ? distance(next, j, n, prev[i]) : i < m ? 0 : n - j;
      if (removed > 0 && (inserted === 0 || removed <= inserted)) {
        for (let k = 0; k < removed; k++) ops += ',{"op":"remove","path":"/' + j + '"}';
        count += removed;
        i += removed;
      } else if (inserted > 0) {
        for (let k = 0; k < inserted && count <= limit; k++, j++, count++) {
          ops += ',{"op":"add","path":"/' + j + '","value":' + texts[j] + '}';
        }
      } else {
        // A different row in the same place.
        if (texts[j] !== prevTexts[i]) {
          ops += ',{"op":"replace","path":"/' + j + '","value":' + texts[j] + '}';
          count += 1;
        }
        i += 1;
        j += 1;
      }
    }
    if (count > limit) return undefined;
    return count === 0 ? '[]' : '[' + ops.slice(1) + ']';
  }

  #stagedChars = 0;
  #stagedAt = 0;
  #stagedEvictions = 0; // the core's eviction count prepare() read
  #stagedUnchanged = false; // the patch prepare() returned last changes nothing (#unchanged)

  /**
   * The patch of a publish that changes nothing: not an empty one, which the
   * core takes as a change that made nothing even when the topic is gone
   * (evicted, expired) and the value would make it anew, but a test of the
   * first row, which fails then (answered() sends the full text instead).
   */
  #unchanged(rows, texts) {
    this.#stagedUnchanged = true;
    if (rows.length === 0) return '[{"op":"test","path":"","value":[]}]';
    texts[0] ??= JSON.stringify(rows[0]);
    return '[{"op":"test","path":"/0","value":' + texts[0] + '}]';
  }

  #reuseOf = REUSE_NEVER;

  /** A row's JSON text (as an element of its array), or BAIL; sets #reuseOf. */
  /**
   * The JSON text of a plain object or array that is not a row, built from
   * its members' texts (as JSON.stringify writes them: members undefined,
   * functions or symbols left out of objects, null in arrays), or BAIL.
   */
  #containerText(value, trusted, depth) {
    if (depth === 0) this.#opened = 0;
    if (Array.isArray(value)) {
      if (depth > 0 && !holdsRows(value, true)) return this.#rowText(value, trusted);
      const parts = new Array(value.length);
      for (let i = 0; i < value.length; i++) {
        const text = this.#memberText(value[i], trusted, depth);
        if (text === BAIL) return BAIL;
        parts[i] = text;
      }
      return '[' + parts.join(',') + ']';
    }
    // Object.values reads members in Object.keys order, as JSON.stringify does
    // (and much faster than value[key] on an object of many keys).
    const keys = Object.keys(value);
    // Past about a thousand keys V8 keeps an object as a dictionary, where reading
    // it from JS costs more than JSON.stringify: serialized whole.
    if (depth > 0 && keys.length > MAX_OPENED_KEYS) {
      this.#stringified += OPAQUE_SKIP; // not cached either (checking it costs as much): the topic goes the old way a while
      return wholeText(value);
    }
    // A proxy's ownKeys trap may give another order each time: read by key.
    const members = isProxy(value) ? keys.map((key) => value[key]) : Object.values(value);
    if (members.length !== keys.length) return BAIL; // a getter changed the object meanwhile
    if (depth > 0 && !holdsRows(members, false)) return this.#rowText(value, trusted);
    const parts = [];
    for (let i = 0; i < keys.length; i++) {
      const member = members[i];
      if (member === undefined || typeof member === 'function' || typeof member === 'symbol') continue;
      const text = this.#memberText(member, trusted, depth);
      if (text === BAIL) return BAIL;
      const key = this.#quoted(keys[i]); // ',"key":'
      parts.push(parts.length === 0 ? key.slice(1) : key, text);
    }
    return '{' + parts.join('') + '}'; // join makes a flat string: encoding it needs no flattening
  }

  #opaque = new Map(); // topic -> publishes left to serialize the old way (its rows were not reusable)
  #stringified = 0; // rows serialized whole so far
  #opened = 0; // members met in the last containerText

  /** Most of the rows of this publish had to be serialized: the next OPAQUE_SKIP publishes of the topic go the old way. */
  #judge(topic, stringified, rows) {
    if ((rows < 8 && stringified < OPAQUE_SKIP) || stringified * 2 <= rows) return;
    if (this.#opaque.size >= MAX_TOPICS) this.#opaque.clear();
    this.#opaque.set(topic, OPAQUE_SKIP);
  }

  #memberOpCount = 0; // the ops #memberOps made last
  #pointers = new Map(); // key -> '/' + the key as an RFC 6901 reference token, JSON-escaped (no quotes)

  /**
   * A row `old` (deeply frozen, its text known) replaced by `row` at `index`:
   * the ops replacing the members that differ (each led by a comma; '' when
   * none), if `row` is a deeply frozen plain object with the same keys in
   * the same order, and they are at most half its members; else undefined
   * (the row is replaced whole). Replacing a member keeps its place, so the
   * core's text stays what JSON.stringify writes (its patch applier writes
   * values as JSON.stringify does).
   */
  #memberOps(old, row, index) {
    if (typeof row !== 'object' || row === null || Array.isArray(row) || Array.isArray(old) || !isPlain(row)) return undefined;
    if (typeof old !== 'object' || old === null || !deepFrozen(row, 0)) return undefined;
    // A proxy's ownKeys trap may give Object.keys and Object.values different orders: replaced whole.
    if (isProxy(row) || isProxy(old)) return undefined;
    const keys = Object.keys(row);
    const oldKeys = Object.keys(old);
    if (keys.length !== oldKeys.length || keys.length < 2) return undefined;
    // Data properties only (deepFrozen): reading them runs no code.
    const values = Object.values(row);
    const oldValues = Object.values(old);
    let ops = '';
    let count = 0;
    for (let k = 0; k < keys.length; k++) {
      if (keys[k] !== oldKeys[k]) return undefined;
      const value = values[k];
      const was = oldValues[k];
      if (value === was) continue;
      // Members JSON.stringify leaves out (or cannot write) change the row's shape: replaced whole.
      if (!writable(value) || !writable(was) || (count += 1) * 2 > keys.length) return undefined;
      ops += ',{"op":"replace","path":"/' + index + this.#pointer(keys[k]) + '","value":' + JSON.stringify(value) + '}';
    }
    this.#memberOpCount = count;
    return ops;
  }

  #pointer(key) {
    return cached(this.#pointers, key, () => JSON.stringify('/' + escapeSegment(key)).slice(1, -1));
  }

  #quotes = new Map(); // key -> ',' + JSON.stringify(key) + ':', for objects of rows keyed by id

  #quoted(key) {
    return cached(this.#quotes, key, () => ',' + JSON.stringify(key) + ':');
  }

  /** A member's text: a container of rows (an array of objects, an object of objects) is opened, anything else is a row. */
  #memberText(member, trusted, depth) {
    this.#opened += 1;
    if (typeof member === 'object' && member !== null) {
      const known = this.#frozenTexts.get(member) ?? (trusted ? this.#trustedTexts.get(member) : undefined);
      if (known !== undefined) return known;
      if (depth < MAX_OPENED && isPlain(member)) return this.#containerText(member, trusted, depth + 1); // rows inside, or a row
    }
    return this.#rowText(member, trusted);
  }

  #rowText(row, trusted) {
    this.#reuseOf = REUSE_NEVER;
    if (typeof row !== 'object' || row === null) {
      // Scalars: as JSON.stringify writes them in an array (undefined, functions, symbols: null).
      if (typeof row === 'bigint') return BAIL; // a TypeError, or a BigInt.prototype.toJSON: the old path
      this.#reuseOf = REUSE_FROZEN;
      return JSON.stringify(row) ?? 'null';
    }
    if (!isPlain(row)) return BAIL; // toJSON (its key argument differs alone), boxed values, class instances
    const frozen = this.#frozenTexts.get(row);
    if (frozen !== undefined) {
      this.#reuseOf = REUSE_FROZEN;
      return frozen;
    }
    if (trusted) {
      const known = this.#trustedTexts.get(row);
      if (known !== undefined) {
        this.#reuseOf = REUSE_TRUSTED;
        return known;
      }
    }
    let text;
    try {
      text = JSON.stringify(row);
      this.#stringified += 1;
    } catch {
      return BAIL; // a cycle, a BigInt: the old path throws its usual error
    }
    if (deepFrozen(row, 0)) {
      this.#frozenTexts.set(row, text);
      this.#reuseOf = REUSE_FROZEN;
    } else if (trusted) {
      this.#trustedTexts.set(row, text);
      this.#reuseOf = REUSE_TRUSTED;
    }
    return text;
  }

  /** The publish prepare() was made for was queued as request `id` (with its options). */
  sent(id, changeId, lane) {
    const entry = this.#staged;
    this.#staged = null;
    if (entry === null) return;
    this.forget(entry.topic);
    entry.chars = this.#stagedChars;
    entry.at = this.#stagedAt;
    entry.evictions = this.#stagedEvictions; // an eviction after that read may have taken the topic
    entry.request = id;
    entry.confirmed = false;
    entry.patched = this.patched;
    entry.unchanged = this.patched && this.#stagedUnchanged;
    entry.changeId = changeId;
    entry.lane = lane;
    this.#topics.set(entry.topic, entry);
    this.#pending.set(id, entry);
    this.#chars += entry.chars;
    this.#trim(entry.at);
  }

  /** The rows of the root array last published for `topic` by identity, if any (holdable's `previous`). */
  lastRows(topic) {
    return this.#topics.get(topic)?.rows;
  }

  /** Something else changed the topic (or it is gone): publish its next value in full. */
  forget(topic) {
    const entry = this.#topics.get(topic);
    if (entry === undefined) return;
    this.#topics.delete(topic);
    this.#chars -= entry.chars;
    if (entry.request !== 0) this.#pending.delete(entry.request);
    entry.request = 0;
    entry.confirmed = false;
  }

  #trim(now) {
    for (const entry of this.#topics.values()) {
      const idle = this.#minTtl > 0 && now - entry.at >= this.#minTtl; // the core may have dropped it: start afresh
      if (!idle && this.#topics.size <= MAX_TOPICS && this.#chars <= this.#maxChars) return;
      this.forget(entry.topic);
    }
  }

  /**
   * Request `id` was answered. A publish sent as a patch and refused (the
   * topic expired or was evicted meanwhile, or a limit was met applying it)
   * returns its full text: the caller sends it again under the same id,
   * unless the topic was touched since (then undefined: the error stands).
   */
  answered(id, flags, error, closing) {
    const entry = this.#pending.get(id);
    if (entry === undefined) return undefined;
    this.#pending.delete(id);
    entry.request = 0;
    if (error === null) {
      // A change that made no version leaves the core's text as it was: ours
      // only when this publish changed nothing. (A value equal to the stored
      // one but for the order of an object's keys is no change: the core
      // keeps its text, and a patch built on ours would make another.) A
      // duplicate id changed nothing either.
      entry.confirmed = (flags & 2) === 0 && ((flags & 1) !== 0 || entry.unchanged);
      return undefined;
    }
    entry.confirmed = false;
    if (!entry.patched || closing || this.#topics.get(entry.topic) !== entry) return undefined;
    entry.patched = false;
    entry.unchanged = false;
    entry.request = id;
    this.#pending.set(id, entry);
    this.resent += 1;
    return entry.fullText();
  }

  /** The entry sent again by answered(): its topic and options. */
  resend(id) {
    return this.#pending.get(id);
  }

  /** Drops everything (the hub is closing). */
  clear() {
    this.#topics.clear();
    this.#opaque.clear();
    this.#pending.clear();
    this.#chars = 0;
    this.#staged = null;
  }
}

/**
 * How publish(value, opts) serializes: 2 by identity, trusting the caller
 * ({ immutable: true }); 1 by identity, reusing deeply frozen rows only (a
 * frozen root); 0 as JSON.stringify. A non-boolean `immutable` is a
 * DELTACAST_INVALID_ARGUMENT (thrown by the caller's check).
 */
function identityMode(value, opts) {
  const immutable = opts === undefined || opts === null ? undefined : opts.immutable;
  if (immutable === true) return 2;
  if (immutable !== undefined && immutable !== false) return -1;
  try {
    return typeof value === 'object' && value !== null && Object.isFrozen(value) ? 1 : 0;
  } catch {
    return 0; // a revoked proxy: JSON.stringify says so, as before
  }
}

/**
 * Whether `value` and everything in it is frozen and plain (no toJSON),
 * reading members as JSON.stringify will (an accessor is read, not refused:
 * unlike deepFrozen, whose objects the identity path reuses texts of).
 * Remembered per object.
 */
function frozenData(value, depth) {
  if (holdableData.has(value) || verified.has(value)) return true;
  if (depth > MAX_CHECK_DEPTH || !Object.isFrozen(value) || !isPlain(value)) return false;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const member = value[i];
      if (typeof member === 'object' && member !== null && !frozenData(member, depth + 1)) return false;
    }
  } else if (!membersFrozenData(value, depth + 1)) {
    return false;
  }
  holdableData.add(value);
  return true;
}

/** Whether every object member of the plain object `value` is frozenData (at `depth`). */
function membersFrozenData(value, depth) {
  for (const key in value) {
    const member = value[key];
    if (typeof member === 'object' && member !== null && !frozenData(member, depth)) return false;
  }
  return true;
}

/** `list[k]`, or undefined past either end (a read out of bounds is slow in V8). */
function inBounds(list, k) {
  return k >= 0 && k < list.length ? list[k] : undefined;
}

/**
 * Whether a frozen `value` (identityMode 1) may be held by coalescing
 * (pacing.coalesce) and serialized at its flush with the text it has now: a
 * plain object or array (no toJSON) whose members are primitives or frozen
 * plain data all through (frozenData). A root frozen over mutable rows is
 * not: a row changed in place after the publish must not reach the flush.
 * `previous`: the value held for the topic before (checked then), whose
 * members at the same place are not checked again; others found before are
 * remembered (a WeakSet lookup). Members are read, not their descriptors
 * (an accessor is read again at the flush: README "Coalescing").
 */
function holdable(value, previous) {
  try {
    if (!isPlain(value)) return false;
    if (Array.isArray(value)) {
      // Rows are matched to `previous` by place, following one row inserted
      // or removed at a time (the place moves by one when the neighbour matches).
      // Ordinary arrays (elementsOf: a frozen array's elements read slowly),
      // and reads in bounds (one past them is slow in V8).
      const rows = elementsOf(value);
      const before = Array.isArray(previous) && previous.length > 0 ? elementsOf(previous) : NOTHING;
      let shift = 0;
      for (let i = 0; i < rows.length; i++) {
        const member = rows[i];
        if (typeof member !== 'object' || member === null) continue;
        const j = i + shift;
        if (member === inBounds(before, j)) continue;
        if (member === inBounds(before, j + 1)) {
          shift += 1;
          continue;
        }
        if (member === inBounds(before, j - 1)) {
          shift -= 1;
          continue;
        }
        if (!frozenData(member, 1)) return false;
      }
      return true;
    }
    return membersFrozenData(value, 1);
  } catch {
    return false; // a throwing getter or proxy: serialized at once, which reports it
  }
}

module.exports = { IdentityCache, identityMode, holdable };
