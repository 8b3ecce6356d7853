'use strict';
// The createHub options: every name, default, bound and a line of
// documentation, in one place. lib/hub.js validates against this schema and
// sends the result to the binding, which trusts it (binding/hub.cc reads
// every field and has no defaults of its own). The README's options table is
// made by optionsTable() and test/js/options.test.js checks that the README
// and lib/index.d.ts name every option.

const { DeltacastError, codes } = require('./errors');

/**
 * The largest time a hub takes, in milliseconds (2^31 - 1: about 24.8 days),
 * for every time option and for one hub.advance(ms). The core's clock
 * saturates far above any sum of these, so no deadline can overflow.
 */
const MAX_TIME_MS = 2 ** 31 - 1;

const LANES = Object.freeze(['critical', 'high', 'normal', 'low']);

const integer = (defaultValue, min, max, doc, unit) => ({ type: 'integer', default: defaultValue, min, max, doc, unit });
const bytes = (defaultValue, min, max, doc) => integer(defaultValue, min, max, doc, 'bytes');
const time = (defaultValue, min, doc) => integer(defaultValue, min, MAX_TIME_MS, doc, 'ms');
const MAX_INT = Number.MAX_SAFE_INTEGER;

/** Every option. Sections are one level deep; `patterns` options map topic patterns to a value. */
const SCHEMA = Object.freeze({
  clock: { type: 'enum', values: ['real', 'manual'], default: 'real', doc: "'manual': time moves only with hub.advance(ms)" },
  arrayKey: {
    type: 'arrayKey',
    default: 'id',
    doc: 'the key of rows in arrays (keyed diff, upsert/remove); false: none',
  },
  limits: {
    type: 'section',
    fields: {
      maxValueBytes: bytes(64 * 1024 * 1024, 1, 256 * 1024 * 1024, "bytes of one value's JSON text (DELTACAST_TOO_LARGE); at most 256 MiB so a snapshot frame stays under the longest frame"),
      maxDepth: integer(512, 1, 4096, 'nesting depth of a value (DELTACAST_TOO_DEEP)'),
      maxTopicLength: bytes(256, 1, 65536, 'bytes of a topic name (DELTACAST_INVALID_TOPIC)'),
      maxPatchOps: integer(10000, 1, 1e6, 'operations in one hub.patch (DELTACAST_TOO_MANY_OPS)'),
      maxSubscriptions: integer(1000, 1, MAX_INT, 'subscriptions per connection'),
      maxMessageBytes: bytes(64 * 1024, 64, 0xfffffffe, 'bytes of one client message'),
      messagesPerSecond: integer(100, 1, MAX_INT, 'inbound messages per second per connection (token bucket)'),
      messageBurst: integer(1000, 1, MAX_INT, 'burst of the inbound token bucket'),
      rateViolations: integer(100, 1, MAX_INT, 'messages refused in a row before the connection is closed (1008)'),
    },
  },
  memory: {
    type: 'section',
    fields: { maxBytes: bytes(256 * 1024 * 1024, 0, MAX_INT, 'the store budget; least recently used topics are evicted above it; 0: none') },
  },
  history: {
    type: 'section',
    fields: {
      maxCount: integer(32, 0, MAX_INT, 'patches kept per topic for resume'),
      maxBytes: bytes(256 * 1024, 0, MAX_INT, 'bytes of patches kept per topic'),
    },
  },
  dedup: {
    type: 'section',
    fields: {
      maxCount: integer(10000, 0, MAX_INT, 'change ids remembered'),
      windowMs: time(60000, 0, 'how long a change id is remembered'),
    },
  },
  ttl: { type: 'patterns', of: 'ms', doc: 'topic pattern -> ms without a publish after which the topic is deleted' },
  permissions: { type: 'patterns', of: 'roles', doc: 'topic pattern -> roles that may subscribe ([] admits anyone)' },
  lanes: { type: 'patterns', of: 'lane', doc: "topic pattern -> lane ('critical', 'high', 'normal', 'low')" },
  engine: {
    type: 'engine',
    doc: 'where topics live across processes: `redisEngine()`; none: this process only',
  },
  onAudit: {
    type: 'function',
    doc: 'called with one audit event per connect, refusal, sub, forbidden sub, auth refresh, expiry and close (never a token)',
  },
  pacing: {
    type: 'section',
    fields: {
      highWindowMs: time(16, 0, 'high lane: the window a first change opens'),
      normalDebounceMs: time(50, 0, 'normal lane: sent this long after the last change'),
      normalMaxWaitMs: time(250, 0, 'normal lane: and at most this long after the first'),
      lowIntervalMs: time(1000, 0, 'low lane: at most one flush this often'),
      coalesce: {
        type: 'boolean',
        default: false,
        doc: 'publish() of an immutable value (deep-frozen, or `{ immutable: true }`) on a paced lane is held and serialized once, when the lane flushes (README, "Coalescing")',
      },
    },
  },
  heartbeat: {
    type: 'section',
    fields: {
      intervalMs: time(25000, 0, 'a ping this often; 0: none'),
      timeoutMs: time(60000, 1, 'a connection silent this long is closed (4000)'),
    },
  },
  credit: {
    type: 'section',
    fields: {
      maxFrames: integer(64, 1, MAX_INT, 'state frames sent and not acknowledged before a connection is conflated'),
      maxBytes: bytes(1024 * 1024, 1, MAX_INT, 'bytes of those frames'),
      stallTimeoutMs: time(30000, 1, 'over the window this long: the connection is closed'),
    },
  },
  sweepIntervalMs: time(1000, 1, 'real clock: how often TTLs and the dedup window are checked'),
  restartRetryMs: time(10000, 0, 'hub.close(): clients are sent {"t":"retry","ms"} and spread their return over this window; 0: no hint'),
});

function invalid(message) {
  return new DeltacastError(codes.INVALID_ARGUMENT, message);
}

function isPlainObject(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function checkKeys(object, allowed, where) {
  for (const key of Object.keys(object)) {
    if (!allowed.includes(key)) throw invalid(`unknown option ${where}${key} (expected one of: ${allowed.join(', ')})`);
  }
}

/** `value` as an integer within `spec`'s bounds, or DELTACAST_INVALID_ARGUMENT naming `where`. */
function checkInteger(value, spec, where) {
  if (!Number.isInteger(value) || value < spec.min || value > spec.max) {
    throw invalid(`${where} must be an integer from ${spec.min} to ${spec.max}, got ${String(value)}`);
  }
  return value;
}

/** A duration for hub.advance(ms): 0 to MAX_TIME_MS. */
function checkAdvance(ms) {
  return checkInteger(ms, { min: 0, max: MAX_TIME_MS }, 'ms');
}

const PATTERN_EXAMPLES = {
  ms: "{ 'tmp/*': 60000 }",
  roles: "{ 'prices/*': [], 'admin/**': ['admin'] }",
  lane: "{ 'alerts/**': 'critical' }",
};

function checkRoles(roles, where) {
  if (!Array.isArray(roles)) throw invalid(`${where} must be an array of role names ([] admits anyone)`);
  const out = [];
  // An index loop, not some(): holes of a sparse array are refused too.
  for (let i = 0; i < roles.length; i++) {
    if (typeof roles[i] !== 'string') throw invalid(`${where}[${i}] must be a role name (a string)`);
    out.push(roles[i]);
  }
  return out;
}

function patterns(given, of, name) {
  if (given === undefined) return [];
  if (!isPlainObject(given)) throw invalid(`${name} must be an object of topic pattern -> ${of}, e.g. ${PATTERN_EXAMPLES[of]}`);
  const out = [];
  for (const [pattern, value] of Object.entries(given)) {
    const where = `${name}['${pattern}']`;
    if (of === 'ms') out.push({ pattern, ms: checkInteger(value, { min: 1, max: MAX_TIME_MS }, where) });
    else if (of === 'roles') out.push({ pattern, roles: checkRoles(value, where) });
    else if (!LANES.includes(value)) throw invalid(`${where} must be one of ${LANES.join(', ')}`);
    else out.push({ pattern, lane: value });
  }
  return out;
}

/**
 * Validates createHub options against the schema: unknown names and bad
 * values throw DELTACAST_INVALID_ARGUMENT naming the option's path; nothing is
 * replaced silently. Returns every option with defaults filled in (pattern
 * options as arrays of rules, in the order given); this object is also what
 * the binding reads.
 */
function normalizeOptions(options) {
  options ??= {};
  if (typeof options !== 'object' || Array.isArray(options)) throw invalid('createHub options must be an object');
  checkKeys(options, Object.keys(SCHEMA), '');
  const out = {};
  for (const [name, spec] of Object.entries(SCHEMA)) {
    const given = options[name];
    switch (spec.type) {
      case 'enum':
        if (given !== undefined && !spec.values.includes(given)) {
          throw invalid(`${name} must be ${spec.values.map((v) => `'${v}'`).join(' or ')}, got ${String(given)}`);
        }
        out[name] = given ?? spec.default;
        break;
      case 'arrayKey':
        if (given !== undefined && given !== false && (typeof given !== 'string' || given === '')) {
          throw invalid(`${name} must be a non-empty string or false`);
        }
        out[name] = given ?? spec.default;
        break;
      case 'integer':
        out[name] = given === undefined ? spec.default : checkInteger(given, spec, name);
        break;
      case 'section': {
        if (given !== undefined && !isPlainObject(given)) throw invalid(`${name} must be an object`);
        if (given !== undefined) checkKeys(given, Object.keys(spec.fields), `${name}.`);
        const section = {};
        for (const [field, fieldSpec] of Object.entries(spec.fields)) {
          const value = given?.[field];
          if (fieldSpec.type === 'boolean') {
            if (value !== undefined && typeof value !== 'boolean') throw invalid(`${name}.${field} must be a boolean, got ${String(value)}`);
            section[field] = value ?? fieldSpec.default;
            continue;
          }
          section[field] = value === undefined ? fieldSpec.default : checkInteger(value, fieldSpec, `${name}.${field}`);
        }
        out[name] = section;
        break;
      }
      case 'patterns':
        out[name] = patterns(given, spec.of, name);
        break;
      case 'engine':
        if (given !== undefined && (given === null || typeof given !== 'object' || typeof given._attach !== 'function')) {
          throw invalid(`${name} must be an engine such as redisEngine() from 'deltacast/redis'`);
        }
        out[name] = given;
        break;
      case 'function':
        if (given !== undefined && typeof given !== 'function') throw invalid(`${name} must be a function`);
        out[name] = given;
        break;
      default:
        throw new Error(`options schema: unknown type ${spec.type}`);
    }
  }
  return out;
}

/** Every option as [path, spec] (sections flattened: 'limits.maxDepth'). */
function optionPaths() {
  const out = [];
  for (const [name, spec] of Object.entries(SCHEMA)) {
    if (spec.type === 'section') {
      for (const [field, fieldSpec] of Object.entries(spec.fields)) out.push([`${name}.${field}`, fieldSpec]);
    } else {
      out.push([name, spec]);
    }
  }
  return out;
}

function formatNumber(value, unit) {
  if (unit === 'bytes' && value >= 1024 * 1024 && value % (1024 * 1024) === 0) return `${value / (1024 * 1024)} MiB`;
  if (unit === 'bytes' && value >= 1024 && value % 1024 === 0) return `${value / 1024} KiB`;
  if (value === MAX_INT) return '2^53-1';
  if (value === MAX_TIME_MS) return '2^31-1';
  if (value === 0xfffffffe) return '2^32-2';
  return String(value);
}

/** The options as a Markdown table (the README's, checked by test/js/options.test.js). */
function optionsTable() {
  const rows = ['| option | default | allowed | what |', '|---|---|---|---|'];
  for (const [path, spec] of optionPaths()) {
    let fallback, allowed;
    if (spec.type === 'integer') {
      const unit = spec.unit === 'ms' ? ' ms' : spec.unit === 'bytes' ? ' bytes' : '';
      fallback = formatNumber(spec.default, spec.unit);
      allowed = `${formatNumber(spec.min)} to ${formatNumber(spec.max)}${unit}`;
    } else if (spec.type === 'enum') {
      fallback = `'${spec.default}'`;
      allowed = spec.values.map((v) => `'${v}'`).join(', ');
    } else if (spec.type === 'arrayKey') {
      fallback = `'${spec.default}'`;
      allowed = 'a non-empty string, false';
    } else if (spec.type === 'boolean') {
      fallback = String(spec.default);
      allowed = 'true, false';
    } else if (spec.type === 'function') {
      fallback = 'none';
      allowed = 'a function';
    } else if (spec.type === 'engine') {
      fallback = 'none';
      allowed = "an engine (`deltacast/redis`)";
    } else {
      fallback = '{}';
      allowed = { ms: `1 to ${formatNumber(MAX_TIME_MS)} ms`, roles: 'arrays of strings', lane: 'lane names' }[spec.of];
    }
    rows.push(`| \`${path}\` | ${fallback} | ${allowed} | ${spec.doc} |`);
  }
  return rows.join('\n');
}

module.exports = { SCHEMA, MAX_TIME_MS, LANES, normalizeOptions, checkAdvance, checkRoles, optionPaths, optionsTable };
