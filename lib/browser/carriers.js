'use strict';
// The carriers: how protocol messages travel. Each carrier is `open(ctx)` and calls back
// ctx.opened(), ctx.message(obj) and ctx.closed(retryMs?) (once; not after its own close()). It
// returns { kind, acks, send(msg), sub(topic), unsub(topic), close() }. Full-duplex carriers (ws,
// Socket.IO) send sub/unsub/ack/pong/auth upstream; SSE and long-polling have no upstream, so a
// change of topics reopens the stream (SSE) or starts/stops a request loop (poll).
//
// No Node built-ins here: WebSocket, fetch and AbortController are globals in browsers and in
// Node 18+ (Node < 22 passes `ws`'s WebSocket as options.WebSocket).

/** A TypeError with code DELTACAST_INVALID_ARGUMENT: bad options (core.js), nothing to make a carrier with. */
function fail(message) {
  return Object.assign(new TypeError(message), { code: 'DELTACAST_INVALID_ARGUMENT' });
}

/** A retry hint in a close reason or frame: "retry=5000", '{"retryMs":5000}'. */
function retryHint(reason) {
  const m = /retry(?:Ms)?"?\s*[=:]\s*(\d+)/i.exec(String(reason || ''));
  return m ? +m[1] : undefined;
}

/** The common half of the full-duplex carriers: messages (text or objects) in, one close out. */
function duplex(kind, ctx, send, close) {
  let done = false;
  return {
    c: {
      kind,
      acks: true,
      send: (m) => !done && send(m),
      close() {
        done = true;
        close();
      },
    },
    open: () => done || ctx.opened(),
    msg: (d) => done || ctx.message(d),
    end: (reason, code) => done || ((done = true), ctx.closed(retryHint(reason), code)),
  };
}

function wsCarrier(o, ctx) {
  const WS = o.WebSocket || globalThis.WebSocket;
  if (!WS) throw fail('no WebSocket: pass options.WebSocket');
  const ws = new WS(o.url);
  const d = duplex(
    'ws',
    ctx,
    (m) => ws.readyState === 1 && ws.send(JSON.stringify(m)),
    () => {
      try {
        ws.close(1000);
      } catch {
        /* some implementations throw before open */
      }
    },
  );
  ws.onopen = d.open;
  ws.onmessage = (e) => d.msg(e.data);
  ws.onclose = (e) => d.end(e.reason, e.code);
  ws.onerror = () => {};
  return d.c;
}

/**
 * Reads a text/event-stream body: calls onEvent(data) with each event's joined `data:` lines, and
 * alive() on every chunk (the server's `:` heartbeat comments are signs of life, not events).
 */
async function readEvents(body, onEvent, alive) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    alive();
    const events = (buf += value).split(/\r?\n\r?\n/);
    buf = events.pop();
    for (const e of events) {
      const data = e.split(/\r?\n/).filter((l) => l.startsWith('data:'));
      if (data.length) onEvent(data.map((l) => l.slice(l[5] === ' ' ? 6 : 5)).join('\n'));
    }
  }
}

/**
 * `Last-Event-ID` as deltacast/http reads it (and writes it in each event's `id`): one entry per
 * topic of `topics=`, in order, joined by `,`: `<epoch>:<version>` of the replica, or empty.
 * '' when no topic has a replica.
 */
function positions(ctx, topics) {
  let any = false;
  const ids = topics.map((t) => {
    const p = ctx.position(t);
    return p ? ((any = true), `${p.epoch}:${p.version}`) : '';
  });
  return any ? ids.join(',') : '';
}

/** GET with the auth token (Authorization: Bearer) and the extra headers `h`. */
function get(o, ctx, url, h, signal) {
  if (ctx.token) h.authorization = `Bearer ${ctx.token}`;
  return o.fetch(o.pollUrl + url, { headers: h, signal });
}
const enc = encodeURIComponent;

function sseCarrier(o, ctx) {
  let ac;
  let done = false;
  let opened = false;
  const end = () => {
    if (!done) (done = true), ac && ac.abort(), ctx.closed();
  };
  // A change of topics reopens the stream; the replicas' positions make it a resume.
  const start = () => {
    if (ac) ac.abort();
    const topics = ctx.topics();
    const mine = (ac = new AbortController());
    // No topics yet: nothing to stream (the server refuses an empty `topics=`); open, and wait for a sub.
    if (!topics.length) return void Promise.resolve().then(() => done || opened || ((opened = true), ctx.opened()));
    const id = positions(ctx, topics);
    get(o, ctx, `/events?topics=${topics.map(enc).join(',')}`, id ? { 'last-event-id': id } : {}, mine.signal)
      .then((res) => {
        if (!res.ok || !res.body) throw new Error(`SSE answered ${res.status}`);
        if (!opened) (opened = true), ctx.opened();
        return readEvents(
          res.body,
          (d) => !done && mine === ac && ctx.message(d),
          () => mine === ac && ctx.alive(),
        );
      })
      .then(
        () => mine === ac && end(),
        () => mine === ac && end(),
      );
  };
  let pending = false;
  const restart = () => {
    // Several sub/unsub in one tick reopen the stream once.
    if (!pending) (pending = true), queueMicrotask(() => ((pending = false), done || start()));
  };
  start();
  return {
    kind: 'sse',
    acks: false,
    send() {},
    sub: restart,
    unsub: restart,
    close() {
      done = true;
      if (ac) ac.abort();
    },
  };
}

function pollCarrier(o, ctx) {
  const loops = new Map();
  let done = false;
  let opened = false;
  const stop = () => {
    done = true;
    for (const ac of loops.values()) ac.abort();
  };
  const end = () => done || (stop(), ctx.closed());
  const loop = async (topic, ac) => {
    let etag;
    let wait = ''; // the first request answers at once: it carries the snapshot or the catch-up
    while (!done && loops.get(topic) === ac) {
      const p = ctx.position(topic);
      const q = p ? `epoch=${enc(p.epoch)}&version=${p.version}&` : '';
      const res = await get(o, ctx, `/topics/${enc(topic)}?${q}${wait}`, etag ? { 'if-none-match': etag } : {}, ac.signal);
      wait = `wait=${o.pollWaitMs}`;
      const m = await res.text();
      if (res.status === 200) {
        etag = res.headers.get('etag') || undefined;
        if (!done && loops.get(topic) === ac) ctx.message(m);
      } else if (res.status !== 204 && res.status !== 304 && res.status !== 404) {
        // 404: a topic that does not exist (yet): the next long-poll waits for its first version
        throw new Error(`poll answered ${res.status}`);
      }
    }
  };
  const sub = (topic) => {
    if (done || !opened || loops.has(topic)) return;
    const ac = new AbortController();
    loops.set(topic, ac);
    loop(topic, ac).catch(() => loops.get(topic) === ac && end());
  };
  // Long-polls may legitimately hang for `wait` ms: the carrier counts as open at once, and a
  // request that fails closes it.
  Promise.resolve().then(() => {
    if (done) return;
    opened = true;
    ctx.opened();
    for (const t of ctx.topics()) sub(t);
  });
  return {
    kind: 'poll',
    acks: false,
    send() {},
    sub,
    unsub(topic) {
      const ac = loops.get(topic);
      loops.delete(topic);
      if (ac) ac.abort();
    },
    close() {
      stop();
      loops.clear();
    },
  };
}

// The Socket.IO carrier (socket_io.js) is added by deltacast/client; core.js with these three is
// the size-budgeted client.
const carriers = { ws: wsCarrier, sse: sseCarrier, poll: pollCarrier };

module.exports = { carriers, duplex, fail };
