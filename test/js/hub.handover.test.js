'use strict';
// The hand-over from JS to the core under bad calls: a call that throws
// leaves nothing behind in the request buffer, every call gets exactly one
// answer, and answers are matched by request id.

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const { createHub, DeltacastError, codes } = require('../../lib/index.js');
const { BatchQueue, AnswerBatch, Receipt, RequestWriter, ANSWER_CHANGE, isDetached } = require('../../lib/requests.js');

function open(t, options = { clock: 'manual', lanes: { '**': 'critical' } }) {
  const hub = createHub(options);
  t.after(() => hub.close());
  return hub;
}

function detachedBytes(text = '{"x":1}') {
  const bytes = new TextEncoder().encode(text);
  structuredClone(bytes.buffer, { transfer: [bytes.buffer] });
  assert.equal(bytes.byteLength, 0, 'the buffer is detached');
  return bytes;
}

function assertVersion(answer, version) {
  assert.equal(typeof answer.epoch, 'string');
  assert.match(answer.epoch, /^[0-9a-f]+$/);
  assert.equal(answer.version, version);
}

describe('a call that throws while queuing leaves the other calls of its turn intact', () => {
  it('a sparse roles array: connect throws DELTACAST_INVALID_ARGUMENT; the publish and the close of the same turn go through', async (t) => {
    const hub = open(t);
    const other = hub.connect({ send() {} });
    await hub.advance(0);
    const before = hub.stats().connections;
    assert.equal(before, 1);

    const published = hub.publish('p', { x: 1 });
    assert.throws(
      // eslint-disable-next-line no-sparse-arrays
      () => hub.connect({ send() {}, user: { id: 'u', roles: [, 'admin'] } }),
      (err) => err instanceof DeltacastError && err.code === codes.INVALID_ARGUMENT && /transport\.user\.roles\[0\]/.test(err.message),
    );
    other.close();
    assertVersion(await published, 1);
    await hub.advance(0);
    assert.equal(hub.stats().connections, before - 1);
    assert.deepEqual(hub.get('p').data, { x: 1 });
  });

  it('every bad user shape is refused with DELTACAST_INVALID_ARGUMENT before anything is queued', async (t) => {
    const hub = open(t);
    const users = [
      { id: 5 },
      { roles: 'admin' },
      { roles: [1] },
      { roles: [undefined] },
      { roles: new Array(3) },
      [],
      'alice',
    ];
    const published = hub.publish('p', 1);
    for (const user of users) {
      assert.throws(() => hub.connect({ send() {}, user }), { code: codes.INVALID_ARGUMENT }, JSON.stringify(user));
    }
    // A getter that throws: its error, and nothing queued.
    const throwing = {
      get roles() {
        throw new RangeError('no roles today');
      },
    };
    assert.throws(() => hub.connect({ send() {}, user: throwing }), RangeError);
    assertVersion(await published, 1);
    await hub.advance(0);
    assert.equal(hub.stats().connections, 0);
  });

  it('connection.receive(detached Uint8Array) throws DELTACAST_INVALID_ARGUMENT; the calls around it are answered and the connection still works', async (t) => {
    const hub = open(t);
    const frames = [];
    const connection = hub.connect({ send: (f) => frames.push(JSON.parse(f)) });
    const first = hub.publish('p', { x: 1 });
    assert.throws(() => connection.receive(detachedBytes('{"t":"sub","topic":"p"}')), {
      name: 'DeltacastError',
      code: codes.INVALID_ARGUMENT,
    });
    connection.receive(new TextEncoder().encode('{"t":"sub","topic":"p"}'));
    const second = hub.publish('p', { x: 2 });
    assertVersion(await first, 1);
    assertVersion(await second, 2);
    await hub.advance(0);
    assert.deepEqual(
      frames.map((f) => [f.t, f.version ?? f.to]),
      [
        ['snap', 1],
        ['patch', 2],
      ],
    );
  });

  it('publishJson(detached Uint8Array) is a receipt rejected with DELTACAST_INVALID_ARGUMENT, and nothing else', async (t) => {
    const hub = open(t);
    const before = hub.stats().rejected;
    const first = hub.publish('p', 1);
    let receipt;
    assert.doesNotThrow(() => {
      receipt = hub.publishJson('q', detachedBytes());
    });
    const second = hub.publish('p', 2);
    await assert.rejects(receipt, (err) => err instanceof DeltacastError && err.code === codes.INVALID_ARGUMENT && /detached/.test(err.message));
    assertVersion(await first, 1);
    assertVersion(await second, 2);
    assert.equal(hub.get('q'), undefined);
    assert.equal(hub.stats().rejected, before + 1);
    assert.equal(hub.stats().pending, 0);
  });

  it('a process whose caller handles the rejected receipt of publishJson(detached) runs on and exits cleanly', () => {
    const script = `
      const { createHub } = require(${JSON.stringify(path.resolve(__dirname, '../../lib/index.js'))});
      const hub = createHub({ clock: 'manual' });
      const bytes = new TextEncoder().encode('{"x":1}');
      structuredClone(bytes.buffer, { transfer: [bytes.buffer] });
      hub.publishJson('t', bytes).catch((err) => console.log('rejected', err.code));
      hub.publish('t', { x: 2 }).then((v) => console.log('published', v.version));
      setTimeout(async () => { await hub.close(); console.log('closed'); }, 20);
    `;
    const run = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20000 });
    assert.equal(run.status, 0, run.stderr);
    assert.deepEqual(run.stdout.trim().split('\n'), ['rejected DELTACAST_INVALID_ARGUMENT', 'published 1', 'closed']);
  });

  it('isDetached tells a transferred buffer from an empty one', () => {
    assert.equal(isDetached(new Uint8Array(0)), false);
    assert.equal(isDetached(new Uint8Array(8).subarray(8)), false);
    assert.equal(isDetached(detachedBytes()), true);
  });
});

describe('request records are all or nothing', () => {
  it('rollback forgets a record written in part', () => {
    const writer = new RequestWriter(() => 0);
    writer.u8(1);
    writer.str('kept');
    const kept = Array.from(writer.view());
    const start = writer.length;
    writer.u8(2);
    writer.str('x'.repeat(70_000)); // grows the buffer mid-record
    writer.rollback(start);
    assert.deepEqual(Array.from(writer.view()), kept);
  });
});

describe('large payloads are staged through one reused buffer', () => {
  it('each staged string reaches the addon as its exact UTF-8, ASCII or not, several in one batch', () => {
    const staged = [];
    const writer = new RequestWriter((bytes) => {
      staged.push(Buffer.from(bytes)); // the addon copies before stage() returns; so does this stand-in
      return staged.length - 1;
    });
    const ascii = '[' + '1,'.repeat(60_000) + '1]';
    const wide = '["' + 'é€😀a'.repeat(30_000) + '"]'; // 2-, 3- and 4-byte UTF-8: the buffer grows mid-string
    const after = '"' + 'b'.repeat(70_000) + '"';
    for (const text of [ascii, wide, after, ascii]) writer.payload(text);
    assert.deepEqual(staged.map((b) => b.toString('utf8')), [ascii, wide, after, ascii]);
    writer.reset();
    writer.payload(wide);
    assert.equal(staged[4].toString('utf8'), wide);
  });

  it('a hub keeps large texts exact across publishes that reuse the buffer', async (t) => {
    const hub = open(t);
    const big = (n, c) => JSON.stringify({ rows: Array.from({ length: n }, (_, i) => ({ id: i, s: `${c}${i}` })) });
    const texts = [big(5000, 'a'), big(6000, 'é'), big(4000, '😀'), big(5000, 'a')];
    for (const text of texts) {
      await hub.publishJson('big', text);
      assert.equal(hub.getJson('big').json, text);
    }
    // Pipelined: staged in the same turn.
    const receipts = texts.map((text, i) => hub.publishJson(`big${i}`, text));
    await Promise.all(receipts);
    texts.forEach((text, i) => assert.equal(hub.getJson(`big${i}`).json, text));
  });
});

describe('answers are matched by request id', () => {
  function queued(firstId, count) {
    const batch = new AnswerBatch(firstId);
    const receipts = Array.from({ length: count }, () => new Receipt(ANSWER_CHANGE, batch));
    batch.seal();
    return { batch, receipts };
  }

  it('each answer settles the call with its id', async () => {
    const queue = new BatchQueue();
    const a = queued(7, 2);
    const b = queued(9, 1);
    queue.push(a.batch);
    queue.push(b.batch);
    assert.equal(queue.answer(7, 1, 1, 0x1a, null), true);
    assert.equal(queue.answer(8, 1, 2, 0x1a, null), true);
    assert.equal(queue.answer(9, 1, 3, 0x1a, null), true);
    assert.deepEqual(await Promise.all([...a.receipts, ...b.receipts]), [1, 2, 3].map((version) => ({ epoch: '1a', version })));
    assert.equal(queue.pending, 0);
    assert.equal(queue.unmatched, 0);
  });

  it('a lost answer fails its own call with DELTACAST_INTERNAL; later answers keep their calls', async () => {
    const queue = new BatchQueue();
    const a = queued(1, 3);
    queue.push(a.batch);
    queue.answer(1, 1, 1, 0x1a, null);
    queue.answer(3, 1, 2, 0x1a, null); // the answer to 2 never came
    assert.deepEqual(await a.receipts[0], { epoch: '1a', version: 1 });
    await assert.rejects(a.receipts[1], { code: codes.INTERNAL });
    assert.deepEqual(await a.receipts[2], { epoch: '1a', version: 2 });
    assert.equal(queue.unmatched, 1);
  });

  it('an answer no call waits for is dropped and counted', async () => {
    const queue = new BatchQueue();
    const a = queued(1, 1);
    queue.push(a.batch);
    assert.equal(queue.answer(99, 1, 5, 0x1a, null), false);
    assert.equal(queue.answer(1, 1, 1, 0x1a, null), true);
    assert.equal(queue.answer(1, 1, 1, 0x1a, null), false); // twice: the second is dropped
    assert.deepEqual(await a.receipts[0], { epoch: '1a', version: 1 });
    assert.equal(queue.unmatched, 2);
  });

  it('ids wrap from 2^32 - 1 to 1', async () => {
    const queue = new BatchQueue();
    const a = queued(0xffffffff, 2);
    queue.push(a.batch);
    queue.answer(0xffffffff, 1, 1, 0x1a, null);
    queue.answer(1, 1, 2, 0x1a, null);
    assert.deepEqual((await Promise.all(a.receipts)).map((v) => v.version), [1, 2]);
    assert.equal(queue.unmatched, 0);
  });

  it('stats().internalErrors is 0 on a healthy hub', async (t) => {
    const hub = open(t);
    await Promise.all([hub.publish('a', 1), hub.patch('a', [{ op: 'replace', path: '', value: 2 }]), hub.delete('a')]);
    assert.equal(hub.stats().internalErrors, 0);
  });
});
