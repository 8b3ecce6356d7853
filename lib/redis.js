'use strict';
// deltacast/redis: hub processes on one Redis act as one hub.
//
// Redis holds every topic: its epoch, its version, its state, and a capped
// stream of its last patches. Each change is one Lua script run (CHANGE
// below): idempotency key, epoch check or creation, base version check, next
// version, state, stream entry, TTLs and a notification carrying the patch,
// all at once. A node's native store is a cache of Redis: a node subscribes
// to the notifications of the topics its clients follow, applies each patch
// at its version (TopicStore::replicate), and repairs a gap from the stream
// or the state. See docs/architecture.md ("Scale-out on Redis").
//
// Built on node-redis (the `redis` package, an optional peer dependency): the
// client the Redis maintainers develop, with RESP3, Sentinel, Cluster and
// sharded pub/sub; ioredis's maintainers point new projects to it.

const { DeltacastError, codes } = require('./errors');
const { diffJson, diffJsonAsync } = require('./index');
const { keySlot } = require('./key_slot');

// The publishing node diffs the new text against its copy. Texts of this many
// characters together (a diff of about 0.6 ms and up) are diffed on libuv's
// thread pool, off the event loop; below it the hop there and back costs
// more than it saves (measured: a serial publisher of a 56 KB board lost a
// third of its updates per second to it on a 2-core machine).
const POOL_DIFF_CHARS = 128 * 1024;
const diffText = (a, b, options) => (a.length + b.length >= POOL_DIFF_CHARS ? diffJsonAsync(a, b, options) : diffJson(a, b, options));

const KEY_STATE = 's'; // hash: e, v (epoch, version), s at sv (a state and its version), pb, ss, b (below)
const KEY_STREAM = 'x'; // stream: id `<version>-0`, field p (the patch from version - 1)

// A change sends the patch, not the document: Redis keeps the state of an
// earlier version `sv` and every patch since (the current value is that state
// with those patches applied). When the patches since `sv` reach
// COMPACT_SHARE (9/10) of a stream cap (streamMaxCount patches or
// streamMaxBytes bytes), the node that made the newest version sends its
// state (COMPACT), compressed: the state is sent once per stream window, the
// least that keeps every version the stream covers reachable from it. Hash
// fields: pb bytes of the patches since sv, b bytes of the stream. A state
// field `s` starting with the byte COMPRESSED (never the first byte of JSON)
// is its Brotli compression after it, binary (what COMPACT stores); else
// JSON text (what a creation stores).
const COMPACT_SHARE = [9, 10];
const COMPRESSED = '~';
const MARK = Buffer.from(COMPRESSED);

// KEYS: state[, idempotency key] (the stream's key is the state's with x for s:
// same hash tag, same slot). ARGV: to change, one argument: the base (its
// epoch, then its version in base 36), a newline, the patch from it (one
// argument, short: fewer bytes per change); to create, '', the state, the new
// epoch. The engine's options
// are constants of its script (c), so that a change sends only its base and
// its patch. -> {'ok', epoch, version, compact (1: send the state)}
//    | {'dup', epoch, version} | {'stale', epoch ('' absent), version}
const CHANGE = (c) => `
local cur = redis.call('HMGET', KEYS[1], 'e', 'v', 'sv', 'pb', 'b')
if KEYS[2] and redis.call('EXISTS', KEYS[2]) == 1 then
  return {'dup', cur[1] or '', tonumber(cur[2] or '0')}
end
local stream = string.sub(KEYS[1], 1, -2) .. 'x'
local maxCount, maxBytes = ${c.streamMaxCount}, ${c.streamMaxBytes}
local channel = string.sub(KEYS[1], 1, -3)
local epoch, version, patch, compact = nil, nil, '', 0
if ARGV[1] == '' then
  if cur[1] then return {'stale', cur[1], tonumber(cur[2])} end
  epoch = ARGV[3]
  version = 1
  redis.call('DEL', stream)
  redis.call('HSET', KEYS[1], 'e', epoch, 'v', 1, 's', ARGV[2], 'sv', 1, 'pb', 0, 'b', 0)
else
  local cut = string.find(ARGV[1], '\\n', 1, true)
  if not cut or not cur[1] or string.sub(ARGV[1], 1, #cur[1]) ~= cur[1]
    or tonumber(string.sub(ARGV[1], #cur[1] + 1, cut - 1), 36) ~= tonumber(cur[2]) then
    return {'stale', cur[1] or '', tonumber(cur[2] or '0')}
  end
  epoch = cur[1]
  version = tonumber(cur[2]) + 1
  patch = string.sub(ARGV[1], cut + 1)
  local sv, pb, bytes = tonumber(cur[3]), tonumber(cur[4]) + #patch, tonumber(cur[5]) + #patch
  redis.call('XADD', stream, version .. '-0', 'p', patch)
  local len = redis.call('XLEN', stream)
  while len > 1 and (len > maxCount or bytes > maxBytes) do
    local first = redis.call('XRANGE', stream, '-', '+', 'COUNT', 1)[1]
    if tonumber(string.match(first[1], '^(%d+)')) > sv then break end
    bytes = bytes - #first[2][2]
    redis.call('XDEL', stream, first[1])
    len = len - 1
  end
  redis.call('HSET', KEYS[1], 'v', version, 'pb', pb, 'b', bytes)
  if (version - sv) * ${COMPACT_SHARE[1]} >= maxCount * ${COMPACT_SHARE[0]} or pb * ${COMPACT_SHARE[1]} >= maxBytes * ${COMPACT_SHARE[0]} then compact = 1 end
end
if ${c.ttlMs} > 0 then
  redis.call('PEXPIRE', KEYS[1], ${c.ttlMs})
  redis.call('PEXPIRE', stream, ${c.ttlMs})
end
if KEYS[2] then redis.call('SET', KEYS[2], version, 'PX', ${c.idTtlMs}) end
redis.call('${c.sharded ? 'SPUBLISH' : 'PUBLISH'}', channel, epoch .. '\\n' .. version .. '\\n' .. patch)
return {'ok', epoch, version, compact}
`;

// KEYS: state, stream. ARGV: epoch, version, the state at that version
// (COMPRESSED, then its Brotli compression: binary), "maxCount maxBytes".
// Stores it as the state (when newer than the one held) and trims the
// stream. -> 1 stored, 0 not
const COMPACT = `
local cur = redis.call('HMGET', KEYS[1], 'e', 'v', 'sv', 'b')
local version = tonumber(ARGV[2])
if cur[1] ~= ARGV[1] or version > tonumber(cur[2]) or version <= tonumber(cur[3]) then return 0 end
local pb = 0
for _, entry in ipairs(redis.call('XRANGE', KEYS[2], (version + 1) .. '-0', '+')) do pb = pb + #entry[2][2] end
local maxCount, maxBytes = string.match(ARGV[4], '(%d+) (%d+)')
maxCount, maxBytes = tonumber(maxCount), tonumber(maxBytes)
local bytes = tonumber(cur[4])
local len = redis.call('XLEN', KEYS[2])
while len > 1 and (len > maxCount or bytes > maxBytes) do
  local first = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)[1]
  if tonumber(string.match(first[1], '^(%d+)')) > version then break end
  bytes = bytes - #first[2][2]
  redis.call('XDEL', KEYS[2], first[1])
  len = len - 1
end
redis.call('HSET', KEYS[1], 's', ARGV[3], 'sv', version, 'pb', pb, 'b', bytes)
return 1
`;

// KEYS: state, stream. ARGV: from (0: none), count (patches of history)[,
// the epoch of the copy at `from`: with it, a copy that is already Redis's
// reads nothing, and one of another epoch reads the state]
// -> {} absent | {epoch, version, sv, state ('' when the patches since `from`
//    are enough), id1, patch1, ...}: the patches in order: with a state, the
//    last `count` up to sv (history) and every one after it
const READ = `
local cur = redis.call('HMGET', KEYS[1], 'e', 'v', 'sv')
if not cur[1] then return {} end
local version, sv = tonumber(cur[2]), tonumber(cur[3])
local from = tonumber(ARGV[1])
local out = {cur[1], version, sv}
if ARGV[3] and ARGV[3] ~= cur[1] then from = 0 end
if from > 0 and from == version and ARGV[3] then
  table.insert(out, '')
  return out
end
if from > 0 and from < version then
  local entries = redis.call('XRANGE', KEYS[2], (from + 1) .. '-0', version .. '-0')
  if #entries == version - from and entries[1][1] == (from + 1) .. '-0' then
    table.insert(out, '')
    for _, entry in ipairs(entries) do
      table.insert(out, entry[1])
      table.insert(out, entry[2][2])
    end
    return out
  end
end
table.insert(out, redis.call('HGET', KEYS[1], 's'))
local count = tonumber(ARGV[2])
if count > 0 then
  local entries = redis.call('XREVRANGE', KEYS[2], sv .. '-0', '-', 'COUNT', count)
  for i = #entries, 1, -1 do
    table.insert(out, entries[i][1])
    table.insert(out, entries[i][2][2])
  end
end
if version > sv then
  for _, entry in ipairs(redis.call('XRANGE', KEYS[2], (sv + 1) .. '-0', '+')) do
    table.insert(out, entry[1])
    table.insert(out, entry[2][2])
  end
end
return out
`;

// KEYS: state, stream. ARGV: channel, sharded -> 1 deleted, 0 none
const DELETE = `
local existed = redis.call('DEL', KEYS[1], KEYS[2])
if existed > 0 then
  redis.call(ARGV[2] == '1' and 'SPUBLISH' or 'PUBLISH', ARGV[1], '\\n0\\n')
end
return existed > 0 and 1 or 0
`;

const { createHash } = require('node:crypto');
const { promisify } = require('node:util');
const zlib = require('node:zlib');

// On the libuv pool: the event loop goes on meanwhile. Brotli at quality 6:
// a 56 KB board of 1,000 rows in 5.5 KB, in about 3 ms (deflate: 9 KB); sent
// binary (base64 would add a third).
const compress = promisify(zlib.brotliCompress);
const decompress = promisify(zlib.brotliDecompress);

/** A state as COMPACT stores it: the byte COMPRESSED, then its Brotli compression (binary). */
async function packState(text) {
  const params = { [zlib.constants.BROTLI_PARAM_QUALITY]: 6, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: Buffer.byteLength(text) };
  return Buffer.concat([MARK, await compress(text, { params })]);
}

/** A stored state (a Buffer) as JSON text: decompressed when COMPACT stored it. */
async function unpackState(stored) {
  if (stored[0] !== MARK[0]) return stored.toString('utf8');
  return (await decompress(stored.subarray(1))).toString('utf8');
}

// node-redis command options: bulk strings answered as Buffers
// (RESP_TYPES.BLOB_STRING is '$', 36), so that a binary state arrives intact
const BYTES = { typeMapping: { 36: Buffer } };

function invalid(message) {
  return new DeltacastError(codes.INVALID_ARGUMENT, message);
}

function unavailable(message, cause) {
  const error = new DeltacastError(codes.ENGINE_UNAVAILABLE, message);
  if (cause !== undefined) error.cause = cause;
  return error;
}

function integerOption(options, name, fallback, min) {
  const value = options[name] ?? fallback;
  if (!Number.isSafeInteger(value) || value < min) throw invalid(`redisEngine: ${name} must be an integer >= ${min}`);
  return value;
}

/** A fresh epoch: 12 hex digits, the first not 0 (what the core makes). */
function newEpoch() {
  const bytes = require('node:crypto').randomBytes(6);
  bytes[0] |= 0x10;
  return bytes.toString('hex');
}

const SUB_MESSAGE = /"t"\s*:\s*"(?:un)?sub"/;
const textDecoder = new TextDecoder();

class RedisEngine {
  #options;
  #client; // commands: the user's client, or one made from `url`
  #subscriber; // pub/sub: a duplicate of #client
  #owned; // #client was made here (and is closed here)
  #cluster;
  #sharded;
  #hub = null;
  #hooks = null;
  #topics = new Map(); // topic -> TopicState (below)
  #channels = new Map(); // channel -> topic
  #connections = new Map(); // connection id -> { topics: Set, queue: null | messages }
  #ready; // resolves once both clients are connected the first time
  #scripts; // name -> Lua text (CHANGE holds this engine's options)
  #shas; // name -> its SHA1 (EVALSHA)
  #function; // CHANGE as a Redis function: { name, library }
  #functions = true; // false: this Redis has no FCALL (before 7)
  #closed = false;
  #wasReady = false;
  #rounds = 0; // reconnections of the subscriber: a followed topic is current once read after the last one (#current)
  #watched = new WeakSet(); // shard clients whose moved channels are followed (#watchShards)
  #stats = { changes: 0, compactions: 0, conflicts: 0, retries: 0, loads: 0, repairs: 0, notifications: 0, gaps: 0 };

  constructor(options = {}) {
    if (options === null || typeof options !== 'object') throw invalid('redisEngine(options) takes an object');
    const allowed = ['url', 'client', 'prefix', 'sharded', 'streamMaxCount', 'streamMaxBytes', 'ttlMs', 'idTtlMs', 'maxRetries', 'historyCount'];
    for (const key of Object.keys(options)) {
      if (!allowed.includes(key)) throw invalid(`redisEngine: unknown option ${key} (expected one of: ${allowed.join(', ')})`);
    }
    if ((options.url === undefined) === (options.client === undefined)) {
      throw invalid('redisEngine needs exactly one of url (a redis:// URL) or client (a node-redis client or cluster)');
    }
    if (options.url !== undefined && typeof options.url !== 'string') throw invalid('redisEngine: url must be a string');
    const prefix = options.prefix ?? 'deltacast';
    if (typeof prefix !== 'string' || prefix === '' || /[{}]/.test(prefix)) {
      throw invalid('redisEngine: prefix must be a non-empty string without { or }');
    }
    this.#options = {
      prefix,
      streamMaxCount: integerOption(options, 'streamMaxCount', 1000, 1),
      streamMaxBytes: integerOption(options, 'streamMaxBytes', 1 << 20, 1),
      ttlMs: integerOption(options, 'ttlMs', 0, 0),
      idTtlMs: integerOption(options, 'idTtlMs', 60000, 1),
      maxRetries: integerOption(options, 'maxRetries', 8, 0),
      historyCount: integerOption(options, 'historyCount', 32, 0),
    };
    if (options.client !== undefined) {
      const client = options.client;
      if (client === null || typeof client !== 'object' || typeof client.duplicate !== 'function' || typeof client.sendCommand !== 'function') {
        throw invalid('redisEngine: client must be a node-redis client or cluster (createClient / createCluster from "redis")');
      }
      this.#client = client;
      this.#owned = false;
    } else {
      let redis;
      try {
        redis = require('redis');
      } catch {
        throw new DeltacastError(codes.INVALID_ARGUMENT, "deltacast/redis needs the 'redis' package (node-redis 5): npm install redis");
      }
      this.#client = redis.createClient({ url: options.url, disableOfflineQueue: true });
      this.#owned = true;
    }
    // A cluster's sendCommand takes the key to route by first.
    this.#cluster = typeof this.#client.getSlotMaster === 'function' || 'masters' in this.#client;
    this.#sharded = options.sharded ?? this.#cluster;
    if (typeof this.#sharded !== 'boolean') throw invalid('redisEngine: sharded must be a boolean');
    this.#scripts = { CHANGE: CHANGE({ ...this.#options, sharded: this.#sharded }), COMPACT, READ, DELETE };
    this.#shas = Object.fromEntries(Object.entries(this.#scripts).map(([name, body]) => [name, createHash('sha1').update(body).digest('hex')]));
    const tag = this.#shas.CHANGE.slice(0, 6);
    this.#function = {
      name: `d${tag}`,
      library: `#!lua name=deltacast_${tag}\nredis.register_function('d${tag}', function(KEYS, ARGV)\n${this.#scripts.CHANGE}\nend)\n`,
    };
    this.#subscriber = this.#client.duplicate();
    for (const client of [this.#client, this.#subscriber]) client.on('error', () => {}); // reconnection does the rest
    for (const client of [this.#client, this.#subscriber]) client.on('ready', () => this.#onReady());
    this.#ready = this.#connect();
    this.#ready.catch(() => {});
  }

  async #connect() {
    if (this.#owned || !this.#client.isOpen) await this.#client.connect();
    await this.#subscriber.connect();
  }

  /** Resolves once Redis is reachable the first time (publishes before that fail with DELTACAST_ENGINE_UNAVAILABLE). */
  ready() {
    return this.#ready;
  }

  /** Counters: changes, conflicts (retries spent), loads, repairs, notifications, gaps. */
  stats() {
    return { ...this.#stats, liveTopics: [...this.#topics.values()].filter((t) => t.live).length };
  }

  // ---- keys ------------------------------------------------------------------------

  // A topic's keys and channel share the hash tag {<topic>} (one slot on a
  // cluster). In the tag, `%` and `}` are percent-encoded: a `}` would end
  // the tag early, so that `b}:id:z` and `b` with the change id `z}:s` named
  // the same key, and a topic starting with `}` made an empty tag (its keys
  // on different slots: CROSSSLOT).
  #key(topic, part) {
    return `${this.#options.prefix}:{${hashTag(topic)}}:${part}`;
  }

  #channel(topic) {
    return `${this.#options.prefix}:{${hashTag(topic)}}`;
  }

  // ---- commands --------------------------------------------------------------------

  #available() {
    if (this.#closed) return false;
    const client = this.#client;
    return this.#cluster ? client.isOpen : client.isReady;
  }

  async #send(key, args, options) {
    if (!this.#available()) throw unavailable('Redis is not reachable');
    try {
      return this.#cluster ? await this.#client.sendCommand(key, false, args, options) : await this.#client.sendCommand(args, options);
    } catch (err) {
      if (err instanceof DeltacastError) throw err;
      if (err?.constructor?.name === 'ErrorReply' || /^ERR|^NOSCRIPT|^WRONGTYPE/.test(err?.message ?? '')) throw err;
      throw unavailable(`Redis is not reachable: ${err?.message ?? err}`, err);
    }
  }

  /** `options`: node-redis command options (BYTES: bulk strings answered as Buffers). */
  async #script(name, keys, args, options) {
    const tail = [String(keys.length), ...keys, ...args.map((a) => (Buffer.isBuffer(a) ? a : String(a)))];
    // A change goes as FCALL of a function (a short name instead of a SHA1:
    // fewer bytes per change); loaded on a node that does not have it yet;
    // EVALSHA where Redis has no functions (before 7).
    if (name === 'CHANGE' && this.#functions) {
      try {
        return await this.#send(keys[0], ['FCALL', this.#function.name, ...tail]);
      } catch (err) {
        const message = err?.message ?? '';
        if (/unknown command/i.test(message)) {
          this.#functions = false;
        } else if (/function not found/i.test(message)) {
          await this.#send(keys[0], ['FUNCTION', 'LOAD', 'REPLACE', this.#function.library]).catch((e) => {
            throw wrapReply(e);
          });
          return await this.#send(keys[0], ['FCALL', this.#function.name, ...tail]).catch((e) => {
            throw wrapReply(e);
          });
        } else {
          throw wrapReply(err);
        }
      }
    }
    try {
      return await this.#send(keys[0], ['EVALSHA', this.#shas[name], ...tail], options);
    } catch (err) {
      if (!/NOSCRIPT/.test(err?.message ?? '')) throw wrapReply(err);
      return await this.#send(keys[0], ['EVAL', this.#scripts[name], ...tail], options).catch((e) => {
        throw wrapReply(e);
      });
    }
  }

  // ---- the hub's side -------------------------------------------------------------

  /** @internal createHub({ engine }) */ _attach(hub, hooks) {
    if (this.#hub !== null) throw invalid('this redisEngine already serves a hub: make one engine per hub');
    this.#hub = hub;
    this.#hooks = hooks;
  }

  /** @internal hub.close() */ async _detach() {
    this.#closed = true;
    const quit = async (client) => {
      try {
        // a client still trying to reconnect is dropped, not waited for
        if (client.isReady ?? client.isOpen) await client.close();
        else if (client.isOpen) client.destroy();
      } catch {
        // going away anyway
      }
    };
    await quit(this.#subscriber);
    if (this.#owned) await quit(this.#client);
  }

  #topic(topic) {
    let state = this.#topics.get(topic);
    if (state === undefined) {
      // synced: the #rounds value when its last load or resync began
      state = { refs: 0, live: false, loading: null, chain: Promise.resolve(), pending: 0, subscribed: false, synced: -1 };
      this.#topics.set(topic, state);
    }
    return state;
  }

  /** Runs `job` after every earlier job of the topic (changes, notifications, repairs). */
  #serial(topic, job) {
    const state = this.#topic(topic);
    state.pending += 1;
    const run = state.chain.then(job);
    state.chain = run
      .catch(() => {})
      .finally(() => {
        state.pending -= 1;
        // a topic nobody here follows and nothing is queued for: forgotten (the map stays bounded)
        if (state.pending === 0 && state.refs === 0 && state.loading === null && this.#topics.get(topic) === state) {
          this.#topics.delete(topic);
        }
      });
    return run;
  }

  /**
   * @internal A change: `next(baseJson | undefined)` makes the new value's
   * JSON text from the current one (undefined: nothing to create). Resolves
   * { epoch, version }, or null when nothing changed or `id` was seen.
   */
  _change(topic, next, id) {
    return this.#serial(topic, () => this.#changeNow(topic, next, id));
  }

  /**
   * Whether the node's copy of a topic is Redis's (but for notifications in
   * flight): the topic is followed, read since the subscriber's last
   * reconnection, and the subscriber is connected (no notification missed).
   */
  #current(topic) {
    const state = this.#topics.get(topic);
    if (state === undefined || !state.live || state.synced !== this.#rounds) return false;
    const subscriber = this.#subscriber;
    return (subscriber.isReady ?? subscriber.isOpen) === true;
  }

  async #changeNow(topic, next, id) {
    if (!this.#available()) throw unavailable('Redis is not reachable: the change was not made');
    const hub = this.#hub;
    const arrayKey = hub.options.arrayKey;
    // The node's copy is Redis's for a followed topic (#current); for another
    // one it may be stale or missing. A change made from it is checked by
    // CHANGE (the base version), but an answer given without asking Redis
    // (nothing to create, nothing changed, a value that cannot be made from
    // the copy) is given only on a copy known to be Redis's: otherwise the
    // node first catches up (confirm: the patches since its version, a short
    // reply when there are none) and decides again on that copy, once.
    let confirmed = this.#current(topic);
    const confirm = (base) => {
      confirmed = true;
      return base === undefined ? this.#repair(topic, 0, 0) : this.#repair(topic, base.version, 0, base.epoch);
    };
    for (let attempt = 0; ; ) {
      const base = hub.getJson(topic);
      if (base === undefined && !confirmed) {
        await confirm(base);
        continue;
      }
      let text;
      try {
        text = next(base?.json);
      } catch (err) {
        if (confirmed) throw err;
        await confirm(base);
        continue;
      }
      if (text === undefined) {
        if (confirmed) return null; // nothing to create (the `{ id }` is not recorded)
        await confirm(base);
        continue;
      }
      let patch;
      if (base === undefined) {
        await diffText('null', text); // validates it (DELTACAST_INVALID_JSON, limits)
        patch = '';
      } else {
        patch = await diffText(base.json, text, { arrayKey, output: 'json' });
        if (patch === '[]') {
          if (confirmed) return null; // nothing changed (the `{ id }` is not recorded)
          await confirm(base);
          continue;
        }
      }
      const keys = [this.#key(topic, KEY_STATE)];
      if (id !== '') keys.push(this.#key(topic, `id:${id}`));
      const o = this.#options;
      const reply = await this.#script(
        'CHANGE',
        keys,
        base === undefined ? ['', text, newEpoch()] : [`${base.epoch}${base.version.toString(36)}\n${patch}`],
      );
      const [verdict, epoch] = reply;
      const version = Number(reply[2]);
      if (verdict === 'ok') {
        this.#stats.changes += 1;
        await this.#hooks.replicate(topic, epoch, version, 'state', text);
        if (Number(reply[3]) === 1) {
          // Redis keeps this state from now on (the patches before it may go)
          this.#stats.compactions += 1;
          const stateAndStream = [keys[0], this.#key(topic, KEY_STREAM)];
          await packState(text)
            .then((packed) => this.#script('COMPACT', stateAndStream, [epoch, version, packed, `${o.streamMaxCount} ${o.streamMaxBytes}`]))
            .catch(() => {});
        }
        return { epoch, version };
      }
      if (verdict === 'dup') return null;
      // stale: another node changed the topic; catch up and try again on it
      // (the copy just read is Redis's: what is decided on it is final)
      this.#stats.retries += 1;
      await confirm(hub.getJson(topic));
      if (attempt >= this.#options.maxRetries) {
        this.#stats.conflicts += 1;
        throw new DeltacastError(
          codes.CONFLICT,
          `topic ${JSON.stringify(topic)} kept changing on other nodes: ${attempt + 1} attempts on a stale base (maxRetries)`,
        );
      }
      attempt += 1;
    }
  }

  /** @internal hub.delete(topic) */ _delete(topic) {
    return this.#serial(topic, async () => {
      const deleted = await this.#script('DELETE', [this.#key(topic, KEY_STATE), this.#key(topic, KEY_STREAM)], [this.#channel(topic), this.#sharded ? 1 : 0]);
      await this.#hooks.replicate(topic, '', 0, 'absent', '');
      return Number(deleted) === 1;
    });
  }

  // ---- subscribers ------------------------------------------------------------------

  /**
   * @internal Every client message, before the core: subscriptions are
   * followed here. True when the message is held (its topic is loading);
   * it then goes to the core after the load, in the connection's order.
   */
  _inbound(id, message) {
    let connection = this.#connections.get(id);
    if (connection?.queue) {
      connection.queue.push(message);
      return true;
    }
    const text = typeof message === 'string' ? message : message instanceof Uint8Array ? textDecoder.decode(message) : '';
    if (!SUB_MESSAGE.test(text)) return false;
    let parsed;
    try {
      parsed = JSON.parse(text);
    } catch {
      return false; // the core answers it
    }
    if (parsed === null || typeof parsed !== 'object' || typeof parsed.topic !== 'string') return false;
    if (connection === undefined) {
      connection = { topics: new Set(), queue: null };
      this.#connections.set(id, connection);
    }
    const topic = parsed.topic;
    if (parsed.t === 'unsub') {
      if (connection.topics.delete(topic)) this.#release(topic);
      return false;
    }
    if (parsed.t !== 'sub') return false;
    if (!connection.topics.has(topic)) {
      connection.topics.add(topic);
      this.#retain(topic);
    }
    const state = this.#topic(topic);
    if (state.live) return false;
    connection.queue = [message];
    this.#load(topic).finally(() => this.#release_queue(id));
    return true;
  }

  #release_queue(id) {
    const connection = this.#connections.get(id);
    if (connection === undefined || connection.queue === null) return;
    const queue = connection.queue;
    connection.queue = null;
    for (let i = 0; i < queue.length; i++) {
      if (i > 0 && this._inbound(id, queue[i])) {
        // held again (another topic to load): the rest waits behind it
        connection.queue.push(...queue.slice(i + 1));
        return;
      }
      this.#hub._receiveNow(id, queue[i]);
    }
  }

  /** @internal a connection closed */ _disconnected(id) {
    const connection = this.#connections.get(id);
    if (connection === undefined) return;
    this.#connections.delete(id);
    for (const topic of connection.topics) this.#release(topic);
  }

  #retain(topic) {
    this.#topic(topic).refs += 1;
  }

  #release(topic) {
    const state = this.#topics.get(topic);
    if (state === undefined) return;
    state.refs -= 1;
    if (state.refs > 0) return;
    state.live = false;
    this.#unsubscribe(topic, state);
    if (state.pending === 0 && state.loading === null) this.#topics.delete(topic);
  }

  #unsubscribe(topic, state) {
    if (!state.subscribed) return;
    state.subscribed = false;
    const channel = this.#channel(topic);
    this.#channels.delete(channel);
    const unsubscribe = this.#sharded ? this.#subscriber.SUNSUBSCRIBE(channel) : this.#subscriber.UNSUBSCRIBE(channel);
    unsubscribe.catch(() => {});
  }

  /** Subscribes to the topic's notifications, then reads it from Redis; one load however many ask. */
  #load(topic) {
    const state = this.#topic(topic);
    state.loading ??= (async () => {
      const round = this.#rounds;
      try {
        if (!state.subscribed) {
          const channel = this.#channel(topic);
          this.#channels.set(channel, topic);
          const listener = (message) => this.#notified(topic, message);
          await (this.#sharded ? this.#subscriber.SSUBSCRIBE(channel, listener) : this.#subscriber.SUBSCRIBE(channel, listener));
          state.subscribed = true;
          if (this.#cluster && this.#sharded) this.#watchShards();
        }
        this.#stats.loads += 1;
        await this.#serial(topic, () => this.#repair(topic, 0));
        state.synced = round;
        state.live = state.refs > 0;
        if (state.refs === 0) this.#unsubscribe(topic, state); // the last subscriber left meanwhile
      } catch {
        // Redis unreachable: subscribers get what this node has; a resync follows when it returns
      } finally {
        state.loading = null;
      }
    })();
    return state.loading;
  }

  /**
   * A slot that moves to another master ends the sharded subscriptions of its
   * channels (the server sends SUNSUBSCRIBE). node-redis 5.12 emits
   * 'sharded-channel-moved' on the shard's client but its cluster listens for
   * another event name, so nothing resubscribes: the engine does it (and
   * repairs what it missed meanwhile).
   */
  #watchShards() {
    for (const master of this.#subscriber.masters ?? []) {
      const client = master.pubSub?.client;
      if (client === undefined || this.#watched.has(client)) continue;
      this.#watched.add(client);
      client.on('sharded-channel-moved', (channel) => this.#channelMoved(channel, 0));
      // Watched once it holds a subscription, so a 'ready' from now on is a
      // reconnection (node-redis resubscribes): what was published meanwhile
      // was missed. The cluster object emits no 'ready' of its own for it.
      client.on('ready', () => this.#reconnected(master));
    }
  }

  #channelMoved(channel, attempt) {
    const topic = this.#channels.get(channel);
    if (topic === undefined || this.#closed) return;
    const state = this.#topic(topic);
    state.subscribed = false;
    state.live = false;
    if (state.refs === 0) return;
    setTimeout(
      () => {
        if (state.subscribed || state.refs === 0) return;
        this.#load(topic).then(() => {
          if (!state.subscribed && attempt < 50) this.#channelMoved(channel, attempt + 1);
        });
      },
      Math.min(50 * (attempt + 1), 1000),
    ).unref?.();
  }

  /** A notification: `epoch \n version \n patch` (patch empty: a new topic; version 0: deleted). */
  #notified(topic, message) {
    this.#stats.notifications += 1;
    const first = message.indexOf('\n');
    const second = message.indexOf('\n', first + 1);
    const epoch = message.slice(0, first);
    const version = Number(message.slice(first + 1, second));
    const patch = message.slice(second + 1);
    const state = this.#topic(topic);
    const round = this.#rounds;
    this.#serial(topic, async () => {
      if (version === 0) {
        await this.#hooks.replicate(topic, '', 0, 'absent', '');
        return;
      }
      const here = this.#hub.getJson(topic);
      if (here !== undefined && here.epoch === epoch && here.version >= version) return; // had it already
      if (patch !== '' && here !== undefined && here.epoch === epoch && here.version === version - 1) {
        const after = await this.#hooks.replicate(topic, epoch, version, 'patch', patch);
        if (after.epoch === epoch && after.version === version) return;
      } else if (here !== undefined && here.epoch === epoch && here.version < version - 1) {
        this.#stats.gaps += 1;
      }
      await this.#repair(topic, here !== undefined && here.epoch === epoch ? here.version : 0);
      state.synced = round; // read from Redis while subscribed: current (again)
    }).catch(() => {
      state.synced = -1; // the copy may be behind: changes confirm against Redis until it is read again
    });
  }

  /**
   * Brings the local copy to Redis's: the patches since `from` when the
   * stream still has them all, else the state (and the last patches, so
   * that clients resuming here get patches). With `fromEpoch` (the copy's,
   * at `from`), a copy that is already Redis's costs a short reply.
   */
  async #repair(topic, from, historyCount = this.#options.historyCount, fromEpoch = undefined) {
    this.#stats.repairs += 1;
    const args = fromEpoch === undefined ? [from, historyCount] : [from, historyCount, fromEpoch];
    const reply = await this.#script('READ', [this.#key(topic, KEY_STATE), this.#key(topic, KEY_STREAM)], args, BYTES);
    if (reply.length === 0) {
      await this.#hooks.replicate(topic, '', 0, 'absent', '');
      return;
    }
    const epoch = String(reply[0]);
    const version = Number(reply[1]);
    const stateVersion = Number(reply[2]);
    const state = reply[3]; // a Buffer
    const patches = [];
    for (let i = 4; i + 1 < reply.length; i += 2) patches.push([Number(String(reply[i]).split('-')[0]), String(reply[i + 1])]);
    let after = patches;
    if (state.length > 0) {
      await this.#hooks.replicate(topic, epoch, stateVersion, 'state', await unpackState(state));
      // the patches up to the state's version, when they run without a hole: history for resumes
      const older = patches.filter(([to]) => to <= stateVersion);
      let start = older.length;
      while (start > 0 && older[start - 1][0] === stateVersion - (older.length - start)) start--;
      const steps = older.slice(start).map((p) => p[1]);
      if (steps.length > 0) await this.#hooks.replicate(topic, epoch, stateVersion, 'history', `[${steps.join(',')}]`);
      after = patches.filter(([to]) => to > stateVersion);
    }
    if (after.length === 0) return;
    // queued together: the core applies them in order in one pass
    const answers = await Promise.all(after.map(([to, patch]) => this.#hooks.replicate(topic, epoch, to, 'patch', patch)));
    const last = answers[answers.length - 1];
    if ((last.epoch !== epoch || last.version !== version) && state.length === 0) await this.#repair(topic, 0, historyCount);
  }

  /** After a reconnection (both clients ready again): every followed topic is read again (what was missed meanwhile). */
  #onReady() {
    const ready = (client) => client.isReady ?? client.isOpen;
    if (!ready(this.#client) || !ready(this.#subscriber)) return;
    if (!this.#wasReady) {
      this.#wasReady = true;
      return;
    }
    this.#reconnected();
  }

  /**
   * A subscriber connection came back: notifications may have been missed, so
   * no followed topic it carries is current until read again. `shard`: a
   * cluster master whose sharded subscriber reconnected; the topics whose
   * slots another master serves missed nothing and stay current.
   */
  #reconnected(shard) {
    if (this.#closed) return;
    const before = this.#rounds;
    this.#rounds += 1;
    for (const [topic, state] of this.#topics) {
      if (state.refs === 0) continue;
      if (shard !== undefined && !this.#carries(shard, topic)) {
        if (state.synced === before) state.synced = this.#rounds;
        continue;
      }
      this.#resync(topic, 0);
    }
  }

  /** Whether `shard` (a cluster master) serves the slot of `topic`'s channel; true when that cannot be told. */
  #carries(shard, topic) {
    try {
      const master = this.#subscriber.getSlotMaster(keySlot(this.#channel(topic)));
      return master === undefined || master === shard || master.address === shard.address;
    } catch {
      return true;
    }
  }

  /** Reads a followed topic again; retried while Redis is not back. */
  #resync(topic, attempt) {
    const round = this.#rounds;
    const followed = this.#topic(topic);
    this.#serial(topic, async () => {
      await this.#repair(topic, 0);
      followed.synced = round;
    }).catch(() => {
      const state = this.#topics.get(topic);
      if (this.#closed || state === undefined || state.refs === 0) return;
      setTimeout(() => this.#resync(topic, attempt + 1), Math.min(100 * (attempt + 1), 2000)).unref?.();
    });
  }
}

/** A topic as it appears inside {}: `%` and `}` percent-encoded (see #key). */
function hashTag(topic) {
  return topic.includes('}') || topic.includes('%') ? topic.replace(/%/g, '%25').replace(/\}/g, '%7D') : topic;
}

function wrapReply(err) {
  if (err instanceof DeltacastError) return err;
  return unavailable(`Redis refused the command: ${err?.message ?? err}`, err);
}

/**
 * The Redis engine for createHub({ engine }).
 * @param {object} options see lib/redis.d.ts
 */
function redisEngine(options) {
  return new RedisEngine(options);
}

module.exports = { redisEngine, RedisEngine };
