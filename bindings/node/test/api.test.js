'use strict';
// The example contract and the request/reply API, on a real server (port 0).
const test = require('node:test');
const assert = require('node:assert/strict');
const quicklane = require('..');
const { RawClient, get, post, request, sleep } = require('./helpers');

let app;
let base;
let port;
const seen = { unhandled: 0 };
process.on('unhandledRejection', () => { seen.unhandled++; });

test.before(async () => {
  app = quicklane.app();
  app.static('GET', '/ping', { message: 'pong' });
  app.get('/hello/:name', (req) => ({ hello: req.params.name }));
  app.post('/echo', async (req) => req.json());
  app.get('/text', () => 'plain text');
  app.get('/bytes', () => Buffer.from([0, 1, 2, 255]));
  app.get('/u8', () => new Uint8Array([104, 105]));
  app.get('/reply', (req, reply) => { reply.code(201).header('x-test', 'y').send({ created: true }); });
  app.get('/reply-type', (req, reply) => reply.type('text/html').send('<b>hi</b>'));
  app.get('/delayed', (req, reply) => { setTimeout(() => reply.send({ late: true }), 30); });
  app.get('/async-delayed', async () => { await sleep(30); return { late: 'async' }; });
  app.get('/return-reply', async (req, reply) => { setTimeout(() => reply.send('later'), 10); return reply; });
  app.get('/throw', () => { throw new Error('boom'); });
  app.get('/reject', async () => { throw new Error('async boom'); });
  app.get('/teapot', async () => { const e = new Error('short and stout'); e.statusCode = 418; throw e; });
  app.get('/bad-header', (req, reply) => reply.header('Content-Length', '5').send('x'));
  app.get('/double', (req, reply) => { reply.send('one'); reply.send('two'); });
  app.get('/info/:a/:b', (req) => ({
    method: req.method, url: req.url, path: req.path, params: req.params, query: req.query, ip: req.ip,
    headers: req.headers, agent: req.header('User-Agent'),
  }));
  app.post('/body', async (req) => {
    await sleep(5);  // request data stays valid after an await until answered
    return { len: req.body.length, text: req.text(), hex: req.body.toString('hex'), type: req.headers['content-type'] };
  });
  app.get('/after', async (req, reply) => {
    const m = req.method;  // read once: kept after the answer
    reply.send('ok');
    let err;
    try { void req.path; } catch (e) { err = e.message; }
    setImmediate(() => { after = { m: req.method, err }; });
  });
  base = await app.listen({ host: '127.0.0.1', port: 0 });
  port = app.port;
});
let after;

test.after(() => app.close());

test('listen resolves with the address and app.port', () => {
  assert.match(base, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.ok(port > 0);
  assert.equal(base, `http://127.0.0.1:${port}`);
  assert.deepEqual(app.address(), { address: '127.0.0.1', family: 'IPv4', port });
});

test('contract: GET /ping is the native static route', async () => {
  const r = await fetch(base + '/ping');
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'application/json');
  assert.deepEqual(await r.json(), { message: 'pong' });
});

test('contract: GET /hello/:name from JS, percent-decoded, non-ASCII', async () => {
  let r = await fetch(base + '/hello/world');
  assert.equal(r.status, 200);
  assert.deepEqual(await r.json(), { hello: 'world' });
  r = await fetch(base + '/hello/' + encodeURIComponent('héllo wörld ✓'));
  assert.deepEqual(await r.json(), { hello: 'héllo wörld ✓' });
});

test('contract: POST /echo echoes JSON; invalid JSON is a 400', async () => {
  const doc = { a: [1, 2, { b: 'ünï' }], n: null };
  let r = await fetch(base + '/echo', { method: 'POST', body: JSON.stringify(doc), headers: { 'content-type': 'application/json' } });
  assert.equal(r.status, 200);
  assert.deepEqual(await r.json(), doc);
  r = await fetch(base + '/echo', { method: 'POST', body: '{"a":' });
  assert.equal(r.status, 400);
  assert.match((await r.json()).detail, /invalid JSON/);
});

test('contract: 404 and 405 come from the core', async () => {
  let r = await fetch(base + '/nope');
  assert.equal(r.status, 404);
  assert.ok((await r.json()).detail);
  r = await fetch(base + '/echo');
  assert.equal(r.status, 405);
  assert.match(r.headers.get('allow'), /POST/);
  await r.arrayBuffer();
});

test('returned string is text, Buffer/Uint8Array raw', async () => {
  let r = await fetch(base + '/text');
  assert.equal(r.headers.get('content-type'), 'text/plain; charset=utf-8');
  assert.equal(await r.text(), 'plain text');
  r = await fetch(base + '/bytes');
  assert.equal(r.headers.get('content-type'), 'application/octet-stream');
  assert.deepEqual([...new Uint8Array(await r.arrayBuffer())], [0, 1, 2, 255]);
  r = await fetch(base + '/u8');
  assert.equal(await r.text(), 'hi');
});

test('reply.code().header().send() and type()', async () => {
  let r = await fetch(base + '/reply');
  assert.equal(r.status, 201);
  assert.equal(r.headers.get('x-test'), 'y');
  assert.deepEqual(await r.json(), { created: true });
  r = await fetch(base + '/reply-type');
  assert.equal(r.headers.get('content-type'), 'text/html');
  assert.equal(await r.text(), '<b>hi</b>');
});

test('sync, async and delayed handlers', async () => {
  assert.deepEqual(await (await fetch(base + '/delayed')).json(), { late: true });
  assert.deepEqual(await (await fetch(base + '/async-delayed')).json(), { late: 'async' });
  assert.equal(await (await fetch(base + '/return-reply')).text(), 'later');
});

test('thrown errors and rejections are 500 JSON (or err.statusCode); the process lives on', async () => {
  const origError = console.error;
  console.error = () => {};
  try {
    for (const p of ['/throw', '/reject']) {
      const r = await fetch(base + p);
      assert.equal(r.status, 500);
      assert.deepEqual(await r.json(), { detail: 'Internal Server Error' });
    }
  } finally {
    console.error = origError;
  }
  const r = await fetch(base + '/teapot');
  assert.equal(r.status, 418);
  assert.deepEqual(await r.json(), { detail: 'short and stout' });
  assert.equal((await fetch(base + '/hello/alive')).status, 200);
});

test('an invalid reply (reserved header) becomes a 500, a second send is ignored', async () => {
  const warnings = [];
  const onWarn = (w) => warnings.push(w.message);
  process.on('warning', onWarn);
  try {
    let r = await fetch(base + '/bad-header');
    assert.equal(r.status, 500);
    await r.arrayBuffer();
    r = await fetch(base + '/double');
    assert.equal(await r.text(), 'one');
    await sleep(20);
  } finally {
    process.off('warning', onWarn);
  }
  assert.ok(warnings.some((m) => /invalid response/.test(m)), warnings.join('\n'));
  assert.ok(warnings.some((m) => /already sent/.test(m)), warnings.join('\n'));
});

test('req: method, url, path, params, query, headers (lower-case), ip', async () => {
  const r = await request(port, get('/info/%C3%A4%20b/2?x=1&y=%E2%9C%93&x=3&sp=a+b',
    'User-Agent: qltest\r\nX-Mixed-Case: Vàl\r\nX-Dup: 1\r\nX-Dup: 2\r\n'));
  assert.equal(r.status, 200);
  const j = JSON.parse(r.text);
  assert.equal(j.method, 'GET');
  assert.equal(j.url, '/info/%C3%A4%20b/2?x=1&y=%E2%9C%93&x=3&sp=a+b');
  assert.equal(j.path, '/info/%C3%A4%20b/2');
  assert.deepEqual(j.params, { a: 'ä b', b: '2' });
  assert.deepEqual(j.query, { x: ['1', '3'], y: '✓', sp: 'a b' });
  assert.equal(j.ip, '127.0.0.1');
  assert.equal(j.agent, 'qltest');
  assert.equal(j.headers['user-agent'], 'qltest');
  assert.equal(j.headers.host, 't');
  // header bytes are latin1, as in node:http ("Vàl" went out as UTF-8 bytes)
  assert.equal(Buffer.from(j.headers['x-mixed-case'], 'latin1').toString('utf8'), 'Vàl');
  assert.equal(j.headers['x-dup'], '1, 2');
  assert.ok(!('User-Agent' in j.headers));
});

test('req.body is a Buffer (binary and non-ASCII), valid after an await', async () => {
  const text = 'grüße ✓ 日本';
  let r = await request(port, post('/body', text, 'text/plain; charset=utf-8'));
  let j = JSON.parse(r.text);
  assert.equal(j.text, text);
  assert.equal(j.len, Buffer.byteLength(text));
  assert.equal(j.type, 'text/plain; charset=utf-8');
  r = await request(port, post('/body', Buffer.from([0, 255, 10, 13])));
  j = JSON.parse(r.text);
  assert.equal(j.hex, '00ff0a0d');
});

test('request data read before the answer stays; unread data throws a clear error after', async () => {
  after = undefined;
  await (await fetch(base + '/after')).text();
  for (let i = 0; i < 50 && !after; i++) await sleep(5);
  assert.equal(after.m, 'GET');
  assert.match(after.err, /no longer available/);
});

test('pipelined requests are answered in order', async () => {
  const c = new RawClient(port);
  await c.ready;
  c.send(get('/delayed') + get('/hello/a') + get('/ping') + get('/async-delayed') + get('/hello/b'));
  const bodies = [];
  for (let i = 0; i < 5; i++) bodies.push((await c.read()).text);
  c.close();
  assert.deepEqual(bodies, ['{"late":true}', '{"hello":"a"}', '{"message":"pong"}', '{"late":"async"}', '{"hello":"b"}']);
});

test('route errors: conflicts are refused at registration', () => {
  const a = quicklane.app();
  a.get('/x/:id', () => 'x');
  assert.throws(() => a.get('/x/:id', () => 'y'), /QL_E_CONFLICT|conflict/i);
});

test('no unhandled rejections so far', () => {
  assert.equal(seen.unhandled, 0);
});
