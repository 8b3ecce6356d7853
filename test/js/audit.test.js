'use strict';
// onAudit: one structured event per connect, refusal, sub, forbidden sub,
// auth refresh, expiry and close, in the order the core decided them.
const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const { createHub, codes } = require('../../lib/index.js');
const { until } = require('./manual.helpers.js');


describe('onAudit', () => {
  it('a scripted session gives the exact sequence, and no event holds a token', async (t) => {
    const events = [];
    const hub = createHub({
      clock: 'manual',
      heartbeat: { intervalMs: 0 },
      permissions: { 'admin/*': ['admin'], 'ops/*': ['ops'], 'root/*': ['root'] },
      onAudit: (event) => events.push(event),
    });
    t.after(() => hub.close());
    const TOKENS = ['tok-initial-3f9a', 'tok-forged-77c1', 'tok-refresh-d2e0'];
    hub.audit({ type: 'refused', transport: 'ws', code: 'DELTACAST_UNAUTHORIZED' }); // what an adapter reports
    const sent = [];
    let closed = null;
    const connection = hub.connect({
      send: (frame) => sent.push(JSON.parse(frame)),
      close: (code) => (closed = code),
      kind: 'ws',
      user: { id: 'u1', roles: ['admin', 'ops'], expiresAt: 1000 },
      authenticate: async (token) => {
        if (token !== TOKENS[2]) throw new Error('bad token');
        return { id: 'u1', roles: ['ops'], expiresAt: 2000 };
      },
    });
    await hub.advance(10);
    connection.receive('{"t":"sub","topic":"admin/a"}');
    connection.receive('{"t":"sub","topic":"ops/b"}');
    connection.receive('{"t":"sub","topic":"root/c"}');
    await hub.advance(10);
    connection.receive(JSON.stringify({ t: 'auth', token: TOKENS[1] }));
    await until(hub, () => events.some((e) => e.type === 'auth-failed'), 'the failed refresh');
    await hub.advance(10);
    connection.receive(JSON.stringify({ t: 'auth', token: TOKENS[2] }));
    await until(hub, () => events.some((e) => e.type === 'auth'), 'the refresh');
    await hub.advance(2000 - 30);
    assert.equal(closed, 4003);

    const base = { connection: connection.id, user: 'u1', transport: 'ws' };
    assert.deepEqual(events, [
      { type: 'refused', time: 0, connection: undefined, user: '', transport: 'ws', code: 'DELTACAST_UNAUTHORIZED' },
      { type: 'connect', time: 0, ...base },
      { type: 'sub', time: 10, ...base, topic: 'admin/a' },
      { type: 'sub', time: 10, ...base, topic: 'ops/b' },
      { type: 'forbidden', time: 10, ...base, topic: 'root/c', code: 'DELTACAST_FORBIDDEN' },
      { type: 'auth-failed', time: 20, ...base, code: 'DELTACAST_UNAUTHORIZED' },
      { type: 'auth', time: 30, ...base },
      { type: 'forbidden', time: 30, ...base, topic: 'admin/a', code: 'DELTACAST_FORBIDDEN' },
      { type: 'expired', time: 2000, ...base, closeCode: 4003 },
      { type: 'close', time: 2000, ...base, closeCode: 4003 },
    ]);
    const text = JSON.stringify(events);
    for (const token of TOKENS) assert.ok(!text.includes(token), `no event holds ${token}`);
    assert.ok(!text.includes('tok-'));
  });

  it('a transport closing is a close without a code; no hook: no events kept', async (t) => {
    const events = [];
    const hub = createHub({ clock: 'manual', onAudit: (event) => events.push(event) });
    const quiet = createHub({ clock: 'manual' });
    t.after(() => Promise.all([hub.close(), quiet.close()]));
    const c = hub.connect({ send() {}, kind: 'sse' });
    c.close();
    await hub.advance(0);
    assert.deepEqual(
      events.map((e) => [e.type, e.transport, e.closeCode]),
      [
        ['connect', 'sse', undefined],
        ['close', 'sse', undefined],
      ],
    );
    quiet.audit({ type: 'refused' }); // no hook: nothing to call
    assert.equal(typeof hub.options.onAudit, 'function');
  });

  it('closing the hub: each open connection gets close code 1001 and a close event with it, after the last frames', async () => {
    const events = [];
    const hub = createHub({ clock: 'manual', heartbeat: { intervalMs: 0 }, onAudit: (event) => events.push(event) });
    const codesSeen = [];
    const a = hub.connect({ send() {}, close: (code) => codesSeen.push(['a', code]), kind: 'ws', user: { id: 'u1' } });
    const b = hub.connect({ send() {}, close: (code) => codesSeen.push(['b', code]), kind: 'sse' });
    const c = hub.connect({ send() {}, kind: 'poll' });
    c.close(); // gone before: one close event, without a code
    a.receive('{"t":"sub","topic":"x"}');
    await hub.advance(5);
    await hub.close();
    assert.deepEqual(codesSeen, [
      ['a', 1001],
      ['b', 1001],
    ]);
    assert.deepEqual(
      events.map((e) => [e.type, e.connection, e.user, e.transport, e.closeCode, e.time]),
      [
        ['connect', a.id, 'u1', 'ws', undefined, 0],
        ['connect', b.id, '', 'sse', undefined, 0],
        ['connect', c.id, '', 'poll', undefined, 0],
        ['close', c.id, '', 'poll', undefined, 0],
        ['sub', a.id, 'u1', 'ws', undefined, 0],
        ['close', a.id, 'u1', 'ws', 1001, 5],
        ['close', b.id, '', 'sse', 1001, 5],
      ],
    );
  });

  it('onAudit must be a function; a throwing hook loses its event only', async (t) => {
    assert.throws(() => createHub({ onAudit: 'log' }), (err) => err.code === codes.INVALID_ARGUMENT && /onAudit/.test(err.message));
    let calls = 0;
    const hub = createHub({
      clock: 'manual',
      onAudit: () => {
        calls += 1;
        throw new Error('audit sink down');
      },
    });
    t.after(() => hub.close());
    const c = hub.connect({ send() {} });
    c.receive('{"t":"sub","topic":"x"}');
    await hub.advance(0);
    assert.equal(calls, 2);
    assert.equal(hub.stats().subscriptions, 1);
  });
});
