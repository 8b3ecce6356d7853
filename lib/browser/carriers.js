'use strict';
// The carriers: how protocol messages travel. Each carrier is `open(ctx)` and calls back
// ctx.opened(), ctx.message(obj) and ctx.closed(retryMs?) (once; not after its own close()). It
// returns { kind, acks, send(msg), sub(topic), unsub(topic), close() }. Full-duplex carriers (ws,
// Socket.IO) send sub/unsub/ack/pong/auth upstream; SSE and long-polling have no upstream, so a
// change of topics reopens the stream (SSE) or starts/stops a request loop (poll).
//
// No Node built-ins here: WebSocket, fetch and AbortController are globals in browsers and in
// Node 18+ (Node < 22 passes `ws`'s WebSocket as options.WebSocket).

/** A retry hint in a close reason or frame: "retry=5000", '{"retryMs":5000}' or a number. */
function retryHint(reason) {
  const m = /retry(?:Ms)?"?\s*[=:]\s*(\d+)/i.exec(String(reason || ''));
  return m ? Number(m[1]) : undefined;
}

function parse(data) {
  return typeof data === 'string' ? JSON.parse(data) : data;
}

function wsCarrier(o, ctx) {
  const WS = o.WebSocket || globalThis.WebSocket;
  if (!WS) throw new Error('no WebSocket: pass options.WebSocket (for instance require("ws"))');
  const ws = new WS(o.url);
  let done = false;
  const end = (hint, code) => {
    if (!done) (done = true), ctx.closed(hint, code);
  };
  ws.onopen = () => ctx.opened();
  ws.onmessage = (e) => !done && ctx.message(parse(e.data));
  ws.onclose = (e) => end(retryHint(e.reason), e.code);
  ws.onerror = () => {};
  const send = (m) => ws.readyState === 1 && ws.send(JSON.stringify(m));
  return {
    kind: 'ws',
    acks: true,
    send,
    close() {
      done = true;
      try {
        ws.close(1000);
      } catch {
        /* not open yet in some implementations */
      }
    },
  };
}

function ioCarrier(o, ctx) {
  if (!o.io) throw new Error('the socket.io carrier needs options.io (from socket.io-client)');
  const s = o.io(o.url, { transports: ['websocket'], reconnection: false, forceNew: true, ...o.ioOptions });
  let done = false;
  const end = (why) => {
    if (!done) (done = true), ctx.closed(retryHint(why && (why.message || why)));
  };
  s.on('connect', () => ctx.opened());
  s.on('deltacast', (m) => !done && ctx.message(parse(m)));
  s.on('disconnect', end);
  s.on('connect_error', end);
  return {
    kind: 'socket.io',
    acks: true,
    send: (m) => s.connected && s.emit('deltacast', m),
    close() {
      done = true;
      s.disconnect();
    },
  };
}

/**
 * Reads a text/event-stream body: calls onEvent(data) for each event's joined `data:` lines.
 */
async function readEvents(body, onEvent) {
  const reader = body.getReader();
  const dec = new TextDecoder();
  let buf = '';
  let data = [];
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    buf += dec.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i).replace(/\r$/, '');
      buf = buf.slice(i + 1);
      if (line === '') {
        if (data.length) onEvent(data.join('\n'));
        data = [];
      } else if (line.startsWith('data:')) data.push(line.slice(line[5] === ' ' ? 6 : 5));
    }
  }
}

/** `Last-Event-ID` as the client sends it: the position of every replica, `topic=epoch.version&...`. */
function positions(ctx, topics) {
  const parts = [];
  for (const t of topics) {
    const p = ctx.position(t);
    if (p) parts.push(`${encodeURIComponent(t)}=${encodeURIComponent(p.epoch)}.${p.version}`);
  }
  return parts.join('&');
}

function headers(ctx, extra) {
  const h = { ...extra };
  if (ctx.token) h.authorization = `Bearer ${ctx.token}`;
  return h;
}

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
    const id = positions(ctx, topics);
    o.fetch(`${o.pollUrl}/events?topics=${topics.map(encodeURIComponent).join(',')}`, {
      headers: headers(ctx, id ? { 'last-event-id': id, accept: 'text/event-stream' } : { accept: 'text/event-stream' }),
      signal: mine.signal,
    })
      .then((res) => {
        if (!res.ok || !res.body) throw new Error(`SSE answered ${res.status}`);
        if (!opened) (opened = true), ctx.opened();
        return readEvents(res.body, (d) => !done && mine === ac && ctx.message(JSON.parse(d)));
      })
      .then(
        () => mine === ac && end(),
        () => mine === ac && end(),
      );
  };
  let pending;
  const restart = () => {
    // Several sub/unsub in one tick reopen the stream once.
    if (!pending) pending = Promise.resolve().then(() => ((pending = undefined), !done && start()));
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
  const end = () => {
    if (done) return;
    done = true;
    for (const ac of loops.values()) ac.abort();
    ctx.closed();
  };
  const loop = async (topic, ac) => {
    let etag;
    let wait = ''; // the first request answers at once: it carries the snapshot or the catch-up
    while (!done && loops.get(topic) === ac) {
      const p = ctx.position(topic);
      const q = p ? `epoch=${encodeURIComponent(p.epoch)}&version=${p.version}&` : '';
      const h = etag ? { 'if-none-match': etag } : {};
      const res = await o.fetch(`${o.pollUrl}/topics/${encodeURIComponent(topic)}?${q}${wait}`, {
        headers: headers(ctx, h),
        signal: ac.signal,
      });
      wait = `wait=${o.pollWaitMs}`;
      if (res.status === 200) {
        etag = res.headers.get('etag') || undefined;
        const m = await res.json();
        if (!done && loops.get(topic) === ac) ctx.message(m);
      } else if (res.status === 204 || res.status === 304) {
        await res.arrayBuffer().catch(() => {});
      } else {
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
      done = true;
      for (const ac of loops.values()) ac.abort();
      loops.clear();
    },
  };
}

const carriers = { ws: wsCarrier, 'socket.io': ioCarrier, sse: sseCarrier, poll: pollCarrier };

module.exports = { carriers, retryHint, readEvents };
