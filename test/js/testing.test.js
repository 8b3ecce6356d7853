'use strict';
// deltacast/testing: settle() delivers paced changes; the test client follows
// the protocol when a patch does not apply.

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const { createHub } = require('../../lib/index.js');
const { createTestClient, settle } = require('../../lib/testing.js');

function manualHub(t, options = {}) {
  const hub = createHub({ clock: 'manual', ...options });
  t.after(() => hub.close());
  return hub;
}

// A hub stand-in that records what the client sends and lets the test push frames.
function fakeHub() {
  const fake = { sent: [], transport: null, closed: false };
  fake.connect = (transport) => {
    fake.transport = transport;
    return {
      receive: (text) => fake.sent.push(JSON.parse(text)),
      close: () => {
        fake.closed = true;
      },
    };
  };
  fake.push = (message) => fake.transport.send(JSON.stringify(message));
  return fake;
}

describe('settle', () => {
  it('delivers changes waiting on every lane (the default normal lane included)', async (t) => {
    const hub = manualHub(t, { lanes: { 'h/*': 'high', 'l/*': 'low' } });
    const client = createTestClient(hub);
    for (const topic of ['prices', 'h/x', 'l/x']) client.subscribe(topic);
    for (const topic of ['prices', 'h/x', 'l/x']) await hub.publish(topic, { v: 1 });
    await settle(hub);
    for (const topic of ['prices', 'h/x', 'l/x']) assert.deepEqual(client.get(topic), hub.get(topic), topic);
    // A low topic just flushed waits a whole interval: settle still delivers it.
    for (const topic of ['prices', 'h/x', 'l/x']) await hub.publish(topic, { v: 2 });
    await settle(hub);
    for (const topic of ['prices', 'h/x', 'l/x']) assert.equal(client.get(topic).version, 2, topic);
  });

  it('moves the clock by the longest pacing window, or not at all with { pacing: false }', async (t) => {
    const hub = manualHub(t, { pacing: { lowIntervalMs: 300 }, ttl: { 'tmp/*': 301 } });
    await hub.publish('tmp/a', 1);
    await settle(hub, { pacing: false });
    await settle(hub);
    assert.notEqual(hub.get('tmp/a'), undefined, '300 ms passed, the TTL is 301');
    await hub.publish('n', { v: 1 });
    const client = createTestClient(hub);
    client.subscribe('n');
    await settle(hub, { pacing: false });
    assert.equal(client.get('n').version, 1, 'a subscription is answered at once');
    await hub.publish('n', { v: 2 });
    await settle(hub, { pacing: false });
    assert.equal(client.get('n').version, 1, 'the normal lane waits for its debounce');
    await settle(hub);
    assert.equal(client.get('n').version, 2);
    assert.equal(hub.get('tmp/a'), undefined, 'two settles moved the clock 600 ms');
  });

  it('refuses a hub with a real clock', async (t) => {
    const hub = createHub();
    t.after(() => hub.close());
    await assert.rejects(settle(hub), { code: 'DELTACAST_INVALID_ARGUMENT' });
  });
});

describe('the test client', () => {
  it('keeps its state and re-subscribes from its version when a patch does not apply', () => {
    const hub = fakeHub();
    const client = createTestClient(hub);
    client.subscribe('t');
    assert.deepEqual(hub.sent, [{ t: 'sub', topic: 't' }]);
    hub.push({ t: 'snap', topic: 't', epoch: 'e', version: 1, data: { a: 1 } });
    assert.deepEqual(hub.sent.at(-1), { t: 'ack', topic: 't', version: 1 });
    const broken = { t: 'patch', topic: 't', epoch: 'e', from: 1, to: 2, ops: [{ op: 'remove', path: '/missing' }] };
    assert.doesNotThrow(() => hub.push(broken));
    assert.deepEqual(client.get('t'), { epoch: 'e', version: 1, data: { a: 1 } });
    assert.equal(client.failedPatches, 1);
    assert.deepEqual(hub.sent.at(-1), { t: 'sub', topic: 't', epoch: 'e', version: 1 });
    assert.equal(hub.closed, false);
    // The same patch again: the client asks for a snapshot rather than loop.
    hub.push(broken);
    assert.equal(client.failedPatches, 2);
    assert.deepEqual(hub.sent.at(-1), { t: 'sub', topic: 't' });
    hub.push({ t: 'snap', topic: 't', epoch: 'e', version: 2, data: { a: 2 } });
    assert.deepEqual(client.get('t'), { epoch: 'e', version: 2, data: { a: 2 } });
    // A patch that applies after a failure is applied (atomically: a half-applied one never shows).
    hub.push({ t: 'patch', topic: 't', epoch: 'e', from: 2, to: 3, ops: [{ op: 'replace', path: '/a', value: 3 }, { op: 'test', path: '/a', value: 4 }] });
    assert.deepEqual(client.get('t').data, { a: 2 });
    assert.deepEqual(hub.sent.at(-1), { t: 'sub', topic: 't', epoch: 'e', version: 2 });
    hub.push({ t: 'patch', topic: 't', epoch: 'e', from: 2, to: 3, ops: [{ op: 'replace', path: '/a', value: 3 }] });
    assert.deepEqual(client.get('t'), { epoch: 'e', version: 3, data: { a: 3 } });
    assert.equal(client.errors.length, 0);
  });

  it('ignores a patch that does not follow what it holds and resumes from its version', () => {
    const hub = fakeHub();
    const client = createTestClient(hub);
    client.subscribe('t');
    hub.push({ t: 'snap', topic: 't', epoch: 'e', version: 1, data: [] });
    hub.push({ t: 'patch', topic: 't', epoch: 'e', from: 2, to: 3, ops: [] });
    assert.equal(client.gaps, 1);
    assert.equal(client.get('t').version, 1);
    assert.deepEqual(hub.sent.at(-1), { t: 'sub', topic: 't', epoch: 'e', version: 1 });
  });
});
