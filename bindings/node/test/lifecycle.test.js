'use strict';
// Aborts, close() with requests in flight, load on many connections, and
// start/stop cycles without leaking handles.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const quicklane = require('..');
const { RawClient, get, sleep } = require('./helpers');

let unhandled = 0;
process.on('unhandledRejection', () => { unhandled++; });

test('a client that aborts before a delayed answer: no crash, no unhandled rejection', async () => {
  const app = quicklane.app();
  const events = [];
  let sendResult;
  app.get('/slow', (req, reply) => {
    req.signal.addEventListener('abort', () => events.push('signal'));
    setTimeout(() => {
      events.push(`aborted=${req.aborted}`);
      sendResult = reply.send({ too: 'late' });  // no-op: the client left
    }, 400);
  });
  app.get('/slow-async', async (req) => {
    await sleep(400);
    events.push(`async aborted=${req.aborted}`);
    return { too: 'late' };
  });
  app.get('/slow-reject', async () => {
    await sleep(400);
    throw new Error('after abort');
  });
  app.get('/ok', () => 'ok');
  await app.listen({ port: 0 });
  for (const p of ['/slow', '/slow-async', '/slow-reject']) {
    const c = new RawClient(app.port);
    await c.ready;
    c.send(get(p));
    await sleep(30);
    c.close();
  }
  for (let i = 0; i < 200 && events.length < 3; i++) await sleep(10);
  await sleep(50);  // the rejected handler settles too
  assert.deepEqual(events.sort(), ['aborted=true', 'async aborted=true', 'signal']);
  assert.ok(sendResult);
  const c = new RawClient(app.port);
  await c.ready;
  c.send(get('/ok'));
  assert.equal((await c.read()).text, 'ok');
  c.close();
  assert.equal(app.stats().requestsInFlight, 0);
  await app.close();
  assert.equal(unhandled, 0);
});

test('close() while requests are in flight: they finish, then it resolves', async () => {
  const app = quicklane.app();
  app.get('/wait/:ms', async (req) => { await sleep(Number(req.params.ms)); return { waited: Number(req.params.ms) }; });
  await app.listen({ port: 0 });
  const port = app.port;
  const clients = [];
  for (const ms of [50, 100, 150]) {
    const c = new RawClient(port);
    await c.ready;
    c.send(get(`/wait/${ms}`));
    clients.push(c);
  }
  const idle = new RawClient(port);  // an idle keep-alive connection is closed by the drain
  await idle.ready;
  await sleep(20);
  const closing = app.close(5000);
  assert.equal(app.listening, false);
  const answers = await Promise.all(clients.map((c) => c.read()));
  assert.deepEqual(answers.map((a) => JSON.parse(a.text).waited), [50, 100, 150]);
  await closing;
  await idle.waitClosed();
  for (const c of clients) c.close();
  assert.equal(app.listening, false);
  assert.equal(app.port, 0);
  // the port is free again and a new listen works on the same app
  await app.listen({ port });
  assert.equal(app.port, port);
  await app.close();
});

test('close() with a handler that never answers: the drain deadline ends it', async () => {
  const app = quicklane.app();
  let held;
  app.get('/never', (req) => { held = req; });
  await app.listen({ port: 0 });
  const c = new RawClient(app.port);
  await c.ready;
  c.send(get('/never'));
  await sleep(30);
  await app.close(100);
  await c.waitClosed();
  assert.equal(held.aborted, true);
  assert.throws(() => held.path, /no longer available/);
});

test('10,000 requests across 50 connections: every response correct and in order', async () => {
  const app = quicklane.app();
  app.static('GET', '/ping', { message: 'pong' });
  app.get('/n/:i', (req) => ({ i: Number(req.params.i) }));
  app.get('/a/:i', async (req) => { await null; return { i: Number(req.params.i) }; });
  await app.listen({ port: 0 });
  const conns = 50;
  const per = 200;
  let ok = 0;
  await Promise.all(Array.from({ length: conns }, async (_, ci) => {
    const c = new RawClient(app.port);
    await c.ready;
    for (let batch = 0; batch < per; batch += 20) {
      let out = '';
      const want = [];
      for (let k = batch; k < batch + 20; k++) {
        const i = ci * per + k;
        if (k % 10 === 9) { out += get('/ping'); want.push('{"message":"pong"}'); continue; }
        out += get((k % 2 ? '/a/' : '/n/') + i);
        want.push(`{"i":${i}}`);
      }
      c.send(out);
      for (const w of want) {
        const r = await c.read();
        if (r.status === 200 && r.text === w) ok++;
      }
    }
    c.close();
  }));
  assert.equal(ok, conns * per);
  const st = app.stats();
  assert.ok(st.requestsTotal >= conns * per);
  await app.close();
});

test('start/stop 100 times leaks no handles or fds; the process exits by itself', () => {
  const script = `
    const quicklane = require(${JSON.stringify(path.join(__dirname, '..'))});
    const fs = require('fs');
    const fds = () => fs.readdirSync('/proc/self/fd').length;
    (async () => {
      const app = quicklane.app();
      app.static('GET', '/ping', 'pong');
      app.get('/x', () => 'x');
      // warm up once (first use opens lazily created fds, e.g. epoll/eventfd of node)
      await app.listen({ port: 0 }); await fetch(app.url + '/x').then((r) => r.text()); await app.close();
      const before = fds();
      for (let i = 0; i < 100; i++) {
        await app.listen({ port: 0 });
        if (i % 10 === 0) {
          const r = await fetch(app.url + '/x', { headers: { connection: 'close' } });
          if (await r.text() !== 'x') throw new Error('bad answer');
        }
        await app.close();
      }
      const after = fds();
      console.log(JSON.stringify({ before, after, handles: process.getActiveResourcesInfo() }));
    })();
  `;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 60000 });
  assert.equal(r.status, 0, r.stderr);  // a leaked ref'd handle would keep it alive until the timeout
  const j = JSON.parse(r.stdout.trim().split('\n').pop());
  assert.ok(j.after <= j.before, `fds before ${j.before}, after ${j.after}`);
});

test('a listening server keeps the process alive; a closed one does not', () => {
  const mod = JSON.stringify(path.join(__dirname, '..'));
  const script = `
    const app = require(${mod}).app();
    app.get('/x', () => 'x');
    app.listen({ port: 0 }).then(() => { setTimeout(() => { console.log('still-alive'); app.close(); }, 200).unref(); });
  `;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /still-alive/);
});

test('ESM entry point and listen errors', async () => {
  const esm = await import(path.join(__dirname, '..', 'index.mjs'));
  assert.equal(typeof esm.app, 'function');
  assert.equal(esm.default.app, esm.app);
  const a = esm.app();
  a.get('/', () => 'root');
  await a.listen({ port: 0 });
  const b = esm.app();
  await assert.rejects(b.listen({ port: a.port }), /QL_E_IO|cannot listen/);
  assert.equal(await (await fetch(a.url + '/')).text(), 'root');
  await a.close();
  assert.ok(fs.existsSync(path.join(__dirname, '..', 'index.d.ts')));
});

test('worker_threads: the addon is context-aware; each thread serves on its own loop', async () => {
  const { Worker } = require('node:worker_threads');
  const workers = [0, 1].map(() => new Worker(path.join(__dirname, 'fixtures', 'thread-app.js')));
  const ports = await Promise.all(workers.map((w) => new Promise((r, j) => { w.once('message', r); w.once('error', j); })));
  const main = quicklane.app();
  main.get('/who', () => ({ thread: 0 }));
  await main.listen({ port: 0 });
  const seen = [];
  for (const p of [...ports, main.port]) {
    const r = await fetch(`http://127.0.0.1:${p}/who`, { headers: { connection: 'close' } });
    seen.push((await r.json()).thread);
  }
  assert.deepEqual(seen, [workers[0].threadId, workers[1].threadId, 0]);
  for (const w of workers) w.postMessage('close');
  const codes = await Promise.all(workers.map((w) => new Promise((r) => w.once('exit', r))));
  assert.deepEqual(codes, [0, 0]);
  await main.close();
});

test('worker_threads that exit while listening with a request in flight close cleanly', () => {
  const r = spawnSync(process.execPath, [path.join(__dirname, 'fixtures', 'thread-exit.js')], { encoding: 'utf8', timeout: 30000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /ok/);
});

test('process.exit() while listening with a request in flight', () => {
  const mod = JSON.stringify(path.join(__dirname, '..'));
  const script = `
    const app = require(${mod}).app();
    app.get('/hold', () => {});
    app.listen({ port: 0 }).then(() => {
      const s = require('net').connect(app.port, '127.0.0.1', () => s.write('GET /hold HTTP/1.1\\r\\nHost: a\\r\\n\\r\\n'));
      setTimeout(() => process.exit(7), 100);
    });
  `;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20000 });
  assert.equal(r.status, 7, r.stderr);
});
