'use strict';
// Identity on a connection: expiresAt (closed with 4003), the refresh
// message {"t":"auth"} verified by the transport's authenticate hook, and the
// ids of the publishers' changes in patch frames.
const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const { createHub, codes } = require('../../lib/index.js');
const { until } = require('./manual.helpers.js');

/** A connection whose frames and close are recorded. */
function open(hub, extra = {}) {
  const sent = [];
  const state = { sent, closed: null };
  state.connection = hub.connect({
    send: (frame) => sent.push(JSON.parse(frame)),
    close: (code, reason) => (state.closed = { code, reason }),
    kind: 'test',
    ...extra,
  });
  return state;
}


const errs = (state) => state.sent.filter((f) => f.t === 'err');

describe('identity expiry (manual clock: expiresAt is read on the manual clock)', () => {
  it('closes with 4003 at exactly expiresAt, not a millisecond before', async (t) => {
    const hub = createHub({ clock: 'manual', heartbeat: { intervalMs: 0 } });
    t.after(() => hub.close());
    const a = open(hub, { user: { id: 'u1', expiresAt: 1000 } });
    const b = open(hub, { user: { id: 'u2' } }); // no expiry
    await hub.advance(999);
    assert.equal(a.closed, null);
    await hub.advance(1);
    assert.deepEqual(a.closed, { code: 4003, reason: 'the identity expired' });
    await hub.advance(1e6);
    assert.equal(b.closed, null);
    assert.equal(hub.stats().connections, 1);
  });

  it('refuses an expiresAt that is not a finite number', async (t) => {
    const hub = createHub({ clock: 'manual' });
    t.after(() => hub.close());
    for (const expiresAt of ['1000', NaN, Infinity]) {
      assert.throws(() => open(hub, { user: { id: 'u', expiresAt } }), (err) => err.code === codes.INVALID_ARGUMENT);
    }
    assert.throws(() => open(hub, { authenticate: 'no' }), (err) => err.code === codes.INVALID_ARGUMENT);
    assert.throws(() => open(hub, { kind: 5 }), (err) => err.code === codes.INVALID_ARGUMENT);
  });

  it('real clock: expiresAt in ms since the epoch closes the connection with 4003', async (t) => {
    const hub = createHub({});
    t.after(() => hub.close());
    const a = open(hub, { user: { id: 'u1', expiresAt: Date.now() + 30 } });
    const deadline = Date.now() + 5000;
    while (a.closed === null && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.equal(a.closed?.code, 4003);
  });
});

describe('token refresh: {"t":"auth","token"}', () => {
  const permissions = { 'admin/*': ['admin'], 'ops/*': ['ops'] };

  it('a verified token moves the expiry and keeps the subscriptions its roles admit', async (t) => {
    const hub = createHub({ clock: 'manual', heartbeat: { intervalMs: 0 }, permissions });
    t.after(() => hub.close());
    const tokens = [];
    const a = open(hub, {
      user: { id: 'u1', roles: ['admin', 'ops'], expiresAt: 1000 },
      authenticate: async (token) => {
        tokens.push(token);
        return { id: 'u1', roles: ['ops'], expiresAt: 3000 };
      },
    });
    await hub.publish('admin/a', { v: 1 });
    await hub.publish('ops/b', { v: 1 });
    a.connection.receive('{"t":"sub","topic":"admin/a"}');
    a.connection.receive('{"t":"sub","topic":"ops/b"}');
    await hub.advance(500);
    a.connection.receive(JSON.stringify({ t: 'auth', token: 'fresh' }));
    await until(hub, () => errs(a).length > 0, 'the refresh');
    assert.deepEqual(tokens, ['fresh']);
    assert.equal(errs(a).length, 1);
    assert.equal(errs(a)[0].code, 'DELTACAST_FORBIDDEN');
    assert.equal(errs(a)[0].topic, 'admin/a');
    assert.equal(hub.stats().subscriptions, 1);
    await hub.advance(600); // past the first expiry (1000)
    assert.equal(a.closed, null);
    await hub.advance(1899);
    assert.equal(a.closed, null);
    await hub.advance(1);
    assert.equal(a.closed?.code, 4003);
  });

  it('a refused token is DELTACAST_UNAUTHORIZED and the old identity stays until its expiry', async (t) => {
    const hub = createHub({ clock: 'manual', heartbeat: { intervalMs: 0 } });
    t.after(() => hub.close());
    const a = open(hub, {
      user: { id: 'u1', expiresAt: 1000 },
      authenticate: async () => {
        throw new Error('bad signature');
      },
    });
    a.connection.receive('{"t":"sub","topic":"x"}');
    a.connection.receive('{"t":"auth","token":"forged"}');
    await until(hub, () => errs(a).length > 0, 'the refusal');
    assert.equal(errs(a)[0].code, 'DELTACAST_UNAUTHORIZED');
    assert.equal(hub.stats().subscriptions, 1);
    await hub.advance(1000);
    assert.equal(a.closed?.code, 4003);
  });

  it('an identity naming another user is DELTACAST_FORBIDDEN and closes with 4003', async (t) => {
    const hub = createHub({ clock: 'manual', heartbeat: { intervalMs: 0 } });
    t.after(() => hub.close());
    const a = open(hub, { user: { id: 'u1' }, authenticate: async () => ({ id: 'u2', roles: [] }) });
    a.connection.receive('{"t":"auth","token":"someone-else"}');
    await until(hub, () => a.closed !== null, 'the close');
    assert.equal(errs(a)[0].code, 'DELTACAST_FORBIDDEN');
    assert.equal(a.closed.code, 4003);
  });

  it('without an authenticate hook, or with a hook returning no identity: DELTACAST_UNAUTHORIZED', async (t) => {
    const hub = createHub({ clock: 'manual', heartbeat: { intervalMs: 0 } });
    t.after(() => hub.close());
    const a = open(hub, { user: { id: 'u1' } });
    const b = open(hub, { user: { id: 'u1' }, authenticate: async () => null });
    a.connection.receive('{"t":"auth","token":"t"}');
    b.connection.receive('{"t":"auth","token":"t"}');
    await until(hub, () => errs(a).length > 0 && errs(b).length > 0, 'the refusals');
    assert.equal(errs(a)[0].code, 'DELTACAST_UNAUTHORIZED');
    assert.equal(errs(b)[0].code, 'DELTACAST_UNAUTHORIZED');
    assert.equal(a.closed, null);
  });

  it('a malformed auth message is DELTACAST_INVALID_MESSAGE and the token is never echoed', async (t) => {
    const hub = createHub({ clock: 'manual' });
    t.after(() => hub.close());
    let called = 0;
    const a = open(hub, { authenticate: async () => (called++, { id: '' }) });
    for (const message of ['{"t":"auth"}', '{"t":"auth","token":42}', '{"t":"auth","token":""}']) {
      a.connection.receive(message);
    }
    await hub.advance(0);
    assert.deepEqual(
      errs(a).map((f) => f.code),
      ['DELTACAST_INVALID_MESSAGE', 'DELTACAST_INVALID_MESSAGE', 'DELTACAST_INVALID_MESSAGE'],
    );
    assert.equal(called, 0);
  });
});

describe('ids: the change ids a patch frame contains', () => {
  it('a publish with { id } reaches the subscribers\' patch frame as ids', async (t) => {
    const hub = createHub({ clock: 'manual', lanes: { '**': 'critical' } });
    t.after(() => hub.close());
    const a = open(hub);
    await hub.publish('board', [{ id: 1, n: 0, pad: 'x'.repeat(64) }]);
    a.connection.receive('{"t":"sub","topic":"board"}');
    await hub.advance(0);
    await hub.upsert('board', 1, { n: 1 }, { id: 'evt-9' });
    await hub.advance(0);
    const patch = a.sent.find((f) => f.t === 'patch');
    assert.ok(patch, JSON.stringify(a.sent));
    assert.deepEqual(patch.ids, ['evt-9']);
  });

  it('a paced (squashed) patch carries the union; past 64 ids: none and idsTruncated', async (t) => {
    const hub = createHub({ clock: 'manual' });
    t.after(() => hub.close());
    const a = open(hub);
    const pad = 'x'.repeat(2000); // a patch stays smaller than a snapshot
    await hub.publish('t', { n: 0, pad });
    a.connection.receive('{"t":"sub","topic":"t"}');
    await hub.advance(0);
    hub.publish('t', { n: 1, pad }, { id: 'a' });
    hub.publish('t', { n: 2, pad });
    await hub.publish('t', { n: 3, pad }, { id: 'b' });
    await hub.advance(1000);
    let patches = a.sent.filter((f) => f.t === 'patch');
    assert.equal(patches.length, 1);
    assert.deepEqual(patches[0].ids, ['a', 'b']);
    for (let i = 0; i < 65; i++) hub.publish('t', { n: 10 + i, pad }, { id: `x${i}` });
    await hub.advance(1000);
    patches = a.sent.filter((f) => f.t === 'patch');
    assert.equal(patches.length, 2);
    assert.equal(patches[1].ids, undefined);
    assert.equal(patches[1].idsTruncated, true);
  });
});

describe('adapters: where each carrier finds its token', () => {
  const { bearerToken, cookieToken, upgradeToken, identityHook } = require('../../lib/adapters/shared.js');

  it('HTTP: Authorization: Bearer, case-insensitive scheme; anything else is no token', () => {
    assert.equal(bearerToken({ headers: { authorization: 'Bearer abc.def.ghi' } }), 'abc.def.ghi');
    assert.equal(bearerToken({ headers: { authorization: 'bearer   xyz ' } }), 'xyz');
    assert.equal(bearerToken({ headers: { authorization: 'Basic dXNlcg==' } }), undefined);
    assert.equal(bearerToken({ headers: { authorization: 'Bearer a b' } }), undefined);
    assert.equal(bearerToken({ headers: {} }), undefined);
  });

  it('ws: the subprotocol token.<jwt> offered after deltacast, else the deltacast_token cookie', () => {
    assert.equal(upgradeToken({ headers: { 'sec-websocket-protocol': 'deltacast, token.eyJ.x.y' } }), 'eyJ.x.y');
    assert.equal(upgradeToken({ headers: { 'sec-websocket-protocol': 'deltacast', cookie: 'a=1; deltacast_token=eyJ.c.d' } }), 'eyJ.c.d');
    assert.equal(upgradeToken({ headers: { 'sec-websocket-protocol': 'deltacast, token.' } }), undefined);
    assert.equal(cookieToken({ headers: { cookie: 'deltacast_token=%E0%A4%A' } }), undefined); // malformed escape
    assert.equal(cookieToken({ headers: { cookie: 'other=1' } }), undefined);
  });

  it('identityHook: user wins; else authenticate(token, ctx) with the carrier token; no token is refused 401', async () => {
    const user = () => ({ id: 'from-user' });
    assert.equal(identityHook({ user, authenticate: () => ({}) }, () => 't'), user);
    assert.equal(identityHook({}, () => 't'), undefined);
    const seen = [];
    const hook = identityHook({ authenticate: (token, ctx) => (seen.push([token, ctx]), { id: 'u' }) }, (ctx) => ctx.token);
    assert.deepEqual(await hook({ token: 'tok' }), { id: 'u' });
    assert.deepEqual(seen, [['tok', { token: 'tok' }]]);
    assert.throws(() => hook({}), (err) => err.code === 'DELTACAST_UNAUTHORIZED' && err.status === 401);
  });

  it('ws adapter: a missing token is refused 401 on the upgrade and audited as a refusal, without the token', async (t) => {
    const http = require('node:http');
    const { once } = require('node:events');
    const { WebSocketServer, WebSocket } = require('ws');
    const { attachWebSocketServer } = require('../../lib/adapters/ws.js');
    const events = [];
    const hub = createHub({ onAudit: (event) => events.push(event) });
    const server = http.createServer();
    const wss = new WebSocketServer({ server });
    const attached = attachWebSocketServer(wss, hub, {
      authenticate: async (token) => {
        if (token !== 'good-token') throw new Error('bad');
        return { id: 'u1', roles: [] };
      },
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    t.after(async () => {
      attached.close();
      wss.close();
      server.close();
      await hub.close();
    });
    const url = `ws://127.0.0.1:${server.address().port}`;
    const refusedStatus = (protocols) =>
      new Promise((resolve) => {
        const ws = new WebSocket(url, protocols);
        ws.on('unexpected-response', (req, res) => {
          resolve(res.statusCode);
          req.destroy();
        });
        ws.on('error', () => {});
      });
    assert.equal(await refusedStatus(['deltacast']), 401);
    assert.equal(await refusedStatus(['deltacast', 'token.bad-token']), 401);
    const ok = new WebSocket(url, ['deltacast', 'token.good-token']);
    await once(ok, 'open');
    ok.close();
    await once(ok, 'close');
    for (let i = 0; i < 200 && !events.some((e) => e.type === 'close'); i++) await new Promise((resolve) => setTimeout(resolve, 10));
    const types = events.map((e) => [e.type, e.transport, e.code]);
    assert.deepEqual(types.slice(0, 3), [
      ['refused', 'ws', 'DELTACAST_UNAUTHORIZED'],
      ['refused', 'ws', 'DELTACAST_UNAUTHORIZED'],
      ['connect', 'ws', undefined],
    ]);
    assert.deepEqual(types[3], ['close', 'ws', undefined]);
    assert.ok(!/good-token|bad-token/.test(JSON.stringify(events)), JSON.stringify(events));
  });
});
