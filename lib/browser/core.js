'use strict';
// createClient(): the deltacast client for browsers and Node 18+ (deltacast/client is this module
// plus the Socket.IO carrier). Plain JS, no Node built-ins, no
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

const { applyPatch } = require('./patch.js');
const { carriers, fail } = require('./carriers.js');

// Close codes that mean "the server is going away / restarting": without an explicit hint the
// reconnection is spread over reconnect.restartMs.
const RESTART_CODES = [1001, 1012, 1013];

/**
 * The rows of a keyed-array topic that changed from `prev` to `next`, as [{ action, id, row }].
 * Rows are matched by `key`; patches share unchanged rows, so a row changed iff its identity did.
 * (deltacast/query narrows this down to the rows the ops touch when it can.)
 */
function rowChanges(prev, next, key) {
  const out = [];
  if (!Array.isArray(prev) || !Array.isArray(next)) return out;
  const before = new Map(prev.map((r) => [r && r[key], r]));
  for (const row of next) {
    const id = row && row[key];
    const old = before.get(id);
    before.delete(id);
    if (old !== row) out.push({ action: old === undefined ? 'insert' : 'update', id, row });
  }
  for (const [id, row] of before) out.push({ action: 'delete', id, row });
  return out;
}

const DEFAULTS = { lingerMs: 1000, hiddenUnsubscribeMs: 10000, probeMs: 30000, ackFrames: 16, ackDelayMs: 20, pollWaitMs: 25000 };

function createClient(options) {
  const o = { arrayKey: 'id', ...options };
  const rc = { minMs: 500, maxMs: 20000, factor: 2, connectTimeoutMs: 10000, restartMs: 10000, ...o.reconnect };
  const hb = { intervalMs: 25000, graceMs: 10000, ...o.heartbeat };
  for (const k in DEFAULTS) if (o[k] === undefined) o[k] = DEFAULTS[k];
  for (const [k, v] of Object.entries({ ...o, ...rc, ...hb })) if (/Ms$/.test(k) && !(v >= 0)) throw fail(`${k} must be >= 0 (ms)`);
  if (!(rc.factor >= 1)) throw fail('reconnect.factor must be >= 1');
  if (o.auth != null && !/^(function|string)$/.test(typeof o.auth)) throw fail('auth must be a function or a string');
  let order = o.fallback || [o.transport || 'ws', 'sse', 'poll'];
  for (const k of order) if (!carriers[k]) throw fail(`unknown carrier ${k}`);
  order = order.filter((k) => (k === 'sse' || k === 'poll' ? o.pollUrl : o.url));
  if (!order.length) throw fail('createClient needs url or pollUrl');
  o.pollUrl = o.pollUrl && o.pollUrl.replace(/\/$/, '');
  if (!o.fetch && typeof fetch === 'function') o.fetch = (...a) => fetch(...a);
  const T = o.timers || { setTimeout: (f, ms) => setTimeout(f, ms), clearTimeout: (t) => clearTimeout(t), now: Date.now };
  const random = o.random || Math.random;
  const win = o.window !== undefined ? o.window : globalThis.window;
  const doc = o.document !== undefined ? o.document : globalThis.document;

  const topics = new Map();
  const listeners = {};
  for (const k of ['status', 'error', 'change', 'event', 'topic', 'reset']) listeners[k] = new Set();
  let status = 'connecting';
  let carrier = null; // the open carrier whose messages we read
  let attemptCarrier = null; // a carrier being opened (first connection, fallback or probe)
  let idx = 0; // position in `order` of the next attempt
  let attempt = 0; // failed rounds since the last open: the backoff exponent
  let closed = false;
  let token;
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
  function call(fs, ...args) {
    for (const f of fs) {
      try {
        f(...args);
      } catch (e) {
        if (fs !== listeners.error) emit('error', e);
      }
    }
  }
  const emit = (name, ...args) => call(listeners[name], ...args);
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
    // new Promise: a hook that throws is a rejection (reported on 'error'), not an uncaught throw
    return new Promise((r) => r(typeof o.auth == 'string' ? o.auth : o.auth())).then((t) => {
      token = t && t.token !== undefined ? t.token : t;
      // Asked again 30 s before it expires, and sent on the open connection.
      if (t && t.expiresAt && !closed) {
        after('auth', Math.max(1000, t.expiresAt - Date.now() - 30000), () =>
          getToken().then(() => carrier && carrier.acks && carrier.send({ t: 'auth', token }), (e) => emit('error', e)),
        );
      }
    });
  }

  function open(kind, probe) {
    if (closed || attemptCarrier || (probe && !carrier)) return;
    let c = null;
    let opened = false;
    const ctx = {
      token,
      topics: () => [...topics.values()].filter(onWire).map((E) => E.topic),
      position: (t) => (t = topics.get(t)) && t.epoch !== undefined && { epoch: t.epoch, version: t.version },
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
      alive() {
        if (c === carrier) lastSeen = T.now();
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
      // A carrier that cannot even be made (no WebSocket or io to make it with, a URL it refuses) never
      // will be: reported each round; when it is the only one, the client closes rather than retry for
      // ever (with others it is passed over, and a probe of it leaves the open carrier alone).
      emit('error', e);
      return order[1] ? failed(probe) : client.close();
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
    // Every topic resumes from its position, all at once. Acks still due were
    // for the old connection's frames: this one was sent none of them.
    for (const E of topics.values()) {
      E.ackDue = false;
      if (!onWire(E)) continue;
      E.resync = false;
      if (c.acks) sendSub(E);
      setTopicState(E, 'live');
    }
    watchdog();
    // On a fallback carrier: keep probing the better one.
    if (c.kind !== order[0] && !probe) after('probe', o.probeMs, probeBetter);
    if (c.kind === order[0]) (clear('probe'), (idx = 0));
  }

  function probeBetter() {
    if (carrier && carrier.kind !== order[0]) connect(true);
  }

  function failed(probe, hint) {
    if (closed) return;
    if (probe) return after('probe', o.probeMs, probeBetter);
    if (++idx < order.length) return connect(false);
    idx = 0;
    retryLater(hint);
  }

  function dropped(hint, code) {
    carrier = null;
    // A probe in flight was for the carrier that just died: it would block the reconnection.
    if (attemptCarrier) attemptCarrier.close();
    attemptCarrier = null;
    clear('connect');
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
    const cap = Math.min(rc.maxMs, rc.minMs * rc.factor ** attempt++);
    let delay = rc.jitter === 'none' ? cap : random() * cap;
    if (hint !== undefined) delay = Math.max(delay, random() * hint);
    setStatus('reconnecting', { delayMs: delay, attempt });
    after('retry', delay, () => connect(false));
  }

  /** Skip the wait: the network came back or the page became visible. */
  function wake() {
    if (!closed && timers.retry !== undefined) connect(false);
    else watchdog();
  }

  // --- liveness and acks -------------------------------------------------------------------

  // The server pings every heartbeat.intervalMs. Judged by when the last message arrived, not by
  // how often this timer ran: a throttled background tab runs it late but still receives messages.
  function watchdog() {
    if (!carrier || carrier.kind === 'poll') return;
    const left = hb.intervalMs + hb.graceMs - (T.now() - lastSeen);
    if (left > 0) return after('watchdog', left, watchdog);
    carrier.close();
    dropped();
  }

  function ackLater(E) {
    if (!carrier || !carrier.acks) return;
    E.ackDue = true;
    if (++unacked >= o.ackFrames) flushAcks();
    else if (timers.ack === undefined) after('ack', o.ackDelayMs, flushAcks);
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
    if (typeof m === 'string') {
      try {
        m = JSON.parse(m);
      } catch (e) {
        return emit('error', e);
      }
    }
    if (!carrier.acks) attempt = 0;
    for (const i of [].concat(m && m.t === 'batch' ? m.items : m)) frame(i);
  }

  function frame(m) {
    if (!m) return;
    if (m.t === 'ping') return carrier.acks && carrier.send({ t: 'pong' });
    if (m.t === 'retry') return void (nextHint = m.ms);
    if (m.t === 'err') return emit('error', Object.assign(new Error(m.message), { code: m.code, topic: m.topic }));
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
        for (const ch of rowChanges(prev, data, o.arrayKey)) {
          emit('event', { topic: E.topic, action: ch.action, id: ch.id, data: ch.row, version: m.to, timestamp });
        }
      }
    } else if (m.t === 'gone') {
      E.epoch = E.version = E.data = undefined;
      E.ackDue = E.resync = false;
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
    call(E.cbs, E.data, info);
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

  function onVisibility() {
    if (doc.visibilityState === 'hidden') {
      after('hidden', o.hiddenUnsubscribeMs, () => {
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
  /** Adds or removes (`how`: 'addEventListener' or 'removeEventListener') the page's listeners. */
  function listen(how) {
    if (win && win[how]) win[how]('online', wake);
    if (doc && doc[how]) doc[how]('visibilitychange', onVisibility);
  }
  listen('addEventListener');

  // --- the public object ----------------------------------------------------------------------

  function entry(topic) {
    if (!topic || typeof topic !== 'string') throw fail('topic must be a non-empty string');
    let E = topics.get(topic);
    if (!E) {
      // Also: epoch, version, data, updatedAt, critical, paused, resync, ackDue (absent until set).
      topics.set(topic, (E = { topic, refs: 0, cbs: new Set(), state: 'stale' }));
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
      if (closed) throw Object.assign(new Error('closed'), { code: 'DELTACAST_CLOSED' });
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
        after('linger:' + topic, o.lingerMs, () => {
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
      return E ? { status: E.state, epoch: E.epoch, version: E.version, updatedAt: E.updatedAt } : { status: 'stale' };
    },
    on(name, f) {
      if (!listeners[name]) throw fail(`unknown event ${name}`);
      listeners[name].add(f);
      return () => listeners[name].delete(f);
    },
    hydrate(topic, snap) {
      if (!snap || typeof snap.epoch !== 'string' || !Number.isInteger(snap.version)) {
        throw fail('hydrate needs { epoch, version, data }');
      }
      const E = entry(topic);
      // Ours is newer; or the wire is resuming the replica from its version (an open carrier, an
      // SSE or poll request under way): what comes is made for that version, not the snapshot's.
      // A socket being opened has sent nothing yet: it subscribes from the position held when it
      // opens, so the snapshot is taken (refusing it would drop the HTTP fallback's data).
      if ((E.epoch === snap.epoch && E.version >= snap.version) || (onWire(E) && (carrier || (attemptCarrier && !attemptCarrier.acks)))) return;
      apply(E, snap.data, snap.epoch, snap.version, { hydrated: true });
    },
    close() {
      if (closed) return;
      closed = true;
      for (const name of Object.keys(timers)) clear(name);
      listen('removeEventListener');
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

module.exports = { createClient, rowChanges };
