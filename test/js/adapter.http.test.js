'use strict';
// deltacast/http over real servers on loopback: node:http, Express 5 and
// Fastify 5, with fetch as the client (polling, long-polling) and a small
// Server-Sent Events reader over fetch's streamed body.

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const express = require('express');
const Fastify = require('fastify');
const { createHub, applyPatch } = require('../../lib/index.js');
const { httpHandler, pollingHandler, httpCodes } = require('../../lib/adapters/http.js');

const TIMEOUT = { timeout: 30000 };

function makeHub(t, options = {}) {
  const hub = createHub({ lanes: { '**': 'critical' }, ...options });
  t.after(() => hub.close());
  return hub;
}

async function listen(t, server) {
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(
    () =>
      new Promise((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  );
  return `http://127.0.0.1:${server.address().port}`;
}

/** A node:http server running the handler alone; returns the base URL (with the prefix). */
async function serve(t, hub, options) {
  const handler = httpHandler(hub, options);
  const origin = await listen(t, http.createServer((req, res) => handler(req, res)));
  return `${origin}${options?.prefix ?? '/deltacast'}`;
}

/** Waits until `check()` is true, polling; fails instead of hanging. */
async function until(check, what, ms = 10000) {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Rejects after `ms` unless `promise` settles first. */
function within(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

function tagOf(response) {
  const m = /^"([^":]+):(\d+)"$/.exec(response.headers.get('etag'));
  assert.ok(m, `an ETag "<epoch>:<version>", got ${response.headers.get('etag')}`);
  return { epoch: m[1], version: Number(m[2]) };
}

/**
 * A Server-Sent Events reader over fetch: events are { id, data, comment }.
 * `next()` resolves with the next data event; `paused` stops reading the body.
 */
async function openEvents(url, headers = {}, held = new Map()) {
  const abort = new AbortController();
  const response = await fetch(url, { headers, signal: abort.signal });
  const reader = response.body?.getReader();
  const decoder = new TextDecoder();
  const queue = [];
  const waiters = [];
  let buffer = '';
  let ended = false;
  let lastId = '';
  let comments = 0;
  let bytes = 0;
  const state = { paused: false, resume: null };
  const replicas = new Map(held); // a resuming reader starts from what it held
  const dispatch = (block) => {
    const event = { id: undefined, data: [] };
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) {
        comments += 1;
        continue;
      }
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'id') event.id = value;
      else if (field === 'data') event.data.push(value);
    }
    if (event.id !== undefined) lastId = event.id;
    if (event.data.length === 0) return;
    const item = { id: lastId, message: JSON.parse(event.data.join('\n')) };
    for (const m of item.message.t === 'batch' ? item.message.items : [item.message]) {
      if (m.t === 'snap') replicas.set(m.topic, { epoch: m.epoch, version: m.version, data: m.data });
      if (m.t === 'patch') {
        const held = replicas.get(m.topic);
        assert.ok(held && held.epoch === m.epoch && held.version === m.from, `a patch from ${m.from} applies to what is held`);
        replicas.set(m.topic, { epoch: m.epoch, version: m.to, data: applyPatch(held.data, m.ops) });
      }
      if (m.t === 'gone') replicas.delete(m.topic);
    }
    if (waiters.length > 0) waiters.shift().resolve(item);
    else queue.push(item);
  };
  const pump = async () => {
    try {
      for (;;) {
        if (state.paused) await new Promise((resolve) => (state.resume = resolve));
        const { value, done } = await reader.read();
        if (done) break;
        bytes += value.length;
        buffer += decoder.decode(value, { stream: true });
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          dispatch(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
        }
      }
    } catch {
      // aborted
    }
    ended = true;
    for (const waiter of waiters.splice(0)) waiter.reject(new Error('the event stream ended'));
  };
  if (response.status === 200) pump();
  return {
    response,
    get lastId() {
      return lastId;
    },
    get comments() {
      return comments;
    },
    get bytes() {
      return bytes;
    },
    get ended() {
      return ended;
    },
    replicas,
    /** Takes every queued event without waiting. */
    drain() {
      return queue.splice(0);
    },
    next(ms = 10000) {
      if (queue.length > 0) return Promise.resolve(queue.shift());
      if (ended) return Promise.reject(new Error('the event stream ended'));
      return within(new Promise((resolve, reject) => waiters.push({ resolve, reject })), ms, 'the next event');
    },
    pause() {
      state.paused = true;
    },
    resume() {
      state.paused = false;
      state.resume?.();
    },
    close() {
      abort.abort();
    },
  };
}

function rows(n, tick = 0) {
  return Array.from({ length: n }, (_, i) => ({ id: i, name: `row ${i}`, price: tick > 0 && i === tick % n ? 1000 + tick : i }));
}

describe('polling', () => {
  it('answers snap, then a patch from the version given, then 204 when current', TIMEOUT, async (t) => {
    const hub = makeHub(t);
    const base = await serve(t, hub);
    await hub.publish('prices', rows(10));
    let r = await fetch(`${base}/topics/prices`);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('cache-control'), 'no-cache');
    assert.match(r.headers.get('content-type'), /^application\/json/);
    const snap = await r.json();
    assert.equal(snap.t, 'snap');
    assert.deepEqual(snap.data, rows(10));
    assert.deepEqual(tagOf(r), { epoch: snap.epoch, version: snap.version });

    await hub.publish('prices', rows(10, 3));
    r = await fetch(`${base}/topics/prices?epoch=${snap.epoch}&version=${snap.version}`);
    assert.equal(r.status, 200);
    const patch = await r.json();
    assert.equal(patch.t, 'patch');
    assert.equal(patch.from, snap.version);
    assert.deepEqual(patch.ops, [{ op: 'replace', path: '/3/price', value: 1003 }]);
    assert.deepEqual(tagOf(r), { epoch: snap.epoch, version: patch.to });

    r = await fetch(`${base}/topics/prices?epoch=${snap.epoch}&version=${patch.to}`);
    assert.equal(r.status, 204);
    assert.equal(r.headers.get('etag'), `"${snap.epoch}:${patch.to}"`);
    assert.equal(await r.text(), '');

    // another epoch: a snapshot
    r = await fetch(`${base}/topics/prices?epoch=other&version=1`);
    assert.equal((await r.json()).t, 'snap');
  });

  it('If-None-Match: 304 when current, a full snap otherwise', TIMEOUT, async (t) => {
    const hub = makeHub(t);
    const base = await serve(t, hub);
    await hub.publish('prices', rows(10));
    let r = await fetch(`${base}/topics/prices`);
    const tag = r.headers.get('etag');
    await r.arrayBuffer();
    r = await fetch(`${base}/topics/prices`, { headers: { 'If-None-Match': tag } });
    assert.equal(r.status, 304);
    assert.equal(r.headers.get('etag'), tag);
    r = await fetch(`${base}/topics/prices`, { headers: { 'If-None-Match': `W/"x", ${tag}` } });
    assert.equal(r.status, 304);
    // tags that are not "<epoch>:<version>" are ignored: the full answer
    for (const bad of ['"nonsense"', '"a:b:c"', 'W/', '"e:99999999999999999999"']) {
      r = await fetch(`${base}/topics/prices`, { headers: { 'If-None-Match': bad } });
      assert.equal(r.status, 200, bad);
      assert.equal((await r.json()).t, 'snap');
    }
    await hub.publish('prices', rows(10, 4));
    // the cached representation is stale: the new one, in full (not a patch)
    r = await fetch(`${base}/topics/prices`, { headers: { 'If-None-Match': tag } });
    assert.equal(r.status, 200);
    const body = await r.json();
    assert.equal(body.t, 'snap');
    assert.deepEqual(body.data, rows(10, 4));
    assert.notEqual(r.headers.get('etag'), tag);
    // with a query, a 204 becomes 304 when the tag matches
    const { epoch, version } = tagOf(r);
    r = await fetch(`${base}/topics/prices?epoch=${epoch}&version=${version}`, { headers: { 'If-None-Match': `"${epoch}:${version}"` } });
    assert.equal(r.status, 304);
    // long-polling a cached representation: the next version comes in full
    await until(() => hub.stats().connections === 0, 'earlier requests to close');
    const held = fetch(`${base}/topics/prices?wait=20000`, { headers: { 'If-None-Match': `"${epoch}:${version}"` } });
    await until(() => hub.stats().connections === 1, 'the long-poll connection');
    await hub.publish('prices', rows(10, 6));
    r = await within(held, 10000, 'the long-poll answer');
    assert.equal(r.status, 200);
    const full = await r.json();
    assert.equal(full.t, 'snap');
    assert.deepEqual(full.data, rows(10, 6));
    assert.deepEqual(tagOf(r), { epoch, version: version + 1 });
  });

  it('a closed hub: 503 DELTACAST_CLOSED', TIMEOUT, async (t) => {
    const hub = makeHub(t);
    const base = await serve(t, hub);
    await hub.publish('prices', rows(3));
    await hub.close();
    const r = await fetch(`${base}/topics/prices`);
    assert.equal(r.status, 503);
    assert.equal((await r.json()).code, 'DELTACAST_CLOSED');
  });

  it('a topic that does not exist: 404 DELTACAST_TOPIC_NOT_FOUND; resuming one that went: gone', TIMEOUT, async (t) => {
    const hub = makeHub(t);
    const base = await serve(t, hub);
    let r = await fetch(`${base}/topics/nothing`);
    assert.equal(r.status, 404);
    assert.equal((await r.json()).code, httpCodes.TOPIC_NOT_FOUND);
    await hub.publish('brief', { a: 1 });
    r = await fetch(`${base}/topics/brief`);
    const { epoch, version } = tagOf(r);
    await r.arrayBuffer();
    await hub.delete('brief');
    r = await fetch(`${base}/topics/brief?epoch=${epoch}&version=${version}`);
    assert.equal(r.status, 200);
    assert.deepEqual(await r.json(), { t: 'gone', topic: 'brief', epoch, version, reason: 'absent' });
  });

  it('long-polling: a current client is held until the next version', TIMEOUT, async (t) => {
    const hub = makeHub(t);
    const base = await serve(t, hub);
    await hub.publish('prices', rows(10));
    const r0 = await fetch(`${base}/topics/prices`);
    const { epoch, version } = tagOf(r0);
    await r0.arrayBuffer();
    // the connections of earlier requests close once their responses are sent
    await until(() => hub.stats().connections === 0, 'earlier requests to close');
    const before = hub.stats().connections;
    const held = fetch(`${base}/topics/prices?epoch=${epoch}&version=${version}&wait=20000`);
    // the request is parked on a hub connection
    await until(() => hub.stats().connections === before + 1, 'the long-poll connection');
    await hub.publish('prices', rows(10, 7));
    const r = await within(held, 10000, 'the long-poll answer');
    assert.equal(r.status, 200);
    const patch = await r.json();
    assert.equal(patch.t, 'patch');
    assert.equal(patch.from, version);
    assert.deepEqual(patch.ops, [{ op: 'replace', path: '/7/price', value: 1007 }]);
    await until(() => hub.stats().connections === before, 'the connection to close');
  });

  it('long-polling: times out with 204, and waits for the first version of a topic', TIMEOUT, async (t) => {
    const hub = makeHub(t);
    const base = await serve(t, hub);
    await hub.publish('prices', rows(3));
    const r0 = await fetch(`${base}/topics/prices`);
    const { epoch, version } = tagOf(r0);
    await r0.arrayBuffer();
    const r = await fetch(`${base}/topics/prices?epoch=${epoch}&version=${version}&wait=50`);
    assert.equal(r.status, 204);
    assert.equal(r.headers.get('etag'), `"${epoch}:${version}"`);

    await until(() => hub.stats().connections === 0, 'earlier requests to close');
    const first = fetch(`${base}/topics/later?wait=20000`);
    await until(() => hub.stats().subscriptions === 1, 'the long-poll subscription');
    await hub.publish('later', { hello: 'world' });
    const answer = await within(first, 10000, 'the first version');
    assert.equal(answer.status, 200);
    assert.deepEqual((await answer.json()).data, { hello: 'world' });
  });

  it('a wait longer than maxWaitMs, however many digits, is cut to maxWaitMs', TIMEOUT, async (t) => {
    const hub = makeHub(t);
    const base = await serve(t, hub, { maxWaitMs: 50 });
    await hub.publish('prices', rows(3));
    const { epoch, version } = hub.get('prices');
    for (const wait of ['99999999999999999999', '9999999999']) {
      const r = await within(fetch(`${base}/topics/prices?epoch=${epoch}&version=${version}&wait=${wait}`), 10000, 'the cut long-poll');
      assert.equal(r.status, 204, `wait=${wait}`);
    }
    const bad = await fetch(`${base}/topics/prices?epoch=${epoch}&version=${version}&wait=-5`);
    assert.equal(bad.status, 400);
    assert.equal((await bad.json()).code, 'DELTACAST_INVALID_QUERY');
  });

  it('an aborted long-poll closes its hub connection', TIMEOUT, async (t) => {
    const hub = makeHub(t);
    const base = await serve(t, hub);
    await hub.publish('prices', rows(3));
    const { epoch, version } = hub.get('prices');
    const before = hub.stats().connections;
    const abort = new AbortController();
    const held = fetch(`${base}/topics/prices?epoch=${epoch}&version=${version}&wait=20000`, { signal: abort.signal });
    await until(() => hub.stats().connections === before + 1, 'the long-poll connection');
    abort.abort();
    await assert.rejects(held);
    await until(() => hub.stats().connections === before && hub.stats().subscriptions === 0, 'the connection to close');
  });

  it('topics are percent-decoded once', TIMEOUT, async (t) => {
    const hub = makeHub(t);
    const base = await serve(t, hub);
    await hub.publish('x/50%', { which: 'percent' });
    await hub.publish('x/50%25', { which: 'literal' });
    await hub.publish('a b+c', { which: 'space' });
    let r = await fetch(`${base}/topics/${encodeURIComponent('x/50%')}`);
    assert.deepEqual((await r.json()).data, { which: 'percent' });
    r = await fetch(`${base}/topics/x/50%2525`);
    assert.deepEqual((await r.json()).data, { which: 'literal' });
    // in the path, '+' is a plus
    r = await fetch(`${base}/topics/a%20b+c`);
    assert.deepEqual((await r.json()).data, { which: 'space' });
  });

  it('bad requests: 400, 404, 405, 414 with a code, and no connection left behind', TIMEOUT, async (t) => {
    const hub = makeHub(t);
    const base = await serve(t, hub, { maxUrlBytes: 512 });
    await hub.publish('prices', rows(3));
    const cases = [
      ['/topics/prices?version=3', 400, httpCodes.INVALID_QUERY],
      ['/topics/prices?epoch=e&version=-1', 400, httpCodes.INVALID_QUERY],
      ['/topics/prices?epoch=e&version=1.5', 400, httpCodes.INVALID_QUERY],
      ['/topics/prices?epoch=e&version=9007199254740993', 400, httpCodes.INVALID_QUERY],
      ['/topics/prices?epoch=a%22b&version=1', 400, httpCodes.INVALID_QUERY],
      ['/topics/prices?wait=soon', 400, httpCodes.INVALID_QUERY],
      ['/topics/prices?wait=1&wait=2', 400, httpCodes.INVALID_QUERY],
      ['/topics/prices?epoch=%ZZ&version=1', 400, httpCodes.INVALID_QUERY],
      ['/topics/bad%FFtopic', 400, httpCodes.INVALID_TOPIC],
      ['/topics/bad%01topic', 400, httpCodes.INVALID_TOPIC],
      ['/topics/%ED%A0%80', 400, httpCodes.INVALID_TOPIC],
      [`/topics/${'x'.repeat(300)}`, 400, httpCodes.INVALID_TOPIC],
      ['/topics/', 404, httpCodes.NOT_FOUND],
      ['/elsewhere', 404, httpCodes.NOT_FOUND],
      ['/events', 400, httpCodes.INVALID_QUERY],
      ['/events?topics=a,,b', 400, httpCodes.INVALID_TOPIC],
      ['/events?topics=a,a', 400, httpCodes.INVALID_QUERY],
      [`/topics/${'y'.repeat(600)}`, 414, httpCodes.URL_TOO_LONG],
    ];
    for (const [path, status, code] of cases) {
      const r = await fetch(base + path);
      assert.equal(r.status, status, path);
      assert.equal(r.headers.get('cache-control'), 'no-store', path);
      const body = await r.json();
      assert.equal(body.code, code, path);
      assert.equal(typeof body.message, 'string');
    }
    const r = await fetch(`${base}/topics/prices`, { method: 'POST', body: '{}' });
    assert.equal(r.status, 405);
    assert.equal(r.headers.get('allow'), 'GET');
    assert.equal((await r.json()).code, httpCodes.METHOD_NOT_ALLOWED);
    // the state and other clients are untouched
    assert.deepEqual(hub.get('prices').data, rows(3));
    await until(() => hub.stats().connections === 0, 'every request connection to close');
  });

  it('the package entry point deltacast/http, CommonJS and ESM', async () => {
    const cjs = require('deltacast/http');
    const esm = await import('deltacast/http');
    assert.equal(cjs.httpHandler, httpHandler);
    assert.equal(esm.httpHandler, httpHandler);
    assert.equal(esm.pollingHandler, httpHandler);
    assert.throws(() => httpHandler({}), { code: 'DELTACAST_INVALID_ARGUMENT' });
    const hub = createHub();
    try {
      assert.throws(() => httpHandler(hub, { prefix: 'live/' }), { code: 'DELTACAST_INVALID_ARGUMENT' });
      assert.throws(() => httpHandler(hub, { maxWaitMs: -1 }), { code: 'DELTACAST_INVALID_ARGUMENT' });
      assert.throws(() => httpHandler(hub, { wait: 5 }), { code: 'DELTACAST_INVALID_ARGUMENT' });
    } finally {
      await hub.close();
    }
  });

  it('a request outside the prefix gets 404 from node:http', TIMEOUT, async (t) => {
    const hub = makeHub(t);
    const base = await serve(t, hub, { prefix: '/live' });
    const r = await fetch(base.replace('/live', '/other'));
    assert.equal(r.status, 404);
    assert.equal((await r.json()).code, httpCodes.NOT_FOUND);
    assert.equal(pollingHandler, httpHandler);
  });
});

describe('identity, permissions and rate', () => {
  const users = {
    alice: { id: 'alice', roles: ['admin'] },
    bob: { id: 'bob', roles: [] },
  };
  async function authServer(t, extra = {}) {
    const hub = makeHub(t, { permissions: { 'public/**': [], 'admin/**': ['admin'] }, ...extra });
    const seen = [];
    const base = await serve(t, hub, {
      async user(req) {
        await new Promise((resolve) => setImmediate(resolve));
        const auth = req.headers.authorization ?? '';
        if (auth === 'Bearer banned') throw Object.assign(new Error('banned user'), { status: 403 });
        if (auth === 'Bearer old') return { id: 'old', roles: ['admin'], expiresAt: Date.now() - 1000 };
        const user = users[auth.replace('Bearer ', '')] ?? null;
        seen.push(user);
        return user;
      },
    });
    await hub.publish('admin/secrets', { k: 1 });
    await hub.publish('public/news', { n: 1 });
    return { hub, base, seen };
  }

  it('the user hook: 401 without identity, 403 when refused, roles decide per topic', TIMEOUT, async (t) => {
    const { hub, base, seen } = await authServer(t);
    let r = await fetch(`${base}/topics/public/news`);
    assert.equal(r.status, 401);
    assert.equal((await r.json()).code, httpCodes.UNAUTHORIZED);
    r = await fetch(`${base}/topics/public/news`, { headers: { authorization: 'Bearer banned' } });
    assert.equal(r.status, 403);
    assert.deepEqual(await r.json(), { code: httpCodes.FORBIDDEN, message: 'banned user' });
    r = await fetch(`${base}/topics/public/news`, { headers: { authorization: 'Bearer old' } });
    assert.equal(r.status, 401);
    r = await fetch(`${base}/topics/admin/secrets`, { headers: { authorization: 'Bearer bob' } });
    assert.equal(r.status, 403);
    assert.equal((await r.json()).code, 'DELTACAST_FORBIDDEN');
    r = await fetch(`${base}/topics/public/news`, { headers: { authorization: 'Bearer bob' } });
    assert.equal(r.status, 200);
    r = await fetch(`${base}/topics/admin/secrets`, { headers: { authorization: 'Bearer alice' } });
    assert.equal(r.status, 200);
    assert.deepEqual((await r.json()).data, { k: 1 });
    // the hook's result went to hub.connect unchanged
    assert.equal(seen.at(-1), users.alice);
    // an event stream with one forbidden topic is refused as a whole, before any event
    r = await fetch(`${base}/events?topics=public/news,admin/secrets`, { headers: { authorization: 'Bearer bob' } });
    assert.equal(r.status, 403);
    assert.equal((await r.json()).code, 'DELTACAST_FORBIDDEN');
    r = await fetch(`${base}/events?topics=public/news`);
    assert.equal(r.status, 401);
    await r.arrayBuffer();
    await until(() => hub.stats().connections === 0, 'every connection to close');
  });

  it('requests over the hub rate are refused with 429 DELTACAST_RATE_LIMITED', TIMEOUT, async (t) => {
    const hub = makeHub(t, { limits: { messagesPerSecond: 1, messageBurst: 3 } });
    const base = await serve(t, hub);
    await hub.publish('prices', rows(3));
    const statuses = [];
    for (let i = 0; i < 5; i++) {
      const r = await fetch(`${base}/topics/prices`);
      statuses.push(r.status);
      if (r.status === 429) {
        assert.equal((await r.json()).code, 'DELTACAST_RATE_LIMITED');
        assert.ok(Number(r.headers.get('retry-after')) >= 1);
      } else {
        await r.arrayBuffer();
      }
    }
    assert.deepEqual(statuses.slice(0, 3), [200, 200, 200]);
    assert.equal(statuses[4], 429);
  });
});

describe('Express 5 and Fastify 5', () => {
  it('Express: the handler as middleware, other routes untouched', TIMEOUT, async (t) => {
    const hub = makeHub(t);
    const app = express();
    app.use(httpHandler(hub));
    app.get('/health', (req, res) => res.json({ ok: true }));
    const origin = await listen(t, http.createServer(app));
    await hub.publish('prices', rows(5));
    let r = await fetch(`${origin}/health`);
    assert.deepEqual(await r.json(), { ok: true });
    r = await fetch(`${origin}/deltacast/topics/prices`);
    const snap = await r.json();
    assert.equal(snap.t, 'snap');
    await hub.publish('prices', rows(5, 2));
    r = await fetch(`${origin}/deltacast/topics/prices?epoch=${snap.epoch}&version=${snap.version}`);
    assert.equal((await r.json()).t, 'patch');
    r = await fetch(`${origin}/deltacast/topics/prices?epoch=${snap.epoch}&version=${snap.version + 1}`);
    assert.equal(r.status, 204);
    r = await fetch(`${origin}/deltacast/topics/bad%FF`);
    assert.equal(r.status, 400);
    const events = await openEvents(`${origin}/deltacast/events?topics=prices`);
    t.after(() => events.close());
    assert.equal(events.response.status, 200);
    assert.equal((await events.next()).message.t, 'snap');
    await hub.publish('prices', rows(5, 3));
    assert.equal((await events.next()).message.t, 'patch');
  });

  it('Fastify: mounted with reply.hijack() on a wildcard route', TIMEOUT, async (t) => {
    const hub = makeHub(t);
    const handler = httpHandler(hub);
    // forceCloseConnections: fetch may leave a connection that never carried a
    // request, which server.close() would otherwise wait out.
    const fastify = Fastify({ forceCloseConnections: true });
    fastify.all('/deltacast/*', (request, reply) => {
      reply.hijack();
      handler(request.raw, reply.raw);
    });
    fastify.get('/health', async () => ({ ok: true }));
    await fastify.listen({ port: 0, host: '127.0.0.1' });
    t.after(() => fastify.close());
    const origin = `http://127.0.0.1:${fastify.server.address().port}`;
    await hub.publish('prices', rows(5));
    let r = await fetch(`${origin}/health`);
    assert.deepEqual(await r.json(), { ok: true });
    r = await fetch(`${origin}/deltacast/topics/prices`);
    const snap = await r.json();
    assert.equal(snap.t, 'snap');
    await until(() => hub.stats().connections === 0, 'earlier requests to close');
    const held = fetch(`${origin}/deltacast/topics/prices?epoch=${snap.epoch}&version=${snap.version}&wait=20000`);
    await until(() => hub.stats().connections === 1, 'the long-poll connection');
    await hub.publish('prices', rows(5, 1));
    r = await within(held, 10000, 'the long-poll answer');
    assert.equal((await r.json()).t, 'patch');
    r = await fetch(`${origin}/deltacast/topics/prices`, { method: 'DELETE' });
    assert.equal(r.status, 405);
    const events = await openEvents(`${origin}/deltacast/events?topics=prices`);
    t.after(() => events.close());
    assert.equal((await events.next()).message.t, 'snap');
    await hub.publish('prices', rows(5, 2));
    assert.equal((await events.next()).message.t, 'patch');
    events.close();
    await until(() => hub.stats().connections === 0, 'the event stream connection to close');
  });
});

describe('Server-Sent Events', () => {
  it('streams a snap, then patches, each with an id of every topic held', TIMEOUT, async (t) => {
    const hub = makeHub(t);
    const base = await serve(t, hub);
    await hub.publish('a', rows(5));
    const events = await openEvents(`${base}/events?topics=a,b`);
    t.after(() => events.close());
    assert.equal(events.response.status, 200);
    assert.match(events.response.headers.get('content-type'), /^text\/event-stream/);
    assert.equal(events.response.headers.get('cache-control'), 'no-cache');
    const first = await events.next();
    assert.equal(first.message.t, 'snap');
    const a = hub.get('a');
    assert.equal(first.id, `${a.epoch}:${a.version},`);
    await hub.publish('a', rows(5, 2));
    const second = await events.next();
    assert.equal(second.message.t, 'patch');
    assert.deepEqual(second.message.ops, [{ op: 'replace', path: '/2/price', value: 1002 }]);
    assert.equal(second.id, `${a.epoch}:${a.version + 1},`);
    await hub.publish('b', { hello: 1 });
    const third = await events.next();
    assert.equal(third.message.t, 'snap');
    const b = hub.get('b');
    assert.equal(third.id, `${a.epoch}:${a.version + 1},${b.epoch}:${b.version}`);
    assert.deepEqual(events.replicas.get('a').data, rows(5, 2));
  });

  it('Last-Event-ID resumes each topic from its version: patches, not snapshots', TIMEOUT, async (t) => {
    const hub = makeHub(t);
    const base = await serve(t, hub);
    await hub.publish('a', rows(20));
    await hub.publish('b', rows(20));
    let events = await openEvents(`${base}/events?topics=a,b`);
    await events.next();
    const { id } = await events.next();
    events.close();
    await until(() => hub.stats().connections === 0, 'the first stream to close');
    await hub.publish('a', rows(20, 4));
    await hub.publish('a', rows(20, 5));
    events = await openEvents(`${base}/events?topics=a,b`, { 'Last-Event-ID': id }, events.replicas);
    t.after(() => events.close());
    const resumed = await events.next();
    assert.equal(resumed.message.t, 'patch');
    assert.equal(resumed.message.topic, 'a');
    assert.equal(resumed.message.from, hub.get('a').version - 2);
    // b was current: nothing for it until it changes
    await hub.publish('b', rows(20, 1));
    const next = await events.next();
    assert.equal(next.message.t, 'patch');
    assert.equal(next.message.topic, 'b');
    const a = hub.get('a');
    const b = hub.get('b');
    assert.equal(next.id, `${a.epoch}:${a.version},${b.epoch}:${b.version}`);
    assert.deepEqual(events.replicas.get('a').data, rows(20, 5));
    assert.deepEqual(events.replicas.get('b').data, rows(20, 1));

    // an id that does not fit the topics (another count, garbage): snapshots
    for (const bad of [`${a.epoch}:${a.version}`, 'x:y,z', 'a'.repeat(100) + ':1,']) {
      const again = await openEvents(`${base}/events?topics=a,b`, { 'Last-Event-ID': bad });
      assert.equal((await again.next()).message.t, 'snap', bad);
      again.close();
    }
  });

  it('heartbeats are comment lines', TIMEOUT, async (t) => {
    const hub = makeHub(t);
    const base = await serve(t, hub, { heartbeatMs: 10 });
    const events = await openEvents(`${base}/events?topics=quiet`);
    t.after(() => events.close());
    await until(() => events.comments >= 2, 'two heartbeats');
    assert.equal(events.drain().length, 0);
  });

  it('an aborted stream closes its hub connection, and hub.close() ends the stream', TIMEOUT, async (t) => {
    const hub = makeHub(t);
    const base = await serve(t, hub);
    await hub.publish('a', rows(3));
    const before = hub.stats().connections;
    const events = await openEvents(`${base}/events?topics=a`);
    await events.next();
    assert.equal(hub.stats().connections, before + 1);
    events.close();
    await until(() => hub.stats().connections === before && hub.stats().subscriptions === 0, 'the connection to close');

    const other = await openEvents(`${base}/events?topics=a`);
    await other.next();
    await hub.close();
    await until(() => other.ended, 'the stream to end');
  });

  it('a reader that stops reading while 10,000 updates flow: bounded server buffer, others unaffected, converges', { timeout: 120000 }, async (t) => {
    // Non-critical topics: while the response is congested the core holds
    // them back and sends one catch-up frame per topic when it drains.
    const hub = createHub({ lanes: { '**': 'high' }, pacing: { highWindowMs: 0 }, credit: { stallTimeoutMs: 600000 } });
    t.after(() => hub.close());
    const handler = httpHandler(hub);
    let maxBuffered = 0;
    const origin = await listen(
      t,
      http.createServer((req, res) => {
        // the response's own buffer, read after every write the handler makes
        const write = res.write;
        res.write = function (...args) {
          const ok = write.apply(this, args);
          maxBuffered = Math.max(maxBuffered, res.writableLength);
          return ok;
        };
        handler(req, res);
      }),
    );
    const big = (tick) =>
      Array.from({ length: 100 }, (_, i) => ({ id: i, text: `${i % 10 === tick % 10 ? tick : 0}`.padEnd(400, '.') }));
    await hub.publish('board', big(0));
    const stalled = await openEvents(`${origin}/deltacast/events?topics=board`);
    const healthy = await openEvents(`${origin}/deltacast/events?topics=board`);
    t.after(() => stalled.close());
    t.after(() => healthy.close());
    await stalled.next();
    await healthy.next();
    stalled.pause();
    let sent = 0;
    for (let tick = 1; tick <= 10000; tick++) {
      await hub.publish('board', big(tick));
      sent += 10 * 400; // ten rows of 400 characters change
      healthy.drain();
    }
    const last = hub.get('board');
    // the healthy reader keeps up while the other one is stalled
    await until(() => healthy.replicas.get('board')?.version === last.version, 'the healthy reader to converge', 60000);
    assert.deepEqual(healthy.replicas.get('board').data, last.data);
    // what the server buffered for the stalled reader stayed far below what was published for it
    assert.ok(sent > 30 * 1024 * 1024);
    assert.ok(maxBuffered < 1024 * 1024, `at most 1 MiB buffered in the server, got ${maxBuffered}`);
    t.diagnostic(`published for the stalled reader: ${sent} bytes; most buffered in its response: ${maxBuffered} bytes; received before resuming: ${stalled.bytes} bytes`);
    stalled.resume();
    await until(() => stalled.replicas.get('board')?.version === last.version, 'the stalled reader to converge', 60000);
    assert.deepEqual(stalled.replicas.get('board').data, last.data);
  });

  it('SSE limits: too many topics, bad topics, percent-decoded names', TIMEOUT, async (t) => {
    const hub = makeHub(t);
    const base = await serve(t, hub, { maxTopics: 3 });
    let r = await fetch(`${base}/events?topics=a,b,c,d`);
    assert.equal(r.status, 400);
    assert.equal((await r.json()).code, httpCodes.INVALID_QUERY);
    r = await fetch(`${base}/events?topics=a,bad%01`);
    assert.equal(r.status, 400);
    assert.equal((await r.json()).code, httpCodes.INVALID_TOPIC);
    await hub.publish('x,y', { comma: true });
    await hub.publish('p q', { space: true });
    const events = await openEvents(`${base}/events?topics=x%2Cy,p+q`);
    t.after(() => events.close());
    const got = new Set();
    got.add((await events.next()).message.topic);
    got.add((await events.next()).message.topic);
    assert.deepEqual([...got].sort(), ['p q', 'x,y']);
    await until(() => hub.stats().connections === 1, 'refused streams to close');
  });
});
