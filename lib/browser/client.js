'use strict';
// createClient(): the deltacast client for browsers and Node 18+. Plain JS, no Node built-ins, no
// runtime dependencies (lib/browser/** is bundled for browsers; a test checks its imports).
//
// Invariants:
//  - One replica per topic: (epoch, version, data). A frame is applied only to the exact (epoch,
//    from) it was made for, so a version is never applied twice and a gap is never skipped over:
//    anything else is ignored (a duplicate) or answered by re-subscribing from what we hold.
//  - Subscriptions are state, not messages: nothing queues while offline; every (re)open sends one
//    `sub` per topic on the wire, with its position.
//  - Only the current carrier's messages are read: a carrier being replaced, probed or closed
//    is deaf, so a fallback and the return from it lose and repeat nothing.

const { applyPatch } = require('../apply_patch.js');
const { carriers, retryHint } = require('./carriers.js');

const STATUSES = ['connecting', 'open', 'reconnecting', 'polling', 'closed'];
// Close codes that mean "the server is going away / restarting": without an explicit hint the
// reconnection is spread over reconnect.restartMs.
const RESTART_CODES = [1001, 1012, 1013];

function fail(message) {
  const e = new TypeError(message);
  e.code = 'DELTACAST_INVALID_ARGUMENT';
  return e;
}

function positiveInt(v, name, dflt) {
  if (v === undefined) return dflt;
  if (!Number.isFinite(v) || v < 0) throw fail(`${name} must be a number of milliseconds >= 0, got ${v}`);
  return v;
}

/**
 * The rows of a keyed-array topic that a patch changed, as [{ action, id, row }]. Rows are matched
 * by `key`; the patch shares unchanged rows with `prev`, so a row is changed iff its identity is.
 * When every op stays inside a row (`/i/...`), indices are stable and only those rows are looked at.
 */
function rowChanges(prev, next, ops, key) {
  const out = [];
  if (!Array.isArray(prev) || !Array.isArray(next)) return out;
  const rows = new Set();
  for (const op of ops || []) {
    const s = op.path.split('/');
    if (s.length < 3 || op.from !== undefined) {
      rows.clear();
      return rowDiff(prev, next, key, out);
    }
    rows.add(s[1]);
  }
  for (const i of rows) {
    const row = next[i];
    if (row && row !== prev[i] && row[key] !== undefined) out.push({ action: 'update', id: row[key], row });
  }
  return out;
}

function rowDiff(prev, next, key, out) {
  const before = new Map();
  for (const r of prev) if (r && typeof r === 'object') before.set(r[key], r);
  const seen = new Set();
  for (const row of next) {
    if (!row || typeof row !== 'object') continue;
    const id = row[key];
    seen.add(id);
    const old = before.get(id);
    if (old === undefined) out.push({ action: 'insert', id, row });
    else if (old !== row) out.push({ action: 'update', id, row });
  }
  for (const [id, row] of before) if (!seen.has(id)) out.push({ action: 'delete', id, row });
  return out;
}

function createClient(options) {
  const o = { ...options };
  if (!options || typeof options !== 'object') throw fail('createClient needs an options object');
  const rc = { minMs: 500, maxMs: 20000, factor: 2, jitter: 'full', connectTimeoutMs: 10000, restartMs: 10000, ...o.reconnect };
  for (const k of ['minMs', 'maxMs', 'connectTimeoutMs', 'restartMs']) positiveInt(rc[k], `reconnect.${k}`);
  if (!(rc.factor >= 1)) throw fail(`reconnect.factor must be >= 1, got ${rc.factor}`);
  if (!['full', 'equal', 'none'].includes(rc.jitter)) throw fail(`reconnect.jitter must be 'full', 'equal' or 'none'`);
  const hb = { intervalMs: 25000, graceMs: 10000, ...o.heartbeat };
  const lingerMs = positiveInt(o.lingerMs, 'lingerMs', 1000);
  const hiddenMs = positiveInt(o.hiddenUnsubscribeMs, 'hiddenUnsubscribeMs', 10000);
  const probeMs = positiveInt(o.probeMs, 'probeMs', 30000);
  const ackFrames = o.ackFrames || 16;
  const ackDelayMs = positiveInt(o.ackDelayMs, 'ackDelayMs', 20);
  o.pollWaitMs = positiveInt(o.pollWaitMs, 'pollWaitMs', 25000);
  const key = o.arrayKey === undefined ? 'id' : o.arrayKey;
  let order = o.fallback || (o.transport ? [o.transport, 'sse', 'poll'] : ['ws', 'sse', 'poll']);
  for (const k of order) if (!carriers[k]) throw fail(`unknown carrier '${k}' (expected ws, socket.io, sse or poll)`);
  if (!o.pollUrl) order = order.filter((k) => k !== 'sse' && k !== 'poll');
  if (!o.url) order = order.filter((k) => k === 'sse' || k === 'poll');
  if (!order.length) throw fail('createClient needs url (ws / socket.io) or pollUrl (sse / poll)');
  o.pollUrl = o.pollUrl && o.pollUrl.replace(/\/$/, '');
  if (!o.fetch && typeof fetch === 'function') o.fetch = (...a) => fetch(...a);
  const T = o.timers || { setTimeout: (f, ms) => setTimeout(f, ms), clearTimeout: (t) => clearTimeout(t), now: () => Date.now() };
  const random = o.random || Math.random;
  const win = o.window !== undefined ? o.window : typeof window !== 'undefined' ? window : undefined;
  const doc = o.document !== undefined ? o.document : typeof document !== 'undefined' ? document : undefined;

  const topics = new Map();
  const listeners = { status: new Set(), error: new Set(), change: new Set(), event: new Set(), topic: new Set(), reset: new Set() };
  let status = 'connecting';
  let carrier = null; // the open carrier whose messages we read
  let attemptCarrier = null; // a carrier being opened (first connection, fallback or probe)
  let idx = 0; // position in `order` of the next attempt
  let attempt = 0; // failed rounds since the last open: the backoff exponent
  let closed = false;
  let token;
  let expiresAt;
  let nextHint; // a retry hint from a `retry` frame, for the next drop
  let lastSeen = 0;
  let unacked = 0;
  const timers = {};

  function clear(name) {
    if (timers[name] !== undefined) T.clearTimeout(timers[name]);
    timers[name] = undefined;
  }
  function after(name, ms, f) {
    clear(name);
    timers[name] = T.setTimeout(() => {
      timers[name] = undefined;
      f();
    }, ms);
  }
  function emit(name, ...args) {
    for (const f of listeners[name]) {
      try {
        f(...args);
      } catch (e) {
        if (name !== 'error') emit('error', e);
      }
    }
  }
  function setStatus(s, info) {
    if (status === s && !info) return;
    status = s;
    emit('status', s, info || {});
  }
  function setTopicState(E, s) {
    if (E.state === s) return;
    E.state = s;
    emit('topic', E.topic, s);
  }
  const onWire = (E) => (E.refs > 0 || timers['linger:' + E.topic] !== undefined) && !E.paused;
  const position = (E) => (E.epoch !== undefined ? { epoch: E.epoch, version: E.version } : undefined);

  function sendSub(E) {
    if (!carrier) return;
    if (!carrier.acks) return carrier.sub(E.topic);
    const m = { t: 'sub', topic: E.topic };
    if (E.epoch !== undefined) (m.epoch = E.epoch), (m.version = E.version);
    carrier.send(m);
  }
  function sendUnsub(topic) {
    if (!carrier) return;
    if (carrier.acks) carrier.send({ t: 'unsub', topic });
    else carrier.unsub(topic);
  }

  // --- connecting -------------------------------------------------------------------------

  function connect(probe) {
    if (closed || attemptCarrier) return;
    clear('retry');
    if (!probe) setStatus(status === 'connecting' ? 'connecting' : 'reconnecting', { carrier: order[idx], attempt });
    const kind = probe ? order[0] : order[idx];
    Promise.resolve(o.auth ? getToken() : undefined).then(
      () => open(kind, probe),
      (e) => {
        emit('error', e);
        failed(probe);
      },
    );
  }

  function getToken() {
    return Promise.resolve(o.auth()).then((t) => {
      token = t && typeof t === 'object' ? t.token : t;
      expiresAt = t && typeof t === 'object' ? t.expiresAt : undefined;
    });
  }

  function open(kind, probe) {
    if (closed || attemptCarrier || (probe && !carrier)) return;
    let c = null;
    let opened = false;
    const ctx = {
      token,
      topics: () => [...topics.values()].filter(onWire).map((E) => E.topic),
      position: (t) => topics.get(t) && position(topics.get(t)),
      opened() {
        opened = true;
        clear('connect');
        attemptCarrier = null;
        if (closed || (probe && !carrier)) return c.close();
        opens(c, probe);
      },
      message(m) {
        if (c === carrier) receive(m);
      },
      closed(hint, code) {
        if (c === carrier) return dropped(hint, code);
        if (!opened && c === attemptCarrier) {
          clear('connect');
          attemptCarrier = null;
          failed(probe, hint);
        }
      },
    };
    try {
      c = attemptCarrier = carriers[kind](o, ctx);
    } catch (e) {
      emit('error', e);
      return failed(probe);
    }
    after('connect', rc.connectTimeoutMs, () => {
      if (c !== attemptCarrier) return;
      attemptCarrier = null;
      c.close();
      failed(probe);
    });
  }

  function opens(c, probe) {
    const old = carrier;
    carrier = c;
    if (old) old.close();
    lastSeen = T.now();
    unacked = 0;
    if (c.acks) attempt = 0;
    setStatus(c.acks ? 'open' : 'polling', { carrier: c.kind });
    if (token !== undefined && c.acks) c.send({ t: 'auth', token });
    // Every topic resumes from its position, all at once.
    for (const E of topics.values()) {
      if (!onWire(E)) continue;
      E.resync = false;
      if (c.acks) sendSub(E);
      setTopicState(E, 'live');
    }
    watchdog();
    if (expiresAt !== undefined) after('auth', Math.max(0, expiresAt - Date.now() - 30000), refreshAuth);
    // On a fallback carrier: keep probing the better one.
    if (c.kind !== order[0] && !probe) after('probe', probeMs, probeBetter);
    if (c.kind === order[0]) (clear('probe'), (idx = 0));
  }

  function probeBetter() {
    if (carrier && carrier.kind !== order[0]) connect(true);
  }

  function refreshAuth() {
    if (!o.auth || closed) return;
    getToken().then(
      () => {
        if (carrier && carrier.acks && token !== undefined) carrier.send({ t: 'auth', token });
        if (expiresAt !== undefined) after('auth', Math.max(1000, expiresAt - Date.now() - 30000), refreshAuth);
      },
      (e) => emit('error', e),
    );
  }

  function failed(probe, hint) {
    if (closed) return;
    if (probe) return after('probe', probeMs, probeBetter);
    if (++idx < order.length) return connect(false);
    idx = 0;
    retryLater(hint);
  }

  function dropped(hint, code) {
    carrier = null;
    clear('watchdog');
    clear('ack');
    clear('probe');
    for (const E of topics.values()) if (onWire(E)) setTopicState(E, 'stale');
    if (closed) return;
    if (hint === undefined) hint = nextHint;
    if (hint === undefined && RESTART_CODES.includes(code)) hint = rc.restartMs;
    nextHint = undefined;
    idx = 0;
    setStatus('reconnecting', { code });
    retryLater(hint);
  }

  /** Full-jitter exponential backoff, drawn per attempt; a server hint spreads over its window. */
  function retryLater(hint) {
    const cap = Math.min(rc.maxMs, rc.minMs * Math.pow(rc.factor, attempt++));
    let delay = rc.jitter === 'full' ? random() * cap : rc.jitter === 'equal' ? cap / 2 + (random() * cap) / 2 : cap;
    if (hint !== undefined) delay = Math.max(delay, random() * hint);
    setStatus('reconnecting', { delayMs: delay, attempt });
    after('retry', delay, () => connect(false));
  }

  /** Skip the wait: the network came back or the page became visible. */
  function wake() {
    if (!closed && timers.retry !== undefined) connect(false);
    else if (carrier) watchdogCheck();
  }

  // --- liveness and acks -------------------------------------------------------------------

  // The server pings every heartbeat.intervalMs. Judged by when the last message arrived, not by
  // how often this timer ran: a throttled background tab runs it late but still receives messages.
  function watchdog() {
    if (carrier && carrier.kind !== 'poll') after('watchdog', hb.intervalMs + hb.graceMs, watchdogCheck);
  }
  function watchdogCheck() {
    if (!carrier || carrier.kind === 'poll') return;
    const idle = T.now() - lastSeen;
    if (idle >= hb.intervalMs + hb.graceMs) {
      const c = carrier;
      c.close();
      dropped();
    } else after('watchdog', hb.intervalMs + hb.graceMs - idle, watchdogCheck);
  }

  function ackLater(E) {
    if (!carrier || !carrier.acks) return;
    E.ackDue = true;
    if (++unacked >= ackFrames) flushAcks();
    else if (timers.ack === undefined) after('ack', ackDelayMs, flushAcks);
  }
  function flushAcks() {
    clear('ack');
    unacked = 0;
    for (const E of topics.values()) {
      if (!E.ackDue) continue;
      E.ackDue = false;
      if (carrier) carrier.send({ t: 'ack', topic: E.topic, version: E.version });
    }
  }

  // --- messages ----------------------------------------------------------------------------

  function receive(m) {
    lastSeen = T.now();
    if (!carrier.acks) attempt = 0;
    if (m && m.t === 'batch' && Array.isArray(m.items)) for (const i of m.items) frame(i);
    else frame(m);
  }

  function frame(m) {
    if (!m || typeof m !== 'object') return;
    if (m.t === 'ping') return carrier.acks && carrier.send({ t: 'pong' });
    if (m.t === 'retry') return void (nextHint = m.ms);
    if (m.t === 'err') {
      const e = new Error(m.message || m.code);
      e.code = m.code;
      e.topic = m.topic;
      return emit('error', e);
    }
    const E = topics.get(m.topic);
    if (!E || !onWire(E)) return;
    if (m.t === 'snap') {
      if (E.epoch === m.epoch && E.version >= m.version) return; // a duplicate
      const reset = E.epoch !== undefined && E.epoch !== m.epoch;
      const prev = E.data;
      apply(E, m.data, m.epoch, m.version, { prev });
      if (reset) emit('reset', { topic: E.topic, reason: 'epoch' });
      ackLater(E);
    } else if (m.t === 'patch') {
      if (E.epoch !== m.epoch || E.version !== m.from) {
        if (E.epoch === m.epoch && m.to <= E.version) return; // a duplicate
        return resync(E, E.epoch === m.epoch ? 'gap' : 'epoch');
      }
      let data;
      try {
        data = applyPatch(E.data, m.ops);
      } catch (e) {
        e.topic = E.topic;
        emit('error', e);
        return resync(E, 'failed'); // the replica stays as it was
      }
      const prev = E.data;
      apply(E, data, m.epoch, m.to, { from: m.from, ops: m.ops, ids: m.ids, prev });
      ackLater(E);
      if (listeners.event.size) {
        const timestamp = T.now();
        for (const ch of rowChanges(prev, data, m.ops, key)) {
          emit('event', { topic: E.topic, action: ch.action, id: ch.id, data: ch.row, version: m.to, timestamp });
        }
      }
    } else if (m.t === 'gone') {
      E.epoch = E.version = E.data = undefined;
      E.ackDue = false;
      E.resync = false;
      E.updatedAt = T.now();
      emit('reset', { topic: E.topic, reason: 'gone' });
      notify(E, { gone: true });
    }
  }

  function apply(E, data, epoch, version, info) {
    E.data = data;
    E.epoch = epoch;
    E.version = version;
    E.updatedAt = T.now();
    E.resync = false;
    if (!info.hydrated) setTopicState(E, 'live');
    notify(E, { epoch, version, ...info });
  }

  function notify(E, info) {
    for (const f of E.cbs) {
      try {
        f(E.data, info);
      } catch (e) {
        emit('error', e);
      }
    }
    emit('change', E.topic, E.data, info);
  }

  /** The replica cannot take this frame: keep it and ask again from what we hold (once). */
  function resync(E, reason) {
    setTopicState(E, 'recovering');
    emit('reset', { topic: E.topic, reason });
    if (E.resync) return;
    E.resync = true;
    sendSub(E);
  }

  // --- background tab and network -----------------------------------------------------------

  function hidden() {
    return !!doc && doc.visibilityState === 'hidden';
  }
  function onVisibility() {
    if (hidden()) {
      after('hidden', hiddenMs, () => {
        for (const E of topics.values()) {
          if (E.critical || !onWire(E)) continue;
          E.paused = true;
          E.ackDue = false;
          sendUnsub(E.topic);
          setTopicState(E, 'stale');
        }
      });
      return;
    }
    clear('hidden');
    for (const E of topics.values()) {
      if (!E.paused) continue;
      E.paused = false;
      if (carrier) {
        sendSub(E); // from its version: a patch, while the server's history covers it
        setTopicState(E, 'live');
      }
    }
    wake();
  }
  if (win && win.addEventListener) win.addEventListener('online', wake);
  if (doc && doc.addEventListener) doc.addEventListener('visibilitychange', onVisibility);

  // --- the public object ----------------------------------------------------------------------

  function entry(topic) {
    if (typeof topic !== 'string' || topic === '') throw fail('topic must be a non-empty string');
    let E = topics.get(topic);
    if (!E) {
      E = { topic, refs: 0, cbs: new Set(), state: 'stale', critical: false, paused: false };
      E.epoch = E.version = E.data = E.updatedAt = undefined;
      topics.set(topic, E);
    }
    return E;
  }

  const client = {
    get status() {
      return status;
    },
    get carrier() {
      return carrier ? carrier.kind : undefined;
    },
    get pollUrl() {
      return o.pollUrl;
    },
    subscribe(topic, onChange, opts) {
      if (closed) throw Object.assign(new Error('the client is closed'), { code: 'DELTACAST_CLOSED' });
      if (onChange !== undefined && typeof onChange !== 'function') throw fail('onChange must be a function');
      const E = entry(topic);
      const lingering = timers['linger:' + topic] !== undefined;
      clear('linger:' + topic);
      if (opts && opts.critical) E.critical = true;
      E.refs++;
      if (onChange) E.cbs.add(onChange);
      if (E.refs === 1 && !lingering) {
        E.paused = false;
        if (carrier) {
          sendSub(E);
          setTopicState(E, 'live');
        }
      }
      let done = false;
      return () => {
        if (done) return;
        done = true;
        if (onChange) E.cbs.delete(onChange);
        if (--E.refs > 0) return;
        // A short linger: unmount + mount (React StrictMode, route changes) keeps the one `sub`.
        after('linger:' + topic, lingerMs, () => {
          if (E.refs > 0) return;
          if (!E.paused) sendUnsub(topic);
          topics.delete(topic);
        });
      };
    },
    get(topic) {
      const E = topics.get(topic);
      return E && E.epoch !== undefined ? { epoch: E.epoch, version: E.version, data: E.data } : undefined;
    },
    /** Per topic: { status: 'live' | 'recovering' | 'stale', epoch, version, updatedAt }. */
    topicStatus(topic) {
      const E = topics.get(topic);
      if (!E) return { status: 'stale', epoch: undefined, version: undefined, updatedAt: undefined };
      return { status: E.state, epoch: E.epoch, version: E.version, updatedAt: E.updatedAt };
    },
    on(name, f) {
      if (!listeners[name]) throw fail(`unknown event '${name}' (expected ${Object.keys(listeners).join(', ')})`);
      listeners[name].add(f);
      return () => listeners[name].delete(f);
    },
    hydrate(topic, snap) {
      if (!snap || typeof snap.epoch !== 'string' || !Number.isInteger(snap.version)) {
        throw fail('hydrate needs a snapshot { epoch, version, data }');
      }
      const E = entry(topic);
      if (E.epoch === snap.epoch && E.version >= snap.version) return; // ours is newer
      apply(E, snap.data, snap.epoch, snap.version, { hydrated: true });
    },
    close() {
      if (closed) return;
      closed = true;
      for (const name of Object.keys(timers)) clear(name);
      if (win && win.removeEventListener) win.removeEventListener('online', wake);
      if (doc && doc.removeEventListener) doc.removeEventListener('visibilitychange', onVisibility);
      const c = carrier || attemptCarrier;
      carrier = attemptCarrier = null;
      if (c) c.close();
      for (const E of topics.values()) setTopicState(E, 'stale');
      setStatus('closed');
    },
  };
  Promise.resolve().then(() => connect(false));
  return client;
}

module.exports = { createClient, rowChanges, retryHint, STATUSES };
