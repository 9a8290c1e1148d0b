'use strict';
// Faults in handlers: a promise that never settles gets 503 after
// handlerTimeoutMs, the handler's signal fires, and the server serves on.
const test = require('node:test');
const assert = require('node:assert/strict');
const quicklane = require('..');
const { RawClient, get, request, sleep } = require('./helpers');

test('a handler that never answers gets 503 and its signal aborts', async () => {
  const app = quicklane.app();
  let signalled = 0;
  let lateStatus;
  app.get('/never', (req, reply) => {
    req.signal.addEventListener('abort', () => {
      signalled++;
      // the late answer is dropped, not fatal
      try { reply.send('too late'); lateStatus = 'sent'; } catch (e) { lateStatus = e.message; }
    });
    return new Promise(() => {});
  });
  app.get('/ok', () => 'ok');
  await app.listen({ host: '127.0.0.1', port: 0, workers: 1, handlerTimeoutMs: 200 });
  try {
    const c = new RawClient(app.port);
    await c.ready;
    c.send(get('/never') + get('/ok'));  // pipelined behind the hung one
    const first = await c.read();
    assert.equal(first.status, 503);
    assert.deepEqual(JSON.parse(first.body), { detail: 'handler timed out' });
    const second = await c.read();
    assert.equal(second.status, 200);
    assert.equal(second.body.toString(), 'ok');
    c.close();
    for (let i = 0; i < 100 && signalled === 0; i++) await sleep(10);
    assert.equal(signalled, 1);
    assert.notEqual(lateStatus, undefined);
    const again = await request(app.port, get('/ok'));
    assert.equal(again.status, 200);
    assert.equal(app.stats().requestsInFlight, 0);
  } finally {
    await app.close();
  }
});

test('an out-of-range handlerTimeoutMs is refused at listen', async () => {
  const app = quicklane.app();
  app.get('/ok', () => 'ok');
  await assert.rejects(app.listen({ host: '127.0.0.1', port: 0, handlerTimeoutMs: 1 }), /handler_timeout_ms/);
});
