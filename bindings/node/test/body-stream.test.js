'use strict';
// Streamed request bodies ({ stream: true }): req is a Readable fed from the
// core with non-blocking reads, with backpressure through the stream.
const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { pipeline } = require('node:stream/promises');
const quicklane = require('..');
const { RawClient, get, sleep } = require('./helpers');

const MiB = 1024 * 1024;
// 64 MiB in `make test`; `SOAK_MODE=upload make soak` sets QL_UPLOAD_MIB=1024.
const BIG = (Number(process.env.QL_UPLOAD_MIB) || 64) * MiB;

// Settles within ms or fails: a test here never hangs.
function within(ms, promise, what) {
  let t;
  return Promise.race([promise, new Promise((_, reject) => {
    t = setTimeout(() => reject(new Error(`${what}: nothing after ${ms} ms`)), ms);
  })]).finally(() => clearTimeout(t));
}

function deferred() {
  let resolve;
  const promise = new Promise((r) => { resolve = r; });
  return { promise, resolve };
}

// Uploads `total` bytes made on the fly (64 KiB at a time, never held whole),
// with Content-Length or chunked (node:http chunks a POST without a length);
// resolves with the answer and the sha256 of what was sent.
function upload(port, url, total, { chunked = false } = {}) {
  const block = crypto.randomBytes(64 * 1024);
  const hash = crypto.createHash('sha256');
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1', port, path: url, method: 'POST', agent: false,
      headers: chunked ? { 'content-type': 'application/octet-stream' } : { 'content-length': total },
    }, (res) => {
      const parts = [];
      res.on('data', (d) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode, text: Buffer.concat(parts).toString(), sha: hash.digest('hex') }));
    });
    req.on('error', reject);
    let sent = 0;
    let i = 0;
    const pump = () => {
      while (sent < total) {
        const n = Math.min(block.length, total - sent);
        const b = Buffer.from(block.subarray(0, n));
        b.writeUInt32LE(i++, 0);
        hash.update(b);
        sent += n;
        if (!req.write(b)) { req.once('drain', pump); return; }
      }
      req.end();
    };
    pump();
  });
}

// Runs test/fixtures/body-rss.js (a server alone in its process) and
// measures its RSS growth over one upload made from here.
async function serverRss(t, { slow = false, gc = false, total, chunked = false }) {
  const args = [...(gc ? ['--expose-gc'] : []), path.join(__dirname, 'fixtures', 'body-rss.js'), ...(slow ? ['slow'] : [])];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const port = await within(10000, new Promise((resolve, reject) => {
      child.stdout.once('data', (d) => resolve(Number(String(d).trim())));
      child.once('exit', (code) => reject(new Error(`fixture exited with ${code}`)));
    }), 'fixture start');
    const ask = (url) => new Promise((resolve, reject) => {
      http.get({ host: '127.0.0.1', port, path: url, agent: false }, (res) => {
        const parts = [];
        res.on('data', (d) => parts.push(d));
        res.on('end', () => resolve(JSON.parse(Buffer.concat(parts).toString() || 'null')));
      }).on('error', reject);
    });
    await upload(port, '/hash', MiB);  // warm up code paths and pools
    await ask('/mark');
    const t0 = Date.now();
    const r = await within(30000, upload(port, '/hash', total, { chunked }), 'upload');
    const ms = Date.now() - t0;
    const rss = await ask('/rss');
    await ask('/quit').catch(() => {});
    const body = JSON.parse(r.text);
    assert.equal(r.status, 200);
    assert.equal(body.bytes, total);
    assert.equal(body.sha, r.sha, 'the handler hashed exactly the bytes sent');
    assert.equal(body.contentLength, chunked ? -1 : total);
    t.diagnostic(`${slow ? 'slow consumer, ' : ''}${chunked ? 'chunked' : 'content-length'}, ` +
      `${gc ? 'scavenged every 5 ms' : 'no forced GC'}: ${total / MiB} MiB in ${ms} ms, ` +
      `server RSS growth ${(rss.growth / MiB).toFixed(1)} MiB, at most ${rss.maxBuffered} bytes in the stream, ` +
      `sha256 ${body.sha.slice(0, 16)}… matches`);
    return rss;
  } finally {
    child.kill();
  }
}

test(`${BIG / MiB} MiB uploads (Content-Length and chunked) are hashed in the handler with bounded memory`, async (t) => {
  for (const chunked of [false, true]) {
    // What the server holds: under 32 MiB, whatever the body's size.
    const held = await serverRss(t, { gc: true, total: BIG, chunked });
    assert.ok(held.growth < 32 * MiB, `RSS grew by ${(held.growth / MiB).toFixed(1)} MiB`);
    // Left to V8's own collection: still less than the body (it is never held whole).
    const raw = await serverRss(t, { total: BIG, chunked });
    assert.ok(raw.growth < 48 * MiB, `RSS grew by ${(raw.growth / MiB).toFixed(1)} MiB`);
  }
});

test('a slow consumer (64 KiB, then 1 ms) pauses the client: memory stays bounded', async (t) => {
  const held = await serverRss(t, { slow: true, gc: true, total: BIG });
  assert.ok(held.growth < 32 * MiB, `RSS grew by ${(held.growth / MiB).toFixed(1)} MiB`);
  // The stream holds about its highWaterMark (64 KiB); the core its window.
  assert.ok(held.maxBuffered <= 256 * 1024, `stream buffered ${held.maxBuffered} bytes`);
  const raw = await serverRss(t, { slow: true, total: BIG });
  assert.ok(raw.growth < 48 * MiB, `RSS grew by ${(raw.growth / MiB).toFixed(1)} MiB`);
});

test('pipe and pipeline into a file; req.json() / req.text() collect the stream', async (t) => {
  const app = quicklane.app();
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ql-body-')), 'upload.bin');
  app.post('/file', { stream: true }, async (req) => {
    await pipeline(req, fs.createWriteStream(file));
    return { size: fs.statSync(file).size };
  });
  app.post('/pipe', { stream: true }, (req, reply) => {
    const out = fs.createWriteStream(file + '.2');
    req.pipe(out);
    out.on('finish', () => reply.send({ size: fs.statSync(file + '.2').size }));
    return reply;
  });
  app.post('/json', { stream: true }, async (req) => {
    assert.throws(() => req.body, /streams its body/);
    const v = await req.json();
    return { v, again: (await req.text()).length, body: req.body.length };
  });
  app.post('/data', { stream: true }, (req, reply) => {
    let n = 0;
    req.on('data', (c) => { n += c.length; });
    req.on('end', () => reply.send({ n }));
    return reply;
  });
  await app.listen({ port: 0 });
  try {
    const a = await upload(app.port, '/file', 3 * MiB + 5);
    assert.deepEqual(JSON.parse(a.text), { size: 3 * MiB + 5 });
    assert.equal(crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex'), a.sha);
    const b = await upload(app.port, '/pipe', MiB, { chunked: true });
    assert.deepEqual(JSON.parse(b.text), { size: MiB });
    const d = await upload(app.port, '/data', 2 * MiB);
    assert.deepEqual(JSON.parse(d.text), { n: 2 * MiB });

    const c = new RawClient(app.port);
    await c.ready;
    const json = '{"a":[1,2,3],"é":"ü"}';
    c.send(`POST /json HTTP/1.1\r\nHost: t\r\nContent-Length: ${Buffer.byteLength(json)}\r\n\r\n${json}`);
    const r = await c.read();
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.text), { v: JSON.parse(json), again: json.length, body: Buffer.byteLength(json) });
    c.send('POST /json HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{"a\r\n0\r\n\r\n');
    const bad = await c.read();
    assert.equal(bad.status, 400);
    assert.match(JSON.parse(bad.text).detail, /invalid JSON/);
    c.close();
  } finally {
    await app.close();
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
  }
});

test('a client that leaves mid-upload: the stream fails once, no hang, the server lives on', async (t) => {
  const app = quicklane.app();
  const results = [];
  let started = deferred();
  let done = deferred();
  app.post('/iter', { stream: true }, async (req) => {
    const ev = { errors: 0, aborted: 0, bytes: 0, caught: undefined };
    req.on('error', () => { ev.errors++; });
    req.on('aborted', () => { ev.aborted++; });
    try {
      for await (const chunk of req) {
        ev.bytes += chunk.length;
        if (ev.bytes >= 256 * 1024) started.resolve();
      }
    } catch (e) {
      ev.caught = e;
    }
    await sleep(50);  // a second error would show by now
    ev.url = req.url;  // never read before: kept when the body failed
    ev.host = req.headers.host;
    ev.signal = req.signal.aborted;
    ev.reqAborted = req.aborted;
    results.push(ev);
    done.resolve();
    return 'unreachable';
  });
  // Paused with the window full when the client leaves: the core reads no
  // more, so it learns of the leave at the handler timeout (1 s here): then
  // one error, as for any abort.
  app.post('/paused', { stream: true }, (req, reply) => {
    const ev = { errors: [], closed: false };
    req.once('data', () => { req.pause(); started.resolve(); });
    req.on('error', (e) => ev.errors.push(e.code));
    req.on('close', () => { ev.closed = true; setTimeout(() => { results.push(ev); done.resolve(); }, 50); });
    return reply;
  });
  // No 'error' listener at all: no uncaught exception (as node:http's IncomingMessage).
  app.post('/nolistener', { stream: true }, (req, reply) => {
    req.on('data', () => started.resolve());
    req.on('close', () => { results.push({ closed: true }); done.resolve(); });
    return reply;
  });
  app.static('GET', '/ping', 'pong');
  await app.listen({ port: 0, handlerTimeoutMs: 1000 });
  try {
    for (const url of ['/iter', '/paused', '/nolistener']) {
      started = deferred();
      done = deferred();
      const c = new RawClient(app.port);
      await c.ready;
      c.send(`POST ${url} HTTP/1.1\r\nHost: t\r\nContent-Length: ${10 * MiB}\r\n\r\n`);
      c.send(Buffer.alloc(2 * MiB, 1));
      await within(5000, started.promise, `${url}: first bytes`);
      const t0 = Date.now();
      c.close();
      await within(5000, done.promise, `${url}: the stream's end after the client left`);
      t.diagnostic(`${url}: the stream failed ${Date.now() - t0} ms after the client left`);
    }
    const [iter, paused, nolistener] = results;
    assert.equal(iter.caught && iter.caught.code, 'QL_E_GONE');
    assert.match(iter.caught.message, /aborted before its body ended/);
    assert.equal(iter.errors, 1);
    assert.equal(iter.aborted, 1);
    assert.ok(iter.bytes >= 256 * 1024 && iter.bytes < 10 * MiB);
    assert.equal(iter.signal, true);
    assert.equal(iter.reqAborted, true);
    assert.equal(iter.url, '/iter');
    assert.equal(iter.host, 't');
    assert.deepEqual(paused, { errors: ['QL_E_GONE'], closed: true });
    assert.deepEqual(nolistener, { closed: true });
    const p = await within(5000, (async () => {
      const c = new RawClient(app.port);
      await c.ready;
      c.send(get('/ping'));
      try { return await c.read(); } finally { c.close(); }
    })(), 'ping');
    assert.equal(p.text, 'pong');
    assert.equal(app.stats().requestsInFlight, 0);
  } finally {
    await app.close();
  }
});

test('close() during an upload: the stream fails once and close() resolves', async () => {
  const app = quicklane.app();
  const started = deferred();
  const failed = deferred();
  const errors = [];
  app.post('/up', { stream: true }, async (req) => {
    req.on('error', (e) => errors.push(e.code));
    try {
      for await (const chunk of req) if (chunk.length) started.resolve();
    } catch (e) {
      failed.resolve(e);
    }
    return 'late';  // ignored: the request was finished when its body failed
  });
  await app.listen({ port: 0 });
  const c = new RawClient(app.port);
  await c.ready;
  c.send(`POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: ${10 * MiB}\r\n\r\n`);
  c.send(Buffer.alloc(MiB, 2));
  await within(5000, started.promise, 'first bytes');
  await within(5000, app.close(200), 'close()');
  const e = await within(5000, failed.promise, 'stream error');
  assert.equal(e.code, 'QL_E_GONE');
  await sleep(20);
  assert.deepEqual(errors, ['QL_E_GONE']);
  await within(5000, c.waitClosed(), 'client closed');
  c.close();
});

test('Expect: 100-continue: "100 Continue" goes out when the handler starts reading, not before', async (t) => {
  const app = quicklane.app();
  let reading = false;
  app.put('/late', { stream: true }, async (req) => {
    await sleep(150);
    reading = true;
    return (await req.buffer()).toString();
  });
  app.put('/refuse', { stream: true }, (req, reply) => reply.code(401).send({ detail: 'no' }));
  await app.listen({ port: 0 });
  try {
    const c = new RawClient(app.port);
    await c.ready;
    c.send('PUT /late HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n');
    const cont = await within(5000, c.read(), '100 Continue');
    assert.equal(cont.status, 100);
    assert.equal(reading, true, '100 Continue came before the handler read');
    c.send('hello');
    const r = await within(5000, c.read(), 'answer');
    assert.equal(r.status, 200);
    assert.equal(r.text, 'hello');
    c.close();

    // Refused before any read: 401 first (no 100), then the connection closes.
    const d = new RawClient(app.port);
    await d.ready;
    d.send(`PUT /refuse HTTP/1.1\r\nHost: t\r\nContent-Length: ${100 * MiB}\r\nExpect: 100-continue\r\n\r\n`);
    const e = await within(5000, d.read(), '401');
    assert.equal(e.status, 401);
    assert.match(e.headers.connection || '', /close/);
    await within(5000, d.waitClosed(), 'close after 401');
  } finally {
    await app.close();
  }
});

test('an early 401 without reading: the connection is closed or usable, never desynchronised', async (t) => {
  const app = quicklane.app();
  let secret = 0;
  app.post('/upload', { stream: true }, (req, reply) => reply.code(401).send({ detail: 'login first' }));
  app.get('/secret', () => { secret++; return 'SECRET'; });
  app.static('GET', '/ping', 'pong');
  await app.listen({ port: 0 });
  try {
    // The body looks like a request: it must be dropped as body bytes.
    const smuggled = 'GET /secret HTTP/1.1\r\nHost: t\r\n\r\n';
    for (const size of [100 * 1024, 20 * MiB]) {
      const c = new RawClient(app.port);
      await c.ready;
      c.send(`POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: ${size}\r\n\r\n`);
      const r = await within(5000, c.read(), '401');
      assert.equal(r.status, 401);
      const closes = /close/.test(r.headers.connection || '');
      // All of a short body; the start of a long one.
      const body = Buffer.alloc(Math.min(size, 300 * 1024), 'x');
      Buffer.from(smuggled).copy(body);
      c.send(body);
      c.send(get('/ping'));
      let next;
      try { next = await within(5000, c.read(), 'after 401'); } catch (e) { next = e; }
      // A short rest (≤ 256 KiB declared) is read and dropped; a long one closes.
      assert.equal(closes, size > 256 * 1024);
      if (closes) {
        assert.ok(next instanceof Error && /closed/.test(next.message), `expected a close, got ${next && next.text}`);
      } else {
        assert.equal(next.text, 'pong');
      }
      t.diagnostic(`early 401 with ${size} bytes declared: ${closes ? 'connection closed' : 'connection kept, next request served'}`);
      c.close();
    }
    assert.equal(secret, 0);
  } finally {
    await app.close();
  }
});

test('limits: a route maxBodyBytes and the server maxStreamBodyBytes give 413; malformed chunks 400', async (t) => {
  const app = quicklane.app();
  const errors = [];
  const route = (url, opts) => app.post(url, Object.assign({ stream: true }, opts), async (req) => {
    try {
      let n = 0;
      for await (const c of req) n += c.length;
      return { n };
    } catch (e) {
      errors.push({ url, code: e.code, statusCode: e.statusCode, message: e.message });
      throw e;
    }
  });
  route('/small', { maxBodyBytes: MiB });
  route('/server');
  route('/own', { maxBodyBytes: 4 * MiB, rateLimit: { max: 1000 } });
  await app.listen({ port: 0, maxStreamBodyBytes: 512 * 1024, bodyWindowBytes: 64 * 1024 });
  const raw = async (head, body, timeout = 5000) => {
    const c = new RawClient(app.port);
    await c.ready;
    c.send(head);
    if (body) body(c);
    try { return await within(timeout, c.read(), head.split('\r\n')[0]); } finally { c.close(); }
  };
  const chunks = (total) => (c) => {
    const piece = Buffer.alloc(64 * 1024, 'y');
    for (let sent = 0; sent < total; sent += piece.length) {
      c.send(Buffer.concat([Buffer.from(piece.length.toString(16) + '\r\n'), piece, Buffer.from('\r\n')]));
    }
  };
  try {
    // Declared over the limit: 413 before a byte is read.
    let r = await raw(`POST /small HTTP/1.1\r\nHost: t\r\nContent-Length: ${2 * MiB}\r\n\r\n`);
    assert.equal(r.status, 413);
    r = await raw(`POST /server HTTP/1.1\r\nHost: t\r\nContent-Length: ${MiB}\r\n\r\n`);
    assert.equal(r.status, 413);
    // Chunked, crossing the limit while the handler reads: 413, and the stream fails with it.
    r = await raw('POST /small HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n', chunks(2 * MiB));
    assert.equal(r.status, 413);
    // The route's own limit wins over the server's (and other rules stay).
    r = await raw(`POST /own HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n`, (c) => {
      chunks(3 * MiB)(c);
      c.send('0\r\n\r\n');
    });
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.text), { n: 3 * MiB });
    assert.ok(r.headers['ratelimit-limit'], 'the rate limit of /own is still set');
    // A malformed chunk: 400 from the core, the stream fails with QL_E_INVALID.
    r = await raw('POST /small HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n', (c) => {
      c.send('10\r\n0123456789abcdef\r\nzz\r\n');
    });
    assert.equal(r.status, 400);
    await sleep(50);
    const byCode = errors.map((e) => `${e.url} ${e.code} ${e.statusCode}`);
    assert.ok(byCode.includes('/small QL_E_TOO_LARGE 413'), byCode.join('; '));
    assert.ok(byCode.includes('/small QL_E_INVALID 400'), byCode.join('; '));
    assert.match(errors.find((e) => e.code === 'QL_E_TOO_LARGE').message, /too large/);
  } finally {
    await app.close();
  }
});

test('stream options are checked: bad sizes throw or reject with a message', async (t) => {
  const app = quicklane.app();
  assert.throws(() => app.post('/x', { maxBodyBytes: 10 }, () => 'x'), /streamed bodies/);
  assert.throws(() => app.post('/y', { stream: true, maxBodyBytes: -1 }, () => 'y'), RangeError);
  app.post('/z', { stream: true }, () => 'z');
  await assert.rejects(app.listen({ port: 0, bodyWindowBytes: 100 }), /body_window_bytes|window/i);
  await assert.rejects(app.listen({ port: 0, maxStreamBodyBytes: -5 }), RangeError);
  await app.listen({ port: 0, bodyWindowBytes: 4096 });
  const r = await upload(app.port, '/z', 100000);
  assert.equal(r.status, 200);
  assert.equal(r.text, 'z');
  await app.close();
});
