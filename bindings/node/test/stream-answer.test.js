'use strict';
// Streamed answers (issue 15): reply.send(stream) / a returned Readable, async
// iterable or generator, reply.stream() (a Writable), reply.sse() and
// quicklane.sse; over ql_respond_start(_sized)/write/end/abort and on_drain.
const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const http = require('node:http');
const net = require('node:net');
const { Readable, Transform, pipeline } = require('node:stream');
const { once } = require('node:events');
const quicklane = require('..');
const { sleep } = require('./helpers');

const MiB = 1024 * 1024;

// Settles within ms or fails: a test here never hangs.
function within(ms, promise, what) {
  let t;
  return Promise.race([promise, new Promise((_, reject) => {
    t = setTimeout(() => reject(new Error(`${what}: nothing after ${ms} ms`)), ms);
  })]).finally(() => clearTimeout(t));
}

async function until(what, cond, ms = 4000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`${what}: not after ${ms} ms`);
    await sleep(20);
  }
}

// A raw HTTP/1.1 exchange: everything the server sends until it closes the
// connection or `idleMs` pass without a byte.
function rawExchange(port, text, { idleMs = 400 } = {}) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(text));
    const parts = [];
    let t;
    const finish = (closed) => {
      clearTimeout(t);
      s.destroy();
      resolve({ bytes: Buffer.concat(parts), closed });
    };
    const arm = () => { clearTimeout(t); t = setTimeout(() => finish(false), idleMs); };
    s.on('data', (d) => { parts.push(d); arm(); });
    s.on('end', () => finish(true));
    s.on('error', reject);
    arm();
  });
}

// Splits a raw answer into head and de-chunked body; `complete` tells whether
// the terminating 0-chunk arrived.
function parseAnswer(buf) {
  const end = buf.indexOf('\r\n\r\n');
  assert.ok(end > 0, 'no head in ' + JSON.stringify(buf.toString('latin1').slice(0, 200)));
  const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
  const status = Number(lines[0].split(' ')[1]);
  const headers = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
  }
  let rest = buf.subarray(end + 4);
  if (headers['transfer-encoding'] !== 'chunked') return { status, headers, body: rest, complete: undefined, rest: Buffer.alloc(0) };
  const chunks = [];
  let complete = false;
  for (;;) {
    const nl = rest.indexOf('\r\n');
    if (nl < 0) break;
    const size = parseInt(rest.subarray(0, nl).toString('latin1'), 16);
    if (size === 0) {
      complete = rest.length >= nl + 4 && rest.subarray(nl, nl + 4).toString() === '\r\n\r\n';
      rest = rest.subarray(nl + 4);
      break;
    }
    if (rest.length < nl + 2 + size + 2) break;
    chunks.push(rest.subarray(nl + 2, nl + 2 + size));
    rest = rest.subarray(nl + 2 + size + 2);
  }
  return { status, headers, body: Buffer.concat(chunks), complete, rest };
}

function httpGet(port, path, { method = 'GET' } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, agent: false }, (res) => {
      const hash = crypto.createHash('sha256');
      let n = 0;
      const parts = [];
      res.on('data', (d) => { hash.update(d); n += d.length; if (n <= MiB) parts.push(d); });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, bytes: n, sha: hash.digest('hex'),
        text: n <= MiB ? Buffer.concat(parts).toString() : undefined }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

// 64 KiB blocks numbered from 0, made as they are pulled; counts what was pulled.
function numberedSource(total, { block = 64 * 1024, onDestroy } = {}) {
  const base = crypto.randomBytes(block);
  const hash = crypto.createHash('sha256');
  let i = 0;
  const src = new Readable({
    highWaterMark: block,
    read() {
      if (src.pulled >= total) {
        src.sha = hash.digest('hex');
        this.push(null);
        return;
      }
      const n = Math.min(block, total - src.pulled);
      const b = Buffer.from(base.subarray(0, n));
      b.writeUInt32LE(i++, 0);
      hash.update(b);
      src.pulled += n;
      this.push(b);
    },
    destroy(err, cb) {
      if (onDestroy) onDestroy(err);
      cb(err);
    },
  });
  src.pulled = 0;
  return src;
}

let app;
let port;
const state = {};

test.before(async () => {
  app = quicklane.app();
  // (d) issue 23: a returned Readable streams (it used to be the JSON of its fields).
  app.get('/big/:mib', (req) => {
    const src = numberedSource(Number(req.params.mib) * MiB);
    state.big = src;
    return src;
  });
  // A source counted while a client does not read.
  app.get('/slow', () => {
    const src = numberedSource(48 * MiB, { onDestroy: () => { state.slowDestroyed = true; } });
    state.slow = src;
    return src;
  });
  // The low-level writer, with write() → false and 'drain'.
  app.get('/writer', (req, reply) => {
    const w = reply.stream({ contentType: 'application/octet-stream' });
    const block = Buffer.alloc(64 * 1024, 0x61);
    state.writer = { written: 0, falses: 0, drains: 0, closed: false };
    const s = state.writer;
    w.on('drain', () => { s.drains++; });
    w.on('close', () => { s.closed = true; });
    (async () => {
      while (s.written < 24 * MiB) {
        s.written += block.length;
        if (!w.write(block)) {
          s.falses++;
          await Promise.race([once(w, 'drain'), once(w, 'close')]);
          if (w.destroyed) return;
        }
      }
      w.end();
    })();
  });
  app.get('/fail-mid', () => (async function* () {
    yield 'first chunk;';
    yield 'second chunk;';
    await sleep(20);
    throw new Error('source failed mid-stream (expected by the test)');
  })());
  app.get('/fail-first', () => new Readable({
    read() { this.destroy(Object.assign(new Error('no data today'), { statusCode: 503 })); },
  }));
  app.get('/fail-first-500', () => Readable.from((async function* () {
    throw new Error('source failed before its first chunk (expected by the test)');
  })()));
  app.get('/objects', () => Readable.from([{ a: 1 }, { b: 2 }]));
  app.get('/objects-mid', () => Readable.from(['text first;', { b: 2 }]));
  app.get('/leave/readable', () => {
    let n = 0;
    const src = new Readable({
      read() { setTimeout(() => this.push(`tick ${n++}\n`), 30); },
      destroy(err, cb) { state.leaveReadable = 'destroyed'; cb(err); },
    });
    src.on('close', () => { state.leaveReadableClose = true; });
    return src;
  });
  app.get('/leave/idle', () => {
    let first = true;
    return new Readable({
      read() { if (first) { first = false; this.push('only chunk\n'); } },  // then silent: no write tells
      destroy(err, cb) { state.leaveIdle = 'destroyed'; cb(err); },
    });
  });
  app.get('/leave/generator', async function* () {
    try {
      yield 'a\n';
      for (;;) { await sleep(30); yield 'b\n'; }
    } finally {
      state.leaveGenerator = 'returned';
    }
  });
  app.get('/gen', async function* (req) {
    for (let i = 0; i < 5; i++) {
      await sleep(5);
      yield `line ${i} of ${req.params.x || 'gen'}\n`;
    }
    yield Buffer.from('bytes too\n');
  });
  app.get('/sync-gen', () => (function* () { yield 'one,'; yield 'two'; })());
  app.get('/sized', (req, reply) => {
    reply.header('content-length', 11).type('text/plain');
    return Readable.from([Buffer.from('hello '), 'world']);
  });
  app.get('/sized-short', (req, reply) => {
    reply.header('Content-Length', 100);
    return Readable.from(['only ten b']);
  });
  app.get('/head-stream', (req, reply) => {
    const src = numberedSource(8 * MiB);
    state.head = src;
    reply.header('x-kind', 'streamed');
    return src;
  });
  app.get('/head-sized', (req, reply) => {
    const src = numberedSource(8 * MiB);
    state.headSized = src;
    reply.header('content-length', 8 * MiB);
    return src;
  });
  app.get('/sse', (req, reply) => reply.sse((async function* () {
    yield { comment: 'hello' };
    yield { data: 'line one\nline two\r\nline three\rline four', event: 'update', id: '7', retry: 2500 };
    yield 'plain text';
    yield { data: { n: 1, s: 'a\nb' }, id: 8 };
    yield quicklane.sse.event({ data: '', event: 'empty' });
  })(), { ping: 0 }));
  app.get('/sse-idle', (req, reply) => {
    const es = reply.sse({ ping: 100 });
    es.write({ data: 'ready' });
    setTimeout(() => { es.write('late'); es.end(); }, 450);
  });
  app.get('/sse-bad', (req, reply) => reply.sse((async function* () {
    yield 'ok';
    yield { nothing: 'known' };
  })(), { ping: 0 }));
  app.get('/pipeline', (req, reply) => {
    const upper = new Transform({ transform(c, e, cb) { cb(null, c.toString().toUpperCase()); } });
    pipeline(Readable.from(['abc', 'def', 'ghi']), upper, reply.stream({ contentType: 'text/plain' }), (err) => {
      state.pipelineErr = err === undefined ? null : err;
    });
  });
  app.get('/pipeline-big', (req, reply) => {
    const src = numberedSource(8 * MiB);
    state.pipeBig = src;
    pipeline(src, reply.stream(), (err) => { state.pipeBigErr = err === undefined ? null : err; });
  });
  app.get('/stream-error-first', (req, reply) => {
    const w = reply.stream();
    w.destroy(Object.assign(new Error('not allowed'), { statusCode: 403 }));
  });
  app.get('/abort', (req, reply) => {
    const w = reply.stream({ contentType: 'text/plain' });
    w.write('partial answer;');
    setTimeout(() => w.abort(), 30);
  });
  app.get('/forever', (req) => {
    const src = new Readable({
      read() { setTimeout(() => this.push('x'), 20); },
      destroy(err, cb) { state.foreverDestroyed = true; cb(err); },
    });
    return src;
  });
  app.get('/ok', () => ({ ok: true }));
  await app.listen({ host: '127.0.0.1', port: 0 });
  port = app.port;
});

test.after(async () => {
  await app.close();
});

test('a returned Readable of 32 MiB arrives whole and in order (sha256)', async () => {
  const r = await within(20000, httpGet(port, '/big/32'), '32 MiB');
  assert.equal(r.status, 200);
  assert.equal(r.headers['transfer-encoding'], 'chunked');
  assert.equal(r.headers['content-type'], 'application/octet-stream');
  assert.equal(r.bytes, 32 * MiB);
  assert.equal(r.sha, state.big.sha);
});

test('a client that stops reading pauses the producer; it completes once the client reads', async () => {
  const s = net.connect(port, '127.0.0.1');
  await once(s, 'connect');
  s.write('GET /slow HTTP/1.1\r\nHost: t\r\n\r\n');
  const [first] = await once(s, 'data');
  s.pause();
  // Kernel socket buffers + the core's 1 MiB mark + a Writable's 64 KiB: a few MiB.
  let last = -1;
  for (let stable = 0; stable < 5;) {
    await sleep(100);
    if (state.slow.pulled === last) stable++;
    else { stable = 0; last = state.slow.pulled; }
  }
  assert.ok(state.slow.pulled < 12 * MiB, `pulled ${(state.slow.pulled / MiB).toFixed(1)} MiB of 48 while the client did not read`);
  const rss = process.memoryUsage().rss;
  let received = first.length;
  const parts = [first];
  const sha = crypto.createHash('sha256');
  s.on('data', (d) => { received += d.length; parts.push(d); });
  s.resume();
  await within(15000, until('the rest', () => received > 48 * MiB && Buffer.concat(parts.slice(-2)).toString('latin1').endsWith('0\r\n\r\n'), 15000), 'rest');
  s.destroy();
  const a = parseAnswer(Buffer.concat(parts));
  assert.equal(a.complete, true);
  assert.equal(a.body.length, 48 * MiB);
  sha.update(a.body);
  assert.equal(sha.digest('hex'), state.slow.sha);
  assert.ok(process.memoryUsage().rss - rss < 256 * MiB);
});

test('reply.stream(): write() returns false at the core\'s mark and \'drain\' follows', async () => {
  const s = net.connect(port, '127.0.0.1');
  await once(s, 'connect');
  s.write('GET /writer HTTP/1.1\r\nHost: t\r\n\r\n');
  const [first] = await once(s, 'data');
  s.pause();
  await sleep(300);
  const w = state.writer;
  assert.ok(w.falses >= 1, 'write() never returned false');
  assert.ok(w.written < 12 * MiB, `wrote ${w.written} bytes while the client did not read`);
  let received = first.length;
  const tail = [];
  s.on('data', (d) => { received += d.length; tail.push(d); if (tail.length > 3) tail.shift(); });
  s.resume();
  await within(10000, until('end', () => Buffer.concat(tail).toString('latin1').endsWith('0\r\n\r\n'), 10000), 'writer end');
  s.destroy();
  assert.ok(received > 24 * MiB);
  assert.ok(w.drains >= 1);
  await until('close', () => w.closed);
});

test('a source that fails mid-stream: the client gets an incomplete chunked message; the server stays healthy', async () => {
  const r = await within(5000, rawExchange(port, 'GET /fail-mid HTTP/1.1\r\nHost: t\r\n\r\n'), 'fail-mid');
  assert.equal(r.closed, true, 'the connection must close');
  const a = parseAnswer(r.bytes);
  assert.equal(a.status, 200);
  assert.equal(a.headers['transfer-encoding'], 'chunked');
  assert.equal(a.body.toString(), 'first chunk;second chunk;');
  assert.equal(a.complete, false, 'no terminating 0-chunk');
  assert.ok(!r.bytes.toString('latin1').endsWith('0\r\n\r\n'));
  const ok = await httpGet(port, '/ok');
  assert.equal(ok.status, 200);
  assert.equal(ok.text, '{"ok":true}');
});

test('a source that fails before its first chunk is an error answer (500, or its statusCode)', async () => {
  const a = await httpGet(port, '/fail-first');
  assert.equal(a.status, 503);
  assert.equal(a.text, '{"detail":"Internal Server Error"}');  // 5xx: the message is not shown
  const b = await httpGet(port, '/fail-first-500');
  assert.equal(b.status, 500);
  assert.equal(b.text, '{"detail":"Internal Server Error"}');
  const c = await httpGet(port, '/stream-error-first');
  assert.equal(c.status, 403);
  assert.equal(c.text, '{"detail":"not allowed"}');
});

test('objects in an object-mode stream are an error: 500 first, a cut answer later', async () => {
  const a = await httpGet(port, '/objects');
  assert.equal(a.status, 500);
  const r = await within(5000, rawExchange(port, 'GET /objects-mid HTTP/1.1\r\nHost: t\r\n\r\n'), 'objects-mid');
  const b = parseAnswer(r.bytes);
  assert.equal(b.status, 200);
  assert.equal(b.body.toString(), 'text first;');
  assert.equal(b.complete, false);
  assert.equal(r.closed, true);
});

for (const [path, key, want] of [['/leave/readable', 'leaveReadable', 'destroyed'],
  ['/leave/idle', 'leaveIdle', 'destroyed'], ['/leave/generator', 'leaveGenerator', 'returned']]) {
  test(`a client that leaves stops the source (${path})`, async () => {
    state[key] = undefined;
    const s = net.connect(port, '127.0.0.1');
    await once(s, 'connect');
    s.write(`GET ${path} HTTP/1.1\r\nHost: t\r\n\r\n`);
    await once(s, 'data');
    s.destroy();
    await within(5000, until(key, () => state[key] === want, 5000), key);
    if (path === '/leave/readable') await until('close event', () => state.leaveReadableClose === true);
  });
}

test('a client that leaves while the producer waits for drain releases the source', async () => {
  state.slowDestroyed = false;
  const s = net.connect(port, '127.0.0.1');
  await once(s, 'connect');
  s.write('GET /slow HTTP/1.1\r\nHost: t\r\n\r\n');
  await once(s, 'data');
  s.pause();
  await sleep(300);
  s.destroy();
  await within(6000, until('destroyed', () => state.slowDestroyed, 6000), 'paused then gone');
  assert.ok(state.slow.pulled < 12 * MiB);
});

test('an async generator and a sync generator stream their chunks', async () => {
  const r = await httpGet(port, '/gen');
  assert.equal(r.status, 200);
  assert.equal(r.text, 'line 0 of gen\nline 1 of gen\nline 2 of gen\nline 3 of gen\nline 4 of gen\nbytes too\n');
  const s = await httpGet(port, '/sync-gen');
  assert.equal(s.text, 'one,two');
});

test('a declared content-length gives a sized answer; a short one is cut', async () => {
  const r = await within(5000, rawExchange(port, 'GET /sized HTTP/1.1\r\nHost: t\r\n\r\n'), 'sized');
  const a = parseAnswer(r.bytes);
  assert.equal(a.status, 200);
  assert.equal(a.headers['content-length'], '11');
  assert.equal(a.headers['transfer-encoding'], undefined);
  assert.equal(a.headers['content-type'], 'text/plain');
  assert.equal(a.body.toString(), 'hello world');
  assert.equal(r.closed, false, 'a complete sized answer keeps the connection');
  const short = await within(5000, rawExchange(port, 'GET /sized-short HTTP/1.1\r\nHost: t\r\n\r\n'), 'short');
  const b = parseAnswer(short.bytes);
  assert.equal(b.headers['content-length'], '100');
  assert.equal(b.body.toString(), 'only ten b');
  assert.equal(short.closed, true, 'short of its length: the connection closes');
});

test('HEAD on a streamed route: the head only, the source is stopped, the connection goes on', async () => {
  for (const [path, key] of [['/head-stream', 'head'], ['/head-sized', 'headSized']]) {
    const r = await within(5000, rawExchange(port, `HEAD ${path} HTTP/1.1\r\nHost: t\r\n\r\nGET /ok HTTP/1.1\r\nHost: t\r\n\r\n`), path);
    const text = r.bytes.toString('latin1');
    const heads = text.split('HTTP/1.1 ').filter(Boolean);
    assert.equal(heads.length, 2, text);
    assert.match(heads[0], /^200 OK\r\n/);
    assert.match(heads[0], /\r\nx-kind: streamed\r\n|content-length: 8388608/i);
    assert.ok(heads[0].endsWith('\r\n\r\n'), 'nothing after the head of the HEAD answer');
    assert.match(heads[1], /\{"ok":true\}$/);
    assert.ok(state[key].pulled <= 256 * 1024, `${path}: pulled ${state[key].pulled} for a HEAD`);
    await until('HEAD source stopped', () => state[key].destroyed);
  }
});

test('SSE: byte-exact framing (multi-line data, CR/LF, id, event, retry, comment, JSON data)', async () => {
  const r = await within(5000, rawExchange(port, 'GET /sse HTTP/1.1\r\nHost: t\r\n\r\n'), 'sse');
  const a = parseAnswer(r.bytes);
  assert.equal(a.status, 200);
  assert.equal(a.headers['content-type'], 'text/event-stream');
  assert.equal(a.headers['cache-control'], 'no-cache');
  assert.equal(a.headers['x-accel-buffering'], 'no');
  assert.equal(a.complete, true);
  assert.equal(a.body.toString(),
    ': hello\n\n' +
    'event: update\nid: 7\nretry: 2500\ndata: line one\ndata: line two\ndata: line three\ndata: line four\n\n' +
    'data: plain text\n\n' +
    'id: 8\ndata: {"n":1,"s":"a\\nb"}\n\n' +
    'event: empty\ndata: \n\n');
});

test('SSE: a keep-alive comment goes out while the source is idle', async () => {
  const r = await within(5000, rawExchange(port, 'GET /sse-idle HTTP/1.1\r\nHost: t\r\n\r\n', { idleMs: 1000 }), 'sse-idle');
  const a = parseAnswer(r.bytes);
  assert.equal(a.complete, true);
  const body = a.body.toString();
  assert.ok(body.startsWith('data: ready\n\n: keep-alive\n\n'), JSON.stringify(body));
  assert.ok(body.endsWith('data: late\n\n'));
  const pings = body.split(': keep-alive\n\n').length - 1;
  assert.ok(pings >= 2 && pings <= 6, `${pings} pings in 450 ms at 100 ms`);
});

test('SSE: an item that is not an event cuts the stream', async () => {
  const r = await within(5000, rawExchange(port, 'GET /sse-bad HTTP/1.1\r\nHost: t\r\n\r\n'), 'sse-bad');
  const a = parseAnswer(r.bytes);
  assert.equal(a.body.toString(), 'data: ok\n\n');
  assert.equal(a.complete, false);
});

test('quicklane.sse.event / comment frame events exactly; line breaks in id or event are refused', () => {
  const { sse } = quicklane;
  assert.equal(sse.event('a\r\nb\rc\nd').toString(), 'data: a\ndata: b\ndata: c\ndata: d\n\n');
  assert.equal(sse.event({ data: 'x', comment: 'c1\nc2' }).toString(), ': c1\n: c2\ndata: x\n\n');
  assert.equal(sse.event({ data: [1, 'two'], event: 'e', id: 3 }).toString(), 'event: e\nid: 3\ndata: [1,"two"]\n\n');
  assert.equal(sse.event({ retry: 1000 }).toString(), 'retry: 1000\n\n');
  assert.equal(sse.event({ data: ' lead\n' }).toString(), 'data:  lead\ndata: \n\n');
  assert.equal(sse.comment('ping').toString(), ': ping\n\n');
  assert.ok(Buffer.isBuffer(sse.event('x')));
  assert.throws(() => sse.event({ data: 'x', id: 'a\nb' }), TypeError);
  assert.throws(() => sse.event({ data: 'x', event: 'a\rb' }), TypeError);
  assert.throws(() => sse.event({ data: 'x', retry: -1 }), TypeError);
  assert.throws(() => sse.event({ foo: 1 }), TypeError);
  assert.equal(sse.headers['content-type'], 'text/event-stream');
});

test('pipeline(src, transform, reply.stream()) streams and calls back without an error', async () => {
  state.pipelineErr = undefined;
  const r = await httpGet(port, '/pipeline');
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-type'], 'text/plain');
  assert.equal(r.text, 'ABCDEFGHI');
  await until('pipeline callback', () => state.pipelineErr !== undefined);
  assert.equal(state.pipelineErr, null);
  const big = await within(10000, httpGet(port, '/pipeline-big'), 'pipeline-big');
  assert.equal(big.bytes, 8 * MiB);
  assert.equal(big.sha, state.pipeBig.sha);
});

test('pipeline into reply.stream(): a client that leaves destroys the source, the callback gets an error', async () => {
  state.pipeBigErr = undefined;
  const s = net.connect(port, '127.0.0.1');
  await once(s, 'connect');
  s.write('GET /pipeline-big HTTP/1.1\r\nHost: t\r\n\r\n');
  await once(s, 'data');
  s.pause();
  await sleep(200);
  s.destroy();
  await within(6000, until('pipeline callback', () => state.pipeBigErr !== undefined, 6000), 'pipeline gone');
  assert.ok(state.pipeBigErr instanceof Error);
  assert.ok(state.pipeBig.destroyed);
});

test('w.abort() cuts a started answer', async () => {
  const r = await within(5000, rawExchange(port, 'GET /abort HTTP/1.1\r\nHost: t\r\n\r\n'), 'abort');
  const a = parseAnswer(r.bytes);
  assert.equal(a.body.toString(), 'partial answer;');
  assert.equal(a.complete, false);
  assert.equal(r.closed, true);
});

test('close() under a running stream cuts it and destroys the source', async () => {
  const other = quicklane.app();
  let destroyed = false;
  other.get('/forever', () => new Readable({
    read() { setTimeout(() => this.push('x'.repeat(100)), 10); },
    destroy(err, cb) { destroyed = true; cb(err); },
  }));
  await other.listen({ port: 0 });
  const s = net.connect(other.port, '127.0.0.1');
  await once(s, 'connect');
  s.write('GET /forever HTTP/1.1\r\nHost: t\r\n\r\n');
  const parts = [];
  s.on('data', (d) => parts.push(d));
  await until('first bytes', () => parts.length > 0);
  const closed = once(s, 'close');
  await within(8000, other.close(200), 'close');
  await within(3000, closed, 'client closed');
  await until('source destroyed', () => destroyed);
  const a = parseAnswer(Buffer.concat(parts));
  assert.equal(a.complete, false);
});
